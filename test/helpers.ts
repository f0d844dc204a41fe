import path from 'node:path';
import { spawn } from 'node:child_process';
import { expect } from 'vitest';
import { LanternError } from '../src/errors.js';
import { Tensor } from '../src/engine/tensor.js';
import { HookedTransformer } from '../src/models/hooked.js';
import { randomWeights } from '../src/models/random.js';
import type { ModelConfig } from '../src/models/config.js';
import { weightShapes } from '../src/models/forward.js';

/** A model built in memory from the seeded random weights that the fixtures were computed from. */
export async function seededModel(cfg: ModelConfig, seed: number, opts: { matrixStd?: number } = {}): Promise<HookedTransformer> {
  const raw = randomWeights(cfg, seed, opts);
  const shapes = weightShapes(cfg);
  const weights = Object.fromEntries(Object.entries(raw).map(([n, d]) => [n, Tensor.f32(d, shapes[n])]));
  return HookedTransformer.create(cfg, weights, undefined, `random:${seed}`);
}

/** max |a - b| / max |b|, treating equal infinities as equal. */
export function relError(a: Tensor, b: Tensor): number {
  expect(a.shape).toEqual(b.shape);
  let num = 0;
  let den = 0;
  for (let i = 0; i < b.size; i++) {
    const x = Number(a.data[i]);
    const y = Number(b.data[i]);
    if (!Number.isFinite(y)) {
      expect(x).toBe(y);
      continue;
    }
    num = Math.max(num, Math.abs(x - y));
    den = Math.max(den, Math.abs(y));
  }
  return num / Math.max(den, 1e-30);
}

/** Of [name, value, reference] triples, the one that agrees worst: its name and relError. */
export function worstAgreement(pairs: [string, Tensor, Tensor][]): [string, number] {
  return pairs.map(([name, a, b]) => [name, relError(a, b)] as [string, number]).reduce((w, x) => (x[1] > w[1] ? x : w));
}

export function maxAbsDiff(a: Tensor, b: Tensor): number {
  expect(a.shape).toEqual(b.shape);
  let m = 0;
  for (let i = 0; i < a.size; i++) m = Math.max(m, Math.abs(Number(a.data[i]) - Number(b.data[i])));
  return m;
}

export const ROOT = path.resolve(__dirname, '..');
const CLI_MAIN = path.join(ROOT, 'src', 'interfaces', 'cli', 'main.ts');

export interface CliRun { code: number | null; stdout: string; stderr: string }

/** Runs the `lantern` CLI from source in a subprocess: offline (unless `env` says otherwise), no colour, Lantern's home in `home`. */
export function runLantern(args: string[], home: string, env: Record<string, string | undefined> = {}): Promise<CliRun> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['--import', 'tsx', CLI_MAIN, ...args], {
      cwd: ROOT,
      env: {
        ...process.env,
        LANTERN_HOME: path.join(home, 'lantern-home'),
        HF_HOME: path.join(home, 'hf-home'),
        HF_HUB_OFFLINE: '1', // never the network, whatever a path is taken for
        HF_ENDPOINT: 'http://127.0.0.1:9',
        FORCE_COLOR: '0',
        ...env,
      },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => (stdout += d));
    child.stderr.on('data', (d) => (stderr += d));
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, stdout, stderr }));
  });
}

/** Bad input: exit 1, nothing on stdout, exactly one `lantern: error:` line on stderr, no stack trace. */
export function expectOneLineError(r: CliRun, pattern: RegExp, label = ''): void {
  expect(r.code, `${label}: exit code (stderr: ${r.stderr})`).toBe(1);
  expect(r.stdout, `${label}: stdout`).toBe('');
  expect(r.stderr, `${label}: stack trace`).not.toMatch(/\n\s+at /);
  const lines = r.stderr.split('\n').filter((l) => l !== '');
  expect(lines, `${label}: stderr lines`).toHaveLength(1);
  expect(lines[0], label).toMatch(/^lantern: error: /);
  expect(lines[0], label).toMatch(pattern);
}

/** The one-line LanternError message `f` throws; fails the test if `f` returns or throws anything else. */
export function refusal(f: () => unknown): string {
  try {
    f();
  } catch (e) {
    return refusalMessage(e);
  }
  throw new Error('expected a LanternError');
}

/** {@link refusal} for a function that may return a promise: the message it rejects (or throws) with. */
export async function asyncRefusal(f: () => unknown): Promise<string> {
  try {
    await f();
  } catch (e) {
    return refusalMessage(e);
  }
  throw new Error('expected a LanternError');
}

function refusalMessage(e: unknown): string {
  expect(e).toBeInstanceOf(LanternError);
  expect((e as Error).message).not.toContain('\n');
  return (e as Error).message;
}

/** log softmax(row) in float64, independently of the library's code. */
export function logSoftmaxRow(row: ArrayLike<number>): number[] {
  let max = -Infinity;
  for (let i = 0; i < row.length; i++) max = Math.max(max, row[i]);
  let z = 0;
  for (let i = 0; i < row.length; i++) z += Math.exp(row[i] - max);
  const lse = max + Math.log(z);
  return Array.from(row, (x) => x - lse);
}

/**
 * The logit lens of one residual vector written out in float64: LayerNorm with the final norm's
 * weight and bias, then the unembedding (`unembedT` [vocab, d], as HF's lm_head / embed_out), then log softmax.
 */
export function logitLens64(x: ArrayLike<number>, w: { lnW: Float32Array; lnB: Float32Array; unembedT: Float32Array; eps: number }): number[] {
  const D = x.length;
  const mu = Array.from(x).reduce((s, v) => s + v, 0) / D;
  const variance = Array.from(x).reduce((s, v) => s + (v - mu) ** 2, 0) / D;
  const n = Array.from(x, (v, i) => ((v - mu) / Math.sqrt(variance + w.eps)) * w.lnW[i] + w.lnB[i]);
  return logSoftmaxRow(Array.from({ length: w.unembedT.length / D }, (_, v) => {
    let s = 0;
    for (let i = 0; i < D; i++) s += n[i] * w.unembedT[v * D + i];
    return s;
  }));
}

/** KL(p ‖ q) of two distributions given as log-probabilities. */
export function klLog(p: number[], q: number[]): number {
  return p.reduce((s, lp, v) => s + Math.exp(lp) * (lp - q[v]), 0);
}

/** log softmax(row)[token] in float64, independently of the library's code. */
export function logSoftmaxAt(row: Float32Array, token: number): number {
  let max = -Infinity;
  for (const x of row) max = Math.max(max, x);
  let z = 0;
  for (const x of row) z += Math.exp(x - max);
  return row[token] - max - Math.log(z);
}
