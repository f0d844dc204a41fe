/**
 * The ReLU output model of *Toy Models of Superposition* (Elhage et al., 2022): n sparse features
 * x ∈ [0, 1]^n are squeezed into m < n dimensions, h = W x, and read back as x' = ReLU(Wᵀh + b),
 * trained to minimise Σ_i I_i (x_i − x'_i)². Each feature is zero with probability S (the
 * sparsity) and uniform on [0, 1] otherwise. Many independent instances (different seeds,
 * sparsities or importances) train at once as one batched graph, as in the paper.
 */
import { Graph, Value } from '../../engine/graph/ir.js';
import { Tensor } from '../../engine/tensor.js';
import { LanternError } from '../../errors.js';
import { Rng } from '../../rng.js';
import { ToyTrainer } from './fit.js';

/** One instance's data distribution. */
export interface SuperpositionInstance {
  /** Probability that a feature is zero, in [0, 1). */
  sparsity: number;
  /** Importance I_i of each of the n features in the loss. */
  importance: number[];
}

/** Settings of a superposition run. */
export interface SuperpositionSettings {
  /** Features n. */
  features: number;
  /** Hidden dimensions m (< n for superposition to be possible). */
  dims: number;
  instances: SuperpositionInstance[];
  batch: number;
  steps: number;
  lr: number;
  seed: number;
}

/** What one trained instance learned. */
export interface SuperpositionAnalysis {
  sparsity: number;
  importance: number[];
  /** Mean loss per example on fresh data after training. */
  loss: number;
  /** W as features × dims: row i is feature i's direction in the hidden space. */
  W: number[][];
  b: number[];
  /** WᵀW (n × n): the feature directions' inner products. */
  gram: number[][];
  /** ‖W_i‖ per feature: near 1 represented, near 0 not. */
  norms: number[];
  /** Σ_{j≠i} (Ŵ_i·W_j)² per feature: how much other features share its direction. */
  superposition: number[];
  /** Feature dimensionality D_i = ‖W_i‖² / Σ_j (Ŵ_i·W_j)² (1: own dimension, 1/2: antipodal pair, 2/5: pentagon). */
  featureDimensionality: number[];
  /** m / ‖W‖_F²: hidden dimensions per represented feature. */
  dimsPerFeature: number;
  /** For each feature, the cosine with its most opposed other feature. */
  minCosine: number[];
}

/** The paper's importances I_i = decay^i. */
export function decayingImportance(n: number, decay: number): number[] {
  return Array.from({ length: n }, (_, i) => decay ** i);
}

function check(s: SuperpositionSettings): void {
  const { features: n, dims: m } = s;
  if (!Number.isInteger(n) || n < 1) throw new LanternError(`features must be a positive integer, got ${n}`);
  if (!Number.isInteger(m) || m < 1) throw new LanternError(`dims must be a positive integer, got ${m}`);
  if (s.instances.length < 1) throw new LanternError('at least one instance is needed');
  for (const inst of s.instances) {
    if (!(inst.sparsity >= 0 && inst.sparsity < 1)) throw new LanternError(`sparsity must be in [0, 1), got ${inst.sparsity}`);
    if (inst.importance.length !== n) throw new LanternError(`importance has ${inst.importance.length} values for ${n} features`);
    if (inst.importance.some((x) => !(x >= 0))) throw new LanternError('importances must be ≥ 0');
  }
  for (const k of ['batch', 'steps'] as const) if (!Number.isInteger(s[k]) || s[k] < 1) throw new LanternError(`${k} must be a positive integer, got ${s[k]}`);
}

/** A batch [instances, batch, n] of sparse features. */
export function sampleFeatures(rng: Rng, instances: SuperpositionInstance[], batch: number, n: number): Float32Array {
  const x = new Float32Array(instances.length * batch * n);
  instances.forEach((inst, k) => {
    for (let i = k * batch * n; i < (k + 1) * batch * n; i++) if (rng.next() >= inst.sparsity) x[i] = rng.next();
  });
  return x;
}

/** The toy's reconstruction, loss per instance and total; W is [k, n, m], b [k, 1, n]. */
function buildLoss(g: Graph, W: Value, b: Value, k: number, n: number): { loss: Value; perInstance: Value } {
  const x = g.input('x', 'float32', [k, 'batch', n]);
  const importance = g.input('importance', 'float32', [k, 1, n]);
  const h = g.matmul(x, W); // [k, batch, m]
  const pre = g.add(g.matmul(h, g.transpose(W, [0, 2, 1])), b);
  const zero = g.scalar(0);
  const out = g.where(g.greater(pre, zero), pre, zero);
  const err = g.sub(x, out);
  const weighted = g.mul(g.mul(err, err), importance);
  const perInstance = g.reduceMean(g.reduceSum(weighted, [2], false), [1], false); // [k]
  return { loss: g.reduceSum(perInstance, [0], false), perInstance };
}

/** Loss per example of one instance's W [n][m], b on `x` [batch, n], computed in plain JS (for checks). */
export function superpositionLoss(W: number[][], b: number[], importance: number[], x: Float32Array, batch: number): number {
  const n = W.length;
  const m = W[0].length;
  let total = 0;
  for (let e = 0; e < batch; e++) {
    const h = new Array(m).fill(0);
    for (let i = 0; i < n; i++) for (let d = 0; d < m; d++) h[d] += W[i][d] * x[e * n + i];
    for (let i = 0; i < n; i++) {
      let z = b[i];
      for (let d = 0; d < m; d++) z += W[i][d] * h[d];
      const r = x[e * n + i] - Math.max(0, z);
      total += importance[i] * r * r;
    }
  }
  return total / batch;
}

/** Geometry of W [n][m]: WᵀW, norms, superposition, dimensionalities, most opposed partner. */
export function analyseFeatures(W: number[][]): Pick<SuperpositionAnalysis, 'gram' | 'norms' | 'superposition' | 'featureDimensionality' | 'dimsPerFeature' | 'minCosine'> {
  const n = W.length;
  const m = W[0].length;
  const dot = (a: number[], c: number[]) => a.reduce((s, x, d) => s + x * c[d], 0);
  const gram = W.map((wi) => W.map((wj) => dot(wi, wj)));
  const norms = W.map((_, i) => Math.sqrt(gram[i][i]));
  const frob = gram.reduce((s, row, i) => s + row[i], 0);
  const superposition: number[] = [];
  const featureDimensionality: number[] = [];
  const minCosine: number[] = [];
  for (let i = 0; i < n; i++) {
    let shared = 0;
    let all = 0;
    let minCos = Infinity;
    for (let j = 0; j < n; j++) {
      const proj = norms[i] > 0 ? gram[i][j] / norms[i] : 0;
      all += proj * proj;
      if (j !== i) {
        shared += proj * proj;
        if (norms[i] > 0 && norms[j] > 0) minCos = Math.min(minCos, gram[i][j] / (norms[i] * norms[j]));
      }
    }
    superposition.push(shared);
    featureDimensionality.push(all > 0 ? gram[i][i] / all : 0);
    minCosine.push(minCos === Infinity ? 0 : minCos);
  }
  return { gram, norms, superposition, featureDimensionality, dimsPerFeature: frob > 0 ? m / frob : Infinity, minCosine };
}

/** Trains every instance of `s` and analyses each; `onProgress` is called every few hundred steps. */
export async function trainSuperposition(
  s: SuperpositionSettings, onProgress?: (step: number, loss: number) => void,
): Promise<SuperpositionAnalysis[]> {
  check(s);
  const { features: n, dims: m, instances } = s;
  const k = instances.length;
  const rng = new Rng(s.seed);
  // Xavier-normal W, zero b, as the paper's code.
  const std = Math.sqrt(2 / (n + m));
  const W = new Float32Array(k * n * m).map(() => std * rng.normal());
  const trainer = await ToyTrainer.create(
    JSON.stringify({ superposition: { k, n, m } }),
    (g, p) => {
      const { loss, perInstance } = buildLoss(g, p.W, p.b, k, n);
      return { loss, outputs: { instance_loss: perInstance } };
    },
    { W: Tensor.f32(W, [k, n, m]), b: Tensor.f32(new Float32Array(k * n), [k, 1, n]) },
    { lr: s.lr, beta1: 0.9, beta2: 0.999, eps: 1e-8, weightDecay: 0, clip: Infinity },
  );
  try {
    const importance = Tensor.f32(instances.flatMap((i) => i.importance), [k, 1, n]);
    for (let step = 0; step < s.steps; step++) {
      const x = Tensor.f32(sampleFeatures(rng, instances, s.batch, n), [k, s.batch, n]);
      const { loss } = await trainer.train({ x, importance });
      if (onProgress && ((step + 1) % 250 === 0 || step + 1 === s.steps)) onProgress(step + 1, loss / k);
    }
    const evalBatch = 4096;
    const x = Tensor.f32(sampleFeatures(rng, instances, evalBatch, n), [k, evalBatch, n]);
    const losses = (await trainer.evaluate({ x, importance }, ['instance_loss'])).instance_loss.toArray();
    const weights = await trainer.weights();
    const w = weights.W.f32;
    const bias = weights.b.f32;
    return instances.map((inst, i) => {
      const Wi = Array.from({ length: n }, (_, f) => Array.from(w.subarray((i * n + f) * m, (i * n + f + 1) * m)));
      return { sparsity: inst.sparsity, importance: inst.importance, loss: losses[i], W: Wi, b: Array.from(bias.subarray(i * n, (i + 1) * n)), ...analyseFeatures(Wi) };
    });
  } finally {
    await trainer.close();
  }
}

/** Settings of one configuration trained from several seeds (instances), of which the lowest-loss is kept. */
export interface SuperpositionRunSettings {
  features: number;
  dims: number;
  sparsity: number;
  /** I_i = importanceDecay^i (1: all features equally important). */
  importanceDecay: number;
  /** Independent initialisations; the one with the lowest loss is reported. */
  restarts: number;
  batch: number;
  steps: number;
  lr: number;
  seed: number;
}

/** One configuration, best of `restarts` initialisations, plus every restart's loss. */
export async function superpositionRun(
  s: SuperpositionRunSettings, onProgress?: (step: number, loss: number) => void,
): Promise<{ best: SuperpositionAnalysis; restartLosses: number[] }> {
  if (!Number.isInteger(s.restarts) || s.restarts < 1) throw new LanternError(`restarts must be a positive integer, got ${s.restarts}`);
  const inst = { sparsity: s.sparsity, importance: decayingImportance(s.features, s.importanceDecay) };
  const all = await trainSuperposition({ ...s, instances: Array.from({ length: s.restarts }, () => inst) }, onProgress);
  const best = all.reduce((a, c) => (c.loss < a.loss ? c : a));
  return { best, restartLosses: all.map((a) => a.loss) };
}

/** How two features in one dimension end up (the paper's phase diagram for n = 2, m = 1). */
export type TwoFeaturePhase = 'first only' | 'second only' | 'superposition' | 'neither';

/** One cell of the phase diagram. */
export interface PhaseCell {
  sparsity: number;
  /** Importance of the second feature relative to the first. */
  relativeImportance: number;
  phase: TwoFeaturePhase;
  norms: number[];
  cosine: number;
}

/** A feature counts as represented when ‖W_i‖ exceeds this. */
export const REPRESENTED_NORM = 0.5;

/** The phase of a trained 2-feature, 1-dimension instance. */
export function twoFeaturePhase(norms: number[]): TwoFeaturePhase {
  const [a, b] = norms.map((x) => x > REPRESENTED_NORM);
  return a && b ? 'superposition' : a ? 'first only' : b ? 'second only' : 'neither';
}

/**
 * The phase diagram over sparsity × relative importance for n = 2 features in m = 1 dimension:
 * every cell is an instance of one batched run (`restarts` seeds each, lowest loss kept).
 */
export async function phaseDiagram(
  opts: { sparsities: number[]; relativeImportances: number[]; restarts: number; batch: number; steps: number; lr: number; seed: number },
  onProgress?: (step: number, loss: number) => void,
): Promise<PhaseCell[]> {
  const cells = opts.sparsities.flatMap((sparsity) => opts.relativeImportances.map((r) => ({ sparsity, importance: [1, r] })));
  const instances = cells.flatMap((c) => Array.from({ length: opts.restarts }, () => c));
  const all = await trainSuperposition({ features: 2, dims: 1, instances, batch: opts.batch, steps: opts.steps, lr: opts.lr, seed: opts.seed }, onProgress);
  return cells.map((c, i) => {
    const runs = all.slice(i * opts.restarts, (i + 1) * opts.restarts);
    const best = runs.reduce((a, r) => (r.loss < a.loss ? r : a));
    const cosine = best.norms[0] > 0 && best.norms[1] > 0 ? best.gram[0][1] / (best.norms[0] * best.norms[1]) : 0;
    return { sparsity: c.sparsity, relativeImportance: c.importance[1], phase: twoFeaturePhase(best.norms), norms: best.norms, cosine };
  });
}
