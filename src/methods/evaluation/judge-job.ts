/**
 * Judge runs as jobs. An item is one unit of judge work: an answer for single grading (judged
 * under every template and sample), a question × pair for pairwise comparison (every template,
 * sample and order). Shards are ranges of items; each shard's judgments, with the store row of
 * each (prompt, raw answer, parsed verdict), are written once as a Parquet table (a row per
 * judgment: `judgment.*` and `verdict.*` columns), with what its requests cost in its metadata.
 * The merge computes every run-level statistic from all the judgments in item order with the
 * functions a direct run uses ({@link finishSingle}, {@link finishPairwise}), so a job's report
 * equals a direct run's however the items were split.
 *
 * A shard's judgments that failed stay per-item errors, as in a direct run; but a shard whose
 * requests all failed (a judge that is down, a worker without the API key) is a failed shard, so
 * that running the command again asks again instead of keeping a shard of errors.
 *
 * The shard plumbing of a job of judge requests ({@link runnerShards}, {@link writeRecordShard},
 * {@link readRecordShards}, {@link openJobRunner}) is shared with ChainPoll jobs (chainpoll-job.ts).
 */
import pLimit from 'p-limit';
import { openBackend } from '../../backends/index.js';
import { LanternError } from '../../errors.js';
import type { Analysis, RunSummary } from '../../engine/jobs/run.js';
import { createJob, DEFAULT_SHARD_SIZE, finishedShard, jobBackend, JobBackend, JobSpec, readJobData, shardRanges } from '../../engine/jobs/store.js';
import { readTable, writeTable } from '../../engine/jobs/table.js';
import {
  asksPerItem, finishPairwise, finishSingle, judgePairItems, judgeSingleItems,
  type HumanPairLabel, type HumanScore, type JudgedRecord, type PairItem, type PairJudgment, type PairwisePlan, type PairwiseReport,
  type ScoreJudgment, type SingleItem, type SinglePlan, type SingleReport,
} from './judge.js';
import { addUsage, JudgeRunner, NO_USAGE, type RunUsage } from './runner.js';
import type { EvalStore } from './store.js';

/** What a judge job's shards share: the runner that asks the judge, the job's items, and a lock that runs its shards one at a time. */
export interface JudgeJobContext extends RunnerShards {
  items: SingleItem[] | PairItem[];
}

/** Where a judge job's merge stores the run, and what it needs besides the judgments. */
export interface JudgeMergeTarget {
  store: EvalStore;
  /** The stored run's id (default: a new one). */
  runId?: string;
  /** Human labels: scores for single grading, verdicts for pairwise comparison. */
  human?: HumanScore[] | HumanPairLabel[];
}

/** One shard's content. */
interface RecordShard<J> {
  records: JudgedRecord<J>[];
  usage: RunUsage;
}

/** A judged record as a table row: its judgment's and its verdict's fields, prefixed. */
function recordRow(r: JudgedRecord<unknown>): Record<string, unknown> {
  const row: Record<string, unknown> = {};
  for (const part of ['judgment', 'verdict'] as const) for (const [k, v] of Object.entries(r[part] as object)) row[`${part}.${k}`] = v;
  return row;
}

function rowRecord<J>(row: Record<string, unknown>): JudgedRecord<J> {
  const r = { judgment: {} as Record<string, unknown>, verdict: {} as Record<string, unknown> };
  for (const [key, v] of Object.entries(row)) {
    const dot = key.indexOf('.');
    r[key.slice(0, dot) as 'judgment' | 'verdict'][key.slice(dot + 1)] = v;
  }
  return r as unknown as JudgedRecord<J>;
}

async function readShard<J>(file: string): Promise<RecordShard<J>> {
  const { rows, meta } = await readTable<Record<string, unknown>, { usage: RunUsage }>(file);
  return { records: rows.map((row) => rowRecord<J>(row)), usage: meta.usage };
}

/** What the shards of a job of judge requests share: the runner that asks the judge, and a lock that runs its shards one at a time. */
export interface RunnerShards {
  runner: JudgeRunner;
  /**
   * A shard's usage is the runner's count over the shard, so shards sharing a runner take turns;
   * the requests within a shard still run the runner's concurrency at a time.
   */
  lock: ReturnType<typeof pLimit>;
}

/**
 * Opens the judge a job records (a worker's side), with the key from this process's environment
 * (the variable the job's options name), never from the job.
 */
export async function openJobRunner(job: JobSpec): Promise<JudgeRunner> {
  const { load, options } = jobBackend(job);
  const judge = await openBackend(load, options.open as Parameters<typeof openBackend>[1]);
  return new JudgeRunner(judge, { concurrency: options.concurrency as number | undefined });
}

/**
 * The shared part of a job of judge requests (judge, chainpoll): the runner and the lock, with the
 * requests of the unfinished shards (`asksPerItem` each of their items) announced to the runner's progress.
 */
export function runnerShards(dir: string, job: JobSpec, runner: JudgeRunner, asksPerItem: number): RunnerShards {
  const todo = job.shards.filter((_, i) => !finishedShard(dir, job, i)).reduce((n, [a, b]) => n + b - a, 0);
  runner.expect(todo * asksPerItem);
  return { runner, lock: pLimit(1) };
}

/**
 * Computes a shard's records with `work` (on the shared runner, one shard at a time) and writes
 * them to `file` as a table, with what their requests cost. A shard whose `what` requests all
 * failed is a failed shard.
 */
export async function writeRecordShard<J extends { error: string | null }>(ctx: RunnerShards, file: string, what: string, work: () => Promise<JudgedRecord<J>[]>): Promise<void> {
  const out = await ctx.lock(async (): Promise<RecordShard<J>> => {
    const before = ctx.runner.usage();
    const records = await work();
    return { records, usage: addUsage(ctx.runner.usage(), before, -1) };
  });
  if (out.records.length && out.usage.failed === out.records.length) {
    throw new LanternError(`all ${out.records.length} ${what} requests failed (${out.records[0].judgment.error})`);
  }
  writeTable(file, out.records.map(recordRow), { usage: out.usage });
}

/**
 * Every record of the shards' `files`, in order, and what this run cost: the shards it computed
 * (every shard without `run`); a shard found finished answered its requests from the job folder.
 */
export async function readRecordShards<J>(files: string[], run?: RunSummary): Promise<{ records: JudgedRecord<J>[]; usage: RunUsage }> {
  const shards = await Promise.all(files.map((f) => readShard<J>(f)));
  let usage = NO_USAGE;
  shards.forEach((s, i) => {
    usage = addUsage(usage, !run || run.computed.includes(i) ? s.usage : { ...NO_USAGE, fromStore: s.records.length });
  });
  return { records: shards.flatMap((s) => s.records), usage };
}

const planOf = (job: JobSpec) => (job.settings as { plan: SinglePlan | PairwisePlan }).plan;


/**
 * What the shards of `job` share, asking through `runner` (a worker's own, or the submitting
 * command's, whose store then caches the requests). Announces the requests of the unfinished
 * shards to the runner's progress.
 */
export function judgeJobContext(dir: string, job: JobSpec, runner: JudgeRunner): JudgeJobContext {
  const items = readJobData<SingleItem | PairItem>(dir, job);
  return { ...runnerShards(dir, job, runner, asksPerItem(planOf(job))), items: items as SingleItem[] | PairItem[] };
}

/** The analysis behind `lantern judge`: single grading or pairwise comparison, by the job's plan. */
export const judgeAnalysis: Analysis<JudgeJobContext, JudgeMergeTarget, SingleReport | PairwiseReport> = {
  name: 'judge',

  async open(dir, job) {
    return judgeJobContext(dir, job, await openJobRunner(job));
  },

  async runShard(ctx, job, shard, file) {
    const plan = planOf(job);
    const [first, last] = job.shards[shard];
    await writeRecordShard<ScoreJudgment | PairJudgment>(ctx, file, 'judge', () => (plan.kind === 'single'
      ? judgeSingleItems(ctx.runner, plan, ctx.items.slice(first, last) as SingleItem[])
      : judgePairItems(ctx.runner, plan, ctx.items.slice(first, last) as PairItem[])));
  },

  async merge(ctx, job, files, target, run?: RunSummary) {
    const plan = planOf(job);
    const { records, usage } = await readRecordShards<ScoreJudgment | PairJudgment>(files, run);
    const o = { runId: target.runId, usage };
    const { id } = jobBackend(job);
    return plan.kind === 'single'
      ? finishSingle(target.store, id, plan, ctx.items as SingleItem[], records as JudgedRecord<ScoreJudgment>[], { ...o, human: target.human as HumanScore[] | undefined })
      : finishPairwise(target.store, id, plan, ctx.items as PairItem[], records as JudgedRecord<PairJudgment>[], { ...o, human: target.human as HumanPairLabel[] | undefined });
  },
};

/**
 * Creates (or finds) the judge job over `items` (from `planSingle` or `planPairwise`)
 * under `dir`, asking `backend`, `shardSize` items per shard (default 256). Its identity is the
 * backend's id, the plan and the items.
 */
export function judgeJob(dir: string, backend: JobBackend, plan: SinglePlan | PairwisePlan, items: SingleItem[] | PairItem[], opts: { shardSize?: number; dataset?: string } = {}): JobSpec {
  return createJob(dir, {
    analysis: 'judge', backend, settings: { plan }, seed: plan.seed, dataset: { name: opts.dataset ?? '' },
    shards: shardRanges(items.length, opts.shardSize ?? DEFAULT_SHARD_SIZE), ext: 'parquet',
  }, items);
}
