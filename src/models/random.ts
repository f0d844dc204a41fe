/**
 * Writes a model of any registered family with random weights to a Hugging Face folder. Tests and benchmarks use it
 * for any shape (the presets include full-size ones) without downloading anything; the same
 * seed always gives the same weights.
 */
import fs from 'node:fs';
import path from 'node:path';
import type { ModelConfig } from './config.js';
import { toHfConfig } from './config.js';
import { weightShapes } from './forward.js';
import { gpt2 } from './architectures/gpt2.js';
import { writeSafetensors } from './safetensors.js';
import { toHfTensors } from './weights.js';
import { buildGpt2TokenizerJson } from './gpt2-tokenizer.js';
import { Rng } from '../rng.js';

/** GPT-2 small's config (124M), for random models. */
export const GPT2_SMALL: ModelConfig = gpt2.presets['gpt2-small'];
/** A tiny GPT-2 config, for fast experiments. */
export const TINY_GPT2: ModelConfig = gpt2.presets.tiny;

export function normalSampler(seed: number): () => number {
  const rng = new Rng(seed >>> 0);
  return () => rng.normal();
}

/**
 * Random weights in Lantern naming: GPT-2's init (N(0, 0.02)), with norm weights and all biases
 * perturbed so every parameter matters. The same seed gives the same weights for every family.
 */
export function randomWeights(cfg: ModelConfig, seed = 0, opts: { matrixStd?: number } = {}): Record<string, Float32Array> {
  const normal = normalSampler(seed);
  const out: Record<string, Float32Array> = {};
  // Gemma's norms scale by (1 + w): their weights sit around 0, everyone else's around 1.
  const normCentre = cfg.norm === 'rmsnorm_plus_one' ? 0 : 1;
  for (const [name, shape] of Object.entries(weightShapes(cfg))) {
    const n = shape.reduce((p, q) => p * q, 1);
    const a = new Float32Array(n);
    const isNormWeight = /\.w$/.test(name);
    const isBias = /\.b(_\w+)?$/.test(name);
    const std = isNormWeight ? 0.1 : isBias ? 0.02 : name === 'pos_embed.W_pos' ? 0.01 : (opts.matrixStd ?? 0.02);
    for (let i = 0; i < n; i++) a[i] = (isNormWeight ? normCentre : 0) + std * normal();
    out[name] = a;
  }
  return out;
}

/**
 * GPT-2's tokenizer cut to the first `vocab` ids: the byte alphabet plus the merges whose parts
 * and result all survive, so a small-vocab model still tokenizes any text.
 */
export function truncatedGpt2Tokenizer(vocab: number): object {
  const full = buildGpt2TokenizerJson() as any;
  if (vocab >= 50257) return full;
  if (vocab < 256) throw new Error('a byte-level tokenizer needs a vocabulary of at least 256');
  const kept = Object.fromEntries(Object.entries(full.model.vocab as Record<string, number>).filter(([, id]) => id < vocab));
  const merges = (full.model.merges as string[]).filter((m) => {
    const [a, b] = m.split(' ');
    return a in kept && b in kept && a + b in kept;
  });
  return { ...full, added_tokens: [], model: { ...full.model, vocab: kept, merges } };
}

export interface WriteRandomOptions {
  seed?: number;
  /** The standard deviation of every matrix (default 0.02, GPT-2's init; larger gives sharper attention). */
  matrixStd?: number;
  dtype?: 'F32' | 'F16' | 'BF16';
}

/** Writes config.json, model.safetensors (the family's Hugging Face tensor names) and tokenizer.json. */
export function writeRandomModel(folder: string, cfg: ModelConfig, opts: WriteRandomOptions = {}): void {
  fs.mkdirSync(folder, { recursive: true });
  const tensors = toHfTensors(cfg, randomWeights(cfg, opts.seed ?? 0, { matrixStd: opts.matrixStd }), opts.dtype);
  writeSafetensors(path.join(folder, 'model.safetensors'), tensors, { format: 'pt' });
  fs.writeFileSync(path.join(folder, 'config.json'), JSON.stringify(toHfConfig(cfg, { lantern_random_seed: opts.seed ?? 0 }), null, 2));
  fs.writeFileSync(path.join(folder, 'tokenizer.json'), JSON.stringify(truncatedGpt2Tokenizer(Math.min(cfg.dVocab, 50257))));
}
