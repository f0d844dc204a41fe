import { describe, it, expect, afterAll } from 'vitest';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { SyntheticSource } from '../src/methods/sae/source.js';
import { SaeTrainer, SaeTrainConfig, defaultTrainConfig } from '../src/methods/sae/train.js';
import type { SaeArchitecture, SaeConfig } from '../src/methods/sae/sae.js';

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'lantern-sae-train-'));
afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));

const D_IN = 32;
const FEATURES = 64;

function config(architecture: SaeArchitecture, dOut = D_IN): SaeConfig {
  return { architecture, dIn: D_IN, dSae: 128, dOut, k: 4, applyBDecToInput: architecture !== 'transcoder', normalizeActivations: 'none', hookName: 'synthetic' };
}

/** Fraction of true directions that some decoder row matches at cosine >= 0.9. */
function recovered(W_dec: Float32Array, dSae: number, truth: Float32Array, d: number): number {
  let hits = 0;
  for (let f = 0; f < FEATURES; f++) {
    let best = -1;
    for (let j = 0; j < dSae; j++) {
      let dot = 0, norm = 0;
      for (let i = 0; i < d; i++) {
        dot += W_dec[j * d + i] * truth[f * d + i];
        norm += W_dec[j * d + i] ** 2;
      }
      best = Math.max(best, dot / Math.sqrt(norm));
    }
    if (best >= 0.9) hits++;
  }
  return hits / FEATURES;
}

describe('SAE training recovers planted directions in superposition (64 features in 32 dimensions, ~3 per row)', () => {
  const cases: [SaeArchitecture, Partial<SaeTrainConfig>][] = [
    ['standard', {}],
    ['topk', {}],
    ['batchtopk', {}],
    // the threshold has to climb from its initial value by Adam steps of ~lr in log space
    ['jumprelu', { steps: 1200, jumpreluInitThreshold: 0.1 }],
    ['transcoder', {}],
  ];
  for (const [arch, over] of cases) {
    it(`${arch}: >= 90% of the true directions at cosine >= 0.9`, async () => {
      const dOut = arch === 'transcoder' ? 24 : D_IN;
      const source = new SyntheticSource(D_IN, FEATURES, 3 / FEATURES, 1, { dOut: arch === 'transcoder' ? dOut : 0 });
      const cfg = config(arch, dOut);
      const trainer = await SaeTrainer.create(cfg, defaultTrainConfig(cfg, { batch: 256, steps: 800, lr: 3e-3, bufferBatches: 4, deadFeatureWindow: 200, ...over }), source);
      await trainer.train();
      const sae = await trainer.sae();
      await trainer.release();
      const truth = arch === 'transcoder' ? source.outDirections : source.directions;
      const frac = recovered(sae.weights.W_dec, cfg.dSae, truth, dOut);
      expect(frac).toBeGreaterThanOrEqual(0.9);
      // and the learned SAE is sparse: far fewer active features than latents
      const last = trainer.state.log.at(-1)!;
      expect(last.l0).toBeLessThan(8);
    }, 60_000);
  }
});

describe('SAE checkpoints resume exactly', () => {
  for (const arch of ['topk', 'jumprelu'] as SaeArchitecture[]) {
    it(`${arch}: interrupted and resumed equals uninterrupted, bit for bit`, async () => {
      const cfg = config(arch);
      const tc = defaultTrainConfig(cfg, { batch: 64, steps: 40, lr: 3e-3, bufferBatches: 3, deadFeatureWindow: 5, auxKCoefficient: 0.5 });
      const straight = await SaeTrainer.create(cfg, tc, new SyntheticSource(D_IN, FEATURES, 3 / FEATURES, 5, { chunkRows: 100 }));
      await straight.train();
      const a = await straight.sae();
      await straight.release();

      const first = await SaeTrainer.create(cfg, tc, new SyntheticSource(D_IN, FEATURES, 3 / FEATURES, 5, { chunkRows: 100 }));
      const ckpt = path.join(tmp, `ckpt-${arch}`);
      await first.train(async (e, t) => {
        if (e.step === 17) {
          await t.saveCheckpoint(ckpt);
          throw new Error('interrupted');
        }
      }).catch((e) => expect(String(e)).toContain('interrupted'));
      await first.release();
      const resumed = await SaeTrainer.create(cfg, tc, new SyntheticSource(D_IN, FEATURES, 3 / FEATURES, 5, { chunkRows: 100 }), { checkpoint: ckpt });
      expect(resumed.state.step).toBe(17);
      await resumed.train();
      const b = await resumed.sae();
      await resumed.release();
      expect(Buffer.from(b.weights.W_enc.buffer).equals(Buffer.from(a.weights.W_enc.buffer))).toBe(true);
      expect(Buffer.from(b.weights.W_dec.buffer).equals(Buffer.from(a.weights.W_dec.buffer))).toBe(true);
      expect(resumed.state.log.map((e) => e.loss)).toEqual(straight.state.log.map((e) => e.loss));
      // the dead-feature window was short enough that the aux/sparsity path mattered
      expect(straight.state.log.some((e) => e.dead > 0 || e.sparsity > 0)).toBe(true);
    }, 60_000);
  }
});

describe('activations streamed from a model', () => {
  it('ModelSource yields each window\'s hook activations (first positions skipped) and resumes at its position', async () => {
    const { loadModel } = await import('../src/models/load.js');
    const { BUNDLED_MODEL } = await import('../src/paths.js');
    const { ModelSource } = await import('../src/methods/sae/source.js');
    const model = await loadModel(BUNDLED_MODEL);
    const tokens = Array.from({ length: 200 }, (_, i) => (i * 37) % 5000);
    const hook = 'blocks.1.hook_resid_post';
    const src = new ModelSource(model, tokens, { hook, context: 16, windowsPerForward: 2, skipPositions: 1 });
    expect(src.dIn).toBe(256);
    await src.next();
    const state = src.state();
    const chunk = await src.next(); // windows 2 and 3
    expect(chunk.rows).toBe(2 * 15);
    const { cache } = await model.runWithCache([tokens.slice(32, 48)], [hook]);
    const want = cache.get(hook).f32.subarray(256, 16 * 256);
    let worst = 0;
    for (let i = 0; i < want.length; i++) worst = Math.max(worst, Math.abs(chunk.x[i] - want[i]));
    expect(worst).toBeLessThan(1e-4);
    src.restore(state);
    expect(Array.from((await src.next()).x)).toEqual(Array.from(chunk.x));
    expect(() => new ModelSource(model, tokens, { hook: 'blocks.9.hook_resid_post' })).toThrow(/unknown hook 'blocks\.9\.hook_resid_post'/);
  }, 60_000);
});

describe('expected_average_only_in', () => {
  it('trains on inputs scaled to norm sqrt(d_in) and folds the scale into the saved weights', async () => {
    const inner = new SyntheticSource(D_IN, FEATURES, 3 / FEATURES, 1);
    const big = { dIn: D_IN, dOut: 0, next: async () => { const c = await inner.next(); return { rows: c.rows, x: c.x.map((v) => v * 40) }; }, state: () => inner.state(), restore: (s: unknown) => inner.restore(s) };
    const cfg: SaeConfig = { ...config('topk'), normalizeActivations: 'expected_average_only_in' };
    const trainer = await SaeTrainer.create(cfg, defaultTrainConfig(cfg, { batch: 256, steps: 600, lr: 3e-3, bufferBatches: 4, deadFeatureWindow: 200 }), big);
    // mean norm of ~3 unit directions with magnitudes ~1, times 40: the scale brings it to sqrt(32)
    expect(trainer.state.inputScale).toBeGreaterThan(Math.sqrt(D_IN) / (40 * 3));
    expect(trainer.state.inputScale).toBeLessThan(Math.sqrt(D_IN) / (40 * 1));
    await trainer.train();
    const sae = await trainer.sae();
    await trainer.release();
    expect(sae.cfg.normalizeActivations).toBe('none');
    expect(recovered(sae.weights.W_dec, cfg.dSae, inner.directions, D_IN)).toBeGreaterThanOrEqual(0.9);
    const chunk = await big.next();
    const out = await sae.reconstruct(chunk.x, chunk.rows);
    let resid = 0, total = 0;
    for (let i = 0; i < out.length; i++) { resid += (out[i] - chunk.x[i]) ** 2; total += chunk.x[i] ** 2; }
    expect(1 - resid / total).toBeGreaterThan(0.8);
  }, 60_000);
});
