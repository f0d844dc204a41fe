/**
 * Model configuration: Hugging Face `config.json` translated into Lantern's architecture-neutral
 * names (TransformerLens's: n_layers, d_model, n_heads, d_head, d_mlp, n_ctx, d_vocab).
 */
import fs from 'node:fs';
import path from 'node:path';
import { LanternError } from '../errors.js';

export type Activation = 'gelu_new' | 'gelu' | 'relu';

export interface ModelConfig {
  architecture: 'gpt2';
  nLayers: number;
  dModel: number;
  nHeads: number;
  dHead: number;
  dMlp: number;
  nCtx: number;
  dVocab: number;
  lnEps: number;
  act: Activation;
  /** Unembedding tied to the token embedding (GPT-2's default). */
  tiedUnembed: boolean;
}

export const SUPPORTED_ARCHITECTURES = ['gpt2'];

const ACTIVATIONS: Record<string, Activation> = { gelu_new: 'gelu_new', gelu_pytorch_tanh: 'gelu_new', gelu: 'gelu', relu: 'relu' };

function positiveInt(raw: Record<string, unknown>, key: string, file: string, fallbackKey?: string): number {
  const usedKey = raw[key] == null && fallbackKey !== undefined && raw[fallbackKey] != null ? fallbackKey : key;
  const v = raw[usedKey];
  if (v == null) {
    throw new LanternError(`${file}: '${key}'${fallbackKey ? ` (or '${fallbackKey}')` : ''} is missing; a GPT-2 config.json needs it`);
  }
  if (typeof v !== 'number' || !Number.isInteger(v) || v <= 0) {
    throw new LanternError(`${file}: '${usedKey}' must be a positive integer, got ${JSON.stringify(v)}`);
  }
  return v;
}

/** Parses a Hugging Face GPT-2 `config.json` object. */
export function parseConfig(raw: Record<string, unknown>, file = 'config.json'): ModelConfig {
  const type = raw.model_type;
  if (type == null) {
    throw new LanternError(`${file}: no 'model_type' given; supported architectures: ${SUPPORTED_ARCHITECTURES.join(', ')}`);
  }
  if (type !== 'gpt2') {
    throw new LanternError(
      `${file}: unsupported architecture model_type=${JSON.stringify(type)}; supported architectures: ${SUPPORTED_ARCHITECTURES.join(', ')}`,
    );
  }
  const dModel = positiveInt(raw, 'n_embd', file);
  const nHeads = positiveInt(raw, 'n_head', file);
  if (dModel % nHeads !== 0) throw new LanternError(`${file}: n_embd=${dModel} is not divisible by n_head=${nHeads}`);
  const actName = String(raw.activation_function ?? 'gelu_new');
  const act = ACTIVATIONS[actName];
  if (!act) throw new LanternError(`${file}: unsupported activation_function '${actName}' (supported: ${Object.keys(ACTIVATIONS).join(', ')})`);
  const eps = raw.layer_norm_epsilon ?? 1e-5;
  if (typeof eps !== 'number' || !(eps > 0)) throw new LanternError(`${file}: 'layer_norm_epsilon' must be a positive number`);
  return {
    architecture: 'gpt2',
    nLayers: positiveInt(raw, 'n_layer', file),
    dModel,
    nHeads,
    dHead: dModel / nHeads,
    dMlp: raw.n_inner == null ? 4 * dModel : positiveInt(raw, 'n_inner', file),
    nCtx: positiveInt(raw, 'n_positions', file, 'n_ctx'),
    dVocab: positiveInt(raw, 'vocab_size', file),
    lnEps: eps,
    act,
    tiedUnembed: raw.tie_word_embeddings !== false,
  };
}

/** Writes the Hugging Face `config.json` for a Lantern config (inverse of parseConfig). */
export function toHfConfig(cfg: ModelConfig, extra: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    model_type: 'gpt2',
    architectures: ['GPT2LMHeadModel'],
    n_layer: cfg.nLayers,
    n_embd: cfg.dModel,
    n_head: cfg.nHeads,
    n_inner: cfg.dMlp,
    n_positions: cfg.nCtx,
    n_ctx: cfg.nCtx,
    vocab_size: cfg.dVocab,
    layer_norm_epsilon: cfg.lnEps,
    activation_function: cfg.act,
    tie_word_embeddings: cfg.tiedUnembed,
    bos_token_id: 50256,
    eos_token_id: 50256,
    ...extra,
  };
}

export function readConfig(folder: string): ModelConfig {
  const file = path.join(folder, 'config.json');
  if (!fs.existsSync(folder)) throw new LanternError(`model folder not found: ${folder}`);
  if (!fs.existsSync(file)) throw new LanternError(`${folder} has no config.json (is it a Hugging Face model folder?)`);
  let raw: unknown;
  try {
    raw = JSON.parse(fs.readFileSync(file, 'utf8'));
  } catch (e) {
    throw new LanternError(`${file} is not valid JSON: ${(e as Error).message}`);
  }
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) throw new LanternError(`${file} must hold a JSON object`);
  return parseConfig(raw as Record<string, unknown>, file);
}
