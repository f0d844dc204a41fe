/**
 * Clean/corrupted prompt pairs for the standard patching tasks:
 *
 *   ioi           "When Mary and John went to the store, John gave a drink to" -> " Mary" (Wang et al., 2022).
 *                 Corruptions: 'abc' (S2 replaced by a third name: who is repeated is lost) or
 *                 'swap' (S2 replaced by IO: the answer flips to S).
 *   greater-than  "The war lasted from the year 1732 to the year 17" -> a year > 32 (Hanna et al., 2023);
 *                 the corrupted start year is 01, so no continuation is excluded.
 *   factual       "The Eiffel Tower is located in the city of" -> " Paris" (Meng et al., 2022); the
 *                 corrupted prompt names another subject of the same relation, and the subject's span
 *                 is given for causal tracing.
 *
 * Generators are text-level and deterministic in the seed; `pairTokens` resolves a pair against a
 * model's tokenizer and says precisely what does not fit (length mismatch, multi-token answers).
 */
import { LanternError, nearest } from '../../errors.js';
import type { HookedTransformer } from '../../models/hooked.js';
import { IOI_NAMES, IOI_TEMPLATES } from '../../models/planted/ioi.js';
import { Rng } from '../../rng.js';

/** The tasks with prompt-pair generators. */
export const TASKS = ['ioi', 'greater-than', 'factual'] as const;
/** One of {@link TASKS}. */
export type Task = (typeof TASKS)[number];

/** A clean prompt, its corrupted twin, and the answer and wrong answer that tell them apart. */
export interface PromptPair {
  task: Task;
  clean: string;
  corrupt: string;
  /** The clean answer and the foil, each meant to be one token (leading space included). */
  answer: string;
  wrong: string;
  /** greater-than: every correct / incorrect continuation (the probability-difference metric sums over them). */
  answers?: string[];
  wrongs?: string[];
  /** factual: the subject as it appears in `clean` (its tokens are what causal tracing corrupts). */
  subject?: string;
  meta: Record<string, string | number>;
}

/** How many prompt pairs and from which seed. */
export interface PairOptions {
  seed?: number;
  /** ioi: 'abc' (default) or 'swap'. */
  corruption?: string;
  /** factual: choose corrupting subjects for which this holds (e.g. the same token count); a fact without one is skipped. */
  fits?: (clean: string, corrupt: string) => boolean;
}

function pick<T>(rng: Rng, xs: readonly T[]): T {
  return xs[rng.int(xs.length)];
}

function distinct<T>(rng: Rng, xs: readonly T[], k: number): T[] {
  const a = xs.slice();
  for (let i = 0; i < k; i++) {
    const j = i + rng.int(a.length - i);
    [a[i], a[j]] = [a[j], a[i]];
  }
  return a.slice(0, k);
}

// ---------------------------------------------------------------------------------------------
// IOI

/** The IOI templates as text, with {A} {B} (the two names, in order) and {S} (the repeated subject). */
export const IOI_TEXT_TEMPLATES: string[] = IOI_TEMPLATES.map((t) => t.map((p) => (typeof p === 'string' ? `{${p}}` : p[0])).join(''));

export const IOI_CORRUPTIONS = ['abc', 'swap'] as const;

/**
 * IOI pairs. The templates and single-token names are the planted IOI model's, so the pairs run
 * on that model as well as on GPT-2-tokenized models; ABBA and BABA orders alternate at random.
 */
export function ioiPairs(n: number, opts: PairOptions = {}): PromptPair[] {
  const corruption = opts.corruption ?? 'abc';
  if (!(IOI_CORRUPTIONS as readonly string[]).includes(corruption)) {
    throw new LanternError(`unknown IOI corruption '${corruption}'; use ${IOI_CORRUPTIONS.join(' or ')}`);
  }
  const rng = new Rng((opts.seed ?? 0) >>> 0);
  return Array.from({ length: n }, () => {
    const ti = rng.int(IOI_TEXT_TEMPLATES.length);
    const [io, s, c] = distinct(rng, IOI_NAMES, 3).map((x) => x.name);
    const abba = rng.next() < 0.5;
    const [a, b] = abba ? [io, s] : [s, io];
    const fill = (s2: string) => IOI_TEXT_TEMPLATES[ti].replace('{A}', ` ${a}`).replace('{B}', ` ${b}`).replace('{S}', ` ${s2}`);
    const s2 = corruption === 'abc' ? c : io;
    return {
      task: 'ioi', clean: fill(s), corrupt: fill(s2), answer: ` ${io}`, wrong: ` ${s}`,
      meta: { io, s, ...(corruption === 'abc' ? { c } : {}), template: ti, order: abba ? 'ABBA' : 'BABA', corruption },
    };
  });
}

// ---------------------------------------------------------------------------------------------
// Greater-than

const GT_NOUNS = ['war', 'expedition', 'project', 'dynasty', 'siege', 'reign', 'drought', 'voyage', 'strike', 'construction', 'festival', 'pilgrimage'];
const GT_CENTURIES = ['11', '12', '13', '14', '15', '16', '17', '18'];
const two = (y: number) => String(y).padStart(2, '0');

/**
 * Greater-than pairs: "The {noun} lasted from the year {XX}{YY} to the year {XX}". The start year
 * YY is in [02, 98] (so both sets are non-empty); the corruption uses 01.
 */
export function greaterThanPairs(n: number, opts: PairOptions = {}): PromptPair[] {
  const rng = new Rng(((opts.seed ?? 0) ^ 0x9e3779b9) >>> 0);
  return Array.from({ length: n }, () => {
    const noun = pick(rng, GT_NOUNS);
    const xx = pick(rng, GT_CENTURIES);
    const yy = 2 + rng.int(97);
    const text = (start: string) => `The ${noun} lasted from the year ${xx}${start} to the year ${xx}`;
    const years = Array.from({ length: 100 }, (_, y) => two(y));
    return {
      task: 'greater-than', clean: text(two(yy)), corrupt: text('01'),
      answer: two(yy + 1), wrong: two(yy - 1),
      answers: years.slice(yy + 1), wrongs: years.slice(0, yy + 1),
      meta: { noun, century: xx, year: yy },
    };
  });
}

// ---------------------------------------------------------------------------------------------
// Factual recall

/** Facts by relation: [subject, object]; every prompt of a relation is `template` with the subject filled in. */
export const FACT_RELATIONS: { relation: string; template: string; facts: [string, string][] }[] = [
  {
    relation: 'landmark-city', template: '{} is located in the city of',
    facts: [['The Eiffel Tower', ' Paris'], ['The Colosseum', ' Rome'], ['Big Ben', ' London'], ['The Brandenburg Gate', ' Berlin'],
      ['The Statue of Liberty', ' New'], ['The Kremlin', ' Moscow'], ['The Acropolis', ' Athens'], ['The Sagrada Familia', ' Barcelona']],
  },
  {
    relation: 'country-capital', template: 'The capital of {} is',
    facts: [['France', ' Paris'], ['Italy', ' Rome'], ['England', ' London'], ['Germany', ' Berlin'], ['Russia', ' Moscow'],
      ['Greece', ' Athens'], ['Spain', ' Madrid'], ['Japan', ' Tokyo'], ['Egypt', ' Cairo'], ['China', ' Beijing']],
  },
  {
    relation: 'country-language', template: 'The official language of {} is',
    facts: [['France', ' French'], ['Germany', ' German'], ['Italy', ' Italian'], ['Spain', ' Spanish'], ['Russia', ' Russian'],
      ['Japan', ' Japanese'], ['Greece', ' Greek'], ['China', ' Chinese']],
  },
  {
    relation: 'person-occupation', template: '{} was famous as a',
    facts: [['William Shakespeare', ' writer'], ['Albert Einstein', ' physicist'], ['Pablo Picasso', ' painter'],
      ['Ludwig van Beethoven', ' composer'], ['Charles Darwin', ' scientist'], ['Napoleon Bonaparte', ' general']],
  },
];

/** Factual-recall pairs: a fact, and a fact of the same relation with a different object as the corruption. */
export function factualPairs(n: number, opts: PairOptions = {}): PromptPair[] {
  const rng = new Rng(((opts.seed ?? 0) ^ 0x85ebca6b) >>> 0);
  const out: PromptPair[] = [];
  for (let tries = 0; out.length < n && tries < 50 * n; tries++) {
    const rel = pick(rng, FACT_RELATIONS);
    const [subject, object] = pick(rng, rel.facts);
    const fill = (s: string) => rel.template.replace('{}', s);
    const others = rel.facts.filter(([s, o]) => o !== object && (!opts.fits || opts.fits(fill(subject), fill(s))));
    if (others.length === 0) continue;
    const [other, otherObject] = pick(rng, others);
    out.push({
      task: 'factual', clean: fill(subject), corrupt: fill(other), answer: object, wrong: otherObject, subject,
      meta: { relation: rel.relation, subject, object, corruptSubject: other },
    });
  }
  return out;
}

/** `n` pairs of a task, deterministic in `opts.seed`. */
export function promptPairs(task: string, n: number, opts: PairOptions = {}): PromptPair[] {
  if (!Number.isInteger(n) || n < 1) throw new LanternError(`the number of prompt pairs must be a positive integer, got ${n}`);
  switch (task) {
    case 'ioi': return ioiPairs(n, opts);
    case 'greater-than': return greaterThanPairs(n, opts);
    case 'factual': return factualPairs(n, opts);
  }
  throw new LanternError(`unknown task '${task}' (did you mean '${nearest(task, TASKS, 1)[0]}'?); tasks: ${TASKS.join(', ')}`);
}

// ---------------------------------------------------------------------------------------------
// Against a model

/** A prompt pair as tokens, checked to have equal lengths and one-token answers. */
export interface TokenizedPair {
  pair: PromptPair;
  cleanTokens: number[];
  corruptTokens: number[];
  answer: number;
  wrong: number;
  answers?: number[];
  wrongs?: number[];
  /** factual: the positions of the subject's tokens in the clean prompt. */
  subjectPositions?: number[];
}

function oneToken(model: HookedTransformer, text: string, what: string): number {
  const ids = model.encode(text);
  if (ids.length !== 1) throw new LanternError(`${what} ${JSON.stringify(text)} is ${ids.length} tokens for this model's tokenizer, not one`);
  return ids[0];
}

/** Tokenizes a pair for `model`; a LanternError says what does not fit (different lengths, multi-token answers). */
export function pairTokens(model: HookedTransformer, pair: PromptPair): TokenizedPair {
  const cleanTokens = model.toTokens(pair.clean);
  const corruptTokens = model.toTokens(pair.corrupt);
  if (cleanTokens.length !== corruptTokens.length) {
    throw new LanternError(`pair ${JSON.stringify(pair.clean)} / ${JSON.stringify(pair.corrupt)}: ${cleanTokens.length} vs ${corruptTokens.length} tokens; clean and corrupted prompts must have the same length`);
  }
  const out: TokenizedPair = {
    pair, cleanTokens, corruptTokens, answer: oneToken(model, pair.answer, 'answer'), wrong: oneToken(model, pair.wrong, 'wrong answer'),
  };
  if (pair.answers) out.answers = pair.answers.map((a) => oneToken(model, a, 'answer'));
  if (pair.wrongs) out.wrongs = pair.wrongs.map((a) => oneToken(model, a, 'wrong answer'));
  if (pair.subject !== undefined) {
    const at = pair.clean.indexOf(pair.subject);
    if (at < 0) throw new LanternError(`subject ${JSON.stringify(pair.subject)} does not occur in ${JSON.stringify(pair.clean)}`);
    // Tokens up to the subject's end, minus tokens before it: exact whenever the tokenizer splits at the subject's boundaries (BPE does at spaces).
    // Prefix lengths count the BOS the prompt's tokens begin with, if the model adds one.
    const before = model.toTokens(at === 0 ? '' : pair.clean.slice(0, at).replace(/ $/, '')).length;
    const through = model.toTokens(pair.clean.slice(0, at + pair.subject.length)).length;
    out.subjectPositions = Array.from({ length: through - before }, (_, i) => before + i);
  }
  return out;
}

/**
 * `n` pairs of `task` that fit `model` (equal lengths, one-token answers), drawing more candidates
 * as needed; a LanternError when too few fit.
 */
export function taskPairs(model: HookedTransformer, task: string, n: number, opts: PairOptions = {}): TokenizedPair[] {
  const fits = (a: string, b: string) => model.toTokens(a).length === model.toTokens(b).length;
  const candidates = promptPairs(task, Math.max(4 * n, 16), { fits, ...opts });
  const out: TokenizedPair[] = [];
  let lastError = '';
  for (const p of candidates) {
    if (out.length === n) break;
    try {
      out.push(pairTokens(model, p));
    } catch (e) {
      if (!(e instanceof LanternError)) throw e;
      lastError = e.message;
    }
  }
  if (out.length < n) throw new LanternError(`only ${out.length} of ${candidates.length} ${task} pairs fit this model's tokenizer (last problem: ${lastError})`);
  return out;
}
