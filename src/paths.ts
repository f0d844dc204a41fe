/** Where Lantern keeps its files, and where the bundled model lives. */
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

/** $LANTERN_HOME, else $XDG_CACHE_HOME/lantern, else ~/.cache/lantern. */
export function lanternHome(): string {
  return process.env.LANTERN_HOME ?? path.join(process.env.XDG_CACHE_HOME ?? path.join(os.homedir(), '.cache'), 'lantern');
}

const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');

/** The demo model Lantern trained itself (shipped in the repository; `npm run train:demo` remakes it). */
export const BUNDLED_MODEL = path.join(repoRoot, 'models', 'lantern-demo');
