/**
 * Selection bias in multiple-choice answers, and PriDe (Zheng et al. 2024, "Large Language Models
 * Are Not Robust Multiple Choice Selectors").
 *
 * The model's choice is read from its log-probabilities of the option IDs (" A", " B", …) after
 * the question and its lettered options, normalised over the IDs. PriDe models the observed
 * probability as a prior over IDs times a content term, P_obs(d_i) ∝ P_prior(d_i) · P(o_i), and
 * estimates the prior on a small sample of questions by asking each with every cyclic permutation
 * of its options: averaging log P_obs(d_i) over the permutations cancels the content term (each
 * option visits each ID once), leaving log P_prior(d_i) plus a constant. The remaining questions
 * are then debiased by dividing the prior out, at the cost of one query each.
 *
 * Reported before and after, on the questions not used for the estimate: accuracy, recall per
 * position of the correct answer, and the standard deviation of those recalls (RStd), which is 0
 * for a model without selection bias on a balanced set.
 */
import type { LanguageModelBackend } from '../../backends/types.js';
import { LanternError } from '../../errors.js';
import { Rng } from '../../rng.js';
import { mapLimit } from '../blackbox/common.js';
import { std } from './stats.js';

/** A multiple-choice question: options in order, the index of the correct one. */
export interface McqQuestion {
  id: string;
  question: string;
  options: string[];
  answer: number;
}

/** Settings of a selection-bias run. */
export interface McqOptions {
  /** Questions used to estimate the prior (default: 5% of them, at least 1). */
  estimationSize?: number;
  /** Seeds the choice of estimation questions (default 0). */
  seed?: number;
  /** Scoring calls in flight at once (default 4). */
  concurrency?: number;
  /** Called after each question. */
  progress?: (done: number, total: number) => void;
}

/** Accuracy and per-position recall of one way of answering. */
export interface SelectionStats {
  accuracy: number;
  /** recall[i]: accuracy on the questions whose correct option is at ID i (null when none is). */
  recall: (number | null)[];
  /** Standard deviation of the defined recalls. */
  recallStd: number;
  /** How often each ID was chosen, as a fraction. */
  chosen: number[];
}

/** The result of a selection-bias run. */
export interface McqReport {
  method: 'mcq-pride';
  backend: string;
  settings: { estimationSize: number; seed: number; ids: string[] };
  /** The estimated prior over option IDs. */
  prior: number[];
  /** Questions used for the estimate. */
  estimation: string[];
  /** On the other questions: as the model answers, and after PriDe. */
  before: SelectionStats;
  after: SelectionStats;
  /** Per question: the observed and the debiased choice. */
  questions: { id: string; answer: number; observed: number; debiased: number; probs: number[] }[];
  /** Whether any score was approximate (a chat endpoint's top log-probs). */
  approximate: boolean;
  calls: number;
}

const LETTERS = 'ABCDEFGHIJKLMNOPQRSTUVWXYZ';

/** The prompt showing a question with lettered options. */
export function mcqPrompt(question: string, options: string[]): string {
  return `Question: ${question}\n${options.map((o, i) => `${LETTERS[i]}. ${o}`).join('\n')}\nAnswer:`;
}

function checkQuestions(qs: McqQuestion[]): number {
  if (!qs.length) throw new LanternError('no multiple-choice questions');
  const k = qs[0].options?.length;
  for (const q of qs) {
    if (!Array.isArray(q.options) || q.options.length < 2) throw new LanternError(`question '${q.id}' needs at least two options`);
    if (q.options.length !== k) throw new LanternError(`question '${q.id}' has ${q.options.length} options, the first has ${k}: PriDe needs the same number everywhere`);
    if (q.options.length > LETTERS.length) throw new LanternError(`question '${q.id}' has more than ${LETTERS.length} options`);
    if (!Number.isInteger(q.answer) || q.answer < 0 || q.answer >= k) throw new LanternError(`question '${q.id}': answer ${q.answer} is not an option index in [0, ${k})`);
  }
  return k;
}

function logNormalize(lp: number[]): number[] {
  const m = Math.max(...lp);
  const z = m + Math.log(lp.reduce((a, v) => a + Math.exp(v - m), 0));
  return lp.map((v) => v - z);
}

const argmax = (x: number[]) => x.reduce((best, v, i) => (v > x[best] ? i : best), 0);

function stats(answers: number[], choices: number[], k: number): SelectionStats {
  const recall: (number | null)[] = [];
  for (let i = 0; i < k; i++) {
    const at = answers.map((a, j) => [a, j] as const).filter(([a]) => a === i);
    recall.push(at.length ? at.filter(([, j]) => choices[j] === i).length / at.length : null);
  }
  const defined = recall.filter((r): r is number => r !== null);
  return {
    accuracy: answers.filter((a, j) => choices[j] === a).length / answers.length,
    recall, recallStd: std(defined),
    chosen: Array.from({ length: k }, (_, i) => choices.filter((c) => c === i).length / choices.length),
  };
}

/** Measures selection bias and removes it with PriDe. */
export async function pride(backend: LanguageModelBackend, questions: McqQuestion[], opts: McqOptions = {}): Promise<McqReport> {
  const k = checkQuestions(questions);
  const size = opts.estimationSize ?? Math.max(1, Math.round(questions.length * 0.05));
  if (!Number.isInteger(size) || size < 1 || size >= questions.length) throw new LanternError(`estimationSize must be an integer in [1, ${questions.length - 1}] (some questions must remain to debias), got ${size}`);
  const seed = opts.seed ?? 0;
  const ids = Array.from({ length: k }, (_, i) => LETTERS[i]);
  let approximate = false;
  let calls = 0;
  /** Log-probabilities over the IDs, normalised over them. */
  const ask = async (question: string, options: string[]): Promise<number[]> => {
    const prompt = mcqPrompt(question, options);
    const lp: number[] = [];
    for (const id of ids) {
      const s = await backend.scoreContinuation(prompt, ` ${id}`);
      calls++;
      approximate ||= s.approximate;
      lp.push(s.total);
    }
    return logNormalize(lp);
  };
  // A seeded shuffle picks the estimation sample.
  const rng = new Rng(seed);
  const order = questions.map((_, i) => i);
  for (let i = order.length - 1; i > 0; i--) {
    const j = rng.int(i + 1);
    [order[i], order[j]] = [order[j], order[i]];
  }
  const sample = new Set(order.slice(0, size));
  const rest = questions.filter((_, i) => !sample.has(i));
  let done = 0;
  const total = size + rest.length;
  const perSample = await mapLimit([...sample].map((i) => questions[i]), opts.concurrency ?? 4, async (q) => {
    const sum = new Array<number>(k).fill(0);
    for (let shift = 0; shift < k; shift++) {
      // Cyclic permutation: ID i shows option (i + shift) mod k.
      const lp = await ask(q.question, ids.map((_, i) => q.options[(i + shift) % k]));
      lp.forEach((v, i) => (sum[i] += v / k));
    }
    opts.progress?.(++done, total);
    return sum;
  });
  const meanLog = new Array<number>(k).fill(0);
  for (const s of perSample) s.forEach((v, i) => (meanLog[i] += v / perSample.length));
  const logPrior = logNormalize(meanLog);
  const answered = await mapLimit(rest, opts.concurrency ?? 4, async (q) => {
    const lp = await ask(q.question, q.options);
    opts.progress?.(++done, total);
    return lp;
  });
  const observed = answered.map(argmax);
  const debiased = answered.map((lp) => argmax(lp.map((v, i) => v - logPrior[i])));
  const gold = rest.map((q) => q.answer);
  return {
    method: 'mcq-pride', backend: backend.id, settings: { estimationSize: size, seed, ids },
    prior: logPrior.map(Math.exp), estimation: [...sample].map((i) => questions[i].id),
    before: stats(gold, observed, k), after: stats(gold, debiased, k),
    questions: rest.map((q, j) => ({ id: q.id, answer: q.answer, observed: observed[j], debiased: debiased[j], probs: answered[j].map(Math.exp) })),
    approximate, calls,
  };
}

/** Multiple-choice questions from rows: a question column, an options list (or columns A, B, …), and the answer as a letter or index. */
export function mcqFromRows(rows: Record<string, unknown>[], file = 'questions'): McqQuestion[] {
  if (!rows.length) throw new LanternError(`${file} has no rows`);
  return rows.map((r, i) => {
    const question = r.question;
    if (typeof question !== 'string') throw new LanternError(`${file} row ${i + 1}: needs a 'question' string`);
    let options: string[];
    if (Array.isArray(r.options)) options = r.options.map(String);
    else if (typeof r.options === 'string' && r.options.trim().startsWith('[')) options = (JSON.parse(r.options) as unknown[]).map(String);
    else {
      options = [];
      for (const l of LETTERS) {
        if (r[l] === undefined || r[l] === null || r[l] === '') break;
        options.push(String(r[l]));
      }
    }
    if (options.length < 2) throw new LanternError(`${file} row ${i + 1}: needs 'options' (a list) or option columns A, B, …`);
    const a = r.answer;
    const answer = typeof a === 'number' ? a : typeof a === 'string' && /^[A-Z]$/.test(a.trim()) ? LETTERS.indexOf(a.trim()) : typeof a === 'string' && /^\d+$/.test(a) ? Number(a) : NaN;
    if (!Number.isInteger(answer)) throw new LanternError(`${file} row ${i + 1}: answer ${JSON.stringify(a)} is neither an option letter nor an index`);
    return { id: String(r.id ?? i + 1), question, options, answer };
  });
}
