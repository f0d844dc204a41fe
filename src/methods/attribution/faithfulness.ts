/**
 * Faithfulness of an attribution (ERASER, DeYoung et al. 2020; ferret's AOPC and τ_loo), per row.
 * f is the row's own score (the target's logit / log-prob / probability / logit difference), and
 * "removing" a token masks it as occlusion does (zero embedding, or a baseline token): the length
 * and positions are kept, unlike ferret, which deletes tokens.
 *
 *   r_k                   the k prompt tokens with the highest scores (ties: earlier token first),
 *                         for k = ceil(q·n), q ∈ `fractions`: 'ferret' (default) {10%, 20%, …,
 *                         100%}, or 'eraser' {1%, 5%, 10%, 20%, 50%} (DeYoung et al.'s bins); a k
 *                         already used is skipped (ferret skips duplicate rationales), so short
 *                         prompts have fewer ks.
 *   comprehensiveness(k)  f(x) − f(x ∖ r_k)          higher is better
 *   sufficiency(k)        f(x) − f(r_k only)         lower is better
 *   AOPC                  the plain mean over the ks of each (ferret's aopc_compr / aopc_suff and
 *                         ERASER's code; the ERASER paper's 1/(|B|+1) also counts a k = 0 term of 0).
 *   τ_loo                 Kendall's τ_b between the scores and the leave-one-out drops
 *                         f(x) − f(x ∖ {i}); null when either is constant.
 *   deletion curve        D_k = f(x ∖ r_k), k = 0 … n: tokens masked one at a time in decreasing
 *                         score order, starting from the whole prompt (RISE, Petsiuk et al. 2018).
 *   insertion curve       I_k = f(r_k only), k = 0 … n: starting from the fully masked prompt, the
 *                         tokens unmasked in the same order. D_0 = I_n = f(x), D_n = I_0 = f(∅).
 *   deletion / insertion AUC   the trapezoid area under the curve over the fraction k/n ∈ [0, 1],
 *                         i.e. (1/n) Σ_k (C_{k−1} + C_k)/2, in f's own units; normalised as
 *                         (AUC − f(∅)) / (f(x) − f(∅)), so f(x) maps to 1 and the fully masked prompt
 *                         to 0 whatever the target's units (log-prob, logit, probability): an
 *                         immediate drop gives a deletion AUC near 0, an immediate recovery an
 *                         insertion AUC near 1. Lower deletion and higher insertion are better.
 *                         The normalised AUCs are null when f(x) = f(∅), and leave [0, 1] when a
 *                         curve passes below f(∅) or above f(x) (masking some tokens can help f).
 * Every distinct masked prompt is evaluated once (the curves contain r_k and its complement, and
 * leave-one-out of the top and bottom tokens), all batched: about 3n + 1 runs per row.
 */
import { LanternError } from '../../errors.js';
import type { HookedTransformer } from '../../models/hooked.js';
import { leaveOneOutMasks, maskedValues, Masking } from './perturbation.js';
import type { ResolvedTarget } from './targets.js';

/** Rationale fractions 10%, 20%, …, 100% for comprehensiveness and sufficiency. */
export const AOPC_FRACTIONS = [0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0];
/** ERASER's rationale bins (DeYoung et al. 2020). */
export const ERASER_FRACTIONS = [0.01, 0.05, 0.1, 0.2, 0.5];
/** Which fractions AOPC averages over (see {@link AOPC_BINS}). */
export type AopcBins = 'ferret' | 'eraser';
/** The rationale fractions of each AOPC convention: `ferret` (10%…100%) and `eraser` (1, 5, 10, 20, 50%). */
export const AOPC_BINS: Record<AopcBins, number[]> = { ferret: AOPC_FRACTIONS, eraser: ERASER_FRACTIONS };

/** The rationale fractions for a preset name or an explicit list of fractions in (0, 1]. */
export function checkFractions(f: AopcBins | number[] | undefined): number[] {
  if (f === undefined) return AOPC_FRACTIONS;
  if (typeof f === 'string') {
    if (!(f in AOPC_BINS)) throw new LanternError(`unknown AOPC bins '${f}'; use ${Object.keys(AOPC_BINS).join(' or ')}, or a list of fractions`);
    return AOPC_BINS[f];
  }
  if (!Array.isArray(f) || f.length === 0 || f.some((q) => typeof q !== 'number' || !(q > 0 && q <= 1))) {
    throw new LanternError(`AOPC fractions must be a non-empty list of numbers in (0, 1], got ${JSON.stringify(f)}`);
  }
  return [...new Set(f)].sort((a, b) => a - b);
}

/** One target row's faithfulness: comprehensiveness, sufficiency, AOPC, Kendall τ against leave-one-out, deletion and insertion AUC. */
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
  /** f after masking the top k tokens, k = 0 … n. */
  deletionCurve: number[];
  /** f with only the top k tokens unmasked, k = 0 … n. */
  insertionCurve: number[];
  /** Trapezoid area under each curve over k/n ∈ [0, 1], in f's units. */
  deletionAuc: number;
  insertionAuc: number;
  /** (AUC − f(∅)) / (f(x) − f(∅)); null when f(x) = f(∅). */
  deletionAucNormalized: number | null;
  insertionAucNormalized: number | null;
}

/** Faithfulness of an attribution: per target row, how much the output depends on the tokens it ranks highest. */
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

/** Trapezoid area under c_0 … c_n over the fraction axis k/n ∈ [0, 1]. */
export function curveAuc(c: number[]): number {
  const n = c.length - 1;
  if (n < 1) throw new LanternError('a curve needs at least two points');
  let a = 0;
  for (let k = 1; k <= n; k++) a += (c[k - 1] + c[k]) / 2;
  return a / n;
}

/**
 * The distinct masks one row needs (true = masked; mask 0 is nothing masked), and how to turn f
 * on those masks into the metrics.
 */
export function faithfulnessPlan(scores: number[], fractions = AOPC_FRACTIONS) {
  const n = scores.length;
  const order = ranking(scores);
  const ks = rationaleSizes(n, fractions);
  const masks: boolean[][] = [];
  const index = new Map<string, number>();
  const need = (m: boolean[]): number => {
    const key = m.map((b) => (b ? 1 : 0)).join('');
    let i = index.get(key);
    if (i === undefined) { i = masks.length; index.set(key, i); masks.push(m); }
    return i;
  };
  const topK = (k: number) => { const r = new Set(order.slice(0, k)); return scores.map((_, i) => r.has(i)); };
  const full = need(new Array(n).fill(false));
  const del = Array.from({ length: n + 1 }, (_, k) => need(topK(k))); // remove r_k
  const ins = Array.from({ length: n + 1 }, (_, k) => need(topK(k).map((b) => !b))); // keep only r_k
  const loo = leaveOneOutMasks(n).map(need);
  /** Turns the target's values on `masks` (in order) into the row's metrics. */
  const assemble = (f: number[]): FaithfulnessRow => {
    const fx = f[full];
    const comprehensiveness = ks.map((k) => fx - f[del[k]]);
    const sufficiency = ks.map((k) => fx - f[ins[k]]);
    const leaveOneOut = loo.map((i) => fx - f[i]);
    const mean = (xs: number[]) => xs.reduce((p, q) => p + q, 0) / xs.length;
    const deletionCurve = del.map((i) => f[i]);
    const insertionCurve = ins.map((i) => f[i]);
    const deletionAuc = curveAuc(deletionCurve);
    const insertionAuc = curveAuc(insertionCurve);
    const empty = f[del[n]];
    const norm = (a: number) => (fx === empty ? null : (a - empty) / (fx - empty));
    return {
      k: ks, comprehensiveness, sufficiency,
      aopcComprehensiveness: mean(comprehensiveness), aopcSufficiency: mean(sufficiency),
      leaveOneOut, kendallTauLoo: kendallTau(scores, leaveOneOut),
      deletionCurve, insertionCurve, deletionAuc, insertionAuc,
      deletionAucNormalized: norm(deletionAuc), insertionAucNormalized: norm(insertionAuc),
    };
  };
  return { masks, assemble };
}

/** Faithfulness of `scores` (one array per target row) on the model, all masked inputs batched. */
export async function evaluateFaithfulness(
  model: HookedTransformer, t: ResolvedTarget, scores: number[][],
  opts: { mask?: Masking; batchSize?: number; fractions?: AopcBins | number[]; columns?: number[] } = {},
): Promise<Faithfulness> {
  const mask = opts.mask ?? 'zero';
  // Scores may cover only some prompt positions (special tokens left out); the rest are never masked.
  const columns = opts.columns ?? Array.from({ length: t.promptLength }, (_, i) => i);
  const toPrompt = (m: boolean[]) => {
    const full = new Array(t.promptLength).fill(false);
    m.forEach((on, c) => { full[columns[c]] = on; });
    return full;
  };
  const fractions = checkFractions(opts.fractions);
  const rows: FaithfulnessRow[] = [];
  for (let r = 0; r < t.rows.length; r++) {
    const plan = faithfulnessPlan(scores[r], fractions);
    const sub: ResolvedTarget = { ...t, rows: [t.rows[r]] };
    const [f] = await maskedValues(model, sub, plan.masks.map(toPrompt), { mask, batchSize: opts.batchSize });
    rows.push(plan.assemble(f));
  }
  return { masking: mask, fractions, rows };
}
