/**
 * Grokking modular addition, after *Progress Measures for Grokking via Mechanistic
 * Interpretability* (Nanda et al., 2023): a one-layer ReLU transformer without LayerNorm reads
 * "a b =" and predicts (a + b) mod p, trained full-batch with AdamW and strong weight decay on a
 * fraction of all p² pairs. It memorises first and generalises long after; the generalising
 * solution works in a few key Fourier frequencies, which the analysis here finds in the
 * embedding and the MLP neurons, and measures with the restricted and excluded losses.
 */
import fs from 'node:fs';
import path from 'node:path';
import { Graph, Value } from '../../engine/graph/ir.js';
import { defaultExecutor } from '../../engine/runtime/executor.js';
import { Tensor } from '../../engine/tensor.js';
import { LanternError } from '../../errors.js';
import { Rng } from '../../rng.js';
import { readFloat32, readSafetensorsHeader, writeSafetensors, WritableTensor } from '../../models/safetensors.js';
import { ToyTrainer } from './fit.js';
import { frequencyShares, keyFrequencies, neuronFrequencies, NeuronFrequency, restrictedExcludedLoss } from './fourier.js';

/** Model, data and optimizer settings of a grokking run. */
export interface GrokkingSettings {
  /** The modulus (prime, so the Fourier analysis has (p − 1) / 2 frequencies). */
  p: number;
  /** Share of the p² pairs trained on; the rest is the test set. */
  trainFraction: number;
  dModel: number;
  nHeads: number;
  dHead: number;
  dMlp: number;
  steps: number;
  lr: number;
  weightDecay: number;
  beta1: number;
  beta2: number;
  seed: number;
  /** Steps between evaluations on every pair (the training curves). */
  evalEvery: number;
  /** Steps between saved checkpoints (0: only the final one). */
  checkpointEvery: number;
  /** Stop once test accuracy reaches this (after at least one evaluation), 1 to never stop early. */
  stopAtTestAccuracy: number;
}

/** The paper's setup: p = 113, 30% train, d_model 128, 4 heads of 32, 512 ReLU neurons, lr 1e-3, weight decay 1. */
export const GROKKING_DEFAULTS: GrokkingSettings = {
  p: 113, trainFraction: 0.3, dModel: 128, nHeads: 4, dHead: 32, dMlp: 512,
  steps: 25000, lr: 1e-3, weightDecay: 1, beta1: 0.9, beta2: 0.98, seed: 0,
  evalEvery: 100, checkpointEvery: 1000, stopAtTestAccuracy: 1,
};

/** The model's parameters by name (float32, row-major). */
export type GrokkingParams = Record<string, Tensor>;

/** Parameter shapes for settings `s`; W_E has p + 1 rows, the last for "=". */
export function grokkingShapes(s: Pick<GrokkingSettings, 'p' | 'dModel' | 'nHeads' | 'dHead' | 'dMlp'>): Record<string, number[]> {
  const hd = s.nHeads * s.dHead;
  return {
    W_E: [s.p + 1, s.dModel], W_pos: [3, s.dModel],
    W_Q: [s.dModel, hd], W_K: [s.dModel, hd], W_V: [s.dModel, hd], W_O: [hd, s.dModel],
    W_in: [s.dModel, s.dMlp], b_in: [s.dMlp], W_out: [s.dMlp, s.dModel], b_out: [s.dModel],
    W_U: [s.dModel, s.p],
  };
}

function checkSettings(s: GrokkingSettings): void {
  const isPrime = (n: number) => n >= 3 && Array.from({ length: Math.floor(Math.sqrt(n)) - 1 }, (_, i) => i + 2).every((d) => n % d !== 0);
  if (!Number.isInteger(s.p) || !isPrime(s.p)) throw new LanternError(`p must be an odd prime, got ${s.p}`);
  if (!(s.trainFraction > 0 && s.trainFraction < 1)) throw new LanternError(`train fraction must be in (0, 1), got ${s.trainFraction}`);
  for (const k of ['dModel', 'nHeads', 'dHead', 'dMlp', 'steps', 'evalEvery'] as const) {
    if (!Number.isInteger(s[k]) || s[k] < 1) throw new LanternError(`${k} must be a positive integer, got ${s[k]}`);
  }
  if (!Number.isInteger(s.checkpointEvery) || s.checkpointEvery < 0) throw new LanternError(`checkpointEvery must be a non-negative integer, got ${s.checkpointEvery}`);
}

/** Initial parameters: N(0, 1/fan_in) matrices, zero biases. */
export function initGrokking(s: GrokkingSettings): GrokkingParams {
  const rng = new Rng(s.seed);
  const out: GrokkingParams = {};
  for (const [name, shape] of Object.entries(grokkingShapes(s))) {
    const n = shape.reduce((a, b) => a + 0 * b, 1) && shape.reduce((a, b) => a * b, 1);
    const std = shape.length === 1 ? 0 : 1 / Math.sqrt(name === 'W_E' || name === 'W_pos' ? s.dModel : shape[0]);
    out[name] = Tensor.f32(new Float32Array(n).map(() => std * rng.normal()), shape);
  }
  return out;
}

/** The pairs (a, b) as indices a·p + b, shuffled by `seed` and split into train and test. */
export function grokkingSplit(p: number, trainFraction: number, seed: number): { train: number[]; test: number[] } {
  const rng = new Rng(seed ^ 0x5eed);
  const all = Array.from({ length: p * p }, (_, i) => i);
  for (let i = all.length - 1; i > 0; i--) {
    const j = rng.int(i + 1);
    [all[i], all[j]] = [all[j], all[i]];
  }
  const n = Math.round(trainFraction * p * p);
  return { train: all.slice(0, n).sort((x, y) => x - y), test: all.slice(n).sort((x, y) => x - y) };
}

/**
 * Logits [N, p] at "=" for pairs a, b [N], and the MLP's ReLU activations [N, d_mlp]. Only the
 * last position's output is read, so its query is one vector, and each key, value and score
 * depends on one token: they are computed once per vocabulary entry and gathered per pair.
 */
export function grokkingLogits(g: Graph, w: Record<string, Value>, a: Value, b: Value, s: Pick<GrokkingSettings, 'p' | 'nHeads' | 'dHead'>): { logits: Value; neurons: Value } {
  const { p, nHeads: H, dHead: dh } = s;
  const tokens = g.slice(w.W_E, 0, 0, p);
  const posA = g.add(tokens, g.slice(w.W_pos, 0, 0, 1)); // [p, d]: "a" at position 0
  const posB = g.add(tokens, g.slice(w.W_pos, 0, 1, 2));
  const eq = g.add(g.slice(w.W_E, 0, p, p + 1), g.slice(w.W_pos, 0, 2, 3)); // [1, d]
  const heads = (x: Value, W: Value) => g.reshape(g.matmul(x, W), [-1, H, dh]);
  const q = heads(eq, w.W_Q); // [1, H, dh]
  const scale = g.scalar(1 / Math.sqrt(dh));
  const score = (x: Value) => g.mul(g.reduceSum(g.mul(heads(x, w.W_K), q), [2], false), scale); // [rows, H]
  const kA = g.gather(score(posA), a); // [N, H]
  const kB = g.gather(score(posB), b);
  const kEq = g.expandLike(score(eq), kA);
  const attn = g.softmax(g.concat([kA, kB, kEq].map((k) => g.unsqueeze(k, [2])), 2), 2); // [N, H, 3]
  const vA = g.gather(heads(posA, w.W_V), a); // [N, H, dh]
  const vB = g.gather(heads(posB, w.W_V), b);
  const vEq = heads(eq, w.W_V);
  const mixed = [vA, vB, vEq].map((v, i) => g.mul(g.slice(attn, 2, i, i + 1), v)).reduce((x, y) => g.add(x, y));
  const resid = g.add(g.matmul(g.reshape(mixed, [-1, H * dh]), w.W_O), eq); // [N, d]
  const pre = g.add(g.matmul(resid, w.W_in), w.b_in);
  const zero = g.scalar(0);
  const neurons = g.where(g.greater(pre, zero), pre, zero);
  const out = g.add(g.add(resid, g.matmul(neurons, w.W_out)), w.b_out);
  return { logits: g.matmul(out, w.W_U), neurons };
}

const pairFeeds = (pairs: number[], p: number) => ({
  a: Tensor.i64(pairs.map((i) => Math.floor(i / p)), [pairs.length]),
  b: Tensor.i64(pairs.map((i) => i % p), [pairs.length]),
  c: Tensor.i64(pairs.map((i) => (Math.floor(i / p) + (i % p)) % p), [pairs.length]),
});

function lossBuilder(s: GrokkingSettings) {
  return (g: Graph, w: Record<string, Value>) => {
    const a = g.input('a', 'int64', ['n']);
    const b = g.input('b', 'int64', ['n']);
    const c = g.input('c', 'int64', ['n']);
    const { logits, neurons } = grokkingLogits(g, w, a, b, s);
    return { loss: g.softmaxCrossEntropy(logits, c), outputs: { logits, neurons } };
  };
}

/** Logits [p², p] (row a·p + b) and neuron activations [p², d_mlp] of a model on every pair. */
export async function grokkingForward(params: GrokkingParams, s: Pick<GrokkingSettings, 'p' | 'nHeads' | 'dHead'>): Promise<{ logits: Float32Array; neurons: Float32Array }> {
  const ex = defaultExecutor();
  const shapes = Object.fromEntries(Object.entries(params).map(([n, t]) => [n, t.shape]));
  const set = await ex.registerWeights(Object.fromEntries(Object.entries(params).map(([n, t]) => [n, Tensor.f32(t.f32.slice(), t.shape)])));
  try {
    const all = Array.from({ length: s.p * s.p }, (_, i) => i);
    const out = await ex.run(JSON.stringify({ grokkingForward: shapes, s: [s.p, s.nHeads, s.dHead] }), () => {
      const g = new Graph();
      const w = Object.fromEntries(Object.entries(shapes).map(([n, sh]) => [n, g.input(n, 'float32', sh)]));
      const r = grokkingLogits(g, w, g.input('a', 'int64', ['n']), g.input('b', 'int64', ['n']), s);
      g.output('logits', r.logits);
      g.output('neurons', r.neurons);
      return g;
    }, (({ c: _c, ...ab }) => ab)(pairFeeds(all, s.p)), { weights: [set] });
    return { logits: out.logits.f32, neurons: out.neurons.f32 };
  } finally {
    await ex.dropWeights(set);
  }
}

/** Mean cross-entropy and accuracy of logits [p², p] on the given pairs. */
export function pairLossAccuracy(logits: Float32Array | Float64Array, pairs: number[], p: number): { loss: number; accuracy: number } {
  let loss = 0;
  let correct = 0;
  for (const i of pairs) {
    const row = logits.subarray(i * p, (i + 1) * p);
    const target = (Math.floor(i / p) + (i % p)) % p;
    let max = -Infinity;
    let arg = 0;
    for (let c = 0; c < p; c++) if (row[c] > max) { max = row[c]; arg = c; }
    let sum = 0;
    for (let c = 0; c < p; c++) sum += Math.exp(row[c] - max);
    loss += Math.log(sum) + max - row[target];
    if (arg === target) correct++;
  }
  return { loss: loss / pairs.length, accuracy: correct / pairs.length };
}

/** One point of the training curves. */
export interface GrokkingCurvePoint {
  step: number;
  trainLoss: number;
  testLoss: number;
  trainAccuracy: number;
  testAccuracy: number;
  /** Σ of squared parameters (weight decay's pull shows here). */
  weightNorm: number;
}

/** What a run produced: settings, split sizes and curves (run.json of its folder). */
export interface GrokkingRun {
  method: 'toy-grokking';
  settings: GrokkingSettings;
  trainPairs: number;
  testPairs: number;
  curves: GrokkingCurvePoint[];
  /** Step at which train accuracy first reached 100%, and test accuracy first reached 99%. */
  trainSolvedAt: number | null;
  testSolvedAt: number | null;
  /** Checkpoint files relative to the folder, by step. */
  checkpoints: { step: number; file: string }[];
  finalStep: number;
}

/** Writes parameters as a safetensors file (F16 halves a committed checkpoint's size). */
export function saveGrokkingParams(file: string, params: GrokkingParams, dtype: 'F32' | 'F16' = 'F32', settings?: GrokkingSettings): void {
  const tensors: Record<string, WritableTensor> = {};
  for (const [name, t] of Object.entries(params)) tensors[name] = { dtype, shape: t.shape, data: t.f32 };
  writeSafetensors(file, tensors, settings ? { settings: JSON.stringify(settings) } : undefined);
}

/** Reads a checkpoint written by {@link saveGrokkingParams}; checks it against the settings' shapes. */
export function loadGrokkingParams(file: string, s: Pick<GrokkingSettings, 'p' | 'dModel' | 'nHeads' | 'dHead' | 'dMlp'>): GrokkingParams {
  if (!fs.existsSync(file)) throw new LanternError(`grokking checkpoint not found: ${file}`);
  const header = readSafetensorsHeader(file);
  const out: GrokkingParams = {};
  for (const [name, shape] of Object.entries(grokkingShapes(s))) {
    const entry = header.tensors.get(name);
    if (!entry) throw new LanternError(`${file}: no tensor ${name}`);
    if (entry.shape.join(',') !== shape.join(',')) throw new LanternError(`${file}: ${name} has shape [${entry.shape}], settings give [${shape}]`);
    out[name] = Tensor.f32(readFloat32(header, name), shape);
  }
  return out;
}

/**
 * Trains a grokking run into `folder` (checkpoints/step-N.safetensors, final.safetensors,
 * run.json), evaluating on every pair each `evalEvery` steps.
 */
export async function trainGrokking(s: GrokkingSettings, folder: string, onEval?: (pt: GrokkingCurvePoint) => void): Promise<GrokkingRun> {
  checkSettings(s);
  const { train, test } = grokkingSplit(s.p, s.trainFraction, s.seed);
  const trainer = await ToyTrainer.create(
    JSON.stringify({ grokking: grokkingShapes(s), H: s.nHeads, dh: s.dHead }), lossBuilder(s), initGrokking(s),
    { lr: s.lr, beta1: s.beta1, beta2: s.beta2, eps: 1e-8, weightDecay: s.weightDecay, clip: Infinity, warmupSteps: 10 },
    (name) => !name.startsWith('b_'),
  );
  fs.mkdirSync(path.join(folder, 'checkpoints'), { recursive: true });
  const run: GrokkingRun = {
    method: 'toy-grokking', settings: s, trainPairs: train.length, testPairs: test.length,
    curves: [], trainSolvedAt: null, testSolvedAt: null, checkpoints: [], finalStep: 0,
  };
  const trainFeeds = pairFeeds(train, s.p);
  const everyFeeds = pairFeeds(Array.from({ length: s.p * s.p }, (_, i) => i), s.p);
  const save = async (step: number) => {
    const file = `checkpoints/step-${String(step).padStart(6, '0')}.safetensors`;
    saveGrokkingParams(path.join(folder, file), await trainer.weights(), 'F32', s);
    run.checkpoints.push({ step, file });
  };
  try {
    for (let step = 0; step <= s.steps; step++) {
      if (step % s.evalEvery === 0 || step === s.steps) {
        const logits = (await trainer.evaluate(everyFeeds, ['logits'])).logits.f32;
        const tr = pairLossAccuracy(logits, train, s.p);
        const te = pairLossAccuracy(logits, test, s.p);
        const weightNorm = Object.values(await trainer.weights()).reduce((acc, t) => acc + t.f32.reduce((x, v) => x + v * v, 0), 0);
        const pt = { step, trainLoss: tr.loss, testLoss: te.loss, trainAccuracy: tr.accuracy, testAccuracy: te.accuracy, weightNorm };
        run.curves.push(pt);
        onEval?.(pt);
        if (run.trainSolvedAt === null && tr.accuracy === 1) run.trainSolvedAt = step;
        if (run.testSolvedAt === null && te.accuracy >= 0.99) run.testSolvedAt = step;
        run.finalStep = step;
        if (te.accuracy >= s.stopAtTestAccuracy) break;
      }
      if (s.checkpointEvery > 0 && step % s.checkpointEvery === 0) await save(step);
      if (step === s.steps) break;
      await trainer.train(trainFeeds);
    }
    if (!run.checkpoints.some((c) => c.step === run.finalStep)) await save(run.finalStep);
    saveGrokkingParams(path.join(folder, 'final.safetensors'), await trainer.weights(), 'F32', s);
    fs.writeFileSync(path.join(folder, 'run.json'), JSON.stringify(run, null, 1));
    return run;
  } finally {
    await trainer.close();
  }
}

/** What a trained grokking model computes, in Fourier terms. */
export interface GrokkingAnalysis {
  trainLoss: number;
  testLoss: number;
  trainAccuracy: number;
  testAccuracy: number;
  /** Share of the token embedding's norm in each frequency 1 … (p − 1)/2. */
  embeddingShares: number[];
  /** Frequencies whose share is well above uniform (see KEY_SHARE_FACTOR), largest first. */
  keyFrequencies: number[];
  /** Share of the embedding's norm in the key frequencies together. */
  keyShare: number;
  /** Neurons (of those with non-negligible variance) whose best frequency is each key frequency. */
  neuronsPerKeyFrequency: Record<number, number>;
  /** Share of active neurons whose best frequency is key and explains at least half their variance. */
  neuronsExplainedByKeys: number;
  /** Each neuron's best frequency and the share of its variance it explains. */
  neurons: NeuronFrequency[];
  restrictedLoss: number;
  excludedLoss: number;
}

/** Fourier analysis, accuracy and progress measures of one set of parameters; `keys` overrides the key frequencies (e.g. the final model's, for curves). */
export async function analyseGrokking(params: GrokkingParams, s: GrokkingSettings, keys?: number[]): Promise<GrokkingAnalysis> {
  const { train, test } = grokkingSplit(s.p, s.trainFraction, s.seed);
  const { logits, neurons } = await grokkingForward(params, s);
  const tr = pairLossAccuracy(logits, train, s.p);
  const te = pairLossAccuracy(logits, test, s.p);
  const embeddingShares = frequencyShares(params.W_E.f32, s.p, s.dModel); // the first p rows: tokens 0 … p − 1
  const keyFreqs = keys ?? keyFrequencies(embeddingShares);
  const freqs = neuronFrequencies(neurons, s.p, s.dMlp);
  const maxVar = Math.max(...freqs.map((f) => f.variance));
  const active = freqs.filter((f) => f.variance > 1e-3 * maxVar);
  const neuronsPerKeyFrequency: Record<number, number> = {};
  for (const k of keyFreqs) neuronsPerKeyFrequency[k] = active.filter((f) => f.frequency === k).length;
  const explained = active.filter((f) => keyFreqs.includes(f.frequency) && f.explained >= 0.5).length;
  return {
    trainLoss: tr.loss, testLoss: te.loss, trainAccuracy: tr.accuracy, testAccuracy: te.accuracy,
    embeddingShares, keyFrequencies: keyFreqs, keyShare: keyFreqs.reduce((a, k) => a + embeddingShares[k - 1], 0),
    neuronsPerKeyFrequency, neuronsExplainedByKeys: active.length ? explained / active.length : 0, neurons: freqs,
    ...restrictedExcludedLoss(logits, s.p, keyFreqs, train, pairLossAccuracy),
  };
}

/** Progress measures at one checkpoint of a run. */
export interface GrokkingProgressPoint {
  step: number;
  trainLoss: number;
  testLoss: number;
  restrictedLoss: number;
  excludedLoss: number;
  keyShare: number;
}

/** Reads a run folder's run.json. */
export function readGrokkingRun(folder: string): GrokkingRun {
  const file = path.join(folder, 'run.json');
  if (!fs.existsSync(file)) throw new LanternError(`${folder} is not a grokking run folder (no run.json)`);
  const run = JSON.parse(fs.readFileSync(file, 'utf8')) as GrokkingRun;
  if (run.method !== 'toy-grokking') throw new LanternError(`${file} is not a grokking run (method ${run.method})`);
  return run;
}

/** Restricted and excluded loss at every checkpoint of a run, with the final model's key frequencies. */
export async function grokkingProgress(folder: string, onCheckpoint?: (step: number) => void): Promise<{ keyFrequencies: number[]; points: GrokkingProgressPoint[] }> {
  const run = readGrokkingRun(folder);
  const s = run.settings;
  const last = run.checkpoints.at(-1);
  if (!last) throw new LanternError(`${folder}: the run saved no checkpoints`);
  const final = await analyseGrokking(loadGrokkingParams(path.join(folder, last.file), s), s);
  const points: GrokkingProgressPoint[] = [];
  for (const c of run.checkpoints) {
    onCheckpoint?.(c.step);
    const a = c === last ? final : await analyseGrokking(loadGrokkingParams(path.join(folder, c.file), s), s, final.keyFrequencies);
    points.push({ step: c.step, trainLoss: a.trainLoss, testLoss: a.testLoss, restrictedLoss: a.restrictedLoss, excludedLoss: a.excludedLoss, keyShare: a.keyShare });
  }
  return { keyFrequencies: final.keyFrequencies, points };
}

/** Reads a checkpoint and the settings saved in its metadata. */
export function readGrokkingCheckpoint(file: string): { params: GrokkingParams; settings: GrokkingSettings } {
  if (!fs.existsSync(file)) throw new LanternError(`grokking checkpoint not found: ${file}`);
  const meta = readSafetensorsHeader(file).metadata.settings;
  if (!meta) throw new LanternError(`${file} has no grokking settings in its metadata (was it written by lantern toy grokking?)`);
  const settings = { ...GROKKING_DEFAULTS, ...JSON.parse(meta) } as GrokkingSettings;
  return { params: loadGrokkingParams(file, settings), settings };
}
