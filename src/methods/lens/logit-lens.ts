/**
 * Logit lens (nostalgebraist, 2020): decode the residual stream before every block, and after the
 * last, through the model's own final LayerNorm and unembedding, as if the model stopped there.
 *
 * The decoding is one ONNX graph over the model's weight set: a [layers + 1, seq, d_model] stack
 * goes in; top-k log-probs and ids, the target's log-prob and rank (and, when asked, the full
 * log-probs) come out. Nothing loops over the vocabulary in JavaScript.
 */
import { LanternError } from '../../errors.js';
import { Graph, Value } from '../../engine/graph/ir.js';
import { Tensor } from '../../engine/tensor.js';
import type { HookedTransformer } from '../../models/hooked.js';
import { readout } from '../../models/forward.js';
import { translateStack, TunedLens } from './tuned-lens.js';

/** What to read from decoded residual streams: top-k, a target's rank, or full log-probs. */
export interface DecodeOptions {
  /** How many top tokens per (layer, position); 0 for none (default 5, at most the vocabulary). */
  topK?: number;
  /** A token id to follow at every position, or one per position (e.g. the actual next tokens). */
  target?: number | number[];
  /** Also return the full log-probs [n, seq, vocab] (large: n * seq * vocab floats). */
  logprobs?: boolean;
  /** Also return KL(last || row) [n][seq]: each row's divergence from the last row's distribution at the same position, from full distributions. */
  klToLast?: boolean;
}

/** Residual streams decoded to next-token distributions. */
export interface Decoded {
  /** [n, seq, k] top-k log-probs (descending) and their token ids. */
  topLogprobs?: Tensor;
  topIds?: number[][][];
  /** [n][seq] the target's log-prob and its rank (0 = the most likely token). */
  targetLogprob?: number[][];
  targetRank?: number[][];
  logprobs?: Tensor;
  /** [n][seq] KL(last row || this row) in nats (with `klToLast`). */
  klToLast?: number[][];
}

/**
 * Decodes residual-stream vectors [n, seq, d_model] through the final norm and the unembedding, in one
 * graph run on the model's weights. Residual vectors are those the model would feed to
 * ln_final (un-normalised), e.g. `cache.accumulatedResid()`.
 */
export async function decodeResid(model: HookedTransformer, stack: Tensor, opts: DecodeOptions = {}): Promise<Decoded> {
  const { cfg } = model;
  if (stack.shape.length !== 3 || stack.shape[2] !== cfg.dModel) {
    throw new LanternError(`decodeResid: expected a [n, seq, ${cfg.dModel}] stack, got [${stack.shape}]`);
  }
  const [n, seq] = stack.shape;
  const k = Math.min(opts.topK ?? 5, cfg.dVocab);
  if (!Number.isInteger(k) || k < 0) throw new LanternError(`top-k must be a non-negative integer, got ${opts.topK}`);
  let targets: number[] | undefined;
  if (opts.target !== undefined) {
    targets = typeof opts.target === 'number' ? Array(seq).fill(opts.target) : opts.target;
    if (targets.length !== seq) throw new LanternError(`decodeResid: ${targets.length} targets for ${seq} positions`);
    for (const t of targets) if (!Number.isInteger(t) || t < 0 || t >= cfg.dVocab) throw new LanternError(`target token ${t} is outside the vocabulary [0, ${cfg.dVocab})`);
  }
  const spec = { k, target: !!targets, logprobs: !!opts.logprobs, kl: !!opts.klToLast };
  const feeds: Record<string, Tensor> = { 'lens.resid': stack.dtype === 'float32' ? stack : Tensor.f32(Float32Array.from(stack.toArray()), stack.shape) };
  if (k > 0) feeds['lens.k'] = Tensor.i64([k], [1]);
  if (targets) {
    const idx = new BigInt64Array(n * seq);
    for (let i = 0; i < n; i++) for (let p = 0; p < seq; p++) idx[i * seq + p] = BigInt(targets[p]);
    feeds['lens.target'] = new Tensor('int64', idx, [n, seq, 1]);
  }
  if (spec.kl) feeds['lens.last'] = Tensor.i64([n - 1], [1]);
  const signature = JSON.stringify({ method: 'logit-lens', cfg, ...spec });
  const out = await model.executor.run(signature, () => lensGraph(model, spec), feeds, { weights: [model.weights] });
  const res: Decoded = {};
  if (k > 0) {
    res.topLogprobs = out['lens.top_logprobs'];
    const ids = out['lens.top_ids'].data as BigInt64Array;
    res.topIds = Array.from({ length: n }, (_, i) => Array.from({ length: seq }, (_, p) => Array.from({ length: k }, (_, j) => Number(ids[(i * seq + p) * k + j]))));
  }
  if (targets) {
    const lp = out['lens.target_logprob'].f32;
    const rank = out['lens.target_rank'].f32;
    res.targetLogprob = Array.from({ length: n }, (_, i) => Array.from(lp.subarray(i * seq, (i + 1) * seq)));
    res.targetRank = Array.from({ length: n }, (_, i) => Array.from(rank.subarray(i * seq, (i + 1) * seq), Math.round));
  }
  if (opts.logprobs) res.logprobs = out['lens.logprobs'];
  if (spec.kl) {
    const kl = out['lens.kl'].f32;
    // Rounding can leave a tiny negative where the distributions agree; KL is never below 0.
    res.klToLast = Array.from({ length: n }, (_, i) => Array.from(kl.subarray(i * seq, (i + 1) * seq), (x) => Math.max(0, x)));
  }
  return res;
}

/** The model's final norm and unembedding (its own readout), then log-softmax. */
function lensGraph(model: HookedTransformer, spec: { k: number; target: boolean; logprobs: boolean; kl: boolean }): Graph {
  const { cfg } = model;
  const g = new Graph();
  const x = g.input('lens.resid', 'float32', ['n', 'seq', cfg.dModel]);
  const logprobs: Value = g.logSoftmax(readout(g, cfg, x), -1); // [n, seq, vocab]
  if (spec.logprobs) g.output('lens.logprobs', logprobs);
  if (spec.kl) {
    const last = g.gather(logprobs, g.input('lens.last', 'int64', [1])); // [1, seq, vocab]
    g.output('lens.kl', g.reduceSum(g.mul(g.exp(last), g.sub(last, logprobs)), [2], false)); // [n, seq]
  }
  if (spec.k > 0) {
    const outShape = ['n', 'seq', spec.k];
    const [values, ids] = g.node('TopK', [logprobs, g.input('lens.k', 'int64', [1])], { axis: 2, largest: 1, sorted: 1 }, [
      ['float32', outShape],
      ['int64', outShape],
    ]);
    g.output('lens.top_logprobs', values);
    g.output('lens.top_ids', ids);
  }
  if (spec.target) {
    const lp = g.gatherElements(logprobs, g.input('lens.target', 'int64', ['n', 'seq', 1]), 2); // [n, seq, 1]
    // Rank: how many tokens are strictly more likely than the target.
    const rank = g.reduceSum(g.cast(g.greater(logprobs, lp), 'float32'), [2], false);
    g.output('lens.target_logprob', g.reshape(lp, ['n', 'seq']));
    g.output('lens.target_rank', rank);
  }
  return g;
}

/** One (layer, position) cell of a lens: its top tokens and the target's probability and rank. */
export interface LensCell {
  /** Top-k tokens, most likely first. */
  top: { id: number; token?: string; prob: number; logprob: number }[];
  target?: { id: number; prob: number; logprob: number; rank: number };
  /** KL(final layer || this layer) in nats, from the full next-token distributions (0 at the final layer). */
  kl: number;
}

/** A lens grid: every layer's prediction at every position. */
export interface LogitLensResult {
  /** 'tuned-lens' when decoded through a tuned lens's translators. */
  method: 'logit-lens' | 'tuned-lens';
  tokens: number[];
  tokenStrings?: string[];
  /** '0_pre' … '{L-1}_pre', 'final_post': the residual stream before each block and after the last. */
  layers: string[];
  /** cells[layer][pos]. */
  cells: LensCell[][];
  settings: { topK: number; target?: number | number[]; tuned?: boolean };
}

/** Logit lens settings: top-k, target, and a tuned lens to use instead. */
export interface LogitLensOptions {
  topK?: number;
  /** A token id (every position) or one id per position; a string is tokenized and must be one token. */
  target?: number | number[] | string;
  /** Decode through this tuned lens's translators instead (the final layer is untouched either way). */
  tuned?: TunedLens;
}

/**
 * The logit lens of one prompt: at every layer (resid_pre of each block and the final
 * resid_post) and position, the top-k tokens and the target's probability and rank.
 */
export async function logitLens(model: HookedTransformer, input: string | number[], opts: LogitLensOptions = {}): Promise<LogitLensResult> {
  const tokens = typeof input === 'string' ? model.toTokens(input) : input;
  const L = model.cfg.nLayers;
  const names = [...Array.from({ length: L }, (_, l) => `blocks.${l}.hook_resid_pre`), `blocks.${L - 1}.hook_resid_post`];
  const { cache } = await model.runWithCache([tokens], names);
  const { stack, labels } = cache.accumulatedResid(); // [L + 1, 1, seq, d]
  const seq = tokens.length;
  const raw = stack.reshape([L + 1, seq, model.cfg.dModel]);
  const resid = opts.tuned ? translateStack(opts.tuned, raw) : raw;
  const target = typeof opts.target === 'string' ? singleToken(model, opts.target, 'target') : opts.target;
  const topK = opts.topK ?? 5;
  const d = await decodeResid(model, resid, { topK, target, klToLast: true });
  const str = model.tokenizer ? (id: number) => model.tokenStrings([id])[0] : undefined;
  const k = d.topIds?.[0]?.[0]?.length ?? 0;
  const cells: LensCell[][] = labels.map((_, l) => Array.from({ length: seq }, (_, p) => {
    const top = Array.from({ length: k }, (_, j) => {
      const id = d.topIds![l][p][j];
      const logprob = d.topLogprobs!.f32[(l * seq + p) * k + j];
      return { id, ...(str ? { token: str(id) } : {}), prob: Math.exp(logprob), logprob };
    });
    const cell: LensCell = { top, kl: d.klToLast![l][p] };
    if (target !== undefined) {
      const id = typeof target === 'number' ? target : target[p];
      const logprob = d.targetLogprob![l][p];
      cell.target = { id, prob: Math.exp(logprob), logprob, rank: d.targetRank![l][p] };
    }
    return cell;
  }));
  return {
    method: opts.tuned ? 'tuned-lens' : 'logit-lens', tokens, ...(model.tokenizer ? { tokenStrings: model.tokenStrings(tokens) } : {}),
    layers: labels, cells, settings: { topK, ...(target !== undefined ? { target } : {}), ...(opts.tuned ? { tuned: true } : {}) },
  };
}

/** The id of `text` if it is exactly one token; a LanternError otherwise. */
export function singleToken(model: HookedTransformer, text: string, what: string): number {
  const ids = model.encode(text);
  if (ids.length !== 1) {
    const parts = model.tokenStrings(ids).map((s) => JSON.stringify(s)).join(', ');
    throw new LanternError(`${what} ${JSON.stringify(text)} is ${ids.length} tokens (${parts || 'none'}), not a single token`);
  }
  return ids[0];
}
