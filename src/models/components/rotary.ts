/**
 * Rotary position embeddings (Su et al., 2021) in Hugging Face's rotate-half convention: each
 * head's first `dims` dimensions are two halves (x1, x2) rotated pairwise by angle position · θ_i,
 *   x1' = x1 cos − x2 sin,   x2' = x2 cos + x1 sin,
 * the remaining dimensions (partial rotary, GPT-NeoX) pass through unchanged.
 */
import type { Value } from '../../engine/graph/ir.js';
import type { Rope } from '../config.js';
import type { ModelContext } from '../architecture.js';

/** θ_i = base^(−2i/dims), rescaled as the config's rope scaling says (HF modeling_rope_utils). */
export function inverseFrequencies(rope: Rope): Float64Array {
  const half = rope.dims / 2;
  const inv = Float64Array.from({ length: half }, (_, i) => rope.base ** (-(2 * i) / rope.dims));
  const s = rope.scaling;
  if (!s) return inv;
  if (s.type === 'linear') return inv.map((f) => f / s.factor);
  // llama3: long wavelengths are slowed by `factor`, short ones kept, the band between blended.
  const lowWavelen = s.originalContext / s.lowFreqFactor;
  const highWavelen = s.originalContext / s.highFreqFactor;
  return inv.map((f) => {
    const wavelen = (2 * Math.PI) / f;
    if (wavelen < highWavelen) return f;
    if (wavelen > lowWavelen) return f / s.factor;
    const smooth = (s.originalContext / wavelen - s.lowFreqFactor) / (s.highFreqFactor - s.lowFreqFactor);
    return (1 - smooth) * (f / s.factor) + smooth * f;
  });
}

/** cos and sin of every (position, dimension) angle, [seq, 1, dims] (packed rows: [batch, seq, 1, dims]). */
function tables(m: ModelContext, rope: Rope): [Value, Value] {
  const { g } = m;
  const key = `rope:${JSON.stringify(rope)}`;
  const angles = () => {
    // Angles in float64: at position p the float32 product would be off by ~p·1e-7 radians.
    const pos = m.inputs.positions;
    const r = pos.shape.length;
    const inv = g.constant(inverseFrequencies(rope), [rope.dims / 2], 'float64');
    const half = g.mul(g.unsqueeze(g.cast(pos, 'float64'), [r]), inv);
    return g.concat([half, half], r);
  };
  const table = (f: 'cos' | 'sin') => m.memo(`${key}:${f}`, () => {
    const a = m.memo(`${key}:angles`, angles);
    return g.unsqueeze(g.cast(f === 'cos' ? g.cos(a) : g.sin(a), 'float32'), [a.shape.length - 1]);
  });
  return [table('cos'), table('sin')];
}

/** Rotates x [batch, seq, heads, d_head] by its positions. */
export function rotate(m: ModelContext, x: Value, rope: Rope): Value {
  const { g } = m;
  const dh = m.cfg.dHead;
  const [cos, sin] = tables(m, rope);
  const [rot, pass] = rope.dims < dh ? g.split(x, 3, [rope.dims, dh - rope.dims]) : [x, undefined];
  const [x1, x2] = g.split(rot, 3, [rope.dims / 2, rope.dims / 2]);
  const rotated = g.add(g.mul(rot, cos), g.mul(g.concat([g.neg(x2), x1], 3), sin));
  return pass ? g.concat([rotated, pass], 3) : rotated;
}
