/**
 * Shared machinery: token embeddings, and batched runs where each example has its own token
 * embeddings (a `replace` intervention at hook_embed with a [batch, seq, d_model] value).
 * Position embeddings are added after hook_embed, so they are never attributed or perturbed.
 */
import { LanternError } from '../../errors.js';
import { Tensor } from '../../engine/tensor.js';
import type { HookedTransformer, ObjectiveTerm } from '../../models/hooked.js';
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
 * Splits examples sorted by the position from which they differ from the prompt (`starts`,
 * ascending) into runs of at most `size` that each start at their first example's position, so
 * that a run computes rows × (seq − start) positions. Fewer, larger runs use the cores better;
 * runs of nearby starts waste fewer positions: each run is charged RUN_COST positions on top of
 * its own, and the cheapest split (and its cost) is found by dynamic programming.
 */
function prefixChunks(starts: number[], seq: number, size: number): { runs: [number, number][]; cost: number } {
  const n = starts.length;
  const cost = new Float64Array(n + 1).fill(Infinity);
  const from = new Int32Array(n + 1);
  cost[0] = 0;
  for (let e = 1; e <= n; e++) {
    for (let s = Math.max(0, e - size); s < e; s++) {
      const c = cost[s] + RUN_COST + (e - s) * (seq - starts[s]);
      if (c < cost[e]) { cost[e] = c; from[e] = s; }
    }
  }
  const runs: [number, number][] = [];
  for (let e = n; e > 0; e = from[e]) runs.unshift([from[e], e]);
  return { runs, cost: cost[n] };
}

/**
 * What a run costs beyond its positions, in positions (prefixChunks): mostly reading every weight
 * once, which on GPT-2 small's shape (T=64, 2 cores) takes as long as computing 55 to 75 positions.
 */
const RUN_COST = 64;

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
 * leaves every position before an example's first change as in the prompt, so the prompt runs
 * once, its keys and values are kept, and each batch computes only the positions from its
 * examples' earliest change on (leave-one-out: half the positions of running every copy whole).
 * The logits are the very numbers a whole run gives, bit for bit, as long as a run has at least two
 * positions (ORT multiplies a single row by another kernel, which rounds differently).
 */
export async function evaluate(
  model: HookedTransformer, tokens: number[], rows: TargetRow[], examples: Example[],
  opts: { grad: boolean; batchSize: number; hook?: string; reusePrefix?: boolean },
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
  interface Unit { ex: number; terms: ObjectiveTerm[]; post: 'sum' | 'exp' | 'coefExp'; coef: number }
  const units: Unit[] = [];
  examples.forEach((x, ex) => {
    const r = rows[x.row];
    if (opts.grad && r.expEach) r.terms.forEach((t) => units.push({ ex, terms: [{ ...t, coef: 1 }], post: 'coefExp', coef: t.coef ?? 1 }));
    else units.push({ ex, terms: r.terms, post: r.exp ? 'exp' : 'sum', coef: 1 });
  });
  const reuse = !opts.grad && opts.reusePrefix !== false && seq > 2;
  // The prompt's own activation at the hook: fed to examples without one of their own, and what
  // prefix reuse compares the others with. Token embeddings are read from W_E; another hook's
  // activation takes a run of the prompt, which then also keeps the keys and values reuse needs.
  const needsReal = examples.some((x) => x.embed) && (reuse || examples.some((x) => !x.embed));
  const prompt = needsReal && hook !== EMBED_HOOK ? await cleanRun(model, tokens, reuse ? [hook, ...model.pastHooks] : [hook]) : undefined;
  const real = needsReal ? (prompt ? prompt.get(hook).f32 : await tokenEmbeddings(model, tokens)) : undefined;
  let order = units.map((_, i) => i);
  let starts = units.map(() => 0);
  let runs = chunks(units.length, opts.batchSize);
  if (reuse) {
    // Where each unit's run may start: its first position that differs from the prompt, and no
    // later than its first target position nor seq − 2 (two positions at least, see above).
    const from = units.map((u) => Math.min(firstChange(examples[u.ex], tokens, real, d), ...u.terms.map((t) => t.pos), seq - 2));
    const sorted = order.slice().sort((i, j) => from[i] - from[j]);
    const plan = prefixChunks(sorted.map((i) => from[i]), seq, opts.batchSize);
    // Only worth it when it saves more than the prompt's own run, which gives the keys and values.
    const whole = runs.reduce((c, [s, e]) => c + RUN_COST + (e - s) * seq, 0);
    if (plan.cost + RUN_COST + seq < whole) [order, starts, runs] = [sorted, from, plan.runs];
  }
  const clean = runs.some(([s]) => starts[order[s]] > 0) ? (prompt?.has(model.pastHooks[0]) ? prompt : await cleanRun(model, tokens, model.pastHooks)) : undefined;
  const values = new Array<number>(examples.length).fill(0);
  const grads: Float32Array[] = [];
  for (const [s, e] of runs) {
    const batch = order.slice(s, e).map((i) => units[i]);
    const P = starts[order[s]];
    const past = P > 0 ? model.pastKeyValues(clean!, P) : undefined;
    const S = seq - P;
    const input = batch.map((u) => (examples[u.ex].tokens ?? tokens).slice(P));
    let interventions;
    if (batch.some((u) => examples[u.ex].embed)) {
      const value = new Float32Array(batch.length * S * d);
      batch.forEach((u, i) => value.set((examples[u.ex].embed ?? real!).subarray(P * d, seq * d), i * S * d));
      interventions = [{ hook, op: 'replace' as const, value: Tensor.f32(value, [batch.length, S, ...shape.slice(1)]) }];
    }
    // Only the positions the targets read are unembedded: one or a few of seq.
    const logitPositions = [...new Set(batch.flatMap((u) => u.terms.map((t) => t.pos)))].sort((p, q) => p - q);
    if (!opts.grad) {
      const { logits } = await model.runWithHooks(input, { interventions, logitPositions: logitPositions.map((p) => p - P), past });
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
