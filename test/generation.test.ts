// Generation with a key/value cache against independent references: a hand-written greedy loop
// that reruns the whole sequence through model.run at every step (every family), the sampling
// filters on logit rows whose kept sets are worked out by hand, Hugging Face's repetition
// penalty, stop strings that span token boundaries, batches of different-length prompts against
// each prompt alone, and steering at every step against an uncached rerun with the same vector.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Tensor } from '../src/engine/tensor.js';
import type { HookedTransformer, Intervention } from '../src/models/hooked.js';
import { loadModel } from '../src/models/load.js';
import { writeRandomModel } from '../src/models/random.js';
import { architectureFor, SUPPORTED_ARCHITECTURES } from '../src/models/architectures/index.js';
import { applyRepetitionPenalty, argmax, generate, generateBatch, generateStream, samplingDistribution } from '../src/models/generate.js';
import { LanternError } from '../src/errors.js';
import { Rng } from '../src/rng.js';
import { expectOneLineError, relError, runLantern } from './helpers.js';

const PROMPT = [464, 318, 257, 286, 262, 290, 11, 13, 284, 339];
const SHORT = [40, 318, 257, 11];
const STEPS = 10;

let tmp: string;
beforeAll(() => {
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'lantern-generation-'));
});
afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));

async function tinyModel(arch: string): Promise<HookedTransformer> {
  const dir = path.join(tmp, arch);
  if (!fs.existsSync(dir)) writeRandomModel(dir, architectureFor(arch).presets.tiny, { seed: 5, matrixStd: 0.06 });
  return loadModel(dir);
}

/** Greedy decoding by rerunning the whole sequence at every step: the tokens and each step's last-position logits. */
async function greedyByRecomputation(model: HookedTransformer, prompt: number[], steps: number, interventions: Intervention[] = []) {
  const V = model.cfg.dVocab;
  const seq = [...prompt];
  const tokens: number[] = [];
  const logits: Float32Array[] = [];
  for (let i = 0; i < steps; i++) {
    const out = (await model.runWithHooks([seq], { interventions })).logits.f32;
    const row = out.slice((seq.length - 1) * V, seq.length * V);
    logits.push(row);
    const next = argmax(row);
    tokens.push(next);
    seq.push(next);
  }
  return { tokens, logits };
}

const rel = (a: Float32Array, b: Float32Array) => relError(Tensor.f32(a, [a.length]), Tensor.f32(b, [b.length]));

for (const arch of SUPPORTED_ARCHITECTURES) {
  describe(`${arch}: cached generation on a tiny random model`, () => {
    let model: HookedTransformer;
    beforeAll(async () => {
      model = await tinyModel(arch);
    });
    afterAll(async () => model && (await model.executor.dropWeights(model.weights)));

    it('greedy tokens equal recomputation token for token, each step\'s logits within 1e-4; a batch of different lengths equals each prompt alone', async () => {
      const greedy = { temperature: 0, maxNewTokens: STEPS, stopTokens: [], returnLogits: true };
      const [long, short] = await generateBatch(model, [PROMPT, SHORT], greedy);
      for (const [prompt, got] of [[PROMPT, long], [SHORT, short]] as const) {
        const ref = await greedyByRecomputation(model, prompt, STEPS);
        expect(got.tokens).toEqual(ref.tokens);
        expect(got.finishReason).toBe('length');
        got.logits!.forEach((row, i) => expect(rel(row, ref.logits[i])).toBeLessThan(1e-4));
        const alone = await generate(model, prompt, greedy);
        expect(alone.tokens).toEqual(ref.tokens);
        alone.logits!.forEach((row, i) => expect(rel(row, ref.logits[i])).toBeLessThan(1e-4));
      }
      // Sliding-window families: the generated positions run past the window.
      if (model.cfg.slidingWindow) expect(PROMPT.length + STEPS).toBeGreaterThan(model.cfg.slidingWindow);
    });

    it('a steering vector added at every position changes the output exactly as in an uncached rerun with that vector', async () => {
      const rng = new Rng(11);
      const v = Tensor.f32(Array.from({ length: model.cfg.dModel }, () => 4 * rng.normal()), [model.cfg.dModel]);
      const steer: Intervention[] = [{ hook: 'blocks.0.hook_resid_post', op: 'add', value: v }];
      const ref = await greedyByRecomputation(model, PROMPT, STEPS, steer);
      const plain = await greedyByRecomputation(model, PROMPT, STEPS);
      expect(ref.tokens).not.toEqual(plain.tokens);
      const got = await generate(model, PROMPT, { temperature: 0, maxNewTokens: STEPS, stopTokens: [], interventions: steer, returnLogits: true });
      expect(got.tokens).toEqual(ref.tokens);
      got.logits!.forEach((row, i) => expect(rel(row, ref.logits[i])).toBeLessThan(1e-4));
    });
  });
}

describe('hook callbacks and sampling in generation', () => {
  let model: HookedTransformer;
  beforeAll(async () => {
    model = await tinyModel('llama');
  });
  afterAll(async () => model && (await model.executor.dropWeights(model.weights)));

  it('a callback runs at every step and adding the vector there equals the declarative intervention', async () => {
    const rng = new Rng(3);
    const v = Float32Array.from({ length: model.cfg.dModel }, () => 4 * rng.normal());
    const shapes: number[][] = [];
    const viaCallback = await generate(model, PROMPT, {
      temperature: 0, maxNewTokens: 6, stopTokens: [],
      callbacks: {
        'blocks.1.hook_resid_pre': (act) => {
          shapes.push(act.shape);
          const out = act.f32.slice();
          for (let i = 0; i < out.length; i++) out[i] += v[i % v.length];
          return Tensor.f32(out, act.shape);
        },
      },
    });
    const D = model.cfg.dModel;
    expect(shapes).toEqual([[1, PROMPT.length, D], ...Array.from({ length: 5 }, () => [1, 1, D])]);
    const declarative = await greedyByRecomputation(model, PROMPT, 6, [{ hook: 'blocks.1.hook_resid_pre', op: 'add', value: Tensor.f32(v, [D]) }]);
    expect(viaCallback.tokens).toEqual(declarative.tokens);
  });

  it('a KvCache continues rows of different lengths by several tokens each as whole runs do; rows can be dropped; misuse is refused', async () => {
    const V = model.cfg.dVocab;
    const at = (logits: Float32Array, row: number) => logits.slice(row * V, (row + 1) * V);
    const kv = await model.createKvCache();
    try {
      await model.runWithHooks([PROMPT, SHORT], { kvCache: kv });
      expect([kv.rows, kv.slots, kv.nextPositions]).toEqual([2, PROMPT.length, [PROMPT.length, SHORT.length]]);
      const more = [[11, 290, 13], [262]];
      const step = (await model.runWithHooks(more, { kvCache: kv })).logits; // [2, 3, V]
      for (const [b, prompt] of [PROMPT, SHORT].entries()) {
        const whole = (await model.run([[...prompt, ...more[b]]])).f32;
        more[b].forEach((_, j) => expect(rel(at(step.f32, b * 3 + j), at(whole, prompt.length + j))).toBeLessThan(1e-4));
      }
      await kv.keepRows([1]);
      expect([kv.rows, kv.nextPositions]).toEqual([1, [SHORT.length + 1]]);
      const last = (await model.runWithHooks([[318]], { kvCache: kv })).logits.f32;
      const whole = (await model.run([[...SHORT, 262, 318]])).f32;
      expect(rel(last, at(whole, SHORT.length + 1))).toBeLessThan(1e-4);
      await expect(model.runWithHooks([[1], [2]], { kvCache: kv })).rejects.toThrow(/holds 1 rows; this run gives 2/);
      await expect(kv.keepRows([3])).rejects.toThrow(/row 3 is not in the key\/value cache/);
    } finally {
      await kv.release();
    }
    await expect(model.runWithHooks([[1]], { kvCache: kv })).rejects.toThrow(/was released/);
  });

  it('rows that stop early leave the batch; the others still equal recomputation of each prompt alone', async () => {
    // Three prompts of different lengths (padding gaps in the cache of the two shorter); the stop
    // token is one the middle row draws early, so that row leaves while the others go on.
    const prompts = [PROMPT, SHORT, [13, 262, 464, 290, 11, 318, 339]];
    const refs = await Promise.all(prompts.map((p) => greedyByRecomputation(model, p, STEPS)));
    const stopToken = refs[1].tokens[2];
    const cut = (tokens: number[]) => (tokens.includes(stopToken) ? tokens.slice(0, tokens.indexOf(stopToken)) : tokens);
    const got = await generateBatch(model, prompts, { temperature: 0, maxNewTokens: STEPS, stopTokens: [stopToken], returnLogits: true });
    got.forEach((g, b) => {
      expect(g.tokens).toEqual(cut(refs[b].tokens));
      g.logits!.forEach((row, i) => expect(rel(row, refs[b].logits[i])).toBeLessThan(1e-4));
    });
    expect(got[1].finishReason).toBe('stop');
    expect(got[1].tokens.length).toBeLessThan(Math.max(got[0].tokens.length, got[2].tokens.length));
  });

  it('sampled rows of a batch equal each prompt alone with seed + row, cached or not; the stream yields the same tokens', async () => {
    const opts = { temperature: 1.3, topK: 0, topP: 0.95, minP: 0.01, repetitionPenalty: 1.2, maxNewTokens: 8, stopTokens: [], seed: 7 };
    const batch = await generateBatch(model, [PROMPT, SHORT], opts);
    expect((await generate(model, PROMPT, opts)).tokens).toEqual(batch[0].tokens);
    expect((await generate(model, SHORT, { ...opts, seed: 8 })).tokens).toEqual(batch[1].tokens);
    expect((await generateBatch(model, [PROMPT, SHORT], { ...opts, useCache: false })).map((g) => g.tokens)).toEqual(batch.map((g) => g.tokens));
    const streamed: number[][] = [[], []];
    for await (const c of generateStream(model, [PROMPT, SHORT], opts)) streamed[c.row].push(c.token);
    expect(streamed).toEqual(batch.map((g) => g.tokens));
    // A different seed draws differently (the sampler is not greedy in disguise).
    const others = await Promise.all([1, 2, 3].map((seed) => generate(model, PROMPT, { ...opts, seed })));
    expect(others.some((g) => g.tokens.join() !== batch[0].tokens.join())).toBe(true);
  });

  it('sampling draws each token with its filtered probability', () => {
    // 20,000 draws from one row: every frequency within 4 standard errors of the distribution's probability.
    const row = Float32Array.from([2, 1.5, 1, 0.2, -1, -3]);
    const dist = samplingDistribution(row, { temperature: 0.7, topK: 0, topP: 0.9 });
    const counts = new Map<number, number>();
    const n = 20000;
    const rng = new Rng(1);
    for (let i = 0; i < n; i++) {
      let r = rng.next();
      let pick = dist.ids[dist.ids.length - 1];
      for (let j = 0; j < dist.ids.length; j++) if ((r -= dist.probs[j]) < 0) { pick = dist.ids[j]; break; }
      counts.set(pick, (counts.get(pick) ?? 0) + 1);
    }
    dist.ids.forEach((id, j) => {
      const p = dist.probs[j];
      expect(Math.abs((counts.get(id) ?? 0) / n - p)).toBeLessThan(4 * Math.sqrt((p * (1 - p)) / n));
    });
  });

  it('refuses bad options with one clear message', async () => {
    await expect(generate(model, PROMPT, { topP: 0 })).rejects.toThrow(/topP must be in \(0, 1\]/);
    await expect(generate(model, PROMPT, { temperature: -1 })).rejects.toThrow(LanternError);
    await expect(generate(model, PROMPT, { interventions: [{ hook: 'blocks.0.hook_resid_post', op: 'zero', positions: [0] }] })).rejects.toThrow(/apply at every position/);
    await expect(generate(model, PROMPT, { stopTokens: [model.cfg.dVocab] })).rejects.toThrow(/outside the vocabulary/);
    await expect(generate(model, [], {})).rejects.toThrow(/empty/);
  });
});

describe('sampling filters on constructed logit rows', () => {
  // softmax([3, 2, 1, 0, -1]) = 0.6364, 0.2341, 0.0861, 0.0317, 0.0117 (hand-computed: e^x / 31.57...).
  const row = Float32Array.from([1, 3, -1, 2, 0]); // ids by rank: 1, 3, 0, 4, 2
  const kept = (d: { ids: number[] }) => [...d.ids].sort((a, b) => a - b);
  /** The distribution's probabilities by id. */
  const byId = (d: { ids: number[]; probs: number[] }) => new Map(d.ids.map((id, j) => [id, d.probs[j]]));
  const probsOf = (logits: number[]) => {
    const e = logits.map((x) => Math.exp(x));
    const s = e.reduce((p, q) => p + q, 0);
    return e.map((x) => x / s);
  };

  it('top-k keeps the k most likely, renormalised', () => {
    const d = samplingDistribution(row, { temperature: 1, topK: 2 });
    expect(kept(d)).toEqual([1, 3]);
    probsOf([3, 2]).forEach((p, j) => expect(byId(d).get([1, 3][j])).toBeCloseTo(p, 6));
    // Ties with the k-th are kept.
    expect(kept(samplingDistribution(Float32Array.from([1, 2, 2, 0]), { temperature: 1, topK: 2 }))).toEqual([1, 2]);
    expect(kept(samplingDistribution(Float32Array.from([2, 2, 2, 0]), { temperature: 1, topK: 2 }))).toEqual([0, 1, 2]);
  });

  it('top-p keeps the smallest most-likely set whose mass reaches p', () => {
    // Masses 0.6364, +0.2341 = 0.8705, +0.0861 = 0.9566.
    expect(kept(samplingDistribution(row, { temperature: 1, topK: 0, topP: 0.6 }))).toEqual([1]);
    expect(kept(samplingDistribution(row, { temperature: 1, topK: 0, topP: 0.87 }))).toEqual([1, 3]);
    expect(kept(samplingDistribution(row, { temperature: 1, topK: 0, topP: 0.88 }))).toEqual([0, 1, 3]);
    expect(kept(samplingDistribution(row, { temperature: 1, topK: 0, topP: 0.96 }))).toEqual([0, 1, 3, 4]);
    const d = samplingDistribution(row, { temperature: 1, topK: 0, topP: 0.88 });
    probsOf([3, 2, 1]).forEach((p, j) => expect(byId(d).get([1, 3, 0][j])).toBeCloseTo(p, 6));
    // After top-k: the mass is the renormalised top-2's (0.731, 0.269), so 0.7 keeps one and 0.75 both.
    expect(kept(samplingDistribution(row, { temperature: 1, topK: 2, topP: 0.7 }))).toEqual([1]);
    expect(kept(samplingDistribution(row, { temperature: 1, topK: 2, topP: 0.75 }))).toEqual([1, 3]);
  });

  it('min-p keeps tokens at least min_p times as likely as the most likely', () => {
    // p / p_max = e^(x - 3): 1, 0.368, 0.135, 0.0498, 0.0183.
    expect(kept(samplingDistribution(row, { temperature: 1, topK: 0, minP: 0.1 }))).toEqual([0, 1, 3]);
    expect(kept(samplingDistribution(row, { temperature: 1, topK: 0, minP: 0.04 }))).toEqual([0, 1, 3, 4]);
    expect(kept(samplingDistribution(row, { temperature: 1, topK: 0, minP: 0.5 }))).toEqual([1]);
    // With all tokens kept, the probabilities are the plain softmax.
    const all = byId(samplingDistribution(row, { temperature: 1, topK: 0 }));
    probsOf([1, 3, -1, 2, 0]).forEach((p, id) => expect(all.get(id)).toBeCloseTo(p, 6));
  });

  it('temperature divides the logits before the filters', () => {
    // At T = 2 the masses are softmax([1.5, 1, 0.5, 0, -0.5]): 0.4263, +0.2586 = 0.6849, +0.1568 = 0.8417.
    const d = samplingDistribution(row, { temperature: 2, topK: 0, topP: 0.8 });
    expect(kept(d)).toEqual([0, 1, 3]);
    probsOf([1.5, 1, 0.5]).forEach((p, j) => expect(byId(d).get([1, 3, 0][j])).toBeCloseTo(p, 6));
  });

  it('repetition penalty divides positive logits and multiplies negative ones, once per distinct token', () => {
    const r = Float32Array.from([2, -2, 1, 0.5]);
    applyRepetitionPenalty(r, [0, 1, 1, 3], 2);
    expect(Array.from(r)).toEqual([1, -4, 1, 0.25]);
  });
});

describe('stop strings and streamed text', () => {
  let model: HookedTransformer;
  beforeAll(async () => {
    model = await tinyModel('gpt2');
  });
  afterAll(async () => model && (await model.executor.dropWeights(model.weights)));

  it('a stop string spanning two tokens ends the text before it, after the token that completed it; the stream concatenates to the text', async () => {
    const prompt = 'The quick brown fox';
    const free = await generate(model, prompt, { temperature: 0, maxNewTokens: 16, stopTokens: [] });
    const pieces = free.tokens.map((_, i) => model.toString(free.tokens.slice(0, i + 1)));
    // A boundary between two tokens that both end in whole characters: the stop string is the last
    // character before it and the first after it.
    const i = pieces.findIndex((p, j) => j > 0 && j + 1 < pieces.length && !/\uFFFD/.test(pieces[j + 1]) && pieces[j + 1].length > p.length && p.length > pieces[j - 1].length);
    expect(i).toBeGreaterThan(0);
    const stop = pieces[i + 1].slice(pieces[i].length - 1, pieces[i].length + 1);
    const first = free.text.indexOf(stop);
    const completing = pieces.findIndex((p) => p.includes(stop)) + 1;
    expect(pieces[completing - 2].length).toBeGreaterThan(first); // it begins before the completing token
    const got = await generate(model, prompt, { temperature: 0, maxNewTokens: 16, stopTokens: [], stop: ['never-there', stop] });
    expect(got.text).toBe(free.text.slice(0, first));
    expect(got.tokens).toEqual(free.tokens.slice(0, completing));
    expect(got.finishReason).toBe('stop');
    let streamed = '';
    for await (const c of generateStream(model, prompt, { temperature: 0, maxNewTokens: 16, stopTokens: [], stop: [stop] })) {
      streamed += c.text;
      expect(streamed.includes(stop)).toBe(false);
    }
    expect(streamed).toBe(got.text);
  });

  it('a stop token ends the row without joining the output', async () => {
    const free = await generate(model, 'Hello there', { temperature: 0, maxNewTokens: 8, stopTokens: [] });
    const got = await generate(model, 'Hello there', { temperature: 0, maxNewTokens: 8, stopTokens: [free.tokens[3]] });
    const at = free.tokens.indexOf(free.tokens[3]);
    expect(got.tokens).toEqual(free.tokens.slice(0, at));
    expect(got.finishReason).toBe('stop');
  });
});

describe('lantern generate', () => {
  it('streams the prompt and its continuation to stdout and saves model, settings, seed, tokens and text as JSON', async () => {
    const model = await tinyModel('gpt2');
    const dir = path.join(tmp, 'gpt2');
    const out = path.join(tmp, 'gen.json');
    const args = ['generate', '--model', dir, '--text', 'The quick brown fox', '-n', '8', '--temperature', '0.9', '--top-p', '0.95', '--seed', '3', '--stop-token', '999'];
    const r = await runLantern([...args, '--json', out], tmp);
    expect(r.stderr).toBe('');
    const saved = JSON.parse(fs.readFileSync(out, 'utf8'));
    const lib = await generate(model, 'The quick brown fox', { maxNewTokens: 8, temperature: 0.9, topP: 0.95, seed: 3, stopTokens: [999] });
    expect(saved).toMatchObject({ model: dir, method: 'generate', seed: 3, tokens: lib.tokens, text: lib.text, finishReason: lib.finishReason });
    expect(saved.settings).toMatchObject({ maxNewTokens: 8, temperature: 0.9, topK: 40, topP: 0.95, seed: 3, stopTokens: [999] });
    expect(r.stdout).toBe(`The quick brown fox${lib.text}\nsaved JSON to ${out}\n`);
    await model.executor.dropWeights(model.weights);
    expectOneLineError(await runLantern(['generate', '--model', dir, '--text', 'x', '--top-p', '0'], tmp), /--top-p must be a number in \(0, 1\]/);
  });
});
