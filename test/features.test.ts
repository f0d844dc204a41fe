// Feature dashboards against a brute-force computation: every activation of every neuron cached
// over the whole corpus, sorted and binned in plain JavaScript, and the decoder directions,
// logits and cosines computed from the raw random weights. Dashboards must equal it.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { LanternError } from '../src/errors.js';
import type { HookedTransformer } from '../src/models/hooked.js';
import { randomWeights, TINY_GPT2 } from '../src/models/random.js';
import { weightShapes } from '../src/models/forward.js';
import { Rng } from '../src/rng.js';
import {
  buildDashboards, checkSource, dashboardsHtml, DashboardSet, featuresOnText, histogramEdges, neuronSource, readDashboard, readDashboardIndex,
  writeDashboards, writeExplanations, FeatureSource,
} from '../src/methods/features/index.js';
import { seededModel } from './helpers.js';

const CFG = { ...TINY_GPT2 };
const SEED = 11;
const HOOK = 'blocks.1.mlp.hook_post';
let model: HookedTransformer;
let source: FeatureSource;
let corpus: number[];
let set: DashboardSet;
let tmp: string;
/** acts[offset][feature], from one cached run per row (the reference). */
let acts: Float32Array[];
const SEQ = 16;

beforeAll(async () => {
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'lantern-features-'));
  model = await seededModel(CFG, SEED);
  source = await neuronSource(model, HOOK);
  const rng = new Rng(3);
  corpus = Array.from({ length: 16 * 9 + 5 }, () => rng.int(CFG.dVocab));
  set = await buildDashboards(model, source, corpus, { seq: SEQ, batchSize: 3, topK: 6, contextBefore: 3, contextAfter: 2, randomContexts: 5, logits: 4, neighbours: 3, seed: 2 });
  acts = [];
  for (let s = 0; s < corpus.length; s += SEQ) {
    const row = corpus.slice(s, s + SEQ);
    const { cache } = await model.runWithCache([row], [HOOK]);
    const a = cache.get(HOOK).f32;
    for (let t = 0; t < row.length; t++) acts.push(a.slice(t * CFG.dMlp, (t + 1) * CFG.dMlp));
  }
});
afterAll(async () => {
  await model.executor.dropWeights(model.weights);
  fs.rmSync(tmp, { recursive: true, force: true });
});

describe('dashboards', () => {
  it('top contexts, density, mean, max and histogram equal a brute-force pass', () => {
    const F = CFG.dMlp;
    expect(set.size).toBe(F);
    const edges = histogramEdges();
    for (let f = 0; f < F; f++) {
      const col = acts.map((a) => a[f]);
      const firing = col.filter((x) => x > 0);
      const d = set.features[f];
      expect(d.density).toBeCloseTo(firing.length / corpus.length, 12);
      expect(d.mean).toBeCloseTo(col.reduce((a, b) => a + b, 0) / corpus.length, 5);
      expect(d.max).toBeCloseTo(firing.length ? Math.max(...firing) : 0, 5);
      const want = col.map((x, off) => ({ x, off })).filter((e) => e.x > 0).sort((a, b) => b.x - a.x).slice(0, 6);
      expect(d.top.map((c) => c.offset)).toEqual(want.map((e) => e.off));
      for (const c of d.top) {
        const rowStart = c.offset - (c.offset % SEQ);
        const rowEnd = Math.min(rowStart + SEQ, corpus.length);
        const from = Math.max(rowStart, c.offset - 3);
        const to = Math.min(rowEnd, c.offset + 3);
        expect(c.ids).toEqual(corpus.slice(from, to));
        expect(c.at).toBe(c.offset - from);
        c.activations.forEach((a, i) => expect(a).toBeCloseTo(acts[from + i][f], 5));
      }
      // Bins [edges[i], edges[i+1]), the first and last open-ended.
      const counts = new Array(edges.length - 1).fill(0);
      for (const x of firing) {
        let b = edges.findIndex((e, i) => i > 0 && x < e) - 1;
        if (b < 0) b = x < edges[1] ? 0 : edges.length - 2;
        counts[b]++;
      }
      expect(d.histogram.counts).toEqual(counts);
      for (const q of d.quantiles) for (const c of q.contexts) {
        expect(c.activation).toBeGreaterThanOrEqual(q.range[0] * (1 - 1e-6));
        expect(c.activation).toBeLessThanOrEqual(q.range[1] * (1 + 1e-6));
        expect(c.activations[c.at]).toBeCloseTo(acts[c.offset][f], 5);
      }
      if (firing.length) expect(d.quantiles.reduce((n, q) => n + q.contexts.length, 0)).toBe(counts.filter((c) => c > 0).length);
    }
    // Random contexts: the windows around their offsets, every feature's activations there.
    expect(set.random.offsets.length).toBe(5);
    set.random.offsets.forEach((off, c) => {
      const from = Math.max(off - (off % SEQ), off - 3);
      expect(set.random.ids[c]).toEqual(corpus.slice(from, from + set.random.ids[c].length));
      for (const f of [0, 7, 100]) set.random.activations[f][c].forEach((a, i) => expect(a).toBeCloseTo(acts[from + i][f], 5));
    });
  });

  it('is the same whatever the batch size (one streaming pass)', async () => {
    const other = await buildDashboards(model, source, corpus, { seq: SEQ, batchSize: 1, topK: 6, contextBefore: 3, contextAfter: 2, randomContexts: 5, logits: 0, neighbours: 0, seed: 2 });
    for (let f = 0; f < set.size; f += 17) {
      expect(other.features[f].top.map((c) => c.offset)).toEqual(set.features[f].top.map((c) => c.offset));
      expect(other.features[f].histogram).toEqual(set.features[f].histogram);
    }
  });

  it('decoder directions, logits and nearest features equal the raw weights\' arithmetic', async () => {
    const raw = randomWeights(CFG, SEED);
    const shape = weightShapes(CFG)['blocks.1.mlp.W_out'];
    const [F, D] = [CFG.dMlp, CFG.dModel];
    expect(shape).toEqual([F, D]);
    const W = raw['blocks.1.mlp.W_out'];
    for (const f of [0, 5, 200]) Array.from(source.decoderDirection!(f)).forEach((v, d) => expect(v).toBeCloseTo(W[f * D + d], 5));
    const WU = await model.unembeddingMatrix();
    const V = CFG.dVocab;
    for (const f of [3, 99]) {
      const logits = Array.from({ length: V }, (_, v) => { let s = 0; for (let d = 0; d < D; d++) s += W[f * D + d] * WU.f32[d * V + v]; return s; });
      const order = logits.map((x, v) => [x, v]).sort((a, b) => b[0] - a[0]);
      expect(set.features[f].logits!.top.map((l) => l.id)).toEqual(order.slice(0, 4).map((o) => o[1]));
      expect(set.features[f].logits!.bottom.map((l) => l.id)).toEqual(order.slice(-4).reverse().map((o) => o[1]));
      set.features[f].logits!.top.forEach((l, i) => expect(l.value).toBeCloseTo(order[i][0], 4));
      const norm = (g: number) => Math.sqrt(Array.from({ length: D }, (_, d) => W[g * D + d] ** 2).reduce((a, b) => a + b));
      const cos = Array.from({ length: F }, (_, g) => { let s = 0; for (let d = 0; d < D; d++) s += W[f * D + d] * W[g * D + d]; return [s / norm(f) / norm(g), g]; })
        .filter(([, g]) => g !== f).sort((a, b) => b[0] - a[0]);
      expect(set.features[f].neighbours!.map((n) => n.index)).toEqual(cos.slice(0, 3).map((c) => c[1]));
      set.features[f].neighbours!.forEach((n, i) => expect(n.cosine).toBeCloseTo(cos[i][0], 4));
    }
  });

  it('stores a folder whose index and single features read back equal, with explanations merged', () => {
    const dir = path.join(tmp, 'dash');
    writeDashboards(set, dir);
    const index = readDashboardIndex(dir);
    expect(index).toMatchObject({ model: set.model, hook: HOOK, source: `neurons:${HOOK}`, dataHash: set.dataHash, seed: 2, size: set.size });
    expect(index.features[9].max).toBe(set.features[9].max);
    const back = readDashboard(dir, 9, index);
    expect(back).toEqual({ ...set.features[9], randomActivations: set.random.activations[9] });
    writeExplanations(dir, { 9: { text: 'fires on nothing', score: 0.5 } });
    expect(readDashboardIndex(dir).features[9]).toMatchObject({ explanation: 'fires on nothing', score: 0.5 });
    expect(readDashboard(dir, 9).explanation).toEqual({ text: 'fires on nothing', score: 0.5 });
    expect(() => readDashboard(dir, set.size)).toThrow(/feature \d+ outside/);
    const html = dashboardsHtml(set, [set.features[9], set.features[10]]);
    expect(html.match(/<section id="f\d+">/g)).toEqual(['<section id="f9">', '<section id="f10">']);
    expect(html).toContain(set.dataHash);
  });

  it('ranks the features that fire on a text as a cached run does', async () => {
    const r = await featuresOnText(model, source, 'ignored', 3).catch((e) => e);
    expect(r).toBeInstanceOf(LanternError); // no tokenizer on a random model: a one-line error, not a crash
    const ids = corpus.slice(0, 8);
    const { cache } = await model.runWithCache([ids], [HOOK]);
    const a = cache.get(HOOK).f32;
    const fake = { ...model, toTokens: () => ids, tokenStrings: (x: number[]) => x.map(String), runWithHooks: model.runWithHooks.bind(model), cfg: model.cfg, hookShapes: model.hookShapes, checkHook: model.checkHook.bind(model), source: model.source } as unknown as HookedTransformer;
    const got = await featuresOnText(fake, source, 'x', 3);
    const maxes = Array.from({ length: CFG.dMlp }, (_, f) => Math.max(...ids.map((_, t) => a[t * CFG.dMlp + f])));
    expect(got.top.map((t) => t.index)).toEqual(maxes.map((m, f) => [m, f]).sort((x, y) => y[0] - x[0]).slice(0, 3).map((x) => x[1]));
  });

  it('bad input: unknown hook, a hook that is not a neuron layer, a width mismatch, a token outside the vocabulary', async () => {
    await expect(neuronSource(model, 'blocks.1.mlp.hook_pots')).rejects.toThrow(/unknown hook 'blocks.1.mlp.hook_pots'; did you mean 'blocks.1.mlp.hook_post'/);
    await expect(neuronSource(model, 'blocks.1.hook_resid_post')).rejects.toThrow(/neuron sources read an MLP's hook_post/);
    expect(() => checkSource(model, source, 999)).toThrow(new RegExp(`expects d_in 999, but ${HOOK.replace(/\./g, '\\.')} of .* has width ${CFG.dMlp}`));
    const wrong = { ...source, hook: 'blocks.9.mlp.hook_post' };
    await expect(buildDashboards(model, wrong, corpus)).rejects.toThrow(/unknown hook 'blocks.9.mlp.hook_post'/);
    const narrow = { ...source, encode: (x: Float32Array) => x.subarray(0, 3) };
    await expect(buildDashboards(model, narrow, corpus, { seq: SEQ })).rejects.toThrow(/returned 3 values for \d+ rows of \d+ features/);
    await expect(buildDashboards(model, source, [1, CFG.dVocab])).rejects.toThrow(/outside the vocabulary/);
  });
});
