/**
 * Sampling-based perturbation attribution over token coalitions: LIME, KernelSHAP and Shapley
 * value sampling. Every method draws binary *keep-masks* z ∈ {0,1}^n over the n prompt tokens
 * (z_i = 1: token i is kept; 0: masked exactly as occlusion masks it, see perturbation.ts), runs
 * every distinct masked input once through `maskedValues` (batched, `batchSize` at a time; a
 * coalition drawn twice is evaluated once), and explains each target row separately. All
 * randomness comes from a seeded Rng, so the same seed gives the same scores.
 *
 *   'lime'     LIME with a masked-token surrogate (Ribeiro et al. 2016; Captum's Lime on token
 *              features). `samples` (default 200) masks z ~ Bernoulli(0.5)^n, plus the all-ones
 *              mask (the input itself) as sample 0. Each sample is weighted by an exponential
 *              kernel on the cosine distance to the all-ones mask,
 *                d(z) = 1 − |z| / (√|z| √n)   (d = 1 for the empty mask),
 *                w(z) = exp(−d² / (2 σ²)),  σ = kernelWidth (default 0.25: LIME's text default,
 *                       sqrt(exp(−(100 d)² / 25²)), written in Captum's form),
 *              and f(z) ≈ b + Σ_i c_i z_i is fit by weighted ridge regression (penalty `ridge`,
 *              default 1e-3, on the coefficients only, not the intercept). Scores are c; the
 *              surrogate's weighted R² per row is returned in `extra.surrogateR2`.
 *   'shap'     KernelSHAP (Lundberg & Lee 2017). Weighted least squares of f(z) on z with the
 *              Shapley kernel π(z) = (n − 1) / (C(n, |z|) |z| (n − |z|)). The empty and full
 *              coalitions are always included with weight EDGE_WEIGHT (1e6 × the other weights'
 *              total) instead of ∞, which enforces φ_0 = f(∅) and Σ φ = f(x) − f(∅) to ~1e-6
 *              relative. When 2^n − 2 ≤ `samples` (default max(200, 4n)) every coalition is
 *              enumerated with its exact kernel weight, and the scores are the exact Shapley values
 *              (up to that tolerance). Otherwise coalitions are sampled with probability ∝ π
 *              (a size k with P(k) ∝ (n − 1) / (k (n − k)), then a uniform subset of that size),
 *              each paired with its complement, weight 1 each.
 *   'shapley'  Shapley value sampling (Castro et al. 2009; Captum's ShapleyValueSampling).
 *              `samples` (default 50) random permutations; going through a permutation from the
 *              empty coalition, token i's score gains f(S ∪ {i}) − f(S). With `antithetic`
 *              (default true) every second permutation is the reverse of the one before. Scores
 *              sum to f(x) − f(∅) exactly for any number of permutations, and converge to the
 *              Shapley values at rate 1/√samples.
 *
 * The estimators themselves (`limeFit`, `kernelShapFit`, `shapleySamplingFit`) take any
 * `CoalitionScorer`, so they can be checked on functions whose attributions are known, and run
 * unchanged on black-box backends (agnostic.ts). With `granularity` 'word' or 'sentence' the n
 * features are words or sentences, each masking all of its tokens.
 */
import { LanternError } from '../../errors.js';
import { attributionCalls, checkHeap } from '../cost.js';
import type { HookedTransformer } from '../../models/hooked.js';
import { Rng } from '../../rng.js';
import { checkBatchSize } from './common.js';
import type { MethodOutput } from './gradient.js';
import type { Granularity } from './features.js';
import { checkGranularity } from './features.js';
import { checkMasking, featureSpans, maskedValues, spanScorer, Masking } from './perturbation.js';
import type { ResolvedTarget } from './targets.js';

/** Settings of the sampling methods (LIME, KernelSHAP, Shapley value sampling): samples, kernel width, batch size. */
export interface SamplingSettings {
  /** lime: random masks (default 200); shap: coalition budget (default max(200, 4n)); shapley: permutations (default 50). */
  samples?: number;
  /** lime: width σ of the exponential kernel on cosine distance (default 0.25). */
  kernelWidth?: number;
  /** lime: ridge penalty on the coefficients (default 1e-3; 0 for plain weighted least squares). */
  ridge?: number;
  /** shapley: pair each permutation with its reverse (default true). */
  antithetic?: boolean;
  mask?: Masking;
  batchSize?: number;
  /** Features: tokens (default), or whole words or sentences masked together. */
  granularity?: Granularity;
}

/**
 * values[row][v] for keep-masks `keep[v]` (keep[v][i] true: prompt token i is kept). Callers pass
 * each distinct mask once.
 */
export type CoalitionScorer = (keep: boolean[][]) => Promise<number[][]>;

const keyOf = (z: boolean[]): string => z.map((b) => (b ? '1' : '0')).join('');

/** Scores every mask in `keep`, evaluating each distinct mask once: values[row][v]. */
async function scoreAll(scorer: CoalitionScorer, keep: boolean[][]): Promise<number[][]> {
  const index = new Map<string, number>();
  const unique: boolean[][] = [];
  const where = keep.map((z) => {
    const k = keyOf(z);
    let i = index.get(k);
    if (i === undefined) {
      i = unique.length;
      index.set(k, i);
      unique.push(z);
    }
    return i;
  });
  const vals = await scorer(unique);
  return vals.map((row) => where.map((i) => row[i]));
}

/**
 * Every coalition is held in JavaScript until the regression: refused up front when they would
 * not fit the heap (Shapley sampling of 5000 permutations over 250 tokens needs ~5 GB), rather
 * than stalling in garbage collection and dying out of memory before the first forward pass.
 */
function heapCheck(method: 'lime' | 'shap' | 'shapley', n: number, samples: number): void {
  const { jsBytes, what } = attributionCalls({ method, tokens: n, samples });
  checkHeap(jsBytes, `${method} with ${what}`, 'use fewer samples, or fewer features (a shorter prompt, or word or sentence granularity)');
}

function checkSamples(s: number | undefined, fallback: number, what: string): number {
  const v = s ?? fallback;
  if (!Number.isInteger(v) || v < 1) throw new LanternError(`${what} must be a positive integer, got ${s}`);
  return v;
}

/**
 * Weighted least squares with an intercept: minimises Σ_s w_s (y_s − b − x_s·c)² + ridge |c|²
 * for each y in `ys`. Returns [b, c_1..c_p] per y. Normal equations in float64, Gaussian
 * elimination with partial pivoting.
 */
export function weightedLeastSquares(x: number[][], w: number[], ys: number[][], ridge = 0): number[][] {
  const p = (x[0]?.length ?? 0) + 1;
  const a = Array.from({ length: p }, () => new Float64Array(p));
  const rhs = ys.map(() => new Float64Array(p));
  x.forEach((row, s) => {
    const f = [1, ...row];
    for (let i = 0; i < p; i++) {
      if (f[i] === 0) continue;
      const wi = w[s] * f[i];
      for (let j = 0; j < p; j++) a[i][j] += wi * f[j];
      ys.forEach((y, r) => (rhs[r][i] += wi * y[s]));
    }
  });
  let scale = 0;
  for (let i = 0; i < p; i++) scale = Math.max(scale, a[i][i]);
  for (let i = 1; i < p; i++) a[i][i] += ridge;
  // Eliminate on [a | rhs...].
  const m = a.map((row, i) => [...row, ...rhs.map((r) => r[i])]);
  for (let c = 0; c < p; c++) {
    let piv = c;
    for (let r = c + 1; r < p; r++) if (Math.abs(m[r][c]) > Math.abs(m[piv][c])) piv = r;
    if (!(Math.abs(m[piv][c]) > 1e-12 * Math.max(scale, 1e-300))) {
      throw new LanternError('the surrogate regression is singular (too few distinct coalitions for the number of tokens); use more samples');
    }
    [m[c], m[piv]] = [m[piv], m[c]];
    for (let r = 0; r < p; r++) {
      if (r === c || m[r][c] === 0) continue;
      const f = m[r][c] / m[c][c];
      for (let k = c; k < m[r].length; k++) m[r][k] -= f * m[c][k];
    }
  }
  return ys.map((_, r) => Array.from({ length: p }, (_, i) => m[i][p + r] / m[i][i]));
}

/** Weighted R² of predictions `yhat` against `y`: 1 − Σw(y − ŷ)² / Σw(y − ȳ_w)² (1 when y is constant and fit exactly). */
export function weightedR2(y: number[], yhat: number[], w: number[]): number {
  const sw = w.reduce((a, b) => a + b, 0);
  const mean = y.reduce((a, v, i) => a + w[i] * v, 0) / sw;
  let res = 0;
  let tot = 0;
  y.forEach((v, i) => {
    res += w[i] * (v - yhat[i]) ** 2;
    tot += w[i] * (v - mean) ** 2;
  });
  if (tot === 0) return res === 0 ? 1 : 0;
  return 1 - res / tot;
}

/** LIME's default sample count, kernel width and ridge penalty. */
export const LIME_DEFAULTS = { samples: 200, kernelWidth: 0.25, ridge: 1e-3 } as const;

/** LIME's kernel: exp(−d² / (2σ²)) with d the cosine distance between z and the all-ones mask. */
export function limeKernel(z: boolean[], width: number): number {
  const n = z.length;
  const k = z.filter(Boolean).length;
  const d = k === 0 ? 1 : 1 - k / (Math.sqrt(k) * Math.sqrt(n));
  return Math.exp(-(d * d) / (2 * width * width));
}

/** LIME given any coalition scorer (used by the white-box and the backend versions alike). */
export async function limeFit(
  n: number, scorer: CoalitionScorer, opts: { samples?: number; kernelWidth?: number; ridge?: number; seed: number },
): Promise<{ scores: number[][]; intercepts: number[]; r2: number[] }> {
  const samples = checkSamples(opts.samples, LIME_DEFAULTS.samples, 'lime samples');
  const width = opts.kernelWidth ?? LIME_DEFAULTS.kernelWidth;
  if (!(width > 0) || !Number.isFinite(width)) throw new LanternError(`lime kernel width must be a positive number, got ${opts.kernelWidth}`);
  const ridge = opts.ridge ?? LIME_DEFAULTS.ridge;
  if (!(ridge >= 0) || !Number.isFinite(ridge)) throw new LanternError(`lime ridge penalty must be a non-negative number, got ${opts.ridge}`);
  heapCheck('lime', n, samples);
  const rng = new Rng(opts.seed);
  const keep: boolean[][] = [new Array(n).fill(true)];
  for (let s = 0; s < samples; s++) keep.push(Array.from({ length: n }, () => rng.next() < 0.5));
  const w = keep.map((z) => limeKernel(z, width));
  const x = keep.map((z) => z.map(Number));
  const ys = await scoreAll(scorer, keep);
  const coefs = weightedLeastSquares(x, w, ys, ridge);
  const r2 = ys.map((y, r) => weightedR2(y, x.map((z) => coefs[r][0] + z.reduce((a, v, i) => a + v * coefs[r][i + 1], 0)), w));
  return { scores: coefs.map((c) => c.slice(1)), intercepts: coefs.map((c) => c[0]), r2 };
}

function binomial(n: number, k: number): number {
  let c = 1;
  for (let i = 1; i <= k; i++) c = (c * (n - k + i)) / i;
  return c;
}

/** The Shapley kernel weight of a coalition of size k out of n (0 < k < n). */
export function shapleyKernel(n: number, k: number): number {
  return (n - 1) / (binomial(n, k) * k * (n - k));
}

/** KernelSHAP's weight for the empty and full coalitions, large enough to pin the fit to them. */
export const EDGE_WEIGHT = 1e6;

/** KernelSHAP given any coalition scorer (used by the white-box and the backend versions alike). */
export async function kernelShapFit(
  n: number, scorer: CoalitionScorer, opts: { samples?: number; seed: number },
): Promise<{ scores: number[][]; base: number[]; enumerated: boolean; samples: number }> {
  const samples = checkSamples(opts.samples, Math.max(200, 4 * n), 'shap samples');
  heapCheck('shap', n, samples);
  const full = new Array(n).fill(true);
  const empty = new Array(n).fill(false);
  const keep: boolean[][] = [];
  const w: number[] = [];
  const enumerated = n < 31 && 2 ** n - 2 <= samples;
  if (n === 1) {
    // No proper coalitions: the single token gets f(x) − f(∅).
  } else if (enumerated) {
    for (let bits = 1; bits < 2 ** n - 1; bits++) {
      const z = Array.from({ length: n }, (_, i) => ((bits >> i) & 1) === 1);
      keep.push(z);
      w.push(shapleyKernel(n, z.filter(Boolean).length));
    }
  } else {
    const rng = new Rng(opts.seed);
    const sizeW = Array.from({ length: n - 1 }, (_, j) => (n - 1) / ((j + 1) * (n - j - 1)));
    const total = sizeW.reduce((a, b) => a + b, 0);
    for (let s = 0; s < samples; s += 2) {
      let u = rng.next() * total;
      let k = 1;
      while (k < n - 1 && u >= sizeW[k - 1]) u -= sizeW[k++ - 1];
      // Uniform k-subset: partial Fisher–Yates.
      const idx = Array.from({ length: n }, (_, i) => i);
      for (let i = 0; i < k; i++) {
        const j = i + rng.int(n - i);
        [idx[i], idx[j]] = [idx[j], idx[i]];
      }
      const z = new Array(n).fill(false);
      for (let i = 0; i < k; i++) z[idx[i]] = true;
      keep.push(z);
      w.push(1);
      if (s + 1 < samples) {
        keep.push(z.map((b) => !b));
        w.push(1);
      }
    }
  }
  const rest = w.reduce((a, b) => a + b, 0) || 1;
  keep.push(empty, full);
  w.push(EDGE_WEIGHT * rest, EDGE_WEIGHT * rest);
  const ys = await scoreAll(scorer, keep);
  if (n === 1) {
    const m = keep.length;
    return { scores: ys.map((y) => [y[m - 1] - y[m - 2]]), base: ys.map((y) => y[m - 2]), enumerated: true, samples };
  }
  const coefs = weightedLeastSquares(keep.map((z) => z.map(Number)), w, ys, 0);
  return { scores: coefs.map((c) => c.slice(1)), base: coefs.map((c) => c[0]), enumerated, samples };
}

/** Shapley value sampling given any coalition scorer. */
export async function shapleySamplingFit(
  n: number, scorer: CoalitionScorer, opts: { samples?: number; antithetic?: boolean; seed: number },
): Promise<{ scores: number[][] }> {
  const samples = checkSamples(opts.samples, 50, 'shapley samples (permutations)');
  const antithetic = opts.antithetic ?? true;
  heapCheck('shapley', n, samples);
  const rng = new Rng(opts.seed);
  const perms: number[][] = [];
  for (let p = 0; p < samples; p++) {
    if (antithetic && p % 2 === 1) {
      perms.push([...perms[p - 1]].reverse());
      continue;
    }
    const perm = Array.from({ length: n }, (_, i) => i);
    for (let i = n - 1; i > 0; i--) {
      const j = rng.int(i + 1);
      [perm[i], perm[j]] = [perm[j], perm[i]];
    }
    perms.push(perm);
  }
  // Coalitions along each permutation: the empty one, then one more token at a time.
  const keep: boolean[][] = [];
  for (const perm of perms) {
    const z = new Array(n).fill(false);
    keep.push([...z]);
    for (const i of perm) {
      z[i] = true;
      keep.push([...z]);
    }
  }
  const ys = await scoreAll(scorer, keep);
  const scores = ys.map((y) => {
    const phi = new Array(n).fill(0);
    perms.forEach((perm, p) => {
      const base = p * (n + 1);
      perm.forEach((i, k) => (phi[i] += y[base + k + 1] - y[base + k]));
    });
    return phi.map((v) => v / samples);
  });
  return { scores };
}

/** A CoalitionScorer that runs masked copies of the target's input through the model. */
export function modelScorer(model: HookedTransformer, t: ResolvedTarget, opts: { mask: Masking; batchSize: number }): CoalitionScorer {
  return (keep) => maskedValues(model, t, keep.map((z) => z.map((b) => !b)), opts);
}

/** The white-box problem: feature spans of the prompt, and a batched scorer over them. */
function problem(model: HookedTransformer, t: ResolvedTarget, s: SamplingSettings) {
  const c = { mask: checkMasking(model, s.mask), batchSize: checkBatchSize(s.batchSize, 32) };
  const granularity = checkGranularity(s.granularity);
  const spans = featureSpans(model, t, granularity);
  return {
    n: spans.length, scorer: spanScorer(model, t, spans, c),
    settings: { ...c, ...(s.granularity ? { granularity } : {}) },
    extra: granularity !== 'token' ? { spans } : {},
  };
}

/** LIME (Ribeiro et al. 2016) on the model's masked runs. */
export async function lime(model: HookedTransformer, t: ResolvedTarget, s: SamplingSettings = {}, seed = 0): Promise<MethodOutput> {
  const p = problem(model, t, s);
  const samples = s.samples ?? LIME_DEFAULTS.samples;
  const kernelWidth = s.kernelWidth ?? LIME_DEFAULTS.kernelWidth;
  const ridge = s.ridge ?? LIME_DEFAULTS.ridge;
  const r = await limeFit(p.n, p.scorer, { samples, kernelWidth, ridge, seed });
  return { scores: r.scores, settings: { samples, kernelWidth, ridge, ...p.settings }, extra: { surrogateR2: r.r2, intercepts: r.intercepts, ...p.extra } };
}

/** KernelSHAP (Lundberg and Lee 2017) on the model's masked runs. */
export async function kernelShap(model: HookedTransformer, t: ResolvedTarget, s: SamplingSettings = {}, seed = 0): Promise<MethodOutput> {
  const p = problem(model, t, s);
  const r = await kernelShapFit(p.n, p.scorer, { samples: s.samples, seed });
  return { scores: r.scores, settings: { samples: r.samples, enumerated: r.enumerated, ...p.settings }, extra: { base: r.base, ...p.extra } };
}

/** Shapley value sampling (Castro et al. 2009) on the model's masked runs. */
export async function shapleySampling(model: HookedTransformer, t: ResolvedTarget, s: SamplingSettings = {}, seed = 0): Promise<MethodOutput> {
  const p = problem(model, t, s);
  const samples = s.samples ?? 50;
  const antithetic = s.antithetic ?? true;
  const r = await shapleySamplingFit(p.n, p.scorer, { samples, antithetic, seed });
  return { scores: r.scores, settings: { samples, antithetic, ...p.settings }, extra: p.extra };
}
