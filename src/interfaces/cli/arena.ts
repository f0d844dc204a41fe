/** `lantern arena`: a leaderboard from battles — Bradley–Terry ratings with bootstrap intervals, online Elo, win rates. */
import { Command, Option } from 'commander';
import { LanternError } from '../../errors.js';
import { arena, type ArenaReport } from '../../methods/evaluation/arena.js';
import { loadBattles } from '../../methods/evaluation/data.js';
import { nonNegativeInt, positiveInt } from './forward.js';
import { fmt, progressLine, writeReport } from './eval-options.js';
import { assertWritable } from './output.js';

function printArena(r: ArenaReport): void {
  console.log(`rank  model               rating   95% interval        elo      battles  exp. win rate`);
  for (const e of r.leaderboard) {
    console.log(`${String(e.rank).padStart(4)}  ${e.model.padEnd(18)}${fmt(e.rating, 1).padStart(8)}  [${fmt(e.lower, 1)}, ${fmt(e.upper, 1)}]`.padEnd(56) + `${fmt(e.elo, 1).padStart(8)}  ${String(e.battles).padStart(7)}  ${fmt(e.expectedWinRate)}`);
  }
  console.log('\nwin rate (row beat column, non-tied battles):');
  const w = Math.max(8, ...r.models.map((m) => m.length + 1));
  console.log(''.padEnd(w) + r.models.map((m) => m.slice(0, 8).padStart(9)).join(''));
  r.winRate.forEach((row, i) => console.log(r.models[i].padEnd(w) + row.map((v) => fmt(v, 2).padStart(9)).join('')));
  if (r.bootstrapSkipped) console.log(`\n${r.bootstrapSkipped} bootstrap resamples left out: in them some model never won or never lost`);
}

export function arenaCommand(program: Command): void {
  program
    .command('arena')
    .description('Rank models from battles (JSONL/CSV/Parquet: model_a, model_b, winner of model_a | model_b | tie | tie (bothbad)).')
    .argument('<battles>', 'the battles file (from people, or from `lantern judge pairwise --battles`)')
    .option('--bootstrap <n>', 'bootstrap resamples for the intervals (default 100)', nonNegativeInt('--bootstrap', 100000))
    .addOption(new Option('--seed <n>', 'seeds the bootstrap').default(0).argParser(nonNegativeInt('--seed', 0x7fffffff)))
    .option('--k <n>', 'online Elo step (default 4)', positiveInt('--k'))
    .option('--pseudo-ties <n>', 'virtual ties between every two models that met (default 0): finite ratings when a model never won or never lost', (v) => {
      const t = Number(v);
      if (!Number.isFinite(t) || t < 0) throw new LanternError(`--pseudo-ties must be a number ≥ 0, got '${v}'`);
      return t;
    })
    .option('--json <file>', 'write the report as JSON')
    .option('--quiet', 'no progress line')
    .action(async (file: string, opts: Record<string, any>) => {
      if (opts.json) assertWritable(opts.json, '--json');
      const battles = await loadBattles(file);
      const progress = progressLine('bootstrap', Boolean(opts.quiet));
      const r = arena(battles, { bootstrap: opts.bootstrap, seed: opts.seed, k: opts.k, pseudoTies: opts.pseudoTies, progress: progress.tick });
      progress.end();
      printArena(r);
      writeReport(opts, r);
    });
}
