/**
 * GPT-2 as a Lantern graph, written to read like the math (cf. nanoGPT's model.py and
 * TransformerLens's components/). Every `hook(...)` call is a TransformerLens hook point: the
 * runner decides per run whether it is cached, intervened on, handed to a JS callback or
 * differentiated, and returns the value the rest of the model should use.
 */
import { Graph, Value } from '../../engine/graph/ir.js';
import { Tensor } from '../../engine/tensor.js';
import type { ModelConfig } from '../config.js';

/** How a hook's activation is laid out, so interventions know which axes are positions and heads. */
export type Layout = 'resid' | 'heads' | 'pattern';
export type Hook = (name: string, v: Value, layout: Layout) => Value;

export const B = 'batch';
export const T = 'seq';
/** Earlier positions whose keys and values a run takes as inputs instead of computing them. */
export const PAST = 'past';
/** What a query of a run with past keys and values attends to: the past positions, then the run's own. */
export const KEYS = `${PAST}+${T}`;

/** Graph input names of the weights, in Lantern's (TransformerLens-like) naming. */
export function weightShapes(cfg: ModelConfig): Record<string, number[]> {
  const { dModel: D, dMlp: F, dVocab: V, nCtx: P } = cfg;
  const shapes: Record<string, number[]> = { 'embed.W_E': [V, D], 'pos_embed.W_pos': [P, D] };
  for (let l = 0; l < cfg.nLayers; l++) {
    const p = `blocks.${l}`;
    Object.assign(shapes, {
      [`${p}.ln1.w`]: [D], [`${p}.ln1.b`]: [D],
      [`${p}.attn.W_QKV`]: [D, 3 * D], [`${p}.attn.b_QKV`]: [3 * D],
      [`${p}.attn.W_O`]: [D, D], [`${p}.attn.b_O`]: [D],
      [`${p}.ln2.w`]: [D], [`${p}.ln2.b`]: [D],
      [`${p}.mlp.W_in`]: [D, F], [`${p}.mlp.b_in`]: [F],
      [`${p}.mlp.W_out`]: [F, D], [`${p}.mlp.b_out`]: [D],
    });
  }
  shapes['ln_final.w'] = [D];
  shapes['ln_final.b'] = [D];
  if (!cfg.tiedUnembed) shapes['unembed.W_U_T'] = [V, D];
  return shapes;
}

/** Every hook point of the model, in execution order. */
export function hookNames(cfg: ModelConfig): string[] {
  const names = ['hook_embed', 'hook_pos_embed'];
  for (let l = 0; l < cfg.nLayers; l++) {
    const p = `blocks.${l}`;
    names.push(
      `${p}.hook_resid_pre`, `${p}.ln1.hook_scale`, `${p}.ln1.hook_normalized`,
      `${p}.attn.hook_q`, `${p}.attn.hook_k`, `${p}.attn.hook_v`,
      `${p}.attn.hook_attn_scores`, `${p}.attn.hook_pattern`, `${p}.attn.hook_z`, `${p}.attn.hook_result`,
      `${p}.hook_attn_out`, `${p}.hook_resid_mid`, `${p}.ln2.hook_scale`, `${p}.ln2.hook_normalized`,
      `${p}.mlp.hook_pre`, `${p}.mlp.hook_post`, `${p}.hook_mlp_out`, `${p}.hook_resid_post`,
    );
  }
  names.push('ln_final.hook_scale', 'ln_final.hook_normalized');
  return names;
}

/**
 * Hooks that cost extra compute and are built only when a run asks for them
 * (TransformerLens gates hook_result behind use_attn_result for the same reason).
 */
export const OPTIONAL_HOOKS = /\.attn\.hook_result$/;

export interface Gpt2Inputs {
  tokens: Value; // int64 [batch, seq]
  /**
   * int64 [seq], offset by the past length when there is one; [batch, seq] when rows are packed
   * (`packedFeeds`): each row's own positions.
   */
  positions: Value;
  /**
   * bool [seq, seq] ([seq, past+seq] with past), true where a query may attend; [batch, seq,
   * past+seq] when rows are packed.
   */
  causalMask: Value;
  /**
   * When present, logits are computed only at these positions: int64 [logit_pos], the same in
   * every row, or [batch, logit_pos] (flat indices b * seq + position), each row's own.
   */
  logitPositions?: Value;
  /**
   * Per layer, the keys and values of one prompt's first `past` positions, [1, past, heads,
   * d_head], shared by every batch entry: the run computes only the positions after them. Under
   * causal attention nothing later changes an earlier position, so this equals running the whole
   * sequence while recomputing only what can differ.
   */
  past?: { k: Value; v: Value }[];
}

/** Symbolic length of the `logit_positions` input. */
export const LOGIT_POS = 'logit_pos';

/** Values for the `positions` and `causal_mask` inputs at sequence length `seq`, after `past` earlier positions. */
export function positionFeeds(seq: number, past = 0): { positions: Tensor; causal_mask: Tensor } {
  const keys = past + seq;
  const mask = new Uint8Array(seq * keys);
  for (let q = 0; q < seq; q++) mask.fill(1, q * keys, q * keys + past + q + 1);
  return {
    positions: Tensor.i64(Array.from({ length: seq }, (_, i) => past + i), [seq]),
    causal_mask: new Tensor('bool', mask, [seq, keys]),
  };
}

/**
 * Several sequences in each row, all continuing one prompt whose keys and values are the run's
 * past (sequence packing): `segments[b]` lists row b's pieces in order. A piece of `length` tokens
 * is the continuation of the prompt's first `start` positions: its tokens sit at positions
 * start, start + 1, … and attend to those past positions and to the piece's own earlier tokens,
 * nothing else. Positions a row's pieces leave over attend only to themselves.
 */
export interface Segment {
  start: number;
  length: number;
}

/** Per-row `positions` [batch, seq] and `causal_mask` [batch, seq, past + seq] of packed rows. */
export function packedFeeds(segments: Segment[][], seq: number, past: number): { positions: Tensor; causal_mask: Tensor } {
  const keys = past + seq;
  const B = segments.length;
  const positions = new Array<number>(B * seq).fill(0);
  const mask = new Uint8Array(B * seq * keys);
  segments.forEach((row, b) => {
    let offset = 0;
    for (const { start, length } of row) {
      for (let j = 0; j < length; j++) {
        const q = b * seq + offset + j;
        positions[q] = start + j;
        mask.fill(1, q * keys, q * keys + start);
        mask.fill(1, q * keys + past + offset, q * keys + past + offset + j + 1);
      }
      offset += length;
    }
    for (let q = b * seq + offset; q < (b + 1) * seq; q++) mask[q * keys + past + q - b * seq] = 1;
  });
  return { positions: Tensor.i64(positions, [B, seq]), causal_mask: new Tensor('bool', mask, [B, seq, keys]) };
}

/**
 * The model's graph inputs; with `logitPositions`, also `logit_positions` (int64 [logit_pos], or
 * per row [batch, logit_pos] with 'rows'); with `past` (the model's config), each layer's past keys
 * and values `past.{l}.k` / `past.{l}.v`; with `packed` (which needs `past`), per-row positions
 * and masks (`packedFeeds`).
 */
export function gpt2Inputs(g: Graph, opts: { logitPositions?: boolean | 'rows'; past?: ModelConfig; packed?: boolean } = {}): Gpt2Inputs {
  const cfg = opts.past;
  const rows = opts.packed ? [B] : [];
  return {
    tokens: g.input('tokens', 'int64', [B, T]),
    positions: g.input('positions', 'int64', [...rows, T]),
    causalMask: g.input('causal_mask', 'bool', [...rows, T, cfg ? KEYS : T]),
    ...(opts.logitPositions ? { logitPositions: g.input('logit_positions', 'int64', opts.logitPositions === 'rows' ? [B, LOGIT_POS] : [LOGIT_POS]) } : {}),
    ...(cfg ? {
      past: Array.from({ length: cfg.nLayers }, (_, l) => ({
        k: g.input(`past.${l}.k`, 'float32', [1, PAST, cfg.nHeads, cfg.dHead]),
        v: g.input(`past.${l}.v`, 'float32', [1, PAST, cfg.nHeads, cfg.dHead]),
      })),
    } : {}),
  };
}

export interface Gpt2Outputs {
  logits: Value; // [batch, seq, vocab], or [batch, logit_pos, vocab] at inp.logitPositions
  /** The final residual after ln_final, flattened to [batch * seq, d_model]. */
  finalFlat: Value;
  /** rows [n, d_model] -> logits [n, vocab]. */
  unembed: (rows: Value) => Value;
}

/** Builds GPT-2's forward pass on `g`. */
export function gpt2Forward(g: Graph, cfg: ModelConfig, inp: Gpt2Inputs, hook: Hook, wants: (name: string) => boolean): Gpt2Outputs {
  const W = (name: string) => weightInput(g, cfg, name);
  const { dModel: D, nHeads: H, dHead: dh } = cfg;
  const f = (x: number) => g.scalar(x);

  const layerNorm = (x: Value, prefix: string): Value => {
    const centred = g.sub(x, g.reduceMean(x, [-1]));
    const scale = hook(`${prefix}.hook_scale`, g.sqrt(g.add(g.reduceMean(g.mul(centred, centred), [-1]), f(cfg.lnEps))), 'resid');
    // As TransformerLens's LayerNorm: hook_normalized is after the affine map, i.e. exactly what the
    // next linear layer reads (with folded LayerNorm weights, w = 1 and b = 0, it is x / scale).
    return hook(`${prefix}.hook_normalized`, g.add(g.mul(g.div(centred, scale), W(`${prefix}.w`)), W(`${prefix}.b`)), 'resid');
  };

  const activation = (x: Value): Value => {
    if (cfg.act === 'relu') return g.where(g.greater(x, f(0)), x, g.zerosLike(x));
    if (cfg.act === 'gelu') return g.mul(g.mul(x, f(0.5)), g.add(f(1), g.erf(g.mul(x, f(Math.SQRT1_2)))));
    // gelu_new: 0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3)))
    const inner = g.mul(g.add(x, g.mul(g.pow(x, 3), f(0.044715))), f(Math.sqrt(2 / Math.PI)));
    return g.mul(g.mul(x, f(0.5)), g.add(f(1), g.tanh(inner)));
  };

  const heads = (x: Value) => g.reshape(x, [B, T, H, dh]); // [b, t, h, dh]
  // [t, keys] broadcasts over batch and heads; packed rows' [b, t, keys] over heads.
  const causalMask = inp.causalMask.shape.length === 3 ? g.unsqueeze(inp.causalMask, [1]) : inp.causalMask;

  // Past keys (or values) of every batch entry, then the run's own: [b, past + t, h, dh]. Expand,
  // not a broadcasting matmul against the past, so that each query's scores and its weighted sum
  // of values are one matmul over all keys, as in a run of the whole sequence.
  let batchOnes: Value | undefined; // [b, 1, 1, 1]
  const afterPast = (past: Value, x: Value) => {
    batchOnes ??= g.concat([g.slice(g.shapeOf(inp.tokens), 0, 0, 1), g.ints([1, 1, 1])], 0);
    return g.concat([g.expand(past, batchOnes, [B, PAST, H, dh]), x], 1);
  };

  const attention = (x: Value, l: number): Value => {
    const p = `blocks.${l}`;
    const qkv = g.add(g.matmul(x, W(`${p}.attn.W_QKV`)), W(`${p}.attn.b_QKV`));
    const [q0, k0, v0] = g.split(qkv, -1, [D, D, D]);
    const q = hook(`${p}.attn.hook_q`, heads(q0), 'heads');
    const k = hook(`${p}.attn.hook_k`, heads(k0), 'heads');
    const v = hook(`${p}.attn.hook_v`, heads(v0), 'heads');
    const past = inp.past?.[l];
    const keys = past ? afterPast(past.k, k) : k;
    const values = past ? afterPast(past.v, v) : v;
    // scores[b, h, q, k] = q . k / sqrt(dh), -inf where k is in q's future
    // (Scaling q rather than the [q, k] scores touches T*D values instead of H*T*T.)
    const scores = g.matmul(g.transpose(g.mul(q, f(1 / Math.sqrt(dh))), [0, 2, 1, 3]), g.transpose(keys, [0, 2, 3, 1]));
    const masked = hook(`${p}.attn.hook_attn_scores`, g.where(causalMask, scores, f(-Infinity)), 'pattern');
    const pattern = hook(`${p}.attn.hook_pattern`, g.softmax(masked, -1), 'pattern');
    const z = hook(`${p}.attn.hook_z`, g.transpose(g.matmul(pattern, g.transpose(values, [0, 2, 1, 3])), [0, 2, 1, 3]), 'heads');
    if (wants(`${p}.attn.hook_result`)) {
      // result[b, t, h, :] = z[b, t, h, :] @ W_O[h]: each head's write to the residual stream.
      const WO = g.reshape(W(`${p}.attn.W_O`), [H, dh, D]);
      const result = hook(`${p}.attn.hook_result`, g.transpose(g.matmul(g.transpose(z, [0, 2, 1, 3]), WO), [0, 2, 1, 3]), 'heads');
      return g.add(g.reduceSum(result, [2], false), W(`${p}.attn.b_O`));
    }
    return g.add(g.matmul(g.reshape(z, [B, T, D]), W(`${p}.attn.W_O`)), W(`${p}.attn.b_O`));
  };

  const mlp = (x: Value, p: string): Value => {
    const pre = hook(`${p}.mlp.hook_pre`, g.add(g.matmul(x, W(`${p}.mlp.W_in`)), W(`${p}.mlp.b_in`)), 'resid');
    const post = hook(`${p}.mlp.hook_post`, activation(pre), 'resid');
    return g.add(g.matmul(post, W(`${p}.mlp.W_out`)), W(`${p}.mlp.b_out`));
  };

  const embed = hook('hook_embed', g.gather(W('embed.W_E'), inp.tokens), 'resid');
  const posRows = g.gather(W('pos_embed.W_pos'), inp.positions); // [t, d], or packed rows' [b, t, d]
  const posEmbed = hook('hook_pos_embed', g.expandLike(posRows.shape.length === 3 ? posRows : g.unsqueeze(posRows, [0]), embed), 'resid');
  let resid = g.add(embed, posEmbed);
  for (let l = 0; l < cfg.nLayers; l++) {
    const p = `blocks.${l}`;
    const residPre = hook(`${p}.hook_resid_pre`, resid, 'resid');
    const attnOut = hook(`${p}.hook_attn_out`, attention(layerNorm(residPre, `${p}.ln1`), l), 'resid');
    const residMid = hook(`${p}.hook_resid_mid`, g.add(residPre, attnOut), 'resid');
    const mlpOut = hook(`${p}.hook_mlp_out`, mlp(layerNorm(residMid, `${p}.ln2`), p), 'resid');
    resid = hook(`${p}.hook_resid_post`, g.add(residMid, mlpOut), 'resid');
  }
  const final = layerNorm(resid, 'ln_final');
  // logits = final @ W_U. The unembedding is stored as [vocab, d_model] (tied to W_E, or HF's
  // lm_head layout) and read transposed in place, so it is never copied into [d_model, vocab].
  const WU_T = cfg.tiedUnembed ? W('embed.W_E') : W('unembed.W_U_T');
  const unembed = (rows: Value) => g.matmulTransB(rows, WU_T);
  // A method that reads one position's next-token distribution need not unembed the other T − 1
  // (the unembedding is the largest single matmul of a short prompt, and its output the largest tensor).
  const finalFlat = g.reshape(final, [-1, D]);
  const lp = inp.logitPositions;
  const read = !lp ? final
    : lp.shape.length === 2 ? g.gather(finalFlat, lp)
    : g.transpose(g.gather(g.transpose(final, [1, 0, 2]), lp), [1, 0, 2]);
  return { logits: unembed(read), finalFlat, unembed };
}

/** Weights enter the graph as inputs (fed from the compute thread's copy, never embedded). */
function weightInput(g: Graph, cfg: ModelConfig, name: string): Value {
  const existing = g.inputs.find((v) => v.name === name);
  if (existing) return existing;
  const shape = weightShapes(cfg)[name];
  return g.input(name, 'float32', shape);
}
