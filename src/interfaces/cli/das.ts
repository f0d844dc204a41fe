import { Command } from 'commander';
import { LanternError } from '../../errors.js';
import { sampleExamples } from '../../methods/causal-abstraction/iia.js';
import { dasSearch, iiaHeatmapHtml, iiaHeatmapSvg, saveSubspace } from '../../methods/causal-abstraction/search.js';
import { addOutputOptions, assertOutputsWritable, assertWritable, emitOutputs } from './output.js';
import { hubRecord, loadModelFromFlags, modelOption, modelSource, revisionOption } from './model-option.js';
import { loadTaskFile, parseCount, parseIntList } from './causal-task-option.js';

export function dasCommand(program: Command): void {
  const cmd = program
    .command('das')
    .description('Distributed alignment search: learn an orthogonal subspace whose interchange realises a high-level variable, at every --hooks x --positions location; held-out IIA per location (--boundless: learn the subspace size too).')
    .addOption(modelOption()).addOption(revisionOption())
    .requiredOption('--task <file>', 'alignment task JSON: causalModel, prompt or promptTokens, answers, inputs')
    .requiredOption('--variable <name>', 'the high-level variable to find')
    .option('--hooks <list>', "hooks to search, comma-separated; {l} stands for every layer (e.g. 'blocks.{l}.hook_resid_pre')", 'blocks.{l}.hook_resid_pre')
    .option('--positions <list>', 'positions to search, negative from the end', '-1')
    .option('--head <h>', 'head, for per-head hooks')
    .option('-k, --k <dims>', 'dimensions interchanged (Boundless: the most it may use)', '1')
    .option('--boundless', 'Boundless DAS: learn how many dimensions with an annealed soft boundary')
    .option('--init <kind>', "starting frame: 'pca' (principal directions of source - base) or 'random'", 'pca')
    .option('--epochs <n>', 'passes over the training pairs', '20')
    .option('--lr <rate>', 'Adam learning rate', '0.02')
    .option('--train <n>', 'training pairs', '256')
    .option('--test <n>', 'held-out pairs', '128')
    .option('--seed <n>', 'seed of the pairs and the starting frame', '0')
    .option('--save <file>', 'save the best location\'s subspace as safetensors (basis [k, dim]), reusable as a probe, steering direction or --subspace')
    .option('--svg <file>', 'write the IIA heatmap as SVG');
  addOutputOptions(cmd, 'write an HTML page with the IIA heatmap and table')
    .addHelpText('after', '\nExample:\n  lantern das --model ./ioi --task ioi-task.json --variable S --hooks "blocks.{l}.hook_resid_pre" --positions -1,-4 -k 4 --save s.safetensors --html das.html')
    .action(async (opts) => {
      assertOutputsWritable(opts, ['html', 'svg']);
      if (opts.save) assertWritable(opts.save, '--save');
      const positions = parseIntList(opts.positions, '--positions');
      const seed = Number(opts.seed);
      if (!Number.isInteger(seed)) throw new LanternError(`--seed must be an integer, got '${opts.seed}'`);
      const lr = Number(opts.lr);
      if (!(lr > 0)) throw new LanternError(`--lr must be a positive number, got '${opts.lr}'`);
      const model = await loadModelFromFlags(opts);
      const hooks = String(opts.hooks).split(',').map((s) => s.trim()).filter(Boolean)
        .flatMap((h) => (h.includes('{l}') ? Array.from({ length: model.cfg.nLayers }, (_, l) => h.replaceAll('{l}', String(l))) : [h]));
      const { task, inputs } = loadTaskFile(model, opts.task);
      task.causalModel.checkVariable(opts.variable);
      const variables = [opts.variable];
      const train = sampleExamples(task.causalModel, inputs, parseCount(opts.train, '--train'), { variables, seed, changing: true });
      const test = sampleExamples(task.causalModel, inputs, parseCount(opts.test, '--test'), { variables, seed: seed + 1, changing: true });
      const r = await dasSearch(model, {
        task, variable: opts.variable, hooks, positions, head: opts.head === undefined ? undefined : Number(opts.head),
        k: parseCount(opts.k, '--k'), boundless: Boolean(opts.boundless), init: opts.init, epochs: parseCount(opts.epochs, '--epochs'), lr, train, test, seed,
        onProgress: (done, total, last) => { if (process.stderr.isTTY) process.stderr.write(`\r${done}/${total} locations (last: ${last.location.hook} @ ${last.location.position}, IIA ${last.iia.toFixed(2)})`); },
      });
      if (process.stderr.isTTY) process.stderr.write('\n');
      if (opts.save) saveSubspace(opts.save, r.best);
      const { subspace, losses, ...best } = r.best;
      const saved = {
        model: modelSource(opts), ...hubRecord(model), method: r.best.method, variable: r.variable,
        settings: { task: opts.task, hooks, positions, head: opts.head ?? null, ...r.best.settings },
        iia: { hooks, positions, table: r.iia, k: r.k },
        best: { ...best, subspace: opts.save ? { file: opts.save, k: subspace.k, dim: subspace.dim } : { k: subspace.k, dim: subspace.dim, basis: Array.from(subspace.basis) }, finalLoss: losses[losses.length - 1] },
        seed,
      };
      emitOutputs(opts, saved, { html: () => iiaHeatmapHtml(r), svg: () => iiaHeatmapSvg(r) }, () => {
        const w = Math.max(...hooks.map((h) => h.length));
        console.log(`${'held-out IIA'.padEnd(w)}  ${positions.map((p) => String(p).padStart(6)).join('')}`);
        hooks.forEach((h, i) => console.log(`${h.padEnd(w)}  ${r.iia[i].map((v) => v.toFixed(2).padStart(6)).join('')}`));
        console.log(`best: ${r.best.location.hook} @ ${r.best.location.position}: IIA ${r.best.iia.toFixed(3)} with ${r.best.k} dimensions (rotation orthogonal to ${r.best.orthogonality.toExponential(1)})`);
        if (opts.save) console.log(`saved subspace to ${opts.save}`);
      });
    });
}
