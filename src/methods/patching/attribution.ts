/**
 * Attribution patching (Nanda, 2023; Syed et al., 2023): the first-order Taylor approximation of
 * activation patching. Patching activation a from its corrupted value to its clean value changes
 * the metric by approximately
 *
 *     (a_clean - a_corrupt) · ∂metric/∂a |_(corrupted run)
 *
 * summed over the patched slot's elements. Every slot of every layer comes from the same three
 * passes: a clean forward (caching the swept hooks), and a corrupted forward with cache plus one
 * backward, which run as one graph (`model.gradients` with `cache`). So the whole sweep costs two
 * ORT runs whatever its size, where activation patching costs one patched forward per slot.
 *
 * Slots, axes and normalisation are those of activationPatching: effects are
 * (m_corrupt + attribution - m_corrupt) / (m_clean - m_corrupt), so 1 means "predicted to restore
 * the clean behaviour" and the two methods' results compare cell by cell. The approximation is
 * exact where the metric is linear in the patched activation (e.g. the logit difference in
 * ln_final.hook_normalized); elsewhere it is the derivative of the metric along the straight line
 * from the corrupted to the clean activation, at the corrupted end.
 */
import { LanternError } from '../../errors.js';
import { Tensor } from '../../engine/tensor.js';
import type { HookedTransformer, ObjectiveTerm } from '../../models/hooked.js';
import { objectives } from '../../models/hooked.js';
import { PatchingOptions, PatchMetric, PatchSlot, Sweep, SWEEP_HOOKS, sweepSlots, resolvePair } from './activation.js';
import { logSoftmaxAt } from '../../models/predictions.js';

/** Attribution patching's settings: the patching options plus integration steps. */
export type AttributionOptions = Omit<PatchingOptions, 'batchSize'> & {
  /**
   * Integrated attribution (as EAP-IG, Hanna et al., 2024): average the gradient over `igSteps`
   * runs whose token embeddings lie evenly (midpoints) on the line from the corrupted to the clean
   * prompt's, instead of taking it at the corrupted run alone. Fixes the linearisation where an
   * attention softmax is saturated at the corrupted end (default 0: plain attribution patching).
   */
  igSteps?: number;
};

/** Attribution patching's estimates for every slot, with the cost in forward passes. */
export interface AttributionResult {
  method: 'attribution-patching';
  sweep: Sweep;
  metric: PatchMetric;
  hook: string;
  axes: string[];
  shape: number[];
  /** Normalised predicted effect of each patch, attribution / (m_clean - m_corrupt), row-major over `axes`. */
  effects: number[];
  /** The predicted metric of each patched run, m_corrupt + attribution, same layout. */
  values: number[];
  /** The raw attributions, (a_clean - a_corrupt) · ∂metric/∂a summed over the slot. */
  attributions: number[];
  slots: PatchSlot[];
  clean: number;
  corrupt: number;
  cleanTokens: number[];
  corruptTokens: number[];
  answer: number;
  wrong?: number;
  pos: number;
  settings: { byPosition: boolean; igSteps?: number };
}

/** How well attribution patching's estimates track true patching (correlation and fit). */
export interface LinearAttribution {
  /** The objective on the clean and on the corrupted prompt. */
  clean: number;
  corrupt: number;
  /** Per hook, elementwise (a_clean - a_corrupt) * ∂objective/∂a on the corrupted run, in the hook's layout (batch 1). */
  products: Record<string, Tensor>;
}


/**
 * The building block: elementwise attribution products at any hooks, for any objective of the
 * logits (single prompts of equal length). Two ORT runs: clean forward with cache; corrupted
 * forward with cache and backward.
 */
export async function linearAttribution(
  model: HookedTransformer, cleanTokens: number[], corruptTokens: number[], terms: ObjectiveTerm[], hooks: string[], igSteps = 0,
): Promise<LinearAttribution> {
  if (cleanTokens.length !== corruptTokens.length) {
    throw new LanternError(`clean and corrupted prompts must have the same number of tokens (clean ${cleanTokens.length}, corrupted ${corruptTokens.length})`);
  }
  if (!Number.isInteger(igSteps) || igSteps < 0) throw new LanternError(`IG steps must be a non-negative integer, got ${igSteps}`);
  // Only the positions the objective reads are unembedded (the unembedding is most of a short prompt's run).
  const logitPositions = [...new Set(terms.map((t) => t.pos))].sort((p, q) => p - q);
  const cleanRun = await model.runWithHooks([cleanTokens], { cache: igSteps ? [...new Set([...hooks, 'hook_embed'])] : hooks, logitPositions });
  const corruptRun = igSteps
    ? await integratedGradients(model, cleanRun.cache.get('hook_embed'), corruptTokens, terms, hooks, igSteps)
    : await model.gradients([corruptTokens], terms, { wrt: hooks, cache: hooks, logitPositions });
  const V = model.cfg.dVocab;
  const logits = cleanRun.logits.f32;
  let clean = 0;
  for (const t of terms) {
    const k = logitPositions.indexOf(t.pos);
    const row = logits.subarray(k * V, (k + 1) * V);
    clean += (t.coef ?? 1) * (t.kind === 'logit' ? row[t.token] : logSoftmaxAt(row, t.token));
  }
  const products: Record<string, Tensor> = {};
  for (const h of hooks) {
    const a = cleanRun.cache.get(h).f32;
    const c = corruptRun.cache.get(h).f32;
    const g = corruptRun.grads[h].f32;
    const p = new Float32Array(g.length);
    for (let i = 0; i < g.length; i++) p[i] = (a[i] - c[i]) * g[i];
    products[h] = Tensor.f32(p, corruptRun.grads[h].shape);
  }
  return { clean, corrupt: corruptRun.objective, products };
}

/**
 * The corrupted run's objective and cache, with the gradient at each hook averaged over `steps`
 * runs (one batch) whose embeddings interpolate from the corrupted to the clean prompt's.
 */
async function integratedGradients(model: HookedTransformer, cleanEmbed: Tensor, corruptTokens: number[], terms: ObjectiveTerm[], hooks: string[], steps: number) {
  const corruptRun = await model.gradients([corruptTokens], terms, { wrt: ['hook_embed'], cache: [...new Set([...hooks, 'hook_embed'])] });
  const c = corruptRun.cache.get('hook_embed').f32;
  const a = cleanEmbed.f32;
  const n = c.length;
  const interp = new Float32Array(steps * n);
  for (let j = 0; j < steps; j++) {
    const alpha = (j + 0.5) / steps;
    for (let i = 0; i < n; i++) interp[j * n + i] = c[i] + alpha * (a[i] - c[i]);
  }
  const batchTerms = Array.from({ length: steps }, (_, j) => terms.map((t) => ({ ...t, batch: j, coef: (t.coef ?? 1) / steps }))).flat();
  const ig = await model.gradients(Array.from({ length: steps }, () => corruptTokens), batchTerms, {
    wrt: hooks, interventions: [{ hook: 'hook_embed', op: 'replace', value: Tensor.f32(interp, [steps, ...cleanEmbed.shape.slice(1)]) }],
  });
  const grads: Record<string, Tensor> = {};
  for (const h of hooks) {
    const g = ig.grads[h];
    const per = g.size / steps;
    const sum = new Float32Array(per);
    for (let j = 0; j < steps; j++) for (let i = 0; i < per; i++) sum[i] += g.f32[j * per + i];
    grads[h] = Tensor.f32(sum, [1, ...g.shape.slice(1)]);
  }
  return { objective: corruptRun.objective, cache: corruptRun.cache, grads };
}

/**
 * Attribution patching of one clean/corrupted pair over a sweep (the same sweeps, options, slots
 * and normalisation as activationPatching; `batchSize` does not apply).
 */
export async function attributionPatching(model: HookedTransformer, opts: AttributionOptions): Promise<AttributionResult> {
  const { sweep, cleanTokens, corruptTokens, seq, answer, wrong, metric, pos } = resolvePair(model, opts);
  const byPosition = !!opts.byPosition && (sweep === 'heads' || sweep === 'pattern');
  const { nLayers: L, nHeads: H } = model.cfg;
  const hooks = Array.from({ length: L }, (_, l) => SWEEP_HOOKS[sweep](l));
  const terms = metric === 'logit-diff' ? objectives.logitDiff(pos, answer, wrong!) : objectives.logprob(pos, answer);

  const igSteps = opts.igSteps ?? 0;
  const { clean, corrupt, products } = await linearAttribution(model, cleanTokens, corruptTokens, terms, hooks, igSteps);
  if (!(Math.abs(clean - corrupt) > 1e-6 * Math.max(1, Math.abs(clean)))) {
    throw new LanternError(`the clean and corrupted prompts give the same ${metric} (${clean.toFixed(4)}), so patching effects cannot be normalised`);
  }

  // Sum each layer's products into [slot-within-layer] cells, in sweepSlots' order.
  const attributions: number[] = [];
  for (let l = 0; l < L; l++) {
    const p = products[hooks[l]].f32;
    const dims = products[hooks[l]].shape; // batch 1
    let cells: Float64Array;
    if (sweep === 'resid' || sweep === 'attn' || sweep === 'mlp') {
      const [, T, D] = dims; // [1, T, d]
      cells = new Float64Array(T);
      for (let t = 0; t < T; t++) for (let d = 0; d < D; d++) cells[t] += p[t * D + d];
    } else if (sweep === 'heads') {
      const [, T, , Dh] = dims; // [1, T, H, d_head]
      cells = new Float64Array(byPosition ? H * T : H);
      for (let t = 0; t < T; t++) for (let h = 0; h < H; h++) {
        let s = 0;
        for (let d = 0; d < Dh; d++) s += p[(t * H + h) * Dh + d];
        cells[byPosition ? h * T + t : h] += s;
      }
    } else {
      const [, , Q, K] = dims; // [1, H, q, k]
      cells = new Float64Array(byPosition ? H * Q : H);
      for (let h = 0; h < H; h++) for (let q = 0; q < Q; q++) {
        let s = 0;
        for (let k = 0; k < K; k++) s += p[(h * Q + q) * K + k];
        cells[byPosition ? h * Q + q : h] += s;
      }
    }
    attributions.push(...cells);
  }
  const { axes, shape, slots } = sweepSlots(model, sweep, seq, byPosition);
  const values = attributions.map((a) => corrupt + a);
  const effects = attributions.map((a) => a / (clean - corrupt));
  return {
    method: 'attribution-patching', sweep, metric, hook: SWEEP_HOOKS[sweep](0).replace('blocks.0.', 'blocks.{l}.'),
    axes, shape, effects, values, attributions, slots, clean, corrupt, cleanTokens, corruptTokens, answer,
    ...(wrong !== undefined ? { wrong } : {}), pos, settings: { byPosition, ...(igSteps ? { igSteps } : {}) },
  };
}

/** Pearson correlation of two equal-length series (NaN when either is constant). */
export function pearson(x: number[], y: number[]): number {
  if (x.length !== y.length) throw new LanternError(`pearson: lengths differ (${x.length} vs ${y.length})`);
  const n = x.length;
  const mx = x.reduce((s, v) => s + v, 0) / n;
  const my = y.reduce((s, v) => s + v, 0) / n;
  let sxy = 0, sxx = 0, syy = 0;
  for (let i = 0; i < n; i++) {
    sxy += (x[i] - mx) * (y[i] - my);
    sxx += (x[i] - mx) ** 2;
    syy += (y[i] - my) ** 2;
  }
  return sxy / Math.sqrt(sxx * syy);
}
