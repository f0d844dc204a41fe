/**
 * Dataset-scale jobs on disk. A job is a named analysis over a dataset, split into shards by
 * example range; each shard is a pure function of (model + weights hash, or a black-box backend's
 * id; settings, range, seed) and is written once, atomically, to `<dir>/<jobId>/shard-<i>.<ext>`, with a completion record
 * holding its content hash. The directory is the source of truth for what is done, so any number
 * of processes (in-process, or queue workers on machines sharing the directory) can run shards,
 * and re-running a job skips every shard whose file still matches its recorded hash.
 */
import { constants as bufferConstants } from 'node:buffer';
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { LanternError, nearest } from '../../errors.js';
import { fileKind, readRegularBytes, readRegularText } from '../../files.js';

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

/** Renames `tmp` onto `file`; a `file` that cannot be replaced (a folder in its place) is a LanternError naming it. */
function publish(tmp: string, file: string): void {
  try {
    fs.renameSync(tmp, file);
  } catch (e) {
    fs.rmSync(tmp, { force: true });
    throw new LanternError(`cannot write ${file}: ${(e as Error).message}`);
  }
}

/** Writes `data` to `file` so that readers see the old content or the new, never a part. */
export function writeAtomic(file: string, data: string | Uint8Array): void {
  const tmp = `${file}.tmp-${process.pid}-${crypto.randomBytes(4).toString('hex')}`;
  try {
    fs.writeFileSync(tmp, data);
  } catch (e) {
    throw new LanternError(`cannot write ${file}: ${(e as Error).message}`);
  }
  publish(tmp, file);
}

/** Removes `file` whatever it became (a folder in its place too); a failure is a LanternError naming it. */
function removeAny(file: string): void {
  try {
    fs.rmSync(file, { recursive: true, force: true });
  } catch (e) {
    throw new LanternError(`cannot remove ${file}: ${(e as Error).message}`);
  }
}

/**
 * Digests this process has computed, by path, with the identity of the file they were computed
 * from. A job's shards are hashed when they are written, when a run looks for finished shards, and
 * again before the merge reads them: a file whose device, inode, size and nanosecond change time
 * are unchanged is not read again (a shard is replaced by a rename, so a new one is a new inode,
 * and any write in place moves its change time).
 */
const digests = new Map<string, { id: string; sha256: string }>();

/**
 * sha256 of a regular file's bytes, read in pieces. Job folders are written by other processes and
 * machines, so the file is opened non-blocking and checked first: a FIFO, a device or a folder in
 * its place, or a size other than `size` when given, is a LanternError instead of a read that
 * blocks or never ends.
 */
export function fileSha256(file: string, size?: number): string {
  const h = crypto.createHash('sha256');
  let fd: number;
  try {
    fd = fs.openSync(file, fs.constants.O_RDONLY | (fs.constants.O_NONBLOCK ?? 0));
  } catch (e) {
    throw new LanternError(`cannot read ${file}: ${(e as Error).message}`);
  }
  const key = path.resolve(file);
  let id: string;
  try {
    const st = fs.fstatSync(fd, { bigint: true });
    if (!st.isFile()) throw new LanternError(`${file} is not a regular file (${fileKind(st)})`);
    if (size !== undefined && st.size !== BigInt(size)) throw new LanternError(`${file} has ${st.size} bytes, not ${size}`);
    id = `${st.dev}:${st.ino}:${st.size}:${st.ctimeNs}:${st.mtimeNs}`;
    const known = digests.get(key);
    if (known?.id === id) return known.sha256;
    const buf = Buffer.allocUnsafe(1 << 22);
    for (let n; (n = fs.readSync(fd, buf, 0, buf.length, null)) > 0; ) h.update(buf.subarray(0, n));
  } catch (e) {
    if (e instanceof LanternError) throw e;
    throw new LanternError(`cannot read ${file}: ${(e as Error).message}`);
  } finally {
    fs.closeSync(fd);
  }
  const sha256 = h.digest('hex');
  digests.set(key, { id, sha256 });
  return sha256;
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

/** Where a job submitted to a queue records which (see {@link recordQueue}). */
export const queueFile = (dir: string, id: string) => path.join(dir, id, 'queue.json');

/** The examples of a job, one JSON value per line, as workers read them. */
export const dataFile = (dir: string, id: string) => path.join(dir, id, 'data.jsonl');

/** The id of the job `body` describes: a hash of everything a shard's output depends on. */
function jobIdOf(body: Omit<JobSpec, 'id'>): string {
  // Where this machine finds the model or backend, and how it talks to it, is not part of what is
  // computed. (An absent model or backend is left out of the JSON, so model jobs keep their ids.)
  const { model, backend } = body;
  const identity = {
    format: body.format, analysis: body.analysis, model: model && { source: model.source, weightsSha256: model.weightsSha256 }, backend: backend && { id: backend.id },
    settings: body.settings, seed: body.seed, dataset: body.dataset, shards: body.shards, ext: body.ext,
  };
  return `${body.analysis}-${crypto.createHash('sha256').update(JSON.stringify(identity)).digest('hex').slice(0, 16)}`;
}

/**
 * Creates (or finds, when the same work was submitted before) the job for `spec` over `data`,
 * writing `job.json` and `data.jsonl` under `dir`. Submitting clears a cancellation, and rewrites
 * a `job.json` or `data.jsonl` that was damaged since.
 */
export function createJob(dir: string, spec: Omit<JobSpec, 'format' | 'id' | 'dataset'> & { dataset: { name: string } }, data: readonly unknown[]): JobSpec {
  const lines = data.map((d) => JSON.stringify(d) + '\n').join('');
  const sha256 = crypto.createHash('sha256').update(lines).digest('hex');
  const last = spec.shards[spec.shards.length - 1];
  if (Boolean(spec.model) === Boolean(spec.backend)) throw new LanternError(`a ${spec.analysis} job needs a model or a backend, and not both`);
  if (spec.shards[0]?.[0] !== 0 || last[1] !== data.length) throw new LanternError(`the shards cover examples ${spec.shards[0]?.[0]}..${last[1]}, not the dataset's ${data.length}`);
  const body = { format: 'lantern-job' as const, analysis: spec.analysis, ...(spec.model ? { model: spec.model } : {}), ...(spec.backend ? { backend: spec.backend } : {}), settings: spec.settings, seed: spec.seed, dataset: { name: spec.dataset.name, sha256, examples: data.length }, shards: spec.shards, ext: spec.ext };
  const id = jobIdOf(body);
  const job: JobSpec = { id, ...body };
  try {
    fs.mkdirSync(jobDir(dir, id), { recursive: true });
  } catch (e) {
    throw new LanternError(`cannot make the job folder ${jobDir(dir, id)}: ${(e as Error).message}`);
  }
  let same = false;
  try {
    same = fileSha256(dataFile(dir, id), Buffer.byteLength(lines)) === sha256;
  } catch (e) {
    if (!(e instanceof LanternError)) throw e; // missing, or not the file it was: written anew
  }
  if (!same) writeAtomic(dataFile(dir, id), lines);
  writeAtomic(path.join(jobDir(dir, id), 'job.json'), JSON.stringify(job, null, 2) + '\n');
  removeAny(cancelFile(dir, id));
  return job;
}

/** The jobs under `dir`, by id. */
export function jobIds(dir: string): string[] {
  let names: string[];
  try {
    names = fs.readdirSync(dir);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return [];
    throw new LanternError(`cannot list the jobs folder ${dir}: ${(e as Error).message}`);
  }
  return names.filter((d) => fs.existsSync(path.join(dir, d, 'job.json'))).sort();
}

/** job.json holds settings (a neurons job's token tail among them), never more than this. */
const MAX_JOB_BYTES = 64 * 2 ** 20;
/** A shard's done or error record is one short line. */
const MAX_RECORD_BYTES = 2 ** 20;

/** The JSON value in `file`, read as {@link readRegularText} reads; unreadable or invalid JSON is a LanternError naming the file. */
function readJsonFile(file: string, maxBytes: number, what: string): unknown {
  const text = readRegularText(file, maxBytes, what);
  try {
    return JSON.parse(text);
  } catch (e) {
    throw new LanternError(`${file}: ${what} is not valid JSON (${oneLine((e as Error).message)})`);
  }
}

/** JSON.parse quotes the text it failed on, line breaks included: an error is one line. */
const oneLine = (m: string) => m.replace(/\s*\n\s*/g, ' ');
const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);
const isCount = (v: unknown): v is number => Number.isSafeInteger(v) && (v as number) >= 0;
const isSha256 = (v: unknown): v is string => typeof v === 'string' && /^[0-9a-f]{64}$/.test(v);
const isRange = (v: unknown): v is [number, number] => Array.isArray(v) && v.length === 2 && isCount(v[0]) && isCount(v[1]) && v[0] <= v[1];

/** What is wrong with `v` as the job.json of folder `id`, if anything. */
function jobSpecProblem(v: unknown, id: string): string | undefined {
  if (!isObject(v) || v.format !== 'lantern-job') return "it is not a Lantern job (format is not 'lantern-job')";
  if (typeof v.analysis !== 'string' || v.analysis === '') return 'analysis is not a name';
  const m = v.model;
  const b = v.backend;
  if ((m === undefined) === (b === undefined)) return 'it names no model and no backend, or both';
  if (m !== undefined && (!isObject(m) || typeof m.source !== 'string' || typeof m.load !== 'string' || !isSha256(m.weightsSha256))) return 'model is not { source, load, weightsSha256 }';
  if (b !== undefined && (!isObject(b) || typeof b.id !== 'string' || typeof b.load !== 'string' || !isObject(b.options))) return 'backend is not { id, load, options }';
  if (!isObject(v.settings)) return 'settings is not an object';
  if (typeof v.seed !== 'number' || !Number.isFinite(v.seed)) return 'seed is not a number';
  const d = v.dataset;
  if (!isObject(d) || typeof d.name !== 'string' || !isSha256(d.sha256) || !isCount(d.examples)) return 'dataset is not { name, sha256, examples }';
  if (v.ext !== 'safetensors' && v.ext !== 'parquet' && v.ext !== 'json') return `ext is ${JSON.stringify(v.ext)}, not 'safetensors', 'parquet' or 'json'`;
  const shards = v.shards;
  if (!Array.isArray(shards) || shards.length === 0 || !shards.every(isRange)) return 'shards is not a list of example ranges [start, end]';
  const gap = shards.findIndex((r, k) => r[0] !== (k === 0 ? 0 : shards[k - 1][1]));
  if (gap >= 0 || shards[shards.length - 1][1] !== d.examples) {
    return `the shards do not cover the dataset's ${d.examples} examples one after another (${gap >= 0 ? `shard ${gap} starts at ${shards[gap][0]}` : `the last ends at ${shards[shards.length - 1][1]}`})`;
  }
  if (v.id !== id) return `its id ${JSON.stringify(v.id)} is not its folder's name`;
  if (jobIdOf(v as unknown as JobSpec) !== id) return 'it no longer hashes to its id (it was edited after submission)';
  return undefined;
}

/** An id names a folder in the jobs folder: one with a path in it (`../…`) never reaches the files outside. */
function checkJobId(id: string): void {
  if (id === '' || id === '.' || id === '..' || /[\\/]/.test(id)) throw new LanternError(`'${id}' is not a job id`);
}

/** Reads job `id` from `dir`; an unknown id names the nearest known ones, and a damaged or edited job.json is a LanternError naming it. */
export function readJob(dir: string, id: string): JobSpec {
  checkJobId(id);
  const file = path.join(dir, id, 'job.json');
  if (!fs.existsSync(file)) {
    const known = jobIds(dir);
    throw new LanternError(`no job '${id}' in ${dir}${known.length ? `; nearest: ${nearest(id, known).join(', ')}` : ' (it holds no jobs)'}`);
  }
  const spec = readJsonFile(file, MAX_JOB_BYTES, 'job file');
  const problem = jobSpecProblem(spec, id);
  if (problem) throw new LanternError(`${file}: ${problem}; submit the job again`);
  // Only the fields the id covers: anything added by hand is not part of the job.
  const { format, analysis, model, backend, settings, seed, dataset, shards, ext } = spec as JobSpec;
  return {
    format, id, analysis,
    ...(model ? { model: { source: model.source, load: model.load, weightsSha256: model.weightsSha256 } } : {}),
    ...(backend ? { backend: { id: backend.id, load: backend.load, options: backend.options } } : {}),
    settings, seed, dataset: { name: dataset.name, sha256: dataset.sha256, examples: dataset.examples }, shards, ext,
  };
}

/** The examples of a job, checked against the hash it was submitted with. */
export function readJobData<T>(dir: string, job: JobSpec): T[] {
  const file = dataFile(dir, job.id);
  // Past the longest string V8 makes, the lines could not be split anyway.
  const bytes = readRegularBytes(file, bufferConstants.MAX_STRING_LENGTH, "job's data file");
  if (crypto.createHash('sha256').update(bytes).digest('hex') !== job.dataset.sha256) throw new LanternError(`${file} does not match the hash job ${job.id} was submitted with; submit the job again`);
  const lines = bytes.toString('utf8').split('\n').filter(Boolean);
  if (lines.length !== job.dataset.examples) throw new LanternError(`${file} holds ${lines.length} examples, not the ${job.dataset.examples} of job ${job.id}; submit the job again`);
  return lines.map((l, k) => {
    try {
      return JSON.parse(l) as T;
    } catch (e) {
      throw new LanternError(`${file}: line ${k + 1} is not JSON (${oneLine((e as Error).message)}); submit the job again`);
    }
  });
}

/** What is wrong with `v` as shard `i`'s done record, if anything. */
function recordProblem(v: unknown, job: JobSpec, i: number): string | undefined {
  if (!isObject(v)) return 'it is not a record';
  if (v.shard !== i || !isRange(v.range) || v.range[0] !== job.shards[i][0] || v.range[1] !== job.shards[i][1]) return `it is not the record of shard ${i} (examples ${job.shards[i][0]}–${job.shards[i][1] - 1})`;
  if (!isSha256(v.sha256) || !isCount(v.bytes)) return 'its sha256 or bytes are missing';
  if (typeof v.ms !== 'number' || !Number.isFinite(v.ms) || typeof v.worker !== 'string' || typeof v.finishedAt !== 'string') return 'its ms, worker or finishedAt are missing';
  return undefined;
}

/**
 * Shard `i`'s completion record if its file exists and still has the recorded size and hash. A
 * record that cannot be read or is not a record of this shard leaves the shard unfinished, as a
 * changed file does: it is computed again and the record rewritten.
 */
export function finishedShard(dir: string, job: JobSpec, i: number): ShardRecord | undefined {
  const done = doneFile(dir, job, i);
  if (!fs.existsSync(done) || !fs.existsSync(shardFile(dir, job, i))) return undefined;
  try {
    const rec = readJsonFile(done, MAX_RECORD_BYTES, 'shard record');
    if (recordProblem(rec, job, i)) return undefined;
    const { shard, range, sha256, bytes, ms, worker, finishedAt } = rec as ShardRecord;
    return fileSha256(shardFile(dir, job, i), bytes) === sha256 ? { shard, range, sha256, bytes, ms, worker, finishedAt } : undefined;
  } catch (e) {
    if (e instanceof LanternError) return undefined;
    throw e;
  }
}

/** Shard `i`'s failure record, if it has one; one that cannot be read is reported as the failure. */
function shardFailure(dir: string, job: JobSpec, i: number): ShardFailure | undefined {
  const file = errorFile(dir, job, i);
  if (!fs.existsSync(file)) return undefined;
  const unreadable = (why: string): ShardFailure => ({ shard: i, range: job.shards[i], message: `its failure record ${file} is unreadable (${why})`, worker: 'unknown' });
  let v: unknown;
  try {
    v = readJsonFile(file, MAX_RECORD_BYTES, 'failure record');
  } catch (e) {
    if (e instanceof LanternError) return unreadable(e.message);
    throw e;
  }
  if (!isObject(v) || typeof v.message !== 'string' || typeof v.worker !== 'string') return unreadable('it is not { message, worker }');
  // The shard and range are this file's, whatever the record says.
  return { shard: i, range: job.shards[i], message: v.message.replace(/\s*\n\s*/g, ' '), worker: v.worker };
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
    publish(tmp, file);
    const rec: ShardRecord = { shard: i, range: job.shards[i], sha256, bytes, ms: Math.round(performance.now() - t0), worker: WORKER_NAME, finishedAt: new Date().toISOString() };
    writeAtomic(doneFile(dir, job, i), JSON.stringify(rec) + '\n');
    removeAny(errorFile(dir, job, i));
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
  if (!isCancelled(dir, id)) writeAtomic(cancelFile(dir, id), new Date().toISOString() + '\n');
  return job;
}

/**
 * Deletes job `id`'s folder: its shards, records and data (the merged outputs live elsewhere and
 * stay). A folder whose job.json is damaged is removed too; then there is no job to return.
 */
export function removeJob(dir: string, id: string): JobSpec | undefined {
  checkJobId(id);
  let job: JobSpec | undefined;
  try {
    job = readJob(dir, id);
  } catch (e) {
    // Only a folder holding a job.json is a job's; a damaged one is what removing is for.
    if (!(e instanceof LanternError) || !fs.existsSync(path.join(dir, id, 'job.json'))) throw e;
  }
  removeAny(jobDir(dir, id));
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
    const failure = rec ? undefined : shardFailure(dir, job, i);
    if (rec) done.push(rec);
    else if (failure) failed.push(failure);
  });
  const cancelled = isCancelled(dir, id);
  const state = done.length === job.shards.length ? 'done' : cancelled ? 'cancelled' : failed.length ? 'failed' : 'incomplete';
  return { job, done, failed, cancelled, state };
}

/** A job of {@link listJobs}: its status, or why its folder cannot be read. */
export type ListedJob = { id: string; status: JobStatus; error?: undefined } | { id: string; status?: undefined; error: string };

/** Every job under `dir` with its status; one whose folder is damaged is listed with the reason, so the others still show. */
export function listJobs(dir: string): ListedJob[] {
  return jobIds(dir).map((id) => {
    try {
      return { id, status: jobStatus(dir, id) };
    } catch (e) {
      if (!(e instanceof LanternError)) throw e;
      return { id, error: e.message };
    }
  });
}

/** The queue a job was last submitted to (`queue.json`): its Redis URL without credentials, and whether it had any. */
export interface QueueRecord {
  url: string;
  /** Whether the URL had a user name or password, left out of `url`: a reader cannot reach that queue. */
  credentials: boolean;
}

/** Query parameters ioredis reads credentials from. */
const CREDENTIAL_PARAMS = ['password', 'username', 'user'];

/** Records in job `id`'s folder that it was submitted to the queue at `url`, never with its password. */
export function recordQueue(dir: string, id: string, url: string): QueueRecord {
  let u: URL;
  try {
    u = new URL(url);
  } catch {
    throw new LanternError(`--queue takes a Redis URL such as redis://127.0.0.1:6379, got '${url}'`);
  }
  let credentials = u.username !== '' || u.password !== '';
  u.username = '';
  u.password = '';
  for (const k of CREDENTIAL_PARAMS) {
    if (u.searchParams.has(k)) { credentials = true; u.searchParams.delete(k); }
  }
  const rec = { url: u.toString(), credentials };
  writeAtomic(queueFile(dir, id), JSON.stringify(rec) + '\n');
  return rec;
}

/** The queue job `id` was last submitted to, if it was; a damaged queue.json is a LanternError naming it. */
export function recordedQueue(dir: string, id: string): QueueRecord | undefined {
  const file = queueFile(dir, id);
  if (!fs.existsSync(file)) return undefined;
  const v = readJsonFile(file, MAX_RECORD_BYTES, 'queue record');
  if (!isObject(v) || typeof v.url !== 'string' || !/^rediss?:\/\//.test(v.url) || typeof v.credentials !== 'boolean') throw new LanternError(`${file}: the queue record is not { url: 'redis://…', credentials }`);
  return { url: v.url, credentials: v.credentials };
}
