// ChainPoll against a scripted judge, and PriDe against a planted-bias model that prefers "A"
// by a known factor: the estimated prior must be that factor, and debiasing must give back the
// model's unbiased accuracy exactly.
import { afterEach, describe, expect, it } from 'vitest';
import { HttpBackend } from '../src/backends/http.js';
import type { ContinuationScore, Generation, LanguageModelBackend, Prompt, Usage } from '../src/backends/types.js';
import { chainPoll, parseYesNo } from '../src/methods/evaluation/chainpoll.js';
import { mcqFromRows, pride, type McqQuestion } from '../src/methods/evaluation/mcq.js';
import { scriptedServer, type ScriptedServer } from './eval-helpers.js';

const servers: ScriptedServer[] = [];
afterEach(async () => {
  for (const s of servers.splice(0)) await s.close();
});

describe('ChainPoll', () => {
  it('scores the fraction of yes over reasoned polls and keeps the reasons', async () => {
    // Claims with "moon" are hallucinated; for "maybe" the judge says yes only on even seeds (3 of 5 polls: seeds 0, 2, 4).
    const srv = await scriptedServer((p, body) => {
      const c = /\[Completion\]\n([\s\S]*?)\n\nThink/.exec(p)![1];
      if (c.includes('gibberish')) return 'I cannot tell.';
      if (c.includes('moon')) return `The claim about the moon is false.\n[[YES]]`;
      if (c.includes('maybe')) return Number(body.seed) % 2 === 0 ? 'Unsupported.\n[[YES]]' : 'Supported.\n[[NO]]';
      return 'All claims check out.\n[[NO]]';
    });
    servers.push(srv);
    const judge = new HttpBackend({ baseURL: srv.baseURL, model: 'scripted-judge', api: 'chat' });
    const r = await chainPoll(judge, [
      { id: 'a', prompt: 'Where is Paris?', completion: 'Paris is in France.' },
      { id: 'b', completion: 'The moon is made of cheese.', reference: 'The moon is rock.' },
      { id: 'c', completion: 'It is maybe true.' },
      { id: 'd', completion: 'gibberish' },
    ], { polls: 5 });
    expect(r.items.map((i) => i.score)).toEqual([0, 1, 0.6, null]);
    expect(r.items[1].polls[0]).toEqual({ hallucination: true, reasoning: 'The claim about the moon is false.', error: null });
    expect(r.errors).toBe(5);
    expect(r.meanScore).toBeCloseTo(1.6 / 3, 12);
    expect(srv.prompts.find((p) => p.includes('cheese'))).toContain('[Reference]\nThe moon is rock.');
    expect(parseYesNo('[[YES]] but [[NO]]').ok).toBe(false);
  });
});

/** A model whose choice is a known content score per option plus a planted log-bias towards the ID "A". */
class PlantedChooser implements LanguageModelBackend {
  readonly id = 'planted-chooser';
  calls = 0;
  constructor(private readonly content: (option: string) => number, private readonly biasA: number) {}
  async scoreContinuation(prompt: Prompt, continuation: string | number[]): Promise<ContinuationScore> {
    this.calls++;
    const lines = String(prompt).split('\n').filter((l) => /^[A-Z]\. /.test(l));
    const logits = lines.map((l) => this.content(l.slice(3)) + (l.startsWith('A.') ? this.biasA : 0));
    const z = Math.log(logits.reduce((a, v) => a + Math.exp(v), 0));
    const at = String(continuation).trim().charCodeAt(0) - 65;
    const lp = logits[at] - z;
    return { tokens: [String(continuation)], logprobs: [lp], total: lp, approximate: false };
  }
  async generate(): Promise<Generation> {
    throw new Error('not used');
  }
  usage(): Usage {
    return { requests: this.calls, cachedRequests: 0, promptTokens: 0, completionTokens: 0, retries: 0 };
  }
}

describe('selection bias and PriDe', () => {
  it('recovers the planted prior and debiases back to the unbiased accuracy', async () => {
    // Option "q<i>-o<j>": correct when j is 0 before shuffling; content score 1.5 for correct, a fixed pseudo-random value in [0, 2) otherwise.
    const noise = (s: string) => ([...s].reduce((h, c) => (h * 31 + c.charCodeAt(0)) % 1000, 7) / 1000) * 2;
    const content = (o: string) => (o.endsWith('-o0') ? 1.5 : noise(o));
    const questions: McqQuestion[] = Array.from({ length: 80 }, (_, i) => {
      const gold = i % 4;
      const opts = [1, 2, 3].map((j) => `q${i}-o${j}`);
      opts.splice(gold, 0, `q${i}-o0`);
      return { id: `q${i}`, question: `Question ${i}?`, options: opts, answer: gold };
    });
    const model = new PlantedChooser(content, Math.log(3));
    const r = await pride(model, questions, { estimationSize: 8, seed: 1 });
    // The prior over IDs is the planted one: A three times as likely as each other ID.
    [3 / 6, 1 / 6, 1 / 6, 1 / 6].forEach((p, i) => expect(r.prior[i]).toBeCloseTo(p, 12));
    // Unbiased accuracy on the debiased questions, straight from the content scores.
    const rest = questions.filter((q) => !r.estimation.includes(q.id));
    const unbiased = rest.filter((q) => q.options.map(content).reduce((b, v, i, a) => (v > a[b] ? i : b), 0) === q.answer).length / rest.length;
    expect(r.after.accuracy).toBe(unbiased);
    expect(r.before.accuracy).toBeLessThan(unbiased);
    expect(r.before.chosen[0]).toBeGreaterThan(0.4);
    expect(r.before.recallStd).toBeGreaterThan(r.after.recallStd);
    // Calls: 8 questions × 4 permutations × 4 IDs, then 72 × 4.
    expect(r.calls).toBe(8 * 16 + 72 * 4);
    // An unbiased model is left as it is.
    const fair = await pride(new PlantedChooser(content, 0), questions, { estimationSize: 8, seed: 1 });
    fair.prior.forEach((p) => expect(p).toBeCloseTo(0.25, 12));
    expect(fair.before.accuracy).toBe(unbiased);
  });

  it('reads questions from rows with option columns or lists, and names bad ones', () => {
    expect(mcqFromRows([{ question: 'q', A: 'x', B: 'y', answer: 'B' }])).toEqual([{ id: '1', question: 'q', options: ['x', 'y'], answer: 1 }]);
    expect(mcqFromRows([{ id: 7, question: 'q', options: ['x', 'y', 'z'], answer: 2 }])[0]).toMatchObject({ id: '7', answer: 2 });
    expect(() => mcqFromRows([{ question: 'q', A: 'x', B: 'y', answer: 'maybe' }], 'f.csv')).toThrow(/f.csv row 1: answer "maybe"/);
  });
});
