/**
 * `npm run bench`: the engine's speed and memory bars, each a ratio of two things measured in
 * this same run on this machine (never an absolute time):
 *   - forward GFLOP/s over the machine's sgemm peak (a plain ORT MatMul 512x768x3072), >= 0.60
 *   - runWithCache(every hook) / forward, <= 1.15
 *   - forward+backward to the embeddings / forward, <= 2.5
 *   - peak RSS holding GPT-2 small / (1.5 x fp32 weight bytes + activations), <= 1 (child process)
 * on a random GPT-2-small-shaped model (124M), batch 1, T = 128 and 512.
 */
import { execFileSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { Graph } from '../engine/graph/ir.js';
import { Tensor } from '../engine/tensor.js';
import { defaultExecutor } from '../engine/runtime/executor.js';
import { objectives } from '../models/hooked.js';
import { GPT2_SMALL } from '../models/random.js';
import { best, forwardFlops, randomModel, randomTokens } from './common.js';

interface Row { name: string; value: number; bar: string; ok: boolean; detail: string }
const rows: Row[] = [];
const report = (name: string, value: number, op: '>=' | '<=', bar: number, detail: string) => {
  rows.push({ name, value, bar: `${op} ${bar}`, ok: op === '>=' ? value >= bar : value <= bar, detail });
  console.log(`${name.padEnd(44)} ${value.toFixed(3).padStart(8)}  (bar ${op} ${bar})  ${detail}`);
};

async function sgemmPeak(): Promise<number> {
  const ex = defaultExecutor();
  const [M, K, N] = [512, 768, 3072];
  const build = () => {
    const g = new Graph();
    g.output('y', g.matmul(g.input('a', 'float32', [M, K]), g.input('b', 'float32', [K, N])));
    return g;
  };
  const a = Tensor.f32(new Float32Array(M * K).fill(0.01), [M, K]);
  const w = await ex.registerWeights({ b: Tensor.f32(new Float32Array(K * N).fill(0.02), [K, N]) });
  const ms = await best(() => ex.run('bench:sgemm', build, { a }, { weights: [w] }), 20, 3);
  await ex.dropWeights(w);
  return (2 * M * K * N) / (ms * 1e6);
}

async function main() {
  if (process.argv[2] === '--memory') return memoryChild(Number(process.argv[3]));
  console.log('Lantern engine benchmark (random GPT-2-small shape, batch 1)\n');
  const peak = await sgemmPeak();
  console.log(`sgemm peak: ORT MatMul 512x768x3072 = ${peak.toFixed(1)} GFLOP/s\n`);
  const model = await randomModel(GPT2_SMALL);
  for (const T of [128, 512]) {
    const tokens = [randomTokens(T, GPT2_SMALL.dVocab)];
    const fwd = await best(() => model.run(tokens), 5, 2);
    const gflops = forwardFlops(GPT2_SMALL, T) / (fwd * 1e6);
    report(`T=${T} forward GFLOP/s / sgemm peak`, gflops / peak, '>=', 0.6, `${fwd.toFixed(1)} ms, ${gflops.toFixed(1)} GFLOP/s`);
    const cached = await best(() => model.runWithCache(tokens), 3, 1);
    report(`T=${T} runWithCache(all hooks) / forward`, cached / fwd, '<=', 1.15, `${cached.toFixed(1)} ms`);
    const grad = await best(() => model.gradients(tokens, objectives.logprob(T - 1, 0)), 3, 1);
    report(`T=${T} forward+backward to embeddings / forward`, grad / fwd, '<=', 2.5, `${grad.toFixed(1)} ms`);
  }
  for (const T of [128, 512]) {
    const out = execFileSync(process.execPath, [fileURLToPath(import.meta.url), '--memory', String(T)], { encoding: 'utf8' });
    const m = JSON.parse(out.trim().split('\n').pop()!);
    report(`T=${T} peak RSS / (1.5 W + activations)`, m.peak / (1.5 * m.weights + m.activations), '<=', 1,
      `peak ${(m.peak / 2 ** 20).toFixed(0)} MiB; W ${(m.weights / 2 ** 20).toFixed(0)} MiB; activations ${(m.activations / 2 ** 20).toFixed(0)} MiB; node baseline ${(m.baseline / 2 ** 20).toFixed(0)} MiB`);
  }
  const failed = rows.filter((r) => !r.ok);
  console.log(`\n${rows.length - failed.length} of ${rows.length} bars met${failed.length ? `; missed: ${failed.map((r) => r.name).join('; ')}` : ''}`);
  process.exit(0);
}

/** In a fresh process: load GPT-2 small, run a forward and report the peak resident set. */
async function memoryChild(T: number) {
  const { weightBytes } = await import('./common.js');
  const fs = await import('node:fs');
  const hwm = () => Number(/VmHWM:\s+(\d+) kB/.exec(fs.readFileSync('/proc/self/status', 'utf8'))![1]) * 1024;
  const baseline = hwm();
  const model = await randomModel(GPT2_SMALL);
  const tokens = [randomTokens(T, GPT2_SMALL.dVocab)];
  const logits = await model.run(tokens);
  await model.run(tokens);
  // Activations a forward must hold at once: the logits it returns plus one block's working set
  // (attention scores and pattern, the MLP hidden layer, a few residual-sized tensors).
  const { dModel: D, dMlp: F, nHeads: H } = GPT2_SMALL;
  const activations = 4 * (logits.size + 2 * H * T * T + 2 * T * F + 8 * T * D);
  console.log(JSON.stringify({ peak: hwm(), baseline, weights: weightBytes(GPT2_SMALL), activations }));
  process.exit(0);
}

await main();
