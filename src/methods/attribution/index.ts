/**
 * Input attribution: which prompt tokens a model's prediction depends on, by one interface for
 * every method.
 *
 *   const r = await attribute(model, { text: 'The Eiffel Tower is in', target: ' Paris', method: 'ig' });
 *   r.scores[0];   // one score per prompt token
 *
 * Methods: 'saliency', 'input-x-grad', 'ig', 'layer-ig', 'layer-grad-x-act' (gradient.ts), 'attention', 'rollout' (attention.ts),
 * 'value-zeroing' (value-zeroing.ts),
 * 'occlusion' (perturbation.ts), 'lime', 'shap' (KernelSHAP), 'shapley' (Shapley value sampling)
 * (sampling.ts; seeded by `seed`). Targets: targets.ts. Faithfulness (`evaluate: true`):
 * faithfulness.ts. Output: render.ts (terminal, HTML), result.ts (JSON, word merging).
 *
 * @module
 */
import { LanternError, nearest } from '../../errors.js';
import { assertFinite } from '../../finite.js';
import type { HookedTransformer } from '../../models/hooked.js';
import { attentionRollout, rawAttention, AttentionSettings } from './attention.js';
import { evaluateFaithfulness, AopcBins } from './faithfulness.js';
import {
  inputXGradient, integratedGradients, layerGradientXActivation, layerIntegratedGradients, saliency, GradientSettings, IgSettings, LayerSettings, MethodOutput,
} from './gradient.js';
import { faithfulnessVia } from './agnostic.js';
import { checkBatchSize } from './common.js';
import { checkMasking, occlusion, spanScorer, OcclusionSettings, Masking } from './perturbation.js';
import { AttributionResult, weightsHash } from './result.js';
import { chatPrompt } from '../../models/chat.js';
import type { ChatMessage, ChatOptions } from '../../models/chat.js';
import { kernelShap, lime, shapleySampling, SamplingSettings } from './sampling.js';
import { valueZeroing, ValueZeroingSettings } from './value-zeroing.js';
import { resolveTarget, ResolvedTarget, ScoreKind } from './targets.js';

/** Every attribution method {@link attribute} accepts. */
export const METHODS = ['ig', 'saliency', 'input-x-grad', 'layer-ig', 'layer-grad-x-act', 'attention', 'rollout', 'value-zeroing', 'occlusion', 'lime', 'shap', 'shapley'] as const;
/** One of {@link METHODS}. */
export type Method = (typeof METHODS)[number];

/** Every method's settings together (each method reads its own). */
export type AttributionSettings = IgSettings & GradientSettings & LayerSettings & AttentionSettings & ValueZeroingSettings & OcclusionSettings & SamplingSettings;

/** What to attribute: a prompt, the target (next token, contrast or continuation), the method and its settings. */
export interface AttributeOptions {
  text?: string;
  tokens?: number[];
  /**
   * A chat, put through the model's chat template (see chatPrompt). Only the words of the user's
   * messages are attributed; the template's tokens (and other roles' words) stay as context, as
   * special tokens do, unless `templateTokens` is set.
   */
  messages?: ChatMessage[];
  /** How `messages` are templated (default: the model's template, with the assistant's header at the end). */
  chat?: ChatOptions;
  /** With `messages`: attribute to every token of the templated prompt, not only the user's words. */
  templateTokens?: boolean;
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
  /** Also compute comprehensiveness, sufficiency, AOPC, Kendall τ vs leave-one-out and deletion / insertion AUC. */
  evaluate?: boolean;
  /** Masking for `evaluate` (default: settings.mask, else 'zero'). */
  evalMask?: Masking;
  /**
   * Attribute to special tokens (e.g. <|endoftext|> separating the turns of a chat prompt) too.
   * Default false: they stay in the prompt as context, get no score column, are never masked by
   * --eval, and IG keeps them in its baseline. (Perturbation methods still perturb them.)
   */
  special?: boolean;
  /** AOPC rationale sizes for `evaluate`: 'ferret' (10%…100%, default), 'eraser' (1, 5, 10, 20, 50%) or fractions. */
  aopc?: AopcBins | number[];
}

/** Validates a method name, naming the nearest valid ones if it is not. */
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
    case 'layer-ig': return layerIntegratedGradients(model, t, s);
    case 'layer-grad-x-act': return layerGradientXActivation(model, t, s);
    case 'attention': return rawAttention(model, t, s);
    case 'rollout': return attentionRollout(model, t, s);
    case 'value-zeroing': return valueZeroing(model, t, s);
    case 'occlusion': return occlusion(model, t, s);
    case 'lime': return lime(model, t, s, seed);
    case 'shap': return kernelShap(model, t, s, seed);
    case 'shapley': return shapleySampling(model, t, s, seed);
  }
}

/** Attributes a model's prediction on a prompt to the prompt's tokens (or words, sentences) with any method, optionally with faithfulness metrics. */
export async function attribute(model: HookedTransformer, opts: AttributeOptions): Promise<AttributionResult> {
  const method = checkMethod(opts.method);
  if ([opts.text, opts.tokens, opts.messages].filter((x) => x !== undefined).length !== 1) throw new LanternError('give one of text, tokens or messages to attribute');
  if (opts.messages === undefined && (opts.chat !== undefined || opts.templateTokens !== undefined)) throw new LanternError('chat and templateTokens apply only with messages');
  const chat = opts.messages !== undefined ? chatPrompt(model, opts.messages, opts.chat) : undefined;
  const prompt = chat ? chat.tokens : opts.text !== undefined ? model.toTokens(opts.text) : opts.tokens!;
  const seed = opts.seed ?? 0;
  if (!Number.isInteger(seed)) throw new LanternError(`seed must be an integer, got ${seed}`);
  const t = await resolveTarget(model, prompt, { target: opts.target, foil: opts.foil, continuation: opts.continuation, kind: opts.kind });
  const specialIds = opts.special ? new Set<number>() : model.tokenizer?.specialIds() ?? new Set<number>();
  const specials = prompt.flatMap((id, position) => (specialIds.has(id) ? [position] : []));
  if (specials.length === prompt.length) throw new LanternError('every prompt token is a special token, so there is nothing to attribute (attribute them with special: true, or --special)');
  const user = new Set(chat?.userPositions);
  const template = chat && !opts.templateTokens ? prompt.flatMap((id, position) => (user.has(position) || specialIds.has(id) ? [] : [position])) : [];
  if (chat && !opts.templateTokens) {
    if (user.size === 0) throw new LanternError('the chat has no words of the user to attribute (attribute the template with templateTokens: true, or --attribute-template-tokens)');
    if (opts.settings?.granularity !== undefined && opts.settings.granularity !== 'token') {
      throw new LanternError(`${opts.settings.granularity} granularity groups the template's tokens with the user's; use token granularity, or attribute the template too (templateTokens: true, or --attribute-template-tokens)`);
    }
  }
  const skipped = [...specials, ...template].sort((a, b) => a - b);
  if (skipped.length) t.fixed = skipped;
  const columns = prompt.flatMap((_, i) => (skipped.includes(i) ? [] : [i]));
  const settings = opts.settings ?? {};
  const out = await run(model, method, t, settings, seed);
  const spans = out.extra?.spans as [number, number][] | undefined;
  const strings = model.tokenizer ? model.tokenStrings(prompt) : prompt.map((id) => `#${id}`);
  // Word/sentence spans cover every token, special ones included; token columns leave them out.
  const cols = spans ? prompt.map((_, i) => i) : columns;
  const result: AttributionResult = {
    model: { source: model.source, ...(model.hub ? { hub: model.hub } : {}), weightsSha256: await weightsHash(model), config: { ...model.cfg } },
    method,
    settings: out.settings,
    seed,
    ...(opts.text !== undefined ? { text: opts.text } : {}),
    tokens: spans ? prompt : cols.map((i) => prompt[i]),
    tokenStrings: spans ? spans.map(([a, b]) => strings.slice(a, b).join('')) : cols.map((i) => strings[i]),
    target: t.info,
    scores: spans ? out.scores : out.scores.map((row) => cols.map((i) => row[i])),
    ...(spans ? { spans, granularity: settings.granularity } : {}),
  };
  if (specials.length && !spans) result.skippedSpecial = specials.map((position) => ({ position, token: prompt[position], string: strings[position] }));
  if (chat) {
    result.chat = {
      messages: chat.messages, template: chat.template, text: chat.text,
      userSpans: chat.spans.filter((s) => s.role === 'user').map((s) => [s.start, s.end]),
      templatePositions: template, templateTokens: Boolean(opts.templateTokens),
    };
  }
  const delta = out.extra?.convergenceDelta as number[] | undefined;
  if (delta) result.convergenceDelta = delta;
  const r2 = out.extra?.surrogateR2 as number[] | undefined;
  if (r2) result.surrogateR2 = r2;
  if (opts.evaluate) {
    const mask = opts.evalMask ?? settings.mask ?? 'zero';
    // Word/sentence scores: remove whole features, as the method itself did.
    result.faithfulness = spans
      ? await faithfulnessVia(spanScorer(model, t, spans, { mask: checkMasking(model, mask), batchSize: checkBatchSize(settings.batchSize, 32) }), out.scores, mask)
      : await evaluateFaithfulness(model, t, result.scores, { mask, batchSize: settings.batchSize, fractions: opts.aopc, columns: cols });
  }
  return assertFinite(result, 'the attribution');
}

export { resolveTarget, rowValues, SCORE_KINDS } from './targets.js';
export type { ScoreKind, TargetRequest, TargetInfo, TargetRow, ResolvedTarget } from './targets.js';
export {
  saliency, inputXGradient, integratedGradients, layerIntegratedGradients, layerGradientXActivation, quadrature, aggregate, INTEGRATION_RULES,
} from './gradient.js';
export type { Aggregation, IntegrationRule, Baseline, GradientSettings, IgSettings, LayerSettings, MethodOutput } from './gradient.js';
export { rawAttention, attentionRollout } from './attention.js';
export { valueZeroing, valueZeroingMatrices } from './value-zeroing.js';
export type { ValueZeroingSettings } from './value-zeroing.js';
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
export {
  evaluateFaithfulness, faithfulnessPlan, kendallTau, rationaleSizes, ranking, curveAuc, checkFractions, AOPC_FRACTIONS, ERASER_FRACTIONS, AOPC_BINS,
} from './faithfulness.js';
export type { Faithfulness, FaithfulnessRow, AopcBins } from './faithfulness.js';
export { saveResult, loadResult, parseResult, resultToJSON, weightsHash, mergeWords, RESULT_FORMAT } from './result.js';
export type { AttributionResult, WordAggregation } from './result.js';
export { renderTerminal, renderHtml, scoreColor } from './render.js';
export * from './dataset.js';
