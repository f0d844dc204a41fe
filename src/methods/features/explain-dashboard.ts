/** Explaining a stored dashboard: its contexts as records, explained and scored, and SASC on its top n-grams. */
import { LanternError } from '../../errors.js';
import type { LanguageModelBackend } from '../../backends/types.js';
import type { HookedTransformer } from '../../models/hooked.js';
import type { FeatureDashboard } from './dashboards.js';
import { explainAndScore, ExplainAndScoreOptions, ExplanationResult, ActivationRecord } from './explain.js';
import { featureResponse, sasc, SascOptions, SascResult, topNgrams } from './sasc.js';
import type { FeatureSource } from './source.js';

/** What explaining needs of a dashboard: its top contexts, and its activations on the shared random contexts. */
export interface ExplainableDashboard extends Pick<FeatureDashboard, 'index' | 'top'> {
  randomActivations: number[][];
}

/** The dashboard's top contexts and random contexts as explainer / simulator records. */
export function dashboardRecords(d: ExplainableDashboard, random: { tokens: string[][] }): { top: ActivationRecord[]; random: ActivationRecord[] } {
  if (d.randomActivations.length !== random.tokens.length) throw new LanternError(`feature ${d.index}: ${d.randomActivations.length} random-context activations for ${random.tokens.length} random contexts`);
  return {
    top: d.top.map((c) => ({ tokens: c.tokens, activations: c.activations })),
    random: random.tokens.map((tokens, i) => ({ tokens, activations: d.randomActivations[i] })),
  };
}

/** Explain → simulate → score one dashboard's feature. */
export async function explainDashboard(backend: LanguageModelBackend, d: ExplainableDashboard, random: { tokens: string[][] }, opts: ExplainAndScoreOptions = {}): Promise<ExplanationResult> {
  const r = dashboardRecords(d, random);
  if (r.top.length < 2) throw new LanternError(`feature ${d.index} fired at fewer than 2 places in the corpus; nothing to explain`);
  return explainAndScore(backend, r.top, r.random, opts);
}

/** SASC for one dashboard's feature: its top n-grams summarised, candidates scored by the feature's response against the random contexts' text. */
export async function sascDashboard(backend: LanguageModelBackend, model: HookedTransformer, source: FeatureSource, d: ExplainableDashboard, random: { tokens: string[][] }, opts: SascOptions & { n?: number } = {}): Promise<SascResult> {
  const ngrams = topNgrams(d.top, opts.n ?? 3);
  return sasc(backend, featureResponse(model, source, d.index), ngrams, random.tokens.map((t) => t.join('')), opts);
}
