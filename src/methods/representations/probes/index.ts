/**
 * Probes end to end: train any kind on harvested activations with a held-out split, report
 * accuracy and AUROC, save and reload (with the model, hook and data they were fit on), score later
 * runs, sweep every layer, and project activations on their top principal components.
 */
import fs from 'node:fs';
import { EVD, Matrix } from 'ml-matrix';
import { LanternError } from '../../../errors.js';
import { Rng } from '../../../rng.js';
import type { HookedTransformer } from '../../../models/hooked.js';
import { Tensor } from '../../../engine/tensor.js';
import { ContrastPair, LabelledExample, datasetHash, splitExamples } from '../data.js';
import { activationBatches, hookWidth, Positions, positionsLabel } from '../activations.js';
import { LinearProbe, ProbeKind, PROBE_KINDS, probeScores, rawDirection, trainLinear, trainLogistic, trainMassMean, trainSparse, NeuronRanking } from './fit.js';
import { ccsCredence, trainCcs } from './ccs.js';
import { Rows, accuracy, auroc, columnMeans, select } from './numeric.js';

export * from './fit.js';
export * from './ccs.js';
export { accuracy, auroc, cosine, lbfgs } from './numeric.js';
export type { Rows } from './numeric.js';

/** What probe {@link trainProbe} trains: its kind and that kind's settings. */
export interface ProbeSettings {
  /** The kind of probe. */
  kind: ProbeKind;
  /** Seed for cross-validation folds, the k-sparse validation split and CCS restarts (default 0). */
  seed?: number;
  /** Logistic: L2 strengths to cross-validate. */
  lambdas?: number[];
  /** k-sparse: the k to keep (when not given, the smallest of 1, 2, 4, ... within 0.5% of the best on a validation fifth of the training rows) and the ranking. */
  k?: number;
  /** k-sparse: how neurons are ranked (default 'mean-diff'). */
  ranking?: NeuronRanking;
  /** CCS: restarts. */
  restarts?: number;
}

/** Rows of activations with labels and a train/test split; CCS adds the negative side. */
export interface ProbeData {
  x: Rows;
  labels: Float64Array;
  test: Uint8Array;
  /** CCS: the negative answers' activations, row i pairing with x's row i. */
  neg?: Rows;
}

/** How well a probe classifies a set of rows: accuracy and AUROC (each between 0 and 1) over `n` rows. */
export interface Metrics { accuracy: number; auroc: number; n: number }

/** What {@link trainProbe} returns: the probe, and its metrics on the training and held-out rows. */
export interface TrainedProbe {
  /** The fitted probe. */
  probe: LinearProbe;
  /** Metrics on the rows it was fit on. */
  train: Metrics;
  /** Metrics on the held-out rows. */
  test: Metrics;
  /** k-sparse: held-out accuracy at every k (for reporting; k itself is chosen on training rows). */
  sparsity?: { k: number; neurons: number[]; accuracy: number; auroc: number }[];
}

function rowsWhere(d: ProbeData, test: boolean): { x: Rows; y: Float64Array; neg?: Rows } {
  const idx: number[] = [];
  for (let i = 0; i < d.labels.length; i++) if (Boolean(d.test[i]) === test) idx.push(i);
  return { x: select(d.x, idx), y: Float64Array.from(idx, (i) => d.labels[i]), neg: d.neg ? select(d.neg, idx) : undefined };
}

/** The probe's score per row (CCS: its credence on pairs). */
export function scoreProbe(p: LinearProbe, x: Rows, neg?: Rows): Float64Array {
  if (p.kind === 'ccs') {
    if (!neg) throw new LanternError('a CCS probe scores contrast pairs: give the negative answers too');
    return ccsCredence(p, x, neg);
  }
  return probeScores(p, x);
}

/** Accuracy and AUROC of a probe on rows `x` with labels `y` (for a CCS probe, give the negative answers' rows as `neg`). */
export function metrics(p: LinearProbe, x: Rows, y: ArrayLike<number>, neg?: Rows): Metrics {
  const s = scoreProbe(p, x, neg);
  return { accuracy: accuracy(s, y, p.threshold), auroc: auroc(s, y), n: y.length };
}

/**
 * Trains a probe of the kind in `settings` on the training rows of `data` and measures it on both
 * splits; hyperparameters (logistic L2 strength, k-sparse k) are chosen on training rows only.
 */
export function trainProbe(data: ProbeData, settings: ProbeSettings): TrainedProbe {
  const train = rowsWhere(data, false);
  const test = rowsWhere(data, true);
  if (train.y.length === 0 || test.y.length === 0) throw new LanternError(`the split leaves ${train.y.length} training and ${test.y.length} held-out rows; both need some`);
  const seed = settings.seed ?? 0;
  let probe: LinearProbe;
  let sparsity: TrainedProbe['sparsity'];
  switch (settings.kind) {
    case 'logistic': probe = trainLogistic(train.x, train.y, { lambdas: settings.lambdas, seed }); break;
    case 'linear': probe = trainLinear(train.x, train.y); break;
    case 'mass-mean': probe = trainMassMean(train.x, train.y); break;
    case 'mass-mean-iid': probe = trainMassMean(train.x, train.y, { covariance: true }); break;
    case 'ccs':
      if (!train.neg) throw new LanternError('CCS trains on contrast pairs; harvest them with --contrast');
      probe = trainCcs(train.x, train.neg, train.y, { restarts: settings.restarts, seed });
      break;
    case 'k-sparse': {
      // k is chosen on a validation fifth of the training rows, never on the held-out split.
      let k = settings.k;
      if (!k) {
        const valid = new Rng(seed);
        const isVal = Array.from(train.y, () => valid.next() < 0.2);
        const fitIdx = isVal.flatMap((v, i) => (v ? [] : [i]));
        const valIdx = isVal.flatMap((v, i) => (v ? [i] : []));
        const fitY = fitIdx.map((i) => train.y[i]);
        const valY = valIdx.map((i) => train.y[i]);
        if (new Set(fitY).size < 2 || new Set(valY).size < 2) throw new LanternError(`too few training rows (${train.y.length}) to choose k on a validation split; give --k`);
        const runs = trainSparse(select(train.x, fitIdx), fitY, { ranking: settings.ranking });
        const acc = runs.map((r) => metrics(r.probe, select(train.x, valIdx), valY).accuracy);
        const bestVal = Math.max(...acc);
        k = runs[acc.findIndex((a) => a >= bestVal - 0.005)].k;
      }
      const all = trainSparse(train.x, train.y, { ranking: settings.ranking, maxK: settings.k });
      sparsity = all.map((r) => ({ k: r.k, neurons: r.neurons, ...metrics(r.probe, test.x, test.y) }));
      probe = (all.find((r) => r.k === k) ?? all[all.length - 1]).probe;
      break;
    }
    default: throw new LanternError(`unknown probe kind '${settings.kind}'; use one of ${PROBE_KINDS.join(', ')}`);
  }
  return { probe, train: metrics(probe, train.x, train.y, train.neg), test: metrics(probe, test.x, test.y, test.neg), sparsity };
}

// -------------------------------------------------------------------------------------------------
// Saved probes

/**
 * A probe as saved to JSON by {@link saveProbe}: its parameters, plus the model, hook, positions and
 * data it was fit on, so {@link loadProbe} can check it against a model later.
 */
export interface SavedProbe {
  format: 'lantern-probe';
  kind: ProbeKind;
  model: string;
  hook: string;
  dModel: number;
  width: number;
  positions: string;
  dataset: string;
  datasetHash: string;
  seed: number;
  settings: Record<string, unknown>;
  direction: number[];
  bias: number;
  mean: number[];
  scale: number[];
  threshold: number;
  negMean?: number[];
  negScale?: number[];
  train?: Metrics;
  test?: Metrics;
}

/** A probe (with its metrics, when given a {@link TrainedProbe}) and where it was fit, as a {@link SavedProbe} ready to save. */
export function toSaved(t: TrainedProbe | LinearProbe, ctx: { model: string; hook: string; dModel: number; positions: string; dataset: string; datasetHash: string; seed: number }): SavedProbe {
  const p = 'probe' in t ? t.probe : t;
  return {
    format: 'lantern-probe', kind: p.kind, ...ctx, width: p.direction.length, settings: p.settings,
    direction: Array.from(p.direction), bias: p.bias, mean: Array.from(p.mean), scale: Array.from(p.scale), threshold: p.threshold,
    ...(p.negMean ? { negMean: Array.from(p.negMean), negScale: Array.from(p.negScale!) } : {}),
    ...('probe' in t ? { train: t.train, test: t.test } : {}),
  };
}

/** Writes a saved probe to `file` as JSON. */
export function saveProbe(file: string, saved: SavedProbe): void {
  fs.writeFileSync(file, JSON.stringify(saved) + '\n');
}

/** Reads a saved probe; with a model, checks that the probe's hook exists there with the probe's width. */
export function loadProbe(file: string, model?: HookedTransformer): { saved: SavedProbe; probe: LinearProbe } {
  if (!fs.existsSync(file)) throw new LanternError(`probe file ${file} does not exist`);
  let saved: SavedProbe;
  try {
    saved = JSON.parse(fs.readFileSync(file, 'utf8'));
  } catch (e) {
    throw new LanternError(`probe file ${file} is not JSON (${(e as Error).message})`);
  }
  if (saved?.format !== 'lantern-probe') throw new LanternError(`${file} is not a Lantern probe (train one with lantern probe train)`);
  if (model) {
    if (model.cfg.dModel !== saved.dModel) throw new LanternError(`probe ${file} was fit on a model with d_model ${saved.dModel} (${saved.model}); ${model.source} has d_model ${model.cfg.dModel}`);
    if (hookWidth(model, saved.hook) !== saved.width) throw new LanternError(`probe ${file} reads ${saved.width} values at ${saved.hook}; ${model.source} has ${hookWidth(model, saved.hook)} there`);
  }
  const f64 = (a?: number[]) => (a ? Float64Array.from(a) : undefined);
  return {
    saved,
    probe: {
      kind: saved.kind, direction: f64(saved.direction)!, bias: saved.bias, mean: f64(saved.mean)!, scale: f64(saved.scale)!, threshold: saved.threshold,
      negMean: f64(saved.negMean), negScale: f64(saved.negScale), settings: saved.settings,
    },
  };
}

/** The probe's direction in activation space as a unit vector [width], for steering along it. */
export function steeringDirection(p: LinearProbe): Tensor {
  const raw = rawDirection(p);
  const norm = Math.hypot(...raw);
  return Tensor.f32(Float32Array.from(raw, (v) => v / norm), [raw.length]);
}

// -------------------------------------------------------------------------------------------------
// From texts

/** Labelled texts (or contrast pairs, for CCS) as probe data at several hooks, in one pass of the model. */
export async function harvestProbeData(
  model: HookedTransformer, items: readonly (LabelledExample | ContrastPair)[], opts: { hooks: string[]; positions?: Positions; batchSize?: number; seed?: number; progress?: (done: number, total: number) => void },
): Promise<Map<string, ProbeData>> {
  const split = splitExamples(items, { seed: opts.seed });
  const pairs = split.length > 0 && 'positive' in split[0];
  const texts = pairs ? (split as ContrastPair[]).flatMap((p) => [p.positive, p.negative]) : (split as LabelledExample[]).map((e) => e.text);
  const n = split.length;
  const widths = opts.hooks.map((h) => hookWidth(model, h));
  const pos = opts.hooks.map((_, j) => new Float32Array(n * widths[j]));
  const neg = opts.hooks.map((_, j) => (pairs ? new Float32Array(n * widths[j]) : undefined));
  if ((opts.positions ?? 'last') === 'all') throw new LanternError("probes take one row per example: use --positions last, mean, an index or a token, not 'all'");
  for await (const b of activationBatches(model, texts, { ...opts })) {
    for (let r = 0; r < b.rows; r++) {
      const t = b.example[r];
      const i = pairs ? t >> 1 : t;
      opts.hooks.forEach((h, j) => {
        const w = widths[j];
        (pairs && t % 2 === 1 ? neg[j]! : pos[j]).set(b.acts[h].subarray(r * w, (r + 1) * w), i * w);
      });
    }
  }
  const labels = Float64Array.from(split, (e) => e.label);
  const test = Uint8Array.from(split, (e) => (e.split === 'test' ? 1 : 0));
  return new Map(opts.hooks.map((h, j) => [h, {
    x: { data: pos[j], rows: n, cols: widths[j] }, labels, test,
    ...(pairs ? { neg: { data: neg[j]!, rows: n, cols: widths[j] } } : {}),
  }]));
}

// -------------------------------------------------------------------------------------------------
// Layer sweeps and PCA

/**
 * The result of {@link sweepLayers}, ready to save as JSON: one probe's metrics per hook, the
 * majority-class baseline, and a PCA view of the best layer.
 */
export interface SweepResult {
  model: string;
  method: 'probe-sweep';
  settings: { kind: ProbeKind; positions: string; seed: number; hooks: string[] };
  dataset: string;
  datasetHash: string;
  layers: { hook: string; train: Metrics; test: Metrics }[];
  /** Held-out accuracy of always answering the held-out majority class: the floor to beat. */
  baseline: number;
  /** Rows projected on the top two principal components of the best layer's activations. */
  pca: { hook: string; explained: [number, number]; points: { x: number; y: number; label: number; split: 'train' | 'test' }[] };
}

/** The residual stream after each block: the hooks a sweep probes by default. */
export function residHooks(model: HookedTransformer): string[] {
  return Array.from({ length: model.cfg.nLayers }, (_, l) => `blocks.${l}.hook_resid_post`);
}

/**
 * Trains one probe per hook (default: the residual stream after every block) on labelled texts or
 * contrast pairs, harvesting every hook in one pass of the model, and reports which layer
 * separates the labels best.
 */
export async function sweepLayers(
  model: HookedTransformer, items: readonly (LabelledExample | ContrastPair)[],
  opts: ProbeSettings & { hooks?: string[]; positions?: Positions; batchSize?: number; dataset?: string; progress?: (done: number, total: number) => void },
): Promise<SweepResult> {
  const hooks = opts.hooks ?? residHooks(model);
  const seed = opts.seed ?? 0;
  const data = await harvestProbeData(model, items, { hooks, positions: opts.positions, batchSize: opts.batchSize, seed, progress: opts.progress });
  const layers = hooks.map((hook) => {
    const t = trainProbe(data.get(hook)!, { ...opts, seed });
    return { hook, train: t.train, test: t.test };
  });
  const best = layers.reduce((a, l) => (l.test.accuracy > a.test.accuracy ? l : a));
  const d = data.get(best.hook)!;
  const proj = pca2(d.x);
  let testRows = 0;
  let testPositive = 0;
  d.labels.forEach((l, i) => { if (d.test[i]) { testRows++; testPositive += l > 0.5 ? 1 : 0; } });
  return {
    model: model.source, method: 'probe-sweep', settings: { kind: opts.kind, positions: positionsLabel(opts.positions ?? 'last'), seed, hooks },
    dataset: opts.dataset ?? '', datasetHash: datasetHash(items), layers,
    baseline: Math.max(testPositive, testRows - testPositive) / testRows,
    pca: {
      hook: best.hook, explained: proj.explained,
      points: Array.from({ length: d.x.rows }, (_, i) => ({ x: proj.coords[2 * i], y: proj.coords[2 * i + 1], label: d.labels[i], split: d.test[i] ? 'test' : 'train' })),
    },
  };
}

/** Coordinates of each row on the top two principal components, and the share of variance each explains. */
export function pca2(x: Rows): { coords: Float64Array; components: [Float64Array, Float64Array]; explained: [number, number] } {
  const mean = columnMeans(x);
  const d = x.cols;
  const cov = new Matrix(d, d);
  const c = new Float64Array(d);
  for (let i = 0; i < x.rows; i++) {
    for (let j = 0; j < d; j++) c[j] = x.data[i * d + j] - mean[j];
    for (let a = 0; a < d; a++) { const ca = c[a] / x.rows; for (let b = a; b < d; b++) cov.set(a, b, cov.get(a, b) + ca * c[b]); }
  }
  for (let a = 0; a < d; a++) for (let b = 0; b < a; b++) cov.set(a, b, cov.get(b, a));
  const evd = new EVD(cov, { assumeSymmetric: true });
  const values = evd.realEigenvalues;
  const order = values.map((_, i) => i).sort((a, b) => values[b] - values[a]);
  const total = values.reduce((s, v) => s + Math.max(v, 0), 0) || 1;
  const comp = (k: number) => Float64Array.from(evd.eigenvectorMatrix.getColumn(order[k]));
  const pcs: [Float64Array, Float64Array] = [comp(0), comp(1)];
  const coords = new Float64Array(2 * x.rows);
  for (let i = 0; i < x.rows; i++) {
    for (let k = 0; k < 2; k++) {
      let s = 0;
      for (let j = 0; j < d; j++) s += (x.data[i * d + j] - mean[j]) * pcs[k][j];
      coords[2 * i + k] = s;
    }
  }
  return { coords, components: pcs, explained: [Math.max(values[order[0]], 0) / total, Math.max(values[order[1]], 0) / total] };
}
