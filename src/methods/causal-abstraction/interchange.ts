/**
 * Interchange interventions (Geiger et al., 2021; pyvene's declarative interventions): run a base
 * input, and at chosen hooks × positions × heads set the activation — whole, or only its component
 * in a subspace — to what it is on a source input. Several interventions may take their values from
 * several sources (one per high-level variable).
 *
 * Batched over many base/source pairs: the distinct sources of a chunk run once with a cache of the
 * hooks read, then the bases run once with a JavaScript callback at each hook that writes every
 * pair's source values into its own row. Everything goes through the model's one hooked forward.
 */
import { LanternError } from '../../errors.js';
import { Tensor } from '../../engine/tensor.js';
import type { HookedTransformer } from '../../models/hooked.js';

/**
 * A subspace of one hook's last axis (d_model for the residual stream, d_head for per-head hooks):
 * `k` basis vectors of length `dim`, row-major. Rows need not be orthonormal: they are
 * orthonormalised (Gram–Schmidt) before use, so a probe or SAE direction can be given as it is.
 */
export interface Subspace {
  basis: Float32Array | number[];
  k: number;
  dim: number;
}

/**
 * One interchange intervention: at `hook`, the base's activation at `positions` (and `heads`, for
 * per-head hooks) takes the value source `source` has at `sourcePositions` (default: the same
 * positions), entirely or only within `subspace`. Negative positions count from each prompt's end
 * (-1 is its last token), so prompts of different lengths align at their ends.
 */
export interface InterchangeIntervention {
  hook: string;
  positions: number[];
  sourcePositions?: number[];
  heads?: number[];
  subspace?: Subspace;
  /** Which of a pair's sources supplies the values (default 0). */
  source?: number;
}

/** A base input and the sources its interventions read (token ids). */
export interface InterchangePair {
  base: number[];
  sources: number[][];
}

/** Options of {@link interchange}. */
export interface InterchangeOptions {
  pairs: InterchangePair[];
  interventions: InterchangeIntervention[];
  /** Score only these tokens (e.g. the answers a causal model can give): `predictions` is then the best of them. */
  candidates?: number[];
  /** Pairs per model run (default 64; 1 runs each pair on its own). */
  batchSize?: number;
  /** Called after each chunk with the pairs done so far. */
  onProgress?: (done: number, total: number) => void;
}

/** What the intervened base runs predict at their last position. */
export interface InterchangeResult {
  /** Per pair: the most likely token (among `candidates` when given). */
  predictions: number[];
  /** Per pair, with `candidates`: the logit of each candidate, in their order. */
  candidateLogits?: number[][];
}

interface Prepared {
  hook: string;
  heads: number[] | null;
  /** Orthonormal rows [k, dim], or null for the whole activation. */
  basis: Float64Array | null;
  k: number;
  dim: number;
  positions: number[];
  sourcePositions: number[];
  source: number;
}

/** Orthonormal rows spanning `s`'s basis (modified Gram–Schmidt in float64); a LanternError if they are dependent. */
export function orthonormalRows(s: Subspace, what = 'subspace'): Float64Array {
  const { k, dim } = s;
  if (!Number.isInteger(k) || k < 1 || !Number.isInteger(dim) || dim < 1) throw new LanternError(`${what}: k and dim must be positive integers, got k=${k}, dim=${dim}`);
  if (s.basis.length !== k * dim) throw new LanternError(`${what}: basis has ${s.basis.length} numbers, expected k x dim = ${k} x ${dim}`);
  if (k > dim) throw new LanternError(`${what}: ${k} basis vectors in ${dim} dimensions cannot be independent`);
  const q = Float64Array.from(s.basis);
  for (let i = 0; i < k; i++) {
    const r = q.subarray(i * dim, (i + 1) * dim);
    for (let j = 0; j < i; j++) {
      const p = q.subarray(j * dim, (j + 1) * dim);
      let dot = 0;
      for (let t = 0; t < dim; t++) dot += r[t] * p[t];
      for (let t = 0; t < dim; t++) r[t] -= dot * p[t];
    }
    let norm = 0;
    for (let t = 0; t < dim; t++) norm += r[t] * r[t];
    norm = Math.sqrt(norm);
    if (!(norm > 1e-8) || !Number.isFinite(norm)) throw new LanternError(`${what}: basis vector ${i} is zero, not finite, or a combination of the ones before it`);
    for (let t = 0; t < dim; t++) r[t] /= norm;
  }
  return q;
}

/** Per-head hooks carry [batch, seq, heads, d_head]; the residual-stream-like ones [batch, seq, d]. */
function hookGeometry(model: HookedTransformer, hook: string): { heads: number; dim: number } {
  model.checkHook(hook);
  if (/hook_(pattern|attn_scores)$/.test(hook)) throw new LanternError(`interchange at ${hook}: attention patterns have no feature axis to interchange; use hook_z, hook_q/k/v, hook_result or a residual hook`);
  const shape = model.hookShapes.get(hook)!;
  if (shape.length === 4) return { heads: Number(shape[2]), dim: Number(shape[3]) };
  return { heads: 0, dim: Number(shape[2]) };
}

function prepare(model: HookedTransformer, iv: InterchangeIntervention, k: number, nSources: number): Prepared {
  const where = `intervention ${k} at ${iv.hook}`;
  const { heads, dim } = hookGeometry(model, iv.hook);
  if (!Array.isArray(iv.positions) || iv.positions.length === 0) throw new LanternError(`${where}: give the positions to interchange (e.g. [-1] for the last token)`);
  const sourcePositions = iv.sourcePositions ?? iv.positions;
  if (sourcePositions.length !== iv.positions.length) throw new LanternError(`${where}: ${iv.positions.length} positions but ${sourcePositions.length} source positions`);
  for (const p of [...iv.positions, ...sourcePositions]) if (!Number.isInteger(p)) throw new LanternError(`${where}: position ${p} is not an integer`);
  if (iv.heads !== undefined) {
    if (heads === 0) throw new LanternError(`${where}: 'heads' applies only to per-head hooks (hook_q, hook_k, hook_v, hook_z, hook_result)`);
    for (const h of iv.heads) if (!Number.isInteger(h) || h < 0 || h >= heads) throw new LanternError(`${where}: head ${h} outside [0, ${heads})`);
  }
  const source = iv.source ?? 0;
  if (!Number.isInteger(source) || source < 0 || source >= nSources) throw new LanternError(`${where}: source ${source} outside the pairs' ${nSources} source(s)`);
  let basis: Float64Array | null = null;
  if (iv.subspace) {
    if (iv.subspace.dim !== dim) throw new LanternError(`${where}: subspace of dim ${iv.subspace.dim}, but the hook's last axis has ${dim}`);
    basis = orthonormalRows(iv.subspace, `${where}: subspace`);
  }
  return {
    hook: iv.hook, dim, basis, k: iv.subspace?.k ?? 0, source,
    heads: heads === 0 ? null : iv.heads ?? Array.from({ length: heads }, (_, h) => h),
    positions: iv.positions, sourcePositions,
  };
}

function resolvePosition(p: number, length: number, what: string): number {
  const at = p < 0 ? length + p : p;
  if (at < 0 || at >= length) throw new LanternError(`${what}: position ${p} outside a prompt of ${length} tokens`);
  return at;
}

/**
 * x <- x + B^T B (s - x) for the rows of B (the subspace), or x <- s without one: the base vector
 * `x` (in place) takes the source's component.
 */
export function interchangeVector(x: Float32Array, s: Float32Array, basis: Float64Array | null, k: number): void {
  const n = x.length;
  if (!basis) { x.set(s); return; }
  for (let i = 0; i < k; i++) {
    const b = basis.subarray(i * n, (i + 1) * n);
    let c = 0;
    for (let t = 0; t < n; t++) c += b[t] * (s[t] - x[t]);
    for (let t = 0; t < n; t++) x[t] += c * b[t];
  }
}

/**
 * Runs every pair's base with its interventions and reads the prediction at the base's last
 * token. Batched: see the module comment. `batchSize: 1` gives one pair per run (the same numbers).
 */
export async function interchange(model: HookedTransformer, opts: InterchangeOptions): Promise<InterchangeResult> {
  const { pairs } = opts;
  if (!Array.isArray(pairs) || pairs.length === 0) throw new LanternError('interchange: give at least one base/source pair');
  const nSources = pairs[0].sources?.length ?? 0;
  pairs.forEach((p, i) => {
    if (!Array.isArray(p.base) || !Array.isArray(p.sources)) throw new LanternError(`pair ${i}: needs a base (token ids) and sources (a list of token-id lists)`);
    if (p.sources.length !== nSources) throw new LanternError(`pair ${i} has ${p.sources.length} sources, pair 0 has ${nSources}: every pair needs one per source`);
  });
  if (!Array.isArray(opts.interventions) || opts.interventions.length === 0) throw new LanternError('interchange: give at least one intervention');
  const plans = opts.interventions.map((iv, k) => prepare(model, iv, k, nSources));
  const candidates = opts.candidates;
  candidates?.forEach((t) => { if (!Number.isInteger(t) || t < 0 || t >= model.cfg.dVocab) throw new LanternError(`candidate token ${t} outside the vocabulary [0, ${model.cfg.dVocab})`); });
  const batchSize = opts.batchSize ?? 64;
  if (!Number.isInteger(batchSize) || batchSize < 1) throw new LanternError(`batchSize must be a positive integer, got ${batchSize}`);
  const hooksRead = [...new Set(plans.map((p) => p.hook))];

  const predictions: number[] = [];
  const candidateLogits: number[][] = [];
  for (let c0 = 0; c0 < pairs.length; c0 += batchSize) {
    const chunk = pairs.slice(c0, c0 + batchSize);
    // Each distinct source runs once, however many pairs read it.
    const sourceIndex = new Map<string, number>();
    const sourceRows: number[][] = [];
    const rowOf = chunk.map((p) => p.sources.map((s) => {
      const key = s.join(',');
      if (!sourceIndex.has(key)) { sourceIndex.set(key, sourceRows.length); sourceRows.push(s); }
      return sourceIndex.get(key)!;
    }));
    const srcCache = sourceRows.length ? (await model.runWithHooks(sourceRows, { cache: hooksRead, logitPositions: [0] })).cache : undefined;
    const srcSeq = srcCache?.batch.seq ?? 0;
    const callbacks: Record<string, (act: Tensor) => Tensor> = {};
    for (const hook of hooksRead) {
      callbacks[hook] = (act: Tensor) => {
        const out = Float32Array.from(act.f32);
        const seq = act.shape[1];
        const src = srcCache!.get(hook).f32;
        for (const plan of plans.filter((p) => p.hook === hook)) {
          const rowLen = plan.heads ? (act.shape[2] * plan.dim) : plan.dim;
          chunk.forEach((pair, b) => {
            const s = rowOf[b][plan.source];
            const srcLen = pair.sources[plan.source].length;
            plan.positions.forEach((p, i) => {
              const bp = resolvePosition(p, pair.base.length, `pair ${c0 + b}: intervention at ${hook}`);
              const sp = resolvePosition(plan.sourcePositions[i], srcLen, `pair ${c0 + b}: source of intervention at ${hook}`);
              const baseOff = (b * seq + bp) * rowLen;
              const srcOff = (s * srcSeq + sp) * rowLen;
              for (const h of plan.heads ?? [0]) {
                const o = h * plan.dim;
                interchangeVector(out.subarray(baseOff + o, baseOff + o + plan.dim), src.subarray(srcOff + o, srcOff + o + plan.dim), plan.basis, plan.k);
              }
            });
          });
        }
        return Tensor.f32(out, act.shape);
      };
    }
    const bases = chunk.map((p) => p.base);
    const { logits } = await model.runWithHooks(bases, { callbacks, logitPositions: bases.map((b) => [b.length - 1]) });
    const V = model.cfg.dVocab;
    chunk.forEach((_, b) => {
      const row = logits.f32.subarray(b * V, (b + 1) * V);
      if (candidates) {
        const scores = candidates.map((t) => row[t]);
        candidateLogits.push(scores);
        predictions.push(candidates[argmax(scores)]);
      } else predictions.push(argmax(row));
    });
    opts.onProgress?.(Math.min(pairs.length, c0 + batchSize), pairs.length);
  }
  return candidates ? { predictions, candidateLogits } : { predictions };
}

/** Index of the largest entry (the first of ties). */
export function argmax(xs: ArrayLike<number>): number {
  let best = 0;
  for (let i = 1; i < xs.length; i++) if (xs[i] > xs[best]) best = i;
  return best;
}
