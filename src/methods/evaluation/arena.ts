/**
 * Arena rankings from pairwise battles, as Chatbot Arena computes them (Chiang et al. 2024, and
 * FastChat's elo_analysis):
 *
 *   Bradley–Terry  P(i beats j) = 1 / (1 + base^((R_j − R_i) / scale)), fitted by maximum
 *                  likelihood. A tie counts as half a win for each side (FastChat duplicates every
 *                  win and adds each tie once in each direction: the same weights). Ratings are
 *                  init + scale · β with Σβ = 0 — what FastChat's unpenalised logistic regression
 *                  without intercept converges to from zero (its gradient never leaves that
 *                  subspace). Newton's method on the pairwise win matrix: the problem is tiny
 *                  (one row and column per model), so a hand-written solver beats a dependency.
 *   intervals      percentile bootstrap over battles (resampled with replacement); a model's rank
 *                  is 1 + the number of models whose interval lies wholly above its own.
 *                  With `pseudoTies`, that many virtual ties between every two models that met
 *                  keep the ratings finite when a model never won or never lost.
 *   online Elo     one pass over the battles in order, K = 4 by default, ties scoring 0.5.
 *   win rates      the fraction of non-tied battles row beat column; and the expected win rate
 *                  between any two models from their Bradley–Terry ratings.
 */
import { LanternError } from '../../errors.js';
import { Rng } from '../../rng.js';
import type { Battle } from './judge.js';

/** How ratings are scaled and intervals drawn. */
export interface ArenaOptions {
  /** Bootstrap resamples for the intervals (default 100; 0 for none). */
  bootstrap?: number;
  /** Seeds the resampling (default 0). */
  seed?: number;
  /** Rating points per factor of `base` in odds (default 400). */
  scale?: number;
  /** Default 10. */
  base?: number;
  /** The mean rating (default 1000). */
  init?: number;
  /** Online Elo's step (default 4, as Chatbot Arena). */
  k?: number;
  /** Interval coverage (default 0.95). */
  level?: number;
  /**
   * Virtual ties added between every two models that met (default 0). A model that never won (or
   * never lost) has no finite maximum-likelihood rating; a few virtual ties act as a weak prior
   * that pulls ratings together, making them finite. Chatbot Arena uses none.
   */
  pseudoTies?: number;
  /** Called after each bootstrap resample. */
  progress?: (done: number, total: number) => void;
}

/** One model's place on the leaderboard. */
export interface ArenaEntry {
  model: string;
  /** Bradley–Terry rating. */
  rating: number;
  /** Bootstrap interval of the rating (equal to it when bootstrap is 0). */
  lower: number;
  upper: number;
  /** 1 + the number of models whose interval lies wholly above this one's. */
  rank: number;
  /** Online Elo rating. */
  elo: number;
  battles: number;
  wins: number;
  losses: number;
  ties: number;
  /** Expected win rate against a uniformly chosen other model, from the ratings. */
  expectedWinRate: number;
}

/** A leaderboard with its win-rate matrices. */
export interface ArenaReport {
  method: 'arena';
  settings: Required<Omit<ArenaOptions, 'progress'>>;
  /** Best first. */
  leaderboard: ArenaEntry[];
  /** Model order of the matrices (the leaderboard's). */
  models: string[];
  /** winRate[i][j]: fraction of non-tied battles i won against j (null where they never met without a tie). */
  winRate: (number | null)[][];
  /** expected[i][j]: P(i beats j) from the Bradley–Terry ratings. */
  expected: number[][];
  /** Battles between each pair (ties included). */
  counts: number[][];
  /** Bootstrap resamples where some model never won or never lost, so its rating was unbounded; they are left out. */
  bootstrapSkipped: number;
}

const WINNERS = ['model_a', 'model_b', 'tie', 'tie (bothbad)'] as const;

/** Checks battles, naming the first bad one; returns the model names in first-seen order. */
export function checkBattles(battles: Battle[]): string[] {
  if (!battles.length) throw new LanternError('no battles to rank');
  const seen = new Set<string>();
  battles.forEach((b, i) => {
    if (typeof b.model_a !== 'string' || typeof b.model_b !== 'string' || !b.model_a || !b.model_b) throw new LanternError(`battle ${i + 1}: model_a and model_b must be model names`);
    if (b.model_a === b.model_b) throw new LanternError(`battle ${i + 1}: model '${b.model_a}' against itself`);
    if (!(WINNERS as readonly string[]).includes(b.winner)) throw new LanternError(`battle ${i + 1}: winner ${JSON.stringify(b.winner)} is not one of ${WINNERS.join(', ')}`);
    seen.add(b.model_a);
    seen.add(b.model_b);
  });
  if (seen.size < 2) throw new LanternError('battles need at least two models');
  return [...seen];
}

/** W[i][j]: wins of i over j, a tie counting half for each. */
function winMatrix(battles: Battle[], index: Map<string, number>, n: number, pseudoTies: number, pick?: Uint32Array): Float64Array {
  const w = new Float64Array(n * n);
  const count = pick ? pick.length : battles.length;
  for (let t = 0; t < count; t++) {
    const b = battles[pick ? pick[t] : t];
    const a = index.get(b.model_a)!;
    const c = index.get(b.model_b)!;
    if (b.winner === 'model_a') w[a * n + c] += 1;
    else if (b.winner === 'model_b') w[c * n + a] += 1;
    else {
      w[a * n + c] += 0.5;
      w[c * n + a] += 0.5;
    }
  }
  if (pseudoTies > 0) {
    for (let i = 0; i < n; i++) {
      for (let j = i + 1; j < n; j++) {
        if (w[i * n + j] + w[j * n + i] === 0) continue;
        w[i * n + j] += pseudoTies / 2;
        w[j * n + i] += pseudoTies / 2;
      }
    }
  }
  return w;
}

/**
 * The maximum-likelihood log-strengths (Σθ = 0), or null when they are unbounded: some group of
 * models never lost to the rest (the comparison graph is not strongly connected).
 */
export function fitLogStrengths(w: Float64Array, n: number): Float64Array | null {
  // Zermelo's condition: every model reaches every other through "beat or tied" edges.
  const reach = (from: number, forward: boolean) => {
    const seen = new Uint8Array(n);
    const stack = [from];
    seen[from] = 1;
    while (stack.length) {
      const i = stack.pop()!;
      for (let j = 0; j < n; j++) if (!seen[j] && (forward ? w[i * n + j] : w[j * n + i]) > 0) { seen[j] = 1; stack.push(j); }
    }
    return seen.every((s) => s === 1);
  };
  if (!reach(0, true) || !reach(0, false)) return null;
  const theta = new Float64Array(n);
  const g = new Float64Array(n);
  const h = new Float64Array(n * n);
  for (let iter = 0; iter < 200; iter++) {
    g.fill(0);
    h.fill(0);
    for (let i = 0; i < n; i++) {
      for (let j = 0; j < n; j++) {
        if (i === j) continue;
        const nij = w[i * n + j] + w[j * n + i];
        if (nij === 0) continue;
        const p = 1 / (1 + Math.exp(theta[j] - theta[i]));
        g[i] += w[i * n + j] - nij * p;
        const curv = nij * p * (1 - p);
        h[i * n + i] += curv;
        h[i * n + j] -= curv;
      }
    }
    let gmax = 0;
    for (let i = 0; i < n; i++) gmax = Math.max(gmax, Math.abs(g[i]));
    if (gmax < 1e-11) return theta;
    // The negative Hessian is singular along 1 (a shift changes nothing); adding 11ᵀ/n fixes the shift at zero.
    for (let i = 0; i < n; i++) for (let j = 0; j < n; j++) h[i * n + j] += 1 / n;
    const step = solve(h, g, n);
    let s = 0;
    for (let i = 0; i < n; i++) { theta[i] += step[i]; s += theta[i]; }
    for (let i = 0; i < n; i++) theta[i] -= s / n;
  }
  return theta;
}

/** Solves A x = b (A symmetric positive definite, n small) by Gaussian elimination with partial pivoting. */
function solve(a: Float64Array, b: Float64Array, n: number): Float64Array {
  const m = Float64Array.from(a);
  const x = Float64Array.from(b);
  for (let c = 0; c < n; c++) {
    let p = c;
    for (let r = c + 1; r < n; r++) if (Math.abs(m[r * n + c]) > Math.abs(m[p * n + c])) p = r;
    if (p !== c) {
      for (let k = 0; k < n; k++) [m[c * n + k], m[p * n + k]] = [m[p * n + k], m[c * n + k]];
      [x[c], x[p]] = [x[p], x[c]];
    }
    for (let r = c + 1; r < n; r++) {
      const f = m[r * n + c] / m[c * n + c];
      if (f === 0) continue;
      for (let k = c; k < n; k++) m[r * n + k] -= f * m[c * n + k];
      x[r] -= f * x[c];
    }
  }
  for (let c = n - 1; c >= 0; c--) {
    let s = x[c];
    for (let k = c + 1; k < n; k++) s -= m[c * n + k] * x[k];
    x[c] = s / m[c * n + c];
  }
  return x;
}

/** Bradley–Terry ratings by maximum likelihood (ties as half wins), by model name. */
export function bradleyTerry(battles: Battle[], opts: Pick<ArenaOptions, 'scale' | 'base' | 'init' | 'pseudoTies'> = {}): Record<string, number> {
  const models = checkBattles(battles);
  const index = new Map(models.map((m, i) => [m, i]));
  const pseudo = opts.pseudoTies ?? 0;
  if (!(pseudo >= 0) || !Number.isFinite(pseudo)) throw new LanternError(`pseudoTies must be a number ≥ 0, got ${pseudo}`);
  const theta = fitLogStrengths(winMatrix(battles, index, models.length, pseudo), models.length);
  if (!theta) throw new LanternError(`the Bradley–Terry ratings are unbounded: ${unboundedWhy(battles, models)}; add a few virtual ties between models that met (pseudoTies, --pseudo-ties 1) for finite ratings`);
  const f = (opts.scale ?? 400) / Math.log(opts.base ?? 10);
  return Object.fromEntries(models.map((m, i) => [m, (opts.init ?? 1000) + f * theta[i]]));
}

function unboundedWhy(battles: Battle[], models: string[]): string {
  for (const m of models) {
    const mine = battles.filter((b) => b.model_a === m || b.model_b === m);
    const lost = mine.some((b) => b.winner.startsWith('tie') || (b.model_a === m ? b.winner === 'model_b' : b.winner === 'model_a'));
    const won = mine.some((b) => b.winner.startsWith('tie') || (b.model_a === m ? b.winner === 'model_a' : b.winner === 'model_b'));
    if (!lost) return `'${m}' never lost or tied`;
    if (!won) return `'${m}' never won or tied`;
  }
  return 'the models split into groups where one group never lost to the other';
}

/** Online Elo over the battles in order (ties score 0.5), by model name. */
export function onlineElo(battles: Battle[], opts: Pick<ArenaOptions, 'scale' | 'base' | 'init' | 'k'> = {}): Record<string, number> {
  const models = checkBattles(battles);
  const { scale = 400, base = 10, init = 1000, k = 4 } = opts;
  const r = new Map(models.map((m) => [m, init]));
  for (const b of battles) {
    const ra = r.get(b.model_a)!;
    const rb = r.get(b.model_b)!;
    const ea = 1 / (1 + base ** ((rb - ra) / scale));
    const sa = b.winner === 'model_a' ? 1 : b.winner === 'model_b' ? 0 : 0.5;
    r.set(b.model_a, ra + k * (sa - ea));
    r.set(b.model_b, rb + k * (1 - sa - (1 - ea)));
  }
  return Object.fromEntries(r);
}

/** P(a beats b) from two ratings. */
export function expectedWinRate(ra: number, rb: number, opts: Pick<ArenaOptions, 'scale' | 'base'> = {}): number {
  return 1 / (1 + (opts.base ?? 10) ** ((rb - ra) / (opts.scale ?? 400)));
}

/** Linear-interpolation quantile of sorted values (NumPy's default). */
function quantile(sorted: number[], q: number): number {
  const at = (sorted.length - 1) * q;
  const lo = Math.floor(at);
  const hi = Math.ceil(at);
  return sorted[lo] + (sorted[hi] - sorted[lo]) * (at - lo);
}

/** The full leaderboard: Bradley–Terry ratings with bootstrap intervals and ranks, online Elo, win-rate matrices. */
export function arena(battles: Battle[], opts: ArenaOptions = {}): ArenaReport {
  const settings = {
    bootstrap: opts.bootstrap ?? 100, seed: opts.seed ?? 0, pseudoTies: opts.pseudoTies ?? 0, scale: opts.scale ?? 400, base: opts.base ?? 10, init: opts.init ?? 1000, k: opts.k ?? 4, level: opts.level ?? 0.95,
  };
  if (!Number.isInteger(settings.bootstrap) || settings.bootstrap < 0) throw new LanternError(`bootstrap must be an integer ≥ 0, got ${settings.bootstrap}`);
  if (!(settings.level > 0 && settings.level < 1)) throw new LanternError(`level must lie strictly between 0 and 1, got ${settings.level}`);
  if (!(settings.scale > 0) || !(settings.base > 1)) throw new LanternError(`scale must be > 0 and base > 1, got ${settings.scale} and ${settings.base}`);
  const names = checkBattles(battles);
  const n = names.length;
  const index = new Map(names.map((m, i) => [m, i]));
  const rating = bradleyTerry(battles, settings);
  const elo = onlineElo(battles, settings);
  const f = settings.scale / Math.log(settings.base);
  const samples: number[][] = names.map(() => []);
  let skipped = 0;
  const rng = new Rng(settings.seed);
  const pick = new Uint32Array(battles.length);
  for (let b = 0; b < settings.bootstrap; b++) {
    for (let t = 0; t < pick.length; t++) pick[t] = rng.int(battles.length);
    const theta = fitLogStrengths(winMatrix(battles, index, n, settings.pseudoTies, pick), n);
    if (!theta) skipped++;
    else theta.forEach((v, i) => samples[i].push(settings.init + f * v));
    opts.progress?.(b + 1, settings.bootstrap);
  }
  const alpha = (1 - settings.level) / 2;
  const bounds = names.map((m, i) => {
    if (!samples[i].length) return { lower: rating[m], upper: rating[m] };
    const s = [...samples[i]].sort((a, b) => a - b);
    return { lower: quantile(s, alpha), upper: quantile(s, 1 - alpha) };
  });
  const order = names.map((_, i) => i).sort((a, b) => rating[names[b]] - rating[names[a]]);
  const models = order.map((i) => names[i]);
  const counts = models.map(() => models.map(() => 0));
  const wins = models.map(() => models.map(() => 0));
  const pos = new Map(models.map((m, i) => [m, i]));
  for (const b of battles) {
    const a = pos.get(b.model_a)!;
    const c = pos.get(b.model_b)!;
    counts[a][c]++;
    counts[c][a]++;
    if (b.winner === 'model_a') wins[a][c]++;
    else if (b.winner === 'model_b') wins[c][a]++;
  }
  const winRate = models.map((_, i) => models.map((_, j) => (i === j || wins[i][j] + wins[j][i] === 0 ? null : wins[i][j] / (wins[i][j] + wins[j][i]))));
  const expected = models.map((a) => models.map((b) => (a === b ? 0.5 : expectedWinRate(rating[a], rating[b], settings))));
  const leaderboard: ArenaEntry[] = order.map((i) => {
    const m = names[i];
    const mine = battles.filter((b) => b.model_a === m || b.model_b === m);
    const w = mine.filter((b) => (b.model_a === m ? b.winner === 'model_a' : b.winner === 'model_b')).length;
    const t = mine.filter((b) => b.winner.startsWith('tie')).length;
    const p = pos.get(m)!;
    return {
      model: m, rating: rating[m], lower: bounds[i].lower, upper: bounds[i].upper,
      rank: 1 + names.filter((_, j) => bounds[j].lower > bounds[i].upper).length,
      elo: elo[m], battles: mine.length, wins: w, losses: mine.length - w - t, ties: t,
      expectedWinRate: expected[p].reduce((s, v, j) => s + (j === p ? 0 : v), 0) / (n - 1),
    };
  });
  return { method: 'arena', settings, leaderboard, models, winRate, expected, counts, bootstrapSkipped: skipped };
}

/** Battles from rows (JSONL/CSV/Parquet): columns model_a, model_b, winner. */
export function battlesFromRows(rows: Record<string, unknown>[], file = 'battles'): Battle[] {
  if (!rows.length) throw new LanternError(`${file} has no battles`);
  for (const c of ['model_a', 'model_b', 'winner']) if (!(c in rows[0])) throw new LanternError(`${file} has no column '${c}' (battles need model_a, model_b, winner); columns: ${Object.keys(rows[0]).join(', ')}`);
  const out = rows.map((r) => ({ model_a: String(r.model_a), model_b: String(r.model_b), winner: String(r.winner) as Battle['winner'], ...(r.question_id !== undefined ? { question_id: String(r.question_id) } : {}) }));
  try {
    checkBattles(out);
  } catch (e) {
    throw new LanternError(`${file}: ${(e as Error).message}`);
  }
  return out;
}
