// `lantern features dashboards` and `features explain` as jobs. Dashboards: the merge equals the
// single pass (a one-shard job) and does not depend on the split or the concurrency, except for
// which firing samples each histogram bin, and those are real firings in their bins, drawn
// uniformly (a chi-square over many seeds, which rejects the unweighted merge on the same data);
// resuming, a failing shard, an SAE opened from the job record, and real `lantern worker`
// processes on Redis. Explain: the job's results equal explaining each feature directly.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { LanternError } from '../src/errors.js';
import type { HookedTransformer } from '../src/models/hooked.js';
import { loadModel } from '../src/models/load.js';
import { loadPlanted, makePlanted, ngramPrompts, NGRAM } from '../src/models/planted/index.js';
import { TINY_GPT2 } from '../src/models/random.js';
import { BUNDLED_MODEL } from '../src/paths.js';
import { Rng } from '../src/rng.js';
import { openBackend } from '../src/backends/index.js';
import {
  buildDashboards, dashboardPart, DashboardSet, dashboardSettings, dashboardsAnalysis, dashboardsJob, explainAnalysis, explainDashboard, explainJob, FeatureSource,
  histogramEdges, mergeDashboardParts, neuronSource, openJobFeatureSource, readDashboard, readDashboardIndex, readExplanations, writeDashboards,
} from '../src/methods/features/index.js';
import { corpusRows } from '../src/methods/neurons/index.js';
import { JobFailedError, JobSpec, readJob, shardFile } from '../src/engine/jobs/store.js';
import { runJobLocally, shardFiles } from '../src/engine/jobs/run.js';
import { startLocalRedis, type LocalRedis } from '../src/engine/jobs/local-redis.js';
import { readLines } from '../src/engine/jobs/lines.js';
import { runLantern, seededModel } from './helpers.js';
import { startLanternWorker, stopLanternWorker, type LanternWorker } from './support/processes.js';
import { scriptedServer, ScriptedServer } from './features-scripted.js';

const HOOK = 'blocks.1.mlp.hook_post';
const SEQ = 16;
const OPTS = { seq: SEQ, batchSize: 2, topK: 5, contextBefore: 3, contextAfter: 2, randomContexts: 6, logits: 3, neighbours: 2, seed: 4 };
let tmp: string;
let model: HookedTransformer;
let source: FeatureSource;
/** 11 rows of 16 tokens and a one-token tail (kept in the totals, in no row). */
let corpus: number[];
/** acts[offset][feature], from one cached run per row (the reference). */
let acts: Float32Array[];

beforeAll(async () => {
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'lantern-features-jobs-'));
  model = await seededModel(TINY_GPT2, 11);
  source = await neuronSource(model, HOOK);
  const rng = new Rng(7);
  corpus = Array.from({ length: SEQ * 11 + 1 }, () => rng.int(TINY_GPT2.dVocab));
  acts = [];
  for (const { start, length } of corpusRows(corpus, SEQ)) {
    const { cache } = await model.runWithCache([corpus.slice(start, start + length)], [HOOK]);
    const a = cache.get(HOOK).f32;
    for (let t = 0; t < length; t++) acts.push(a.slice(t * TINY_GPT2.dMlp, (t + 1) * TINY_GPT2.dMlp));
  }
});
afterAll(async () => {
  await model.executor.dropWeights(model.weights);
  fs.rmSync(tmp, { recursive: true, force: true });
});

async function viaJob(dir: string, shardRows: number, concurrency = 1, src = source) {
  const job = await dashboardsJob(dir, model, { source: src, spec: { source: src.id } }, corpus, { ...OPTS, shardRows, corpus: 'random' });
  const ctx = { model, source: src, tokens: corpus };
  const summary = await runJobLocally(dir, job, dashboardsAnalysis, ctx, { concurrency });
  return { job, summary, set: await dashboardsAnalysis.merge(ctx, job, shardFiles(dir, job), {}) };
}

/** Each non-empty histogram bin of feature `f` with the context sampled from it. */
function binSamples(set: DashboardSet, f: number): { bin: number; activation: number; offset: number }[] {
  const d = set.features[f];
  const bins = d.histogram.counts.map((c, b) => (c ? b : -1)).filter((b) => b >= 0);
  const contexts = d.quantiles.flatMap((q) => q.contexts);
  expect(contexts.length).toBe(bins.length);
  return bins.map((bin, i) => ({ bin, activation: contexts[i].activation, offset: contexts[i].offset }));
}

const binOfValue = (x: number, edges: number[]) => {
  const b = edges.findIndex((e, i) => i > 0 && x < e) - 1;
  return b < 0 ? (x < edges[1] ? 0 : edges.length - 2) : b;
};

describe('feature dashboards as a job', () => {
  let one: DashboardSet;
  let three: DashboardSet;

  it('one shard equals the single pass; 3 shards, one or two at a time, give the same top contexts, histograms, densities and random contexts', async () => {
    const direct = await buildDashboards(model, source, corpus, OPTS);
    const a = await viaJob(path.join(tmp, 'one'), 100);
    expect(a.job.shards).toEqual([[0, 11]]);
    one = a.set;
    expect(JSON.stringify(one)).toBe(JSON.stringify(direct));

    // 3 rows asked, rounded up to 4 (whole batches of 2): shards [0,4) [4,8) [8,11).
    const b = await viaJob(path.join(tmp, 'three'), 3);
    expect(b.job.shards).toEqual([[0, 4], [4, 8], [8, 11]]);
    three = b.set;
    const c = await viaJob(path.join(tmp, 'three-concurrent'), 3, 2);
    expect(c.job.id).toBe(b.job.id);
    expect(JSON.stringify(c.set)).toBe(JSON.stringify(three));

    expect(three.random).toEqual(one.random);
    expect(three.random.offsets.length).toBe(6);
    let firingFeatures = 0;
    for (let f = 0; f < one.size; f++) {
      const [x, y] = [one.features[f], three.features[f]];
      expect(y.top).toEqual(x.top);
      expect(y.histogram).toEqual(x.histogram);
      expect(y.density).toBe(x.density);
      expect(y.max).toBe(x.max);
      expect(y.mean).toBeCloseTo(x.mean, 12);
      expect(y.logits).toEqual(x.logits);
      expect(y.neighbours).toEqual(x.neighbours);
      expect(y.quantiles.map((q) => q.range)).toEqual(x.quantiles.map((q) => q.range));
      // The brute force: the firings, largest first with ties by offset.
      const col = acts.map((a) => a[f]);
      const firing = col.map((v, offset) => ({ v, offset })).filter((e) => e.v > 0);
      if (firing.length) firingFeatures++;
      expect(y.density).toBe(firing.length / corpus.length);
      expect(y.top.map((t) => t.offset)).toEqual([...firing].sort((p, q) => q.v - p.v || p.offset - q.offset).slice(0, 5).map((e) => e.offset));
    }
    expect(firingFeatures).toBeGreaterThan(100);
  }, 120_000);

  it('every bin\'s sample is a firing at its offset, in that bin, with its window', () => {
    const edges = histogramEdges();
    let differ = 0;
    for (const set of [one, three]) {
      for (let f = 0; f < set.size; f++) {
        const samples = binSamples(set, f);
        const d = set.features[f];
        for (const s of samples) {
          expect(s.activation).toBe(acts[s.offset][f]);
          expect(s.activation).toBeGreaterThan(0);
          expect(binOfValue(s.activation, edges)).toBe(s.bin);
        }
        for (const c of d.quantiles.flatMap((q) => q.contexts)) {
          const from = c.offset - c.at;
          expect(c.ids).toEqual(corpus.slice(from, from + c.ids.length));
          c.activations.forEach((a, i) => expect(a).toBe(acts[from + i][f]));
        }
        if (set === three) differ += samples.filter((s, i) => s.offset !== binSamples(one, f)[i].offset).length;
      }
    }
    // The split changes which firing a bin shows (not whether it is one).
    expect(differ).toBeGreaterThan(0);
  });

  it('the weighted reservoir merge samples every firing of a bin uniformly (chi-square over 300 seeds; the unweighted merge is rejected)', async () => {
    const small = corpus.slice(0, SEQ * 6);
    const ranges: [number, number][] = [[0, 2], [2, 4], [4, 6]];
    const opts = { ...OPTS, logits: 0, neighbours: 0, randomContexts: 0 };
    // Bins whose firings are split unevenly over the parts: per part, the firing offsets.
    const edges = histogramEdges();
    const rowOf = (off: number) => Math.floor(off / SEQ);
    const partOf = (off: number) => ranges.findIndex(([a, b]) => rowOf(off) >= a && rowOf(off) < b);
    const cases: { f: number; bin: number; offsets: number[]; counts: number[]; seen: Map<number, number> }[] = [];
    for (let f = 0; f < TINY_GPT2.dMlp && cases.length < 6; f++) {
      const byBin = new Map<number, number[]>();
      for (let off = 0; off < small.length; off++) if (acts[off][f] > 0) byBin.set(binOfValue(acts[off][f], edges), [...(byBin.get(binOfValue(acts[off][f], edges)) ?? []), off]);
      for (const [bin, offsets] of byBin) {
        const counts = ranges.map((_, p) => offsets.filter((o) => partOf(o) === p).length);
        if (offsets.length >= 4 && offsets.length <= 12 && counts.filter((c) => c > 0).length >= 2 && Math.max(...counts) >= 2 * Math.min(...counts.filter((c) => c > 0))) {
          cases.push({ f, bin, offsets, counts, seen: new Map() });
          break;
        }
      }
    }
    expect(cases.length).toBe(6);
    const S = 300;
    for (let seed = 0; seed < S; seed++) {
      const settings = dashboardSettings(model, small, { ...opts, seed });
      const parts = [];
      for (const [i, [a, b]] of ranges.entries()) parts.push(await dashboardPart(model, source, small, settings, a, b, i));
      const set = await mergeDashboardParts(model, source, small, settings, parts);
      for (const c of cases) {
        const s = binSamples(set, c.f).find((x) => x.bin === c.bin)!;
        c.seen.set(s.offset, (c.seen.get(s.offset) ?? 0) + 1);
      }
    }
    // Chi-square summed over the bins, against the uniform law and against "each part's sample
    // equally likely"; the critical value at p = 1e-4 (z = 3.72) by Wilson–Hilferty.
    const chi = (expected: (c: (typeof cases)[number], off: number) => number) => cases.reduce((sum, c) => sum + c.offsets.reduce((s, off) => s + ((c.seen.get(off) ?? 0) - S * expected(c, off)) ** 2 / (S * expected(c, off)), 0), 0);
    const dof = cases.reduce((n, c) => n + c.offsets.length - 1, 0);
    const critical = dof * (1 - 2 / (9 * dof) + 3.72 * Math.sqrt(2 / (9 * dof))) ** 3;
    for (const c of cases) expect([...c.seen.keys()].every((o) => c.offsets.includes(o))).toBe(true);
    expect(chi((c) => 1 / c.offsets.length)).toBeLessThan(critical);
    const unweighted = (c: (typeof cases)[number], off: number) => 1 / c.counts.filter((n) => n > 0).length / c.counts[partOf(off)];
    expect(chi(unweighted)).toBeGreaterThan(critical);
  }, 300_000);

  it('re-running skips finished shards, recomputes one whose file changed, and merges the same dashboards', async () => {
    const dir = path.join(tmp, 'three');
    const again = await viaJob(dir, 3);
    expect(again.summary).toEqual({ computed: [], skipped: [0, 1, 2] });
    fs.appendFileSync(shardFile(dir, again.job, 1), ' ');
    const third = await viaJob(dir, 3);
    expect(third.summary.computed).toEqual([1]);
    expect(JSON.stringify(third.set)).toBe(JSON.stringify(three));
  }, 60_000);

  it('shard files are read a line at a time, whatever the chunk size (lines across chunks, multi-byte characters split)', () => {
    const file = path.join(tmp, 'lines.jsonl');
    const lines = ['{"a":1}', JSON.stringify({ t: 'héllo — wörld ✓'.repeat(5) }), 'x', JSON.stringify(Array.from({ length: 300 }, (_, i) => i / 7))];
    fs.writeFileSync(file, lines.join('\n') + '\n\n' + 'tail without newline');
    for (const chunk of [1, 2, 3, 7, 64, 1 << 22]) expect([...readLines(file, chunk)]).toEqual([...lines, 'tail without newline']);
  });

  it('a shard whose source gives non-finite activations fails, named with its rows; the others are kept', async () => {
    // A one-row batch happens only in the last shard (rows 8–10, batches of 2).
    const broken: FeatureSource = { ...source, encode: (a, rows) => (rows === SEQ ? new Float32Array(rows * source.size).fill(Infinity) : source.encode(a, rows)) };
    const dir = path.join(tmp, 'broken');
    const err = await viaJob(dir, 3, 1, broken).catch((e) => e);
    expect(err).toBeInstanceOf(JobFailedError);
    const job = readJob(dir, (err as JobFailedError).job.id);
    expect(err.message).toBe(`job ${job.id}: 1 of 3 shards failed: shard 2 (examples 8–10): feature source ${source.id}: feature 0 has non-finite activations (sum Infinity) in corpus rows 8–10`);
    expect([0, 1].map((i) => fs.existsSync(shardFile(dir, job, i)))).toEqual([true, true]);
  }, 60_000);

  it('an SAE source opens in a worker from the job record, checked by its content hash', async () => {
    const bundled = await loadModel(BUNDLED_MODEL);
    const saeFolder = path.join(BUNDLED_MODEL, 'saes', 'resid1-topk32');
    const opened = await openJobFeatureSource(bundled, { sae: path.relative(process.cwd(), saeFolder) });
    expect(opened.spec).toEqual({ sae: path.resolve(saeFolder) });
    expect(opened.saeSha256).toMatch(/^[0-9a-f]{64}$/);
    const text = 'The jury said the city was fine. It was a long day in the county, and the court heard the case again.';
    const tokens = [...bundled.toTokens(text), ...bundled.toTokens(text)];
    const dir = path.join(tmp, 'sae-jobs');
    const opts = { seq: 16, batchSize: 2, topK: 4, randomContexts: 3, shardRows: 2 };
    const job = await dashboardsJob(dir, bundled, opened, tokens, opts);
    // What a worker does: everything from the job folder.
    const ctx = await dashboardsAnalysis.open(dir, job, {});
    expect(ctx.source.id).toBe(path.resolve(saeFolder));
    expect(ctx.tokens).toEqual(tokens);
    await runJobLocally(dir, job, dashboardsAnalysis, ctx);
    const merged = await dashboardsAnalysis.merge({ ...ctx, source: opened.source }, job, shardFiles(dir, job), {});
    const direct = await buildDashboards(bundled, opened.source, tokens, opts);
    for (const f of [0, 5, 100]) {
      expect(merged.features[f].top).toEqual(direct.features[f].top);
      expect(merged.features[f].histogram).toEqual(direct.features[f].histogram);
    }
    expect(merged.features.map((d) => d.density)).toEqual(direct.features.map((d) => d.density));
    const tampered: JobSpec = { ...job, settings: { ...job.settings, saeSha256: '0'.repeat(64) } };
    const err = await dashboardsAnalysis.open(dir, tampered, {}).catch((e) => e);
    expect(err).toBeInstanceOf(LanternError);
    expect(err.message).toMatch(/^the SAE at .*resid1-topk32 has sha256 [0-9a-f]{16}…, not the 0000000000000000… the job was submitted with$/);
  }, 120_000);
});

describe('feature explanations as a job', () => {
  const H = NGRAM.currentHDistractorNeuron;
  let server: ScriptedServer;
  let dash: string;
  let planted: HookedTransformer;
  beforeAll(async () => {
    await makePlanted('ngram-neuron', path.join(tmp, 'ngram'), { measure: false });
    planted = (await loadPlanted(path.join(tmp, 'ngram'))).model;
    const set = await buildDashboards(planted, await neuronSource(planted, 'blocks.0.mlp.hook_post'), ngramPrompts(60, { seed: 5 }).flatMap((p) => p.tokens), { seq: 32, topK: 10, randomContexts: 6, seed: 1 });
    dash = path.join(tmp, 'dash');
    writeDashboards(set, dash);
    // The explainer names the most active token of what it is shown.
    server = await scriptedServer({
      explain: (records) => {
        const by = new Map<string, number>();
        for (const r of records) for (const [t, v] of r) by.set(t, Math.max(by.get(t) ?? 0, v));
        return `the token "${[...by.entries()].sort((a, b) => b[1] - a[1])[0][0]}".`;
      },
    });
  }, 60_000);
  afterAll(async () => {
    await server.close();
    await planted.executor.dropWeights(planted.weights);
  });

  it('equals explaining each feature directly, and stores the explanations in the folder', async () => {
    const index = readDashboardIndex(dash);
    // Features that fire at 2 places or more (one to explain from, one to score on).
    const features = index.features.filter((f) => f.density * index.tokens >= 2).map((f) => f.index).slice(0, 5);
    expect(features.length).toBe(4);
    expect(features).toContain(H);
    const backend = await openBackend(server.url);
    const dir = path.join(tmp, 'explain-jobs');
    const settings = { simulator: 'auto' as const, detection: true, fuzzing: true, prompts: {}, seed: 3 };
    const record = { id: backend.id, load: server.url, options: { open: {} } };
    const job = explainJob(dir, dash, features, record, { ...settings, shardFeatures: 2 });
    expect(job.shards).toEqual([[0, 2], [2, 4]]);
    const ctx = await explainAnalysis.open(dir, job, {});
    expect(ctx.features).toEqual(features);
    const summary = await runJobLocally(dir, job, explainAnalysis, ctx, { concurrency: 2 });
    expect(summary.computed).toEqual([0, 1]);
    const results = await explainAnalysis.merge(ctx, job, shardFiles(dir, job), {});
    expect(results.map((r) => r.feature)).toEqual(features);
    for (const r of results) {
      const direct = await explainDashboard(backend, readDashboard(dash, r.feature, index), index.random, { detection: true, fuzzing: true, seed: 3 });
      expect(r).toEqual({ feature: r.feature, ...direct });
    }
    expect(results.find((r) => r.feature === H)!.explanation).toBe('the token "h".');
    const stored = readExplanations(dash);
    for (const r of results) expect(stored[r.feature]).toEqual({ text: r.explanation, score: r.score, method: `explain-simulate (${r.simulator})` });
    // Re-running finds every shard done; changed dashboards are a different job, and an open of the old one refuses them.
    expect((await runJobLocally(dir, job, explainAnalysis, ctx)).skipped).toEqual([0, 1]);
    fs.appendFileSync(path.join(dash, 'features.jsonl'), '\n');
    expect(explainJob(dir, dash, features, record, { ...settings, shardFeatures: 2 }).id).not.toBe(job.id);
    await expect(explainAnalysis.open(dir, job, {})).rejects.toThrow(/the dashboards in .* have sha256 [0-9a-f]{16}…, not the [0-9a-f]{16}… job feature-explain-/);
  }, 120_000);

  it('the CLI records the backend\'s settings but not its key, and resumes', async () => {
    const jobs = path.join(tmp, 'explain-cli-jobs');
    const json = path.join(tmp, 'explain-cli.json');
    const args = ['features', 'explain', '-d', dash, '--features', `${H},13`, '--backend', server.url, '--api-key-env', 'LANTERN_TEST_KEY', '--timeout', '9000', '--shard-size', '1', '--jobs-dir', jobs, '--json', json];
    const env = { LANTERN_TEST_KEY: 'sk-not-for-job-json' };
    const first = await runLantern(args, tmp, env);
    expect(first.code, first.stderr).toBe(0);
    expect(first.stdout).toMatch(/job feature-explain-[0-9a-f]{16}: 2 shards computed, 0 already done/);
    expect(first.stdout).toContain(`#${H}: the token "h".`);
    const id = /job (feature-explain-[0-9a-f]{16})/.exec(first.stdout)![1];
    const spec = fs.readFileSync(path.join(jobs, id, 'job.json'), 'utf8');
    expect(JSON.parse(spec).backend.options.open).toEqual({ apiKeyEnv: 'LANTERN_TEST_KEY', timeoutMs: 9000 });
    expect(fs.readdirSync(path.join(jobs, id)).some((f) => fs.readFileSync(path.join(jobs, id, f), 'utf8').includes('sk-not-for-job-json'))).toBe(false);
    const saved = JSON.parse(fs.readFileSync(json, 'utf8'));
    expect(saved.results.map((r: { feature: number }) => r.feature)).toEqual([H, 13]);
    const again = await runLantern(args, tmp, env);
    expect(again.stdout).toMatch(/0 shards computed, 2 already done/);
    expect(JSON.parse(fs.readFileSync(json, 'utf8')).results).toEqual(saved.results);
  }, 120_000);
});

describe('feature dashboards on a queue with a lantern worker process', () => {
  let redis: LocalRedis;
  let worker: LanternWorker;
  beforeAll(async () => {
    redis = await startLocalRedis(tmp);
    worker = startLanternWorker(redis.url, path.join(tmp, 'home'), { args: ['--threads', '1'] });
  }, 60_000);
  afterAll(async () => {
    await stopLanternWorker(worker);
    await redis.stop();
  }, 60_000);

  it('the CLI on the queue writes the same dashboard folder as in-process', async () => {
    const folder = path.join(tmp, 'ngram-q');
    await makePlanted('ngram-neuron', folder, { measure: false });
    const args = (out: string, jobs: string) => ['features', 'dashboards', '--model', folder, '--max-tokens', '800', '--seq', '32', '--batch-size', '2', '--shard-size', '4', '--jobs-dir', path.join(tmp, jobs), '-o', path.join(tmp, out)];
    const local = await runLantern([...args('dash-local', 'jobs-local'), '--concurrency', '2'], tmp);
    expect(local.code, local.stderr).toBe(0);
    expect(local.stdout).toMatch(/job feature-dashboards-[0-9a-f]{16}: 7 shards computed, 0 already done/);
    const queued = await runLantern([...args('dash-queue', 'jobs-queue'), '--queue', redis.url], tmp);
    expect(queued.code, queued.stderr).toBe(0);
    expect(queued.stdout).toMatch(/7 shards computed, 0 already done/);
    expect(worker.log).toMatch(/shard 6 of feature-dashboards-[0-9a-f]{16} done/);
    for (const f of ['index.json', 'features.jsonl']) expect(fs.readFileSync(path.join(tmp, 'dash-queue', f)).equals(fs.readFileSync(path.join(tmp, 'dash-local', f)))).toBe(true);
  }, 180_000);
});
