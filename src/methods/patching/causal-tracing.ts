/**
 * Causal tracing (Meng et al., 2022, "Locating and Editing Factual Associations in GPT", ROME):
 * corrupt the subject by adding Gaussian noise to its token embeddings (by default 3x the standard
 * deviation of the embedding matrix's entries), then restore one clean state at a time — the
 * residual stream after a layer, an MLP's output or an attention output, at one position — and
 * measure how much of p(answer) comes back. The indirect effect of a state is
 * p(answer | corrupted, state restored) - p(answer | corrupted), averaged over noise samples.
 *
 * Batched like activation patching: every row of an ORT call is (noise sample, restored state),
 * with the noise added at hook_embed and where(mask, clean, act) at every traced hook, so one
 * compiled graph serves the whole trace.
 */
import { LanternError } from '../../errors.js';
import { Graph, Value } from '../../engine/graph/ir.js';
import { Tensor } from '../../engine/tensor.js';
import type { HookedTransformer } from '../../models/hooked.js';
import { B, modelInputs, positionFeeds } from '../../models/inputs.js';
import { buildForward } from '../../models/forward.js';
import { Rng } from '../../rng.js';
import { toOneToken, toTokenIds } from './activation.js';

/** The states causal tracing restores: residual stream, MLP outputs, attention outputs. */
export const TRACE_KINDS = ['resid', 'mlp', 'attn'] as const;
/** One of {@link TRACE_KINDS}. */
export type TraceKind = (typeof TRACE_KINDS)[number];

/** The state each kind restores, per layer (ROME's hidden state = the block's output). */
export const TRACE_HOOKS: Record<TraceKind, (layer: number) => string> = {
  resid: (l) => `blocks.${l}.hook_resid_post`,
  mlp: (l) => `blocks.${l}.hook_mlp_out`,
  attn: (l) => `blocks.${l}.hook_attn_out`,
};

/** Causal tracing's prompt, subject, answer and noise settings. */
export interface CausalTraceOptions {
  prompt: string | number[];
  /** The answer whose probability is traced (token id, or text that is one token). */
  answer: number | string;
  /** Positions of the subject's tokens, or the subject's text (its first occurrence in the prompt). */
  subject: number[] | string;
  /** Noise std as a multiple of the embedding matrix's std (default 3); ignored when `noiseStd` is set. */
  noise?: number;
  /** Absolute noise std. */
  noiseStd?: number;
  /** Noise samples averaged (default 10). */
  samples?: number;
  seed?: number;
  /** Which states to restore (default all three). */
  kinds?: TraceKind[];
  /** mlp / attn: restore this many consecutive layers centred on each layer, as ROME's window (default 1). */
  window?: number;
  /** Rows per ORT call (default 64). */
  batchSize?: number;
  /** Called after each ORT call with (rows done, rows in all). */
  progress?: (done: number, total: number) => void;
}

/** Causal tracing's grid: how much restoring each (layer, position) state recovers the answer. */
export interface CausalTraceResult {
  method: 'causal-tracing';
  tokens: number[];
  answer: number;
  subjectPositions: number[];
  /** p(answer) on the clean prompt, and with the subject noised (mean over samples). */
  clean: number;
  corrupt: number;
  /** Per kind: [layer][pos] indirect effect p(restored) - p(corrupt), and normalised by p(clean) - p(corrupt). */
  effects: Partial<Record<TraceKind, { hook: string; indirect: number[][]; normalised: number[][] }>>;
  settings: { noise: number | null; noiseStd: number; samples: number; seed: number; kinds: TraceKind[]; window: number; batchSize: number };
}

/** The layers restored for `layer` with a window of `w` (ROME: [l - w/2, l + w/2) clipped to the model). */
export function traceWindow(layer: number, w: number, nLayers: number): number[] {
  const lo = Math.max(0, layer - Math.floor(w / 2));
  const hi = Math.min(nLayers, layer - Math.floor(-w / 2));
  return Array.from({ length: hi - lo }, (_, i) => lo + i);
}

/**
 * The noise of each sample, [samples, seq, d_model], zero outside the subject: deterministic in
 * the seed, so a trace can be reproduced (and checked) run by run.
 */
export function traceNoise(seq: number, dModel: number, subject: number[], std: number, samples: number, seed: number): Tensor {
  const rng = new Rng(seed >>> 0);
  const out = new Float32Array(samples * seq * dModel);
  for (let s = 0; s < samples; s++) {
    for (const p of subject) for (let d = 0; d < dModel; d++) out[(s * seq + p) * dModel + d] = std * rng.normal();
  }
  return Tensor.f32(out, [samples, seq, dModel]);
}

/** Standard deviation of the entries of the token embedding matrix. */
export async function embeddingStd(model: HookedTransformer): Promise<number> {
  const { 'embed.W_E': we } = await model.executor.readWeights(model.weights, ['embed.W_E']);
  let s = 0;
  let s2 = 0;
  for (const x of we.f32) { s += x; s2 += x * x; }
  const n = we.size;
  return Math.sqrt(Math.max(0, s2 / n - (s / n) ** 2));
}

function subjectPositions(model: HookedTransformer, tokens: number[], subject: number[] | string, prompt: string | number[]): number[] {
  if (Array.isArray(subject)) {
    if (subject.length === 0) throw new LanternError('the subject has no positions');
    for (const p of subject) if (!Number.isInteger(p) || p < 0 || p >= tokens.length) throw new LanternError(`subject position ${p} outside the prompt (length ${tokens.length})`);
    return [...new Set(subject)].sort((a, b) => a - b);
  }
  if (typeof prompt !== 'string') throw new LanternError('give the subject as token positions when the prompt is token ids');
  const at = prompt.indexOf(subject);
  if (subject === '' || at < 0) throw new LanternError(`subject ${JSON.stringify(subject)} does not occur in the prompt ${JSON.stringify(prompt)}`);
  // Prefix lengths count the BOS the prompt's tokens begin with, if the model adds one.
  const before = model.toTokens(at === 0 ? '' : prompt.slice(0, at).replace(/ $/, '')).length;
  const through = model.toTokens(prompt.slice(0, at + subject.length)).length;
  return Array.from({ length: through - before }, (_, i) => before + i);
}

/** Causal tracing (Meng et al. 2022): noise the subject's embeddings, then restore each state from the clean run. */
export async function causalTrace(model: HookedTransformer, opts: CausalTraceOptions): Promise<CausalTraceResult> {
  const tokens = toTokenIds(model, opts.prompt);
  model.toBatch([tokens]);
  const seq = tokens.length;
  const { nLayers: L, dModel: D } = model.cfg;
  const answer = toOneToken(model, opts.answer, 'answer');
  const subject = subjectPositions(model, tokens, opts.subject, opts.prompt);
  const samples = opts.samples ?? 10;
  const seed = opts.seed ?? 1;
  const window = opts.window ?? 1;
  const batchSize = opts.batchSize ?? 64;
  const kinds = opts.kinds ?? [...TRACE_KINDS];
  for (const k of kinds) if (!(TRACE_KINDS as readonly string[]).includes(k)) throw new LanternError(`unknown state kind '${k}'; kinds: ${TRACE_KINDS.join(', ')}`);
  for (const [name, v] of [['samples', samples], ['window', window], ['batch size', batchSize]] as const) {
    if (!Number.isInteger(v) || v < 1) throw new LanternError(`${name} must be a positive integer, got ${v}`);
  }
  if (opts.noise !== undefined && !(opts.noise > 0)) throw new LanternError(`noise must be a positive multiple of the embedding std, got ${opts.noise}`);
  if (opts.noiseStd !== undefined && !(opts.noiseStd > 0)) throw new LanternError(`noise std must be positive, got ${opts.noiseStd}`);
  const noiseStd = opts.noiseStd ?? (opts.noise ?? 3) * (await embeddingStd(model));
  const noise = traceNoise(seq, D, subject, noiseStd, samples, seed);

  const hooks = kinds.flatMap((k) => Array.from({ length: L }, (_, l) => TRACE_HOOKS[k](l)));
  const { cache } = await model.runWithCache([tokens], hooks);
  const feeds: Record<string, Tensor> = { ...positionFeeds(seq), 'trace.answer': Tensor.i64([answer], [1]), 'trace.pos': Tensor.i64([seq - 1], [1]) };
  hooks.forEach((h) => (feeds[`trace.clean.${h}`] = cache.get(h)));
  const signature = JSON.stringify({ method: 'causal-tracing', cfg: model.cfg, hooks });
  const build = () => traceGraph(model, hooks);

  interface Row { sample: number | null; restore: { hook: string; pos: number }[] }
  const run = async (rows: Row[]): Promise<number[]> => {
    const n = rows.length;
    const ids = new BigInt64Array(n * seq);
    const nz = new Float32Array(n * seq * D);
    const masks = hooks.map(() => new Uint8Array(n * seq));
    const hookIndex = new Map(hooks.map((h, i) => [h, i]));
    rows.forEach((r, b) => {
      tokens.forEach((t, i) => (ids[b * seq + i] = BigInt(t)));
      if (r.sample !== null) nz.set(noise.f32.subarray(r.sample * seq * D, (r.sample + 1) * seq * D), b * seq * D);
      for (const { hook, pos } of r.restore) masks[hookIndex.get(hook)!][b * seq + pos] = 1;
    });
    const f: Record<string, Tensor> = { ...feeds, tokens: new Tensor('int64', ids, [n, seq]), 'trace.noise': Tensor.f32(nz, [n, seq, D]) };
    hooks.forEach((h, i) => (f[`trace.mask.${h}`] = Tensor.bool(masks[i], [n, seq, 1])));
    const out = await model.executor.run(signature, build, f, { weights: [model.weights] });
    return Array.from(out['trace.prob'].f32);
  };

  const base = await run([{ sample: null, restore: [] }, ...Array.from({ length: samples }, (_, s) => ({ sample: s, restore: [] }))]);
  const clean = base[0];
  const corrupt = mean(base.slice(1));

  // Every (kind, layer, position) state, each with all its samples.
  const states: { kind: TraceKind; layer: number; pos: number }[] = [];
  for (const kind of kinds) for (let l = 0; l < L; l++) for (let p = 0; p < seq; p++) states.push({ kind, layer: l, pos: p });
  const rows: Row[] = [];
  for (const st of states) {
    const layers = st.kind === 'resid' ? [st.layer] : traceWindow(st.layer, window, L);
    for (let s = 0; s < samples; s++) rows.push({ sample: s, restore: layers.map((l) => ({ hook: TRACE_HOOKS[st.kind](l), pos: st.pos })) });
  }
  const probs: number[] = [];
  for (let i = 0; i < rows.length; i += batchSize) {
    probs.push(...(await run(rows.slice(i, i + batchSize))));
    opts.progress?.(Math.min(i + batchSize, rows.length), rows.length);
  }
  const effects: CausalTraceResult['effects'] = {};
  const denom = clean - corrupt;
  kinds.forEach((kind, ki) => {
    const indirect = Array.from({ length: L }, (_, l) => Array.from({ length: seq }, (_, p) => {
      const at = ((ki * L + l) * seq + p) * samples;
      return mean(probs.slice(at, at + samples)) - corrupt;
    }));
    effects[kind] = { hook: TRACE_HOOKS[kind](0).replace('blocks.0.', 'blocks.{l}.'), indirect, normalised: indirect.map((r) => r.map((x) => x / denom)) };
  });
  return {
    method: 'causal-tracing', tokens, answer, subjectPositions: subject, clean, corrupt, effects,
    settings: { noise: opts.noiseStd !== undefined ? null : opts.noise ?? 3, noiseStd, samples, seed, kinds, window, batchSize },
  };
}

function mean(xs: number[]): number {
  return xs.reduce((a, b) => a + b, 0) / xs.length;
}

/** The model with noise added at hook_embed and where(mask, clean, act) at each traced hook; outputs p(answer) at the last position. */
function traceGraph(model: HookedTransformer, hooks: string[]): Graph {
  const g = new Graph();
  const traced = new Set(hooks);
  const D = model.cfg.dModel;
  let final: Value | undefined;
  const hook = (name: string, v: Value): Value => {
    if (name === 'hook_embed') return g.add(v, g.input('trace.noise', 'float32', [B, v.shape[1], D]));
    if (name === 'ln_final.hook_normalized') final = v;
    if (!traced.has(name)) return v;
    const shape = model.hookShapes.get(name)!;
    const clean = g.input(`trace.clean.${name}`, 'float32', shape.map((d) => (d === B ? 1 : d)));
    const mask = g.input(`trace.mask.${name}`, 'bool', [B, shape[1], 1]);
    return g.where(mask, clean, v);
  };
  const m = buildForward(g, model.cfg, modelInputs(g), hook);
  const last = g.input('trace.pos', 'int64', [1]);
  const atLast = g.reshape(g.transpose(g.gather(g.transpose(final!, [1, 0, 2]), last), [1, 0, 2]), [B, D]);
  const probs = g.softmax(m.unembed(atLast), -1);
  const picked = g.transpose(g.gather(g.transpose(probs, [1, 0]), g.input('trace.answer', 'int64', [1])), [1, 0]);
  g.output('trace.prob', g.reshape(picked, [B]));
  return g;
}
