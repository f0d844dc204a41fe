/**
 * Shared machinery: token embeddings, and batched runs where each example has its own token
 * embeddings (a `replace` intervention at hook_embed with a [batch, seq, d_model] value).
 * Position embeddings are added after hook_embed, so they are never attributed or perturbed.
 */
import { LanternError } from '../../errors.js';
import { Tensor } from '../../engine/tensor.js';
import type { HookedTransformer, ObjectiveTerm, PastKeyValues } from '../../models/hooked.js';
import type { ActivationCache } from '../../models/cache.js';
import { rowValues, TargetRow } from './targets.js';

export const EMBED_HOOK = 'hook_embed';

/** The token embeddings of `tokens`, [seq * d_model] (row-major). */
export async function tokenEmbeddings(model: HookedTransformer, tokens: number[]): Promise<Float32Array> {
  return (await model.embedTokens(tokens)).f32;
}

/** The activation of one prompt at `hook` (batch dimension 1), and its shape. */
export async function hookActivation(model: HookedTransformer, tokens: number[], hook: string): Promise<{ value: Float32Array; shape: number[] }> {
  model.checkHook(hook);
  const a = (await cleanRun(model, tokens, [hook])).get(hook);
  return { value: Float32Array.from(a.f32), shape: a.shape };
}

/** A cache of `hooks` for one prompt; logits at one position only, since nobody reads them. */
async function cleanRun(model: HookedTransformer, tokens: number[], hooks: string[]): Promise<ActivationCache> {
  return (await model.runWithHooks([tokens], { cache: hooks, logitPositions: [0] })).cache;
}

/** The embedding vector of one token id, [d_model]. */
export async function embeddingOf(model: HookedTransformer, token: number): Promise<Float32Array> {
  return tokenEmbeddings(model, [token]);
}

export function checkBatchSize(n: number | undefined, fallback: number): number {
  const b = n ?? fallback;
  if (!Number.isInteger(b) || b < 1) throw new LanternError(`batch size must be a positive integer, got ${n}`);
  return b;
}

/**
 * Default examples per run: at most `cap`, and about `tokens` tokens in all, so that a long
 * prompt's backward pass (which keeps every activation of every example) stays within memory.
 * Batching past a few hundred tokens buys little more on a CPU (matmuls are already large).
 */
export function defaultBatchSize(seq: number, cap = 16, tokens = 1024): number {
  return Math.max(1, Math.min(cap, Math.floor(tokens / seq)));
}

/**
 * Splits [0, n) into as few chunks of at most `size` as possible, of equal sizes (± 1): 65
 * examples at 32 a run are 22 + 22 + 21, not 32 + 32 + 1, whose last run would cost nearly a full
 * run's fixed overhead for one example.
 */
export function chunks(n: number, size: number): [number, number][] {
  const k = Math.ceil(n / size);
  const out: [number, number][] = [];
  for (let i = 0, s = 0; i < k; i++) {
    const e = s + Math.floor(n / k) + (i < n % k ? 1 : 0);
    out.push([s, e]);
    s = e;
  }
  return out;
}

/**
 * What a run costs beyond its positions, in positions (packRows): mostly reading every weight
 * once, which on GPT-2 small's shape (T=64, 2 cores) takes as long as computing 55 to 75 positions.
 */
const RUN_COST = 64;

/** Positions [start, end) of one unit (an example's row, or one of its terms) in a packed row. */
interface Piece { unit: number; start: number; end: number }

interface Packing {
  /** Each row's pieces, in order. */
  rows: Piece[][];
  /** Positions per row: the longest piece. */
  width: number;
  /** Runs of at most `size` rows each, as [first, end) row ranges. */
  runs: [number, number][];
  /** In positions: each row's width, plus RUN_COST per run. */
  cost: number;
}

/**
 * At most this many rows of `width` continuing `past` positions per run, so that a run's attention
 * scores ([rows, heads, width, past + width] float32, a few such tensors alive at once) stay within
 * 1 GB each: a 1024-token prompt's leave-one-out on GPT-2 small then runs 10 rows at a time.
 */
function packedRowsPerRun(model: HookedTransformer, past: number, width: number): number {
  return Math.max(1, Math.floor(2 ** 28 / (model.cfg.nHeads * width * (past + width))));
}

/**
 * Packs pieces into as few rows as first-fit-decreasing finds, each row as wide as the longest
 * piece: leave-one-out's suffixes of lengths n, n − 1, …, 1 pair up into n/2 + 1 full rows, so
 * nothing is computed twice or for nothing.
 */
function packRows(pieces: Piece[], size: number): Packing {
  const sorted = pieces.slice().sort((a, b) => (b.end - b.start) - (a.end - a.start) || a.unit - b.unit);
  const width = sorted[0].end - sorted[0].start;
  const rows: Piece[][] = [];
  const room: number[] = [];
  for (const pc of sorted) {
    const n = pc.end - pc.start;
    const r = room.findIndex((left) => left >= n);
    if (r >= 0) { rows[r].push(pc); room[r] -= n; } else { rows.push([pc]); room.push(width - n); }
  }
  const runs = chunks(rows.length, size);
  return { rows, width, runs, cost: runs.length * RUN_COST + rows.length * width };
}

/** One example of a batched evaluation: the embeddings to feed (default: the real ones) and which row to score. */
export interface Example {
  /** The activation to feed at the evaluation's hook (hook_embed unless `opts.hook` says otherwise). */
  embed?: Float32Array;
  /** Token ids to feed instead of the input (same length): token-substitution masking. */
  tokens?: number[];
  row: number;
}

/**
 * Value (and, with `grad`, the gradient wrt the activation at `hook`, default the token
 * embeddings) of each example's row, in batches of `batchSize`. Every example in a batch is the
 * same input sequence with its own activation at the hook; rows are independent, so the gradient
 * of Σ_b row_b wrt batch b's activation is row_b's own gradient.
 *
 * Values alone reuse the prompt's shared prefix (unless `reusePrefix` is false): causal attention
 * leaves every position before an example's first change as in the prompt, so each example needs
 * only the positions from its first change to its last target position, continuing the prompt's
 * keys and values. Those pieces are packed side by side into rows (`Segment`) and run
 * `batchSize` rows at a time: leave-one-out over n tokens computes about n²/2 positions instead
 * of n². The values equal whole runs' up to float32 rounding (~1e-6 relative, tested), not bit for
 * bit: a packed query's softmax runs over more keys, the masked ones adding exact zeros in
 * another order.
 */
export async function evaluate(
  model: HookedTransformer, tokens: number[], rows: TargetRow[], examples: Example[],
  opts: {
    grad: boolean; batchSize: number; hook?: string; reusePrefix?: boolean;
    /** A cache of `model.pastHooks` on `tokens` (ResolvedTarget.promptCache): prefix reuse then runs no prompt of its own. */
    promptCache?: ActivationCache;
  },
): Promise<{ values: number[]; grads: Float32Array[] }> {
  const seq = tokens.length;
  const hook = opts.hook ?? EMBED_HOOK;
  model.checkHook(hook);
  // One example's activation at the hook: the hook's shape without the batch axis, at this length.
  const shape = model.hookShapes.get(hook)!.slice(1).map((x) => (typeof x === 'number' ? x : seq));
  const d = shape.reduce((p, q) => p * q, 1) / seq;
  // A batch entry. A row of the form Σ c·exp(term) (a probability difference) needs each term's
  // own gradient, and one backward pass gives only the gradient of a sum, so each of its terms is
  // a batch entry of its own; every other row is one entry.
  const units: Unit[] = [];
  examples.forEach((x, ex) => {
    const r = rows[x.row];
    if (opts.grad && r.expEach) r.terms.forEach((t) => units.push({ ex, terms: [{ ...t, coef: 1 }], post: 'coefExp', coef: t.coef ?? 1 }));
    else units.push({ ex, terms: r.terms, post: r.exp ? 'exp' : 'sum', coef: 1 });
  });
  const reuse = !opts.grad && opts.reusePrefix !== false && seq > 1;
  // The prompt's own activation at the hook: fed to examples without one of their own, and what
  // prefix reuse compares the others with. Token embeddings are read from W_E; another hook's
  // activation takes a run of the prompt, which then also keeps the keys and values reuse needs.
  const needsReal = examples.some((x) => x.embed) && (reuse || examples.some((x) => !x.embed));
  const cached = fitsPrompt(model, tokens, opts.promptCache) ? opts.promptCache : undefined;
  const prompt = needsReal && hook !== EMBED_HOOK ? await cleanRun(model, tokens, reuse && !cached ? [hook, ...model.pastHooks] : [hook]) : undefined;
  const real = needsReal ? (prompt ? prompt.get(hook).f32 : await tokenEmbeddings(model, tokens)) : undefined;
  const whole = chunks(units.length, opts.batchSize);
  if (reuse) {
    // Each unit's piece: from its first position that differs from the prompt (no later than its
    // first target position) to its last target position.
    const pieces = units.map((u, unit) => {
      const positions = u.terms.map((t) => t.pos);
      return { unit, start: Math.min(firstChange(examples[u.ex], tokens, real, d), ...positions), end: Math.max(...positions) + 1 };
    });
    const plan = packRows(pieces, Math.min(opts.batchSize, packedRowsPerRun(model, seq, Math.max(...pieces.map((pc) => pc.end - pc.start)))));
    const given = cached ?? (prompt?.has(model.pastHooks[0]) ? prompt : undefined);
    if (plan.cost + (given ? 0 : RUN_COST + seq) < whole.length * RUN_COST + units.length * seq) {
      const keysValues = given ?? await cleanRun(model, tokens, model.pastHooks);
      return { values: await packedValues(model, { tokens, rows, examples, units, real, hook, shape }, plan, model.pastKeyValues(keysValues, seq)), grads: [] };
    }
  }
  const values = new Array<number>(examples.length).fill(0);
  const grads: Float32Array[] = [];
  for (const [s, e] of whole) {
    const batch = units.slice(s, e);
    const input = batch.map((u) => examples[u.ex].tokens ?? tokens);
    let interventions;
    if (batch.some((u) => examples[u.ex].embed)) {
      const value = new Float32Array(batch.length * seq * d);
      batch.forEach((u, i) => value.set(examples[u.ex].embed ?? real!, i * seq * d));
      interventions = [{ hook, op: 'replace' as const, value: Tensor.f32(value, [batch.length, seq, ...shape.slice(1)]) }];
    }
    // Only the positions the targets read are unembedded: one or a few of seq.
    const logitPositions = [...new Set(batch.flatMap((u) => u.terms.map((t) => t.pos)))].sort((p, q) => p - q);
    if (!opts.grad) {
      const { logits } = await model.runWithHooks(input, { interventions, logitPositions });
      const at = new Map(logitPositions.map((p, k) => [p, k]));
      batch.forEach((u, i) => (values[u.ex] = rowValues(logits, i, [rows[examples[u.ex].row]], at)[0]));
      continue;
    }
    const terms: ObjectiveTerm[] = [];
    const owner: number[] = [];
    batch.forEach((u, i) => u.terms.forEach((t) => { terms.push({ ...t, batch: i }); owner.push(i); }));
    const res = await model.gradients(input, terms, { wrt: [hook], interventions, logitPositions });
    const sums = new Float64Array(batch.length);
    res.terms.forEach((v, k) => (sums[owner[k]] += v));
    const g = res.grads[hook].f32;
    batch.forEach((u, i) => {
      const v = sums[i];
      // value and d value/d(Σ terms): exp(v) for probabilities, c·exp(v) for one term of Σ c·exp.
      const f = u.post === 'sum' ? v : u.post === 'exp' ? Math.exp(v) : u.coef * Math.exp(v);
      const scale = u.post === 'sum' ? 1 : f;
      const gi = g.subarray(i * seq * d, (i + 1) * seq * d);
      values[u.ex] += f;
      const acc = grads[u.ex];
      if (!acc) grads[u.ex] = scale === 1 ? Float32Array.from(gi) : gi.map((x) => x * scale);
      else for (let k = 0; k < acc.length; k++) acc[k] += scale * gi[k];
    });
  }
  return { values, grads };
}

interface Unit { ex: number; terms: ObjectiveTerm[]; post: 'sum' | 'exp' | 'coefExp'; coef: number }

/** What packedValues reads of an evaluation. */
interface Evaluation {
  tokens: number[];
  rows: TargetRow[];
  examples: Example[];
  units: Unit[];
  real: Float32Array | undefined;
  hook: string;
  shape: number[];
}

/** Each example's value, its piece run in packed rows that continue the prompt's keys and values (`past`). */
async function packedValues(model: HookedTransformer, ev: Evaluation, plan: Packing, past: PastKeyValues): Promise<number[]> {
  const { tokens, rows, examples, units, real, hook, shape } = ev;
  const d = shape.reduce((p, q) => p * q, 1) / tokens.length;
  const W = plan.width;
  const values = new Array<number>(examples.length).fill(0);
  for (const [s, e] of plan.runs) {
    const batch = plan.rows.slice(s, e);
    // Where each piece sits in its row.
    const offsets = batch.map((row) => {
      let o = 0;
      return row.map((pc) => { const at = o; o += pc.end - pc.start; return at; });
    });
    const input = batch.map((row, b) => {
      const ids = new Array<number>(W).fill(0);
      row.forEach((pc, j) => {
        const src = examples[units[pc.unit].ex].tokens ?? tokens;
        for (let p = pc.start; p < pc.end; p++) ids[offsets[b][j] + p - pc.start] = src[p];
      });
      return ids;
    });
    let interventions;
    if (batch.some((row) => row.some((pc) => examples[units[pc.unit].ex].embed))) {
      const value = new Float32Array(batch.length * W * d);
      batch.forEach((row, b) => row.forEach((pc, j) => {
        value.set((examples[units[pc.unit].ex].embed ?? real!).subarray(pc.start * d, pc.end * d), (b * W + offsets[b][j]) * d);
      }));
      interventions = [{ hook, op: 'replace' as const, value: Tensor.f32(value, [batch.length, W, ...shape.slice(1)]) }];
    }
    // Each row unembeds only its pieces' target positions, padded to one count by repeating one.
    const reads = batch.map((row, b) => [...new Set(row.flatMap((pc, j) => units[pc.unit].terms.map((t) => offsets[b][j] + t.pos - pc.start)))]);
    const K = Math.max(...reads.map((r) => r.length));
    const logitPositions = reads.map((r) => [...r, ...new Array<number>(K - r.length).fill(r[0])]);
    const segments = batch.map((row) => row.map((pc) => ({ start: pc.start, length: pc.end - pc.start })));
    const { logits } = await model.runWithHooks(input, { interventions, logitPositions, past, segments });
    batch.forEach((row, b) => row.forEach((pc, j) => {
      const u = units[pc.unit];
      const at = new Map(u.terms.map((t) => [t.pos, logitPositions[b].indexOf(offsets[b][j] + t.pos - pc.start)]));
      values[u.ex] = rowValues(logits, b, [rows[examples[u.ex].row]], at)[0];
    }));
  }
  return values;
}

/** Whether `cache` holds every layer's keys and values on exactly `tokens`. */
function fitsPrompt(model: HookedTransformer, tokens: number[], cache: ActivationCache | undefined): boolean {
  return Boolean(cache) && model.pastHooks.every((h) => cache!.has(h)) && cache!.batch.lengths[0] === tokens.length && tokens.every((t, i) => cache!.batch.tokens[0][i] === t);
}

/** The first position at which an example's tokens or activation differ from the prompt's (seq when none does). */
function firstChange(x: Example, tokens: number[], real: Float32Array | undefined, d: number): number {
  let first = tokens.length;
  if (x.tokens) {
    const i = x.tokens.findIndex((t, p) => t !== tokens[p]);
    if (i >= 0) first = i;
  }
  if (x.embed) {
    for (let k = 0; k < first * d; k++) {
      if (x.embed[k] !== real![k]) return Math.floor(k / d);
    }
  }
  return first;
}
