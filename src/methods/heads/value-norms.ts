/**
 * How much each key position can write through a head: ‖v_j W_O‖, the norm of the key's value
 * vector carried through the head's output matrix. With the pattern it gives value-weighted
 * attention (Kobayashi et al., 2020, "Attention is not only a weight"): α_ij ‖v_j W_O‖.
 */
import { LanternError } from '../../errors.js';
import type { Tensor } from '../../engine/tensor.js';
import type { HookedTransformer } from '../../models/hooked.js';

/**
 * ‖v_j W_O^h‖ for every head h and key position j of one layer, from that layer's cached
 * `hook_v` ([1, seq, kv_heads, d_head]; query heads share their group's values). Returns [head][key].
 * Computed as sqrt(v G_h vᵀ) with G_h = W_O^h W_O^hᵀ (d_head × d_head, made once per head), so each
 * key costs d_head² instead of d_head × d_model.
 */
export async function valueOutputNorms(model: HookedTransformer, layer: number, v: Tensor): Promise<number[][]> {
  const { nHeads: H, nKvHeads: KV, dHead: D, dModel: M } = model.cfg;
  if (v.shape.length !== 4 || v.shape[0] !== 1 || v.shape[2] !== KV || v.shape[3] !== D) {
    throw new LanternError(`valueOutputNorms: expected hook_v of shape [1, seq, ${KV}, ${D}], got [${v.shape}]`);
  }
  const T = v.shape[1];
  const w = await model.attentionWeights(layer);
  const WO = w.W_O.f32; // [H, D, M]
  const vals = v.f32;
  return Array.from({ length: H }, (_, h) => {
    const G = new Float64Array(D * D);
    const base = h * D * M;
    for (let a = 0; a < D; a++) {
      for (let b = a; b < D; b++) {
        let s = 0;
        for (let i = 0; i < M; i++) s += WO[base + a * M + i] * WO[base + b * M + i];
        G[a * D + b] = s;
        G[b * D + a] = s;
      }
    }
    const g = w.kvHeadOf(h);
    return Array.from({ length: T }, (_, k) => {
      const off = (k * KV + g) * D;
      let q = 0;
      for (let a = 0; a < D; a++) {
        let row = 0;
        for (let b = 0; b < D; b++) row += G[a * D + b] * vals[off + b];
        q += vals[off + a] * row;
      }
      return Math.sqrt(Math.max(0, q));
    });
  });
}
