// `lantern attribute --data` as a job: the merged result equals the direct (unsharded) run byte for
// byte, each example's scores equal a single-prompt attribute() call, the faithfulness averages equal
// the mean of the per-example rows, re-running skips finished shards, a bad example is reported by
// shard, and the same job runs through a BullMQ queue on a real redis-server.
import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { loadModel } from '../src/models/load.js';
import type { HookedTransformer } from '../src/models/hooked.js';
import { BUNDLED_MODEL } from '../src/paths.js';
import * as A from '../src/methods/attribution/index.js';
import { JobFailedError, shardFile } from '../src/engine/jobs/store.js';
import { runJobLocally, shardFiles } from '../src/engine/jobs/run.js';
import { startWorker, submitToQueue } from '../src/engine/jobs/queue.js';
import { startLocalRedis, type LocalRedis } from '../src/engine/jobs/local-redis.js';
import { ANALYSES } from '../src/interfaces/cli/job-options.js';
import { expectOneLineError, runLantern } from './helpers.js';

let tmp: string;
let model: HookedTransformer;
const EXAMPLES: A.AttributionExample[] = [
  { text: 'The capital of France is', target: ' Paris' },
  { text: 'One, two, three,', target: ' four', foil: ' five' },
  { text: 'The cat sat on the' },
  { text: 'Hello there', target: ' my friend' },
  { text: 'Water boils at one hundred', target: ' degrees' },
];
const OPTS: A.DatasetAttributionOptions = { method: 'ig', settings: { steps: 8 }, evaluate: true, dataset: 'tiny', seed: 3 };

beforeAll(async () => {
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'lantern-attr-jobs-'));
  model = await loadModel(BUNDLED_MODEL);
});
afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));

async function viaJob(dir: string, examples: A.AttributionExample[], opts: A.DatasetAttributionOptions & { shardSize?: number }, out: string) {
  const job = await A.attributionJob(dir, model, examples, opts);
  const summary = await runJobLocally(dir, job, A.attributionAnalysis, { model, examples }, { concurrency: 2 });
  const result = await A.attributionAnalysis.merge({ model, examples }, job, shardFiles(dir, job), { out });
  return { job, summary, result };
}

describe('attribution over a dataset as a job', () => {
  it('saves the same file as the direct run, byte for byte; scores and averages match independent computations', async () => {
    for (const opts of [OPTS, { method: 'shap', settings: { samples: 40 }, evaluate: true, dataset: 'tiny', seed: 7 }] as A.DatasetAttributionOptions[]) {
      const direct = await A.attributeDataset(model, EXAMPLES, opts);
      const directFile = path.join(tmp, `direct-${opts.method}.json`);
      A.saveDatasetAttribution(directFile, direct);
      const jobFile = path.join(tmp, `job-${opts.method}.json`);
      const { job, summary } = await viaJob(path.join(tmp, `jobs-${opts.method}`), EXAMPLES, { ...opts, shardSize: 2 }, jobFile);
      expect(job.shards).toEqual([[0, 2], [2, 4], [4, 5]]);
      expect(summary.computed).toEqual([0, 1, 2]);
      expect(fs.readFileSync(jobFile).equals(fs.readFileSync(directFile)), opts.method).toBe(true);

      // Each example alone through attribute(), as `lantern attribute --text` runs it.
      for (const [i, ex] of EXAMPLES.entries()) {
        const multi = ex.target !== undefined && model.encode(ex.target).length > 1;
        const one = await A.attribute(model, { text: ex.text, target: multi ? undefined : ex.target, continuation: multi ? ex.target : undefined, foil: ex.foil, method: opts.method, settings: opts.settings, seed: opts.seed, evaluate: true });
        expect(direct.results[i].scores).toEqual(one.scores);
        expect(direct.results[i].target).toEqual(one.target);
      }
      expect(direct.results[3].target.mode).toBe('continuation');
      expect(direct.results[1].target.mode).toBe('contrastive');

      const rows = direct.results.flatMap((r) => r.faithfulness!.rows);
      const f = direct.faithfulness!;
      expect(f.rows).toBe(rows.length);
      expect(rows.length).toBeGreaterThan(EXAMPLES.length); // the continuation has a row per token
      const meanOf = (xs: (number | null)[]) => { const d = xs.filter((x): x is number => x !== null); return d.reduce((a, b) => a + b, 0) / d.length; };
      expect(f.aopcComprehensiveness.mean).toBeCloseTo(meanOf(rows.map((r) => r.aopcComprehensiveness)), 12);
      expect(f.aopcSufficiency.mean).toBeCloseTo(meanOf(rows.map((r) => r.aopcSufficiency)), 12);
      expect(f.kendallTauLoo.n).toBe(rows.filter((r) => r.kendallTauLoo !== null).length);
      expect(f.insertionAucNormalized.mean).toBeCloseTo(meanOf(rows.map((r) => r.insertionAucNormalized)), 12);
    }
  }, 300_000);

  it('re-running skips finished shards and recomputes one whose file no longer matches its hash', async () => {
    const dir = path.join(tmp, 'resume');
    const out = path.join(tmp, 'resume.json');
    const opts = { method: 'occlusion', evaluate: true, shardSize: 2 };
    const first = await viaJob(dir, EXAMPLES, opts, out);
    const bytes = fs.readFileSync(out);
    const again = await viaJob(dir, EXAMPLES, opts, out);
    expect(again.summary).toEqual({ computed: [], skipped: [0, 1, 2] });
    fs.writeFileSync(shardFile(dir, first.job, 1), '[]\n');
    const third = await viaJob(dir, EXAMPLES, opts, out);
    expect(third.summary).toEqual({ computed: [1], skipped: [0, 2] });
    expect(fs.readFileSync(out).equals(bytes)).toBe(true);
  }, 120_000);

  it('names the shard and example of a bad row and keeps the good shards', async () => {
    const dir = path.join(tmp, 'bad');
    const bad = [...EXAMPLES.slice(0, 3), { text: 'No target here', foil: ' x' }];
    const job = await A.attributionJob(dir, model, bad, { method: 'saliency', shardSize: 2 });
    const err = await runJobLocally(dir, job, A.attributionAnalysis, { model, examples: bad }).catch((e) => e);
    expect(err).toBeInstanceOf(JobFailedError);
    expect(err.message).toMatch(/1 of 2 shards failed: shard 1 \(examples 2–3\): example 3 has a foil but no target/);
    expect(fs.existsSync(shardFile(dir, job, 0))).toBe(true);
  }, 60_000);

  it('the CLI runs --data as a job, resumes it, and rejects flags of the other mode', async () => {
    const data = path.join(tmp, 'prompts.jsonl');
    fs.writeFileSync(data, EXAMPLES.map((e) => JSON.stringify({ prompt: e.text, target: e.target, foil: e.foil })).join('\n') + '\n');
    const home = path.join(tmp, 'home');
    const args = ['attribute', '--data', data, '--method', 'ig', '--steps', '8', '--eval', '--seed', '3', '--shard-size', '2', '--json', path.join(tmp, 'cli.json')];
    let r = await runLantern(args, home);
    expect(r.stderr).toBe('');
    expect(r.stdout).toMatch(/3 shards computed, 0 already done/);
    expect(r.stdout).toMatch(/faithfulness over \d+ target rows: AOPC comprehensiveness/);
    r = await runLantern(args, home);
    expect(r.stdout).toMatch(/0 shards computed, 3 already done/);
    const direct = await A.attributeDataset(model, EXAMPLES, { ...OPTS, dataset: 'prompts.jsonl' });
    const saved = JSON.parse(fs.readFileSync(path.join(tmp, 'cli.json'), 'utf8')) as A.DatasetAttribution;
    expect(saved.results).toEqual(JSON.parse(JSON.stringify(direct.results)));
    expect(saved.faithfulness).toEqual(direct.faithfulness);
    expectOneLineError(await runLantern(['attribute', '--data', data, '--target', ' x', '--json', 'o.json'], home), /--target .* applies only with --text/);
    expectOneLineError(await runLantern(['attribute', '--data', data, '--prompt-column', 'promt', '--json', 'o.json'], home), /no prompt column "promt"; its columns nearest to it: "prompt"/);
  }, 180_000);
});

describe('attribution job on a BullMQ queue (real redis-server)', () => {
  let redis: LocalRedis | undefined;
  afterAll(async () => { await redis?.stop(); });

  it('two workers with the analyses of lantern worker produce the same file as the direct run', async () => {
    redis = await startLocalRedis(tmp);
    const url = redis.url;

    const dir = path.join(tmp, 'queue');
    const job = await A.attributionJob(dir, model, EXAMPLES, { ...OPTS, shardSize: 1 });
    // The analyses `lantern worker` runs: attribution (and neurons) are registered there.
    expect(ANALYSES.attribution).toBe(A.attributionAnalysis);
    expect(ANALYSES.neurons.name).toBe('neurons');
    const workers = [0, 1].map(() => startWorker(url, ANALYSES));
    try {
      const summary = await submitToQueue(url, dir, job, { pollMs: 50 });
      expect(summary).toEqual({ skipped: [], computed: [0, 1, 2, 3, 4] });
    } finally {
      await Promise.all(workers.map((w) => w.close()));
    }
    const out = path.join(tmp, 'queue.json');
    await A.attributionAnalysis.merge({ model, examples: EXAMPLES }, job, shardFiles(dir, job), { out });
    const directFile = path.join(tmp, 'queue-direct.json');
    A.saveDatasetAttribution(directFile, await A.attributeDataset(model, EXAMPLES, OPTS));
    expect(fs.readFileSync(out).equals(fs.readFileSync(directFile))).toBe(true);
  }, 120_000);
});
