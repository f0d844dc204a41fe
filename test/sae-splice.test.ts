import { describe, it, expect, beforeAll } from 'vitest';
import path from 'node:path';
import { loadModel } from '../src/models/load.js';
import { BUNDLED_MODEL } from '../src/paths.js';
import type { HookedTransformer } from '../src/models/hooked.js';
import { objectives } from '../src/models/hooked.js';
import { Tensor } from '../src/engine/tensor.js';
import { LanternError } from '../src/errors.js';
import { Sae, SaeConfig } from '../src/methods/sae/sae.js';
import { loadSae } from '../src/methods/sae/io.js';
import { runWithSaes, featureAttribution, steeringIntervention } from '../src/methods/sae/splice.js';
import { evaluateSae } from '../src/methods/sae/metrics.js';
import { asFeatureSource } from '../src/methods/sae/feature-source.js';
import { tokenizeSplits } from '../src/data/brown.js';

const FIX = path.join(__dirname, '..', 'fixtures', 'sae');
const HOOK = 'blocks.1.hook_resid_post';
const PROMPT = 'The committee said that the city would need more money for the new schools.';
let model: HookedTransformer;
let sae: Sae;

beforeAll(async () => {
  model = await loadModel(BUNDLED_MODEL);
  sae = (await loadSae(path.join(FIX, 'saelens-topk'))).sae;
});

function maxDiff(a: Float32Array, b: Float32Array): number {
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i] - b[i]));
  return m;
}

describe('splicing an SAE into runs of the bundled model', () => {
  it('with the error term kept the output is unchanged, and the SAE hook points are cached', async () => {
    const clean = await model.run(PROMPT);
    const r = await runWithSaes(model, PROMPT, [{ sae, keepError: true }]);
    expect(maxDiff(r.logits.f32, clean.f32)).toBeLessThan(1e-3);
    const seq = clean.shape[1];
    expect(r.cache.get(`${HOOK}.hook_sae_acts_post`).shape).toEqual([1, seq, 64]);
    for (const s of ['hook_sae_input', 'hook_sae_recons', 'hook_sae_error']) expect(r.cache.get(`${HOOK}.${s}`).shape).toEqual([1, seq, 256]);
    // input = recons + error, and acts_post has k = 8 active features per position
    const x = r.cache.get(`${HOOK}.hook_sae_input`).f32, rec = r.cache.get(`${HOOK}.hook_sae_recons`).f32, err = r.cache.get(`${HOOK}.hook_sae_error`).f32;
    expect(maxDiff(x, rec.map((v, i) => v + err[i]))).toBeLessThan(1e-5);
    expect(r.cache.get(`${HOOK}.hook_sae_acts_post`).f32.filter((a) => a > 0).length).toBeLessThanOrEqual(8 * seq);
  });

  it('without the error term the model sees the reconstruction (same as replacing the hook by it)', async () => {
    const { cache } = await model.runWithCache(PROMPT, [HOOK]);
    const x = cache.get(HOOK);
    const rows = x.shape[1];
    const recons = await sae.reconstruct(x.f32, rows);
    const replaced = await model.runWithHooks(PROMPT, { interventions: [{ hook: HOOK, op: 'replace', value: Tensor.f32(recons, x.shape) }] });
    const spliced = await runWithSaes(model, PROMPT, [{ sae }]);
    expect(maxDiff(spliced.logits.f32, replaced.logits.f32)).toBeLessThan(1e-4);
    expect(maxDiff(spliced.logits.f32, (await model.run(PROMPT)).f32)).toBeGreaterThan(0.1);
  });

  it('ablating, clamping and steering features equal adding the decoder directions by hand', async () => {
    const base = await runWithSaes(model, PROMPT, [{ sae, keepError: true }]);
    const acts = base.cache.get(`${HOOK}.hook_sae_acts_post`);
    const seq = acts.shape[1];
    // the feature most active at position 3
    let f = 0;
    for (let j = 0; j < 64; j++) if (acts.f32[3 * 64 + j] > acts.f32[3 * 64 + f]) f = j;
    const a = acts.f32[3 * 64 + f];
    expect(a).toBeGreaterThan(0);
    const dir = sae.decoderDirection(f);
    const byHand = (delta: number) => model.runWithHooks(PROMPT, { interventions: [{ hook: HOOK, op: 'add', value: Tensor.f32(dir.map((v) => v * delta), [256]), positions: [3] }] });
    const ablated = await runWithSaes(model, PROMPT, [{ sae, keepError: true, features: [{ feature: f, op: 'ablate', positions: [3] }] }]);
    expect(maxDiff(ablated.logits.f32, (await byHand(-a)).logits.f32)).toBeLessThan(1e-3);
    const clamped = await runWithSaes(model, PROMPT, [{ sae, keepError: true, features: [{ feature: f, op: 'clamp', value: 5 * a, positions: [3] }] }]);
    expect(maxDiff(clamped.logits.f32, (await byHand(4 * a)).logits.f32)).toBeLessThan(1e-3);
    expect(maxDiff(clamped.logits.f32, base.logits.f32)).toBeGreaterThan(1e-2);
    const steered = await model.runWithHooks(PROMPT, { interventions: [steeringIntervention(sae, f, 4 * a, [3])] });
    expect(maxDiff(steered.logits.f32, clamped.logits.f32)).toBeLessThan(1e-3);
    expect(seq).toBeGreaterThan(3);
  });

  it('feature attribution (activation × gradient) matches central finite differences of scaling the feature', async () => {
    const ids = model.toTokens(PROMPT);
    const pos = ids.length - 1;
    const target = ids[pos];
    const terms = objectives.logit(pos - 1, target);
    const { attributions, objective } = await featureAttribution(model, sae, PROMPT, terms, { top: 3 });
    expect(attributions.length).toBe(3);
    const logitAt = async (features: any[]) => {
      const r = await runWithSaes(model, PROMPT, [{ sae, keepError: true, features }]);
      return r.logits.f32[((pos - 1) * r.logits.shape[2]) + target];
    };
    expect(await logitAt([])).toBeCloseTo(objective, 3);
    const eps = 1e-3;
    for (const a of attributions) {
      const up = await logitAt([{ feature: a.feature, op: 'scale', factor: 1 + eps, positions: [a.position] }]);
      const down = await logitAt([{ feature: a.feature, op: 'scale', factor: 1 - eps, positions: [a.position] }]);
      const fd = (up - down) / (2 * eps);
      expect(Math.abs(fd - a.attribution)).toBeLessThan(0.02 * Math.abs(a.attribution) + 1e-3);
    }
  });

  it('an SAE that does not fit the model is refused with one line naming it', async () => {
    const small: SaeConfig = { ...sae.cfg, dIn: 128, dOut: 128 };
    const w = { W_enc: new Float32Array(128 * 64), W_dec: new Float32Array(64 * 128), b_enc: new Float32Array(64), b_dec: new Float32Array(128) };
    await expect(runWithSaes(model, PROMPT, [{ sae: new Sae(small, w) }])).rejects.toThrow(/d_in 128 but blocks\.1\.hook_resid_post of this model has width 256/);
    const wrongHook = new Sae({ ...sae.cfg, hookName: 'blocks.1.hook_resid_pots' }, sae.weights);
    const e = await runWithSaes(model, PROMPT, [{ sae: wrongHook }]).catch((x) => x);
    expect(e).toBeInstanceOf(LanternError);
    expect(e.message).toMatch(/unknown hook 'blocks\.1\.hook_resid_pots'; did you mean 'blocks\.1\.hook_resid_post'/);
  });
});

describe('a transcoder spliced from the MLP input to the MLP output', () => {
  it('keeps the output with its error term, and otherwise replaces the MLP output by its prediction', async () => {
    const d = 256, n = 96;
    let seed = 1;
    const rand = (len: number, scale: number) => Float32Array.from({ length: len }, () => {
      seed = (seed * 16807) % 2147483647;
      return ((seed / 2147483647) * 2 - 1) * scale;
    });
    const tc = new Sae({ architecture: 'transcoder', dIn: d, dSae: n, dOut: d, applyBDecToInput: false, normalizeActivations: 'none', hookName: 'blocks.1.hook_mlp_in', hookNameOut: 'blocks.1.hook_mlp_out' },
      { W_enc: rand(d * n, 0.2), W_dec: rand(n * d, 0.2), b_enc: rand(n, 0.1), b_dec: rand(d, 0.1) });
    const clean = await model.run(PROMPT);
    const kept = await runWithSaes(model, PROMPT, [{ sae: tc, keepError: true }]);
    expect(maxDiff(kept.logits.f32, clean.f32)).toBeLessThan(1e-3);
    const { cache } = await model.runWithCache(PROMPT, ['blocks.1.hook_mlp_in']);
    const x = cache.get('blocks.1.hook_mlp_in');
    const predicted = await tc.reconstruct(x.f32, x.shape[1]);
    const replaced = await model.runWithHooks(PROMPT, { interventions: [{ hook: 'blocks.1.hook_mlp_out', op: 'replace', value: Tensor.f32(predicted, x.shape) }] });
    const spliced = await runWithSaes(model, PROMPT, [{ sae: tc }]);
    expect(maxDiff(spliced.logits.f32, replaced.logits.f32)).toBeLessThan(1e-4);
    expect(spliced.cache.get('blocks.1.hook_mlp_out.hook_sae_acts_post').shape).toEqual([1, x.shape[1], n]);
  });
});

describe('SAE evaluation figures on hand-built SAEs', () => {
  const d = 256;
  // relu(x) - relu(-x) = x: a perfect SAE with 2 d_in features; and one that reconstructs 0 (zero ablation).
  const identity = () => {
    const W_enc = new Float32Array(d * 2 * d), W_dec = new Float32Array(2 * d * d);
    for (let i = 0; i < d; i++) {
      W_enc[i * 2 * d + i] = 1; W_enc[i * 2 * d + d + i] = -1;
      W_dec[i * d + i] = 1; W_dec[(d + i) * d + i] = -1;
    }
    return new Sae({ architecture: 'standard', dIn: d, dSae: 2 * d, dOut: d, applyBDecToInput: true, normalizeActivations: 'none', hookName: HOOK }, { W_enc, W_dec, b_enc: new Float32Array(2 * d), b_dec: new Float32Array(d) });
  };
  const tokens = tokenizeSplits().heldout;
  it('a perfect SAE scores 1 (explained variance, CE-loss, KL, cosine) with L0 = d_in', async () => {
    const e = await evaluateSae(model, identity(), tokens, { context: 16, windows: 2, batch: 2 });
    expect(e.tokens).toBe(32);
    expect(e.explainedVariance).toBeGreaterThan(0.99999);
    expect(e.cosineSimilarity).toBeGreaterThan(0.99999);
    expect(Math.abs(e.ceSpliced - e.ceClean)).toBeLessThan(1e-4);
    expect(e.ceAblated).toBeGreaterThan(e.ceClean + 0.1);
    expect(e.ceLossScore).toBeGreaterThan(0.9999);
    expect(e.klSpliced).toBeLessThan(1e-5);
    expect(e.klScore).toBeGreaterThan(0.9999);
    expect(e.l0).toBeCloseTo(d, 0);
    expect(e.denseFraction).toBeGreaterThan(0.5);
    expect(e.densityHistogram.counts.reduce((a, b) => a + b, 0) + e.densityHistogram.dead).toBe(2 * d);
  });
  it('an SAE that reconstructs zero scores 0 and equals zero ablation', async () => {
    const s = identity();
    const zero = new Sae(s.cfg, { ...s.weights, W_dec: new Float32Array(2 * d * d) });
    const e = await evaluateSae(model, zero, tokens, { context: 16, windows: 2, batch: 2 });
    expect(Math.abs(e.ceLossScore)).toBeLessThan(1e-4);
    expect(Math.abs(e.klScore)).toBeLessThan(1e-4);
    expect(e.explainedVariance).toBeLessThan(0);
  });
});

describe('asFeatureSource', () => {
  it('encodes in JavaScript exactly as the graph forward does (topk, layer-norm standard, JumpReLU)', async () => {
    for (const key of ['saelens-topk', 'saelens-pre6', 'gemma-scope-res/layer_1/width_64/average_l0_20']) {
      const { sae: s } = await loadSae(FIX, { path: key });
      const src = asFeatureSource(s);
      expect(src.size).toBe(64);
      expect(src.hook).toBe(HOOK);
      const rows = 6;
      const x = Float32Array.from({ length: rows * 256 }, (_, i) => Math.sin(i * 0.37) * 3);
      const a = src.encode(x, rows), b = await s.encode(x, rows);
      expect(maxDiff(a, b)).toBeLessThan(1e-4);
      expect(Array.from(src.decoderDirection!(5))).toEqual(Array.from(s.weights.W_dec.subarray(5 * 256, 6 * 256)));
    }
  });
});

describe('the SAE committed with the bundled model', () => {
  it('meets the bar on held-out text: CE-loss score >= 0.8 at L0 <= 64', async () => {
    const { sae: committed } = await loadSae(BUNDLED_MODEL, { path: 'saes/resid1-topk32' });
    expect(committed.cfg).toMatchObject({ architecture: 'topk', k: 32, hookName: HOOK, dSae: 2048 });
    const e = await evaluateSae(model, committed, tokenizeSplits().heldout, { context: 64, windows: 2, batch: 2 });
    expect(e.l0).toBeLessThanOrEqual(64);
    expect(e.ceLossScore).toBeGreaterThanOrEqual(0.8);
    expect(e.explainedVariance).toBeGreaterThan(0.5);
  });
});
