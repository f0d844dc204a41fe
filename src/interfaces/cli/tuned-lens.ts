import fs from 'node:fs';
import path from 'node:path';
import { Command, Option } from 'commander';
import { tokenizeSplits } from '../../data/brown.js';
import { collectResiduals, evaluateLens, loadTunedLens, saveTunedLens, trainTunedLens, tunedLensPath, LensEvaluation } from '../../methods/lens/tuned-lens.js';
import { nonNegativeInt, positiveInt, positiveNumber } from './forward.js';
import { assertWritable } from './output.js';
import { hubRecord, modelOption, revisionOption, loadModelFromFlags, modelSource } from './model-option.js';

export function printEvaluation(ev: LensEvaluation): void {
  console.log(`held-out: ${ev.tokens} tokens; KL(final || lens) in nats and perplexity of the actual next token, per layer`);
  console.log(`${'layer'.padEnd(11)} ${'KL logit'.padStart(10)} ${'KL tuned'.padStart(10)} ${'ppl logit'.padStart(12)} ${'ppl tuned'.padStart(12)}`);
  ev.layers.forEach((label, l) => {
    const ppl = (x: number) => (x < 1e6 ? x.toFixed(1) : x.toExponential(2)).padStart(12);
    console.log(`${label.padEnd(11)} ${ev.logitLens.kl[l].toFixed(4).padStart(10)} ${ev.tunedLens.kl[l].toFixed(4).padStart(10)} ${ppl(ev.logitLens.perplexity[l])} ${ppl(ev.tunedLens.perplexity[l])}`);
  });
}

export function tunedLensCommand(program: Command): void {
  const cmd = program.command('tuned-lens').description('Tuned lens: train one affine translator per layer on Brown corpus text (KL to the final distribution), and compare it with the logit lens on held-out text.');
  cmd
    .command('train')
    .description('Train a tuned lens for a model and save it next to the model (tuned-lens.safetensors), then evaluate it on held-out Brown text.')
    .addOption(modelOption('model folder (default: the bundled model)')).addOption(revisionOption())
    .addOption(new Option('--steps <n>', 'optimizer steps').default(100).argParser(positiveInt('--steps')))
    .addOption(new Option('--tokens-per-step <n>', 'token positions per step').default(128).argParser(positiveInt('--tokens-per-step')))
    .addOption(new Option('--train-tokens <n>', 'Brown training tokens whose residual streams are sampled').default(8192).argParser(positiveInt('--train-tokens')))
    .addOption(new Option('--heldout-tokens <n>', 'held-out Brown tokens for the evaluation').default(1024).argParser(positiveInt('--heldout-tokens')))
    .addOption(new Option('--lr <x>', 'Adam learning rate (cosine decay)').default(2e-3).argParser(positiveNumber('--lr')))
    .addOption(new Option('--seed <n>', 'seed').default(0).argParser(nonNegativeInt('--seed')))
    .option('--out <file>', 'where to save (default: <model>/tuned-lens.safetensors)')
    .option('--json <file>', 'write the settings and per-layer figures as JSON')
    .action(async (opts) => {
      const source = modelSource(opts);
      const out = opts.out ?? tunedLensPath(source);
      assertWritable(out, '--out');
      if (opts.json) assertWritable(opts.json, '--json');
      const model = await loadModelFromFlags(opts);
      const log = (s: string) => process.stderr.write(s);
      const splits = tokenizeSplits({ log: (l) => log(`${l}\n`) });
      log('collecting residual streams...\n');
      const train = await collectResiduals(model, splits.train, { maxTokens: opts.trainTokens });
      const held = await collectResiduals(model, splits.heldout, { maxTokens: opts.heldoutTokens });
      const t0 = Date.now();
      const lens = await trainTunedLens(model, train, {
        steps: opts.steps, tokensPerStep: opts.tokensPerStep, lr: opts.lr, seed: opts.seed,
        progress: (s, n, loss) => log(`\rstep ${s}/${n}  KL summed over layers ${loss.toFixed(4)}  ${((Date.now() - t0) / 1000).toFixed(0)} s${s === n ? '\n' : ''}`),
      });
      const ev = await evaluateLens(model, lens, held);
      lens.metadata = { ...lens.metadata, model: path.basename(path.resolve(source)), train_tokens: String(train.n), heldout_tokens: String(ev.tokens), heldout_kl_logit: JSON.stringify(ev.logitLens.kl), heldout_kl_tuned: JSON.stringify(ev.tunedLens.kl) };
      saveTunedLens(out, lens);
      if (opts.json) fs.writeFileSync(opts.json, JSON.stringify({ model: source, ...hubRecord(model), method: 'tuned-lens', settings: { steps: opts.steps, tokensPerStep: opts.tokensPerStep, trainTokens: train.n, heldoutTokens: opts.heldoutTokens, lr: opts.lr, seed: opts.seed, data: 'Brown corpus' }, evaluation: ev }, null, 2) + '\n');
      console.log(`model: ${source}`);
      printEvaluation(ev);
      console.log(`saved the tuned lens to ${out}`);
    });
  cmd
    .command('eval')
    .description('Per-layer KL and perplexity of the logit lens and a saved tuned lens on held-out Brown text.')
    .addOption(modelOption('model folder (default: the bundled model)')).addOption(revisionOption())
    .option('--lens <file>', 'the tuned lens (default: <model>/tuned-lens.safetensors)')
    .addOption(new Option('--heldout-tokens <n>', 'held-out Brown tokens').default(1024).argParser(positiveInt('--heldout-tokens')))
    .option('--json', 'print the figures as JSON')
    .action(async (opts) => {
      const source = modelSource(opts);
      const model = await loadModelFromFlags(opts);
      const lens = loadTunedLens(opts.lens ?? source, model);
      const held = await collectResiduals(model, tokenizeSplits().heldout, { maxTokens: opts.heldoutTokens });
      const ev = await evaluateLens(model, lens, held);
      if (opts.json) return console.log(JSON.stringify({ model: source, ...hubRecord(model), method: 'tuned-lens-eval', settings: { heldoutTokens: opts.heldoutTokens, lens: opts.lens ?? tunedLensPath(source) }, evaluation: ev }, null, 2));
      console.log(`model: ${source}`);
      printEvaluation(ev);
    });
}
