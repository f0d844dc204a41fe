/** `lantern sae train|eval|load|export`: sparse autoencoders. */
import fs from 'node:fs';
import path from 'node:path';
import { Command, Option } from 'commander';
import { LanternError } from '../../errors.js';
import { SAE_ARCHITECTURES, SaeArchitecture, SaeConfig, NORMALIZATIONS, ActivationNormalization } from '../../methods/sae/sae.js';
import { SaeTrainer, defaultTrainConfig, SaeLogEntry, saeTrainingRows } from '../../methods/sae/train.js';
import { ActivationSource, ModelSource } from '../../methods/sae/source.js';
import { saeHarvestAnalysis, saeHarvestContext, saeHarvestJob, saeHarvestSize } from '../../methods/sae/harvest-job.js';
import { hookWidth } from '../../methods/representations/activations.js';
import { loadSae, saveSae } from '../../methods/sae/io.js';
import { evaluateSae, SaeEvaluation } from '../../methods/sae/metrics.js';
import { loadCorpus } from '../../methods/sae/corpus.js';
import { hubRecord, loadModelFromFlags, modelOption, modelSource, revisionOption } from './model-option.js';
import { nonNegativeInt, positiveInt } from './forward.js';
import { defaultJobsDir, jobOptions, runAndMerge } from './job-options.js';
import { formatBytes } from '../../methods/cost.js';

const positiveNumber = (flag: string) => (v: string) => {
  const x = Number(v);
  if (!(x > 0)) throw new LanternError(`${flag} must be a positive number, got '${v}'`);
  return x;
};
const nonNegativeNumber = (flag: string) => (v: string) => {
  const x = Number(v);
  if (!(x >= 0)) throw new LanternError(`${flag} must be a number >= 0, got '${v}'`);
  return x;
};

/** One status line on stderr, rewritten in place on a terminal, a line every `every` steps otherwise. */
function progressLine(total: number): (e: SaeLogEntry) => void {
  const tty = process.stderr.isTTY;
  const t0 = Date.now();
  return (e) => {
    const eta = ((Date.now() - t0) / e.step) * (total - e.step) / 1000;
    const width = 24;
    const filled = Math.round((e.step / total) * width);
    const line = `sae |${'\u2588'.repeat(filled)}${'\u2591'.repeat(width - filled)}| ${e.step}/${total} mse ${e.mse.toFixed(4)} sparsity ${e.sparsity.toFixed(4)} aux ${e.aux.toFixed(4)} L0 ${e.l0.toFixed(1)} dead ${(100 * e.dead).toFixed(1)}% ${Math.round(e.rowsPerSecond)} rows/s ETA ${Math.round(eta)}s`;
    if (tty) process.stderr.write(`\r${line}`);
    else if (e.step % Math.max(1, Math.floor(total / 20)) === 0) process.stderr.write(`${line}\n`);
    if (tty && e.step === total) process.stderr.write('\n');
  };
}

/** The model's name for cfg.json: its Hub id, or its folder's name (not a path on this machine). */
function modelName(model: { hub?: { id: string } }, source: string): string {
  return model.hub?.id ?? (fs.existsSync(source) ? path.basename(path.resolve(source)) : source);
}

function printEvaluation(e: SaeEvaluation): void {
  const f = (x: number, d = 4) => x.toFixed(d);
  console.log(`tokens ${e.tokens}`);
  console.log(`L0 ${f(e.l0, 2)}  explained variance ${f(e.explainedVariance)}  MSE ${f(e.mse, 6)}  cosine ${f(e.cosineSimilarity)}`);
  console.log(`CE clean ${f(e.ceClean)}  spliced ${f(e.ceSpliced)}  zero-ablated ${f(e.ceAblated)}  CE-loss score ${f(e.ceLossScore)}`);
  console.log(`KL spliced ${f(e.klSpliced)}  ablated ${f(e.klAblated)}  KL score ${f(e.klScore)}`);
  console.log(`dead ${(100 * e.deadFraction).toFixed(2)}%  dense ${(100 * e.denseFraction).toFixed(2)}%`);
  const { edges, counts, dead } = e.densityHistogram;
  console.log(`log10 density histogram: ${counts.map((c, i) => `[${edges[i]},${edges[i + 1]}) ${c}`).join('  ')}  dead ${dead}`);
}

function evaluationJson(e: SaeEvaluation): Record<string, unknown> {
  const { density, ...rest } = e;
  return { ...rest, density: Array.from(density) };
}

function saeSourceOptions(cmd: Command): Command {
  return cmd
    .requiredOption('--sae <folder|hub-id>', 'SAE folder (SAELens: cfg.json + sae_weights.safetensors; Gemma Scope: params.npz) or Hub id')
    .option('--path <path>', 'the SAE\'s folder inside --sae (e.g. layer_6/width_16k/average_l0_71)')
    .option('--hook <name>', 'the hook the SAE reads, when its files do not say');
}

export function saeCommand(program: Command): void {
  const sae = program.command('sae').description('Sparse autoencoders: train on a model\'s activations, evaluate (L0, explained variance, CE-loss score), load SAELens / Gemma Scope SAEs, export in SAELens layout.');

  const train = sae.command('train')
    .description('Train an SAE on activations streamed from a model over a corpus (shuffle buffer, checkpoints that resume exactly, live metrics); with --harvest, the activations are first written to disk as a resumable job (in this process, or on lantern worker processes with --queue) and training reads them from there, giving the same SAE.')
    .addOption(modelOption()).addOption(revisionOption())
    .requiredOption('--hook <name>', 'hook whose activations the SAE reads, e.g. blocks.1.hook_resid_post')
    .option('--hook-out <name>', 'transcoders: the hook to predict, e.g. blocks.1.hook_mlp_out')
    .addOption(new Option('--architecture <name>', 'SAE architecture').choices(SAE_ARCHITECTURES as string[]).default('topk'))
    .addOption(new Option('--d-sae <n>', 'number of features').default(2048).argParser(positiveInt('--d-sae')))
    .addOption(new Option('--k <n>', 'topk/batchtopk: active features per token').default(32).argParser(positiveNumber('--k')))
    .addOption(new Option('--normalize <mode>', 'activation normalisation').choices(NORMALIZATIONS as string[]).default('none'))
    .option('--data <brown|file>', 'corpus: brown (bundled), a .txt, or a .jsonl/.csv/.parquet file with a text column', 'brown')
    .option('--text-column <name>', 'the text column of --data', 'text')
    .addOption(new Option('--context <n>', 'tokens per window').default(128).argParser(positiveInt('--context')))
    .addOption(new Option('--skip-positions <n>', 'leave out each window\'s first positions').default(1).argParser(nonNegativeInt('--skip-positions')))
    .addOption(new Option('--batch <n>', 'activation rows per step').default(1024).argParser(positiveInt('--batch')))
    .addOption(new Option('--steps <n>', 'optimizer steps').default(1000).argParser(positiveInt('--steps')))
    .addOption(new Option('--lr <x>', 'Adam learning rate').default(3e-4).argParser(positiveNumber('--lr')))
    .addOption(new Option('--lr-warmup <n>', 'learning-rate warm-up steps').default(0).argParser(nonNegativeInt('--lr-warmup')))
    .addOption(new Option('--lr-decay <n>', 'linear decay to 0 over the last n steps').default(0).argParser(nonNegativeInt('--lr-decay')))
    .addOption(new Option('--l1 <x>', 'standard/transcoder L1 coefficient').default(1).argParser(nonNegativeNumber('--l1')))
    .addOption(new Option('--l0 <x>', 'jumprelu L0 coefficient').default(1).argParser(nonNegativeNumber('--l0')))
    .addOption(new Option('--sparsity-warmup <n>', 'steps over which the sparsity coefficient rises from 0').default(0).argParser(nonNegativeInt('--sparsity-warmup')))
    .addOption(new Option('--aux-k <x>', 'topk/batchtopk auxiliary-k loss coefficient').default(1 / 32).argParser(nonNegativeNumber('--aux-k')))
    .addOption(new Option('--dead-window <n>', 'steps without firing after which a feature is dead').default(1000).argParser(positiveInt('--dead-window')))
    .addOption(new Option('--resample-every <n>', 'standard/jumprelu/transcoder: resample dead features every n steps (0: never)').default(0).argParser(nonNegativeInt('--resample-every')))
    .addOption(new Option('--buffer-batches <n>', 'shuffle-buffer capacity in batches').default(8).argParser(positiveInt('--buffer-batches')))
    .addOption(new Option('--seed <n>', 'seed').default(0).argParser(nonNegativeInt('--seed')))
    .requiredOption('--out <folder>', 'where to write the SAE (SAELens layout)')
    .option('--checkpoint <folder>', 'checkpoint folder (resumed from when it exists)')
    .addOption(new Option('--checkpoint-every <n>', 'steps between checkpoints').default(200).argParser(positiveInt('--checkpoint-every')))
    .option('--eval-windows <n>', 'after training, evaluate on this many held-out windows (0: skip; runs the model with the SAE spliced in, never harvested)', '16')
    .option('--harvest', 'harvest the training activations to disk as a job first (resumable; implied by --jobs-dir, --shard-size and --queue), then train from the files');
  jobOptions(train, { shardSize: 'windows of --context tokens per shard of the harvest (rounded up to whole forwards of 8; default 256)' })
    .addHelpText('after', `
Streaming (the default) runs the model between steps and needs no disk. --harvest writes every row
training will read first: (steps + buffer-batches) x batch rows, rounded up to whole forwards of 8
windows, each d_in (+ d_out for transcoders) float32s. That is rows x d x 4 bytes: 1000 steps of
4096 rows at d 768 is about 11.8 GiB. The estimate is printed before the harvest starts. An
interrupted harvest resumes, and the same model, corpus, hooks, steps, batch and buffer find the
same job (whatever the SAE's own settings). The SAE equals the streamed one bit for bit.

Examples:
  lantern sae train --hook blocks.1.hook_resid_post --architecture topk --d-sae 2048 --k 32 --steps 1500 --out sae-demo
  lantern sae train --hook blocks.1.hook_resid_post --d-sae 2048 --k 32 --steps 1500 --out sae-demo --harvest
  lantern sae train --hook blocks.1.hook_resid_post --d-sae 2048 --k 32 --steps 1500 --out sae-demo \\
    --jobs-dir /shared/jobs --queue redis://127.0.0.1:6379     (shards on: lantern worker --queue redis://127.0.0.1:6379)`)
    .action(async (opts) => {
      const model = await loadModelFromFlags(opts);
      const corpus = await loadCorpus(model, opts.data, { textColumn: opts.textColumn });
      const arch = opts.architecture as SaeArchitecture;
      if (arch === 'transcoder' && !opts.hookOut) throw new LanternError('--architecture transcoder needs --hook-out (the hook it predicts)');
      const source = new ModelSource(model, corpus.tokens, { hook: opts.hook, hookOut: arch === 'transcoder' ? opts.hookOut : undefined, context: opts.context, skipPositions: opts.skipPositions });
      const cfg: SaeConfig = {
        architecture: arch, dIn: hookWidth(model, opts.hook), dSae: opts.dSae, dOut: arch === 'transcoder' ? source.dOut : hookWidth(model, opts.hook),
        k: arch === 'topk' || arch === 'batchtopk' ? opts.k : undefined, applyBDecToInput: arch !== 'transcoder',
        normalizeActivations: opts.normalize as ActivationNormalization, hookName: opts.hook, hookNameOut: arch === 'transcoder' ? opts.hookOut : undefined, modelName: modelName(model, modelSource(opts)),
      };
      const tc = defaultTrainConfig(cfg, {
        batch: opts.batch, steps: opts.steps, lr: opts.lr, lrWarmupSteps: opts.lrWarmup, lrDecaySteps: opts.lrDecay, l1Coefficient: opts.l1, l0Coefficient: opts.l0,
        sparsityWarmupSteps: opts.sparsityWarmup, auxKCoefficient: opts.auxK, deadFeatureWindow: opts.deadWindow, resampleEvery: opts.resampleEvery, bufferBatches: opts.bufferBatches, seed: opts.seed,
      });
      const resume = opts.checkpoint && fs.existsSync(path.join(opts.checkpoint, 'state.json')) ? opts.checkpoint : undefined;
      let trainSource: ActivationSource = source;
      let harvest: string | undefined;
      if (opts.harvest || opts.jobsDir || opts.shardSize || opts.queue) {
        const dir = path.resolve(opts.jobsDir ?? defaultJobsDir());
        const job = await saeHarvestJob(dir, source, { rows: saeTrainingRows(tc), shardSize: opts.shardSize, corpus: corpus.name });
        const { rows, bytes } = saeHarvestSize(job);
        process.stderr.write(`harvest ${job.id}: ${job.dataset.examples} windows, ${rows} rows x ${source.dIn + source.dOut} floats = ${formatBytes(bytes)} in ${path.join(dir, job.id)}\n`);
        const free = fs.statfsSync(dir);
        if (free.bavail * free.bsize < bytes) process.stderr.write(`warning: ${dir} has ${formatBytes(free.bavail * free.bsize)} free, less than the harvest's ${formatBytes(bytes)} (shards already done are part of it)\n`);
        trainSource = await runAndMerge(opts, dir, job, saeHarvestAnalysis, saeHarvestContext(source, job), {});
        harvest = job.id;
      }
      const trainer = await SaeTrainer.create(cfg, tc, trainSource, { checkpoint: resume });
      if (resume) process.stderr.write(`resuming from ${resume} at step ${trainer.state.step}\n`);
      const show = progressLine(tc.steps);
      await trainer.train(async (e, t) => {
        show(e);
        if (opts.checkpoint && (e.step % opts.checkpointEvery === 0 || e.step === tc.steps)) await t.saveCheckpoint(opts.checkpoint);
      });
      const trained = await trainer.sae();
      trained.cfg.source = opts.out;
      const meta: Record<string, unknown> = { ...hubRecord(model), dataset: corpus.name, dataset_hash: corpus.hash, seed: tc.seed, context_size: opts.context, training: { ...tc }, final: trainer.state.log.at(-1), ...(harvest ? { harvest } : {}) };
      let evaluation: SaeEvaluation | undefined;
      const windows = Number(opts.evalWindows);
      if (windows > 0 && arch !== 'transcoder') {
        const heldout = opts.data === 'brown' ? (await loadCorpus(model, 'brown:heldout')).tokens : corpus.tokens;
        evaluation = await evaluateSae(model, trained, heldout, { context: opts.context, windows });
        printEvaluation(evaluation);
        const { density: _d, ...figures } = evaluation;
        meta.evaluation = figures;
      }
      saveSae(trained, opts.out, { logSparsity: evaluation ? evaluation.density.map((d) => Math.log10(d + 1e-10)) : undefined, metadata: meta });
      console.log(`saved ${opts.out}`);
    });

  saeSourceOptions(sae.command('eval'))
    .description('Evaluate an SAE spliced into a model: L0, explained variance, MSE, cosine, CE-loss and KL scores, dead/dense fractions, density histogram.')
    .addOption(modelOption()).addOption(revisionOption())
    .option('--data <brown|file>', 'corpus (default: brown:heldout, the bundled held-out split)', 'brown:heldout')
    .option('--text-column <name>', 'the text column of --data', 'text')
    .addOption(new Option('--context <n>', 'tokens per window').default(128).argParser(positiveInt('--context')))
    .addOption(new Option('--windows <n>', 'windows to evaluate').default(16).argParser(positiveInt('--windows')))
    .option('--json [file]', 'write the evaluation as JSON to <file> (or print it)')
    .action(async (opts) => {
      const model = await loadModelFromFlags(opts);
      const { sae: s } = await loadSae(opts.sae, { path: opts.path, hook: opts.hook, progress: process.stderr.isTTY });
      const corpus = await loadCorpus(model, opts.data, { textColumn: opts.textColumn });
      const e = await evaluateSae(model, s, corpus.tokens, { context: opts.context, windows: opts.windows, progress: process.stderr.isTTY ? (d, t) => process.stderr.write(`\reval ${d}/${t}${d === t ? '\n' : ''}`) : undefined });
      const saved = { model: modelSource(opts), ...hubRecord(model), method: 'sae-eval', sae: s.id, hook: s.cfg.hookName, dataset: corpus.name, dataset_hash: corpus.hash, settings: { context: opts.context, windows: opts.windows }, ...evaluationJson(e) };
      if (opts.json === true) console.log(JSON.stringify(saved, null, 2));
      else {
        printEvaluation(e);
        if (typeof opts.json === 'string') {
          fs.writeFileSync(opts.json, JSON.stringify(saved, null, 2) + '\n');
          console.log(`saved ${opts.json}`);
        }
      }
    });

  saeSourceOptions(sae.command('load'))
    .description('Load an SAE (fetching it into the Hub cache if needed) and print its configuration.')
    .option('--json', 'print the configuration as JSON')
    .action(async (opts) => {
      const { sae: s, format, logSparsity } = await loadSae(opts.sae, { path: opts.path, hook: opts.hook, progress: process.stderr.isTTY });
      const info = { format, ...s.cfg, sparsity: Boolean(logSparsity) };
      if (opts.json) console.log(JSON.stringify(info, null, 2));
      else for (const [k, v] of Object.entries(info)) if (v !== undefined) console.log(`${k}: ${v}`);
    });

  saeSourceOptions(sae.command('export'))
    .description('Write an SAE (SAELens, Gemma Scope, or Lantern) as a SAELens folder: cfg.json + sae_weights.safetensors (+ sparsity.safetensors).')
    .requiredOption('--out <folder>', 'output folder')
    .action(async (opts) => {
      const { sae: s, logSparsity } = await loadSae(opts.sae, { path: opts.path, hook: opts.hook, progress: process.stderr.isTTY });
      saveSae(s, opts.out, { logSparsity, metadata: { exported_from: s.id } });
      console.log(`saved ${opts.out}`);
    });
}
