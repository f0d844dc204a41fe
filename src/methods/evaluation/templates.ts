/**
 * Judge prompts, and reading the verdict back out of the judge's answer.
 *
 * A template is plain text with placeholders in braces: {question}, {answer} (single grading),
 * {answer_a} and {answer_b} (pairwise), {reference} (reference-guided). Verdicts are asked for in
 * double brackets, which rarely occur in ordinary text: `[[7]]` for a score, `[[A]]`, `[[B]]` or
 * `[[C]]` (a tie) for a comparison. Critique templates also ask for one line per criterion
 * (`- Correctness: 6` or `- Correctness: A`), so the final verdict can be checked against them.
 *
 * Multi-turn conversations are shown to the judge as a transcript ({answer} holds the whole
 * dialogue of the assistant being judged), and the template asks about the last reply in context.
 */
import fs from 'node:fs';
import { LanternError, nearest } from '../../errors.js';

/** What a template asks the judge to do. */
export type TemplateKind = 'single' | 'pairwise';

/** A judge prompt and how to read its answer. */
export interface JudgeTemplate {
  /** Identifies the template in results and stored verdicts. */
  name: string;
  kind: TemplateKind;
  /** Uses {reference}: the item must have a reference answer. */
  reference: boolean;
  /** Asks for per-criterion marks before the verdict, checked against it. */
  critique: boolean;
  /** Lowest and highest score (single grading). */
  scale: [number, number];
  text: string;
}

const PLACEHOLDERS = ['question', 'answer', 'answer_a', 'answer_b', 'reference'] as const;

const SINGLE = `You are grading an AI assistant's reply. Judge how helpful, correct, relevant and clear it is for the user's request. Be strict and do not reward length for its own sake.

[User request]
{question}

[Assistant reply]
{answer}

First explain your assessment in a few sentences. Then give a score from 1 (useless) to 10 (excellent) on its own line, exactly in this form: Rating: [[5]]`;

const SINGLE_REFERENCE = `You are grading an AI assistant's reply against a reference answer written by an expert. Mistakes relative to the reference weigh most; style weighs little.

[User request]
{question}

[Reference answer]
{reference}

[Assistant reply]
{answer}

First compare the reply with the reference and name any mistakes. Then give a score from 1 (wrong) to 10 (fully correct and clear) on its own line, exactly in this form: Rating: [[5]]`;

const SINGLE_CRITIQUE = `You are grading an AI assistant's reply. Write a critique with one line per criterion, each with a mark from 1 to 10 and a reason, exactly in this form:
- Correctness: <mark> - <reason>
- Helpfulness: <mark> - <reason>
- Clarity: <mark> - <reason>
Then give an overall score from 1 to 10 that follows from your critique, on its own line: Rating: [[5]]

[User request]
{question}

[Assistant reply]
{answer}`;

const PAIRWISE = `You are comparing two AI assistants' replies to the same request. Decide which reply serves the user better: helpful, correct, relevant and clear. The order in which the replies appear must not influence you, and neither may their length.

[User request]
{question}

[Reply of assistant A]
{answer_a}

[Reply of assistant B]
{answer_b}

First explain your comparison in a few sentences. Then give your verdict on its own line: [[A]] if A is better, [[B]] if B is better, [[C]] for a tie.`;

const PAIRWISE_REFERENCE = `You are comparing two AI assistants' replies to the same request, with a reference answer written by an expert. The reply closer to the reference in substance is better; the order of the replies and their length must not influence you.

[User request]
{question}

[Reference answer]
{reference}

[Reply of assistant A]
{answer_a}

[Reply of assistant B]
{answer_b}

First compare both replies with the reference. Then give your verdict on its own line: [[A]] if A is better, [[B]] if B is better, [[C]] for a tie.`;

const PAIRWISE_CRITIQUE = `You are comparing two AI assistants' replies to the same request. Write a critique with one line per criterion naming the better reply (A, B, or tie) and why, exactly in this form:
- Correctness: <A|B|tie> - <reason>
- Helpfulness: <A|B|tie> - <reason>
- Clarity: <A|B|tie> - <reason>
Then give the overall verdict that follows from your critique, on its own line: [[A]], [[B]], or [[C]] for a tie.

[User request]
{question}

[Reply of assistant A]
{answer_a}

[Reply of assistant B]
{answer_b}`;

const PAIRWISE_BRIEF = `Which reply answers the request better?

Request: {question}

Reply A: {answer_a}

Reply B: {answer_b}

Give one sentence of reasons, then [[A]], [[B]], or [[C]] if they are equally good.`;

/** Lantern's built-in judge templates, by name. */
export const TEMPLATES: Record<string, JudgeTemplate> = {
  single: { name: 'single', kind: 'single', reference: false, critique: false, scale: [1, 10], text: SINGLE },
  'single-reference': { name: 'single-reference', kind: 'single', reference: true, critique: false, scale: [1, 10], text: SINGLE_REFERENCE },
  'single-critique': { name: 'single-critique', kind: 'single', reference: false, critique: true, scale: [1, 10], text: SINGLE_CRITIQUE },
  pairwise: { name: 'pairwise', kind: 'pairwise', reference: false, critique: false, scale: [1, 10], text: PAIRWISE },
  'pairwise-reference': { name: 'pairwise-reference', kind: 'pairwise', reference: true, critique: false, scale: [1, 10], text: PAIRWISE_REFERENCE },
  'pairwise-critique': { name: 'pairwise-critique', kind: 'pairwise', reference: false, critique: true, scale: [1, 10], text: PAIRWISE_CRITIQUE },
  'pairwise-brief': { name: 'pairwise-brief', kind: 'pairwise', reference: false, critique: false, scale: [1, 10], text: PAIRWISE_BRIEF },
};

/** Checks a template's placeholders against its kind; returns it. */
export function checkTemplate(t: JudgeTemplate): JudgeTemplate {
  if (t.kind !== 'single' && t.kind !== 'pairwise') throw new LanternError(`template '${t.name}': kind must be 'single' or 'pairwise', got '${String(t.kind)}'`);
  const used = new Set([...t.text.matchAll(/\{([a-z_]+)\}/g)].map((m) => m[1]));
  for (const u of used) {
    if (!(PLACEHOLDERS as readonly string[]).includes(u)) {
      throw new LanternError(`template '${t.name}': unknown placeholder {${u}}; placeholders are ${PLACEHOLDERS.map((p) => `{${p}}`).join(', ')} (nearest: {${nearest(u, PLACEHOLDERS, 1)[0]}})`);
    }
  }
  const need = t.kind === 'single' ? ['question', 'answer'] : ['question', 'answer_a', 'answer_b'];
  if (t.reference) need.push('reference');
  const missing = need.filter((n) => !used.has(n));
  if (missing.length) throw new LanternError(`template '${t.name}' (${t.kind}${t.reference ? ', reference-guided' : ''}) lacks ${missing.map((m) => `{${m}}`).join(', ')}`);
  if (!t.reference && used.has('reference')) throw new LanternError(`template '${t.name}' uses {reference} but is not marked reference-guided`);
  const [lo, hi] = t.scale;
  if (!(Number.isFinite(lo) && Number.isFinite(hi) && lo < hi)) throw new LanternError(`template '${t.name}': scale must be [low, high] with low < high, got [${lo}, ${hi}]`);
  return t;
}

/**
 * A template by built-in name, or read from a JSON file ({ name, kind, reference?, critique?,
 * scale?, text }) or a text file (then `kind` says what it judges).
 */
export function resolveTemplate(spec: string | JudgeTemplate, kind?: TemplateKind): JudgeTemplate {
  if (typeof spec !== 'string') return checkTemplate({ ...spec, scale: spec.scale ?? [1, 10] });
  if (TEMPLATES[spec]) return TEMPLATES[spec];
  if (!fs.existsSync(spec)) {
    throw new LanternError(`no judge template '${spec}': give a file or one of ${Object.keys(TEMPLATES).join(', ')} (nearest: ${nearest(spec, Object.keys(TEMPLATES), 2).join(', ')})`);
  }
  const body = fs.readFileSync(spec, 'utf8');
  if (spec.endsWith('.json')) {
    let j: Partial<JudgeTemplate>;
    try {
      j = JSON.parse(body);
    } catch (e) {
      throw new LanternError(`template file ${spec}: not JSON (${(e as Error).message})`);
    }
    if (typeof j.text !== 'string') throw new LanternError(`template file ${spec}: needs a "text" string`);
    return checkTemplate({ name: j.name ?? spec, kind: j.kind ?? kind ?? 'single', reference: Boolean(j.reference), critique: Boolean(j.critique), scale: j.scale ?? [1, 10], text: j.text });
  }
  return checkTemplate({ name: spec, kind: kind ?? 'single', reference: body.includes('{reference}'), critique: false, scale: [1, 10], text: body });
}

/** The template's text with its placeholders filled (a single pass, so inserted text is never re-read as a placeholder). */
export function renderTemplate(t: JudgeTemplate, values: Partial<Record<(typeof PLACEHOLDERS)[number], string>>): string {
  return t.text.replace(/\{([a-z_]+)\}/g, (m, k: string) => (values as Record<string, string | undefined>)[k] ?? m);
}

/**
 * A conversation as the judge reads it: a single turn is just its text; several turns become a
 * transcript of user and assistant lines.
 */
export function transcript(questions: string[], answers: string[]): { question: string; answer: string } {
  if (questions.length === 1) return { question: questions[0], answer: answers[0] };
  const question = questions.map((q, i) => `(turn ${i + 1}) ${q}`).join('\n') + `\n\nJudge the whole conversation, above all the assistant's last reply in its context.`;
  const answer = questions.map((q, i) => `User: ${q}\nAssistant: ${answers[i] ?? ''}`).join('\n\n');
  return { question, answer };
}

/** A parsed single-grading answer. */
export interface ScoreVerdict {
  score: number;
  rationale: string;
  /** Critique mode: the per-criterion marks. */
  criteria?: Record<string, number>;
}

/** A parsed pairwise answer: which position won ('tie' for [[C]]). */
export interface PairVerdict {
  winner: 'A' | 'B' | 'tie';
  rationale: string;
  criteria?: Record<string, 'A' | 'B' | 'tie'>;
}

/** A verdict, or why none could be read. */
export type Parsed<T> = { ok: true; value: T } | { ok: false; error: string };

const NUMBER = /[-+]?\d+(?:\.\d+)?/;

/** The text before the verdict marker: the judge's reasons. */
function rationaleBefore(text: string, at: number): string {
  return text.slice(0, at).replace(/\b(?:rating|score|verdict)\s*:?\s*$/i, '').trim();
}

/** Reads `[[score]]` (or, failing that, a last `Rating: n` / `Score: n/10` line) from a single-grading answer. */
export function parseScore(text: string, t: Pick<JudgeTemplate, 'scale' | 'critique'>): Parsed<ScoreVerdict> {
  const bracketed = [...text.matchAll(/\[\[\s*([-+]?\d+(?:\.\d+)?)\s*(?:\/\s*\d+\s*)?\]\]/g)];
  let m: { value: number; at: number } | undefined;
  if (bracketed.length) {
    const values = new Set(bracketed.map((b) => Number(b[1])));
    if (values.size > 1) return { ok: false, error: `ambiguous verdict: several different scores in brackets (${[...values].join(', ')})` };
    const last = bracketed[bracketed.length - 1];
    m = { value: Number(last[1]), at: last.index! };
  } else {
    const lines = [...text.matchAll(new RegExp(`(?:rating|score)\\s*[:=]?\\s*(${NUMBER.source})(?:\\s*/\\s*\\d+)?`, 'gi'))];
    const last = lines[lines.length - 1];
    if (last) m = { value: Number(last[1]), at: last.index! };
  }
  if (!m) return { ok: false, error: `no score found (expected e.g. 'Rating: [[${t.scale[1] - 3}]]'): ${JSON.stringify(text.slice(0, 120))}` };
  const [lo, hi] = t.scale;
  if (m.value < lo || m.value > hi) return { ok: false, error: `score ${m.value} is outside the scale ${lo}–${hi}` };
  const v: ScoreVerdict = { score: m.value, rationale: rationaleBefore(text, m.at) };
  if (t.critique) {
    const criteria: Record<string, number> = {};
    for (const c of text.matchAll(/^\s*[-*]\s*([A-Za-z][\w ]*?)\s*:\s*\[?([-+]?\d+(?:\.\d+)?)\]?(?:\s*\/\s*\d+)?/gm)) criteria[c[1].trim()] = Number(c[2]);
    if (Object.keys(criteria).length === 0) return { ok: false, error: 'critique mode: no per-criterion marks found (expected lines like "- Correctness: 6 - reason")' };
    v.criteria = criteria;
  }
  return { ok: true, value: v };
}

/** Reads `[[A]]`, `[[B]]` or `[[C]]`/`[[tie]]` (or a last `Verdict: A` line) from a pairwise answer. */
export function parsePair(text: string, t: Pick<JudgeTemplate, 'critique'>): Parsed<PairVerdict> {
  const norm = (s: string): 'A' | 'B' | 'tie' => (/^a$/i.test(s) ? 'A' : /^b$/i.test(s) ? 'B' : 'tie');
  const bracketed = [...text.matchAll(/\[\[\s*(A|B|C|tie)\s*\]\]/gi)];
  let m: { winner: 'A' | 'B' | 'tie'; at: number } | undefined;
  if (bracketed.length) {
    const values = new Set(bracketed.map((b) => norm(b[1])));
    if (values.size > 1) return { ok: false, error: `ambiguous verdict: both ${[...values].map((v) => (v === 'tie' ? '[[C]]' : `[[${v}]]`)).join(' and ')} appear` };
    const last = bracketed[bracketed.length - 1];
    m = { winner: norm(last[1]), at: last.index! };
  } else {
    const lines = [...text.matchAll(/verdict\s*[:=]\s*\**\s*(A|B|C|tie)\b/gi)];
    const last = lines[lines.length - 1];
    if (last) m = { winner: norm(last[1]), at: last.index! };
  }
  if (!m) return { ok: false, error: `no verdict found (expected [[A]], [[B]] or [[C]]): ${JSON.stringify(text.slice(0, 120))}` };
  const v: PairVerdict = { winner: m.winner, rationale: rationaleBefore(text, m.at) };
  if (t.critique) {
    const criteria: Record<string, 'A' | 'B' | 'tie'> = {};
    for (const c of text.matchAll(/^\s*[-*]\s*([A-Za-z][\w ]*?)\s*:\s*\[?(A|B|tie|C)\]?\b/gim)) criteria[c[1].trim()] = norm(c[2]);
    if (Object.keys(criteria).length === 0) return { ok: false, error: 'critique mode: no per-criterion verdicts found (expected lines like "- Correctness: A - reason")' };
    v.criteria = criteria;
  }
  return { ok: true, value: v };
}

/**
 * Whether a critique supports its verdict. Single: the score lies within `tolerance` of the mean
 * criterion mark. Pairwise: the verdict is the side more criteria favour (a tie when they favour
 * both equally).
 */
export function critiqueAgrees(v: ScoreVerdict | PairVerdict, tolerance = 2): { agrees: boolean; expected: number | 'A' | 'B' | 'tie' } {
  if ('score' in v) {
    const marks = Object.values(v.criteria ?? {});
    const mean = marks.reduce((a, b) => a + b, 0) / marks.length;
    return { agrees: Math.abs(v.score - mean) <= tolerance, expected: mean };
  }
  const marks = Object.values(v.criteria ?? {});
  const a = marks.filter((m) => m === 'A').length;
  const b = marks.filter((m) => m === 'B').length;
  const expected = a > b ? 'A' : b > a ? 'B' : 'tie';
  return { agrees: expected === v.winner, expected };
}
