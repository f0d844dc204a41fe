// Input attribution (src/methods/attribution). Every method is checked against something computed
// independently here: gradients against finite differences of the model's output, occlusion
// against masked prompts run one at a time through a different intervention (op 'zero' with
// positions), IG against its completeness property with f(x) and f(baseline) from separate runs,
// and every method against the planted models, whose mechanism says which input token carries
// the answer.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Tensor } from '../src/engine/tensor.js';
import type { HookedTransformer } from '../src/models/hooked.js';
import { loadModel } from '../src/models/load.js';
import { TINY_GPT2 } from '../src/models/random.js';
import { inductionPrompts, makePlanted, ngramPrompts, NGRAM } from '../src/models/planted/index.js';
import {
  attribute, faithfulnessPlan, kendallTau, loadResult, mergeWords, quadrature, rationaleSizes, renderHtml, renderTerminal,
  resolveTarget, saveResult, weightsHash, INTEGRATION_RULES,
} from '../src/methods/attribution/index.js';
import { seededModel, logSoftmaxAt } from './helpers.js';

const cfg = { ...TINY_GPT2, nCtx: 16 };
let tiny: HookedTransformer;
let tiny2: HookedTransformer;
let tmp: string;
const loaded: HookedTransformer[] = [];
const PROMPT = [17, 401, 9, 733, 250, 61];

beforeAll(async () => {
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'lantern-attr-'));
  tiny = await seededModel(cfg, 11);
  tiny2 = await seededModel(cfg, 12);
  loaded.push(tiny, tiny2);
});

afterAll(async () => {
  for (const m of loaded) await m.executor.dropWeights(m.weights);
  fs.rmSync(tmp, { recursive: true, force: true });
});

// ---- independent helpers: scores from logits, written out here

function logprobAt(logits: Tensor, b: number, pos: number, token: number): number {
  const [, T, V] = logits.shape;
  return logSoftmaxAt(logits.f32.subarray((b * T + pos) * V, (b * T + pos + 1) * V), token);
}

async function embeds(model: HookedTransformer, tokens: number[]): Promise<Float32Array> {
  return Float32Array.from((await model.runWithCache([tokens], ['hook_embed'])).cache.get('hook_embed').f32);
}

/** log p(token | embeddings) for each [seq, d] embedding set, one batched run with a replace intervention. */
async function logprobOfEmbeds(model: HookedTransformer, tokens: number[], sets: Float32Array[], token: number): Promise<number[]> {
  const n = tokens.length * model.cfg.dModel;
  const value = new Float32Array(sets.length * n);
  sets.forEach((s, i) => value.set(s, i * n));
  const { logits } = await model.runWithHooks(sets.map(() => tokens), {
    interventions: [{ hook: 'hook_embed', op: 'replace', value: Tensor.f32(value, [sets.length, tokens.length, model.cfg.dModel]) }],
  });
  return sets.map((_, b) => logprobAt(logits, b, tokens.length - 1, token));
}

const sum = (xs: number[]) => xs.reduce((p, q) => p + q, 0);
const argmaxOf = (xs: number[]) => xs.indexOf(Math.max(...xs));

// ---------------------------------------------------------------------------------------------

describe('quadrature', () => {
  it('Gauss-Legendre integrates polynomials of degree 2n-1 exactly; every rule integrates 1 and x', () => {
    const { alphas, weights } = quadrature(5, 'gausslegendre');
    for (let p = 0; p <= 9; p++) expect(sum(alphas.map((a, i) => weights[i] * a ** p))).toBeCloseTo(1 / (p + 1), 12);
    expect(alphas.every((a, i) => a > 0 && a < 1 && (i === 0 || a > alphas[i - 1]))).toBe(true);
    for (const rule of INTEGRATION_RULES) {
      const q = quadrature(8, rule);
      expect(sum(q.weights)).toBeCloseTo(1, 12);
      if (rule === 'riemann_trapezoid' || rule === 'riemann_middle' || rule === 'gausslegendre') expect(sum(q.alphas.map((a, i) => q.weights[i] * a))).toBeCloseTo(0.5, 12);
    }
    expect(quadrature(4, 'riemann_left').alphas).toEqual([0, 0.25, 0.5, 0.75]);
    expect(quadrature(4, 'riemann_right').alphas).toEqual([0.25, 0.5, 0.75, 1]);
  });
});

describe('gradient methods on a tiny random model', () => {
  it('IG is complete: Σ scores ≈ f(x) − f(zero baseline) within 1% (200 Gauss-Legendre steps)', async () => {
    const token = 5;
    const r = await attribute(tiny, { tokens: PROMPT, target: token, method: 'ig', settings: { steps: 200, batchSize: 100 } });
    // f(x) and f(baseline) from separate plain runs: zeroing hook_embed is the zero baseline.
    const fx = logprobAt(await tiny.run([PROMPT]), 0, PROMPT.length - 1, token);
    const { logits } = await tiny.runWithHooks([PROMPT], { interventions: [{ hook: 'hook_embed', op: 'zero' }] });
    const fb = logprobAt(logits, 0, PROMPT.length - 1, token);
    expect(Math.abs(fx - fb)).toBeGreaterThan(0.05); // a non-trivial difference to explain
    expect(Math.abs(sum(r.scores[0]) - (fx - fb))).toBeLessThan(0.01 * Math.abs(fx - fb));
    expect(Math.abs(r.convergenceDelta![0])).toBeLessThan(0.01 * Math.abs(fx - fb));
    expect(r.target.values[0]).toBeCloseTo(fx, 5);
  });

  it('saliency and input x gradient match central finite differences of log p(target) wrt the embeddings', async () => {
    const token = 42;
    const x = await embeds(tiny, PROMPT);
    const d = cfg.dModel;
    // One batched run: x ± h e_k for every embedding coordinate k (2 · 6 · 64 = 768 inputs).
    const h = 1e-3;
    const sets: Float32Array[] = [];
    for (let k = 0; k < x.length; k++) for (const sgn of [1, -1]) { const e = Float32Array.from(x); e[k] += sgn * h; sets.push(e); }
    const f = await logprobOfEmbeds(tiny, PROMPT, sets, token);
    const fd = Array.from({ length: x.length }, (_, k) => (f[2 * k] - f[2 * k + 1]) / (2 * h));
    const sal = await attribute(tiny, { tokens: PROMPT, target: token, method: 'saliency' });
    const ixg = await attribute(tiny, { tokens: PROMPT, target: token, method: 'input-x-grad' });
    const salFd = PROMPT.map((_, p) => Math.sqrt(sum(fd.slice(p * d, (p + 1) * d).map((g) => g * g))));
    const ixgFd = PROMPT.map((_, p) => sum(fd.slice(p * d, (p + 1) * d).map((g, j) => g * x[p * d + j])));
    // Float32 tolerance: log p ≈ −7 has a rounding error of ~5e-7 per evaluation, so each
    // difference quotient carries ~5e-4 of rounding noise (and O(h²) truncation, far smaller
    // with h = 1e-3 against per-token embedding norms ~0.2); norms over 64 coordinates stay within
    // ~64 · 5e-4 of the truth: 1% of the largest score leaves a wide margin over that noise.
    const salMax = Math.max(...salFd);
    sal.scores[0].forEach((s, p) => expect(Math.abs(s - salFd[p])).toBeLessThan(0.01 * salMax));
    const ixgMax = Math.max(...ixgFd.map(Math.abs));
    ixg.scores[0].forEach((s, p) => expect(Math.abs(s - ixgFd[p])).toBeLessThan(0.01 * ixgMax + 1e-4));
  });

  it('batched IG equals unbatched IG (1e-6), for every row of a continuation target', async () => {
    const opts = { tokens: PROMPT, continuation: [3, 77, 512], method: 'ig' as const };
    const one = await attribute(tiny, { ...opts, settings: { steps: 12, batchSize: 1 } });
    const many = await attribute(tiny, { ...opts, settings: { steps: 12, batchSize: 36 } });
    expect(one.scores).toHaveLength(4);
    one.scores.forEach((row, r) => row.forEach((s, p) => expect(Math.abs(s - many.scores[r][p])).toBeLessThan(1e-6)));
    one.convergenceDelta!.forEach((dl, r) => expect(Math.abs(dl - many.convergenceDelta![r])).toBeLessThan(1e-6));
    // The continuation's sum row is the sum of its token rows (IG and the sum aggregation are linear).
    one.scores[0].forEach((s, p) => expect(s).toBeCloseTo(one.scores[1][p] + one.scores[2][p] + one.scores[3][p], 4));
    expect(one.target.values[0]).toBeCloseTo(sum(one.target.values.slice(1)), 5);
  });

  it('contrastive targets explain the logit difference; prob targets have gradients p · ∇log p', async () => {
    const diff = await attribute(tiny, { tokens: PROMPT, target: 5, foil: 9, method: 'ig', settings: { steps: 64 } });
    const logits = await tiny.run([PROMPT]);
    const V = cfg.dVocab;
    const last = logits.f32.subarray((PROMPT.length - 1) * V, PROMPT.length * V);
    expect(diff.target.values[0]).toBeCloseTo(last[5] - last[9], 5);
    expect(diff.target.kind).toBe('logit-diff');
    const lp = await attribute(tiny, { tokens: PROMPT, target: 5, method: 'saliency' });
    const p = await attribute(tiny, { tokens: PROMPT, target: 5, method: 'saliency', kind: 'prob' });
    const prob = Math.exp(lp.target.values[0]);
    expect(p.target.values[0]).toBeCloseTo(prob, 6);
    p.scores[0].forEach((s, i) => expect(s).toBeCloseTo(prob * lp.scores[0][i], 6));
  });
});

describe('occlusion', () => {
  it('equals leave-one-out computed one masked prompt at a time (zero embedding, and token substitution)', async () => {
    const token = 5;
    const r = await attribute(tiny, { tokens: PROMPT, target: token, method: 'occlusion', settings: { batchSize: 4 } });
    const fx = logprobAt(await tiny.run([PROMPT]), 0, PROMPT.length - 1, token);
    for (let i = 0; i < PROMPT.length; i++) {
      const { logits } = await tiny.runWithHooks([PROMPT], { interventions: [{ hook: 'hook_embed', op: 'zero', positions: [i] }] });
      expect(r.scores[0][i]).toBeCloseTo(fx - logprobAt(logits, 0, PROMPT.length - 1, token), 5);
    }
    const sub = await attribute(tiny, { tokens: PROMPT, target: token, method: 'occlusion', settings: { mask: { token: 0 } } });
    for (let i = 0; i < PROMPT.length; i++) {
      const masked = PROMPT.map((t, j) => (j === i ? 0 : t));
      expect(sub.scores[0][i]).toBeCloseTo(fx - logprobAt(await tiny.run([masked]), 0, PROMPT.length - 1, token), 5);
    }
  });
});

describe('attention methods', () => {
  it('raw attention is the mean pattern row of the target position; rollout rows are distributions', async () => {
    const { cache } = await tiny.runWithCache([PROMPT], ['blocks.1.attn.hook_pattern']);
    const pat = cache.get('blocks.1.attn.hook_pattern');
    const T = PROMPT.length;
    const q = T - 1;
    const r = await attribute(tiny, { tokens: PROMPT, method: 'attention', settings: { layers: [1], heads: [0, 2] } });
    r.scores[0].forEach((s, k) => expect(s).toBeCloseTo((pat.at(0, 0, q, k) + pat.at(0, 2, q, k)) / 2, 6));
    // One layer of rollout: 0.5·e_q + 0.5·A[q] (rows of A already sum to 1).
    const one = await attribute(tiny, { tokens: PROMPT, method: 'rollout', settings: { layers: [1], heads: [2] } });
    one.scores[0].forEach((s, k) => expect(s).toBeCloseTo(0.5 * (k === q ? 1 : 0) + 0.5 * pat.at(0, 2, q, k), 6));
    const all = await attribute(tiny, { tokens: PROMPT, method: 'rollout' });
    expect(sum(all.scores[0])).toBeCloseTo(1, 6);
    expect(all.scores[0].every((s) => s >= 0)).toBe(true);
  });
});

describe('faithfulness', () => {
  it('matches a hand-computed case: f = Σ of the unmasked tokens weights [1, 2, 3, 4], scores [3, 1, 2, 0]', () => {
    const w = [1, 2, 3, 4];
    const { masks, assemble } = faithfulnessPlan([3, 1, 2, 0]);
    const f = masks.map((m) => sum(w.filter((_, i) => !m[i])));
    const r = assemble(f);
    // 10%..100% of 4 tokens: ceil → 1,1,2,2,2,3,3,4,4,4 → distinct k = 1, 2, 3, 4; ranking 0, 2, 1, 3.
    expect(r.k).toEqual([1, 2, 3, 4]);
    expect(r.comprehensiveness).toEqual([1, 4, 6, 10]); // remove {0}, {0,2}, {0,2,1}, all
    expect(r.sufficiency).toEqual([9, 6, 4, 0]); // keep only those
    expect(r.aopcComprehensiveness).toBe(5.25);
    expect(r.aopcSufficiency).toBe(4.75);
    expect(r.leaveOneOut).toEqual([1, 2, 3, 4]);
    // Pairs (scores vs LOO): only (1,2) is concordant, 5 discordant: τ = (1 − 5) / 6.
    expect(r.kendallTauLoo).toBeCloseTo(-2 / 3, 12);
    // τ_b with a tie: (C − D) / sqrt((n0 − n1)(n0 − n2)) = 2 / sqrt(2 · 3).
    expect(kendallTau([1, 1, 2], [1, 2, 3])).toBeCloseTo(2 / Math.sqrt(6), 12);
    expect(kendallTau([1, 1], [1, 2])).toBeNull();
    expect(rationaleSizes(20)).toEqual([2, 4, 6, 8, 10, 12, 14, 16, 18, 20]);
  });

  it('on a model: leave-one-out equals occlusion, and comprehensiveness at 100% is f(x) − f(all masked)', async () => {
    const r = await attribute(tiny, { tokens: PROMPT, target: 5, method: 'saliency', evaluate: true });
    const occ = await attribute(tiny, { tokens: PROMPT, target: 5, method: 'occlusion' });
    const f = r.faithfulness!.rows[0];
    f.leaveOneOut.forEach((v, i) => expect(v).toBeCloseTo(occ.scores[0][i], 5));
    const { logits } = await tiny.runWithHooks([PROMPT], { interventions: [{ hook: 'hook_embed', op: 'zero' }] });
    expect(f.comprehensiveness.at(-1)).toBeCloseTo(r.target.values[0] - logprobAt(logits, 0, PROMPT.length - 1, 5), 5);
    expect(f.sufficiency.at(-1)).toBeCloseTo(0, 6);
  });
});

describe('results', () => {
  it('JSON round trip, weight hashes, renderers', async () => {
    const r = await attribute(tiny, { tokens: PROMPT, target: 5, method: 'ig', settings: { steps: 8 }, evaluate: true, seed: 3 });
    const file = path.join(tmp, 'r.json');
    saveResult(file, r);
    expect(loadResult(file)).toEqual(r);
    expect(r.model.weightsSha256).toMatch(/^[0-9a-f]{64}$/);
    expect(await weightsHash(tiny)).toBe(r.model.weightsSha256);
    expect(await weightsHash(tiny2)).not.toBe(r.model.weightsSha256);
    fs.writeFileSync(path.join(tmp, 'bad.json'), '{"format":"other"}');
    expect(() => loadResult(path.join(tmp, 'bad.json'))).toThrow(/not a Lantern attribution result/);
    const html = renderHtml(r);
    expect(html).toMatch(/^<!DOCTYPE html>/);
    expect(html).not.toMatch(/<script|src=|href=/); // self-contained
    expect(html).toContain('#401');
    expect(html).toContain('Faithfulness');
    expect(html).toContain('&quot;steps&quot;:8');
    const plain = renderTerminal(r, { color: false });
    expect(plain).toContain('#401[');
    expect(renderTerminal(r)).toContain('\x1b[48;2;');
  });

  it('merges subword tokens into words', () => {
    const w = mergeWords(['The', ' Eiff', 'el', ' Tower', ',', ' is'], [[1, 2, 3, 4, 5, 6]]);
    expect(w.words).toEqual(['The', ' Eiffel', ' Tower', ',', ' is']);
    expect(w.spans).toEqual([[0, 1], [1, 3], [3, 4], [4, 5], [5, 6]]);
    expect(w.scores).toEqual([[1, 5, 4, 5, 6]]);
    expect(mergeWords(['a', 'b'], [[1, -3]], 'absmax').scores).toEqual([[-3]]);
  });

  it('rejects bad requests with clear errors', async () => {
    await expect(attribute(tiny, { tokens: PROMPT, method: 'lrp' })).rejects.toThrow(/unknown attribution method 'lrp'/);
    await expect(attribute(tiny, { tokens: PROMPT, foil: 3, method: 'ig' })).rejects.toThrow(/foil needs a target/);
    await expect(attribute(tiny, { tokens: PROMPT, target: 3, foil: 3, method: 'ig' })).rejects.toThrow(/same token/);
    await expect(attribute(tiny, { tokens: PROMPT, method: 'ig', settings: { steps: 0 } })).rejects.toThrow(/steps must be a positive integer/);
    await expect(attribute(tiny, { tokens: PROMPT, method: 'attention', settings: { layers: [5] } })).rejects.toThrow(/layer 5 is outside/);
    await expect(resolveTarget(tiny, PROMPT, { continuation: [1], target: 2 })).rejects.toThrow(/either a continuation or a target/);
  });
});

// ---------------------------------------------------------------------------------------------
// Planted models: ground truth for where the answer comes from.

describe('planted models', () => {
  let induction: HookedTransformer;
  let ngram: HookedTransformer;

  beforeAll(async () => {
    await makePlanted('induction', path.join(tmp, 'induction'), { measure: false });
    await makePlanted('ngram-neuron', path.join(tmp, 'ngram'), { measure: false });
    induction = await loadModel(path.join(tmp, 'induction'));
    ngram = await loadModel(path.join(tmp, 'ngram'));
    loaded.push(induction, ngram);
  });

  // induction.ts: on [s, s] (half-length L), the query at t >= L holds s_{t−L}; the induction head
  // L1H1 attends to key t−L+1 (whose previous token is s_{t−L}) and copies its token — the
  // answer s_{t−L+1} — into OUT, which the unembedding reads. So the token at t−L+1 (the earlier
  // copy's successor) is where the predicted token's identity comes from. Masking the query t or
  // the key's predecessor t−L also breaks the match, but the head then spreads attention over
  // earlier tokens and the answer keeps ~1/t of its logit; masking t−L+1 leaves nothing.
  // Threshold: that position has the largest score for >= 90% of prompts. The target is the
  // answer's logit, which the induction head's OUT write sets directly (β · attention). Its
  // log-prob saturates (p ≈ 1 once the head matches), so IG then shares the credit about equally
  // between the three tokens the match needs (query, predecessor, answer) and the answer wins on only
  // 9 of these 12 prompts — an honest property of IG on an AND, not what this test is about.
  it('induction: occlusion and IG put the largest score on the earlier copy’s successor', async () => {
    const half = 10;
    const prompts = inductionPrompts(12, { half, seed: 21 });
    for (const method of ['occlusion', 'ig'] as const) {
      let hits = 0;
      for (const [i, p] of prompts.entries()) {
        const t = half + (i % (half - 1)); // queries L .. 2L−2 across the prompts
        const r = await attribute(induction, { tokens: p.tokens.slice(0, t + 1), method, kind: 'logit', settings: { steps: 32, batchSize: 32 } });
        expect(r.target.token).toBe(p.tokens[t + 1]); // the model predicts the answer
        if (argmaxOf(r.scores[0]) === t - half + 1) hits++;
      }
      expect(hits / prompts.length, method).toBeGreaterThanOrEqual(0.9);
    }
  });

  // ngram.ts: neuron 13 fires exactly on "t h" (TOK = h, PREV = t via the previous-token head)
  // and writes 'e'. The two largest scores for 'e' must be the bigram's two tokens.
  it('ngram-neuron: attribution for "e" after "t h" is largest on the bigram tokens', async () => {
    const prompts = ngramPrompts(8, { seed: 9, length: 14, bigrams: 1 });
    for (const method of ['occlusion', 'ig', 'input-x-grad'] as const) {
      for (const p of prompts) {
        const end = Number(String(p.meta.bigramEnds).split(',')[0]);
        if (end < 2) continue;
        const r = await attribute(ngram, { tokens: p.tokens.slice(0, end + 1), target: NGRAM.predicts, method, settings: { steps: 32, batchSize: 32 } });
        const top2 = r.scores[0].map((s, k) => [s, k] as const).sort((a, b) => b[0] - a[0]).slice(0, 2).map(([, k]) => k).sort((a, b) => a - b);
        expect(top2, `${method} on ${p.text.slice(0, end + 1)}`).toEqual([end - 1, end]);
      }
    }
  });
});
