/**
 * Analyses that run as jobs, and the in-process runner: no server, shards run on this process's
 * compute thread (the Executor's worker thread), `concurrency` at a time, so the JavaScript side
 * of one shard overlaps the ONNX Runtime work of another.
 */
import pLimit from 'p-limit';
import { LanternError } from '../../errors.js';
import type { Executor } from '../runtime/executor.js';
import { finishedShard, isCancelled, jobDir, JobFailedError, JobSpec, ShardFailure, shardFile, writeShard, WORKER_NAME } from './store.js';

/** What a worker gives an analysis to open a job with. */
export interface OpenOptions {
  /** The executor to load models on (default: the process-wide one). */
  executor?: Executor;
}

/**
 * A dataset-scale analysis that runs as a job. `open` prepares what every shard of a job shares
 * (the model, checked against the job's weights hash; the examples); `runShard` computes one
 * shard and writes it to the given file; `merge` combines the shard files, in shard order, into
 * the analysis's result, deterministically.
 */
export interface Analysis<Context = unknown, Target = unknown, Result = unknown> {
  /** The name jobs carry (e.g. 'activations'). */
  readonly name: string;
  /** Prepares what every shard of `job` (stored under `dir`) shares; a worker calls it once per job. */
  open(dir: string, job: JobSpec, opts: OpenOptions): Promise<Context>;
  /** Computes shard `shard` and writes it to `file` (a temporary path that is then renamed into place). */
  runShard(context: Context, job: JobSpec, shard: number, file: string): Promise<void>;
  /**
   * Combines the finished shards' files, in shard order, into the result at `target`. `run` says
   * which shards this run computed and which it found finished (for what the run itself cost).
   */
  merge(context: Context, job: JobSpec, files: string[], target: Target, run?: RunSummary): Promise<Result>;
}

/** Options for {@link runJobLocally}. */
export interface LocalRunOptions {
  /** Shards in flight at once (default 1). */
  concurrency?: number;
  /** Called after each shard with the shards finished so far and the total. */
  progress?: (done: number, total: number) => void;
}

/** What a run did: which shards it computed and which it found finished. */
export interface RunSummary {
  computed: number[];
  skipped: number[];
}

/** Fails with the shards' failures, or stops a cancelled job. */
export function throwIfUnfinished(dir: string, job: JobSpec, failures: ShardFailure[], done: number): void {
  if (failures.length) throw new JobFailedError(job, failures.sort((a, b) => a.shard - b.shard));
  if (done < job.shards.length && isCancelled(dir, job.id)) throw new LanternError(`job ${job.id} was cancelled with ${done} of ${job.shards.length} shards done; run the command again to finish it`);
}

/**
 * Runs every unfinished shard of `job` in this process. Every shard is tried even when some fail,
 * so one run reports all bad shards and keeps the good ones; then it throws {@link JobFailedError}.
 */
export async function runJobLocally<C>(dir: string, job: JobSpec, analysis: Analysis<C>, context: C, opts: LocalRunOptions = {}): Promise<RunSummary> {
  const summary: RunSummary = { computed: [], skipped: [] };
  const failures: ShardFailure[] = [];
  const todo: number[] = [];
  job.shards.forEach((_, i) => (finishedShard(dir, job, i) ? summary.skipped : todo).push(i));
  let done = summary.skipped.length;
  opts.progress?.(done, job.shards.length);
  const limit = pLimit(opts.concurrency ?? 1);
  await Promise.all(todo.map((i) => limit(async () => {
    if (isCancelled(dir, job.id)) return;
    try {
      await writeShard(dir, job, i, (file) => analysis.runShard(context, job, i, file));
      summary.computed.push(i);
      opts.progress?.(++done, job.shards.length);
    } catch (e) {
      if (!(e instanceof LanternError)) throw e;
      failures.push({ shard: i, range: job.shards[i], message: e.message, worker: WORKER_NAME });
    }
  })));
  throwIfUnfinished(dir, job, failures, done);
  summary.computed.sort((a, b) => a - b);
  return summary;
}

/**
 * The shard files of a finished job, in shard order, each checked against its record: a merge
 * never reads a shard that is missing or was changed since it was written.
 */
export function shardFiles(dir: string, job: JobSpec): string[] {
  const unfinished = job.shards.map((_, i) => i).filter((i) => !finishedShard(dir, job, i));
  if (unfinished.length) {
    throw new LanternError(`job ${job.id} (${jobDir(dir, job.id)}): shard${unfinished.length === 1 ? '' : 's'} ${unfinished.join(', ')} of ${job.shards.length} ${unfinished.length === 1 ? 'is' : 'are'} not finished (missing, or changed since written); run the command again to compute ${unfinished.length === 1 ? 'it' : 'them'}`);
  }
  return job.shards.map((_, i) => shardFile(dir, job, i));
}
