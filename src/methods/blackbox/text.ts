/**
 * Splitting prompts into the units black-box methods perturb: words (SMILE) and chunks of k words
 * within a sentence (CELL), and the word n-grams BLEU counts.
 */
import { LanternError } from '../../errors.js';

/** Whitespace-separated words, punctuation kept on its word (what a reader calls a word). */
export function splitWords(text: string): string[] {
  return text.split(/\s+/).filter((w) => w.length > 0);
}

/**
 * CELL's chunks: the text is cut into sentences after each of . ! ? ; and every sentence into
 * groups of `k` consecutive words, so a chunk never spans two sentences. Joining the chunks with
 * single spaces gives the text back (with its whitespace normalised). Unlike ICX360's
 * `splitTextByK`, text after the last sentence mark is kept.
 */
export function splitChunks(text: string, k = 1): string[] {
  if (!Number.isInteger(k) || k < 1) throw new LanternError(`chunk size must be a positive integer number of words, got ${k}`);
  const chunks: string[] = [];
  let start = 0;
  const push = (sentence: string) => {
    const words = splitWords(sentence);
    for (let i = 0; i < words.length; i += k) chunks.push(words.slice(i, i + k).join(' '));
  };
  for (const m of text.matchAll(/[.!?;]/g)) {
    const end = (m.index ?? 0) + 1;
    push(text.slice(start, end));
    start = end;
  }
  push(text.slice(start));
  return chunks;
}

/** Tokens for BLEU: words with punctuation split off (close to sacrebleu's default 13a tokenizer), case kept. */
export function bleuTokens(text: string): string[] {
  return text.replace(/([^\p{L}\p{N}\s'])/gu, ' $1 ').split(/\s+/).filter((t) => t.length > 0);
}
