// DAS on a model Lantern trains itself: the price tagging task ("is x between a and b?") of
// *Interpretability at Scale* at small scale. The model reads [a, x, b]; interchange intervention
// training puts left = (a ≤ x) in one coordinate of x's residual after block 0. DAS, starting from
// a random rotation, must find that direction (held-out IIA ≥ 0.95), and must not find left in b's
// embedding, which carries nothing about a or x (≤ 0.6); random directions at x, untrained, are
// the control. The interchange pairs are drawn so that the counterfactual answer differs from the
// base's, so an intervention that does nothing scores 0, not the base rate.
import { beforeAll, describe, expect, it } from 'vitest';
import {
  das, interchangeAccuracy, priceTaggingInputs, priceTaggingTask, sampleExamples, trainPriceTagger,
} from '../src/methods/causal-abstraction/index.js';
import type { CounterfactualExample, PriceTagger } from '../src/methods/causal-abstraction/index.js';
import { Rng } from '../src/rng.js';

let tagger: PriceTagger;
let train: CounterfactualExample[];
let test: CounterfactualExample[];
beforeAll(async () => {
  tagger = await trainPriceTagger({ n: 20, layers: 2, dModel: 32, steps: 600, seed: 0 });
  const examples = sampleExamples(tagger.task.causalModel, tagger.inputs, 600, { variables: ['left'], seed: 1, changing: true });
  train = examples.slice(0, 400);
  test = examples.slice(400);
}, 300_000);

describe('price tagging', () => {
  it('has the causal model of the task and every bounded input', () => {
    const cm = priceTaggingTask(20).causalModel;
    expect(cm.output({ a: 3, b: 9, x: 3 })).toBe(true);
    expect(cm.output({ a: 3, b: 9, x: 10 })).toBe(false);
    // left from a source with x below its a; right stays the base's (x = 5 ≤ 9): the answer turns to NO.
    expect(cm.counterfactual({ a: 3, b: 9, x: 5 }, [{ a: 7, b: 12, x: 6 }], ['left'])).toBe(false);
    expect(priceTaggingInputs(20)).toHaveLength(210 * 20);
  });

  it('rejects settings it cannot train with one clear message', async () => {
    await expect(trainPriceTagger({ alignedDims: 32 })).rejects.toThrow('alignedDims must be an integer in [1, 31], got 32');
    await expect(trainPriceTagger({ layers: 1 })).rejects.toThrow('needs at least 2 layers');
    await expect(trainPriceTagger({ steps: 0 })).rejects.toThrow('steps must be a positive integer, got 0');
  });

  it('trains to ≥ 99% accuracy, seeded, with left at x after block 0', async () => {
    expect(tagger.accuracy).toBeGreaterThanOrEqual(0.99);
    expect(tagger.losses.at(-1)!).toBeLessThan(tagger.losses[0] / 20);
    expect(tagger.aligned).toEqual({ hook: 'blocks.0.hook_resid_post', position: 1, dims: 1 });
    // Interchanging the coordinate training aligned realises the interchange of left.
    const basis = new Float32Array(32);
    basis[0] = 1;
    const aligned = await interchangeAccuracy(tagger.model, { task: tagger.task, examples: test, variables: ['left'], interventions: [{ hook: 'blocks.0.hook_resid_post', positions: [1], subspace: { basis, k: 1, dim: 32 } }] });
    expect(aligned.iia).toBeGreaterThanOrEqual(0.95);
  });

  it('DAS and Boundless DAS find left at x after block 0, not in b\'s embedding nor along random directions', async () => {
    const cm = tagger.task.causalModel;
    const unchanged = [...train, ...test].filter((e) => cm.counterfactual(e.base, e.sources, ['left']) === cm.output(e.base)).length / (train.length + test.length);
    const settings = { task: tagger.task, variable: 'left', train, test, k: 1, epochs: 30, lr: 0.1, init: 'random' as const, seed: 0 };
    const atX = await das(tagger.model, { ...settings, hook: 'blocks.0.hook_resid_post', position: 1 });
    const boundless = await das(tagger.model, { ...settings, k: 4, boundless: true, hook: 'blocks.0.hook_resid_post', position: 1 });
    const atB = await das(tagger.model, { ...settings, hook: 'blocks.0.hook_resid_pre', position: 2 });
    // Untrained: five random directions at x, each interchanged alone.
    const rng = new Rng(5);
    const random: number[] = [];
    for (let i = 0; i < 5; i++) {
      const basis = Float32Array.from({ length: 32 }, () => rng.normal());
      random.push((await interchangeAccuracy(tagger.model, { task: tagger.task, examples: test, variables: ['left'], interventions: [{ hook: 'blocks.0.hook_resid_post', positions: [1], subspace: { basis, k: 1, dim: 32 } }] })).iia);
    }
    console.log(`price tagging: unchanged ${unchanged.toFixed(3)}; left at x: DAS ${atX.iia.toFixed(3)}, Boundless ${boundless.iia.toFixed(3)} (k ${boundless.k}); at b's embedding ${atB.iia.toFixed(3)}; random directions at x ${random.map((r) => r.toFixed(3)).join(' ')}`);
    expect(unchanged).toBeLessThanOrEqual(0.05);
    expect(atX.orthogonality).toBeLessThan(1e-5);
    expect(atX.iia).toBeGreaterThanOrEqual(0.95);
    expect(boundless.iia).toBeGreaterThanOrEqual(0.95);
    expect(atB.iia).toBeLessThanOrEqual(0.6);
    expect(Math.max(...random)).toBeLessThanOrEqual(0.6);
  }, 120_000);
});
