// CELL and m-CELL against a backend whose response flips on exactly one planted word, with
// infills from a backend whose words are a known function of the seed; the budget is checked
// against the backend's own call count. Then a smoke run on the bundled model.
import { describe, expect, it } from 'vitest';
import { cell, mcell } from '../src/methods/blackbox/cell.js';
import { bleuScorer, preferencePrompt, preferenceScorer } from '../src/methods/blackbox/scorers.js';
import { backendInfiller } from '../src/methods/blackbox/infill.js';
import { bleu } from '../src/methods/blackbox/bleu.js';
import { splitWords } from '../src/methods/blackbox/text.js';
import { LanternBackend } from '../src/backends/lantern.js';
import { loadModel } from '../src/models/load.js';
import { BUNDLED_MODEL } from '../src/paths.js';
import { RuleBackend } from './blackbox-helpers.js';

const PROMPT = 'please write me a good review of the new film';
const PRAISE = 'the film was wonderful and moving from start to end';
const REFUSAL = 'i will not write that review today';
const flips = () => new RuleBackend('rule:good', (p) => (splitWords(p).includes('good') ? PRAISE : REFUSAL));
const WORDS = ['blue', 'seven', 'quiet', 'river', 'stone', 'green', 'paper', 'north', 'glass', 'amber', 'cloud'];
/** An infill model: writes three words chosen by the sampling seed. */
const wordModel = () => new RuleBackend('rule:words', (_p, o) => [0, 1, 2].map((k) => WORDS[((o.seed ?? 0) + 3 * k) % WORDS.length]).join(' '));
/** The BLEU score as CELL defines it, from the BLEU implementation checked by hand in blackbox-core. */
const bleuScore = (x0: string, y0: string, x1: string, y1: string) => 0.8 * (1 - bleu(y0, y1, { smooth: true })) + 0.2 * bleu(x0, x1, { smooth: true });

describe('m-CELL', () => {
  it('finds the one-word edit that flips the response, after one round over every word', async () => {
    const model = flips();
    const r = await mcell(model, PROMPT, { scorer: bleuScorer(), infiller: backendInfiller(wordModel()), budget: 50, seed: 0 });
    const words = splitWords(PROMPT);
    expect(r.found).toBe(true);
    expect(r.stopReason).toBe('found');
    expect(r.edits).toHaveLength(1);
    expect(r.edits[0]).toMatchObject({ position: words.indexOf('good'), from: 'good' });
    expect(WORDS).toContain(r.edits[0].to);
    expect(r.editedPrompt).toBe(words.map((w) => (w === 'good' ? r.edits[0].to : w)).join(' '));
    expect(r.response).toBe(PRAISE);
    expect(r.editedResponse).toBe(REFUSAL);
    expect(r.score).toBeCloseTo(bleuScore(PROMPT, PRAISE, r.editedPrompt, REFUSAL), 12);
    expect(r.score).toBeGreaterThan(0.5);
    // The original, then one edit at each of the 10 words.
    expect(r.calls.model).toBe(11);
    expect(model.generateCalls).toBe(11);
    expect(r.calls.infiller).toBe(10);
    expect(r.candidates).toBe(10);
  });

  it('edits whole chunks of k words within sentences', async () => {
    const prompt = 'please write me a good review. of the new film';
    const r = await mcell(flips(), prompt, { scorer: bleuScorer(), infiller: backendInfiller(wordModel()), budget: 50, chunkWords: 2 });
    expect(r.chunks).toEqual(['please write', 'me a', 'good review.', 'of the', 'new film']);
    expect(r.found).toBe(true);
    expect(r.edits).toHaveLength(1);
    expect(r.edits[0].position).toBe(2);
    expect(r.edits[0].to).toMatch(/^\w+ \w+\.$/);
    expect(r.calls.model).toBe(6);
  });

  it('flips under an LLM-judge preference scorer, with P(A) − P(B) as the judge gives it', async () => {
    // The judge prefers whichever response praises the film: log p = −0.5 vs −3.
    const judge = new RuleBackend('rule:judge', () => '', (prompt, c) => {
      const a = /RESPONSE A: the film was wonderful/.test(prompt);
      return (c === ' A') === a ? -0.5 : -3;
    });
    const r = await mcell(flips(), PROMPT, { scorer: preferenceScorer(judge), infiller: backendInfiller(wordModel()), budget: 50 });
    const pA = Math.exp(-0.5);
    const pB = Math.exp(-3);
    expect(r.found).toBe(true);
    expect(r.edits.map((e) => e.from)).toEqual(['good']);
    expect(r.score).toBeCloseTo(pA / (pA + pB) - pB / (pA + pB), 12);
    // Identical responses score 0 without asking the judge: only the flipped one was judged.
    expect(r.calls.judge).toBe(2);
    expect(judge.scoreCalls).toBe(2);
    const raw = preferenceScorer(judge, { normalize: false });
    expect(await raw.score(PROMPT, PRAISE, 'x', REFUSAL)).toBeCloseTo(pA - pB, 12);
    expect(await raw.score(PROMPT, REFUSAL, 'x', PRAISE)).toBeCloseTo(pB - pA, 12);
    expect(await raw.score(PROMPT, PRAISE, 'x', PRAISE)).toBe(0);
    // The same response judged again costs no calls, and none are counted.
    const counted = preferenceScorer(judge);
    const before = judge.scoreCalls;
    await counted.score(PROMPT, PRAISE, 'x', REFUSAL);
    await counted.score(PROMPT, PRAISE, 'y', REFUSAL);
    expect(counted.calls()).toBe(2);
    expect(judge.scoreCalls - before).toBe(2);
    expect(preferencePrompt('Q', 'a', 'b')).toBe('POST: Q\n\n RESPONSE A: a. \n\n RESPONSE B: b. \n\n Which response is better? RESPONSE');
  });
});

describe('infilling with a backend', () => {
  it('reads the left context, keeps the chunk\'s closing punctuation, and retries with new seeds', async () => {
    const lm = wordModel();
    const inf = backendInfiller(lm);
    const chunks = ['I', 'liked', 'the', 'good old', 'film.'];
    // Seed 0 writes "blue river paper": one word for a one-word chunk, two for two.
    expect(await inf.infill(chunks, 4, 0)).toBe('blue.');
    expect(await inf.infill(chunks, 3, 0)).toBe('blue river');
    expect(await inf.infill(chunks, 0, 1)).toBe('seven');
    expect(lm.prompts).toEqual(['I liked the good old', 'I liked the', '\n']);
    // A model that repeats the chunk gets `attempts` tries, then the chunk is deleted.
    const parrot = new RuleBackend('rule:parrot', () => 'film.');
    const p = backendInfiller(parrot, { attempts: 2 });
    expect(await p.infill(chunks, 4, 0)).toBe('');
    expect(parrot.generateCalls).toBe(2);
    expect(p.calls()).toBe(2);
  });
});

describe('CELL', () => {
  it('finds the flip within budget for every seed, with calls counted exactly', async () => {
    for (const seed of [0, 1, 2, 3, 4]) {
      const model = flips();
      const r = await cell(model, PROMPT, { scorer: bleuScorer(), infiller: backendInfiller(wordModel()), budget: 30, seed });
      expect(r.found, `seed ${seed}`).toBe(true);
      // It stops at the first contrast rather than spending the rest of the budget.
      expect(r.stopReason).toBe('found');
      expect(Math.abs(r.score)).toBeGreaterThan(0.5);
      expect(r.edits.map((e) => e.from)).toContain('good');
      expect(r.editedResponse).toBe(REFUSAL);
      expect(r.score).toBeCloseTo(bleuScore(PROMPT, PRAISE, r.editedPrompt, REFUSAL), 12);
      expect(r.calls.model).toBeLessThanOrEqual(30);
      expect(model.generateCalls).toBe(r.calls.model);
      // The edited prompt is the original with exactly the listed edits.
      const chunks = [...r.chunks];
      for (const e of r.edits) {
        expect(chunks[e.position]).toBe(e.from);
        chunks[e.position] = e.to;
      }
      expect(r.editedPrompt).toBe(chunks.filter(Boolean).join(' '));
      expect(new Set(r.edits.map((e) => e.position)).size).toBe(r.edits.length);
    }
  });

  it('is deterministic for a seed', async () => {
    const run = (seed: number) => cell(flips(), PROMPT, { scorer: bleuScorer(), infiller: backendInfiller(wordModel()), budget: 30, seed });
    expect(await run(7)).toEqual(await run(7));
  });

  it('never exceeds the budget when no edit can flip the response', async () => {
    for (const budget of [2, 3, 5, 13, 40, 100]) {
      for (const search of [cell, mcell]) {
        const model = new RuleBackend('rule:constant', () => REFUSAL);
        const r = await search(model, PROMPT, { scorer: bleuScorer(), infiller: backendInfiller(wordModel()), budget, seed: budget });
        expect(model.generateCalls, `${r.method} budget ${budget}`).toBeLessThanOrEqual(budget);
        expect(r.calls.model).toBe(model.generateCalls);
        expect(r.found).toBe(false);
        expect(r.editedResponse).toBe(REFUSAL);
        // Unchanged responses score 0.2·BLEU(prompt, edited prompt) < ε.
        expect(r.score).toBeCloseTo(bleuScore(PROMPT, REFUSAL, r.editedPrompt, REFUSAL), 12);
        if (r.method === 'cell') expect(r.stopReason).toBe('budget');
        if (r.stopReason === 'budget') expect(r.calls.model).toBe(budget);
      }
    }
  });

  it('never pays twice for the same edited prompt', async () => {
    // An infiller that always writes "blue" makes the same edit sets reachable along many paths.
    for (const search of [cell, mcell]) {
      const model = new RuleBackend('rule:constant', () => REFUSAL);
      const blue = new RuleBackend('rule:blue', () => 'blue');
      const r = await search(model, PROMPT, { scorer: bleuScorer(), infiller: backendInfiller(blue), budget: 60, seed: 1 });
      expect(new Set(model.prompts).size).toBe(model.prompts.length);
      expect(r.calls.model).toBe(model.prompts.length);
    }
  });

  it('rejects bad settings with one clear message, before calling the model', async () => {
    const model = flips();
    const o = { scorer: bleuScorer(), infiller: backendInfiller(wordModel()) };
    await expect(cell(model, PROMPT, { ...o, budget: 1 })).rejects.toThrow(/CELL budget \(model calls\) must be an integer ≥ 2, got 1/);
    await expect(cell(model, PROMPT, { ...o, epsilon: -0.1 })).rejects.toThrow(/CELL epsilon must be a non-negative number, got -0.1/);
    await expect(mcell(model, PROMPT, { ...o, alpha: 2 })).rejects.toThrow(/CELL alpha must be a number in \[0, 1\], got 2/);
    await expect(cell(model, PROMPT, { ...o, chunkWords: 0 })).rejects.toThrow(/chunk size \(words\) must be an integer ≥ 1/);
    await expect(cell(model, PROMPT, { ...o, budget: 2.5 })).rejects.toThrow(/must be an integer/);
    await expect(cell(model, '   ', o)).rejects.toThrow(/prompt is empty/);
    expect(model.generateCalls).toBe(0);
  });
});

describe('CELL on the bundled model (LanternBackend as model and infiller)', async () => {
  const model = await loadModel(BUNDLED_MODEL);
  const backend = new LanternBackend(model);

  it('returns a consistent explanation and respects the budget', async () => {
    const prompt = 'The old man walked to the river';
    for (const search of [cell, mcell]) {
      const before = backend.usage().requests;
      const r = await search(backend, prompt, { scorer: bleuScorer(), infiller: backendInfiller(backend), budget: 5, maxTokens: 3, seed: 2 });
      expect(r.calls.model).toBeLessThanOrEqual(5);
      // One backend answers both the model's and the infiller's calls.
      expect(backend.usage().requests - before).toBe(r.calls.model + r.calls.infiller);
      expect(r.backend).toBe(`lantern:${BUNDLED_MODEL}`);
      expect(r.chunks).toEqual(splitWords(prompt));
      expect(r.response).toBe((await backend.generate(prompt, { maxTokens: 3 })).text);
      expect(r.edits.length).toBeGreaterThan(0);
      const chunks = [...r.chunks];
      for (const e of r.edits) chunks[e.position] = e.to;
      expect(r.editedPrompt).toBe(chunks.filter(Boolean).join(' '));
      expect(r.editedResponse).toBe((await backend.generate(r.editedPrompt, { maxTokens: 3 })).text);
      expect(r.score).toBeCloseTo(bleuScore(prompt, r.response, r.editedPrompt, r.editedResponse), 12);
      expect(r.found).toBe(Math.abs(r.score) > 0.5);
    }
  });
});
