/**
 * The price tagging task of *Interpretability at Scale* (Wu et al., 2023) at small scale: "is x
 * between a and b?". A tiny GPT-2 reads the tokens [a, x, b] and answers YES or NO at b; the
 * high-level causal model computes left = (a ≤ x) and right = (x ≤ b) and outputs left AND right.
 * Lantern trains the model itself, so causal-abstraction methods get a network whose task has
 * known intermediate variables without a download.
 *
 * The order puts x before b so that left is computable at x's position, where b is not yet seen;
 * the model is also trained to answer left there, so left is certainly computed at that place.
 * Whether the answer at b reads it from there or recomputes it is what DAS measures.
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

/** Settings of {@link trainPriceTagger}. */
export interface PriceTaggerOptions {
  /** Numbers 0 … n − 1 (default 20). */
  n?: number;
  layers?: number;
  dModel?: number;
  /** MLP width (default 4 · dModel). */
  dMlp?: number;
  steps?: number;
  batch?: number;
  lr?: number;
  seed?: number;
}

/** A trained price tagger: the model, its task, and its accuracy on every input. */
export interface PriceTagger {
  model: HookedTransformer;
  task: AlignmentTask;
  inputs: CausalInput[];
  accuracy: number;
  losses: number[];
  settings: Required<PriceTaggerOptions>;
}

/**
 * Trains a tiny GPT-2 (learned positions, LayerNorm, GELU MLPs) with Lantern's AdamW on
 * minibatches drawn from every input: cross-entropy of left's answer at x and of the task's
 * answer at b. Returns it as a HookedTransformer so every method's hooks apply; `accuracy` is the
 * task's answer at b over every input.
 */
export async function trainPriceTagger(opts: PriceTaggerOptions = {}): Promise<PriceTagger> {
  const s: Required<PriceTaggerOptions> = { n: 20, layers: 2, dModel: 32, dMlp: 4 * (opts.dModel ?? 32), steps: 600, batch: 256, lr: 3e-3, seed: 0, ...opts };
  const { vocab } = priceTaggingTokens(s.n);
  const heads = 4;
  if (!Number.isInteger(s.dModel) || s.dModel % heads !== 0) throw new LanternError(`dModel must be a multiple of ${heads}, got ${s.dModel}`);
  const cfg: ModelConfig = {
    architecture: 'gpt2', nLayers: s.layers, dModel: s.dModel, nHeads: heads, nKvHeads: heads, dHead: s.dModel / heads,
    dMlp: s.dMlp, nCtx: 3, dVocab: vocab, lnEps: 1e-5, act: 'gelu_new', tiedUnembed: false,
  };
  const task = priceTaggingTask(s.n);
  const inputs = priceTaggingInputs(s.n);
  const feeds = (rows: CausalInput[]) => ({
    tokens: Tensor.i64(rows.flatMap((r) => task.tokens(r)), [rows.length, 3]),
    targets: Tensor.i64(rows.flatMap((r) => { const v = task.causalModel.run(r); return [task.answer(v.left), task.answer(v.inside)]; }), [rows.length * 2]),
    logit_positions: Tensor.i64([1, 2], [2]),
    ...positionFeeds(3),
  });
  const build = (g: Graph) => {
    const { logits } = buildForward(g, cfg, modelInputs(g, { logitPositions: true }));
    const flat: Value = g.reshape(logits, [-1, vocab]);
    return { loss: g.softmaxCrossEntropy(flat, g.input('targets', 'int64', ['batch'])), outputs: { logits: flat } };
  };
  const trainer = await ToyTrainer.create(JSON.stringify({ priceTagger: cfg }), build, initGpt2Weights(cfg, s.seed),
    { lr: s.lr, weightDecay: 0.01, beta1: 0.9, beta2: 0.98, eps: 1e-8, clip: 1, warmupSteps: 20 });
  try {
    const rng = new Rng(s.seed ^ 0x9e37);
    const losses: number[] = [];
    for (let t = 0; t < s.steps; t++) {
      const rows = Array.from({ length: s.batch }, () => inputs[rng.int(inputs.length)]);
      losses.push((await trainer.train(feeds(rows))).loss);
    }
    const weights = await trainer.weights();
    const model = await HookedTransformer.create(cfg, weights, undefined, `price-tagger(n=${s.n}, seed=${s.seed})`);
    const logits = (await trainer.evaluate(feeds(inputs), ['logits'])).logits.f32;
    let correct = 0;
    inputs.forEach((r, i) => {
      const o = (2 * i + 1) * vocab;
      const predicted = logits[o + task.candidates![0]] > logits[o + task.candidates![1]] ? task.candidates![0] : task.candidates![1];
      if (predicted === task.answer(task.causalModel.output(r))) correct++;
    });
    return { model, task, inputs, accuracy: correct / inputs.length, losses, settings: s };
  } finally {
    await trainer.close();
  }
}
