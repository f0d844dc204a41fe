/** `lantern self-explain`: are a model's self-explanations faithful to its own behaviour? */
import { Command, Option } from 'commander';
import { LanternError } from '../../errors.js';
import { readRows } from '../../methods/representations/data.js';
import { compareWithAttribution, selfExplain, SELF_EXPLANATION_KINDS, type SelfExplanationKind } from '../../methods/evaluation/selfexplain.js';
import { LanternBackend } from '../../backends/lantern.js';
import type { LanguageModelBackend } from '../../backends/types.js';
import { nonNegativeInt, positiveInt } from './forward.js';
import { backendOption, fmt, openSpec, progressLine, writeReport } from './eval-options.js';
import { httpOptions } from './http-options.js';
import { assertWritable } from './output.js';

export function selfExplainCommand(program: Command): void {
  const cmd = program
    .command('self-explain')
    .description('Test self-explanations (counterfactual, attribution, redaction) against the model itself; on a Lantern model, also compare its claimed important words with attribution.')
    .argument('<texts>', 'texts to classify (.jsonl/.csv/.parquet with a text column, optional id)')
    .addOption(backendOption('--backend', 'the model explaining itself'))
    .option('--kinds <kinds...>', `which kinds (default all: ${SELF_EXPLANATION_KINDS.join(', ')})`)
    .option('--top-k <n>', 'words asked for in attribution explanations (default 2)', positiveInt('--top-k'))
    .option('--random-trials <n>', 'random redactions per text for the baseline (default 3)', nonNegativeInt('--random-trials', 1000))
    .option('--attribution <method>', 'white-box: the attribution method compared with the claimed words (default input-x-grad)')
    .addOption(new Option('--seed <n>', 'seeds the random redactions').default(0).argParser(nonNegativeInt('--seed', 0x7fffffff)))
    .option('--json <file>', 'write the report as JSON')
    .option('--quiet', 'no progress line');
  for (const o of httpOptions()) cmd.addOption(o);
  cmd.action(async (file: string, opts: Record<string, any>) => {
    if (opts.json) assertWritable(opts.json, '--json');
    const rows = await readRows(file);
    const items = rows.map((r, i) => {
      if (typeof r.text !== 'string') throw new LanternError(`${file} row ${i + 1}: needs a 'text' string; columns: ${Object.keys(r).join(', ')}`);
      return { id: String(r.id ?? i + 1), text: r.text };
    });
    const backend = await openSpec(opts.backend, opts);
    const progress = progressLine('self-explain', Boolean(opts.quiet));
    try {
      const r = await selfExplain(backend, items, { kinds: opts.kinds as SelfExplanationKind[] | undefined, topK: opts.topK, randomTrials: opts.randomTrials, seed: opts.seed, progress: progress.tick });
      progress.end();
      for (const [kind, v] of Object.entries(r.rates)) {
        console.log(`${kind.padEnd(15)} faithful ${v.faithful} of ${v.n} (${fmt(v.rate)})${v.randomChangeRate !== undefined ? `; redacting random words changes the answer ${fmt(v.randomChangeRate)} of the time` : ''}`);
      }
      const comparisons = [];
      if (backend instanceof LanternBackend) {
        for (const it of r.items) {
          const c = it.checks.find((x) => x.kind === 'attribution' && x.words?.length && x.original);
          if (!c) continue;
          const cmp = await compareWithAttribution(backend.model, it.text, c.words!, c.original!, { method: opts.attribution, seed: opts.seed });
          comparisons.push({ id: it.id, ...cmp });
          console.log(`${it.id}: claims ${cmp.claimed.join(', ')}; ${cmp.method} ranks ${cmp.topAttributed.join(', ')} highest; top-k overlap ${fmt(cmp.topKOverlap, 2)}, rank correlation ${fmt(cmp.rankCorrelation, 2)}`);
        }
      }
      writeReport(opts, { ...r, attributionComparisons: comparisons });
    } finally {
      await (backend as LanguageModelBackend).close?.();
    }
  });
}
