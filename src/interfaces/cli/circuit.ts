import { Command } from 'commander';
import { LanternError } from '../../errors.js';
import { acdc, eap, Circuit, IgPath } from '../../methods/circuits/discovery.js';
import { TASK_METRIC, taskExamples, CircuitTask } from '../../methods/circuits/data.js';
import { CIRCUITS } from '../../methods/circuits/options.js';
import { checkOptionsApply, withDefaults } from '../../methods/options.js';
import { addCliOptions } from './method-options.js';
import { pathPatching, pathPatchingSweep } from '../../methods/circuits/path-patching.js';
import { circuitHtml, circuitSvg } from '../../methods/circuits/render.js';
import { addOutputOptions, assertOutputsWritable, emitOutputs } from './output.js';
import { progressBar } from './progress-bar.js';
import { hubRecord, modelOption, revisionOption, loadModelFromFlags, modelSource } from './model-option.js';

export function circuitCommand(program: Command): void {
  const cmd = program
    .command('circuit')
    .description('Circuit discovery over the graph of attention heads and MLPs: ACDC (prune edges by a KL threshold), EAP (edge attribution patching, integrated gradients by default); or path patching of chosen paths.')
    .addOption(modelOption('Hugging Face model folder or Hub id (default: the bundled model)')).addOption(revisionOption());
  addCliOptions(cmd, CIRCUITS);
  addOutputOptions(cmd, 'write the circuit as an HTML page (graph and edge table)')
    .option('--svg <file>', 'write the circuit graph as SVG')
    .addHelpText('after', '\nExamples:\n  lantern make-planted induction /tmp/induction\n  lantern circuit --model /tmp/induction --task induction --method acdc --threshold 0.1 --html circuit.html\n  lantern circuit --model /tmp/induction --task induction --method path --sender L0H2')
    .action(async (given) => {
      checkOptionsApply(CIRCUITS.options, (k) => given[k], 'cli');
      const opts = withDefaults(CIRCUITS, given);
      const source = modelSource(opts);
      assertOutputsWritable(opts, ['html', 'svg']);
      if (opts.method === 'path' && !opts.sender && !opts.path) throw new LanternError('--method path needs --sender <node> or --path <sender,receiver,...>');
      const model = await loadModelFromFlags(opts);
      const task = opts.task as CircuitTask;
      const examples = taskExamples(model, task, opts.n, opts.seed);
      const metric = TASK_METRIC[task];
      const settings = { task, n: opts.n, seed: opts.seed, metric };

      if (opts.method === 'path') {
        if (opts.html || opts.svg) throw new LanternError('--html and --svg draw circuits; path patching prints a table (or --json)');
        const r = opts.path
          ? await pathPatching(model, [String(opts.path).split(',').map((s: string) => s.trim())], { examples, metric })
          : await pathPatchingSweep(model, opts.sender, { examples, metric });
        const saved = { model: source, ...hubRecord(model), ...r, settings: { ...settings, ...r.settings, ...(opts.path ? { path: opts.path } : { sender: opts.sender }) } };
        return emitOutputs(opts, saved, {}, () => {
          console.log(`model: ${source}`);
          console.log(`path patching, task ${task} (${opts.n} examples), metric ${metric}: clean ${r.clean.toFixed(4)}, corrupted ${r.corrupt.toFixed(4)}; effect = (patched - clean) / (corrupted - clean)`);
          const w = Math.max(...r.paths.map((p) => p.path.join(' -> ').length));
          for (const p of r.paths) console.log(`${p.path.join(' -> ').padEnd(w)}  ${(p.effect >= 0 ? '+' : '') + p.effect.toFixed(3)}  KL ${p.kl.toFixed(4)}`);
        });
      }

      const bar = progressBar(opts.method, 'runs');
      const common = { examples, metric, threshold: opts.threshold, progress: bar.update };
      let c: Circuit;
      try {
        c = opts.method === 'acdc' ? await acdc(model, common) : await eap(model, { ...common, igSteps: opts.igSteps, igPath: opts.igPath as IgPath });
      } finally {
        bar.stop();
      }
      const saved = { ...c, model: source, ...hubRecord(model), settings: { ...settings, ...c.settings, method: opts.method } };
      const title = `${c.method.toUpperCase()} circuit — ${task} — ${source}`;
      const pages = {
        html: () => circuitHtml(c, model.cfg.nLayers, model.cfg.nHeads, title),
        svg: () => circuitSvg(c, model.cfg.nLayers, model.cfg.nHeads),
      };
      emitOutputs(opts, saved, pages, () => {
        console.log(`model: ${source}`);
        console.log(`${c.method} on ${task} (${opts.n} examples, seed ${opts.seed}), threshold ${c.threshold}: ${c.edges.length} of ${c.totalEdges} edges, ${c.runs} runs`);
        console.log(`metric ${metric}: clean ${c.clean.toFixed(4)}, corrupted ${c.corrupt.toFixed(4)}, circuit only ${c.circuitMetric.toFixed(4)} (faithfulness ${c.faithfulness.toFixed(3)}); KL(clean || circuit) ${c.circuitKl.toFixed(4)}`);
        for (const e of c.edges) console.log(`  ${e.sender} -> ${e.receiver}  ${c.method === 'acdc' ? 'KL +' : 'score '}${e.score.toFixed(4)}`);
      });
    });
}
