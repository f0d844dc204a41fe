/**
 * Dataset-scale jobs on disk. A job is a named analysis over a dataset, split into shards by
 * example range; each shard is a pure function of (model + weights hash, or a black-box backend's
 * id; settings, range, seed) and is written once, atomically, to `<dir>/<jobId>/shard-<i>.<ext>`, with a completion record
 * holding its content hash. The directory is the source of truth for what is done, so any number
 * of processes (in-process, or queue workers on machines sharing the directory) can run shards,
 * and re-running a job skips every shard whose file still matches its recorded hash.
 */
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { LanternError, nearest } from '../../errors.js';

/** What a job computes: everything a shard's output depends on, saved as `<dir>/<jobId>/job.json`. */
export interface JobSpec {
  /** Always 'lantern-job'. */
  format: 'lantern-job';
  /** `<analysis>-<16 hex digits>`: a hash of everything below, so the same work gets the same id. */
  id: string;
  /** The analysis that runs each shard (e.g. 'activations'). */
  analysis: string;
  /** A weight-based analysis's model: its source as the user gave it, where workers load it from, and the sha256 of its config and weights. */
  model?: { source: string; load: string; weightsSha256: string };
  /** A black-box analysis's backend (exactly one of `model` and `backend` is set). */
  backend?: JobBackend;
  /** The analysis's settings (JSON). */
  settings: Record<string, unknown>;
  /** The seed the dataset and any sampling were drawn with. */
  seed: number;
  /** The dataset: its name, a content hash of `data.jsonl`, and its number of examples. */
  dataset: { name: string; sha256: string; examples: number };
  /** Each shard's example range [start, end). */
  shards: [number, number][];
  /** The shard files' extension ('safetensors' for tensors, 'parquet' for tables, 'json' for small results). */
  ext: 'safetensors' | 'parquet' | 'json';
}

/**
 * The backend a black-box job (a judge run) asks: its id, which names what answers (the job's
 * identity), and how workers open it. `options` holds only settings that are safe to write down
 * (an API key is named by the environment variable holding it, never stored), and like `load`
 * is not part of the identity: a changed timeout or address of the same backend is the same work.
 */
export interface JobBackend {
  /** The backend's id as results name it, e.g. `http:gpt-4o-mini@https://api.openai.com/v1`. */
  id: string;
  /** The spec workers open: `http(s)://…/v1`, `gguf:<absolute file>` or `lantern:<absolute folder or Hub id>`. */
  load: string;
  /** How to open it (remote model name, API, retries, timeout, API-key variable name, prices, requests in flight). */
  options: Record<string, unknown>;
}

/** What a job runs on, in words: its model's source or its backend's id. */
export function jobSubject(job: JobSpec): string {
  return job.model?.source ?? job.backend?.id ?? '-';
}

/** The model of a weight-based job; a job that has none (a black-box job) is a LanternError. */
export function jobModel(job: JobSpec): NonNullable<JobSpec['model']> {
  if (!job.model) throw new LanternError(`job ${job.id} (${job.analysis}) runs on a backend, not a model`);
  return job.model;
}

/** The backend of a black-box job; a job that has none (a weight-based job) is a LanternError. */
export function jobBackend(job: JobSpec): JobBackend {
  if (!job.backend) throw new LanternError(`job ${job.id} (${job.analysis}) runs on a model, not a backend`);
  return job.backend;
}

/** A finished shard's record, `<dir>/<jobId>/shard-<i>.done.json`. */
export interface ShardRecord {
  shard: number;
  range: [number, number];
  /** sha256 of the shard file. */
  sha256: string;
  bytes: number;
  /** Milliseconds the shard took to compute and write. */
  ms: number;
  /** Which process wrote it (`host:pid`). */
  worker: string;
  finishedAt: string;
}

/** A failed shard's record, `<dir>/<jobId>/shard-<i>.error.json` (removed when the shard later succeeds). */
export interface ShardFailure {
  shard: number;
  range: [number, number];
  message: string;
  worker: string;
}

/** This process, as named in shard records. */
export const WORKER_NAME = `${os.hostname()}:${process.pid}`;

/** Examples per shard by default: a few seconds of work on a small model, little enough to lose. */
export const DEFAULT_SHARD_SIZE = 256;

/** Writes `data` to `file` so that readers see the old content or the new, never a part. */
export function writeAtomic(file: string, data: string | Uint8Array): void {
  const tmp = `${file}.tmp-${process.pid}-${crypto.randomBytes(4).toString('hex')}`;
  fs.writeFileSync(tmp, data);
  fs.renameSync(tmp, file);
}

/** sha256 of a file's bytes, read in pieces. */
export function fileSha256(file: string): string {
  const h = crypto.createHash('sha256');
  const fd = fs.openSync(file, 'r');
  try {
    const buf = Buffer.allocUnsafe(1 << 22);
    for (let n; (n = fs.readSync(fd, buf, 0, buf.length, null)) > 0; ) h.update(buf.subarray(0, n));
  } finally {
    fs.closeSync(fd);
  }
  return h.digest('hex');
}

/** Example ranges of `size` examples (the last may be shorter) covering `examples`. */
export function shardRanges(examples: number, size: number): [number, number][] {
  if (!Number.isInteger(size) || size < 1) throw new LanternError(`shard size must be a positive integer, got ${size}`);
  const out: [number, number][] = [];
  for (let s = 0; s < examples; s += size) out.push([s, Math.min(examples, s + size)]);
  return out.length ? out : [[0, 0]];
}

/** Where one job's files live. */
export const jobDir = (dir: string, id: string) => path.join(dir, id);
/** Shard `i`'s output file. */
export const shardFile = (dir: string, job: JobSpec, i: number) => path.join(dir, job.id, `shard-${i}.${job.ext}`);
const doneFile = (dir: string, job: JobSpec, i: number) => path.join(dir, job.id, `shard-${i}.done.json`);
const errorFile = (dir: string, job: JobSpec, i: number) => path.join(dir, job.id, `shard-${i}.error.json`);
const cancelFile = (dir: string, id: string) => path.join(dir, id, 'cancelled');

/** The examples of a job, one JSON value per line, as workers read them. */
export const dataFile = (dir: string, id: string) => path.join(dir, id, 'data.jsonl');

/**
 * Creates (or finds, when the same work was submitted before) the job for `spec` over `data`,
 * writing `job.json` and `data.jsonl` under `dir`. Submitting clears a cancellation.
 */
export function createJob(dir: string, spec: Omit<JobSpec, 'format' | 'id' | 'dataset'> & { dataset: { name: string } }, data: readonly unknown[]): JobSpec {
  const lines = data.map((d) => JSON.stringify(d) + '\n').join('');
  const sha256 = crypto.createHash('sha256').update(lines).digest('hex');
  const last = spec.shards[spec.shards.length - 1];
  if (Boolean(spec.model) === Boolean(spec.backend)) throw new LanternError(`a ${spec.analysis} job needs a model or a backend, and not both`);
  if (spec.shards[0]?.[0] !== 0 || last[1] !== data.length) throw new LanternError(`the shards cover examples ${spec.shards[0]?.[0]}..${last[1]}, not the dataset's ${data.length}`);
  const body = { format: 'lantern-job' as const, analysis: spec.analysis, model: spec.model, backend: spec.backend, settings: spec.settings, seed: spec.seed, dataset: { name: spec.dataset.name, sha256, examples: data.length }, shards: spec.shards, ext: spec.ext };
  // Where this machine finds the model or backend, and how it talks to it, is not part of what is
  // computed. (An absent model or backend is left out of the JSON, so model jobs keep their ids.)
  const identity = { ...body, model: body.model && { source: body.model.source, weightsSha256: body.model.weightsSha256 }, backend: body.backend && { id: body.backend.id } };
  const id = `${spec.analysis}-${crypto.createHash('sha256').update(JSON.stringify(identity)).digest('hex').slice(0, 16)}`;
  const job: JobSpec = { id, ...body };
  try {
    fs.mkdirSync(jobDir(dir, id), { recursive: true });
  } catch (e) {
    throw new LanternError(`cannot make the job folder ${jobDir(dir, id)}: ${(e as Error).message}`);
  }
  if (!fs.existsSync(dataFile(dir, id)) || fileSha256(dataFile(dir, id)) !== sha256) writeAtomic(dataFile(dir, id), lines);
  writeAtomic(path.join(jobDir(dir, id), 'job.json'), JSON.stringify(job, null, 2) + '\n');
  fs.rmSync(cancelFile(dir, id), { force: true });
  return job;
}

/** The jobs under `dir`, by id. */
export function jobIds(dir: string): string[] {
  if (!fs.existsSync(dir)) return [];
  return fs.readdirSync(dir).filter((d) => fs.existsSync(path.join(dir, d, 'job.json'))).sort();
}

/** Reads job `id` from `dir`; an unknown id names the nearest known ones. */
export function readJob(dir: string, id: string): JobSpec {
  const file = path.join(dir, id, 'job.json');
  if (!fs.existsSync(file)) {
    const known = jobIds(dir);
    throw new LanternError(`no job '${id}' in ${dir}${known.length ? `; nearest: ${nearest(id, known).join(', ')}` : ' (it holds no jobs)'}`);
  }
  return JSON.parse(fs.readFileSync(file, 'utf8')) as JobSpec;
}

/** The examples of a job, checked against the hash it was submitted with. */
export function readJobData<T>(dir: string, job: JobSpec): T[] {
  const file = dataFile(dir, job.id);
  const text = fs.readFileSync(file, 'utf8');
  if (crypto.createHash('sha256').update(text).digest('hex') !== job.dataset.sha256) throw new LanternError(`${file} does not match the hash job ${job.id} was submitted with; submit the job again`);
  return text.split('\n').filter(Boolean).map((l) => JSON.parse(l) as T);
}

/** Shard `i`'s completion record if its file exists and still has the recorded hash. */
export function finishedShard(dir: string, job: JobSpec, i: number): ShardRecord | undefined {
  const done = doneFile(dir, job, i);
  if (!fs.existsSync(done) || !fs.existsSync(shardFile(dir, job, i))) return undefined;
  const rec = JSON.parse(fs.readFileSync(done, 'utf8')) as ShardRecord;
  return fileSha256(shardFile(dir, job, i)) === rec.sha256 ? rec : undefined;
}

/**
 * Runs `write(tmpFile)` for shard `i` and publishes its result: the file is renamed into place
 * (so a shard written twice, by two workers, is replaced whole by identical bytes), then its
 * completion record is written. A failure is recorded with the shard's range and rethrown.
 */
export async function writeShard(dir: string, job: JobSpec, i: number, write: (tmpFile: string) => Promise<void>): Promise<ShardRecord> {
  const file = shardFile(dir, job, i);
  const tmp = `${file}.tmp-${process.pid}-${crypto.randomBytes(4).toString('hex')}`;
  const t0 = performance.now();
  try {
    await write(tmp);
    const sha256 = fileSha256(tmp);
    const bytes = fs.statSync(tmp).size;
    fs.renameSync(tmp, file);
    const rec: ShardRecord = { shard: i, range: job.shards[i], sha256, bytes, ms: Math.round(performance.now() - t0), worker: WORKER_NAME, finishedAt: new Date().toISOString() };
    writeAtomic(doneFile(dir, job, i), JSON.stringify(rec) + '\n');
    fs.rmSync(errorFile(dir, job, i), { force: true });
    return rec;
  } catch (e) {
    fs.rmSync(tmp, { force: true });
    const failure: ShardFailure = { shard: i, range: job.shards[i], message: (e as Error).message, worker: WORKER_NAME };
    try {
      writeAtomic(errorFile(dir, job, i), JSON.stringify(failure) + '\n');
    } catch {
      // The shard's own error is the one to report.
    }
    throw e;
  }
}

/** One line naming a failed shard and why: `shard 2 (examples 64–95): <message>`. */
export function describeFailure(f: { shard: number; range: [number, number]; message: string }): string {
  return `shard ${f.shard} (examples ${f.range[0]}–${f.range[1] - 1}): ${f.message}`;
}

/** The error a job ends with when shards failed: each failed shard, its examples and why. */
export class JobFailedError extends LanternError {
  constructor(readonly job: JobSpec, readonly failures: ShardFailure[]) {
    super(`job ${job.id}: ${failures.length} of ${job.shards.length} shard${job.shards.length === 1 ? '' : 's'} failed: ${failures.map(describeFailure).join('; ')}`);
  }
}

/** Marks job `id` cancelled: runners stop taking its shards (finished shards are kept for a later run). */
export function cancelJob(dir: string, id: string): JobSpec {
  const job = readJob(dir, id);
  writeAtomic(cancelFile(dir, id), new Date().toISOString() + '\n');
  return job;
}

/** Deletes job `id`'s folder: its shards, records and data (the merged outputs live elsewhere and stay). */
export function removeJob(dir: string, id: string): JobSpec {
  const job = readJob(dir, id);
  fs.rmSync(jobDir(dir, id), { recursive: true, force: true });
  return job;
}

/** Whether job `id` was cancelled since it was last submitted. */
export const isCancelled = (dir: string, id: string) => fs.existsSync(cancelFile(dir, id));

/** Where a job stands: finished shards (hash-checked), recorded failures, cancellation. */
export interface JobStatus {
  job: JobSpec;
  done: ShardRecord[];
  failed: ShardFailure[];
  cancelled: boolean;
  state: 'done' | 'failed' | 'cancelled' | 'incomplete';
}

/** Reads job `id`'s progress from its folder. */
export function jobStatus(dir: string, id: string): JobStatus {
  const job = readJob(dir, id);
  const done: ShardRecord[] = [];
  const failed: ShardFailure[] = [];
  job.shards.forEach((_, i) => {
    const rec = finishedShard(dir, job, i);
    if (rec) done.push(rec);
    else if (fs.existsSync(errorFile(dir, job, i))) failed.push(JSON.parse(fs.readFileSync(errorFile(dir, job, i), 'utf8')) as ShardFailure);
  });
  const cancelled = isCancelled(dir, id);
  const state = done.length === job.shards.length ? 'done' : cancelled ? 'cancelled' : failed.length ? 'failed' : 'incomplete';
  return { job, done, failed, cancelled, state };
}
