import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { steering as S, representations as R, architectureFor, loadModel, writeRandomModel, generate, Rng, LanternError, HookedTransformer, BUNDLED_MODEL } from '../src/index.js';
import { maxAbsDiff, seededModel } from './helpers.js';

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'lantern-steering-'));
afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));

function randomUnit(d: number, seed: number): number[] {
  const rng = new Rng(seed);
  const u = Array.from({ length: d }, () => rng.normal());
  const n = Math.hypot(...u);
  return u.map((x) => x / n);
}

const dot = (a: ArrayLike<number>, b: ArrayLike<number>) => Array.from(a).reduce((s, x, i) => s + x * b[i], 0);

describe('directional ablation: orthogonalized weights equal the run-time ablation', () => {
  for (const arch of ['gpt2', 'llama', 'qwen2', 'qwen3', 'mistral', 'phi3', 'gemma', 'gpt_neox']) {
    it(arch, async () => {
      const model = await seededModel(architectureFor(arch).presets.tiny, 3, { matrixStd: 0.08 });
      const u = randomUnit(model.cfg.dModel, 11);
      const tokens = [[5, 17, 301, 42, 9, 77], [8, 8, 120, 4, 650, 31]];
      const ablated = await model.runWithHooks(tokens, { interventions: S.directionalAblation(model, u), cache: [`blocks.${model.cfg.nLayers - 1}.hook_resid_post`] });
      const plain = await model.run(tokens);
      const ortho = await S.orthogonalizedModel(model, u);
      const baked = await ortho.runWithCache(tokens, S.residualStreamHooks(ortho));
      expect(maxAbsDiff(baked.logits, ablated.logits)).toBeLessThan(2e-4);
      // The ablation does something, and the stream holds no u anywhere.
      expect(maxAbsDiff(plain, ablated.logits)).toBeGreaterThan(1e-2);
      for (const name of baked.cache.names) {
        const a = baked.cache.get(name).f32;
        const D = model.cfg.dModel;
        for (let r = 0; r < a.length / D; r++) expect(Math.abs(dot(a.subarray(r * D, (r + 1) * D), u))).toBeLessThan(1e-4);
      }
    });
  }

  it('saved orthogonalized weights load and run as the ablated model', async () => {
    const src = path.join(tmp, 'gpt2');
    writeRandomModel(src, architectureFor('gpt2').presets.tiny, { seed: 4, matrixStd: 0.08 });
    const model = await loadModel(src);
    const u = randomUnit(model.cfg.dModel, 2);
    const out = path.join(tmp, 'gpt2-ortho');
    const files = await S.saveOrthogonalized(model, u, out, { hook: 'all residual' });
    expect(files).toContain('tokenizer.json');
    const reloaded = await loadModel(out);
    expect(reloaded.cfg.tiedUnembed).toBe(false);
    const prompt = 'The cat sat on the mat';
    const ablated = await model.runWithHooks(prompt, { interventions: S.directionalAblation(model, u) });
    expect(maxAbsDiff(await reloaded.run(prompt), ablated.logits)).toBeLessThan(2e-4);
  });

  it('is refused where post-norms sit between a sublayer and the stream', async () => {
    const model = await seededModel(architectureFor('gemma2').presets.tiny, 1);
    await expect(S.orthogonalizedModel(model, randomUnit(model.cfg.dModel, 1))).rejects.toThrow(/does not apply to gemma2: its post-attention/);
  });
});

describe('steering on a model with a tokenizer', () => {
  let model: HookedTransformer;
  beforeAll(async () => {
    const dir = path.join(tmp, 'gpt2-tok');
    writeRandomModel(dir, architectureFor('gpt2').presets.tiny, { seed: 7, matrixStd: 0.08 });
    model = await loadModel(dir);
  });

  it('planted: adding c·u at the last residual moves a logit difference by the hand-computed amount', async () => {
    const L = model.cfg.nLayers;
    const hook = `blocks.${L - 1}.hook_resid_post`;
    const W = await model.executor.readWeights(model.weights, ['ln_final.w', 'ln_final.b', 'embed.W_E']);
    const D = model.cfg.dModel;
    const [a] = model.encode(' the');
    const [b] = model.encode(' a');
    const we = W['embed.W_E'].f32;
    // The planted direction: what separates the two tokens' unembeddings.
    const u = Array.from({ length: D }, (_, j) => we[a * D + j] - we[b * D + j]);
    const vector: S.SteeringVector = { format: 'lantern-steering-vector', method: 'mean-difference', model: model.source, hook, dModel: D, rows: [u], datasetHash: '', settings: {} };
    const prompts = ['The animal is a', 'I saw a'];
    const clean = await model.runWithCache(prompts, [hook]);
    const byHand = (coef: number) => {
      let total = 0;
      clean.batch.lengths.forEach((n, p) => {
        const x = Array.from(clean.cache.get(hook).f32.subarray((p * clean.batch.seq + n - 1) * D, (p * clean.batch.seq + n) * D), (v, j) => v + coef * u[j]);
        const mean = x.reduce((s, v) => s + v, 0) / D;
        const sd = Math.sqrt(x.reduce((s, v) => s + (v - mean) ** 2, 0) / D + model.cfg.lnEps);
        const y = x.map((v, j) => ((v - mean) / sd) * W['ln_final.w'].f32[j] + W['ln_final.b'].f32[j]);
        total += y.reduce((s, v, j) => s + v * (we[a * D + j] - we[b * D + j]), 0);
      });
      return total / prompts.length;
    };
    const coefs = [0, 0.5, 2, -1];
    const sweep = await S.coefficientSweep(model, vector, { coefs, effect: { kind: 'logit-diff', prompts, target: ' the', foil: ' a' }, neutral: ['Once upon a time there was'] });
    sweep.points.forEach((p, i) => expect(p.effect).toBeCloseTo(byHand(coefs[i]), 3));
    expect(sweep.points[2].effect - sweep.points[0].effect).toBeGreaterThan(0.5);
    expect(sweep.points[0].kl).toBeCloseTo(0, 9);
    expect(sweep.points[2].kl).toBeGreaterThan(sweep.points[1].kl);
    expect(sweep).toMatchObject({ model: model.source, method: 'steering-sweep', hook, settings: { coefs } });
  });

  it('ActAdd at +1 turns the negative prompt into the positive one from that layer on', async () => {
    const hook = 'blocks.1.hook_resid_pre';
    const pos = 'I love this film';
    const neg = 'I hate this film';
    const v = await S.actAddVector(model, pos, neg, { hook });
    expect(v.rows.length).toBe(model.toTokens(pos).length);
    const { promptInterventions } = S.steeringInterventions(model, v, 1);
    const steered = await model.runWithHooks(neg, { interventions: promptInterventions });
    expect(maxAbsDiff(steered.logits, await model.run(pos))).toBeLessThan(1e-4);
  });

  it('ActAdd in generation: the cached and recomputed paths give the same steps', async () => {
    const v = await S.actAddVector(model, 'Love', 'Hate', { hook: 'blocks.0.hook_resid_pre', start: 1 });
    const iv = S.steeringInterventions(model, v, 4);
    const opts = { maxNewTokens: 5, temperature: 0, returnLogits: true, ...iv };
    const cached = await generate(model, 'The weather today is', opts);
    const full = await generate(model, 'The weather today is', { ...opts, useCache: false });
    const plain = await generate(model, 'The weather today is', { maxNewTokens: 5, temperature: 0, returnLogits: true });
    expect(cached.tokens).toEqual(full.tokens);
    cached.logits!.forEach((l, i) => expect(Math.max(...l.map((x, j) => Math.abs(x - full.logits![i][j])))).toBeLessThan(1e-3));
    expect(Math.max(...cached.logits![0].map((x, j) => Math.abs(x - plain.logits![0][j])))).toBeGreaterThan(1e-3);
  });

  it('CAA is the mean of the pairs\' oriented differences; steer puts plain and steered side by side', async () => {
    const hook = 'blocks.1.hook_resid_pre';
    const pairs: R.ContrastPair[] = [
      { positive: 'Good day', negative: 'Bad day', label: 1 },
      { positive: 'a sad song', negative: 'a happy song', label: 0 },
    ];
    const v = await S.caaVector(model, pairs, { hook });
    const last = async (t: string) => {
      const r = await model.runWithCache(t, [hook]);
      const D = model.cfg.dModel;
      const n = r.batch.lengths[0];
      return Array.from(r.cache.get(hook).f32.subarray((n - 1) * D, n * D));
    };
    const [a, b, c, d] = await Promise.all(['Good day', 'Bad day', 'a sad song', 'a happy song'].map(last));
    const want = a.map((_, j) => ((a[j] - b[j]) + (d[j] - c[j])) / 2);
    expect(Math.max(...want.map((x, j) => Math.abs(x - v.rows[0][j])))).toBeLessThan(1e-5);
    const res = await S.steer(model, ['Once upon a time'], { vector: v, coef: 8, maxNewTokens: 6, temperature: 0, neutral: ['It is a day.'] });
    expect(res.rows[0].plain).not.toEqual(res.rows[0].steered);
    expect(res.kl).toBeGreaterThan(0);
    expect(res).toMatchObject({ method: 'steer', hook, vectorMethod: 'caa', seed: 0, settings: { coef: 8 } });
    const zero = await S.steer(model, ['Once upon a time'], { vector: v, coef: 0, maxNewTokens: 6, temperature: 0 });
    expect(zero.rows[0].steered).toEqual(zero.rows[0].plain);
  });

  it('reading vector: first principal component of the differences, sign from labels; reading scores are projections', async () => {
    // Planted differences: ±(3u + noise), oriented by the labels, recover u.
    const u = randomUnit(16, 5);
    const rng = new Rng(9);
    const diffs = Array.from({ length: 200 }, () => Float64Array.from(u, (x) => 3 * x + 0.3 * rng.normal()));
    const { direction, explained } = S.firstComponent(diffs);
    expect(R.cosine(direction, u)).toBeGreaterThan(0.99);
    expect(explained).toBeGreaterThan(0.5);

    const hook = 'blocks.1.hook_resid_post';
    const pairs: R.ContrastPair[] = ['sun', 'rain', 'snow', 'wind'].map((w) => ({ positive: `The ${w} is nice`, negative: `The ${w} is awful`, label: 1 }));
    const v = await S.readingVector(model, pairs, { hook });
    expect(Math.hypot(...v.rows[0])).toBeCloseTo(1, 6);
    const diffsModel = await S.pairDifferences(model, pairs, { hook });
    expect(diffsModel.reduce((s, d) => s + dot(d, v.rows[0]), 0)).toBeGreaterThan(0);
    const flipped = await S.readingVector(model, pairs.map((p) => ({ ...p, label: 0 })), { hook });
    expect(R.cosine(flipped.rows[0], v.rows[0])).toBeCloseTo(-1, 6);
    const scores = await S.readingScores(model, 'The sun is nice', v);
    const r = await model.runWithCache('The sun is nice', [hook]);
    const D = model.cfg.dModel;
    expect(scores.tokens.length).toBe(r.batch.lengths[0]);
    scores.scores.forEach((s, t) => expect(s).toBeCloseTo(dot(r.cache.get(hook).f32.subarray(t * D, (t + 1) * D), v.rows[0]), 4));
  });

  it('a probe direction steers; saved vectors reload', async () => {
    const hook = 'blocks.1.hook_resid_post';
    const data = await R.harvestProbeData(model, ['good', 'great', 'fine', 'nice', 'bad', 'awful', 'poor', 'vile'].map((w, i) => ({ text: `It was ${w}`, label: i < 4 ? 1 : 0 })), { hooks: [hook] });
    const t = R.trainProbe(data.get(hook)!, { kind: 'mass-mean' });
    const probeFile = path.join(tmp, 'p.json');
    R.saveProbe(probeFile, R.toSaved(t, { model: model.source, hook, dModel: model.cfg.dModel, positions: 'last', dataset: 'x', datasetHash: 'h', seed: 0 }));
    const v = S.probeVector(model, probeFile);
    expect(R.cosine(v.rows[0], R.rawDirection(t.probe))).toBeCloseTo(1, 6);
    const file = path.join(tmp, 'v.json');
    S.saveSteeringVector(file, v);
    expect(S.loadSteeringVector(file, model)).toEqual(v);
    // The probe's score rises with the coefficient by |w| per unit (the direction is unit length).
    const sweep = await S.coefficientSweep(model, v, { coefs: [0, 1], effect: { kind: 'probe', probe: t.probe, hook, prompts: ['It was okay'] }, neutral: ['It was.'] });
    const w = R.rawDirection(t.probe);
    expect(sweep.points[1].effect - sweep.points[0].effect).toBeCloseTo(Math.hypot(...w), 3);
  });

  it('bad input: d_model mismatch, unknown hook and layer, coefficient not finite', async () => {
    const v: S.SteeringVector = { format: 'lantern-steering-vector', method: 'caa', model: 'other', hook: 'blocks.0.hook_resid_pre', dModel: 32, rows: [Array(32).fill(0.1)], datasetHash: '', settings: {} };
    expect(() => S.steeringInterventions(model, v, 1)).toThrow(new LanternError(`steering vector has d_model 32 (from other); ${model.source} has d_model 64`));
    const ok = { ...v, dModel: 64, rows: [Array(64).fill(0.1)] };
    expect(() => S.steeringInterventions(model, { ...ok, hook: 'blocks.0.hook_resid_pr' }, 1)).toThrow(/unknown hook 'blocks.0.hook_resid_pr'; did you mean 'blocks.0.hook_resid_pre'/);
    expect(() => S.steeringInterventions(model, { ...ok, hook: 'blocks.0.attn.hook_pattern' }, 1)).toThrow(/steering vectors live at \[batch, pos, d_model\] hooks/);
    expect(() => S.layerHook(model, 7)).toThrow("layer 7 is outside the model's layers [0, 1]");
    expect(() => S.steeringInterventions(model, ok, Number.NaN)).toThrow('coefficient must be a finite number, got NaN');
    expect(() => S.steeringInterventions(model, ok, Infinity)).toThrow('coefficient must be a finite number, got Infinity');
    await expect(S.coefficientSweep(model, ok, { coefs: [1, Infinity], effect: { kind: 'logit-diff', prompts: ['a'], target: ' a', foil: ' b' }, neutral: ['a'] })).rejects.toThrow('coefficient 1 must be a finite number');
    expect(() => S.directionalAblation(model, Array(64).fill(0))).toThrow('direction must be finite and non-zero');
    const long = await S.actAddVector(model, 'one two three four five six', 'a', { hook: 'blocks.0.hook_resid_pre' });
    await expect(S.steer(model, ['Hi'], { vector: long, coef: 1 })).rejects.toThrow(/prompt 0 has \d+ tokens/);
  });
});

describe('hidden-state safety analysis (bundled model, sample dataset)', () => {
  it('probe accuracy by layer and the logit lens of the harmful - harmless mean difference', async () => {
    const model = await loadModel(BUNDLED_MODEL);
    const ds = S.harmfulHarmlessSample();
    const res = await S.safetyAnalysis(model, ds.examples, { topK: 3, dataset: 'sample' });
    expect(res.layers.map((l) => l.hook)).toEqual(R.residHooks(model));
    expect(res.settings.chat).toBe(false); // the bundled model has no chat template
    for (const l of res.layers) expect(l.test.n + l.train.n).toBe(ds.examples.length);
    // Independent check of the last layer: the mean difference from plain cached runs, and its logits through ln_final's weight and W_E.
    const hook = res.layers[res.layers.length - 1].hook;
    const D = model.cfg.dModel;
    const r = await model.runWithCache(ds.examples.map((e) => e.text), [hook]);
    const sums = [new Float64Array(D), new Float64Array(D)];
    const counts = [0, 0];
    ds.examples.forEach((e, i) => {
      counts[e.label]++;
      const o = (i * r.batch.seq + r.batch.lengths[i] - 1) * D;
      for (let j = 0; j < D; j++) sums[e.label][j] += r.cache.get(hook).f32[o + j];
    });
    const diff = Array.from({ length: D }, (_, j) => sums[1][j] / counts[1] - sums[0][j] / counts[0]);
    expect(Math.max(...diff.map((x, j) => Math.abs(x - res.direction[j])))).toBeLessThan(1e-3);
    const W = await model.executor.readWeights(model.weights, ['ln_final.w', 'embed.W_E']);
    const top = res.layers[res.layers.length - 1].promoted[0];
    const id = top.id;
    const byHand = diff.reduce((s, x, j) => s + x * W['ln_final.w'].f32[j] * W['embed.W_E'].f32[id * D + j], 0);
    expect(top.logit).toBeCloseTo(byHand, 2);
  });
});
