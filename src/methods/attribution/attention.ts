/**
 * Attention as attribution, read from the attention patterns of one clean run (runWithCache).
 *
 *   attention  The attention weights of the target position (the query predicting the target)
 *              over the prompt's tokens, averaged over the chosen layers and heads (default: all).
 *   rollout    Attention rollout (Abnar & Zuidema 2020): per layer Â_l = 0.5·I + 0.5·A_l, where
 *              A_l is the mean over the chosen heads (default all), rows renormalised to sum to 1;
 *              R = Â_L·…·Â_1 (layers 0..`layers` max, default all); the score is R's row at the
 *              target position.
 *
 * For a continuation, row t+1 reads the query that predicts continuation token t, restricted to
 * the prompt's columns; row 0 (the whole continuation) is the mean of those rows. Scores are the
 * same for every target token: attention does not depend on what is explained.
 */
import { LanternError } from '../../errors.js';
import type { HookedTransformer } from '../../models/hooked.js';
import type { MethodOutput } from './gradient.js';
import type { ResolvedTarget } from './targets.js';

/** Settings for the attention-weight methods: which layers and heads to use. */
export interface AttentionSettings {
  /** Layers to use (attention: averaged; rollout: multiplied, in order). Default all. */
  layers?: number[];
  /** Heads to average. Default all. */
  heads?: number[];
}

function checkIndices(xs: number[] | undefined, n: number, what: string): number[] {
  const all = Array.from({ length: n }, (_, i) => i);
  if (xs === undefined) return all;
  if (xs.length === 0) throw new LanternError(`no ${what}s chosen`);
  for (const x of xs) if (!Number.isInteger(x) || x < 0 || x >= n) throw new LanternError(`${what} ${x} is outside [0, ${n})`);
  return [...new Set(xs)].sort((a, b) => a - b);
}

/** Mean over `heads` of pattern [1, H, T, T] -> [T, T] (Float64). */
async function meanPatterns(model: HookedTransformer, input: number[], layers: number[], heads: number[]): Promise<Float64Array[]> {
  const names = layers.map((l) => `blocks.${l}.attn.hook_pattern`);
  const { cache } = await model.runWithCache([input], names);
  const T = input.length;
  return names.map((n) => {
    const p = cache.get(n).f32;
    const out = new Float64Array(T * T);
    for (const h of heads) for (let i = 0; i < T * T; i++) out[i] += p[h * T * T + i] / heads.length;
    return out;
  });
}

/** Rows of `m` [T, T] at the queries of each target row, restricted to the prompt. */
export function rowsAt(m: Float64Array, t: ResolvedTarget): number[][] {
  const T = t.input.length;
  const at = (q: number) => Array.from({ length: t.promptLength }, (_, k) => m[q * T + k]);
  if (t.info.mode !== 'continuation') return [at(t.info.position)];
  const per = t.rows.slice(1).map((_, i) => at(t.info.position + i));
  const mean = per[0].map((_, k) => per.reduce((s, r) => s + r[k], 0) / per.length);
  return [mean, ...per];
}

/** The attention from the target position to each token, averaged over heads (and layers). */
export async function rawAttention(model: HookedTransformer, t: ResolvedTarget, s: AttentionSettings = {}): Promise<MethodOutput> {
  const layers = checkIndices(s.layers, model.cfg.nLayers, 'layer');
  const heads = checkIndices(s.heads, model.cfg.nHeads, 'head');
  const pats = await meanPatterns(model, t.input, layers, heads);
  const T = t.input.length;
  const avg = new Float64Array(T * T);
  for (const p of pats) for (let i = 0; i < T * T; i++) avg[i] += p[i] / pats.length;
  return { scores: rowsAt(avg, t), settings: { layers, heads } };
}

/** Attention rollout (Abnar and Zuidema 2020): attention matrices with the residual added, multiplied through the layers. */
export async function attentionRollout(model: HookedTransformer, t: ResolvedTarget, s: AttentionSettings = {}): Promise<MethodOutput> {
  const layers = checkIndices(s.layers, model.cfg.nLayers, 'layer');
  const heads = checkIndices(s.heads, model.cfg.nHeads, 'head');
  const pats = await meanPatterns(model, t.input, layers, heads);
  const T = t.input.length;
  let R = identity(T);
  for (const A of pats) {
    const Ah = new Float64Array(T * T);
    for (let q = 0; q < T; q++) {
      let z = 0;
      for (let k = 0; k < T; k++) { Ah[q * T + k] = 0.5 * A[q * T + k] + (q === k ? 0.5 : 0); z += Ah[q * T + k]; }
      for (let k = 0; k < T; k++) Ah[q * T + k] /= z;
    }
    R = matmul(Ah, R, T); // later layers on the left: R = Â_l · R
  }
  return { scores: rowsAt(R, t), settings: { layers, heads, residual: 0.5 } };
}

function identity(T: number): Float64Array {
  const m = new Float64Array(T * T);
  for (let i = 0; i < T; i++) m[i * T + i] = 1;
  return m;
}

/** [T, T] × [T, T], row-major. */
export function matmul(a: Float64Array, b: Float64Array, T: number): Float64Array {
  const c = new Float64Array(T * T);
  for (let i = 0; i < T; i++) for (let k = 0; k < T; k++) {
    const x = a[i * T + k];
    if (x === 0) continue;
    for (let j = 0; j < T; j++) c[i * T + j] += x * b[k * T + j];
  }
  return c;
}
