import { Command, Option } from 'commander';
import { promptPairs, TASKS, IOI_CORRUPTIONS } from '../../methods/patching/prompts.js';
import { nonNegativeInt, positiveInt } from './forward.js';

export function promptsCommand(program: Command): void {
  program
    .command('prompts')
    .description('Clean/corrupted prompt pairs for patching: IOI (names and templates), greater-than (years), factual recall.')
    .requiredOption('--task <task>', `one of ${TASKS.join(', ')}`)
    .addOption(new Option('-n, --n <n>', 'how many pairs').default(5).argParser(positiveInt('--n')))
    .addOption(new Option('--seed <n>', 'random seed').default(0).argParser(nonNegativeInt('--seed')))
    .addOption(new Option('--corruption <kind>', `ioi: ${IOI_CORRUPTIONS.join(' (a third name replaces the repeated subject) or ')} (the indirect object replaces it)`).choices([...IOI_CORRUPTIONS]).default('abc'))
    .option('--json', 'print the pairs as JSON')
    .addHelpText('after', '\nExample:\n  lantern prompts --task ioi --n 3\n  lantern patch --clean "<clean>" --corrupt "<corrupt>" --answer "<answer>" --wrong "<wrong>" --sweep heads')
    .action((opts) => {
      const pairs = promptPairs(opts.task, opts.n, { seed: opts.seed, corruption: opts.corruption });
      const settings = { task: opts.task, n: opts.n, seed: opts.seed, ...(opts.task === 'ioi' ? { corruption: opts.corruption } : {}) };
      if (opts.json) {
        console.log(JSON.stringify({ method: 'prompt-pairs', settings, pairs }, null, 2));
        return;
      }
      for (const p of pairs) {
        console.log(`clean:   ${JSON.stringify(p.clean)}\ncorrupt: ${JSON.stringify(p.corrupt)}\nanswer:  ${JSON.stringify(p.answer)}   wrong: ${JSON.stringify(p.wrong)}${p.subject ? `   subject: ${JSON.stringify(p.subject)}` : ''}\n`);
      }
    });
}
