// Jobs across processes on a real Redis (Debian's redis-server, started here on a free loopback
// port without persistence) and real `lantern worker` processes: the merged activations equal a
// direct harvest's byte for byte even when a worker is killed -9 mid-shard, when Redis stops
// mid-job and comes back empty, and a shard that throws is reported by number and reason.
import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { loadModel } from '../src/models/load.js';
import type { HookedTransformer } from '../src/models/hooked.js';
import { BUNDLED_MODEL } from '../src/paths.js';
import * as R from '../src/methods/representations/index.js';
import { jobStatus, readJob, JobFailedError } from '../src/engine/jobs/store.js';
import { shardFiles } from '../src/engine/jobs/run.js';
import { submitToQueue } from '../src/engine/jobs/queue.js';
import { freePort, startLocalRedis, type LocalRedis } from '../src/engine/jobs/local-redis.js';
import { runLantern } from './helpers.js';
import { startLanternWorker, stopLanternWorker, type LanternWorker } from './support/processes.js';

const HOOK = 'blocks.2.hook_resid_post';
let tmp: string;
let port: number;
let url: string;
let redis: LocalRedis | undefined;
let model: HookedTransformer;
const workers: LanternWorker[] = [];

async function startRedis(): Promise<void> {
  redis = await startLocalRedis(tmp, port);
}

async function stopRedis(): Promise<void> {
  const r = redis!;
  redis = undefined;
  await r.stop();
}

function startWorker(): LanternWorker {
  const w = startLanternWorker(url, path.join(tmp, 'home'), { args: ['--threads', '1', '--stall-timeout', '1500'] });
  workers.push(w);
  return w;
}

const waitFor = async (cond: () => boolean, what: string, ms = 120_000) => {
  const t0 = Date.now();
  while (!cond()) {
    if (Date.now() - t0 > ms) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
};

// Long prompts (about 150 tokens), so a shard takes a while and faults land in the middle of a job.
function longExamples(n: number): R.HarvestExample[] {
  const sentences = R.capitals({ seed: 2 }).examples;
  return Array.from({ length: n }, (_, i) => ({
    text: Array.from({ length: 14 }, (_, k) => sentences[(i * 7 + k) % sentences.length].text).join(' '),
    label: i % 2, split: i % 4 === 0 ? 'test' as const : 'train' as const,
  }));
}

beforeAll(async () => {
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'lantern-queue-'));
  port = await freePort();
  url = `redis://127.0.0.1:${port}`;
  await startRedis();
  startWorker();
  startWorker();
  startWorker();
  model = await loadModel(BUNDLED_MODEL);
}, 60_000);

afterAll(async () => {
  for (const w of workers) await stopLanternWorker(w);
  if (redis) await stopRedis();
  fs.rmSync(tmp, { recursive: true, force: true });
}, 60_000);

describe('jobs on a BullMQ queue with lantern worker processes', () => {
  it('a worker killed -9 mid-shard: another takes its shard; the submitting command merges the same bytes as a direct harvest', async () => {
    const examples = longExamples(48);
    const data = path.join(tmp, 'long.jsonl');
    fs.writeFileSync(data, examples.map((e) => JSON.stringify(e)).join('\n') + '\n');
    const direct = path.join(tmp, 'direct.safetensors');
    await R.harvestToFile(model, examples, { out: direct, hooks: [HOOK], batchSize: 8, dataset: data, seed: 0 });

    const jobsDir = path.join(tmp, 'jobs');
    const out = path.join(tmp, 'queued.safetensors');
    const submit = runLantern(['activations', '--data', data, '--split-column', 'split', '--hooks', HOOK, '--batch-size', '8', '--shard-size', '8', '--jobs-dir', jobsDir, '--queue', url, '--out', out], tmp);
    // A worker's first shard opens the model, so the first `started` line is always mid-shard.
    const victim = await (async () => {
      await waitFor(() => workers.some((w) => /shard \d+ of \S+ started/.test(w.log)), 'a shard to start');
      return workers.find((w) => /shard \d+ of \S+ started/.test(w.log))!;
    })();
    victim.child.kill('SIGKILL');
    const [, shard, id] = /shard (\d+) of (\S+) started/.exec(victim.log)!;
    const r = await submit;
    expect(r.stderr).toBe('');
    expect(r.stdout).toMatch(/6 shards computed, 0 already done/);
    expect(fs.readFileSync(out).equals(fs.readFileSync(direct))).toBe(true);
    const status = jobStatus(jobsDir, id);
    expect(status.state).toBe('done');
    const rec = status.done.find((d) => d.shard === Number(shard))!;
    expect(rec.worker).not.toMatch(new RegExp(`:${victim.child.pid}$`));
    expect(victim.log).not.toMatch(new RegExp(`shard ${shard} of ${id} done`));
    expect(status.done.filter((d) => d.worker.endsWith(`:${victim.child.pid}`))).toEqual([]);
  }, 180_000);

  it('Redis stopped mid-job and restarted empty: the submitter puts the lost shards back and the result is unchanged', async () => {
    const examples = longExamples(96);
    const jobsDir = path.join(tmp, 'jobs-restart');
    const direct = path.join(tmp, 'direct-restart.safetensors');
    await R.harvestToFile(model, examples, { out: direct, hooks: [HOOK], batchSize: 8, dataset: 'long', seed: 0 });
    const job = await R.activationsJob(jobsDir, model, examples, { hooks: [HOOK], batchSize: 8, shardSize: 8, dataset: 'long' });
    let restartedAt = 0;
    const seen: number[] = [];
    let restart: Promise<void> | undefined;
    const run = submitToQueue(url, jobsDir, job, {
      pollMs: 100,
      progress: (done) => {
        seen.push(done);
        if (done >= 1 && !restart) restart = (async () => { await stopRedis(); await new Promise((r) => setTimeout(r, 1000)); await startRedis(); restartedAt = Date.now(); })();
      },
    });
    await run;
    await restart;
    const status = jobStatus(jobsDir, job.id);
    expect(status.done).toHaveLength(12);
    // Shards were finished after Redis came back, so the restart did hit the middle of the job.
    expect(status.done.filter((d) => Date.parse(d.finishedAt) > restartedAt).length).toBeGreaterThan(0);
    expect(seen[seen.length - 1]).toBe(12);
    const out = path.join(tmp, 'restart.safetensors');
    await R.activationsAnalysis.merge({ model, examples }, readJob(jobsDir, job.id), shardFiles(jobsDir, job), { out });
    expect(fs.readFileSync(out).equals(fs.readFileSync(direct))).toBe(true);
  }, 180_000);

  it('a shard that throws on a worker: the job fails naming that shard, its examples and the reason', async () => {
    const examples = R.capitals({ seed: 1, limit: 12 }).examples.map((e, i) => (i === 10 ? { ...e, text: 'Paris' } : e));
    const jobsDir = path.join(tmp, 'jobs-bad');
    const job = await R.activationsJob(jobsDir, model, examples, { hooks: [HOOK], positions: { token: ' of' }, batchSize: 4, shardSize: 8 });
    const err = await submitToQueue(url, jobsDir, job, { pollMs: 100 }).catch((e) => e);
    expect(err).toBeInstanceOf(JobFailedError);
    expect(err.message).toBe(`job ${job.id}: 1 of 3 shards failed: shard 1 (examples 8–15): prompt 10 has no token " of": "Paris"`);
    expect(jobStatus(jobsDir, job.id).done.map((d) => d.shard)).toEqual([0, 2]);
    // A Redis nobody listens at is a clear error, not a hang.
    const closed = await freePort();
    await expect(submitToQueue(`redis://127.0.0.1:${closed}`, jobsDir, job, { connectMs: 1500 })).rejects.toThrow(new RegExp(`^cannot reach Redis at redis://127.0.0.1:${closed} \\(.*ECONNREFUSED.*\\); start one`));
  }, 120_000);
});
