import { expect } from 'vitest';
import { Tensor } from '../src/engine/tensor.js';
import { HookedTransformer } from '../src/models/hooked.js';
import { randomGpt2Weights } from '../src/models/random.js';
import type { ModelConfig } from '../src/models/config.js';
import { weightShapes } from '../src/models/gpt2/model.js';

/** A model built in memory from the seeded random weights that the fixtures were computed from. */
export async function seededModel(cfg: ModelConfig, seed: number): Promise<HookedTransformer> {
  const raw = randomGpt2Weights(cfg, seed);
  const shapes = weightShapes(cfg);
  const weights = Object.fromEntries(Object.entries(raw).map(([n, d]) => [n, Tensor.f32(d, shapes[n])]));
  return HookedTransformer.create(cfg, weights, undefined, `random:${seed}`);
}

/** max |a - b| / max |b|, treating equal infinities as equal. */
export function relError(a: Tensor, b: Tensor): number {
  expect(a.shape).toEqual(b.shape);
  let num = 0;
  let den = 0;
  for (let i = 0; i < b.size; i++) {
    const x = Number(a.data[i]);
    const y = Number(b.data[i]);
    if (!Number.isFinite(y)) {
      expect(x).toBe(y);
      continue;
    }
    num = Math.max(num, Math.abs(x - y));
    den = Math.max(den, Math.abs(y));
  }
  return num / Math.max(den, 1e-30);
}

export function maxAbsDiff(a: Tensor, b: Tensor): number {
  expect(a.shape).toEqual(b.shape);
  let m = 0;
  for (let i = 0; i < a.size; i++) m = Math.max(m, Math.abs(Number(a.data[i]) - Number(b.data[i])));
  return m;
}
