/**
 * Supervised linear probes on activations: logistic regression (L2, strength chosen by
 * cross-validation), linear (ridge) regression, mass-mean probes (plain, and with the within-class
 * covariance correction of Marks & Tegmark, The Geometry of Truth), and k-sparse probing (Gurnee
 * et al., Finding Neurons in a Haystack).
 */
import { CholeskyDecomposition, Matrix } from 'ml-matrix';
import { LanternError } from '../../../errors.js';
import { Rng } from '../../../rng.js';
import { requireTwoClasses } from '../data.js';
import {
  Rows, accuracy, addTransposeTimes, columnMeans, lbfgs, linear, select, selectColumns, sigmoid, softplus, standardisation, standardise,
} from './numeric.js';

/** The kinds of probe {@link trainProbe} can train. */
export type ProbeKind = 'logistic' | 'linear' | 'mass-mean' | 'mass-mean-iid' | 'k-sparse' | 'ccs';
/** Every {@link ProbeKind}, in the order reports list them. */
export const PROBE_KINDS: ProbeKind[] = ['logistic', 'linear', 'mass-mean', 'mass-mean-iid', 'k-sparse', 'ccs'];

/**
 * A linear probe: score(x) = direction . ((x - mean) / scale) + bias, classified positive above
 * `threshold`. CCS probes score a contrast pair (see ccs.ts) and keep the negative side's own
 * normalisation.
 */
export interface LinearProbe {
  kind: ProbeKind;
  direction: Float64Array;
  bias: number;
  mean: Float64Array;
  scale: Float64Array;
  threshold: number;
  negMean?: Float64Array;
  negScale?: Float64Array;
  settings: Record<string, unknown>;
}

/** The probe's score for each row of `x` ([rows, width] activations): above the probe's `threshold` means the positive class. */
export function probeScores(p: LinearProbe, x: Rows): Float64Array {
  if (x.cols !== p.direction.length) throw new LanternError(`the probe takes ${p.direction.length} values per row, the activations have ${x.cols}`);
  return linear(x, rawDirection(p), p.bias - rawOffset(p));
}

/** The probe's direction in activation space (direction / scale): the one to steer along or compare. */
export function rawDirection(p: LinearProbe): Float64Array {
  return p.direction.map((w, j) => w / p.scale[j]);
}

function rawOffset(p: LinearProbe): number {
  let s = 0;
  for (let j = 0; j < p.direction.length; j++) s += (p.direction[j] * p.mean[j]) / p.scale[j];
  return s;
}

function requireLabels(x: Rows, y: ArrayLike<number>, binary: boolean): void {
  if (y.length !== x.rows) throw new LanternError(`${y.length} labels for ${x.rows} rows of activations`);
  if (x.rows < 2) throw new LanternError(`a probe needs at least 2 examples, got ${x.rows}`);
  if (binary) {
    for (let i = 0; i < y.length; i++) if (y[i] !== 0 && y[i] !== 1) throw new LanternError(`label ${y[i]} (row ${i}) is not 0 or 1; classifier probes take two classes (use the linear probe for numeric labels)`);
    requireTwoClasses(y);
  }
}

// -------------------------------------------------------------------------------------------------
// Logistic regression

/** Weights and bias minimising mean log-loss + lambda / 2 |w|^2 on (already standardised) rows. */
export function logisticFit(x: Rows, y: ArrayLike<number>, lambda: number, init?: Float64Array, gradTol = 1e-9): { w: Float64Array; b: number; loss: number } {
  const d = x.cols;
  const n = x.rows;
  const r = new Float64Array(n);
  const fg = (theta: Float64Array, g: Float64Array) => {
    const w = theta.subarray(0, d);
    const z = linear(x, w, theta[d]);
    let f = 0;
    let gb = 0;
    for (let i = 0; i < n; i++) {
      f += y[i] > 0.5 ? softplus(-z[i]) : softplus(z[i]);
      r[i] = (sigmoid(z[i]) - y[i]) / n;
      gb += r[i];
    }
    g.fill(0);
    addTransposeTimes(x, r, g);
    let ww = 0;
    for (let j = 0; j < d; j++) { g[j] += lambda * w[j]; ww += w[j] * w[j]; }
    g[d] = gb;
    return f / n + (lambda / 2) * ww;
  };
  const { x: theta, f } = lbfgs(fg, init ?? new Float64Array(d + 1), { maxIter: 1000, gradTol });
  return { w: theta.slice(0, d), b: theta[d], loss: f };
}

/** Options for {@link trainLogistic}: the L2 strengths to choose from, and the cross-validation folds and seed. */
export interface LogisticOptions {
  /** L2 strengths to choose from by cross-validation (default 1e-4 ... 1). One value skips the cross-validation. */
  lambdas?: number[];
  /** Cross-validation folds (default 5, at most one per row). */
  folds?: number;
  /** Seed for assigning rows to folds (default 0). */
  seed?: number;
}

/** Seeded fold index of each row. */
function foldsOf(n: number, k: number, seed: number): Int32Array {
  const order = Array.from({ length: n }, (_, i) => i);
  const rng = new Rng(seed);
  for (let i = n - 1; i > 0; i--) { const j = rng.int(i + 1); [order[i], order[j]] = [order[j], order[i]]; }
  const fold = new Int32Array(n);
  order.forEach((row, i) => (fold[row] = i % k));
  return fold;
}

/**
 * An L2-regularised logistic-regression probe on rows `x` with 0/1 labels `y`, on standardised
 * activations; the strength is chosen by cross-validated accuracy (ties go to the stronger).
 */
export function trainLogistic(x: Rows, y: ArrayLike<number>, opts: LogisticOptions = {}): LinearProbe {
  requireLabels(x, y, true);
  const lambdas = opts.lambdas ?? [1e-4, 1e-3, 1e-2, 1e-1, 1];
  const { mean, scale } = standardisation(x);
  const xs = standardise(x, mean, scale);
  let lambda = lambdas[0];
  let cv: { lambda: number; accuracy: number }[] = [];
  if (lambdas.length > 1) {
    const k = Math.min(opts.folds ?? 5, x.rows);
    const fold = foldsOf(x.rows, k, opts.seed ?? 0);
    // Per fold, strongest regularisation first, each fit starting from the previous one's solution
    // (a warm start along the path), to a looser tolerance than the final fit: only accuracies are compared.
    const right = new Float64Array(lambdas.length);
    const path = lambdas.map((l, i) => [l, i] as const).sort((a, b) => b[0] - a[0]);
    for (let f = 0; f < k; f++) {
      const trainIdx = [...fold.keys()].filter((i) => fold[i] !== f);
      const testIdx = [...fold.keys()].filter((i) => fold[i] === f);
      const ty = trainIdx.map((i) => y[i]);
      if (new Set(ty).size < 2) continue;
      const xt = select(xs, trainIdx);
      const xv = select(xs, testIdx);
      const yv = testIdx.map((i) => y[i]);
      let init: Float64Array | undefined;
      for (const [l, i] of path) {
        const fit = logisticFit(xt, ty, l, init, 1e-6);
        init = Float64Array.from([...fit.w, fit.b]);
        right[i] += accuracy(linear(xv, fit.w, fit.b), yv) * testIdx.length;
      }
    }
    cv = lambdas.map((l, i) => ({ lambda: l, accuracy: right[i] / x.rows }));
    // The strongest regularisation among the best: ties go to the simpler probe.
    const best = Math.max(...cv.map((c) => c.accuracy));
    lambda = cv.filter((c) => c.accuracy >= best - 1e-12).reduce((a, c) => (c.lambda > a.lambda ? c : a)).lambda;
  }
  const fit = logisticFit(xs, y, lambda);
  return { kind: 'logistic', direction: fit.w, bias: fit.b, mean, scale, threshold: 0, settings: { lambda, lambdas, folds: opts.folds ?? 5, crossValidation: cv } };
}

// -------------------------------------------------------------------------------------------------
// Linear (ridge) regression

/**
 * A ridge-regression probe (L2 strength `lambda`, default 1e-4) for numeric labels, on
 * standardised activations. With 0/1 labels it classifies at 0.5; otherwise its threshold is the
 * mean label.
 */
export function trainLinear(x: Rows, y: ArrayLike<number>, opts: { lambda?: number } = {}): LinearProbe {
  requireLabels(x, y, false);
  const lambda = opts.lambda ?? 1e-4;
  const { mean, scale } = standardisation(x);
  const xs = standardise(x, mean, scale);
  const n = x.rows;
  const d = x.cols;
  let yMean = 0;
  for (let i = 0; i < n; i++) yMean += y[i] / n;
  const gram = new Matrix(d, d);
  const rhs = new Float64Array(d);
  const row = new Float64Array(d);
  for (let i = 0; i < n; i++) {
    for (let j = 0; j < d; j++) row[j] = xs.data[i * d + j];
    for (let a = 0; a < d; a++) {
      const ra = row[a] / n;
      if (ra === 0) continue;
      rhs[a] += ra * (y[i] - yMean);
      for (let b = a; b < d; b++) gram.set(a, b, gram.get(a, b) + ra * row[b]);
    }
  }
  for (let a = 0; a < d; a++) { gram.set(a, a, gram.get(a, a) + lambda); for (let b = 0; b < a; b++) gram.set(a, b, gram.get(b, a)); }
  const w = new CholeskyDecomposition(gram).solve(Matrix.columnVector(Array.from(rhs))).getColumn(0);
  const labels = new Set(Array.from(y));
  const binary = labels.size === 2 && labels.has(0) && labels.has(1);
  return { kind: 'linear', direction: Float64Array.from(w), bias: yMean, mean, scale, threshold: binary ? 0.5 : yMean, settings: { lambda } };
}

// -------------------------------------------------------------------------------------------------
// Mass-mean probes

/** The column means of the positive (label 1) and negative (label 0) rows, and how many of each. */
function classMeans(x: Rows, y: ArrayLike<number>): { mu1: Float64Array; mu0: Float64Array; n1: number; n0: number } {
  const pos: number[] = [];
  const neg: number[] = [];
  for (let i = 0; i < x.rows; i++) (y[i] > 0.5 ? pos : neg).push(i);
  return { mu1: columnMeans(x, pos), mu0: columnMeans(x, neg), n1: pos.length, n0: neg.length };
}

/**
 * The difference of the class means, from the midpoint between them. With `covariance`, the
 * difference is multiplied by the inverse of the within-class covariance (pooled over both
 * classes, plus `ridge` times its mean variance on the diagonal so it stays invertible when there
 * are fewer examples than dimensions).
 */
export function trainMassMean(x: Rows, y: ArrayLike<number>, opts: { covariance?: boolean; ridge?: number } = {}): LinearProbe {
  requireLabels(x, y, true);
  const { mu1, mu0 } = classMeans(x, y);
  const d = x.cols;
  let theta = mu1.map((v, j) => v - mu0[j]);
  const ridge = opts.ridge ?? 1e-6;
  if (opts.covariance) {
    const cov = new Matrix(d, d);
    const c = new Float64Array(d);
    for (let i = 0; i < x.rows; i++) {
      const mu = y[i] > 0.5 ? mu1 : mu0;
      for (let j = 0; j < d; j++) c[j] = x.data[i * d + j] - mu[j];
      for (let a = 0; a < d; a++) {
        const ca = c[a] / x.rows;
        for (let b = a; b < d; b++) cov.set(a, b, cov.get(a, b) + ca * c[b]);
      }
    }
    let trace = 0;
    for (let a = 0; a < d; a++) { trace += cov.get(a, a); for (let b = 0; b < a; b++) cov.set(a, b, cov.get(b, a)); }
    for (let a = 0; a < d; a++) cov.set(a, a, cov.get(a, a) + (ridge * trace) / d);
    theta = Float64Array.from(new CholeskyDecomposition(cov).solve(Matrix.columnVector(Array.from(theta))).getColumn(0));
  }
  return {
    kind: opts.covariance ? 'mass-mean-iid' : 'mass-mean', direction: theta, bias: 0,
    mean: mu1.map((v, j) => (v + mu0[j]) / 2), scale: new Float64Array(d).fill(1), threshold: 0,
    settings: opts.covariance ? { covariance: true, ridge } : {},
  };
}

// -------------------------------------------------------------------------------------------------
// k-sparse probing

/** How k-sparse probing ranks neurons: by the absolute difference of the class means, or by the ANOVA F statistic. */
export type NeuronRanking = 'mean-diff' | 'f-statistic';

/** Columns ordered by how well each alone separates the classes, best first, with their scores. */
export function rankNeurons(x: Rows, y: ArrayLike<number>, by: NeuronRanking = 'mean-diff'): { order: number[]; scores: Float64Array } {
  requireLabels(x, y, true);
  const { mu1, mu0, n1, n0 } = classMeans(x, y);
  const scores = new Float64Array(x.cols);
  if (by === 'mean-diff') {
    for (let j = 0; j < x.cols; j++) scores[j] = Math.abs(mu1[j] - mu0[j]);
  } else {
    // One-way ANOVA F with two groups: between-group over within-group mean squares.
    const mu = columnMeans(x);
    const within = new Float64Array(x.cols);
    for (let i = 0; i < x.rows; i++) {
      const m = y[i] > 0.5 ? mu1 : mu0;
      for (let j = 0; j < x.cols; j++) { const dv = x.data[i * x.cols + j] - m[j]; within[j] += dv * dv; }
    }
    for (let j = 0; j < x.cols; j++) {
      const between = n1 * (mu1[j] - mu[j]) ** 2 + n0 * (mu0[j] - mu[j]) ** 2;
      scores[j] = between / Math.max(within[j] / (x.rows - 2), 1e-300);
    }
  }
  const order = Array.from({ length: x.cols }, (_, j) => j).sort((a, b) => scores[b] - scores[a] || a - b);
  return { order, scores };
}

/** One k of a k-sparse probing run ({@link trainSparse}): the neurons kept and the probe on them. */
export interface SparseProbeResult {
  /** How many neurons the probe reads. */
  k: number;
  /** Their column indices, best-ranked first. */
  neurons: number[];
  /** The probe, its direction zero outside `neurons`. */
  probe: LinearProbe;
}

/**
 * For k = 1, 2, 4, ... up to `maxK`: a logistic probe on the k best-ranked neurons only (L2
 * strength `lambda`, no cross-validation: one fit per k). Each probe's direction is zero outside its neurons.
 */
export function trainSparse(x: Rows, y: ArrayLike<number>, opts: { ranking?: NeuronRanking; maxK?: number; lambda?: number } = {}): SparseProbeResult[] {
  const { order } = rankNeurons(x, y, opts.ranking ?? 'mean-diff');
  const maxK = Math.min(opts.maxK ?? 256, x.cols);
  const out: SparseProbeResult[] = [];
  for (let k = 1; ; k *= 2) {
    const kk = Math.min(k, maxK);
    const neurons = order.slice(0, kk);
    const sub = trainLogistic(selectColumns(x, neurons), y, { lambdas: [opts.lambda ?? 1e-3] });
    const direction = new Float64Array(x.cols);
    const mean = new Float64Array(x.cols);
    const scale = new Float64Array(x.cols).fill(1);
    neurons.forEach((j, i) => { direction[j] = sub.direction[i]; mean[j] = sub.mean[i]; scale[j] = sub.scale[i]; });
    out.push({ k: kk, neurons, probe: { kind: 'k-sparse', direction, bias: sub.bias, mean, scale, threshold: 0, settings: { k: kk, neurons, ranking: opts.ranking ?? 'mean-diff', lambda: opts.lambda ?? 1e-3 } } });
    if (kk >= maxK) return out;
  }
}
