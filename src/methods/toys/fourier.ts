/**
 * Fourier analysis on Z_p for the grokking toy: the real Fourier basis (constant, then cos and sin
 * of each frequency k = 1 … (p − 1)/2), the share of a matrix's norm in each frequency, the
 * frequency that best explains each neuron over all input pairs, and the restricted and excluded
 * losses of *Progress Measures for Grokking*.
 */
import { LanternError } from '../../errors.js';

/** Orthonormal real Fourier basis of Z_p (p odd): rows [1, cos 1, sin 1, cos 2, sin 2, …], each of length p. */
export function fourierBasis(p: number): Float64Array[] {
  if (p % 2 === 0) throw new LanternError(`the Fourier basis here needs an odd modulus, got ${p}`);
  const rows: Float64Array[] = [new Float64Array(p).fill(1 / Math.sqrt(p))];
  for (let k = 1; k <= (p - 1) / 2; k++) {
    const c = new Float64Array(p);
    const s = new Float64Array(p);
    for (let x = 0; x < p; x++) {
      c[x] = Math.sqrt(2 / p) * Math.cos((2 * Math.PI * k * x) / p);
      s[x] = Math.sqrt(2 / p) * Math.sin((2 * Math.PI * k * x) / p);
    }
    rows.push(c, s);
  }
  return rows;
}

/**
 * Share of the squared norm of `M` (p rows of `cols` values, e.g. the token embeddings) in each
 * frequency k = 1 … (p − 1)/2 (index k − 1), leaving out the constant component.
 */
export function frequencyShares(M: ArrayLike<number>, p: number, cols: number): number[] {
  const basis = fourierBasis(p);
  const norms = new Array((p - 1) / 2).fill(0);
  for (let r = 1; r < basis.length; r++) {
    const f = basis[r];
    for (let j = 0; j < cols; j++) {
      let dot = 0;
      for (let x = 0; x < p; x++) dot += f[x] * M[x * cols + j];
      norms[(r - 1) >> 1] += dot * dot;
    }
  }
  const total = norms.reduce((a, b) => a + b, 0);
  return norms.map((n) => (total > 0 ? n / total : 0));
}

/** A frequency is key when its share is at least this many times the uniform share 1/((p − 1)/2). */
export const KEY_SHARE_FACTOR = 3;

/** The frequencies (1-based) whose share exceeds KEY_SHARE_FACTOR × uniform, largest first. */
export function keyFrequencies(shares: number[]): number[] {
  const bar = KEY_SHARE_FACTOR / shares.length;
  return shares.map((s, i) => ({ s, k: i + 1 })).filter((e) => e.s >= bar).sort((a, b) => b.s - a.s).map((e) => e.k);
}

/** For one neuron: the frequency that explains most of its variance over all pairs, and how much. */
export interface NeuronFrequency {
  frequency: number;
  /** Share of the neuron's variance over the p² pairs in that frequency's terms (cos/sin of a, of b, and their products). */
  explained: number;
  variance: number;
}

/**
 * Each neuron's best frequency from its activations `acts` [p², n] (row a·p + b): a 2-D Fourier
 * transform over (a, b), then the variance in the eight terms of each frequency k (cos kx, sin kx
 * for x = a, b, and the four products of one a-term and one b-term).
 */
export function neuronFrequencies(acts: ArrayLike<number>, p: number, n: number): NeuronFrequency[] {
  const basis = fourierBasis(p);
  const out: NeuronFrequency[] = [];
  const X = new Float64Array(p * p);
  const Y = new Float64Array(p * p); // Y[a, j] = Σ_b X[a, b] basis[j][b]
  for (let u = 0; u < n; u++) {
    let mean = 0;
    for (let i = 0; i < p * p; i++) { X[i] = acts[i * n + u]; mean += X[i]; }
    mean /= p * p;
    let variance = 0;
    for (let i = 0; i < p * p; i++) { X[i] -= mean; variance += X[i] * X[i]; }
    for (let a = 0; a < p; a++) for (let j = 0; j < p; j++) {
      let s = 0;
      const f = basis[j];
      for (let b = 0; b < p; b++) s += X[a * p + b] * f[b];
      Y[a * p + j] = s;
    }
    const coef = (i: number, j: number) => { let s = 0; const f = basis[i]; for (let a = 0; a < p; a++) s += f[a] * Y[a * p + j]; return s; };
    let best = { frequency: 0, explained: 0 };
    for (let k = 1; k <= (p - 1) / 2; k++) {
      const idx = [0, 2 * k - 1, 2 * k];
      let e = 0;
      for (const i of idx) for (const j of idx) if (i !== 0 || j !== 0) e += coef(i, j) ** 2;
      const share = variance > 0 ? e / variance : 0;
      if (share > best.explained) best = { frequency: k, explained: share };
    }
    out.push({ ...best, variance: variance / (p * p) });
  }
  return out;
}

/**
 * Projection of logits L[a, b, c] (p³, row (a·p + b)·p + c) onto cos and sin of 2πk(a + b − c)/p
 * for each key frequency k: the part of the logits that the Fourier algorithm produces.
 */
export function keyFrequencyComponent(logits: ArrayLike<number>, p: number, keys: number[]): Float64Array {
  const out = new Float64Array(p * p * p);
  for (const k of keys) {
    const cos = new Float64Array(p);
    const sin = new Float64Array(p);
    for (let x = 0; x < p; x++) { cos[x] = Math.cos((2 * Math.PI * k * x) / p); sin[x] = Math.sin((2 * Math.PI * k * x) / p); }
    let cu = 0;
    let cv = 0;
    for (let a = 0; a < p; a++) for (let b = 0; b < p; b++) for (let c = 0; c < p; c++) {
      const r = (((a + b - c) % p) + p) % p;
      const l = logits[(a * p + b) * p + c];
      cu += l * cos[r];
      cv += l * sin[r];
    }
    // Over the whole cube each direction has squared norm p³/2.
    cu /= (p * p * p) / 2;
    cv /= (p * p * p) / 2;
    for (let a = 0; a < p; a++) for (let b = 0; b < p; b++) for (let c = 0; c < p; c++) {
      const r = (((a + b - c) % p) + p) % p;
      out[(a * p + b) * p + c] += cu * cos[r] + cv * sin[r];
    }
  }
  return out;
}

/**
 * Restricted loss (logits kept to the key frequencies' component, over every pair) and excluded
 * loss (that component removed, over the training pairs): the first falls as the Fourier circuit
 * forms, the second rises as the model comes to rely on it.
 */
export function restrictedExcludedLoss(
  logits: ArrayLike<number>, p: number, keys: number[], trainPairs: number[],
  lossOf: (l: Float64Array, pairs: number[], p: number) => { loss: number },
): { restrictedLoss: number; excludedLoss: number } {
  const part = keyFrequencyComponent(logits, p, keys);
  const excluded = new Float64Array(p * p * p);
  for (let i = 0; i < excluded.length; i++) excluded[i] = logits[i] - part[i];
  const every = Array.from({ length: p * p }, (_, i) => i);
  return { restrictedLoss: lossOf(part, every, p).loss, excludedLoss: lossOf(excluded, trainPairs, p).loss };
}
