/** `lantern chainpoll`: hallucination scores — the fraction of reasoned judge polls that find one. */
import { Command } from 'commander';
import { chainPoll, type ChainPollReport } from '../../methods/evaluation/chainpoll.js';
import { loadCompletions } from '../../methods/evaluation/data.js';
import { positiveInt } from './forward.js';
import { addRunOptions, backendOption, fmt, openRunner, usageLine, writeReport } from './eval-options.js';

export function chainpollCommand(program: Command): void {
  const cmd = program
    .command('chainpoll')
    .description('ChainPoll: ask a judge several times, reasoning step by step, whether each completion contains hallucinations.')
    .argument('<completions>', 'completions (.jsonl/.csv/.parquet: id, completion, optional prompt and reference)')
    .addOption(backendOption())
    .option('--polls <n>', 'polls per completion (default 5)', positiveInt('--polls'))
    .option('--max-tokens <n>', 'most tokens per poll (default 400)', positiveInt('--max-tokens'));
  addRunOptions(cmd).action(async (file: string, opts: Record<string, any>) => {
    const items = await loadCompletions(file);
    const { runner, done } = await openRunner(opts, 'chainpoll');
    let r: ChainPollReport;
    try {
      r = await chainPoll(runner, items, { polls: opts.polls, maxTokens: opts.maxTokens, seed: opts.seed, runId: opts.runId });
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
