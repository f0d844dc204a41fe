/**
 * Cached activations of one run, by hook name, with TransformerLens's ActivationCache helpers:
 * stacking a hook over layers, the accumulated residual stream (logit-lens input), the residual
 * decomposed into the components that wrote it, and per-head results.
 */
import { LanternError, nearest } from '../errors.js';
import { Tensor } from '../engine/tensor.js';
import type { ModelConfig } from './config.js';
import type { Batch } from './hooked.js';

/** Activations by hook name from one run, with helpers for the residual stream (accumulated, decomposed) and for taking prompts out of a batch. */
export class ActivationCache {
  private readonly acts = new Map<string, Tensor>();

  constructor(readonly cfg: ModelConfig, readonly batch: Batch) {}

  /** Stores an activation under a hook name. */
  set(name: string, t: Tensor): void {
    this.acts.set(name, t);
  }

  /** Whether a hook was cached. */
  has(name: string): boolean {
    return this.acts.has(name);
  }

  /** Every cached hook name. */
  get names(): string[] {
    return [...this.acts.keys()];
  }

  /** The activation at a hook, or an error naming the nearest cached hooks. */
  get(name: string): Tensor {
    const t = this.acts.get(name);
    if (t) return t;
    if (this.acts.size === 0) throw new LanternError(`'${name}' was not cached: this run cached nothing`);
    throw new LanternError(`'${name}' was not cached; cached hooks nearest to it: ${nearest(name, this.acts.keys()).join(', ')}`);
  }

  /** Every (hook name, activation) pair. */
  entries(): [string, Tensor][] {
    return [...this.acts.entries()];
  }

  /** `blocks.{l}.{suffix}` for every layer, stacked on a new leading axis: [layers, ...]. */
  stack(suffix: string): Tensor {
    return stackTensors(Array.from({ length: this.cfg.nLayers }, (_, l) => this.get(`blocks.${l}.${suffix}`)));
  }

  /**
   * The residual stream before each block and after the last: [layers + 1, batch, seq, d_model]
   * with labels ('0_pre' … 'final_post'), as TransformerLens's accumulated_resid.
   */
  accumulatedResid(): { stack: Tensor; labels: string[] } {
    const L = this.cfg.nLayers;
    const parts = Array.from({ length: L }, (_, l) => this.get(`blocks.${l}.hook_resid_pre`));
    parts.push(this.get(`blocks.${L - 1}.hook_resid_post`));
    return { stack: stackTensors(parts), labels: [...Array.from({ length: L }, (_, l) => `${l}_pre`), 'final_post'] };
  }

  /**
   * The final residual stream split into what wrote it: embed, pos_embed, and each layer's
   * attention and MLP output. The components sum to the final residual.
   */
  decomposeResid(): { stack: Tensor; labels: string[] } {
    const labels = ['embed', 'pos_embed'];
    const parts = [this.get('hook_embed'), this.get('hook_pos_embed')];
    for (let l = 0; l < this.cfg.nLayers; l++) {
      parts.push(this.get(`blocks.${l}.hook_attn_out`), this.get(`blocks.${l}.hook_mlp_out`));
      labels.push(`${l}_attn_out`, `${l}_mlp_out`);
    }
    return { stack: stackTensors(parts), labels };
  }

  /**
   * Every head's write to the residual stream, [layers * heads, batch, seq, d_model], labelled
   * 'L{l}H{h}'. Needs `blocks.{l}.attn.hook_result` in the cache (ask runWithCache for it).
   */
  stackHeadResults(): { stack: Tensor; labels: string[] } {
    const { nLayers: L, nHeads: H } = this.cfg;
    const parts: Tensor[] = [];
    const labels: string[] = [];
    for (let l = 0; l < L; l++) {
      const r = this.get(`blocks.${l}.attn.hook_result`); // [b, t, h, d]
      const [b, t, , d] = r.shape;
      for (let h = 0; h < H; h++) {
        const out = new Float32Array(b * t * d);
        for (let i = 0; i < b * t; i++) out.set(r.f32.subarray((i * H + h) * d, (i * H + h + 1) * d), i * d);
        parts.push(Tensor.f32(out, [b, t, d]));
        labels.push(`L${l}H${h}`);
      }
    }
    return { stack: stackTensors(parts), labels };
  }

  /** The cache for one prompt of the batch, trimmed to its real (unpadded) length. */
  prompt(b: number): ActivationCache {
    const n = this.batch.lengths.length;
    if (!Number.isInteger(b) || b < 0 || b >= n) throw new LanternError(`prompt ${b} is outside the batch of ${n}`);
    const len = this.batch.lengths[b];
    const single = new ActivationCache(this.cfg, { tokens: [this.batch.tokens[b]], lengths: [len], seq: len });
    for (const [name, t] of this.acts) single.set(name, trimToPrompt(t, name, b, len));
    return single;
  }
}

/** Selects prompt `b` and its first `len` positions (both query and key axes for attention maps). */
export function trimToPrompt(t: Tensor, name: string, b: number, len: number): Tensor {
  const one = t.get(b);
  const perHeadMap = /hook_(attn_scores|pattern)$/.test(name);
  const shape = one.shape;
  if (!perHeadMap) {
    const inner = shape.slice(1).reduce((p, q) => p * q, 1);
    return new Tensor(one.dtype, one.data.slice(0, len * inner), [1, len, ...shape.slice(1)]);
  }
  const [H, Q, K] = shape;
  const out = new Float32Array(H * len * len);
  for (let h = 0; h < H; h++) for (let q = 0; q < len; q++) {
    out.set((one.data as Float32Array).subarray((h * Q + q) * K, (h * Q + q) * K + len), (h * len + q) * len);
  }
  return Tensor.f32(out, [1, H, len, len]);
}

export function stackTensors(parts: Tensor[]): Tensor {
  const shape = parts[0].shape;
  const n = parts[0].size;
  const out = new Float32Array(n * parts.length);
  parts.forEach((p, i) => {
    if (p.shape.join(',') !== shape.join(',')) throw new LanternError(`cannot stack shapes [${p.shape}] and [${shape}]`);
    out.set(p.f32, i * n);
  });
  return Tensor.f32(out, [parts.length, ...shape]);
}
