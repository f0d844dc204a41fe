import { describe, expect, it } from 'vitest';
import { LanternBackend } from '../src/backends/lantern.js';
import { loadModel } from '../src/models/load.js';
import { logSoftmaxAt } from '../src/models/predictions.js';
import { BUNDLED_MODEL } from '../src/paths.js';

describe('LanternBackend', async () => {
  const model = await loadModel(BUNDLED_MODEL);
  const backend = new LanternBackend(model);

  it('scores a continuation token by token, as separate next-token runs would', async () => {
    const prompt = 'The jury said that the';
    const continuation = ' city was clean';
    const s = await backend.scoreContinuation(prompt, continuation);
    const p = model.toTokens(prompt);
    const c = model.toTokens(continuation);
    expect(s.tokens).toEqual(model.tokenStrings(c));
    for (let t = 0; t < c.length; t++) {
      const prefix = [...p, ...c.slice(0, t)];
      const logits = await model.run([prefix]);
      const V = model.cfg.dVocab;
      const expected = logSoftmaxAt(logits.f32.subarray((prefix.length - 1) * V, prefix.length * V), c[t]);
      expect(s.logprobs[t]).toBeCloseTo(expected, 4);
    }
    expect(s.total).toBeCloseTo(s.logprobs.reduce((a, b) => a + b, 0), 6);
    expect(s.approximate).toBe(false);
    // Token-id prompts score the same as text prompts.
    expect((await backend.scoreContinuation(p, continuation)).total).toBeCloseTo(s.total, 5);
  });

  it('generates greedily, deterministically, honouring stop strings and counting usage', async () => {
    const before = backend.usage().requests;
    const a = await backend.generate('He opened the door and', { maxTokens: 8 });
    const b = await backend.generate('He opened the door and', { maxTokens: 8 });
    expect(a.text).toBe(b.text);
    expect(a.text.length).toBeGreaterThan(0);
    const firstWord = a.text.trim().split(' ')[1];
    if (firstWord) {
      const cut = await backend.generate('He opened the door and', { maxTokens: 8, stop: [firstWord] });
      expect(cut.text).toBe(a.text.slice(0, a.text.indexOf(firstWord)));
    }
    expect(backend.usage().requests).toBe(before + (firstWord ? 3 : 2));
  });

  it('rejects an empty continuation with a clear error', async () => {
    await expect(backend.scoreContinuation('Hello', '')).rejects.toThrow(/empty continuation/);
  });
});
