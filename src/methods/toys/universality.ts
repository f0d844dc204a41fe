/**
 * Universality on group composition, after *A Toy Model of Universality* (Chughtai et al., 2023):
 * a one-hidden-layer network learns a ∘ b for a finite group, and the representation theory of
 * the group says what it learned. The analysis is character-based: convolving a function on G
 * with (d_ρ/|G|) χ_ρ projects it onto the span of ρ's matrix entries (the isotypic component),
 * so the share of an embedding's or unembedding's variance in each irreducible representation
 * needs only the character table.
 */
import { Graph, Value } from '../../engine/graph/ir.js';
import { Tensor } from '../../engine/tensor.js';
import { LanternError } from '../../errors.js';
import { Rng } from '../../rng.js';
import { ToyTrainer } from './fit.js';

/** A real irreducible representation, through its (real) character. */
export interface Irrep {
  name: string;
  /** Dimension of the (complex) irreducible(s); for a conjugate pair of 1-D complex characters merged into one real irrep, 1 with the character χ + χ̄. */
  dim: number;
  /** χ(g) for every element g (index order of the group). */
  character: number[];
}

/** A finite group given by its multiplication table, with its real irreducible representations. */
export interface FiniteGroup {
  name: string;
  order: number;
  /** mul[g][h] = index of g ∘ h. */
  mul: number[][];
  inverse: number[];
  /** Element labels, for reports. */
  labels: string[];
  irreps: Irrep[];
}

function withInverses(name: string, labels: string[], mul: number[][], irreps: Irrep[]): FiniteGroup {
  const identity = mul.findIndex((row, g) => row.every((x, h) => x === h) && g >= 0);
  const inverse = mul.map((row) => row.indexOf(identity));
  return { name, order: labels.length, mul, inverse, labels, irreps };
}

/**
 * Z_n × Z_m (m = 1 for Z_n). Complex characters e^{2πi(kx/n + ly/m)} pair with their conjugates
 * into real 2-D irreps (character 2 cos); self-conjugate ones stay 1-D (character ±1).
 */
export function cyclicProduct(n: number, m = 1): FiniteGroup {
  if (!Number.isInteger(n) || !Number.isInteger(m) || n < 2 || m < 1) throw new LanternError(`Z_${n} × Z_${m}: orders must be integers, n ≥ 2, m ≥ 1`);
  const N = n * m;
  const el = (i: number) => [Math.floor(i / m), i % m];
  const labels = Array.from({ length: N }, (_, i) => (m === 1 ? `${i}` : `(${el(i).join(',')})`));
  const mul = Array.from({ length: N }, (_, i) => Array.from({ length: N }, (_, j) => {
    const [a, b] = el(i);
    const [c, d] = el(j);
    return ((a + c) % n) * m + ((b + d) % m);
  }));
  const irreps: Irrep[] = [];
  const seen = new Set<string>();
  for (let k = 0; k < n; k++) for (let l = 0; l < m; l++) {
    const key = `${k},${l}`;
    if (seen.has(key)) continue;
    const conj = `${(n - k) % n},${(m - l) % m}`;
    seen.add(key).add(conj);
    const phase = (i: number) => 2 * Math.PI * ((el(i)[0] * k) / n + (el(i)[1] * l) / m);
    const real = conj === key;
    irreps.push({
      name: m === 1 ? `k=${k}` : `(${k},${l})`,
      dim: 1,
      character: Array.from({ length: N }, (_, i) => (real ? 1 : 2) * Math.cos(phase(i))),
    });
  }
  return withInverses(m === 1 ? `Z_${n}` : `Z_${n}×Z_${m}`, labels, mul, irreps);
}

/** Cycle type of a permutation, as sorted cycle lengths joined ("2,1,1,1"). */
function cycleType(perm: number[]): string {
  const seen = new Array(perm.length).fill(false);
  const lengths: number[] = [];
  for (let i = 0; i < perm.length; i++) {
    if (seen[i]) continue;
    let len = 0;
    for (let j = i; !seen[j]; j = perm[j]) { seen[j] = true; len++; }
    lengths.push(len);
  }
  return lengths.sort((a, b) => b - a).join(',');
}

/**
 * Character tables of S4 and S5 by cycle type (from the standard tables; their orthogonality
 * relations are checked in test/toys.test.ts). Partitions name the irreps.
 */
const SYMMETRIC_CHARACTERS: Record<number, { classes: string[]; irreps: Record<string, number[]> }> = {
  4: {
    classes: ['1,1,1,1', '2,1,1', '2,2', '3,1', '4'],
    irreps: {
      '[4]': [1, 1, 1, 1, 1], '[1,1,1,1]': [1, -1, 1, 1, -1], '[2,2]': [2, 0, 2, -1, 0],
      '[3,1]': [3, 1, -1, 0, -1], '[2,1,1]': [3, -1, -1, 0, 1],
    },
  },
  5: {
    classes: ['1,1,1,1,1', '2,1,1,1', '2,2,1', '3,1,1', '3,2', '4,1', '5'],
    irreps: {
      '[5]': [1, 1, 1, 1, 1, 1, 1], '[1,1,1,1,1]': [1, -1, 1, 1, -1, -1, 1],
      '[4,1]': [4, 2, 0, 1, -1, 0, -1], '[2,1,1,1]': [4, -2, 0, 1, 1, 0, -1],
      '[3,2]': [5, 1, 1, -1, 1, -1, 0], '[2,2,1]': [5, -1, 1, -1, -1, 1, 0],
      '[3,1,1]': [6, 0, -2, 0, 0, 0, 1],
    },
  },
};

/** All permutations of 0 … n − 1 in lexicographic order. */
export function permutations(n: number): number[][] {
  if (n === 0) return [[]];
  return permutations(n - 1).flatMap((p) => Array.from({ length: n }, (_, i) => [...p.slice(0, i), n - 1, ...p.slice(i)]))
    .sort((a, b) => { for (let i = 0; i < n; i++) if (a[i] !== b[i]) return a[i] - b[i]; return 0; });
}

/** The symmetric group S4 or S5; (g ∘ h)(i) = g(h(i)). */
export function symmetricGroup(n: number): FiniteGroup {
  const table = SYMMETRIC_CHARACTERS[n];
  if (!table) throw new LanternError(`symmetric group S${n} is not available; choose S4 or S5`);
  const perms = permutations(n);
  const index = new Map(perms.map((p, i) => [p.join(''), i]));
  const mul = perms.map((g) => perms.map((h) => index.get(h.map((x) => g[x]).join(''))!));
  const cls = perms.map((p) => table.classes.indexOf(cycleType(p)));
  const irreps = Object.entries(table.irreps).map(([name, chi]) => ({ name, dim: chi[0], character: cls.map((c) => chi[c]) }));
  return withInverses(`S${n}`, perms.map((p) => p.join('')), mul, irreps);
}

/** Groups by name: S4, S5, Z<n>, Z<n>xZ<m>. */
export function groupByName(name: string): FiniteGroup {
  const s = /^S([0-9]+)$/.exec(name);
  if (s) return symmetricGroup(Number(s[1]));
  const z = /^Z([0-9]+)(?:xZ([0-9]+))?$/.exec(name);
  if (z) return cyclicProduct(Number(z[1]), z[2] ? Number(z[2]) : 1);
  throw new LanternError(`unknown group '${name}'; use S4, S5, Z<n> or Z<n>xZ<m> (e.g. Z6xZ4)`);
}

/**
 * Share of the variance of each column of `M` ([|G|, cols], row g = a function's value at g)
 * in each irrep's isotypic component: P_ρ f(x) = (d_ρ/|G|) Σ_h χ_ρ(h) f(h⁻¹ ∘ x). Shares over all
 * irreps but the trivial one sum to 1.
 */
export function irrepShares(G: FiniteGroup, M: ArrayLike<number>, cols: number): Record<string, number> {
  const N = G.order;
  const out: Record<string, number> = {};
  let total = 0;
  const col = new Float64Array(N);
  const parts = G.irreps.map(() => 0);
  for (let c = 0; c < cols; c++) {
    let mean = 0;
    for (let g = 0; g < N; g++) { col[g] = M[g * cols + c]; mean += col[g]; }
    mean /= N;
    for (let g = 0; g < N; g++) { col[g] -= mean; total += col[g] ** 2; }
    G.irreps.forEach((r, i) => {
      for (let x = 0; x < N; x++) {
        let s = 0;
        for (let h = 0; h < N; h++) s += r.character[h] * col[G.mul[G.inverse[h]][x]];
        parts[i] += ((r.dim / N) * s) ** 2;
      }
    });
  }
  G.irreps.forEach((r, i) => { out[r.name] = total > 0 ? parts[i] / total : 0; });
  return out;
}

/** Settings of a universality run. */
export interface UniversalitySettings {
  group: string;
  /** Hidden ReLU units. */
  hidden: number;
  trainFraction: number;
  steps: number;
  lr: number;
  weightDecay: number;
  seed: number;
}

/** What a run learned. */
export interface UniversalityResult {
  method: 'toy-universality';
  settings: UniversalitySettings;
  trainAccuracy: number;
  testAccuracy: number;
  /** Variance shares per irrep of the left and right embeddings and of the unembedding (as a function of the output). */
  shares: { left: Record<string, number>; right: Record<string, number>; unembed: Record<string, number> };
  /** Irreps holding at least LEARNED_SHARE of the unembedding's variance, largest first, with their dimensions. */
  learned: { name: string; dim: number; share: number }[];
  /** The trained parameters: E_left, E_right [|G|, hidden], bias [hidden], W_U [hidden, |G|]. */
  weights: Record<string, Float32Array>;
}

/** An irrep counts as learned when it holds at least this share of the unembedding's variance. */
export const LEARNED_SHARE = 0.1;

/** logits = ReLU(E_left[a] + E_right[b] + bias) W_U: concatenated embeddings through one linear layer, folded into the embeddings. */
function groupLogits(g: Graph, w: Record<string, Value>, a: Value, b: Value): Value {
  const pre = g.add(g.add(g.gather(w.E_left, a), g.gather(w.E_right, b)), w.bias);
  const zero = g.scalar(0);
  return g.matmul(g.where(g.greater(pre, zero), pre, zero), w.W_U);
}

/** Trains the network on a share of G × G and reports which irreps its weights live in. */
export async function trainUniversality(s: UniversalitySettings, onProgress?: (step: number, loss: number) => void): Promise<UniversalityResult> {
  const G = groupByName(s.group);
  const N = G.order;
  if (!Number.isInteger(s.hidden) || s.hidden < 1) throw new LanternError(`hidden must be a positive integer, got ${s.hidden}`);
  if (!(s.trainFraction > 0 && s.trainFraction < 1)) throw new LanternError(`train fraction must be in (0, 1), got ${s.trainFraction}`);
  const rng = new Rng(s.seed);
  const pairs = Array.from({ length: N * N }, (_, i) => i);
  for (let i = pairs.length - 1; i > 0; i--) { const j = rng.int(i + 1); [pairs[i], pairs[j]] = [pairs[j], pairs[i]]; }
  const cut = Math.round(s.trainFraction * N * N);
  const feeds = (ps: number[]) => ({
    a: Tensor.i64(ps.map((i) => Math.floor(i / N)), [ps.length]),
    b: Tensor.i64(ps.map((i) => i % N), [ps.length]),
    c: Tensor.i64(ps.map((i) => G.mul[Math.floor(i / N)][i % N]), [ps.length]),
  });
  const normal = (n: number, std: number) => new Float32Array(n).map(() => std * rng.normal());
  const trainer = await ToyTrainer.create(
    JSON.stringify({ universality: N, hidden: s.hidden }),
    (g, w) => {
      const logits = groupLogits(g, w, g.input('a', 'int64', ['n']), g.input('b', 'int64', ['n']));
      return { loss: g.softmaxCrossEntropy(logits, g.input('c', 'int64', ['n'])), outputs: { logits } };
    },
    {
      E_left: Tensor.f32(normal(N * s.hidden, 1 / Math.sqrt(s.hidden)), [N, s.hidden]),
      E_right: Tensor.f32(normal(N * s.hidden, 1 / Math.sqrt(s.hidden)), [N, s.hidden]),
      bias: Tensor.f32(new Float32Array(s.hidden), [s.hidden]),
      W_U: Tensor.f32(normal(s.hidden * N, 1 / Math.sqrt(s.hidden)), [s.hidden, N]),
    },
    { lr: s.lr, beta1: 0.9, beta2: 0.98, eps: 1e-8, weightDecay: s.weightDecay, clip: Infinity, warmupSteps: 10 },
  );
  try {
    const train = feeds(pairs.slice(0, cut));
    for (let step = 0; step < s.steps; step++) {
      const { loss } = await trainer.train(train);
      if (onProgress && ((step + 1) % 100 === 0 || step + 1 === s.steps)) onProgress(step + 1, loss);
    }
    const accuracy = async (ps: number[]) => {
      if (ps.length === 0) return 1;
      const f = feeds(ps);
      const logits = (await trainer.evaluate(f, ['logits'])).logits.f32;
      let right = 0;
      ps.forEach((_, r) => {
        const row = logits.subarray(r * N, (r + 1) * N);
        let arg = 0;
        for (let c = 1; c < N; c++) if (row[c] > row[arg]) arg = c;
        if (arg === Number(f.c.data[r])) right++;
      });
      return right / ps.length;
    };
    const trainAccuracy = await accuracy(pairs.slice(0, cut));
    const testAccuracy = await accuracy(pairs.slice(cut));
    const w = await trainer.weights();
    const unembedByOutput = new Float32Array(N * s.hidden); // W_U transposed: row c = output c's weights
    for (let h = 0; h < s.hidden; h++) for (let c = 0; c < N; c++) unembedByOutput[c * s.hidden + h] = w.W_U.f32[h * N + c];
    const shares = {
      left: irrepShares(G, w.E_left.f32, s.hidden),
      right: irrepShares(G, w.E_right.f32, s.hidden),
      unembed: irrepShares(G, unembedByOutput, s.hidden),
    };
    const learned = G.irreps.map((r) => ({ name: r.name, dim: r.dim, share: shares.unembed[r.name] }))
      .filter((r) => r.share >= LEARNED_SHARE).sort((x, y) => y.share - x.share);
    return { method: 'toy-universality', settings: s, trainAccuracy, testAccuracy, shares, learned, weights: Object.fromEntries(Object.entries(w).map(([n, t]) => [n, t.f32])) };
  } finally {
    await trainer.close();
  }
}
