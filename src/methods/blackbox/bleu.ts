/**
 * Sentence BLEU (Papineni et al. 2002) as the `bleu` metric of Hugging Face `evaluate` computes it
 * (the TensorFlow NMT implementation, which ICX360's CELL BLEU scorer calls): clipped n-gram
 * precisions for n = 1..maxOrder, their geometric mean, times the brevity penalty
 * exp(1 − r/c) when the candidate (c tokens) is shorter than the reference (r tokens).
 *
 * `smooth` adds one to every precision's numerator and denominator (Lin & Och 2004, `evaluate`'s
 * smooth=True). Unsmoothed BLEU is 0 whenever no 4-gram matches, so two short responses that share
 * most of their words would count as entirely different; CELL defaults to smoothing for that reason.
 */
import { bleuTokens } from './text.js';

/** BLEU's n-gram order and smoothing. */
export interface BleuOptions {
  maxOrder?: number;
  smooth?: boolean;
}

function ngramCounts(tokens: string[], n: number): Map<string, number> {
  const counts = new Map<string, number>();
  // \u0001 cannot occur inside a token, so joined n-grams never collide.
  for (let i = 0; i + n <= tokens.length; i++) {
    const g = tokens.slice(i, i + n).join('\u0001');
    counts.set(g, (counts.get(g) ?? 0) + 1);
  }
  return counts;
}

/** BLEU of `candidate` against one `reference`, both pre-tokenized; in [0, 1]. */
export function bleuOfTokens(reference: string[], candidate: string[], opts: BleuOptions = {}): number {
  const maxOrder = opts.maxOrder ?? 4;
  const smooth = opts.smooth ?? false;
  if (candidate.length === 0) return reference.length === 0 ? 1 : 0;
  let logSum = 0;
  for (let n = 1; n <= maxOrder; n++) {
    const ref = ngramCounts(reference, n);
    const cand = ngramCounts(candidate, n);
    let matches = 0;
    for (const [g, k] of cand) matches += Math.min(k, ref.get(g) ?? 0);
    const possible = Math.max(candidate.length - n + 1, 0);
    const p = smooth ? (matches + 1) / (possible + 1) : possible > 0 ? matches / possible : 0;
    if (p === 0) return 0;
    logSum += Math.log(p) / maxOrder;
  }
  const ratio = candidate.length / Math.max(reference.length, 1e-300);
  const bp = ratio > 1 ? 1 : Math.exp(1 - 1 / ratio);
  return Math.exp(logSum) * bp;
}

/** BLEU of `candidate` text against `reference` text. */
export function bleu(reference: string, candidate: string, opts: BleuOptions = {}): number {
  return bleuOfTokens(bleuTokens(reference), bleuTokens(candidate), opts);
}
