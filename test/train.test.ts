// Training with Lantern's engine: weight gradients against finite differences, the AdamW update
// against a plain-JS computation, the schedule by hand, and exact resume from a checkpoint.
import { describe, it, expect } from 'vitest';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Rng } from '../src/rng.js';
import { Trainer, TrainConfig, learningRate, lossGraph, initGpt2Weights, streamLoss, totalSteps, isPrefixOf, dropoutAt, slidingLoss } from '../src/train/trainer.js';
import { HookedTransformer } from '../src/models/hooked.js';
import { gradients } from '../src/engine/autodiff/grad.js';
import { defaultExecutor } from '../src/engine/runtime/executor.js';
import { Tensor } from '../src/engine/tensor.js';
import type { ModelConfig } from '../src/models/config.js';

const cfg: ModelConfig = { architecture: 'gpt2', nLayers: 2, dModel: 32, nHeads: 4, nKvHeads: 4, dHead: 8, dMlp: 64, nCtx: 16, dVocab: 300, lnEps: 1e-5, act: 'gelu_new', tiedUnembed: true };
const tc: TrainConfig = { batch: 4, seq: 12, steps: 60, warmupSteps: 5, lr: 3e-3, minLr: 3e-4, beta1: 0.9, beta2: 0.95, eps: 1e-8, weightDecay: 0.1, clip: 1, seed: 3 };
// A learnable stream: a fixed pseudo-random sequence of period 37 repeated.
const stream = Uint16Array.from({ length: 4000 }, (_, i) => ((i % 37) * 97 + 11) % cfg.dVocab);

function windowFeeds(tokens: number[][]) {
  const seq = tokens[0].length - 1;
  const n = tokens.length;
  const mask = Array.from({ length: seq * seq }, (_, i) => i % seq <= Math.floor(i / seq));
  return {
    tokens: Tensor.i64(tokens.flatMap((w) => w.slice(0, seq)), [n, seq]),
    targets: Tensor.i64(tokens.flatMap((w) => w.slice(1)), [n, seq]),
    positions: Tensor.i64([...Array(seq).keys()], [seq]),
    causal_mask: Tensor.bool(mask, [seq, seq]),
  };
}

describe('training', () => {
  it('learning rate: linear warmup then cosine to minLr (by hand)', () => {
    expect(learningRate(tc, 0)).toBeCloseTo(tc.lr / 5, 12);
    expect(learningRate(tc, 4)).toBeCloseTo(tc.lr, 12);
    // halfway through the cosine: (lr + minLr) / 2
    expect(learningRate(tc, 5 + 55 / 2)).toBeCloseTo((tc.lr + tc.minLr) / 2, 12);
    expect(learningRate(tc, 60)).toBeCloseTo(tc.minLr, 12);
  });

  it('learning rate: a later phase restarts with its own warmup and cosine (by hand)', () => {
    const two: TrainConfig = { ...tc, then: [{ steps: 40, warmupSteps: 4, lr: 1e-3, minLr: 1e-4 }] };
    expect(totalSteps(two)).toBe(100);
    expect(learningRate(two, 59)).toBeCloseTo(learningRate(tc, 59), 12);
    expect(learningRate(two, 60)).toBeCloseTo(1e-3 / 4, 12);
    expect(learningRate(two, 63)).toBeCloseTo(1e-3, 12);
    expect(learningRate(two, 60 + 4 + 36 / 2)).toBeCloseTo((1e-3 + 1e-4) / 2, 12);
    expect(learningRate(two, 100)).toBeCloseTo(1e-4, 12);
    // A finished one-phase run may be trained on by the two-phase recipe, not the other way round.
    expect(isPrefixOf(tc, two)).toBe(true);
    expect(isPrefixOf(two, tc)).toBe(false);
    expect(isPrefixOf({ ...tc, lr: 1e-2 }, two)).toBe(false);
  });

  it('gradients of the loss wrt every kind of weight match finite differences', async () => {
    const ex = defaultExecutor();
    const init = initGpt2Weights(cfg, 5);
    // Perturb LayerNorm and biases off their (1, 0) init so their gradients are generic.
    for (const [name, t] of Object.entries(init)) if (t.shape.length === 1) t.f32.forEach((_, i) => (t.f32[i] += 0.1 * Math.sin(i + name.length)));
    const copy = (t: Tensor) => Tensor.f32(t.f32.slice(), t.shape);
    const base = Object.fromEntries(Object.entries(init).map(([n, t]) => [n, copy(t)]));
    const set = await ex.registerWeights(Object.fromEntries(Object.entries(base).map(([n, t]) => [n, copy(t)])));
    const names = ['embed.W_E', 'pos_embed.W_pos', 'blocks.0.ln1.w', 'blocks.0.attn.W_QKV', 'blocks.0.attn.b_QKV', 'blocks.1.attn.W_O', 'blocks.1.mlp.W_in', 'blocks.1.mlp.b_out', 'ln_final.b'];
    const graph = () => {
      const { g, loss } = lossGraph(cfg);
      const grads = gradients(g, loss, names.map((n) => g.inputs.find((v) => v.name === n)!));
      grads.forEach((gr, i) => g.output(`grad:${names[i]}`, gr));
      return g;
    };
    const windows = [stream.slice(0, 13), stream.slice(50, 63)].map((w) => Array.from(w));
    const feeds = windowFeeds(windows);
    const out = await ex.run('train-grad-check', graph, feeds, { weights: [set] });
    const lossWith = async (name: string, i: number, delta: number) => {
      const w = copy(base[name]);
      w.f32[i] += delta;
      return (await ex.run('train-loss-check', () => lossGraph(cfg).g, { ...feeds, [name]: w }, { weights: [set] })).loss.toArray()[0];
    };
    for (const name of names) {
      const grad = out[`grad:${name}`].f32;
      // the largest-gradient coordinate and two fixed ones
      let top = 0;
      grad.forEach((v, i) => (Math.abs(v) > Math.abs(grad[top]) ? (top = i) : 0));
      for (const i of [top, 1, grad.length - 2]) {
        const h = 1e-2;
        const fd = (await lossWith(name, i, h) - await lossWith(name, i, -h)) / (2 * h);
        // float32 loss (~1e-7 relative) over a 2e-2 step: ~1e-5 absolute noise, plus O(h^2) curvature.
        expect(Math.abs(grad[i] - fd), `${name}[${i}]: ${grad[i]} vs ${fd}`).toBeLessThan(3e-4 + 2e-2 * Math.abs(fd));
      }
    }
  });

  it('one step applies AdamW with clipping exactly as written in plain JS', async () => {
    const ex = defaultExecutor();
    const tr = await Trainer.create(cfg, { ...tc, clip: 0.5 });
    const w0 = await tr.weights();
    // The gradient the step will see: same windows (the trainer's RNG draws them).
    const graphNames = Object.keys(w0);
    const set = await ex.registerWeights(Object.fromEntries(Object.entries(w0).map(([n, t]) => [n, Tensor.f32(t.f32.slice(), t.shape)])));
    const rngWindows = (() => {
      // the windows Trainer.step draws from its seeded RNG
      const r = new Rng(tc.seed);
      return Array.from({ length: tc.batch }, () => { const o = r.int(stream.length - tc.seq - 1); return Array.from(stream.subarray(o, o + tc.seq + 1)); });
    })();
    const graph = () => {
      const { g, loss } = lossGraph(cfg);
      gradients(g, loss, graphNames.map((n) => g.inputs.find((v) => v.name === n)!)).forEach((gr, i) => g.output(`grad:${graphNames[i]}`, gr));
      return g;
    };
    const grads = await ex.run('train-step-grads', graph, windowFeeds(rngWindows), { weights: [set] });
    const entry = await tr.step(stream);
    const w1 = await tr.weights();
    let sq = 0;
    for (const n of graphNames) grads[`grad:${n}`].f32.forEach((v) => (sq += v * v));
    const norm = Math.sqrt(sq);
    expect(entry.gradNorm).toBeCloseTo(norm, 4);
    const scale = norm > 0.5 ? 0.5 / norm : 1;
    const lr = learningRate(tc, 0);
    let worst = 0;
    for (const n of graphNames) {
      const decay = w0[n].shape.length >= 2 ? tc.weightDecay : 0;
      const g = grads[`grad:${n}`].f32;
      w0[n].f32.forEach((w, i) => {
        const gi = g[i] * scale;
        // t = 1: m_hat = g, v_hat = g^2
        const expected = w - lr * (gi / (Math.abs(gi) + tc.eps) + decay * w);
        worst = Math.max(worst, Math.abs(w1[n].f32[i] - expected));
      });
    }
    expect(worst).toBeLessThan(2e-6);
  });

  it('dropout: a step\'s loss is the plain model\'s loss with its masks applied at the hooks from JavaScript', async () => {
    const p = 0.3;
    const dtc: TrainConfig = { ...tc, then: [{ steps: 10, warmupSteps: 1, lr: 1e-3, minLr: 1e-4, dropout: p }] };
    expect([dropoutAt(dtc, 59), dropoutAt(dtc, 60)]).toEqual([0, p]);
    for (const bad of [1, -0.1, NaN]) {
      await expect(Trainer.create(cfg, { ...dtc, then: [{ ...dtc.then![0], dropout: bad }] })).rejects.toThrow(/phase 2: dropout must be in \[0, 1\)/);
    }
    const tr = await Trainer.create(cfg, { ...dtc, steps: 0 });
    const model = await HookedTransformer.create(cfg, await tr.weights(), undefined, 'test');
    // What the step draws from its seeded RNG, in order: the windows, then one mask per hook
    // (embeddings, then each block's attention and MLP outputs), kept elements scaled by 1/(1-p).
    const r = new Rng(tc.seed);
    const windows = Array.from({ length: tc.batch }, () => { const o = r.int(stream.length - tc.seq - 1); return Array.from(stream.subarray(o, o + tc.seq + 1)); });
    const hooks = ['blocks.0.hook_resid_pre', 'blocks.0.hook_attn_out', 'blocks.0.hook_mlp_out', 'blocks.1.hook_attn_out', 'blocks.1.hook_mlp_out'];
    const n = tc.batch * tc.seq * cfg.dModel;
    const masks = hooks.map(() => Array.from({ length: n }, () => (r.next() < p ? 0 : 1 / (1 - p))));
    const crossEntropy = (logits: Tensor) => {
      let total = 0;
      windows.forEach((w, b) => w.slice(1).forEach((target, t) => {
        const row = logits.f32.subarray((b * tc.seq + t) * cfg.dVocab, (b * tc.seq + t + 1) * cfg.dVocab);
        const max = Math.max(...row);
        const logZ = max + Math.log(row.reduce((s, x) => s + Math.exp(x - max), 0));
        total += logZ - row[target];
      }));
      return total / (tc.batch * tc.seq);
    };
    const inputs = windows.map((w) => w.slice(0, tc.seq));
    const callbacks = Object.fromEntries(hooks.map((h, k) => [h, (a: Tensor) => Tensor.f32(a.f32.map((x, i) => x * masks[k][i]), a.shape)]));
    const withMasks = crossEntropy((await model.runWithHooks(inputs, { callbacks })).logits);
    const plain = crossEntropy(await model.run(inputs));
    const entry = await tr.step(stream);
    expect(entry.loss).toBeCloseTo(withMasks, 5);
    // Not vacuous: at initialisation every loss is near log(vocab), yet the masks move it 100x more than the mismatch.
    expect(Math.abs(entry.loss - plain)).toBeGreaterThan(Math.max(1e-3, 100 * Math.abs(entry.loss - withMasks)));
  });

  it('strided evaluation scores every token once, from the context its window gives it (checked token by token)', async () => {
    // A model that has begun to learn the stream, so that how much context it gets matters.
    const tr = await Trainer.create(cfg, tc);
    for (let i = 0; i < 40; i++) await tr.step(stream);
    const model = await HookedTransformer.create(cfg, await tr.weights(), undefined, 'test');
    const short = stream.subarray(100, 141); // 41 tokens: 40 predictions
    const [window, stride] = [16, 6];
    // Window k covers [k * stride, k * stride + window); token t is first scored in the first window reaching it.
    const loss = async (contextStart: (t: number) => number) => {
      let sum = 0;
      for (let t = 1; t < short.length; t++) {
        const start = contextStart(t);
        const logits = (await model.run([Array.from(short.subarray(start, t))])).f32;
        const row = logits.subarray((t - start - 1) * cfg.dVocab, (t - start) * cfg.dVocab);
        const max = Math.max(...row);
        sum += max + Math.log(row.reduce((acc, x) => acc + Math.exp(x - max), 0)) - row[short[t]];
      }
      return sum / (short.length - 1);
    };
    const expected = await loss((t) => Math.max(0, Math.floor((t - window) / stride) + 1) * stride);
    const r = await slidingLoss(model, short, window, stride);
    expect(r.tokens).toBe(40);
    expect(r.loss).toBeCloseTo(expected, 5);
    // Not vacuous: consecutive windows (less context for some tokens) score differently.
    expect(Math.abs(expected - await loss((t) => Math.floor((t - 1) / (window - 1)) * (window - 1)))).toBeGreaterThan(1e-3);
    await expect(slidingLoss(model, short, window, 0)).rejects.toThrow(/stride 0/);
  });

  it('learns a repeating sequence, and resuming from a checkpoint continues exactly', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'lantern-train-'));
    const a = await Trainer.create(cfg, tc);
    const first = (await a.evaluate(stream, 8)).loss;
    for (let i = 0; i < 30; i++) await a.step(stream);
    await a.saveCheckpoint(path.join(dir, 'ckpt'));
    const continued: number[] = [];
    for (let i = 0; i < 10; i++) continued.push((await a.step(stream)).loss);
    const b = await Trainer.create(cfg, tc, path.join(dir, 'ckpt'));
    expect(b.state.step).toBe(30);
    const resumed: number[] = [];
    for (let i = 0; i < 10; i++) resumed.push((await b.step(stream)).loss);
    expect(resumed).toEqual(continued);
    const last = (await a.evaluate(stream, 8)).loss;
    expect(last).toBeLessThan(first - 2);
    // streamLoss on the trained weights through a freshly registered copy gives the same number
    const ex = defaultExecutor();
    const set = await ex.registerWeights(await a.weights());
    expect((await streamLoss(ex, cfg, set, stream, { seq: tc.seq, batch: tc.batch, maxWindows: 8 })).loss).toBeCloseTo(last, 5);
    fs.rmSync(dir, { recursive: true, force: true });
  });
});
