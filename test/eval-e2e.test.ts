// End to end on the bundled model, through Lantern's own /v1 server and through the engine
// directly: the same model behind two backends must give the same judge answers and the same
// PriDe numbers, and a judge too small to follow the template still finishes its run with every
// unreadable verdict marked and stored.
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { HttpBackend } from '../src/backends/http.js';
import { LanternBackend } from '../src/backends/lantern.js';
import { serveOpenAI, type RunningServer } from '../src/interfaces/server/openai-compat.js';
import { loadAnswers, loadMcq, loadQuestions, SAMPLE_DATA } from '../src/methods/evaluation/data.js';
import { judgeSingle } from '../src/methods/evaluation/judge.js';
import { pride } from '../src/methods/evaluation/mcq.js';
import { JudgeRunner } from '../src/methods/evaluation/runner.js';
import { EvalStore } from '../src/methods/evaluation/store.js';
import type { HookedTransformer } from '../src/models/hooked.js';
import { loadModel } from '../src/models/load.js';
import { BUNDLED_MODEL } from '../src/paths.js';

let model: HookedTransformer;
let srv: RunningServer;
beforeAll(async () => {
  model = await loadModel(BUNDLED_MODEL);
  srv = await serveOpenAI(model, { id: 'lantern-demo' });
});
afterAll(async () => {
  await srv?.close();
});

describe('evaluation on the bundled model', () => {
  it('PriDe gives the same prior and choices through /v1 as through the engine', async () => {
    const questions = await loadMcq(path.join(SAMPLE_DATA, 'mcq.jsonl'));
    const http = new HttpBackend({ baseURL: srv.baseURL, model: 'lantern-demo' });
    const [viaHttp, direct] = [await pride(http, questions, { estimationSize: 2 }), await pride(new LanternBackend(model), questions, { estimationSize: 2 })];
    viaHttp.prior.forEach((p, i) => expect(Math.abs(p - direct.prior[i])).toBeLessThan(1e-9));
    expect(viaHttp.questions.map((q) => [q.observed, q.debiased])).toEqual(direct.questions.map((q) => [q.observed, q.debiased]));
    expect(viaHttp.prior.reduce((a, b) => a + b, 0)).toBeCloseTo(1, 12);
    expect(viaHttp.calls).toBe(2 * 16 + 6 * 4);
  });

  it('judges through /v1: the answers equal the engine’s, unreadable verdicts are marked and stored', async () => {
    const questions = (await loadQuestions(path.join(SAMPLE_DATA, 'questions.jsonl'))).slice(0, 2);
    const answers = (await loadAnswers(path.join(SAMPLE_DATA, 'answers.jsonl'))).filter((a) => questions.some((q) => q.id === a.questionId) && a.model !== 'wordy');
    const store = new EvalStore();
    const http = new HttpBackend({ baseURL: srv.baseURL, model: 'lantern-demo' });
    const viaHttp = await judgeSingle(new JudgeRunner(http, { store }), { questions, answers, maxTokens: 6 });
    const directStore = new EvalStore();
    const direct = await judgeSingle(new JudgeRunner(new LanternBackend(model), { store: directStore }), { questions, answers, maxTokens: 6 });
    // Greedy generation: the server's text is the engine's text.
    const raw = (s: EvalStore, id: string) => s.verdicts(id).map((v) => [v.item, v.raw]);
    expect(raw(store, viaHttp.runId)).toEqual(raw(directStore, direct.runId));
    expect(viaHttp.judgments.map((j) => [j.score, j.error])).toEqual(direct.judgments.map((j) => [j.score, j.error]));
    expect(viaHttp.judgments.length).toBe(4);
    for (const j of viaHttp.judgments) if (j.score === null) expect(j.error).toMatch(/^unreadable verdict: /);
    expect(store.verdicts(viaHttp.runId).every((v) => typeof v.raw === 'string' && v.prompt.includes('[Assistant reply]'))).toBe(true);
    expect(viaHttp.usage.requests).toBe(4);
  });
});
