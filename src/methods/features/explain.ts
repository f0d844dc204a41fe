/**
 * Automated explanation of a feature, after OpenAI's *Language models can explain neurons in
 * language models* (Bills et al., 2023): an explainer model reads the feature's top contexts as
 * `token<TAB>activation` records (activations scaled to 0–10) and writes one sentence; a simulator
 * model, given only that sentence, predicts each token's activation; the score is the correlation
 * of simulated and true activations over top-activating and random contexts.
 *
 * The simulator reads predictions all at once where the backend echoes a prompt's log-probs: one
 * request per context, with `unknown` after every token, and the prediction at a token is the
 * expected value over the "0"…"10" tokens at the position of its `unknown`. Other backends write
 * the numbers out (`generate`), which are parsed back line by line.
 *
 * Detection and fuzzing scores (as in EleutherAI's automated interpretability work) ask cheaper
 * yes/no questions: does the explanation pick out the contexts where the feature fires
 * (detection), and the tokens it fires on, marked in the text, against randomly marked ones
 * (fuzzing)? Each is a balanced accuracy, 0.5 at chance.
 *
 * Every prompt is a template of Lantern's own ({@link DEFAULT_PROMPTS}) and can be replaced.
 */
import { LanternError } from '../../errors.js';
import type { LanguageModelBackend } from '../../backends/types.js';
import { Rng } from '../../rng.js';

/** A context as the explainer and simulator see it: its tokens and the feature's activation at each. */
export interface ActivationRecord {
  tokens: string[];
  activations: number[];
}

/**
 * The prompts, as templates: `{records}` is the formatted records, `{explanation}` the
 * explanation, `{text}` a context's text, `{ngrams}` a list of phrases, `{n}` a count.
 */
export interface ExplainPrompts {
  /** Asks for a one-sentence explanation of `{records}`; the answer is read up to its first line break. */
  explainer: string;
  /** Heads the simulator's prompt; the context follows as `token<TAB>unknown` lines between `<start>` and `<end>`. */
  simulator: string;
  /** Heads the generated-numbers simulator's prompt; the context follows as bare token lines, and the answer as `token<TAB>number` lines. */
  simulatorGenerate: string;
  /** Asks whether `{text}` shows what `{explanation}` describes; scored by the log-probs of ` yes` and ` no` after it. */
  detection: string;
  /** Asks whether the tokens marked `<<like this>>` in `{text}` are what `{explanation}` describes; ` yes` / ` no`. */
  fuzzing: string;
  /** SASC: asks for the common theme of `{ngrams}`. */
  summarize: string;
  /** SASC: asks for `{n}` short texts, one per line, about `{explanation}`. */
  synthesize: string;
}

/** Lantern's prompts. */
export const DEFAULT_PROMPTS: ExplainPrompts = {
  explainer:
    'We are studying a feature in a language model. Below are text excerpts, one token per line, each followed by a tab and the feature\'s ' +
    'activation on it, from 0 (none) to 10 (its strongest). Look at the tokens with high activations and say, in one sentence, what the feature responds to.\n\n' +
    '{records}\nExplanation: this feature fires on',
  simulator:
    'We are studying a feature in a language model. It is explained as: "{explanation}".\n' +
    'For each token of the excerpt below, predict the feature\'s activation on it, from 0 (none) to 10 (its strongest), written after a tab.\n\n',
  simulatorGenerate:
    'We are studying a feature in a language model. It is explained as: "{explanation}".\n' +
    'Rewrite the excerpt below one token per line, each token followed by a tab and the feature\'s activation on it, from 0 (none) to 10 (its strongest).\n\n',
  detection:
    'A feature of a language model is explained as: "{explanation}".\nText: {text}\nDoes the feature fire anywhere in this text? Answer yes or no.\nAnswer:',
  fuzzing:
    'A feature of a language model is explained as: "{explanation}".\nIn the text below, some tokens are marked <<like this>>.\nText: {text}\n' +
    'Are the marked tokens exactly those the explanation describes? Answer yes or no.\nAnswer:',
  summarize:
    'Here is a list of phrases that make a part of a language model respond strongly:\n{ngrams}\nWhat do these phrases have in common? Answer in a few words.\nThe common theme is',
  synthesize: 'Write {n} short, varied sentences, one per line, each clearly about {explanation}.\n1.',
};

/** How a token is written in a record line: tabs and line breaks escaped so the line format holds. */
export function recordToken(t: string): string {
  return t.replace(/\\/g, '\\\\').replace(/\t/g, '\\t').replace(/\r/g, '\\r').replace(/\n/g, '\\n');
}

/** Activations scaled to integers 0–10 by `max` (negative values are 0). */
export function scaleActivations(acts: number[], max: number): number[] {
  return acts.map((a) => (max > 0 ? Math.max(0, Math.min(10, Math.round((10 * a) / max))) : 0));
}

/** Records as the explainer reads them: each between `<start>` and `<end>`, one `token<TAB>activation` line per token. */
export function formatRecords(records: ActivationRecord[], max: number): string {
  return records.map((r) => `<start>\n${r.tokens.map((t, i) => `${recordToken(t)}\t${scaleActivations([r.activations[i]], max)[0]}`).join('\n')}\n<end>\n`).join('\n');
}

function fill(template: string, values: Record<string, string>): string {
  return template.replace(/\{(\w+)\}/g, (m, k: string) => (k in values ? values[k] : m));
}

/** Settings shared by the explanation steps. */
export interface ExplainOptions {
  prompts?: Partial<ExplainPrompts>;
  /** Tokens the explainer may write (default 64). */
  maxTokens?: number;
  /** Simulator variant: 'logprobs' (all at once, from echoed log-probs; needs a backend that gives them), 'generate', or 'auto' (default: logprobs where available). */
  simulator?: 'auto' | 'logprobs' | 'generate';
  /** Alternatives read per position by the all-at-once simulator (default 5, the completions API's limit). */
  topLogprobs?: number;
}

function prompts(o: ExplainOptions): ExplainPrompts {
  return { ...DEFAULT_PROMPTS, ...(o.prompts ?? {}) };
}

/** One-sentence explanation of a feature from its top contexts, by the explainer backend. */
export async function explainFeature(backend: LanguageModelBackend, records: ActivationRecord[], opts: ExplainOptions = {}): Promise<string> {
  if (records.length === 0) throw new LanternError('no activating contexts to explain (the feature never fired on the corpus)');
  const max = Math.max(...records.flatMap((r) => r.activations));
  const prompt = fill(prompts(opts).explainer, { records: formatRecords(records, max) });
  const out = await backend.generate(prompt, { maxTokens: opts.maxTokens ?? 64, temperature: 0, stop: ['\n'] });
  const sentence = out.text.split('\n')[0].trim();
  if (!sentence) throw new LanternError(`${backend.id} gave an empty explanation`);
  return sentence;
}

const NUMBER = /^\s*(10|[0-9])\s*$/;

/** Expected value over the number tokens "0"…"10" of one position's alternatives (renormalised over those present); 0 when none is. */
export function expectedValue(alternatives: Record<string, number>): number {
  let mass = 0;
  let ev = 0;
  for (const [tok, lp] of Object.entries(alternatives)) {
    const m = NUMBER.exec(tok);
    if (!m || !Number.isFinite(lp)) continue;
    const p = Math.exp(lp);
    mass += p;
    ev += p * Number(m[1]);
  }
  return mass > 0 ? ev / mass : 0;
}

const cp = (s: string) => [...s].length;

/** Whether the simulator reads echoed log-probs: asked for, or by default where the backend has them (a chat endpoint, whose id ends in '(chat)', cannot echo). */
function usesLogprobs(backend: LanguageModelBackend, mode: ExplainOptions['simulator'] = 'auto'): boolean {
  if (mode === 'logprobs' && !backend.promptLogprobs) throw new LanternError(`${backend.id} cannot echo a prompt's log-probs; use the generated-numbers simulator`);
  return mode !== 'generate' && Boolean(backend.promptLogprobs) && !(mode === 'auto' && backend.id.endsWith('(chat)'));
}

/**
 * Simulated activations (0–10) of each token of each record, given only the explanation. All at
 * once from echoed log-probs where the backend gives them, else from generated numbers.
 */
export async function simulateActivations(backend: LanguageModelBackend, explanation: string, records: { tokens: string[] }[], opts: ExplainOptions = {}): Promise<number[][]> {
  const useLogprobs = usesLogprobs(backend, opts.simulator);
  const p = prompts(opts);
  return Promise.all(records.map(async (r) => {
    if (useLogprobs) {
      let prompt = fill(p.simulator, { explanation }) + '<start>\n';
      const at: number[] = [];
      for (const t of r.tokens) {
        prompt += `${recordToken(t)}\t`;
        at.push(cp(prompt));
        prompt += 'unknown\n';
      }
      prompt += '<end>\n';
      const lp = await backend.promptLogprobs!(prompt, opts.topLogprobs ?? 5);
      const byOffset = new Map(lp.offsets.map((o, i) => [o, i]));
      return at.map((o, i) => {
        const k = byOffset.get(o);
        if (k === undefined) throw new LanternError(`${backend.id}: no token starts where the prediction for token ${i} (${JSON.stringify(r.tokens[i])}) goes; the tokenizer merged the tab with what follows`);
        return expectedValue(lp.top[k]);
      });
    }
    const prompt = fill(p.simulatorGenerate, { explanation }) + `<start>\n${r.tokens.map(recordToken).join('\n')}\n<end>\n\n<start>\n`;
    const out = await backend.generate(prompt, { maxTokens: 8 * r.tokens.length + 8, temperature: 0, stop: ['<end>'] });
    return parseGeneratedNumbers(out.text, r.tokens.length);
  }));
}

/** Reads `token<TAB>number` lines back in order; lines without a number, and missing lines, count 0. */
export function parseGeneratedNumbers(text: string, n: number): number[] {
  const lines = text.split('\n').filter((l) => l.trim() !== '' && !l.startsWith('<'));
  return Array.from({ length: n }, (_, i) => {
    const m = /\t\s*(\d+(?:\.\d+)?)\s*$/.exec(lines[i] ?? '');
    return m ? Math.min(10, Number(m[1])) : 0;
  });
}

/** Pearson correlation of two equally long lists; 0 when either is constant. */
export function correlation(a: number[], b: number[]): number {
  if (a.length !== b.length) throw new LanternError(`correlation of lists of ${a.length} and ${b.length} values`);
  const n = a.length;
  if (n === 0) return 0;
  const ma = a.reduce((s, x) => s + x, 0) / n;
  const mb = b.reduce((s, x) => s + x, 0) / n;
  let sab = 0, saa = 0, sbb = 0;
  for (let i = 0; i < n; i++) {
    sab += (a[i] - ma) * (b[i] - mb);
    saa += (a[i] - ma) ** 2;
    sbb += (b[i] - mb) ** 2;
  }
  return saa > 0 && sbb > 0 ? sab / Math.sqrt(saa * sbb) : 0;
}

async function yesNo(backend: LanguageModelBackend, prompt: string): Promise<boolean> {
  const [yes, no] = await Promise.all([backend.scoreContinuation(prompt, ' yes'), backend.scoreContinuation(prompt, ' no')]);
  return yes.total > no.total;
}

/** Mean of the recall on positives and on negatives: 0.5 at chance. */
function balancedAccuracy(predicted: boolean[], truth: boolean[]): number {
  const rate = (want: boolean) => {
    const idx = truth.map((t, i) => (t === want ? i : -1)).filter((i) => i >= 0);
    return idx.length ? idx.filter((i) => predicted[i] === want).length / idx.length : NaN;
  };
  const [p, n] = [rate(true), rate(false)];
  return Number.isNaN(p) ? n : Number.isNaN(n) ? p : (p + n) / 2;
}

/** Detection: does the backend, given the explanation, tell contexts where the feature fires from those where it does not? Balanced accuracy. */
export async function detectionScore(backend: LanguageModelBackend, explanation: string, records: ActivationRecord[], firesAbove: number, opts: ExplainOptions = {}): Promise<number> {
  const truth = records.map((r) => Math.max(...r.activations) > firesAbove);
  const p = prompts(opts);
  const predicted = await Promise.all(records.map((r) => yesNo(backend, fill(p.detection, { explanation, text: r.tokens.join('') }))));
  return balancedAccuracy(predicted, truth);
}

/**
 * Fuzzing: each activating context twice, once with the tokens where the feature fires marked
 * `<<…>>`, once with as many other tokens marked at random; balanced accuracy of the backend's
 * yes/no on whether the marks are right.
 */
export async function fuzzingScore(backend: LanguageModelBackend, explanation: string, records: ActivationRecord[], firesAbove: number, opts: ExplainOptions & { seed?: number } = {}): Promise<number> {
  const rng = new Rng(opts.seed ?? 0);
  const p = prompts(opts);
  const cases: { text: string; right: boolean }[] = [];
  const mark = (tokens: string[], set: Set<number>) => tokens.map((t, i) => (set.has(i) ? `<<${t}>>` : t)).join('');
  for (const r of records) {
    const firing = r.activations.map((a, i) => (a > firesAbove ? i : -1)).filter((i) => i >= 0);
    const others = r.activations.map((a, i) => (a > firesAbove ? -1 : i)).filter((i) => i >= 0);
    if (!firing.length || others.length < firing.length) continue;
    for (let i = others.length - 1; i > 0; i--) { const j = rng.int(i + 1); [others[i], others[j]] = [others[j], others[i]]; }
    cases.push({ text: mark(r.tokens, new Set(firing)), right: true });
    cases.push({ text: mark(r.tokens, new Set(others.slice(0, firing.length))), right: false });
  }
  if (!cases.length) throw new LanternError('fuzzing needs contexts where the feature fires on some tokens and not on others');
  const predicted = await Promise.all(cases.map((c) => yesNo(backend, fill(p.fuzzing, { explanation, text: c.text }))));
  return balancedAccuracy(predicted, cases.map((c) => c.right));
}

/** What {@link explainAndScore} gives back: the explanation, its scores, and the numbers behind them. */
export interface ExplanationResult {
  explanation: string;
  /** Correlation of simulated and true activations over the held-out top contexts and the random contexts. */
  score: number;
  /** The same over the held-out top contexts only, and over the random contexts only. */
  scoreTop: number;
  scoreRandom: number;
  detection?: number;
  fuzzing?: number;
  /** Which simulator ran. */
  simulator: 'logprobs' | 'generate';
  /** Per scored context: its true activations and the simulated ones (0–10). */
  scored: { kind: 'top' | 'random'; tokens: string[]; activations: number[]; simulated: number[] }[];
}

/** Settings of {@link explainAndScore}. */
export interface ExplainAndScoreOptions extends ExplainOptions {
  /** The backend that simulates and answers detection / fuzzing (default: the explainer). */
  simulatorBackend?: LanguageModelBackend;
  /** Also compute detection and fuzzing scores (default false). */
  detection?: boolean;
  fuzzing?: boolean;
  /** A token counts as firing above this fraction of the feature's largest activation (default 0.1; detection, fuzzing). */
  firesAt?: number;
  seed?: number;
}

/**
 * Explain → simulate → score. The top contexts alternate between explaining (even ranks) and
 * scoring (odd ranks), so the explainer never sees what it is scored on; the random contexts are
 * scored too, as in the OpenAI paper's "top and random" score.
 */
export async function explainAndScore(explainer: LanguageModelBackend, top: ActivationRecord[], random: ActivationRecord[], opts: ExplainAndScoreOptions = {}): Promise<ExplanationResult> {
  if (top.length < 2) throw new LanternError(`explaining needs at least 2 top contexts (to explain from and to score on), got ${top.length}`);
  const shown = top.filter((_, i) => i % 2 === 0);
  const held = top.filter((_, i) => i % 2 === 1);
  const explanation = await explainFeature(explainer, shown, opts);
  const sim = opts.simulatorBackend ?? explainer;
  const scoredRecords = [...held.map((r) => ({ kind: 'top' as const, ...r })), ...random.map((r) => ({ kind: 'random' as const, ...r }))];
  const simulated = await simulateActivations(sim, explanation, scoredRecords, opts);
  const scored = scoredRecords.map((r, i) => ({ kind: r.kind, tokens: r.tokens, activations: r.activations, simulated: simulated[i] }));
  const corr = (kind?: 'top' | 'random') => {
    const xs = scored.filter((s) => !kind || s.kind === kind);
    return correlation(xs.flatMap((s) => s.simulated), xs.flatMap((s) => s.activations));
  };
  const max = Math.max(...top.flatMap((r) => r.activations));
  const firesAbove = (opts.firesAt ?? 0.1) * max;
  const result: ExplanationResult = { explanation, score: corr(), scoreTop: corr('top'), scoreRandom: corr('random'), simulator: usesLogprobs(sim, opts.simulator) ? 'logprobs' : 'generate', scored };
  if (opts.detection) result.detection = await detectionScore(sim, explanation, [...held, ...random], firesAbove, opts);
  if (opts.fuzzing) result.fuzzing = await fuzzingScore(sim, explanation, held, firesAbove, opts);
  return result;
}
