/**
 * Where features come from: anything that turns a hook's activations into feature activations.
 * MLP neurons (identity at `blocks.L.mlp.hook_post`) and sparse autoencoders share this shape, so
 * dashboards, explanations and scores treat them alike.
 */
import { LanternError } from '../../errors.js';
import { Tensor } from '../../engine/tensor.js';
import type { HookedTransformer } from '../../models/hooked.js';

/** A set of features read off one hook: `encode` maps [rows, d_in] activations to [rows, size] feature activations. */
export interface FeatureSource {
  /** Names the source in saved results (e.g. `neurons:blocks.2.mlp.hook_post`). */
  id: string;
  /** The hook whose activations `encode` reads. */
  hook: string;
  /** Number of features. */
  size: number;
  /** [rows, d_in] (row-major) -> [rows, size]. */
  encode(acts: Float32Array, rows: number): Float32Array;
  /** Feature i's write direction in the residual stream (d_model), for its logits and nearest features. */
  decoderDirection?(i: number): Float32Array;
}

/** The last dimension of a hook's activation: what a source's `encode` receives per row. */
export function hookWidth(model: HookedTransformer, hook: string): number {
  model.checkHook(hook);
  const shape = model.hookShapes.get(hook)!;
  const d = shape[shape.length - 1];
  if (shape.length !== 3 || typeof d !== 'number') throw new LanternError(`hook ${hook} has shape [${shape.join(', ')}]; features read hooks of shape [batch, seq, d] (resid, mlp, *_out)`);
  return d;
}

/** Checks that `source` reads a hook of `model` and that its width fits, with one-line errors naming the mismatch. */
export function checkSource(model: HookedTransformer, source: FeatureSource, dIn?: number): void {
  const width = hookWidth(model, source.hook);
  if (dIn !== undefined && dIn !== width) {
    throw new LanternError(`feature source ${source.id} expects d_in ${dIn}, but ${source.hook} of ${model.source} has width ${width}`);
  }
  if (!Number.isInteger(source.size) || source.size < 1) throw new LanternError(`feature source ${source.id} has ${source.size} features; need at least 1`);
}

const NEURON_HOOK = /^blocks\.(\d+)\.mlp\.hook_post$/;

/**
 * The MLP neurons at `blocks.L.mlp.hook_post` as a feature source: `encode` is the identity, and
 * neuron i's decoder direction is what it writes to `hook_mlp_out` per unit of activation (row i of
 * W_out). That row is measured through the model's own forward (hook_post replaced by unit
 * vectors, minus the output at zero), so every family's weight layout gives the same answer.
 */
export async function neuronSource(model: HookedTransformer, hook: string): Promise<FeatureSource> {
  model.checkHook(hook);
  const m = NEURON_HOOK.exec(hook);
  if (!m) throw new LanternError(`neuron sources read an MLP's hook_post (blocks.<layer>.mlp.hook_post), not ${hook}`);
  const F = hookWidth(model, hook);
  const D = model.cfg.dModel;
  const out = `blocks.${m[1]}.hook_mlp_out`;
  const directions = await unitResponses(model, hook, out, F, D);
  return {
    id: `neurons:${hook}`,
    hook,
    size: F,
    encode: (acts, rows) => {
      if (acts.length !== rows * F) throw new LanternError(`neurons:${hook}: got ${acts.length} values for ${rows} rows of ${F}`);
      return acts;
    },
    decoderDirection: (i) => {
      if (!Number.isInteger(i) || i < 0 || i >= F) throw new LanternError(`neuron ${i} outside [0, ${F})`);
      return directions.subarray(i * D, (i + 1) * D);
    },
  };
}

/** [F, D]: the change in `out` when `hook` (width F) is e_i instead of 0, for every i, a context's worth of neurons per forward. */
async function unitResponses(model: HookedTransformer, hook: string, out: string, F: number, D: number): Promise<Float32Array> {
  const T = Math.min(model.cfg.nCtx, F);
  const result = new Float32Array(F * D);
  const zero = await model.runWithHooks([[0]], { cache: [out], logitPositions: [0], interventions: [{ hook, op: 'zero' }] });
  const base = zero.cache.get(out).f32.subarray(0, D);
  for (let first = 0; first < F; first += T) {
    const n = Math.min(T, F - first);
    const unit = new Float32Array(n * F);
    for (let t = 0; t < n; t++) unit[t * F + first + t] = 1;
    const run = await model.runWithHooks([new Array<number>(n).fill(0)], {
      cache: [out], logitPositions: [0], interventions: [{ hook, op: 'replace', value: Tensor.f32(unit, [1, n, F]) }],
    });
    const y = run.cache.get(out).f32;
    for (let t = 0; t < n; t++) for (let d = 0; d < D; d++) result[(first + t) * D + d] = y[t * D + d] - base[d];
  }
  return result;
}
