/**
 * SAEs spliced into model runs. The model's one forward runs with a JavaScript callback at the
 * SAE's hook (HookedTransformer's callbacks), which encodes the activation, applies feature
 * interventions, decodes, and hands back the reconstruction — plus the SAE's error x - x̂ when
 * the error term is kept, so that without interventions the model's output is unchanged.
 * The SAE's own hook points come back in the cache as `<hook>.hook_sae_input`,
 * `.hook_sae_acts_pre`, `.hook_sae_acts_post`, `.hook_sae_recons` and `.hook_sae_error`.
 */
import { LanternError } from '../../errors.js';
import { Tensor } from '../../engine/tensor.js';
import type { HookedTransformer, HookCallback, Intervention, ModelInput, ObjectiveTerm, RunOptions, RunResult } from '../../models/hooked.js';
import type { Sae } from './sae.js';
import { hookWidth } from '../representations/activations.js';

/** A change to one feature's activation: zero it, set it, or multiply it. */
export interface FeatureIntervention {
  feature: number;
  op: 'ablate' | 'clamp' | 'scale';
  /** clamp: the activation to set. */
  value?: number;
  /** scale: the factor. */
  factor?: number;
  /** Token positions to change (default all). */
  positions?: number[];
}

/** An SAE attached to a run. */
export interface SaeSplice {
  sae: Sae;
  /** Add the SAE's error (x - x̂, from the unmodified encode) to its output, so only interventions change the model (default false: the model sees the reconstruction). */
  keepError?: boolean;
  features?: FeatureIntervention[];
}

/** The SAE hook points, as suffixes of the hook they attach to. */
export const SAE_HOOKS = ['hook_sae_input', 'hook_sae_acts_pre', 'hook_sae_acts_post', 'hook_sae_recons', 'hook_sae_error'] as const;

/** Checks that `sae` reads and writes hooks of `model` with the right widths; a one-line error otherwise. */
export function checkSaeFits(model: HookedTransformer, sae: Sae): void {
  const { cfg } = sae;
  const width = hookWidth(model, cfg.hookName);
  if (width !== cfg.dIn) throw new LanternError(`SAE ${sae.id} has d_in ${cfg.dIn} but ${cfg.hookName} of this model has width ${width}`);
  if (cfg.architecture === 'transcoder') {
    if (!cfg.hookNameOut) throw new LanternError(`transcoder ${sae.id} names no output hook (hook_name_out)`);
    const out = hookWidth(model, cfg.hookNameOut);
    if (out !== cfg.dOut) throw new LanternError(`transcoder ${sae.id} has d_out ${cfg.dOut} but ${cfg.hookNameOut} of this model has width ${out}`);
  }
}

/** Where an SAE writes its output: its hook, or a transcoder's output hook. */
const outputHook = (sae: Sae) => (sae.cfg.architecture === 'transcoder' ? sae.cfg.hookNameOut! : sae.cfg.hookName);

/**
 * Per-row factor that the SAE's output normalisation applies to a change of the reconstruction:
 * recons / c for constant_norm_rescale (c = sqrt(d_in) / ||x||), recons * std for layer_norm.
 */
function outputScales(sae: Sae, x: Float32Array, rows: number): Float32Array {
  const { dIn, normalizeActivations } = sae.cfg;
  const s = new Float32Array(rows).fill(1);
  if (normalizeActivations === 'none' || normalizeActivations === 'expected_average_only_in') return s;
  for (let r = 0; r < rows; r++) {
    const row = x.subarray(r * dIn, (r + 1) * dIn);
    if (normalizeActivations === 'constant_norm_rescale') s[r] = Math.hypot(...row) / Math.sqrt(dIn);
    else {
      const mu = row.reduce((a, b) => a + b, 0) / dIn;
      s[r] = Math.sqrt(row.reduce((a, b) => a + (b - mu) ** 2, 0) / (dIn - 1));
    }
  }
  return s;
}

/** Adds decode(acts change) to `out` for the features whose activations changed. */
function addDecodedChange(sae: Sae, before: Float32Array, after: Float32Array, out: Float32Array, scales: Float32Array, rows: number): void {
  const { dSae, dOut } = sae.cfg;
  const W = sae.weights.W_dec;
  let norms: Float32Array | undefined;
  if (sae.cfg.architecture === 'topk' && sae.cfg.rescaleActsByDecoderNorm) {
    norms = new Float32Array(dSae);
    for (let j = 0; j < dSae; j++) norms[j] = Math.hypot(...W.subarray(j * dOut, (j + 1) * dOut));
  }
  for (let r = 0; r < rows; r++) for (let j = 0; j < dSae; j++) {
    const d = after[r * dSae + j] - before[r * dSae + j];
    if (d === 0) continue;
    const c = (d * scales[r]) / (norms ? norms[j] : 1);
    for (let i = 0; i < dOut; i++) out[r * dOut + i] += c * W[j * dOut + i];
  }
}

function applyFeatureInterventions(features: FeatureIntervention[], acts: Float32Array, dSae: number, batch: number, seq: number): Float32Array {
  const edited = acts.slice();
  for (const f of features) {
    if (!Number.isInteger(f.feature) || f.feature < 0 || f.feature >= dSae) throw new LanternError(`feature ${f.feature} outside [0, ${dSae})`);
    if (f.op === 'clamp' && typeof f.value !== 'number') throw new LanternError(`clamping feature ${f.feature} needs a value`);
    if (f.op === 'scale' && typeof f.factor !== 'number') throw new LanternError(`scaling feature ${f.feature} needs a factor`);
    if (!['ablate', 'clamp', 'scale'].includes(f.op)) throw new LanternError(`unknown feature intervention '${f.op}'; expected ablate, clamp or scale`);
    const positions = f.positions ?? Array.from({ length: seq }, (_, p) => p);
    for (const p of positions) {
      if (!Number.isInteger(p) || p < 0 || p >= seq) throw new LanternError(`position ${p} outside the sequence (length ${seq})`);
      for (let b = 0; b < batch; b++) {
        const at = (b * seq + p) * dSae + f.feature;
        edited[at] = f.op === 'ablate' ? 0 : f.op === 'clamp' ? f.value! : edited[at] * f.factor!;
      }
    }
  }
  return edited;
}

/** Hook callbacks that splice SAEs into a run, and the cache they fill with the SAE hook points. */
export function spliceCallbacks(model: HookedTransformer, splices: SaeSplice[], saeCache: Map<string, Tensor>): Record<string, HookCallback> {
  const callbacks: Record<string, HookCallback> = {};
  for (const s of splices) {
    checkSaeFits(model, s.sae);
    const { sae } = s;
    const { hookName, dIn, dSae, dOut } = sae.cfg;
    const prefix = outputHook(sae);
    if (callbacks[prefix] || (sae.cfg.architecture === 'transcoder' && callbacks[hookName])) throw new LanternError(`two SAEs attached at ${prefix}`);
    let pending: { clean: Float32Array; edited: Float32Array; shape: number[] } | undefined;
    const encodeAt: HookCallback = async (act) => {
      const [batch, seq] = act.shape;
      const rows = batch * seq;
      const x = act.f32;
      const r = await sae.run(x, rows, ['acts_pre', 'acts_post', 'recons', 'out']);
      const shape = (w: number) => [batch, seq, w];
      const acts = s.features?.length ? applyFeatureInterventions(s.features, r.acts_post, dSae, batch, seq) : r.acts_post;
      const edited = r.out.slice();
      if (acts !== r.acts_post) addDecodedChange(sae, r.acts_post, acts, edited, outputScales(sae, x, rows), rows);
      saeCache.set(`${prefix}.hook_sae_input`, Tensor.f32(x.slice(), shape(dIn)));
      saeCache.set(`${prefix}.hook_sae_acts_pre`, Tensor.f32(r.acts_pre, shape(dSae)));
      saeCache.set(`${prefix}.hook_sae_acts_post`, Tensor.f32(acts, shape(dSae)));
      saeCache.set(`${prefix}.hook_sae_recons`, Tensor.f32(r.recons, shape(dOut)));
      pending = { clean: r.out, edited, shape: shape(dOut) };
      return sae.cfg.architecture === 'transcoder' ? undefined : finish(x);
    };
    // The error is what the unedited SAE output misses of the activation it replaces (a transcoder's: the MLP output).
    const finish = (target: Float32Array): Tensor => {
      const { clean, edited, shape } = pending!;
      pending = undefined;
      const error = target.map((t, i) => t - clean[i]);
      saeCache.set(`${prefix}.hook_sae_error`, Tensor.f32(error, shape));
      return Tensor.f32(s.keepError ? edited.map((v, i) => v + error[i]) : edited, shape);
    };
    callbacks[hookName] = encodeAt;
    if (sae.cfg.architecture === 'transcoder') callbacks[prefix] = (act) => finish(act.f32);
  }
  return callbacks;
}

/** A run of `model` on `input` with SAEs spliced in: the model's results, and the SAE hook points (`<hook>.hook_sae_acts_post`, …) in the cache. */
export async function runWithSaes(model: HookedTransformer, input: ModelInput, splices: SaeSplice[], opts: RunOptions = {}): Promise<RunResult> {
  const saeCache = new Map<string, Tensor>();
  const callbacks = { ...(opts.callbacks ?? {}) };
  for (const [hook, cb] of Object.entries(spliceCallbacks(model, splices, saeCache))) {
    if (callbacks[hook]) throw new LanternError(`a callback at ${hook} is already set; the SAE there needs the hook`);
    callbacks[hook] = cb;
  }
  const result = await model.runWithHooks(input, { ...opts, callbacks });
  for (const [name, t] of saeCache) result.cache.set(name, t);
  return result;
}

/**
 * Feature `feature`'s decoder direction times `coefficient`, added at the SAE's output hook (at
 * `positions`, default all): steering with an SAE feature, as an ordinary model intervention.
 */
export function steeringIntervention(sae: Sae, feature: number, coefficient: number, positions?: number[]): Intervention {
  const direction = sae.decoderDirection(feature).map((v) => v * coefficient);
  return { hook: outputHook(sae), op: 'add', value: Tensor.f32(direction, [sae.cfg.dOut]), positions };
}

/** One feature's share of a target at one position. */
export interface FeatureAttribution {
  position: number;
  feature: number;
  activation: number;
  /** d target / d activation, through the decoder direction. */
  gradient: number;
  /** activation × gradient: the first-order effect of removing the feature. */
  attribution: number;
}

/**
 * Gradient attribution to SAE features for a target (objective terms of the logits): activation
 * × gradient, with the gradient taken at the SAE's output hook and carried back through the
 * decoder. This is the attribution of the model with the SAE spliced in and its error term kept
 * (the error held fixed, as SAELens does): the model's own output and gradients are unchanged.
 * Returns the `top` attributions by magnitude (default 20), over batch row `batch` (default 0).
 */
export async function featureAttribution(model: HookedTransformer, sae: Sae, input: ModelInput, terms: ObjectiveTerm[], opts: { top?: number; batch?: number } = {}): Promise<{ objective: number; attributions: FeatureAttribution[] }> {
  checkSaeFits(model, sae);
  const hook = outputHook(sae);
  const readHooks = [...new Set([sae.cfg.hookName, hook])];
  const r = await model.gradients(input, terms, { wrt: [hook], cache: readHooks });
  const b = opts.batch ?? 0;
  const x = r.cache.get(sae.cfg.hookName);
  const grad = r.grads[hook];
  const [, seq] = x.shape;
  const { dIn, dSae, dOut } = sae.cfg;
  const xs = x.f32.slice(b * seq * dIn, (b + 1) * seq * dIn);
  const acts = await sae.encode(xs, seq);
  const g = grad.f32.subarray(b * seq * dOut, (b + 1) * seq * dOut);
  const scales = outputScales(sae, xs, seq);
  const W = sae.weights.W_dec;
  const norms = sae.cfg.architecture === 'topk' && sae.cfg.rescaleActsByDecoderNorm ? Array.from({ length: dSae }, (_, j) => Math.hypot(...W.subarray(j * dOut, (j + 1) * dOut))) : undefined;
  const out: FeatureAttribution[] = [];
  for (let p = 0; p < seq; p++) for (let j = 0; j < dSae; j++) {
    const a = acts[p * dSae + j];
    if (a === 0) continue;
    let dot = 0;
    for (let i = 0; i < dOut; i++) dot += g[p * dOut + i] * W[j * dOut + i];
    const gradient = (dot * scales[p]) / (norms ? norms[j] : 1);
    out.push({ position: p, feature: j, activation: a, gradient, attribution: a * gradient });
  }
  out.sort((p, q) => Math.abs(q.attribution) - Math.abs(p.attribution));
  return { objective: r.objective, attributions: out.slice(0, opts.top ?? 20) };
}
