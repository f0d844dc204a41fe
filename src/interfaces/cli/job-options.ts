/** The flags and the runner every dataset-scale command shares: its work runs as a job (in-process, or on a queue). */
import path from 'node:path';
import { Command, Option } from 'commander';
import { lanternHome } from '../../paths.js';
import type { Analysis, RunSummary } from '../../engine/jobs/run.js';
import { runJobLocally, shardFiles } from '../../engine/jobs/run.js';
import type { JobSpec } from '../../engine/jobs/store.js';
import { activationsAnalysis } from '../../methods/representations/activations-job.js';
import { attributionAnalysis } from '../../methods/attribution/dataset.js';
import { neuronsAnalysis } from '../../methods/neurons/job.js';
import { saeHarvestAnalysis } from '../../methods/sae/harvest-job.js';
import { judgeAnalysis } from '../../methods/evaluation/judge-job.js';
import { chainPollAnalysis } from '../../methods/evaluation/chainpoll-job.js';
import { dashboardsAnalysis } from '../../methods/features/dashboards-job.js';
import { explainAnalysis } from '../../methods/features/explain-job.js';
import { positiveInt } from './forward.js';
import { progressBar } from './progress-bar.js';

/** Every analysis a worker can run, by the name jobs carry. */
export const ANALYSES: Record<string, Analysis<any, any, any>> = Object.fromEntries(
  [activationsAnalysis, attributionAnalysis, neuronsAnalysis, saeHarvestAnalysis, judgeAnalysis, chainPollAnalysis, dashboardsAnalysis, explainAnalysis].map((a) => [a.name, a]),
);

/** Where jobs live unless --jobs-dir says otherwise. */
export const defaultJobsDir = () => path.join(lanternHome(), 'jobs');

/** --jobs-dir, for every command that reads or writes jobs. */
export function jobsDirOption(cmd: Command): Command {
  return cmd.option('--jobs-dir <dir>', 'the jobs folder (with --queue: a path every worker reaches); default <LANTERN_HOME>/jobs');
}

/**
 * The flags of a command that runs as a job. `concurrency: false` leaves out --concurrency, for a
 * command that already uses the flag for something else (its shards then run one at a time in-process);
 * `shardSize` says what --shard-size counts, for a command whose examples are not prompts.
 */
export function jobOptions(cmd: Command, opts: { concurrency?: boolean; shardSize?: string } = {}): Command {
  jobsDirOption(cmd)
    .addOption(new Option('--shard-size <n>', `${opts.shardSize ?? 'examples per shard (rounded up to whole batches)'}; finished shards are kept, so an interrupted run resumes`).argParser(positiveInt('--shard-size')))
    .option('--queue <redis-url>', 'run the shards on lantern worker processes through this Redis (e.g. redis://127.0.0.1:6379) instead of in this process');
  if (opts.concurrency === false) return cmd;
  return cmd.addOption(new Option('--concurrency <n>', 'in-process: shards in flight at once').default(1).argParser(positiveInt('--concurrency')));
}

/**
 * Runs every unfinished shard of `job` (in this process, or on the queue given by --queue, showing
 * progress over all workers), then merges the shards into `target`. Prints one line saying what
 * was computed and what was reused. `shardBar` false leaves the shard bar out, for a command that
 * shows finer progress of its own.
 */
export async function runAndMerge<C, T, R>(opts: Record<string, any>, dir: string, job: JobSpec, analysis: Analysis<C, T, R>, context: C, target: T, shardBar = true): Promise<R> {
  const bar = shardBar ? progressBar(job.id, 'shards') : { update: undefined, stop: () => {} };
  let summary: RunSummary;
  try {
    if (opts.queue) {
      const { submitToQueue } = await import('../../engine/jobs/queue.js');
      summary = await submitToQueue(String(opts.queue), dir, job, { progress: bar.update });
    } else {
      summary = await runJobLocally(dir, job, analysis, context, { concurrency: opts.concurrency, progress: bar.update });
    }
  } finally {
    bar.stop();
  }
  const result = await analysis.merge(context, job, shardFiles(dir, job), target, summary);
  // A bare --json prints the result on stdout, which must stay JSON.
  (opts.json === true ? console.error : console.log)(`job ${job.id}: ${summary.computed.length} shard${summary.computed.length === 1 ? '' : 's'} computed, ${summary.skipped.length} already done (${path.join(dir, job.id)})`);
  return result;
}
