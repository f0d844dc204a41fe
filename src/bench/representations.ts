/**
 * Representation bars on a random GPT-2-small-shaped model, prompts of 64 tokens, batch 32:
 *   - harvesting one hook (last position, streamed to a safetensors file) / plain batched forwards
 *     over the same prompts, in tokens/s, >= 0.8
 *   - fitting a logistic probe (L2 chosen by 5-fold cross-validation) on 10,000 x 768 activations /
 *     one batched forward over 10,000 such prompts, <= 1
 * The forwards are timed on a sample of the prompts (`prompts`, default 256 of the 2,000) and the
 * 10,000-prompt forward is that sample's time per prompt times 10,000: rates, not totals, are compared.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { GPT2_SMALL } from '../models/random.js';
import { Rng } from '../rng.js';
import { randomModel, randomTokens } from './common.js';
import { harvestToFile } from '../methods/representations/activations.js';
import { trainLogistic } from '../methods/representations/probes/fit.js';

type Report = (name: string, value: number, op: '>=' | '<=', bar: number, detail: string) => void;

export async function representationsBench(report: Report, prompts = 256): Promise<void> {
  const model = await randomModel(GPT2_SMALL);
  const T = 64;
  const batch = 32;
  const rows = Array.from({ length: prompts }, (_, i) => randomTokens(T, GPT2_SMALL.dVocab, 100 + i));
  const examples = rows.map((r, i) => ({ text: `prompt ${i}`, label: i % 2 }));
  const hook = 'blocks.6.hook_resid_post';
  const out = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'lantern-bench-')), 'acts.safetensors');
  const forwards = async () => { for (let s = 0; s < prompts; s += batch) await model.run(rows.slice(s, s + batch)); };
  const harvest = () => harvestToFile(model, examples, { out, tokens: rows, hooks: [hook], positions: 'last', batchSize: batch });
  await forwards();
  await harvest();
  let fwd = Infinity;
  let har = Infinity;
  for (let round = 0; round < 2; round++) {
    let t0 = performance.now(); await forwards(); fwd = Math.min(fwd, performance.now() - t0);
    t0 = performance.now(); await harvest(); har = Math.min(har, performance.now() - t0);
  }
  const tokens = prompts * T;
  report(`T=${T} harvest 1 hook / batched forward, tokens/s`, (tokens / har) / (tokens / fwd), '>=', 0.8,
    `${prompts} prompts (a sample of 2,000), batch ${batch}: harvest ${(tokens / har * 1000).toFixed(0)} tok/s, forward ${(tokens / fwd * 1000).toFixed(0)} tok/s`);
  fs.rmSync(path.dirname(out), { recursive: true, force: true });

  const n = 10_000;
  const d = GPT2_SMALL.dModel;
  const rng = new Rng(7);
  const u = Array.from({ length: d }, () => rng.normal() / Math.sqrt(d));
  const y = Float64Array.from({ length: n }, () => (rng.next() < 0.5 ? 1 : 0));
  const x = new Float32Array(n * d);
  for (let i = 0; i < n; i++) for (let j = 0; j < d; j++) x[i * d + j] = rng.normal() + (2 * y[i] - 1) * u[j];
  const t0 = performance.now();
  const probe = trainLogistic({ data: x, rows: n, cols: d }, y);
  const fit = performance.now() - t0;
  const forward10k = (fwd / prompts) * n;
  report('logistic probe fit 10,000 x 768 / forward of 10,000', fit / forward10k, '<=', 1,
    `fit (5-fold CV over ${(probe.settings.lambdas as number[]).length} strengths + final) ${(fit / 1000).toFixed(1)} s; forward ${(forward10k / 1000).toFixed(0)} s (${(fwd / prompts).toFixed(1)} ms/prompt x ${n})`);
}
