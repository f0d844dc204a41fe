/**
 * Gradient methods, all with respect to the token embeddings (hook_embed; position embeddings are
 * not attributed). Each gives a per-dimension attribution a[pos, dim] that is reduced to a token
 * score by `aggregate`:
 *
 *   saliency       a = ∂f/∂x.            Token score: L2 norm of the gradient ('l2', default) or
 *                                        Σ|∂f/∂x| ('sum', an L1 norm; saliency is unsigned).
 *   input-x-grad   a = x ⊙ ∂f/∂x.        'sum' (default; signed, the first-order Taylor
 *                                        contribution of removing the token) or 'l2' (unsigned).
 *   ig             a = (x − x') ⊙ ∫₀¹ ∂f/∂x(x' + α(x − x')) dα  (Sundararajan et al. 2017),
 *                  the integral by an n-point rule: 'gausslegendre' (default, as Captum) or Riemann
 *                  'riemann_trapezoid' | 'riemann_left' | 'riemann_right' | 'riemann_middle'.
 *                  'sum' (default) keeps completeness: Σ_pos score = f(x) − f(x') up to the
 *                  quadrature error, reported per row as the convergence delta
 *                  Σ a − (f(x) − f(x')). Baseline x': 'zero' (default), the embedding of a token
 *                  id at every prompt position ({ token }), or explicit [prompt_len · d_model] values.
 *                  Only prompt positions are interpolated; a teacher-forced continuation keeps its
 *                  real embeddings. The n_steps × rows interpolated inputs are run `batchSize` at a
 *                  time (default: 16, fewer for prompts over 64 tokens, about 1024 tokens a run),
 *                  each example's embeddings fed by a replace intervention at hook_embed.
 *
 * Layer methods (Captum's LayerIntegratedGradients / LayerGradientXActivation) do the same at any
 * hook point with a position axis (every hook but attn_scores / pattern): a is the hook's
 * activation at each prompt position, summed ('sum', default) or L2-normed ('l2') over its other
 * axes (d_model, or head × d_head) into a token score.
 *   layer-grad-x-act  a ⊙ ∂f/∂a.
 *   layer-ig          (a − a') ⊙ ∫₀¹ ∂f/∂a(a' + α(a − a')) dα, the rest of the model run from the
 *                     interpolated activation; complete: Σ = f(a) − f(a'), the delta reported.
 *                     Baseline a': 'zero' (default), { token } (the hook's activation when every
 *                     prompt token is that token, as Captum's TextTokenInput baseline), or values.
 */
import { LanternError } from '../../errors.js';
import type { HookedTransformer } from '../../models/hooked.js';
import { checkBatchSize, defaultBatchSize, embeddingOf, evaluate, EMBED_HOOK, Example, hookActivation, tokenEmbeddings } from './common.js';
import type { ResolvedTarget } from './targets.js';

/** How a gradient's d_model vector becomes one score per token: summed (signed) or its L2 norm. */
export type Aggregation = 'sum' | 'l2';
/** One of {@link INTEGRATION_RULES}. */
export type IntegrationRule = 'gausslegendre' | 'riemann_trapezoid' | 'riemann_left' | 'riemann_right' | 'riemann_middle';
/** The quadrature rules integrated gradients can use (as Captum names them). */
export const INTEGRATION_RULES: readonly IntegrationRule[] = ['gausslegendre', 'riemann_trapezoid', 'riemann_left', 'riemann_right', 'riemann_middle'];

/** What integrated gradients starts from: zero embeddings, a token's embedding repeated, or an explicit embedding. */
export type Baseline = 'zero' | { token: number } | number[] | Float32Array;

/** Settings shared by the gradient methods. */
export interface GradientSettings {
  aggregate?: Aggregation;
  batchSize?: number;
}

/** Integrated gradients' settings: steps, quadrature rule, baseline. */
export interface IgSettings extends GradientSettings {
  steps?: number;
  rule?: IntegrationRule;
  baseline?: Baseline;
}

/** Which hook point a layer attribution method attributes to. */
export interface LayerSettings {
  /** Hook point whose activation is attributed (layer methods). Default hook_embed. */
  hook?: string;
}

/** What every attribution method returns: one score per feature for each target row, and the settings used. */
export interface MethodOutput {
  scores: number[][];
  /** Settings with defaults filled in (what the result records). */
  settings: Record<string, unknown>;
  extra?: Record<string, unknown>;
}

/** Nodes and weights of an n-point rule on [0, 1]. */
export function quadrature(n: number, rule: IntegrationRule): { alphas: number[]; weights: number[] } {
  if (!Number.isInteger(n) || n < 1) throw new LanternError(`steps must be a positive integer, got ${n}`);
  switch (rule) {
    case 'riemann_left': return { alphas: range(n).map((k) => k / n), weights: range(n).map(() => 1 / n) };
    case 'riemann_right': return { alphas: range(n).map((k) => (k + 1) / n), weights: range(n).map(() => 1 / n) };
    case 'riemann_middle': return { alphas: range(n).map((k) => (k + 0.5) / n), weights: range(n).map(() => 1 / n) };
    case 'riemann_trapezoid': {
      if (n < 2) throw new LanternError('the trapezoid rule needs at least 2 steps');
      return { alphas: range(n).map((k) => k / (n - 1)), weights: range(n).map((k) => (k === 0 || k === n - 1 ? 0.5 : 1) / (n - 1)) };
    }
    case 'gausslegendre': return gaussLegendre(n);
    default: throw new LanternError(`unknown integration rule '${rule}'; use one of ${INTEGRATION_RULES.join(', ')}`);
  }
}

const range = (n: number) => Array.from({ length: n }, (_, i) => i);

/** Gauss–Legendre nodes (roots of P_n, by Newton's method) and weights, mapped from [−1, 1] to [0, 1]. */
function gaussLegendre(n: number): { alphas: number[]; weights: number[] } {
  const alphas: number[] = [];
  const weights: number[] = [];
  for (let i = 0; i < n; i++) {
    let x = Math.cos((Math.PI * (i + 0.75)) / (n + 0.5));
    let dp = 1;
    for (let it = 0; it < 100; it++) {
      let p0 = 1;
      let p1 = x;
      for (let k = 2; k <= n; k++) [p0, p1] = [p1, ((2 * k - 1) * x * p1 - (k - 1) * p0) / k];
      if (n === 1) { p1 = x; p0 = 1; }
      dp = (n * (x * p1 - p0)) / (x * x - 1);
      const dx = p1 / dp;
      x -= dx;
      if (Math.abs(dx) < 1e-15) break;
    }
    alphas.push((x + 1) / 2);
    weights.push(1 / ((1 - x * x) * dp * dp)); // 2/((1-x²)P'²) on [−1,1], halved for [0,1]
  }
  return { alphas: alphas.reverse(), weights: weights.reverse() };
}

/**
 * The integration path x' + α (x − x') over the first `P` values (the prompt); later values (a
 * continuation's positions) keep their real values at every α.
 */
function straightLine(x: Float32Array, baseline: Float32Array, P: number): { point: (alpha: number) => Float32Array; diff: Float64Array } {
  const diff = new Float64Array(P);
  for (let k = 0; k < P; k++) diff[k] = x[k] - baseline[k];
  const point = (alpha: number) => {
    const e = Float32Array.from(x);
    for (let k = 0; k < P; k++) e[k] = baseline[k] + alpha * diff[k];
    return e;
  };
  return { point, diff };
}

/**
 * Integrated gradients of every target row along the straight line from the baseline `xb` to the
 * activation `x` at `hook` ([seq * d]; the baseline covers the prompt), by the quadrature rule:
 * per-prompt-token scores and the convergence delta Σ attributions − (f(x) − f(x')) per row.
 * Positions in `t.fixed` keep their real values along the path.
 */
async function integrate(
  model: HookedTransformer, t: ResolvedTarget, hook: string, x: Float32Array, xb: Float32Array, d: number,
  o: { steps: number; rule: IntegrationRule; batchSize: number; agg: Aggregation },
): Promise<{ scores: number[][]; deltas: number[] }> {
  const { alphas, weights } = quadrature(o.steps, o.rule);
  const P = t.promptLength * d;
  for (const p of t.fixed ?? []) xb.set(x.subarray(p * d, (p + 1) * d), p * d);
  const { point, diff } = straightLine(x, xb, P);
  // Example order: row-major over (row, step), so results do not depend on the batch size.
  const examples: Example[] = [];
  const paths = alphas.map(point);
  t.rows.forEach((_, row) => paths.forEach((embed) => examples.push({ row, embed })));
  const { grads } = await evaluate(model, t.input, t.rows, examples, { grad: true, batchSize: o.batchSize, hook });
  // f(x) and f(x') through the same intervention path.
  const ends: Example[] = t.rows.flatMap((_, row) => [{ row, embed: x }, { row, embed: point(0) }]);
  const { values: endValues } = await evaluate(model, t.input, t.rows, ends, { grad: false, batchSize: o.batchSize, hook });
  const scores: number[][] = [];
  const deltas: number[] = [];
  t.rows.forEach((_, row) => {
    const acc = new Float64Array(t.input.length * d);
    for (let st = 0; st < o.steps; st++) {
      const g = grads[row * o.steps + st];
      for (let k = 0; k < P; k++) acc[k] += weights[st] * g[k];
    }
    let total = 0;
    for (let k = 0; k < P; k++) { acc[k] *= diff[k]; total += acc[k]; }
    scores.push(aggregate(acc, t.promptLength, d, o.agg));
    deltas.push(total - (endValues[2 * row] - endValues[2 * row + 1]));
  });
  return { scores, deltas };
}

/** Reduces a [seq, d] attribution to prompt-token scores. */
export function aggregate(a: Float32Array | Float64Array, promptLength: number, d: number, how: Aggregation): number[] {
  return range(promptLength).map((p) => {
    let s = 0;
    for (let k = p * d; k < (p + 1) * d; k++) s += how === 'sum' ? a[k] : a[k] * a[k];
    return how === 'sum' ? s : Math.sqrt(s);
  });
}

function checkAggregation(a: string | undefined, fallback: Aggregation): Aggregation {
  const v = a ?? fallback;
  if (v !== 'sum' && v !== 'l2') throw new LanternError(`unknown aggregation '${a}'; use 'sum' or 'l2'`);
  return v;
}

/** The gradient of the target wrt each input embedding (its norm or sum per token). */
export async function saliency(model: HookedTransformer, t: ResolvedTarget, s: GradientSettings = {}): Promise<MethodOutput> {
  const agg = checkAggregation(s.aggregate, 'l2');
  const batchSize = checkBatchSize(s.batchSize, defaultBatchSize(t.input.length));
  const { grads } = await evaluate(model, t.input, t.rows, t.rows.map((_, row) => ({ row })), { grad: true, batchSize });
  const d = model.cfg.dModel;
  const scores = grads.map((g) => aggregate(agg === 'sum' ? g.map(Math.abs) : g, t.promptLength, d, agg));
  return { scores, settings: { aggregate: agg, batchSize } };
}

/** Gradient times input embedding per token. */
export async function inputXGradient(model: HookedTransformer, t: ResolvedTarget, s: GradientSettings = {}): Promise<MethodOutput> {
  const agg = checkAggregation(s.aggregate, 'sum');
  const batchSize = checkBatchSize(s.batchSize, defaultBatchSize(t.input.length));
  const x = await tokenEmbeddings(model, t.input);
  const { grads } = await evaluate(model, t.input, t.rows, t.rows.map((_, row) => ({ row })), { grad: true, batchSize });
  const d = model.cfg.dModel;
  const scores = grads.map((g) => aggregate(g.map((v, k) => v * x[k]), t.promptLength, d, agg));
  return { scores, settings: { aggregate: agg, batchSize } };
}

async function baselineEmbeddings(model: HookedTransformer, b: Baseline, promptLength: number): Promise<Float32Array> {
  const d = model.cfg.dModel;
  const n = promptLength * d;
  if (b === 'zero') return new Float32Array(n);
  if (Array.isArray(b) || b instanceof Float32Array) {
    if (b.length !== n) throw new LanternError(`a baseline needs prompt length × d_model = ${promptLength} × ${d} = ${n} values, got ${b.length}`);
    return Float32Array.from(b);
  }
  if (typeof b === 'object' && b !== null && 'token' in b) {
    if (!Number.isInteger(b.token) || b.token < 0 || b.token >= model.cfg.dVocab) throw new LanternError(`baseline token ${b.token} is outside the vocabulary`);
    const e = await embeddingOf(model, b.token);
    const out = new Float32Array(n);
    for (let p = 0; p < promptLength; p++) out.set(e, p * d);
    return out;
  }
  throw new LanternError(`unknown baseline ${JSON.stringify(b)}; use 'zero', { token: id } or explicit values`);
}

function baselineLabel(b: Baseline): unknown {
  return b === 'zero' ? 'zero' : typeof b === 'object' && 'token' in b ? { token: b.token } : 'custom';
}

/** Integrated gradients (Sundararajan et al. 2017) of the target wrt the input embeddings, batched over the path's steps. */
export async function integratedGradients(model: HookedTransformer, t: ResolvedTarget, s: IgSettings = {}): Promise<MethodOutput> {
  const agg = checkAggregation(s.aggregate, 'sum');
  const steps = s.steps ?? 50;
  const rule = s.rule ?? 'gausslegendre';
  const batchSize = checkBatchSize(s.batchSize, defaultBatchSize(t.input.length));
  const baseline = s.baseline ?? 'zero';
  const d = model.cfg.dModel;
  const x = await tokenEmbeddings(model, t.input);
  const xb = await baselineEmbeddings(model, baseline, t.promptLength);
  const { scores, deltas } = await integrate(model, t, EMBED_HOOK, x, xb, d, { steps, rule, batchSize, agg });
  return {
    scores,
    settings: { steps, rule, baseline: baselineLabel(baseline), aggregate: agg, batchSize },
    extra: { convergenceDelta: deltas },
  };
}

/** The hook of a layer method, checked: it must have a position axis (axis 1). */
function layerHook(model: HookedTransformer, hook: string | undefined): string {
  const h = hook ?? EMBED_HOOK;
  if (typeof h !== 'string') throw new LanternError(`hook must be a hook name, got ${JSON.stringify(h)}`);
  model.checkHook(h);
  if (/attn\.hook_(attn_scores|pattern)$/.test(h)) throw new LanternError(`layer attribution needs a hook with a position axis; ${h} is [batch, head, query, key]`);
  return h;
}

/** Gradient times activation at any hook point. */
export async function layerGradientXActivation(model: HookedTransformer, t: ResolvedTarget, s: GradientSettings & LayerSettings = {}): Promise<MethodOutput> {
  const hook = layerHook(model, s.hook);
  const agg = checkAggregation(s.aggregate, 'sum');
  const batchSize = checkBatchSize(s.batchSize, defaultBatchSize(t.input.length));
  const { value: a } = await hookActivation(model, t.input, hook);
  const d = a.length / t.input.length;
  const { grads } = await evaluate(model, t.input, t.rows, t.rows.map((_, row) => ({ row })), { grad: true, batchSize, hook });
  const scores = grads.map((g) => aggregate(g.map((v, k) => v * a[k]), t.promptLength, d, agg));
  return { scores, settings: { hook, aggregate: agg, batchSize } };
}

/** The hook activation a' of a layer-IG baseline, at the prompt's positions ([promptLength * d]). */
async function layerBaseline(model: HookedTransformer, t: ResolvedTarget, hook: string, b: Baseline, d: number): Promise<Float32Array> {
  const n = t.promptLength * d;
  if (b === 'zero') return new Float32Array(n);
  if (Array.isArray(b) || b instanceof Float32Array) {
    if (b.length !== n) throw new LanternError(`a baseline at ${hook} needs prompt length × ${d} = ${n} values, got ${b.length}`);
    return Float32Array.from(b);
  }
  if (typeof b === 'object' && b !== null && 'token' in b) {
    if (!Number.isInteger(b.token) || b.token < 0 || b.token >= model.cfg.dVocab) throw new LanternError(`baseline token ${b.token} is outside the vocabulary`);
    const tokens = t.input.map((tok, i) => (i < t.promptLength ? b.token : tok));
    return (await hookActivation(model, tokens, hook)).value.slice(0, n);
  }
  throw new LanternError(`unknown baseline ${JSON.stringify(b)}; use 'zero', { token: id } or explicit values`);
}

/** Integrated gradients of the target wrt the activation at any hook point. */
export async function layerIntegratedGradients(model: HookedTransformer, t: ResolvedTarget, s: IgSettings & LayerSettings = {}): Promise<MethodOutput> {
  const hook = layerHook(model, s.hook);
  const agg = checkAggregation(s.aggregate, 'sum');
  const steps = s.steps ?? 50;
  const rule = s.rule ?? 'gausslegendre';
  const batchSize = checkBatchSize(s.batchSize, defaultBatchSize(t.input.length));
  const baseline = s.baseline ?? 'zero';
  const { value: a } = await hookActivation(model, t.input, hook);
  const d = a.length / t.input.length;
  const ab = await layerBaseline(model, t, hook, baseline, d);
  const { scores, deltas } = await integrate(model, t, hook, a, ab, d, { steps, rule, batchSize, agg });
  return {
    scores,
    settings: { hook, steps, rule, baseline: baselineLabel(baseline), aggregate: agg, batchSize },
    extra: { convergenceDelta: deltas },
  };
}
