/**
 * Input attribution: which prompt tokens a model's prediction depends on, by one interface for
 * every method.
 *
 *   const r = await attribute(model, { text: 'The Eiffel Tower is in', target: ' Paris', method: 'ig' });
 *   r.scores[0];   // one score per prompt token
 *
 * Methods: 'saliency', 'input-x-grad', 'ig' (gradient.ts), 'attention', 'rollout' (attention.ts),
 * 'occlusion' (perturbation.ts). Targets: targets.ts. Faithfulness (`evaluate: true`):
 * faithfulness.ts. Output: render.ts (terminal, HTML), result.ts (JSON, word merging).
 */
import { LanternError, nearest } from '../../errors.js';
import type { HookedTransformer } from '../../models/hooked.js';
import { attentionRollout, rawAttention, AttentionSettings } from './attention.js';
import { evaluateFaithfulness } from './faithfulness.js';
import { inputXGradient, integratedGradients, saliency, GradientSettings, IgSettings, MethodOutput } from './gradient.js';
import { occlusion, OcclusionSettings, Masking } from './perturbation.js';
import { AttributionResult, weightsHash } from './result.js';
import { resolveTarget, ResolvedTarget, ScoreKind } from './targets.js';

export const METHODS = ['ig', 'saliency', 'input-x-grad', 'attention', 'rollout', 'occlusion'] as const;
export type Method = (typeof METHODS)[number];

export type AttributionSettings = IgSettings & GradientSettings & AttentionSettings & OcclusionSettings;

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
  /** Recorded with the result (every method here is deterministic; sampling methods will use it). */
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

async function run(model: HookedTransformer, method: Method, t: ResolvedTarget, s: AttributionSettings): Promise<MethodOutput> {
  switch (method) {
    case 'ig': return integratedGradients(model, t, s);
    case 'saliency': return saliency(model, t, s);
    case 'input-x-grad': return inputXGradient(model, t, s);
    case 'attention': return rawAttention(model, t, s);
    case 'rollout': return attentionRollout(model, t, s);
    case 'occlusion': return occlusion(model, t, s);
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
  const out = await run(model, method, t, settings);
  const result: AttributionResult = {
    model: { source: model.source, weightsSha256: await weightsHash(model), config: { ...model.cfg } },
    method,
    settings: out.settings,
    seed,
    ...(opts.text !== undefined ? { text: opts.text } : {}),
    tokens: prompt,
    tokenStrings: model.tokenizer ? model.tokenStrings(prompt) : prompt.map((id) => `#${id}`),
    target: t.info,
    scores: out.scores,
  };
  const delta = out.extra?.convergenceDelta as number[] | undefined;
  if (delta) result.convergenceDelta = delta;
  if (opts.evaluate) {
    result.faithfulness = await evaluateFaithfulness(model, t, out.scores, { mask: opts.evalMask ?? settings.mask ?? 'zero', batchSize: settings.batchSize });
  }
  return result;
}

export { resolveTarget, rowValues, SCORE_KINDS } from './targets.js';
export type { ScoreKind, TargetRequest, TargetInfo, TargetRow, ResolvedTarget } from './targets.js';
export { saliency, inputXGradient, integratedGradients, quadrature, aggregate, INTEGRATION_RULES } from './gradient.js';
export type { Aggregation, IntegrationRule, Baseline, GradientSettings, IgSettings, MethodOutput } from './gradient.js';
export { rawAttention, attentionRollout } from './attention.js';
export type { AttentionSettings } from './attention.js';
export { occlusion, maskedValues, leaveOneOutMasks } from './perturbation.js';
export type { Masking, OcclusionSettings } from './perturbation.js';
export { evaluateFaithfulness, faithfulnessPlan, kendallTau, rationaleSizes, ranking, AOPC_FRACTIONS } from './faithfulness.js';
export type { Faithfulness, FaithfulnessRow } from './faithfulness.js';
export { saveResult, loadResult, parseResult, resultToJSON, weightsHash, mergeWords, RESULT_FORMAT } from './result.js';
export type { AttributionResult, WordAggregation } from './result.js';
export { renderTerminal, renderHtml, scoreColor } from './render.js';
