/**
 * Faithfulness of an attribution (ERASER, DeYoung et al. 2020; ferret's AOPC and τ_loo), per row.
 * f is the row's own score (the target's logit / log-prob / probability / logit difference), and
 * "removing" a token masks it as occlusion does (zero embedding, or a baseline token): the length
 * and positions are kept, unlike ferret, which deletes tokens.
 *
 *   r_k                   the k prompt tokens with the highest scores (ties: earlier token first),
 *                         for k = ceil(q·n), q ∈ {10%, 20%, …, 100%}; a k already used is skipped
 *                         (ferret skips duplicate rationales), so short prompts have fewer ks.
 *   comprehensiveness(k)  f(x) − f(x ∖ r_k)          higher is better
 *   sufficiency(k)        f(x) − f(r_k only)         lower is better
 *   AOPC                  the plain mean over the ks of each (ferret's aopc_compr / aopc_suff).
 *   τ_loo                 Kendall's τ_b between the scores and the leave-one-out drops
 *                         f(x) − f(x ∖ {i}); null when either is constant.
 */
import type { HookedTransformer } from '../../models/hooked.js';
import { leaveOneOutMasks, maskedValues, Masking } from './perturbation.js';
import type { ResolvedTarget } from './targets.js';

export const AOPC_FRACTIONS = [0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0];

export interface FaithfulnessRow {
  /** The rationale sizes used. */
  k: number[];
  comprehensiveness: number[];
  sufficiency: number[];
  aopcComprehensiveness: number;
  aopcSufficiency: number;
  /** Leave-one-out drops f(x) − f(x ∖ {i}). */
  leaveOneOut: number[];
  kendallTauLoo: number | null;
}

export interface Faithfulness {
  masking: Masking;
  fractions: number[];
  rows: FaithfulnessRow[];
}

/** Distinct rationale sizes ceil(q·n), in increasing order. */
export function rationaleSizes(n: number, fractions = AOPC_FRACTIONS): number[] {
  const ks: number[] = [];
  for (const q of fractions) {
    const k = Math.min(n, Math.max(1, Math.ceil(q * n - 1e-9)));
    if (!ks.includes(k)) ks.push(k);
  }
  return ks;
}

/** Token indices by decreasing score (stable: earlier first among ties). */
export function ranking(scores: number[]): number[] {
  return scores.map((s, i) => [s, i] as const).sort((a, b) => b[0] - a[0] || a[1] - b[1]).map(([, i]) => i);
}

/** Kendall's τ_b (ties corrected); null when a side is constant. */
export function kendallTau(a: number[], b: number[]): number | null {
  let c = 0;
  let d = 0;
  let ta = 0;
  let tb = 0;
  for (let i = 0; i < a.length; i++) {
    for (let j = i + 1; j < a.length; j++) {
      const x = Math.sign(a[i] - a[j]);
      const y = Math.sign(b[i] - b[j]);
      if (x === 0 && y === 0) continue;
      if (x === 0) ta++;
      else if (y === 0) tb++;
      else if (x === y) c++;
      else d++;
    }
  }
  const den = Math.sqrt((c + d + ta) * (c + d + tb));
  return den === 0 ? null : (c - d) / den;
}

/**
 * The masks one row needs (variant 0: nothing masked; then r_k removed, r_k kept for each k;
 * then leave-one-out), and how to turn f on those masks into the metrics.
 */
export function faithfulnessPlan(scores: number[], fractions = AOPC_FRACTIONS) {
  const n = scores.length;
  const order = ranking(scores);
  const ks = rationaleSizes(n, fractions);
  const top = (k: number) => new Set(order.slice(0, k));
  const masks: boolean[][] = [new Array(n).fill(false)];
  for (const k of ks) {
    const r = top(k);
    masks.push(scores.map((_, i) => r.has(i))); // remove r_k
    masks.push(scores.map((_, i) => !r.has(i))); // keep only r_k
  }
  masks.push(...leaveOneOutMasks(n));
  const assemble = (f: number[]): FaithfulnessRow => {
    const fx = f[0];
    const comprehensiveness = ks.map((_, j) => fx - f[1 + 2 * j]);
    const sufficiency = ks.map((_, j) => fx - f[2 + 2 * j]);
    const leaveOneOut = f.slice(1 + 2 * ks.length).map((v) => fx - v);
    const mean = (xs: number[]) => xs.reduce((p, q) => p + q, 0) / xs.length;
    return {
      k: ks, comprehensiveness, sufficiency,
      aopcComprehensiveness: mean(comprehensiveness), aopcSufficiency: mean(sufficiency),
      leaveOneOut, kendallTauLoo: kendallTau(scores, leaveOneOut),
    };
  };
  return { masks, assemble };
}

/** Faithfulness of `scores` (one array per target row) on the model, all masked inputs batched. */
export async function evaluateFaithfulness(
  model: HookedTransformer, t: ResolvedTarget, scores: number[][], opts: { mask?: Masking; batchSize?: number } = {},
): Promise<Faithfulness> {
  const mask = opts.mask ?? 'zero';
  const rows: FaithfulnessRow[] = [];
  for (let r = 0; r < t.rows.length; r++) {
    const plan = faithfulnessPlan(scores[r]);
    const sub: ResolvedTarget = { ...t, rows: [t.rows[r]] };
    const [f] = await maskedValues(model, sub, plan.masks, { mask, batchSize: opts.batchSize });
    rows.push(plan.assemble(f));
  }
  return { masking: mask, fractions: AOPC_FRACTIONS, rows };
}
