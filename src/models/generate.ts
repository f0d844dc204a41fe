/**
 * Text continuation by repeated forward passes (no key/value cache: prompts here are short and a
 * forward is cheap next to the clarity of one code path).
 */
import { LanternError } from '../errors.js';
import type { HookedTransformer } from './hooked.js';
import { Rng } from '../rng.js';

export interface GenerateOptions {
  maxNewTokens?: number;
  /** 0 = greedy. */
  temperature?: number;
  /** Sample only among the k most likely tokens (0 = all). */
  topK?: number;
  seed?: number;
  /** Stop at this token (default: GPT-2's <|endoftext|> when the vocabulary has it). */
  stopToken?: number;
}

/** Generates a continuation of a prompt (greedy or sampled), reusing past keys and values. */
export async function generate(model: HookedTransformer, prompt: string | number[], opts: GenerateOptions = {}): Promise<{ tokens: number[]; text: string }> {
  const tokens = typeof prompt === 'string' ? model.toTokens(prompt) : [...prompt];
  if (tokens.length === 0) throw new LanternError('generate: empty prompt');
  const { maxNewTokens = 40, temperature = 0.8, topK = 40, seed = 0 } = opts;
  const stop = opts.stopToken ?? (model.cfg.dVocab > 50256 ? 50256 : -1);
  const rng = new Rng(seed);
  const out: number[] = [];
  for (let i = 0; i < maxNewTokens; i++) {
    const context = [...tokens, ...out].slice(-model.cfg.nCtx);
    const logits = await model.run([context]);
    const V = model.cfg.dVocab;
    const row = logits.f32.subarray((context.length - 1) * V, context.length * V);
    const next = temperature === 0 ? argmax(row) : sample(row, temperature, topK, rng);
    if (next === stop) break;
    out.push(next);
  }
  return { tokens: out, text: model.toString(out) };
}

function argmax(row: Float32Array): number {
  let best = 0;
  for (let i = 1; i < row.length; i++) if (row[i] > row[best]) best = i;
  return best;
}

function sample(row: Float32Array, temperature: number, topK: number, rng: Rng): number {
  let ids = Array.from(row.keys());
  if (topK > 0 && topK < row.length) ids = ids.sort((a, b) => row[b] - row[a]).slice(0, topK);
  const max = Math.max(...ids.map((i) => row[i]));
  const weights = ids.map((i) => Math.exp((row[i] - max) / temperature));
  let r = rng.next() * weights.reduce((p, q) => p + q, 0);
  for (let j = 0; j < ids.length; j++) {
    r -= weights[j];
    if (r <= 0) return ids[j];
  }
  return ids[ids.length - 1];
}
