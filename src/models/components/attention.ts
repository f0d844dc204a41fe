/**
 * Causal self-attention for every family: grouped-query heads, optional per-head q/k norms,
 * rotary embeddings, soft-capped scores, sliding windows and past keys and values. An
 * architecture projects q, k and v its own way and hands them here; `attentionOutput` is the
 * output projection.
 */
import type { Value } from '../../engine/graph/ir.js';
import { isSlidingLayer } from '../config.js';
import type { ModelContext } from '../architecture.js';
import { B, T, PAST } from '../inputs.js';
import { headNorm, norm } from './norms.js';
import { linear } from './linear.js';
import { rotate } from './rotary.js';

/** Per-head projection weights [heads, d_model, d_head] and biases [heads, 1, d_head] (kv heads for k and v). */
export interface HeadWeights {
  q: { W: Value; b?: Value };
  k: { W: Value; b?: Value };
  v: { W: Value; b?: Value };
}

/**
 * The attention sublayer of block l, from the residual stream it reads: ln1, the family's q/k/v
 * projection (`project`), attention and the output projection.
 *
 * When a graph asks for `hook_q_input` (the circuit graph does), each query head's q, k and v
 * inputs are separate copies of the residual stream, [batch, seq, heads, d_model], each normalised
 * on its own and projected with that head's weights (`headWeights`): TransformerLens's
 * use_split_qkv_input, with grouped-query attention ungrouped (each query head reads its own
 * copy of its key/value head's input). With the copies unchanged this equals the fused path.
 */
export function attentionSublayer(m: ModelContext, l: number, resid: Value, project: (x: Value) => Value[], headWeights: (m: ModelContext, l: number) => HeadWeights): Value {
  const p = `blocks.${l}`;
  if (!m.wants(`${p}.hook_q_input`)) {
    const [q, k, v] = project(norm(m, resid, `${p}.ln1`));
    return attentionOutput(m, l, attend(m, l, q, k, v));
  }
  const { g, cfg } = m;
  const H = cfg.nHeads;
  const G = H / cfg.nKvHeads;
  const w = headWeights(m, l);
  const copies = g.expand(g.unsqueeze(resid, [2]), g.concat([g.slice(g.shapeOf(resid), 0, 0, 2), g.ints([H, cfg.dModel])], 0), [B, T, H, cfg.dModel]);
  const perHead = (kind: 'q' | 'k' | 'v') => {
    const x = norm(m, m.hook(`${p}.hook_${kind}_input`, copies), `${p}.ln1`, undefined, false); // [b, t, h, d]
    const { W, b } = w[kind];
    // Key/value head j serves query heads j·G … j·G + G − 1: give each query head its kv head's weights.
    const repeat = (t: Value) => (kind === 'q' || G === 1 ? t : g.reshape(g.expand(g.unsqueeze(t, [1]), g.ints([cfg.nKvHeads, G, ...t.shape.slice(1) as number[]]), [cfg.nKvHeads, G, ...t.shape.slice(1)]), [H, ...t.shape.slice(1)]));
    const y = g.matmul(g.transpose(x, [0, 2, 1, 3]), repeat(W)); // [b, h, t, dh]
    return g.transpose(b ? g.add(y, repeat(b)) : y, [0, 2, 1, 3]);
  };
  return attentionOutput(m, l, attend(m, l, perHead('q'), perHead('k'), perHead('v')));
}

/**
 * q [batch, seq, heads, d_head] and k, v [batch, seq, kv_heads, d_head], as projected, to the
 * per-head mixed values z [batch, seq, heads, d_head]. Records hook_q/k/v, hook_rot_q/k (after
 * q/k norm and rotary), hook_attn_scores (scaled, soft-capped, -inf where masked), hook_pattern
 * and hook_z.
 */
export function attend(m: ModelContext, l: number, q0: Value, k0: Value, v0: Value): Value {
  const { g, cfg } = m;
  const p = `blocks.${l}.attn`;
  const dh = cfg.dHead;
  let q = m.hook(`${p}.hook_q`, q0);
  let k = m.hook(`${p}.hook_k`, k0);
  const v = m.hook(`${p}.hook_v`, v0);
  if (cfg.qkNorm) {
    q = headNorm(m, q, `${p}.q_norm.w`);
    k = headNorm(m, k, `${p}.k_norm.w`);
  }
  const sliding = isSlidingLayer(cfg, l);
  const rope = sliding && cfg.localRope ? cfg.localRope : cfg.rope;
  if (rope) {
    q = m.hook(`${p}.hook_rot_q`, rotate(m, q, rope));
    k = m.hook(`${p}.hook_rot_k`, rotate(m, k, rope));
  }
  const past = m.inputs.past?.[l];
  const allKeys = past ? afterPast(m, past.k, k) : k;
  const allValues = past ? afterPast(m, past.v, v) : v;
  m.keepKeys(l, allKeys, allValues);
  const keys = repeatKv(m, allKeys);
  const values = repeatKv(m, allValues);

  // scores[b, h, q, k] = q . k * scale (scaling q touches T*D values instead of H*T*T)
  const scale = cfg.attnScale ?? 1 / Math.sqrt(dh);
  let scores = g.matmul(g.transpose(g.mul(q, g.scalar(scale)), [0, 2, 1, 3]), g.transpose(keys, [0, 2, 3, 1]));
  if (cfg.attnSoftcap) scores = g.mul(g.tanh(g.mul(scores, g.scalar(1 / cfg.attnSoftcap))), g.scalar(cfg.attnSoftcap));
  const negInf = g.scalar(-Infinity);
  const mask = m.inputs.causalMask;
  // [t, keys] broadcasts over batch and heads; packed rows' [b, t, keys] over heads.
  const overHeads = (x: Value) => (x.shape.length === 3 ? g.unsqueeze(x, [1]) : x);
  scores = g.where(overHeads(mask), scores, negInf);
  if (sliding) scores = g.where(overHeads(windowMask(m, cfg.slidingWindow!)), scores, negInf);
  const masked = m.hook(`${p}.hook_attn_scores`, scores);
  const pattern = m.hook(`${p}.hook_pattern`, g.softmax(masked, -1));
  return m.hook(`${p}.hook_z`, g.transpose(g.matmul(pattern, g.transpose(values, [0, 2, 1, 3])), [0, 2, 1, 3]));
}

/** The output projection z -> the block's attention output; with hook_result asked for, head by head. */
export function attentionOutput(m: ModelContext, l: number, z: Value): Value {
  const { g, cfg } = m;
  const p = `blocks.${l}.attn`;
  const { nHeads: H, dHead: dh } = cfg;
  if (m.wants(`${p}.hook_result`)) {
    // result[b, t, h, :] = z[b, t, h, :] @ W_O[h]: each head's write to the residual stream.
    const WO = outputWeights(m, l);
    const result = m.hook(`${p}.hook_result`, g.transpose(g.matmul(g.transpose(z, [0, 2, 1, 3]), WO), [0, 2, 1, 3]));
    const summed = g.reduceSum(result, [2], false);
    return m.has(`${p}.b_O`) ? g.add(summed, m.W(`${p}.b_O`)) : summed;
  }
  return linear(m, g.reshape(z, [B, T, H * dh]), `${p}.W_O`, `${p}.b_O`);
}

/** Block l's output projection per head, [heads, d_head, d_model]: result[h] = z[h] @ W_O[h]. */
export function outputWeights(m: ModelContext, l: number): Value {
  const { g, cfg } = m;
  const { nHeads: H, dHead: dh, dModel: D } = cfg;
  const name = `blocks.${l}.attn.W_O`;
  const W = m.W(name);
  return m.layout(name) === 'out_in' ? g.transpose(g.reshape(W, [D, H, dh]), [1, 2, 0]) : g.reshape(W, [H, dh, D]);
}

/**
 * Past keys (or values) for every batch entry (one shared prefix broadcast, or each row's own),
 * then the run's own: [b, past + t, kv_heads, dh].
 * Expand, not a broadcasting matmul against the past, so that each query's scores and its
 * weighted sum of values are one matmul over all keys, as in a run of the whole sequence.
 */
function afterPast(m: ModelContext, past: Value, x: Value): Value {
  const { g, cfg } = m;
  if (past.shape[0] === B) return g.concat([past, x], 1);
  const batchOnes = m.memo('batchOnes', () => g.concat([g.slice(g.shapeOf(m.inputs.tokens), 0, 0, 1), g.ints([1, 1, 1])], 0));
  return g.concat([g.expand(past, batchOnes, [B, PAST, cfg.nKvHeads, cfg.dHead]), x], 1);
}

/** Grouped-query attention: kv head j serves query heads j·G … j·G + G − 1 (HF's repeat_kv). */
function repeatKv(m: ModelContext, x: Value): Value {
  const { g, cfg } = m;
  const G = cfg.nHeads / cfg.nKvHeads;
  if (G === 1 || x.shape[2] === cfg.nHeads) return x; // split inputs already give every query head its own
  const [b, t] = x.shape;
  const shape = g.concat([g.slice(g.shapeOf(x), 0, 0, 3), g.ints([G, cfg.dHead])], 0);
  const repeated = g.expand(g.unsqueeze(x, [3]), shape, [b, t, cfg.nKvHeads, G, cfg.dHead]);
  return g.reshape(repeated, [b, t, cfg.nHeads, cfg.dHead]);
}

/** True where the key is among the query's `window` latest positions (itself included). */
function windowMask(m: ModelContext, window: number): Value {
  return m.memo(`window:${window}`, () => {
    const { g } = m;
    const qp = m.inputs.positions;
    const kp = m.inputs.keyPositions;
    const r = qp.shape.length;
    const distance = g.sub(g.unsqueeze(qp, [r]), g.unsqueeze(kp, [r - 1])); // [.., t, keys]
    return g.greater(g.scalar(window, 'int64'), distance);
  });
}

