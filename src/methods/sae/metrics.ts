/**
 * SAE evaluation as SAELens reports it, over windows of a token stream:
 * - reconstruction: L0, explained variance 1 - Σ||x - x̂||² / Σ||x - mean(x)||², MSE (per
 *   dimension), cosine similarity of x and x̂;
 * - downstream: next-token cross-entropy of the model clean, with the SAE's reconstruction
 *   spliced in, and with the hook zero-ablated; CE-loss score (CE_ablated - CE_spliced) /
 *   (CE_ablated - CE_clean); KL(clean || spliced) and the KL score 1 - KL_spliced / KL_ablated;
 * - features: each one's firing density, the dead (never fired) and dense (fires on more than
 *   `denseThreshold` of tokens) fractions, and a histogram of log10 densities.
 */
import { LanternError } from '../../errors.js';
import type { Tensor } from '../../engine/tensor.js';
import type { HookedTransformer } from '../../models/hooked.js';
import type { Sae } from './sae.js';
import { checkSaeFits, runWithSaes } from './splice.js';

/** Options for {@link evaluateSae}. */
export interface EvaluateOptions {
  /** Tokens per window (default 128). */
  context?: number;
  /** Windows to evaluate (default 16). */
  windows?: number;
  /** Windows per forward (default 4). */
  batch?: number;
  /** A feature firing on more than this fraction of tokens is dense (default 0.1). */
  denseThreshold?: number;
  /** Called after each batch of windows with the windows done and the total. */
  progress?: (done: number, total: number) => void;
}

/** An SAE's evaluation (see the module comment for each figure's definition). */
export interface SaeEvaluation {
  tokens: number;
  l0: number;
  explainedVariance: number;
  mse: number;
  cosineSimilarity: number;
  ceClean: number;
  ceSpliced: number;
  ceAblated: number;
  ceLossScore: number;
  klSpliced: number;
  klAblated: number;
  klScore: number;
  deadFraction: number;
  denseFraction: number;
  /** Per feature: fraction of tokens on which it fired. */
  density: Float32Array;
  /** Counts of features by log10 density in bins [-8,-7), …, [-1,0]; dead features are counted in `dead`. */
  densityHistogram: { edges: number[]; counts: number[]; dead: number };
}

/** Per-position log-softmax statistics of logits [batch, seq, vocab]: log-probs of the next tokens and KL to a reference. */
function logProbs(logits: Tensor, b: number, p: number): Float64Array {
  const V = logits.shape[2];
  const row = logits.f32.subarray((b * logits.shape[1] + p) * V, (b * logits.shape[1] + p + 1) * V);
  let max = -Infinity;
  for (let v = 0; v < V; v++) if (row[v] > max) max = row[v];
  let z = 0;
  for (let v = 0; v < V; v++) z += Math.exp(row[v] - max);
  const lz = max + Math.log(z);
  const out = new Float64Array(V);
  for (let v = 0; v < V; v++) out[v] = row[v] - lz;
  return out;
}

/** Evaluates `sae` spliced into `model` over consecutive windows of `tokens`. */
export async function evaluateSae(model: HookedTransformer, sae: Sae, tokens: ArrayLike<number>, opts: EvaluateOptions = {}): Promise<SaeEvaluation> {
  checkSaeFits(model, sae);
  if (sae.cfg.architecture === 'transcoder') throw new LanternError('evaluateSae measures SAEs that reconstruct their own hook; transcoders are not supported yet');
  const context = opts.context ?? Math.min(128, model.cfg.nCtx);
  const windows = Math.min(opts.windows ?? 16, Math.floor(tokens.length / context));
  if (windows < 1) throw new LanternError(`the evaluation stream has ${tokens.length} tokens, fewer than one window of ${context}`);
  const per = opts.batch ?? 4;
  const hook = sae.cfg.hookName;
  const { dIn, dSae } = sae.cfg;
  const fired = new Float64Array(dSae);
  let n = 0, l0 = 0, resid = 0, cos = 0, predicted = 0;
  let ceClean = 0, ceSpliced = 0, ceAblated = 0, klSpliced = 0, klAblated = 0;
  const xs: Float32Array[] = [];
  const sums = new Float64Array(dIn);
  const sqs = new Float64Array(dIn);
  for (let w = 0; w < windows; w += per) {
    const batch = Array.from({ length: Math.min(per, windows - w) }, (_, b) => Array.from({ length: context }, (_, i) => tokens[(w + b) * context + i]));
    const clean = await model.runWithCache(batch, [hook]);
    const spliced = await runWithSaes(model, batch, [{ sae }]);
    const ablated = await model.runWithHooks(batch, { interventions: [{ hook, op: 'zero' }] });
    const x = clean.cache.get(hook).f32;
    const out = spliced.cache.get(`${hook}.hook_sae_recons`).f32;
    const acts = spliced.cache.get(`${hook}.hook_sae_acts_post`).f32;
    const rows = batch.length * context;
    xs.push(x);
    for (let r = 0; r < rows; r++) {
      let dd = 0, xx = 0, yy = 0, xy = 0;
      for (let i = 0; i < dIn; i++) {
        const a = x[r * dIn + i], c = out[r * dIn + i];
        dd += (a - c) ** 2; xx += a * a; yy += c * c; xy += a * c;
        sums[i] += a; sqs[i] += a * a;
      }
      resid += dd;
      cos += xy / Math.sqrt(xx * yy || 1);
      for (let j = 0; j < dSae; j++) if (acts[r * dSae + j] > 0) { fired[j]++; l0++; }
    }
    n += rows;
    for (let b = 0; b < batch.length; b++) for (let p = 0; p + 1 < context; p++) {
      const next = batch[b][p + 1];
      const lc = logProbs(clean.logits, b, p), ls = logProbs(spliced.logits, b, p), la = logProbs(ablated.logits, b, p);
      ceClean -= lc[next]; ceSpliced -= ls[next]; ceAblated -= la[next];
      let ks = 0, ka = 0;
      for (let v = 0; v < lc.length; v++) {
        const pc = Math.exp(lc[v]);
        ks += pc * (lc[v] - ls[v]);
        ka += pc * (lc[v] - la[v]);
      }
      klSpliced += ks; klAblated += ka;
      predicted++;
    }
    opts.progress?.(Math.min(w + per, windows), windows);
  }
  // total variance around the mean activation over all evaluated tokens
  let total = 0;
  for (let i = 0; i < dIn; i++) total += sqs[i] - (sums[i] * sums[i]) / n;
  const density = Float32Array.from(fired, (f) => f / n);
  const edges = [-8, -7, -6, -5, -4, -3, -2, -1, 0];
  const counts = new Array(edges.length - 1).fill(0);
  let dead = 0;
  for (const d of density) {
    if (d === 0) { dead++; continue; }
    const bin = Math.min(edges.length - 2, Math.max(0, Math.floor(Math.log10(d)) + 8));
    counts[bin]++;
  }
  const dense = opts.denseThreshold ?? 0.1;
  const ce = { clean: ceClean / predicted, spliced: ceSpliced / predicted, ablated: ceAblated / predicted };
  const kl = { spliced: klSpliced / predicted, ablated: klAblated / predicted };
  return {
    tokens: n,
    l0: l0 / n,
    explainedVariance: 1 - resid / total,
    mse: resid / (n * dIn),
    cosineSimilarity: cos / n,
    ceClean: ce.clean,
    ceSpliced: ce.spliced,
    ceAblated: ce.ablated,
    ceLossScore: (ce.ablated - ce.spliced) / (ce.ablated - ce.clean),
    klSpliced: kl.spliced,
    klAblated: kl.ablated,
    klScore: 1 - kl.spliced / kl.ablated,
    deadFraction: dead / dSae,
    denseFraction: density.filter((d) => d > dense).length / dSae,
    density,
    densityHistogram: { edges, counts, dead },
  };
}
