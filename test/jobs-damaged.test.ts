// Job folders damaged by other processes or by hand (what the job-folder fuzz kind found, one test
// each): every reader ends in a one-line LanternError naming the file, or treats a damaged shard
// as unfinished so that a re-run computes it again and merges the same bytes as a clean run. Each
// case crashed (SyntaxError, EISDIR, ENOTDIR), hung (a FIFO, /dev/zero) or merged changed bytes before.
import { describe, it, expect, beforeAll, afterAll, vi } from 'vitest';
import { LanternError } from '../src/errors.js';
import { execFileSync } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { TINY_GPT2, writeRandomModel } from '../src/models/random.js';
import { loadModel } from '../src/models/load.js';
import type { HookedTransformer } from '../src/models/hooked.js';
import * as R from '../src/methods/representations/index.js';
import {
  cancelJob, createJob, fileSha256, finishedShard, isCancelled, jobIds, JobFailedError, JobSpec, jobStatus, listJobs, readJob, readJobData, recordedQueue, recordQueue, removeJob, shardFile,
} from '../src/engine/jobs/store.js';
import { runJobLocally, shardFiles } from '../src/engine/jobs/run.js';
import { buildServer } from '../src/interfaces/server/app.js';
import { asyncRefusal, refusal, runLantern } from './helpers.js';
import fc from 'fast-check';
import { readTable, writeTable } from '../src/engine/jobs/table.js';
import { readParquet } from '../src/parquet.js';

let tmp: string;
let model: HookedTransformer;
let examples: R.HarvestExample[];
let clean: Buffer;
const opts = { hooks: ['blocks.1.hook_resid_post'], batchSize: 2, shardSize: 4, dataset: 'capitals', seed: 1 };

beforeAll(async () => {
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'lantern-jobs-damaged-'));
  writeRandomModel(path.join(tmp, 'tiny'), TINY_GPT2);
  model = await loadModel(path.join(tmp, 'tiny'));
  examples = R.capitals({ seed: 1, limit: 12 }).examples.slice(0, 12);
  clean = (await run(path.join(tmp, 'clean'))).bytes;
});
afterAll(async () => {
  await model.executor.dropWeights(model.weights);
  fs.rmSync(tmp, { recursive: true, force: true });
});

/** The command's path: submit (or find) the job, run its unfinished shards, merge. */
async function run(dir: string) {
  const job = await R.activationsJob(dir, model, examples, opts);
  const summary = await runJobLocally(dir, job, R.activationsAnalysis, { model, examples: [...examples] });
  const out = path.join(dir, 'merged.safetensors');
  await R.activationsAnalysis.merge({ model, examples: [...examples] }, job, shardFiles(dir, job), { out });
  return { job, summary, bytes: fs.readFileSync(out) };
}

let n = 0;
/** A finished job in a fresh jobs folder. */
async function finished(): Promise<{ dir: string; job: JobSpec; file: (name: string) => string }> {
  const dir = path.join(tmp, `jobs-${n++}`);
  const { job } = await run(dir);
  return { dir, job, file: (name) => path.join(dir, job.id, name) };
}

const fifo = (p: string) => {
  fs.rmSync(p, { force: true });
  execFileSync('mkfifo', [p]);
};

describe('a damaged job.json', () => {
  it('that is not JSON is one line naming the file (JSON.parse threw a SyntaxError quoting the text); the list shows it as unreadable beside the others', async () => {
    const { dir, job, file } = await finished();
    const other = await R.activationsJob(dir, model, examples, { ...opts, hooks: ['blocks.0.hook_mlp_out'] });
    fs.writeFileSync(file('job.json'), '\u0000\n{"id": ');
    expect(refusal(() => readJob(dir, job.id))).toMatch(new RegExp(`^${file('job.json')}: job file is not valid JSON \\(.*\\)$`));
    expect(refusal(() => jobStatus(dir, job.id))).toContain(file('job.json'));
    const listed = listJobs(dir);
    expect(listed.map((j) => [j.id, j.status?.state ?? j.error])).toEqual([[job.id, refusal(() => readJob(dir, job.id))], [other.id, 'incomplete']].sort((a, b) => a[0].localeCompare(b[0])));
    // The Workbench lists both too, instead of failing the whole list.
    const app = await buildServer({ dataDir: path.join(tmp, 'wb'), jobsDir: dir, allowHub: false, webDir: path.join(tmp, 'none') });
    try {
      const res = await app.inject({ method: 'GET', url: '/api/dataset-jobs', headers: { host: 'localhost' } });
      expect(res.statusCode, res.body).toBe(200);
      const rows = res.json().jobs as { id: string; state: string; error?: string }[];
      expect(rows.find((r) => r.id === job.id)).toMatchObject({ state: 'unreadable', error: refusal(() => readJob(dir, job.id)) });
      expect(rows.find((r) => r.id === other.id)).toMatchObject({ state: 'incomplete', shards: 3, done: 0 });
    } finally {
      await app.close();
    }
    // Submitting again writes it anew; every shard is still there.
    const again = await run(dir);
    expect(again.summary.computed).toEqual([]);
    expect(again.bytes.equals(clean)).toBe(true);
  });

  it('with fields of the wrong type, shards that do not cover the data, or edited settings is refused naming the problem (it was used as it was)', async () => {
    const { dir, job, file } = await finished();
    const original = fs.readFileSync(file('job.json'), 'utf8');
    const write = (patch: (j: any) => void) => {
      const j = JSON.parse(original);
      patch(j);
      fs.writeFileSync(file('job.json'), JSON.stringify(j));
    };
    const edit = (patch: (j: any) => void) => {
      write(patch);
      return refusal(() => readJob(dir, job.id)).replace(`${file('job.json')}: `, '');
    };
    expect(edit((j) => { j.shards = 'all'; })).toBe('shards is not a list of example ranges [start, end]; submit the job again');
    expect(edit((j) => { j.shards = [[0, 4], [5, 8], [8, 12]]; })).toBe("the shards do not cover the dataset's 12 examples one after another (shard 1 starts at 5); submit the job again");
    expect(edit((j) => { j.shards = [[0, 4], [4, 8]]; })).toBe("the shards do not cover the dataset's 12 examples one after another (the last ends at 8); submit the job again");
    expect(edit((j) => { j.dataset.examples = '12'; })).toBe('dataset is not { name, sha256, examples }; submit the job again');
    expect(edit((j) => { j.model = null; })).toBe('model is not { source, load, weightsSha256 }; submit the job again');
    expect(edit((j) => { delete j.model; })).toBe('it names no model and no backend, or both; submit the job again');
    expect(edit((j) => { j.backend = { id: 'http:judge', load: 'http://127.0.0.1:1/v1', options: {} }; })).toBe('it names no model and no backend, or both; submit the job again');
    expect(edit((j) => { delete j.model; j.backend = { id: 'http:judge', load: 7, options: {} }; })).toBe('backend is not { id, load, options }; submit the job again');
    expect(edit((j) => { j.ext = 'exe'; })).toBe(`ext is "exe", not 'safetensors', 'parquet' or 'json'; submit the job again`);
    expect(edit((j) => { j.settings.batchSize = 3; })).toBe('it no longer hashes to its id (it was edited after submission); submit the job again');
    expect(edit((j) => { j.id = 'activations-0000000000000000'; })).toBe('its id "activations-0000000000000000" is not its folder\'s name; submit the job again');
    // Where the model loads from is this machine's business: editing it is allowed, and fields added by hand are dropped.
    write((j) => { j.model.load = '/elsewhere/tiny'; j.note = 'mine'; });
    expect(readJob(dir, job.id)).toEqual({ ...job, model: { ...job.model, load: '/elsewhere/tiny' } });
  });

  it('can still be removed (removing read it first and refused), by the library and by lantern jobs remove; an id with a path is refused', async () => {
    const { dir, job, file } = await finished();
    const other = await R.activationsJob(dir, model, examples, { ...opts, hooks: ['blocks.0.hook_mlp_out'] });
    fs.writeFileSync(file('job.json'), '[');
    const r = await runLantern(['jobs', 'remove', job.id, '--jobs-dir', dir], path.join(tmp, 'home'));
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout.trim()).toBe(`removed job ${job.id} (its job.json was unreadable)`);
    expect(jobIds(dir)).toEqual([other.id]);
    fs.mkdirSync(path.join(tmp, 'outside'), { recursive: true });
    fs.writeFileSync(path.join(tmp, 'outside', 'job.json'), '[');
    expect(refusal(() => removeJob(dir, '../outside'))).toBe("'../outside' is not a job id");
    expect(fs.existsSync(path.join(tmp, 'outside', 'job.json'))).toBe(true);
    expect(removeJob(dir, other.id)).toEqual(other);
    expect(jobIds(dir)).toEqual([]);
  });
});

describe('damaged shard records', () => {
  it('a done record that is not JSON, not this shard\'s, or of the wrong types leaves its shard unfinished; the re-run computes it and merges the clean bytes', async () => {
    const { dir, job, file } = await finished();
    fs.writeFileSync(file('shard-0.done.json'), '{"shard": 0, "sha');
    const rec1 = JSON.parse(fs.readFileSync(file('shard-1.done.json'), 'utf8'));
    fs.writeFileSync(file('shard-1.done.json'), JSON.stringify({ ...rec1, shard: 2 }));
    const rec2 = JSON.parse(fs.readFileSync(file('shard-2.done.json'), 'utf8'));
    fs.writeFileSync(file('shard-2.done.json'), JSON.stringify({ ...rec2, bytes: String(rec2.bytes) }));
    expect([0, 1, 2].map((i) => finishedShard(dir, job, i))).toEqual([undefined, undefined, undefined]);
    expect(jobStatus(dir, job.id)).toMatchObject({ done: [], failed: [], state: 'incomplete' });
    const again = await run(dir);
    expect(again.summary.computed).toEqual([0, 1, 2]);
    expect(again.bytes.equals(clean)).toBe(true);
  });

  it('a failure record that cannot be read is reported as the shard\'s failure (JSON.parse threw)', async () => {
    const { dir, job, file } = await finished();
    fs.rmSync(file('shard-1.done.json'));
    fs.writeFileSync(file('shard-1.error.json'), '{"message": "bo');
    const [failure] = jobStatus(dir, job.id).failed;
    expect(failure).toEqual({ shard: 1, range: [4, 8], worker: 'unknown', message: expect.stringMatching(new RegExp(`^its failure record ${file('shard-1.error.json')} is unreadable \\(.*not valid JSON.*\\)$`)) });
    fs.writeFileSync(file('shard-1.error.json'), JSON.stringify({ shard: 7, range: 'x', message: 'two\nlines', worker: 'w:1' }));
    expect(jobStatus(dir, job.id).failed).toEqual([{ shard: 1, range: [4, 8], message: 'two lines', worker: 'w:1' }]);
  });
});

describe('files that are not files', () => {
  it('a FIFO, a link to /dev/zero or a huge sparse file in place of a shard, a record or the data never blocks or reads without end', async () => {
    const { dir, job, file } = await finished();
    fifo(file('shard-0.done.json'));
    fifo(shardFile(dir, job, 1));
    fs.rmSync(shardFile(dir, job, 2));
    fs.symlinkSync('/dev/zero', shardFile(dir, job, 2));
    expect([0, 1, 2].map((i) => finishedShard(dir, job, i))).toEqual([undefined, undefined, undefined]);
    expect(refusal(() => fileSha256(shardFile(dir, job, 2)))).toBe(`${shardFile(dir, job, 2)} is not a regular file (a character device)`);
    fifo(file('data.jsonl'));
    expect(refusal(() => readJobData(dir, job))).toBe(`${file('data.jsonl')}: job's data file is not a regular file (a FIFO)`);
    fifo(file('job.json'));
    expect(refusal(() => readJob(dir, job.id))).toBe(`${file('job.json')}: job file is not a regular file (a FIFO)`);
    const again = await run(dir);
    expect(again.summary.computed).toEqual([0, 1, 2]);
    expect(again.bytes.equals(clean)).toBe(true);
    expect(readJobData(dir, job)).toEqual(examples.map((e) => ({ text: e.text, label: e.label, split: e.split })));
    // A huge shard file is not read: its size already differs from the record's.
    fs.truncateSync(shardFile(dir, job, 0), 3 * 2 ** 30);
    const t0 = performance.now();
    expect(finishedShard(dir, job, 0)).toBeUndefined();
    expect(performance.now() - t0).toBeLessThan(500);
  });

  it('a folder in place of a shard is a failure naming it (rename threw EISDIR out of the run); in place of the failure record or the cancellation it is replaced', async () => {
    const { dir, job, file } = await finished();
    fs.rmSync(shardFile(dir, job, 1));
    fs.mkdirSync(path.join(shardFile(dir, job, 1), 'x'), { recursive: true });
    const err = await run(dir).catch((e) => e);
    expect(err).toBeInstanceOf(JobFailedError);
    expect(err.message).toMatch(new RegExp(`^job ${job.id}: 1 of 3 shards failed: shard 1 \\(examples 4–7\\): cannot write ${shardFile(dir, job, 1)}: EISDIR`));
    fs.rmSync(shardFile(dir, job, 1), { recursive: true });
    // The failed run left a failure record; a folder there is removed when the shard succeeds.
    fs.rmSync(file('shard-1.error.json'));
    fs.mkdirSync(path.join(file('shard-1.error.json'), 'x'), { recursive: true });
    fs.mkdirSync(path.join(file('cancelled'), 'x'), { recursive: true });
    expect(isCancelled(dir, job.id)).toBe(true);
    expect(cancelJob(dir, job.id).id).toBe(job.id);
    const again = await run(dir);
    expect(again.summary.computed).toEqual([1]);
    expect(again.bytes.equals(clean)).toBe(true);
    expect(fs.existsSync(file('shard-1.error.json'))).toBe(false);
    expect(isCancelled(dir, job.id)).toBe(false);
  });

  it('a jobs folder that is a file is one line naming it (readdir threw ENOTDIR)', () => {
    const file = path.join(tmp, 'not-a-folder');
    fs.writeFileSync(file, 'x');
    expect(refusal(() => jobIds(file))).toMatch(new RegExp(`^cannot list the jobs folder ${file}: ENOTDIR`));
    expect(jobIds(path.join(tmp, 'absent'))).toEqual([]);
  });
});

describe('shard hashes', () => {
  it('an unchanged file is not read again; one rewritten in place, even to the same size, is', () => {
    const file = path.join(tmp, 'hash-me.bin');
    fs.writeFileSync(file, Buffer.alloc(1 << 20, 7));
    const sha = (b: Buffer) => crypto.createHash('sha256').update(b).digest('hex');
    expect(fileSha256(file)).toBe(sha(fs.readFileSync(file)));
    const reads = vi.spyOn(fs, 'readSync');
    try {
      expect(fileSha256(file, 1 << 20)).toBe(sha(Buffer.alloc(1 << 20, 7)));
      expect(reads).not.toHaveBeenCalled();
      const fd = fs.openSync(file, 'r+');
      fs.writeSync(fd, Buffer.from([8]), 0, 1, 12345);
      fs.closeSync(fd);
      const changed = Buffer.alloc(1 << 20, 7);
      changed[12345] = 8;
      expect(fileSha256(file)).toBe(sha(changed));
      expect(reads).toHaveBeenCalled();
    } finally {
      reads.mockRestore();
    }
  });
});

describe('Parquet tables with changed bytes', () => {
  const rows = Array.from({ length: 40 }, (_, i) => ({ q: `q${i}`, score: i % 3 ? i / 7 : null, ok: i % 2 === 0, crit: i % 5 ? { a: i } : undefined, text: 'x'.repeat(i) }));

  it('a byte that made hyparquet loop forever is a one-line refusal after the time limit, not a hung process', async () => {
    const file = path.join(tmp, 'table.parquet');
    writeTable(file, rows, { usage: { requests: 40 } });
    expect(JSON.stringify((await readTable(file)).rows)).toBe(JSON.stringify(rows));
    const b = fs.readFileSync(file);
    b[418] = 254; // in the nullable JSON column's data: found by the property below
    fs.writeFileSync(file, b);
    expect(await asyncRefusal(() => readParquet(file, { timeoutMs: 2000 }))).toBe(`${file}: cannot read as Parquet (still reading after 2 s; the file is probably corrupt)`);
  });

  it('any few changed bytes or a cut end in rows or one clean refusal, within the time limit', async () => {
    const file = path.join(tmp, 'base.parquet');
    writeTable(file, rows);
    const base = fs.readFileSync(file);
    const mutated = path.join(tmp, 'mutated.parquet');
    await fc.assert(fc.asyncProperty(fc.array(fc.tuple(fc.nat(base.length - 1), fc.nat(255)), { minLength: 1, maxLength: 3 }), fc.option(fc.nat(base.length), { nil: undefined }), async (flips, cut) => {
      const b = Buffer.from(base);
      for (const [i, v] of flips) b[i] = v;
      fs.writeFileSync(mutated, cut === undefined ? b : b.subarray(0, cut));
      try {
        expect(Array.isArray((await readParquet(mutated, { timeoutMs: 2000 })).rows)).toBe(true);
      } catch (e) {
        expect(e).toBeInstanceOf(LanternError);
        expect((e as Error).message).toMatch(new RegExp(`^${mutated}: cannot read as Parquet \\(`));
        expect((e as Error).message).not.toContain('\n');
      }
    }), { numRuns: 60, seed: 4 });
  }, 180_000);
});

describe('data and merges', () => {
  it('a data file with a line that is not JSON is one line naming the line (JSON.parse threw)', () => {
    const dir = path.join(tmp, 'bad-line');
    const job = createJob(dir, { analysis: 'activations', model: { source: 'm', load: 'm', weightsSha256: '0'.repeat(64) }, settings: {}, seed: 0, dataset: { name: '' }, shards: [[0, 2]], ext: 'json' }, [{ text: 'a' }, { text: 'b' }]);
    const text = '{"text":"a"}\n{"text": \n';
    fs.writeFileSync(path.join(dir, job.id, 'data.jsonl'), text);
    const forged = { ...job, dataset: { ...job.dataset, sha256: crypto.createHash('sha256').update(text).digest('hex') } };
    expect(refusal(() => readJobData(dir, forged))).toMatch(new RegExp(`^${path.join(dir, job.id, 'data.jsonl')}: line 2 is not JSON \\(.*\\); submit the job again$`));
    expect(refusal(() => readJobData(dir, { ...forged, dataset: { ...forged.dataset, examples: 3 } }))).toMatch(/holds 2 examples, not the 3 of job/);
  });

  it('merging a folder whose shard changed since it was written is refused naming the shard (the changed bytes were merged)', async () => {
    const { dir, job } = await finished();
    const f = shardFile(dir, job, 2);
    const buf = fs.readFileSync(f);
    buf[buf.length - 1] ^= 1;
    fs.writeFileSync(f, buf);
    expect(refusal(() => shardFiles(dir, job))).toBe(`job ${job.id} (${path.join(dir, job.id)}): shard 2 of 3 is not finished (missing, or changed since written); run the command again to compute it`);
    expect((await run(dir)).bytes.equals(clean)).toBe(true);
  });
});

describe('the queue a job was submitted to', () => {
  it('is recorded without credentials, saying whether it had any; a damaged record is one line naming it', async () => {
    const { dir, job, file } = await finished();
    expect(recordedQueue(dir, job.id)).toBeUndefined();
    expect(recordQueue(dir, job.id, 'redis://127.0.0.1:6379')).toEqual({ url: 'redis://127.0.0.1:6379', credentials: false });
    expect(recordQueue(dir, job.id, 'redis://lantern:s3cret@10.0.0.2:6380/2?password=other&db=2')).toEqual({ url: 'redis://10.0.0.2:6380/2?db=2', credentials: true });
    expect(fs.readFileSync(file('queue.json'), 'utf8')).not.toMatch(/s3cret|other|lantern:/);
    expect(recordedQueue(dir, job.id)).toEqual({ url: 'redis://10.0.0.2:6380/2?db=2', credentials: true });
    fs.writeFileSync(file('queue.json'), '{"url": "http://x", "credentials": false}');
    expect(refusal(() => recordedQueue(dir, job.id))).toBe(`${file('queue.json')}: the queue record is not { url: 'redis://…', credentials }`);
  });
});
