/**
 * Distributed alignment search (DAS; Geiger, Wu et al., 2023) and Boundless DAS (Wu et al., 2023,
 * "Interpretability at Scale"): learn an orthonormal frame at one location (hook × position ×
 * head) such that interchanging the base's coordinates in it with a source's makes the network
 * output what the high-level model outputs when the variable takes the source's value. Boundless
 * DAS also learns how many rotated dimensions to interchange, through a soft boundary whose
 * temperature anneals.
 *
 * Training never changes the model. The base and source activations at the location do not depend
 * on the rotation, so they are read once; each step then runs the rotation graph (float64, tiny),
 * one forward and backward of the base batch through the model's hooked forward with the
 * interchanged rows added at the hook, and the rotation graph's backward with the hook's gradient.
 */
import { LanternError } from '../../errors.js';
import { Tensor } from '../../engine/tensor.js';
import type { HookedTransformer, ObjectiveTerm } from '../../models/hooked.js';
import { Rng } from '../../rng.js';
import { AlignmentTask, CounterfactualExample, counterfactualData, interchangeAccuracy } from './iia.js';
import type { Subspace } from './interchange.js';
import { householderVectors, orthogonalityError, principalFrame, rotate, RotationParams } from './rotation.js';

/** Where DAS looks: a hook, one position (negative: from the end) and, for per-head hooks, one head. */
export interface DasLocation {
  hook: string;
  position: number;
  head?: number;
}

/** Options of {@link das}. */
export interface DasOptions extends DasLocation {
  task: AlignmentTask;
  /** The high-level variable to find. */
  variable: string;
  /** Training and held-out examples (one source each: the variable's). */
  train: CounterfactualExample[];
  test: CounterfactualExample[];
  /** Dimensions interchanged (DAS), or the most Boundless DAS may use (default 1; Boundless: min(dim, 64)). */
  k?: number;
  /** Learn the boundary instead of fixing k (Boundless DAS). */
  boundless?: boolean;
  /** Passes over the training examples (default 20). */
  epochs?: number;
  batchSize?: number;
  /** Adam learning rate (default 0.02; a random start needs ~0.3). */
  lr?: number;
  /** Boundless: temperature from `start` to `end`, geometrically (default 1 → 0.01). */
  temperature?: { start: number; end: number };
  /** Boundless: loss per interchanged dimension (default 0.02), so the boundary shrinks to what the variable needs. */
  boundaryPenalty?: number;
  /**
   * The starting frame: 'random' (Householder vectors drawn from a normal, as in the DAS paper) or
   * 'pca' (the top-k principal directions of source − base activations on the training pairs:
   * where interchanges move the activation most, so training starts near the answer). Default 'pca'.
   */
  init?: 'random' | 'pca';
  /** Seed of the training order and the random frame. */
  seed?: number;
  /** Called after each training step with its loss. */
  onProgress?: (step: number, steps: number, loss: number) => void;
}

/** A learned alignment: the subspace, its held-out IIA, and how training went. */
export interface DasResult {
  method: 'das' | 'boundless-das';
  variable: string;
  location: DasLocation;
  /** Held-out IIA with the learned subspace (hard boundary for Boundless DAS). */
  iia: number;
  trainIia: number;
  /** Dimensions interchanged (Boundless: where the learned boundary fell). */
  k: number;
  /** The learned subspace: k orthonormal rows of the hook's last axis. */
  subspace: Subspace;
  /** max |QᵀQ − I| of the learned frame (float32). */
  orthogonality: number;
  losses: number[];
  settings: { k: number; init: 'random' | 'pca'; boundless: boolean; epochs: number; batchSize: number; lr: number; temperature?: { start: number; end: number }; boundaryPenalty?: number; train: number; test: number };
  seed: number;
}

/** Rows of the hook at each example's position (and head): [n, dim]. */
async function rowsAt(model: HookedTransformer, prompts: number[][], loc: DasLocation, dim: number, batchSize: number): Promise<Float32Array> {
  const out = new Float32Array(prompts.length * dim);
  for (let c0 = 0; c0 < prompts.length; c0 += batchSize) {
    const chunk = prompts.slice(c0, c0 + batchSize);
    const { cache } = await model.runWithHooks(chunk, { cache: [loc.hook], logitPositions: [0] });
    const act = cache.get(loc.hook);
    const seq = act.shape[1];
    const rowLen = act.size / (act.shape[0] * seq);
    chunk.forEach((p, b) => {
      const pos = resolve(loc.position, p.length);
      const o = (b * seq + pos) * rowLen + (loc.head ?? 0) * dim;
      out.set(act.f32.subarray(o, o + dim), (c0 + b) * dim);
    });
  }
  return out;
}

function resolve(p: number, length: number): number {
  const at = p < 0 ? length + p : p;
  if (!Number.isInteger(at) || at < 0 || at >= length) throw new LanternError(`position ${p} outside a prompt of ${length} tokens`);
  return at;
}

/** Checks a location against the model; returns the hook's geometry. */
export function checkLocation(model: HookedTransformer, loc: DasLocation): { heads: number; dim: number } {
  model.checkHook(loc.hook);
  if (/hook_(pattern|attn_scores)$/.test(loc.hook)) throw new LanternError(`DAS at ${loc.hook}: attention patterns have no feature axis; use a residual hook or hook_z/q/k/v/result`);
  const shape = model.hookShapes.get(loc.hook)!;
  const heads = shape.length === 4 ? Number(shape[2]) : 0;
  const dim = Number(shape[shape.length - 1]);
  if (heads && loc.head === undefined) throw new LanternError(`DAS at ${loc.hook}: a per-head hook needs a head (0 .. ${heads - 1})`);
  if (!heads && loc.head !== undefined) throw new LanternError(`DAS at ${loc.hook}: 'head' applies only to per-head hooks`);
  if (heads && (!Number.isInteger(loc.head) || loc.head! < 0 || loc.head! >= heads)) throw new LanternError(`DAS at ${loc.hook}: head ${loc.head} outside [0, ${heads})`);
  if (!Number.isInteger(loc.position)) throw new LanternError(`DAS: position ${loc.position} is not an integer`);
  return { heads, dim };
}

/** Learns a DAS (or Boundless DAS) subspace for `variable` at one location and scores it on held-out pairs. */
export async function das(model: HookedTransformer, opts: DasOptions): Promise<DasResult> {
  const loc: DasLocation = { hook: opts.hook, position: opts.position, head: opts.head };
  const { dim } = checkLocation(model, loc);
  opts.task.causalModel.checkVariable(opts.variable);
  const boundless = Boolean(opts.boundless);
  const k = opts.k ?? (boundless ? Math.min(dim, 64) : 1);
  if (!Number.isInteger(k) || k < 1 || k > dim) throw new LanternError(`k must be an integer in [1, ${dim}] (the hook's last axis), got ${k}`);
  const epochs = opts.epochs ?? 20;
  const batchSize = opts.batchSize ?? 32;
  const lr = opts.lr ?? 0.02;
  const seed = opts.seed ?? 0;
  const temperature = boundless ? opts.temperature ?? { start: 1, end: 0.01 } : undefined;
  const boundaryPenalty = boundless ? opts.boundaryPenalty ?? 0.02 : undefined;
  for (const [name, v] of [['epochs', epochs], ['batchSize', batchSize]] as const) if (!Number.isInteger(v) || v < 1) throw new LanternError(`${name} must be a positive integer, got ${v}`);
  if (!(lr > 0)) throw new LanternError(`lr must be positive, got ${lr}`);
  if (temperature && !(temperature.start > 0 && temperature.end > 0)) throw new LanternError('temperatures must be positive');

  const variables = [opts.variable];
  const train = counterfactualData(opts.task, opts.train, variables);
  if (opts.test.length === 0) throw new LanternError('give held-out examples to score the learned subspace on');
  const bases = train.pairs.map((p) => p.base);
  const x = await rowsAt(model, bases, loc, dim, 64);
  const s = await rowsAt(model, train.pairs.map((p) => p.sources[0]), loc, dim, 64);

  const rng = new Rng(seed);
  const params: RotationParams = {
    dim, k, boundary: boundless ? k / 2 : 1e6, temperature: temperature?.start ?? 1,
    v: Float64Array.from({ length: k * dim }, () => rng.normal()),
  };
  const init = opts.init ?? 'pca';
  if (init !== 'random' && init !== 'pca') throw new LanternError(`init must be 'random' or 'pca', got '${init}'`);
  if (init === 'pca') params.v = householderVectors(principalFrame(x.map((xi, i) => s[i] - xi), dim, k), dim, k);
  const adam = { m: new Float64Array(k * dim + 1), v: new Float64Array(k * dim + 1), t: 0 };
  const n = bases.length;
  const stepsPerEpoch = Math.ceil(n / batchSize);
  const steps = epochs * stepsPerEpoch;
  const losses: number[] = [];
  let step = 0;
  for (let epoch = 0; epoch < epochs; epoch++) {
    const order = shuffle(n, rng);
    for (let b0 = 0; b0 < n; b0 += batchSize, step++) {
      if (temperature) params.temperature = temperature.start * (temperature.end / temperature.start) ** (step / Math.max(1, steps - 1));
      const idx = order.slice(b0, b0 + batchSize);
      const xb = gatherRows(x, idx, dim);
      const sb = gatherRows(s, idx, dim);
      const rows = idx.map((i) => bases[i]);
      const { objective, dv, dboundary } = await dasGradient(model, loc, params, rows, xb, sb, idx.map((i) => train.counterfactuals[i]));
      let loss = objective;
      const grad = new Float64Array(k * dim + 1);
      grad.set(dv);
      if (boundless) {
        loss += boundaryPenalty! * params.boundary;
        grad[k * dim] = dboundary + boundaryPenalty!;
      }
      losses.push(loss);
      // The rate falls linearly to a tenth over training: large early steps find the subspace, small late ones settle it.
      adamStep(params, grad, adam, lr * (1 - 0.9 * step / Math.max(1, steps - 1)), boundless);
      opts.onProgress?.(step + 1, steps, loss);
    }
  }

  const final = await rotate(model.executor, params, x.subarray(0, dim), s.subarray(0, dim));
  const kept = boundless ? Math.max(1, Array.from(final.mask).filter((m) => m > 0.5).length) : k;
  const basis = new Float32Array(kept * dim);
  for (let i = 0; i < kept; i++) for (let t = 0; t < dim; t++) basis[i * dim + t] = final.q[t * k + i];
  const subspace: Subspace = { basis, k: kept, dim };
  const frame32 = Float32Array.from(final.q);
  const interventions = [{ hook: loc.hook, positions: [loc.position], heads: loc.head === undefined ? undefined : [loc.head], subspace }];
  const score = async (examples: CounterfactualExample[]) => (await interchangeAccuracy(model, { task: opts.task, examples, variables, interventions })).iia;
  return {
    method: boundless ? 'boundless-das' : 'das',
    variable: opts.variable,
    location: loc,
    iia: await score(opts.test),
    trainIia: await score(opts.train),
    k: kept,
    subspace,
    orthogonality: orthogonalityError(frame32, dim, k),
    losses,
    settings: { k, init, boundless, epochs, batchSize, lr, temperature, boundaryPenalty, train: opts.train.length, test: opts.test.length },
    seed,
  };
}

/**
 * One DAS training step's loss and gradients: the rotation graph on the batch's base rows `x` and
 * source rows `s`, one forward and backward of the bases through the hooked model with the
 * interchanged rows added at the hook (cross-entropy of the counterfactual answers at each last
 * token), and the rotation graph's backward with the hook's gradient.
 */
export async function dasGradient(model: HookedTransformer, loc: DasLocation, params: RotationParams, rows: number[][], x: Float32Array, s: Float32Array, answers: number[]): Promise<{ objective: number; dv: Float64Array; dboundary: number }> {
  const { dim } = params;
  const shape = model.hookShapes.get(loc.hook)!;
  const fwd = await rotate(model.executor, params, x, s);
  const seq = Math.max(...rows.map((r) => r.length));
  const dims = shape.map((d, a) => (a === 0 ? rows.length : a === 1 ? seq : Number(d)));
  const delta = new Float32Array(dims.reduce((p, q) => p * q, 1));
  const rowLen = delta.length / (rows.length * seq);
  const offsets = rows.map((r, b) => (b * seq + resolve(loc.position, r.length)) * rowLen + (loc.head ?? 0) * dim);
  offsets.forEach((o, b) => { for (let t = 0; t < dim; t++) delta[o + t] = fwd.patched[b * dim + t] - x[b * dim + t]; });
  const last = [...new Set(rows.map((r) => r.length - 1))].sort((a, c) => a - c);
  const terms: ObjectiveTerm[] = rows.map((r, b) => ({ batch: b, pos: r.length - 1, token: answers[b], kind: 'logprob', coef: -1 / rows.length }));
  const res = await model.gradients(rows, terms, { wrt: [loc.hook], interventions: [{ hook: loc.hook, op: 'add', value: Tensor.f32(delta, dims) }], logitPositions: last });
  const g = res.grads[loc.hook].f32;
  const upstream = new Float32Array(rows.length * dim);
  offsets.forEach((o, b) => upstream.set(g.subarray(o, o + dim), b * dim));
  const bwd = await rotate(model.executor, params, x, s, upstream);
  return { objective: res.objective, dv: bwd.dv!, dboundary: bwd.dboundary! };
}

function shuffle(n: number, rng: Rng): number[] {
  const a = Array.from({ length: n }, (_, i) => i);
  for (let i = n - 1; i > 0; i--) {
    const j = rng.int(i + 1);
    [a[i], a[j]] = [a[j], a[i]];
  }
  return a;
}

function gatherRows(x: Float32Array, idx: number[], dim: number): Float32Array {
  const out = new Float32Array(idx.length * dim);
  idx.forEach((i, r) => out.set(x.subarray(i * dim, (i + 1) * dim), r * dim));
  return out;
}

/** Adam on the Householder vectors and (Boundless) the boundary, which moves in whole dimensions, so it gets a larger step. */
function adamStep(p: RotationParams, grad: Float64Array, st: { m: Float64Array; v: Float64Array; t: number }, lr: number, boundless: boolean): void {
  const b1 = 0.9, b2 = 0.999, eps = 1e-8;
  st.t++;
  const c1 = 1 - b1 ** st.t, c2 = 1 - b2 ** st.t;
  const n = p.v.length;
  const upto = boundless ? n + 1 : n;
  for (let i = 0; i < upto; i++) {
    st.m[i] = b1 * st.m[i] + (1 - b1) * grad[i];
    st.v[i] = b2 * st.v[i] + (1 - b2) * grad[i] * grad[i];
    const stepSize = (i === n ? 10 : 1) * lr * (st.m[i] / c1) / (Math.sqrt(st.v[i] / c2) + eps);
    if (i < n) p.v[i] -= stepSize;
    else p.boundary = Math.min(p.k, Math.max(0.5, p.boundary - stepSize));
  }
}
