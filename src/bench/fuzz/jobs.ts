/**
 * Job folders, for the fuzzer. A jobs folder is written by other processes and machines (queue
 * workers on a shared filesystem), so each file of a job may be corrupt, truncated, hand-edited,
 * replaced by a FIFO, a link to /dev/zero, a folder, a symlink loop or a huge sparse file. The
 * valid inputs are two real jobs run in setup on a tiny random GPT-2: activations over a dozen
 * prompts, and neuron statistics over a short corpus, each split into three shards.
 *
 * Every reader runs on the mutated folder: jobIds, readJob, readJobData, finishedShard,
 * jobStatus, listJobs, recordedQueue, `lantern jobs list|show` (in-process), the merge of the
 * folder's shards as they are, a worker opening the job, cancelJob, then a re-run as the command
 * does it (createJob, runJobLocally, merge), then removeJob. The oracle: each ends in a result or
 * one clean LanternError (one naming the jobs folder, where the reader reads the folder); a
 * result is a correct one: a job.json read back is the one submitted, a finished shard has the
 * bytes it was written with, a merge (as-is or after the re-run) equals the clean run's output
 * byte for byte. Never a crash, a hang (a FIFO read blocks the whole process), or a wrong merge.
 */
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { isDeepStrictEqual } from 'node:util';
import fc from 'fast-check';
import { Command } from 'commander';
import { LanternError } from '../../errors.js';
import { TINY_GPT2, writeRandomModel } from '../../models/random.js';
import { loadModel } from '../../models/load.js';
import type { HookedTransformer } from '../../models/hooked.js';
import { capitals } from '../../data/statements.js';
import { activationsAnalysis, activationsJob, type HarvestExample } from '../../methods/representations/index.js';
import { neuronsAnalysis, neuronsJob } from '../../methods/neurons/index.js';
import type { Analysis } from '../../engine/jobs/run.js';
import { runJobLocally, shardFiles } from '../../engine/jobs/run.js';
import {
  cancelJob, finishedShard, isCancelled, jobIds, JobSpec, jobStatus, listJobs, readJob, readJobData, recordedQueue, recordQueue, removeJob, shardFile, writeAtomic,
} from '../../engine/jobs/store.js';
import { jobsCommand } from '../../interfaces/cli/jobs.js';
import { cleanMessage, FuzzKind, Verdict } from './harness.js';

/** A file of a job folder a mutation aims at; `shard` picks which shard's for the per-shard ones. */
type JobFile = 'job.json' | 'data.jsonl' | 'shard' | 'done' | 'error' | 'queue.json' | 'cancelled' | 'folder' | 'jobs dir';
type Special = 'fifo' | 'zero' | 'folder' | 'loop' | 'dangling' | 'huge';

type Mut =
  | { t: 'bytes'; file: JobFile; shard: number; cut: number; flips: [number, number][] }
  | { t: 'json'; file: 'job.json' | 'done' | 'error' | 'queue.json'; shard: number; key: string; value: unknown; remove: boolean }
  | { t: 'line'; op: 'drop' | 'dup' | 'garbage' | 'blank' | 'swap'; at: number }
  | { t: 'drop'; file: JobFile; shard: number }
  | { t: 'special'; file: JobFile; shard: number; as: Special }
  | { t: 'failed'; shard: number }
  | { t: 'cancel' }
  | { t: 'queue'; url: string }
  | { t: 'stray'; as: 'file' | 'folder' | 'fifo' | 'loop' | 'copy' | 'leftover' };

interface JobsInput { base: number; muts: Mut[] }

/** A clean job made in setup: its folder, spec, what a re-run needs, and the clean merge's output. */
interface Base {
  name: string;
  spec: JobSpec;
  pristine: string;
  analysis: Analysis<any, any, any>;
  context: unknown;
  /** Submits the job again, as its command does. */
  resubmit(dir: string): Promise<JobSpec>;
  /** Merges the given shard files; returns the output's bytes, for comparison. */
  merge(job: JobSpec, files: string[], out: string): Promise<Buffer>;
  reference: Buffer;
  data: unknown[];
}

const HOOKS = ['blocks.0.hook_resid_post', 'blocks.1.hook_mlp_out'];
/** A sparse file past every size bound (and past what readFileSync can hold). */
const HUGE = 3 * 2 ** 30;

/** Every file of `dir`, by relative name, concatenated with its name: one buffer to compare outputs by. */
function folderBytes(dir: string): Buffer {
  return Buffer.concat(fs.readdirSync(dir).sort().flatMap((f) => [Buffer.from(`\n${f}\n`), fs.readFileSync(path.join(dir, f))]));
}

function fileOf(dir: string, spec: JobSpec, file: JobFile, shard: number): string {
  const i = shard % spec.shards.length;
  const folder = path.join(dir, spec.id);
  switch (file) {
    case 'shard': return shardFile(dir, spec, i);
    case 'done': return path.join(folder, `shard-${i}.done.json`);
    case 'error': return path.join(folder, `shard-${i}.error.json`);
    case 'folder': return folder;
    case 'jobs dir': return dir;
    default: return path.join(folder, file);
  }
}

function setPath(o: Record<string, unknown>, key: string, value: unknown, remove: boolean): void {
  const [head, tail] = key.split(/\.(.*)/s);
  if (tail !== undefined) {
    const inner = o[head];
    if (inner && typeof inner === 'object' && !Array.isArray(inner)) setPath(inner as Record<string, unknown>, tail, value, remove);
    else if (!remove) o[head] = { [tail]: value };
    return;
  }
  if (remove) delete o[head];
  else Object.defineProperty(o, head, { value: structuredClone(value), enumerable: true, writable: true, configurable: true });
}

function makeSpecial(p: string, as: Special): void {
  fs.rmSync(p, { recursive: true, force: true });
  if (as === 'fifo') execFileSync('mkfifo', [p]);
  else if (as === 'zero') fs.symlinkSync('/dev/zero', p);
  else if (as === 'folder') { fs.mkdirSync(p); fs.writeFileSync(path.join(p, 'x'), 'x'); }
  else if (as === 'loop') fs.symlinkSync(path.basename(p), p);
  else if (as === 'dangling') fs.symlinkSync(`${path.basename(p)}.gone`, p);
  else { fs.writeFileSync(p, ''); fs.truncateSync(p, HUGE); }
}

/** `p`'s own stat (not its link's target), or undefined when there is none (a part of the path is no folder). */
function lstat(p: string): fs.Stats | undefined {
  try {
    return fs.lstatSync(p);
  } catch {
    return undefined;
  }
}

/** Whether `p` is a regular file now (not a link, a FIFO or a folder), so its bytes can be mutated. */
const isPlainFile = (p: string) => lstat(p)?.isFile() === true && lstat(p)!.size < HUGE;

function applyMut(dir: string, spec: JobSpec, m: Mut): void {
  const folder = path.join(dir, spec.id);
  const folderOk = lstat(folder)?.isDirectory() === true;
  switch (m.t) {
    case 'bytes': {
      const p = fileOf(dir, spec, m.file, m.shard);
      if (!isPlainFile(p)) return;
      const b = Buffer.from(fs.readFileSync(p));
      for (const [where, v] of m.flips) if (b.length) b[Math.floor(where * (b.length - 1))] = v;
      fs.writeFileSync(p, b.subarray(0, Math.ceil(m.cut * b.length)));
      return;
    }
    case 'json': {
      const p = fileOf(dir, spec, m.file, m.shard);
      if (!isPlainFile(p)) return;
      let o: unknown;
      try { o = JSON.parse(fs.readFileSync(p, 'utf8')); } catch { return; }
      if (!o || typeof o !== 'object' || Array.isArray(o)) return;
      setPath(o as Record<string, unknown>, m.key, m.value, m.remove);
      fs.writeFileSync(p, JSON.stringify(o));
      return;
    }
    case 'line': {
      const p = fileOf(dir, spec, 'data.jsonl', 0);
      if (!isPlainFile(p)) return;
      const lines = fs.readFileSync(p, 'utf8').split('\n');
      const at = m.at % Math.max(1, lines.length - 1);
      if (m.op === 'drop') lines.splice(at, 1);
      else if (m.op === 'dup') lines.splice(at, 0, lines[at]);
      else if (m.op === 'garbage') lines.splice(at, 0, '{"text": ');
      else if (m.op === 'blank') lines.splice(at, 0, '');
      else if (lines.length > 2) [lines[at], lines[(at + 1) % (lines.length - 1)]] = [lines[(at + 1) % (lines.length - 1)], lines[at]];
      fs.writeFileSync(p, lines.join('\n'));
      return;
    }
    case 'drop':
      if (m.file === 'jobs dir' || (m.file === 'folder' ? lstat(dir)?.isDirectory() : folderOk)) fs.rmSync(fileOf(dir, spec, m.file, m.shard), { recursive: true, force: true });
      return;
    case 'special':
      if (m.file === 'jobs dir' || folderOk) makeSpecial(fileOf(dir, spec, m.file, m.shard), m.as);
      return;
    case 'failed': {
      if (!folderOk) return;
      const i = m.shard % spec.shards.length;
      fs.rmSync(fileOf(dir, spec, 'shard', i), { recursive: true, force: true });
      fs.rmSync(fileOf(dir, spec, 'done', i), { recursive: true, force: true });
      // What writeShard records when a shard throws.
      writeAtomic(fileOf(dir, spec, 'error', i), JSON.stringify({ shard: i, range: spec.shards[i], message: 'prompt 3 has no token " of"', worker: 'host:1' }) + '\n');
      return;
    }
    case 'cancel':
      if (folderOk) writeAtomic(path.join(folder, 'cancelled'), new Date(0).toISOString() + '\n');
      return;
    case 'queue':
      if (folderOk) recordQueue(dir, spec.id, m.url);
      return;
    case 'stray': {
      const stray = path.join(dir, `${spec.analysis}-${m.as.padEnd(16, '0')}`);
      if (!lstat(dir)?.isDirectory() || lstat(stray)) return;
      if (m.as === 'file') fs.writeFileSync(stray, '{}');
      else if (m.as === 'folder') fs.mkdirSync(path.join(stray, 'job.json'), { recursive: true });
      else if (m.as === 'fifo') execFileSync('mkfifo', [stray]);
      else if (m.as === 'loop') fs.symlinkSync(path.basename(stray), stray);
      else if (m.as === 'copy' && folderOk) fs.cpSync(folder, stray, { recursive: true });
      else if (m.as === 'leftover' && folderOk) fs.writeFileSync(`${shardFile(dir, spec, 0)}.tmp-1-abcd1234`, 'half a shard');
      return;
    }
  }
}

/** What a reader did: its value, or the message of the LanternError it refused with. Any other error escapes (a crash). */
type Attempt<T> = { ok: true; value: T } | { ok: false; message: string };

async function attempt<T>(f: () => T | Promise<T>): Promise<Attempt<T>> {
  try {
    return { ok: true, value: await f() };
  } catch (e) {
    if (e instanceof LanternError) return { ok: false, message: e.message };
    throw e;
  }
}

/** `lantern jobs <args>` in this process: its output, or the LanternError it ends with. */
async function cli(args: string[]): Promise<Attempt<string>> {
  const program = new Command('lantern').exitOverride().configureOutput({ outputError: () => {}, writeOut: () => {}, writeErr: () => {} });
  jobsCommand(program);
  const log = console.log;
  let out = '';
  console.log = (...a: unknown[]) => { out += a.join(' ') + '\n'; };
  try {
    return await attempt(async () => { await program.parseAsync(['jobs', ...args], { from: 'user' }); return out; });
  } finally {
    console.log = log;
  }
}

/** The spec without where this machine loads the model from (which a user may edit). */
const identity = (s: JobSpec) => ({ ...s, model: { ...s.model, load: '' } });

/** Runs every reader on job folder `dir`/`base.spec.id` (see the module comment). */
async function judgeJobFolder(dir: string, base: Base, out: string): Promise<Verdict> {
  const { spec, analysis, context } = base;
  const id = spec.id;
  const problems: string[] = [];
  // A refusal is one clean line; one from reading the folder names it.
  const check = (what: string, a: Attempt<unknown>, namesDir = true) => {
    if (a.ok) return;
    const bad = cleanMessage(a.message);
    if (bad) problems.push(`${what}: ${bad}`);
    else if (namesDir && !a.message.includes(dir)) problems.push(`${what}: the error does not name the file: ${a.message}`);
  };
  const same = (file: string, i: number) => fs.readFileSync(file).equals(fs.readFileSync(shardFile(base.pristine, spec, i)));

  check('jobIds', await attempt(() => jobIds(dir)));
  const read = await attempt(() => readJob(dir, id));
  check('readJob', read);
  if (read.ok && !isDeepStrictEqual(identity(read.value), identity(spec))) problems.push(`readJob accepted an edited job.json: ${JSON.stringify(read.value).slice(0, 300)}`);
  for (let i = 0; i < spec.shards.length; i++) {
    const rec = await attempt(() => finishedShard(dir, spec, i));
    check(`finishedShard ${i}`, rec);
    if (rec.ok && rec.value && !same(shardFile(dir, spec, i), i)) problems.push(`finishedShard ${i} accepted a shard whose bytes changed`);
  }
  const data = await attempt(() => readJobData(dir, spec));
  check('readJobData', data);
  if (data.ok && !isDeepStrictEqual(data.value, base.data)) problems.push('readJobData returned other examples than were submitted');
  const status = await attempt(() => jobStatus(dir, id));
  check('jobStatus', status);
  if (status.ok) {
    for (const f of status.value.failed) {
      const bad = cleanMessage(f.message);
      if (bad) problems.push(`jobStatus: shard ${f.shard}'s failure: ${bad}`);
    }
  }
  const listed = await attempt(() => listJobs(dir));
  check('listJobs', listed);
  if (listed.ok) for (const r of listed.value) if (r.error !== undefined && (cleanMessage(r.error) || !r.error.includes(dir))) problems.push(`listJobs: ${r.id}: ${cleanMessage(r.error) ?? r.error}`);
  check('recordedQueue', await attempt(() => recordedQueue(dir, id)));
  for (const args of [['list'], ['list', '--json'], ['show', id], ['show', id, '--json']]) check(`lantern jobs ${args.join(' ')}`, await cli([...args, '--jobs-dir', dir]));

  // The folder's shards merged as they are: only if every one checks out, and then to the clean output.
  if (read.ok) {
    const target = path.join(out, 'as-is');
    fs.mkdirSync(target, { recursive: true });
    const merged = await attempt(async () => base.merge(read.value, shardFiles(dir, read.value), target));
    check('merge as-is', merged);
    if (merged.ok && !merged.value.equals(base.reference)) problems.push('the merge of the folder as it is differs from the clean run\'s');
    // A worker opening the job (its model comes from model.load, which a user may have changed).
    check('worker open', await attempt(() => analysis.open(dir, read.value, {})), false);
  }

  const cancelled = await attempt(() => cancelJob(dir, id));
  check('cancelJob', cancelled);
  if (cancelled.ok && !isCancelled(dir, id)) problems.push('cancelJob returned but the job is not cancelled');

  // The command run again: every damaged shard computed anew, the same output as the clean run.
  let outcome: string;
  const target = path.join(out, 'resumed');
  fs.mkdirSync(target, { recursive: true });
  const resumed = await attempt(async () => {
    const job = await base.resubmit(dir);
    if (job.id !== id) throw new Error(`the job's id changed from ${id} to ${job.id}`);
    const summary = await runJobLocally(dir, job, analysis, context);
    return { summary, bytes: await base.merge(job, shardFiles(dir, job), target) };
  });
  check('re-run', resumed);
  if (resumed.ok) {
    if (!resumed.value.bytes.equals(base.reference)) problems.push('the re-run\'s merge differs from the clean run\'s');
    outcome = resumed.value.summary.computed.length ? 'resumed, recomputed' : 'resumed, reused';
  } else {
    outcome = 'resume refused';
  }
  if (!read.ok) outcome += ' (job.json refused)';

  const removed = await attempt(() => removeJob(dir, id));
  check('removeJob', removed);
  if (removed.ok && jobIds(dir).includes(id)) problems.push('removeJob returned but the job is still listed');
  return problems.length ? { outcome, violation: problems.join('; ') } : { outcome };
}

/** The job-folder fuzz kind (see the module comment). */
export function jobsKind(): FuzzKind<JobsInput> {
  let root = '';
  let model: HookedTransformer | undefined;
  let offline: string | undefined;
  const bases: Base[] = [];
  const frac = fc.oneof(fc.constant(1), fc.double({ min: 0, max: 1, noNaN: true }));
  const flips = fc.array(fc.tuple(fc.double({ min: 0, max: 1, noNaN: true }), fc.nat({ max: 255 })), { maxLength: 3 });
  const file = fc.constantFrom<JobFile>('job.json', 'data.jsonl', 'shard', 'done', 'error', 'queue.json');
  const anyFile = fc.oneof({ weight: 6, arbitrary: file }, { weight: 1, arbitrary: fc.constantFrom<JobFile>('cancelled', 'folder') }, { weight: 1, arbitrary: fc.constant<JobFile>('jobs dir') });
  const values = fc.oneof(
    { weight: 3, arbitrary: fc.constantFrom<unknown>(null, 0, -1, 1.5, 1e308, '', 'x', [], {}, true, '0'.repeat(64), 'f'.repeat(64), 'safetensors', 'json', 'neurons', 'activations', 'lantern-job',
      [[0, 4]], [[0, 4], [4, 12]], [[0, 2], [2, 4], [4, 12]], [[0, 4], [5, 8], [8, 12]], [[0, 4], [4, 8], [8, 13]], [[4, 0]], [0, 4], ['0', '4'], 12, 13, 3, 2, 1, 'redis://127.0.0.1:1', 'http://x', 'host:1', '/nonexistent/model') },
    { weight: 1, arbitrary: fc.jsonValue({ maxDepth: 2 }) },
  );
  const keys: Record<'job.json' | 'done' | 'error' | 'queue.json', string[]> = {
    'job.json': ['format', 'id', 'analysis', 'model', 'model.source', 'model.load', 'model.weightsSha256', 'settings', 'settings.hooks', 'settings.batchSize', 'settings.positions', 'settings.stats', 'settings.tail',
      'seed', 'dataset', 'dataset.sha256', 'dataset.examples', 'dataset.name', 'shards', 'ext', '__proto__', 'constructor'],
    done: ['shard', 'range', 'sha256', 'bytes', 'ms', 'worker', 'finishedAt', '__proto__'],
    error: ['shard', 'range', 'message', 'worker'],
    'queue.json': ['url', 'credentials'],
  };
  const json = fc.constantFrom(...(Object.keys(keys) as (keyof typeof keys)[])).chain((f) => fc.record({
    t: fc.constant('json' as const), file: fc.constant(f), shard: fc.nat({ max: 5 }), key: fc.constantFrom(...keys[f]), value: values, remove: fc.boolean(),
  }));
  const mut: fc.Arbitrary<Mut> = fc.oneof(
    { weight: 4, arbitrary: fc.record({ t: fc.constant('bytes' as const), file, shard: fc.nat({ max: 5 }), cut: frac, flips }) },
    { weight: 5, arbitrary: json },
    { weight: 2, arbitrary: fc.record({ t: fc.constant('line' as const), op: fc.constantFrom('drop' as const, 'dup' as const, 'garbage' as const, 'blank' as const, 'swap' as const), at: fc.nat({ max: 20 }) }) },
    { weight: 2, arbitrary: fc.record({ t: fc.constant('drop' as const), file: anyFile, shard: fc.nat({ max: 5 }) }) },
    { weight: 3, arbitrary: fc.record({ t: fc.constant('special' as const), file: anyFile, shard: fc.nat({ max: 5 }), as: fc.constantFrom<Special>('fifo', 'zero', 'folder', 'loop', 'dangling', 'huge') }) },
    { weight: 2, arbitrary: fc.record({ t: fc.constant('failed' as const), shard: fc.nat({ max: 5 }) }) },
    { weight: 1, arbitrary: fc.constant({ t: 'cancel' as const }) },
    { weight: 1, arbitrary: fc.record({ t: fc.constant('queue' as const), url: fc.constantFrom('redis://127.0.0.1:1', 'redis://:secret@127.0.0.1:1/2', 'rediss://user:pw@host:6380?db=1') }) },
    { weight: 1, arbitrary: fc.record({ t: fc.constant('stray' as const), as: fc.constantFrom('file' as const, 'folder' as const, 'fifo' as const, 'loop' as const, 'copy' as const, 'leftover' as const) }) },
  );
  return {
    name: 'job folders',
    async setup() {
      root = fs.mkdtempSync(path.join(os.tmpdir(), 'lantern-fuzz-jobs-'));
      // A user's model.load edit must not send a worker to the Hub.
      offline = process.env.HF_HUB_OFFLINE;
      process.env.HF_HUB_OFFLINE = '1';
      const folder = path.join(root, 'tiny');
      writeRandomModel(folder, TINY_GPT2);
      const m = await loadModel(folder);
      model = m;

      const examples: HarvestExample[] = capitals({ seed: 1, limit: 12 }).examples.slice(0, 12);
      const actOpts = { hooks: HOOKS, batchSize: 2, shardSize: 4, dataset: 'capitals', seed: 1 };
      const actContext = { model: m, examples: [...examples] };
      const actMerge = async (job: JobSpec, files: string[], out: string) => {
        fs.rmSync(out, { recursive: true, force: true });
        fs.mkdirSync(out, { recursive: true });
        await activationsAnalysis.merge(actContext, job, files, { out: path.join(out, 'acts.safetensors') });
        return folderBytes(out);
      };
      // A corpus of six rows of 32 tokens and a one-token tail, two rows a shard.
      const tokens = Array.from({ length: 6 * 32 + 1 }, (_, i) => (i * 37 + 11) % TINY_GPT2.dVocab);
      const neuOpts = { seq: 32, shardRows: 2, corpus: 'arithmetic' };
      const neuContext = { model: m, tokens };
      const neuMerge = async (job: JobSpec, files: string[]) => Buffer.from(JSON.stringify(await neuronsAnalysis.merge(neuContext, job, files, {})));
      const made = [
        { name: 'activations', analysis: activationsAnalysis, context: actContext, resubmit: (dir: string) => activationsJob(dir, m, examples, actOpts), merge: actMerge },
        { name: 'neurons', analysis: neuronsAnalysis, context: neuContext, resubmit: (dir: string) => neuronsJob(dir, m, tokens, neuOpts), merge: neuMerge },
      ];
      for (const b of made) {
        const pristine = path.join(root, 'pristine', b.name);
        const spec = await b.resubmit(pristine);
        await runJobLocally(pristine, spec, b.analysis, b.context);
        const reference = await b.merge(spec, shardFiles(pristine, spec), path.join(root, 'reference', b.name));
        bases.push({ ...b, spec, pristine, reference, data: readJobData(pristine, spec) });
      }
    },
    // Unmutated folders stay reachable (an empty list), so both sides of the oracle are seen.
    arbitrary: () => fc.record({ base: fc.nat({ max: 1 }), muts: fc.array(mut, { minLength: 0, maxLength: 3 }) }),
    async oracle({ base, muts }) {
      const b = bases[base % bases.length];
      const work = path.join(root, 'work');
      fs.rmSync(work, { recursive: true, force: true });
      const dir = path.join(work, 'jobs');
      fs.cpSync(b.pristine, dir, { recursive: true });
      for (const m of muts) applyMut(dir, b.spec, m);
      return judgeJobFolder(dir, b, path.join(work, 'out'));
    },
    async teardown() {
      if (offline === undefined) delete process.env.HF_HUB_OFFLINE;
      else process.env.HF_HUB_OFFLINE = offline;
      if (model) await model.executor.dropWeights(model.weights);
      fs.rmSync(root, { recursive: true, force: true });
    },
    describe: (i) => `${bases[i.base % 2]?.name ?? i.base} ${JSON.stringify(i.muts)}`.slice(0, 2000),
  };
}
