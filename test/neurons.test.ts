// Neuron statistics and N2G on the planted n-gram model, whose neurons are known by construction:
// neuron 13 fires exactly on the bigram "t h", neuron 40 exactly at positions 16..23, neuron 5 on
// every "h", and 60 neurons are zero (dead). Thresholds: the labels must be exactly these, and
// N2G's precision and recall on held-out prompts (other seeds) must be >= 0.95.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { HookedTransformer } from '../src/models/hooked.js';
import { loadPlanted, makePlanted, ngramPrompts, NGRAM, LETTER_IDS } from '../src/models/planted/index.js';
import { buildN2G, corpusRows, evaluateN2G, neuronStats, predictN2G } from '../src/methods/neurons/index.js';
import { expectOneLineError, runLantern } from './helpers.js';

let tmp: string;
let folder: string;
let model: HookedTransformer;
beforeAll(async () => {
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'lantern-neurons-'));
  folder = path.join(tmp, 'ngram');
  await makePlanted('ngram-neuron', folder, { measure: false });
  model = (await loadPlanted(folder)).model;
});
afterAll(async () => {
  await model.executor.dropWeights(model.weights);
  fs.rmSync(tmp, { recursive: true, force: true });
});

const corpus = ngramPrompts(150, { seed: 21 }).flatMap((p) => p.tokens);

describe('neuron statistics', () => {
  it('labels the planted neurons: n-gram "t h", positional, token "h", and the 60 zero neurons dead', async () => {
    const s = await neuronStats(model, corpus, { seq: 32 });
    const byNeuron = (n: number) => s.neurons.find((x) => x.neuron === n)!;
    const ng = byNeuron(NGRAM.ngramNeuron);
    expect(ng.label).toBe('n-gram');
    expect(ng.ngram?.tokens).toEqual([NGRAM.first, NGRAM.second]);
    expect(ng.ngram?.count).toBe(300); // two planted bigrams per prompt, nowhere else
    expect(ng.fireRate).toBeCloseTo(300 / corpus.length, 12);
    const pos = byNeuron(NGRAM.positionalNeuron);
    expect(pos.label).toBe('positional');
    expect(pos.positionVariance).toBeGreaterThan(0.99);
    expect(ng.positionVariance).toBeLessThan(0.1);
    expect(byNeuron(NGRAM.currentHDistractorNeuron)).toMatchObject({ label: 'token', ngram: { tokens: [NGRAM.second] } });
    expect(s.counts.dead).toBe(60);
    const live: number[] = [NGRAM.ngramNeuron, NGRAM.positionalNeuron, NGRAM.currentHDistractorNeuron, NGRAM.previousTDistractorNeuron];
    for (const n of s.neurons) expect(n.label === 'dead', `neuron ${n.neuron}`).toBe(!live.includes(n.neuron));
    // The top examples are the bigram's "h" and sorted.
    for (const e of ng.top) expect([corpus[e.offset - 1], corpus[e.offset]]).toEqual([NGRAM.first, NGRAM.second]);
    expect(ng.top.map((e) => e.activation)).toEqual([...ng.top.map((e) => e.activation)].sort((a, b) => b - a));
    expect(s.dataHash).toMatch(/^[0-9a-f]{16}$/);
  });

  it('streams the corpus: the statistics of one pass equal those of the same corpus in other batch sizes', async () => {
    const a = await neuronStats(model, corpus.slice(0, 32 * 20), { seq: 32, batchSize: 3 });
    const b = await neuronStats(model, corpus.slice(0, 32 * 20), { seq: 32, batchSize: 20 });
    for (let i = 0; i < a.neurons.length; i++) {
      expect(a.neurons[i].mean).toBeCloseTo(b.neurons[i].mean, 6);
      expect(a.neurons[i].positionVariance).toBeCloseTo(b.neurons[i].positionVariance, 6);
    }
    expect(corpusRows({ length: 70 }, 32).map((r) => r.length)).toEqual([32, 32, 6]);
  });

  it('bad input names the problem', async () => {
    await expect(neuronStats(model, corpus, { seq: 64 })).rejects.toThrow(/rows of 64 tokens: must be in \[1, 32\]/);
    await expect(neuronStats(model, [1, 2, 300], { seq: 32 })).rejects.toThrow(/corpus token 300 at 2 is outside the vocabulary \[0, 256\)/);
    await expect(neuronStats(model, corpus, { layers: [1] })).rejects.toThrow(/layer 1 outside \[0, 1\)/);
  });
});

describe('N2G', () => {
  it('explains the n-gram neuron as "t h" and predicts it on held-out text with precision and recall >= 0.95', async () => {
    const s = await neuronStats(model, corpus, { seq: 32 });
    const ng = s.neurons[NGRAM.ngramNeuron];
    const examples = ng.top.map((e) => corpus.slice(e.offset - e.position, e.offset + 1));
    const m = await buildN2G(model, { layer: 0, neuron: NGRAM.ngramNeuron }, examples, { pool: LETTER_IDS, seed: 2 });
    expect(m.patterns.map((p) => p.tokens)).toEqual([[[NGRAM.first], [NGRAM.second]]]);
    const heldout = ngramPrompts(60, { seed: 22 }).flatMap((p) => p.tokens);
    const e = await evaluateN2G(model, m, heldout, { seq: 32 });
    expect(e.fired).toBe(120);
    expect(e.precision).toBeGreaterThanOrEqual(0.95);
    expect(e.recall).toBeGreaterThanOrEqual(0.95);
    // The trie alone: "t h" anywhere, nothing else.
    const [t, h, x] = [NGRAM.first, NGRAM.second, LETTER_IDS[0]];
    expect(Array.from(predictN2G(m, [x, t, h, h, t, x, t, h]))).toEqual([0, 0, 1, 0, 0, 0, 0, 1]);
  });

  it('a neuron that never fires on its examples is refused', async () => {
    await expect(buildN2G(model, { layer: 0, neuron: 0 }, [[LETTER_IDS[0], LETTER_IDS[1]]])).rejects.toThrow(/does not fire on any example/);
    await expect(buildN2G(model, { layer: 0, neuron: 64 }, [[1]])).rejects.toThrow(/neuron 64 outside \[0, 64\)/);
  });
});

describe('lantern neurons', () => {
  it('labels and explains from a token file, JSON with the data hash and settings', async () => {
    const file = path.join(tmp, 'corpus.txt');
    const all = [...corpus, ...ngramPrompts(20, { seed: 23 }).flatMap((p) => p.tokens)];
    fs.writeFileSync(file, all.join(' '));
    const json = path.join(tmp, 'neurons.json');
    const r = await runLantern(['neurons', '--model', folder, '--tokens', file, '--seq', '32', '--n2g', 'L0N13', '--pool', '32-57,64-89', '--json', json], tmp);
    expect(r.stderr).toBe('');
    expect(r.stdout).toMatch(/n-gram:\n\s+L0N13\s+"t" "h"/);
    expect(r.stdout).toMatch(/positional:\n\s+L0N40/);
    expect(r.stdout).toMatch(/precision 1\.000, recall 1\.000/);
    const saved = JSON.parse(fs.readFileSync(json, 'utf8'));
    expect(saved).toMatchObject({ model: folder, method: 'neurons', settings: { seq: 32, threshold: 0 }, n2g: { neuron: 'L0N13' } });
    expect(saved.dataHash).toMatch(/^[0-9a-f]{16}$/);
    expectOneLineError(await runLantern(['neurons', '--model', folder, '--tokens', file, '--seq', '32', '--n2g', 'neuron13'], tmp), /--n2g 'neuron13' is not of the form/);
    const small = path.join(tmp, 'small-vocab');
    fs.mkdirSync(small);
    for (const f of ['config.json', 'model.safetensors', 'tokenizer.json']) fs.copyFileSync(path.join(folder, f), path.join(small, f));
    expectOneLineError(await runLantern(['neurons', '--model', small], tmp), /the Brown corpus is GPT-2 tokens, outside .* vocabulary of 256; give --tokens/);
  });
});
