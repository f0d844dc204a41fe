// SAE training activations harvested as a job (the bundled model, a tiny corpus whose stream wraps
// around): the shards hold exactly the rows ModelSource streams, in its order, so an SAE trained
// from them equals the streamed one bit for bit (topk, and a transcoder with its targets), and a
// streamed run's checkpoint resumes from them. Several shards equal one; a deleted shard is the only
// one recomputed; and `lantern sae train --queue` with a real redis-server and a `lantern worker`
// process saves the same weights as plain `lantern sae train`.
import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { loadModel } from '../src/models/load.js';
import type { HookedTransformer } from '../src/models/hooked.js';
import { BUNDLED_MODEL } from '../src/paths.js';
import { ModelSource, type ModelSourceOptions, type ActivationSource } from '../src/methods/sae/source.js';
import { SaeTrainer, defaultTrainConfig, saeTrainingRows, type SaeTrainConfig } from '../src/methods/sae/train.js';
import type { SaeConfig } from '../src/methods/sae/sae.js';
import { HarvestedSource, harvestForwards, saeHarvestAnalysis, saeHarvestContext, saeHarvestJob, saeHarvestSize } from '../src/methods/sae/harvest-job.js';
import { runJobLocally, shardFiles } from '../src/engine/jobs/run.js';
import { jobStatus, shardFile, type JobSpec } from '../src/engine/jobs/store.js';
import { startLocalRedis, type LocalRedis } from '../src/engine/jobs/local-redis.js';
import { runLantern } from './helpers.js';
import { startLanternWorker, stopLanternWorker, type LanternWorker } from './support/processes.js';

const HOOK = 'blocks.1.hook_resid_post';
const HOOK_OUT = 'blocks.1.hook_mlp_out';
let tmp: string;
let model: HookedTransformer;
// 37 windows of 16 tokens (and a partial one): 8 windows per forward do not divide 37, so the
// stream's forwards wrap around the corpus mid-forward.
const tokens = Array.from({ length: 37 * 16 + 5 }, (_, i) => (i * 7919 + (i >> 4) * 131) % 5000);
const SOURCE: ModelSourceOptions = { hook: HOOK, context: 16, skipPositions: 1 };

beforeAll(async () => {
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'lantern-sae-jobs-'));
  model = await loadModel(BUNDLED_MODEL);
});
afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));

function config(transcoder: boolean): SaeConfig {
  return { architecture: transcoder ? 'transcoder' : 'topk', dIn: 256, dSae: 64, dOut: 256, k: transcoder ? undefined : 4, applyBDecToInput: !transcoder, normalizeActivations: 'none', hookName: HOOK, hookNameOut: transcoder ? HOOK_OUT : undefined };
}

const trainConfig = (cfg: SaeConfig, over: Partial<SaeTrainConfig> = {}) => defaultTrainConfig(cfg, { batch: 32, steps: 30, lr: 1e-3, bufferBatches: 2, deadFeatureWindow: 10, auxKCoefficient: 0.5, l1Coefficient: 0.1, ...over });

async function harvest(dir: string, source: ModelSource, rows: number, shardSize?: number): Promise<{ job: JobSpec; computed: number[]; harvested: HarvestedSource }> {
  const job = await saeHarvestJob(dir, source, { rows, shardSize, corpus: 'test' });
  const ctx = saeHarvestContext(source, job);
  const { computed } = await runJobLocally(dir, job, saeHarvestAnalysis, ctx, { concurrency: 2 });
  return { job, computed, harvested: await saeHarvestAnalysis.merge(ctx, job, shardFiles(dir, job), {}) };
}

async function trainedWeights(cfg: SaeConfig, tc: SaeTrainConfig, source: ActivationSource, checkpoint?: string) {
  const trainer = await SaeTrainer.create(cfg, tc, source, { checkpoint });
  await trainer.train();
  const sae = await trainer.sae();
  await trainer.release();
  return { weights: sae.weights, log: trainer.state.log.map(({ rowsPerSecond: _, ...e }) => e) };
}

const bytes = (a: Float32Array) => Buffer.from(a.buffer, a.byteOffset, a.byteLength);

describe('SAE training from harvested activations', () => {
  for (const transcoder of [false, true]) {
    it(`${transcoder ? 'transcoder' : 'topk'}: the shards hold ModelSource's rows in its order, and the trained SAE is the streamed one, bit for bit`, async () => {
      const opts = { ...SOURCE, hookOut: transcoder ? HOOK_OUT : undefined };
      const cfg = config(transcoder);
      const tc = trainConfig(cfg);
      const rows = saeTrainingRows(tc);
      expect(rows).toBe(32 * 32);
      // 1024 rows at 8 × 15 a forward: 9 forwards, 72 windows, so the harvest wraps around the 37.
      const { job, harvested } = await harvest(path.join(tmp, `equal-${transcoder}`), new ModelSource(model, tokens, opts), rows, 24);
      expect(job.dataset.examples).toBe(72);
      expect(job.shards).toEqual([[0, 24], [24, 48], [48, 72]]);
      expect(saeHarvestSize(job)).toEqual({ rows: 72 * 15, bytes: 72 * 15 * (transcoder ? 512 : 256) * 4 });

      const stream = new ModelSource(model, tokens, opts);
      for (let f = 0; f < 9; f++) {
        const [a, b] = [await stream.next(), await harvested.next()];
        expect(b.rows).toBe(a.rows);
        expect(bytes(b.x).equals(bytes(a.x))).toBe(true);
        if (transcoder) expect(bytes(b.y!).equals(bytes(a.y!))).toBe(true);
        expect(harvested.state()).toEqual(stream.state());
      }
      // The 10th forward would start at window 72 mod 37 = 35, which the harvest does not hold.
      await expect(harvested.next()).rejects.toThrow(/holds 72 windows, and training reads past them \(from window 35\)/);

      const streamed = await trainedWeights(cfg, tc, new ModelSource(model, tokens, opts));
      harvested.restore({ window: 0 });
      const fromShards = await trainedWeights(cfg, tc, harvested);
      for (const name of ['W_enc', 'W_dec', 'b_enc', 'b_dec'] as const) expect(bytes(fromShards.weights[name]).equals(bytes(streamed.weights[name])), name).toBe(true);
      expect(fromShards.log).toEqual(streamed.log);
      // Not trivially equal: the SAE moved away from its initialisation.
      expect(streamed.log[0].loss).not.toBe(streamed.log.at(-1)!.loss);

      if (transcoder) return;
      // A streamed run's checkpoint continues from the shards (the sources share their state).
      const ckpt = path.join(tmp, 'ckpt');
      const first = await SaeTrainer.create(cfg, tc, new ModelSource(model, tokens, opts));
      await first.train(async (e, t) => {
        if (e.step === 13) {
          await t.saveCheckpoint(ckpt);
          throw new Error('interrupted');
        }
      }).catch((e: Error) => expect(e.message).toBe('interrupted'));
      await first.release();
      harvested.restore({ window: 0 });
      const resumed = await trainedWeights(cfg, tc, harvested, ckpt);
      expect(bytes(resumed.weights.W_dec).equals(bytes(streamed.weights.W_dec))).toBe(true);
    }, 120_000);
  }

  it('several shards equal one; a stream that repeats is harvested once; a deleted shard is the only one recomputed', async () => {
    const dir = path.join(tmp, 'shards');
    const source = new ModelSource(model, tokens, SOURCE);
    const rows = 2000;
    const many = await harvest(dir, source, rows, 12);
    const one = await harvest(dir, source, rows, 10_000);
    expect(many.job.id).not.toBe(one.job.id);
    // 2000 rows would be 17 forwards; 8 and 37 are coprime, so the stream repeats after 37 forwards: all 17 are harvested.
    expect(harvestForwards(source, rows)).toBe(17);
    // 32 windows: forward 4 starts where forward 0 did, so 4 forwards are harvested and replayed in a cycle.
    const short = tokens.slice(0, 32 * 16);
    const cycle = await harvest(path.join(tmp, 'cycle'), new ModelSource(model, short, SOURCE), rows);
    expect(cycle.job.dataset.examples).toBe(32);
    const stream = new ModelSource(model, short, SOURCE);
    for (let f = 0; f < 17; f++) expect(bytes((await cycle.harvested.next()).x).equals(bytes((await stream.next()).x))).toBe(true);
    expect(many.job.shards.length).toBe(Math.ceil(136 / 16));
    expect(one.job.shards.length).toBe(1);
    for (let f = 0; f < 17; f++) expect(bytes((await many.harvested.next()).x).equals(bytes((await one.harvested.next()).x))).toBe(true);

    const before = jobStatus(dir, many.job.id).done.find((d) => d.shard === 3)!.sha256;
    fs.rmSync(shardFile(dir, many.job, 3));
    const again = await harvest(dir, source, rows, 12);
    expect(again.job.id).toBe(many.job.id);
    expect(again.computed).toEqual([3]);
    expect(jobStatus(dir, many.job.id).done.find((d) => d.shard === 3)!.sha256).toBe(before);
    const third = await harvest(dir, source, rows, 12);
    expect(third.computed).toEqual([]);
  }, 120_000);
});

describe('lantern sae train on a queue', () => {
  let redis: LocalRedis;
  let worker: LanternWorker;
  beforeAll(async () => {
    redis = await startLocalRedis(tmp);
    worker = startLanternWorker(redis.url, path.join(tmp, 'worker-home'), { args: ['--threads', '1'] });
  }, 60_000);
  afterAll(async () => {
    await stopLanternWorker(worker);
    await redis.stop();
  }, 60_000);

  it('--queue (shards on a lantern worker) and --harvest (in-process, reusing them) save the weights plain streaming saves', async () => {
    const data = path.join(tmp, 'corpus.txt');
    fs.writeFileSync(data, Array.from({ length: 120 }, (_, i) => `Sentence ${i} says the ${['cat', 'dog', 'bird'][i % 3]} sat on mat ${(i * 7) % 13}.`).join(' '));
    const jobs = path.join(tmp, 'cli-jobs');
    const args = (out: string) => ['sae', 'train', '--data', data, '--hook', HOOK, '--d-sae', '64', '--k', '4', '--context', '16', '--batch', '32', '--steps', '20', '--buffer-batches', '2', '--dead-window', '10', '--eval-windows', '0', '--seed', '3', '--out', path.join(tmp, out)];
    const [plain, queued] = await Promise.all([
      runLantern(args('plain'), tmp),
      runLantern([...args('queued'), '--jobs-dir', jobs, '--shard-size', '16', '--queue', redis.url], tmp),
    ]);
    expect(plain.code, plain.stderr).toBe(0);
    expect(queued.code, queued.stderr).toBe(0);
    // 22 batches of 32 rows = 704 rows: 6 forwards of 8 windows × 15 rows, 48 windows in shards of 16.
    expect(queued.stderr).toMatch(/harvest sae-activations-[0-9a-f]{16}: 48 windows, 720 rows x 256 floats = 720 KiB in /);
    expect(queued.stdout).toMatch(/3 shards computed, 0 already done/);
    const id = /job (sae-activations-[0-9a-f]{16})/.exec(queued.stdout)![1];
    expect(jobStatus(jobs, id).done.map((d) => d.worker)).toEqual(Array(3).fill(expect.stringMatching(new RegExp(`:${worker.child.pid}$`))));
    expect(worker.log).toMatch(new RegExp(`shard 2 of ${id} done`));
    const weights = (out: string) => fs.readFileSync(path.join(tmp, out, 'sae_weights.safetensors'));
    expect(weights('queued').equals(weights('plain'))).toBe(true);
    expect(JSON.parse(fs.readFileSync(path.join(tmp, 'queued', 'cfg.json'), 'utf8'))).toMatchObject({ metadata: { harvest: id } });

    const local = await runLantern([...args('local'), '--harvest', '--jobs-dir', jobs, '--shard-size', '16'], tmp);
    expect(local.code, local.stderr).toBe(0);
    expect(local.stdout).toMatch(new RegExp(`job ${id}: 0 shards computed, 3 already done`));
    expect(weights('local').equals(weights('plain'))).toBe(true);
  }, 180_000);
});
