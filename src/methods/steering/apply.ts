/**
 * Using a steering vector: as interventions on the one forward, in generation (steered and plain
 * side by side), and in coefficient sweeps that weigh the effect against the cost (KL divergence
 * of next-token distributions on neutral text). Directional ablation projects a direction out of
 * the residual stream at every layer.
 */
import { LanternError } from '../../errors.js';
import { Tensor } from '../../engine/tensor.js';
import type { HookedTransformer, Intervention } from '../../models/hooked.js';
import { generateBatch, GenerateOptions, Generation } from '../../models/generate.js';
import { unitDirection } from '../../models/orthogonalize.js';
import { datasetHash } from '../representations/data.js';
import { LinearProbe, probeScores } from '../representations/probes/fit.js';
import { checkSteeringVector, SteeringVector } from './vectors.js';

/** A coefficient must be a finite number. */
export function checkCoefficient(coef: number, what = 'coefficient'): void {
  if (typeof coef !== 'number' || !Number.isFinite(coef)) throw new LanternError(`${what} must be a finite number, got ${coef}`);
}

/**
 * The interventions that add `coef` × the vector: one row at every position (`interventions`), or
 * ActAdd's rows at their prompt positions (`promptInterventions`, which generation applies to the
 * prompt only; in a plain run they are ordinary interventions).
 */
export function steeringInterventions(model: HookedTransformer, v: SteeringVector, coef: number): { interventions: Intervention[]; promptInterventions: Intervention[] } {
  checkSteeringVector(model, v);
  checkCoefficient(coef);
  const scaled = (r: number[]) => Tensor.f32(Float32Array.from(r, (x) => coef * x), [r.length]);
  if (v.rows.length === 1 && v.start === undefined) return { interventions: [{ hook: v.hook, op: 'add', value: scaled(v.rows[0]) }], promptInterventions: [] };
  const start = v.start ?? 0;
  return { interventions: [], promptInterventions: v.rows.map((r, i) => ({ hook: v.hook, op: 'add' as const, value: scaled(r), positions: [start + i] })) };
}

/** ActAdd's rows reach past a prompt's end: say so rather than let a position fail deep inside. */
function checkPromptLength(model: HookedTransformer, v: SteeringVector, prompts: readonly (string | number[])[]): void {
  if (v.rows.length === 1 && v.start === undefined) return;
  const end = (v.start ?? 0) + v.rows.length;
  prompts.forEach((p, b) => {
    const n = typeof p === 'string' ? model.toTokens(p).length : p.length;
    if (n < end) throw new LanternError(`the ActAdd vector is added at prompt positions ${v.start ?? 0}..${end - 1}, but prompt ${b} has ${n} tokens; use a longer prompt or a shorter prompt pair`);
  });
}

/** All interventions of a steering vector as one list for a plain run (positions included). */
function runInterventions(model: HookedTransformer, v: SteeringVector, coef: number): Intervention[] {
  const { interventions, promptInterventions } = steeringInterventions(model, v, coef);
  return [...interventions, ...promptInterventions];
}

/** Options for {@link steer}: the vector, its coefficient, and how to generate. */
export interface SteerOptions extends Omit<GenerateOptions, 'interventions' | 'promptInterventions'> {
  vector: SteeringVector;
  coef: number;
  /** Neutral texts on which to measure the cost (KL divergence); none: not measured. */
  neutral?: string[];
}

/** Plain and steered continuations of each prompt (same seed), and the cost on neutral text. */
export interface SteerResult {
  model: string;
  method: 'steer';
  hook: string;
  vectorMethod: string;
  datasetHash: string;
  seed: number;
  settings: Record<string, unknown>;
  rows: { prompt: string; plain: string; steered: string }[];
  /** Mean KL(plain ‖ steered) of next-token distributions over the neutral texts' positions, in nats. */
  kl?: number;
}

/** Generates every prompt with and without the steering vector, side by side. */
export async function steer(model: HookedTransformer, prompts: string[], opts: SteerOptions): Promise<SteerResult> {
  const { vector, coef, neutral, ...gen } = opts;
  if (!Array.isArray(prompts) || prompts.length === 0) throw new LanternError('steer: give at least one prompt');
  const iv = steeringInterventions(model, vector, coef);
  checkPromptLength(model, vector, prompts);
  const plain: Generation[] = await generateBatch(model, prompts, gen);
  const steered: Generation[] = await generateBatch(model, prompts, { ...gen, ...iv });
  const kl = neutral?.length ? await klCost(model, neutral, vector, coef) : undefined;
  return {
    model: model.source, method: 'steer', hook: vector.hook, vectorMethod: vector.method, datasetHash: vector.datasetHash, seed: gen.seed ?? 0,
    settings: { coef, maxNewTokens: gen.maxNewTokens ?? 40, temperature: gen.temperature ?? 0.8, vector: vector.settings, ...(neutral ? { neutral } : {}) },
    rows: prompts.map((prompt, i) => ({ prompt, plain: plain[i].text, steered: steered[i].text })),
    ...(kl !== undefined ? { kl } : {}),
  };
}

/** log-softmax of each row of [rows, V] logits, in float64. */
function logSoftmaxRows(logits: Float32Array, V: number): Float64Array {
  const out = new Float64Array(logits.length);
  for (let r = 0; r < logits.length / V; r++) {
    let max = -Infinity;
    for (let i = 0; i < V; i++) max = Math.max(max, logits[r * V + i]);
    let sum = 0;
    for (let i = 0; i < V; i++) sum += Math.exp(logits[r * V + i] - max);
    const logZ = max + Math.log(sum);
    for (let i = 0; i < V; i++) out[r * V + i] = logits[r * V + i] - logZ;
  }
  return out;
}

/** Mean over real positions of KL(p ‖ q) between two runs' next-token distributions ([batch, seq, V] logits). */
export function meanKl(p: Tensor, q: Tensor, lengths: number[]): number {
  const [B, T, V] = p.shape;
  const lp = logSoftmaxRows(p.f32, V);
  const lq = logSoftmaxRows(q.f32, V);
  let total = 0;
  let n = 0;
  for (let b = 0; b < B; b++) {
    for (let t = 0; t < lengths[b]; t++) {
      const o = (b * T + t) * V;
      let kl = 0;
      for (let i = 0; i < V; i++) kl += Math.exp(lp[o + i]) * (lp[o + i] - lq[o + i]);
      total += kl;
      n++;
    }
  }
  return total / n;
}

/** The cost of steering: mean KL(plain ‖ steered) of next-token distributions over every position of neutral texts, in nats. */
export async function klCost(model: HookedTransformer, neutral: string[], vector: SteeringVector, coef: number): Promise<number> {
  if (!Array.isArray(neutral) || neutral.length === 0) throw new LanternError('give at least one neutral text to measure the cost on');
  const interventions = runInterventions(model, vector, coef);
  checkPromptLength(model, vector, neutral);
  const plain = await model.runWithHooks(neutral, {});
  const steered = await model.runWithHooks(neutral, { interventions });
  return meanKl(plain.logits, steered.logits, plain.batch.lengths);
}

/** What a sweep measures as the effect: a target-vs-foil logit difference at the prompts' last position, or a probe's mean score. */
export type SweepEffect =
  | { kind: 'logit-diff'; prompts: string[]; target: string; foil: string }
  | { kind: 'probe'; prompts: string[]; probe: LinearProbe; hook: string };

/** A coefficient sweep's result, ready to save as JSON. */
export interface SweepResult {
  model: string;
  method: 'steering-sweep';
  hook: string;
  vectorMethod: string;
  datasetHash: string;
  seed: number;
  settings: { effect: string; coefs: number[]; neutral: string[] };
  points: { coef: number; effect: number; kl: number }[];
}

/** Runs the model on `prompts` with `interventions` and measures the effect. */
async function measureEffect(model: HookedTransformer, effect: SweepEffect, interventions: Intervention[]): Promise<number> {
  const { prompts } = effect;
  if (effect.kind === 'logit-diff') {
    const [t] = model.encode(effect.target);
    const [f] = model.encode(effect.foil);
    if (model.encode(effect.target).length !== 1 || model.encode(effect.foil).length !== 1) throw new LanternError(`target ${JSON.stringify(effect.target)} and foil ${JSON.stringify(effect.foil)} must each be one token`);
    const res = await model.runWithHooks(prompts, { interventions, logitPositions: prompts.map((p) => [model.toTokens(p).length - 1]) });
    const V = model.cfg.dVocab;
    let s = 0;
    for (let b = 0; b < prompts.length; b++) s += res.logits.f32[b * V + t] - res.logits.f32[b * V + f];
    return s / prompts.length;
  }
  const res = await model.runWithHooks(prompts, { interventions, cache: [effect.hook] });
  const act = res.cache.get(effect.hook).f32;
  const D = act.length / (prompts.length * res.batch.seq);
  const rows = new Float32Array(prompts.length * D);
  res.batch.lengths.forEach((n, b) => rows.set(act.subarray((b * res.batch.seq + n - 1) * D, (b * res.batch.seq + n) * D), b * D));
  const scores = probeScores(effect.probe, { data: rows, rows: prompts.length, cols: D });
  return scores.reduce((a, x) => a + x, 0) / scores.length;
}

/**
 * For each coefficient: the effect (logit difference or probe score, mean over prompts) and the
 * cost (mean KL on neutral text), so a user sees how far a vector can be pushed.
 */
export async function coefficientSweep(
  model: HookedTransformer, vector: SteeringVector, opts: { coefs: number[]; effect: SweepEffect; neutral: string[]; progress?: (done: number, total: number) => void },
): Promise<SweepResult> {
  if (!Array.isArray(opts.coefs) || opts.coefs.length === 0) throw new LanternError('give at least one coefficient');
  opts.coefs.forEach((c, i) => checkCoefficient(c, `coefficient ${i}`));
  if (!opts.effect.prompts?.length) throw new LanternError('give at least one prompt to measure the effect on');
  checkPromptLength(model, vector, opts.effect.prompts);
  const points: SweepResult['points'] = [];
  for (const coef of opts.coefs) {
    const effect = await measureEffect(model, opts.effect, runInterventions(model, vector, coef));
    points.push({ coef, effect, kl: await klCost(model, opts.neutral, vector, coef) });
    opts.progress?.(points.length, opts.coefs.length);
  }
  const effectLabel = opts.effect.kind === 'logit-diff' ? `logit(${opts.effect.target}) - logit(${opts.effect.foil})` : `probe score at ${opts.effect.hook}`;
  return {
    model: model.source, method: 'steering-sweep', hook: vector.hook, vectorMethod: vector.method,
    datasetHash: vector.datasetHash || datasetHash(opts.effect.prompts.map((text) => ({ text, label: 0 }))), seed: 0,
    settings: { effect: effectLabel, coefs: opts.coefs, neutral: opts.neutral }, points,
  };
}

/** The residual hooks directional ablation acts on: every block's input, middle (where the block has one) and output. */
export function residualStreamHooks(model: HookedTransformer): string[] {
  const names = new Set(model.hookNames);
  const hooks: string[] = [];
  for (let l = 0; l < model.cfg.nLayers; l++) {
    for (const h of [`blocks.${l}.hook_resid_pre`, `blocks.${l}.hook_resid_mid`, `blocks.${l}.hook_resid_post`]) if (names.has(h)) hooks.push(h);
  }
  return hooks;
}

/**
 * Directional ablation (Arditi et al., the refusal direction): `direction` projected out of the
 * residual stream at every layer and position, x ← x − (x·û) û.
 */
export function directionalAblation(model: HookedTransformer, direction: ArrayLike<number>): Intervention[] {
  const u = unitDirection(direction, model.cfg.dModel);
  const value = Tensor.f32(Float32Array.from(u), [u.length]);
  return residualStreamHooks(model).map((hook) => ({ hook, op: 'project-out' as const, value }));
}
