/** `lantern activations` and `lantern probe train|eval|sweep`. */
import fs from 'node:fs';
import path from 'node:path';
import { Command, Option } from 'commander';
import { LanternError } from '../../errors.js';
import { loadModel } from '../../models/load.js';
import type { HookedTransformer } from '../../models/hooked.js';
import { builtinDataset, statementPairs, GENERATORS } from '../../data/statements.js';
import { ContrastPair, LabelledExample, datasetHash, loadContrastPairs, requireTwoClasses, loadLabelled, splitExamples } from '../../methods/representations/data.js';
import { parsePositions, readActivations, Positions, positionsLabel } from '../../methods/representations/activations.js';
import {
  harvestProbeData, loadProbe, metrics, ProbeData, ProbeKind, PROBE_KINDS, residHooks, saveProbe, sweepLayers, SweepResult, toSaved, trainProbe,
} from '../../methods/representations/probes/index.js';
import { select } from '../../methods/representations/probes/numeric.js';
import { lineChartSvg, scatterChartSvg } from '../../report/plot.js';
import { defaultModel } from './defaults.js';
import { nonNegativeInt, positiveInt } from './forward.js';
import { assertWritable } from './output.js';
import { defaultJobsDir, jobOptions, runAndMerge } from './job-options.js';
import { activationsAnalysis, activationsJob } from '../../methods/representations/activations-job.js';
import { progressBar } from './progress-bar.js';

type Item = LabelledExample | ContrastPair;

/** The dataset flags every command that reads labelled texts takes; `optional`: --data may be left out (probe train, given --acts instead). */
function dataOptions(cmd: Command, opts: { optional?: boolean } = {}): Command {
  const data = new Option('--data <file|builtin:name>', `labelled texts: a .jsonl, .csv or .parquet file, or a built-in dataset (builtin:${Object.keys(GENERATORS).join(', builtin:')})`);
  return cmd
    .addOption(opts.optional ? data : data.makeOptionMandatory())
    .option('--text-column <name>', 'the text column', 'text')
    .option('--label-column <name>', 'the label column', 'label')
    .option('--split-column <name>', "a column of 'train'/'test' (default: a seeded random quarter is held out)")
    .option('--pair-columns <positive,negative>', 'contrast pairs from the file: the two columns holding the statement answered each way')
    .option('--contrast', 'make contrast pairs from the statements ("... This is true." / "... This is false."), as CCS needs')
    .addOption(new Option('--limit <n>', 'built-in datasets: at most this many subjects').argParser(positiveInt('--limit')))
    .addOption(new Option('--seed <n>', 'seed for built-in datasets, splits and fits').default(0).argParser(nonNegativeInt('--seed')));
}

async function loadItems(opts: Record<string, any>): Promise<{ name: string; items: Item[] }> {
  const data = String(opts.data);
  let name = data;
  let items: Item[];
  if (data.startsWith('builtin:')) {
    const ds = builtinDataset(data.slice('builtin:'.length), { seed: opts.seed, limit: opts.limit });
    name = ds.name;
    items = ds.examples;
  } else if (opts.pairColumns) {
    const [positiveColumn, negativeColumn] = String(opts.pairColumns).split(',');
    if (!negativeColumn) throw new LanternError(`--pair-columns takes two column names separated by a comma, got '${opts.pairColumns}'`);
    items = await loadContrastPairs(data, { positiveColumn, negativeColumn, labelColumn: opts.labelColumn, splitColumn: opts.splitColumn });
  } else {
    items = (await loadLabelled(data, { textColumn: opts.textColumn, labelColumn: opts.labelColumn, splitColumn: opts.splitColumn })).examples;
  }
  if (opts.contrast) {
    if (items.length && 'positive' in items[0]) throw new LanternError('--contrast makes pairs from statements; these are already pairs (--pair-columns)');
    items = statementPairs(items as LabelledExample[]);
  }
  return { name, items: splitExamples(items, { seed: opts.seed }) };
}

const hookList = (s: string) => s.split(',').map((h) => h.trim()).filter(Boolean);

function parseKind(s: string): ProbeKind {
  if (!(PROBE_KINDS as string[]).includes(s)) throw new LanternError(`unknown probe kind '${s}'; use one of ${PROBE_KINDS.join(', ')}`);
  return s as ProbeKind;
}

/** Probe data at one hook from an activations file: rows, labels, the saved split, and for contrast harvests the two sides. */
function probeDataFromFile(file: string, hook: string | undefined): { data: ProbeData; hook: string; meta: ReturnType<typeof readActivations>['meta'] } {
  const a = readActivations(file, hook);
  if (a.meta.positions === 'all') throw new LanternError(`${file} holds every token's activations (--positions all); probes take one row per example: harvest with last, mean, an index or a token`);
  const x = { data: a.x, rows: a.rows, cols: a.width };
  if (!a.meta.contrast) return { data: { x, labels: Float64Array.from(a.label), test: Uint8Array.from(a.split, (s) => (s === 1 ? 1 : 0)) }, hook: a.hook, meta: a.meta };
  // Contrast harvests hold each pair as two examples, positive then negative.
  const posRows = [...a.example.keys()].filter((r) => a.side![r] === 1);
  const negRows = [...a.example.keys()].filter((r) => a.side![r] === 0);
  return {
    data: { x: select(x, posRows), neg: select(x, negRows), labels: Float64Array.from(posRows, (r) => a.label[r]), test: Uint8Array.from(posRows, (r) => (a.split[r] === 1 ? 1 : 0)) },
    hook: a.hook, meta: a.meta,
  };
}

function printSweep(r: SweepResult): void {
  console.log(`model: ${r.model}`);
  console.log(`data: ${r.dataset} (hash ${r.datasetHash}); ${r.settings.kind} probe at ${r.settings.positions} position, seed ${r.settings.seed}`);
  console.log(`${'hook'.padEnd(28)} ${'train acc'.padStart(9)} ${'test acc'.padStart(9)} ${'test AUROC'.padStart(10)} ${'n test'.padStart(7)}`);
  for (const l of r.layers) console.log(`${l.hook.padEnd(28)} ${l.train.accuracy.toFixed(3).padStart(9)} ${l.test.accuracy.toFixed(3).padStart(9)} ${l.test.auroc.toFixed(3).padStart(10)} ${String(l.test.n).padStart(7)}`);
  console.log(`held-out majority class: ${r.baseline.toFixed(3)} of the held-out rows`);
}

export async function sweepCharts(r: SweepResult): Promise<{ accuracy: string; pca: string }> {
  const series = (['train', 'test'] as const).map((s) => ({ name: `${s} accuracy`, markers: true, points: r.layers.map((l, i) => ({ x: i, y: l[s].accuracy })) }));
  const accuracy = await lineChartSvg(series, { title: `${r.settings.kind} probe accuracy by layer`, xLabel: 'layer (hook index)', yLabel: 'accuracy', rules: [{ name: 'majority class (held-out)', y: r.baseline }] });
  const pca = await scatterChartSvg(r.pca.points.map((p) => ({ x: p.x, y: p.y, group: `label ${p.label}`, shape: p.split })), {
    title: `${r.pca.hook}: top principal components`, xLabel: `PC1 (${(100 * r.pca.explained[0]).toFixed(1)}% of variance)`, yLabel: `PC2 (${(100 * r.pca.explained[1]).toFixed(1)}%)`,
  });
  return { accuracy, pca };
}

async function openModel(source: string | undefined): Promise<HookedTransformer> {
  return loadModel(source ?? defaultModel(), { progress: process.stderr.isTTY });
}

export function activationsCommand(program: Command): void {
  jobOptions(dataOptions(program.command('activations').description('Harvest activations of labelled texts at chosen hooks and positions, streamed to safetensors shards. Runs as a resumable job, in this process or on lantern worker processes (--queue).'))
    .option('-m, --model <folder|hub-id>', 'model (default: the bundled model)')
    .requiredOption('--hooks <names>', 'comma-separated hook names (see lantern hooks)')
    .option('--positions <last|mean|all|N|token>', 'which positions to keep: the last token, the mean over tokens, every token, index N (negative: from the end), or the last occurrence of a token', 'last')
    .addOption(new Option('--batch-size <n>', 'prompts per forward').default(32).argParser(positiveInt('--batch-size')))
    .addOption(new Option('--shard-rows <n>', 'rows per output file (default: 256 MiB of activations)').argParser(positiveInt('--shard-rows')))
    .requiredOption('--out <file>', 'output .safetensors (several files: <stem>-00001-of-0000N.safetensors with <file>.index.json)'))
    .addHelpText('after', '\nExamples:\n  lantern activations --data builtin:capitals --hooks blocks.2.hook_resid_post --out acts.safetensors\n  lantern activations --data big.jsonl --hooks blocks.2.hook_resid_post --out acts.safetensors --jobs-dir /shared/jobs --queue redis://10.0.0.5:6379')
    .action(async (opts) => {
      assertWritable(opts.out, '--out');
      const { name, items } = await loadItems(opts);
      const model = await openModel(opts.model);
      const hooks = hookList(opts.hooks);
      const examples = items.flatMap((it, i) => ('positive' in it
        ? [{ text: it.positive, label: it.label, split: it.split, side: 1, pair: i }, { text: it.negative, label: it.label, split: it.split, side: 0, pair: i }]
        : [it]));
      const dir = path.resolve(opts.jobsDir ?? defaultJobsDir());
      const positions = parsePositions(opts.positions);
      const job = await activationsJob(dir, model, examples, { hooks, positions, batchSize: opts.batchSize, shardSize: opts.shardSize, dataset: name, seed: opts.seed });
      const meta = await runAndMerge(opts, dir, job, activationsAnalysis, { model, examples }, { out: opts.out, shardRows: opts.shardRows });
      console.log(`saved ${meta.rows} rows x [${meta.widths.join(', ')}] at ${hooks.join(', ')} (${meta.positions} position) of ${meta.examples} texts to ${opts.out}`);
    });
}

export function probeCommand(program: Command): void {
  const probe = program.command('probe').description('Linear probes on activations: train, evaluate on held-out or new data, sweep layers.');
  dataOptions(probe
    .command('train')
    .description('Fit a probe at one hook and save it (direction, bias, normalisation, model, hook, data hash).'), { optional: true })
    .option('--acts <file>', 'activations from lantern activations (else --data is harvested)')
    .option('-m, --model <folder|hub-id>', 'model for --data (default: the bundled model)')
    .option('--hook <name>', 'the hook (default: the only/first hook of --acts)')
    .option('--positions <last|mean|N|token>', 'with --data: which position', 'last')
    .addOption(new Option('--kind <kind>', `probe kind: ${PROBE_KINDS.join(', ')}`).default('logistic').argParser(parseKind))
    .addOption(new Option('--k <n>', 'k-sparse: the number of neurons (default: chosen among 1, 2, 4, ... on a validation part of the training rows)').argParser(positiveInt('--k')))
    .option('--ranking <mean-diff|f-statistic>', 'k-sparse: how neurons are ranked', 'mean-diff')
    .requiredOption('--out <file>', 'the probe (.json)')
    .option('--json <file>', 'write the result (metrics, settings) as JSON')
    .action(async (opts) => {
      assertWritable(opts.out, '--out');
      if (opts.json) assertWritable(opts.json, '--json');
      if (!opts.acts === !opts.data) throw new LanternError('give either --acts (saved activations) or --data (texts to harvest)');
      if (opts.ranking !== 'mean-diff' && opts.ranking !== 'f-statistic') throw new LanternError(`unknown --ranking '${opts.ranking}'; use mean-diff or f-statistic`);
      let ctx: { model: string; hook: string; dModel: number; positions: string; dataset: string; datasetHash: string; seed: number };
      let data: ProbeData;
      if (opts.acts) {
        const f = probeDataFromFile(opts.acts, opts.hook);
        data = f.data;
        ctx = { model: f.meta.model, hook: f.hook, dModel: f.meta.dModel, positions: f.meta.positions, dataset: f.meta.dataset, datasetHash: f.meta.datasetHash, seed: opts.seed };
      } else {
        const { name, items } = await loadItems({ ...opts, contrast: opts.contrast ?? opts.kind === 'ccs' });
        if (opts.kind !== 'linear') requireTwoClasses(items.map((e) => e.label), `the labels of ${name}`);
        const model = await openModel(opts.model);
        const hook = opts.hook ?? residHooks(model).at(-1)!;
        const positions = parsePositions(opts.positions);
        const bar = progressBar('activations', 'prompts');
        data = (await harvestProbeData(model, items, { hooks: [hook], positions, seed: opts.seed, progress: bar.update })).get(hook)!;
        bar.stop();
        ctx = { model: model.source, hook, dModel: model.cfg.dModel, positions: positionsLabel(positions), dataset: name, datasetHash: datasetHash(items), seed: opts.seed };
      }
      const t = trainProbe(data, { kind: opts.kind, seed: opts.seed, k: opts.k, ranking: opts.ranking });
      const saved = toSaved(t, ctx);
      saveProbe(opts.out, saved);
      const result = { ...ctx, method: `probe-${opts.kind}`, settings: { kind: opts.kind, ...t.probe.settings }, train: t.train, test: t.test, ...(t.sparsity ? { sparsity: t.sparsity } : {}) };
      if (opts.json) fs.writeFileSync(opts.json, JSON.stringify(result, null, 2) + '\n');
      console.log(`${opts.kind} probe at ${ctx.hook} (${ctx.positions} position), data ${ctx.dataset} (hash ${ctx.datasetHash})`);
      if (t.sparsity) for (const s of t.sparsity) console.log(`  k=${String(s.k).padEnd(4)} held-out accuracy ${s.accuracy.toFixed(3)}  AUROC ${s.auroc.toFixed(3)}  neurons ${s.neurons.slice(0, 8).join(',')}${s.neurons.length > 8 ? ',…' : ''}`);
      console.log(`train: accuracy ${t.train.accuracy.toFixed(3)}, AUROC ${t.train.auroc.toFixed(3)} (n=${t.train.n})`);
      console.log(`held-out: accuracy ${t.test.accuracy.toFixed(3)}, AUROC ${t.test.auroc.toFixed(3)} (n=${t.test.n})`);
      console.log(`saved the probe to ${opts.out}`);
    });

  dataOptions(probe
    .command('eval')
    .description("Score a saved probe on other data: accuracy and AUROC on every row (all of --data's examples, or all rows of --acts)."))
    .requiredOption('--probe <file>', 'a probe from lantern probe train')
    .option('-m, --model <folder|hub-id>', "model (default: the probe's model)")
    .option('--json', 'print the result as JSON')
    .action(async (opts) => {
      const unchecked = loadProbe(opts.probe).saved;
      const { name, items } = await loadItems({ ...opts, contrast: opts.contrast ?? unchecked.kind === 'ccs' });
      const model = await openModel(opts.model ?? unchecked.model);
      const { saved, probe: p } = loadProbe(opts.probe, model);
      const positions: Positions = parsePositions(saved.positions.startsWith('token:') ? saved.positions.slice(6) : saved.positions);
      const bar = progressBar('activations', 'prompts');
      const data = (await harvestProbeData(model, items, { hooks: [saved.hook], positions, seed: opts.seed, progress: bar.update })).get(saved.hook)!;
      bar.stop();
      const m = metrics(p, data.x, data.labels, data.neg);
      const result = { model: model.source, method: 'probe-eval', probe: opts.probe, hook: saved.hook, kind: saved.kind, dataset: name, datasetHash: datasetHash(items), seed: opts.seed, ...m };
      if (opts.json) return console.log(JSON.stringify(result, null, 2));
      console.log(`${saved.kind} probe ${opts.probe} at ${saved.hook} on ${name}: accuracy ${m.accuracy.toFixed(3)}, AUROC ${m.auroc.toFixed(3)} (n=${m.n})`);
    });

  dataOptions(probe
    .command('sweep')
    .description('Fit a probe at every layer (residual stream after each block) and report held-out accuracy and AUROC; optionally plot them and a PCA of the best layer.'))
    .option('-m, --model <folder|hub-id>', 'model (default: the bundled model)')
    .option('--hooks <names>', 'comma-separated hooks (default: blocks.{l}.hook_resid_post for every layer)')
    .option('--positions <last|mean|N|token>', 'which position', 'last')
    .addOption(new Option('--kind <kind>', `probe kind: ${PROBE_KINDS.join(', ')}`).default('logistic').argParser(parseKind))
    .addOption(new Option('--batch-size <n>', 'prompts per forward').default(32).argParser(positiveInt('--batch-size')))
    .option('--json [file]', 'write the result as JSON to <file> (or print it)')
    .option('--plot <file>', 'accuracy by layer (.svg)')
    .option('--pca <file>', 'the best layer\'s activations on their top two principal components, coloured by label (.svg)')
    .addHelpText('after', '\nExample:\n  lantern probe sweep --data builtin:capitals --plot acc.svg --pca pca.svg')
    .action(async (opts) => {
      for (const flag of ['plot', 'pca'] as const) if (opts[flag]) assertWritable(opts[flag], `--${flag}`);
      if (typeof opts.json === 'string') assertWritable(opts.json, '--json');
      const { name, items } = await loadItems({ ...opts, contrast: opts.contrast ?? opts.kind === 'ccs' });
      if (opts.kind !== 'linear') requireTwoClasses(items.map((e) => e.label), `the labels of ${name}`);
      const model = await openModel(opts.model);
      const bar = progressBar('activations', 'prompts');
      const r = await sweepLayers(model, items, { kind: opts.kind, seed: opts.seed, hooks: opts.hooks ? hookList(opts.hooks) : undefined, positions: parsePositions(opts.positions), batchSize: opts.batchSize, dataset: name, progress: bar.update });
      bar.stop();
      if (opts.plot || opts.pca) {
        const charts = await sweepCharts(r);
        if (opts.plot) fs.writeFileSync(opts.plot, charts.accuracy);
        if (opts.pca) fs.writeFileSync(opts.pca, charts.pca);
      }
      if (opts.json === true) return console.log(JSON.stringify(r, null, 2));
      if (opts.json) fs.writeFileSync(opts.json, JSON.stringify(r, null, 2) + '\n');
      printSweep(r);
      for (const flag of ['json', 'plot', 'pca'] as const) if (typeof opts[flag] === 'string') console.log(`saved ${flag === 'json' ? 'JSON' : flag === 'plot' ? 'the accuracy chart' : 'the PCA chart'} to ${opts[flag]}`);
    });
}
