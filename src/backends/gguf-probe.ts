/**
 * Loads a GGUF file once in a child process before it is loaded here. checkGgufFile refuses the
 * headers known to abort llama.cpp, but llama.cpp asserts on more than any checker can list; in
 * a child, an abort or a load that never ends is an error for the caller instead of the end of
 * its process (a server's, or a long run's).
 */
import { spawn } from 'node:child_process';
import { createRequire } from 'node:module';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { LanternError } from '../errors.js';

const here = fileURLToPath(import.meta.url);
const CHILD = path.join(path.dirname(here), `gguf-probe-child${path.extname(here)}`);

/** `child`: the script that loads the file (tests give one that dies). */
export async function probeGguf(file: string, timeoutMs = 120_000, child: string = CHILD): Promise<void> {
  const { out, code, signal, timedOut } = await new Promise<{ out: string; code: number | null; signal: NodeJS.Signals | null; timedOut: boolean }>((resolve, reject) => {
    // Under tsx (tests, `npm run fuzz`) the child is TypeScript too; tsx is resolved from here, not
    // from the working directory, which may be anywhere (through require.resolve: vitest's module
    // transform has no import.meta.resolve).
    const loader = child.endsWith('.ts') ? ['--import', pathToFileURL(createRequire(import.meta.url).resolve('tsx')).href] : [];
    const proc = spawn(process.execPath, [...loader, child, file], { stdio: ['ignore', 'pipe', 'ignore'] });
    let text = '';
    let killed = false;
    const timer = setTimeout(() => { killed = true; proc.kill('SIGKILL'); }, timeoutMs);
    proc.stdout.on('data', (d) => (text += d));
    proc.on('error', (e) => { clearTimeout(timer); reject(e); });
    proc.on('close', (c, s) => { clearTimeout(timer); resolve({ out: text, code: c, signal: s, timedOut: killed }); });
  });
  const line = out.trim().split('\n').pop() ?? '';
  if (line === 'ok') return;
  if (line.startsWith('refused ')) throw new LanternError(`llama.cpp cannot load ${file}: ${line.slice(8)}`);
  if (timedOut) throw new LanternError(`llama.cpp did not finish loading ${file} within ${timeoutMs / 1000} s; the file is likely malformed`);
  throw new LanternError(`llama.cpp aborted while loading ${file} (${signal ?? `exit code ${code}`}); the file is malformed or not one llama.cpp supports`);
}
