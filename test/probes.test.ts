import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { representations as R, Rng, LanternError } from '../src/index.js';

const ref = JSON.parse(fs.readFileSync(path.join(__dirname, '..', 'fixtures', 'probes', 'reference.json'), 'utf8'));
const rows = (m: number[][]): R.Rows => ({ data: Float32Array.from(m.flat()), rows: m.length, cols: m[0].length });
const maxDiff = (a: ArrayLike<number>, b: ArrayLike<number>) => Math.max(...Array.from(a, (v, i) => Math.abs(v - b[i])));

/** Rows of Gaussian noise plus +-strength along a unit direction by label, and that direction. */
function planted(n: number, d: number, strength: number, seed: number, neuron?: number) {
  const rng = new Rng(seed);
  let u = Array.from({ length: d }, () => rng.normal());
  if (neuron !== undefined) u = u.map((_, j) => (j === neuron ? 1 : 0));
  const norm = Math.hypot(...u);
  u = u.map((v) => v / norm);
  const y = Float64Array.from({ length: n }, () => (rng.next() < 0.5 ? 1 : 0));
  const x = new Float32Array(n * d);
  for (let i = 0; i < n; i++) for (let j = 0; j < d; j++) x[i * d + j] = rng.normal() + (2 * y[i] - 1) * strength * u[j] + 0.5 * j / d;
  return { x: { data: x, rows: n, cols: d }, y, u };
}

describe('probes agree with an independent PyTorch implementation (fixtures/probes)', () => {
  const X = rows(ref.X);
  it('logistic regression', () => {
    const p = R.trainLogistic(X, ref.y, { lambdas: [ref.logistic.lambda] });
    expect(maxDiff(p.direction, ref.logistic.w)).toBeLessThan(1e-4);
    expect(Math.abs(p.bias - ref.logistic.b)).toBeLessThan(1e-4);
  });
  it('linear regression', () => {
    const p = R.trainLinear(X, ref.y, { lambda: ref.linear.lambda });
    expect(maxDiff(p.direction, ref.linear.w)).toBeLessThan(1e-4);
    expect(Math.abs(p.bias - ref.linear.b)).toBeLessThan(1e-6);
  });
  it('mass-mean, plain and covariance-corrected', () => {
    const plain = R.trainMassMean(X, ref.y);
    expect(maxDiff(plain.direction, ref.massMean.theta)).toBeLessThan(1e-4);
    expect(maxDiff(plain.mean, ref.massMean.midpoint)).toBeLessThan(1e-4);
    const iid = R.trainMassMean(X, ref.y, { covariance: true, ridge: ref.massMean.ridge });
    expect(maxDiff(iid.direction, ref.massMean.theta_iid)).toBeLessThan(1e-4);
  });
  it('CCS: loss and gradient at a point, and the fit from the same start', () => {
    const P = rows(ref.Xpos);
    const N = rows(ref.Xneg);
    const sp = R.trainCcs(P, N, ref.y, { init: Float64Array.from(ref.ccs.init), weightDecay: ref.ccs.weightDecay });
    // Same data standardised the same way: loss and gradient at the fixture's start.
    const std = (m: R.Rows) => {
      const s = { data: new Float32Array(m.data.length), rows: m.rows, cols: m.cols };
      for (let j = 0; j < m.cols; j++) {
        let mu = 0; for (let i = 0; i < m.rows; i++) mu += m.data[i * m.cols + j] / m.rows;
        let v = 0; for (let i = 0; i < m.rows; i++) v += (m.data[i * m.cols + j] - mu) ** 2 / m.rows;
        for (let i = 0; i < m.rows; i++) s.data[i * m.cols + j] = (m.data[i * m.cols + j] - mu) / Math.sqrt(v);
      }
      return s;
    };
    const g = new Float64Array(ref.d + 1);
    const loss = R.ccsLoss(std(P), std(N), Float64Array.from(ref.ccs.init), ref.ccs.weightDecay, g);
    expect(Math.abs(loss - ref.ccs.initLoss)).toBeLessThan(1e-6);
    expect(maxDiff(g, ref.ccs.initGrad)).toBeLessThan(1e-6);
    const sign = Math.sign(R.cosine(sp.direction, ref.ccs.w));
    expect(maxDiff(sp.direction.map((v) => v * sign), ref.ccs.w)).toBeLessThan(1e-4);
    expect(Math.abs(sp.bias * sign - ref.ccs.b)).toBeLessThan(1e-4);
    expect(Math.abs(sp.loss - ref.ccs.loss)).toBeLessThan(1e-6);
  });
});

describe('planted ground truth: every probe recovers the planted direction', () => {
  const { x, y, u } = planted(4000, 24, 1, 1);
  const cos = (p: R.LinearProbe) => R.cosine(R.rawDirection(p), u);
  it('supervised probes: cosine >= 0.99', () => {
    expect(cos(R.trainLogistic(x, y))).toBeGreaterThanOrEqual(0.99);
    expect(cos(R.trainLinear(x, y))).toBeGreaterThanOrEqual(0.99);
    expect(cos(R.trainMassMean(x, y))).toBeGreaterThanOrEqual(0.99);
    expect(cos(R.trainMassMean(x, y, { covariance: true }))).toBeGreaterThanOrEqual(0.99);
  });
  it('CCS on contrast pairs: cosine >= 0.95, with the sign the labels give', () => {
    const rng = new Rng(5);
    const d = 24;
    const n = 1500;
    const answer = Array.from({ length: d }, () => rng.normal());
    const pos = new Float32Array(n * d);
    const neg = new Float32Array(n * d);
    for (let i = 0; i < n; i++) for (let j = 0; j < d; j++) {
      const t = (2 * y[i] - 1) * 1.5 * u[j];
      pos[i * d + j] = rng.normal() + t + answer[j];
      neg[i * d + j] = rng.normal() - t - answer[j];
    }
    const p = R.trainCcs({ data: pos, rows: n, cols: d }, { data: neg, rows: n, cols: d }, y.subarray(0, n), { restarts: 4, seed: 2 });
    expect(cos(p)).toBeGreaterThanOrEqual(0.95);
    expect(R.accuracy(R.ccsCredence(p, { data: pos, rows: n, cols: d }, { data: neg, rows: n, cols: d }), y.subarray(0, n), 0.5)).toBeGreaterThan(0.9);
  });
  it('k-sparse probing with k = 1 finds the planted neuron, by mean difference and by F-statistic', () => {
    const s = planted(2000, 48, 0.8, 3, 29);
    for (const ranking of ['mean-diff', 'f-statistic'] as const) {
      const runs = R.trainSparse(s.x, s.y, { ranking, maxK: 8 });
      expect(runs.map((r) => r.k)).toEqual([1, 2, 4, 8]);
      expect(runs[0].neurons).toEqual([29]);
      expect(Array.from(runs[0].probe.direction).filter((v) => v !== 0).length).toBe(1);
    }
  });
  it('trainProbe picks k = 1 for a single planted neuron, on training rows only', () => {
    const s = planted(1000, 32, 3, 6, 5);
    const t = R.trainProbe({ x: s.x, labels: s.y, test: Uint8Array.from({ length: 1000 }, (_, i) => (i % 5 === 0 ? 1 : 0)) }, { kind: 'k-sparse' });
    expect(t.probe.settings.k).toBe(1);
    expect(t.probe.settings.neurons).toEqual([5]);
    expect(t.sparsity!.map((r) => r.k)).toEqual([1, 2, 4, 8, 16, 32]);
    // Classes at +-3 on one neuron with unit noise: Phi(3) = 0.99865 of rows are separable.
    expect(t.test.accuracy).toBeGreaterThan(0.98);
  });
  it('held-out accuracy and AUROC match the Bayes rate of the planted separation', () => {
    // Classes at +-1 along u with unit noise: the best classifier is right with probability Phi(1) = 0.8413.
    const data: R.ProbeData = { x, labels: y, test: Uint8Array.from({ length: x.rows }, (_, i) => (i % 4 === 0 ? 1 : 0)) };
    const t = R.trainProbe(data, { kind: 'logistic' });
    expect(Math.abs(t.test.accuracy - 0.8413)).toBeLessThan(0.04);
    // AUROC of two unit Gaussians 2 apart: Phi(2 / sqrt(2)) = 0.9214.
    expect(Math.abs(t.test.auroc - 0.9214)).toBeLessThan(0.03);
  });
});

describe('metrics and PCA', () => {
  it('AUROC counts pairs, with ties as half', () => {
    expect(R.auroc([0.1, 0.4, 0.35, 0.8], [0, 0, 1, 1])).toBeCloseTo(0.75, 12);
    expect(R.auroc([1, 1, 1, 1], [0, 1, 0, 1])).toBeCloseTo(0.5, 12);
  });
  it('the top principal component of a stretched cloud is the stretched axis', () => {
    const rng = new Rng(9);
    const n = 500;
    const data = new Float32Array(n * 3);
    for (let i = 0; i < n; i++) { data[i * 3] = rng.normal(); data[i * 3 + 1] = 5 * rng.normal(); data[i * 3 + 2] = 0.1 * rng.normal(); }
    const p = R.pca2({ data, rows: n, cols: 3 });
    expect(Math.abs(p.components[0][1])).toBeGreaterThan(0.999);
    expect(Math.abs(p.components[1][0])).toBeGreaterThan(0.99);
    expect(p.explained[0]).toBeGreaterThan(0.9);
  });
});

describe('probe files and bad input', () => {
  it('a saved probe reloads and scores identically', () => {
    const { x, y } = planted(300, 8, 1, 4);
    const p = R.trainLogistic(x, y, { lambdas: [0.01] });
    const file = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'probe-')), 'p.json');
    R.saveProbe(file, R.toSaved(p, { model: 'm', hook: 'blocks.0.hook_resid_post', dModel: 8, positions: 'last', dataset: 'planted', datasetHash: 'x', seed: 0 }));
    const back = R.loadProbe(file).probe;
    expect(maxDiff(R.probeScores(back, x), R.probeScores(p, x))).toBeLessThan(1e-9);
    const dir = R.steeringDirection(back);
    expect(Math.hypot(...dir.f32)).toBeCloseTo(1, 5);
  });
  it('labels with a single class', () => {
    const { x } = planted(20, 4, 1, 4);
    expect(() => R.trainLogistic(x, new Float64Array(20).fill(1))).toThrow(/single class/);
    expect(() => R.trainMassMean(x, new Float64Array(20))).toThrow(LanternError);
  });
});
