// Evaluation on the GGUF backend: the bundled model exported to GGUF and run by llama.cpp. PriDe's
// prior over option IDs must match the engine's (llama.cpp's logits agree to ~5e-3), and a judge
// run through GGUF stores every verdict like any other backend's.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openBackend } from '../src/backends/index.js';
import { exportGguf } from '../src/backends/gguf-export.js';
import { LanternBackend } from '../src/backends/lantern.js';
import type { LanguageModelBackend } from '../src/backends/types.js';
import { loadAnswers, loadMcq, loadQuestions, SAMPLE_DATA } from '../src/methods/evaluation/data.js';
import { judgeSingle } from '../src/methods/evaluation/judge.js';
import { pride } from '../src/methods/evaluation/mcq.js';
import { JudgeRunner } from '../src/methods/evaluation/runner.js';
import { EvalStore } from '../src/methods/evaluation/store.js';
import { loadModel } from '../src/models/load.js';
import { BUNDLED_MODEL } from '../src/paths.js';

let tmp: string;
let gguf: LanguageModelBackend;
beforeAll(async () => {
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'lantern-eval-gguf-'));
  const file = path.join(tmp, 'demo.gguf');
  exportGguf(BUNDLED_MODEL, file, { dtype: 'f32' });
  // One thread: llama.cpp's threads spin-wait for each other, which stalls on a busy shared machine.
  gguf = await openBackend(`gguf:${file}`, { threads: 1 });
}, 60_000);
afterAll(async () => {
  await gguf?.close?.();
  fs.rmSync(tmp, { recursive: true, force: true });
});

describe('evaluation through GGUF', () => {
  it("PriDe's prior matches the engine's", async () => {
    const questions = await loadMcq(path.join(SAMPLE_DATA, 'mcq.jsonl'));
    const viaGguf = await pride(gguf, questions, { estimationSize: 2, concurrency: 1 });
    const direct = await pride(new LanternBackend(await loadModel(BUNDLED_MODEL)), questions, { estimationSize: 2 });
    viaGguf.prior.forEach((p, i) => expect(Math.abs(p - direct.prior[i])).toBeLessThan(5e-3));
    expect(viaGguf.estimation).toEqual(direct.estimation);
  });

  it('a judge run finishes with every verdict stored', async () => {
    const questions = (await loadQuestions(path.join(SAMPLE_DATA, 'questions.jsonl'))).slice(0, 1);
    const answers = (await loadAnswers(path.join(SAMPLE_DATA, 'answers.jsonl'))).filter((a) => a.questionId === questions[0].id);
    const store = new EvalStore();
    const r = await judgeSingle(new JudgeRunner(gguf, { store, concurrency: 1 }), { questions, answers, maxTokens: 4 });
    expect(r.judgments.length).toBe(3);
    expect(r.usage.requests).toBe(3);
    const rows = store.verdicts(r.runId);
    expect(rows.length).toBe(3);
    for (const v of rows) expect(typeof v.raw).toBe('string');
    for (const j of r.judgments) expect(j.score !== null || /^unreadable verdict: /.test(j.error ?? '')).toBe(true);
  });
});
