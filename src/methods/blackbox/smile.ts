/**
 * SMILE / gSMILE: statistical, model-agnostic interpretability with local explanations
 * (Dehghani et al. 2024, arXiv 2311.07286; the generative-LLM version gSMILE, arXiv 2505.21657).
 * A LIME-style surrogate whose distances are Wasserstein distances between text representations:
 *
 *  1. Split the prompt into d words; draw `samples` (default 64) distinct keep-masks
 *     z ~ Bernoulli(keepProbability = 0.5)^d, each keeping at least `minKept` (2) words and not all
 *     of them (when fewer such masks exist than asked, all of them are used). The unperturbed
 *     prompt is added as sample 0, so the run costs samples + 1 generations.
 *  2. Generate a response to each perturbed prompt (greedy, `maxTokens`).
 *  3. Output shift d_j = W1(embed(y_0), embed(y_j)) between the original and the perturbed
 *     response (see embed.ts for the representation and why), and target
 *     y_j = 1 − (d_j − min d) / (max d − min d): 1 = the response did not move.
 *     xwhy's LLM example measures the distance from the original *output* to the perturbed
 *     *prompt* instead; we follow the paper (the shift of the output).
 *  4. Prompt distance d'_j = W1(embed(x_0), embed(x_j)) and weight w_j = sqrt(exp(−d'_j² / σ²)),
 *     σ = `kernelWidth` (0.25), as in xwhy.
 *  5. Weighted least squares y ≈ b + Σ_i c_i z_i (the LIME estimator in
 *     ../attribution/sampling.ts). c_i is word i's importance: how much keeping word i keeps the
 *     response where it was. The surrogate's weighted R² says how far to trust it.
 *
 * Every random choice comes from the seed; generation is greedy, so a seed fixes the result.
 */
import { LanternError } from '../../errors.js';
import { checkHeap } from '../cost.js';
import type { LanguageModelBackend } from '../../backends/types.js';
import { Rng } from '../../rng.js';
import { weightedLeastSquares, weightedR2 } from '../attribution/sampling.js';
import { checkInt, checkNumber, mapLimit, type Progress } from './common.js';
import { textDistance, type TextEmbedder } from './embed.js';
import { splitWords } from './text.js';

/** SMILE's numeric settings: samples, keep probability, kernel width. */
export interface SmileSettings {
  /** Perturbed prompts (default 64). */
  samples?: number;
  /** Probability of keeping each word (default 0.5). */
  keepProbability?: number;
  /** Fewest words a perturbed prompt keeps (default 2). */
  minKept?: number;
  /** σ of the kernel on prompt distance (default 0.25). */
  kernelWidth?: number;
  /** Response length in tokens (default 24). */
  maxTokens?: number;
  /** Model calls in flight at once (default 1; raise it for HTTP backends). */
  concurrency?: number;
}

/** SMILE's defaults: samples, keep probability, words kept at least, kernel width, tokens per response, requests in flight. */
export const SMILE_DEFAULTS = { samples: 64, keepProbability: 0.5, minKept: 2, kernelWidth: 0.25, maxTokens: 24, concurrency: 1 } as const;

/** One SMILE sample: the words kept, the response, its distance and weight. */
export interface SmileSample {
  /** Keep-mask over the words, '1' = kept. */
  mask: string;
  prompt: string;
  response: string;
  /** W1 between the original and this response. */
  outputDistance: number;
  /** W1 between the original and this prompt. */
  promptDistance: number;
  weight: number;
  /** 1 − minmax(outputDistance). */
  target: number;
}

/** SMILE's explanation: each word's importance, the surrogate's fit, and the samples. */
export interface SmileResult {
  method: 'smile';
  backend: string;
  embedder: string;
  settings: Required<Omit<SmileSettings, 'concurrency'>>;
  seed: number;
  prompt: string;
  response: string;
  words: string[];
  /** Surrogate coefficient per word. */
  importances: number[];
  intercept: number;
  /** Weighted R² of the surrogate on its own samples. */
  r2: number;
  samples: SmileSample[];
  /** Generations asked of the backend (samples + 1). */
  calls: number;
}

/** What SMILE explains and through which backend and embedder. */
export interface SmileOptions extends SmileSettings {
  embedder: TextEmbedder;
  seed?: number;
  onProgress?: Progress;
  signal?: AbortSignal;
}

function binomial(n: number, k: number): number {
  let c = 1;
  for (let i = 1; i <= k; i++) c = (c * (n - k + i)) / i;
  return c;
}

/** Distinct keep-masks with minKept ≤ |z| < d: all of them when there are at most `samples`, else a seeded draw. */
export function smileMasks(d: number, samples: number, keepProbability: number, minKept: number, seed: number): boolean[][] {
  let available = 0;
  for (let k = minKept; k < d; k++) available += binomial(d, k);
  // Enumerating is only possible for short prompts; long ones always have more masks than asked.
  if (d <= 20 && available <= samples) {
    const all: boolean[][] = [];
    for (let bits = 0; bits < 2 ** d; bits++) {
      const z = Array.from({ length: d }, (_, i) => ((bits >> i) & 1) === 1);
      const k = z.filter(Boolean).length;
      if (k >= minKept && k < d) all.push(z);
    }
    return all;
  }
  const rng = new Rng(seed);
  const seen = new Set<string>();
  const masks: boolean[][] = [];
  // Rejection sampling; the cap only trips for keep probabilities that almost never give a valid mask.
  for (let tries = 0; masks.length < samples; tries++) {
    if (tries > 1000 * samples + 10000) {
      throw new LanternError(`could not draw ${samples} distinct masks keeping ${minKept}..${d - 1} of ${d} words with keep probability ${keepProbability}; change the keep probability or ask for fewer samples`);
    }
    const z = Array.from({ length: d }, () => rng.next() < keepProbability);
    const k = z.filter(Boolean).length;
    if (k < minKept || k === d) continue;
    const key = z.map(Number).join('');
    if (seen.has(key)) continue;
    seen.add(key);
    masks.push(z);
  }
  return masks;
}

/** Fills in SMILE's defaults and refuses out-of-range settings. */
export function checkSmileSettings(s: SmileSettings): Required<SmileSettings> {
  const samples = checkInt('SMILE samples', s.samples ?? SMILE_DEFAULTS.samples, 1);
  const keepProbability = checkNumber('SMILE keep probability', s.keepProbability ?? SMILE_DEFAULTS.keepProbability, (x) => x > 0 && x < 1, 'a number strictly between 0 and 1');
  const minKept = checkInt('SMILE minimum kept words', s.minKept ?? SMILE_DEFAULTS.minKept, 1);
  const kernelWidth = checkNumber('SMILE kernel width σ', s.kernelWidth ?? SMILE_DEFAULTS.kernelWidth, (x) => x > 0, 'a positive number');
  const maxTokens = checkInt('SMILE max tokens', s.maxTokens ?? SMILE_DEFAULTS.maxTokens, 1);
  const concurrency = checkInt('SMILE concurrency', s.concurrency ?? SMILE_DEFAULTS.concurrency, 1);
  return { samples, keepProbability, minKept, kernelWidth, maxTokens, concurrency };
}

/** SMILE / gSMILE (Dehghani et al. 2024): each word's importance to a generation, from a weighted linear fit of how far masked prompts move the response (Wasserstein distance over token embeddings). */
export async function smile(backend: LanguageModelBackend, prompt: string, opts: SmileOptions): Promise<SmileResult> {
  const s = checkSmileSettings(opts);
  const seed = opts.seed ?? 0;
  checkInt('seed', seed, 0);
  const words = splitWords(prompt);
  const d = words.length;
  if (d <= s.minKept) throw new LanternError(`SMILE needs a prompt of more than ${s.minKept} words (the minimum kept), got ${d}`);
  // Checked before any mask is drawn: a prompt that cannot be answered must not first fill the heap.
  const context = await backend.contextLength?.();
  if (context !== undefined && backend.tokenize) {
    const n = (await backend.tokenize(prompt)).length;
    if (n + s.maxTokens > context) {
      throw new LanternError(`the prompt is ${n} tokens; with ${s.maxTokens} response tokens it does not fit ${backend.id}'s context of ${context} tokens`);
    }
  }
  if (s.samples + 1 < d + 1) {
    throw new LanternError(`SMILE over ${d} words needs at least ${d} perturbed prompts for its regression, got ${s.samples}; raise the samples`);
  }
  // Masks, their prompts and regression rows per sample, and the (d + 1)² normal equations twice over.
  checkHeap((s.samples + 1) * d * 26 + 2 * (d + 1) ** 2 * 8, `SMILE over ${d} words with ${s.samples} samples`, 'use a shorter prompt');
  const masks = smileMasks(d, s.samples, s.keepProbability, s.minKept, seed);
  // The regression has d + 1 unknowns: fewer samples than that leave it underdetermined.
  if (masks.length + 1 < d + 1) {
    throw new LanternError(`SMILE over ${d} words needs at least ${d} perturbed prompts for its regression, got ${masks.length}; raise the samples`);
  }
  const all = [words.map(() => true), ...masks];
  const prompts = all.map((z, j) => (j === 0 ? prompt : words.filter((_, i) => z[i]).join(' ')));

  let done = 0;
  const responses = await mapLimit(prompts, s.concurrency, async (p) => {
    if (opts.signal?.aborted) throw new LanternError('SMILE was cancelled');
    const g = await backend.generate(p, { maxTokens: s.maxTokens, temperature: 0, signal: opts.signal });
    opts.onProgress?.(++done, prompts.length);
    return g.text;
  });
  const y0 = responses[0];
  const outDist: number[] = [];
  const promptDist: number[] = [];
  for (let j = 0; j < all.length; j++) {
    outDist.push(await textDistance(opts.embedder, y0, responses[j]));
    promptDist.push(await textDistance(opts.embedder, prompt, prompts[j]));
  }
  const lo = Math.min(...outDist);
  const hi = Math.max(...outDist);
  // All responses equally far (usually: all identical): every target is 1 and no word matters.
  const target = outDist.map((v) => (hi > lo ? 1 - (v - lo) / (hi - lo) : 1));
  const sigma2 = s.kernelWidth ** 2;
  const weight = promptDist.map((v) => Math.sqrt(Math.exp(-(v * v) / sigma2)));
  if (!weight.some((w) => w > 0)) throw new LanternError(`every SMILE sample has weight 0 at kernel width ${s.kernelWidth}; use a wider kernel`);
  const x = all.map((z) => z.map(Number));
  const [coef] = weightedLeastSquares(x, weight, [target], 0);
  const fitted = x.map((z) => coef[0] + z.reduce((a, v, i) => a + v * coef[i + 1], 0));
  const r2 = weightedR2(target, fitted, weight);
  const { concurrency: _c, ...settings } = s;
  return {
    method: 'smile', backend: backend.id, embedder: opts.embedder.id, settings, seed, prompt, response: y0, words,
    importances: coef.slice(1), intercept: coef[0], r2,
    samples: all.map((z, j) => ({
      mask: z.map(Number).join(''), prompt: prompts[j], response: responses[j],
      outputDistance: outDist[j], promptDistance: promptDist[j], weight: weight[j], target: target[j],
    })),
    calls: prompts.length,
  };
}
