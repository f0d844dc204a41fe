/**
 * ChainPoll runs as jobs, the way judge runs do (see judge-job.ts, whose shard plumbing this
 * shares): an item is one completion, polled `plan.polls` times; shards are ranges of items, each
 * written once as a Parquet table (a row per poll: `judgment.*` and `verdict.*` columns) with what
 * its requests cost in its metadata. The merge computes the scores and their mean from all the
 * polls in item order with the function a direct run uses ({@link finishChainPoll}), so a job's
 * report equals a direct run's however the items were split. A shard whose requests all failed is
 * a failed shard, so that running the command again asks again.
 */
import type { Analysis } from '../../engine/jobs/run.js';
import { createJob, DEFAULT_SHARD_SIZE, jobBackend, JobBackend, JobSpec, readJobData, shardRanges } from '../../engine/jobs/store.js';
import { finishChainPoll, pollItems, type ChainPollItem, type ChainPollPlan, type ChainPollReport, type Poll } from './chainpoll.js';
import { openJobRunner, readRecordShards, runnerShards, writeRecordShard, type RunnerShards } from './judge-job.js';
import type { JudgeRunner } from './runner.js';
import type { EvalStore } from './store.js';

/** What a chainpoll job's shards share: the runner that asks the judge, the job's items, and a lock that runs its shards one at a time. */
export interface ChainPollJobContext extends RunnerShards {
  items: ChainPollItem[];
}

/** Where a chainpoll job's merge stores the run. */
export interface ChainPollMergeTarget {
  store: EvalStore;
  /** The stored run's id (default: a new one). */
  runId?: string;
}

const planOf = (job: JobSpec) => (job.settings as { plan: ChainPollPlan }).plan;

/**
 * What the shards of `job` share, asking through `runner` (a worker's own, or the submitting
 * command's, whose store then caches the requests). Announces the polls of the unfinished shards
 * to the runner's progress.
 */
export function chainPollJobContext(dir: string, job: JobSpec, runner: JudgeRunner): ChainPollJobContext {
  return { ...runnerShards(dir, job, runner, planOf(job).polls), items: readJobData<ChainPollItem>(dir, job) };
}

/** The analysis behind `lantern chainpoll`. */
export const chainPollAnalysis: Analysis<ChainPollJobContext, ChainPollMergeTarget, ChainPollReport> = {
  name: 'chainpoll',

  async open(dir, job) {
    return chainPollJobContext(dir, job, await openJobRunner(job));
  },

  async runShard(ctx, job, shard, file) {
    const [first, last] = job.shards[shard];
    await writeRecordShard<Poll>(ctx, file, 'chainpoll', () => pollItems(ctx.runner, planOf(job), ctx.items.slice(first, last)));
  },

  async merge(ctx, job, files, target, run) {
    const { records, usage } = await readRecordShards<Poll>(files, run);
    return finishChainPoll(target.store, jobBackend(job).id, planOf(job), ctx.items, records, { runId: target.runId, usage });
  },
};

/**
 * Creates (or finds) the chainpoll job over `items` (checked by `planChainPoll`) under `dir`,
 * asking `backend`, `shardSize` items per shard (default 256). Its identity is the backend's id,
 * the plan and the items.
 */
export function chainPollJob(dir: string, backend: JobBackend, plan: ChainPollPlan, items: ChainPollItem[], opts: { shardSize?: number; dataset?: string } = {}): JobSpec {
  return createJob(dir, {
    analysis: 'chainpoll', backend, settings: { plan }, seed: plan.seed, dataset: { name: opts.dataset ?? '' },
    shards: shardRanges(items.length, opts.shardSize ?? DEFAULT_SHARD_SIZE), ext: 'parquet',
  }, items);
}
