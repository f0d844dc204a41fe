/**
 * Contrast-Consistent Search (Burns et al., Discovering Latent Knowledge in Language Models
 * Without Supervision): an unsupervised probe p(x) = sigmoid(w . x~ + b) on contrast pairs, fit so
 * that p(positive) ≈ 1 - p(negative) (consistency) while one of them is confident
 * (min(p+, p-) small). Each side is standardised on its own, so the probe cannot read which answer
 * was appended. Labels are never used in the fit: only afterwards, on the training pairs, to fix
 * the sign for reporting.
 */
import { Rng } from '../../../rng.js';
import { LanternError } from '../../../errors.js';
import { requireTwoClasses } from '../data.js';
import { Rows, accuracy, addTransposeTimes, lbfgs, linear, sigmoid, standardisation, standardise } from './numeric.js';
import type { LinearProbe } from './fit.js';

/** Options for {@link trainCcs}: restarts, seed and weight decay. */
export interface CcsOptions {
  /** Random restarts; the fit with the lowest loss is kept (default 10). */
  restarts?: number;
  /** Seed for the restarts' random initialisations (default 0). */
  seed?: number;
  /** L2 on w (weight decay), which keeps the minimum finite on separable pairs (default 0.01). */
  weightDecay?: number;
  /** Start from this [w, b] instead of random restarts (for comparing with another implementation). */
  init?: Float64Array;
}

/** CCS loss and its gradient at theta = [w, b] on standardised sides. */
export function ccsLoss(pos: Rows, neg: Rows, theta: Float64Array, weightDecay: number, g?: Float64Array): number {
  const d = pos.cols;
  const n = pos.rows;
  const w = theta.subarray(0, d);
  const zp = linear(pos, w, theta[d]);
  const zn = linear(neg, w, theta[d]);
  const rp = new Float64Array(n);
  const rn = new Float64Array(n);
  let f = 0;
  for (let i = 0; i < n; i++) {
    const p = sigmoid(zp[i]);
    const q = sigmoid(zn[i]);
    const c = p - (1 - q); // consistency residual
    const m = Math.min(p, q);
    f += c * c + m * m;
    // d/dz of sigmoid is p (1 - p); the min's gradient goes to the smaller side.
    rp[i] = (2 * c + (p <= q ? 2 * m : 0)) * p * (1 - p) / n;
    rn[i] = (2 * c + (p <= q ? 0 : 2 * m)) * q * (1 - q) / n;
  }
  let ww = 0;
  for (let j = 0; j < d; j++) ww += w[j] * w[j];
  if (g) {
    g.fill(0);
    addTransposeTimes(pos, rp, g);
    addTransposeTimes(neg, rn, g);
    for (let j = 0; j < d; j++) g[j] += weightDecay * w[j];
    let gb = 0;
    for (let i = 0; i < n; i++) gb += rp[i] + rn[i];
    g[d] = gb;
  }
  return f / n + (weightDecay / 2) * ww;
}

/** CCS's credence that each pair's positive answer is right: (p+ + 1 - p-) / 2. */
export function ccsCredence(p: LinearProbe, pos: Rows, neg: Rows): Float64Array {
  const sp = standardise(pos, p.mean, p.scale);
  const sn = standardise(neg, p.negMean!, p.negScale!);
  const zp = linear(sp, p.direction, p.bias);
  const zn = linear(sn, p.direction, p.bias);
  return zp.map((z, i) => (sigmoid(z) + 1 - sigmoid(zn[i])) / 2);
}

/**
 * Fits a CCS probe on contrast pairs: `pos` and `neg` hold the activations of each statement with
 * its positive and its negative answer (row i of each is pair i). The fit uses no labels; `labels`
 * (1 where the positive answer is right) only choose the probe's sign afterwards. Returns the probe
 * and its final loss.
 */
export function trainCcs(pos: Rows, neg: Rows, labels: ArrayLike<number>, opts: CcsOptions = {}): LinearProbe & { loss: number } {
  if (pos.rows !== neg.rows || pos.cols !== neg.cols) throw new LanternError(`contrast pairs need as many positive as negative rows of one width (got ${pos.rows} x ${pos.cols} and ${neg.rows} x ${neg.cols})`);
  if (labels.length !== pos.rows) throw new LanternError(`${labels.length} labels for ${pos.rows} contrast pairs`);
  requireTwoClasses(labels);
  const restarts = opts.restarts ?? 10;
  const weightDecay = opts.weightDecay ?? 0.01;
  const a = standardisation(pos);
  const b = standardisation(neg);
  const sp = standardise(pos, a.mean, a.scale);
  const sn = standardise(neg, b.mean, b.scale);
  const d = pos.cols;
  const rng = new Rng(opts.seed ?? 0);
  let best: { theta: Float64Array; f: number } | undefined;
  for (let r = 0; r < (opts.init ? 1 : restarts); r++) {
    // PyTorch's nn.Linear initialisation: uniform in +-1/sqrt(d).
    const init = opts.init ?? Float64Array.from({ length: d + 1 }, () => (2 * rng.next() - 1) / Math.sqrt(d));
    const fit = lbfgs((t, g) => ccsLoss(sp, sn, t, weightDecay, g), init, { maxIter: 1000 });
    if (!best || fit.f < best.f) best = { theta: fit.x, f: fit.f };
  }
  const probe: LinearProbe & { loss: number } = {
    kind: 'ccs', direction: best!.theta.slice(0, d), bias: best!.theta[d], mean: a.mean, scale: a.scale, negMean: b.mean, negScale: b.scale,
    threshold: 0.5, settings: { restarts, weightDecay, seed: opts.seed ?? 0 }, loss: best!.f,
  };
  // Nothing in the loss says which answer is the true one; the training labels choose the sign to report.
  if (accuracy(ccsCredence(probe, pos, neg), labels, 0.5) < 0.5) {
    probe.direction = probe.direction.map((v) => -v);
    probe.bias = -probe.bias;
  }
  return probe;
}
