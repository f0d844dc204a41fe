// Model-agnostic perturbation attribution (src/methods/attribution/agnostic.ts, features.ts):
// the same occlusion / KernelSHAP code on the white-box engine and on a planted model served over
// HTTP by Lantern's OpenAI-compatible plugin, which must agree when both perturb identically
// (token-id prompts, { token } masking) to the precision of the served numbers: the server's
// log-softmax runs inside the graph (float32 exponentials, float64 sum), the white-box one in
// float64 JavaScript over the same float32 logits (2e-6 here; a wrong token, position or prompt is off by
// orders of magnitude more); the planted bigram as the cause SHAP
// must find; and word / sentence features, checked against hand-written perturbed prompts.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { HttpBackend } from '../src/backends/http.js';
import { LanternBackend } from '../src/backends/lantern.js';
import type { Continuation, LanguageModelBackend, Prompt } from '../src/backends/types.js';
import { serveOpenAI, RunningServer } from '../src/interfaces/server/openai-compat.js';
import {
  attribute, explainWithBackend, loadResult, parseResult, resultToJSON, saveResult, textUnits, tokenSpans,
} from '../src/methods/attribution/index.js';
import type { HookedTransformer } from '../src/models/hooked.js';
import { loadModel } from '../src/models/load.js';
import { makePlanted, ngramPrompts, NGRAM, SPACE } from '../src/models/planted/index.js';
import { logSoftmaxAt } from '../src/models/predictions.js';
import { BUNDLED_MODEL } from '../src/paths.js';

let tmp: string;
let ngram: HookedTransformer;
let srv: RunningServer;
let http: HttpBackend;

beforeAll(async () => {
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'lantern-agnostic-'));
  await makePlanted('ngram-neuron', path.join(tmp, 'ngram'), { measure: false });
  ngram = await loadModel(path.join(tmp, 'ngram'));
  srv = await serveOpenAI(ngram, { id: 'ngram' });
  http = new HttpBackend({ baseURL: srv.baseURL, model: 'ngram', concurrency: 4 });
});
afterAll(async () => {
  await srv?.close();
  fs.rmSync(tmp, { recursive: true, force: true });
});

/** Prompts ending on the planted bigram "t h", whose neuron writes 'e'. */
function bigramPrompts(n: number, length: number, seed: number): { tokens: number[]; end: number }[] {
  return ngramPrompts(n, { seed, length, bigrams: 1 })
    .map((p) => ({ p, end: Number(String(p.meta.bigramEnds).split(',')[0]) }))
    .filter(({ end }) => end >= 2)
    .map(({ p, end }) => ({ tokens: p.tokens.slice(0, end + 1), end }));
}

// The server's log-probs (float32 exp, float64 sum) against float64 JavaScript: ~2e-7 apart each.
const FLOAT32_LOGPROB = 2e-6;
const top = (row: number[], k: number) => row.map((s, i) => [s, i] as const).sort((a, b) => b[0] - a[0]).slice(0, k).map(([, i]) => i);

describe('black-box over HTTP equals white-box on a planted model', () => {
  it('leave-one-out: identical scores and values, { token } masking, token-id prompts', async () => {
    const mask = { token: SPACE };
    let worst = 0;
    for (const { tokens } of bigramPrompts(6, 12, 5)) {
      const white = await attribute(ngram, { tokens, target: NGRAM.predicts, method: 'occlusion', settings: { mask } });
      const black = await explainWithBackend(http, { prompt: tokens, target: [NGRAM.predicts], method: 'occlusion', mask });
      expect(Math.abs(black.target.values[0] - white.target.values[0])).toBeLessThan(FLOAT32_LOGPROB);
      expect(black.scores[0].length).toBe(tokens.length);
      black.scores[0].forEach((s, i) => (worst = Math.max(worst, Math.abs(s - white.scores[0][i]))));
      expect(black.backend.approximate).toBe(false);
      expect(black.tokens).toEqual(tokens);
    }
    // Same float32 logits; the server's exponentials are float32.
    expect(worst).toBeLessThan(FLOAT32_LOGPROB);
  });

  it('KernelSHAP: the same estimator on both sides gives the same scores; the top token is in the planted bigram', async () => {
    const mask = { token: SPACE };
    for (const { tokens, end } of bigramPrompts(3, 7, 11)) {
      const black = await explainWithBackend(http, { prompt: tokens, target: [NGRAM.predicts], method: 'shap', mask, seed: 1 });
      const white = await attribute(ngram, { tokens, target: NGRAM.predicts, method: 'shap', settings: { mask }, seed: 1 });
      expect(black.settings.enumerated).toBe(true); // 2^n − 2 coalitions fit the default budget: exact Shapley values
      black.scores[0].forEach((s, i) => expect(Math.abs(s - white.scores[0][i])).toBeLessThan(FLOAT32_LOGPROB));
      // The neuron fires on "t h" only: the two largest Shapley values are the bigram's tokens.
      expect(top(black.scores[0], 2).sort((a, b) => a - b)).toEqual([end - 1, end]);
      expect([end - 1, end]).toContain(top(black.scores[0], 1)[0]);
    }
  });

  it('faithfulness through the backend equals the white-box evaluation', async () => {
    const [{ tokens }] = bigramPrompts(1, 10, 3);
    const mask = { token: SPACE };
    const black = await explainWithBackend(http, { prompt: tokens, target: [NGRAM.predicts], method: 'occlusion', mask, evaluate: true });
    const white = await attribute(ngram, { tokens, target: NGRAM.predicts, method: 'occlusion', settings: { mask }, evaluate: true });
    const [b, w] = [black.faithfulness!.rows[0], white.faithfulness!.rows[0]];
    expect(Object.keys(b)).toEqual(Object.keys(w));
    expect(b.k).toEqual(w.k);
    const numbers = (r: object): number[] => Object.values(r).flatMap((v) => (Array.isArray(v) ? v.flat(2) : [v])).filter((v): v is number => typeof v === 'number');
    const [nb, nw] = [numbers(b), numbers(w)];
    expect(nb.length).toBe(nw.length);
    nb.forEach((x, i) => expect(Math.abs(x - nw[i]), `faithfulness number ${i}`).toBeLessThan(FLOAT32_LOGPROB));
    // The saved result reloads.
    const file = path.join(tmp, 'black.json');
    saveResult(file, black);
    const back = loadResult(file) as typeof black;
    expect(back.scores).toEqual(black.scores);
    expect(back.backend.id).toBe(http.id);
    expect(back.settings).toMatchObject({ granularity: 'token', mask, kind: 'logprob' });
  });
});

/** Records every prompt a backend is asked to score. */
class Recording implements LanguageModelBackend {
  readonly prompts: Prompt[] = [];
  constructor(private readonly inner: LanternBackend) {}
  get id() { return this.inner.id; }
  scoreContinuation(p: Prompt, c: Continuation) { this.prompts.push(p); return this.inner.scoreContinuation(p, c); }
  generate(p: Prompt, o: { maxTokens: number }) { return this.inner.generate(p, o); }
  tokenize(t: string) { return this.inner.tokenize(t); }
  detokenize(ids: number[]) { return this.inner.detokenize(ids); }
  usage() { return this.inner.usage(); }
}

describe('word and sentence features', () => {
  let demo: HookedTransformer;
  beforeAll(async () => {
    demo = await loadModel(BUNDLED_MODEL);
  });

  it('splits text into words and sentences that rebuild it', () => {
    expect(textUnits('The cat sat.  On the mat!', 'word')).toEqual(['The', ' cat', ' sat.', '  On', ' the', ' mat!']);
    expect(textUnits(' He left. She stayed! Why? ok', 'sentence')).toEqual([' He left.', ' She stayed!', ' Why?', ' ok']);
    expect(textUnits('Dr. Smith went home.\n', 'sentence')).toEqual(['Dr.', ' Smith went home.\n']);
    expect(tokenSpans(['The', ' cat', 'ty', ' sat', '.', ' It', ' ran', '.'], 'word')).toEqual([[0, 1], [1, 3], [3, 5], [5, 6], [6, 8]]);
    expect(tokenSpans(['The', ' cat', ' sat', '.', ' It', ' ran', '.'], 'sentence')).toEqual([[0, 4], [4, 7]]);
  });

  it('black-box word leave-one-out deletes each word and scores the continuation', async () => {
    const rec = new Recording(new LanternBackend(demo));
    const text = 'The jury said that the city';
    const r = await explainWithBackend(rec, { prompt: text, target: ' was', method: 'occlusion' });
    expect(r.tokenStrings).toEqual(['The', ' jury', ' said', ' that', ' the', ' city']);
    expect(rec.prompts.slice(-7)).toEqual([
      text, 'jury said that the city', 'The said that the city', 'The jury that the city',
      'The jury said the city', 'The jury said that city', 'The jury said that the',
    ]);
    // Independently: log p(" was" | prompt) from the engine's logits.
    const lp = async (s: string) => {
      const ids = [...demo.toTokens(s), demo.toTokens(' was')[0]];
      const logits = await demo.run([ids]);
      const V = demo.cfg.dVocab;
      return logSoftmaxAt(logits.f32.subarray((ids.length - 2) * V, (ids.length - 1) * V), ids[ids.length - 1]);
    };
    const fx = await lp(text);
    const want: number[] = [];
    for (const p of rec.prompts.slice(-6)) want.push(fx - (await lp(p as string)));
    r.scores[0].forEach((s, i) => expect(Math.abs(s - want[i])).toBeLessThan(FLOAT32_LOGPROB));
    expect(r.granularity).toBe('word');
    expect(r.target.rows).toEqual(['logprob(" was")']);
  });

  it('black-box sentence occlusion with { text } masking, and a multi-token continuation gives sum + per-token rows', async () => {
    const rec = new Recording(new LanternBackend(demo));
    const text = 'He went home. The door was open.';
    const r = await explainWithBackend(rec, { prompt: text, target: ' He sat down', method: 'occlusion', granularity: 'sentence', mask: { text: '...' } });
    expect(r.tokenStrings).toEqual(['He went home.', ' The door was open.']);
    expect(rec.prompts.slice(-2)).toEqual(['... The door was open.', 'He went home. ...']);
    expect(r.target.rows).toEqual(['sum logprob(continuation)', 'logprob(" He")', 'logprob(" sat")', 'logprob(" down")']);
    r.scores.slice(1).reduce((acc, row) => acc.map((v, i) => v + row[i]), [0, 0]).forEach((v, i) => expect(v).toBeCloseTo(r.scores[0][i], 9));
  });

  it('white-box word occlusion masks every token of a word together', async () => {
    const text = 'The antidisestablishment jury said';
    const ids = demo.toTokens(text);
    const strs = demo.tokenStrings(ids);
    const r = await attribute(demo, { text, target: ' that', method: 'occlusion', settings: { granularity: 'word', mask: { token: SPACE } } });
    const spans = tokenSpans(strs, 'word');
    expect(spans.length).toBe(4);
    expect(spans.some(([a, b]) => b - a > 1)).toBe(true); // " antidisestablishment" is three tokens
    expect(r.tokenStrings).toEqual(['The', ' antidisestablishment', ' jury', ' said']);
    expect(r.spans).toEqual(spans);
    const that = demo.toTokens(' that')[0];
    const V = demo.cfg.dVocab;
    const lp = async (t: number[]) => logSoftmaxAt((await demo.run([t])).f32.subarray((t.length - 1) * V, t.length * V), that);
    const fx = await lp(ids);
    for (const [w, [a, b]] of spans.entries()) {
      const masked = ids.map((t, i) => (i >= a && i < b ? SPACE : t));
      expect(r.scores[0][w]).toBeCloseTo(fx - (await lp(masked)), 4);
    }
    // The JSON keeps the full prompt and the spans, and reloads.
    const back = parseResult(JSON.parse(JSON.stringify(resultToJSON(r))));
    expect(back.tokens).toEqual(ids);
    expect(back.spans).toEqual(spans);
    // The sampling methods take the same features.
    const shap = await attribute(demo, { text, target: ' that', method: 'shap', settings: { granularity: 'word', mask: { token: SPACE } } });
    expect(shap.scores[0].length).toBe(4);
    const total = shap.scores[0].reduce((p, q) => p + q, 0);
    expect(total).toBeCloseTo(fx - (await lp(ids.map(() => SPACE))), 4); // efficiency: Σφ = f(x) − f(∅)
  });

  it('bad input is a clear error', async () => {
    const b = new LanternBackend(demo);
    await expect(explainWithBackend(b, { prompt: [1, 2], target: [3], method: 'lime', granularity: 'word' })).rejects.toThrow(/word granularity needs a text prompt/);
    await expect(explainWithBackend(b, { prompt: 'a b', target: ' c', method: 'ig' })).rejects.toThrow(/unknown perturbation method 'ig'/);
    await expect(explainWithBackend(b, { prompt: 'a b', target: ' c', method: 'occlusion', mask: { token: 5 } })).rejects.toThrow(/word granularity masks with 'delete' or \{ text/);
    await expect(explainWithBackend(b, { prompt: [1, 2], target: [3], method: 'shap' })).rejects.toThrow(/deleting every token leaves an empty prompt/);
    await expect(explainWithBackend(b, { prompt: 'a b', target: ' c', method: 'occlusion', kind: 'logit' as never })).rejects.toThrow(/logits are not visible/);
    await expect(attribute(demo, { text: 'a b', method: 'occlusion', settings: { granularity: 'phrase' as never } })).rejects.toThrow(/unknown granularity 'phrase'/);
  });
});
