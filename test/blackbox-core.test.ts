// The exact pieces under SMILE and CELL, against independent computations: W1 against sorted 1-D
// matching and brute-force assignment over replicated points; BLEU against hand-counted n-grams.
import { describe, expect, it } from 'vitest';
import { Rng } from '../src/rng.js';
import { euclidean, wasserstein1 } from '../src/methods/blackbox/wasserstein.js';
import { bleu } from '../src/methods/blackbox/bleu.js';
import { bleuTokens, splitChunks, splitWords } from '../src/methods/blackbox/text.js';
import { oneHotDistance, oneHotWords } from './blackbox-helpers.js';
import { textDistance } from '../src/methods/blackbox/embed.js';

function permutations(n: number): number[][] {
  if (n === 1) return [[0]];
  return permutations(n - 1).flatMap((p) => Array.from({ length: n }, (_, i) => [...p.slice(0, i), n - 1, ...p.slice(i)]));
}

/** Uniform W1 by brute force: replicate both clouds to lcm(n, m) points, try every matching. */
function bruteW1(a: number[][], b: number[][]): number {
  const gcd = (x: number, y: number): number => (y === 0 ? x : gcd(y, x % y));
  const L = (a.length * b.length) / gcd(a.length, b.length);
  const A = a.flatMap((p) => Array.from({ length: L / a.length }, () => p));
  const B = b.flatMap((p) => Array.from({ length: L / b.length }, () => p));
  let best = Infinity;
  for (const perm of permutations(L)) best = Math.min(best, perm.reduce((s, j, i) => s + euclidean(A[i], B[j]), 0));
  return best / L;
}

describe('wasserstein1', () => {
  it('equals the sorted matching in one dimension', () => {
    const rng = new Rng(1);
    for (let t = 0; t < 20; t++) {
      const n = 2 + rng.int(12);
      const a = Array.from({ length: n }, () => rng.normal());
      const b = Array.from({ length: n }, () => rng.normal() + 0.5);
      const sa = [...a].sort((x, y) => x - y);
      const sb = [...b].sort((x, y) => x - y);
      const expected = sa.reduce((s, v, i) => s + Math.abs(v - sb[i]), 0) / n;
      expect(wasserstein1(a.map((v) => [v]), b.map((v) => [v]))).toBeCloseTo(expected, 10);
    }
  });

  it('equals brute-force optimal matching in 3-D, for equal and unequal sizes', () => {
    const rng = new Rng(7);
    for (const [n, m] of [[3, 3], [4, 4], [2, 3], [3, 2], [2, 6], [6, 3], [5, 5]]) {
      const a = Array.from({ length: n }, () => [rng.normal(), rng.normal(), rng.normal()]);
      const b = Array.from({ length: m }, () => [rng.normal(), rng.normal(), rng.normal()]);
      const w = wasserstein1(a, b);
      expect(w).toBeCloseTo(bruteW1(a, b), 9);
      expect(wasserstein1(b, a)).toBeCloseTo(w, 9);
    }
  });

  it('is the mean distance when one side is a single point, and 0 between equal clouds', () => {
    const a = [[0, 0]];
    const b = [[3, 4], [0, 1], [6, 8]];
    expect(wasserstein1(a, b)).toBeCloseTo((5 + 1 + 10) / 3, 12);
    expect(wasserstein1(b, [...b].reverse())).toBeCloseTo(0, 12);
    expect(() => wasserstein1([], b)).toThrow(/non-empty/);
  });

  it('over one-hot words is √2 × the total variation between word distributions', async () => {
    const e = oneHotWords();
    const pairs = [
      ['the cat sat on the mat', 'the cat sat'],
      ['a b c d', 'd'],
      ['a a b', 'b c'],
      ['x y', ''],
      ['', ''],
    ];
    for (const [a, b] of pairs) expect(await textDistance(e, a, b)).toBeCloseTo(oneHotDistance(a, b), 9);
  });
});

describe('BLEU', () => {
  it('matches hand-counted clipped n-gram precisions', () => {
    // the cat sat on a mat vs the cat sat on the mat: 1-grams 5/6, 2-grams 3/5, 3-grams 2/4, 4-grams 1/3, equal lengths.
    expect(bleu('the cat sat on the mat', 'the cat sat on a mat')).toBeCloseTo((5 / 6 * 3 / 5 * 2 / 4 * 1 / 3) ** 0.25, 12);
    // Add-one smoothing: (6/7 · 4/6 · 3/5 · 2/4)^(1/4).
    expect(bleu('the cat sat on the mat', 'the cat sat on a mat', { smooth: true })).toBeCloseTo((6 / 7 * 4 / 6 * 3 / 5 * 2 / 4) ** 0.25, 12);
  });

  it('applies the brevity penalty exp(1 − r/c) to short candidates only', () => {
    expect(bleu('a b c d e f', 'a b c d')).toBeCloseTo(Math.exp(1 - 6 / 4), 12);
    expect(bleu('a b c d', 'a b c d e f')).toBeCloseTo((4 / 6 * 3 / 5 * 2 / 4 * 1 / 3) ** 0.25, 12);
    expect(bleu('one two three four', 'one two three four')).toBe(1);
  });

  it('clips repeated n-grams and is 0 without smoothing when an order has no match', () => {
    expect(bleu('the cat', 'the the the the')).toBe(0);
    // Smoothed: 1-grams (1+1)/(4+1), 2-grams (0+1)/(3+1), 3-grams 1/3, 4-grams 1/2; no brevity penalty.
    expect(bleu('the cat', 'the the the the', { smooth: true })).toBeCloseTo((2 / 5 * 1 / 4 * 1 / 3 * 1 / 2) ** 0.25, 12);
    // Bigram BLEU: unigrams 2/3, bigrams 1/2, brevity exp(1 − 4/3).
    expect(bleu('the cat is here', 'the cat sat', { maxOrder: 2 })).toBeCloseTo(Math.sqrt(2 / 3 * 1 / 2) * Math.exp(1 - 4 / 3), 12);
  });

  it('splits punctuation off words and handles empty texts', () => {
    expect(bleuTokens("Hello, world! It's fine.")).toEqual(['Hello', ',', 'world', '!', "It's", 'fine', '.']);
    expect(bleu('a b', '')).toBe(0);
    expect(bleu('', '')).toBe(1);
  });
});

describe('text units', () => {
  it('splits words on whitespace and chunks within sentences, keeping text after the last mark', () => {
    expect(splitWords('  The cat\tsat.\n')).toEqual(['The', 'cat', 'sat.']);
    expect(splitChunks('I like big cats. Dogs bark loudly! ok then', 2)).toEqual(['I like', 'big cats.', 'Dogs bark', 'loudly!', 'ok then']);
    expect(splitChunks('no marks at all here', 3)).toEqual(['no marks at', 'all here']);
    expect(splitChunks('a b; c', 1)).toEqual(['a', 'b;', 'c']);
    expect(() => splitChunks('a b', 0)).toThrow(/positive integer/);
  });
});
