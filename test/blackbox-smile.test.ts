// SMILE against backends whose output is a known function of the prompt's words, with one-hot word
// vectors whose Wasserstein distances have a closed form; then a smoke run on the bundled model.
import { describe, expect, it } from 'vitest';
import { smile, smileMasks } from '../src/methods/blackbox/smile.js';
import { modelEmbedder, textDistance } from '../src/methods/blackbox/embed.js';
import { splitWords } from '../src/methods/blackbox/text.js';
import { weightedLeastSquares } from '../src/methods/attribution/sampling.js';
import { LanternBackend } from '../src/backends/lantern.js';
import { loadModel } from '../src/models/load.js';
import { BUNDLED_MODEL } from '../src/paths.js';
import { oneHotDistance, oneHotWords, RuleBackend } from './blackbox-helpers.js';

const PROMPT = 'the quick brown cat jumps over the lazy dog today';
const has = (p: string, w: string) => splitWords(p).includes(w);

describe('SMILE on a planted backend', () => {
  it('gives the one causal word importance 1, every other word 0, and R² = 1', async () => {
    // The response is one thing when "cat" is in the prompt and an unrelated thing otherwise, so the
    // regression target is exactly 1[cat kept]: the least-squares fit is that indicator itself.
    const backend = new RuleBackend('rule:cat', (p) => (has(p, 'cat') ? 'a cat is here' : 'nothing to report'));
    const r = await smile(backend, PROMPT, { embedder: oneHotWords(), seed: 3 });
    const cat = r.words.indexOf('cat');
    expect(r.words).toEqual(splitWords(PROMPT));
    expect(r.samples.length).toBe(65);
    expect(r.calls).toBe(65);
    expect(backend.generateCalls).toBe(65);
    r.importances.forEach((v, i) => expect(v).toBeCloseTo(i === cat ? 1 : 0, 8));
    expect(r.intercept).toBeCloseTo(0, 8);
    expect(r.r2).toBeCloseTo(1, 10);
    // Every sample's distances and weight, from the closed forms.
    for (const s of r.samples) {
      const kept = s.mask.split('').map((c) => c === '1');
      expect(kept.filter(Boolean).length).toBeGreaterThanOrEqual(2);
      expect(s.prompt).toBe(s.mask === '1'.repeat(10) ? PROMPT : r.words.filter((_, i) => kept[i]).join(' '));
      expect(s.promptDistance).toBeCloseTo(oneHotDistance(PROMPT, s.prompt), 9);
      expect(s.weight).toBeCloseTo(Math.exp(-(s.promptDistance ** 2) / (2 * 0.25 ** 2)), 12);
      expect(s.outputDistance).toBeCloseTo(kept[cat] ? 0 : Math.SQRT2, 9);
      expect(s.target).toBe(kept[cat] ? 1 : 0);
    }
    expect(new Set(r.samples.map((s) => s.mask)).size).toBe(65);
  });

  it('recovers additive causes exactly: importances 3/4 and 1/4 when the words control 3/4 and 1/4 of the response', async () => {
    // "cat" controls three of the response's four words, "dog" one. With one-hot vectors
    // W1 = √2·TV, so the output distance is √2·(3/4·[cat removed] + 1/4·[dog removed]); its max √2
    // (both removed) and min 0 (the prompt) make the target exactly 3/4·z_cat + 1/4·z_dog.
    const backend = new RuleBackend('rule:cat+dog', (p) => `${has(p, 'cat') ? 'feline whiskers purr' : 'plain empty room'} ${has(p, 'dog') ? 'bark' : 'quiet'}`);
    const r = await smile(backend, PROMPT, { embedder: oneHotWords(), seed: 11 });
    r.importances.forEach((v, i) => expect(v).toBeCloseTo(r.words[i] === 'cat' ? 0.75 : r.words[i] === 'dog' ? 0.25 : 0, 8));
    expect(r.r2).toBeCloseTo(1, 10);
    // The targets are 1 − minmax of the closed-form output distances, and the coefficients solve
    // the weighted normal equations built here from those targets.
    const d = r.samples.map((s) => oneHotDistance(r.response, s.response));
    const lo = Math.min(...d);
    const hi = Math.max(...d);
    r.samples.forEach((s, j) => expect(s.target).toBeCloseTo(1 - (d[j] - lo) / (hi - lo), 9));
    const x = r.samples.map((s) => s.mask.split('').map(Number));
    const [coef] = weightedLeastSquares(x, r.samples.map((s) => s.weight), [r.samples.map((s) => s.target)]);
    coef.slice(1).forEach((c, i) => expect(r.importances[i]).toBeCloseTo(c, 9));
  });

  it('with an interaction the linear surrogate is no longer exact, yet ranks the causes first', async () => {
    // "bark" needs both "dog" and "lazy": not additive, so R² < 1; the three causes still lead.
    const backend = new RuleBackend('rule:cat+dog*lazy', (p) => `${has(p, 'cat') ? 'feline whiskers purr' : 'plain empty room'} ${has(p, 'dog') && has(p, 'lazy') ? 'bark' : 'quiet'}`);
    for (const seed of [0, 1]) {
      const r = await smile(backend, PROMPT, { embedder: oneHotWords(), seed });
      const order = r.importances.map((_, i) => i).sort((a, b) => r.importances[b] - r.importances[a]);
      expect(r.words[order[0]]).toBe('cat');
      expect(new Set([r.words[order[1]], r.words[order[2]]])).toEqual(new Set(['dog', 'lazy']));
      const bystanders = r.importances.filter((_, i) => !['cat', 'dog', 'lazy'].includes(r.words[i]));
      expect(Math.max(...bystanders.map(Math.abs))).toBeLessThan(0.5 * r.importances[order[2]]);
      expect(r.r2).toBeGreaterThan(0.95);
      expect(r.r2).toBeLessThan(0.9999);
    }
  });

  it('is deterministic for a seed and draws different masks for another seed', async () => {
    const rule = (p: string) => (has(p, 'lazy') ? 'yes' : 'no');
    const run = (seed: number, concurrency = 1) => smile(new RuleBackend('rule:lazy', rule), PROMPT, { embedder: oneHotWords(), seed, samples: 20, concurrency });
    const [a, b, c, d] = await Promise.all([run(5), run(5), run(6), run(5, 4)]);
    expect(a).toEqual(b);
    // Calls in flight at once change nothing but speed.
    expect(d).toEqual(a);
    expect(a.samples.map((s) => s.mask)).not.toEqual(c.samples.map((s) => s.mask));
    expect(a.words[a.importances.indexOf(Math.max(...a.importances))]).toBe('lazy');
  });

  it('enumerates every admissible mask when there are fewer than asked', () => {
    const m = smileMasks(4, 64, 0.5, 2, 0);
    // |z| = 2 or 3 of 4: C(4,2) + C(4,3) = 10.
    expect(m.length).toBe(10);
    expect(new Set(m.map((z) => z.map(Number).join(''))).size).toBe(10);
    const drawn = smileMasks(12, 64, 0.5, 2, 9);
    expect(drawn.length).toBe(64);
    expect(drawn.every((z) => z.filter(Boolean).length >= 2 && z.filter(Boolean).length < 12)).toBe(true);
  });

  it('rejects bad settings with one clear message', async () => {
    const backend = new RuleBackend('rule:any', () => 'x');
    const e = oneHotWords();
    await expect(smile(backend, PROMPT, { embedder: e, samples: 0 })).rejects.toThrow(/SMILE samples must be an integer ≥ 1, got 0/);
    await expect(smile(backend, PROMPT, { embedder: e, keepProbability: 1 })).rejects.toThrow(/keep probability must be a number strictly between 0 and 1, got 1/);
    await expect(smile(backend, PROMPT, { embedder: e, kernelWidth: -1 })).rejects.toThrow(/kernel width σ must be a positive number/);
    await expect(smile(backend, 'two words', { embedder: e })).rejects.toThrow(/more than 2 words/);
    await expect(smile(backend, PROMPT, { embedder: e, samples: 5 })).rejects.toThrow(/needs at least 10 perturbed prompts/);
    expect(backend.generateCalls).toBe(0);
  });
});

describe('SMILE on the bundled model (LanternBackend)', async () => {
  const model = await loadModel(BUNDLED_MODEL);
  const backend = new LanternBackend(model);
  const embedder = modelEmbedder(model);

  it('explains a real generation with a sensible result and exactly samples + 1 calls', async () => {
    const prompt = 'The old man walked to the river';
    const before = backend.usage().requests;
    const progress: number[] = [];
    const r = await smile(backend, prompt, { embedder, samples: 10, maxTokens: 4, seed: 1, onProgress: (d) => progress.push(d) });
    expect(backend.usage().requests - before).toBe(11);
    expect(progress).toEqual(Array.from({ length: 11 }, (_, i) => i + 1));
    expect(r.backend).toBe(backend.id);
    expect(r.embedder).toBe(`${BUNDLED_MODEL}#hook_embed`);
    expect(r.words).toEqual(['The', 'old', 'man', 'walked', 'to', 'the', 'river']);
    expect(r.importances.every(Number.isFinite)).toBe(true);
    expect(r.r2).toBeLessThanOrEqual(1 + 1e-12);
    expect(r.response).toBe((await backend.generate(prompt, { maxTokens: 4 })).text);
    for (const s of r.samples) {
      expect(s.outputDistance === 0).toBe(s.response === r.response || (await textDistance(embedder, s.response, r.response)) === 0);
      expect(s.target).toBeGreaterThanOrEqual(0);
      expect(s.target).toBeLessThanOrEqual(1);
      expect(s.weight).toBeGreaterThan(0);
      expect(s.weight).toBeLessThanOrEqual(1);
    }
    expect(r.samples[0]).toMatchObject({ prompt, outputDistance: 0, promptDistance: 0, weight: 1, target: 1 });
  });

  it('embeds tokens as unit vectors whose single-token distance is the Euclidean one', async () => {
    const [a] = await embedder.embed(' river');
    const [b] = await embedder.embed(' water');
    expect(Math.hypot(...a)).toBeCloseTo(1, 9);
    expect(await textDistance(embedder, ' river', ' water')).toBeCloseTo(Math.hypot(...a.map((v, i) => v - b[i])), 9);
    expect(await textDistance(embedder, ' river', '')).toBeCloseTo(1, 9);
  });
});

describe('SMILE on huge prompts', () => {
  const HUGE = Array.from({ length: 24_000 }, (_, i) => `w${i % 97}`).join(' ');

  it('checks the context length before drawing a single mask', async () => {
    const model = await loadModel(BUNDLED_MODEL);
    const backend = new LanternBackend(model);
    const n = model.toTokens(HUGE).length;
    await expect(smile(backend, HUGE, { embedder: oneHotWords(), samples: 24_000 }))
      .rejects.toThrow(`the prompt is ${n} tokens; with 24 response tokens it does not fit ${backend.id}'s context of 256 tokens`);
    expect(backend.usage().requests).toBe(0);
  });

  it('refuses, before its first call, the samples that would not fit the heap, and the advice to raise them is given first', async () => {
    const backend = new RuleBackend('rule:any', () => 'ok');
    await expect(smile(backend, HUGE, { embedder: oneHotWords(), samples: 64 })).rejects.toThrow('SMILE over 24000 words needs at least 24000 perturbed prompts for its regression, got 64; raise the samples');
    await expect(smile(backend, HUGE, { embedder: oneHotWords(), samples: 24_000 })).rejects.toThrow(/^SMILE over 24000 words with 24000 samples needs about [\d.]+ GiB of JavaScript memory, more than half of this process's [\d.]+ GiB heap; use a shorter prompt$/);
    expect(backend.generateCalls).toBe(0);
  });
});
