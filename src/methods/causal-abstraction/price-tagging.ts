/**
 * The price tagging task of *Interpretability at Scale* (Wu et al., 2023) at small scale: "is x
 * between a and b?". A tiny GPT-2 reads the tokens [a, x, b] and answers YES or NO at b; the
 * high-level causal model computes left = (a ≤ x) and right = (x ≤ b) and outputs left AND right.
 * Lantern trains the model itself, so causal-abstraction methods get a network whose task has
 * known intermediate variables without a download.
 *
 * The order puts x before b so that left is computable at x's position, where b is not yet seen;
 * the model is also trained to answer left there. Interchange intervention training (see
 * {@link trainPriceTagger}) makes the answer at b read left from there and nowhere else, so DAS
 * has one known place to find it.
 */
import type { Graph, Value } from '../../engine/graph/ir.js';
import { Tensor } from '../../engine/tensor.js';
import { LanternError } from '../../errors.js';
import type { ModelConfig } from '../../models/config.js';
import { buildForward } from '../../models/forward.js';
import { HookedTransformer } from '../../models/hooked.js';
import { modelInputs, positionFeeds } from '../../models/inputs.js';
import { Rng } from '../../rng.js';
import { initGpt2Weights } from '../../train/trainer.js';
import { ToyTrainer } from '../toys/fit.js';
import { CausalInput, CausalModel } from './causal-model.js';
import type { AlignmentTask } from './iia.js';

/** Token ids of the task with numbers 0 … n − 1: number i is token i, then YES and NO. */
export function priceTaggingTokens(n: number): { yes: number; no: number; vocab: number } {
  if (!Number.isInteger(n) || n < 2) throw new LanternError(`price tagging needs at least 2 numbers, got ${n}`);
  return { yes: n, no: n + 1, vocab: n + 2 };
}

/** The task as an alignment task: inputs a, b, x (prompt [a, x, b]); variables left = (a ≤ x), right = (x ≤ b); output left AND right. */
export function priceTaggingTask(n = 20): AlignmentTask {
  const { yes, no } = priceTaggingTokens(n);
  const causalModel = new CausalModel({
    inputs: ['a', 'b', 'x'],
    variables: {
      left: { parents: ['a', 'x'], compute: (a, x) => Number(a) <= Number(x) },
      right: { parents: ['x', 'b'], compute: (x, b) => Number(x) <= Number(b) },
      inside: { parents: ['left', 'right'], compute: (l, r) => Boolean(l) && Boolean(r) },
    },
    output: 'inside',
  });
  return { causalModel, tokens: (i: CausalInput) => [Number(i.a), Number(i.x), Number(i.b)], answer: (v) => (v ? yes : no), candidates: [yes, no] };
}

/** Every input with a ≤ b (the bounds of a price range) and any x, in a fixed order. */
export function priceTaggingInputs(n = 20): CausalInput[] {
  priceTaggingTokens(n);
  const out: CausalInput[] = [];
  for (let a = 0; a < n; a++) for (let b = a; b < n; b++) for (let x = 0; x < n; x++) out.push({ a, b, x });
  return out;
}

/** Where interchange intervention training puts `left`: the first `dims` coordinates of `hook` at `position`. */
export interface PriceTaggerAlignment {
  hook: string;
  position: number;
  dims: number;
}

/** Settings of {@link trainPriceTagger}. */
export interface PriceTaggerOptions {
  /** Numbers 0 … n − 1 (default 20). */
  n?: number;
  layers?: number;
  dModel?: number;
  /** MLP width (default 4 · dModel). */
  dMlp?: number;
  steps?: number;
  /** Examples per step (with interchange intervention training, as many base/source pairs again). */
  batch?: number;
  lr?: number;
  seed?: number;
  /**
   * Interchange intervention training of `left` (default true): each step also runs base/source
   * pairs with the first `alignedDims` coordinates of x's residual after block 0 taken from the
   * source, and trains the answers to be the causal model's counterfactual ones. False trains on
   * the plain task only.
   */
  interchangeTraining?: boolean;
  /** Coordinates of x's residual after block 0 that interchange intervention training gives to `left` (default 1). */
  alignedDims?: number;
}

/** A trained price tagger: the model, its task, and its accuracy on every input. */
export interface PriceTagger {
  model: HookedTransformer;
  task: AlignmentTask;
  inputs: CausalInput[];
  accuracy: number;
  losses: number[];
  /** Where interchange intervention training put `left` (absent when trained on the plain task). */
  aligned?: PriceTaggerAlignment;
  settings: Required<PriceTaggerOptions>;
}

/**
 * Trains a tiny GPT-2 (learned positions, LayerNorm, GELU MLPs) with Lantern's AdamW on
 * minibatches drawn from every input: cross-entropy of left's answer at x and of the task's
 * answer at b. Returns it as a HookedTransformer so every method's hooks apply; `accuracy` is the
 * task's answer at b over every input.
 *
 * Trained on the task alone, the model does not keep `left` in one place: the answer at b reads a
 * and x directly through block 0's attention as well as x's residual through block 1's, so
 * interchanging even x's whole residual after block 0 realises an interchange of left only about
 * half the time, and no subspace there can do better. Interchange intervention training (IIT;
 * Geiger et al., 2022, "Inducing Causal Structure for Interpretable Neural Networks") fixes where
 * left lives instead: each step also runs base/source pairs with the first `alignedDims`
 * coordinates of x's residual after block 0 set to the source's, and trains the intervened answers
 * (left at x, the task's at b) to be the causal model's counterfactual ones, so the model must
 * route left through those coordinates and nowhere else. A layout cannot force this in a
 * causal-attention GPT-2, whose answer position always sees a and x. DAS does not know which
 * coordinates were chosen: it has to find the direction from a random rotation.
 */
export async function trainPriceTagger(opts: PriceTaggerOptions = {}): Promise<PriceTagger> {
  const s: Required<PriceTaggerOptions> = {
    n: 20, layers: 2, dModel: 32, dMlp: 4 * (opts.dModel ?? 32), steps: 600, batch: 256, lr: 3e-3, seed: 0,
    interchangeTraining: true, alignedDims: 1, ...opts,
  };
  const { vocab } = priceTaggingTokens(s.n);
  const heads = 4;
  if (!Number.isInteger(s.dModel) || s.dModel % heads !== 0) throw new LanternError(`dModel must be a multiple of ${heads}, got ${s.dModel}`);
  if (!Number.isInteger(s.layers) || s.layers < 2) throw new LanternError(`the price tagger needs at least 2 layers (block 1 reads left from x), got ${s.layers}`);
  if (!Number.isInteger(s.alignedDims) || s.alignedDims < 1 || s.alignedDims >= s.dModel) throw new LanternError(`alignedDims must be an integer in [1, ${s.dModel - 1}], got ${s.alignedDims}`);
  for (const [name, v] of [['steps', s.steps], ['batch', s.batch]] as const) if (!Number.isInteger(v) || v < 1) throw new LanternError(`${name} must be a positive integer, got ${v}`);
  const cfg: ModelConfig = {
    architecture: 'gpt2', nLayers: s.layers, dModel: s.dModel, nHeads: heads, nKvHeads: heads, dHead: s.dModel / heads,
    dMlp: s.dMlp, nCtx: 3, dVocab: vocab, lnEps: 1e-5, act: 'gelu_new', tiedUnembed: false,
  };
  const aligned: PriceTaggerAlignment = { hook: 'blocks.0.hook_resid_post', position: 1, dims: s.alignedDims };
  const task = priceTaggingTask(s.n);
  const inputs = priceTaggingInputs(s.n);
  // Rows are bases (with the interchange at x when `partner` names a source row) or plain examples.
  // Each row is trained on its counterfactual answers: left at x and the task's answer at b.
  const feeds = (rows: CausalInput[], partner: number[]) => {
    const mask = new Float32Array(rows.length * 3 * s.dModel);
    const targets: number[] = [];
    rows.forEach((r, i) => {
      const source = rows[partner[i]];
      if (partner[i] !== i) for (let d = 0; d < s.alignedDims; d++) mask[(i * 3 + aligned.position) * s.dModel + d] = 1;
      targets.push(task.answer(task.causalModel.run(source).left), task.answer(task.causalModel.counterfactual(r, [source], ['left'])));
    });
    return {
      tokens: Tensor.i64(rows.flatMap((r) => task.tokens(r)), [rows.length, 3]),
      targets: Tensor.i64(targets, [rows.length * 2]),
      logit_positions: Tensor.i64([1, 2], [2]),
      interchange_partner: Tensor.i64(partner, [rows.length]),
      interchange_mask: Tensor.f32(mask, [rows.length, 3, s.dModel]),
      ...positionFeeds(3),
    };
  };
  const build = (g: Graph) => {
    const partner = g.input('interchange_partner', 'int64', ['batch']);
    const mask = g.input('interchange_mask', 'float32', ['batch', 'seq', s.dModel]);
    // resid + mask ⊙ (partner's resid − resid): the masked coordinates come from the partner row.
    const hook = (name: string, v: Value) => (name === aligned.hook ? g.add(v, g.mul(mask, g.sub(g.gather(v, partner), v))) : v);
    const { logits } = buildForward(g, cfg, modelInputs(g, { logitPositions: true }), hook);
    const flat: Value = g.reshape(logits, [-1, vocab]);
    return { loss: g.softmaxCrossEntropy(flat, g.input('targets', 'int64', ['batch'])), outputs: { logits: flat } };
  };
  const trainer = await ToyTrainer.create(JSON.stringify({ priceTagger: cfg, aligned }), build, initGpt2Weights(cfg, s.seed),
    { lr: s.lr, weightDecay: 0.01, beta1: 0.9, beta2: 0.98, eps: 1e-8, clip: 1, warmupSteps: 20 });
  try {
    const rng = new Rng(s.seed ^ 0x9e37);
    const losses: number[] = [];
    for (let t = 0; t < s.steps; t++) {
      const rows = Array.from({ length: s.batch }, () => inputs[rng.int(inputs.length)]);
      const partner = rows.map((_, i) => i);
      if (s.interchangeTraining) {
        // Rows batch … 2·batch − 1 are sources (trained plainly as well); row i < batch takes its aligned coordinates from row batch + i.
        rows.push(...Array.from({ length: s.batch }, () => inputs[rng.int(inputs.length)]));
        for (let i = 0; i < s.batch; i++) { partner[i] = s.batch + i; partner.push(s.batch + i); }
      }
      losses.push((await trainer.train(feeds(rows, partner))).loss);
    }
    const weights = await trainer.weights();
    const model = await HookedTransformer.create(cfg, weights, undefined, `price-tagger(n=${s.n}, seed=${s.seed}${s.interchangeTraining ? ', iit' : ''})`);
    const logits = (await trainer.evaluate(feeds(inputs, inputs.map((_, i) => i)), ['logits'])).logits.f32;
    let correct = 0;
    inputs.forEach((r, i) => {
      const o = (2 * i + 1) * vocab;
      const predicted = logits[o + task.candidates![0]] > logits[o + task.candidates![1]] ? task.candidates![0] : task.candidates![1];
      if (predicted === task.answer(task.causalModel.output(r))) correct++;
    });
    return { model, task, inputs, accuracy: correct / inputs.length, losses, aligned: s.interchangeTraining ? aligned : undefined, settings: s };
  } finally {
    await trainer.close();
  }
}
