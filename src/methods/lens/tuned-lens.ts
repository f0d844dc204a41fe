/**
 * Tuned lens (Belrose et al., 2023): one affine translator per layer, h -> h + A_l h + b_l,
 * trained so that decoding the translated residual stream through the model's own final
 * LayerNorm and unembedding matches the model's final next-token distribution (KL(final || lens)).
 * A_l and b_l start at zero, so an untrained lens is the logit lens; the final residual stream is
 * never translated, so the lens at the last layer is the model's own output.
 *
 * Training runs as one ONNX graph per step (forward, KL, reverse-mode gradients wrt the
 * translators); the model stays frozen and Adam updates the translators in JavaScript (they are
 * small: n_layers x d_model^2). Residual streams are collected from the model once, up front.
 * Saved next to the model as `tuned-lens.safetensors`: `layers.{l}.weight` [d_model, d_model]
 * (A_l, applied as h @ A_l) and `layers.{l}.bias` [d_model], with the settings and held-out figures
 * in the metadata.
 */
import fs from 'node:fs';
import path from 'node:path';
import { LanternError } from '../../errors.js';
import { Graph, Value } from '../../engine/graph/ir.js';
import { gradients } from '../../engine/autodiff/grad.js';
import { Tensor } from '../../engine/tensor.js';
import type { HookedTransformer } from '../../models/hooked.js';
import { readout } from '../../models/forward.js';
import { readFloat32, readSafetensorsHeader, writeSafetensors } from '../../models/safetensors.js';
import { Rng } from '../../rng.js';

/** File name of a model's tuned lens, next to its weights. */
export const TUNED_LENS_FILE = 'tuned-lens.safetensors';

/** A tuned lens (Belrose et al. 2023): one affine translator per layer. */
export interface TunedLens {
  nLayers: number;
  dModel: number;
  /** A_l [d, d] row-major (h @ A_l), b_l [d], for l = 0 .. nLayers-1 (the residual stream before block l). */
  weights: Float32Array[];
  biases: Float32Array[];
  metadata: Record<string, string>;
}

/** The identity lens (every translator zero): the logit lens. */
export function identityLens(nLayers: number, dModel: number): TunedLens {
  return {
    nLayers, dModel,
    weights: Array.from({ length: nLayers }, () => new Float32Array(dModel * dModel)),
    biases: Array.from({ length: nLayers }, () => new Float32Array(dModel)),
    metadata: {},
  };
}

/** h + h @ A_l + b_l for rows of `x` ([n, d] row-major), as used outside the training graph. */
export function translate(lens: TunedLens, layer: number, x: Float32Array): Float32Array {
  const d = lens.dModel;
  if (layer >= lens.nLayers) return x; // the final residual stream: identity
  const A = lens.weights[layer];
  const b = lens.biases[layer];
  const out = new Float32Array(x.length);
  for (let r = 0; r < x.length / d; r++) {
    const row = x.subarray(r * d, (r + 1) * d);
    const o = out.subarray(r * d, (r + 1) * d);
    for (let j = 0; j < d; j++) o[j] = row[j] + b[j];
    for (let i = 0; i < d; i++) {
      const xi = row[i];
      if (xi === 0) continue;
      const Ai = A.subarray(i * d, (i + 1) * d);
      for (let j = 0; j < d; j++) o[j] += xi * Ai[j];
    }
  }
  return out;
}

/**
 * Applies the lens to a logit-lens stack [L + 1, seq, d] (resid_pre of each block, then the final
 * residual stream).
 */
export function translateStack(lens: TunedLens, stack: Tensor): Tensor {
  const [n, seq, d] = stack.shape;
  if (d !== lens.dModel || n !== lens.nLayers + 1) throw new LanternError(`tuned lens is for ${lens.nLayers} layers of width ${lens.dModel}; the model has ${n - 1} of width ${d}`);
  const out = new Float32Array(stack.size);
  for (let l = 0; l < n; l++) out.set(translate(lens, l, stack.f32.subarray(l * seq * d, (l + 1) * seq * d)), l * seq * d);
  return Tensor.f32(out, stack.shape);
}

// ---------------------------------------------------------------------------------------------
// Saving and loading

/** Where a model folder's tuned lens lives. */
export function tunedLensPath(folder: string): string {
  return path.join(folder, TUNED_LENS_FILE);
}

/** Writes a tuned lens as safetensors. */
export function saveTunedLens(file: string, lens: TunedLens): void {
  const tensors: Parameters<typeof writeSafetensors>[1] = {};
  const d = lens.dModel;
  lens.weights.forEach((w, l) => (tensors[`layers.${l}.weight`] = { dtype: 'F32', shape: [d, d], data: w }));
  lens.biases.forEach((b, l) => (tensors[`layers.${l}.bias`] = { dtype: 'F32', shape: [d], data: b }));
  writeSafetensors(file, tensors, { format: 'lantern-tuned-lens', n_layers: String(lens.nLayers), d_model: String(d), ...lens.metadata });
}

/** Reads a tuned lens (a file, or a model folder holding tuned-lens.safetensors) and checks it fits `model`. */
export function loadTunedLens(fileOrFolder: string, model?: HookedTransformer): TunedLens {
  const file = fs.existsSync(fileOrFolder) && fs.statSync(fileOrFolder).isDirectory() ? tunedLensPath(fileOrFolder) : fileOrFolder;
  if (!fs.existsSync(file)) throw new LanternError(`no tuned lens at ${file}; train one with 'lantern tuned-lens train --model <folder>'`);
  const header = readSafetensorsHeader(file);
  const nLayers = Number(header.metadata.n_layers);
  const dModel = Number(header.metadata.d_model);
  if (header.metadata.format !== 'lantern-tuned-lens' || !(nLayers > 0) || !(dModel > 0)) throw new LanternError(`${file} is not a Lantern tuned lens (metadata format/n_layers/d_model missing)`);
  if (model && (model.cfg.nLayers !== nLayers || model.cfg.dModel !== dModel)) {
    throw new LanternError(`${file} is a tuned lens for ${nLayers} layers of width ${dModel}; the model has ${model.cfg.nLayers} of width ${model.cfg.dModel}`);
  }
  const weights: Float32Array[] = [];
  const biases: Float32Array[] = [];
  for (let l = 0; l < nLayers; l++) {
    weights.push(readFloat32(header, `layers.${l}.weight`));
    biases.push(readFloat32(header, `layers.${l}.bias`));
  }
  const { format: _f, n_layers: _n, d_model: _d, ...metadata } = header.metadata;
  return { nLayers, dModel, weights, biases, metadata };
}

// ---------------------------------------------------------------------------------------------
// Residual streams of text

/** Residual streams of many positions of text, the training data of a tuned lens. */
export interface Residuals {
  /** `[L + 1, n, d]`: resid_pre of each block and the final residual stream, for n token positions. */
  stack: Float32Array;
  /** The next token after each position (-1 where there is none). */
  next: Int32Array;
  n: number;
}

/** Residual streams of `tokens` (a stream), in windows of `seq`, `batch` windows per run. */
export async function collectResiduals(model: HookedTransformer, tokens: ArrayLike<number>, opts: { seq?: number; batch?: number; maxTokens?: number } = {}): Promise<Residuals> {
  const L = model.cfg.nLayers;
  const d = model.cfg.dModel;
  const seq = Math.min(opts.seq ?? 128, model.cfg.nCtx);
  const batch = opts.batch ?? 8;
  const total = Math.min(tokens.length, opts.maxTokens ?? tokens.length);
  const windows = Math.floor(total / seq);
  if (windows < 1) throw new LanternError(`need at least ${seq} tokens of text, got ${total}`);
  const n = windows * seq;
  const stack = new Float32Array((L + 1) * n * d);
  const next = new Int32Array(n).fill(-1);
  const names = [...Array.from({ length: L }, (_, l) => `blocks.${l}.hook_resid_pre`), `blocks.${L - 1}.hook_resid_post`];
  for (let w0 = 0; w0 < windows; w0 += batch) {
    const rows: number[][] = [];
    for (let w = w0; w < Math.min(windows, w0 + batch); w++) rows.push(Array.from({ length: seq }, (_, i) => tokens[w * seq + i]));
    const { cache } = await model.runWithCache(rows, names);
    names.forEach((name, l) => stack.set(cache.get(name).f32, (l * n + w0 * seq) * d));
    rows.forEach((r, b) => r.forEach((_, i) => {
      const at = (w0 + b) * seq + i;
      if (i + 1 < seq) next[at] = r[i + 1];
      else if ((w0 + b + 1) * seq < tokens.length) next[at] = tokens[(w0 + b + 1) * seq];
    }));
  }
  return { stack, next, n };
}

// ---------------------------------------------------------------------------------------------
// Graphs

/** The model's readout (final norm, unembedding) then log-softmax, on rows [..., d]. */
function decode(g: Graph, model: HookedTransformer, x: Value): Value {
  return g.logSoftmax(readout(g, model.cfg, x), -1);
}

/**
 * Inputs: tl.resid [L, n, d], tl.final [n, d], tl.A [L, d, d], tl.b [L, 1, d], tl.next [n, 1].
 * Outputs per layer: mean KL(final || lens) and cross-entropy against the next token, for the
 * tuned lens; with `grad`, also the gradient of the summed mean KL wrt A and b.
 */
function lensGraph(model: HookedTransformer, grad: boolean): Graph {
  const { nLayers: L, dModel: d } = model.cfg;
  const g = new Graph();
  const resid = g.input('tl.resid', 'float32', [L, 'n', d]);
  const final = g.input('tl.final', 'float32', ['n', d]);
  const A = g.identity(g.input('tl.A', 'float32', [L, d, d]));
  const b = g.identity(g.input('tl.b', 'float32', [L, 1, d]));
  const next = g.input('tl.next', 'int64', ['n', 1]);
  const translated = g.add(g.add(resid, g.matmul(resid, A)), b); // [L, n, d]
  const lp = decode(g, model, translated); // [L, n, V]
  const target = decode(g, model, final); // [n, V]
  const p = g.exp(target);
  const klPerToken = g.reduceSum(g.mul(p, g.sub(target, lp)), [2], false); // [L, n]
  const kl = g.reduceMean(klPerToken, [1], false); // [L]
  const nextIdx = g.expandLike(g.unsqueeze(next, [0]), g.slice(lp, 2, 0, 1)); // [L, n, 1]
  const ce = g.neg(g.reduceMean(g.reshape(g.gatherElements(lp, nextIdx, 2), [L, -1]), [1], false));
  g.output('tl.kl', kl);
  g.output('tl.ce', ce);
  if (grad) {
    const loss = g.reduceSum(kl, [0], false);
    const [dA, db] = gradients(g, loss, [A, b]);
    g.output('tl.dA', dA);
    g.output('tl.db', db);
  }
  return g;
}

function packLens(lens: TunedLens) {
  const { nLayers: L, dModel: d } = lens;
  const A = new Float32Array(L * d * d);
  const b = new Float32Array(L * d);
  lens.weights.forEach((w, l) => A.set(w, l * d * d));
  lens.biases.forEach((x, l) => b.set(x, l * d));
  return { A: Tensor.f32(A, [L, d, d]), b: Tensor.f32(b, [L, 1, d]) };
}

function batchFeeds(model: HookedTransformer, res: Residuals, rows: number[]): Record<string, Tensor> {
  const { nLayers: L, dModel: d } = model.cfg;
  const n = rows.length;
  const resid = new Float32Array(L * n * d);
  const final = new Float32Array(n * d);
  const next = new BigInt64Array(n);
  rows.forEach((r, i) => {
    for (let l = 0; l < L; l++) resid.set(res.stack.subarray((l * res.n + r) * d, (l * res.n + r + 1) * d), (l * n + i) * d);
    final.set(res.stack.subarray((L * res.n + r) * d, (L * res.n + r + 1) * d), i * d);
    next[i] = BigInt(Math.max(0, res.next[r]));
  });
  return { 'tl.resid': Tensor.f32(resid, [L, n, d]), 'tl.final': Tensor.f32(final, [n, d]), 'tl.next': new Tensor('int64', next, [n, 1]) };
}

/** How close a lens's predictions are to the model's final ones, per layer (KL divergence). */
export interface LensEvaluation {
  /** Labels '0_pre' .. '{L-1}_pre', 'final_post'. */
  layers: string[];
  /** Per layer: mean KL(final || lens) in nats, and cross-entropy (nats) / perplexity against the actual next token. */
  logitLens: { kl: number[]; ce: number[]; perplexity: number[] };
  tunedLens: { kl: number[]; ce: number[]; perplexity: number[] };
  tokens: number;
}

/** Per-layer KL and perplexity of the logit lens and of `lens` on residual streams (positions with a next token). */
export async function evaluateLens(model: HookedTransformer, lens: TunedLens, res: Residuals, opts: { batch?: number } = {}): Promise<LensEvaluation> {
  const L = model.cfg.nLayers;
  const rows = Array.from({ length: res.n }, (_, i) => i).filter((i) => res.next[i] >= 0);
  const batch = opts.batch ?? 256;
  const run = async (which: TunedLens) => {
    const { A, b } = packLens(which);
    const kl = new Array<number>(L + 1).fill(0);
    const ce = new Array<number>(L + 1).fill(0);
    for (let i = 0; i < rows.length; i += batch) {
      const chunk = rows.slice(i, i + batch);
      const out = await model.executor.run(JSON.stringify({ method: 'tuned-lens', cfg: model.cfg, grad: false }), () => lensGraph(model, false),
        { ...batchFeeds(model, res, chunk), 'tl.A': A, 'tl.b': b }, { weights: [model.weights] });
      const w = chunk.length / rows.length;
      for (let l = 0; l < L; l++) { kl[l] += w * out['tl.kl'].f32[l]; ce[l] += w * out['tl.ce'].f32[l]; }
    }
    // The final layer is the model itself: KL 0 and the model's own cross-entropy (from the last translator's graph run, layer L equals the model's output).
    return { kl, ce };
  };
  const logit = await run(identityLens(L, model.cfg.dModel));
  const tuned = await run(lens);
  const finalCe = await modelCrossEntropy(model, res, rows, batch);
  for (const r of [logit, tuned]) { r.kl[L] = 0; r.ce[L] = finalCe; }
  const ppl = (ce: number[]) => ce.map(Math.exp);
  return {
    layers: [...Array.from({ length: L }, (_, l) => `${l}_pre`), 'final_post'],
    logitLens: { ...logit, perplexity: ppl(logit.ce) },
    tunedLens: { ...tuned, perplexity: ppl(tuned.ce) },
    tokens: rows.length,
  };
}

/** The model's own next-token cross-entropy: the final residual stream decoded, via the same graph with every layer fed the final stream. */
async function modelCrossEntropy(model: HookedTransformer, res: Residuals, rows: number[], batch: number): Promise<number> {
  const L = model.cfg.nLayers;
  const d = model.cfg.dModel;
  const { A, b } = packLens(identityLens(L, d));
  let ce = 0;
  for (let i = 0; i < rows.length; i += batch) {
    const chunk = rows.slice(i, i + batch);
    const feeds = batchFeeds(model, res, chunk);
    const n = chunk.length;
    const resid = new Float32Array(L * n * d);
    for (let l = 0; l < L; l++) resid.set(feeds['tl.final'].f32, l * n * d);
    feeds['tl.resid'] = Tensor.f32(resid, [L, n, d]);
    const out = await model.executor.run(JSON.stringify({ method: 'tuned-lens', cfg: model.cfg, grad: false }), () => lensGraph(model, false),
      { ...feeds, 'tl.A': A, 'tl.b': b }, { weights: [model.weights] });
    ce += (chunk.length / rows.length) * out['tl.ce'].f32[0];
  }
  return ce;
}

/** Tuned lens training settings: steps, learning rate, text, seed. */
export interface TrainLensOptions {
  steps?: number;
  /** Token positions per step (default 256). */
  tokensPerStep?: number;
  lr?: number;
  weightDecay?: number;
  seed?: number;
  /** Called after each step with (step, steps, summed KL over layers). */
  progress?: (step: number, steps: number, loss: number) => void;
}

/**
 * Trains a tuned lens on residual streams (Adam with decoupled weight decay towards the identity,
 * i.e. towards A = 0, b = 0; cosine learning-rate decay). Deterministic in the seed.
 */
export async function trainTunedLens(model: HookedTransformer, res: Residuals, opts: TrainLensOptions = {}): Promise<TunedLens> {
  const { nLayers: L, dModel: d } = model.cfg;
  const steps = opts.steps ?? 200;
  const perStep = opts.tokensPerStep ?? 256;
  const lr0 = opts.lr ?? 1e-3;
  const wd = opts.weightDecay ?? 1e-3;
  const seed = opts.seed ?? 0;
  for (const [name, v] of [['steps', steps], ['tokens per step', perStep]] as const) {
    if (!Number.isInteger(v) || v < 1) throw new LanternError(`${name} must be a positive integer, got ${v}`);
  }
  if (!(lr0 > 0)) throw new LanternError(`learning rate must be positive, got ${lr0}`);
  const lens = identityLens(L, d);
  const { A, b } = packLens(lens);
  const params = [A.f32, b.f32];
  const m = params.map((p) => new Float32Array(p.length));
  const v = params.map((p) => new Float32Array(p.length));
  const [beta1, beta2, eps] = [0.9, 0.999, 1e-8];
  const rng = new Rng(seed >>> 0);
  const signature = JSON.stringify({ method: 'tuned-lens', cfg: model.cfg, grad: true });
  let lastLoss = NaN;
  for (let step = 0; step < steps; step++) {
    const rows = Array.from({ length: perStep }, () => rng.int(res.n));
    const out = await model.executor.run(signature, () => lensGraph(model, true), { ...batchFeeds(model, res, rows), 'tl.A': A, 'tl.b': b }, { weights: [model.weights] });
    const grads = [out['tl.dA'].f32, out['tl.db'].f32];
    lastLoss = out['tl.kl'].f32.reduce((a, x) => a + x, 0);
    const lr = lr0 * 0.5 * (1 + Math.cos((Math.PI * step) / steps));
    const t = step + 1;
    params.forEach((p, k) => {
      const gk = grads[k];
      const mk = m[k];
      const vk = v[k];
      for (let i = 0; i < p.length; i++) {
        mk[i] = beta1 * mk[i] + (1 - beta1) * gk[i];
        vk[i] = beta2 * vk[i] + (1 - beta2) * gk[i] * gk[i];
        const mh = mk[i] / (1 - beta1 ** t);
        const vh = vk[i] / (1 - beta2 ** t);
        p[i] -= lr * (mh / (Math.sqrt(vh) + eps) + wd * p[i]);
      }
    });
    opts.progress?.(step + 1, steps, lastLoss);
  }
  for (let l = 0; l < L; l++) {
    lens.weights[l] = A.f32.slice(l * d * d, (l + 1) * d * d);
    lens.biases[l] = b.f32.slice(l * d, (l + 1) * d);
  }
  lens.metadata = { steps: String(steps), tokens_per_step: String(perStep), lr: String(lr0), weight_decay: String(wd), seed: String(seed), final_train_kl_sum: lastLoss.toFixed(6) };
  return lens;
}
