/**
 * Sparse autoencoders as SAELens defines them: `W_enc` [d_in, d_sae], `W_dec` [d_sae, d_out]
 * (d_out = d_in except for transcoders), `b_enc` [d_sae], `b_dec` [d_out], and `threshold`
 * [d_sae] for JumpReLU. The forward is built as a Lantern graph (so encodes of many rows run as
 * one ONNX matmul and training differentiates the same code):
 *
 *   sae_in   = norm_in(x) - b_dec * apply_b_dec_to_input
 *   pre      = sae_in @ W_enc + b_enc                      (hook_sae_acts_pre)
 *   acts     = activation(pre)                             (hook_sae_acts_post)
 *   recons   = acts @ W_dec + b_dec                        (hook_sae_recons)
 *   out      = norm_out(recons)
 *
 * with activation ReLU (standard, transcoder), ReLU of the k largest (topk), or
 * pre * (pre > threshold) (jumprelu; batch-top-k SAEs are saved as JumpReLU, as SAELens does).
 */
import { LanternError } from '../../errors.js';
import { Graph, Value } from '../../engine/graph/ir.js';
import { Executor, WeightSet, defaultExecutor } from '../../engine/runtime/executor.js';
import { Tensor } from '../../engine/tensor.js';

/** SAE architectures (SAELens names). `batchtopk` is a training architecture; its inference form is `jumprelu`. */
export type SaeArchitecture = 'standard' | 'topk' | 'batchtopk' | 'jumprelu' | 'transcoder';
/** SAELens's activation normalisation modes. */
export type ActivationNormalization = 'none' | 'expected_average_only_in' | 'constant_norm_rescale' | 'layer_norm';

/** Every architecture Lantern runs. */
export const SAE_ARCHITECTURES: readonly SaeArchitecture[] = ['standard', 'topk', 'batchtopk', 'jumprelu', 'transcoder'];
/** Every activation normalisation mode. */
export const NORMALIZATIONS: readonly ActivationNormalization[] = ['none', 'expected_average_only_in', 'constant_norm_rescale', 'layer_norm'];

/** An SAE's shape and behaviour (SAELens's cfg.json fields, camel-cased). */
export interface SaeConfig {
  architecture: SaeArchitecture;
  dIn: number;
  dSae: number;
  /** Output width: d_in, except for transcoders (the MLP output's width). */
  dOut: number;
  /** topk: features kept per row; batchtopk: mean features per row over a batch. */
  k?: number;
  /** topk: choose the k largest of pre * ||W_dec row|| and divide them back out before decoding. */
  rescaleActsByDecoderNorm?: boolean;
  applyBDecToInput: boolean;
  normalizeActivations: ActivationNormalization;
  /** The hook whose activations the SAE reads, e.g. blocks.2.hook_resid_pre. */
  hookName: string;
  /** Transcoders: the hook whose activations they predict (e.g. blocks.2.hook_mlp_out). */
  hookNameOut?: string;
  modelName?: string;
  /** Where the SAE came from (folder, Hub id + path), for saved results. */
  source?: string;
}

/** An SAE's parameters, row-major float32 with SAELens's shapes. */
export interface SaeWeights {
  W_enc: Float32Array;
  W_dec: Float32Array;
  b_enc: Float32Array;
  b_dec: Float32Array;
  threshold?: Float32Array;
}

/** Graph values of the SAE parameters. */
export interface SaeParams {
  W_enc: Value;
  W_dec: Value;
  b_enc: Value;
  b_dec: Value;
  /** JumpReLU: the threshold (training feeds exp(log_threshold)). */
  threshold?: Value;
}

/** Outputs of one SAE forward, named after SAELens's hook points. */
export interface SaeForward {
  sae_input: Value;
  acts_pre: Value;
  acts_post: Value;
  recons: Value;
  out: Value;
}

/** The parameter shapes of an SAE with this config. */
export function saeParamShapes(cfg: SaeConfig): Record<string, number[]> {
  const shapes: Record<string, number[]> = { W_enc: [cfg.dIn, cfg.dSae], W_dec: [cfg.dSae, cfg.dOut], b_enc: [cfg.dSae], b_dec: [cfg.dOut] };
  if (cfg.architecture === 'jumprelu') shapes.threshold = [cfg.dSae];
  return shapes;
}

/** Checks a config's fields, naming the first wrong one. */
export function checkSaeConfig(cfg: SaeConfig): void {
  if (!SAE_ARCHITECTURES.includes(cfg.architecture)) {
    throw new LanternError(`unknown SAE architecture '${cfg.architecture}'; Lantern runs ${SAE_ARCHITECTURES.join(', ')}`);
  }
  if (!NORMALIZATIONS.includes(cfg.normalizeActivations)) {
    throw new LanternError(`unknown normalize_activations '${cfg.normalizeActivations}'; expected one of ${NORMALIZATIONS.join(', ')}`);
  }
  for (const [name, v] of [['d_in', cfg.dIn], ['d_sae', cfg.dSae], ['d_out', cfg.dOut]] as const) {
    if (!Number.isInteger(v) || v < 1) throw new LanternError(`SAE ${name} must be a positive integer, got ${v}`);
  }
  if (cfg.architecture !== 'transcoder' && cfg.dOut !== cfg.dIn) throw new LanternError(`a ${cfg.architecture} SAE reconstructs its input: d_out ${cfg.dOut} must equal d_in ${cfg.dIn}`);
  if (cfg.architecture === 'transcoder' && cfg.applyBDecToInput) throw new LanternError('apply_b_dec_to_input is not supported for transcoders (b_dec has the output width)');
  if (cfg.architecture === 'topk' || cfg.architecture === 'batchtopk') {
    const k = cfg.k ?? NaN;
    if (!(k > 0 && k <= cfg.dSae) || (cfg.architecture === 'topk' && !Number.isInteger(k))) throw new LanternError(`${cfg.architecture} SAE needs k in [1, d_sae=${cfg.dSae}], got ${cfg.k}`);
  }
}

const relu = (g: Graph, x: Value) => g.where(g.greater(x, g.scalar(0)), x, g.scalar(0));

/** Row norms of W_dec, [d_sae]. */
export function decoderNorms(g: Graph, W_dec: Value): Value {
  return g.sqrt(g.reduceSum(g.mul(W_dec, W_dec), [1], false));
}

/**
 * A 0/1 mask of the k largest entries of each row of `x` (non-differentiable: built by
 * scattering ones at TopK's indices, so gradients flow only through what it multiplies).
 */
export function topKMask(g: Graph, x: Value, k: number): Value {
  const [, idx] = g.topK(x, k, -1);
  const ones = g.expandLike(g.scalar(1), idx);
  return g.scatterElementsAdd(g.zerosLike(x), idx, ones, -1);
}

/** The runtime normalisation of SAE inputs, and its inverse for the outputs. */
function normalizer(g: Graph, cfg: SaeConfig, x: Value): { input: Value; output: (y: Value) => Value } {
  if (cfg.normalizeActivations === 'constant_norm_rescale') {
    const coeff = g.div(g.scalar(Math.sqrt(cfg.dIn)), g.sqrt(g.reduceSum(g.mul(x, x), [-1], true)));
    return { input: g.mul(x, coeff), output: (y) => g.div(y, coeff) };
  }
  if (cfg.normalizeActivations === 'layer_norm') {
    // SAELens: (x - mean) / (std + 1e-5) with torch's unbiased std, undone as y * std + mean.
    const mu = g.reduceMean(x, [-1], true);
    const centred = g.sub(x, mu);
    const std = g.sqrt(g.div(g.reduceSum(g.mul(centred, centred), [-1], true), g.scalar(cfg.dIn - 1)));
    return { input: g.div(centred, g.add(std, g.scalar(1e-5))), output: (y) => g.add(g.mul(y, std), mu) };
  }
  // 'expected_average_only_in' scales by a constant found in training; it is folded into the weights.
  return { input: x, output: (y) => y };
}

/** The encoder up to its pre-activations: sae_in and pre = sae_in @ W_enc + b_enc. */
export function encodePre(g: Graph, cfg: SaeConfig, x: Value, p: SaeParams): { saeIn: Value; pre: Value; output: (y: Value) => Value } {
  const norm = normalizer(g, cfg, x);
  const saeIn = cfg.applyBDecToInput ? g.sub(norm.input, p.b_dec) : norm.input;
  // Gemm, not MatMul: its gradient rule reads transposed operands in place instead of materialising transposes.
  const pre = g.add(g.gemm(saeIn, p.W_enc), p.b_enc);
  return { saeIn, pre, output: norm.output };
}

/** The SAE's inference forward on x [rows, d_in], as SAELens's encode + decode. */
export function saeForward(g: Graph, cfg: SaeConfig, x: Value, p: SaeParams): SaeForward {
  const { pre, output } = encodePre(g, cfg, x, p);
  let acts: Value;
  let W_dec = p.W_dec;
  switch (cfg.architecture) {
    case 'standard':
    case 'transcoder':
      acts = relu(g, pre);
      break;
    case 'topk': {
      let ranked = pre;
      if (cfg.rescaleActsByDecoderNorm) {
        const norms = decoderNorms(g, p.W_dec);
        ranked = g.mul(pre, norms);
        // acts / norms @ W_dec, as acts @ (W_dec / norms): ORT rejected the first form's graph
        // when the activations were also an output.
        W_dec = g.div(p.W_dec, g.unsqueeze(norms, [1]));
      }
      acts = g.mul(relu(g, ranked), topKMask(g, ranked, cfg.k!));
      break;
    }
    case 'jumprelu':
    case 'batchtopk':
      if (!p.threshold) throw new LanternError(`a ${cfg.architecture} SAE needs a threshold to run`);
      acts = g.mul(relu(g, pre), g.cast(g.greater(pre, p.threshold), 'float32'));
      break;
  }
  const recons = g.add(g.gemm(acts, W_dec), p.b_dec);
  return { sae_input: x, acts_pre: pre, acts_post: acts, recons, out: output(recons) };
}

/** What {@link Sae.run} can return. */
export type SaeOutputName = keyof SaeForward;

/** A sparse autoencoder ready to run: its config, its weights (kept here for saving and decoder directions), and a copy in the compute thread. */
export class Sae {
  private registered?: Promise<WeightSet>;

  constructor(readonly cfg: SaeConfig, readonly weights: SaeWeights, readonly executor: Executor = defaultExecutor()) {
    checkSaeConfig(cfg);
    const shapes = saeParamShapes(cfg);
    for (const [name, shape] of Object.entries(shapes)) {
      const w = weights[name as keyof SaeWeights];
      const n = shape.reduce((a, b) => a * b, 1);
      if (!w) throw new LanternError(`SAE weights lack ${name} (${cfg.architecture} SAE)`);
      if (w.length !== n) throw new LanternError(`SAE weight ${name} has ${w.length} values; shape [${shape.join(', ')}] needs ${n}`);
    }
  }

  /** An id for saved results and feature sources: the source, else architecture, hook and size. */
  get id(): string {
    return this.cfg.source ?? `${this.cfg.architecture}:${this.cfg.hookName}:${this.cfg.dSae}`;
  }

  private weightSet(): Promise<WeightSet> {
    this.registered ??= this.executor.registerWeights(Object.fromEntries(Object.entries(saeParamShapes(this.cfg)).map(([name, shape]) => [name, Tensor.f32(this.weights[name as keyof SaeWeights]!.slice(), shape)])));
    return this.registered;
  }

  /** Runs the SAE on x [rows, d_in] and returns the chosen outputs, each [rows, width]. */
  async run(x: Float32Array, rows: number, outputs: SaeOutputName[] = ['acts_post', 'out']): Promise<Record<SaeOutputName, Float32Array>> {
    if (x.length !== rows * this.cfg.dIn) throw new LanternError(`SAE input has ${x.length} values; ${rows} rows of d_in ${this.cfg.dIn} need ${rows * this.cfg.dIn}`);
    const set = await this.weightSet();
    const want = [...new Set(outputs)].sort();
    const build = () => {
      const g = new Graph();
      const p = Object.fromEntries(Object.entries(saeParamShapes(this.cfg)).map(([n, s]) => [n, g.input(n, 'float32', s)])) as unknown as SaeParams;
      const f = saeForward(g, this.cfg, g.input('x', 'float32', ['rows', this.cfg.dIn]), p);
      for (const name of want) g.output(name, f[name]);
      return g;
    };
    const out = await this.executor.run(JSON.stringify({ sae: this.cfg, want }), build, { x: Tensor.f32(x, [rows, this.cfg.dIn]) }, { weights: [set] });
    return Object.fromEntries(want.map((n) => [n, out[n].f32])) as Record<SaeOutputName, Float32Array>;
  }

  /** Feature activations [rows, d_sae] of x [rows, d_in]. */
  async encode(x: Float32Array, rows: number): Promise<Float32Array> {
    return (await this.run(x, rows, ['acts_post'])).acts_post;
  }

  /** Reconstructions [rows, d_out] of x [rows, d_in] (after the output normalisation). */
  async reconstruct(x: Float32Array, rows: number): Promise<Float32Array> {
    return (await this.run(x, rows, ['out'])).out;
  }

  /** Feature i's decoder row, [d_out]. */
  decoderDirection(i: number): Float32Array {
    if (!Number.isInteger(i) || i < 0 || i >= this.cfg.dSae) throw new LanternError(`feature ${i} outside [0, ${this.cfg.dSae})`);
    return this.weights.W_dec.slice(i * this.cfg.dOut, (i + 1) * this.cfg.dOut);
  }

  /** Frees the compute thread's copy of the weights. */
  async release(): Promise<void> {
    if (this.registered) await this.executor.dropWeights(await this.registered);
    this.registered = undefined;
  }
}
