/** `lantern chainpoll`: hallucination scores — the fraction of reasoned judge polls that find one. */
import path from 'node:path';
import { Command } from 'commander';
import { planChainPoll, type ChainPollReport } from '../../methods/evaluation/chainpoll.js';
import { chainPollAnalysis, chainPollJob, chainPollJobContext } from '../../methods/evaluation/chainpoll-job.js';
import { loadCompletions } from '../../methods/evaluation/data.js';
import { positiveInt } from './forward.js';
import { addRunOptions, backendOption, backendRecord, fmt, openRunner, usageLine, writeReport } from './eval-options.js';
import { defaultJobsDir, jobOptions, runAndMerge } from './job-options.js';

export function chainpollCommand(program: Command): void {
  const cmd = program
    .command('chainpoll')
    .description('ChainPoll: ask a judge several times, reasoning step by step, whether each completion contains hallucinations; runs as a resumable job over the completions (--shard-size completions per shard; --queue for lantern worker processes).')
    .argument('<completions>', 'completions (.jsonl/.csv/.parquet: id, completion, optional prompt and reference)')
    .addOption(backendOption())
    .option('--polls <n>', 'polls per completion (default 5)', positiveInt('--polls'))
    .option('--max-tokens <n>', 'most tokens per poll (default 400)', positiveInt('--max-tokens'));
  // --concurrency is already the requests in flight; a job's shards take turns on the judge.
  jobOptions(addRunOptions(cmd), { concurrency: false, shardSize: 'completions per shard, with all their polls (default 256)' }).action(async (file: string, opts: Record<string, any>) => {
    const items = await loadCompletions(file);
    // Checked before the judge is opened (a lantern judge loads a model).
    const plan = planChainPoll(items, { polls: opts.polls, maxTokens: opts.maxTokens, seed: opts.seed });
    const dir = path.resolve(opts.jobsDir ?? defaultJobsDir());
    const backend = backendRecord(opts.judge, opts);
    const { runner, done } = await openRunner(opts, 'chainpoll');
    let r: ChainPollReport;
    try {
      const job = chainPollJob(dir, { id: runner.judge.id, ...backend }, plan, items, { shardSize: opts.shardSize, dataset: file });
      // In this process the runner's request count is the progress; on a queue, the shards done.
      r = await runAndMerge(opts, dir, job, chainPollAnalysis, chainPollJobContext(dir, job, runner), { store: runner.store, runId: opts.runId }, Boolean(opts.queue));
    } finally {
      await done();
    }
    for (const it of r.items) {
      const reason = it.polls.find((p) => p.hallucination)?.reasoning ?? it.polls.find((p) => p.reasoning)?.reasoning ?? it.polls.find((p) => p.error)?.error ?? '';
      console.log(`${it.id.padEnd(12)} ${fmt(it.score, 2).padStart(5)}  ${reason.replace(/\s+/g, ' ').slice(0, 100)}`);
    }
    console.log(`mean hallucination score ${fmt(r.meanScore)}; ${r.errors} unreadable or failed polls`);
    console.log(usageLine(r.usage));
    writeReport(opts, r);
  });
}
