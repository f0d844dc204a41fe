/**
 * Steering vectors: where they come from (ActAdd's prompt pair, CAA's contrast pairs, RepE's
 * reading vector, a probe, a file) and how they are saved. A vector lives at one residual hook:
 * one row is added at every position; ActAdd's several rows are added at consecutive prompt
 * positions from `start`.
 */
import fs from 'node:fs';
import { EVD, Matrix } from 'ml-matrix';
import { LanternError } from '../../errors.js';
import type { HookedTransformer } from '../../models/hooked.js';
import { activationBatches, Positions, positionsLabel } from '../representations/activations.js';
import { ContrastPair, datasetHash, LabelledExample, requireTwoClasses } from '../representations/data.js';
import { loadProbe, steeringDirection } from '../representations/probes/index.js';

/** Where a steering vector came from. */
export type SteeringMethod = 'actadd' | 'caa' | 'reading' | 'probe' | 'mean-difference';

/** A steering vector at one hook, as saved to JSON by {@link saveSteeringVector}. */
export interface SteeringVector {
  format: 'lantern-steering-vector';
  method: SteeringMethod;
  model: string;
  hook: string;
  dModel: number;
  /** One row: added at every position. Several (ActAdd): row i is added at prompt position `start + i`. */
  rows: number[][];
  /** ActAdd: the first prompt position the rows are added at. */
  start?: number;
  /** Hash of the prompts or pairs it was made from ('' for a given vector). */
  datasetHash: string;
  settings: Record<string, unknown>;
}

/** The residual stream before block `layer` (the hook ActAdd, CAA and reading vectors use by default). */
export function layerHook(model: HookedTransformer, layer: number): string {
  const L = model.cfg.nLayers;
  if (!Number.isInteger(layer) || layer < 0 || layer >= L) throw new LanternError(`layer ${layer} is outside the model's layers [0, ${L - 1}]`);
  return `blocks.${layer}.hook_resid_pre`;
}

/** Refuses a hook that is not a [batch, pos, d_model] residual-width activation (naming the nearest hooks for an unknown one). */
export function checkSteeringHook(model: HookedTransformer, hook: string): void {
  model.checkHook(hook);
  const shape = model.hookShapes.get(hook)!;
  if (shape.length !== 3 || shape[1] !== 'seq' || Number(shape[2]) !== model.cfg.dModel) {
    throw new LanternError(`hook '${hook}' has shape [${shape.join(', ')}]; steering vectors live at [batch, pos, d_model] hooks such as blocks.0.hook_resid_pre`);
  }
}

/** Checks a vector against a model: its width is the model's d_model, its hook exists there, its values are finite. */
export function checkSteeringVector(model: HookedTransformer, v: SteeringVector, what = 'steering vector'): void {
  if (v.dModel !== model.cfg.dModel || v.rows.some((r) => r.length !== model.cfg.dModel)) {
    throw new LanternError(`${what} has d_model ${v.rows[0]?.length ?? v.dModel} (from ${v.model}); ${model.source} has d_model ${model.cfg.dModel}`);
  }
  checkSteeringHook(model, v.hook);
  if (v.rows.length === 0) throw new LanternError(`${what} has no rows`);
  for (const r of v.rows) if (!r.every(Number.isFinite)) throw new LanternError(`${what} holds a value that is not a finite number`);
}

/** The last-axis rows of one prompt's activation at `hook`, [seq][d_model]. */
async function promptActivations(model: HookedTransformer, tokens: number[], hook: string): Promise<number[][]> {
  const { cache } = await model.runWithCache([tokens], [hook]);
  const a = cache.get(hook).f32;
  const D = model.cfg.dModel;
  return Array.from({ length: tokens.length }, (_, t) => Array.from(a.subarray(t * D, (t + 1) * D)));
}

/**
 * ActAdd (Turner et al., *Activation Addition*): the difference of two prompts' activations at a
 * hook, position by position. The shorter prompt is padded with space tokens, as the paper does,
 * so every position of the longer one has a partner. Added at the steered prompt's positions from
 * `start` (default 0, the front, as in the paper).
 */
export async function actAddVector(model: HookedTransformer, positive: string, negative: string, opts: { hook: string; start?: number }): Promise<SteeringVector> {
  checkSteeringHook(model, opts.hook);
  if (!positive || !negative) throw new LanternError('ActAdd needs two non-empty prompts');
  const a = model.toTokens(positive);
  const b = model.toTokens(negative);
  const space = model.encode(' ');
  if (a.length !== b.length && space.length !== 1) throw new LanternError('ActAdd pads the shorter prompt with spaces, and this tokenizer has no single space token; give prompts of equal length in tokens');
  const n = Math.max(a.length, b.length);
  const pad = (t: number[]) => [...t, ...Array(n - t.length).fill(space[0])];
  const [pa, pb] = [await promptActivations(model, pad(a), opts.hook), await promptActivations(model, pad(b), opts.hook)];
  return {
    format: 'lantern-steering-vector', method: 'actadd', model: model.source, hook: opts.hook, dModel: model.cfg.dModel,
    rows: pa.map((r, t) => r.map((v, j) => v - pb[t][j])), start: opts.start ?? 0,
    datasetHash: datasetHash([{ positive, negative, label: 1 }]), settings: { positive, negative, tokens: n },
  };
}

/** Each pair's activation difference (the right answer minus the wrong one, by `label`) at a hook and position. */
export async function pairDifferences(model: HookedTransformer, pairs: readonly ContrastPair[], opts: { hook: string; positions?: Positions; batchSize?: number }): Promise<Float64Array[]> {
  checkSteeringHook(model, opts.hook);
  if (pairs.length === 0) throw new LanternError('give at least one contrast pair');
  if ((opts.positions ?? 'last') === 'all') throw new LanternError("steering vectors take one row per prompt: use positions last, mean, an index or a token, not 'all'");
  const D = model.cfg.dModel;
  const texts = pairs.flatMap((p) => [p.positive, p.negative]);
  const acts = new Float64Array(texts.length * D);
  for await (const batch of activationBatches(model, texts, { hooks: [opts.hook], positions: opts.positions ?? 'last', batchSize: opts.batchSize })) {
    for (let r = 0; r < batch.rows; r++) acts.set(batch.acts[opts.hook].subarray(r * D, (r + 1) * D), batch.example[r] * D);
  }
  return pairs.map((p, i) => {
    const sign = p.label === 0 ? -1 : 1;
    return Float64Array.from({ length: D }, (_, j) => sign * (acts[2 * i * D + j] - acts[(2 * i + 1) * D + j]));
  });
}

/**
 * CAA (Rimsky et al., *Contrastive Activation Addition*): the mean activation difference over
 * contrast pairs (each oriented by its label), added at every position during generation.
 */
export async function caaVector(model: HookedTransformer, pairs: readonly ContrastPair[], opts: { hook: string; positions?: Positions; batchSize?: number }): Promise<SteeringVector> {
  const diffs = await pairDifferences(model, pairs, opts);
  const D = model.cfg.dModel;
  const mean = Array.from({ length: D }, (_, j) => diffs.reduce((s, d) => s + d[j], 0) / diffs.length);
  return {
    format: 'lantern-steering-vector', method: 'caa', model: model.source, hook: opts.hook, dModel: D, rows: [mean],
    datasetHash: datasetHash(pairs), settings: { pairs: pairs.length, positions: positionsLabel(opts.positions ?? 'last') },
  };
}

/**
 * A reading vector (Zou et al., *Representation Engineering*): the first principal component of
 * the pairs' activation differences, a unit vector. The component's sign is arbitrary, so it is
 * set from the labels: the right answer's side projects positively on average.
 */
export async function readingVector(model: HookedTransformer, pairs: readonly ContrastPair[], opts: { hook: string; positions?: Positions; batchSize?: number }): Promise<SteeringVector & { explained: number }> {
  const diffs = await pairDifferences(model, pairs, opts);
  const { direction, explained } = firstComponent(diffs);
  return {
    format: 'lantern-steering-vector', method: 'reading', model: model.source, hook: opts.hook, dModel: model.cfg.dModel, rows: [Array.from(direction)],
    datasetHash: datasetHash(pairs), settings: { pairs: pairs.length, positions: positionsLabel(opts.positions ?? 'last') }, explained,
  };
}

/**
 * The top eigenvector of Σ dᵢdᵢᵀ over oriented differences (uncentred: a pair's difference is
 * the signal itself, and RepE's random pair flips make the centred and uncentred forms agree),
 * signed so the mean projection is positive, and the share of the second moment it explains.
 */
export function firstComponent(diffs: readonly Float64Array[]): { direction: Float64Array; explained: number } {
  const D = diffs[0].length;
  const m = new Matrix(D, D);
  for (const d of diffs) for (let a = 0; a < D; a++) for (let b = a; b < D; b++) m.set(a, b, m.get(a, b) + d[a] * d[b]);
  for (let a = 0; a < D; a++) for (let b = 0; b < a; b++) m.set(a, b, m.get(b, a));
  // ml-matrix's symmetric eigendecomposition: a maintained numerical routine, not worth writing again.
  const evd = new EVD(m, { assumeSymmetric: true });
  const values = evd.realEigenvalues;
  let top = 0;
  for (let i = 1; i < values.length; i++) if (values[i] > values[top]) top = i;
  const v = Float64Array.from(evd.eigenvectorMatrix.getColumn(top));
  const mean = diffs.reduce((s, d) => s + d.reduce((t, x, j) => t + x * v[j], 0), 0);
  if (mean < 0) v.forEach((x, j) => (v[j] = -x));
  const total = values.reduce((s, x) => s + Math.max(x, 0), 0) || 1;
  return { direction: v, explained: Math.max(values[top], 0) / total };
}

/** Per-token reading scores of any text: each position's activation at the vector's hook projected on its (unit-normalised) first row. */
export async function readingScores(model: HookedTransformer, text: string, vector: SteeringVector): Promise<{ tokens: string[]; scores: number[] }> {
  checkSteeringVector(model, vector);
  const ids = model.toTokens(text);
  const acts = await promptActivations(model, ids, vector.hook);
  const u = vector.rows[0];
  const norm = Math.hypot(...u) || 1;
  return { tokens: model.tokenStrings(ids), scores: acts.map((r) => r.reduce((s, x, j) => s + x * u[j], 0) / norm) };
}

/** A saved probe's direction (unit vector in activation space) at the probe's own hook. */
export function probeVector(model: HookedTransformer, file: string): SteeringVector {
  const { saved, probe } = loadProbe(file, model);
  checkSteeringHook(model, saved.hook);
  return {
    format: 'lantern-steering-vector', method: 'probe', model: model.source, hook: saved.hook, dModel: model.cfg.dModel,
    rows: [Array.from(steeringDirection(probe).f32)], datasetHash: saved.datasetHash, settings: { probe: file, kind: saved.kind, dataset: saved.dataset },
  };
}

/** Writes a steering vector as JSON. */
export function saveSteeringVector(file: string, v: SteeringVector): void {
  fs.writeFileSync(file, JSON.stringify(v) + '\n');
}

/** Reads a steering vector saved by {@link saveSteeringVector}; with a model, checks d_model and hook against it. */
export function loadSteeringVector(file: string, model?: HookedTransformer): SteeringVector {
  if (!fs.existsSync(file)) throw new LanternError(`steering vector file ${file} does not exist`);
  let v: SteeringVector;
  try {
    v = JSON.parse(fs.readFileSync(file, 'utf8'));
  } catch (e) {
    throw new LanternError(`steering vector file ${file} is not JSON (${(e as Error).message})`);
  }
  if (v?.format !== 'lantern-steering-vector' || !Array.isArray(v.rows)) throw new LanternError(`${file} is not a Lantern steering vector (make one with lantern steer --save-vector)`);
  if (model) checkSteeringVector(model, v, `steering vector ${file}`);
  return v;
}

/**
 * The mean difference of labelled texts' activations (label 1 minus label 0) at a hook and
 * position: the difference-in-means direction (with harmful and harmless prompts, the refusal
 * direction of Arditi et al.).
 */
export async function meanDifferenceVector(model: HookedTransformer, examples: readonly LabelledExample[], opts: { hook: string; positions?: Positions; batchSize?: number }): Promise<SteeringVector> {
  checkSteeringHook(model, opts.hook);
  requireTwoClasses(examples.map((e) => e.label));
  if ((opts.positions ?? 'last') === 'all') throw new LanternError("steering vectors take one row per prompt: use positions last, mean, an index or a token, not 'all'");
  const D = model.cfg.dModel;
  const sums = [new Float64Array(D), new Float64Array(D)];
  const counts = [0, 0];
  for await (const batch of activationBatches(model, examples.map((e) => e.text), { hooks: [opts.hook], positions: opts.positions ?? 'last', batchSize: opts.batchSize })) {
    for (let r = 0; r < batch.rows; r++) {
      const c = examples[batch.example[r]].label > 0.5 ? 1 : 0;
      counts[c]++;
      for (let j = 0; j < D; j++) sums[c][j] += batch.acts[opts.hook][r * D + j];
    }
  }
  return {
    format: 'lantern-steering-vector', method: 'mean-difference', model: model.source, hook: opts.hook, dModel: D,
    rows: [Array.from({ length: D }, (_, j) => sums[1][j] / counts[1] - sums[0][j] / counts[0])],
    datasetHash: datasetHash(examples), settings: { examples: examples.length, positions: positionsLabel(opts.positions ?? 'last') },
  };
}

/** A saved steering vector or a saved probe's direction, told apart by the file's format. */
export function vectorFromFile(model: HookedTransformer, file: string): SteeringVector {
  if (!fs.existsSync(file)) throw new LanternError(`vector file ${file} does not exist`);
  let format: unknown;
  try {
    format = JSON.parse(fs.readFileSync(file, 'utf8'))?.format;
  } catch (e) {
    throw new LanternError(`vector file ${file} is not JSON (${(e as Error).message})`);
  }
  if (format === 'lantern-probe') return probeVector(model, file);
  return loadSteeringVector(file, model);
}
