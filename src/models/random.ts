/**
 * Writes a GPT-2 model with random weights to a Hugging Face folder. Tests and benchmarks use it
 * for any shape up to full GPT-2 small (124M parameters) without downloading anything; the same
 * seed always gives the same weights.
 */
import fs from 'node:fs';
import path from 'node:path';
import type { ModelConfig } from './config.js';
import { toHfConfig } from './config.js';
import { weightShapes } from './gpt2/model.js';
import { hfName } from './gpt2/weights.js';
import { writeSafetensors, WritableTensor } from './safetensors.js';
import { buildGpt2TokenizerJson } from './gpt2-tokenizer.js';
import { Rng } from '../rng.js';

export const GPT2_SMALL: ModelConfig = {
  architecture: 'gpt2', nLayers: 12, dModel: 768, nHeads: 12, dHead: 64, dMlp: 3072,
  nCtx: 1024, dVocab: 50257, lnEps: 1e-5, act: 'gelu_new', tiedUnembed: true,
};

export const TINY_GPT2: ModelConfig = {
  architecture: 'gpt2', nLayers: 2, dModel: 64, nHeads: 4, dHead: 16, dMlp: 256,
  nCtx: 64, dVocab: 1000, lnEps: 1e-5, act: 'gelu_new', tiedUnembed: true,
};

export function normalSampler(seed: number): () => number {
  const rng = new Rng(seed >>> 0);
  return () => rng.normal();
}

/** Random weights in Lantern naming: GPT-2's init (N(0, 0.02)), with LayerNorm weights and all biases perturbed so every parameter matters. */
export function randomGpt2Weights(cfg: ModelConfig, seed = 0): Record<string, Float32Array> {
  const normal = normalSampler(seed);
  const out: Record<string, Float32Array> = {};
  for (const [name, shape] of Object.entries(weightShapes(cfg))) {
    const n = shape.reduce((p, q) => p * q, 1);
    const a = new Float32Array(n);
    const isLnWeight = /\.w$/.test(name);
    const isBias = /\.b(_\w+)?$/.test(name);
    const std = isLnWeight ? 0.1 : isBias ? 0.02 : name === 'pos_embed.W_pos' ? 0.01 : 0.02;
    for (let i = 0; i < n; i++) a[i] = (isLnWeight ? 1 : 0) + std * normal();
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
  dtype?: 'F32' | 'F16' | 'BF16';
}

/** Writes config.json, model.safetensors (HF GPT-2 names) and tokenizer.json. */
export function writeRandomGpt2(folder: string, cfg: ModelConfig, opts: WriteRandomOptions = {}): void {
  fs.mkdirSync(folder, { recursive: true });
  const weights = randomGpt2Weights(cfg, opts.seed ?? 0);
  const tensors: Record<string, WritableTensor> = {};
  const shapes = weightShapes(cfg);
  for (const [name, data] of Object.entries(weights)) tensors[hfName(name)] = { dtype: opts.dtype ?? 'F32', shape: shapes[name], data };
  writeSafetensors(path.join(folder, 'model.safetensors'), tensors, { format: 'pt' });
  fs.writeFileSync(path.join(folder, 'config.json'), JSON.stringify(toHfConfig(cfg, { lantern_random_seed: opts.seed ?? 0 }), null, 2));
  fs.writeFileSync(path.join(folder, 'tokenizer.json'), JSON.stringify(truncatedGpt2Tokenizer(cfg.dVocab)));
}
