import { Command } from 'commander';
import { LanternError } from '../../errors.js';
import { causalScrub, Hypothesis } from '../../methods/causal-abstraction/scrubbing.js';
import { assertOutputsWritable, emitOutputs } from './output.js';
import { hubRecord, loadModelFromFlags, modelOption, modelSource, revisionOption } from './model-option.js';
import { loadTaskFile, parseCount, readJsonFile } from './causal-task-option.js';

export function scrubCommand(program: Command): void {
  program
    .command('scrub')
    .description('Causal scrubbing: resample everything a hypothesis says does not matter (inputs resampled consistently with it) and report the fraction of the loss it recovers between the clean model (1) and full resampling (0).')
    .addOption(modelOption()).addOption(revisionOption())
    .requiredOption('--task <file>', 'alignment task JSON: causalModel, prompt or promptTokens, answers, inputs')
    .requiredOption('--hypothesis <file>', 'hypothesis JSON: {"nodes": {"S": {"components": ["L0H1"], "parents": ["input"]}, ...}, "output": {"parents": [...]}}')
    .option('-n, --n <count>', 'base inputs scored (the first n of the task inputs; all are resampled from)', '100')
    .option('--seed <n>', 'seed of the resampling', '0')
    .option('--json [file]', 'write the result as JSON to <file> (or print it when no file is given)')
    .addHelpText('after', '\nComponents: L{layer}H{head} (an attention head), L{layer}.mlp. Parents: other variables of the hypothesis, or "input" (the token embeddings).\n\nExample:\n  lantern scrub --model ./ioi --task ioi-task.json --hypothesis ioi-hypothesis.json')
    .action(async (opts) => {
      assertOutputsWritable(opts, []);
      const hypothesis = readJsonFile(opts.hypothesis, '--hypothesis') as Hypothesis;
      const seed = Number(opts.seed);
      if (!Number.isInteger(seed)) throw new LanternError(`--seed must be an integer, got '${opts.seed}'`);
      const n = parseCount(opts.n, '--n');
      const model = await loadModelFromFlags(opts);
      const { task, inputs } = loadTaskFile(model, opts.task);
      const r = await causalScrub(model, { task, hypothesis, inputs: inputs.slice(0, n), pool: inputs, seed });
      const saved = { model: modelSource(opts), ...hubRecord(model), ...r, settings: { task: opts.task, hypothesis: opts.hypothesis, n: r.n, seed } };
      emitOutputs(opts, saved, {}, () => {
        console.log(`loss recovered: ${r.recovered.toFixed(3)} (clean ${r.clean.toFixed(3)}, scrubbed ${r.scrubbed.toFixed(3)}, fully resampled ${r.random.toFixed(3)}; ${r.n} inputs)`);
      });
    });
}
