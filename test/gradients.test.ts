// Gradients of logit objectives wrt hook activations, end to end through the tiny random GPT-2,
// against central finite differences computed by re-running the model with the activation
// replaced (a `replace` intervention), the objective evaluated in plain JS from the logits.
//
// Finite differences in float32. For a coordinate x_i, D(h) = (f(x + h e_i) - f(x - h e_i)) / 2h
// has truncation error (h^2 / 6) f''' and rounding error <= delta / h, where delta bounds the
// float32 noise of the objective f (|f| < 10, float32 eps 6e-8, a few dozen roundings: delta <=
// 1e-6). At h = 1e-2 the truncation term is not negligible at hook_embed (its activations are only
// ~0.05 in size, so LayerNorm curves fast there: measured up to 2e-3 against |grad| ~ 1), so we
// use Richardson's extrapolation FD = (4 D(h/2) - D(h)) / 3, which cancels the h^2 term, leaving
// O(h^4) (the square of the h^2 term's relative size: < 1e-5 here) and rounding error
// <= (4 * delta / (h/2) + delta / h) / 3 = 3 delta / h = 3e-4. Tolerance: 4e-4 + 1e-3 |grad|.
// (A wrong gradient -- a missing 1/sqrt(d_head), a dropped path, a transposed head axis -- is off
// by far more than 0.1% relative.)
import { describe, it, expect, beforeAll } from 'vitest';
import { Tensor } from '../src/engine/tensor.js';
import { LanternError } from '../src/errors.js';
import { HookedTransformer, Intervention, ObjectiveTerm, objectives } from '../src/models/hooked.js';
import { TINY_GPT2 } from '../src/models/random.js';
import { Rng } from '../src/rng.js';
import { seededModel, maxAbsDiff } from './helpers.js';

const { nHeads: H, dHead: DH, dModel: D, dVocab: V } = TINY_GPT2;
const H_STEP = 1e-2;
const ABS_TOL = 4e-4;
const REL_TOL = 1e-3;

function rng(seed: number) {
  const r = new Rng(seed);
  return () => r.next();
}
const rand = rng(4242);
const randomTokens = (n: number) => Array.from({ length: n }, () => Math.floor(rand() * V));

/** log softmax(logits[b, t, :])[token], in float64. */
function logprob(logits: Tensor, b: number, t: number, token: number): number {
  const r = logits.get(b, t).f32;
  let m = -Infinity;
  for (const x of r) m = Math.max(m, x);
  let s = 0;
  for (const x of r) s += Math.exp(x - m);
  return r[token] - m - Math.log(s);
}

/** Each term's value computed in JS from the logits. */
const termValues = (logits: Tensor, terms: ObjectiveTerm[]) =>
  terms.map((t) => (t.coef ?? 1) * (t.kind === 'logit' ? logits.at(t.batch ?? 0, t.pos, t.token) : logprob(logits, t.batch ?? 0, t.pos, t.token)));
const objectiveJS = (logits: Tensor, terms: ObjectiveTerm[]) => termValues(logits, terms).reduce((s, x) => s + x, 0);

/** The flat index of [i0, i1, ...] in `shape`. */
const flat = (shape: number[], idx: number[]) => idx.reduce((o, ix, a) => o * shape[a] + ix, 0);

/**
 * Checks `grad` (d objective / d activation at `hook`) at the given flat coordinates against
 * Richardson-extrapolated central differences; `base` is the activation the gradient was taken at.
 */
async function checkFD(
  model: HookedTransformer,
  input: number[][],
  terms: ObjectiveTerm[],
  hook: string,
  base: Tensor,
  grad: Tensor,
  coords: number[],
  interventions: Intervention[] = [],
): Promise<{ worst: number; exactZeros: number }> {
  const f = async (i: number, delta: number) => {
    const x = base.f32.slice();
    x[i] += delta;
    const r = await model.runWithHooks(input, { interventions: [...interventions, { hook, op: 'replace', value: Tensor.f32(x, base.shape) }] });
    return objectiveJS(r.logits, terms);
  };
  const D = async (i: number, h: number) => ((await f(i, h)) - (await f(i, -h))) / (2 * h);
  let worst = 0;
  let exactZeros = 0;
  for (const i of coords) {
    const g = grad.f32[i];
    const fd = (4 * (await D(i, H_STEP / 2)) - (await D(i, H_STEP))) / 3;
    if (g === 0 && fd === 0) exactZeros++;
    const err = Math.abs(fd - g);
    expect(err, `${hook}[${i}]: analytic ${g}, finite differences ${fd}`).toBeLessThan(ABS_TOL + REL_TOL * Math.abs(g));
    worst = Math.max(worst, err);
  }
  return { worst, exactZeros };
}

/** The `top` largest-|grad| coordinates plus `n` random ones among those `keep` accepts. */
function sampleCoords(grad: Tensor, top: number, n: number, keep: (idx: number) => boolean): number[] {
  const all = [...grad.f32.keys()].filter(keep);
  const largest = [...all].sort((a, b) => Math.abs(grad.f32[b]) - Math.abs(grad.f32[a])).slice(0, top);
  const rest = all.filter((i) => !largest.includes(i));
  const picked = Array.from({ length: n }, () => rest.splice(Math.floor(rand() * rest.length), 1)[0]);
  return [...largest, ...picked];
}

const SEQ = 10;
const prompt = randomTokens(SEQ);
// Objective terms at positions 6 and 8: position 9 cannot influence them (causal attention).
const TERMS = [...objectives.logprob(8, 33), ...objectives.logitDiff(6, 11, 500)];
let model: HookedTransformer;

beforeAll(async () => {
  model = await seededModel(TINY_GPT2, 31);
});

describe('gradients vs finite differences', () => {
  const cases: { hook: string; pos: (shape: number[], i: number) => number }[] = [
    { hook: 'hook_embed', pos: (s, i) => Math.floor(i / s[2]) % s[1] },
    { hook: 'blocks.1.hook_resid_mid', pos: (s, i) => Math.floor(i / s[2]) % s[1] },
    // [batch, head, q, k]: the query position is the one that matters for causality.
    { hook: 'blocks.0.attn.hook_pattern', pos: (s, i) => Math.floor(i / s[3]) % s[2] },
  ];
  let r: Awaited<ReturnType<HookedTransformer['gradients']>>;
  beforeAll(async () => {
    r = await model.gradients([prompt], TERMS, { wrt: cases.map((c) => c.hook), cache: cases.map((c) => c.hook) });
  });

  for (const { hook, pos } of cases) {
    it(`wrt ${hook}`, async () => {
      const grad = r.grads[hook];
      const base = r.cache.get(hook);
      expect(grad.shape).toEqual(base.shape);
      // Replaying the cached activation reproduces the objective the gradient call computed.
      const replay = await model.runWithHooks([prompt], { interventions: [{ hook, op: 'replace', value: base }] });
      expect(Math.abs(objectiveJS(replay.logits, TERMS) - r.objective)).toBeLessThan(1e-5);
      const before = sampleCoords(grad, 6, 14, (i) => pos(grad.shape, i) <= 8);
      const after = sampleCoords(grad, 0, 3, (i) => pos(grad.shape, i) === 9);
      const { exactZeros } = await checkFD(model, [prompt], TERMS, hook, base, grad, [...before, ...after]);
      // At position 9 both the gradient and the finite differences are exactly 0.
      expect(exactZeros).toBeGreaterThanOrEqual(after.length);
      for (let i = 0; i < grad.size; i++) if (pos(grad.shape, i) === 9) expect(grad.f32[i]).toBe(0);
    });
  }
});

describe('objective terms', () => {
  const prompts = [prompt, randomTokens(7)];

  it('logit, logprob, logitDiff and continuationLogprob equal JS values from a plain run', async () => {
    const terms: ObjectiveTerm[] = [
      ...objectives.logit(3, 5),
      ...objectives.logprob(9, V - 1),
      ...objectives.logitDiff(2, 100, 200, 1),
      // Teacher forcing: positions 3, 4, 5 of prompt 1 predict its tokens 4, 5, 6.
      ...objectives.continuationLogprob(3, prompts[1].slice(4, 7), 1),
      { batch: 1, pos: 0, token: 7, kind: 'logprob', coef: 2.5 },
    ];
    expect(terms.slice(4, 7).map((t) => [t.batch, t.pos, t.token, t.kind])).toEqual([
      [1, 3, prompts[1][4], 'logprob'], [1, 4, prompts[1][5], 'logprob'], [1, 5, prompts[1][6], 'logprob'],
    ]);
    const r = await model.gradients(prompts, terms);
    const logits = await model.run(prompts);
    expect(maxAbsDiff(r.logits, logits)).toBeLessThan(1e-6);
    const expected = termValues(logits, terms);
    expect(r.terms).toHaveLength(terms.length);
    r.terms.forEach((x, i) => expect(Math.abs(x - expected[i]), `term ${i}`).toBeLessThan(1e-5));
    // logitDiff is its two logits' difference, by hand.
    expect(Math.abs(r.terms[2] + r.terms[3] - (logits.at(1, 2, 100) - logits.at(1, 2, 200)))).toBeLessThan(1e-5);
    expect(Math.abs(r.objective - expected.reduce((s, x) => s + x, 0))).toBeLessThan(1e-5);
    expect(Object.keys(r.grads)).toEqual(['hook_embed']);
  });

  it('rejects positions outside the prompt, tokens outside the vocabulary, and bad terms', async () => {
    const bad = async (terms: ObjectiveTerm[], pattern: RegExp) => {
      const err = await model.gradients(prompts, terms).then(() => undefined, (e: unknown) => e);
      expect(err).toBeInstanceOf(LanternError);
      expect((err as Error).message).toMatch(pattern);
    };
    // Position 8 is inside the padded batch (seq 10) but outside prompt 1 (length 7).
    await bad(objectives.logprob(8, 5, 1), /position 8 outside prompt 1 \(length 7\)/);
    await bad(objectives.logprob(SEQ, 5), /position 10 outside prompt 0 \(length 10\)/);
    await bad(objectives.logit(-1, 5), /position -1 outside prompt 0/);
    await bad(objectives.continuationLogprob(5, [1, 2, 3], 1), /term 2: position 7 outside prompt 1/);
    await bad(objectives.logit(2, V), /token 1000 outside the vocabulary/);
    await bad(objectives.logprob(2, -1), /token -1 outside the vocabulary/);
    await bad(objectives.logprob(2, 1.5), /token 1\.5 outside the vocabulary/);
    await bad(objectives.logprob(2.5, 1), /position 2\.5 outside prompt 0/);
    await bad(objectives.logit(2, 5, 2), /batch 2 out of range/);
    await bad([{ pos: 2, token: 5, kind: 'prob' as never }], /term 0: kind 'prob'/);
    await bad([], /objective has no terms/);
    const err = await model.gradients(prompts, TERMS, { wrt: ['blocks.0.hook_resid_mid '] }).then(() => undefined, (e: unknown) => e);
    expect(err).toBeInstanceOf(LanternError);
    expect((err as Error).message).toContain("'blocks.0.hook_resid_mid'");
  });
});

describe('gradients under interventions', () => {
  it('zero-ablating a head changes the gradient, and finite differences still agree', async () => {
    const ablate: Intervention[] = [{ hook: 'blocks.0.attn.hook_z', op: 'zero', heads: [2] }];
    const wrt = ['hook_embed', 'blocks.0.attn.hook_v'];
    const plain = await model.gradients([prompt], TERMS, { wrt });
    const r = await model.gradients([prompt], TERMS, { wrt, interventions: ablate, cache: ['hook_embed'] });
    const ablated = await model.runWithHooks([prompt], { interventions: ablate });
    expect(Math.abs(r.objective - objectiveJS(ablated.logits, TERMS))).toBeLessThan(1e-5);
    expect(maxAbsDiff(r.grads.hook_embed, plain.grads.hook_embed)).toBeGreaterThan(1e-2);
    // Head 2's values reach the objective only through its (zeroed) z: their gradient is exactly 0,
    // while the other heads' is not.
    const gv = r.grads['blocks.0.attn.hook_v'];
    let other = 0;
    for (let t = 0; t < SEQ; t++) for (let h = 0; h < H; h++) for (let j = 0; j < DH; j++) {
      const x = gv.f32[flat(gv.shape, [0, t, h, j])];
      if (h === 2) expect(x).toBe(0);
      else other = Math.max(other, Math.abs(x));
    }
    expect(other).toBeGreaterThan(1e-3);
    const grad = r.grads.hook_embed;
    const coords = sampleCoords(grad, 6, 10, (i) => Math.floor(i / D) <= 8);
    await checkFD(model, [prompt], TERMS, 'hook_embed', r.cache.get('hook_embed'), grad, coords, ablate);
  });

  it('mean ablation over a batch: the gradient flows through the batch mean into the other prompt', async () => {
    const prompts = [prompt, randomTokens(SEQ)];
    const ablate: Intervention[] = [{ hook: 'blocks.0.hook_mlp_out', op: 'mean', positions: [2, 5] }];
    const terms = objectives.logprob(8, 33, 0); // prompt 0 only
    const r = await model.gradients(prompts, terms, { interventions: ablate, cache: ['hook_embed'] });
    const grad = r.grads.hook_embed;
    // Prompt 1 reaches prompt 0's objective only through the means at positions 2 and 5, which
    // its positions 0..5 feed (causally) and its positions 6..9 cannot.
    let cross = 0;
    for (let t = 0; t < SEQ; t++) for (let d = 0; d < D; d++) {
      const x = grad.f32[flat(grad.shape, [1, t, d])];
      if (t <= 5) cross = Math.max(cross, Math.abs(x));
      else expect(x).toBe(0);
    }
    expect(cross).toBeGreaterThan(1e-3);
    const coords = [
      ...sampleCoords(grad, 4, 6, (i) => i < SEQ * D && Math.floor(i / D) <= 8),
      ...sampleCoords(grad, 4, 4, (i) => i >= SEQ * D && Math.floor(i / D) % SEQ <= 5),
    ];
    await checkFD(model, prompts, terms, 'hook_embed', r.cache.get('hook_embed'), grad, coords, ablate);
  });
});
