/**
 * Model configuration: a Hugging Face `config.json` translated into Lantern's names
 * (TransformerLens's: n_layers, d_model, n_heads, d_head, d_mlp, n_ctx, d_vocab) by the
 * architecture registered for its `model_type` (src/models/architectures/).
 */
import fs from 'node:fs';
import path from 'node:path';
import { LanternError } from '../errors.js';
import { readRegularText } from '../files.js';
import { architectureFor, SUPPORTED_ARCHITECTURES } from './architectures/index.js';

// The registry, for code outside models/ (which never reaches into an architecture's own file).
export { architectureFor, architectures, SUPPORTED_ARCHITECTURES } from './architectures/index.js';

/** gelu_new is GPT-2's tanh approximation (HF's gelu_pytorch_tanh); gelu is the exact erf form. */
export type Activation = 'gelu_new' | 'gelu' | 'relu' | 'silu';
export type NormKind = 'layernorm' | 'rmsnorm' | 'rmsnorm_plus_one';

/** Rotary position embedding (Su et al., 2021) on the first `dims` dimensions of each head. */
export interface Rope {
  dims: number;
  base: number;
  scaling?: { type: 'linear'; factor: number } | {
    type: 'llama3'; factor: number; lowFreqFactor: number; highFreqFactor: number; originalContext: number;
  };
}

/** A model's shape and options in Lantern's terms, whatever its family's config.json calls them. */
export interface ModelConfig {
  /** The `model_type` whose architecture runs this model. */
  architecture: string;
  nLayers: number;
  dModel: number;
  nHeads: number;
  /** Key/value heads (grouped-query attention shares each among nHeads / nKvHeads query heads). */
  nKvHeads: number;
  dHead: number;
  dMlp: number;
  nCtx: number;
  dVocab: number;
  /** The epsilon of every norm (LayerNorm or RMSNorm). */
  lnEps: number;
  act: Activation;
  /** Unembedding tied to the token embedding. */
  tiedUnembed: boolean;
  norm?: NormKind;
  /** Absent: learned absolute positions (GPT-2). */
  rope?: Rope;
  /** Gemma 3: the rotary embedding of sliding-window layers. */
  localRope?: Rope;
  /** The window of sliding-window layers: a query sees the `slidingWindow` latest keys, itself included. */
  slidingWindow?: number;
  /** Which layers use the sliding window (all, when slidingWindow is set and this is absent). */
  slidingLayers?: number[];
  /** The factor on q·k (default 1/sqrt(d_head)). */
  attnScale?: number;
  /** Gemma 2: scores become cap·tanh(scores/cap) before masking. */
  attnSoftcap?: number;
  finalSoftcap?: number;
  /** Token embeddings are multiplied by this (Gemma: sqrt(d_model)). */
  embedScale?: number;
  qkvBias?: boolean;
  oBias?: boolean;
  mlpBias?: boolean;
  /** Qwen 3, Gemma 3: an RMSNorm over each head of q and k before the rotary embedding. */
  qkNorm?: boolean;
  /** Gemma 2 and 3: norms after attention and after the MLP, before each is added to the residual. */
  postNorms?: boolean;
  /** GPT-NeoX: attention and MLP both read the block's input: x + attn(ln1 x) + mlp(ln2 x). */
  parallelResidual?: boolean;
}

/** Is layer l a sliding-window layer? */
export function isSlidingLayer(cfg: ModelConfig, l: number): boolean {
  return cfg.slidingWindow !== undefined && (cfg.slidingLayers ? cfg.slidingLayers.includes(l) : true);
}

/** Parses a Hugging Face `config.json` object with the architecture its `model_type` names. */
export function parseConfig(raw: Record<string, unknown>, file = 'config.json'): ModelConfig {
  const type = raw.model_type;
  if (type == null) throw new LanternError(`${file}: no 'model_type' given; supported architectures: ${SUPPORTED_ARCHITECTURES.join(', ')}`);
  return architectureFor(String(type), file).parseConfig(raw, file);
}

/** Writes the Hugging Face `config.json` for a Lantern config (inverse of parseConfig). */
export function toHfConfig(cfg: ModelConfig, extra: Record<string, unknown> = {}): Record<string, unknown> {
  return { ...architectureFor(cfg.architecture).toHfConfig(cfg), ...extra };
}

export function readConfigJson(folder: string): Record<string, unknown> {
  const file = path.join(folder, 'config.json');
  if (!fs.existsSync(folder)) throw new LanternError(`model folder not found: ${folder}`);
  if (!fs.existsSync(file)) throw new LanternError(`${folder} has no config.json (is it a Hugging Face model folder?)`);
  const text = readRegularText(file, 16 << 20, 'config.json');
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (e) {
    // V8 quotes the text around the error, line breaks included: the message stays one line.
    throw new LanternError(`${file} is not valid JSON: ${(e as Error).message.replace(/\s*\n\s*/g, ' ')}`);
  }
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) throw new LanternError(`${file} must hold a JSON object`);
  return raw as Record<string, unknown>;
}

/** Reads and checks a model folder's config.json. */
export function readConfig(folder: string): ModelConfig {
  return parseConfig(readConfigJson(folder), path.join(folder, 'config.json'));
}
