import { HookedTransformer } from '../models/hooked.js';
import { randomWeights, GPT2_SMALL } from '../models/random.js';
import { weightShapes } from '../models/forward.js';
import { Tensor } from '../engine/tensor.js';
import type { ModelConfig } from '../models/config.js';

export async function randomModel(cfg: ModelConfig = GPT2_SMALL, seed = 0): Promise<HookedTransformer> {
  const raw = randomWeights(cfg, seed);
  const shapes = weightShapes(cfg);
  return HookedTransformer.create(cfg, Object.fromEntries(Object.entries(raw).map(([n, d]) => [n, Tensor.f32(d, shapes[n])])), undefined, 'random');
}

export function weightBytes(cfg: ModelConfig): number {
  return Object.values(weightShapes(cfg)).reduce((s, sh) => s + 4 * sh.reduce((p, q) => p * q, 1), 0);
}

/** Matmul FLOPs of one forward over T tokens, any family (the part that dominates): projections, attention, MLP, unembedding. */
export function forwardFlops(cfg: ModelConfig, T: number): number {
  const { dModel: D, dMlp: F, nHeads: H, nKvHeads: K, dHead: dh, dVocab: V, nLayers: L } = cfg;
  const gated = cfg.architecture !== 'gpt2' && cfg.architecture !== 'gpt_neox';
  const mlp = gated ? 2 * T * D * 2 * F + 2 * T * F * D : 2 * 2 * T * D * F;
  const perLayer = 2 * T * D * (H + 2 * K) * dh + 2 * 2 * H * T * T * dh + 2 * T * H * dh * D + mlp;
  return L * perLayer + 2 * T * D * V;
}

/** Best-of-n wall time in ms after `warm` warm-up calls. */
export async function best(fn: () => Promise<unknown>, n = 5, warm = 1): Promise<number> {
  for (let i = 0; i < warm; i++) await fn();
  let m = Infinity;
  for (let i = 0; i < n; i++) {
    const t0 = performance.now();
    await fn();
    m = Math.min(m, performance.now() - t0);
  }
  return m;
}

export function randomTokens(T: number, vocab: number, seed = 1): number[] {
  let s = seed;
  return Array.from({ length: T }, () => {
    s = (s * 1103515245 + 12345) % 2147483648;
    return s % vocab;
  });
}
