/**
 * SAEs as feature sources: the common shape that feature dashboards and explanations read
 * (features of an SAE, or a layer's MLP neurons, look the same to them).
 */
import type { FeatureSource } from '../features/source.js';
import type { Sae } from './sae.js';

export type { FeatureSource };

/**
 * An SAE as a {@link FeatureSource}. `encode` is synchronous, so it runs the SAE's encoder in
 * JavaScript (the same arithmetic as the graph forward, checked against it in tests); for large
 * batches `Sae.encode` runs it as one ONNX matmul instead.
 */
export function asFeatureSource(sae: Sae): FeatureSource {
  const { dIn, dSae, dOut, architecture, normalizeActivations, applyBDecToInput, k, rescaleActsByDecoderNorm } = sae.cfg;
  const { W_enc, W_dec, b_enc, b_dec, threshold } = sae.weights;
  const decNorms = architecture === 'topk' && rescaleActsByDecoderNorm
    ? Float32Array.from({ length: dSae }, (_, j) => Math.hypot(...W_dec.subarray(j * dOut, (j + 1) * dOut)))
    : undefined;
  return {
    id: sae.id,
    hook: sae.cfg.hookName,
    size: dSae,
    encode(acts: Float32Array, rows: number): Float32Array {
      const out = new Float32Array(rows * dSae);
      const xin = new Float32Array(dIn);
      for (let r = 0; r < rows; r++) {
        const x = acts.subarray(r * dIn, (r + 1) * dIn);
        let shift = 0, scale = 1;
        if (normalizeActivations === 'constant_norm_rescale') scale = Math.sqrt(dIn) / Math.hypot(...x);
        else if (normalizeActivations === 'layer_norm') {
          shift = x.reduce((a, b) => a + b, 0) / dIn;
          scale = 1 / (Math.sqrt(x.reduce((a, b) => a + (b - shift) ** 2, 0) / (dIn - 1)) + 1e-5);
        }
        for (let i = 0; i < dIn; i++) xin[i] = (x[i] - shift) * scale - (applyBDecToInput ? b_dec[i] : 0);
        const pre = out.subarray(r * dSae, (r + 1) * dSae);
        pre.set(b_enc);
        // Row i of W_enc ([d_in, d_sae]) scaled by x_i: contiguous reads, as in an axpy.
        for (let i = 0; i < dIn; i++) {
          const xi = xin[i];
          if (xi === 0) continue;
          const row = W_enc.subarray(i * dSae, (i + 1) * dSae);
          for (let j = 0; j < dSae; j++) pre[j] += xi * row[j];
        }
        if (architecture === 'topk') {
          if (decNorms) for (let j = 0; j < dSae; j++) pre[j] *= decNorms[j];
          const kth = [...pre].sort((a, b) => b - a)[k! - 1];
          let kept = 0;
          for (let j = 0; j < dSae; j++) {
            const keep = pre[j] > kth || (pre[j] === kth && kept < k!);
            if (pre[j] >= kth && keep) kept++;
            pre[j] = keep && pre[j] > 0 ? pre[j] : 0;
          }
        } else if (architecture === 'jumprelu' || architecture === 'batchtopk') {
          for (let j = 0; j < dSae; j++) pre[j] = pre[j] > threshold![j] && pre[j] > 0 ? pre[j] : 0;
        } else {
          for (let j = 0; j < dSae; j++) if (pre[j] < 0) pre[j] = 0;
        }
      }
      return out;
    },
    decoderDirection: (i: number) => sae.decoderDirection(i),
  };
}
