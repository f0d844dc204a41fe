import fs from 'node:fs';
import path from 'node:path';
import { Command, Option } from 'commander';
import { LanternError } from '../../errors.js';
import { lineChartSvg } from '../../report/plot.js';
import {
  decayingImportance, phaseDiagram, superpositionRun, SuperpositionAnalysis, PhaseCell,
} from '../../methods/toys/superposition.js';
import {
  analyseGrokking, GROKKING_DEFAULTS, GrokkingSettings, grokkingProgress, readGrokkingCheckpoint, readGrokkingRun, trainGrokking,
  loadGrokkingParams, GrokkingAnalysis, GrokkingProgressPoint, GrokkingCurvePoint,
} from '../../methods/toys/grokking.js';
import { groupByName, trainUniversality } from '../../methods/toys/universality.js';
import { dimensionalitySvg, featureNormsSvg, matrixHeatmapSvg, phaseDiagramSvg, sharesSvg } from '../../methods/toys/plots.js';
import { nonNegativeInt, positiveInt } from './forward.js';
import { assertWritable } from './output.js';

const number = (flag: string, ok: (x: number) => boolean, what: string) => (v: string): number => {
  const x = Number(v);
  if (!Number.isFinite(x) || !ok(x)) throw new LanternError(`${flag} must be ${what}, got '${v}'`);
  return x;
};
const positive = (flag: string) => number(flag, (x) => x > 0, 'a positive number');
const fraction = (flag: string) => number(flag, (x) => x > 0 && x < 1, 'in (0, 1)');
const numberList = (flag: string, ok: (x: number) => boolean, what: string) => (v: string): number[] => v.split(',').map((s) => number(flag, ok, what)(s.trim()));

const progressLine = (label: string) => (process.stderr.isTTY ? (step: number, loss: number) => process.stderr.write(`\r${label} step ${step} loss ${loss.toPrecision(4)}   `) : undefined);
const endProgress = () => { if (process.stderr.isTTY) process.stderr.write('\n'); };

/** Writes `files` (name -> SVG) into `folder`, creating it. */
async function writePlots(folder: string, files: Record<string, () => Promise<string>>): Promise<void> {
  fs.mkdirSync(folder, { recursive: true });
  for (const [name, svg] of Object.entries(files)) fs.writeFileSync(path.join(folder, name), await svg());
  console.log(`saved ${Object.keys(files).length} plots to ${folder}`);
}

function writeJson(opt: unknown, result: unknown): void {
  if (opt === true) console.log(JSON.stringify(result, null, 2));
  else if (typeof opt === 'string') {
    fs.writeFileSync(opt, JSON.stringify(result, null, 2) + '\n');
    console.log(`saved JSON to ${opt}`);
  }
}

function superpositionCommand(toy: Command): void {
  toy.command('superposition')
    .description('Train the ReLU output toy model of superposition (n sparse features in m dimensions) and report its feature geometry; or the n = 2, m = 1 phase diagram.')
    .addOption(new Option('--features <n>', 'features n').default(5).argParser(positiveInt('--features')))
    .addOption(new Option('--dims <m>', 'hidden dimensions m').default(2).argParser(positiveInt('--dims')))
    .addOption(new Option('--sparsity <list>', 'comma-separated sparsities S in [0, 1); each is trained').default([0.9]).argParser(numberList('--sparsity', (x) => x >= 0 && x < 1, 'in [0, 1)')))
    .addOption(new Option('--importance-decay <x>', 'feature i has importance x^i').default(1).argParser(positive('--importance-decay')))
    .addOption(new Option('--restarts <n>', 'initialisations per setting; the lowest loss is kept').default(4).argParser(positiveInt('--restarts')))
    .addOption(new Option('--steps <n>', 'training steps').default(3000).argParser(positiveInt('--steps')))
    .addOption(new Option('--batch <n>', 'examples per step').default(1024).argParser(positiveInt('--batch')))
    .addOption(new Option('--lr <x>', 'AdamW learning rate').default(1e-3).argParser(positive('--lr')))
    .addOption(new Option('--seed <n>', 'seed of initialisation and data').default(0).argParser(nonNegativeInt('--seed')))
    .option('--phase-diagram', 'instead: two features in one dimension over sparsity × relative importance')
    .option('--plots <folder>', 'write SVG plots (WᵀW, feature norms, dimensionality; or the phase diagram)')
    .option('--json [file]', 'write the result as JSON to <file> (or print it)')
    .addHelpText('after', '\nExamples:\n  lantern toy superposition --features 5 --dims 2 --sparsity 0.9 --plots /tmp/sp\n  lantern toy superposition --phase-diagram --plots /tmp/phase')
    .action(async (o) => {
      if (typeof o.json === 'string') assertWritable(o.json, '--json');
      if (o.phaseDiagram) {
        const settings = {
          sparsities: [0, 0.5, 0.8, 0.9, 0.95, 0.98, 0.99], relativeImportances: [0.25, 0.5, 0.8, 1, 1.25, 2, 4],
          restarts: o.restarts, batch: o.batch, steps: o.steps, lr: o.lr, seed: o.seed,
        };
        const cells: PhaseCell[] = await phaseDiagram(settings, progressLine('phase diagram'));
        endProgress();
        if (o.json !== true) {
          for (const r of settings.relativeImportances.slice().reverse()) {
            console.log(`importance ${r.toFixed(2).padStart(5)}  ${settings.sparsities.map((s) => ({ 'first only': '1', 'second only': '2', superposition: 'S', neither: '.' })[cells.find((c) => c.sparsity === s && c.relativeImportance === r)!.phase]).join(' ')}`);
          }
          console.log(`sparsity          ${settings.sparsities.join(' ')}  (1: first only, 2: second only, S: superposition)`);
        }
        if (o.plots) await writePlots(o.plots, { 'phase-diagram.svg': () => phaseDiagramSvg(cells) });
        writeJson(o.json, { method: 'toy-superposition-phase-diagram', settings, seed: o.seed, cells });
        return;
      }
      if (o.dims >= o.features) console.error(`note: --dims ${o.dims} ≥ --features ${o.features}: every feature can have its own dimension`);
      const results: (SuperpositionAnalysis & { restartLosses: number[] })[] = [];
      for (const sparsity of o.sparsity as number[]) {
        const s = { features: o.features, dims: o.dims, sparsity, importanceDecay: o.importanceDecay, restarts: o.restarts, batch: o.batch, steps: o.steps, lr: o.lr, seed: o.seed };
        const { best, restartLosses } = await superpositionRun(s, progressLine(`S=${sparsity}`));
        endProgress();
        results.push({ ...best, restartLosses });
        if (o.json !== true) {
          console.log(`sparsity ${sparsity}: loss ${best.loss.toPrecision(4)}, ${best.dimsPerFeature.toFixed(3)} dimensions per feature`);
          best.norms.forEach((n, i) => console.log(`  feature ${i}: ‖W‖ ${n.toFixed(3)}  D ${best.featureDimensionality[i].toFixed(3)}  superposition ${best.superposition[i].toFixed(3)}  most opposed cos ${best.minCosine[i].toFixed(3)}`));
        }
      }
      if (o.plots) {
        const files: Record<string, () => Promise<string>> = {};
        for (const r of results) {
          files[`wtw-S${r.sparsity}.svg`] = () => matrixHeatmapSvg(r.gram, { title: `WᵀW at sparsity ${r.sparsity}` });
          files[`norms-S${r.sparsity}.svg`] = () => featureNormsSvg(r, `Feature norms at sparsity ${r.sparsity}`);
        }
        files['dimensionality.svg'] = () => dimensionalitySvg(results, `Dimensions per feature (n = ${o.features}, m = ${o.dims})`);
        await writePlots(o.plots, files);
      }
      writeJson(o.json, {
        method: 'toy-superposition', seed: o.seed,
        settings: { features: o.features, dims: o.dims, sparsities: o.sparsity, importance: decayingImportance(o.features, o.importanceDecay), restarts: o.restarts, steps: o.steps, batch: o.batch, lr: o.lr },
        results,
      });
    });
}

/** Curves of a run and, with checkpoints, its progress measures. */
function grokkingPlots(curves: GrokkingCurvePoint[], progress: GrokkingProgressPoint[] | undefined, a: GrokkingAnalysis): Record<string, () => Promise<string>> {
  const files: Record<string, () => Promise<string>> = {
    'embedding-frequencies.svg': () => sharesSvg(a.embeddingShares.map((share, i) => ({ name: String(i + 1), share, key: a.keyFrequencies.includes(i + 1) })), { title: 'Token embedding by Fourier frequency', xLabel: 'frequency k' }),
    'neuron-frequencies.svg': () => sharesSvg(
      a.keyFrequencies.map((k) => ({ name: String(k), share: a.neurons.filter((n) => n.frequency === k && n.explained >= 0.5).length / a.neurons.length, key: true })),
      { title: 'Neurons mostly explained by each key frequency', xLabel: 'frequency k' }),
  };
  if (curves.length) {
    files['curves.svg'] = () => lineChartSvg([
      { name: 'train loss', points: curves.map((c) => ({ x: c.step, y: Math.max(c.trainLoss, 1e-8) })) },
      { name: 'test loss', points: curves.map((c) => ({ x: c.step, y: Math.max(c.testLoss, 1e-8) })) },
    ], { title: 'Grokking: loss over training', xLabel: 'step', yLabel: 'cross-entropy', yScale: 'log' });
    files['accuracy.svg'] = () => lineChartSvg([
      { name: 'train accuracy', points: curves.map((c) => ({ x: c.step, y: c.trainAccuracy })) },
      { name: 'test accuracy', points: curves.map((c) => ({ x: c.step, y: c.testAccuracy })) },
    ], { title: 'Grokking: accuracy over training', xLabel: 'step', yLabel: 'accuracy' });
  }
  if (progress?.length) {
    files['progress.svg'] = () => lineChartSvg([
      { name: 'test loss', points: progress.map((c) => ({ x: c.step, y: Math.max(c.testLoss, 1e-8) })), markers: true },
      { name: 'restricted loss', points: progress.map((c) => ({ x: c.step, y: Math.max(c.restrictedLoss, 1e-8) })), markers: true },
      { name: 'excluded loss', points: progress.map((c) => ({ x: c.step, y: Math.max(c.excludedLoss, 1e-8) })), markers: true },
    ], { title: 'Progress measures (final key frequencies)', xLabel: 'step', yLabel: 'cross-entropy', yScale: 'log' });
  }
  return files;
}

function printGrokking(a: GrokkingAnalysis): void {
  console.log(`train accuracy ${(100 * a.trainAccuracy).toFixed(2)}%, test accuracy ${(100 * a.testAccuracy).toFixed(2)}% (test loss ${a.testLoss.toPrecision(3)})`);
  console.log(`key frequencies ${a.keyFrequencies.join(', ')}: ${(100 * a.keyShare).toFixed(1)}% of the embedding's norm`);
  console.log(`neurons per key frequency: ${Object.entries(a.neuronsPerKeyFrequency).map(([k, n]) => `${k}: ${n}`).join(', ')}; ${(100 * a.neuronsExplainedByKeys).toFixed(1)}% of active neurons mostly explained by one key frequency`);
  console.log(`restricted loss ${a.restrictedLoss.toPrecision(3)}, excluded loss ${a.excludedLoss.toPrecision(3)}`);
}

function grokkingCommand(toy: Command): void {
  const d = GROKKING_DEFAULTS;
  toy.command('grokking')
    .description('Train a one-layer transformer on (a + b) mod p until it groks (--out), or analyse a run folder or checkpoint (--analyse): key Fourier frequencies of embeddings and neurons, restricted and excluded loss, curves.')
    .option('--out <folder>', 'train a run into this folder (checkpoints/, final.safetensors, run.json)')
    .option('--analyse <path>', 'analyse a run folder (curves and progress over its checkpoints) or one checkpoint file')
    .addOption(new Option('--p <n>', 'the prime modulus').default(d.p).argParser(positiveInt('--p')))
    .addOption(new Option('--train-fraction <x>', 'share of pairs trained on').default(d.trainFraction).argParser(fraction('--train-fraction')))
    .addOption(new Option('--d-model <n>', 'residual width').default(d.dModel).argParser(positiveInt('--d-model')))
    .addOption(new Option('--heads <n>', 'attention heads').default(d.nHeads).argParser(positiveInt('--heads')))
    .addOption(new Option('--d-head <n>', 'head width').default(d.dHead).argParser(positiveInt('--d-head')))
    .addOption(new Option('--d-mlp <n>', 'MLP neurons').default(d.dMlp).argParser(positiveInt('--d-mlp')))
    .addOption(new Option('--steps <n>', 'most full-batch steps').default(d.steps).argParser(positiveInt('--steps')))
    .addOption(new Option('--lr <x>', 'AdamW learning rate').default(d.lr).argParser(positive('--lr')))
    .addOption(new Option('--weight-decay <x>', 'AdamW weight decay').default(d.weightDecay).argParser(number('--weight-decay', (x) => x >= 0, '≥ 0')))
    .addOption(new Option('--seed <n>', 'seed of initialisation and split').default(d.seed).argParser(nonNegativeInt('--seed')))
    .addOption(new Option('--eval-every <n>', 'steps between evaluations').default(d.evalEvery).argParser(positiveInt('--eval-every')))
    .addOption(new Option('--checkpoint-every <n>', 'steps between checkpoints (0: final only)').default(d.checkpointEvery).argParser(nonNegativeInt('--checkpoint-every')))
    .addOption(new Option('--stop-at <x>', 'stop once test accuracy reaches this').default(1).argParser(number('--stop-at', (x) => x > 0 && x <= 1, 'in (0, 1]')))
    .option('--plots <folder>', 'write SVG plots (curves, progress measures, frequencies)')
    .option('--json [file]', 'write the analysis as JSON to <file> (or print it)')
    .addHelpText('after', '\nExamples:\n  lantern toy grokking --out runs/grok --lr 3e-3 --checkpoint-every 500 --stop-at 0.995\n  lantern toy grokking --analyse fixtures/toys/grokking-p113.safetensors --plots /tmp/grok')
    .action(async (o) => {
      if (!o.out === !o.analyse) throw new LanternError('give either --out <folder> (train) or --analyse <run folder | checkpoint>');
      if (typeof o.json === 'string') assertWritable(o.json, '--json');
      let settings: GrokkingSettings;
      let curves: GrokkingCurvePoint[] = [];
      let progress: GrokkingProgressPoint[] | undefined;
      let source: string;
      if (o.out) {
        settings = {
          p: o.p, trainFraction: o.trainFraction, dModel: o.dModel, nHeads: o.heads, dHead: o.dHead, dMlp: o.dMlp, steps: o.steps,
          lr: o.lr, weightDecay: o.weightDecay, beta1: d.beta1, beta2: d.beta2, seed: o.seed, evalEvery: o.evalEvery,
          checkpointEvery: o.checkpointEvery, stopAtTestAccuracy: o.stopAt,
        };
        const run = await trainGrokking(settings, o.out, (pt) => {
          if (o.json !== true) console.error(`step ${pt.step}: train loss ${pt.trainLoss.toPrecision(3)} acc ${(100 * pt.trainAccuracy).toFixed(1)}%, test loss ${pt.testLoss.toPrecision(3)} acc ${(100 * pt.testAccuracy).toFixed(1)}%`);
        });
        console.error(`saved the run to ${o.out}`);
        curves = run.curves;
        source = o.out;
      } else {
        source = o.analyse;
        if (!fs.existsSync(source)) throw new LanternError(`--analyse: ${source} does not exist`);
        if (fs.statSync(source).isDirectory()) {
          const run = readGrokkingRun(source);
          settings = run.settings;
          curves = run.curves;
        } else settings = readGrokkingCheckpoint(source).settings;
      }
      const folder = fs.statSync(source).isDirectory() ? source : undefined;
      const params = folder ? loadGrokkingParams(path.join(folder, 'final.safetensors'), settings) : readGrokkingCheckpoint(source).params;
      const analysis = await analyseGrokking(params, settings);
      if (folder && readGrokkingRun(folder).checkpoints.length > 1) progress = (await grokkingProgress(folder)).points;
      if (o.json !== true) printGrokking(analysis);
      if (o.plots) await writePlots(o.plots, grokkingPlots(curves, progress, analysis));
      writeJson(o.json, { method: 'toy-grokking', source, seed: settings.seed, settings, analysis, curves, progress });
    });
}

function universalityCommand(toy: Command): void {
  toy.command('universality')
    .description('Train a one-hidden-layer network on a finite group\'s composition and report which irreducible representations its embeddings and unembedding use (character-based).')
    .option('--group <name>', 'S4, S5, Z<n> or Z<n>xZ<m>', 'S4')
    .addOption(new Option('--hidden <n>', 'hidden ReLU units').default(128).argParser(positiveInt('--hidden')))
    .addOption(new Option('--train-fraction <x>', 'share of pairs trained on').default(0.6).argParser(fraction('--train-fraction')))
    .addOption(new Option('--steps <n>', 'full-batch steps').default(2000).argParser(positiveInt('--steps')))
    .addOption(new Option('--lr <x>', 'AdamW learning rate').default(3e-3).argParser(positive('--lr')))
    .addOption(new Option('--weight-decay <x>', 'AdamW weight decay').default(1).argParser(number('--weight-decay', (x) => x >= 0, '≥ 0')))
    .addOption(new Option('--seed <n>', 'seed').default(0).argParser(nonNegativeInt('--seed')))
    .option('--plots <folder>', 'write an SVG of the irrep shares')
    .option('--json [file]', 'write the result as JSON to <file> (or print it)')
    .addHelpText('after', '\nExample:\n  lantern toy universality --group S4 --steps 2000 --plots /tmp/univ')
    .action(async (o) => {
      if (typeof o.json === 'string') assertWritable(o.json, '--json');
      const r = await trainUniversality({ group: o.group, hidden: o.hidden, trainFraction: o.trainFraction, steps: o.steps, lr: o.lr, weightDecay: o.weightDecay, seed: o.seed }, progressLine(o.group));
      endProgress();
      if (o.json !== true) {
        console.log(`${o.group}: train accuracy ${(100 * r.trainAccuracy).toFixed(1)}%, test accuracy ${(100 * r.testAccuracy).toFixed(1)}%`);
        console.log('irrep      dim  left   right  unembed');
        for (const { name, dim } of groupByName(o.group).irreps) {
          console.log(`${name.padEnd(10)} ${String(dim).padStart(3)}  ${[r.shares.left[name], r.shares.right[name], r.shares.unembed[name]].map((x) => x.toFixed(3)).join('  ')}`);
        }
        console.log(`learned: ${r.learned.map((l) => `${l.name} (${(100 * l.share).toFixed(0)}%)`).join(', ') || 'none above the threshold'}`);
      }
      if (o.plots) await writePlots(o.plots, { 'irreps.svg': () => sharesSvg(Object.entries(r.shares.unembed).map(([name, share]) => ({ name, share, key: r.learned.some((l) => l.name === name) })), { title: `Unembedding by irrep (${o.group})`, xLabel: 'irrep' }) });
      const { weights: _w, ...saved } = r;
      writeJson(o.json, { ...saved, seed: o.seed });
    });
}

/** `lantern toy superposition | grokking | universality`. */
export function toyCommand(program: Command): void {
  const toy = program.command('toy').description('Toy models whose answer is known: superposition, grokking, universality.');
  superpositionCommand(toy);
  grokkingCommand(toy);
  universalityCommand(toy);
}
