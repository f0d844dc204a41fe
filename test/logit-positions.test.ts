// logitPositions: logits computed only at chosen positions must be exactly the full run's logits
// at those positions (same graph up to the last gather), with hooks and gradients unchanged.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { HookedTransformer } from '../src/models/hooked.js';
import { TINY_GPT2 } from '../src/models/random.js';
import { logSoftmaxAt, seededModel } from './helpers.js';

const cfg = { ...TINY_GPT2, nCtx: 16 };
let model: HookedTransformer;
beforeAll(async () => { model = await seededModel(cfg, 5); });
afterAll(async () => { await model.executor.dropWeights(model.weights); });

const PROMPTS = [[3, 14, 15, 92, 65, 35], [8, 97, 93, 23, 84, 62]];

describe('logitPositions', () => {
  it('returns the full run\'s logits at the chosen positions, in the given order, for every prompt', async () => {
    const full = await model.runWithCache(PROMPTS, ['blocks.0.hook_resid_post']);
    const positions = [5, 0, 3];
    const part = await model.runWithHooks(PROMPTS, { logitPositions: positions, cache: ['blocks.0.hook_resid_post'] });
    const V = cfg.dVocab;
    const T = PROMPTS[0].length;
    expect(part.logits.shape).toEqual([2, 3, V]);
    for (let b = 0; b < 2; b++) {
      positions.forEach((p, k) => {
        const want = full.logits.f32.subarray((b * T + p) * V, (b * T + p + 1) * V);
        const got = part.logits.f32.subarray((b * 3 + k) * V, (b * 3 + k + 1) * V);
        expect(Array.from(got)).toEqual(Array.from(want));
      });
    }
    expect(Array.from(part.cache.get('blocks.0.hook_resid_post').f32)).toEqual(Array.from(full.cache.get('blocks.0.hook_resid_post').f32));
  });

  it('leaves gradients and objective values unchanged', async () => {
    const terms = [{ batch: 0, pos: 5, token: 7, kind: 'logprob' as const }, { batch: 1, pos: 2, token: 9, kind: 'logit' as const, coef: -0.5 }];
    const a = await model.gradients(PROMPTS, terms);
    const b = await model.gradients(PROMPTS, terms, { logitPositions: [2, 5] });
    expect(b.terms).toEqual(a.terms);
    expect(Array.from(b.grads.hook_embed.f32)).toEqual(Array.from(a.grads.hook_embed.f32));
    expect(b.logits.shape).toEqual([2, 2, cfg.dVocab]);
    // Positions that leave out a term's: that term's row is unembedded on its own, same numbers.
    const c = await model.gradients(PROMPTS, terms, { logitPositions: [5] });
    expect(c.terms).toEqual(a.terms);
    expect(Array.from(c.grads.hook_embed.f32)).toEqual(Array.from(a.grads.hook_embed.f32));
  });

  it('rejects positions outside the sequence and empty lists', async () => {
    await expect(model.runWithHooks(PROMPTS, { logitPositions: [6] })).rejects.toThrow(/logit position 6 outside the sequence \(length 6\)/);
    await expect(model.runWithHooks(PROMPTS, { logitPositions: [] })).rejects.toThrow(/non-empty/);
  });
});

describe('tokenLogprobs', () => {
  it('scores every token given the ones before it, with the top alternatives, as a float64 log-softmax of the logits does (to 1e-6)', async () => {
    const ids = PROMPTS[0];
    const V = cfg.dVocab;
    const logits = (await model.run([ids])).f32;
    const r = await model.tokenLogprobs(ids, 3);
    expect(r.logprobs.length).toBe(ids.length - 1);
    for (let t = 0; t < ids.length - 1; t++) {
      const row = logits.subarray(t * V, (t + 1) * V);
      expect(Math.abs(r.logprobs[t] - logSoftmaxAt(row, ids[t + 1]))).toBeLessThan(1e-6);
      const order = Array.from(row.keys()).sort((a, b) => row[b] - row[a] || a - b).slice(0, 3);
      expect(r.top[t].map((x) => x.id)).toEqual(order);
      r.top[t].forEach((x) => expect(Math.abs(x.logprob - logSoftmaxAt(row, x.id))).toBeLessThan(1e-6));
    }
    // Without alternatives the scores are the same numbers; one token has nothing to score.
    expect((await model.tokenLogprobs(ids)).logprobs).toEqual(r.logprobs);
    expect(await model.tokenLogprobs([ids[0]])).toEqual({ logprobs: [], top: [] });
    await expect(model.tokenLogprobs(ids, -1)).rejects.toThrow(/topK must be an integer/);
  });
});
