/**
 * The steering bar on a random GPT-2-small-shaped model: greedy generation of 32 tokens after a
 * 32-token prompt with a steering vector added at one layer (every position, every step) / the same
 * generation without it, <= 1.1. Interleaved rounds, best of each, so background load hits both alike.
 */
import { GPT2_SMALL } from '../models/random.js';
import { generate } from '../models/generate.js';
import { Rng } from '../rng.js';
import { randomModel, randomTokens } from './common.js';
import { steeringInterventions, SteeringVector } from '../methods/steering/index.js';

type Report = (name: string, value: number, op: '>=' | '<=', bar: number, detail: string) => void;

export async function steeringBench(report: Report, rounds = 4): Promise<void> {
  const model = await randomModel(GPT2_SMALL);
  const prompt = randomTokens(32, GPT2_SMALL.dVocab, 5);
  const rng = new Rng(3);
  const hook = 'blocks.6.hook_resid_pre';
  const vector: SteeringVector = {
    format: 'lantern-steering-vector', method: 'caa', model: 'bench', hook, dModel: GPT2_SMALL.dModel,
    rows: [Array.from({ length: GPT2_SMALL.dModel }, () => rng.normal())], datasetHash: '', settings: {},
  };
  const opts = { maxNewTokens: 32, temperature: 0, stopTokens: [] };
  const steered = { ...opts, ...steeringInterventions(model, vector, 4) };
  const runs = { plain: () => generate(model, prompt, opts), steered: () => generate(model, prompt, steered) };
  const best = { plain: Infinity, steered: Infinity };
  for (const fn of Object.values(runs)) await fn();
  for (let r = 0; r < rounds; r++) {
    for (const [k, fn] of Object.entries(runs) as [keyof typeof runs, () => Promise<unknown>][]) {
      const t0 = performance.now();
      await fn();
      best[k] = Math.min(best[k], performance.now() - t0);
    }
  }
  report('generation steered at 1 layer / plain', best.steered / best.plain, '<=', 1.1,
    `32 new tokens after 32, greedy, KV cache: steered ${best.steered.toFixed(0)} ms, plain ${best.plain.toFixed(0)} ms (best of ${rounds})`);
}
