// A right-padded batch of prompts of different lengths must give, for every prompt, what running
// that prompt alone gives: logits, every cached activation, interventions and gradients.
import { describe, it, expect, beforeAll } from 'vitest';
import { Tensor } from '../src/engine/tensor.js';
import { HookedTransformer, ObjectiveTerm, objectives } from '../src/models/hooked.js';
import { trimToPrompt } from '../src/models/cache.js';
import { TINY_GPT2 } from '../src/models/random.js';
import { Rng } from '../src/rng.js';
import { seededModel } from './helpers.js';

const { nHeads: H, dHead: DH, dModel: D, dVocab: V } = TINY_GPT2;

function rng(seed: number) {
  const r = new Rng(seed);
  return () => r.next();
}
const rand = rng(77);
const randomTokens = (n: number) => Array.from({ length: n }, () => Math.floor(rand() * V));
const randomTensor = (shape: number[], scale: number) =>
  Tensor.f32(Array.from({ length: shape.reduce((p, q) => p * q, 1) }, () => scale * (2 * rand() - 1)), shape);

const LENGTHS = [7, 12, 3, 10];
const SEQ = Math.max(...LENGTHS);
const prompts = LENGTHS.map(randomTokens);
const TOL = 1e-5;

/** Max |a - b| over finite entries; infinities (masked attention scores) must match exactly. */
function maxDiff(a: Tensor, b: Tensor, what = ''): number {
  expect(a.shape, what).toEqual(b.shape);
  let m = 0;
  for (let i = 0; i < a.size; i++) {
    const x = Number(a.data[i]);
    const y = Number(b.data[i]);
    if (!Number.isFinite(y) || !Number.isFinite(x)) expect(x, `${what}[${i}]`).toBe(y);
    else m = Math.max(m, Math.abs(x - y));
  }
  return m;
}

/** Rows [b, 0:len) of a [batch, seq, ...] tensor, as [1, len, ...]. */
function rows(t: Tensor, b: number, len: number): Tensor {
  const inner = t.shape.slice(2).reduce((p, q) => p * q, 1);
  return new Tensor(t.dtype, t.get(b).data.slice(0, len * inner), [1, len, ...t.shape.slice(2)]);
}

let model: HookedTransformer;
beforeAll(async () => {
  model = await seededModel(TINY_GPT2, 23);
});

describe('a padded batch equals each prompt run alone', () => {
  it('logits and every cached activation (hook_result included)', async () => {
    const batched = await model.runWithCache(prompts, () => true);
    expect(batched.batch).toEqual({ tokens: prompts, lengths: LENGTHS, seq: SEQ });
    expect(batched.logits.shape).toEqual([LENGTHS.length, SEQ, V]);
    expect(batched.cache.names.sort()).toEqual([...model.hookNames].sort());
    let worst = 0;
    for (let b = 0; b < LENGTHS.length; b++) {
      const alone = await model.runWithCache([prompts[b]], () => true);
      worst = Math.max(worst, maxDiff(rows(batched.logits, b, LENGTHS[b]), alone.logits, `logits of prompt ${b}`));
      const mine = batched.cache.prompt(b);
      for (const name of model.hookNames) worst = Math.max(worst, maxDiff(mine.get(name), alone.cache.get(name), `${name} of prompt ${b}`));
    }
    expect(worst).toBeLessThan(TOL);
  });
});

describe('interventions in a batch', () => {
  it('a per-example value [batch, seq, d_model] adds to each prompt its own rows', async () => {
    const hook = 'blocks.0.hook_resid_post';
    const value = randomTensor([LENGTHS.length, SEQ, D], 0.05);
    const batched = await model.runWithHooks(prompts, { interventions: [{ hook, op: 'add', value }] });
    for (let b = 0; b < LENGTHS.length; b++) {
      const alone = await model.runWithHooks([prompts[b]], { interventions: [{ hook, op: 'add', value: rows(value, b, LENGTHS[b]) }] });
      expect(maxDiff(rows(batched.logits, b, LENGTHS[b]), alone.logits)).toBeLessThan(TOL);
      const unpatched = await model.run([prompts[b]]);
      expect(maxDiff(alone.logits, unpatched)).toBeGreaterThan(1e-3);
    }
  });

  it('a per-example replacement [batch, 1, d_model] and a per-head zero-ablation', async () => {
    const value = randomTensor([LENGTHS.length, 1, D], 0.05);
    const ivs = (v: Tensor) => [
      { hook: 'blocks.1.hook_resid_pre', op: 'replace' as const, value: v, positions: [1] },
      { hook: 'blocks.0.attn.hook_z', op: 'zero' as const, heads: [0, 2], positions: [2] },
    ];
    const batched = await model.runWithHooks(prompts, { interventions: ivs(value) });
    for (let b = 0; b < LENGTHS.length; b++) {
      const alone = await model.runWithHooks([prompts[b]], { interventions: ivs(Tensor.f32(value.get(b).f32, [1, 1, D])) });
      expect(maxDiff(rows(batched.logits, b, LENGTHS[b]), alone.logits)).toBeLessThan(TOL);
    }
  });

  it('mean ablation averages, at each position, over the prompts that reach it (padding excluded)', async () => {
    const hook = 'blocks.0.hook_mlp_out';
    const base = await model.runWithCache(prompts, [hook]);
    // Plain JS: mean over the prompts whose length exceeds the position.
    const meanOverReal = (act: Tensor) =>
      new Tensor('float32', Float32Array.from({ length: SEQ * D }, (_, i) => {
        const t = Math.floor(i / D);
        const real = LENGTHS.map((len, b) => [len, b]).filter(([len]) => t < len);
        return real.reduce((s, [, b]) => s + act.at(b, t, i % D), 0) / real.length;
      }), [SEQ, D]);
    const expectedMean = meanOverReal(base.cache.get(hook));
    const r = await model.runWithHooks(prompts, { interventions: [{ hook, op: 'mean' }], cache: [hook] });
    const viaCallback = await model.runWithHooks(prompts, {
      callbacks: {
        [hook]: (act) => {
          const mean = meanOverReal(act);
          return Tensor.f32(Float32Array.from({ length: act.size }, (_, i) => mean.f32[i % (SEQ * D)]), act.shape);
        },
      },
    });
    for (let b = 0; b < LENGTHS.length; b++) {
      const len = LENGTHS[b];
      expect(maxDiff(rows(r.cache.get(hook), b, len), rows(Tensor.f32(expectedMean.f32, [1, SEQ, D]), 0, len))).toBeLessThan(1e-6);
      expect(maxDiff(rows(r.logits, b, len), rows(viaCallback.logits, b, len))).toBeLessThan(TOL);
    }
    // Positions 10 and 11 exist only in prompt 1 (length 12): its mean there is itself.
    for (const t of [10, 11]) expect(maxDiff(r.cache.get(hook).get(1, t), base.cache.get(hook).get(1, t))).toBe(0);
  });
});

describe('gradients in a batch', () => {
  it('equal the per-prompt gradients; padded positions get exactly zero', async () => {
    const wrt = ['hook_embed', 'blocks.1.hook_resid_mid', 'blocks.0.attn.hook_pattern', 'blocks.1.attn.hook_z'];
    const termsFor = (b: number, batch: number): ObjectiveTerm[] => [
      ...objectives.logprob(LENGTHS[b] - 1, 17 + b, batch),
      ...objectives.logitDiff(Math.floor(LENGTHS[b] / 2), 3 * b + 1, 400 + b, batch),
    ];
    const batched = await model.gradients(prompts, LENGTHS.flatMap((_, b) => termsFor(b, b)), { wrt });
    expect(batched.terms).toHaveLength(3 * LENGTHS.length);
    for (let b = 0; b < LENGTHS.length; b++) {
      const len = LENGTHS[b];
      const alone = await model.gradients([prompts[b]], termsFor(b, 0), { wrt });
      for (let i = 0; i < 3; i++) expect(Math.abs(batched.terms[3 * b + i] - alone.terms[i])).toBeLessThan(TOL);
      for (const name of wrt) {
        const g = batched.grads[name];
        expect(maxDiff(trimToPrompt(g, name, b, len), alone.grads[name], `${name} of prompt ${b}`)).toBeLessThan(TOL);
        // Causal attention: nothing at a padded position reaches an objective term.
        if (name !== 'blocks.0.attn.hook_pattern') {
          const inner = g.size / (LENGTHS.length * SEQ);
          expect(g.get(b).f32.subarray(len * inner).every((x) => x === 0), name).toBe(true);
        }
      }
    }
    // The batch objective is the sum of the per-prompt ones.
    expect(Math.abs(batched.objective - batched.terms.reduce((s, x) => s + x, 0))).toBeLessThan(TOL);
    expect(batched.grads['blocks.1.attn.hook_z'].shape).toEqual([LENGTHS.length, SEQ, H, DH]);
  });
});
