/**
 * Numbers for probes: a row-major matrix of activations, standardisation, metrics, and L-BFGS.
 *
 * Probes fit in JavaScript rather than on Lantern's graph: the activations already sit in this
 * thread's memory, and each iteration is two matrix-vector products (a few ms at 10,000 x 768), less
 * than a round trip of the matrix to the compute thread would cost. Dense linear algebra (Cholesky,
 * eigendecomposition) comes from ml-matrix. No maintained JavaScript package offers L-BFGS with a
 * line search satisfying the Wolfe conditions, hence the short implementation below.
 */
import { LanternError } from '../../../errors.js';

/** Activations [rows, cols], row-major. */
export interface Rows {
  data: Float32Array;
  rows: number;
  cols: number;
}

export function rowsOf(data: Float32Array, rows: number, cols: number): Rows {
  if (data.length !== rows * cols) throw new LanternError(`activations hold ${data.length} values, not ${rows} x ${cols}`);
  return { data, rows, cols };
}

export function select(x: Rows, idx: ArrayLike<number>): Rows {
  const out = new Float32Array(idx.length * x.cols);
  for (let i = 0; i < idx.length; i++) out.set(x.data.subarray(idx[i] * x.cols, (idx[i] + 1) * x.cols), i * x.cols);
  return { data: out, rows: idx.length, cols: x.cols };
}

export function selectColumns(x: Rows, cols: readonly number[]): Rows {
  const out = new Float32Array(x.rows * cols.length);
  for (let i = 0; i < x.rows; i++) for (let j = 0; j < cols.length; j++) out[i * cols.length + j] = x.data[i * x.cols + cols[j]];
  return { data: out, rows: x.rows, cols: cols.length };
}

export function columnMeans(x: Rows, rows?: ArrayLike<number>): Float64Array {
  const m = new Float64Array(x.cols);
  const n = rows ? rows.length : x.rows;
  for (let k = 0; k < n; k++) {
    const o = (rows ? rows[k] : k) * x.cols;
    for (let j = 0; j < x.cols; j++) m[j] += x.data[o + j];
  }
  for (let j = 0; j < x.cols; j++) m[j] /= n;
  return m;
}

/** Per-column mean and standard deviation (population; 1 where a column is constant). */
export function standardisation(x: Rows): { mean: Float64Array; scale: Float64Array } {
  const mean = columnMeans(x);
  const v = new Float64Array(x.cols);
  for (let i = 0; i < x.rows; i++) for (let j = 0; j < x.cols; j++) { const d = x.data[i * x.cols + j] - mean[j]; v[j] += d * d; }
  const scale = v.map((s) => { const sd = Math.sqrt(s / x.rows); return sd > 1e-12 ? sd : 1; });
  return { mean, scale };
}

export function standardise(x: Rows, mean: ArrayLike<number>, scale: ArrayLike<number>): Rows {
  const out = new Float32Array(x.data.length);
  for (let i = 0; i < x.rows; i++) for (let j = 0; j < x.cols; j++) out[i * x.cols + j] = (x.data[i * x.cols + j] - mean[j]) / scale[j];
  return { data: out, rows: x.rows, cols: x.cols };
}

/** x w + b per row. */
export function linear(x: Rows, w: ArrayLike<number>, b: number): Float64Array {
  const z = new Float64Array(x.rows);
  for (let i = 0; i < x.rows; i++) {
    let s = b;
    const o = i * x.cols;
    for (let j = 0; j < x.cols; j++) s += x.data[o + j] * w[j];
    z[i] = s;
  }
  return z;
}

/** g += x^T r (g has x.cols entries). */
export function addTransposeTimes(x: Rows, r: ArrayLike<number>, g: Float64Array): void {
  for (let i = 0; i < x.rows; i++) {
    const ri = r[i];
    if (ri === 0) continue;
    const o = i * x.cols;
    for (let j = 0; j < x.cols; j++) g[j] += x.data[o + j] * ri;
  }
}

export const sigmoid = (z: number) => (z >= 0 ? 1 / (1 + Math.exp(-z)) : Math.exp(z) / (1 + Math.exp(z)));
/** log(1 + e^z) without overflow. */
export const softplus = (z: number) => (z > 0 ? z + Math.log1p(Math.exp(-z)) : Math.log1p(Math.exp(z)));

/** The fraction of rows classified right: a score above `threshold` (default 0) predicts label 1, and labels above 0.5 count as 1. */
export function accuracy(scores: ArrayLike<number>, labels: ArrayLike<number>, threshold = 0): number {
  let right = 0;
  for (let i = 0; i < labels.length; i++) if ((scores[i] > threshold ? 1 : 0) === (labels[i] > 0.5 ? 1 : 0)) right++;
  return right / labels.length;
}

/** Area under the ROC curve: the chance a random positive outscores a random negative (ties count half). */
export function auroc(scores: ArrayLike<number>, labels: ArrayLike<number>): number {
  const idx = Array.from({ length: labels.length }, (_, i) => i).sort((a, b) => scores[a] - scores[b]);
  let rankSum = 0;
  let pos = 0;
  for (let i = 0; i < idx.length; ) {
    let j = i;
    while (j + 1 < idx.length && scores[idx[j + 1]] === scores[idx[i]]) j++;
    const rank = (i + j) / 2 + 1;
    for (let k = i; k <= j; k++) if (labels[idx[k]] > 0.5) { rankSum += rank; pos++; }
    i = j + 1;
  }
  const neg = labels.length - pos;
  if (pos === 0 || neg === 0) return NaN;
  return (rankSum - (pos * (pos + 1)) / 2) / (pos * neg);
}

export function dot(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let s = 0;
  for (let i = 0; i < a.length; i++) s += a[i] * b[i];
  return s;
}

/** The cosine similarity of two vectors, between -1 and 1 (NaN when either is all zeros). */
export function cosine(a: ArrayLike<number>, b: ArrayLike<number>): number {
  return dot(a, b) / Math.sqrt(dot(a, a) * dot(b, b));
}

/**
 * Minimises f by L-BFGS (memory 10) with a backtracking line search on the Armijo condition and
 * curvature-checked updates. `fg` returns f and writes the gradient.
 */
export function lbfgs(fg: (x: Float64Array, g: Float64Array) => number, x0: Float64Array, opts: { maxIter?: number; gradTol?: number } = {}): { x: Float64Array; f: number; iterations: number } {
  const n = x0.length;
  const m = 10;
  const maxIter = opts.maxIter ?? 500;
  const tol = opts.gradTol ?? 1e-9;
  const x = Float64Array.from(x0);
  const g = new Float64Array(n);
  let f = fg(x, g);
  const S: Float64Array[] = [];
  const Y: Float64Array[] = [];
  const rho: number[] = [];
  const d = new Float64Array(n);
  const xNew = new Float64Array(n);
  const gNew = new Float64Array(n);
  let it = 0;
  for (; it < maxIter; it++) {
    if (Math.sqrt(dot(g, g)) <= tol * Math.max(1, Math.sqrt(dot(x, x)))) break;
    // Two-loop recursion: d = -H g.
    d.set(g);
    const alpha: number[] = [];
    for (let k = S.length - 1; k >= 0; k--) {
      alpha[k] = rho[k] * dot(S[k], d);
      for (let i = 0; i < n; i++) d[i] -= alpha[k] * Y[k][i];
    }
    const gamma = S.length ? dot(S[S.length - 1], Y[Y.length - 1]) / dot(Y[Y.length - 1], Y[Y.length - 1]) : 1 / Math.max(1, Math.sqrt(dot(g, g)));
    for (let i = 0; i < n; i++) d[i] *= gamma;
    for (let k = 0; k < S.length; k++) {
      const beta = rho[k] * dot(Y[k], d);
      for (let i = 0; i < n; i++) d[i] += S[k][i] * (alpha[k] - beta);
    }
    for (let i = 0; i < n; i++) d[i] = -d[i];
    let slope = dot(g, d);
    if (slope >= 0) { for (let i = 0; i < n; i++) d[i] = -g[i]; slope = -dot(g, g); S.length = Y.length = rho.length = 0; }
    let step = 1;
    let fNew = Infinity;
    for (let tries = 0; tries < 40; tries++) {
      for (let i = 0; i < n; i++) xNew[i] = x[i] + step * d[i];
      fNew = fg(xNew, gNew);
      if (fNew <= f + 1e-4 * step * slope) break;
      step *= 0.5;
    }
    if (!(fNew <= f)) break; // no decrease: at the minimum to float precision
    const s = new Float64Array(n);
    const y = new Float64Array(n);
    for (let i = 0; i < n; i++) { s[i] = xNew[i] - x[i]; y[i] = gNew[i] - g[i]; }
    const sy = dot(s, y);
    if (sy > 1e-12 * Math.sqrt(dot(s, s) * dot(y, y))) {
      S.push(s); Y.push(y); rho.push(1 / sy);
      if (S.length > m) { S.shift(); Y.shift(); rho.shift(); }
    }
    const df = f - fNew;
    x.set(xNew); g.set(gNew); f = fNew;
    if (df <= 1e-15 * Math.max(1, Math.abs(f)) && Math.sqrt(dot(g, g)) <= 1e-6) break;
  }
  return { x, f, iterations: it };
}
