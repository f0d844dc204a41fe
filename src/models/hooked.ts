/**
 * HookedTransformer: run a model with TransformerLens hook points — cache activations, intervene,
 * call back into JavaScript, and take gradients — all as ONNX graphs on the compute thread.
 *
 * Every kind of run goes through one path: describe what the run needs (a RunSpec), build the
 * model graph with a hook function that realises that spec, and execute it. The spec, not the
 * values fed to it, names the compiled session, so a sweep of a thousand patches compiles once.
 */
import { LanternError, nearest } from '../errors.js';
import { Graph, Value, Shape, shapeToString } from '../engine/graph/ir.js';
import { gradients } from '../engine/autodiff/grad.js';
import { Executor, WeightSet, defaultExecutor } from '../engine/runtime/executor.js';
import { Tensor } from '../engine/tensor.js';
import type { ModelConfig } from './config.js';
import type { Tokenizer } from './tokenizer.js';
import type { Layout } from './architecture.js';
import { attentionWeightsGraph, buildForward, hookShapes, OPTIONAL_HOOKS, ForwardOutputs, unembedWeightsGraph } from './forward.js';
import { modelInputs, packedFeeds, positionFeeds, Segment, B, T, LOGIT_POS } from './inputs.js';
import { KvCache, pastName } from './kv-cache.js';
import { ActivationCache } from './cache.js';
import { splitAtCuts } from '../engine/graph/segment.js';

/** Text, a batch of texts, token ids, or a batch of token ids. */
export type ModelInput = string | string[] | number[] | number[][];

export type InterventionOp = 'replace' | 'add' | 'scale' | 'zero' | 'mean' | 'project-out';

/**
 * A change to one hook's activation. `positions` (query positions for attention patterns) and
 * `heads` restrict it; everything else keeps its value. `mean` without a value replaces the
 * activation by its mean over the batch at each position (over the prompts long enough to have
 * that position: padding never enters the mean). `project-out` removes the component along a unit
 * vector `value` over the last axis: x − (x·v) v (directional ablation).
 */
export interface Intervention {
  hook: string;
  op: InterventionOp;
  /** replace: the new activation; add: what to add; mean: the mean to substitute; project-out: the unit direction. Broadcasts against the activation. */
  value?: Tensor;
  /** scale: the factor. */
  factor?: number;
  positions?: number[];
  heads?: number[];
}

/** A JavaScript function at a hook point: return a tensor of the same shape to replace the activation. */
export type HookCallback = (activation: Tensor, hook: string) => Tensor | void | Promise<Tensor | void>;

/** Everything a run can do besides computing logits: cache, intervene, call back, continue a past, pack segments. */
export interface RunOptions {
  /** Hook names to cache, or a filter over all hook names. */
  cache?: string[] | ((name: string) => boolean);
  interventions?: Intervention[];
  callbacks?: Record<string, HookCallback>;
  /**
   * Compute logits only at these positions (in this order): `logits` is then
   * [batch, positions.length, vocab]. Hooks and gradients are unaffected; this only skips
   * unembedding positions nobody reads. One array per row (all as long) gives each row its own.
   */
  logitPositions?: number[] | number[][];
  /**
   * Keys and values of a prompt's first positions (`pastKeyValues`): the input is then what
   * follows that prefix, and only its positions are computed. Hooks, interventions, logits and
   * their positions all refer to the input's own positions (0 is the first after the prefix).
   */
  past?: PastKeyValues;
  /**
   * With `past`: each row holds several continuations of the past's prefixes, `segments[b]` in
   * order (sequence packing, see `Segment`), so short continuations need not each take a row.
   * Positions are then row positions. The numbers equal separate runs' up to float32 rounding
   * (~1e-6): a query's softmax and weighted sum run over more (masked) keys.
   */
  segments?: Segment[][];
  /**
   * Keys and values kept in the compute thread (`createKvCache`): an empty cache takes this run's
   * (the prompts'); a filled one is continued, row b's tokens following row b's kept positions,
   * and takes this run's keys too. Hooks, interventions and logit positions refer to the input's
   * own positions, as with `past`.
   */
  kvCache?: KvCache;
}

/**
 * Every layer's keys and values at a prompt's first `length` positions: [1, length, heads, d_head]
 * each, shared by every row of a run; or [batch, length, heads, d_head], each row's own prefix.
 */
export interface PastKeyValues {
  length: number;
  keys: Tensor[];
  values: Tensor[];
}

/** One term of a scalar objective: coef * (logit | log-prob) of `token` at (`batch`, `pos`). */
export interface ObjectiveTerm {
  batch?: number;
  pos: number;
  token: number;
  kind: 'logit' | 'logprob';
  coef?: number;
}

/** Common objectives for gradients: a token's logit, its log-probability, or the logit difference against a foil. */
export const objectives = {
  /** The logit of `token` at `pos`. */
  logit: (pos: number, token: number, batch = 0): ObjectiveTerm[] => [{ batch, pos, token, kind: 'logit' }],
  /** The log-probability of `token` at `pos`. */
  logprob: (pos: number, token: number, batch = 0): ObjectiveTerm[] => [{ batch, pos, token, kind: 'logprob' }],
  /** logit(token) − logit(foil) at `pos`. */
  logitDiff: (pos: number, token: number, foil: number, batch = 0): ObjectiveTerm[] => [
    { batch, pos, token, kind: 'logit', coef: 1 },
    { batch, pos, token: foil, kind: 'logit', coef: -1 },
  ],
  /** Sum of log-probs of `continuation` placed right after position `lastPromptPos` (teacher forcing). */
  continuationLogprob: (lastPromptPos: number, continuation: number[], batch = 0): ObjectiveTerm[] =>
    continuation.map((token, i) => ({ batch, pos: lastPromptPos + i, token, kind: 'logprob' })),
};

/**
 * One layer's attention weights per head, with ln1's weight and bias folded in (see
 * `attentionWeights`). Key/value heads are shared under grouped-query attention: query head h
 * reads kv head `kvHeadOf(h)`.
 */
export interface AttentionWeights {
  layer: number;
  /** [heads, d_model, d_head] */
  W_Q: Tensor;
  /** [heads, d_head] */
  b_Q: Tensor;
  /** [kv_heads, d_model, d_head] */
  W_K: Tensor;
  b_K: Tensor;
  W_V: Tensor;
  b_V: Tensor;
  /** [heads, d_head, d_model] */
  W_O: Tensor;
  /** [d_model] */
  b_O: Tensor;
  /** The key/value head that query head h reads. */
  kvHeadOf(h: number): number;
}

export interface Batch {
  /** Right-padded token ids [batch, seq]. */
  tokens: number[][];
  lengths: number[];
  seq: number;
}

/** Scores of a token sequence: entry t is about token t + 1, given the tokens before it. */
export interface TokenLogprobs {
  logprobs: number[];
  /** The most likely tokens at each position, most likely first. */
  top: { id: number; logprob: number }[][];
}

/** A run's logits and cached activations. */
export interface RunResult {
  logits: Tensor; // [batch, seq, vocab] ([batch, logitPositions.length, vocab] when asked)
  cache: ActivationCache;
  batch: Batch;
}

/** A run's logits and cache plus the gradients of the objective wrt the requested hooks. */
export interface GradientResult extends RunResult {
  /** Sum of all objective terms. */
  objective: number;
  /** Each term's value (coef included), in order. */
  terms: number[];
  /** d objective / d activation, per requested hook. */
  grads: Record<string, Tensor>;
}

interface InterventionPlan {
  hook: string;
  op: InterventionOp;
  valueShape?: Shape; // declared shape of the fed value (symbolic where it follows batch/seq)
  maskShape?: Shape;
  realShape?: Shape; // batch mean: which (prompt, position) pairs are real tokens, not padding
}

interface RunSpec {
  cache: string[];
  interventions: InterventionPlan[];
  callbacks: string[];
  gradWrt: string[] | null;
  logitPositions: boolean | 'rows';
  /** Past keys and values: none, one prefix's shared by every row, or each row's own. */
  past: false | 'shared' | 'rows';
  packed: boolean;
  /** The run leaves every layer's keys and values in a `KvCache` (outputs `present.{l}.k|v`). */
  keepsKeys: boolean;
  /** The objective reads its rows from the logits (at logitPositions) instead of unembedding them again. */
  objectiveFromLogits: boolean;
}

/** A transformer with hooks at every TransformerLens hook point: run, cache, intervene, and take gradients, all on one compiled forward. */
export class HookedTransformer {
  readonly hookNames: string[];
  private readonly hookSet: Set<string>;
  /** Static shapes of every hook (symbolic in batch/seq), from a dry build of the graph. */
  readonly hookShapes: Map<string, Shape>;
  private readonly hookLayouts: Map<string, Layout>;
  /** For a model loaded from the Hub: the revision asked for and the commit it resolved to, for saved results. */
  hub?: { id: string; revision: string; commit: string };

  constructor(
    readonly cfg: ModelConfig,
    readonly weights: WeightSet,
    readonly tokenizer: Tokenizer | undefined,
    /** Where the model came from (folder or hub id), for saved results. */
    readonly source: string,
    readonly executor: Executor = defaultExecutor(),
  ) {
    const hooks = hookShapes(cfg);
    this.hookNames = hooks.names;
    this.hookSet = new Set(this.hookNames);
    this.hookShapes = hooks.shapes;
    this.hookLayouts = hooks.layouts;
  }

  /** Builds a hooked model from a config, weights and tokenizer (what {@link loadModel} does after reading a folder). */
  static async create(cfg: ModelConfig, weights: Record<string, Tensor>, tokenizer: Tokenizer | undefined, source: string, executor = defaultExecutor()) {
    return new HookedTransformer(cfg, await executor.registerWeights(weights), tokenizer, source, executor);
  }

  // ---------------------------------------------------------------------------------------------
  // Input

  private requireTokenizer(): Tokenizer {
    if (!this.tokenizer) throw new LanternError(`model ${this.source} has no tokenizer.json; pass token ids instead of text`);
    return this.tokenizer;
  }

  /**
   * Token ids of a prompt, beginning with the model's BOS token when its tokenizer adds one
   * (Llama 3, Gemma; not GPT-2 or Qwen), as Hugging Face's tokenizer does. Text that continues
   * a prompt (targets, continuations) is `encode`d instead.
   */
  toTokens(text: string, opts: { prependBos?: boolean } = {}): number[] {
    const ids = this.requireTokenizer().encode(text);
    const bos = this.tokenizer!.bos;
    return bos && (opts.prependBos ?? true) ? [bos.id, ...ids] : ids;
  }

  /** Token ids of text that continues a prompt: never a BOS. */
  encode(text: string): number[] {
    return this.requireTokenizer().encode(text);
  }

  /** The BOS id that `toTokens` puts before every prompt, if any. */
  get bos(): number | undefined {
    return this.tokenizer?.bos?.id;
  }

  /** Decodes tokens to text. */
  toString(tokens: number[]): string {
    return this.requireTokenizer().decode(tokens);
  }

  /** Each token as its own string. */
  tokenStrings(tokens: number[]): string[] {
    return this.requireTokenizer().tokenStrings(tokens);
  }

  /** Tokenizes and right-pads a batch. Right padding keeps every real token's result identical to an unpadded run: causal attention never looks at later (padded) positions. */
  toBatch(input: ModelInput): Batch {
    const rows: number[][] =
      typeof input === 'string' ? [this.toTokens(input)]
      : input.length === 0 ? []
      : typeof input[0] === 'string' ? (input as string[]).map((s) => this.toTokens(s))
      : typeof input[0] === 'number' ? [input as number[]]
      : (input as number[][]);
    if (rows.length === 0) throw new LanternError('empty input: give at least one prompt');
    rows.forEach((r, b) => {
      if (r.length === 0) throw new LanternError(`prompt ${b} is empty (no tokens)`);
      if (r.length > this.cfg.nCtx) {
        throw new LanternError(`prompt ${b} is ${r.length} tokens, longer than the model's context of ${this.cfg.nCtx}`);
      }
      for (const t of r) {
        if (!Number.isInteger(t) || t < 0 || t >= this.cfg.dVocab) throw new LanternError(`token id ${t} is outside the vocabulary [0, ${this.cfg.dVocab})`);
      }
    });
    const seq = Math.max(...rows.map((r) => r.length));
    return { tokens: rows, lengths: rows.map((r) => r.length), seq };
  }

  /** The batch's token ids, int64 [batch, seq]. */
  private tokenFeed(batch: Batch): Tensor {
    const { seq } = batch;
    const ids = new BigInt64Array(batch.tokens.length * seq);
    batch.tokens.forEach((r, b) => r.forEach((t, i) => (ids[b * seq + i] = BigInt(t))));
    return new Tensor('int64', ids, [batch.tokens.length, seq]);
  }

  private baseFeeds(batch: Batch, past: number): Record<string, Tensor> {
    return { tokens: this.tokenFeed(batch), ...positionFeeds(batch.seq, past) };
  }

  /** The hooks a cache needs for `pastKeyValues`: every layer's keys (after rotary, where the model has it) and values. */
  get pastHooks(): string[] {
    return Array.from({ length: this.cfg.nLayers }, (_, l) => [this.pastKeyHook(l), `blocks.${l}.attn.hook_v`]).flat();
  }

  private pastKeyHook(l: number): string {
    return this.cfg.rope ? `blocks.${l}.attn.hook_rot_k` : `blocks.${l}.attn.hook_k`;
  }

  /** An empty key/value cache in the compute thread, for runs (`kvCache`) that continue each other, as generation's steps do. */
  async createKvCache(): Promise<KvCache> {
    return new KvCache(this.executor, this.cfg, await this.executor.registerWeights({}));
  }

  /**
   * The keys and values of prompt `b`'s first `length` positions in a cache of `pastHooks`, for
   * runs (`past`) that continue that prefix in other ways: the prefix is then never recomputed.
   */
  pastKeyValues(cache: ActivationCache, length: number, b = 0): PastKeyValues {
    const n = cache.batch.lengths[b];
    if (n === undefined) throw new LanternError(`prompt ${b} is not in the cache (batch of ${cache.batch.lengths.length})`);
    if (!Number.isInteger(length) || length < 1 || length > n) throw new LanternError(`past length ${length} outside [1, ${n}] (prompt ${b}'s length)`);
    const { nKvHeads: H, dHead: dh } = this.cfg;
    const prefix = (name: string) => {
      const o = b * cache.batch.seq * H * dh;
      return Tensor.f32(cache.get(name).f32.slice(o, o + length * H * dh), [1, length, H, dh]);
    };
    const layers = Array.from({ length: this.cfg.nLayers }, (_, l) => l);
    return { length, keys: layers.map((l) => prefix(this.pastKeyHook(l))), values: layers.map((l) => prefix(`blocks.${l}.attn.hook_v`)) };
  }

  private feedPast(past: PastKeyValues, batch: Batch, feeds: Record<string, Tensor>, packed: boolean): void {
    const { nLayers: L, nKvHeads: H, dHead: dh, nCtx } = this.cfg;
    const P = past.length;
    if (!Number.isInteger(P) || P < 1) throw new LanternError(`past length ${P} must be a positive integer`);
    if (!packed && P + batch.seq > nCtx) throw new LanternError(`past of ${P} positions plus ${batch.seq} tokens is longer than the model's context of ${nCtx}`);
    if (past.keys?.length !== L || past.values?.length !== L) throw new LanternError(`past keys and values must have one tensor per layer (${L})`);
    const rows = past.keys?.[0]?.shape[0] === batch.tokens.length ? batch.tokens.length : 1;
    const want = [rows, P, H, dh].join(',');
    for (let l = 0; l < L; l++) {
      for (const [kind, t] of [['k', past.keys[l]], ['v', past.values[l]]] as const) {
        if (t.dtype !== 'float32' || t.shape.join(',') !== want) {
          throw new LanternError(`past ${kind} of layer ${l}: expected float32 [${want}]${rows === 1 && batch.tokens.length > 1 ? ` (or [${batch.tokens.length}, ${P}, ${H}, ${dh}], one per row)` : ''}, got ${t.dtype} [${t.shape}]`);
        }
        feeds[`past.${l}.${kind}`] = t;
      }
    }
  }

  // ---------------------------------------------------------------------------------------------
  // Hook names

  /** Throws a LanternError naming the closest valid hooks when `name` is not a hook point. */
  checkHook(name: string): void {
    if (this.hookSet.has(name)) return;
    throw new LanternError(`unknown hook '${name}'; did you mean ${nearest(name, this.hookNames).map((n) => `'${n}'`).join(', ')}?`);
  }

  private resolveCache(cache: RunOptions['cache']): string[] {
    if (!cache) return [];
    if (typeof cache === 'function') return this.hookNames.filter(cache);
    cache.forEach((n) => this.checkHook(n));
    return [...new Set(cache)];
  }

  // ---------------------------------------------------------------------------------------------
  // Runs

  /**
   * The token embeddings (hook_embed) of one prompt, [1, seq, d_model]: rows of W_E, gathered
   * without running the model.
   */
  async embedTokens(tokens: number[]): Promise<Tensor> {
    const ids = this.tokenFeed(this.toBatch([tokens]));
    const build = () => {
      const g = new Graph();
      const rows = g.gather(g.input('embed.W_E', 'float32', [this.cfg.dVocab, this.cfg.dModel]), g.input('tokens', 'int64', [B, T]));
      g.output('embed', this.cfg.embedScale ? g.mul(rows, g.scalar(this.cfg.embedScale)) : rows);
      return g;
    };
    return (await this.executor.run(JSON.stringify({ cfg: this.cfg, embedTokens: true }), build, { tokens: ids }, { weights: [this.weights] })).embed;
  }

  /**
   * Layer `layer`'s attention weights per head, with ln1's weight and bias folded in
   * (TransformerLens's fold_ln): q = n(x) W_Q[h] + b_Q[h] where n(x) is ln1's normalised input
   * (centred and divided by its scale for LayerNorm; divided by its RMS for RMSNorm). Every
   * family's own projection supplies them, so fused, split and grouped layouts all come out alike.
   */
  async attentionWeights(layer: number): Promise<AttentionWeights> {
    const { nLayers, nHeads, nKvHeads } = this.cfg;
    if (!Number.isInteger(layer) || layer < 0 || layer >= nLayers) throw new LanternError(`layer ${layer} outside [0, ${nLayers})`);
    const out = await this.executor.run(JSON.stringify({ cfg: this.cfg, attentionWeights: layer }), () => attentionWeightsGraph(this.cfg, layer), {}, { weights: [this.weights] });
    const group = nHeads / nKvHeads;
    return {
      layer, W_Q: out.W_Q, b_Q: out.b_Q, W_K: out.W_K, b_K: out.b_K, W_V: out.W_V, b_V: out.b_V, W_O: out.W_O, b_O: out.b_O,
      kvHeadOf: (h) => Math.floor(h / group),
    };
  }

  /** The token embedding as the first block reads it, [vocab, d_model] (times the family's embedding scale, where it has one). */
  async embeddingMatrix(): Promise<Tensor> {
    const { 'embed.W_E': we } = await this.executor.readWeights(this.weights, ['embed.W_E']);
    if (!this.cfg.embedScale) return we;
    const s = this.cfg.embedScale;
    return Tensor.f32(we.f32.map((x) => x * s), we.shape);
  }

  /** The unembedding with the final norm's weight folded in, [d_model, vocab]: logits = normalised final residual @ W_U (before any final soft-cap). */
  async unembeddingMatrix(): Promise<Tensor> {
    const D = this.cfg.dModel;
    const eye = new Float32Array(D * D);
    for (let i = 0; i < D; i++) eye[i * D + i] = 1;
    const out = await this.executor.run(JSON.stringify({ cfg: this.cfg, unembedWeights: true }), () => unembedWeightsGraph(this.cfg), { eye: Tensor.f32(eye, [D, D]) }, { weights: [this.weights] });
    return out.W_U;
  }

  /**
   * log p(ids[t] | ids[..t]) for t = 1 .. seq-1, and the `topK` most likely tokens at each of
   * those positions. The log-softmax runs inside the graph, so only these numbers leave the
   * compute thread: a JavaScript pass over the vocabulary at every position cost more than the
   * bundled model's whole forward, and so did copying out every position's logits. Every position
   * is scored whatever a caller reads, so a token's score depends only on `ids` (ORT picks another
   * matmul kernel for a single row, which rounds differently).
   */
  async tokenLogprobs(ids: number[], topK = 0): Promise<TokenLogprobs> {
    if (!Number.isInteger(topK) || topK < 0 || topK > this.cfg.dVocab) throw new LanternError(`topK must be an integer in [0, ${this.cfg.dVocab}], got ${topK}`);
    const batch = this.toBatch([ids]);
    const n = ids.length - 1;
    if (n === 0) return { logprobs: [], top: [] };
    const build = () => {
      const g = new Graph();
      const { logits } = buildForward(g, this.cfg, modelInputs(g, { logitPositions: true }));
      // log p = (x - max) - log sum exp(x - max), with the sum accumulated in float64: a float32
      // sum over 50257 terms (ORT's LogSoftmax) was off by up to ~1e-5, this is within ~1e-7.
      const shifted = g.sub(logits, g.reduceMax(logits, [-1]));
      const logZ = g.log(g.reduceSum(g.cast(g.exp(shifted), 'float64'), [-1]));
      const logprob = (x: Value) => g.sub(g.cast(x, 'float64'), logZ);
      g.output('logprobs', logprob(g.gatherElements(shifted, g.input('next_tokens', 'int64', [B, LOGIT_POS, 1]), 2)));
      if (topK > 0) {
        const [values, indices] = g.topK(shifted, topK, -1);
        g.output('top_logprobs', logprob(values));
        g.output('top_ids', indices);
      }
      return g;
    };
    const feeds = {
      ...this.baseFeeds(batch, 0),
      logit_positions: Tensor.i64(Array.from({ length: n }, (_, t) => t), [n]),
      next_tokens: Tensor.i64(ids.slice(1), [1, n, 1]),
    };
    const out = await this.executor.run(JSON.stringify({ cfg: this.cfg, tokenLogprobs: topK }), build, feeds, { weights: [this.weights] });
    const top = Array.from({ length: n }, (_, t) => Array.from({ length: topK }, (_, j) => ({
      id: Number(out.top_ids.data[t * topK + j]),
      logprob: (out.top_logprobs.data as Float64Array)[t * topK + j],
    })));
    return { logprobs: Array.from(out.logprobs.data as Float64Array), top };
  }

  /** Logits for `input` (no hooks). */
  async run(input: ModelInput): Promise<Tensor> {
    return (await this.runWithHooks(input, {})).logits;
  }

  /** Logits plus the activations at `names` (default: every hook point except the optional hook_result). */
  async runWithCache(input: ModelInput, names?: string[] | ((name: string) => boolean)): Promise<RunResult> {
    return this.runWithHooks(input, { cache: names ?? ((n) => !OPTIONAL_HOOKS.test(n)) });
  }

  /** Runs the model with interventions, callbacks, a cache, past keys and values, segments or chosen logit positions. */
  async runWithHooks(input: ModelInput, opts: RunOptions): Promise<RunResult> {
    const batch = this.toBatch(input);
    const { spec, feeds } = this.plan(batch, opts, null);
    const callbacks = opts.callbacks ?? {};
    const kv = opts.kvCache;
    const out = spec.callbacks.length
      ? await this.runSegmented(spec, feeds, callbacks, kv)
      : await this.execute(spec, feeds, kv);
    kv?.appended(batch.lengths, batch.seq);
    return this.result(out, spec, batch);
  }

  /**
   * Gradient of a scalar objective of the logits with respect to hook activations
   * (default: the token embeddings, `hook_embed`). Interventions apply as in runWithHooks, so
   * e.g. integrated gradients can replace hook_embed by scaled embeddings.
   */
  async gradients(
    input: ModelInput,
    terms: ObjectiveTerm[],
    opts: { wrt?: string[]; interventions?: Intervention[]; cache?: RunOptions['cache']; logitPositions?: number[] } = {},
  ): Promise<GradientResult> {
    const batch = this.toBatch(input);
    const wrt = opts.wrt ?? ['hook_embed'];
    wrt.forEach((n) => this.checkHook(n));
    if (terms.length === 0) throw new LanternError('objective has no terms');
    const { spec, feeds } = this.plan(batch, { interventions: opts.interventions, cache: opts.cache, logitPositions: opts.logitPositions }, wrt);
    const lp = opts.logitPositions;
    const at = new Map(lp?.map((p, k) => [p, k]));
    spec.objectiveFromLogits = Boolean(lp) && terms.every((t) => at.has(t.pos));
    const n = terms.length;
    const rows = new BigInt64Array(n);
    const toks = new BigInt64Array(n);
    const cl = new Float32Array(n);
    const cp = new Float32Array(n);
    terms.forEach((t, i) => {
      const b = t.batch ?? 0;
      if (!Number.isInteger(b) || b < 0 || b >= batch.tokens.length) throw new LanternError(`objective term ${i}: batch ${b} out of range`);
      if (!Number.isInteger(t.pos) || t.pos < 0 || t.pos >= batch.lengths[b]) throw new LanternError(`objective term ${i}: position ${t.pos} outside prompt ${b} (length ${batch.lengths[b]})`);
      if (!Number.isInteger(t.token) || t.token < 0 || t.token >= this.cfg.dVocab) throw new LanternError(`objective term ${i}: token ${t.token} outside the vocabulary`);
      if (t.kind !== 'logit' && t.kind !== 'logprob') throw new LanternError(`objective term ${i}: kind '${t.kind}' is not 'logit' or 'logprob'`);
      rows[i] = BigInt(spec.objectiveFromLogits ? b * lp!.length + at.get(t.pos)! : b * batch.seq + t.pos);
      toks[i] = BigInt(t.token);
      (t.kind === 'logit' ? cl : cp)[i] = t.coef ?? 1;
    });
    Object.assign(feeds, {
      'objective.rows': new Tensor('int64', rows, [n]),
      'objective.tokens': new Tensor('int64', toks, [n, 1]),
      'objective.coef_logit': Tensor.f32(cl, [n, 1]),
      'objective.coef_logprob': Tensor.f32(cp, [n, 1]),
    });
    const out = await this.execute(spec, feeds);
    const res = this.result(out, spec, batch);
    const grads: Record<string, Tensor> = {};
    for (const name of wrt) grads[name] = out[`grad:${name}`];
    return { ...res, objective: out.objective.toArray()[0], terms: out['objective.terms'].toArray(), grads };
  }

  // ---------------------------------------------------------------------------------------------
  // Planning: user options -> a RunSpec (what the graph computes) + feeds (the values)

  private plan(batch: Batch, opts: RunOptions, gradWrt: string[] | null): { spec: RunSpec; feeds: Record<string, Tensor> } {
    const kv = opts.kvCache;
    if (kv && (opts.past || opts.segments)) throw new LanternError('a run continues either a kvCache or past keys and values (with segments), not both');
    if (kv && gradWrt) throw new LanternError('gradients cannot be taken through a kvCache run');
    const continuesCache = Boolean(kv && kv.slots > 0);
    // Packed rows' segments, and a filled cache's rows, give each row its own positions and mask instead of the shared ones.
    const feeds = opts.segments
      ? { tokens: this.tokenFeed(batch), ...this.segmentFeeds(opts.segments, batch, opts.past) }
      : continuesCache ? { tokens: this.tokenFeed(batch), ...kv!.feeds(batch.lengths, batch.seq) }
      : this.baseFeeds(batch, opts.past?.length ?? 0);
    if (opts.past) this.feedPast(opts.past, batch, feeds, Boolean(opts.segments));
    const interventions = (opts.interventions ?? []).map((iv, k) => this.planIntervention(iv, k, batch, feeds, Boolean(opts.past) || continuesCache));
    const callbacks = Object.keys(opts.callbacks ?? {});
    callbacks.forEach((n) => this.checkHook(n));
    if (gradWrt && callbacks.length) throw new LanternError('JavaScript hook callbacks cannot be combined with gradients; use declarative interventions');
    const order = new Map(this.hookNames.map((n, i) => [n, i]));
    callbacks.sort((a, b) => order.get(a)! - order.get(b)!);
    const lp = opts.logitPositions;
    let logitPositions: RunSpec['logitPositions'] = false;
    if (lp) {
      if (!Array.isArray(lp) || lp.length === 0) throw new LanternError('logitPositions must be a non-empty array of positions');
      const perRow = Array.isArray(lp[0]);
      if (perRow && gradWrt) throw new LanternError('per-row logitPositions are for runs without gradients');
      const rows = (perRow ? lp : [lp]) as number[][];
      if (perRow && rows.length !== batch.tokens.length) throw new LanternError(`per-row logitPositions give ${rows.length} rows for a batch of ${batch.tokens.length}`);
      for (const r of rows) {
        if (!Array.isArray(r) || r.length === 0 || r.length !== rows[0].length) throw new LanternError('per-row logitPositions must be non-empty arrays of one length');
        for (const p of r) if (!Number.isInteger(p) || p < 0 || p >= batch.seq) throw new LanternError(`logit position ${p} outside the sequence (length ${batch.seq})`);
      }
      feeds.logit_positions = perRow
        ? Tensor.i64(rows.flatMap((r, b) => r.map((p) => b * batch.seq + p)), [rows.length, rows[0].length])
        : Tensor.i64(rows[0], [rows[0].length]);
      logitPositions = perRow ? 'rows' : true;
    }
    const past = continuesCache ? 'rows' : pastKind(opts.past, batch);
    return { spec: { cache: this.resolveCache(opts.cache), interventions, callbacks, gradWrt, logitPositions, past, packed: Boolean(opts.segments) || continuesCache, keepsKeys: Boolean(kv), objectiveFromLogits: false }, feeds };
  }

  /** Checks packed rows' segments against the batch and the past, and builds their positions and masks. */
  private segmentFeeds(segments: Segment[][], batch: Batch, past: PastKeyValues | undefined): Record<string, Tensor> {
    if (!past) throw new LanternError('segments continue a prompt\'s prefixes: give its keys and values as past');
    if (!Array.isArray(segments) || segments.length !== batch.tokens.length) throw new LanternError(`segments must list each of the batch's ${batch.tokens.length} rows`);
    segments.forEach((row, b) => {
      let used = 0;
      for (const { start, length } of row) {
        if (!Number.isInteger(start) || start < 0 || start > past.length) throw new LanternError(`row ${b}: segment start ${start} outside [0, ${past.length}] (the past's length)`);
        if (!Number.isInteger(length) || length < 1) throw new LanternError(`row ${b}: segment length ${length} must be a positive integer`);
        if (start + length > this.cfg.nCtx) throw new LanternError(`row ${b}: a segment from position ${start} of ${length} tokens is longer than the model's context of ${this.cfg.nCtx}`);
        used += length;
      }
      if (used > batch.seq) throw new LanternError(`row ${b}: segments of ${used} tokens in a row of ${batch.seq}`);
    });
    return packedFeeds(segments, batch.seq, past.length);
  }

  private planIntervention(iv: Intervention, k: number, batch: Batch, feeds: Record<string, Tensor>, past: boolean): InterventionPlan {
    this.checkHook(iv.hook);
    const hookShape = this.hookShapes.get(iv.hook)!;
    const layout = this.hookLayouts.get(iv.hook)!;
    const where = `intervention ${k} (${iv.op} at ${iv.hook})`;
    const plan: InterventionPlan = { hook: iv.hook, op: iv.op };
    const ops: InterventionOp[] = ['replace', 'add', 'scale', 'zero', 'mean', 'project-out'];
    if (!ops.includes(iv.op)) throw new LanternError(`${where}: unknown op; use one of ${ops.join(', ')}`);
    if (iv.op === 'replace' || iv.op === 'add' || iv.op === 'project-out' || (iv.op === 'mean' && iv.value)) {
      if (!iv.value) throw new LanternError(`${where}: needs a value tensor`);
      // JavaScript callers can hand over a bare array; say what is expected instead of failing inside.
      if (!(iv.value instanceof Tensor)) throw new LanternError(`${where}: value must be a Tensor (Tensor.f32(data, shape), broadcasting against the activation), not ${Array.isArray(iv.value) ? 'an array' : (iv.value as object)?.constructor?.name ?? typeof iv.value}`);
      // Their key axis is then past + seq long, which a value's shape cannot be checked against.
      if (past && layout === 'pattern') throw new LanternError(`${where}: a run with past keys and values takes no attention-pattern values; use zero, scale or mean`);
      plan.valueShape = this.valueShape(iv.value, hookShape, batch, where);
      if (iv.op === 'project-out' && (iv.value.shape.length !== 1 || iv.value.shape[0] !== Number(hookShape[hookShape.length - 1]))) {
        throw new LanternError(`${where}: project-out takes a direction of shape [${String(hookShape[hookShape.length - 1])}] (the activation's last axis), got [${iv.value.shape}]`);
      }
      feeds[`iv${k}.value`] = iv.value.dtype === 'float32' ? iv.value : Tensor.f32(Float32Array.from(iv.value.toArray()), iv.value.shape);
    }
    if (iv.op === 'scale') {
      if (typeof iv.factor !== 'number' || !Number.isFinite(iv.factor)) throw new LanternError(`${where}: needs a finite factor`);
      feeds[`iv${k}.factor`] = Tensor.f32([iv.factor], []);
    }
    const posAxis = layout === 'pattern' ? 2 : 1;
    const headAxis = layout === 'pattern' ? 1 : layout === 'heads' ? 2 : -1;
    if (iv.op === 'mean' && !iv.value) {
      // The mean at each position is over the prompts that reach it: a shorter prompt's padded
      // positions hold activations of filler tokens and must not enter other prompts' means.
      const dims = hookShape.map(() => 1);
      dims[0] = batch.tokens.length;
      dims[posAxis] = batch.seq;
      const real = new Uint8Array(batch.tokens.length * batch.seq);
      batch.lengths.forEach((len, b) => real.fill(1, b * batch.seq, b * batch.seq + len));
      feeds[`iv${k}.real`] = Tensor.bool(real, dims);
      plan.realShape = hookShape.map((_, i) => (i === 0 ? B : i === posAxis ? T : 1));
    }
    if (iv.positions || iv.heads) {
      // Boolean mask over (position, head), broadcast over everything else.
      if (iv.heads && headAxis < 0) throw new LanternError(`${where}: 'heads' applies only to per-head hooks (q, k, v, z, result, attn_scores, pattern)`);
      const H = headAxis >= 0 ? Number(hookShape[headAxis]) : 0; // query heads, or kv heads for k and v
      for (const p of iv.positions ?? []) if (!Number.isInteger(p) || p < 0 || p >= batch.seq) throw new LanternError(`${where}: position ${p} outside the sequence (length ${batch.seq})`);
      for (const h of iv.heads ?? []) if (!Number.isInteger(h) || h < 0 || h >= H) throw new LanternError(`${where}: head ${h} outside [0, ${H})${H !== this.cfg.nHeads ? ` (this hook has the model's ${H} key/value heads)` : ''}`);
      const shape: Shape = hookShape.map(() => 1);
      const dims = hookShape.map(() => 1);
      if (iv.positions) { shape[posAxis] = T; dims[posAxis] = batch.seq; }
      if (iv.heads) { shape[headAxis] = H; dims[headAxis] = H; }
      const mask = Tensor.bool(new Uint8Array(dims.reduce((p, q) => p * q, 1)), dims);
      const st = mask.strides;
      const posSet = new Set(iv.positions ?? []);
      const headSet = new Set(iv.heads ?? []);
      for (let i = 0; i < mask.size; i++) {
        const inPos = !iv.positions || posSet.has(Math.floor(i / st[posAxis]) % dims[posAxis]);
        const inHead = !iv.heads || headSet.has(Math.floor(i / st[headAxis]) % dims[headAxis]);
        mask.data[i] = inPos && inHead ? 1 : 0;
      }
      feeds[`iv${k}.mask`] = mask;
      plan.maskShape = shape;
    }
    return plan;
  }

  /** The declared (possibly symbolic) shape of an intervention value, checked against the hook. */
  private valueShape(v: Tensor, hookShape: Shape, batch: Batch, where: string): Shape {
    if (v.shape.length > hookShape.length) throw new LanternError(`${where}: value of shape [${v.shape}] has more dims than the activation ${shapeToString(hookShape)}`);
    const off = hookShape.length - v.shape.length;
    return v.shape.map((d, i) => {
      const h = hookShape[i + off];
      const actual = h === B ? batch.tokens.length : h === T ? batch.seq : h;
      if (d === 1) return 1;
      if (d !== actual) {
        throw new LanternError(`${where}: value of shape [${v.shape}] does not broadcast to the activation [${hookShape.map((x) => (x === B ? batch.tokens.length : x === T ? batch.seq : x))}]`);
      }
      return h;
    });
  }

  // ---------------------------------------------------------------------------------------------
  // Building and executing

  private signature(spec: RunSpec): string {
    return JSON.stringify({ cfg: this.cfg, ...spec });
  }

  private build(spec: RunSpec): Graph {
    const g = new Graph();
    const cache = new Set(spec.cache);
    const callbacks = new Set(spec.callbacks);
    const byHook = new Map<string, { plan: InterventionPlan; k: number }[]>();
    spec.interventions.forEach((plan, k) => byHook.set(plan.hook, [...(byHook.get(plan.hook) ?? []), { plan, k }]));
    const wrtValues = new Map<string, Value>();
    const aliases = cacheAliases(spec, this.cfg.nLayers);
    const wants = (name: string) => cache.has(name) || callbacks.has(name) || byHook.has(name) || (spec.gradWrt ?? []).includes(name);

    const hook = (name: string, v0: Value): Value => {
      let v = v0;
      for (const { plan, k } of byHook.get(name) ?? []) v = applyIntervention(g, v, plan, k);
      if (callbacks.has(name)) {
        g.output(`cut:${name}`, v);
        v = g.input(`cutin:${name}`, v.dtype, v.shape);
      }
      if (spec.gradWrt?.includes(name)) {
        // A fresh node, so the gradient is wrt exactly the activation the rest of the model uses.
        v = g.identity(v);
        wrtValues.set(name, v);
      }
      if (cache.has(name) && !aliases.has(name)) g.output(name, v);
      return v;
    };
    const model = buildForward(g, this.cfg, modelInputs(g, { logitPositions: spec.logitPositions, past: spec.past ? this.cfg : undefined, pastRows: spec.past === 'rows', packed: spec.packed }), hook, wants);
    g.output('logits', model.logits);
    if (spec.keepsKeys) {
      model.keys.forEach(({ k, v }, l) => {
        g.output(`present:${pastName(l, 'k')}`, k);
        g.output(`present:${pastName(l, 'v')}`, v);
      });
    }
    if (spec.gradWrt) {
      const objective = objectiveGraph(g, model, spec.objectiveFromLogits);
      g.output('objective', objective);
      const grads = gradients(g, objective, spec.gradWrt.map((n) => wrtValues.get(n)!));
      spec.gradWrt.forEach((n, i) => g.output(`grad:${n}`, grads[i]));
    }
    return g;
  }

  private execute(spec: RunSpec, feeds: Record<string, Tensor>, kv?: KvCache): Promise<Record<string, Tensor>> {
    return this.executor.run(this.signature(spec), () => this.build(spec), feeds, this.runWeights(kv));
  }

  /** The weights a run reads, and with a key/value cache, its kept keys and values, which the run's outputs then replace there. */
  private runWeights(kv?: KvCache): { weights: WeightSet[]; update?: Record<string, { set: WeightSet; name: string }> } {
    if (!kv) return { weights: [this.weights] };
    const update: Record<string, { set: WeightSet; name: string }> = {};
    for (let l = 0; l < this.cfg.nLayers; l++) {
      for (const kind of ['k', 'v'] as const) update[`present:${pastName(l, kind)}`] = { set: kv.set, name: pastName(l, kind) };
    }
    return { weights: [this.weights, kv.set], update };
  }

  /** Runs the graph in pieces split at each JS callback, calling back in between. */
  private async runSegmented(spec: RunSpec, feeds: Record<string, Tensor>, callbacks: Record<string, HookCallback>, kv?: KvCache) {
    const sig = this.signature(spec);
    const segments = splitAtCuts(this.build(spec), spec.callbacks);
    const values: Record<string, Tensor> = { ...feeds };
    for (let s = 0; s < segments.length; s++) {
      // A piece leaves the keys and values it computes in the cache (each layer's past is read only by the piece that extends it).
      const out = await this.executor.run(`${sig}#${s}`, () => segments[s], values, this.runWeights(kv));
      Object.assign(values, out);
      const name = spec.callbacks[s];
      if (name === undefined) continue;
      const act = values[`cut:${name}`];
      const replaced = await callbacks[name](act, name);
      if (replaced) {
        if (!(replaced instanceof Tensor)) throw new LanternError(`callback at ${name} returned something other than a Tensor (or nothing)`);
        if (replaced.shape.join(',') !== act.shape.join(',')) {
          throw new LanternError(`callback at ${name} returned shape [${replaced.shape}], expected [${act.shape}]`);
        }
        if (replaced.dtype !== act.dtype) throw new LanternError(`callback at ${name} returned a ${replaced.dtype} tensor, expected ${act.dtype}`);
      }
      values[`cutin:${name}`] = replaced ?? act;
    }
    return values;
  }

  private result(out: Record<string, Tensor>, spec: RunSpec, batch: Batch): RunResult {
    const cache = new ActivationCache(this.cfg, batch);
    const aliases = cacheAliases(spec, this.cfg.nLayers);
    for (const name of spec.cache) cache.set(name, out[aliases.get(name) ?? name]);
    return { logits: out.logits, cache, batch };
  }
}

/** Whether a run's past is one prefix shared by every row or each row's own (one row: shared, the same either way). */
function pastKind(past: PastKeyValues | undefined, batch: Batch): RunSpec['past'] {
  if (!past) return false;
  return batch.tokens.length > 1 && past.keys[0].shape[0] === batch.tokens.length ? 'rows' : 'shared';
}

/**
 * Cached hooks that are the very same tensor as another cached hook, so the run outputs it once:
 * blocks.{l+1}.hook_resid_pre is blocks.{l}.hook_resid_post unless something acts on either.
 */
function cacheAliases(spec: RunSpec, nLayers: number): Map<string, string> {
  const cached = new Set(spec.cache);
  const touched = new Set([...spec.interventions.map((p) => p.hook), ...spec.callbacks, ...(spec.gradWrt ?? [])]);
  const aliases = new Map<string, string>();
  for (let l = 0; l + 1 < nLayers; l++) {
    const post = `blocks.${l}.hook_resid_post`;
    const pre = `blocks.${l + 1}.hook_resid_pre`;
    if (cached.has(post) && cached.has(pre) && !touched.has(post) && !touched.has(pre)) aliases.set(pre, post);
  }
  return aliases;
}

function applyIntervention(g: Graph, act: Value, plan: InterventionPlan, k: number): Value {
  const value = () => g.input(`iv${k}.value`, 'float32', plan.valueShape!);
  let target: Value;
  switch (plan.op) {
    case 'replace': target = g.add(g.zerosLike(act), value()); break;
    case 'add': target = g.add(act, value()); break;
    case 'scale': target = g.mul(act, g.input(`iv${k}.factor`, 'float32', [])); break;
    case 'zero': target = g.zerosLike(act); break;
    case 'project-out': {
      const u = value();
      target = g.sub(act, g.mul(g.reduceSum(g.mul(act, u), [act.shape.length - 1], true), u));
      break;
    }
    case 'mean': {
      if (plan.valueShape) { target = g.add(g.zerosLike(act), value()); break; }
      // Sum over the real (unpadded) prompts at each position / their count. Where, not a
      // multiply by 0/1, so masked -inf attention scores in padded rows cannot turn into NaN.
      const real = g.input(`iv${k}.real`, 'bool', plan.realShape!);
      const sum = g.reduceSum(g.where(real, act, g.scalar(0, act.dtype)), [0], true);
      const count = g.reduceSum(g.cast(real, act.dtype), [0], true);
      target = g.expandLike(g.div(sum, count), act);
      break;
    }
  }
  if (!plan.maskShape) return target;
  return g.where(g.input(`iv${k}.mask`, 'bool', plan.maskShape), target, act);
}

/**
 * sum_i coef_logit_i * logit_i + coef_logprob_i * logprob_i over (row, token) pairs. When the
 * logits were computed only at positions that include every term's, the rows are read from them
 * (`fromLogits`; `rows` then index [batch * logit_pos]), so no row is unembedded twice (reading
 * all of W_U once more per run). Otherwise only the rows the objective reads are unembedded
 * again, so the backward pass never touches the [batch * seq, vocab] logits (at T=128 the
 * unembedding is ~30% of GPT-2 small's FLOPs).
 */
function objectiveGraph(g: Graph, model: ForwardOutputs, fromLogits: boolean): Value {
  const rows = g.input('objective.rows', 'int64', ['terms']);
  const tokens = g.input('objective.tokens', 'int64', ['terms', 1]);
  const coefLogit = g.input('objective.coef_logit', 'float32', ['terms', 1]);
  const coefLogprob = g.input('objective.coef_logprob', 'float32', ['terms', 1]);
  const picked = fromLogits // [terms, vocab]
    ? g.gather(g.reshape(model.logits, [-1, model.logits.shape[2]]), rows)
    : model.unembed(g.gather(model.finalFlat, rows));
  const logit = g.gatherElements(picked, tokens, 1);
  const logprob = g.gatherElements(g.logSoftmax(picked, -1), tokens, 1);
  const terms = g.add(g.mul(coefLogit, logit), g.mul(coefLogprob, logprob));
  g.output('objective.terms', g.reshape(terms, [-1]));
  return g.reduceSum(terms, [0, 1], false);
}
