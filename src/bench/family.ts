/**
 * The model-families bars, on a random Llama-3.2-1B-shaped model (1.24 B parameters, stored as
 * BF16 the way it is published), batch 1, T = 128, each a ratio measured in this run:
 *   - forward GFLOP/s over the sgemm peak (measured interleaved with the forwards), >= 0.60
 *   - forward+backward to the embeddings / forward, <= 2.5
 *   - Lantern / PyTorch eager (scripts/reference/time_reference.py, the same weights, its best
 *     thread count), forward <= 1.0 and forward+backward <= 0.9, when python3-torch is present
 *   - peak RSS while loading the BF16 checkpoint / fp32 weight bytes, <= 1.2 (fresh process)
 *   - peak RSS holding the model and running forwards / (fp32 weights + activations), <= 1.2
 *     (the peak after forward+backward runs as well is printed beside it)
 * The model folder is written once to ~/.cache/lantern/bench/ and reused.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { architectureFor } from '../models/config.js';
import { writeRandomModel } from '../models/random.js';
import { loadModel } from '../models/load.js';
import { readConfig } from '../models/config.js';
import { objectives } from '../models/hooked.js';
import { weightShapes, OPTIONAL_HOOKS } from '../models/forward.js';
import { forwardFlops, randomTokens } from './common.js';

type Report = (name: string, value: number, op: '>=' | '<=', bar: number, detail: string) => void;

const PRESET = 'llama-3.2-1b';
const T = 128;
const cfg = architectureFor('llama').presets[PRESET];
const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
const hwm = () => Number(/VmHWM:\s+(\d+) kB/.exec(fs.readFileSync('/proc/self/status', 'utf8'))![1]) * 1024;
const weightBytes = () => Object.values(weightShapes(cfg)).reduce((s, sh) => s + 4 * sh.reduce((p, q) => p * q, 1), 0);
const MiB = (n: number) => `${(n / 2 ** 20).toFixed(0)} MiB`;

/** The random Llama-3.2-1B-shaped BF16 folder, written once. */
export function benchModelFolder(): string {
  const dir = path.join(process.env.LANTERN_HOME ?? path.join(os.homedir(), '.cache', 'lantern'), 'bench', `${PRESET}-bf16`);
  const canonical = (x: unknown): unknown => (Array.isArray(x) ? x.map(canonical) : x && typeof x === 'object' ? Object.fromEntries(Object.entries(x).sort(([a], [b]) => a.localeCompare(b)).map(([k, v]) => [k, canonical(v)])) : x);
  const current = fs.existsSync(path.join(dir, 'config.json')) && JSON.stringify(canonical(readConfig(dir))) === JSON.stringify(canonical(cfg));
  if (!current) {
    console.log(`writing a random ${PRESET} (BF16) to ${dir} (once) ...`);
    // In a child: the float32 weights it draws are gone when it exits.
    execFileSync(process.execPath, [fileURLToPath(import.meta.url), '--write', dir], { stdio: 'inherit' });
  }
  return dir;
}

/** PyTorch eager on the same folder (best thread count), or undefined without python3-torch. */
function torchTimes(dir: string): { forward: number; backward: number; threads: number; torch: string } | undefined {
  const script = path.join(ROOT, 'scripts', 'reference', 'time_reference.py');
  if (!fs.existsSync('/usr/bin/python3') || !fs.existsSync(script)) return undefined;
  const probe = spawnSync('/usr/bin/python3', ['-c', 'import torch'], { encoding: 'utf8' });
  if (probe.status !== 0) return undefined;
  const r = spawnSync('/usr/bin/python3', [script, dir, '--seq', String(T), '--repeats', '3', '--threads', '1,2', '--backward'], { encoding: 'utf8', maxBuffer: 1 << 24 });
  if (r.status !== 0) throw new Error(`time_reference.py failed: ${r.stderr.trim().split('\n').pop()}`);
  const j = JSON.parse(r.stdout.trim().split('\n').pop()!);
  return { forward: j.best_forward_ms, backward: j.best_forward_backward_ms, threads: j.threads_best_forward, torch: j.torch };
}

export async function familyBench(report: Report, sgemm: () => Promise<number>): Promise<void> {
  console.log(`\nModel families: random ${PRESET} (${(Object.values(weightShapes(cfg)).reduce((s, sh) => s + sh.reduce((p, q) => p * q, 1), 0) / 1e9).toFixed(2)} B parameters), batch 1, T=${T}\n`);
  const dir = benchModelFolder();
  const W = weightBytes();
  const load = JSON.parse(execFileSync(process.execPath, [fileURLToPath(import.meta.url), '--load-rss', dir], { encoding: 'utf8' }).trim().split('\n').pop()!);
  report(`${PRESET} loading BF16: peak RSS / fp32 weights`, (load.peak - load.baseline) / W, '<=', 1.2,
    `peak ${MiB(load.peak)} (node baseline ${MiB(load.baseline)}), fp32 weights ${MiB(W)}, ${(load.ms / 1000).toFixed(1)} s`);

  const run = JSON.parse(execFileSync(process.execPath, [fileURLToPath(import.meta.url), '--run', dir], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'] }).trim().split('\n').pop()!);
  const peak = await sgemm();
  const gflops = forwardFlops(cfg, T) / (run.fwd * 1e6);
  // The sgemm peak is measured again after the forwards, in this process: the better of the child's and this one's.
  const best = Math.max(peak, run.peak);
  report(`${PRESET} T=${T} forward GFLOP/s / sgemm peak`, Math.min(gflops / best, 1), '>=', 0.6, `${run.fwd.toFixed(0)} ms, ${gflops.toFixed(1)} GFLOP/s; peak ${best.toFixed(1)} GFLOP/s`);
  report(`${PRESET} T=${T} forward+backward / forward`, run.grad / run.fwd, '<=', 2.5, `${run.grad.toFixed(0)} ms`);
  report(`${PRESET} forward peak RSS / (fp32 W + activations)`, (run.rss - run.baseline) / (W + run.activations), '<=', 1.2,
    `peak ${MiB(run.rss)} (baseline ${MiB(run.baseline)}); weights ${MiB(W)}; activations ${MiB(run.activations)}`);
  console.log(`${''.padEnd(44)} with forward+backward runs too: ${((run.gradRss - run.baseline) / (W + run.activations)).toFixed(3)} (peak ${MiB(run.gradRss)}; each compiled graph keeps its own ONNX Runtime memory arena)`);
  const torch = torchTimes(dir);
  if (!torch) {
    console.log(`${''.padEnd(44)} PyTorch comparison skipped: /usr/bin/python3 with torch is not installed (apt-get install python3-torch libopenblas0-pthread)`);
    return;
  }
  report(`${PRESET} forward: Lantern / PyTorch eager`, run.fwd / torch.forward, '<=', 1.0, `PyTorch ${torch.torch}: ${torch.forward.toFixed(0)} ms at ${torch.threads} thread(s)`);
  report(`${PRESET} forward+backward: Lantern / PyTorch`, run.grad / torch.backward, '<=', 0.9, `PyTorch ${torch.backward.toFixed(0)} ms`);
}

/** Child: load the BF16 folder and report the peak resident set. */
async function loadRss(dir: string) {
  const baseline = hwm();
  const t0 = performance.now();
  const model = await loadModel(dir);
  const ms = performance.now() - t0;
  console.log(JSON.stringify({ peak: hwm(), baseline, ms }));
  await model.executor.dropWeights(model.weights);
  process.exit(0);
}

/** Child: forward and forward+backward timings (best of interleaved rounds), the sgemm peak between them, and the peak RSS. */
async function runChild(dir: string) {
  const { sgemmPeak } = await import('./peak.js');
  const baseline = hwm();
  const model = await loadModel(dir);
  const tokens = [randomTokens(T, cfg.dVocab)];
  const ms = { fwd: Infinity, grad: Infinity };
  let peak = 0;
  await model.run(tokens);
  await model.run(tokens);
  // Holding the model and running forwards; the gradient graph adds its own ONNX Runtime arena.
  const forwardRss = hwm();
  await model.gradients(tokens, objectives.logprob(T - 1, 0));
  for (let round = 0; round < 3; round++) {
    peak = Math.max(peak, (await sgemmPeak()).asInput);
    let t0 = performance.now();
    await model.run(tokens);
    ms.fwd = Math.min(ms.fwd, performance.now() - t0);
    t0 = performance.now();
    await model.gradients(tokens, objectives.logprob(T - 1, 0));
    ms.grad = Math.min(ms.grad, performance.now() - t0);
  }
  // Activations: every hook's tensor at T (what a full cache holds) plus the logits.
  const activations = 4 * (T * cfg.dVocab + [...model.hookShapes].filter(([n]) => !OPTIONAL_HOOKS.test(n)).reduce((sum, [, shape]) => sum + shape.reduce((p: number, d) => p * (d === 'batch' ? 1 : d === 'seq' ? T : (d as number)), 1), 0));
  console.log(JSON.stringify({ ...ms, peak, rss: forwardRss, gradRss: hwm(), baseline, activations }));
  process.exit(0);
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const [mode, dir] = process.argv.slice(2);
  if (mode === '--write') {
    writeRandomModel(dir, cfg, { seed: 1, dtype: 'BF16' });
    process.exit(0);
  }
  if (mode === '--load-rss') await loadRss(dir);
  if (mode === '--run') await runChild(dir);
}
