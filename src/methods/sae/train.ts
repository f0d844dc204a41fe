/**
 * SAE training with Lantern's own engine: the SAE forward, its loss (reconstruction plus the
 * architecture's sparsity or auxiliary term), reverse-mode gradients and Adam are one ONNX graph
 * per step, as in src/train/trainer.ts. Parameters and optimizer state stay in the compute thread
 * and are replaced by each step's outputs.
 *
 * Losses as SAELens computes them (mean over rows of the sum over features/dimensions):
 * - standard, transcoder: mse + l1_coefficient * sum_j acts_j * ||W_dec_j||
 * - jumprelu: mse + l0_coefficient * sum_j step(pre_j - threshold_j), with the straight-through
 *   rectangle-kernel gradients of Rajamanoharan et al. for the threshold (log-parameterised)
 * - topk, batchtopk: mse + aux_coefficient * min(dead / k_aux, 1) * ||decode(top-k_aux dead pre) - (x - x̂)||²
 */
import fs from 'node:fs';
import path from 'node:path';
import { LanternError } from '../../errors.js';
import { Graph, Value } from '../../engine/graph/ir.js';
import { gradients } from '../../engine/autodiff/grad.js';
import { Executor, WeightSet, defaultExecutor } from '../../engine/runtime/executor.js';
import { Tensor } from '../../engine/tensor.js';
import { Rng } from '../../rng.js';
import { readFloat32, readSafetensorsHeader, writeSafetensors, WritableTensor } from '../../models/safetensors.js';
import { Sae, SaeConfig, SaeParams, checkSaeConfig, decoderNorms, encodePre, topKMask } from './sae.js';
import type { ActivationChunk, ActivationSource } from './source.js';
import { ShuffleBuffer } from './source.js';

/** Training settings. Coefficients that do not apply to the architecture are ignored. */
export interface SaeTrainConfig {
  /** Rows per step. */
  batch: number;
  steps: number;
  lr: number;
  /** Linear learning-rate warm-up steps. */
  lrWarmupSteps: number;
  /** Linear decay to 0 over the last this many steps. */
  lrDecaySteps: number;
  beta1: number;
  beta2: number;
  eps: number;
  /** standard/transcoder L1 coefficient (weighted by decoder-row norms). */
  l1Coefficient: number;
  /** jumprelu L0 coefficient. */
  l0Coefficient: number;
  /** Steps over which the sparsity coefficient rises linearly from 0. */
  sparsityWarmupSteps: number;
  jumpreluBandwidth: number;
  jumpreluInitThreshold: number;
  /** topk/batchtopk auxiliary-k loss coefficient (0 turns it off). */
  auxKCoefficient: number;
  /** A feature that has not fired for this many steps is dead. */
  deadFeatureWindow: number;
  /** standard/jumprelu/transcoder: every this many steps re-initialise dead features from badly reconstructed inputs (0: never). */
  resampleEvery: number;
  /** Keep decoder rows at unit norm after every step (default for topk and jumprelu; standard SAEs weight their L1 by the norms instead). */
  unitNormDecoder: boolean;
  /** Initial decoder-row norm when not unit-normed (SAELens's decoder_init_norm). */
  decoderInitNorm: number;
  /** Shuffle-buffer capacity, in batches. */
  bufferBatches: number;
  seed: number;
}

/** Defaults for an architecture (SAELens's, where it has one). */
export function defaultTrainConfig(cfg: SaeConfig, over: Partial<SaeTrainConfig> = {}): SaeTrainConfig {
  return {
    batch: 4096, steps: 1000, lr: 3e-4, lrWarmupSteps: 0, lrDecaySteps: 0, beta1: 0.9, beta2: 0.999, eps: 1e-8,
    l1Coefficient: 1, l0Coefficient: 1, sparsityWarmupSteps: 0, jumpreluBandwidth: 0.05, jumpreluInitThreshold: 0.01,
    auxKCoefficient: 1 / 32, deadFeatureWindow: 1000, resampleEvery: 0, unitNormDecoder: cfg.architecture === 'topk' || cfg.architecture === 'jumprelu',
    decoderInitNorm: 0.1, bufferBatches: 8, seed: 0,
    ...over,
  };
}

/** Rows a whole run draws from its source: the shuffle buffer's fill, then one batch per step. */
export const saeTrainingRows = (tc: SaeTrainConfig): number => (tc.bufferBatches + tc.steps) * tc.batch;

/** One step's figures. */
export interface SaeLogEntry {
  step: number;
  loss: number;
  mse: number;
  sparsity: number;
  aux: number;
  /** Mean active features per row. */
  l0: number;
  /** Fraction of features dead (no activation within the dead-feature window). */
  dead: number;
  lr: number;
  rowsPerSecond: number;
}

/** Trainer state beyond the tensors: enough, with the checkpoint's tensors, to continue exactly. */
export interface SaeTrainState {
  step: number;
  /** BatchTopK: the running threshold (mean of each batch's smallest kept activation). */
  batchTopKThreshold: number;
  resamples: number;
  /** expected_average_only_in: the constant sqrt(d_in) / mean ||x|| that inputs are scaled by (folded into the weights of the saved SAE); 1 otherwise. */
  inputScale: number;
  log: SaeLogEntry[];
}

const PARAMS = ['W_enc', 'W_dec', 'b_enc', 'b_dec'];
const paramNames = (cfg: SaeConfig) => (cfg.architecture === 'jumprelu' ? [...PARAMS, 'log_threshold'] : PARAMS);

function trainShapes(cfg: SaeConfig): Record<string, number[]> {
  const s: Record<string, number[]> = { W_enc: [cfg.dIn, cfg.dSae], W_dec: [cfg.dSae, cfg.dOut], b_enc: [cfg.dSae], b_dec: [cfg.dOut] };
  if (cfg.architecture === 'jumprelu') s.log_threshold = [cfg.dSae];
  return s;
}

/** k_aux as SAELens chooses it: half of d_in, at most d_sae. */
const auxK = (cfg: SaeConfig) => Math.min(Math.floor(cfg.dIn / 2), cfg.dSae);

const auxOn = (cfg: SaeConfig, tc: SaeTrainConfig) => (cfg.architecture === 'topk' || cfg.architecture === 'batchtopk') && tc.auxKCoefficient > 0;

/**
 * The training loss graph: inputs x [batch, d_in] (and target [batch, d_out] for transcoders),
 * the parameters, `sparsity_coefficient`, and for the aux-k loss `dead` [d_sae] (1 = dead) and
 * `aux_scale`. Outputs loss, mse, sparsity, aux, l0, fired [d_sae], row_error [batch] and, for
 * batchtopk, `min_kept` (the smallest kept activation).
 */
export function saeLossGraph(cfg: SaeConfig, tc: SaeTrainConfig): { g: Graph; loss: Value; params: Value[] } {
  const g = new Graph();
  const shapes = trainShapes(cfg);
  const inputs = Object.fromEntries(Object.entries(shapes).map(([n, s]) => [n, g.input(n, 'float32', s)]));
  const p: SaeParams = { W_enc: inputs.W_enc, W_dec: inputs.W_dec, b_enc: inputs.b_enc, b_dec: inputs.b_dec };
  const B = tc.batch;
  const x = g.input('x', 'float32', [B, cfg.dIn]);
  const target = cfg.architecture === 'transcoder' ? g.input('target', 'float32', [B, cfg.dOut]) : x;
  const coef = g.input('sparsity_coefficient', 'float32', []);
  const f = (v: number) => g.scalar(v);
  const { pre, output } = encodePre(g, cfg, x, p);
  const positive = (v: Value) => g.cast(g.greater(v, f(0)), 'float32');
  let acts: Value;
  let sparsity: Value = f(0);
  const perRowMean = (v: Value) => g.reduceMean(g.reduceSum(v, [1], false), [0], false);
  switch (cfg.architecture) {
    case 'standard':
    case 'transcoder': {
      acts = g.mul(pre, positive(pre));
      sparsity = g.mul(coef, perRowMean(g.mul(acts, decoderNorms(g, p.W_dec))));
      break;
    }
    case 'topk':
      acts = g.mul(g.mul(pre, positive(pre)), topKMask(g, pre, cfg.k!));
      break;
    case 'batchtopk': {
      const r = g.mul(pre, positive(pre));
      const kept = Math.round(cfg.k! * B);
      const flat = g.reshape(r, [B * cfg.dSae]);
      const [values] = g.topK(flat, kept, 0);
      g.output('min_kept', g.slice(values, 0, kept - 1, kept));
      acts = g.mul(r, g.reshape(topKMask(g, flat, kept), [B, cfg.dSae]));
      break;
    }
    case 'jumprelu': {
      const eps = tc.jumpreluBandwidth;
      const theta = g.exp(inputs.log_threshold);
      const thetaSg = g.stopGradient(theta);
      const above = g.cast(g.greater(pre, theta), 'float32');
      // rectangle((pre - θ) / ε): |pre - θ| < ε / 2, held constant for autodiff
      const rect = g.mul(g.cast(g.greater(pre, g.sub(thetaSg, f(eps / 2))), 'float32'), g.cast(g.greater(g.add(thetaSg, f(eps / 2)), pre), 'float32'));
      const thetaOffset = g.sub(theta, thetaSg); // 0, with d/dθ = 1
      acts = g.add(g.mul(pre, above), g.mul(thetaOffset, g.stopGradient(g.mul(rect, g.div(thetaSg, f(-eps))))));
      const step = g.add(above, g.mul(thetaOffset, g.mul(rect, f(-1 / eps))));
      sparsity = g.mul(coef, perRowMean(step));
      break;
    }
  }
  const recons = g.add(g.gemm(acts!, p.W_dec), p.b_dec);
  const out = output(recons);
  const err = g.sub(out, target);
  const rowError = g.reduceSum(g.mul(err, err), [1], false);
  const mse = g.reduceMean(rowError, [0], false);
  let aux: Value = f(0);
  if (auxOn(cfg, tc)) {
    const dead = g.input('dead', 'float32', [cfg.dSae]);
    const scale = g.input('aux_scale', 'float32', []);
    const residual = g.stopGradient(g.sub(target, out));
    const candidates = g.where(g.greater(dead, f(0.5)), pre, f(-1e30));
    const mask = g.mul(topKMask(g, candidates, auxK(cfg)), dead);
    const auxOut = output(g.add(g.gemm(g.mul(pre, mask), p.W_dec), p.b_dec));
    const auxErr = g.sub(auxOut, residual);
    aux = g.mul(g.mul(scale, f(tc.auxKCoefficient)), perRowMean(g.mul(auxErr, auxErr)));
  }
  const loss = g.add(g.add(mse, sparsity), aux);
  g.output('loss', loss);
  g.output('mse', mse);
  g.output('sparsity', sparsity);
  g.output('aux', aux);
  const active = positive(acts!);
  g.output('l0', perRowMean(active));
  g.output('fired', g.reduceSum(active, [0], false));
  g.output('row_error', rowError);
  return { g, loss, params: paramNames(cfg).map((n) => inputs[n]) };
}

function trainStepGraph(cfg: SaeConfig, tc: SaeTrainConfig): Graph {
  const { g, loss, params } = saeLossGraph(cfg, tc);
  const grads = gradients(g, loss, params);
  const f = (x: number) => g.scalar(x);
  const lr = g.input('lr', 'float32', []);
  const bc1 = g.input('bias_correction1', 'float32', []);
  const bc2 = g.input('bias_correction2', 'float32', []);
  const shapes = trainShapes(cfg);
  paramNames(cfg).forEach((name, i) => {
    const w = params[i];
    const grad = grads[i];
    const m = g.input(`adam.m.${name}`, 'float32', shapes[name]);
    const v = g.input(`adam.v.${name}`, 'float32', shapes[name]);
    const m2 = g.add(g.mul(m, f(tc.beta1)), g.mul(grad, f(1 - tc.beta1)));
    const v2 = g.add(g.mul(v, f(tc.beta2)), g.mul(g.mul(grad, grad), f(1 - tc.beta2)));
    const step = g.div(g.mul(m2, bc1), g.add(g.sqrt(g.mul(v2, bc2)), f(tc.eps)));
    let updated = g.sub(w, g.mul(step, lr));
    if (name === 'W_dec' && tc.unitNormDecoder) updated = g.div(updated, g.unsqueeze(decoderNorms(g, updated), [1]));
    g.output(`new:${name}`, updated);
    g.output(`new:adam.m.${name}`, m2);
    g.output(`new:adam.v.${name}`, v2);
  });
  return g;
}

/** Learning rate at `step`: linear warm-up, constant, linear decay to 0 over the last lrDecaySteps. */
export function saeLearningRate(tc: SaeTrainConfig, step: number): number {
  let lr = tc.lr;
  if (step < tc.lrWarmupSteps) lr *= (step + 1) / tc.lrWarmupSteps;
  const decayStart = tc.steps - tc.lrDecaySteps;
  if (tc.lrDecaySteps > 0 && step >= decayStart) lr *= Math.max(0, 1 - (step - decayStart) / tc.lrDecaySteps);
  return lr;
}

/** Initial parameters: SAELens's Kaiming-uniform decoder, rows scaled to the init norm, encoder = decoder transpose (a transcoder's encoder drawn separately); b_dec the mean of `sample` rows. */
export function initSaeParams(cfg: SaeConfig, tc: SaeTrainConfig, sample: ActivationChunk): Record<string, Float32Array> {
  const rng = new Rng(tc.seed ^ 0x5ae);
  const { dIn, dSae, dOut } = cfg;
  const rows = (fanIn: number, n: number, d: number, norm: number) => {
    const bound = Math.sqrt(6 / fanIn);
    const w = new Float32Array(n * d);
    for (let i = 0; i < w.length; i++) w[i] = (2 * rng.next() - 1) * bound;
    for (let i = 0; i < n; i++) {
      let s = 0;
      for (let j = 0; j < d; j++) s += w[i * d + j] ** 2;
      const c = norm / Math.sqrt(s);
      for (let j = 0; j < d; j++) w[i * d + j] *= c;
    }
    return w;
  };
  const norm = tc.unitNormDecoder ? 1 : tc.decoderInitNorm;
  const W_dec = rows(dOut, dSae, dOut, norm);
  const encRows = cfg.architecture === 'transcoder' ? rows(dIn, dSae, dIn, norm) : W_dec;
  const W_enc = new Float32Array(dIn * dSae);
  for (let i = 0; i < dSae; i++) for (let j = 0; j < dIn; j++) W_enc[j * dSae + i] = encRows[i * dIn + j];
  const b_dec = new Float32Array(dOut);
  const targets = sample.y ?? sample.x;
  if (cfg.architecture !== 'transcoder' || sample.y) {
    for (let r = 0; r < sample.rows; r++) for (let j = 0; j < dOut; j++) b_dec[j] += targets[r * dOut + j] / sample.rows;
  }
  const out: Record<string, Float32Array> = { W_enc, W_dec, b_enc: new Float32Array(dSae), b_dec };
  if (cfg.architecture === 'jumprelu') out.log_threshold = new Float32Array(dSae).fill(Math.log(tc.jumpreluInitThreshold));
  return out;
}

/** sqrt(d_in) / the mean row norm of `chunk`: the scale that gives inputs an average norm of sqrt(d_in). */
function averageNormScale(chunk: ActivationChunk, dIn: number): number {
  let total = 0;
  for (let r = 0; r < chunk.rows; r++) {
    let s = 0;
    for (let i = 0; i < dIn; i++) s += chunk.x[r * dIn + i] ** 2;
    total += Math.sqrt(s);
  }
  return Math.sqrt(dIn) / (total / chunk.rows || 1);
}

/** `chunk` with inputs (and a transcoder's targets) multiplied by `scale`. */
function scaled(chunk: ActivationChunk, scale: number): ActivationChunk {
  if (scale === 1) return chunk;
  return { rows: chunk.rows, x: chunk.x.map((v) => v * scale), y: chunk.y?.map((v) => v * scale) };
}

/** Trains an SAE on a stream of activations; checkpoints resume exactly (same batches, same numbers). */
export class SaeTrainer {
  private params!: WeightSet;
  private readonly signature: string;
  /** Steps since each feature last fired. */
  private sinceFired: Int32Array;

  private constructor(
    readonly cfg: SaeConfig,
    readonly tc: SaeTrainConfig,
    readonly buffer: ShuffleBuffer,
    readonly state: SaeTrainState,
    private readonly executor: Executor,
  ) {
    this.signature = JSON.stringify({ saeTrain: cfg, tc: { ...tc, steps: 0, lr: 0, lrWarmupSteps: 0, lrDecaySteps: 0, resampleEvery: 0, deadFeatureWindow: 0, seed: 0 } });
    this.sinceFired = new Int32Array(cfg.dSae);
  }

  /** A fresh trainer reading `source`, or one continuing the checkpoint folder `checkpoint`. */
  static async create(cfg: SaeConfig, tc: SaeTrainConfig, source: ActivationSource, opts: { checkpoint?: string; executor?: Executor } = {}): Promise<SaeTrainer> {
    checkSaeConfig(cfg);
    if (cfg.architecture === 'jumprelu' && cfg.normalizeActivations !== 'none') throw new LanternError('training a JumpReLU SAE supports normalize_activations none only');
    if (source.dIn !== cfg.dIn) throw new LanternError(`the activations have width ${source.dIn} but the SAE's d_in is ${cfg.dIn}`);
    if (cfg.architecture === 'transcoder' && source.dOut !== cfg.dOut) throw new LanternError(`the target activations have width ${source.dOut} but the transcoder's d_out is ${cfg.dOut}`);
    if (!(tc.batch >= 1 && Number.isInteger(tc.batch))) throw new LanternError(`batch must be a positive integer, got ${tc.batch}`);
    const executor = opts.executor ?? defaultExecutor();
    const buffer = new ShuffleBuffer(source, tc.batch * tc.bufferBatches, tc.seed);
    let tensors: Record<string, Tensor> = {};
    let state: SaeTrainState = { step: 0, batchTopKThreshold: 0, resamples: 0, inputScale: 1, log: [] };
    let sinceFired: Int32Array | undefined;
    const shapes = trainShapes(cfg);
    if (opts.checkpoint) {
      const header = readSafetensorsHeader(path.join(opts.checkpoint, 'state.safetensors'));
      const saved = JSON.parse(fs.readFileSync(path.join(opts.checkpoint, 'state.json'), 'utf8'));
      if (JSON.stringify(saved.cfg) !== JSON.stringify(cfg) || JSON.stringify({ ...saved.tc, steps: 0 }) !== JSON.stringify({ ...tc, steps: 0 })) {
        throw new LanternError(`${opts.checkpoint}: the checkpoint was written with other SAE or training settings`);
      }
      for (const [name, e] of header.tensors) if (!name.startsWith('buffer.')) tensors[name] = Tensor.f32(readFloat32(header, name), e.shape);
      for (const name of Object.keys(shapes)) if (!tensors[name]) throw new LanternError(`${opts.checkpoint}: checkpoint lacks ${name}`);
      sinceFired = Int32Array.from(readFloat32(header, 'buffer.since_fired'));
      buffer.restore(saved.buffer, (name) => readFloat32(header, `buffer.${name}`));
      state = saved.state;
    } else {
      await buffer.fill();
      if (cfg.normalizeActivations === 'expected_average_only_in') state.inputScale = averageNormScale(buffer.peek(), cfg.dIn);
      const init = initSaeParams(cfg, tc, scaled(buffer.peek(), state.inputScale));
      for (const [name, shape] of Object.entries(shapes)) {
        tensors[name] = Tensor.f32(init[name], shape);
        tensors[`adam.m.${name}`] = Tensor.f32(new Float32Array(init[name].length), shape);
        tensors[`adam.v.${name}`] = Tensor.f32(new Float32Array(init[name].length), shape);
      }
    }
    const t = new SaeTrainer(cfg, tc, buffer, state, executor);
    if (sinceFired) t.sinceFired = sinceFired;
    t.params = await executor.registerWeights(tensors);
    return t;
  }

  /** The dead-feature mask now (1 = dead). */
  deadMask(): Float32Array {
    return Float32Array.from(this.sinceFired, (s) => (s >= this.tc.deadFeatureWindow ? 1 : 0));
  }

  /** One optimizer step on the next shuffled batch. */
  async step(): Promise<SaeLogEntry> {
    const { cfg, tc } = this;
    const batch = scaled(await this.buffer.next(tc.batch), this.state.inputScale);
    const s = this.state.step;
    const t = s + 1;
    const lr = saeLearningRate(tc, s);
    const warm = tc.sparsityWarmupSteps > 0 ? Math.min(1, (s + 1) / tc.sparsityWarmupSteps) : 1;
    const coefficient = (cfg.architecture === 'jumprelu' ? tc.l0Coefficient : tc.l1Coefficient) * warm;
    const feeds: Record<string, Tensor> = {
      x: Tensor.f32(batch.x, [tc.batch, cfg.dIn]),
      sparsity_coefficient: Tensor.f32([coefficient], []),
      lr: Tensor.f32([lr], []),
      bias_correction1: Tensor.f32([1 / (1 - tc.beta1 ** t)], []),
      bias_correction2: Tensor.f32([1 / (1 - tc.beta2 ** t)], []),
    };
    if (cfg.architecture === 'transcoder') feeds.target = Tensor.f32(batch.y!, [tc.batch, cfg.dOut]);
    const dead = this.deadMask();
    const deadCount = dead.reduce((a, b) => a + b, 0);
    if (auxOn(cfg, tc)) {
      feeds.dead = Tensor.f32(dead, [cfg.dSae]);
      feeds.aux_scale = Tensor.f32([Math.min(deadCount / auxK(cfg), 1)], []);
    }
    const update: Record<string, { set: WeightSet; name: string }> = {};
    for (const name of Object.keys(this.params.shapes)) update[`new:${name}`] = { set: this.params, name };
    const t0 = performance.now();
    const out = await this.executor.run(this.signature, () => trainStepGraph(cfg, tc), feeds, { weights: [this.params], update });
    const seconds = (performance.now() - t0) / 1000;
    const fired = out.fired.f32;
    for (let j = 0; j < cfg.dSae; j++) this.sinceFired[j] = fired[j] > 0 ? 0 : this.sinceFired[j] + 1;
    if (cfg.architecture === 'batchtopk') {
      // SAELens's running threshold: an exponential mean (rate 0.01) of each batch's smallest kept activation.
      const m = out.min_kept.f32[0];
      if (m > 0) this.state.batchTopKThreshold = 0.99 * this.state.batchTopKThreshold + 0.01 * m;
    }
    const scalar = (n: string) => out[n].f32[0];
    const entry: SaeLogEntry = {
      step: t, loss: scalar('loss'), mse: scalar('mse'), sparsity: scalar('sparsity'), aux: scalar('aux'), l0: scalar('l0'),
      dead: deadCount / cfg.dSae, lr, rowsPerSecond: tc.batch / seconds,
    };
    if (!Number.isFinite(entry.loss)) throw new LanternError(`SAE training diverged at step ${t} (loss ${entry.loss})`);
    this.state.step = t;
    this.state.log.push(entry);
    if (tc.resampleEvery > 0 && t % tc.resampleEvery === 0 && !auxOn(cfg, tc)) await this.resample(batch.x, batch.y, out.row_error.f32);
    return entry;
  }

  /** Trains until `tc.steps`, calling `onStep` after each step (progress, checkpoints). */
  async train(onStep?: (e: SaeLogEntry, trainer: SaeTrainer) => void | Promise<void>): Promise<void> {
    while (this.state.step < this.tc.steps) {
      const e = await this.step();
      await onStep?.(e, this);
    }
  }

  /**
   * Anthropic's resampling: each dead feature's decoder row becomes the direction of an input
   * drawn with probability proportional to its squared reconstruction error, its encoder column
   * that direction scaled to 0.2 × the mean live encoder norm, its b_enc 0 and its Adam state reset.
   */
  private async resample(x: Float32Array, y: Float32Array | undefined, rowError: Float32Array): Promise<void> {
    const { cfg } = this;
    const dead = this.deadMask();
    const deadIdx = [...dead.keys()].filter((j) => dead[j] > 0);
    if (deadIdx.length === 0) return;
    const names = Object.keys(this.params.shapes);
    const all = await this.executor.readWeights(this.params, names);
    const W_enc = all.W_enc.f32, W_dec = all.W_dec.f32, b_enc = all.b_enc.f32, b_dec = all.b_dec.f32;
    const { dIn, dSae, dOut } = cfg;
    let liveNorm = 0, live = 0;
    for (let j = 0; j < dSae; j++) if (!dead[j]) {
      let s = 0;
      for (let i = 0; i < dIn; i++) s += W_enc[i * dSae + j] ** 2;
      liveNorm += Math.sqrt(s);
      live++;
    }
    const encNorm = 0.2 * (live ? liveNorm / live : 1);
    const total = rowError.reduce((a, b) => a + b, 0);
    const rng = new Rng((this.tc.seed + 977 * this.state.step) | 0);
    const decNorm = this.tc.unitNormDecoder ? 1 : this.tc.decoderInitNorm;
    for (const j of deadIdx) {
      let u = rng.next() * total, r = 0;
      while (r < rowError.length - 1 && u >= rowError[r]) u -= rowError[r++];
      const src = cfg.architecture === 'transcoder' ? y! : x;
      const dir = Float32Array.from({ length: dOut }, (_, i) => src[r * dOut + i] - b_dec[i]);
      const inDir = cfg.architecture === 'transcoder' ? x.slice(r * dIn, (r + 1) * dIn) : dir;
      const n = Math.hypot(...dir) || 1, nIn = Math.hypot(...inDir) || 1;
      for (let i = 0; i < dOut; i++) W_dec[j * dOut + i] = (dir[i] / n) * decNorm;
      for (let i = 0; i < dIn; i++) W_enc[i * dSae + j] = (inDir[i] / nIn) * encNorm;
      b_enc[j] = 0;
      for (const p of ['W_enc', 'W_dec', 'b_enc'] as const) for (const mv of ['m', 'v']) {
        const a = all[`adam.${mv}.${p}`].f32;
        if (p === 'W_enc') for (let i = 0; i < dIn; i++) a[i * dSae + j] = 0;
        else if (p === 'W_dec') a.fill(0, j * dOut, (j + 1) * dOut);
        else a[j] = 0;
      }
      this.sinceFired[j] = 0;
    }
    await this.executor.dropWeights(this.params);
    this.params = await this.executor.registerWeights(all);
    this.state.resamples += deadIdx.length;
  }

  /** The SAE as trained so far, in its inference form (JumpReLU thresholds from log_threshold; BatchTopK as JumpReLU with its running threshold). */
  async sae(): Promise<Sae> {
    const w = await this.executor.readWeights(this.params, paramNames(this.cfg));
    const weights = { W_enc: w.W_enc.f32, W_dec: w.W_dec.f32, b_enc: w.b_enc.f32, b_dec: w.b_dec.f32 } as Sae['weights'];
    let cfg = this.cfg;
    if (cfg.architecture === 'jumprelu') weights.threshold = w.log_threshold.f32.map(Math.exp);
    if (cfg.normalizeActivations === 'expected_average_only_in') {
      // SAELens's fold_activation_norm_scaling_factor: the SAE then reads unscaled activations.
      const s = this.state.inputScale;
      weights.W_enc = weights.W_enc.map((v) => v * s);
      weights.W_dec = weights.W_dec.map((v) => v / s);
      weights.b_dec = weights.b_dec.map((v) => v / s);
      cfg = { ...cfg, normalizeActivations: 'none' };
    }
    if (cfg.architecture === 'batchtopk') {
      cfg = { ...cfg, architecture: 'jumprelu', k: undefined };
      weights.threshold = new Float32Array(cfg.dSae).fill(this.state.batchTopKThreshold);
    }
    return new Sae(cfg, weights, this.executor);
  }

  /** Writes parameters, optimizer state, shuffle buffer and counters so training resumes exactly. */
  async saveCheckpoint(folder: string): Promise<void> {
    const all = await this.executor.readWeights(this.params, Object.keys(this.params.shapes));
    const tensors: Record<string, WritableTensor> = {};
    for (const [name, t] of Object.entries(all)) tensors[name] = { dtype: 'F32', shape: t.shape, data: t.f32 };
    tensors['buffer.since_fired'] = { dtype: 'F32', shape: [this.cfg.dSae], data: Float32Array.from(this.sinceFired) };
    const { json, arrays } = this.buffer.snapshot();
    for (const [name, a] of Object.entries(arrays)) tensors[`buffer.${name}`] = { dtype: 'F32', shape: [a.length], data: a };
    const tmp = `${folder}.tmp`;
    fs.rmSync(tmp, { recursive: true, force: true });
    fs.mkdirSync(tmp, { recursive: true });
    writeSafetensors(path.join(tmp, 'state.safetensors'), tensors);
    fs.writeFileSync(path.join(tmp, 'state.json'), JSON.stringify({ cfg: this.cfg, tc: this.tc, state: this.state, buffer: json }));
    fs.rmSync(folder, { recursive: true, force: true });
    fs.renameSync(tmp, folder);
  }

  /** Frees the compute thread's parameters. */
  async release(): Promise<void> {
    await this.executor.dropWeights(this.params);
  }
}
