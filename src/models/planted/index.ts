/**
 * Planted-circuit models: small GPT-2 checkpoints whose weights are set by construction, so the
 * mechanism is known exactly — ground truth for interpretability methods. Each is an ordinary
 * Hugging Face GPT-2 folder (config.json, model.safetensors, tokenizer.json) plus `planted.json`,
 * a machine-readable description of which heads / neurons / positions implement what, the task,
 * and the metrics measured on the written checkpoint.
 *
 *   const desc = await makePlanted('induction', '/tmp/induction');
 *   const { model, description } = await loadPlanted('/tmp/induction');
 *   const prompts = plantedPrompts('induction', 50);
 */
import fs from 'node:fs';
import path from 'node:path';
import { LanternError, nearest } from '../../errors.js';
import type { Executor } from '../../engine/runtime/executor.js';
import type { HookedTransformer } from '../hooked.js';
import { loadModel } from '../load.js';
import { writeGpt2Folder } from './builder.js';
import { copySuppression } from './copy-suppression.js';
import { induction } from './induction.js';
import { ioi } from './ioi.js';
import type { PlantedBuild, PlantedKindImpl, PlantedPrompt } from './kind.js';
import { ngramNeuron } from './ngram.js';
import { successor as successorKind } from './successor.js';
import { PLANTED_KINDS, PlantedDescription, PlantedKind } from './types.js';

export { PLANTED_KINDS } from './types.js';
export type { PlantedKind, PlantedDescription, PlantedComponent, PlantedBlock, PlantedTask } from './types.js';
export type { PlantedPrompt, PlantedBuild, PlantedKindImpl } from './kind.js';
export { inductionPrompts, INDUCTION_HEADS } from './induction.js';
export { copySuppressionPrompts, COPY_SUPPRESSION_HEADS, successor } from './copy-suppression.js';
export { ngramPrompts, NGRAM } from './ngram.js';
export { ioiPrompts, IOI_NAMES, IOI_TEMPLATES, IOI_HEADS } from './ioi.js';
export { successorPrompts, SUCCESSOR_HEADS, SUCCESSOR_IDS, SUCCESSOR_SEQUENCES, nextInSequence } from './successor.js';
export { zeroHead, zeroNeurons, ablationOf, LETTERS, LETTER_IDS, SPACE } from './common.js';
export { ResidualLayout, WeightBuilder, writeGpt2Folder } from './builder.js';

/** The file written next to each planted model. */
export const PLANTED_FILE = 'planted.json';

const IMPLS: Record<PlantedKind, PlantedKindImpl> = {
  induction,
  'copy-suppression': copySuppression,
  'ngram-neuron': ngramNeuron,
  ioi,
  successor: successorKind,
};

/** The implementation of a kind (its summary, construction, prompts and measurement); a LanternError names the kinds for anything else. */
export function plantedKind(kind: string): PlantedKindImpl {
  if ((PLANTED_KINDS as readonly string[]).includes(kind)) return IMPLS[kind as PlantedKind];
  const near = nearest(kind, PLANTED_KINDS, 1);
  throw new LanternError(`unknown planted kind '${kind}'${near.length ? ` (did you mean '${near[0]}'?)` : ''}; kinds: ${PLANTED_KINDS.join(', ')}`);
}

/** The weights and description of a kind, in memory (nothing written, nothing measured). */
export function buildPlanted(kind: PlantedKind | string): PlantedBuild {
  return plantedKind(kind).build();
}

/** The task prompts of a kind: `n` of them, deterministic in `seed` (each kind has its own default seed). */
export function plantedPrompts(kind: PlantedKind | string, n = 50, seed?: number): PlantedPrompt[] {
  return plantedKind(kind).prompts(n, seed);
}

/** Options for {@link makePlanted}. */
export interface MakePlantedOptions {
  /** Load the written checkpoint and measure the task, clean and ablated, into `metrics` (default true). */
  measure?: boolean;
  executor?: Executor;
}

/**
 * Writes a planted model to `folder` (config.json, model.safetensors, tokenizer.json and
 * planted.json) and returns its description. With `measure` (default), the metrics are measured
 * by loading the written folder, so they describe exactly what any GPT-2 implementation reads.
 */
export async function makePlanted(kind: PlantedKind | string, folder: string, opts: MakePlantedOptions = {}): Promise<PlantedDescription> {
  const impl = plantedKind(kind);
  const { cfg, weights, description } = impl.build();
  writeGpt2Folder(folder, cfg, weights, { lantern_planted: impl.kind });
  if (opts.measure !== false) {
    const model = await loadModel(folder, { executor: opts.executor });
    try {
      description.metrics = await impl.measure(model, description);
    } finally {
      await model.executor.dropWeights(model.weights);
    }
  }
  fs.writeFileSync(path.join(folder, PLANTED_FILE), JSON.stringify(description, null, 2) + '\n');
  return description;
}

/** Reads `planted.json` from a planted model's folder. */
export function readPlantedDescription(folder: string): PlantedDescription {
  const file = path.join(folder, PLANTED_FILE);
  if (!fs.existsSync(file)) throw new LanternError(`${folder} has no ${PLANTED_FILE} (is it a planted model? write one with 'lantern make-planted')`);
  let d: unknown;
  try {
    d = JSON.parse(fs.readFileSync(file, 'utf8'));
  } catch (e) {
    throw new LanternError(`${file} is not valid JSON: ${(e as Error).message}`);
  }
  const kind = (d as Partial<PlantedDescription> | null)?.kind;
  if (typeof d !== 'object' || d === null || typeof kind !== 'string' || !(PLANTED_KINDS as readonly string[]).includes(kind)) {
    throw new LanternError(`${file} is not a planted-model description (kind must be one of ${PLANTED_KINDS.join(', ')})`);
  }
  return d as PlantedDescription;
}

/** A planted model's task tokens (its alphabet, items or names): the random sequences' default pool there. */
export function plantedPool(source: string): number[] | undefined {
  if (!fs.existsSync(path.join(source, PLANTED_FILE))) return undefined;
  const tokens = readPlantedDescription(source).task.tokens;
  const ids = new Set<number>();
  for (const v of Object.values(tokens)) for (const t of Array.isArray(v) ? v : [v]) ids.add(t);
  return ids.size >= 4 ? [...ids] : undefined;
}

/** Loads a planted model and its description. */
export async function loadPlanted(folder: string, opts: { executor?: Executor } = {}): Promise<{ model: HookedTransformer; description: PlantedDescription }> {
  const description = readPlantedDescription(folder);
  const model = await loadModel(folder, { executor: opts.executor });
  return { model, description };
}

/** Measures a planted model's task (clean and with its components ablated): the same metrics as `makePlanted` records. */
export function measurePlanted(model: HookedTransformer, description: PlantedDescription): Promise<Record<string, number>> {
  return plantedKind(description.kind).measure(model, description);
}
