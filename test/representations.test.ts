import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { parquetWriteBuffer } from 'hyparquet-writer';
import { countries } from 'countries-list';
import { representations as R, loadModel, HookedTransformer } from '../src/index.js';
import { BUNDLED_MODEL } from '../src/paths.js';
import { runLantern } from './helpers.js';

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'lantern-repr-'));

describe('built-in generators', () => {
  it('capitals: labels agree with countries-list, and no country straddles the split', () => {
    const ds = R.capitals({ seed: 3 });
    const byCountry = new Map<string, Set<string>>();
    const capitalOf = new Map(Object.values(countries).map((c) => [c.name, c.capital]));
    for (const e of ds.examples) {
      const m = /^The capital of (.+) is (.+)\.$/.exec(e.text)!;
      expect(e.label).toBe(capitalOf.get(m[1]) === m[2] ? 1 : 0);
      byCountry.set(m[1], (byCountry.get(m[1]) ?? new Set()).add(e.split!));
    }
    expect([...byCountry.values()].every((s) => s.size === 1)).toBe(true);
    expect(ds.examples.find((e) => e.text === 'The capital of France is Paris.')?.label).toBe(1);
    const test = ds.examples.filter((e) => e.split === 'test').length / ds.examples.length;
    expect(Math.abs(test - 0.25)).toBeLessThan(0.02);
    expect(R.capitals({ seed: 3 }).examples).toEqual(ds.examples);
    expect(R.capitals({ seed: 4 }).examples).not.toEqual(ds.examples);
  });
  it('comparisons: true exactly when the first number is larger; both orders on one side', () => {
    const ds = R.comparisons({ seed: 1, limit: 100 });
    expect(ds.examples.length).toBe(200);
    const side = new Map<string, string>();
    for (const e of ds.examples) {
      const [a, b] = e.text.match(/\d+/g)!.map(Number);
      expect(e.label).toBe(a > b ? 1 : 0);
      const key = [Math.min(a, b), Math.max(a, b)].join();
      expect(side.get(key) ?? e.split).toBe(e.split);
      side.set(key, e.split!);
    }
  });
  it('cities and sentiment come from GeoNames and AFINN-165', () => {
    const c = R.cities({ seed: 0, minPopulation: 5_000_000 });
    expect(c.examples.some((e) => e.text === 'The city of Tokyo is in Japan.' && e.label === 1)).toBe(true);
    const s = R.sentiment({ seed: 0 });
    expect(s.examples.find((e) => e.text === 'The movie was wonderful.')?.label).toBe(1);
    expect(s.examples.find((e) => e.text === 'The movie was terrible.')?.label).toBe(0);
    const pairs = R.sentimentPromptPairs({ seed: 0, count: 8 });
    expect(pairs.caa.every((p) => p.positive.slice(0, -1) === p.negative.slice(0, -1))).toBe(true);
  });
});

describe('datasets from files', () => {
  const rows = [{ sentence: 'a cat', truth: true }, { sentence: 'a dog', truth: false }, { sentence: 'a fox', truth: 'true' }];
  it('JSONL, CSV and Parquet give the same examples', async () => {
    const jsonl = path.join(tmp, 'd.jsonl');
    fs.writeFileSync(jsonl, rows.map((r) => JSON.stringify(r)).join('\n') + '\n');
    const csv = path.join(tmp, 'd.csv');
    fs.writeFileSync(csv, 'sentence,truth\n' + rows.map((r) => `"${r.sentence}",${r.truth}`).join('\n') + '\n');
    const parquet = path.join(tmp, 'd.parquet');
    fs.writeFileSync(parquet, Buffer.from(parquetWriteBuffer({ columnData: [{ name: 'sentence', data: rows.map((r) => r.sentence) }, { name: 'truth', data: rows.map((r) => String(r.truth)) }] })));
    const want = [{ text: 'a cat', label: 1 }, { text: 'a dog', label: 0 }, { text: 'a fox', label: 1 }];
    for (const f of [jsonl, csv, parquet]) expect((await R.loadLabelled(f, { textColumn: 'sentence', labelColumn: 'truth' })).examples).toEqual(want);
  });
  it('a missing column is named, with the columns nearest to it', async () => {
    const f = path.join(tmp, 'e.jsonl');
    fs.writeFileSync(f, JSON.stringify({ sentence: 'x', label: 1 }) + '\n');
    await expect(R.loadLabelled(f, { textColumn: 'sentense' })).rejects.toThrow(/no column "sentense" \(--text-column\); columns nearest to it: "sentence"/);
  });
});

describe('activation harvesting on the bundled model', () => {
  let model: HookedTransformer;
  const texts = ['The cat sat on the mat.', 'Paris is in France.', 'One two three', 'A much longer prompt than the others, with commas, and more words.', 'Hi there', 'The capital of Peru is Lima.', 'x y z'];
  const hook = 'blocks.1.hook_resid_post';
  beforeAll(async () => { model = await loadModel(BUNDLED_MODEL); });

  /** The activation of one prompt run alone (no batch, no padding) at `pick` of its positions. */
  async function alone(text: string, pick: (n: number) => number[]): Promise<Float64Array> {
    const { cache } = await model.runWithCache([text], [hook]);
    const act = cache.get(hook).f32;
    const d = model.cfg.dModel;
    const ps = pick(act.length / d);
    const out = new Float64Array(d);
    for (const p of ps) for (let j = 0; j < d; j++) out[j] += act[p * d + j] / ps.length;
    return out;
  }
  const maxDiff = (a: ArrayLike<number>, b: ArrayLike<number>) => Math.max(...Array.from(a, (v, i) => Math.abs(v - b[i])));

  it('batched last / mean / index / token positions equal single-prompt runs', async () => {
    const d = model.cfg.dModel;
    const cases: [R.Positions, (n: number, text: string) => number[]][] = [
      ['last', (n) => [n - 1]],
      ['mean', (n) => Array.from({ length: n }, (_, i) => i)],
      [1, () => [1]],
      [-2, (n) => [n - 2]],
    ];
    for (const [positions, pick] of cases) {
      const got: Float32Array[] = [];
      for await (const b of R.activationBatches(model, texts, { hooks: [hook], positions, batchSize: 3 })) got.push(b.acts[hook]);
      const all = Float32Array.from(got.flatMap((g) => Array.from(g)));
      expect(all.length).toBe(texts.length * d);
      for (let i = 0; i < texts.length; i++) {
        const want = await alone(texts[i], (n) => pick(n, texts[i]));
        expect(maxDiff(all.subarray(i * d, (i + 1) * d), want)).toBeLessThan(1e-4);
      }
    }
    const withIs = ['Paris is in France.', 'The capital of Peru is Lima.'];
    for await (const b of R.activationBatches(model, withIs, { hooks: [hook], positions: { token: ' is' } })) {
      for (let i = 0; i < withIs.length; i++) {
        const p = model.toTokens(withIs[i]).lastIndexOf(model.encode(' is')[0]);
        expect(b.position[i]).toBe(p);
        expect(maxDiff(b.acts[hook].subarray(i * d, (i + 1) * d), await alone(withIs[i], () => [p]))).toBeLessThan(1e-4);
      }
    }
  });

  it('streams to shards that read back as one harvest', async () => {
    const examples = texts.map((text, i) => ({ text, label: i % 2, split: (i < 2 ? 'test' : 'train') as R.Split }));
    const one = path.join(tmp, 'one.safetensors');
    const many = path.join(tmp, 'many.safetensors');
    await R.harvestToFile(model, examples, { out: one, hooks: [hook, 'blocks.0.attn.hook_z'], batchSize: 4 });
    const meta = await R.harvestToFile(model, examples, { out: many, hooks: [hook, 'blocks.0.attn.hook_z'], batchSize: 4, shardRows: 3, seed: 7 });
    // The seed that drew the data is saved with it, in every shard; a harvest without one records none.
    expect(R.readActivations(many, hook).meta.seed).toBe(7);
    expect(R.readActivations(one, hook).meta.seed).toBeUndefined();
    expect(R.activationFiles(many).map((f) => path.basename(f))).toEqual(['many-00001-of-00003.safetensors', 'many-00002-of-00003.safetensors', 'many-00003-of-00003.safetensors']);
    expect(meta.widths).toEqual([model.cfg.dModel, model.cfg.nHeads * model.cfg.dHead]);
    for (const h of [hook, 'blocks.0.attn.hook_z']) {
      const a = R.readActivations(one, h);
      const b = R.readActivations(many, h);
      expect(Array.from(b.x)).toEqual(Array.from(a.x));
      expect(Array.from(b.label)).toEqual([0, 1, 0, 1, 0, 1, 0]);
      expect(Array.from(b.split)).toEqual([1, 1, 0, 0, 0, 0, 0]);
    }
    // 'all': one row per token.
    const all = path.join(tmp, 'all.safetensors');
    const m = await R.harvestToFile(model, examples, { out: all, hooks: [hook], positions: 'all', shardRows: 10 });
    expect(m.rows).toBe(texts.reduce((s, t) => s + model.toTokens(t).length, 0));
    const back = R.readActivations(all, hook);
    const last = model.toTokens(texts[6]).length - 1;
    expect(maxDiff(back.x.subarray((m.rows - 1) * model.cfg.dModel), await alone(texts[6], () => [last]))).toBeLessThan(1e-4);
  });

  it('contrast pairs harvest each side at its own row; a sweep reports every layer and projects the best', async () => {
    const pairs = R.statementPairs(R.capitals({ seed: 0, limit: 6 }).examples);
    const data = (await R.harvestProbeData(model, pairs, { hooks: [hook], batchSize: 5 })).get(hook)!;
    const d = model.cfg.dModel;
    for (const i of [0, 7, 11]) {
      expect(maxDiff(data.x.data.subarray(i * d, (i + 1) * d), await alone(pairs[i].positive, (n) => [n - 1]))).toBeLessThan(1e-4);
      expect(maxDiff(data.neg!.data.subarray(i * d, (i + 1) * d), await alone(pairs[i].negative, (n) => [n - 1]))).toBeLessThan(1e-4);
      expect(data.labels[i]).toBe(pairs[i].label);
    }
    const examples = R.sentiment({ seed: 1, limit: 40 }).examples;
    const r = await R.sweepLayers(model, examples, { kind: 'mass-mean', dataset: 'sentiment' });
    expect(r.layers.map((l) => l.hook)).toEqual(R.residHooks(model));
    expect(r.layers.every((l) => l.test.n === examples.filter((e) => e.split === 'test').length)).toBe(true);
    const best = r.layers.reduce((a, l) => (l.test.accuracy > a.test.accuracy ? l : a));
    expect(r.pca.hook).toBe(best.hook);
    expect(r.pca.points.length).toBe(examples.length);
    // Projections are centred: the mean of each coordinate is ~0.
    expect(Math.abs(r.pca.points.reduce((s, p) => s + p.x, 0) / examples.length)).toBeLessThan(1e-3);
    const testLabels = examples.filter((e) => e.split === 'test').map((e) => e.label);
    const majority = Math.max(testLabels.filter((l) => l === 1).length, testLabels.filter((l) => l === 0).length) / testLabels.length;
    expect(r.baseline).toBeCloseTo(majority, 12);
  });

  it('bad input: a hook without a position axis, a multi-token --positions token, a probe of another d_model', async () => {
    await expect(R.activationBatches(model, texts, { hooks: ['blocks.0.attn.hook_pattern'] }).next()).rejects.toThrow(/hook 'blocks.0.attn.hook_pattern' has no position axis/);
    await expect(R.activationBatches(model, texts, { hooks: [hook], positions: { token: ' antidisestablishment' } }).next()).rejects.toThrow(/give one token/);
    const file = path.join(tmp, 'wide.json');
    const d = 768;
    R.saveProbe(file, R.toSaved({ kind: 'mass-mean', direction: new Float64Array(d), bias: 0, mean: new Float64Array(d), scale: new Float64Array(d).fill(1), threshold: 0, settings: {} },
      { model: 'gpt2', hook, dModel: d, positions: 'last', dataset: 'x', datasetHash: 'x', seed: 0 }));
    expect(() => R.loadProbe(file, model)).toThrow(/fit on a model with d_model 768 \(gpt2\); .* has d_model 256/);
  });
});

describe('CLI', () => {
  it('activations, probe train and probe eval from files; one-line errors', async () => {
    const data = path.join(tmp, 'sent.jsonl');
    const ds = R.sentiment({ seed: 0, limit: 80 });
    fs.writeFileSync(data, ds.examples.map((e) => JSON.stringify({ review: e.text, positive: e.label, split: e.split })).join('\n') + '\n');
    const acts = path.join(tmp, 'sent.safetensors');
    const cols = ['--text-column', 'review', '--label-column', 'positive', '--split-column', 'split'];
    let r = await runLantern(['activations', '--data', data, ...cols, '--hooks', 'blocks.3.hook_resid_post', '--out', acts], tmp);
    expect(r.stderr).toBe('');
    expect(r.stdout).toMatch(/saved 80 rows x \[256\]/);
    const probe = path.join(tmp, 'p.json');
    const result = path.join(tmp, 'r.json');
    r = await runLantern(['probe', 'train', '--acts', acts, '--kind', 'mass-mean', '--out', probe, '--json', result], tmp);
    expect(r.stderr).toBe('');
    const saved = JSON.parse(fs.readFileSync(result, 'utf8'));
    // The command's figures equal the library's on the same rows.
    const a = R.readActivations(acts);
    const t = R.trainProbe({ x: { data: a.x, rows: a.rows, cols: a.width }, labels: Float64Array.from(a.label), test: Uint8Array.from(a.split) }, { kind: 'mass-mean' });
    expect(saved.test.accuracy).toBeCloseTo(t.test.accuracy, 12);
    expect(saved.datasetHash).toBe(R.datasetHash(ds.examples.map((e) => ({ ...e }))));
    r = await runLantern(['probe', 'eval', '--probe', probe, '--data', data, ...cols, '--json'], tmp);
    expect(r.stderr).toBe('');
    expect(JSON.parse(r.stdout).n).toBe(80);

    const errors: [string[], RegExp][] = [
      [['activations', '--data', data, '--text-column', 'reveiw', '--hooks', 'blocks.0.hook_resid_post', '--out', acts], /no column "reveiw" \(--text-column\); columns nearest to it: "review"/],
    ];
    const single = path.join(tmp, 'single.jsonl');
    fs.writeFileSync(single, ['a', 'b', 'c', 'd', 'e'].map((t) => JSON.stringify({ text: t, label: 1 })).join('\n'));
    errors.push([['probe', 'train', '--data', single, '--out', probe], /single class/]);
    for (const [args, msg] of errors) {
      r = await runLantern(args, tmp);
      expect(r.code).toBe(1);
      expect(r.stderr.trim().split('\n')).toHaveLength(1);
      expect(r.stderr).toMatch(msg);
    }
  }, 400_000);
});

describe('Workbench API: POST /api/probes', () => {
  it('sweeps a built-in dataset and equals the library; a bad dataset is a 400', async () => {
    const { buildServer } = await import('../src/interfaces/server/app.js');
    const server = await buildServer({ dataDir: path.join(tmp, 'workbench'), model: BUNDLED_MODEL, allowHub: false });
    try {
      const post = (payload: object) => server.inject({ method: 'POST', url: '/api/probes', payload, headers: { host: 'localhost' } });
      const r = await post({ dataset: 'sentiment', kind: 'mass-mean', limit: 24, seed: 2 });
      expect(r.statusCode).toBe(200);
      const got = r.json().result;
      const want = await R.sweepLayers(await loadModel(BUNDLED_MODEL), R.sentiment({ seed: 2, limit: 24 }).examples, { kind: 'mass-mean', seed: 2 });
      expect(got.layers.map((l: any) => l.test.accuracy)).toEqual(want.layers.map((l) => l.test.accuracy));
      expect(got.datasetHash).toBe(want.datasetHash);
      expect(got.pca.points).toHaveLength(24);
      const bad = await post({ dataset: 'planets' });
      expect(bad.statusCode).toBe(400);
    } finally {
      await server.close();
    }
  }, 120_000);
});
