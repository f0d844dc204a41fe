/**
 * SAE training bar: one training step (forward, loss, gradients and Adam in one graph) of an SAE
 * with d_in 768, d_sae 24,576 on a batch of 4,096 rows, as achieved GFLOP/s over the machine's
 * sgemm peak measured in the same run; >= 0.5. The step's matmul work is 6 x 2·B·d_in·d_sae: the
 * encoder and decoder forward, and backward the decoder-input, decoder-weight, encoder-weight and
 * encoder-input products (the last for b_dec's gradient, as b_dec is subtracted from the input).
 */
import { Rng } from '../rng.js';
import { SaeTrainer, defaultTrainConfig } from '../methods/sae/train.js';
import type { ActivationSource } from '../methods/sae/source.js';
import type { SaeArchitecture, SaeConfig } from '../methods/sae/sae.js';
import { sgemmPeak } from './peak.js';

type Report = (name: string, value: number, op: '>=' | '<=', bar: number, detail: string) => void;

/** `dims` shrinks the problem (for a quick check of the bench itself); the bar is for the default. */
export async function saeBench(report: Report, opts: { architecture?: SaeArchitecture; dIn?: number; dSae?: number; batch?: number; steps?: number } = {}): Promise<void> {
  const { architecture = 'standard', dIn = 768, dSae = 24_576, batch = 4096, steps = 3 } = opts;
  const rng = new Rng(3);
  const rows = Float32Array.from({ length: batch * dIn }, () => rng.normal());
  // The same rows every time: the bench measures the step, not where activations come from.
  const source: ActivationSource = { dIn, dOut: 0, next: async () => ({ rows: batch, x: rows }), state: () => ({}), restore: () => {} };
  const cfg: SaeConfig = { architecture, dIn, dSae, dOut: dIn, k: 64, applyBDecToInput: true, normalizeActivations: 'none', hookName: 'bench' };
  const trainer = await SaeTrainer.create(cfg, defaultTrainConfig(cfg, { batch, steps: steps + 1, bufferBatches: 1 }), source);
  await trainer.step(); // compiles the graph
  let bestMs = Infinity;
  for (let s = 0; s < steps; s++) {
    const t0 = performance.now();
    await trainer.step();
    bestMs = Math.min(bestMs, performance.now() - t0);
  }
  await trainer.release();
  const peak = await sgemmPeak();
  const gflops = (6 * 2 * batch * dIn * dSae) / (bestMs * 1e6);
  report(`SAE training step (${architecture}, d_in ${dIn}, d_sae ${dSae}, batch ${batch}) / sgemm peak`, gflops / peak.asInput, '>=', 0.5,
    `step ${bestMs.toFixed(0)} ms = ${gflops.toFixed(1)} GFLOP/s; sgemm peak ${peak.asInput.toFixed(1)} GFLOP/s (prepacked ${peak.prepacked.toFixed(1)})`);
}
