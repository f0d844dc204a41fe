/**
 * Model-agnostic perturbation attribution: occlusion / leave-one-out, LIME, KernelSHAP and Shapley
 * value sampling over *features* (tokens, words or sentences of the prompt), for Lantern's engine
 * and for any LanguageModelBackend alike.
 *
 * Every method sees only a CoalitionScorer: keep-masks over the n features in, each target row's
 * value out. The white-box scorer (sampling.ts `modelScorer`) masks tokens inside one batched
 * engine run; the backend scorer here builds one perturbed prompt per mask and asks the backend to
 * score the fixed continuation (requests run concurrently, up to the backend's own limit). The
 * estimators in sampling.ts run unchanged on either, and leave-one-out is the same `occlusionFit`.
 *
 * Perturbing a prompt seen only from outside:
 *   granularity  'token' (the backend's own tokens: a token-id prompt, or a text prompt split by
 *                the backend's tokenizer), 'word' (whitespace-separated, each word with the
 *                whitespace before it) or 'sentence' (ending at . ! ? with what follows it).
 *   mask         'delete' (default: the feature is left out of the prompt), { text } (a word or
 *                sentence is replaced by this text, its leading whitespace kept) or { token } (a
 *                token is replaced by this id — exactly what white-box { token } masking does, so
 *                the two give the same numbers on the same model).
 *   An empty prompt cannot be scored (nothing conditions the continuation's first token), so a
 *   text prompt with every feature deleted becomes `emptyPrompt` (default "\n"; recorded).
 * Rows, as the white-box continuation target: one row for a one-token continuation; otherwise the
 * sum of the continuation's log-probs, then one row per token. 'prob' exponentiates.
 */
import { LanternError, nearest } from '../../errors.js';
import { assertFinite } from '../../finite.js';
import type { Continuation, ContinuationScore, LanguageModelBackend, Usage } from '../../backends/types.js';
import { checkGranularity, expandSpans, textUnits, tokenSpans, Granularity, GRANULARITIES } from './features.js';
import { occlusionFit } from './perturbation.js';
import { faithfulnessPlan, AOPC_FRACTIONS, Faithfulness } from './faithfulness.js';
import type { MethodOutput } from './gradient.js';
import type { AttributionResult } from './result.js';
import { kernelShapFit, limeFit, shapleySamplingFit, CoalitionScorer, LIME_DEFAULTS } from './sampling.js';

export { checkGranularity, expandSpans, textUnits, tokenSpans, GRANULARITIES, occlusionFit };
export type { Granularity };

/** The methods that need only a model's scores, so they run through any backend. */
export const PERTURBATION_METHODS = ['occlusion', 'lime', 'shap', 'shapley'] as const;
/** One of {@link PERTURBATION_METHODS}. */
export type PerturbationMethod = (typeof PERTURBATION_METHODS)[number];
/** Validates a method name, naming the valid ones if it is not. */
export function checkPerturbationMethod(m: string): PerturbationMethod {
  if ((PERTURBATION_METHODS as readonly string[]).includes(m)) return m as PerturbationMethod;
  const near = nearest(m, PERTURBATION_METHODS, 1);
  throw new LanternError(`unknown perturbation method '${m}'${near.length ? ` (did you mean '${near[0]}'?)` : ''}; methods: ${PERTURBATION_METHODS.join(', ')}`);
}

/** Settings of the sampling perturbation methods: samples, LIME's kernel width and ridge penalty, antithetic sampling. */
export interface PerturbationSettings {
  samples?: number;
  kernelWidth?: number;
  ridge?: number;
  antithetic?: boolean;
}

/** Runs one method on n features through `scorer`; settings come back with defaults filled in. */
export async function runPerturbation(
  method: PerturbationMethod, n: number, scorer: CoalitionScorer, s: PerturbationSettings = {}, seed = 0,
): Promise<MethodOutput> {
  switch (method) {
    case 'occlusion': {
      const r = await occlusionFit(n, scorer);
      return { scores: r.scores, settings: {} };
    }
    case 'lime': {
      const samples = s.samples ?? LIME_DEFAULTS.samples;
      const kernelWidth = s.kernelWidth ?? LIME_DEFAULTS.kernelWidth;
      const ridge = s.ridge ?? LIME_DEFAULTS.ridge;
      const r = await limeFit(n, scorer, { samples, kernelWidth, ridge, seed });
      return { scores: r.scores, settings: { samples, kernelWidth, ridge }, extra: { surrogateR2: r.r2, intercepts: r.intercepts } };
    }
    case 'shap': {
      const r = await kernelShapFit(n, scorer, { samples: s.samples, seed });
      return { scores: r.scores, settings: { samples: r.samples, enumerated: r.enumerated }, extra: { base: r.base } };
    }
    case 'shapley': {
      const samples = s.samples ?? 50;
      const antithetic = s.antithetic ?? true;
      const r = await shapleySamplingFit(n, scorer, { samples, antithetic, seed });
      return { scores: r.scores, settings: { samples, antithetic } };
    }
  }
}

// ---------------------------------------------------------------------------------------------
// Any backend

/** How a feature is removed from a black-box prompt: deleted, replaced by text, or (token-id prompts) replaced by a token. */
export type BackendMasking = 'delete' | { text: string } | { token: number };

/** What to explain through a backend: prompt, target or continuation, method and its settings. */
export interface ExplainOptions extends PerturbationSettings {
  /** Text, or token ids in the backend's vocabulary. */
  prompt: string | number[];
  /** The continuation to explain (text or ids). Default: the backend's greedy next token. */
  target?: Continuation;
  method: PerturbationMethod | string;
  /** Default: 'word' for a text prompt, 'token' for ids. */
  granularity?: Granularity;
  mask?: BackendMasking;
  /** What a text prompt with every feature deleted becomes (default "\n"). */
  emptyPrompt?: string;
  kind?: 'logprob' | 'prob';
  seed?: number;
  /** Also compute the faithfulness metrics, through the same backend. */
  evaluate?: boolean;
}

/** The features of a prompt and the scorer of their coalitions through a backend, shared by every perturbation method. */
export interface BackendProblem {
  /** Feature texts (the columns). */
  features: string[];
  /** Token-id prompts: the ids. */
  tokens?: number[];
  scorer: CoalitionScorer;
  /** Every score the scorer received was exact. */
  approximate: () => boolean;
  rows: string[];
  values: number[];
  continuation: { text?: string; ids?: number[]; strings: string[] };
  settings: Record<string, unknown>;
}

function checkBackendMask(m: BackendMasking | undefined): BackendMasking {
  const v = m ?? 'delete';
  if (v === 'delete') return v;
  if (typeof v === 'object' && v !== null && 'token' in v && Number.isInteger(v.token) && v.token >= 0) return { token: v.token };
  if (typeof v === 'object' && v !== null && 'text' in v && typeof v.text === 'string') return { text: v.text };
  throw new LanternError(`unknown masking ${JSON.stringify(m)}; use 'delete', { text: '…' } or { token: id }`);
}

/** Builds the features of the prompt and a scorer that asks `backend` for each perturbed prompt. */
export async function backendProblem(backend: LanguageModelBackend, o: ExplainOptions): Promise<BackendProblem> {
  const kind = o.kind ?? 'logprob';
  if (kind !== 'logprob' && kind !== 'prob') throw new LanternError(`a backend can explain 'logprob' or 'prob', got '${String(kind)}' (logits are not visible from outside)`);
  if (o.prompt.length === 0) throw new LanternError('the prompt is empty');
  const mask = checkBackendMask(o.mask);
  const emptyPrompt = o.emptyPrompt ?? '\n';
  const idsPrompt = typeof o.prompt !== 'string';
  const granularity = checkGranularity(o.granularity, idsPrompt ? 'token' : 'word');

  // Features: units of text (joined back into a prompt) or token ids.
  let units: string[] | undefined;
  let ids: number[] | undefined;
  if (idsPrompt) {
    if (granularity !== 'token') throw new LanternError(`${granularity} granularity needs a text prompt; a token-id prompt is perturbed token by token`);
    ids = [...(o.prompt as number[])];
  } else if (granularity === 'token') {
    if (!backend.tokenize) throw new LanternError(`${backend.id} cannot tokenize, so token granularity needs a token-id prompt; or use word or sentence granularity`);
    ids = await backend.tokenize(o.prompt as string);
  } else {
    units = textUnits(o.prompt as string, granularity);
  }
  const substitutes = (k: 'text' | 'token') => typeof mask === 'object' && k in mask;
  if (ids && substitutes('text')) throw new LanternError("token granularity masks with 'delete' or { token: id }, not { text }");
  if (units && substitutes('token')) throw new LanternError(`${granularity} granularity masks with 'delete' or { text: '…' }, not { token }`);
  const n = (units ?? ids!).length;
  if (n === 0) throw new LanternError('the prompt has no features to attribute');

  const features = units ?? (backend.detokenize ? await Promise.all(ids!.map((t) => backend.detokenize!([t]))) : ids!.map((t) => `#${t}`));
  const leadingSpace = !idsPrompt && /^\s/.test(o.prompt as string);
  const promptOf = (keep: boolean[]): string | number[] => {
    if (ids) {
      const out = substitutes('token')
        ? ids.map((t, i) => (keep[i] ? t : (mask as { token: number }).token))
        : ids.filter((_, i) => keep[i]);
      if (out.length === 0) throw new LanternError("deleting every token leaves an empty prompt, which cannot be scored; mask with { token: id } (CLI: --mask token:<id>)");
      return out;
    }
    const parts = units!.map((u, i) => {
      if (keep[i]) return u;
      if (mask === 'delete') return '';
      const lead = /^\s*/.exec(u)![0];
      const trail = /\s*$/.exec(u.slice(lead.length))![0];
      return lead + (mask as { text: string }).text + trail;
    });
    let text = parts.join('');
    // Deleting the first words must not leave the next word's leading space at the start.
    if (!leadingSpace) text = text.trimStart();
    return text.length ? text : emptyPrompt;
  };

  // The continuation: given, or the backend's greedy next token.
  let cont: Continuation;
  if (o.target !== undefined) {
    if (o.target.length === 0) throw new LanternError('the target continuation is empty');
    cont = o.target;
  } else {
    const g = await backend.generate(o.prompt, { maxTokens: 1, temperature: 0 });
    if (!g.text) throw new LanternError(`${backend.id} generated nothing after the prompt; give a target`);
    cont = idsPrompt && backend.tokenize ? await backend.tokenize(g.text) : g.text;
    if (idsPrompt && typeof cont === 'string') throw new LanternError(`${backend.id} cannot tokenize its answer; give the target as token ids`);
  }

  let approximate = false;
  const full = await backend.scoreContinuation(o.prompt, cont);
  approximate ||= full.approximate;
  const m = full.logprobs.length;
  const rowsOf = (s: ContinuationScore): number[] => {
    if (s.logprobs.length !== m) {
      throw new LanternError(`${backend.id} split the continuation into ${s.logprobs.length} tokens after a perturbed prompt but ${m} after the original; explain it as ids, or as one token`);
    }
    const raw = m === 1 ? [s.logprobs[0]] : [s.total, ...s.logprobs];
    return kind === 'prob' ? raw.map(Math.exp) : raw;
  };
  const label = (t: string) => `${kind}(${JSON.stringify(t)})`;
  const rows = m === 1 ? [label(full.tokens[0])] : [kind === 'prob' ? 'joint prob(continuation)' : 'sum logprob(continuation)', ...full.tokens.map(label)];

  const scorer: CoalitionScorer = async (keep) => {
    const scores = await Promise.all(keep.map((z) => {
      if (z.length !== n) throw new LanternError(`a coalition has ${z.length} entries for ${n} features`);
      return backend.scoreContinuation(promptOf(z), cont);
    }));
    approximate ||= scores.some((s) => s.approximate);
    const vals = scores.map(rowsOf);
    return rows.map((_, r) => vals.map((v) => v[r]));
  };
  return {
    features, tokens: idsPrompt ? ids : undefined, scorer, approximate: () => approximate, rows, values: rowsOf(full),
    continuation: { ...(typeof cont === 'string' ? { text: cont } : { ids: cont }), strings: full.tokens },
    settings: { granularity, mask, kind, ...(mask === 'delete' && !idsPrompt ? { emptyPrompt } : {}) },
  };
}

/** Faithfulness through any scorer (the same metrics as faithfulness.ts, with the same masks). */
export async function faithfulnessVia(scorer: CoalitionScorer, scores: number[][], masking: unknown): Promise<Faithfulness> {
  const rows = [];
  for (let r = 0; r < scores.length; r++) {
    const plan = faithfulnessPlan(scores[r]);
    const ys = await scorer(plan.masks.map((m) => m.map((b) => !b)));
    rows.push(plan.assemble(ys[r]));
  }
  return { masking: masking as Faithfulness['masking'], fractions: AOPC_FRACTIONS, rows };
}

/** An attribution computed through a backend: the usual result plus which backend, whether any score was approximate, and the feature granularity. */
export interface BackendAttribution extends AttributionResult {
  backend: { id: string; approximate: boolean; usage: Usage };
  granularity: Granularity;
}

/**
 * Explains a backend's continuation with a perturbation method. The result has the JSON format of
 * white-box attributions (saveResult / loadResult / renderTerminal / renderHtml), with `backend`
 * (its id, whether any score was approximate, and its usage) and `granularity`; the columns
 * (`tokenStrings`) are the features, `tokens` the ids of a token-id prompt (else -1 per feature).
 */
export async function explainWithBackend(backend: LanguageModelBackend, o: ExplainOptions): Promise<BackendAttribution> {
  const method = checkPerturbationMethod(o.method);
  const seed = o.seed ?? 0;
  if (!Number.isInteger(seed)) throw new LanternError(`seed must be an integer, got ${seed}`);
  const p = await backendProblem(backend, o);
  const out = await runPerturbation(method, p.features.length, p.scorer, o, seed);
  const faithfulness = o.evaluate ? await faithfulnessVia(p.scorer, out.scores, p.settings.mask) : undefined;
  const cont = p.continuation;
  const result: BackendAttribution = {
    model: { source: backend.id, weightsSha256: 'n/a (black-box backend)', config: {} },
    method,
    settings: { ...p.settings, ...out.settings },
    seed,
    ...(typeof o.prompt === 'string' ? { text: o.prompt } : {}),
    tokens: p.tokens ?? p.features.map(() => -1),
    tokenStrings: p.features,
    target: {
      mode: cont.strings.length === 1 ? 'next-token' : 'continuation',
      kind: (o.kind ?? 'logprob'),
      position: p.features.length - 1,
      ...(cont.strings.length === 1 ? { tokenString: cont.strings[0], ...(cont.ids ? { token: cont.ids[0] } : {}) } : { continuationStrings: cont.strings, ...(cont.ids ? { continuation: cont.ids } : {}) }),
      predicted: o.target === undefined,
      rows: p.rows,
      values: p.values,
    },
    scores: out.scores,
    granularity: p.settings.granularity as Granularity,
    backend: { id: backend.id, approximate: p.approximate(), usage: backend.usage() },
  };
  const r2 = out.extra?.surrogateR2 as number[] | undefined;
  if (r2) result.surrogateR2 = r2;
  if (faithfulness) result.faithfulness = faithfulness;
  return assertFinite(result, 'the attribution');
}
