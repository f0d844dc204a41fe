/**
 * Per-position next-token statistics for the Predictions view: at every position, the entropy of
 * the model's distribution, the loss on the token that actually follows, and the top-k tokens.
 */
import type { Tensor } from '../../engine/tensor.js';

/** One position's next-token distribution, summarised. */
export interface PositionStats {
  /** Entropy in nats. */
  entropy: number;
  /** −log p(the prompt's next token), in nats; null at the last position (nothing follows). */
  loss: number | null;
  top: { id: number; prob: number }[];
}

/** Statistics of every position of batch 0 of `logits` [batch, T, V]; `tokens` are the prompt's ids. */
export function positionStats(logits: Tensor, tokens: number[], k: number): PositionStats[] {
  const [, T, V] = logits.shape;
  const all = logits.f32;
  const out: PositionStats[] = [];
  for (let t = 0; t < T; t++) {
    const row = all.subarray(t * V, (t + 1) * V);
    let max = -Infinity;
    for (let i = 0; i < V; i++) if (row[i] > max) max = row[i];
    let z = 0;
    let zx = 0;
    for (let i = 0; i < V; i++) {
      const e = Math.exp(row[i] - max);
      z += e;
      zx += e * (row[i] - max);
    }
    const logZ = Math.log(z);
    // H = log Z − E[x − max]
    const entropy = logZ - zx / z;
    // Top k by one pass with a small sorted buffer (sorting 50k logits at every position is far slower).
    const best: number[] = [];
    for (let i = 0; i < V; i++) {
      if (best.length === k && row[i] <= row[best[k - 1]]) continue;
      let j = best.length < k ? best.length : k - 1;
      if (best.length < k) best.push(i);
      while (j > 0 && row[best[j - 1]] < row[i]) {
        best[j] = best[j - 1];
        j--;
      }
      best[j] = i;
    }
    const next = t + 1 < tokens.length ? tokens[t + 1] : undefined;
    out.push({
      entropy: round(entropy), loss: next === undefined ? null : round(logZ - (row[next] - max)),
      top: best.map((id) => ({ id, prob: round(Math.exp(row[id] - max - logZ)) })),
    });
  }
  return out;
}

const round = (x: number) => Math.round(x * 1e6) / 1e6;
