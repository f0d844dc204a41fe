/**
 * Attention-head detectors, each a score for every layer x head from one batched run that caches
 * every layer's attention pattern once (no head is ever recomputed on its own):
 *
 *   previous-token   mean attention from t to t-1
 *   duplicate-token  mean attention from t to earlier positions holding the same token (queries whose token occurred before)
 *   induction        on repeated random sequences [r, r]: mean attention from t to the token after
 *                    the earlier copy of t's token (t-L+1, Olsson et al., 2022)
 *
 * and from the weights alone (circuits.ts): successor (Gould et al., 2023), OV copying and
 * suppression; and from ablations: copy suppression (McDougall et al., 2023); and on IOI
 * prompts: name movers (Wang et al., 2022).
 */
import { LanternError } from '../../errors.js';
import { Rng } from '../../rng.js';
import type { HookedTransformer } from '../../models/hooked.js';
import type { Tensor } from '../../engine/tensor.js';
import { ModelCircuits, HeadRef, matmul } from './circuits.js';

/** Scores by [layer][head]. */
export type HeadGrid = number[][];

/** The detectors scored from attention patterns alone, all in one run by {@link patternScores}. */
export const PATTERN_DETECTORS = ['previous-token', 'duplicate-token', 'induction'] as const;
/** One of {@link PATTERN_DETECTORS}. */
export type PatternDetector = (typeof PATTERN_DETECTORS)[number];

/** Random token sequences each repeated once, as {@link repeatedRandomSequences} makes them for the induction detector. */
export interface RepeatedSequences {
  /** Token ids, [n][2·half] (after an optional BOS). */
  tokens: number[][];
  /** Length of each random half, in tokens. */
  half: number;
  /** 1 when each row begins with the model's BOS, else 0. */
  offset: number;
}

/**
 * `n` sequences of `half` random tokens drawn without replacement from `pool`, each repeated
 * once: the induction detector's input (and a fine one for the others), deterministic in `seed`.
 * The model's BOS, if it uses one, goes first.
 */
export function repeatedRandomSequences(model: HookedTransformer, opts: { n?: number; half?: number; pool?: number[]; seed?: number } = {}): RepeatedSequences {
  const n = opts.n ?? 20;
  const bos = model.bos;
  const offset = bos === undefined ? 0 : 1;
  const half = opts.half ?? Math.min(32, Math.floor((model.cfg.nCtx - offset) / 2));
  const pool = opts.pool ?? Array.from({ length: model.cfg.dVocab }, (_, i) => i).filter((i) => i !== bos);
  if (!Number.isInteger(n) || n < 1) throw new LanternError(`the number of sequences must be a positive integer, got ${n}`);
  if (!Number.isInteger(half) || half < 2) throw new LanternError(`the half length must be an integer >= 2, got ${half}`);
  if (2 * half + offset > model.cfg.nCtx) throw new LanternError(`sequences of 2 x ${half} tokens${offset ? ' after BOS' : ''} are longer than the model's context of ${model.cfg.nCtx}`);
  if (pool.length < half) throw new LanternError(`the token pool has ${pool.length} tokens, fewer than the half length ${half}`);
  for (const t of pool) if (!Number.isInteger(t) || t < 0 || t >= model.cfg.dVocab) throw new LanternError(`pool token ${t} is outside the vocabulary [0, ${model.cfg.dVocab})`);
  const rng = new Rng((opts.seed ?? 0) >>> 0);
  const tokens = Array.from({ length: n }, () => {
    const a = pool.slice();
    for (let i = 0; i < half; i++) {
      const j = i + Math.floor(rng.next() * (a.length - i));
      [a[i], a[j]] = [a[j], a[i]];
    }
    const r = a.slice(0, half);
    return [...(offset ? [bos!] : []), ...r, ...r];
  });
  return { tokens, half, offset };
}

/** What {@link patternScores} returns: each pattern detector's mean attention score per head, and how many queries it averaged. */
export interface PatternScores {
  /** Detector -> [layer][head]. */
  scores: Record<PatternDetector, HeadGrid>;
  /** How many (prompt, query) pairs entered each detector's mean. */
  counts: Record<PatternDetector, number>;
}

/**
 * Every pattern detector for every head, over `rows` (token ids), in batches of `batchSize`.
 * `repeat`: the rows are [BOS?] r r with |r| = half (this enables the induction score; `offset`
 * is 1 when a BOS leads).
 */
export async function patternScores(
  model: HookedTransformer,
  rows: number[][],
  opts: { batchSize?: number; repeat?: { half: number; offset: number }; onBatch?: (done: number, total: number) => void } = {},
): Promise<PatternScores> {
  const { nLayers: L, nHeads: H } = model.cfg;
  const sums = Object.fromEntries(PATTERN_DETECTORS.map((d) => [d, Array.from({ length: L }, () => new Float64Array(H))])) as Record<PatternDetector, Float64Array[]>;
  const counts = Object.fromEntries(PATTERN_DETECTORS.map((d) => [d, 0])) as Record<PatternDetector, number>;
  const hooks = Array.from({ length: L }, (_, l) => `blocks.${l}.attn.hook_pattern`);
  const batchSize = opts.batchSize ?? 8;
  for (let start = 0; start < rows.length; start += batchSize) {
    const chunk = rows.slice(start, start + batchSize);
    // No detector reads logits: unembedding one position keeps the vocabulary matmul out of the pass.
    const { cache, batch } = await model.runWithHooks(chunk, { cache: hooks, logitPositions: [0] });
    const T = batch.seq;
    chunk.forEach((toks, b) => {
      const n = toks.length;
      // The queries each detector averages over, with the keys it sums for each.
      const prevQ: [number, number[]][] = [];
      const dupQ: [number, number[]][] = [];
      const indQ: [number, number[]][] = [];
      const seen = new Map<number, number[]>();
      for (let t = 0; t < n; t++) {
        if (t >= 1) prevQ.push([t, [t - 1]]);
        const earlier = seen.get(toks[t]);
        if (earlier) dupQ.push([t, earlier.slice()]);
        seen.set(toks[t], [...(earlier ?? []), t]);
      }
      if (opts.repeat) {
        const { half, offset } = opts.repeat;
        for (let t = offset + half; t < Math.min(n, offset + 2 * half); t++) indQ.push([t, [t - half + 1]]);
      }
      const plan: [PatternDetector, [number, number[]][]][] = [['previous-token', prevQ], ['duplicate-token', dupQ], ['induction', indQ]];
      for (let l = 0; l < L; l++) {
        const p = cache.get(hooks[l]).f32;
        for (let h = 0; h < H; h++) {
          const base = (b * H + h) * T * T;
          for (const [d, queries] of plan) {
            let s = 0;
            for (const [t, keys] of queries) for (const k of keys) s += p[base + t * T + k];
            sums[d][l][h] += s;
          }
        }
      }
      for (const [d, queries] of plan) counts[d] += queries.length;
    });
    opts.onBatch?.(Math.min(start + batchSize, rows.length), rows.length);
  }
  const scores = Object.fromEntries(PATTERN_DETECTORS.map((d) => [d, sums[d].map((row) => Array.from(row, (s) => (counts[d] ? s / counts[d] : 0)))])) as Record<PatternDetector, HeadGrid>;
  return { scores, counts };
}

// ---------------------------------------------------------------------------------------------
// Ordinal sequences and the successor score

/** Ordinal sequences, each listed in order; `cyclic` ones wrap (Sunday -> Monday). */
export const ORDINAL_SEQUENCES: { name: string; items: string[]; cyclic: boolean }[] = [
  { name: 'digits', items: ['0', '1', '2', '3', '4', '5', '6', '7', '8', '9'], cyclic: false },
  { name: 'numbers', items: ['one', 'two', 'three', 'four', 'five', 'six', 'seven', 'eight', 'nine', 'ten'], cyclic: false },
  { name: 'days', items: ['Monday', 'Tuesday', 'Wednesday', 'Thursday', 'Friday', 'Saturday', 'Sunday'], cyclic: true },
  { name: 'months', items: ['January', 'February', 'March', 'April', 'May', 'June', 'July', 'August', 'September', 'October', 'November', 'December'], cyclic: true },
  { name: 'letters', items: Array.from({ length: 26 }, (_, i) => String.fromCharCode(65 + i)), cyclic: false },
];

/** One ordinal sequence in one spelling whose items are all single tokens of a model (see {@link ordinalTokens}). */
export interface OrdinalTokens {
  /** The sequence's name in {@link ORDINAL_SEQUENCES} ('digits', 'days', …). */
  name: string;
  /** The variant used ('', ' ' before each item; capitalised or not). */
  variant: string;
  /** The items' token ids, in sequence order. */
  tokens: number[];
  /** Whether the last item is followed by the first (days, months). */
  cyclic: boolean;
}

/**
 * The ordinal sequences whose every item is one token of this model, in each spelling that is
 * (bare or after a space; as listed, lower case, or capitalised): the successor score's input.
 */
export function ordinalTokens(model: HookedTransformer): OrdinalTokens[] {
  if (!model.tokenizer) throw new LanternError(`model ${model.source} has no tokenizer.json; the successor score needs token strings`);
  const out: OrdinalTokens[] = [];
  const single = (s: string) => {
    const ids = model.encode(s);
    return ids.length === 1 && ids[0] < model.cfg.dVocab ? ids[0] : undefined;
  };
  const cases = [(s: string) => s, (s: string) => s.toLowerCase(), (s: string) => s[0].toUpperCase() + s.slice(1)];
  const seen = new Set<string>();
  for (const seq of ORDINAL_SEQUENCES) {
    for (const space of ['', ' ']) {
      for (const c of cases) {
        const items = seq.items.map((s) => space + c(s));
        const key = items.join('|');
        if (seen.has(key)) continue;
        seen.add(key);
        const tokens = items.map(single);
        if (tokens.every((t) => t !== undefined) && new Set(tokens).size === tokens.length) {
          out.push({ name: seq.name, variant: items[0], tokens: tokens as number[], cyclic: seq.cyclic });
        }
      }
    }
  }
  return out;
}

/**
 * The successor score of Gould et al. (2023): over every item x of every ordinal sequence (but
 * the last of a non-cyclic one), the fraction for which the head's full OV circuit, restricted to
 * the sequence's own tokens, gives its largest logit to x's successor.
 */
export function successorScores(circuits: ModelCircuits, sequences: OrdinalTokens[]): { scores: HeadGrid; items: number } {
  if (sequences.length === 0) throw new LanternError('no ordinal sequence is made of single tokens of this model; the successor score needs at least one');
  const { nLayers: L, nHeads: H } = circuits.model.cfg;
  const scores: HeadGrid = Array.from({ length: L }, () => new Array<number>(H).fill(0));
  let items = 0;
  for (const s of sequences) items += s.cyclic ? s.tokens.length : s.tokens.length - 1;
  for (let l = 0; l < L; l++) {
    for (let h = 0; h < H; h++) {
      let hits = 0;
      for (const s of sequences) {
        const ov = circuits.fullOv({ layer: l, head: h }, s.tokens, s.tokens);
        const n = s.tokens.length;
        for (let i = 0; i < (s.cyclic ? n : n - 1); i++) {
          let best = 0;
          for (let j = 1; j < n; j++) if (ov.data[i * n + j] > ov.data[i * n + best]) best = j;
          if (best === (i + 1) % n) hits++;
        }
      }
      scores[l][h] = hits / items;
    }
  }
  return { scores, items };
}

/**
 * OV copying (sign 1) or suppression (sign -1) by token: the fraction of `tokens` that are among
 * the `k` tokens the head's full OV circuit raises most (sign 1) or lowers most (sign -1) when it
 * attends to them — restricted to `tokens` as destinations. Copy Suppression's OV measure.
 */
export function ovTokenScores(circuits: ModelCircuits, tokens: number[], opts: { sign?: 1 | -1; k?: number } = {}): HeadGrid {
  const sign = opts.sign ?? 1;
  const k = opts.k ?? 5;
  const { nLayers: L, nHeads: H } = circuits.model.cfg;
  const n = tokens.length;
  const E = circuits.embedRows(tokens);
  const U = circuits.unembedColumns(tokens);
  return Array.from({ length: L }, (_, l) => Array.from({ length: H }, (_, h) => {
    const { A, B } = circuits.ov({ layer: l, head: h });
    const ov = matmul(matmul(E, A), matmul(B, U));
    let hits = 0;
    for (let i = 0; i < n; i++) {
      const own = sign * ov.data[i * n + i];
      let above = 0;
      for (let j = 0; j < n; j++) if (j !== i && sign * ov.data[i * n + j] >= own) above++;
      if (above < k && own > 0) hits++;
    }
    return hits / n;
  }));
}

/**
 * Copy suppression by ablation (McDougall et al., 2023): zero each head in turn and measure how
 * much the logits of tokens that occurred earlier in the prompt rise, relative to the mean logit
 * change. Positive: the head was pushing earlier tokens down. One run per head, plus one clean run.
 */
export async function copySuppressionAblation(model: HookedTransformer, rows: number[][], opts: { heads?: HeadRef[]; onHead?: (done: number, total: number) => void } = {}): Promise<HeadGrid> {
  const { nLayers: L, nHeads: H } = model.cfg;
  const heads = opts.heads ?? Array.from({ length: L * H }, (_, i) => ({ layer: Math.floor(i / H), head: i % H }));
  const clean = (await model.runWithHooks(rows, {})).logits;
  const grid: HeadGrid = Array.from({ length: L }, () => new Array<number>(H).fill(0));
  let done = 0;
  for (const h of heads) {
    const ablated = (await model.runWithHooks(rows, { interventions: [{ hook: `blocks.${h.layer}.attn.hook_z`, op: 'zero', heads: [h.head] }] })).logits;
    grid[h.layer][h.head] = earlierTokenShift(clean, ablated, rows);
    opts.onHead?.(++done, heads.length);
  }
  return grid;
}

/** Mean over positions of (mean logit change of earlier tokens) - (mean logit change over the vocabulary). */
function earlierTokenShift(clean: Tensor, ablated: Tensor, rows: number[][]): number {
  const [, T, V] = clean.shape;
  let total = 0;
  let count = 0;
  rows.forEach((toks, b) => {
    for (let t = 1; t < toks.length; t++) {
      const o = (b * T + t) * V;
      let all = 0;
      for (let v = 0; v < V; v++) all += ablated.f32[o + v] - clean.f32[o + v];
      const earlier = [...new Set(toks.slice(0, t))].filter((x) => x !== toks[t]);
      if (earlier.length === 0) continue;
      let e = 0;
      for (const x of earlier) e += ablated.f32[o + x] - clean.f32[o + x];
      total += e / earlier.length - all / V;
      count++;
    }
  });
  return count ? total / count : 0;
}

/** An IOI prompt: tokens, the final position, and where the indirect object and the subject are. */
export interface IoiPrompt {
  tokens: number[];
  end: number;
  io: number;
  s: number;
  ioPos: number;
  sPos: number[];
}

/** Per-head grids from {@link nameMoverScores}, each averaged over the IOI prompts. */
export interface NameMoverScores {
  /** Mean attention from END to the indirect object. */
  attentionIO: HeadGrid;
  /** Mean attention from END to the subject's positions (together). */
  attentionS: HeadGrid;
  /** Mean direct effect on logit(IO) - logit(S) at END (the head's write through the final norm and unembedding). */
  directLogitDiff: HeadGrid;
  /** Name-mover score: attention to IO, counted only where the head's direct effect favours IO (else 0). */
  score: HeadGrid;
}

/**
 * Name movers (Wang et al., 2022): heads that attend from the final position to the indirect
 * object and copy it (raise logit(IO) - logit(S)). One run caching every pattern and every
 * head's write (hook_result) and the final norm's scale.
 */
export async function nameMoverScores(model: HookedTransformer, prompts: IoiPrompt[], circuits: ModelCircuits): Promise<NameMoverScores> {
  const { nLayers: L, nHeads: H, dModel: D } = model.cfg;
  if (prompts.length === 0) throw new LanternError('name movers need at least one IOI prompt');
  const hooks = [...Array.from({ length: L }, (_, l) => [`blocks.${l}.attn.hook_pattern`, `blocks.${l}.attn.hook_result`]).flat(), 'ln_final.hook_scale'];
  const { cache, batch } = await model.runWithCache(prompts.map((p) => p.tokens), hooks);
  const T = batch.seq;
  const zero = () => Array.from({ length: L }, () => new Array<number>(H).fill(0));
  const out = { attentionIO: zero(), attentionS: zero(), directLogitDiff: zero(), score: zero() };
  const scale = cache.get('ln_final.hook_scale').f32;
  prompts.forEach((p, b) => {
    if (p.end >= p.tokens.length || p.ioPos >= p.tokens.length || p.sPos.some((s) => s >= p.tokens.length)) throw new LanternError(`IOI prompt ${b}: a position lies outside its ${p.tokens.length} tokens`);
    const dir = circuits.unembedColumns([p.io, p.s]); // [D, 2]
    for (let l = 0; l < L; l++) {
      const pat = cache.get(`blocks.${l}.attn.hook_pattern`).f32;
      const res = cache.get(`blocks.${l}.attn.hook_result`).f32;
      for (let h = 0; h < H; h++) {
        const row = ((b * H + h) * T + p.end) * T;
        out.attentionIO[l][h] += pat[row + p.ioPos] / prompts.length;
        out.attentionS[l][h] += p.sPos.reduce((s, k) => s + pat[row + k], 0) / prompts.length;
        const r = ((b * T + p.end) * H + h) * D;
        let diff = 0;
        // LayerNorm's centring is linear: the head's write, centred, over the final scale.
        let mean = 0;
        for (let d = 0; d < D; d++) mean += res[r + d] / D;
        for (let d = 0; d < D; d++) diff += (res[r + d] - (model.cfg.norm === undefined || model.cfg.norm === 'layernorm' ? mean : 0)) * (dir.data[d * 2] - dir.data[d * 2 + 1]);
        out.directLogitDiff[l][h] += diff / scale[b * T + p.end] / prompts.length;
      }
    }
  });
  for (let l = 0; l < L; l++) for (let h = 0; h < H; h++) out.score[l][h] = out.directLogitDiff[l][h] > 0 ? out.attentionIO[l][h] : 0;
  return out;
}
