/**
 * Training a GPT-2 with Lantern's own engine: forward, reverse-mode gradients, global-norm
 * clipping and AdamW, all in one ONNX graph per step. Parameters and optimizer state live in the
 * compute thread and are replaced in place by each step's outputs, so a step moves nothing but
 * the token batch and a few scalars across threads.
 */
import fs from 'node:fs';
import path from 'node:path';
import { Graph, Value } from '../engine/graph/ir.js';
import { appendAdamW, adamwFeeds, adamwState } from './adamw.js';
import { Executor, WeightSet, defaultExecutor } from '../engine/runtime/executor.js';
import { Tensor } from '../engine/tensor.js';
import { LanternError } from '../errors.js';
import type { ModelConfig } from '../models/config.js';
import { modelInputs, positionFeeds, B, T } from '../models/inputs.js';
import { buildForward, weightShapes } from '../models/forward.js';
import { normalSampler } from '../models/random.js';
import { Rng } from '../rng.js';
import type { HookedTransformer } from '../models/hooked.js';
import { readSafetensorsHeader, readFloat32, writeSafetensors, WritableTensor } from '../models/safetensors.js';

export interface TrainConfig {
  batch: number;
  seq: number;
  steps: number;
  warmupSteps: number;
  lr: number;
  minLr: number;
  beta1: number;
  beta2: number;
  eps: number;
  weightDecay: number;
  clip: number;
  seed: number;
  /** Dropout probability in the first phase (see SchedulePhase.dropout). */
  dropout?: number;
  /**
   * Further phases after the first `steps`, each with its own warmup and cosine decay: how a
   * finished run is trained on (a warm restart) while its checkpoint stays a valid prefix.
   */
  then?: SchedulePhase[];
}

export interface SchedulePhase {
  steps: number;
  warmupSteps: number;
  lr: number;
  minLr: number;
  /**
   * GPT-2's embedding and residual dropout during this phase (default 0): the probability of
   * zeroing each element of the embeddings (token + position) and of every block's attention and
   * MLP outputs. Attention-probability dropout is left out: its masks are seq times larger.
   */
  dropout?: number;
}

/** Steps over all phases. */
export function totalSteps(tc: TrainConfig): number {
  return tc.steps + (tc.then ?? []).reduce((n, p) => n + p.steps, 0);
}

/** True when a run with settings `saved` is the start of a run with settings `tc` (same run, maybe fewer phases). */
export function isPrefixOf(saved: TrainConfig, tc: TrainConfig): boolean {
  const phases = saved.then ?? [];
  const { then: _a, ...savedBase } = saved;
  const { then: later = [], ...base } = tc;
  return JSON.stringify(savedBase) === JSON.stringify(base) && phases.every((p, i) => JSON.stringify(p) === JSON.stringify(later[i]));
}

/** The phase that `step` falls in, and the step's offset within it (the last phase runs on). */
function phaseAt(tc: TrainConfig, step: number): { phase: SchedulePhase; offset: number } {
  let start = 0;
  for (const p of [tc, ...(tc.then ?? [])]) {
    if (step < start + p.steps || p === (tc.then?.at(-1) ?? tc)) return { phase: p, offset: step - start };
    start += p.steps;
  }
  throw new Error('unreachable');
}

/** Per phase: linear warmup, then cosine decay to minLr at the phase's last step. */
export function learningRate(tc: TrainConfig, step: number): number {
  const { phase, offset } = phaseAt(tc, step);
  return phaseRate(phase, offset);
}

export function dropoutAt(tc: TrainConfig, step: number): number {
  return phaseAt(tc, step).phase.dropout ?? 0;
}

/** Where dropout applies, in the order its masks are drawn: the embeddings, then each block's attention and MLP outputs. */
export function dropoutHooks(cfg: ModelConfig): string[] {
  return ['blocks.0.hook_resid_pre', ...Array.from({ length: cfg.nLayers }, (_, l) => [`blocks.${l}.hook_attn_out`, `blocks.${l}.hook_mlp_out`]).flat()];
}

/** Inverted dropout: each element kept with probability 1 - p and then scaled by 1 / (1 - p), so evaluation needs no rescaling. */
export function dropoutMask(rng: Rng, size: number, p: number): Float32Array {
  const kept = 1 / (1 - p);
  const mask = new Float32Array(size);
  for (let i = 0; i < size; i++) mask[i] = rng.next() < p ? 0 : kept;
  return mask;
}

function phaseRate(p: SchedulePhase, step: number): number {
  if (step < p.warmupSteps) return (p.lr * (step + 1)) / p.warmupSteps;
  const progress = Math.min(1, (step - p.warmupSteps) / Math.max(1, p.steps - p.warmupSteps));
  return p.minLr + 0.5 * (p.lr - p.minLr) * (1 + Math.cos(Math.PI * progress));
}

/** GPT-2's initialisation: N(0, 0.02), residual-writing projections scaled by 1/sqrt(2 n_layers), biases 0, LayerNorm 1. */
export function initGpt2Weights(cfg: ModelConfig, seed: number): Record<string, Tensor> {
  const normal = normalSampler(seed);
  const out: Record<string, Tensor> = {};
  for (const [name, shape] of Object.entries(weightShapes(cfg))) {
    const n = shape.reduce((p, q) => p * q, 1);
    const a = new Float32Array(n);
    if (/\.w$/.test(name)) a.fill(1);
    else if (shape.length > 1) {
      const std = /(attn\.W_O|mlp\.W_out)$/.test(name) ? 0.02 / Math.sqrt(2 * cfg.nLayers) : 0.02;
      for (let i = 0; i < n; i++) a[i] = std * normal();
    }
    out[name] = Tensor.f32(a, shape);
  }
  return out;
}

/** Mean next-token cross-entropy (nats) of logits [batch, seq, vocab] against targets [batch, seq]. */
export function crossEntropy(g: Graph, logits: Value, targets: Value, vocab: number): Value {
  return g.softmaxCrossEntropy(g.reshape(logits, [-1, vocab]), g.reshape(targets, [-1]));
}

/** Mean next-token cross-entropy; with `dropout`, the dropout hooks' activations are multiplied by fed masks (`dropout:<hook>`, [batch, seq, d_model]). */
export function lossGraph(cfg: ModelConfig, dropout = false): { g: Graph; loss: Value } {
  const g = new Graph();
  const masked = new Set(dropout ? dropoutHooks(cfg) : []);
  const hook = (name: string, v: Value) => (masked.has(name) ? g.mul(v, g.input(`dropout:${name}`, 'float32', [B, T, cfg.dModel])) : v);
  const model = buildForward(g, cfg, modelInputs(g), hook);
  const loss = crossEntropy(g, model.logits, g.input('targets', 'int64', [B, T]), cfg.dVocab);
  g.output('loss', loss);
  return { g, loss };
}

function trainStepGraph(cfg: ModelConfig, tc: TrainConfig, dropout: boolean): Graph {
  const { g, loss } = lossGraph(cfg, dropout);
  const params = Object.keys(weightShapes(cfg)).map((n) => g.inputs.find((v) => v.name === n)!);
  appendAdamW(g, loss, params, tc);
  return g;
}

/** Token windows (seq + 1 tokens each) -> inputs [n, seq] and next-token targets [n, seq]. */
function windowFeeds(windows: { tokens: Uint16Array | number[] }[], seq: number): Record<string, Tensor> {
  const n = windows.length;
  const ids = new BigInt64Array(n * seq);
  const targets = new BigInt64Array(n * seq);
  windows.forEach((w, b) => {
    for (let i = 0; i < seq; i++) {
      ids[b * seq + i] = BigInt(w.tokens[i]);
      targets[b * seq + i] = BigInt(w.tokens[i + 1]);
    }
  });
  return { tokens: new Tensor('int64', ids, [n, seq]), targets: new Tensor('int64', targets, [n, seq]), ...positionFeeds(seq) };
}

/**
 * Mean next-token cross-entropy (nats) of a model over consecutive non-overlapping windows of
 * `stream` (each window of seq + 1 tokens scores seq predictions).
 */
export async function streamLoss(
  executor: Executor, cfg: ModelConfig, params: WeightSet, stream: Uint16Array,
  opts: { seq: number; batch: number; maxWindows?: number },
): Promise<{ loss: number; tokens: number }> {
  const { seq, batch } = opts;
  const count = Math.min(opts.maxWindows ?? Infinity, Math.floor((stream.length - 1) / seq));
  if (count < 1) throw new LanternError(`stream of ${stream.length} tokens is shorter than one window of ${seq}`);
  let total = 0;
  for (let w = 0; w < count; w += batch) {
    const windows = Array.from({ length: Math.min(batch, count - w) }, (_, b) => ({ tokens: stream.subarray((w + b) * seq, (w + b) * seq + seq + 1) }));
    const out = await executor.run(JSON.stringify({ eval: cfg }), () => lossGraph(cfg).g, windowFeeds(windows, seq), { weights: [params], fetch: ['loss'] });
    total += out.loss.toArray()[0] * windows.length;
  }
  return { loss: total / count, tokens: count * seq };
}

/**
 * Mean next-token cross-entropy (nats) with strided windows, as Hugging Face's perplexity guide
 * computes it for fixed-context models: windows of `window` tokens start every `stride` tokens,
 * and each scores only the tokens the one before did not, so every token after the first window
 * is predicted from at least window - stride tokens of context (streamLoss's consecutive windows
 * give a window's first tokens almost none).
 */
export async function slidingLoss(model: HookedTransformer, stream: Uint16Array, window: number, stride: number): Promise<{ loss: number; tokens: number }> {
  if (!Number.isInteger(stride) || stride < 1 || stride > window) throw new LanternError(`stride ${stride} must be an integer in [1, ${window}]`);
  if (stream.length < 2) throw new LanternError('a stream of fewer than 2 tokens has nothing to predict');
  let total = 0;
  let scored = 0; // tokens 1..scored have been scored
  for (let start = 0; scored < stream.length - 1; start += stride) {
    const end = Math.min(start + window, stream.length);
    const { logprobs } = await model.tokenLogprobs(Array.from(stream.subarray(start, end)), 0);
    // logprobs[i] is log p(token start + i + 1 | tokens start .. start + i)
    for (let t = scored + 1; t < end; t++) total -= logprobs[t - start - 1];
    scored = end - 1;
  }
  return { loss: total / (stream.length - 1), tokens: stream.length - 1 };
}

export interface LogEntry { step: number; loss: number; gradNorm: number; lr: number; tokensPerSecond: number }
export interface EvalEntry { step: number; loss: number; tokens: number }

export interface TrainState {
  step: number;
  rng: number;
  tokensSeen: number;
  log: LogEntry[];
  evals: EvalEntry[];
}

export class Trainer {
  /** Compiled-graph signatures of a step without and with dropout. */
  private readonly signatures: [string, string];

  private constructor(
    readonly cfg: ModelConfig,
    readonly tc: TrainConfig,
    private readonly params: WeightSet,
    readonly state: TrainState,
    private readonly executor: Executor,
  ) {
    this.signatures = [false, true].map((dropout) => JSON.stringify({ train: cfg, tc, dropout })) as [string, string];
  }

  /** Fresh weights and optimizer state, or those of `checkpoint` when given. */
  static async create(cfg: ModelConfig, tc: TrainConfig, checkpoint?: string, executor = defaultExecutor()): Promise<Trainer> {
    [tc, ...(tc.then ?? [])].forEach((p, i) => {
      const d = p.dropout ?? 0;
      if (!(d >= 0 && d < 1)) throw new LanternError(`phase ${i + 1}: dropout must be in [0, 1), got ${p.dropout}`);
    });
    const shapes = weightShapes(cfg);
    let tensors: Record<string, Tensor>;
    let state: TrainState = { step: 0, rng: tc.seed, tokensSeen: 0, log: [], evals: [] };
    if (checkpoint) {
      const header = readSafetensorsHeader(path.join(checkpoint, 'state.safetensors'));
      tensors = {};
      for (const [name] of header.tensors) tensors[name] = Tensor.f32(readFloat32(header, name), header.tensors.get(name)!.shape);
      for (const name of Object.keys(shapes)) if (!tensors[name]) throw new LanternError(`${checkpoint}: checkpoint lacks ${name}`);
      state = JSON.parse(fs.readFileSync(path.join(checkpoint, 'state.json'), 'utf8')).state;
    } else {
      tensors = { ...initGpt2Weights(cfg, tc.seed), ...adamwState(shapes) };
    }
    return new Trainer(cfg, tc, await executor.registerWeights(tensors), state, executor);
  }

  /** One optimizer step on random windows of `stream`; returns the loss before the update. */
  async step(stream: Uint16Array): Promise<LogEntry> {
    const { batch, seq } = this.tc;
    if (stream.length < seq + 2) throw new LanternError(`training stream of ${stream.length} tokens is shorter than one window`);
    const rng = new Rng(this.state.rng);
    const windows = Array.from({ length: batch }, () => {
      const o = rng.int(stream.length - seq - 1);
      return { tokens: stream.subarray(o, o + seq + 1) };
    });
    const p = dropoutAt(this.tc, this.state.step);
    const masks: Record<string, Tensor> = {};
    for (const name of p > 0 ? dropoutHooks(this.cfg) : []) masks[`dropout:${name}`] = Tensor.f32(dropoutMask(rng, batch * seq * this.cfg.dModel, p), [batch, seq, this.cfg.dModel]);
    this.state.rng = rng.state;
    const t = this.state.step + 1;
    const lr = learningRate(this.tc, this.state.step);
    const feeds = {
      ...masks,
      ...windowFeeds(windows, seq),
      ...adamwFeeds(t, lr, this.tc),
    };
    const update: Record<string, { set: WeightSet; name: string }> = {};
    for (const name of Object.keys(this.params.shapes)) update[`new:${name}`] = { set: this.params, name };
    const t0 = performance.now();
    const out = await this.executor.run(this.signatures[p > 0 ? 1 : 0], () => trainStepGraph(this.cfg, this.tc, p > 0), feeds, { weights: [this.params], update });
    const seconds = (performance.now() - t0) / 1000;
    this.state.step = t;
    this.state.tokensSeen += batch * seq;
    const entry = { step: t, loss: out.loss.toArray()[0], gradNorm: out.grad_norm.toArray()[0], lr, tokensPerSecond: (batch * seq) / seconds };
    if (!Number.isFinite(entry.loss)) throw new LanternError(`training diverged at step ${t} (loss ${entry.loss})`);
    this.state.log.push(entry);
    return entry;
  }

  /** Held-out loss (see streamLoss), recorded in the training state. */
  async evaluate(stream: Uint16Array, maxWindows = Infinity): Promise<EvalEntry> {
    const r = await streamLoss(this.executor, this.cfg, this.params, stream, { seq: this.tc.seq, batch: this.tc.batch, maxWindows });
    const entry = { step: this.state.step, ...r };
    this.state.evals.push(entry);
    return entry;
  }

  /** Model weights (float32 copies, Lantern names). */
  async weights(): Promise<Record<string, Tensor>> {
    return this.executor.readWeights(this.params, Object.keys(weightShapes(this.cfg)));
  }

  /** Writes weights, optimizer state and the trainer state so training can resume exactly. */
  async saveCheckpoint(folder: string, meta: Record<string, unknown> = {}): Promise<void> {
    const all = await this.executor.readWeights(this.params, Object.keys(this.params.shapes));
    const tmp = `${folder}.tmp`;
    fs.rmSync(tmp, { recursive: true, force: true });
    fs.mkdirSync(tmp, { recursive: true });
    const tensors: Record<string, WritableTensor> = {};
    for (const [name, t] of Object.entries(all)) tensors[name] = { dtype: 'F32', shape: t.shape, data: t.f32 };
    writeSafetensors(path.join(tmp, 'state.safetensors'), tensors);
    fs.writeFileSync(path.join(tmp, 'state.json'), JSON.stringify({ cfg: this.cfg, tc: this.tc, state: this.state, ...meta }));
    // Swap in the new checkpoint only once it is complete, so an interrupted save loses nothing.
    fs.rmSync(folder, { recursive: true, force: true });
    fs.renameSync(tmp, folder);
  }
}
