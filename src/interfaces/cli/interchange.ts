import { Command } from 'commander';
import { interchangeAccuracy, sampleExamples } from '../../methods/causal-abstraction/iia.js';
import { loadSubspace } from '../../methods/causal-abstraction/search.js';
import { LanternError } from '../../errors.js';
import { assertOutputsWritable, emitOutputs } from './output.js';
import { hubRecord, loadModelFromFlags, modelOption, modelSource, revisionOption } from './model-option.js';
import { loadTaskFile, parseCount, parseIntList } from './causal-task-option.js';

export function interchangeCommand(program: Command): void {
  program
    .command('interchange')
    .description('Interchange interventions: run base inputs with activations at --hook (whole, or within a --subspace) taken from source inputs, and score IIA against the task\'s causal model with --variables interchanged.')
    .addOption(modelOption()).addOption(revisionOption())
    .requiredOption('--task <file>', 'alignment task JSON: causalModel, prompt or promptTokens, answers, inputs')
    .requiredOption('--variables <names>', 'high-level variables interchanged, comma-separated; source j feeds variable j')
    .requiredOption('--hook <name>', 'hook to intervene at (e.g. blocks.1.hook_resid_pre; per-head hooks take --heads)')
    .option('--positions <list>', 'positions interchanged, negative from the end', '-1')
    .option('--heads <list>', 'heads (per-head hooks only)')
    .option('--subspace <file[:tensor]>', 'interchange only within this subspace: a safetensors tensor [k, dim] or one direction [dim] (default tensor: basis, as lantern das --save writes)')
    .option('--source <j>', 'which source (variable) the intervention reads', '0')
    .option('-n, --n <count>', 'base/source pairs drawn from the task inputs', '200')
    .option('--seed <n>', 'seed of the pairs drawn', '0')
    .option('--batch-size <n>', 'pairs per model run', '64')
    .option('--json [file]', 'write the result as JSON to <file> (or print it when no file is given)')
    .addHelpText('after', '\nExample:\n  lantern interchange --model ./ioi --task ioi-task.json --variables S --hook blocks.1.hook_resid_pre --positions -1')
    .action(async (opts) => {
      assertOutputsWritable(opts, []);
      const variables = String(opts.variables).split(',').map((s) => s.trim()).filter(Boolean);
      const positions = parseIntList(opts.positions, '--positions');
      const heads = opts.heads ? parseIntList(opts.heads, '--heads') : undefined;
      const n = parseCount(opts.n, '--n');
      const seed = Number(opts.seed);
      if (!Number.isInteger(seed)) throw new LanternError(`--seed must be an integer, got '${opts.seed}'`);
      const source = Number(opts.source);
      const [subspaceFile, subspaceTensor] = opts.subspace ? /^(.*?)(?::([^:/\\]+))?$/.exec(opts.subspace)!.slice(1) : [];
      const subspace = subspaceFile ? loadSubspace(subspaceFile, subspaceTensor).subspace : undefined;
      const model = await loadModelFromFlags(opts);
      const { task, inputs } = loadTaskFile(model, opts.task);
      variables.forEach((v) => task.causalModel.checkVariable(v));
      const examples = sampleExamples(task.causalModel, inputs, n, { variables, seed, changing: true });
      const interventions = [{ hook: opts.hook, positions, heads, subspace, source }];
      const r = await interchangeAccuracy(model, { task, examples, variables, interventions, batchSize: parseCount(opts.batchSize, '--batch-size') });
      const saved = {
        model: modelSource(opts), ...hubRecord(model), method: 'interchange-intervention-accuracy',
        settings: { task: opts.task, variables, hook: opts.hook, positions, heads: heads ?? null, subspace: opts.subspace ?? null, source, n, seed },
        iia: r.iia, changed: r.changed, n: r.n, predictions: r.predictions, counterfactuals: r.counterfactuals, baseAnswers: r.baseAnswers, examples,
      };
      emitOutputs(opts, saved, {}, () => {
        console.log(`IIA ${r.iia.toFixed(3)} over ${r.n} pairs (${r.changed} whose counterfactual answer differs from the base's), interchanging ${variables.join(', ')} at ${opts.hook} positions ${positions.join(',')}${subspace ? ` within a ${subspace.k}-dimensional subspace` : ''}`);
      });
    });
}
