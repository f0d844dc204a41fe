/**
 * Generation bars (`npm run bench -- --generation`), each a ratio measured in this run:
 *   - bundled model, batch 1, 128 new tokens after a 128-token prompt (its context is 256):
 *     recomputation / cached generation, >= 5, where recomputation is what generation did before
 *     it had a cache: a plain forward of the whole sequence (logits at every position) per token.
 *     The ratio against `useCache: false` (the whole sequence per step, logits at its last
 *     position only) is printed beside it.
 *   - random Llama-3.2-1B shape, batch 1, after a 256-token prompt: decode tokens/s over the
 *     memory-bound limit (memory bandwidth measured here / fp32 weight bytes: every step reads
 *     every weight once), >= 0.6
 *   - the same model, 8 prompts of different lengths generated together / one prompt, tokens/s, >= 3
 *     (beside it, the same ratio inside ONNX Runtime's session.run alone: its ceiling)
 * Each decode line also prints where a step's time goes: inside ONNX Runtime's session.run vs
 * everything else (feeds, messages to the compute thread, sampling, decoding text).
 */
import { Graph } from '../engine/graph/ir.js';
import { Tensor } from '../engine/tensor.js';
import { defaultExecutor } from '../engine/runtime/executor.js';
import { loadModel } from '../models/load.js';
import { architectureFor } from '../models/config.js';
import { generateStream, GenerateOptions } from '../models/generate.js';
import { HookedTransformer } from '../models/hooked.js';
import { BUNDLED_MODEL } from '../paths.js';
import { randomTokens, weightBytes } from './common.js';
import { benchModelFolder } from './family.js';

type Report = (name: string, value: number, op: '>=' | '<=', bar: number, detail: string) => void;

interface Timed {
  /** Whole generation, ms. */
  total: number;
  /** From the first generated token to the last: the decode steps only. */
  decode: number;
  /** Tokens generated over all rows after the first step. */
  decoded: number;
  /** ms inside ORT session.run during the decode steps. */
  ortDecode: number;
  steps: number;
}

async function timeGeneration(model: HookedTransformer, prompts: number[][], opts: GenerateOptions): Promise<Timed> {
  const ex = model.executor;
  const t0 = performance.now();
  let first = 0;
  let ort0 = 0;
  let steps = 0;
  let tokens = 0;
  let lastRowToken = -1;
  for await (const c of generateStream(model, prompts, { temperature: 0, stopTokens: [], ...opts })) {
    tokens++;
    if (c.row <= lastRowToken || first === 0) steps++;
    lastRowToken = c.row;
    if (first === 0) {
      first = performance.now();
      ort0 = ex.runMs;
    }
  }
  const end = performance.now();
  return { total: end - t0, decode: end - first, decoded: tokens - prompts.length, ortDecode: ex.runMs - ort0, steps };
}

/**
 * Memory bandwidth, GB/s: the better of a 1 GiB read inside ONNX Runtime (ReduceSum of a
 * registered tensor, on all of its threads, as it reads weights) and a JavaScript memcpy
 * (TypedArray.set, counted as read + write), best of 3 each.
 */
export async function memoryBandwidth(): Promise<{ gbps: number; ort: number; memcpy: number }> {
  const n = 2 ** 28; // 1 GiB of float32
  const ex = defaultExecutor();
  const w = await ex.registerWeights({ big: Tensor.f32(new Float32Array(n).fill(1e-3), [n]) });
  const build = () => {
    const g = new Graph();
    g.output('s', g.reduceSum(g.input('big', 'float32', [n]), [0], false));
    return g;
  };
  let ort = 0;
  for (let i = 0; i < 4; i++) {
    const t0 = performance.now();
    await ex.run('bench:bandwidth', build, {}, { weights: [w] });
    if (i > 0) ort = Math.max(ort, (4 * n) / ((performance.now() - t0) * 1e6));
  }
  await ex.dropWeights(w);
  const m = 2 ** 27;
  const src = new Float32Array(m).fill(1);
  const dst = new Float32Array(m).fill(2);
  let memcpy = 0;
  for (let i = 0; i < 4; i++) {
    const t0 = performance.now();
    dst.set(src);
    if (i > 0) memcpy = Math.max(memcpy, (2 * 4 * m) / ((performance.now() - t0) * 1e6));
  }
  return { gbps: Math.max(ort, memcpy), ort, memcpy };
}

/** Greedy decoding by a forward of the whole sequence per token, as generation ran before it had a key/value cache. */
async function recomputeLikeBefore(model: HookedTransformer, prompt: number[], n: number): Promise<number> {
  const t0 = performance.now();
  const seq = [...prompt];
  const V = model.cfg.dVocab;
  for (let i = 0; i < n; i++) {
    const logits = await model.run([seq]);
    const row = logits.f32.subarray((seq.length - 1) * V, seq.length * V);
    let best = 0;
    for (let j = 1; j < V; j++) if (row[j] > row[best]) best = j;
    seq.push(best);
  }
  return performance.now() - t0;
}

/**
 * How fast ONNX Runtime reads a weight in a one-row product, GB/s of the weight: [1, 2048] times
 * a 2048 x 32768 weight (256 MiB, more than any cache) fed as an input as Lantern feeds weights,
 * stored [in, out] (MatMul) and [out, in] (FusedMatMul with transB, how Llama-style checkpoints
 * store every projection and the tied unembedding): the decode step's ceiling, next to the plain
 * read of `memoryBandwidth`.
 */
export async function oneRowMatmulBandwidth(): Promise<{ inOut: number; outIn: number }> {
  const [K, N] = [2048, 32768];
  const ex = defaultExecutor();
  const w = await ex.registerWeights({ b: Tensor.f32(new Float32Array(K * N).fill(1e-3), [K, N]), bt: Tensor.f32(new Float32Array(K * N).fill(1e-3), [N, K]) });
  const a = Tensor.f32(new Float32Array(K).fill(1), [1, K]);
  const speed = async (transB: boolean) => {
    const build = () => {
      const g = new Graph();
      const x = g.input('a', 'float32', [1, K]);
      g.output('y', transB ? g.matmulTransB(x, g.input('bt', 'float32', [N, K])) : g.matmul(x, g.input('b', 'float32', [K, N])));
      return g;
    };
    let best = Infinity;
    for (let i = 0; i < 12; i++) {
      const t0 = performance.now();
      await ex.run(`bench:one-row-matmul:${transB}`, build, { a }, { weights: [w] });
      if (i > 1) best = Math.min(best, performance.now() - t0);
    }
    return (4 * K * N) / (best * 1e6);
  };
  const out = { inOut: await speed(false), outIn: await speed(true) };
  await ex.dropWeights(w);
  return out;
}

const ms = (x: number) => `${x.toFixed(0)} ms`;
const split = (t: Timed) => `ORT ${(t.ortDecode / (t.steps - 1)).toFixed(1)} ms + other ${((t.decode - t.ortDecode) / (t.steps - 1)).toFixed(1)} ms per decode step`;

export async function generationBench(report: Report, opts: { newTokens1b?: number } = {}): Promise<void> {
  console.log('\nGeneration (greedy, key/value cache)\n');
  const bundled = await loadModel(BUNDLED_MODEL);
  const P = 128;
  const N = 128;
  const prompt = randomTokens(P, bundled.cfg.dVocab, 5);
  await timeGeneration(bundled, [prompt], { maxNewTokens: 4 }); // compiles the prompt's and the step's graphs
  await timeGeneration(bundled, [prompt], { maxNewTokens: 4, useCache: false });
  const cached = await timeGeneration(bundled, [prompt], { maxNewTokens: N });
  await recomputeLikeBefore(bundled, prompt, 2);
  const before = await recomputeLikeBefore(bundled, prompt, N);
  const lastOnly = await timeGeneration(bundled, [prompt], { maxNewTokens: N, useCache: false });
  report(`bundled: ${N} new after ${P}: recompute / cached`, before / cached.total, '>=', 5,
    `cached ${ms(cached.total)} (${(N / cached.total * 1000).toFixed(0)} tok/s; ${split(cached)}); recomputed ${ms(before)}`);
  console.log(`${''.padEnd(44)} against useCache: false (last position's logits only): ${(lastOnly.total / cached.total).toFixed(2)} (${ms(lastOnly.total)})`);
  const prompts8 = Array.from({ length: 8 }, (_, b) => randomTokens(P - 7 * b, bundled.cfg.dVocab, 10 + b));
  await timeGeneration(bundled, prompts8, { maxNewTokens: 4 });
  const one = await timeGeneration(bundled, [prompts8[0]], { maxNewTokens: N });
  const eight = await timeGeneration(bundled, prompts8, { maxNewTokens: N });
  console.log(`${''.padEnd(44)} bundled, 8 prompts together / 1, decode tokens/s: ${((eight.decoded / eight.decode) / (one.decoded / one.decode)).toFixed(2)} (${split(eight)})`);
  await bundled.executor.dropWeights(bundled.weights);
  if (opts.newTokens1b === 0) return;

  const preset = 'llama-3.2-1b';
  const cfg = architectureFor('llama').presets[preset];
  const dir = benchModelFolder();
  // Its tokenizer is GPT-2's, cut to 50,257 of its 128,256 ids: generate token ids only.
  const loaded = await loadModel(dir);
  const model = new HookedTransformer(loaded.cfg, loaded.weights, undefined, loaded.source, loaded.executor);
  const W = weightBytes(cfg);
  const P1 = 256;
  const N1 = opts.newTokens1b ?? 256;
  const p1 = randomTokens(P1, cfg.dVocab, 7);
  const compile0 = performance.now();
  const warm = await timeGeneration(model, [p1], { maxNewTokens: 3 });
  console.log(`${''.padEnd(44)} ${preset}: first generation (compiles the prompt's and the step's graphs): ${ms(performance.now() - compile0)}; its steps after the first ${split(warm)}`);
  const bw = await memoryBandwidth();
  const gemv = await oneRowMatmulBandwidth();
  const single = await timeGeneration(model, [p1], { maxNewTokens: N1 });
  const tps = single.decoded / (single.decode / 1000);
  const limit = (bw.gbps * 1e9) / W;
  report(`${preset} decode tok/s / (bandwidth / weights)`, tps / limit, '>=', 0.6,
    `${tps.toFixed(2)} tok/s over ${N1} new after ${P1}; limit ${limit.toFixed(2)} tok/s = ${bw.gbps.toFixed(1)} GB/s (ORT read ${bw.ort.toFixed(1)}, memcpy ${bw.memcpy.toFixed(1)}) / ${(W / 1e9).toFixed(2)} GB fp32; ${split(single)}`);
  const batch = Array.from({ length: 8 }, (_, b) => randomTokens(P1 - 9 * b, cfg.dVocab, 20 + b));
  const N8 = Math.min(N1, 64);
  const eight1b = await timeGeneration(model, batch, { maxNewTokens: N8 });
  const tps8 = eight1b.decoded / (eight1b.decode / 1000);
  console.log(`${''.padEnd(44)} ONNX Runtime's one-row product reads a weight stored [in, out] at ${gemv.inOut.toFixed(1)} GB/s, [out, in] (this model's layout) at ${gemv.outIn.toFixed(1)} GB/s: at most ${(gemv.outIn * 1e9 / W).toFixed(2)} tok/s`);
  // What ONNX Runtime alone gains from the batch (tokens per ms inside session.run): the ceiling of the ratio above.
  const ortScaling = (eight1b.decoded / eight1b.ortDecode) / (single.decoded / single.ortDecode);
  report(`${preset} 8 prompts together / 1, tok/s`, tps8 / tps, '>=', 3, `${tps8.toFixed(2)} tok/s over ${N8} new each, prompts ${P1 - 63}-${P1} tokens; ${split(eight1b)}; inside ONNX Runtime alone 8 / 1: ${ortScaling.toFixed(2)}`);
  await model.executor.dropWeights(model.weights);
}
