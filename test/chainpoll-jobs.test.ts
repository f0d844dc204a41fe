// `lantern chainpoll` as a job, against a scripted OpenAI-compatible judge: the merged report equals
// a direct chainPoll run exactly (every score, every stored poll) however the completions are split;
// a resumed job asks again only for the completions of the shard it lost; a shard whose requests
// all fail is reported by shard and reason; and shards run by a `lantern worker` process through a
// real Redis merge into the report an in-process run writes.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { HttpBackend } from '../src/backends/http.js';
import { runJobLocally, shardFiles } from '../src/engine/jobs/run.js';
import { JobFailedError, jobStatus, readJob, shardFile, type JobBackend } from '../src/engine/jobs/store.js';
import { readTable } from '../src/engine/jobs/table.js';
import { startLocalRedis, type LocalRedis } from '../src/engine/jobs/local-redis.js';
import { chainPoll, planChainPoll, type ChainPollItem } from '../src/methods/evaluation/chainpoll.js';
import { chainPollAnalysis, chainPollJob, chainPollJobContext } from '../src/methods/evaluation/chainpoll-job.js';
import { JudgeRunner } from '../src/methods/evaluation/runner.js';
import { EvalStore } from '../src/methods/evaluation/store.js';
import { scriptedServer, type ScriptedServer } from './eval-helpers.js';
import { expectOneLineError, runLantern } from './helpers.js';
import { startLanternWorker, stopLanternWorker, type LanternWorker } from './support/processes.js';

// Ten completions: every third one makes a false claim; c4's third poll is unreadable; c5 has a reference.
const items: ChainPollItem[] = Array.from({ length: 10 }, (_, i) => ({
  id: `c${i}`, prompt: `Question ${i}?`, completion: `Completion ${i}: ${i % 3 === 0 ? 'a false claim' : 'a true claim'}.`,
  ...(i === 5 ? { reference: 'The reference.' } : {}),
}));
const completionOf = (p: string) => /\[Completion\]\n(.*)\n/.exec(p)![1];
const indexOf = (p: string) => Number(/^Completion (\d+):/.exec(completionOf(p))![1]);

let tmp: string;
let srv: ScriptedServer;
// Completions with these indices get HTTP 400 (not retried), as a judge refusing a worker would.
const refused = new Set<number>();
beforeAll(async () => {
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'lantern-chainpoll-jobs-'));
  // A false claim: every poll says yes. A true claim: only the poll with seed 1 does.
  srv = await scriptedServer((p, body) => {
    const i = indexOf(p);
    const seed = Number(body.seed);
    if (refused.has(i)) return { status: 400, body: JSON.stringify({ error: { message: 'refused by the scripted judge' } }) };
    if (i === 4 && seed === 2) return 'I cannot decide.';
    return `Claim by claim: checked ${i}.\n${completionOf(p).includes('false') || seed === 1 ? '[[YES]]' : '[[NO]]'}`;
  });
});
afterAll(async () => {
  await srv?.close();
  fs.rmSync(tmp, { recursive: true, force: true });
});

const backend = () => new HttpBackend({ baseURL: srv.baseURL, model: 'scripted-judge', api: 'chat', retries: 0 });
const jobBackend = (id: string): JobBackend => ({ id, load: srv.baseURL, options: { open: { model: 'scripted-judge', api: 'chat', retries: 0 } } });
const opts = { polls: 3, runId: 'run-1' };

/** Runs the chainpoll job over `items` in this process (2 shards in flight) and merges it into a fresh store. */
async function viaJob(dir: string, shardSize: number) {
  const plan = planChainPoll(items, opts);
  const store = new EvalStore();
  const runner = new JudgeRunner(backend(), { store });
  const job = chainPollJob(dir, jobBackend(runner.judge.id), plan, items, { shardSize });
  const ctx = chainPollJobContext(dir, job, runner);
  const run = await runJobLocally(dir, job, chainPollAnalysis, ctx, { concurrency: 2 });
  const report = await chainPollAnalysis.merge(ctx, job, shardFiles(dir, job), { store, runId: 'run-1' }, run);
  return { job, run, report, store };
}

const storedRun = (store: EvalStore, id: string) => {
  const { createdAt: _c, finishedAt: _f, ...run } = store.run(id)!;
  return { run, verdicts: store.verdicts(id) };
};

describe('chainpoll runs as jobs', () => {
  it('the merged report and stored run equal a direct run, for 1 shard and for 3', async () => {
    const directStore = new EvalStore();
    const direct = await chainPoll(new JudgeRunner(backend(), { store: directStore }), items, opts);
    // By the script: false claims (c0, c3, c6, c9) score 1; true claims 1/3; c4 has 2 readable polls, one yes.
    expect(direct.items.map((r) => r.score)).toEqual([1, 1 / 3, 1 / 3, 1, 0.5, 1 / 3, 1, 1 / 3, 1 / 3, 1]);
    expect(direct.meanScore).toBeCloseTo((4 + 5 / 3 + 0.5) / 10, 12);
    expect(direct.errors).toBe(1);
    expect(direct.items[4].polls[2].error).toMatch(/^unreadable answer: no answer found/);
    expect(direct.usage).toMatchObject({ requests: 30, fromStore: 0, failed: 0 });
    for (const shardSize of [100, 4]) {
      const j = await viaJob(path.join(tmp, `direct-${shardSize}`), shardSize);
      expect(j.job.shards).toEqual(shardSize === 100 ? [[0, 10]] : [[0, 4], [4, 8], [8, 10]]);
      expect(j.run.computed).toEqual(j.job.shards.map((_, i) => i));
      expect(JSON.stringify(j.report)).toBe(JSON.stringify(direct));
      expect(storedRun(j.store, 'run-1')).toEqual(storedRun(directStore, 'run-1'));
    }
  });

  it("resumes: with one shard's files deleted, only that shard's completions are polled again", async () => {
    const dir = path.join(tmp, 'resume');
    const first = await viaJob(dir, 4);
    // A shard is a table with a row per poll: shard 1 holds c4–c7, 3 polls each.
    const { rows, meta } = await readTable<Record<string, unknown>, { usage: { requests: number } }>(shardFile(dir, first.job, 1));
    expect(rows.map((r) => `${r['verdict.item']}/${r['verdict.variant']}`)).toEqual(['c4', 'c5', 'c6', 'c7'].flatMap((c) => [0, 1, 2].map((p) => `${c}/poll${p}`)));
    expect(meta.usage.requests).toBe(12);
    fs.rmSync(shardFile(dir, first.job, 1));
    fs.rmSync(path.join(dir, first.job.id, 'shard-1.done.json'));
    const sent = srv.prompts.length;
    const again = await viaJob(dir, 4);
    expect(again.job.id).toBe(first.job.id);
    expect(again.run).toEqual({ computed: [1], skipped: [0, 2] });
    const resent = srv.prompts.slice(sent).map(indexOf);
    expect(resent.length).toBe(4 * 3);
    expect([...new Set(resent)].sort()).toEqual([4, 5, 6, 7]);
    expect(again.report.usage).toMatchObject({ requests: 12, fromStore: 30 - 12, failed: 0 });
    const { usage: _u1, ...a } = again.report;
    const { usage: _u2, ...b } = first.report;
    expect(a).toEqual(b);
  });

  it('a shard whose requests all fail is reported by shard and reason; a re-run finishes it', async () => {
    const dir = path.join(tmp, 'failing');
    // c8 and c9 are exactly shard 2; c0's requests fail too, but shard 0 keeps 9 good polls.
    [0, 8, 9].forEach((i) => refused.add(i));
    try {
      const err = await viaJob(dir, 4).catch((e) => e);
      expect(err).toBeInstanceOf(JobFailedError);
      expect(err.message).toMatch(/^job chainpoll-[0-9a-f]{16}: 1 of 3 shards failed: shard 2 \(examples 8–9\): all 6 chainpoll requests failed \(request failed: .*HTTP 400: refused by the scripted judge\)$/);
      const id = (err as JobFailedError).job.id;
      expect(jobStatus(dir, id).done.map((d) => d.shard)).toEqual([0, 1]);
      expect(jobStatus(dir, id).failed.map((f) => f.shard)).toEqual([2]);
    } finally {
      refused.clear();
    }
    const again = await viaJob(dir, 4);
    expect(again.run).toEqual({ computed: [2], skipped: [0, 1] });
    // Shard 0 was kept with c0's failed polls: c0 has no score, and its 3 errors count.
    expect(again.report.items[0]).toMatchObject({ id: 'c0', score: null });
    expect(again.report.errors).toBe(1 + 3);
    expect(again.report.items.slice(1).map((r) => r.score)).toEqual([1 / 3, 1 / 3, 1, 0.5, 1 / 3, 1, 1 / 3, 1 / 3, 1]);
  });

  it('bad completions are one error line, before the judge is opened or a job made', async () => {
    const file = path.join(tmp, 'dup.jsonl');
    fs.writeFileSync(file, [items[0], items[0]].map((i) => JSON.stringify(i)).join('\n') + '\n');
    const r = await runLantern(['chainpoll', file, '--judge', 'http://127.0.0.1:9/v1', '--jobs-dir', path.join(tmp, 'dup-jobs')], tmp);
    expectOneLineError(r, /item id 'c0' appears twice/);
    expect(fs.existsSync(path.join(tmp, 'dup-jobs'))).toBe(false);
  });
});

describe('chainpoll jobs on a queue', () => {
  let redis: LocalRedis;
  let worker: LanternWorker;
  beforeAll(async () => {
    redis = await startLocalRedis(tmp);
    // The worker reads the API key from its own environment: the job names only the variable.
    worker = startLanternWorker(redis.url, path.join(tmp, 'worker-home'), { env: { JUDGE_KEY: 'sk-worker-secret' } });
  }, 60_000);
  afterAll(async () => {
    await stopLanternWorker(worker);
    await redis?.stop();
  }, 60_000);

  it('lantern chainpoll --queue: shards run on a lantern worker merge into the report an in-process run writes', async () => {
    const file = path.join(tmp, 'completions.jsonl');
    fs.writeFileSync(file, items.map((i) => JSON.stringify(i)).join('\n') + '\n');
    const args = (jobs: string, out: string) => ['chainpoll', file, '--judge', srv.baseURL, '--api', 'chat', '--api-key-env', 'JUDGE_KEY', '--polls', '3',
      '--run-id', 'r', '--shard-size', '4', '--jobs-dir', path.join(tmp, jobs), '--json', path.join(tmp, out)];
    const env = { JUDGE_KEY: 'sk-submitter-secret' };
    const local = await runLantern(args('jobs-local', 'local.json'), tmp, env);
    expect(local.code, local.stderr).toBe(0);
    expect(local.stdout).toMatch(/job chainpoll-[0-9a-f]{16}: 3 shards computed, 0 already done/);
    expect(local.stdout).toMatch(/^c4 +0\.50 /m);
    const before = srv.prompts.length;
    const queued = await runLantern([...args('jobs-queue', 'queued.json'), '--queue', redis.url], tmp, env);
    // Every judge request of the queued run came from the worker, with the key from its own environment.
    expect(srv.prompts.length - before).toBe(30);
    expect(new Set(srv.authorizations.slice(before))).toEqual(new Set(['Bearer sk-worker-secret']));
    expect(queued.code, queued.stderr + worker.log).toBe(0);
    expect(queued.stdout).toMatch(/3 shards computed, 0 already done/);
    expect(worker.log).toMatch(/shard 2 of chainpoll-[0-9a-f]{16} done/);
    expect(fs.readFileSync(path.join(tmp, 'queued.json'), 'utf8')).toBe(fs.readFileSync(path.join(tmp, 'local.json'), 'utf8'));
    const [id] = fs.readdirSync(path.join(tmp, 'jobs-queue'));
    expect(fs.readFileSync(path.join(tmp, 'jobs-queue', id, 'job.json'), 'utf8')).not.toMatch(/secret/);
    expect(readJob(path.join(tmp, 'jobs-queue'), id).backend).toEqual({
      id: `http:scripted-judge@${srv.baseURL} (chat)`, load: srv.baseURL, options: { open: { api: 'chat', apiKeyEnv: 'JUDGE_KEY' } },
    });
  }, 180_000);
});
