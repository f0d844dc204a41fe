// Toy models. Independent checks:
//  - superposition: the batched graph's loss against a plain-JS loss of the same weights on the
//    same data; the geometry metrics on hand-built W (pentagon, antipodal pair, orthogonal);
//    training reproduces the paper's geometry (antipodal pairs cos <= -0.95 and dimensionality
//    1/2 for n = 4, m = 2; the pentagon's 2/5 and cos 72°/144° for n = 5, m = 2, both at sparsity
//    0.9) and the corners of the n = 2, m = 1 phase diagram;
//  - grokking: the table-gathered forward against a plain-JS one-layer transformer; the Fourier
//    tools on planted signals with hand-derived answers; the committed trained checkpoint
//    (docs/toy-models.md says how it was made) analysed: grokked, sparse key frequencies,
//    restricted loss < excluded loss;
//  - universality: see test/universality in the same file.
import { describe, expect, it } from 'vitest';
import { Graph } from '../src/engine/graph/ir.js';
import { Tensor } from '../src/engine/tensor.js';
import { Rng } from '../src/rng.js';
import {
  analyseFeatures, phaseDiagram, sampleFeatures, superpositionLoss, superpositionRun, trainSuperposition, twoFeaturePhase,
} from '../src/methods/toys/superposition.js';
import {
  fourierBasis, frequencyShares, keyFrequencies, keyFrequencyComponent, neuronFrequencies, restrictedExcludedLoss,
} from '../src/methods/toys/fourier.js';
import { cyclicProduct, irrepShares, permutations, symmetricGroup, trainUniversality } from '../src/methods/toys/universality.js';
import fs from 'node:fs';
import { analyseGrokking, readGrokkingCheckpoint, grokkingForward, initGrokking, GROKKING_DEFAULTS, pairLossAccuracy, grokkingSplit } from '../src/methods/toys/grokking.js';

const close = (a: number, b: number, tol: number) => expect(Math.abs(a - b)).toBeLessThanOrEqual(tol);

describe('superposition', () => {
  it('feature geometry of hand-built W: pentagon, antipodal pair, orthogonal features', () => {
    const pentagon = Array.from({ length: 5 }, (_, i) => [Math.cos((2 * Math.PI * i) / 5), Math.sin((2 * Math.PI * i) / 5)]);
    const a = analyseFeatures(pentagon);
    for (const d of a.featureDimensionality) close(d, 2 / 5, 1e-12);
    close(a.dimsPerFeature, 2 / 5, 1e-12);
    for (const c of a.minCosine) close(c, Math.cos((4 * Math.PI) / 5), 1e-12);
    // superposition_i = Σ_{j≠i} cos² = 2 cos²72° + 2 cos²144° = 3/2
    for (const s of a.superposition) close(s, 1.5, 1e-12);
    const pair = analyseFeatures([[1], [-1], [0]]);
    expect(pair.featureDimensionality).toEqual([0.5, 0.5, 0]);
    expect(pair.minCosine.slice(0, 2)).toEqual([-1, -1]);
    const ortho = analyseFeatures([[2, 0], [0, 1]]);
    expect(ortho.featureDimensionality).toEqual([1, 1]);
    expect(ortho.norms).toEqual([2, 1]);
    close(ortho.dimsPerFeature, 2 / 5, 1e-12);
  });

  it('the trained graph\'s per-instance loss equals a plain-JS loss of its weights on the same data', async () => {
    const instances = [{ sparsity: 0.5, importance: [1, 0.7, 0.49] }, { sparsity: 0.9, importance: [1, 1, 1] }];
    const r = await trainSuperposition({ features: 3, dims: 2, instances, batch: 64, steps: 30, lr: 1e-2, seed: 3 });
    // Recompute each instance's loss on fresh data in JS and against the analysis' own figure
    // (a 4096-example estimate): both estimate the same expectation.
    const rng = new Rng(99);
    for (const [i, inst] of instances.entries()) {
      const x = sampleFeatures(rng, [inst], 20000, 3);
      const js = superpositionLoss(r[i].W, r[i].b, inst.importance, x, 20000);
      expect(Math.abs(js - r[i].loss) / js).toBeLessThan(0.08);
    }
  });

  it('at sparsity 0.9: n = 4, m = 2 learns two antipodal pairs; n = 5, m = 2 a pentagon', async () => {
    const base = { dims: 2, sparsity: 0.9, importanceDecay: 1, restarts: 6, batch: 512, steps: 1500, lr: 3e-3, seed: 1 };
    const pairs = (await superpositionRun({ ...base, features: 4 })).best;
    for (const c of pairs.minCosine) expect(c).toBeLessThanOrEqual(-0.95);
    for (const d of pairs.featureDimensionality) close(d, 0.5, 0.03);
    for (const n of pairs.norms) expect(n).toBeGreaterThan(0.9);
    const pent = (await superpositionRun({ ...base, features: 5 })).best;
    for (const d of pent.featureDimensionality) close(d, 0.4, 0.03);
    close(pent.dimsPerFeature, 2 / (5 * pent.norms.reduce((a, n) => a + n * n, 0) / 5), 1e-9);
    // Each feature's neighbours sit at 72° and 144°.
    for (let i = 0; i < 5; i++) {
      const cos = pent.gram[i].map((g, j) => g / (pent.norms[i] * pent.norms[j])).filter((_, j) => j !== i).sort((x, y) => x - y);
      close(cos[0], Math.cos((4 * Math.PI) / 5), 0.05);
      close(cos[1], Math.cos((4 * Math.PI) / 5), 0.05);
      close(cos[2], Math.cos((2 * Math.PI) / 5), 0.05);
      close(cos[3], Math.cos((2 * Math.PI) / 5), 0.05);
    }
  }, 60_000);

  it('phase diagram corners for two features in one dimension: dense keeps the more important, sparse superposes', async () => {
    const cells = await phaseDiagram({ sparsities: [0, 0.95], relativeImportances: [0.5, 2], restarts: 3, batch: 512, steps: 1200, lr: 3e-3, seed: 2 });
    const at = (s: number, r: number) => cells.find((c) => c.sparsity === s && c.relativeImportance === r)!;
    expect(at(0, 0.5).phase).toBe('first only');
    expect(at(0, 2).phase).toBe('second only');
    expect(at(0.95, 0.5).phase).toBe('superposition');
    expect(at(0.95, 0.5).cosine).toBeLessThan(-0.95);
    expect(twoFeaturePhase([0.1, 0.2])).toBe('neither');
  }, 60_000);
});

describe('Fourier tools', () => {
  const p = 13;
  it('the basis is orthonormal', () => {
    const B = fourierBasis(p);
    for (let i = 0; i < p; i++) for (let j = 0; j < p; j++) close(B[i].reduce((s, x, t) => s + x * B[j][t], 0), i === j ? 1 : 0, 1e-12);
  });

  it('frequency shares and key frequencies of a planted embedding', () => {
    const q = 31;
    const M = new Float64Array(q * 3);
    for (let x = 0; x < q; x++) {
      M[x * 3] = Math.cos((2 * Math.PI * 3 * x) / q); // norm² q/2 in frequency 3
      M[x * 3 + 1] = Math.sqrt(3) * Math.sin((2 * Math.PI * 5 * x) / q); // norm² 3q/2 in frequency 5
      M[x * 3 + 2] = 7; // constant: left out
    }
    const shares = frequencyShares(M, q, 3);
    close(shares[2], 0.25, 1e-12);
    close(shares[4], 0.75, 1e-12);
    expect(keyFrequencies(shares)).toEqual([5, 3]);
  });

  it('a neuron cos(k(a + b)) is all frequency k; noise is spread out', () => {
    const acts = new Float64Array(p * p * 2);
    const rng = new Rng(5);
    for (let a = 0; a < p; a++) for (let b = 0; b < p; b++) {
      acts[(a * p + b) * 2] = Math.cos((2 * Math.PI * 4 * (a + b)) / p) + 0.3;
      acts[(a * p + b) * 2 + 1] = rng.normal();
    }
    const [planted, noise] = neuronFrequencies(acts, p, 2);
    expect(planted.frequency).toBe(4);
    close(planted.explained, 1, 1e-9);
    close(planted.variance, 0.5, 1e-9); // cos² averages 1/2 over the grid, as a + b covers Z_p evenly
    expect(noise.explained).toBeLessThan(0.5);
  });

  it('key-frequency component of logits, and restricted/excluded loss by hand', () => {
    const L = new Float64Array(p * p * p);
    const w = (k: number, r: number) => (2 * Math.PI * k * r) / p;
    for (let a = 0; a < p; a++) for (let b = 0; b < p; b++) for (let c = 0; c < p; c++) {
      const r = (a + b - c + p) % p;
      L[(a * p + b) * p + c] = 3 * Math.cos(w(2, r)) + 2 * Math.sin(w(6, r)) + 0.5 * a - b; // the last terms are constant in c
    }
    const part = keyFrequencyComponent(L, p, [2]);
    for (let a = 0; a < p; a++) for (let b = 0; b < p; b++) for (let c = 0; c < p; c++) {
      close(part[(a * p + b) * p + c], 3 * Math.cos(w(2, (a + b - c + p) % p)), 1e-9);
    }
    // Keeping both frequencies: the restricted logits are the c-dependent logits (the same loss);
    // excluding both leaves logits constant in c: loss log p exactly.
    const all = Array.from({ length: p * p }, (_, i) => i);
    const r = restrictedExcludedLoss(L, p, [2, 6], all.slice(0, 50), pairLossAccuracy);
    const full = pairLossAccuracy(L, all, p).loss;
    close(r.restrictedLoss, full, 1e-9);
    close(r.excludedLoss, Math.log(p), 1e-9);
  });
});

/** The one-layer transformer written position by position in plain JS, as the paper's code computes it. */
function plainLogits(w: Record<string, Float32Array>, s: typeof GROKKING_DEFAULTS, a: number, b: number): number[] {
  const d = s.dModel, H = s.nHeads, dh = s.dHead, p = s.p;
  const x = [a, b, p].map((t, pos) => Array.from({ length: d }, (_, j) => w.W_E[t * d + j] + w.W_pos[pos * d + j]));
  const proj = (v: number[], W: Float32Array, cols: number) => Array.from({ length: cols }, (_, c) => v.reduce((s2, vi, i) => s2 + vi * W[i * cols + c], 0));
  const q = proj(x[2], w.W_Q, H * dh);
  const k = x.map((v) => proj(v, w.W_K, H * dh));
  const v = x.map((t) => proj(t, w.W_V, H * dh));
  const z = new Array(H * dh).fill(0);
  for (let h = 0; h < H; h++) {
    const sc = k.map((kk) => kk.slice(h * dh, (h + 1) * dh).reduce((s2, ki, i) => s2 + ki * q[h * dh + i], 0) / Math.sqrt(dh));
    const m = Math.max(...sc);
    const e = sc.map((t) => Math.exp(t - m));
    const sum = e.reduce((s2, t) => s2 + t, 0);
    for (let i = 0; i < dh; i++) z[h * dh + i] = e.reduce((s2, ei, pos) => s2 + (ei / sum) * v[pos][h * dh + i], 0);
  }
  const resid = proj(z, w.W_O, d).map((t, j) => t + x[2][j]);
  const hidden = proj(resid, w.W_in, s.dMlp).map((t, j) => Math.max(0, t + w.b_in[j]));
  const out = proj(hidden, w.W_out, d).map((t, j) => t + resid[j] + w.b_out[j]);
  return proj(out, w.W_U, p);
}

describe('grokking', () => {
  const s = { ...GROKKING_DEFAULTS, p: 7, dModel: 8, nHeads: 2, dHead: 4, dMlp: 12, seed: 4 };
  it('the gathered forward equals a plain position-by-position transformer', async () => {
    const params = initGrokking(s);
    params.b_in = Tensor.f32(new Float32Array(s.dMlp).map((_, i) => 0.1 * Math.sin(i)), [s.dMlp]);
    const w = Object.fromEntries(Object.entries(params).map(([n, t]) => [n, t.f32.slice()]));
    const { logits } = await grokkingForward(params, s);
    let worst = 0;
    for (let a = 0; a < s.p; a++) for (let b = 0; b < s.p; b++) {
      const ref = plainLogits(w, s, a, b);
      ref.forEach((r, c) => { worst = Math.max(worst, Math.abs(r - logits[(a * s.p + b) * s.p + c])); });
    }
    expect(worst).toBeLessThan(1e-4);
  });

  it('the split covers every pair once, train share as asked', () => {
    const { train, test } = grokkingSplit(113, 0.3, 0);
    expect(train.length).toBe(Math.round(0.3 * 113 * 113));
    expect(new Set([...train, ...test]).size).toBe(113 * 113);
  });
});

describe('universality', () => {
  const groups = [symmetricGroup(4), symmetricGroup(5), cyclicProduct(6, 4), cyclicProduct(7)];

  it('the groups are groups, and their characters are orthonormal with Σ d² = |G|', () => {
    for (const G of groups) {
      const N = G.order;
      const e = G.inverse[0] === undefined ? -1 : G.mul[0][G.inverse[0]];
      for (let a = 0; a < N; a++) {
        expect(G.mul[a][G.inverse[a]]).toBe(e);
        for (let b = 0; b < N; b += 7) for (let c = 0; c < N; c += 5) expect(G.mul[G.mul[a][b]][c]).toBe(G.mul[a][G.mul[b][c]]);
      }
      // ⟨χ_i, χ_j⟩ = δ_ij for complex irreps; a real irrep made of a conjugate pair has ⟨χ, χ⟩ = 2.
      for (const r of G.irreps) for (const t of G.irreps) {
        const ip = r.character.reduce((s2, x, g) => s2 + x * t.character[g], 0) / N;
        const self = r.character[e] / r.dim; // 2 for a merged pair, 1 otherwise
        close(ip, r === t ? self : 0, 1e-9);
      }
      close(G.irreps.reduce((s2, r) => s2 + r.dim * r.character[e], 0), N, 1e-9);
    }
  });

  it('planted functions land in their irreps: permutation matrices in the standard rep, sign in sign, a 2-D character in its own', () => {
    const S5 = groups[1];
    const perms = permutations(5);
    const P = new Float64Array(120 * 25);
    perms.forEach((p, g) => p.forEach((img, i) => { P[g * 25 + img * 5 + i] = 1; }));
    close(irrepShares(S5, P, 25)['[4,1]'], 1, 1e-9); // permutation rep = trivial ⊕ standard; centring removes the trivial part
    const sign = S5.irreps.find((r) => r.name === '[1,1,1,1,1]')!.character;
    const mixed = new Float64Array(120 * 2);
    for (let g = 0; g < 120; g++) { mixed[g * 2] = sign[g]; mixed[g * 2 + 1] = 0; }
    close(irrepShares(S5, mixed, 2)['[1,1,1,1,1]'], 1, 1e-9);
    const Z = groups[2];
    const f = new Float64Array(24 * 2);
    for (let i = 0; i < 24; i++) {
      const [x, y] = [Math.floor(i / 4), i % 4];
      f[i * 2] = Math.cos(2 * Math.PI * (x / 6 + (3 * y) / 4)); // character (1, 3)
      f[i * 2 + 1] = 3 * Math.sin(2 * Math.PI * (2 * x / 6)); // character (2, 0)
    }
    const shares = irrepShares(Z, f, 2);
    // squared norms: cos over 24 elements 12, 9 sin² over 24 elements 108
    close(shares['(1,3)'] ?? shares['(5,1)'], 12 / 120, 1e-9);
    close(shares['(2,0)'] ?? shares['(4,0)'], 108 / 120, 1e-9);
    // Every function splits completely: shares sum to 1 (the trivial irrep holds the mean, removed).
    const rng = new Rng(8);
    const noise = new Float64Array(120 * 3).map(() => rng.normal());
    close(Object.values(irrepShares(S5, noise, 3)).reduce((a, b) => a + b, 0), 1, 1e-9);
  });

  it('on trained weights, the character-based shares equal an explicit Fourier projection (Z6 × Z4)', async () => {
    const r = await trainUniversality({ group: 'Z6xZ4', hidden: 16, trainFraction: 0.6, steps: 150, lr: 1e-2, weightDecay: 1, seed: 1 });
    expect(r.trainAccuracy).toBeGreaterThan(0.25); // well above chance (1/24): the weights are structured, not initial noise
    // Recompute the left embedding's shares by least squares on the real Fourier basis: cos and
    // sin of 2π(kx/6 + ly/4) for each pair {(k, l), (−k, −l)} are orthogonal over the group.
    const { E_left } = r.weights;
    const explicit: Record<string, number> = {};
    let total = 0;
    const cols = 16;
    const centred = Array.from({ length: cols }, (_, c) => {
      const col = Array.from({ length: 24 }, (_, g) => E_left[g * cols + c]);
      const mean = col.reduce((a, b) => a + b, 0) / 24;
      return col.map((v) => v - mean);
    });
    for (const col of centred) total += col.reduce((a, v) => a + v * v, 0);
    for (const irrep of cyclicProduct(6, 4).irreps) {
      const [k, l] = irrep.name.slice(1, -1).split(',').map(Number);
      let part = 0;
      for (const fn of [Math.cos, Math.sin]) {
        const basis = Array.from({ length: 24 }, (_, g) => fn(2 * Math.PI * (Math.floor(g / 4) * k / 6 + (g % 4) * l / 4)));
        const norm = basis.reduce((a, v) => a + v * v, 0);
        if (norm < 1e-9) continue; // sin of a real (±1) character vanishes
        for (const col of centred) part += col.reduce((a, v, g) => a + v * basis[g], 0) ** 2 / norm;
      }
      explicit[irrep.name] = part / total;
    }
    for (const [name, share] of Object.entries(r.shares.left)) close(share, explicit[name], 1e-6);
  }, 60_000);
});

describe('grokked checkpoint (fixtures/toys)', () => {
  it('generalises through a few key frequencies: sparse embedding, neurons per frequency, restricted loss far below excluded', async () => {
    const { params, settings } = readGrokkingCheckpoint('fixtures/toys/grokking-p113.safetensors');
    expect(settings.p).toBe(113);
    expect(settings.trainFraction).toBe(0.3);
    const a = await analyseGrokking(params, settings);
    expect(a.trainAccuracy).toBe(1);
    expect(a.testAccuracy).toBeGreaterThanOrEqual(0.99);
    // Sparse in frequency: at most 8 of 56 frequencies are key, and they hold over half the norm.
    expect(a.keyFrequencies.length).toBeGreaterThanOrEqual(2);
    expect(a.keyFrequencies.length).toBeLessThanOrEqual(8);
    expect(a.keyShare).toBeGreaterThan(0.5);
    // Every key frequency has its own cluster of neurons, and most neurons are one frequency's.
    for (const n of Object.values(a.neuronsPerKeyFrequency)) expect(n).toBeGreaterThan(20);
    expect(a.neuronsExplainedByKeys).toBeGreaterThan(0.5);
    expect(a.restrictedLoss).toBeLessThan(0.1);
    expect(a.excludedLoss).toBeGreaterThan(10 * a.restrictedLoss);
    expect(a.excludedLoss).toBeGreaterThan(Math.log(113)); // worse than uniform on the training pairs
    // The run's own curve: memorised long before it generalised.
    const run = JSON.parse(fs.readFileSync('fixtures/toys/grokking-p113.json', 'utf8'));
    expect(run.testSolvedAt).toBeGreaterThanOrEqual(4 * run.trainSolvedAt);
  }, 60_000);
});
