/**
 * Activation patching (Meng et al., 2022; Wang et al., 2022; TransformerLens's patching.py): run
 * the corrupted prompt with one activation taken from the clean run, and measure how much of the
 * clean behaviour comes back. Normalised so that 1 = clean and 0 = corrupted.
 *
 * Sweeps are batched: a batch holds copies of the corrupted prompt, and at every swept hook the
 * graph computes where(mask, clean, activation) with a per-example boolean mask, so example b
 * patches exactly its own slot (layer, position and/or head) and runs the rest of the model on
 * whatever that patch caused. One compiled graph serves every chunk of every sweep of a kind;
 * only the (final-position) answer logits and log-probs leave the graph.
 */
import { LanternError } from '../../errors.js';
import { Graph, Shape, Value } from '../../engine/graph/ir.js';
import { Tensor } from '../../engine/tensor.js';
import type { HookedTransformer } from '../../models/hooked.js';
import { B, modelInputs, positionFeeds } from '../../models/inputs.js';
import { buildForward } from '../../models/forward.js';

/** What activation patching can sweep: residual stream, attention and MLP outputs, heads, attention patterns. */
export const SWEEPS = ['resid', 'attn', 'mlp', 'heads', 'pattern'] as const;
/** One of {@link SWEEPS}. */
export type Sweep = (typeof SWEEPS)[number];
/** What a patch is measured by: the logit difference of answer and wrong answer, or the answer's log-probability. */
export type PatchMetric = 'logit-diff' | 'logprob';

/** The hook each sweep patches, per layer (TransformerLens's get_act_patch_* equivalents). */
export const SWEEP_HOOKS: Record<Sweep, (layer: number) => string> = {
  resid: (l) => `blocks.${l}.hook_resid_pre`,
  attn: (l) => `blocks.${l}.hook_attn_out`,
  mlp: (l) => `blocks.${l}.hook_mlp_out`,
  heads: (l) => `blocks.${l}.attn.hook_z`,
  pattern: (l) => `blocks.${l}.attn.hook_pattern`,
};

/** Clean and corrupted prompts, answers, and what to sweep. */
export interface PatchingOptions {
  clean: string | number[];
  corrupt: string | number[];
  /** The right answer (token id, or text that must be one token). */
  answer: number | string;
  /** The wrong answer, for metric 'logit-diff' (the default metric). */
  wrong?: number | string;
  sweep: Sweep | string;
  /** 'logit-diff' (logit(answer) - logit(wrong), default when `wrong` is given) or 'logprob' (log p(answer)). */
  metric?: PatchMetric;
  /** heads / pattern: one patch per (layer, head, position) instead of per (layer, head). For pattern, the position is the query (destination). */
  byPosition?: boolean;
  /** Position whose next-token prediction is measured (default: the last). */
  pos?: number;
  /** Patched runs per ORT call (default 64). */
  batchSize?: number;
}

/** One patched run: which layer, and position and/or head (absent = every one). */
export interface PatchSlot {
  layer: number;
  pos?: number;
  head?: number;
}

/** A patching sweep: the effect of each patched slot (layer, position, head), normalised so 1 restores the clean run. */
export interface PatchingResult {
  method: 'activation-patching';
  sweep: Sweep;
  metric: PatchMetric;
  /** The hook patched, with {l} for the layer. */
  hook: string;
  /** Axis names and sizes of `effects`, e.g. ['layer', 'pos'] and [L, seq]. */
  axes: string[];
  shape: number[];
  /** Normalised effect of each patch, (m - m_corrupt) / (m_clean - m_corrupt), row-major over `axes`. */
  effects: number[];
  /** The raw metric of each patched run, same layout. */
  values: number[];
  slots: PatchSlot[];
  clean: number;
  corrupt: number;
  cleanTokens: number[];
  corruptTokens: number[];
  answer: number;
  wrong?: number;
  pos: number;
  settings: { batchSize: number; byPosition: boolean };
}

/** Normalised effect at `index` (one number per axis). */
export function effectAt(r: Pick<PatchingResult, 'shape' | 'effects'>, ...index: number[]): number {
  let i = 0;
  r.shape.forEach((n, a) => (i = i * n + index[a]));
  return r.effects[i];
}

export function toTokenIds(model: HookedTransformer, x: string | number[]): number[] {
  return typeof x === 'string' ? model.toTokens(x) : x;
}

export function toOneToken(model: HookedTransformer, x: number | string, what: string): number {
  if (typeof x === 'number') {
    if (!Number.isInteger(x) || x < 0 || x >= model.cfg.dVocab) throw new LanternError(`${what} token ${x} is outside the vocabulary [0, ${model.cfg.dVocab})`);
    return x;
  }
  const ids = model.encode(x);
  if (ids.length !== 1) {
    throw new LanternError(`${what} ${JSON.stringify(x)} is ${ids.length} tokens (${model.tokenStrings(ids).map((s) => JSON.stringify(s)).join(', ') || 'none'}), not a single token`);
  }
  return ids[0];
}

/** The slots of a sweep, in row-major order over its axes. */
export function sweepSlots(model: HookedTransformer, sweep: Sweep, seq: number, byPosition: boolean): { axes: string[]; shape: number[]; slots: PatchSlot[] } {
  const { nLayers: L, nHeads: H } = model.cfg;
  const slots: PatchSlot[] = [];
  if (sweep === 'resid' || sweep === 'attn' || sweep === 'mlp') {
    for (let l = 0; l < L; l++) for (let p = 0; p < seq; p++) slots.push({ layer: l, pos: p });
    return { axes: ['layer', 'pos'], shape: [L, seq], slots };
  }
  if (byPosition) {
    for (let l = 0; l < L; l++) for (let h = 0; h < H; h++) for (let p = 0; p < seq; p++) slots.push({ layer: l, head: h, pos: p });
    return { axes: ['layer', 'head', 'pos'], shape: [L, H, seq], slots };
  }
  for (let l = 0; l < L; l++) for (let h = 0; h < H; h++) slots.push({ layer: l, head: h });
  return { axes: ['layer', 'head'], shape: [L, H], slots };
}

/** Mask shape per hook layout: resid [b, t, 1], hook_z [b, t, h, 1], pattern [b, h, q, 1]. */
function maskDims(sweep: Sweep, batch: number, seq: number, H: number): number[] {
  if (sweep === 'heads') return [batch, seq, H, 1];
  if (sweep === 'pattern') return [batch, H, seq, 1];
  return [batch, seq, 1];
}

function maskIndex(sweep: Sweep, b: number, pos: number, head: number, seq: number, H: number): number {
  if (sweep === 'heads') return (b * seq + pos) * H + head;
  if (sweep === 'pattern') return (b * H + head) * seq + pos;
  return b * seq + pos;
}

/** Checks a clean/corrupted pair and its answer tokens; what every patching method starts from. */
export function resolvePair(model: HookedTransformer, opts: Pick<PatchingOptions, 'sweep' | 'clean' | 'corrupt' | 'answer' | 'wrong' | 'metric' | 'pos'>) {
  if (!(SWEEPS as readonly string[]).includes(opts.sweep)) throw new LanternError(`unknown sweep '${opts.sweep}'; sweeps: ${SWEEPS.join(', ')}`);
  const sweep = opts.sweep as Sweep;
  const cleanTokens = toTokenIds(model, opts.clean);
  const corruptTokens = toTokenIds(model, opts.corrupt);
  model.toBatch([cleanTokens, corruptTokens]); // validates ids, emptiness and context length
  if (cleanTokens.length !== corruptTokens.length) {
    throw new LanternError(`clean and corrupted prompts must have the same number of tokens (clean ${cleanTokens.length}, corrupted ${corruptTokens.length})`);
  }
  const seq = cleanTokens.length;
  const answer = toOneToken(model, opts.answer, 'answer');
  const wrong = opts.wrong !== undefined ? toOneToken(model, opts.wrong, 'wrong answer') : undefined;
  const metric: PatchMetric = opts.metric ?? (wrong !== undefined ? 'logit-diff' : 'logprob');
  if (metric !== 'logit-diff' && metric !== 'logprob') throw new LanternError(`unknown metric '${metric}'; use logit-diff or logprob`);
  if (metric === 'logit-diff' && wrong === undefined) throw new LanternError('metric logit-diff needs a wrong answer');
  const pos = opts.pos ?? seq - 1;
  if (!Number.isInteger(pos) || pos < 0 || pos >= seq) throw new LanternError(`position ${pos} outside the prompt (length ${seq})`);
  return { sweep, cleanTokens, corruptTokens, seq, answer, wrong, metric, pos };
}

/**
 * Activation patching of one clean/corrupted pair over a sweep: resid (layer × position at
 * hook_resid_pre), attn / mlp (layer × position at hook_attn_out / hook_mlp_out), heads (layer ×
 * head at hook_z, optionally × position) or pattern (layer × head at hook_pattern, optionally ×
 * query position).
 */
export async function activationPatching(model: HookedTransformer, opts: PatchingOptions): Promise<PatchingResult> {
  const { sweep, cleanTokens, corruptTokens, seq, answer, wrong, metric, pos } = resolvePair(model, opts);
  const batchSize = opts.batchSize ?? 64;
  if (!Number.isInteger(batchSize) || batchSize < 1) throw new LanternError(`batch size must be a positive integer, got ${batchSize}`);
  const byPosition = !!opts.byPosition && (sweep === 'heads' || sweep === 'pattern');
  const { nLayers: L, nHeads: H } = model.cfg;
  const hooks = Array.from({ length: L }, (_, l) => SWEEP_HOOKS[sweep](l));

  const { cache } = await model.runWithCache([cleanTokens], hooks);
  const feeds: Record<string, Tensor> = { ...positionFeeds(seq) };
  hooks.forEach((h) => (feeds[`patch.clean.${h}`] = cache.get(h)));
  const spec = { method: 'activation-patching', cfg: model.cfg, hooks, answers: wrong === undefined ? 1 : 2 };
  const signature = JSON.stringify(spec);
  const build = () => patchGraph(model, hooks, sweep);
  const answers = wrong === undefined ? [answer] : [answer, wrong];
  feeds['patch.answers'] = Tensor.i64(answers, [answers.length]);
  feeds['patch.pos'] = Tensor.i64([pos], [1]);

  const measure = (logit: Float32Array, logprob: Float32Array, b: number) =>
    metric === 'logit-diff' ? logit[b * 2] - logit[b * 2 + 1] : logprob[b * answers.length];

  const runRows = async (rows: number[][], masks: (n: number) => Uint8Array[]): Promise<number[]> => {
    const n = rows.length;
    const ids = new BigInt64Array(n * seq);
    rows.forEach((r, b) => r.forEach((t, i) => (ids[b * seq + i] = BigInt(t))));
    const m = masks(n);
    const f: Record<string, Tensor> = { ...feeds, tokens: new Tensor('int64', ids, [n, seq]) };
    hooks.forEach((h, l) => (f[`patch.mask.${h}`] = Tensor.bool(m[l], maskDims(sweep, n, seq, H))));
    const out = await model.executor.run(signature, build, f, { weights: [model.weights] });
    const logit = out['patch.logits'].f32; // [n, answers]
    const logprob = out['patch.logprobs'].f32;
    return Array.from({ length: n }, (_, b) => measure(logit, logprob, b));
  };
  const size = (n: number) => maskDims(sweep, n, seq, H).reduce((p, q) => p * q, 1);

  // Baselines through the same graph (no patches): clean and corrupted.
  const [clean, corrupt] = await runRows([cleanTokens, corruptTokens], (n) => hooks.map(() => new Uint8Array(size(n))));
  if (!(Math.abs(clean - corrupt) > 1e-6 * Math.max(1, Math.abs(clean)))) {
    throw new LanternError(`the clean and corrupted prompts give the same ${metric} (${clean.toFixed(4)}), so patching effects cannot be normalised`);
  }

  const { axes, shape, slots } = sweepSlots(model, sweep, seq, byPosition);
  const values: number[] = [];
  for (let start = 0; start < slots.length; start += batchSize) {
    const chunk = slots.slice(start, start + batchSize);
    const rows = chunk.map(() => corruptTokens);
    values.push(...(await runRows(rows, (n) => {
      const m = hooks.map(() => new Uint8Array(size(n)));
      chunk.forEach((s, b) => {
        const positions = s.pos === undefined ? Array.from({ length: seq }, (_, p) => p) : [s.pos];
        const heads = s.head === undefined ? [0] : [s.head];
        for (const p of positions) for (const h of heads) m[s.layer][maskIndex(sweep, b, p, h, seq, H)] = 1;
      });
      return m;
    })));
  }
  const effects = values.map((v) => (v - corrupt) / (clean - corrupt));
  return {
    method: 'activation-patching', sweep, metric, hook: SWEEP_HOOKS[sweep](0).replace('blocks.0.', 'blocks.{l}.'),
    axes, shape, effects, values, slots, clean, corrupt, cleanTokens, corruptTokens, answer, ...(wrong !== undefined ? { wrong } : {}), pos,
    settings: { batchSize, byPosition },
  };
}

/** The model with where(mask, clean, act) at each swept hook; outputs the answers' logits and log-probs at `pos`. */
function patchGraph(model: HookedTransformer, hooks: string[], sweep: Sweep): Graph {
  const g = new Graph();
  const H = model.cfg.nHeads;
  const swept = new Set(hooks);
  let final: Value | undefined;
  const hook = (name: string, v: Value): Value => {
    if (name === 'ln_final.hook_normalized') final = v;
    if (!swept.has(name)) return v;
    const shape = model.hookShapes.get(name)!;
    const cleanShape: Shape = shape.map((d) => (d === B ? 1 : d));
    const maskShape: Shape = sweep === 'heads' ? [B, shape[1], H, 1] : sweep === 'pattern' ? [B, H, shape[2], 1] : [B, shape[1], 1];
    const clean = g.input(`patch.clean.${name}`, 'float32', cleanShape);
    const mask = g.input(`patch.mask.${name}`, 'bool', maskShape);
    return g.where(mask, clean, v);
  };
  const m = buildForward(g, model.cfg, modelInputs(g), hook);
  // Rows (b, pos) of the final residual: gather pos along seq of [b, seq, d].
  const posIdx = g.input('patch.pos', 'int64', [1]);
  const atPos = g.reshape(g.transpose(g.gather(g.transpose(final!, [1, 0, 2]), posIdx), [1, 0, 2]), [B, model.cfg.dModel]); // [b, d]
  const logits = m.unembed(atPos); // [b, vocab]
  const answers = g.input('patch.answers', 'int64', ['answers']);
  const pick = (x: Value) => g.transpose(g.gather(g.transpose(x, [1, 0]), answers), [1, 0]); // [b, answers]
  g.output('patch.logits', pick(logits));
  g.output('patch.logprobs', pick(g.logSoftmax(logits, -1)));
  return g;
}
