/**
 * LLM-as-a-judge (Zheng et al. 2023, "Judging LLM-as-a-Judge with MT-Bench and Chatbot Arena"),
 * with its biases measured rather than assumed away:
 *
 *   single      each answer gets a score and a written rationale (optionally against a reference);
 *   pairwise    two answers to the same question are compared, every comparison also with the
 *               answers swapped: a verdict that follows the position rather than the answer shows
 *               up as inconsistency (position consistency, and which position the inconsistent
 *               verdicts favoured). As in MT-Bench, an inconsistent pair counts as a tie.
 *
 * Both also report: flip noise (repeated samples of the same judgment that disagree), template
 * sensitivity (the same item under several templates), length bias (how verdicts track answer
 * length), agreement with human labels (percent agreement, Cohen's κ), and in critique mode the
 * items whose score does not follow from the judge's own critique. Every judgment is stored with
 * its prompt, raw answer, parsed verdict and rationale; an unreadable or failed one is an item
 * error, never a failed run.
 */
import type { LanguageModelBackend } from '../../backends/types.js';
import { LanternError } from '../../errors.js';
import { JudgeRunner, type RunnerOptions, type RunUsage } from './runner.js';
import type { EvalStore, StoredVerdict } from './store.js';
import { agreement, mean, pearsonOrNull, spearman, std, wordCount } from './stats.js';
import {
  critiqueAgrees, parsePair, parseScore, renderTemplate, resolveTemplate, transcript, type JudgeTemplate, type PairVerdict, type ScoreVerdict,
} from './templates.js';

/** A question: one or more user turns, optionally a reference answer per turn. */
export interface EvalQuestion {
  id: string;
  turns: string[];
  reference?: string[];
  category?: string;
}

/** A model's answer to a question: one reply per turn. */
export interface ModelAnswer {
  questionId: string;
  model: string;
  turns: string[];
}

/** Settings shared by single and pairwise judging. */
export interface JudgeOptions extends RunnerOptions {
  questions: EvalQuestion[];
  answers: ModelAnswer[];
  /** Template names or templates (default: the plain one of the kind, or its reference version with `reference`). Several measure template sensitivity. */
  templates?: (string | JudgeTemplate)[];
  /** Use reference-guided templates (default false); questions then need references. */
  reference?: boolean;
  /** Judgments per item and template (default 1); more measure flip noise. */
  samples?: number;
  /** Judge sampling temperature (default 0 for one sample, 0.7 for several). */
  temperature?: number;
  /** Most tokens in a judge answer (default 512). */
  maxTokens?: number;
  /** Sample s uses seed + s (default 0). */
  seed?: number;
  /** Critique mode: how far a score may lie from its criteria's mean (default 2). */
  critiqueTolerance?: number;
  /** Stored-run id; giving the id of an earlier run resumes it (its answers come from the store). */
  runId?: string;
}

/** One single-grading judgment. */
export interface ScoreJudgment {
  question: string;
  model: string;
  template: string;
  sample: number;
  score: number | null;
  rationale: string | null;
  error: string | null;
  /** Critique mode: the criteria marks, the score they imply, and whether the score follows. */
  critique?: { criteria: Record<string, number>; expected: number; agrees: boolean };
  /** Words in the judged answer (its last turn). */
  length: number;
}

/** Human scores for single grading, to measure the judge's agreement with people. */
export interface HumanScore {
  questionId: string;
  model: string;
  score: number;
}

/** The result of single-answer grading. */
export interface SingleReport {
  method: 'judge-single';
  judge: string;
  runId: string;
  settings: Record<string, unknown>;
  judgments: ScoreJudgment[];
  /** Mean score per model over its readable judgments. */
  models: { model: string; mean: number | null; n: number; errors: number }[];
  errors: number;
  /** Items judged several times: the fraction whose scores are not all equal, and the mean std of their scores. */
  flipNoise: { items: number; fractionChanged: number; meanStd: number } | null;
  /** Items under several templates: the fraction whose scores differ, and the mean absolute difference from the first template. */
  templateSensitivity: { items: number; fractionChanged: number; meanAbsDiff: number } | null;
  /** Pearson correlation between answer length (words) and score. */
  lengthBias: { n: number; correlation: number | null };
  /** Critique mode: items whose score does not follow from the critique. */
  critique: { checked: number; disagreements: ScoreJudgment[] } | null;
  /** Agreement with human scores (exact score), and their rank correlation. */
  human: { n: number; percent: number | null; kappa: number | null; spearman: number | null } | null;
  usage: RunUsage;
}

function checkQuestions(questions: EvalQuestion[], answers: ModelAnswer[], needReference: boolean): Map<string, EvalQuestion> {
  if (!questions.length) throw new LanternError('no questions to judge');
  const byId = new Map<string, EvalQuestion>();
  for (const q of questions) {
    if (!q.turns?.length || q.turns.some((t) => typeof t !== 'string')) throw new LanternError(`question '${q.id}' has no turns of text`);
    if (byId.has(q.id)) throw new LanternError(`question id '${q.id}' appears twice`);
    if (needReference && (!q.reference?.length)) throw new LanternError(`question '${q.id}' has no reference answer, which reference-guided judging needs`);
    byId.set(q.id, q);
  }
  for (const a of answers) {
    if (!byId.has(a.questionId)) throw new LanternError(`an answer of model '${a.model}' is to question '${a.questionId}', which is not among the questions`);
    const q = byId.get(a.questionId)!;
    if (a.turns.length !== q.turns.length) throw new LanternError(`model '${a.model}' answers ${a.turns.length} of the ${q.turns.length} turns of question '${q.id}'`);
  }
  return byId;
}

function templatesFor(opts: JudgeOptions, kind: 'single' | 'pairwise'): JudgeTemplate[] {
  const specs = opts.templates?.length ? opts.templates : [opts.reference ? `${kind}-reference` : kind];
  const ts = specs.map((s) => resolveTemplate(s, kind));
  for (const t of ts) {
    if (t.kind !== kind) throw new LanternError(`template '${t.name}' is a ${t.kind} template; ${kind} judging needs a ${kind} one`);
  }
  return ts;
}

function sampling(opts: JudgeOptions) {
  const samples = opts.samples ?? 1;
  if (!Number.isInteger(samples) || samples < 1) throw new LanternError(`samples must be an integer ≥ 1, got ${samples}`);
  const temperature = opts.temperature ?? (samples > 1 ? 0.7 : 0);
  if (!(temperature >= 0)) throw new LanternError(`temperature must be ≥ 0, got ${temperature}`);
  const maxTokens = opts.maxTokens ?? 512;
  return { samples, temperature, maxTokens, seed: opts.seed ?? 0 };
}

function runnerFor(judge: LanguageModelBackend | JudgeRunner, opts: RunnerOptions): JudgeRunner {
  return judge instanceof JudgeRunner ? judge : new JudgeRunner(judge, opts);
}

/**
 * What every judgment of a run shares, resolved from {@link JudgeOptions} (templates read,
 * defaults filled in): with its items, all a shard of a judge job needs, so it is saved in the job.
 */
export interface JudgePlan {
  templates: JudgeTemplate[];
  samples: number;
  temperature: number;
  maxTokens: number;
  seed: number;
  reference: boolean;
}

/** Single grading's plan. */
export interface SinglePlan extends JudgePlan {
  kind: 'single';
  /** Critique mode: how far a score may lie from its criteria's mean. */
  critiqueTolerance: number;
}

/** Pairwise comparison's plan. */
export interface PairwisePlan extends JudgePlan {
  kind: 'pairwise';
  /** Judge each comparison in both orders. */
  swap: boolean;
  /** The models the tally lists, in order (every model with answers). */
  models: string[];
}

/** One unit of single grading: an answer with its question (judged under every template and sample). */
export interface SingleItem {
  question: EvalQuestion;
  answer: ModelAnswer;
}

/** One unit of pairwise comparison: a question and the answers of the pair (x, y), judged under every template, sample and order. */
export interface PairItem {
  question: EvalQuestion;
  x: ModelAnswer;
  y: ModelAnswer;
}

/** A judgment and the row the evaluation store keeps for it (written when the run is finished). */
export interface JudgedRecord<J> {
  judgment: J;
  verdict: Omit<StoredVerdict, 'runId'>;
}

/** What finishing a run needs besides the judgments. */
export interface FinishOptions<H> {
  /** The stored run's id (default: a new one). */
  runId?: string;
  human?: H[];
  usage: RunUsage;
}

/** Judge requests one item takes: every template and sample, and with swapping both orders. */
export function asksPerItem(plan: SinglePlan | PairwisePlan): number {
  return plan.templates.length * plan.samples * (plan.kind === 'pairwise' && plan.swap ? 2 : 1);
}

function basePlan(opts: JudgeOptions, kind: 'single' | 'pairwise'): JudgePlan {
  const templates = templatesFor(opts, kind);
  if (templates.some((t) => t.reference)) for (const q of opts.questions) if (!q.reference?.length) throw new LanternError(`question '${q.id}' has no reference answer, which template '${templates.find((t) => t.reference)!.name}' needs`);
  return { templates, ...sampling(opts), reference: Boolean(opts.reference) };
}

/** Checks the questions, answers and settings of single grading, and splits the work into items (one per answer, in order). */
export function planSingle(opts: JudgeOptions): { plan: SinglePlan; items: SingleItem[] } {
  const byId = checkQuestions(opts.questions, opts.answers, Boolean(opts.reference));
  const plan: SinglePlan = { kind: 'single', ...basePlan(opts, 'single'), critiqueTolerance: opts.critiqueTolerance ?? 2 };
  return { plan, items: opts.answers.map((answer) => ({ question: byId.get(answer.questionId)!, answer })) };
}

/** The settings a single-grading report and its stored run carry. */
const singleSettings = (p: SinglePlan) => ({ templates: p.templates.map((t) => t.name), samples: p.samples, temperature: p.temperature, maxTokens: p.maxTokens, seed: p.seed, reference: p.reference });

/** Grades `items` (every template and sample of each, in order); a failed or unreadable judgment is a record with an error. */
export async function judgeSingleItems(runner: JudgeRunner, plan: SinglePlan, items: SingleItem[]): Promise<JudgedRecord<ScoreJudgment>[]> {
  const tasks = items.flatMap(({ question: q, answer: a }) => plan.templates.flatMap((t) => Array.from({ length: plan.samples }, (_, k) => ({ q, a, t, k }))));
  return Promise.all(tasks.map(async ({ q, a, t, k }): Promise<JudgedRecord<ScoreJudgment>> => {
    const { question, answer } = transcript(q.turns, a.turns);
    const reference = q.reference ? q.reference.join('\n\n') : undefined;
    const prompt = renderTemplate(t, { question, answer, reference });
    const reply = await runner.ask(prompt, { maxTokens: plan.maxTokens, temperature: plan.temperature, seed: plan.seed + k });
    const base = { question: q.id, model: a.model, template: t.name, sample: k, length: wordCount(a.turns[a.turns.length - 1]) };
    let j: ScoreJudgment;
    if (!reply.ok) {
      j = { ...base, score: null, rationale: null, error: reply.error };
    } else {
      const p = parseScore(reply.text, t);
      if (!p.ok) j = { ...base, score: null, rationale: null, error: `unreadable verdict: ${p.error}` };
      else {
        j = { ...base, score: p.value.score, rationale: p.value.rationale, error: null };
        if (t.critique) {
          const c = critiqueAgrees(p.value, plan.critiqueTolerance);
          j.critique = { criteria: p.value.criteria!, expected: c.expected as number, agrees: c.agrees };
        }
      }
    }
    return {
      judgment: j,
      verdict: {
        item: `${q.id}:${a.model}`, variant: `${t.name}/s${k}`, prompt, raw: reply.ok ? reply.text : null,
        parsed: j.score === null ? null : { score: j.score, critique: j.critique }, rationale: j.rationale, error: j.error,
        meta: { kind: 'single', question: q.id, model: a.model, template: t.name, sample: k, answer: answer, critiqueDisagrees: j.critique ? !j.critique.agrees : false },
      },
    };
  }));
}

/**
 * The run-level statistics of single grading from every judgment of `items` (in item order):
 * means per model, flip noise, template sensitivity, length bias, critique checks and human
 * agreement. Stores the run, its verdicts and its summary in `store`.
 */
export function finishSingle(store: EvalStore, judge: string, plan: SinglePlan, items: SingleItem[], records: JudgedRecord<ScoreJudgment>[], o: FinishOptions<HumanScore>): SingleReport {
  const { templates } = plan;
  const settings = singleSettings(plan);
  const runId = store.startRun('judge-single', judge, settings, o.runId);
  for (const r of records) store.saveVerdict({ runId, ...r.verdict });
  const judgments = records.map((r) => r.judgment);
  const ok = judgments.filter((j) => j.score !== null);
  const modelNames = [...new Set(items.map((i) => i.answer.model))];
  const models = modelNames.map((m) => {
    const mine = judgments.filter((j) => j.model === m);
    const scores = mine.filter((j) => j.score !== null).map((j) => j.score!);
    return { model: m, mean: scores.length ? mean(scores) : null, n: scores.length, errors: mine.length - scores.length };
  });
  const group = (key: (j: ScoreJudgment) => string) => {
    const g = new Map<string, ScoreJudgment[]>();
    for (const j of ok) g.set(key(j), [...(g.get(key(j)) ?? []), j]);
    return [...g.values()];
  };
  let flipNoise: SingleReport['flipNoise'] = null;
  if (plan.samples > 1) {
    const groups = group((j) => `${j.question}\n${j.model}\n${j.template}`).filter((g) => g.length > 1);
    if (groups.length) flipNoise = { items: groups.length, fractionChanged: mean(groups.map((g) => (new Set(g.map((j) => j.score)).size > 1 ? 1 : 0))), meanStd: mean(groups.map((g) => std(g.map((j) => j.score!)))) };
  }
  let templateSensitivity: SingleReport['templateSensitivity'] = null;
  if (templates.length > 1) {
    const groups = group((j) => `${j.question}\n${j.model}\n${j.sample}`).filter((g) => new Set(g.map((j) => j.template)).size > 1);
    if (groups.length) templateSensitivity = {
      items: groups.length,
      fractionChanged: mean(groups.map((g) => (new Set(g.map((j) => j.score)).size > 1 ? 1 : 0))),
      meanAbsDiff: mean(groups.map((g) => {
        const first = g.find((j) => j.template === templates[0].name) ?? g[0];
        return mean(g.filter((j) => j !== first).map((j) => Math.abs(j.score! - first.score!)));
      })),
    };
  }
  let human: SingleReport['human'] = null;
  if (o.human?.length) {
    const pairs: [number, number][] = [];
    for (const h of o.human) {
      const j = ok.find((x) => x.question === h.questionId && x.model === h.model && x.template === templates[0].name && x.sample === 0);
      if (j) pairs.push([j.score!, h.score]);
    }
    const a = agreement(pairs.map((p) => p[0]), pairs.map((p) => p[1]));
    human = { ...a, spearman: spearman(pairs.map((p) => p[0]), pairs.map((p) => p[1])) };
  }
  const report: SingleReport = {
    method: 'judge-single', judge, runId, settings, judgments, models, errors: judgments.length - ok.length, flipNoise, templateSensitivity,
    lengthBias: { n: ok.length, correlation: pearsonOrNull(ok.map((j) => j.length), ok.map((j) => j.score!)) },
    critique: templates.some((t) => t.critique) ? { checked: ok.filter((j) => j.critique).length, disagreements: ok.filter((j) => j.critique && !j.critique.agrees) } : null,
    human, usage: o.usage,
  };
  const { judgments: _j, ...summary } = report;
  store.finishRun(runId, summary, report.usage);
  return report;
}

/** Grades every answer with a score and a rationale (single-answer grading, optionally reference-guided). */
export async function judgeSingle(judge: LanguageModelBackend | JudgeRunner, opts: JudgeOptions & { human?: HumanScore[] }): Promise<SingleReport> {
  const { plan, items } = planSingle(opts);
  const runner = runnerFor(judge, opts);
  runner.expect(items.length * asksPerItem(plan));
  const records = await judgeSingleItems(runner, plan, items);
  return finishSingle(runner.store, runner.judge.id, plan, items, records, { runId: opts.runId, human: opts.human, usage: runner.usage() });
}

/** One pairwise judgment: which model the judge preferred with one of the two orders. */
export interface PairJudgment {
  question: string;
  /** The pair as given (x, y); `order` says which was shown first. */
  x: string;
  y: string;
  /** 'xy': x shown as A; 'yx': swapped. */
  order: 'xy' | 'yx';
  template: string;
  sample: number;
  /** The position the judge chose. */
  position: 'A' | 'B' | 'tie' | null;
  /** The model it chose (or 'tie'). */
  winner: string | null;
  rationale: string | null;
  error: string | null;
  critique?: { criteria: Record<string, 'A' | 'B' | 'tie'>; expected: 'A' | 'B' | 'tie'; agrees: boolean };
}

/** Both orders of one comparison, and the verdict they make together. */
export interface PairOutcome {
  question: string;
  x: string;
  y: string;
  template: string;
  sample: number;
  forward: string | null;
  swapped: string | null;
  /** Both orders chose the same model (or both a tie); null when either failed or swapping was off. */
  consistent: boolean | null;
  /** The model both orders chose, 'tie' when they chose a tie or disagreed; null when a judgment failed. */
  final: string | null;
}

/** A battle between two models, as the arena ranks them. */
export interface Battle {
  model_a: string;
  model_b: string;
  winner: 'model_a' | 'model_b' | 'tie' | 'tie (bothbad)';
  question_id?: string;
}

/** A human verdict on a pair, for agreement with the judge. */
export interface HumanPairLabel {
  questionId: string;
  model_a: string;
  model_b: string;
  winner: 'model_a' | 'model_b' | 'tie';
}

/** The result of pairwise comparison. */
export interface PairwiseReport {
  method: 'judge-pairwise';
  judge: string;
  runId: string;
  settings: Record<string, unknown>;
  judgments: PairJudgment[];
  outcomes: PairOutcome[];
  errors: number;
  /** Fraction of comparisons (both orders readable) whose verdict survived the swap. */
  positionConsistency: { n: number; consistent: number; rate: number } | null;
  /** Inconsistent comparisons that chose the first position both times, the second both times, or a tie once. */
  positionPreference: { inconsistent: number; first: number; second: number; other: number; firstRate: number | null } | null;
  /** Judgments repeated with the same order and template: the mean fraction of sample pairs that disagree. */
  flipNoise: { groups: number; rate: number } | null;
  /** Comparisons under several templates: the fraction whose final verdicts differ. */
  templateSensitivity: { items: number; fractionChanged: number } | null;
  /** Non-tie verdicts between answers of different lengths: how often the longer one won, and the correlation of verdict (+1/−1/0) with the length difference. */
  lengthBias: { n: number; longerWinRate: number | null; correlation: number | null };
  critique: { checked: number; disagreements: PairJudgment[] } | null;
  human: { n: number; percent: number | null; kappa: number | null } | null;
  /** Wins, losses and ties per model over the final verdicts (first template, first sample). */
  models: { model: string; wins: number; losses: number; ties: number }[];
  /** The final verdicts as arena battles (judge as voter). */
  battles: Battle[];
  usage: RunUsage;
}

/** Checks the questions, answers, pairs and settings of pairwise comparison, and splits the work into items (question × pair, in order). */
export function planPairwise(opts: JudgeOptions & { pairs?: [string, string][]; swap?: boolean }): { plan: PairwisePlan; items: PairItem[] } {
  const byId = checkQuestions(opts.questions, opts.answers, Boolean(opts.reference));
  const base = basePlan(opts, 'pairwise');
  const answerOf = new Map(opts.answers.map((a) => [`${a.questionId}\n${a.model}`, a]));
  const models = [...new Set(opts.answers.map((a) => a.model))];
  for (const [x, y] of opts.pairs ?? []) {
    for (const m of [x, y]) if (!models.includes(m)) throw new LanternError(`pair names model '${m}', which has no answers (models: ${models.join(', ')})`);
    if (x === y) throw new LanternError(`pair compares model '${x}' with itself`);
  }
  const pairs = opts.pairs ?? models.flatMap((x, i) => models.slice(i + 1).map((y) => [x, y] as [string, string]));
  if (!pairs.length) throw new LanternError(`pairwise judging needs answers from at least two models, got ${models.length}`);
  const items: PairItem[] = [];
  for (const q of opts.questions) {
    for (const [x, y] of pairs) {
      const ax = answerOf.get(`${q.id}\n${x}`);
      const ay = answerOf.get(`${q.id}\n${y}`);
      if (ax && ay) items.push({ question: byId.get(q.id)!, x: ax, y: ay });
    }
  }
  if (!items.length) throw new LanternError('no question has answers from both models of any pair');
  return { plan: { kind: 'pairwise', ...base, swap: opts.swap ?? true, models }, items };
}

/** The settings a pairwise report and its stored run carry. */
const pairwiseSettings = (p: PairwisePlan) => ({ templates: p.templates.map((t) => t.name), samples: p.samples, temperature: p.temperature, maxTokens: p.maxTokens, seed: p.seed, swap: p.swap, reference: p.reference });

/** Compares the pairs of `items` (every template, sample and order of each, in order); a failed or unreadable judgment is a record with an error. */
export async function judgePairItems(runner: JudgeRunner, plan: PairwisePlan, items: PairItem[]): Promise<JudgedRecord<PairJudgment>[]> {
  const tasks = items.flatMap((item) => plan.templates.flatMap((t) => Array.from({ length: plan.samples }, (_, k) => (plan.swap ? (['xy', 'yx'] as const) : (['xy'] as const)).map((order) => ({ item, t, k, order }))).flat()));
  return Promise.all(tasks.map(async ({ item, t, k, order }): Promise<JudgedRecord<PairJudgment>> => {
    const q = item.question;
    const x = item.x.model;
    const y = item.y.model;
    const [first, second] = order === 'xy' ? [item.x, item.y] : [item.y, item.x];
    const a = transcript(q.turns, first.turns);
    const b = transcript(q.turns, second.turns);
    const prompt = renderTemplate(t, { question: a.question, answer_a: a.answer, answer_b: b.answer, reference: q.reference?.join('\n\n') });
    const reply = await runner.ask(prompt, { maxTokens: plan.maxTokens, temperature: plan.temperature, seed: plan.seed + k });
    const base = { question: q.id, x, y, order, template: t.name, sample: k };
    let j: PairJudgment;
    if (!reply.ok) j = { ...base, position: null, winner: null, rationale: null, error: reply.error };
    else {
      const p = parsePair(reply.text, t);
      if (!p.ok) j = { ...base, position: null, winner: null, rationale: null, error: `unreadable verdict: ${p.error}` };
      else {
        const pos = p.value.winner;
        j = { ...base, position: pos, winner: pos === 'tie' ? 'tie' : pos === 'A' ? first.model : second.model, rationale: p.value.rationale, error: null };
        if (t.critique) {
          const c = critiqueAgrees(p.value as PairVerdict);
          j.critique = { criteria: p.value.criteria!, expected: c.expected as 'A' | 'B' | 'tie', agrees: c.agrees };
        }
      }
    }
    return {
      judgment: j,
      verdict: {
        item: `${q.id}:${x}|${y}`, variant: `${t.name}/${order}/s${k}`, prompt, raw: reply.ok ? reply.text : null,
        parsed: j.position === null ? null : { position: j.position, winner: j.winner, critique: j.critique }, rationale: j.rationale, error: j.error,
        meta: { kind: 'pairwise', question: q.id, x, y, order, template: t.name, sample: k, modelA: first.model, modelB: second.model, answerA: a.answer, answerB: b.answer, critiqueDisagrees: j.critique ? !j.critique.agrees : false },
      },
    };
  }));
}

/**
 * The run-level statistics of pairwise comparison from every judgment of `items` (in item order):
 * combined verdicts, position consistency and preference, flip noise, template sensitivity,
 * length bias, critique checks, human agreement, the tally and the battles. Stores the run, its
 * verdicts, each comparison's combined verdict and the summary in `store`.
 */
export function finishPairwise(store: EvalStore, judge: string, plan: PairwisePlan, items: PairItem[], records: JudgedRecord<PairJudgment>[], o: FinishOptions<HumanPairLabel>): PairwiseReport {
  const { templates, swap, models } = plan;
  const settings = pairwiseSettings(plan);
  const runId = store.startRun('judge-pairwise', judge, settings, o.runId);
  for (const r of records) store.saveVerdict({ runId, ...r.verdict });
  const judgments = records.map((r) => r.judgment);
  const lengths = new Map<string, number>();
  for (const { question, x, y } of items) for (const a of [x, y]) lengths.set(`${question.id}\n${a.model}`, wordCount(a.turns.at(-1)!));
  const find = (q: string, x: string, y: string, t: string, k: number, order: 'xy' | 'yx') =>
    judgments.find((j) => j.question === q && j.x === x && j.y === y && j.template === t && j.sample === k && j.order === order);
  const outcomes: PairOutcome[] = [];
  for (const j of judgments) {
    if (j.order !== 'xy') continue;
    const back = swap ? find(j.question, j.x, j.y, j.template, j.sample, 'yx') : undefined;
    const forward = j.winner;
    const swapped = back?.winner ?? null;
    const consistent = swap && forward !== null && swapped !== null ? forward === swapped : null;
    const final = forward === null || (swap && swapped === null) ? null : !swap || consistent ? forward : 'tie';
    outcomes.push({ question: j.question, x: j.x, y: j.y, template: j.template, sample: j.sample, forward, swapped, consistent, final });
  }
  // Store each comparison's combined verdict next to its judgments, for the browser's position-flip filter.
  for (const o of outcomes) {
    store.saveVerdict({
      runId, item: `${o.question}:${o.x}|${o.y}`, variant: `${o.template}/final/s${o.sample}`, prompt: '', raw: null, parsed: { final: o.final, consistent: o.consistent },
      rationale: null, error: o.final === null ? 'a judgment of this comparison failed' : null,
      meta: { kind: 'pairwise-outcome', question: o.question, x: o.x, y: o.y, template: o.template, sample: o.sample, forward: o.forward, swapped: o.swapped, positionFlip: o.consistent === false },
    });
  }
  const ok = judgments.filter((j) => j.position !== null);
  const both = outcomes.filter((o) => o.consistent !== null);
  const inconsistent = outcomes.filter((o) => o.consistent === false);
  let first = 0;
  let second = 0;
  for (const o of inconsistent) {
    const f = find(o.question, o.x, o.y, o.template, o.sample, 'xy')!.position;
    const b = find(o.question, o.x, o.y, o.template, o.sample, 'yx')!.position;
    if (f === 'A' && b === 'A') first++;
    else if (f === 'B' && b === 'B') second++;
  }
  let flipNoise: PairwiseReport['flipNoise'] = null;
  if (plan.samples > 1) {
    const g = new Map<string, string[]>();
    for (const j of ok) {
      const key = `${j.question}\n${j.x}\n${j.y}\n${j.template}\n${j.order}`;
      g.set(key, [...(g.get(key) ?? []), j.winner!]);
    }
    const rates = [...g.values()].filter((v) => v.length > 1).map((v) => {
      let pairs = 0;
      let differ = 0;
      for (let i = 0; i < v.length; i++) for (let k = i + 1; k < v.length; k++) { pairs++; if (v[i] !== v[k]) differ++; }
      return differ / pairs;
    });
    if (rates.length) flipNoise = { groups: rates.length, rate: mean(rates) };
  }
  let templateSensitivity: PairwiseReport['templateSensitivity'] = null;
  if (templates.length > 1) {
    const g = new Map<string, string[]>();
    for (const o of outcomes) {
      if (o.final === null) continue;
      const key = `${o.question}\n${o.x}\n${o.y}\n${o.sample}`;
      g.set(key, [...(g.get(key) ?? []), o.final]);
    }
    const multi = [...g.values()].filter((v) => v.length > 1);
    if (multi.length) templateSensitivity = { items: multi.length, fractionChanged: mean(multi.map((v) => (new Set(v).size > 1 ? 1 : 0))) };
  }
  // Length bias over every readable judgment: each order is a separate decision of the judge.
  const diffs: number[] = [];
  const signs: number[] = [];
  let decided = 0;
  let longer = 0;
  for (const j of ok) {
    const lx = lengths.get(`${j.question}\n${j.x}`)!;
    const ly = lengths.get(`${j.question}\n${j.y}`)!;
    const sign = j.winner === j.x ? 1 : j.winner === j.y ? -1 : 0;
    diffs.push(lx - ly);
    signs.push(sign);
    if (sign !== 0 && lx !== ly) {
      decided++;
      if ((sign > 0) === (lx > ly)) longer++;
    }
  }
  let human: PairwiseReport['human'] = null;
  const primary = outcomes.filter((o) => o.template === templates[0].name && o.sample === 0);
  if (o.human?.length) {
    const judged: string[] = [];
    const people: string[] = [];
    for (const h of o.human) {
      const o = primary.find((p) => p.question === h.questionId && ((p.x === h.model_a && p.y === h.model_b) || (p.x === h.model_b && p.y === h.model_a)));
      if (!o || o.final === null) continue;
      judged.push(o.final);
      people.push(h.winner === 'tie' ? 'tie' : h.winner === 'model_a' ? h.model_a : h.model_b);
    }
    const a = agreement(judged, people);
    human = a;
  }
  const battles: Battle[] = primary.filter((o) => o.final !== null).map((o) => ({
    model_a: o.x, model_b: o.y, winner: o.final === 'tie' ? 'tie' : o.final === o.x ? 'model_a' : 'model_b', question_id: o.question,
  }));
  const tally = models.map((m) => ({
    model: m,
    wins: battles.filter((b) => (b.model_a === m && b.winner === 'model_a') || (b.model_b === m && b.winner === 'model_b')).length,
    losses: battles.filter((b) => (b.model_a === m && b.winner === 'model_b') || (b.model_b === m && b.winner === 'model_a')).length,
    ties: battles.filter((b) => (b.model_a === m || b.model_b === m) && b.winner.startsWith('tie')).length,
  }));
  const report: PairwiseReport = {
    method: 'judge-pairwise', judge, runId, settings, judgments, outcomes, errors: judgments.length - ok.length,
    positionConsistency: swap && both.length ? { n: both.length, consistent: both.filter((o) => o.consistent).length, rate: both.filter((o) => o.consistent).length / both.length } : null,
    positionPreference: swap ? { inconsistent: inconsistent.length, first, second, other: inconsistent.length - first - second, firstRate: inconsistent.length ? first / inconsistent.length : null } : null,
    flipNoise, templateSensitivity,
    lengthBias: { n: decided, longerWinRate: decided ? longer / decided : null, correlation: pearsonOrNull(diffs, signs) },
    critique: templates.some((t) => t.critique) ? { checked: ok.filter((j) => j.critique).length, disagreements: ok.filter((j) => j.critique && !j.critique.agrees) } : null,
    human, models: tally, battles, usage: o.usage,
  };
  const { judgments: _j, outcomes: _o, ...summary } = report;
  store.finishRun(runId, summary, report.usage);
  return report;
}


/** Compares answers two by two, each comparison in both orders unless `swap` is false. */
export async function judgePairwise(
  judge: LanguageModelBackend | JudgeRunner,
  opts: JudgeOptions & { pairs?: [string, string][]; swap?: boolean; human?: HumanPairLabel[] },
): Promise<PairwiseReport> {
  const { plan, items } = planPairwise(opts);
  const runner = runnerFor(judge, opts);
  runner.expect(items.length * asksPerItem(plan));
  const records = await judgePairItems(runner, plan, items);
  return finishPairwise(runner.store, runner.judge.id, plan, items, records, { runId: opts.runId, human: opts.human, usage: runner.usage() });
}

export type { ScoreVerdict, PairVerdict };
