/**
 * Perturbation: occlusion / leave-one-out at token, word or sentence granularity.
 *
 * Score of prompt token i = f(x) − f(x with token i masked), signed (positive: the token supports
 * the target). Masking keeps the sequence length and positions (nothing is deleted):
 *   'zero'       (default) the token's embedding is replaced by zeros at hook_embed (its
 *                position embedding stays) — every masked copy gets its own [seq, d_model]
 *                embeddings through one replace intervention with a [batch, seq, d_model] value;
 *   { token }    the token id is replaced by a baseline token (e.g. a space or an UNK-like id).
 * All masked copies (× rows) run `batchSize` at a time, a run starting at its copies' first masked
 * position (before it, the prompt's own keys and values are reused: common.ts `evaluate`). With
 * `granularity` 'word' or 'sentence' (features.ts) a feature's tokens are masked together and each
 * feature gets one score.
 *
 * Leave-one-out itself (`occlusionFit`) sees only a CoalitionScorer, so the same code runs on a
 * black-box backend (agnostic.ts); `spanScorer` is the white-box scorer.
 */
import { LanternError } from '../../errors.js';
import type { HookedTransformer } from '../../models/hooked.js';
import { checkBatchSize, evaluate, Example, tokenEmbeddings } from './common.js';
import { checkGranularity, expandSpans, tokenSpans, Granularity } from './features.js';
import type { MethodOutput } from './gradient.js';
import type { CoalitionScorer } from './sampling.js';
import type { ResolvedTarget } from './targets.js';

/** How occlusion hides a token: a zero embedding (positions kept) or another token's embedding. */
export type Masking = 'zero' | { token: number };

/** Occlusion's settings: window size and masking. */
export interface OcclusionSettings {
  mask?: Masking;
  batchSize?: number;
  /** Mask whole words or sentences together (default 'token'); scores are then one per feature. */
  granularity?: Granularity;
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
  const { values } = await evaluate(model, t.input, t.rows, examples, { grad: false, batchSize, promptCache: t.promptCache });
  return t.rows.map((_, row) => values.slice(row * masks.length, (row + 1) * masks.length));
}

/** Leave-one-out masks: variant i masks prompt token i. */
export function leaveOneOutMasks(n: number): boolean[][] {
  return Array.from({ length: n }, (_, i) => Array.from({ length: n }, (_, j) => j === i));
}

/** Leave-one-out through any scorer: score_i = f(all features) − f(all but feature i), per row. */
export async function occlusionFit(n: number, scorer: CoalitionScorer): Promise<{ scores: number[][]; values: number[] }> {
  // Variant 0 is the unperturbed input, scored the same way, so f(x) and f(x∖i) share one code path.
  const keep = [new Array(n).fill(true), ...Array.from({ length: n }, (_, i) => Array.from({ length: n }, (_, j) => j !== i))];
  const ys = await scorer(keep);
  return { scores: ys.map((y) => y.slice(1).map((v) => y[0] - v)), values: ys.map((y) => y[0]) };
}

/** Token spans of the prompt's features; words and sentences need the model's tokenizer. */
export function featureSpans(model: HookedTransformer, t: ResolvedTarget, granularity: Granularity): [number, number][] {
  const n = t.promptLength;
  if (granularity === 'token') return Array.from({ length: n }, (_, i) => [i, i + 1]);
  if (!model.tokenizer) throw new LanternError(`${granularity} granularity needs the model's tokenizer (${model.source} has no tokenizer.json)`);
  return tokenSpans(model.tokenStrings(t.input.slice(0, n)), granularity);
}

/**
 * A CoalitionScorer over feature spans: keep-masks over features become token masks, and every
 * masked copy runs through `maskedValues` (batched).
 */
export function spanScorer(model: HookedTransformer, t: ResolvedTarget, spans: [number, number][], opts: { mask: Masking; batchSize: number }): CoalitionScorer {
  return (keep) => maskedValues(model, t, keep.map((z) => expandSpans(z, spans, t.promptLength).map((b) => !b)), opts);
}

/** Occlusion (leave-one-out for window 1): each token's score is the change in the target when it is masked. */
export async function occlusion(model: HookedTransformer, t: ResolvedTarget, s: OcclusionSettings = {}): Promise<MethodOutput> {
  const mask = checkMasking(model, s.mask);
  const batchSize = checkBatchSize(s.batchSize, 32);
  const granularity = checkGranularity(s.granularity);
  const spans = featureSpans(model, t, granularity);
  const r = await occlusionFit(spans.length, spanScorer(model, t, spans, { mask, batchSize }));
  return {
    scores: r.scores,
    settings: { mask, batchSize, ...(s.granularity ? { granularity } : {}) },
    ...(granularity !== 'token' ? { extra: { spans } } : {}),
  };
}
