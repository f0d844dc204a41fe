/**
 * Perturbation: occlusion / leave-one-out at token granularity.
 *
 * Score of prompt token i = f(x) − f(x with token i masked), signed (positive: the token supports
 * the target). Masking keeps the sequence length and positions (nothing is deleted):
 *   'zero'       (default) the token's embedding is replaced by zeros at hook_embed (its
 *                position embedding stays) — every masked copy gets its own [seq, d_model]
 *                embeddings through one replace intervention with a [batch, seq, d_model] value;
 *   { token }    the token id is replaced by a baseline token (e.g. a space or an UNK-like id).
 * All masked copies (× rows) run `batchSize` at a time.
 */
import { LanternError } from '../../errors.js';
import type { HookedTransformer } from '../../models/hooked.js';
import { checkBatchSize, evaluate, Example, tokenEmbeddings } from './common.js';
import type { MethodOutput } from './gradient.js';
import type { ResolvedTarget } from './targets.js';

export type Masking = 'zero' | { token: number };

export interface OcclusionSettings {
  mask?: Masking;
  batchSize?: number;
}

export function checkMasking(model: HookedTransformer, m: Masking | undefined): Masking {
  const v = m ?? 'zero';
  if (v === 'zero') return v;
  if (typeof v === 'object' && v !== null && Number.isInteger(v.token) && v.token >= 0 && v.token < model.cfg.dVocab) return { token: v.token };
  throw new LanternError(`unknown masking ${JSON.stringify(m)}; use 'zero' or { token: id } with an id in the vocabulary`);
}

/**
 * Each row's value with each set of prompt positions masked: values[row][variant].
 * `masks[v][i]` is true when prompt token i is masked in variant v.
 */
export async function maskedValues(
  model: HookedTransformer, t: ResolvedTarget, masks: boolean[][], opts: { mask?: Masking; batchSize?: number } = {},
): Promise<number[][]> {
  const mask = checkMasking(model, opts.mask);
  const batchSize = checkBatchSize(opts.batchSize, 32);
  const d = model.cfg.dModel;
  const x = mask === 'zero' ? await tokenEmbeddings(model, t.input) : undefined;
  const variant = (m: boolean[]): Omit<Example, 'row'> => {
    if (mask === 'zero') {
      const e = Float32Array.from(x!);
      m.forEach((on, i) => { if (on) e.fill(0, i * d, (i + 1) * d); });
      return { embed: e };
    }
    return { tokens: t.input.map((tok, i) => (i < m.length && m[i] ? mask.token : tok)) };
  };
  const vs = masks.map(variant);
  const examples: Example[] = t.rows.flatMap((_, row) => vs.map((v) => ({ ...v, row })));
  const { values } = await evaluate(model, t.input, t.rows, examples, { grad: false, batchSize });
  return t.rows.map((_, row) => values.slice(row * masks.length, (row + 1) * masks.length));
}

/** Leave-one-out masks: variant i masks prompt token i. */
export function leaveOneOutMasks(n: number): boolean[][] {
  return Array.from({ length: n }, (_, i) => Array.from({ length: n }, (_, j) => j === i));
}

export async function occlusion(model: HookedTransformer, t: ResolvedTarget, s: OcclusionSettings = {}): Promise<MethodOutput> {
  const mask = checkMasking(model, s.mask);
  const batchSize = checkBatchSize(s.batchSize, 32);
  const n = t.promptLength;
  // Variant 0 is the unmasked input, run the same way, so f(x) and f(x∖i) share one code path.
  const vals = await maskedValues(model, t, [new Array(n).fill(false), ...leaveOneOutMasks(n)], { mask, batchSize });
  const scores = vals.map((v) => v.slice(1).map((masked) => v[0] - masked));
  return { scores, settings: { mask, batchSize } };
}
