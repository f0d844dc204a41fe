/**
 * The features a perturbation method turns on and off: a prompt's tokens, words or sentences.
 * White-box methods group token positions into spans; black-box methods cut the text itself.
 */
import { LanternError } from '../../errors.js';

/** What a feature is: a token, a word, or a sentence. */
export const GRANULARITIES = ['token', 'word', 'sentence'] as const;
/** One of {@link GRANULARITIES}. */
export type Granularity = (typeof GRANULARITIES)[number];

/** Validates a granularity name, naming the valid ones if it is not. */
export function checkGranularity(g: string | undefined, fallback: Granularity = 'token'): Granularity {
  const v = g ?? fallback;
  if ((GRANULARITIES as readonly string[]).includes(v)) return v as Granularity;
  throw new LanternError(`unknown granularity '${v}'; use one of ${GRANULARITIES.join(', ')}`);
}

// ---------------------------------------------------------------------------------------------
// Features of a token sequence (white-box) and of a text (black-box)

/** Token spans [start, end) of the words or sentences of a tokenized prompt (token: one span per token). */
export function tokenSpans(tokenStrings: string[], granularity: Granularity): [number, number][] {
  if (granularity === 'token') return tokenStrings.map((_, i) => [i, i + 1]);
  const spans: [number, number][] = [];
  if (granularity === 'word') {
    // A token that begins with whitespace starts a word (GPT-2 BPE puts the space on the word's first token).
    tokenStrings.forEach((s, i) => {
      if (i === 0 || /^\s/.test(s)) spans.push([i, i + 1]);
      else spans[spans.length - 1][1] = i + 1;
    });
    return spans;
  }
  let start = 0;
  tokenStrings.forEach((s, i) => {
    const next = tokenStrings[i + 1];
    // A sentence ends after . ! ? once the next token starts with whitespace (or the prompt ends).
    if (/[.!?]["')\]]*\s*$/.test(s) && (next === undefined || /^\s/.test(next))) {
      spans.push([start, i + 1]);
      start = i + 1;
    }
  });
  if (start < tokenStrings.length) spans.push([start, tokenStrings.length]);
  return spans;
}

/** Splits text into words (each with the whitespace before it) or sentences; joined, they give the text back. */
export function textUnits(text: string, granularity: 'word' | 'sentence'): string[] {
  const re = granularity === 'word' ? /\s*\S+/gy : /\s*[^]*?(?:[.!?]+["')\]]*(?=\s|$)|$)/gy;
  const units: string[] = [];
  let last = 0;
  for (const m of text.matchAll(re)) {
    if (m[0].length === 0) break;
    // Whitespace after the last sentence belongs to it.
    if (units.length && /^\s*$/.test(m[0])) units[units.length - 1] += m[0];
    else units.push(m[0]);
    last = m.index! + m[0].length;
  }
  // Trailing whitespace belongs to the last unit, so the units always rebuild the text.
  if (last < text.length) {
    if (units.length) units[units.length - 1] += text.slice(last);
    else units.push(text.slice(last));
  }
  return units;
}

/** Expands keep-masks over feature spans to keep-masks over tokens. */
export function expandSpans(keep: boolean[], spans: [number, number][], n: number): boolean[] {
  const out = new Array(n).fill(true);
  spans.forEach(([a, b], f) => { if (!keep[f]) for (let i = a; i < b; i++) out[i] = false; });
  return out;
}

