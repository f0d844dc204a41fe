/**
 * What every model graph takes besides its weights, defined once for all architectures: token
 * ids, positions, the attention masks (causal, packed rows), past keys and values, and the
 * positions at which logits are read. Architectures never build these; they read them.
 */
import { Graph, Value } from '../engine/graph/ir.js';
import { Tensor } from '../engine/tensor.js';
import type { ModelConfig } from './config.js';

export const B = 'batch';
export const T = 'seq';
/** Earlier positions whose keys and values a run takes as inputs instead of computing them. */
export const PAST = 'past';
/** What a query of a run with past keys and values attends to: the past positions, then the run's own. */
export const KEYS = `${PAST}+${T}`;
/** Symbolic length of the `logit_positions` input. */
export const LOGIT_POS = 'logit_pos';

export interface ModelInputs {
  tokens: Value; // int64 [batch, seq]
  /**
   * int64 [seq], offset by the past length when there is one; [batch, seq] when rows are packed
   * (`packedFeeds`): each row's own positions.
   */
  positions: Value;
  /**
   * The position of every key a query may see: int64 [keys] (the past's, then the run's own), or
   * [batch, keys] for packed rows. Sliding-window attention reads it; other models ignore it.
   */
  keyPositions: Value;
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
   * Per layer, the keys (after rotary embedding, where the model has one) and values of the first
   * `past` positions, [1, past, kv_heads, d_head]: one prompt's, shared by every batch entry; or
   * [batch, past, kv_heads, d_head], each row's own (`pastRows`, as in generation). The run
   * computes only the positions after them. Under causal attention nothing later changes
   * an earlier position, so this equals running the whole sequence while recomputing only what
   * can differ.
   */
  past?: { k: Value; v: Value }[];
}

export interface InputOptions {
  logitPositions?: boolean | 'rows';
  /** The model's config, when the run continues past keys and values. */
  past?: ModelConfig;
  /** Each row has its own past keys and values (else one prefix's, shared by every row). */
  pastRows?: boolean;
  packed?: boolean;
}

/** Declares the model's graph inputs on `g`. */
export function modelInputs(g: Graph, opts: InputOptions = {}): ModelInputs {
  const cfg = opts.past;
  const rows = opts.packed ? [B] : [];
  const keys = cfg ? KEYS : T;
  return {
    tokens: g.input('tokens', 'int64', [B, T]),
    positions: g.input('positions', 'int64', [...rows, T]),
    keyPositions: g.input('key_positions', 'int64', [...rows, keys]),
    causalMask: g.input('causal_mask', 'bool', [...rows, T, keys]),
    ...(opts.logitPositions ? { logitPositions: g.input('logit_positions', 'int64', opts.logitPositions === 'rows' ? [B, LOGIT_POS] : [LOGIT_POS]) } : {}),
    ...(cfg ? {
      past: Array.from({ length: cfg.nLayers }, (_, l) => ({
        k: g.input(`past.${l}.k`, 'float32', [opts.pastRows ? B : 1, PAST, cfg.nKvHeads, cfg.dHead]),
        v: g.input(`past.${l}.v`, 'float32', [opts.pastRows ? B : 1, PAST, cfg.nKvHeads, cfg.dHead]),
      })),
    } : {}),
  };
}

/** Values for `positions`, `key_positions` and `causal_mask` at sequence length `seq`, after `past` earlier positions. */
export function positionFeeds(seq: number, past = 0): Record<'positions' | 'key_positions' | 'causal_mask', Tensor> {
  const keys = past + seq;
  const mask = new Uint8Array(seq * keys);
  for (let q = 0; q < seq; q++) mask.fill(1, q * keys, q * keys + past + q + 1);
  return {
    positions: Tensor.i64(Array.from({ length: seq }, (_, i) => past + i), [seq]),
    key_positions: Tensor.i64(Array.from({ length: keys }, (_, i) => i), [keys]),
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

/** Per-row `positions` [batch, seq], `key_positions` [batch, past + seq] and `causal_mask` [batch, seq, past + seq] of packed rows. */
export function packedFeeds(segments: Segment[][], seq: number, past: number): Record<'positions' | 'key_positions' | 'causal_mask', Tensor> {
  const keys = past + seq;
  const B = segments.length;
  const positions = new Array<number>(B * seq).fill(0);
  const keyPositions = new Array<number>(B * keys).fill(0);
  const mask = new Uint8Array(B * seq * keys);
  segments.forEach((row, b) => {
    for (let k = 0; k < past; k++) keyPositions[b * keys + k] = k;
    let offset = 0;
    for (const { start, length } of row) {
      for (let j = 0; j < length; j++) {
        const q = b * seq + offset + j;
        positions[q] = start + j;
        keyPositions[b * keys + past + offset + j] = start + j;
        mask.fill(1, q * keys, q * keys + start);
        mask.fill(1, q * keys + past + offset, q * keys + past + offset + j + 1);
      }
      offset += length;
    }
    for (let q = b * seq + offset; q < (b + 1) * seq; q++) mask[q * keys + past + q - b * seq] = 1;
  });
  return {
    positions: Tensor.i64(positions, [B, seq]),
    key_positions: Tensor.i64(keyPositions, [B, keys]),
    causal_mask: new Tensor('bool', mask, [B, seq, keys]),
  };
}

/**
 * Per-row `positions` [batch, seq], `key_positions` [batch, slots + seq] and `causal_mask`
 * [batch, seq, slots + seq] of a run that continues keys and values kept between runs (a
 * `KvCache`), where a slot's index need not be its position: the cache appends every run's keys
 * at the same slots for every row, so a row whose prompt was shorter than the batch's longest
 * leaves a gap of padding slots (`slotPositions[b][s]` = -1) that its queries never see.
 * Row b's `lengths[b]` tokens sit at positions `next[b]`, `next[b]` + 1, …; its padded queries
 * see only themselves.
 */
export function cachedFeeds(slotPositions: number[][], next: number[], lengths: number[], seq: number): Record<'positions' | 'key_positions' | 'causal_mask', Tensor> {
  const slots = slotPositions[0]?.length ?? 0;
  const keys = slots + seq;
  const B = slotPositions.length;
  const positions = new BigInt64Array(B * seq);
  const keyPositions = new BigInt64Array(B * keys);
  const mask = new Uint8Array(B * seq * keys);
  for (let b = 0; b < B; b++) {
    const own = slotPositions[b];
    const seen = new Uint8Array(slots);
    for (let s = 0; s < slots; s++) {
      if (own[s] < 0) continue;
      keyPositions[b * keys + s] = BigInt(own[s]);
      seen[s] = 1;
    }
    for (let j = 0; j < seq; j++) {
      const q = b * seq + j;
      const real = j < lengths[b];
      if (real) {
        positions[q] = BigInt(next[b] + j);
        keyPositions[b * keys + slots + j] = BigInt(next[b] + j);
        mask.set(seen, q * keys);
        mask.fill(1, q * keys + slots, q * keys + slots + j + 1);
      } else {
        mask[q * keys + slots + j] = 1;
      }
    }
  }
  return {
    positions: new Tensor('int64', positions, [B, seq]),
    key_positions: new Tensor('int64', keyPositions, [B, keys]),
    causal_mask: new Tensor('bool', mask, [B, seq, keys]),
  };
}
