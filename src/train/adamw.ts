/**
 * AdamW with global-norm gradient clipping, appended to a loss graph: one ONNX graph computes
 * the loss, its gradients and every parameter's update, so a training step is one run. Shared by
 * the language-model trainer and the toy models (src/methods/toys).
 */
import { Graph, Value } from '../engine/graph/ir.js';
import { gradients } from '../engine/autodiff/grad.js';
import { Tensor } from '../engine/tensor.js';

/** AdamW's constants (the learning rate is fed per step). */
export interface AdamWSettings {
  beta1: number;
  beta2: number;
  eps: number;
  weightDecay: number;
  /** Global gradient-norm clip; Infinity for none. */
  clip: number;
}

/**
 * Appends gradients of `loss` wrt `params` and their AdamW updates to `g`. Inputs added: `lr`,
 * `bias_correction1`, `bias_correction2` (see {@link adamwFeeds}) and `adam.m.<name>`,
 * `adam.v.<name>` per parameter; outputs: `grad_norm` and `new:<name>`, `new:adam.m.<name>`,
 * `new:adam.v.<name>`. Weight decay applies to the parameters for which `decays` holds (default:
 * those of rank ≥ 2, i.e. not biases or norm gains).
 */
export function appendAdamW(
  g: Graph, loss: Value, params: Value[], s: AdamWSettings,
  decays: (param: Value) => boolean = (p) => p.shape.length >= 2,
): void {
  const grads = gradients(g, loss, params);
  const f = (x: number) => g.scalar(x);

  // Global-norm clipping: scale = clip / max(norm, clip).
  let sq: Value = f(0);
  for (const gr of grads) sq = g.add(sq, g.reduceSum(g.mul(gr, gr), [...gr.shape.keys()], false));
  const norm = g.sqrt(sq);
  g.output('grad_norm', norm);
  const scale = Number.isFinite(s.clip) ? g.where(g.greater(norm, f(s.clip)), g.div(f(s.clip), norm), f(1)) : undefined;

  const lr = g.input('lr', 'float32', []);
  const bc1 = g.input('bias_correction1', 'float32', []);
  const bc2 = g.input('bias_correction2', 'float32', []);
  params.forEach((w, i) => {
    const shape = w.shape as number[];
    const grad = scale ? g.mul(grads[i], scale) : grads[i];
    const m = g.input(`adam.m.${w.name}`, 'float32', shape);
    const v = g.input(`adam.v.${w.name}`, 'float32', shape);
    const m2 = g.add(g.mul(m, f(s.beta1)), g.mul(grad, f(1 - s.beta1)));
    const v2 = g.add(g.mul(v, f(s.beta2)), g.mul(g.mul(grad, grad), f(1 - s.beta2)));
    let step = g.div(g.mul(m2, bc1), g.add(g.sqrt(g.mul(v2, bc2)), f(s.eps)));
    if (decays(w)) step = g.add(step, g.mul(w, f(s.weightDecay)));
    g.output(`new:${w.name}`, g.sub(w, g.mul(step, lr)));
    g.output(`new:adam.m.${w.name}`, m2);
    g.output(`new:adam.v.${w.name}`, v2);
  });
}

/** The per-step scalars of {@link appendAdamW} for step `t` (1-based). */
export function adamwFeeds(t: number, lr: number, s: Pick<AdamWSettings, 'beta1' | 'beta2'>): Record<string, Tensor> {
  return {
    lr: Tensor.f32([lr], []),
    bias_correction1: Tensor.f32([1 / (1 - s.beta1 ** t)], []),
    bias_correction2: Tensor.f32([1 / (1 - s.beta2 ** t)], []),
  };
}

/** Zeroed first and second moments for parameters of these shapes. */
export function adamwState(shapes: Record<string, number[]>): Record<string, Tensor> {
  const out: Record<string, Tensor> = {};
  for (const [name, shape] of Object.entries(shapes)) {
    const n = shape.reduce((p, q) => p * q, 1);
    out[`adam.m.${name}`] = Tensor.f32(new Float32Array(n), shape);
    out[`adam.v.${name}`] = Tensor.f32(new Float32Array(n), shape);
  }
  return out;
}
