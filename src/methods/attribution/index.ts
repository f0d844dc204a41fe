/**
 * Input attribution: which prompt tokens a model's prediction depends on, by one interface for
 * every method.
 *
 *   const r = await attribute(model, { text: 'The Eiffel Tower is in', target: ' Paris', method: 'ig' });
 *   r.scores[0];   // one score per prompt token
 *
 * Methods: 'saliency', 'input-x-grad', 'ig' (gradient.ts), 'attention', 'rollout' (attention.ts),
 * 'occlusion' (perturbation.ts), 'lime', 'shap' (KernelSHAP), 'shapley' (Shapley value sampling)
 * (sampling.ts; seeded by `seed`). Targets: targets.ts. Faithfulness (`evaluate: true`):
 * faithfulness.ts. Output: render.ts (terminal, HTML), result.ts (JSON, word merging).
 */
import { LanternError, nearest } from '../../errors.js';
import type { HookedTransformer } from '../../models/hooked.js';
import { attentionRollout, rawAttention, AttentionSettings } from './attention.js';
import { evaluateFaithfulness } from './faithfulness.js';
import { inputXGradient, integratedGradients, saliency, GradientSettings, IgSettings, MethodOutput } from './gradient.js';
import { faithfulnessVia } from './agnostic.js';
import { checkBatchSize } from './common.js';
import { checkMasking, occlusion, spanScorer, OcclusionSettings, Masking } from './perturbation.js';
import { AttributionResult, weightsHash } from './result.js';
import { kernelShap, lime, shapleySampling, SamplingSettings } from './sampling.js';
import { resolveTarget, ResolvedTarget, ScoreKind } from './targets.js';

export const METHODS = ['ig', 'saliency', 'input-x-grad', 'attention', 'rollout', 'occlusion', 'lime', 'shap', 'shapley'] as const;
export type Method = (typeof METHODS)[number];

export type AttributionSettings = IgSettings & GradientSettings & AttentionSettings & OcclusionSettings & SamplingSettings;

export interface AttributeOptions {
  text?: string;
  tokens?: number[];
  /** Next token to explain (default: the model's top prediction). */
  target?: number | string;
  foil?: number | string;
  continuation?: number[] | string;
  /** How the target token is scored: 'logprob' (default), 'logit' or 'prob'. */
  kind?: ScoreKind;
  method: Method | string;
  settings?: AttributionSettings;
  /** Seeds the sampling methods (lime, shap, shapley); recorded with the result. Default 0. */
  seed?: number;
  /** Also compute comprehensiveness, sufficiency, AOPC and Kendall τ vs leave-one-out. */
  evaluate?: boolean;
  /** Masking for `evaluate` (default: settings.mask, else 'zero'). */
  evalMask?: Masking;
}

export function checkMethod(m: string): Method {
  if ((METHODS as readonly string[]).includes(m)) return m as Method;
  const near = nearest(m, METHODS, 1);
  throw new LanternError(`unknown attribution method '${m}'${near.length ? ` (did you mean '${near[0]}'?)` : ''}; methods: ${METHODS.join(', ')}`);
}

async function run(model: HookedTransformer, method: Method, t: ResolvedTarget, s: AttributionSettings, seed: number): Promise<MethodOutput> {
  switch (method) {
    case 'ig': return integratedGradients(model, t, s);
    case 'saliency': return saliency(model, t, s);
    case 'input-x-grad': return inputXGradient(model, t, s);
    case 'attention': return rawAttention(model, t, s);
    case 'rollout': return attentionRollout(model, t, s);
    case 'occlusion': return occlusion(model, t, s);
    case 'lime': return lime(model, t, s, seed);
    case 'shap': return kernelShap(model, t, s, seed);
    case 'shapley': return shapleySampling(model, t, s, seed);
  }
}

export async function attribute(model: HookedTransformer, opts: AttributeOptions): Promise<AttributionResult> {
  const method = checkMethod(opts.method);
  if ((opts.text === undefined) === (opts.tokens === undefined)) throw new LanternError('give either text or tokens to attribute');
  const prompt = opts.text !== undefined ? model.toTokens(opts.text) : opts.tokens!;
  const seed = opts.seed ?? 0;
  if (!Number.isInteger(seed)) throw new LanternError(`seed must be an integer, got ${seed}`);
  const t = await resolveTarget(model, prompt, { target: opts.target, foil: opts.foil, continuation: opts.continuation, kind: opts.kind });
  const settings = opts.settings ?? {};
  const out = await run(model, method, t, settings, seed);
  const spans = out.extra?.spans as [number, number][] | undefined;
  const strs = model.tokenizer ? model.tokenStrings(prompt) : prompt.map((id) => `#${id}`);
  const result: AttributionResult = {
    model: { source: model.source, weightsSha256: await weightsHash(model), config: { ...model.cfg } },
    method,
    settings: out.settings,
    seed,
    ...(opts.text !== undefined ? { text: opts.text } : {}),
    tokens: prompt,
    tokenStrings: spans ? spans.map(([a, b]) => strs.slice(a, b).join('')) : strs,
    target: t.info,
    scores: out.scores,
    ...(spans ? { spans, granularity: settings.granularity } : {}),
  };
  const delta = out.extra?.convergenceDelta as number[] | undefined;
  if (delta) result.convergenceDelta = delta;
  const r2 = out.extra?.surrogateR2 as number[] | undefined;
  if (r2) result.surrogateR2 = r2;
  if (opts.evaluate) {
    const mask = opts.evalMask ?? settings.mask ?? 'zero';
    // Word/sentence scores: remove whole features, as the method itself did.
    result.faithfulness = spans
      ? await faithfulnessVia(spanScorer(model, t, spans, { mask: checkMasking(model, mask), batchSize: checkBatchSize(settings.batchSize, 32) }), out.scores, mask)
      : await evaluateFaithfulness(model, t, out.scores, { mask, batchSize: settings.batchSize });
  }
  return result;
}

export { resolveTarget, rowValues, SCORE_KINDS } from './targets.js';
export type { ScoreKind, TargetRequest, TargetInfo, TargetRow, ResolvedTarget } from './targets.js';
export { saliency, inputXGradient, integratedGradients, quadrature, aggregate, INTEGRATION_RULES } from './gradient.js';
export type { Aggregation, IntegrationRule, Baseline, GradientSettings, IgSettings, MethodOutput } from './gradient.js';
export { rawAttention, attentionRollout } from './attention.js';
export type { AttentionSettings } from './attention.js';
export { occlusion, occlusionFit, maskedValues, leaveOneOutMasks, featureSpans, spanScorer } from './perturbation.js';
export { checkGranularity, expandSpans, textUnits, tokenSpans, GRANULARITIES } from './features.js';
export type { Granularity } from './features.js';
export {
  explainWithBackend, backendProblem, runPerturbation, faithfulnessVia, checkPerturbationMethod, PERTURBATION_METHODS,
} from './agnostic.js';
export type { ExplainOptions, BackendMasking, BackendProblem, BackendAttribution, PerturbationMethod, PerturbationSettings } from './agnostic.js';
export type { Masking, OcclusionSettings } from './perturbation.js';
export {
  lime, kernelShap, shapleySampling, limeFit, kernelShapFit, shapleySamplingFit, limeKernel, shapleyKernel, weightedLeastSquares, weightedR2,
  modelScorer, LIME_DEFAULTS, EDGE_WEIGHT,
} from './sampling.js';
export type { SamplingSettings, CoalitionScorer } from './sampling.js';
export { evaluateFaithfulness, faithfulnessPlan, kendallTau, rationaleSizes, ranking, AOPC_FRACTIONS } from './faithfulness.js';
export type { Faithfulness, FaithfulnessRow } from './faithfulness.js';
export { saveResult, loadResult, parseResult, resultToJSON, weightsHash, mergeWords, RESULT_FORMAT } from './result.js';
export type { AttributionResult, WordAggregation } from './result.js';
export { renderTerminal, renderHtml, scoreColor } from './render.js';
