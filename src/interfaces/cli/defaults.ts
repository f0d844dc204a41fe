/** Where Lantern keeps its own files, and which model runs when none is named. */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { writeRandomGpt2 } from '../../models/random.js';
import type { ModelConfig } from '../../models/config.js';

export function lanternHome(): string {
  return process.env.LANTERN_HOME ?? path.join(process.env.XDG_CACHE_HOME ?? path.join(os.homedir(), '.cache'), 'lantern');
}

const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../..');

/** The bundled, Lantern-trained demo model (shipped in the repository). */
export const BUNDLED_MODEL = path.join(repoRoot, 'models', 'lantern-demo');

/** A random-weight GPT-2 with the real GPT-2 vocabulary: what runs until the bundled model is in the checkout. */
const RANDOM_DEMO: ModelConfig = {
  architecture: 'gpt2', nLayers: 4, dModel: 256, nHeads: 8, dHead: 32, dMlp: 1024,
  nCtx: 256, dVocab: 50257, lnEps: 1e-5, act: 'gelu_new', tiedUnembed: true,
};

/** The model to use when the user names none. */
export function defaultModel(log: (s: string) => void): string {
  if (fs.existsSync(path.join(BUNDLED_MODEL, 'config.json'))) return BUNDLED_MODEL;
  const folder = path.join(lanternHome(), 'models', 'random-gpt2-demo');
  if (!fs.existsSync(path.join(folder, 'config.json'))) {
    log(`note: no bundled trained model in this checkout; writing a random-weight GPT-2 (4 layers) to ${folder}`);
    // Written aside and renamed, so an interrupted write never leaves a half model behind.
    const tmp = `${folder}.${process.pid}.tmp`;
    writeRandomGpt2(tmp, RANDOM_DEMO, { seed: 0 });
    fs.rmSync(folder, { recursive: true, force: true });
    fs.renameSync(tmp, folder);
  } else {
    log(`note: no bundled trained model in this checkout; using the random-weight GPT-2 at ${folder}`);
  }
  return folder;
}
