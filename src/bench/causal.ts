/**
 * The causal-abstraction bars (`npm run bench -- --causal`), ratios measured in this run on a
 * random GPT-2-small-shaped model:
 *   - interchange interventions (a 16-dimensional subspace of blocks.6.hook_resid_pre at the last
 *     token) over 1,000 base/source pairs of 16-token prompts drawn from 100 prompts: one pair per
 *     run / batched (64 pairs per run), >= 5. The one-pair-at-a-time rate is measured on the first
 *     100 pairs (the same code path with batch size 1) and compared per pair.
 *   - one DAS training step (rotation graph, forward + backward of the bases with the interchange,
 *     the rotation's backward; k = 16) over 32 pairs / a plain forward of the same 32 bases, <= 2.5.
 */
import { GPT2_SMALL } from '../models/random.js';
import { Rng } from '../rng.js';
import { interchange } from '../methods/causal-abstraction/interchange.js';
import { dasGradient } from '../methods/causal-abstraction/das.js';
import type { RotationParams } from '../methods/causal-abstraction/rotation.js';
import { randomModel, randomTokens } from './common.js';

type Report = (name: string, value: number, op: '>=' | '<=', bar: number, detail: string) => void;

export async function causalBench(report: Report): Promise<void> {
  const model = await randomModel(GPT2_SMALL);
  const rng = new Rng(0);
  const T = 16;
  const prompts = Array.from({ length: 100 }, (_, i) => randomTokens(T, GPT2_SMALL.dVocab, i + 1));
  const pairs = Array.from({ length: 1000 }, () => ({ base: prompts[rng.int(100)], sources: [prompts[rng.int(100)]] }));
  const dim = GPT2_SMALL.dModel;
  const k = 16;
  const hook = 'blocks.6.hook_resid_pre';
  const subspace = { basis: Array.from({ length: k * dim }, () => rng.normal()), k, dim };
  const interventions = [{ hook, positions: [-1], subspace }];
  await interchange(model, { pairs: pairs.slice(0, 64), interventions, batchSize: 64 });
  await interchange(model, { pairs: pairs.slice(0, 2), interventions, batchSize: 1 });
  let t0 = performance.now();
  await interchange(model, { pairs, interventions, batchSize: 64 });
  const batched = (performance.now() - t0) / pairs.length;
  t0 = performance.now();
  await interchange(model, { pairs: pairs.slice(0, 100), interventions, batchSize: 1 });
  const single = (performance.now() - t0) / 100;
  report('causal: interchange one pair at a time / batched', single / batched, '>=', 5,
    `per pair: ${single.toFixed(1)} ms alone, ${batched.toFixed(2)} ms batched (1,000 pairs, 64 per run, T=${T})`);

  const n = 32;
  const rows = prompts.slice(0, n);
  const params: RotationParams = { dim, k, v: Float64Array.from({ length: k * dim }, () => rng.normal()), boundary: 1e6, temperature: 1 };
  const x = Float32Array.from({ length: n * dim }, () => rng.normal());
  const s = Float32Array.from({ length: n * dim }, () => rng.normal());
  const answers = rows.map((r) => r[0]);
  const step = () => dasGradient(model, { hook, position: -1 }, params, rows, x, s, answers);
  const forward = () => model.runWithHooks(rows, { logitPositions: [T - 1] });
  await step();
  await forward();
  let stepMs = Infinity;
  let fwdMs = Infinity;
  for (let round = 0; round < 5; round++) {
    t0 = performance.now();
    await forward();
    fwdMs = Math.min(fwdMs, performance.now() - t0);
    t0 = performance.now();
    await step();
    stepMs = Math.min(stepMs, performance.now() - t0);
  }
  report('causal: DAS training step / forward', stepMs / fwdMs, '<=', 2.5,
    `${n} x ${T} tokens, k=${k} at ${hook}: step ${stepMs.toFixed(1)} ms, forward ${fwdMs.toFixed(1)} ms`);
  await model.executor.dropWeights(model.weights);
}
