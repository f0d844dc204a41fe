// The Workbench's Cancel of a job submitted to a queue also takes its waiting shards off the queue
// (a real redis-server on a free loopback port, no workers): the job's folder records the queue's
// URL (queue.json, without credentials), and POST /api/dataset-jobs/:id/cancel removes that job's
// entries as `lantern jobs cancel --queue` does, leaving other jobs' entries; a queue reached with a
// password, which is not recorded, is reported instead.
import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Queue } from 'bullmq';
import { TINY_GPT2, writeRandomModel } from '../src/models/random.js';
import { loadModel } from '../src/models/load.js';
import type { HookedTransformer } from '../src/models/hooked.js';
import * as R from '../src/methods/representations/index.js';
import { JobSpec, recordQueue, recordedQueue } from '../src/engine/jobs/store.js';
import { QUEUE_NAME, redisConnection, submitToQueue } from '../src/engine/jobs/queue.js';
import { startLocalRedis, type LocalRedis } from '../src/engine/jobs/local-redis.js';
import { buildServer, type LanternServer } from '../src/interfaces/server/app.js';
import { runLantern } from './helpers.js';

let tmp: string;
let redis: LocalRedis;
let model: HookedTransformer;
let app: LanternServer;
let queue: Queue;
let jobsDir: string;

beforeAll(async () => {
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'lantern-queue-cancel-'));
  redis = await startLocalRedis(tmp);
  writeRandomModel(path.join(tmp, 'tiny'), TINY_GPT2);
  model = await loadModel(path.join(tmp, 'tiny'));
  jobsDir = path.join(tmp, 'jobs');
  app = await buildServer({ dataDir: path.join(tmp, 'wb'), jobsDir, allowHub: false, webDir: path.join(tmp, 'none') });
  queue = new Queue(QUEUE_NAME, { connection: redisConnection(redis.url) });
}, 60_000);

afterAll(async () => {
  await queue?.close();
  await app?.close();
  await model?.executor.dropWeights(model.weights);
  await redis?.stop();
  fs.rmSync(tmp, { recursive: true, force: true });
});

const examples = Array.from({ length: 6 }, (_, i) => ({ text: `The cat sat on mat number ${i}`, label: i % 2 }));
const job = (hook: string) => R.activationsJob(jobsDir, model, examples, { hooks: [hook], batchSize: 2, shardSize: 2 });

/** The shards of `id` waiting on the queue, by shard number. */
async function waiting(id: string): Promise<number[]> {
  const entries = await queue.getJobs(['waiting', 'delayed', 'prioritized']);
  return entries.filter((e) => e?.data.jobId === id).map((e) => e.data.shard as number).sort();
}

/** Submits `j` as `lantern activations --queue` does, and waits until its shards are on the queue; `running` settles when the submitter stops. */
async function submit(j: JobSpec): Promise<{ running: Promise<unknown> }> {
  const running = submitToQueue(redis.url, jobsDir, j, { pollMs: 20, reconcileMs: 200 });
  running.catch(() => {});
  const t0 = Date.now();
  while ((await waiting(j.id)).length < j.shards.length) {
    if (Date.now() - t0 > 20_000) throw new Error('the shards never reached the queue');
    await new Promise((r) => setTimeout(r, 20));
  }
  return { running };
}

const cancel = (id: string) => app.inject({ method: 'POST', url: `/api/dataset-jobs/${id}/cancel`, headers: { host: 'localhost' } });

describe('cancelling a queued job from the Workbench', () => {
  it('removes that job\'s waiting shards from the queue it was submitted to, and no other job\'s; the submitter stops', async () => {
    const a = await job('blocks.0.hook_resid_post');
    const b = await job('blocks.1.hook_resid_post');
    const { running: runningA } = await submit(a);
    const { running: runningB } = await submit(b);
    expect(recordedQueue(jobsDir, a.id)).toEqual({ url: redis.url, credentials: false });
    expect(await waiting(a.id)).toEqual([0, 1, 2]);

    const res = await cancel(a.id);
    expect(res.statusCode, res.body).toBe(200);
    expect(res.json()).toMatchObject({ state: 'cancelled', cancelled: true, done: [], queue: { url: redis.url, removed: 3 } });
    expect(await waiting(a.id)).toEqual([]);
    expect(await waiting(b.id)).toEqual([0, 1, 2]);
    await expect(runningA).rejects.toThrow(`job ${a.id} was cancelled with 0 of 3 shards done; run the command again to finish it`);

    // A job never submitted to a queue: nothing to remove, and the reply says nothing about a queue.
    const local = await job('blocks.0.hook_mlp_out');
    const plain = await cancel(local.id);
    expect(plain.statusCode).toBe(200);
    expect(plain.json().queue).toBeUndefined();

    await cancel(b.id);
    await expect(runningB).rejects.toThrow(/was cancelled/);
    expect(await waiting(b.id)).toEqual([]);
  }, 60_000);

  it('a queue reached with a password is recorded without it: Cancel says it cannot remove the shards, and leaves them', async () => {
    const c = await job('blocks.1.hook_mlp_out');
    const { running } = await submit(c);
    const [, port] = /:(\d+)$/.exec(redis.url)!;
    recordQueue(jobsDir, c.id, `redis://lantern:s3cret@127.0.0.1:${port}`);
    expect(fs.readFileSync(path.join(jobsDir, c.id, 'queue.json'), 'utf8')).not.toContain('s3cret');
    const res = await cancel(c.id);
    expect(res.statusCode, res.body).toBe(200);
    expect(res.json().queue).toEqual({
      url: redis.url, removed: 0,
      error: `the job was submitted to ${redis.url} with credentials, which are not recorded, so its waiting shards stay on that queue (workers skip them as cancelled); remove them with lantern jobs cancel ${c.id} --queue <the URL with its password>`,
    });
    expect(await waiting(c.id)).toEqual([0, 1, 2]);
    await expect(running).rejects.toThrow(/was cancelled/);
  }, 60_000);

  it('lantern jobs cancel without --queue removes the waiting shards from the recorded queue too', async () => {
    const d = await job('blocks.0.hook_attn_out');
    const { running } = await submit(d);
    expect(await waiting(d.id)).toEqual([0, 1, 2]);
    const r = await runLantern(['jobs', 'cancel', d.id, '--jobs-dir', jobsDir], tmp);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toContain(`cancelled job ${d.id} (0 of 3 shards done, 3 removed from the queue at ${redis.url})`);
    expect(await waiting(d.id)).toEqual([]);
    await expect(running).rejects.toThrow(/was cancelled/);
  }, 60_000);
});
