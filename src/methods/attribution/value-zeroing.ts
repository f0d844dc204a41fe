/**
 * Value zeroing (Mohebbi et al. 2023, "Quantifying Context Mixing in Transformers"; as Inseq's
 * `value_zeroing`).
 *
 * For layer l and token j, zero j's value vectors in every head of layer l, keep everything that
 * enters layer l clean, and measure how far each token i's output of the layer (hook_resid_post)
 * moves: C_l[i, j] = 1 − cos(h_i, h̃_i^{¬j}). Each row is then normalised to sum to 1 (a row of
 * zeros stays zero), so C_l[i, ·] says how token i's representation mixes in the other tokens at
 * layer l. Causal attention makes C_l[i, j] = 0 for j > i.
 *
 * Attribution for a target is C's row at the query that predicts it (continuations: as attention,
 * one row per continuation token and their mean for the whole), restricted to the prompt:
 *   default            the last layer's row (Inseq's default);
 *   layers [..]        the mean of those layers' rows;
 *   rollout            R = C_{l_k} · … · C_{l_1} over the chosen layers (default all), as attention
 *                      rollout but without the added identity: value zeroing already measures the
 *                      residual path (Mohebbi et al.'s "value zeroing rollout").
 *
 * Every (token j, layer l) zeroing runs in one batched pass per chunk of `batchSize` tokens: each
 * batch row b replaces layer l's values by the clean values with token j_b's zeroed, and each
 * chosen layer's residual input is replaced by the clean one, so the layers do not contaminate
 * each other (the same as one run per (j, l)).
 */
import { LanternError } from '../../errors.js';
import { Tensor } from '../../engine/tensor.js';
import type { HookedTransformer, Intervention } from '../../models/hooked.js';
import { checkBatchSize, chunks, defaultBatchSize } from './common.js';
import type { MethodOutput } from './gradient.js';
import type { ResolvedTarget } from './targets.js';
import { matmul, rowsAt } from './attention.js';

/** Value zeroing's settings: which layers to read, and whether to roll them out. */
export interface ValueZeroingSettings {
  /** Layers to read (mean of their rows), or to roll out. Default: the last layer; all with rollout. */
  layers?: number[];
  /** Multiply the chosen layers' matrices in order (value zeroing rollout). */
  rollout?: boolean;
  batchSize?: number;
}

function checkLayers(xs: number[] | undefined, n: number, fallback: number[]): number[] {
  if (xs === undefined) return fallback;
  if (xs.length === 0) throw new LanternError('no layers chosen');
  for (const x of xs) if (!Number.isInteger(x) || x < 0 || x >= n) throw new LanternError(`layer ${x} is outside [0, ${n})`);
  return [...new Set(xs)].sort((a, b) => a - b);
}

function cosineDistance(a: Float32Array, ao: number, b: Float32Array, bo: number, d: number): number {
  let ab = 0;
  let aa = 0;
  let bb = 0;
  for (let k = 0; k < d; k++) {
    const x = a[ao + k];
    const y = b[bo + k];
    ab += x * y; aa += x * x; bb += y * y;
  }
  if (aa === 0 || bb === 0) return aa === bb ? 0 : 1;
  // Clamped: identical vectors can give 1 − cos slightly below 0 in floating point.
  return Math.max(0, 1 - ab / Math.sqrt(aa * bb));
}

/**
 * The value-zeroing matrix of each layer in `layers`: [T * T] row-major, C[i * T + j], each row
 * normalised to sum to 1.
 */
export async function valueZeroingMatrices(
  model: HookedTransformer, tokens: number[], layers: number[], opts: { batchSize?: number; normalize?: boolean } = {},
): Promise<Float64Array[]> {
  const batchSize = checkBatchSize(opts.batchSize, defaultBatchSize(tokens.length, 16, 2048));
  const T = tokens.length;
  // hook_v has the model's key/value heads (fewer than its query heads under grouped-query attention).
  const { dModel: D, nKvHeads: H, dHead: dh } = model.cfg;
  const V = H * dh;
  const names = (l: number) => ({ pre: `blocks.${l}.hook_resid_pre`, v: `blocks.${l}.attn.hook_v`, post: `blocks.${l}.hook_resid_post` });
  const { cache } = await model.runWithCache([tokens], layers.flatMap((l) => Object.values(names(l))));
  const C = layers.map(() => new Float64Array(T * T));
  for (const [s, e] of chunks(T, batchSize)) {
    const n = e - s;
    const interventions: Intervention[] = [];
    for (const l of layers) {
      const { pre, v } = names(l);
      const clean = cache.get(v).f32; // [1, T, H, dh]
      const zeroed = new Float32Array(n * T * H * dh);
      for (let b = 0; b < n; b++) {
        zeroed.set(clean, b * T * V);
        zeroed.fill(0, b * T * V + (s + b) * V, b * T * V + (s + b + 1) * V);
      }
      interventions.push({ hook: pre, op: 'replace', value: cache.get(pre) });
      interventions.push({ hook: v, op: 'replace', value: Tensor.f32(zeroed, [n, T, H, dh]) });
    }
    const run = await model.runWithHooks(Array.from({ length: n }, () => tokens), {
      interventions, cache: layers.map((l) => names(l).post), logitPositions: [0],
    });
    layers.forEach((l, li) => {
      const clean = cache.get(names(l).post).f32;
      const hit = run.cache.get(names(l).post).f32;
      for (let b = 0; b < n; b++) {
        const j = s + b;
        for (let i = 0; i < T; i++) C[li][i * T + j] = cosineDistance(clean, i * D, hit, (b * T + i) * D, D);
      }
    });
  }
  if (opts.normalize !== false) {
    for (const m of C) {
      for (let i = 0; i < T; i++) {
        let z = 0;
        for (let j = 0; j < T; j++) z += m[i * T + j];
        if (z > 0) for (let j = 0; j < T; j++) m[i * T + j] /= z;
      }
    }
  }
  return C;
}

/** Value zeroing (Mohebbi et al. 2023): how much each token's value vectors change the target's representation. */
export async function valueZeroing(model: HookedTransformer, t: ResolvedTarget, s: ValueZeroingSettings = {}): Promise<MethodOutput> {
  const L = model.cfg.nLayers;
  const rollout = s.rollout ?? false;
  if (typeof rollout !== 'boolean') throw new LanternError(`rollout must be true or false, got ${JSON.stringify(rollout)}`);
  const layers = checkLayers(s.layers, L, rollout ? Array.from({ length: L }, (_, l) => l) : [L - 1]);
  const batchSize = checkBatchSize(s.batchSize, defaultBatchSize(t.input.length, 16, 2048));
  const Cs = await valueZeroingMatrices(model, t.input, layers, { batchSize });
  const T = t.input.length;
  let M: Float64Array;
  if (rollout) {
    M = Cs[0];
    for (const C of Cs.slice(1)) M = matmul(C, M, T); // later layers on the left
  } else {
    M = new Float64Array(T * T);
    for (const C of Cs) for (let k = 0; k < T * T; k++) M[k] += C[k] / Cs.length;
  }
  return { scores: rowsAt(M, t), settings: { layers, rollout, batchSize, similarity: 'cosine' } };
}

