/** `lantern mcq`: selection bias in multiple-choice answers, and PriDe debiasing. */
import { Command, Option } from 'commander';
import { loadMcq } from '../../methods/evaluation/data.js';
import { pride, type SelectionStats } from '../../methods/evaluation/mcq.js';
import { nonNegativeInt, positiveInt } from './forward.js';
import { backendOption, fmt, openSpec, progressLine, writeReport } from './eval-options.js';
import { httpOptions } from './http-options.js';
import { assertWritable } from './output.js';

function line(name: string, s: SelectionStats, ids: string[]): string {
  return `${name.padEnd(8)} accuracy ${fmt(s.accuracy)}  recall std ${fmt(s.recallStd)}  recall by position ${s.recall.map((r, i) => `${ids[i]} ${fmt(r, 2)}`).join(', ')}  chosen ${s.chosen.map((c, i) => `${ids[i]} ${fmt(c, 2)}`).join(', ')}`;
}

export function mcqCommand(program: Command): void {
  const cmd = program
    .command('mcq')
    .description("Multiple-choice selection bias: estimate the model's prior over option IDs on a few permuted questions (PriDe), debias the rest, and compare.")
    .argument('<questions>', 'questions (.jsonl/.csv/.parquet: question, options list or columns A, B, …, answer as letter or index)')
    .addOption(backendOption('--backend', 'the model answering (needs log-probabilities)'))
    .option('--estimation-size <n>', 'questions used to estimate the prior (default 5%, at least 1)', positiveInt('--estimation-size'))
    .addOption(new Option('--seed <n>', 'seeds the choice of estimation questions').default(0).argParser(nonNegativeInt('--seed', 0x7fffffff)))
    .option('--concurrency <n>', 'questions in flight at once (default 4)', positiveInt('--concurrency'))
    .option('--json <file>', 'write the report as JSON')
    .option('--quiet', 'no progress line');
  for (const o of httpOptions()) cmd.addOption(o);
  cmd.action(async (file: string, opts: Record<string, any>) => {
    if (opts.json) assertWritable(opts.json, '--json');
    const questions = await loadMcq(file);
    const backend = await openSpec(opts.backend, opts);
    const progress = progressLine('mcq', Boolean(opts.quiet));
    try {
      const r = await pride(backend, questions, { estimationSize: opts.estimationSize, seed: opts.seed, concurrency: opts.concurrency, progress: progress.tick });
      progress.end();
      console.log(`prior over option IDs: ${r.prior.map((p, i) => `${r.settings.ids[i]} ${fmt(p)}`).join(', ')} (from ${r.estimation.length} questions)`);
      console.log(line('before', r.before, r.settings.ids));
      console.log(line('after', r.after, r.settings.ids));
      if (r.approximate) console.log('note: the backend scored approximately (chat top log-probs)');
      writeReport(opts, r);
    } finally {
      await backend.close?.();
    }
  });
}
