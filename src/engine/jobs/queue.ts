/**
 * Jobs across processes and machines on a BullMQ queue in Redis. The submitter puts one queue
 * entry per unfinished shard; workers (`lantern worker`) take entries, run the shard and write
 * it to the job folder, which every worker reaches at the same path (a shared filesystem). The
 * folder stays the record of what is done: the submitter counts finished shards there, so a
 * Redis restart that loses the queue only makes it put the missing shards back, and a worker
 * killed mid-shard leaves an entry that BullMQ's stalled-job check hands to another worker.
 */
import { Queue, UnrecoverableError, Worker, type Job } from 'bullmq';
import { Redis } from 'ioredis';
import { LanternError } from '../../errors.js';
import type { Executor } from '../runtime/executor.js';
import type { Analysis } from './run.js';
import { throwIfUnfinished } from './run.js';
import { finishedShard, isCancelled, JobSpec, readJob, recordedQueue, recordQueue, ShardFailure, writeShard } from './store.js';

/** The BullMQ queue every Lantern job uses; entries name their job, so one queue serves all. */
export const QUEUE_NAME = 'lantern-shards';

/** A queue entry: the job folder (the same path on every worker), the job and the shard. */
interface ShardEntry { dir: string; jobId: string; shard: number }

const entryId = (jobId: string, shard: number) => `${jobId}-shard-${shard}`;

/** A Redis connection for `url` (redis://host:port) that waits out Redis restarts instead of failing commands. */
export function redisConnection(url: string): Redis {
  if (!/^rediss?:\/\//.test(url)) throw new LanternError(`--queue takes a Redis URL such as redis://127.0.0.1:6379, got '${url}'`);
  // maxRetriesPerRequest null: BullMQ's blocking commands must wait for a reconnect, not give up.
  const redis = new Redis(url, { maxRetriesPerRequest: null, retryStrategy: (times) => Math.min(100 * times, 1000) });
  // Connection errors are retried by ioredis; without a listener Node would treat them as fatal.
  redis.on('error', () => {});
  return redis;
}

/** Waits until `redis` is connected; a Redis that cannot be reached within `ms` is a LanternError naming it. */
export async function waitForRedis(redis: Redis, url: string, ms = 10_000): Promise<void> {
  if (redis.status === 'ready') return;
  let last = '';
  const onError = (e: Error) => (last = e.message);
  redis.on('error', onError);
  try {
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new LanternError(`cannot reach Redis at ${url}${last ? ` (${last})` : ''}; start one (e.g. redis-server --port 6379) or check --queue`)), ms);
      redis.once('ready', () => { clearTimeout(timer); resolve(); });
    });
  } finally {
    redis.off('error', onError);
  }
}

/** Options for {@link submitToQueue}. */
export interface SubmitOptions {
  /** Called whenever the count of finished shards changes, with the count and the total. */
  progress?: (done: number, total: number) => void;
  /** How often the job folder is checked for finished shards, in milliseconds (default 250). */
  pollMs?: number;
  /** How often the queue is checked for failed shards and for entries Redis lost, in milliseconds (default 1000). */
  reconcileMs?: number;
  /** How long to wait for Redis to answer before failing, in milliseconds (default 10000). */
  connectMs?: number;
  /** Attempts per shard for unexpected errors (a LanternError, i.e. bad input, is not retried); default 3. */
  attempts?: number;
}

/**
 * Puts every unfinished shard of `job` on the queue at `url` and waits until all are finished
 * (or some failed: then throws {@link JobFailedError} naming them). Returns the shards that were
 * already finished when it started.
 */
export async function submitToQueue(url: string, dir: string, job: JobSpec, opts: SubmitOptions = {}): Promise<{ skipped: number[]; computed: number[] }> {
  const connection = redisConnection(url);
  try {
    await waitForRedis(connection, url, opts.connectMs);
  } catch (e) {
    connection.disconnect();
    throw e;
  }
  const queue = new Queue<ShardEntry>(QUEUE_NAME, { connection });
  queue.on('error', () => {});
  const total = job.shards.length;
  const done = new Set<number>();
  job.shards.forEach((_, i) => finishedShard(dir, job, i) && done.add(i));
  const skipped = [...done];
  const failures = new Map<number, ShardFailure>();
  const entry = (i: number) => ({ name: 'shard', data: { dir, jobId: job.id, shard: i }, opts: { jobId: entryId(job.id, i), attempts: opts.attempts ?? 3, removeOnComplete: true, removeOnFail: false } });
  try {
    // Whoever cancels the job later (the Workbench) finds its waiting shards through this.
    recordQueue(dir, job.id, url);
    // Entries left failed by an earlier run are replaced, so a resubmitted job tries those shards
    // again; entries still waiting or running are kept (adding an existing id does nothing).
    for (const stale of await queue.getJobs(['failed', 'completed'])) {
      if (stale?.data.jobId === job.id && stale.id) await queue.remove(stale.id);
    }
    await queue.addBulk(job.shards.map((_, i) => i).filter((i) => !done.has(i)).map(entry));
    opts.progress?.(done.size, total);
    let reconciled = performance.now();
    while (done.size + failures.size < total && !isCancelled(dir, job.id)) {
      await new Promise((r) => setTimeout(r, opts.pollMs ?? 250));
      const before = done.size;
      for (let i = 0; i < total; i++) if (!done.has(i) && !failures.has(i) && finishedShard(dir, job, i)) done.add(i);
      if (done.size !== before) opts.progress?.(done.size, total);
      // The queue is asked less often than the folder: one request per unfinished shard.
      if (performance.now() - reconciled < (opts.reconcileMs ?? 1000)) continue;
      reconciled = performance.now();
      for (let i = 0; i < total; i++) {
        if (done.has(i) || failures.has(i)) continue;
        const id = entryId(job.id, i);
        const state = await queue.getJobState(id);
        if (state === 'failed') {
          const entry = await queue.getJob(id);
          // A shard can finish on disk even though its entry failed (a lost lock): the file decides.
          if (finishedShard(dir, job, i)) done.add(i);
          else failures.set(i, { shard: i, range: job.shards[i], message: entry?.failedReason ?? 'failed', worker: 'queue' });
        } else if (state === 'unknown' && !finishedShard(dir, job, i)) {
          // Redis lost the entry (restarted without persistence): put the shard back.
          const e = entry(i);
          await queue.add(e.name, e.data, e.opts);
        }
      }
    }
    throwIfUnfinished(dir, job, [...failures.values()], done.size);
    return { skipped, computed: job.shards.map((_, i) => i).filter((i) => !skipped.includes(i)) };
  } finally {
    await queue.close().catch(() => {});
    connection.disconnect();
  }
}

/** Removes the queue entries of job `id` that no worker has started; waits at most `connectMs` for Redis (default 10000). */
export async function dequeueJob(url: string, id: string, connectMs?: number): Promise<number> {
  const connection = redisConnection(url);
  try {
    await waitForRedis(connection, url, connectMs);
  } catch (e) {
    connection.disconnect();
    throw e;
  }
  const queue = new Queue<ShardEntry>(QUEUE_NAME, { connection });
  try {
    let removed = 0;
    for (const entry of await queue.getJobs(['waiting', 'delayed', 'prioritized'])) {
      if (entry?.data.jobId === id && entry.id) removed += await queue.remove(entry.id);
    }
    return removed;
  } finally {
    await queue.close().catch(() => {});
    connection.disconnect();
  }
}

/** What {@link dequeueRecorded} did: the queue, the shards it removed, and why it removed none if it could not. */
export interface DequeueReport {
  url: string;
  removed: number;
  error?: string;
}

/**
 * Removes job `id`'s waiting shards from the queue its folder records it was submitted to (see
 * {@link recordQueue}); undefined when it never was. A queue reached with a password, which is not
 * recorded, or one that does not answer within `connectMs`, is reported, not thrown: the job is
 * cancelled either way, and workers skip the shards of a cancelled job.
 */
export async function dequeueRecorded(dir: string, id: string, connectMs = 3000): Promise<DequeueReport | undefined> {
  let rec;
  try {
    rec = recordedQueue(dir, id);
  } catch (e) {
    if (!(e instanceof LanternError)) throw e;
    return { url: '', removed: 0, error: e.message };
  }
  if (!rec) return undefined;
  if (rec.credentials) {
    return { url: rec.url, removed: 0, error: `the job was submitted to ${rec.url} with credentials, which are not recorded, so its waiting shards stay on that queue (workers skip them as cancelled); remove them with lantern jobs cancel ${id} --queue <the URL with its password>` };
  }
  try {
    return { url: rec.url, removed: await dequeueJob(rec.url, id, connectMs) };
  } catch (e) {
    if (!(e instanceof LanternError)) throw e;
    return { url: rec.url, removed: 0, error: e.message };
  }
}

/** Options for {@link startWorker}. */
export interface WorkerOptions {
  /** Shards run at once by this worker (default 1). */
  concurrency?: number;
  /** The executor models are loaded on (e.g. one with a single thread, or the CUDA provider). */
  executor?: Executor;
  /**
   * After how many milliseconds without a heartbeat a shard counts as abandoned (its worker died)
   * and goes to another worker (default 30000). Workers renew their hold at half this interval.
   */
  stallMs?: number;
  /** Told when a shard starts, finishes or fails. */
  log?: (line: string) => void;
}

/** A running worker; `close` lets its shards in flight finish, then disconnects. */
export interface RunningWorker {
  /** Resolves once Redis answers; rejects (the worker keeps trying) when it has not within 10 s. */
  ready: Promise<void>;
  /** Stops taking shards, waits for those in flight, and disconnects from Redis. */
  close(): Promise<void>;
}

/**
 * Takes shards from the queue at `url` and runs them with the analysis each job names. Models
 * and data are opened once per job and kept while the worker runs.
 */
export function startWorker(url: string, analyses: Record<string, Analysis<any, any, any>>, opts: WorkerOptions = {}): RunningWorker {
  const connection = redisConnection(url);
  const contexts = new Map<string, Promise<unknown>>();
  const log = opts.log ?? (() => {});
  const stallMs = opts.stallMs ?? 30_000;
  const runEntry = async (entry: Job<ShardEntry>) => {
    const { dir, jobId, shard } = entry.data;
    let job: JobSpec;
    try {
      job = readJob(dir, jobId);
    } catch (e) {
      throw new UnrecoverableError(`${(e as Error).message} (is ${dir} shared with this worker?)`);
    }
    if (isCancelled(dir, jobId)) throw new UnrecoverableError(`job ${jobId} was cancelled`);
    if (finishedShard(dir, job, shard)) return;
    const analysis = analyses[job.analysis];
    if (!analysis) throw new UnrecoverableError(`this worker has no analysis '${job.analysis}' (it has ${Object.keys(analyses).join(', ')})`);
    let context = contexts.get(jobId);
    if (!context) {
      context = analysis.open(dir, job, { executor: opts.executor });
      context.catch(() => contexts.delete(jobId));
      contexts.set(jobId, context);
    }
    log(`shard ${shard} of ${jobId} started`);
    try {
      const ctx = await context;
      const rec = await writeShard(dir, job, shard, (file) => analysis.runShard(ctx, job, shard, file));
      log(`shard ${shard} of ${jobId} done in ${rec.ms} ms`);
    } catch (e) {
      log(`shard ${shard} of ${jobId} failed: ${(e as Error).message}`);
      // Bad input fails the same way every time: retrying it would only delay the report.
      if (e instanceof LanternError) throw new UnrecoverableError(e.message);
      throw e;
    }
  };
  const worker = new Worker<ShardEntry>(QUEUE_NAME, runEntry, {
    connection, concurrency: opts.concurrency ?? 1, lockDuration: stallMs, stalledInterval: stallMs,
    // A shard abandoned this many times fails instead of being retried forever.
    maxStalledCount: 5,
  });
  worker.on('error', () => {});
  return {
    ready: waitForRedis(connection, url),
    async close() {
      // Without Redis nothing in flight can be reported done (its file still counts): stop at once.
      if (connection.status !== 'ready') {
        connection.disconnect();
        await Promise.race([worker.close(true), new Promise((r) => setTimeout(r, 2000))]);
        return;
      }
      await worker.close();
      connection.disconnect();
    },
  };
}
