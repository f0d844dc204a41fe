/** Small helpers shared by the planted kinds: a seeded RNG, token tables, and measurements on runs. */
import { Tensor } from '../../engine/tensor.js';
import { Rng } from '../../rng.js';
import type { HookCallback, Intervention, RunOptions } from '../hooked.js';
import type { PlantedComponent } from './types.js';

/** Uniform in [0, 1) from a seed (see src/rng.ts). */
export function uniformSampler(seed: number): () => number {
  const rng = new Rng(seed >>> 0);
  return () => rng.next();
}

/** `k` distinct items of `items`, in random order. */
export function sampleDistinct<T>(items: readonly T[], k: number, rand: () => number): T[] {
  if (k > items.length) throw new Error(`cannot draw ${k} distinct items from ${items.length}`);
  const a = items.slice();
  for (let i = 0; i < k; i++) {
    const j = i + Math.floor(rand() * (a.length - i));
    [a[i], a[j]] = [a[j], a[i]];
  }
  return a.slice(0, k);
}

export function randInt(rand: () => number, lo: number, hi: number): number {
  return lo + Math.floor(rand() * (hi - lo));
}

/**
 * GPT-2's token for a printable ASCII character (no merges below id 256): bytes 33..126 are ids
 * 0..93 in GPT-2's byte-level alphabet.
 */
export function asciiToken(ch: string): number {
  const c = ch.charCodeAt(0);
  if (ch.length !== 1 || c < 33 || c > 126) throw new Error(`not a printable ASCII character: ${JSON.stringify(ch)}`);
  return c - 33;
}

/** 'A'..'Z' then 'a'..'z': the 52 letter tokens (GPT-2 ids 32..57 and 64..89). */
export const LETTERS: string[] = [
  ...Array.from({ length: 26 }, (_, i) => String.fromCharCode(65 + i)),
  ...Array.from({ length: 26 }, (_, i) => String.fromCharCode(97 + i)),
];
/** GPT-2 token ids of the letters planted models use as their vocabulary. */
export const LETTER_IDS: number[] = LETTERS.map(asciiToken);

/** GPT-2's ' ' (byte 32, shown as 'Ġ'): the default prediction of planted models that predict nothing in particular. */
export const SPACE = 220;

// ---------------------------------------------------------------------------------------------
// Ablations

/** Zero-ablates one attention head: its z (and so its whole write to the residual) is zero. */
export function zeroHead(layer: number, head: number): Intervention {
  return { hook: `blocks.${layer}.attn.hook_z`, op: 'zero', heads: [head] };
}

/** Zero-ablates MLP neurons of one layer (a callback at hook_post: interventions cannot select neurons). */
export function zeroNeurons(layer: number, neurons: number[]): Record<string, HookCallback> {
  return {
    [`blocks.${layer}.mlp.hook_post`]: (act) => {
      const d = act.shape[act.shape.length - 1];
      const data = Float32Array.from(act.f32);
      for (let i = 0; i < data.length; i += d) for (const n of neurons) data[i + n] = 0;
      return Tensor.f32(data, act.shape);
    },
  };
}

/** The run options that zero-ablate a described component (a head or a neuron). */
export function ablationOf(c: Pick<PlantedComponent, 'layer' | 'head' | 'neuron'>): RunOptions {
  if (c.head !== undefined) return { interventions: [zeroHead(c.layer, c.head)] };
  if (c.neuron !== undefined) return { callbacks: zeroNeurons(c.layer, [c.neuron]) };
  throw new Error('component has neither a head nor a neuron');
}

// ---------------------------------------------------------------------------------------------
// Reading runs

/** logits[b, pos, :] as a view. */
export function logitRow(logits: Tensor, b: number, pos: number): Float32Array {
  const [, T, V] = logits.shape;
  return logits.f32.subarray((b * T + pos) * V, (b * T + pos + 1) * V);
}

/** Index of the largest logit (the first one on ties). */
export function argmax(row: Float32Array): number {
  let best = 0;
  for (let i = 1; i < row.length; i++) if (row[i] > row[best]) best = i;
  return best;
}

/** Softmax probability of `token` in a logit row. */
export function prob(row: Float32Array, token: number): number {
  let max = -Infinity;
  for (const x of row) if (x > max) max = x;
  let z = 0;
  for (const x of row) z += Math.exp(x - max);
  return Math.exp(row[token] - max) / z;
}

/** pattern[b, head, q, k] of a [batch, head, q, k] attention pattern. */
export function patternAt(pattern: Tensor, b: number, head: number, q: number, k: number): number {
  const [, H, T] = pattern.shape;
  return pattern.f32[((b * H + head) * T + q) * T + k];
}

export function mean(xs: number[]): number {
  return xs.length ? xs.reduce((p, q) => p + q, 0) / xs.length : NaN;
}

/** Rounds for planted.json (metrics are measurements, not bit patterns). */
export function round(x: number, digits = 4): number {
  const f = 10 ** digits;
  return Math.round(x * f) / f + 0; // + 0: no -0 in JSON round trips
}

export function roundAll(m: Record<string, number>): Record<string, number> {
  return Object.fromEntries(Object.entries(m).map(([k, v]) => [k, round(v)]));
}

/** Where a head lives and where to observe or ablate it. */
export function headComponent(x: { layer: number; head: number }): Pick<PlantedComponent, 'component' | 'layer' | 'head' | 'hooks'> {
  return {
    component: `blocks.${x.layer}.attn`, layer: x.layer, head: x.head,
    hooks: [`blocks.${x.layer}.attn.hook_pattern`, `blocks.${x.layer}.attn.hook_z`, `blocks.${x.layer}.attn.hook_result`],
  };
}

/** Two control heads that work but feed nothing: a previous-token head and a current-token head. */
export function tokenDistractors(previous: { layer: number; head: number }, current: { layer: number; head: number }): PlantedComponent[] {
  return [
    {
      ...headComponent(previous), role: 'distractor head (previous token)', planted: false,
      attends: 'query t -> key t-1', reads: ['POS (QK)', 'TOK (OV)'], writes: ['PREVJ (read by nothing)'],
      ablation: 'no effect on the task', details: 'A previous-token head whose output nothing reads.',
    },
    {
      ...headComponent(current), role: 'distractor head (current token)', planted: false,
      attends: 'query t -> key t', reads: ['POS (QK)', 'TOK (OV)'], writes: ['CURJ (read by nothing)'],
      ablation: 'no effect on the task', details: 'Attends to itself; nothing reads its output.',
    },
  ];
}
