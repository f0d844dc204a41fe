/**
 * LayerNorm and RMSNorm. Both record `hook_scale` (the divisor) and `hook_normalized` (the norm's
 * output after its weight, i.e. exactly what the next linear layer reads; with folded weights
 * that is x / scale, TransformerLens's LayerNormPre/RMSNormPre).
 */
import type { Value } from '../../engine/graph/ir.js';
import type { NormKind } from '../config.js';
import type { ModelContext } from '../architecture.js';

/** The norm at `prefix` (e.g. blocks.3.ln1), of the model's kind unless given. */
export function norm(m: ModelContext, x: Value, prefix: string, kind: NormKind = m.cfg.norm ?? 'layernorm', hooked = true): Value {
  const { g } = m;
  const hook = hooked ? m.hook : (_name: string, v: Value) => v;
  if (kind === 'layernorm') {
    // (x - mean) / sqrt(var + eps) * w + b
    const centred = g.sub(x, g.reduceMean(x, [-1]));
    const scale = hook(`${prefix}.hook_scale`, g.sqrt(g.add(g.reduceMean(g.mul(centred, centred), [-1]), g.scalar(m.cfg.lnEps))));
    return hook(`${prefix}.hook_normalized`, g.add(g.mul(g.div(centred, scale), m.W(`${prefix}.w`)), m.W(`${prefix}.b`)));
  }
  // x / sqrt(mean(x^2) + eps) * w (Llama), or * (1 + w) (Gemma)
  const scale = hook(`${prefix}.hook_scale`, rmsScale(m, x));
  return hook(`${prefix}.hook_normalized`, g.mul(g.div(x, scale), rmsWeight(m, `${prefix}.w`, kind)));
}

/** An RMSNorm without hooks (the per-head q and k norms of Qwen 3 and Gemma 3). */
export function headNorm(m: ModelContext, x: Value, weight: string): Value {
  return m.g.mul(m.g.div(x, rmsScale(m, x)), rmsWeight(m, weight, m.cfg.norm ?? 'rmsnorm'));
}

function rmsScale(m: ModelContext, x: Value): Value {
  const { g } = m;
  return g.sqrt(g.add(g.reduceMean(g.mul(x, x), [-1]), g.scalar(m.cfg.lnEps)));
}

function rmsWeight(m: ModelContext, name: string, kind: NormKind): Value {
  return kind === 'rmsnorm_plus_one' ? m.g.add(m.W(name), m.g.scalar(1)) : m.W(name);
}

/**
 * The norm's affine part at `prefix`: what multiplies (and, for LayerNorm, is added to) the
 * normalised input, so a reader of the norm's output can fold it into its own weights.
 */
export function normAffine(m: ModelContext, prefix: string, kind: NormKind = m.cfg.norm ?? 'layernorm'): { w: Value; b?: Value } {
  if (kind === 'layernorm') return { w: m.W(`${prefix}.w`), b: m.W(`${prefix}.b`) };
  return { w: rmsWeight(m, `${prefix}.w`, kind) };
}
