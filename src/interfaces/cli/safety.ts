/** `lantern safety`: hidden-state safety analysis of harmful vs harmless prompts (probe accuracy by layer, logit lens of the mean difference). */
import fs from 'node:fs';
import { Command, Option } from 'commander';
import { LanternError } from '../../errors.js';
import { harmfulHarmlessSample } from '../../data/safety.js';
import { loadLabelled } from '../../methods/representations/data.js';
import { PROBE_KINDS, ProbeKind } from '../../methods/representations/probes/index.js';
import { safetyAnalysis } from '../../methods/steering/index.js';
import { nonNegativeInt, positiveInt } from './forward.js';
import { assertWritable } from './output.js';
import { hubRecord, loadModelFromFlags, modelOption, revisionOption } from './model-option.js';

export function safetyCommand(program: Command): void {
  program
    .command('safety')
    .description('Hidden-state safety analysis: probe accuracy by layer for harmful (label 1) vs harmless (label 0) prompts, and the logit lens of their mean difference.')
    .addOption(modelOption()).addOption(revisionOption())
    .requiredOption('--data <file|builtin:harmful-harmless>', 'labelled prompts (.jsonl/.csv/.parquet: 1 harmful, 0 harmless), or Lantern\'s small sample')
    .option('--text-column <name>', 'the text column', 'text')
    .option('--label-column <name>', 'the label column', 'label')
    .addOption(new Option('--kind <kind>', 'the probe fit at each layer').default('mass-mean').choices(PROBE_KINDS.filter((k) => k !== 'ccs' && k !== 'linear')))
    .option('--no-chat', 'do not wrap the prompts in the model\'s chat template (default: wrap them when it has one)')
    .addOption(new Option('--top <n>', 'tokens listed per layer').default(8).argParser(positiveInt('--top')))
    .addOption(new Option('--seed <n>', 'seed of the held-out split').default(0).argParser(nonNegativeInt('--seed')))
    .option('--json [file]', 'write the result (model, data hash, seed, settings, layers, direction) as JSON to <file> (or print it)')
    .addHelpText('after', '\nExample:\n  lantern safety --data builtin:harmful-harmless --top 5')
    .action(async (opts) => {
      if (typeof opts.json === 'string') assertWritable(opts.json, '--json');
      const ds = opts.data === 'builtin:harmful-harmless' ? harmfulHarmlessSample() : await loadLabelled(opts.data, { textColumn: opts.textColumn, labelColumn: opts.labelColumn });
      if (ds.examples.some((e) => e.label !== 0 && e.label !== 1)) throw new LanternError(`${opts.data}: labels must be 1 (harmful) or 0 (harmless)`);
      const model = await loadModelFromFlags(opts);
      const r = await safetyAnalysis(model, ds.examples, { kind: opts.kind as ProbeKind, chat: opts.chat === false ? false : undefined, topK: opts.top, seed: opts.seed, dataset: ds.name });
      const result = { ...r, ...hubRecord(model) };
      if (opts.json === true) return console.log(JSON.stringify(result, null, 2));
      if (opts.json) fs.writeFileSync(opts.json, JSON.stringify(result, null, 2) + '\n');
      console.log(`model: ${r.model}; data: ${r.dataset} (hash ${r.datasetHash}); ${r.settings.kind} probe at the last prompt token${r.settings.chat ? ', in the chat template' : ''}`);
      console.log(`${'hook'.padEnd(26)} ${'test acc'.padStart(8)} ${'AUROC'.padStart(6)}  ${'|diff|'.padStart(7)}  harmful - harmless promotes / suppresses`);
      for (const l of r.layers) {
        const toks = (xs: { token: string }[]) => xs.map((t) => JSON.stringify(t.token)).join(' ');
        console.log(`${l.hook.padEnd(26)} ${l.test.accuracy.toFixed(3).padStart(8)} ${l.test.auroc.toFixed(3).padStart(6)}  ${l.norm.toFixed(2).padStart(7)}  ${toks(l.promoted)} / ${toks(l.suppressed)}`);
      }
      if (typeof opts.json === 'string') console.log(`saved JSON to ${opts.json}`);
    });
}
