// LLM-as-a-judge against scripted OpenAI-compatible judges whose verdicts are a known function of
// the answers: every consistency, bias, agreement and usage figure is derived by hand from the script.
import { afterEach, describe, expect, it } from 'vitest';
import { HttpBackend } from '../src/backends/http.js';
import { EvalStore } from '../src/methods/evaluation/store.js';
import { judgePairwise, judgeSingle, type EvalQuestion, type ModelAnswer } from '../src/methods/evaluation/judge.js';
import { JudgeRunner } from '../src/methods/evaluation/runner.js';
import { agreement, spearman } from '../src/methods/evaluation/stats.js';
import { parsePair, parseScore, resolveTemplate, TEMPLATES } from '../src/methods/evaluation/templates.js';
import { answerOf, pairOf, scriptedServer, type ScriptedServer } from './eval-helpers.js';

const servers: ScriptedServer[] = [];
afterEach(async () => {
  for (const s of servers.splice(0)) await s.close();
});
async function judgeServer(...args: Parameters<typeof scriptedServer>) {
  const s = await scriptedServer(...args);
  servers.push(s);
  return s;
}
const backend = (s: ScriptedServer, extra: Partial<ConstructorParameters<typeof HttpBackend>[0]> = {}) =>
  new HttpBackend({ baseURL: s.baseURL, model: 'scripted-judge', api: 'chat', backoffMs: 5, ...extra });

// Three models, four questions; quality[model][question] is what the scripted judge sees.
const quality: Record<string, number[]> = { strong: [9, 8, 7, 6], medium: [6, 8, 5, 6], weak: [3, 2, 5, 1] };
const questions: EvalQuestion[] = [0, 1, 2, 3].map((i) => ({ id: `q${i}`, turns: [`Question number ${i}?`], reference: [`Reference ${i}.`] }));
const answerText = (m: string, i: number) => `Answer of ${m} to ${i}${' and more words'.repeat(quality[m][i])}.`;
const answers: ModelAnswer[] = Object.keys(quality).flatMap((m) => [0, 1, 2, 3].map((i) => ({ questionId: `q${i}`, model: m, turns: [answerText(m, i)] })));
const qualityOf = (text: string) => (text.match(/ and more words/g) ?? []).length;

describe('verdict parsing', () => {
  it('reads scores and pairwise verdicts, and names the problem when it cannot', () => {
    expect(parseScore('Solid reasoning.\nRating: [[7]]', TEMPLATES.single)).toEqual({ ok: true, value: { score: 7, rationale: 'Solid reasoning.' } });
    expect(parseScore('Good. Score: 8/10', TEMPLATES.single)).toMatchObject({ ok: true, value: { score: 8 } });
    expect(parseScore('I give [[7]] or maybe [[8]]', TEMPLATES.single)).toEqual({ ok: false, error: expect.stringContaining('ambiguous') });
    expect(parseScore('Rating: [[12]]', TEMPLATES.single)).toEqual({ ok: false, error: 'score 12 is outside the scale 1–10' });
    expect(parseScore('no idea', TEMPLATES.single).ok).toBe(false);
    expect(parsePair('B is clearer. [[B]]', TEMPLATES.pairwise)).toEqual({ ok: true, value: { winner: 'B', rationale: 'B is clearer.' } });
    expect(parsePair('Equal. [[C]]', TEMPLATES.pairwise)).toMatchObject({ ok: true, value: { winner: 'tie' } });
    expect(parsePair('Verdict: A', TEMPLATES.pairwise)).toMatchObject({ ok: true, value: { winner: 'A' } });
    expect(parsePair('[[A]] no wait [[B]]', TEMPLATES.pairwise).ok).toBe(false);
    const c = parsePair('- Correctness: A - right\n- Clarity: B - tidy\n- Helpfulness: A - more\n[[B]]', TEMPLATES['pairwise-critique']);
    expect(c).toMatchObject({ ok: true, value: { winner: 'B', criteria: { Correctness: 'A', Clarity: 'B', Helpfulness: 'A' } } });
  });

  it('rejects templates with unknown or missing placeholders', () => {
    expect(() => resolveTemplate({ name: 't', kind: 'pairwise', reference: false, critique: false, scale: [1, 10], text: '{question} {answer_a} {answr_b}' }))
      .toThrow(/unknown placeholder \{answr_b\}.*nearest: \{answer_b\}/);
    expect(() => resolveTemplate({ name: 't', kind: 'single', reference: true, critique: false, scale: [1, 10], text: '{question} {answer}' })).toThrow(/lacks \{reference\}/);
    expect(() => resolveTemplate('pairwse')).toThrow(/nearest: pairwise/);
  });

  it("Cohen's κ and Spearman match textbook cases", () => {
    // 50 items: yes/yes 20, yes/no 5, no/yes 10, no/no 15 → p_o = 0.7, p_e = 0.5·0.6 + 0.5·0.4 = 0.5, κ = 0.4.
    const a = [...Array(25).fill('y'), ...Array(25).fill('n')];
    const b = [...Array(20).fill('y'), ...Array(5).fill('n'), ...Array(10).fill('y'), ...Array(15).fill('n')];
    const k = agreement(a, b);
    expect(k.percent).toBeCloseTo(0.7, 12);
    expect(k.kappa).toBeCloseTo(0.4, 12);
    // Ranks 1..5 against 2,1,4,3,5: Σd² = 4, ρ = 1 − 6·4/(5·24) = 0.8.
    expect(spearman([1, 2, 3, 4, 5], [2, 1, 4, 3, 5])).toBeCloseTo(0.8, 12);
  });
});

describe('pairwise judging', () => {
  it('measures a planted position bias: ties of quality go to the first answer', async () => {
    const srv = await judgeServer((p) => {
      const { a, b } = pairOf(p);
      const qa = qualityOf(a);
      const qb = qualityOf(b);
      return `A has quality ${qa}, B has ${qb}. ${qa >= qb ? '[[A]]' : '[[B]]'}`;
    });
    const r = await judgePairwise(backend(srv), { questions, answers });
    // 4 questions × 3 pairs; equal quality in (strong, medium) on q1 and q3, (medium, weak) on q2.
    expect(r.outcomes.length).toBe(12);
    expect(r.positionConsistency).toEqual({ n: 12, consistent: 9, rate: 9 / 12 });
    expect(r.positionPreference).toMatchObject({ inconsistent: 3, first: 3, second: 0, firstRate: 1 });
    // Inconsistent comparisons count as ties; the rest go to the better answer.
    expect(r.models).toEqual([
      { model: 'strong', wins: 6, losses: 0, ties: 2 },
      { model: 'medium', wins: 3, losses: 2, ties: 3 },
      { model: 'weak', wins: 0, losses: 7, ties: 1 },
    ]);
    expect(r.errors).toBe(0);
    expect(r.usage.requests).toBe(24);
    expect(srv.prompts.length).toBe(24);
    // Every judgment is stored with its prompt, raw answer and parse.
    const stored = (r as { runId: string }).runId;
    expect(stored).toBeTruthy();
  });

  it('measures a planted length bias that position swapping cannot see', async () => {
    // Answer quality here is its length: a judge preferring the longer answer is position-consistent but length-biased.
    const srv = await judgeServer((p) => {
      const { a, b } = pairOf(p);
      return a.length === b.length ? '[[C]]' : a.length > b.length ? 'Longer is better. [[A]]' : 'Longer is better. [[B]]';
    });
    const r = await judgePairwise(backend(srv), { questions, answers });
    expect(r.positionConsistency!.rate).toBe(1);
    expect(r.lengthBias.longerWinRate).toBe(1);
    expect(r.lengthBias.n).toBe(24 - 6); // the 3 equal-length comparisons × 2 orders end in ties
  });

  it('reports flip noise over samples, template sensitivity, critique disagreements and human agreement', async () => {
    const srv = await judgeServer((p, body) => {
      const { a, b } = pairOf(p);
      const qa = qualityOf(a);
      const qb = qualityOf(b);
      if (p.startsWith('Which reply')) return 'Both fine. [[C]]'; // the brief template: always a tie
      if (p.includes('Write a critique')) {
        // The critique favours the better answer on two criteria, but the verdict always says A.
        const better = qa > qb ? 'A' : qb > qa ? 'B' : 'tie';
        return `- Correctness: ${better} - x\n- Helpfulness: ${better} - y\n- Clarity: A - z\n[[A]]`;
      }
      const right = qa > qb ? '[[A]]' : qb > qa ? '[[B]]' : '[[C]]';
      // Seed 2 (the third sample) flips every verdict between A and B.
      if (body.seed === 2) return right === '[[A]]' ? '[[B]]' : right === '[[B]]' ? '[[A]]' : right;
      return right;
    });
    const only = answers.filter((x) => x.model !== 'weak');
    const noisy = await judgePairwise(backend(srv), { questions, answers: only, samples: 3 });
    // 4 comparisons × 2 orders = 8 groups of 3 samples; the 4 with a non-tie verdict (q0, q2) have 2 of 3 sample pairs disagreeing.
    expect(noisy.flipNoise!.groups).toBe(8);
    expect(noisy.flipNoise!.rate).toBeCloseTo((4 * (2 / 3)) / 8, 12);
    const sens = await judgePairwise(backend(srv), { questions, answers: only, templates: ['pairwise', 'pairwise-brief'] });
    // Under 'pairwise', q0 and q2 have a winner (strong); q1 and q3 tie. The brief template ties everything.
    expect(sens.templateSensitivity).toEqual({ items: 4, fractionChanged: 0.5 });
    const crit = await judgePairwise(backend(srv), { questions, answers: only, templates: ['pairwise-critique'] });
    // 8 judgments: the critique implies the better answer (or A on a tie); the verdict is always A.
    // Disagreements: strong better and shown second (order yx) → the critique favours B on two criteria, on q0 and q2.
    // On the equal-quality q1 and q3 the criteria read tie, tie, A: A is the only side favoured, as the verdict says.
    const dis = crit.critique!.disagreements.map((j) => `${j.question}/${j.order}`).sort();
    expect(dis).toEqual(['q0/yx', 'q2/yx']);
    expect(crit.critique!.checked).toBe(8);
    const human = await judgePairwise(backend(srv), {
      questions, answers: only,
      human: [
        { questionId: 'q0', model_a: 'strong', model_b: 'medium', winner: 'model_a' },
        { questionId: 'q1', model_a: 'medium', model_b: 'strong', winner: 'tie' },
        { questionId: 'q2', model_a: 'strong', model_b: 'medium', winner: 'model_b' },
        { questionId: 'q3', model_a: 'strong', model_b: 'medium', winner: 'tie' },
      ],
    });
    // Judge: strong, tie, strong, tie. People: strong, tie, medium, tie → 3 of 4 agree;
    // p_e = P(judge strong)·P(people strong) + P(tie)·P(tie) = 0.5·0.25 + 0.5·0.5 = 0.375; κ = (0.75 − 0.375)/0.625 = 0.6.
    expect(human.human!.percent).toBe(0.75);
    expect(human.human!.kappa).toBeCloseTo(0.6, 12);
  });

  it('judges multi-turn conversations from a transcript, and reference-guided with the reference shown', async () => {
    const srv = await judgeServer((p) => (p.includes('User: second turn') && p.includes('[Reference answer]\nref one\n\nref two') ? '[[A]]' : 'garbled'));
    const q: EvalQuestion[] = [{ id: 'mt', turns: ['first turn', 'second turn'], reference: ['ref one', 'ref two'] }];
    const ans: ModelAnswer[] = [{ questionId: 'mt', model: 'x', turns: ['a1', 'a2'] }, { questionId: 'mt', model: 'y', turns: ['b1', 'b2'] }];
    const r = await judgePairwise(backend(srv), { questions: q, answers: ans, reference: true });
    expect(r.errors).toBe(0);
    expect(r.outcomes[0]).toMatchObject({ forward: 'x', swapped: 'y', consistent: false, final: 'tie' });
    expect(srv.prompts[0]).toContain('User: first turn\nAssistant: a1\n\nUser: second turn\nAssistant: a2');
  });
});

describe('single grading', () => {
  it('scores with rationales, length correlation, critique checks and human agreement', async () => {
    const srv = await judgeServer((p) => {
      const q = qualityOf(answerOf(p));
      if (p.includes('Write a critique')) return `- Correctness: ${q} - a\n- Clarity: ${q} - b\nOverall. Rating: [[${q >= 8 ? 3 : Math.max(q, 1)}]]`;
      return `Quality looks like ${q}.\nRating: [[${Math.max(q, 1)}]]`;
    });
    const human = answers.map((a, i) => ({ questionId: a.questionId, model: a.model, score: Math.max(qualityOf(a.turns[0]), 1) + (i === 0 ? 1 : 0) }));
    const r = await judgeSingle(backend(srv), { questions, answers, human });
    expect(r.models).toEqual([
      { model: 'strong', mean: 7.5, n: 4, errors: 0 },
      { model: 'medium', mean: 6.25, n: 4, errors: 0 },
      { model: 'weak', mean: 2.75, n: 4, errors: 0 },
    ]);
    expect(r.judgments[0]).toMatchObject({ score: 9, rationale: 'Quality looks like 9.' });
    // Scores equal lengths minus a constant word count here, so the correlation is exactly 1.
    expect(r.lengthBias.correlation).toBeCloseTo(1, 12);
    expect(r.human!.percent).toBeCloseTo(11 / 12, 12);
    const crit = await judgeSingle(backend(srv), { questions, answers, templates: ['single-critique'] });
    // Qualities ≥ 8 get 3 while their criteria say ≥ 8: strong q0 (9), strong q1 (8), medium q1 (8).
    expect(crit.critique!.disagreements.map((j) => `${j.model}/${j.question}`).sort()).toEqual(['medium/q1', 'strong/q0', 'strong/q1']);
  });
});

describe('runs', () => {
  it('finish through garbage, timeouts and 429s, mark only the affected items, and resume from the store sending no request twice', async () => {
    let broken = true;
    const srv = await judgeServer((p) => {
      const a = answerOf(p);
      if (broken && a.includes('strong to 0')) return 'I refuse to grade this.';
      if (broken && a.includes('strong to 1')) return 'hang';
      if (broken && a.includes('strong to 2')) return { status: 429, headers: { 'retry-after': '0' } };
      return `Fine.\nRating: [[${Math.max(qualityOf(a), 1)}]]`;
    });
    const store = new EvalStore();
    const judge = backend(srv, { retries: 1, timeoutMs: 300, prices: { prompt: 1, completion: 2 } });
    const first = await judgeSingle(new JudgeRunner(judge, { store, concurrency: 3 }), { questions, answers });
    const bad = first.judgments.filter((j) => j.error !== null);
    expect(bad.map((j) => `${j.model}/${j.question}`).sort()).toEqual(['strong/q0', 'strong/q1', 'strong/q2']);
    expect(bad.find((j) => j.question === 'q0')!.error).toMatch(/unreadable verdict: no score found/);
    expect(bad.find((j) => j.question === 'q1')!.error).toMatch(/no complete response within 300 ms/);
    expect(bad.find((j) => j.question === 'q2')!.error).toMatch(/HTTP 429/);
    expect(first.judgments.filter((j) => j.error === null).length).toBe(9);
    expect(first.usage).toMatchObject({ fromStore: 0, failed: 2, retries: 2 });
    expect(first.usage.cost).toBeGreaterThan(0);
    // Stored: every verdict with its prompt, raw answer, parse and rationale.
    const rows = store.verdicts(first.runId);
    expect(rows.length).toBe(12);
    const good = rows.find((v) => v.item === 'q3:weak')!;
    expect(good).toMatchObject({ raw: 'Fine.\nRating: [[1]]', parsed: { score: 1 }, rationale: 'Fine.', error: null });
    expect(good.prompt).toContain('Answer of weak to 3');
    // Resume: the 10 answered requests (including the garbage one) come from the store; only the 2 failed ones are sent.
    broken = false;
    const sent = srv.prompts.length;
    const second = await judgeSingle(new JudgeRunner(judge, { store }), { questions, answers, runId: first.runId });
    expect(srv.prompts.length - sent).toBe(2);
    expect(second.usage.fromStore).toBe(10);
    expect(second.judgments.filter((j) => j.error !== null).map((j) => j.question)).toEqual(['q0']);
  });
});
