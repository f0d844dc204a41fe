/**
 * `npm run bench`: the engine's speed and memory bars, each a ratio of two things measured in
 * this same run on this machine (never an absolute time):
 *   - forward GFLOP/s over the machine's sgemm peak (a plain ORT MatMul 512x768x3072), >= 0.60
 *   - runWithCache(every hook) / forward, <= 1.15
 *   - forward+backward to the embeddings / forward, <= 2.5
 *   - peak RSS holding GPT-2 small / (1.5 x fp32 weight bytes + activations), <= 1 (child process;
 *     activations = every hook activation of the forward plus the logits)
 * on a random GPT-2-small-shaped model (124M), batch 1, T = 128 and 512; and the methods' batching:
 *   - T=64: IG, 50 steps batched (default batch size) / 50 single forward+backward passes, <= 0.5
 *   - T=64: leave-one-out (occlusion) batched (default batch size) / 64 single masked forwards, <= 0.3
 *     (the single passes go through the very code path of the batched ones, with batch size 1;
 *     the masked forwards run the whole prompt, without the batched path's prefix reuse)
 *   - T=16: one-at-a-time / batched residual-stream activation patching (12 x 16 runs), >= 5
 *   - T=16: attribution patching of every head / one forward, <= 4
 * the head and neuron bars (heads.ts: detectors over all heads / forwards <= 1.3; neuron statistics'
 * memory over 200k / 50k tokens <= 1.25),
 * representations (representations.ts): harvesting one hook / batched forwards (tokens/s), >= 0.8,
 * and a logistic probe fit on 10,000 x 768 / a forward over 10,000 prompts, <= 1;
 * steering (steering.ts): generation with a vector added at one layer / without, <= 1.1;
 * feature dashboards (features.ts): dashboards / forwards + encodes over 200k tokens, <= 1.5, and
 * peak RSS over 1M / 200k tokens, <= 1.25,
 * the SAE training step (sae.ts, `--sae`): d_in 768, d_sae 24,576, batch 4,096 in GFLOP/s / sgemm peak, >= 0.5,
 * causal abstraction (causal.ts): interchange one pair at a time / batched, >= 5, and a DAS training
 * step / a forward, <= 2.5;
 * dataset-scale jobs on a queue (jobs.ts, `--jobs`, needs redis-server): 1 / 2 single-threaded workers
 * >= 1.7, 2 workers / in-process with the same threads <= 1.05, per-shard overhead <= 50 ms;
 * and black-box attribution over HTTP (backends.ts):
 *   - word leave-one-out + faithfulness over 50 words, sequential / concurrency 4 + cache, >= 2
 * then the model families' bars (family.ts) and generation's (generation.ts).
 */
import { execFileSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { Graph } from '../engine/graph/ir.js';
import { Tensor } from '../engine/tensor.js';
import { defaultExecutor } from '../engine/runtime/executor.js';
import { GPT2_SMALL, randomWeights } from '../models/random.js';
import { HookedTransformer, objectives } from '../models/hooked.js';
import { modelInputs, positionFeeds } from '../models/inputs.js';
import { buildForward, weightShapes, OPTIONAL_HOOKS } from '../models/forward.js';
import { best, forwardFlops, randomModel, randomTokens } from './common.js';
import { integratedGradients, occlusion, resolveTarget } from '../methods/attribution/index.js';
import { defaultBatchSize, evaluate, tokenEmbeddings } from '../methods/attribution/common.js';
import { activationPatching, attributionPatching } from '../methods/patching/index.js';
import { backendBench } from './backends.js';
import { familyBench } from './family.js';
import { generationBench } from './generation.js';
import { headsBench, neuronMemoryChild } from './heads.js';
import { sgemmPeak } from './peak.js';

interface Row { name: string; value: number; bar: string; ok: boolean; detail: string }
const rows: Row[] = [];
const report = (name: string, value: number, op: '>=' | '<=', bar: number, detail: string) => {
  rows.push({ name, value, bar: `${op} ${bar}`, ok: op === '>=' ? value >= bar : value <= bar, detail });
  console.log(`${name.padEnd(44)} ${value.toFixed(3).padStart(8)}  (bar ${op} ${bar})  ${detail}`);
};

/**
 * Why weights are graph inputs: one GPT-2-small block (T=128) with its weights fed as inputs vs
 * baked in as initializers (which lets ORT prepack them, but needs one compiled graph per layer
 * and per weight set, and a second copy of every weight inside ORT).
 */
async function weightsAsInputs(): Promise<void> {
  const cfg = { ...GPT2_SMALL, nLayers: 1, dVocab: 256 };
  const raw = randomWeights(cfg, 0);
  const shapes = weightShapes(cfg);
  const tensors = () => Object.fromEntries(Object.entries(raw).map(([n, d]) => [n, Tensor.f32(d.slice(), shapes[n])]));
  const model = await HookedTransformer.create(cfg, tensors(), undefined, 'bench');
  const T = 128;
  const feeds = { tokens: Tensor.i64(randomTokens(T, 256), [1, T]), ...positionFeeds(T) };
  const build = (inline: boolean) => () => {
    const g = new Graph();
    g.output('logits', buildForward(g, cfg, modelInputs(g)).logits);
    if (inline) {
      for (const v of g.inputs.filter((v) => raw[v.name])) g.constants.push({ value: v, data: raw[v.name] });
      g.inputs.splice(0, g.inputs.length, ...g.inputs.filter((v) => !raw[v.name]));
    }
    return g;
  };
  const ex = defaultExecutor();
  const asInputs = await best(() => ex.run('bench:block-inputs', build(false), feeds, { weights: [model.weights] }), 20, 3);
  const asInit = await best(() => ex.run('bench:block-init', build(true), feeds), 20, 3);
  console.log(`one block, T=${T}: weights as inputs ${asInputs.toFixed(2)} ms, as initializers ${asInit.toFixed(2)} ms (ratio ${(asInputs / asInit).toFixed(3)})\n`);
}

/**
 * What onnxruntime-node's output copy costs: the binding writes every output into a new
 * ArrayBuffer, and on this VM fresh pages cost several times a write into memory already touched.
 * The same copy of the cached activations' sizes, into new buffers vs into the same buffers again.
 */
function freshMemoryCost(sizes: number[]): { mb: number; fresh: number; reused: number } {
  const source = new Float32Array(Math.max(...sizes)).fill(1.5);
  let fresh = Infinity;
  let reused = Infinity;
  for (let round = 0; round < 3; round++) {
    let t0 = performance.now();
    const buffers = sizes.map((n) => { const b = new Float32Array(n); b.set(source.subarray(0, n)); return b; });
    fresh = Math.min(fresh, performance.now() - t0);
    t0 = performance.now();
    for (const b of buffers) b.set(source.subarray(0, b.length));
    reused = Math.min(reused, performance.now() - t0);
  }
  return { mb: sizes.reduce((a, b) => a + b, 0) * 4 / 2 ** 20, fresh, reused };
}

/** Interleaved rounds, best of each, after one warm-up call of each: background load then hits every variant alike. */
async function bestOf<K extends string>(runs: Record<K, () => Promise<unknown>>, rounds: number): Promise<Record<K, number>> {
  const keys = Object.keys(runs) as K[];
  const ms = Object.fromEntries(keys.map((k) => [k, Infinity])) as Record<K, number>;
  for (const k of keys) await runs[k]();
  for (let round = 0; round < rounds; round++) {
    for (const k of keys) {
      const t0 = performance.now();
      await runs[k]();
      ms[k] = Math.min(ms[k], performance.now() - t0);
    }
  }
  return ms;
}

/** The methods' batching: batched runs vs the same work one example at a time (a sample of it, scaled). */
async function methodBench(model: HookedTransformer): Promise<void> {
  const { dModel: d, dVocab: V, nLayers: L } = GPT2_SMALL;
  const T = 64;
  const prompt = randomTokens(T, V, 2);
  const t = await resolveTarget(model, prompt, {});
  const x = await tokenEmbeddings(model, prompt);
  // The unbatched baselines run the batched methods' own evaluation (attribution/common.ts
  // `evaluate`: embeddings replaced at hook_embed, logits only where the target reads them) with
  // batch size 1. Leave-one-out's baseline is the plain masked forward of the whole prompt:
  // reusing the unmasked prefix (which `evaluate` would do even one example at a time) is part of
  // what the batched method does and the one-at-a-time baseline does not. Neither side counts
  // resolving the target (one run of the prompt, which every method makes first); leave-one-out
  // continues that run's keys and values, and the line after it shows the ratio had it run the
  // prompt again.
  const scaled = (n: number) => Array.from({ length: n }, (_, i) => ({ row: 0, embed: x.map((v) => (v * (i + 1)) / n) }));
  const masked = (n: number) => Array.from({ length: n }, (_, i) => ({ row: 0, embed: x.slice().fill(0, i * d, (i + 1) * d) }));
  const a = await bestOf({
    ig: () => integratedGradients(model, t, { steps: 50 }),
    grads10: () => evaluate(model, t.input, t.rows, scaled(10), { grad: true, batchSize: 1 }),
    loo: () => occlusion(model, t),
    looOwnPrompt: () => occlusion(model, { ...t, promptCache: undefined }),
    masked16: () => evaluate(model, t.input, t.rows, masked(16), { grad: false, batchSize: 1, reusePrefix: false }),
  }, 2);
  report(`T=${T} IG 50 steps batched / 50 single fwd+bwd`, a.ig / (5 * a.grads10), '<=', 0.5,
    `batchSize ${defaultBatchSize(T)} (default): ${a.ig.toFixed(0)} ms; single: 10 timed (${a.grads10.toFixed(0)} ms) x 5`);
  report(`T=${T} leave-one-out batched / 64 single`, a.loo / (4 * a.masked16), '<=', 0.3,
    `occlusion, default batch size: ${a.loo.toFixed(0)} ms; single: 16 masked runs timed (${a.masked16.toFixed(0)} ms) x 4`);
  console.log(`${''.padEnd(44)} running the prompt again instead of continuing the target's run: ${(a.looOwnPrompt / (4 * a.masked16)).toFixed(3)} (${a.looOwnPrompt.toFixed(0)} ms)`);

  const S = 16;
  const pair = { clean: randomTokens(S, V, 3), corrupt: randomTokens(S, V, 4), answer: 100, wrong: 200 };
  const hooks = Array.from({ length: L }, (_, l) => `blocks.${l}.hook_resid_pre`);
  const { cache } = await model.runWithCache([pair.clean], hooks);
  const p = await bestOf({
    sweep: () => activationPatching(model, { ...pair, sweep: 'resid' }),
    single24: async () => {
      for (let k = 0; k < 24; k++) {
        const h = hooks[k % L];
        await model.runWithHooks([pair.corrupt], { interventions: [{ hook: h, op: 'replace', value: cache.get(h), positions: [(k * 7) % S] }] });
      }
    },
    attrib: () => attributionPatching(model, { ...pair, sweep: 'heads' }),
    fwd: () => model.run([pair.corrupt]),
  }, 3);
  report(`T=${S} resid patching one-at-a-time / batched`, (8 * p.single24) / p.sweep, '>=', 5,
    `batched (batchSize 64) ${p.sweep.toFixed(0)} ms; one-at-a-time: 24 of ${L * S} runWithHooks timed (${p.single24.toFixed(0)} ms) x 8, clean cache not counted`);
  report(`T=${S} attribution patching (all heads) / forward`, p.attrib / p.fwd, '<=', 4,
    `${p.attrib.toFixed(1)} ms; forward ${p.fwd.toFixed(1)} ms`);
}

async function main() {
  if (process.argv[2] === '--memory') return memoryChild(Number(process.argv[3]));
  if (process.argv[2] === '--job-memory') { // npm run bench -- --job-memory: the Workbench's RSS around a cancelled job
    const { jobMemory, describeJobMemory } = await import('./job-memory.js');
    console.log(describeJobMemory(await jobMemory()));
    process.exit(0);
  }
  if (process.argv[2] === '--methods') { // only the methods' batching bars: npm run bench -- --methods
    await methodBench(await randomModel(GPT2_SMALL));
    process.exit(0);
  }
  if (process.argv[2] === '--generation') { // only the generation bars: npm run bench -- --generation [new tokens on the 1B shape]
    await generationBench(report, { newTokens1b: process.argv[3] ? Number(process.argv[3]) : undefined });
    process.exit(0);
  }
  if (process.argv[2] === '--neuron-memory') return neuronMemoryChild(Number(process.argv[3]));
  if (process.argv[2] === '--heads') { // only the head and neuron bars: npm run bench -- --heads
    await headsBench(report, fileURLToPath(import.meta.url));
    process.exit(0);
  }
  if (process.argv[2] === '--features-memory') return (await import('./features.js')).featuresMemoryChild(Number(process.argv[3]));
  if (process.argv[2] === '--features') { // only the feature-dashboard bars: npm run bench -- --features [tokens]
    await (await import('./features.js')).featuresBench(report, fileURLToPath(import.meta.url), process.argv[3] ? Number(process.argv[3]) : undefined);
    process.exit(0);
  }
  if (process.argv[2] === '--representations') { // npm run bench -- --representations [prompts]
    const { representationsBench } = await import('./representations.js');
    await representationsBench(report, process.argv[3] ? Number(process.argv[3]) : undefined);
    process.exit(0);
  }
  if (process.argv[2] === '--steering') { // npm run bench -- --steering
    await (await import('./steering.js')).steeringBench(report);
    process.exit(0);
  }
  if (process.argv[2] === '--sae') { // npm run bench -- --sae [architecture] [d_in d_sae batch]: the SAE training-step bar
    const { saeBench } = await import('./sae.js');
    const [architecture, dIn, dSae, batch] = process.argv.slice(3);
    await saeBench(report, { architecture: (architecture || undefined) as any, dIn: dIn ? Number(dIn) : undefined, dSae: dSae ? Number(dSae) : undefined, batch: batch ? Number(batch) : undefined });
    process.exit(0);
  }
  if (process.argv[2] === '--causal') { // only the causal-abstraction bars: npm run bench -- --causal
    const { causalBench } = await import('./causal.js');
    await causalBench(report);
    process.exit(0);
  }
  if (process.argv[2] === '--workbench') { // the Workbench in Chromium: npm run bench -- --workbench
    const { workbenchBench } = await import('./workbench.js');
    await workbenchBench(report);
    process.exit(0);
  }
  if (process.argv[2] === '--jobs') { // the job queue's bars (needs redis-server): npm run bench -- --jobs [prompts-per-shard]
    const { jobsBench } = await import('./jobs.js');
    await jobsBench(report, process.argv[3] ? Number(process.argv[3]) : undefined);
    process.exit(0);
  }
  if (process.argv[2] === '--families') { // only the model-families bars: npm run bench -- --families
    await familyBench(report, async () => (await sgemmPeak()).asInput);
    process.exit(0);
  }
  console.log('Lantern engine benchmark (random GPT-2-small shape, batch 1)\n');
  const peaks = await sgemmPeak();
  const peak = peaks.asInput;
  console.log(`sgemm peak: ORT MatMul 512x768x3072 = ${peak.toFixed(1)} GFLOP/s with B as an input; ${peaks.prepacked.toFixed(1)} GFLOP/s with B prepacked\n`);
  await weightsAsInputs();
  const model = await randomModel(GPT2_SMALL);
  for (const T of [128, 512]) {
    const tokens = [randomTokens(T, GPT2_SMALL.dVocab)];
    // Interleaved rounds, best of each: background load then hits every variant alike.
    const runs = { fwd: () => model.run(tokens), cache: () => model.runWithCache(tokens), grad: () => model.gradients(tokens, objectives.logprob(T - 1, 0)) };
    const bestMs = { fwd: Infinity, cache: Infinity, grad: Infinity };
    for (const fn of Object.values(runs)) await fn();
    for (let round = 0; round < (T === 128 ? 8 : 4); round++) {
      for (const [k, fn] of Object.entries(runs) as [keyof typeof runs, () => Promise<unknown>][]) {
        const t0 = performance.now();
        await fn();
        bestMs[k] = Math.min(bestMs[k], performance.now() - t0);
      }
    }
    const gflops = forwardFlops(GPT2_SMALL, T) / (bestMs.fwd * 1e6);
    report(`T=${T} forward GFLOP/s / sgemm peak`, gflops / peak, '>=', 0.6,
      `${bestMs.fwd.toFixed(1)} ms, ${gflops.toFixed(1)} GFLOP/s (${(gflops / peaks.prepacked).toFixed(3)} of the prepacked peak)`);
    report(`T=${T} runWithCache(all hooks) / forward`, bestMs.cache / bestMs.fwd, '<=', 1.15, `${bestMs.cache.toFixed(1)} ms`);
    const mem = freshMemoryCost((await model.runWithCache(tokens)).cache.entries().map(([, t]) => t.size));
    console.log(`${''.padEnd(44)} its outputs' ${mem.mb.toFixed(0)} MB written into new buffers: ${mem.fresh.toFixed(1)} ms; into buffers already touched: ${mem.reused.toFixed(1)} ms`);
    report(`T=${T} forward+backward to embeddings / forward`, bestMs.grad / bestMs.fwd, '<=', 2.5, `${bestMs.grad.toFixed(1)} ms`);
  }
  await methodBench(model);
  await backendBench(report);
  for (const T of [128, 512]) {
    const out = execFileSync(process.execPath, ['--expose-gc', fileURLToPath(import.meta.url), '--memory', String(T)], { encoding: 'utf8' });
    const m = JSON.parse(out.trim().split('\n').pop()!);
    report(`T=${T} peak RSS / (1.5 W + activations)`, m.peak / (1.5 * m.weights + m.activations), '<=', 1,
      `peak ${(m.peak / 2 ** 20).toFixed(0)} MiB; W ${(m.weights / 2 ** 20).toFixed(0)} MiB; activations ${(m.activations / 2 ** 20).toFixed(0)} MiB; node baseline ${(m.baseline / 2 ** 20).toFixed(0)} MiB`);
    console.log(`${''.padEnd(44)} stricter: peak / (1.5 W + logits + one block's working set ${(m.workingSet / 2 ** 20).toFixed(0)} MiB) = ${(m.peak / (1.5 * m.weights + m.workingSet)).toFixed(3)}`);
  }
  await familyBench(report, async () => (await sgemmPeak()).asInput);
  await generationBench(report);
  await headsBench(report, fileURLToPath(import.meta.url));
  await (await import('./representations.js')).representationsBench(report);
  await (await import('./steering.js')).steeringBench(report);
  await (await import('./features.js')).featuresBench(report, fileURLToPath(import.meta.url));
  await (await import('./sae.js')).saeBench(report);
  await (await import('./causal.js')).causalBench(report);
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
  // Two forwards, dropping the first result before the second (a caller holding both would
  // hold two sets of logits).
  let logits = await model.run(tokens);
  const size = logits.size;
  logits = undefined as never;
  (globalThis as { gc?: () => void }).gc?.();
  logits = await model.run(tokens);
  // "Activations": every activation of the forward (the tensor at each hook point, as a
  // TransformerLens cache holds them) plus the logits. The working set alone (logits plus one
  // block's tensors) is reported too, as the stricter yardstick.
  const activations = 4 * (size + [...model.hookShapes].filter(([n]) => !OPTIONAL_HOOKS.test(n))
    .reduce((sum, [, shape]) => sum + shape.reduce((p: number, d) => p * (d === 'batch' ? 1 : d === 'seq' ? T : (d as number)), 1), 0));
  const { dModel: D, dMlp: F, nHeads: H } = GPT2_SMALL;
  const workingSet = 4 * (size + 2 * H * T * T + 2 * T * F + 8 * T * D);
  console.log(JSON.stringify({ peak: hwm(), baseline, weights: weightBytes(GPT2_SMALL), activations, workingSet }));
  process.exit(0);
}

await main();
