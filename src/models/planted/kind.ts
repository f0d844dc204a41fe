/** What each planted kind provides: a construction, a prompt generator and a measurement. */
import type { ModelConfig } from '../config.js';
import type { HookedTransformer } from '../hooked.js';
import type { PlantedDescription, PlantedKind } from './types.js';

/** A prompt of a planted task: its tokens and the positions whose next token the mechanism determines. */
export interface PlantedPrompt {
  tokens: number[];
  text: string;
  /** Predict-the-next-token targets: at `pos`, the right next token is `answer` (`foil`: the wrong one the task contrasts it with). */
  targets: { pos: number; answer: number; foil?: number; label: string }[];
  /** Kind-specific facts about the prompt (positions of names, the repeated half's length, ...). */
  meta: Record<string, number | string>;
}

/** A planted model's config, weights and description. */
export interface PlantedBuild {
  cfg: ModelConfig;
  /** Lantern weight names (see weightShapes). */
  weights: Record<string, Float32Array>;
  description: PlantedDescription;
}

/** One kind of planted model: how to build it, make its prompts and measure it. */
export interface PlantedKindImpl {
  kind: PlantedKind;
  /** One line for `--help` and summaries. */
  summary: string;
  /** Builds the model's weights by construction. */
  build(): PlantedBuild;
  /** The task's prompts: `n` of them, deterministic in `seed`. */
  prompts(n: number, seed?: number): PlantedPrompt[];
  /** Runs the model on the task (clean and with ablations) and returns the metrics named in the description. */
  measure(model: HookedTransformer, description: PlantedDescription): Promise<Record<string, number>>;
}

/** The prompts' token ids, for a batched run (prompts of different lengths are right-padded by the model). */
export function tokensOf(prompts: PlantedPrompt[]): number[][] {
  return prompts.map((p) => p.tokens);
}
