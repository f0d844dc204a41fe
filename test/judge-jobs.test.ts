// `lantern judge` as a job, against scripted OpenAI-compatible judges: the merged report equals a
// direct judgeSingle/judgePairwise run exactly (every statistic, every stored verdict) however the
// items are split; a resumed job asks the judge again only for the items of the shards it lost; a
// shard whose requests all fail is reported by shard and reason; and shards run by a `lantern
// worker` process through a real Redis merge into the report an in-process run writes.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { HttpBackend } from '../src/backends/http.js';
import { runJobLocally, shardFiles } from '../src/engine/jobs/run.js';
import { createJob, JobFailedError, jobStatus, readJob, shardFile, type JobBackend } from '../src/engine/jobs/store.js';
import { parquetReadObjects } from 'hyparquet';
import { startLocalRedis, type LocalRedis } from '../src/engine/jobs/local-redis.js';
import { asksPerItem, judgePairwise, judgeSingle, planPairwise, planSingle, type EvalQuestion, type HumanPairLabel, type HumanScore, type ModelAnswer } from '../src/methods/evaluation/judge.js';
import { judgeAnalysis, judgeJob, judgeJobContext } from '../src/methods/evaluation/judge-job.js';
import { JudgeRunner } from '../src/methods/evaluation/runner.js';
import { EvalStore } from '../src/methods/evaluation/store.js';
import { answerOf, pairOf, scriptedServer, type ScriptedServer } from './eval-helpers.js';
import { expectOneLineError, runLantern } from './helpers.js';
import { startLanternWorker, stopLanternWorker, type LanternWorker } from './support/processes.js';

// Three models, four questions (with references); quality[model][question] is what the scripted judge sees.
const quality: Record<string, number[]> = { strong: [9, 8, 7, 6], medium: [6, 8, 5, 6], weak: [3, 2, 5, 1] };
const questions: EvalQuestion[] = [0, 1, 2, 3].map((i) => ({ id: `q${i}`, turns: [`Question number ${i}?`], reference: [`Reference ${i}.`] }));
const answerText = (m: string, i: number) => `Answer of ${m} to ${i}${' and more words'.repeat(quality[m][i])}.`;
const answers: ModelAnswer[] = Object.keys(quality).flatMap((m) => [0, 1, 2, 3].map((i) => ({ questionId: `q${i}`, model: m, turns: [answerText(m, i)] })));
const qualityOf = (text: string) => (text.match(/ and more words/g) ?? []).length;

let tmp: string;
let srv: ScriptedServer;
// Answers of these models get HTTP 400 (not retried), as a judge refusing a worker would.
const refused = new Set<string>();
beforeAll(async () => {
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'lantern-judge-jobs-'));
  srv = await scriptedServer((p, body) => {
    const seed = Number(body.seed);
    if (p.includes('[Reply of assistant A]') || p.startsWith('Which reply')) {
      if (p.startsWith('Which reply')) return 'Both fine. [[C]]';
      const { a, b } = pairOf(p);
      if (a.includes('weak to 3') && b.includes('medium to 3')) return 'No verdict here.';
      const [qa, qb] = [qualityOf(a), qualityOf(b)];
      // A planted position bias (equal quality goes to A) and sample 1 flipping A and B.
      const right = qa >= qb ? 'A' : 'B';
      return `Compared. [[${seed === 1 ? (right === 'A' ? 'B' : 'A') : right}]]`;
    }
    const text = answerOf(p);
    if ([...refused].some((m) => text.includes(`of ${m} to`))) return { status: 400, body: JSON.stringify({ error: { message: 'refused by the scripted judge' } }) };
    const q = qualityOf(text);
    if (text.includes('strong to 3')) return 'I refuse to grade this.';
    if (p.includes('Write a critique')) return `- Correctness: ${q} - a\n- Clarity: ${q} - b\nOverall. Rating: [[${q >= 8 ? 3 : Math.max(q, 1)}]]`;
    return `Quality looks like ${q}.\nRating: [[${Math.min(10, Math.max(q, 1) + seed)}]]`;
  });
});
afterAll(async () => {
  await srv?.close();
  fs.rmSync(tmp, { recursive: true, force: true });
});

const backend = () => new HttpBackend({ baseURL: srv.baseURL, model: 'scripted-judge', api: 'chat', retries: 0 });
const jobBackend = (id: string): JobBackend => ({ id, load: srv.baseURL, options: { open: { model: 'scripted-judge', api: 'chat', retries: 0 } } });
const singleOpts = { questions, answers, templates: ['single', 'single-critique'], samples: 2, runId: 'run-1' };
const humanScores: HumanScore[] = answers.map((a, i) => ({ questionId: a.questionId, model: a.model, score: Math.max(qualityOf(a.turns[0]), 1) + (i % 3 === 0 ? 1 : 0) }));
const pairOpts = { questions, answers, templates: ['pairwise', 'pairwise-brief'], samples: 2, runId: 'run-2' };
const humanPairs: HumanPairLabel[] = [
  { questionId: 'q0', model_a: 'strong', model_b: 'medium', winner: 'model_a' },
  { questionId: 'q1', model_a: 'medium', model_b: 'strong', winner: 'tie' },
  { questionId: 'q2', model_a: 'weak', model_b: 'strong', winner: 'model_a' },
  { questionId: 'q3', model_a: 'strong', model_b: 'weak', winner: 'model_a' },
];

/** Runs the job of `plan` over `items` in this process (2 shards in flight) and merges it into a fresh store. */
async function viaJob(dir: string, kind: 'single' | 'pairwise', shardSize: number, human: HumanScore[] | HumanPairLabel[]) {
  const { plan, items } = kind === 'single' ? planSingle(singleOpts) : planPairwise(pairOpts);
  const store = new EvalStore();
  const runner = new JudgeRunner(backend(), { store });
  const job = judgeJob(dir, jobBackend(runner.judge.id), plan, items, { shardSize });
  const ctx = judgeJobContext(dir, job, runner);
  const run = await runJobLocally(dir, job, judgeAnalysis, ctx, { concurrency: 2 });
  const report = await judgeAnalysis.merge(ctx, job, shardFiles(dir, job), { store, runId: kind === 'single' ? 'run-1' : 'run-2', human }, run);
  return { job, run, report, store, asks: asksPerItem(plan) };
}

const storedRun = (store: EvalStore, id: string) => {
  const { createdAt: _c, finishedAt: _f, ...run } = store.run(id)!;
  return { run, verdicts: store.verdicts(id) };
};

describe('judge runs as jobs', () => {
  it('single grading: the merged report and stored run equal a direct run, for 1 shard and for 3', async () => {
    const directStore = new EvalStore();
    const direct = await judgeSingle(new JudgeRunner(backend(), { store: directStore }), { ...singleOpts, human: humanScores });
    // Every statistic is in play: errors, flip noise, template sensitivity, critique checks, human agreement.
    // strong/q3 is unreadable under both templates, in both samples.
    expect(direct.errors).toBe(4);
    expect(direct.flipNoise!.items).toBeGreaterThan(0);
    expect(direct.templateSensitivity!.fractionChanged).toBeGreaterThan(0);
    // Critique: qualities ≥ 8 (strong q0, q1; medium q1) get 3 while their criteria say ≥ 8, in both samples.
    expect(direct.critique!.disagreements.length).toBe(6);
    expect(direct.human!.n).toBe(11);
    expect(direct.usage).toMatchObject({ requests: 48, fromStore: 0, failed: 0 });
    for (const shardSize of [100, 5]) {
      const j = await viaJob(path.join(tmp, `single-${shardSize}`), 'single', shardSize, humanScores);
      expect(j.job.shards).toEqual(shardSize === 100 ? [[0, 12]] : [[0, 5], [5, 10], [10, 12]]);
      expect(j.run.computed).toEqual(j.job.shards.map((_, i) => i));
      expect(JSON.stringify(j.report)).toBe(JSON.stringify(direct));
      expect(storedRun(j.store, 'run-1')).toEqual(storedRun(directStore, 'run-1'));
    }
  });

  it('pairwise: the merged report (consistency, preference, battles, …) equals a direct run, for 1 shard and for 4', async () => {
    const directStore = new EvalStore();
    const direct = await judgePairwise(new JudgeRunner(backend(), { store: directStore }), { ...pairOpts, human: humanPairs });
    // medium vs weak on q3, weak shown first: unreadable under 'pairwise' in both samples.
    expect(direct.errors).toBe(2);
    expect(direct.positionConsistency!.rate).toBeLessThan(1);
    expect(direct.positionPreference!.inconsistent).toBeGreaterThan(0);
    expect(direct.flipNoise!.rate).toBeGreaterThan(0);
    expect(direct.templateSensitivity!.fractionChanged).toBeGreaterThan(0);
    expect(direct.human!.n).toBe(4);
    expect(direct.battles.length).toBe(11);
    expect(direct.usage.requests).toBe(96);
    for (const shardSize of [12, 3]) {
      const j = await viaJob(path.join(tmp, `pairwise-${shardSize}`), 'pairwise', shardSize, humanPairs);
      expect(j.job.shards.length).toBe(12 / shardSize);
      expect(JSON.stringify(j.report)).toBe(JSON.stringify(direct));
      expect(storedRun(j.store, 'run-2')).toEqual(storedRun(directStore, 'run-2'));
    }
  });

  it("resumes: with one shard's files deleted, only that shard's items are judged again", async () => {
    const dir = path.join(tmp, 'resume');
    const first = await viaJob(dir, 'pairwise', 3, humanPairs);
    // The shards are Parquet tables any reader opens: a row per judgment (here read with hyparquet directly).
    const bytes = fs.readFileSync(shardFile(dir, first.job, 2));
    const rows = await parquetReadObjects({ file: bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength) });
    expect(rows.length).toBe(3 * first.asks);
    expect(new Set(rows.map((r) => r['judgment.question']))).toEqual(new Set(['q2']));
    expect(rows.filter((r) => r['judgment.order'] === 'yx').length).toBe(rows.length / 2);
    fs.rmSync(shardFile(dir, first.job, 2));
    fs.rmSync(path.join(dir, first.job.id, 'shard-2.done.json'));
    const sent = srv.prompts.length;
    const again = await viaJob(dir, 'pairwise', 3, humanPairs);
    expect(again.job.id).toBe(first.job.id);
    expect(again.run).toEqual({ computed: [2], skipped: [0, 1, 3] });
    // Shard 2 holds items 6–8: 3 items × 2 templates × 2 samples × 2 orders.
    expect(srv.prompts.length - sent).toBe(3 * again.asks);
    expect(again.asks).toBe(8);
    // Items 6–8 are question q2's three pairs: every prompt sent again is about q2, and each pair is there.
    const resent = srv.prompts.slice(sent).map((p) => pairOf(p)).map(({ a, b }) => [a, b].map((t) => /of (\w+) to (\d)/.exec(t)!.slice(1).join('/')).sort().join(' '));
    expect(new Set(resent)).toEqual(new Set(['medium/2 strong/2', 'strong/2 weak/2', 'medium/2 weak/2']));
    // This run's usage: the shard it computed; the other shards' judgments come from the job folder.
    expect(again.report.usage).toMatchObject({ requests: 24, fromStore: 96 - 24, failed: 0 });
    const { usage: _u1, ...a } = again.report;
    const { usage: _u2, ...b } = first.report;
    expect(a).toEqual(b);
  });

  it('a shard whose judge requests all fail is reported by shard and reason; the others are kept and a re-run finishes it', async () => {
    const dir = path.join(tmp, 'failing');
    refused.add('weak');
    try {
      // Items 8–11 are weak's answers: exactly shard 2 with 4 items per shard.
      const err = await viaJob(dir, 'single', 4, humanScores).catch((e) => e);
      expect(err).toBeInstanceOf(JobFailedError);
      expect(err.message).toMatch(/^job judge-[0-9a-f]{16}: 1 of 3 shards failed: shard 2 \(examples 8–11\): all 16 judge requests failed \(request failed: .*HTTP 400: refused by the scripted judge\)$/);
      const id = (err as JobFailedError).job.id;
      expect(jobStatus(dir, id).done.map((d) => d.shard)).toEqual([0, 1]);
      expect(jobStatus(dir, id).failed.map((f) => f.shard)).toEqual([2]);
    } finally {
      refused.clear();
    }
    const again = await viaJob(dir, 'single', 4, humanScores);
    expect(again.run).toEqual({ computed: [2], skipped: [0, 1] });
    const direct = await judgeSingle(new JudgeRunner(backend()), { ...singleOpts, human: humanScores });
    const { usage: _u1, ...a } = again.report;
    const { usage: _u2, ...b } = direct;
    expect(a).toEqual(b);
  });

  it('a job records a model or a backend, never both; a judge URL with credentials is refused before it is opened', async () => {
    const spec = { analysis: 'judge', settings: {}, seed: 0, dataset: { name: '' }, shards: [[0, 1]] as [number, number][], ext: 'json' as const };
    expect(() => createJob(path.join(tmp, 'bad'), { ...spec, backend: jobBackend('x'), model: { source: 'm', load: 'm', weightsSha256: '0' } }, [{}])).toThrow(/needs a model or a backend, and not both/);
    expect(() => createJob(path.join(tmp, 'bad'), spec, [{}])).toThrow(/needs a model or a backend, and not both/);
    const withKey = srv.baseURL.replace('http://', 'http://user:sk-in-url@');
    const r = await runLantern(['judge', 'single', '--questions', 'data/evaluation/questions.jsonl', '--answers', 'data/evaluation/answers.jsonl', '--judge', withKey, '--jobs-dir', path.join(tmp, 'bad')], tmp);
    expectOneLineError(r, /--judge http:\/\/…@127\.0\.0\.1:\d+: a job does not keep credentials; give the key in an environment variable \(--api-key-env\)/);
    expect(r.stderr).not.toContain('sk-in-url');
    expect(fs.existsSync(path.join(tmp, 'bad'))).toBe(false);
  });
});

describe('judge jobs on a queue', () => {
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

  it('lantern judge pairwise --queue: shards run on a lantern worker merge into the report an in-process run writes', async () => {
    const args = (jobs: string, out: string) => ['judge', 'pairwise', '--questions', 'data/evaluation/questions.jsonl', '--answers', 'data/evaluation/answers.jsonl',
      '--judge', srv.baseURL, '--api', 'chat', '--api-key-env', 'JUDGE_KEY', '--samples', '2', '--run-id', 'r', '--shard-size', '5', '--jobs-dir', path.join(tmp, jobs), '--json', path.join(tmp, out)];
    const env = { JUDGE_KEY: 'sk-submitter-secret' };
    const local = await runLantern(args('jobs-local', 'local.json'), tmp, env);
    expect(local.code, local.stderr).toBe(0);
    // 6 questions × 3 pairs = 18 items in shards of 5.
    expect(local.stdout).toMatch(/job judge-[0-9a-f]{16}: 4 shards computed, 0 already done/);
    const before = srv.prompts.length;
    const queued = await runLantern([...args('jobs-queue', 'queued.json'), '--queue', redis.url], tmp, env);
    // Every judge request of the queued run came from the worker, with the key from its own environment.
    expect(new Set(srv.authorizations.slice(before))).toEqual(new Set(['Bearer sk-worker-secret']));
    expect(queued.code, queued.stderr + worker.log).toBe(0);
    expect(queued.stdout).toMatch(/4 shards computed, 0 already done/);
    expect(worker.log).toMatch(/shard 3 of judge-[0-9a-f]{16} done/);
    expect(fs.readFileSync(path.join(tmp, 'queued.json'), 'utf8')).toBe(fs.readFileSync(path.join(tmp, 'local.json'), 'utf8'));
    // job.json names the backend and the key's variable, never a key.
    const [id] = fs.readdirSync(path.join(tmp, 'jobs-queue'));
    const text = fs.readFileSync(path.join(tmp, 'jobs-queue', id, 'job.json'), 'utf8');
    expect(text).not.toMatch(/secret/);
    expect(readJob(path.join(tmp, 'jobs-queue'), id).backend).toEqual({
      id: `http:scripted-judge@${srv.baseURL} (chat)`, load: srv.baseURL, options: { open: { api: 'chat', apiKeyEnv: 'JUDGE_KEY' } },
    });
    // lantern jobs names a judge job by its backend.
    const list = await runLantern(['jobs', 'list', '--json', '--jobs-dir', path.join(tmp, 'jobs-queue')], tmp);
    expect(JSON.parse(list.stdout)).toEqual([expect.objectContaining({ id, analysis: 'judge', model: `http:scripted-judge@${srv.baseURL} (chat)`, shards: 4, done: 4, state: 'done' })]);
  }, 180_000);
});
