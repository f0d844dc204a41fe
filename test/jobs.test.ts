// Dataset-scale jobs, in-process: `lantern activations` as a job writes exactly what the direct
// harvest writes, re-running skips finished shards (and redoes one whose file no longer matches its
// hash), and a shard that throws is reported by number, example range and reason.
import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { loadModel } from '../src/models/load.js';
import type { HookedTransformer } from '../src/models/hooked.js';
import { BUNDLED_MODEL } from '../src/paths.js';
import * as R from '../src/methods/representations/index.js';
import { JobFailedError, jobIds, jobStatus, readJob, removeJob, shardFile, cancelJob } from '../src/engine/jobs/store.js';
import { runJobLocally, shardFiles } from '../src/engine/jobs/run.js';
import { readTable, writeTable } from '../src/engine/jobs/table.js';
import { LanternError } from '../src/errors.js';
import { parquetReadObjects, parquetSchema, parquetMetadata } from 'hyparquet';
import { expectOneLineError, runLantern } from './helpers.js';

let tmp: string;
let model: HookedTransformer;
let examples: R.HarvestExample[];
const HOOKS = ['blocks.1.hook_resid_post', 'blocks.3.hook_mlp_out'];

beforeAll(async () => {
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'lantern-jobs-'));
  model = await loadModel(BUNDLED_MODEL);
  // Prompts of different lengths, so batches are padded and a shard boundary that split a batch differently would show.
  examples = R.capitals({ seed: 1, limit: 40 }).examples.slice(0, 40);
});
afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));

async function harvestAsJob(dir: string, out: string, opts: R.ActivationsJobOptions & { shardRows?: number }) {
  const job = await R.activationsJob(dir, model, examples, opts);
  const summary = await runJobLocally(dir, job, R.activationsAnalysis, { model, examples: [...examples] }, { concurrency: 2 });
  const meta = await R.activationsAnalysis.merge({ model, examples: [...examples] }, job, shardFiles(dir, job), { out, shardRows: opts.shardRows });
  return { job, summary, meta };
}

const bytes = (f: string) => fs.readFileSync(f);

describe('activations as a job', () => {
  it('writes the same files as the direct harvest, byte for byte, for every positions mode', async () => {
    for (const positions of ['last', 'all', 'mean'] as const) {
      const direct = path.join(tmp, `direct-${positions}.safetensors`);
      const viaJob = path.join(tmp, `job-${positions}.safetensors`);
      // shardRows 7 splits the output across files at rows that are not shard boundaries.
      await R.harvestToFile(model, examples, { out: direct, hooks: HOOKS, positions, batchSize: 4, shardRows: 7 * (positions === 'all' ? 20 : 1), dataset: 'capitals', seed: 1 });
      const { job, summary } = await harvestAsJob(path.join(tmp, `jobs-${positions}`), viaJob, { hooks: HOOKS, positions, batchSize: 4, shardSize: 10, dataset: 'capitals', seed: 1, shardRows: 7 * (positions === 'all' ? 20 : 1) });
      // Shard size 10 is rounded up to whole batches of 4: 12, 12, 12, 4.
      expect(job.shards).toEqual([[0, 12], [12, 24], [24, 36], [36, 40]]);
      expect(summary.computed).toEqual([0, 1, 2, 3]);
      const files = R.activationFiles(direct);
      expect(files.length).toBeGreaterThan(1);
      expect(R.activationFiles(viaJob).map((f) => path.basename(f).replace('job-', 'direct-'))).toEqual(files.map((f) => path.basename(f)));
      for (const [a, b] of files.map((f, k) => [f, R.activationFiles(viaJob)[k]])) expect(bytes(b).equals(bytes(a)), `${positions}: ${b}`).toBe(true);
      expect(fs.readFileSync(`${viaJob}.index.json`, 'utf8')).toBe(fs.readFileSync(`${direct}.index.json`, 'utf8').replaceAll('direct-', 'job-'));
    }
  }, 300_000);

  it('re-running skips finished shards and recomputes only one whose file no longer matches its hash', async () => {
    const dir = path.join(tmp, 'resume');
    const out = path.join(tmp, 'resume.safetensors');
    const opts = { hooks: HOOKS, batchSize: 8, shardSize: 8, dataset: 'capitals', seed: 1 };
    const first = await harvestAsJob(dir, out, opts);
    expect(first.summary).toEqual({ computed: [0, 1, 2, 3, 4], skipped: [] });
    const want = bytes(out);
    const again = await harvestAsJob(dir, out, opts);
    expect(again.job.id).toBe(first.job.id);
    expect(again.summary).toEqual({ computed: [], skipped: [0, 1, 2, 3, 4] });
    // Flip one byte of shard 3's activations: its recorded hash no longer holds.
    const f = shardFile(dir, first.job, 3);
    const buf = bytes(f);
    buf[buf.length - 1] ^= 1;
    fs.writeFileSync(f, buf);
    fs.rmSync(shardFile(dir, first.job, 1));
    const third = await harvestAsJob(dir, out, opts);
    expect(third.summary).toEqual({ computed: [1, 3], skipped: [0, 2, 4] });
    expect(bytes(out).equals(want)).toBe(true);
    // Other settings are another job.
    const other = await R.activationsJob(dir, model, examples, { ...opts, hooks: [HOOKS[0]] });
    expect(other.id).not.toBe(first.job.id);
    expect(jobIds(dir)).toEqual([first.job.id, other.id].sort());
    removeJob(dir, other.id);
    expect(jobIds(dir)).toEqual([first.job.id]);
  }, 120_000);

  it('a shard that throws is named with its examples and reason; the others are kept', async () => {
    const dir = path.join(tmp, 'bad');
    // Token ' of' is in every capitals prompt ("The capital of X is") except the ones replaced here.
    const bad = examples.map((e, i) => (i === 13 || i === 30 ? { ...e, text: 'Paris' } : e));
    const job = await R.activationsJob(dir, model, bad, { hooks: HOOKS, positions: { token: ' of' }, batchSize: 4, shardSize: 8 });
    const err = await runJobLocally(dir, job, R.activationsAnalysis, { model, examples: bad }).catch((e) => e);
    expect(err).toBeInstanceOf(JobFailedError);
    expect(err.message).toBe(`job ${job.id}: 2 of 5 shards failed: shard 1 (examples 8–15): prompt 13 has no token " of": "Paris"; shard 3 (examples 24–31): prompt 30 has no token " of": "Paris"`);
    const status = jobStatus(dir, job.id);
    expect(status.done.map((r) => r.shard)).toEqual([0, 2, 4]);
    expect(status.failed.map((f) => f.shard)).toEqual([1, 3]);
    expect(status.state).toBe('failed');
    // A cancelled job runs nothing more and says so.
    cancelJob(dir, job.id);
    await expect(runJobLocally(dir, readJob(dir, job.id), R.activationsAnalysis, { model, examples: bad })).rejects.toThrow(`job ${job.id} was cancelled with 3 of 5 shards done; run the command again to finish it`);
  }, 120_000);
});

describe('table shards (Parquet)', () => {
  it('read back as JSON would: typed columns, objects as JSON text, absent fields absent', async () => {
    const rows = [
      { name: 'a', score: 7.25, ok: true, extra: { marks: [1, 2], why: 'x' }, sometimes: 3, empty: null },
      { name: null, score: -0, ok: false, extra: null, empty: null },
      { name: 'c\u00e9\u{1F600}', score: 1e-300, ok: null, extra: ['list'], sometimes: 'mixed', empty: null },
    ];
    const file = path.join(tmp, 'table.parquet');
    writeTable(file, rows, { usage: { requests: 3 } });
    const back = await readTable(file);
    expect(back.meta).toEqual({ usage: { requests: 3 } });
    expect(JSON.stringify(back.rows)).toBe(JSON.stringify(rows));
    expect(Object.is(back.rows[1].score, -0)).toBe(true);
    expect('sometimes' in back.rows[1]).toBe(false);
    // Another reader sees the Parquet types: strings, doubles and booleans as such, the rest as JSON text.
    const bytes = fs.readFileSync(file);
    const buffer = bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength);
    const types = Object.fromEntries(parquetSchema(parquetMetadata(buffer)).children.map((c) => [c.element.name, c.element.type]));
    expect(types).toEqual({ name: 'BYTE_ARRAY', score: 'DOUBLE', ok: 'BOOLEAN', extra: 'BYTE_ARRAY', sometimes: 'BYTE_ARRAY', empty: 'BYTE_ARRAY' });
    expect((await parquetReadObjects({ file: buffer }))[0].extra).toBe('{"marks":[1,2],"why":"x"}');
    fs.writeFileSync(path.join(tmp, 'not-a-table.parquet'), 'PAR1 nonsense');
    await expect(readTable(path.join(tmp, 'not-a-table.parquet'))).rejects.toThrow(LanternError);
  });
});

describe('Workbench API: GET /api/dataset-jobs', () => {
  it('lists the jobs of the jobs folder with their progress; an unknown id is a 404 naming the nearest', async () => {
    const dir = path.join(tmp, 'server-jobs');
    const job = await R.activationsJob(dir, model, examples, { hooks: [HOOKS[0]], batchSize: 8, shardSize: 16 });
    await runJobLocally(dir, job, R.activationsAnalysis, { model, examples: [...examples] });
    fs.rmSync(shardFile(dir, job, 1));
    const { buildServer } = await import('../src/interfaces/server/app.js');
    const server = await buildServer({ dataDir: path.join(tmp, 'workbench'), jobsDir: dir, model: BUNDLED_MODEL, allowHub: false });
    try {
      const get = (url: string) => server.inject({ method: 'GET', url, headers: { host: 'localhost' } });
      let r = await get('/api/dataset-jobs');
      expect(r.statusCode).toBe(200);
      expect(r.json().jobs).toEqual([{ id: job.id, analysis: 'activations', model: BUNDLED_MODEL, dataset: job.dataset, shards: 3, done: 2, failed: 0, state: 'incomplete', createdAt: expect.any(String), failures: [] }]);
      r = await get(`/api/dataset-jobs/${job.id}`);
      expect(r.json().done.map((d: { shard: number }) => d.shard)).toEqual([0, 2]);
      r = await get(`/api/dataset-jobs/${job.id}x`);
      expect(r.statusCode).toBe(404);
      expect(r.json().error).toMatch(`nearest: ${job.id}`);
    } finally {
      await server.close();
    }
  }, 120_000);
});

describe('CLI', () => {
  it('lantern activations resumes its job; jobs show; bad shards and unknown jobs are one-line errors', async () => {
    const data = path.join(tmp, 'texts.jsonl');
    fs.writeFileSync(data, examples.map((e, i) => JSON.stringify({ text: i === 21 ? 'Paris' : e.text, label: e.label })).join('\n') + '\n');
    const jobsDir = path.join(tmp, 'cli-jobs');
    const args = ['activations', '--data', data, '--hooks', HOOKS[0], '--batch-size', '4', '--shard-size', '8', '--jobs-dir', jobsDir];
    let r = await runLantern([...args, '--out', path.join(tmp, 'cli.safetensors')], tmp);
    expect(r.stderr).toBe('');
    expect(r.stdout).toMatch(/^job activations-[0-9a-f]{16}: 5 shards computed, 0 already done/);
    expect(r.stdout).toMatch(/saved 40 rows x \[256\]/);
    const id = /job (activations-[0-9a-f]{16})/.exec(r.stdout)![1];
    r = await runLantern([...args, '--out', path.join(tmp, 'cli2.safetensors')], tmp);
    expect(r.stdout).toMatch(/0 shards computed, 5 already done/);
    expect(bytes(path.join(tmp, 'cli2.safetensors')).equals(bytes(path.join(tmp, 'cli.safetensors')))).toBe(true);
    r = await runLantern(['jobs', 'show', id, '--jobs-dir', jobsDir], tmp);
    expect(r.stdout).toMatch(/shard 4 \(examples 32–39\): done by .* in \d+ ms/);
    r = await runLantern([...args, '--positions', ' of', '--out', path.join(tmp, 'cli3.safetensors')], tmp);
    expectOneLineError(r, /: 1 of 5 shards failed: shard 2 \(examples 16–23\): prompt 21 has no token " of": "Paris"$/, 'bad shard');
    r = await runLantern(['jobs', 'show', id.slice(0, -1), '--jobs-dir', jobsDir], tmp);
    expectOneLineError(r, new RegExp(`no job '${id.slice(0, -1)}' in .*; nearest: ${id}`), 'unknown job');
  }, 300_000);
});
