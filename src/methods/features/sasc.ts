/**
 * SASC, summarize and score (Singh et al., 2023, *Explaining black box text modules in natural
 * language with language models*): the n-grams that most excite a module (here a feature or
 * neuron) are summarised by a language model into candidate explanations; each candidate is
 * scored by having the model write texts about it and measuring how much more the module responds
 * to them than to baseline texts, in units of the baseline's standard deviation.
 */
import { LanternError } from '../../errors.js';
import type { LanguageModelBackend } from '../../backends/types.js';
import type { HookedTransformer } from '../../models/hooked.js';
import { DEFAULT_PROMPTS, ExplainPrompts } from './explain.js';
import type { FeatureContext } from './dashboards.js';
import { FeatureSource, hookWidth } from './source.js';

/** The module's response to each text: its largest activation over the text's tokens. */
export type ModuleResponse = (texts: string[]) => Promise<number[]>;

/** A feature's response to texts: each text run through the model, the feature's largest activation over its tokens. */
export function featureResponse(model: HookedTransformer, source: FeatureSource, feature: number, batchSize = 8): ModuleResponse {
  if (!Number.isInteger(feature) || feature < 0 || feature >= source.size) throw new LanternError(`feature ${feature} outside [0, ${source.size}) of ${source.id}`);
  const width = hookWidth(model, source.hook);
  return async (texts) => {
    const out: number[] = [];
    for (let i = 0; i < texts.length; i += batchSize) {
      const chunk = texts.slice(i, i + batchSize).map((t) => model.toTokens(t).slice(0, model.cfg.nCtx));
      const { cache, batch } = await model.runWithHooks(chunk, { cache: [source.hook], logitPositions: [0] });
      const acts = cache.get(source.hook).f32;
      const enc = source.encode(acts, acts.length / width);
      chunk.forEach((ids, b) => {
        let m = -Infinity;
        for (let t = 0; t < ids.length; t++) m = Math.max(m, enc[(b * batch.seq + t) * source.size + feature]);
        out.push(m);
      });
    }
    return out;
  };
}

/** The n-gram ending at each context's activating token (`n` tokens, fewer at a row start), distinct, in the contexts' order. */
export function topNgrams(contexts: FeatureContext[], n = 3): string[] {
  const seen = new Set<string>();
  for (const c of contexts) seen.add(c.tokens.slice(Math.max(0, c.at - n + 1), c.at + 1).join('').trim());
  return [...seen].filter(Boolean);
}

/** Settings of {@link sasc}. */
export interface SascOptions {
  prompts?: Partial<ExplainPrompts>;
  /** Candidate explanations to summarise (default 3: one greedy, the rest sampled). */
  candidates?: number;
  /** Texts synthesised per candidate (default 5). */
  texts?: number;
  seed?: number;
}

/** One candidate explanation and its score. */
export interface SascCandidate {
  explanation: string;
  /** (mean response to its texts − mean baseline response) / std of the baseline responses. */
  score: number;
  texts: string[];
  responses: number[];
}

/** The result of {@link sasc}: every candidate, best first. */
export interface SascResult {
  method: 'sasc';
  ngrams: string[];
  baselineMean: number;
  baselineStd: number;
  candidates: SascCandidate[];
  /** The best candidate's explanation and score. */
  explanation: string;
  score: number;
}

/** Lines of a generated list, with list markers ("1.", "-", "*") removed. */
function listLines(text: string, n: number): string[] {
  return text.split('\n').map((l) => l.replace(/^\s*(?:\d+[.)]|[-*•])\s*/, '').trim()).filter(Boolean).slice(0, n);
}

/** Summarise `ngrams` into candidate explanations and score each by the module's response to synthesised texts against `baseline` texts. */
export async function sasc(backend: LanguageModelBackend, respond: ModuleResponse, ngrams: string[], baseline: string[], opts: SascOptions = {}): Promise<SascResult> {
  if (ngrams.length === 0) throw new LanternError('SASC needs at least one n-gram the module responds to');
  if (baseline.length < 2) throw new LanternError(`SASC needs at least 2 baseline texts, got ${baseline.length}`);
  const p = { ...DEFAULT_PROMPTS, ...(opts.prompts ?? {}) };
  const k = opts.candidates ?? 3;
  const nTexts = opts.texts ?? 5;
  const seed = opts.seed ?? 0;
  const list = ngrams.map((g) => `- ${g.replace(/\n/g, ' ')}`).join('\n');
  const summaries = await Promise.all(Array.from({ length: k }, (_, i) =>
    backend.generate(p.summarize.replace('{ngrams}', list), { maxTokens: 24, temperature: i === 0 ? 0 : 0.8, seed: seed + i, stop: ['\n'] })));
  const explanations = [...new Set(summaries.map((s) => s.text.split('\n')[0].trim().replace(/\.$/, '')).filter(Boolean))];
  if (!explanations.length) throw new LanternError(`${backend.id} gave no summary of the n-grams`);
  const base = await respond(baseline);
  const mean = base.reduce((a, b) => a + b, 0) / base.length;
  const std = Math.sqrt(base.reduce((a, b) => a + (b - mean) ** 2, 0) / base.length);
  const candidates: SascCandidate[] = [];
  for (const explanation of explanations) {
    const gen = await backend.generate(p.synthesize.replace('{n}', String(nTexts)).replace('{explanation}', explanation), { maxTokens: 24 * nTexts, temperature: 0, seed });
    const texts = listLines(gen.text, nTexts);
    if (!texts.length) throw new LanternError(`${backend.id} wrote no texts about "${explanation}"`);
    const responses = await respond(texts);
    const m = responses.reduce((a, b) => a + b, 0) / responses.length;
    // A baseline the module never varies on: differences are reported in raw units.
    candidates.push({ explanation, score: (m - mean) / (std > 1e-9 ? std : 1), texts, responses });
  }
  candidates.sort((a, b) => b.score - a.score);
  return { method: 'sasc', ngrams, baselineMean: mean, baselineStd: std, candidates, explanation: candidates[0].explanation, score: candidates[0].score };
}
