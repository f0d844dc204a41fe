import fs from 'node:fs';
import { Command, Option } from 'commander';
import { LanternError } from '../../errors.js';
import { lineChartSvg } from '../../report/plot.js';
import { checkModelAnalysis, MODEL_ANALYSES, RUN_ANALYSES, sweepRevisions, sweepRun, SweepResult } from '../../methods/sweep/index.js';
import { nonNegativeInt, positiveInt } from './forward.js';
import { assertWritable } from './output.js';

/** The sweep as one line per series over steps (or revision order where names carry no step). */
export function sweepChartSvg(r: SweepResult): Promise<string> {
  const names = Object.keys(r.points[0]?.values ?? {});
  const x = (i: number) => r.points[i].step ?? i;
  return lineChartSvg(names.map((name) => ({ name, markers: true, points: r.points.map((p, i) => ({ x: x(i), y: p.values[name] })) })), {
    title: `${r.analysis} across checkpoints of ${r.source}`,
    xLabel: r.points.every((p) => p.step !== null) ? 'training step' : 'revision (in the order given)',
    yLabel: r.analysis,
  });
}

export function sweepCommand(program: Command): void {
  program
    .command('sweep')
    .description('Run one scalar analysis over a model\'s Hub revisions (e.g. Pythia\'s step branches) or over a grokking run\'s checkpoints, and plot it.')
    .option('-m, --model <hub-id>', 'Hub model whose revisions to sweep')
    .option('--revisions <list>', 'comma-separated revisions (branches, tags or commits), e.g. step1000,step2000')
    .option('--run <folder>', 'instead: a training run folder of lantern toy grokking')
    .requiredOption('--analysis <name>', `model: ${MODEL_ANALYSES.join(', ')} (head:<detector>:<layer>.<head> for one head); run: ${RUN_ANALYSES.join(', ')}`)
    .option('--tokens <file>', 'data as token ids, one row per line (default: seeded repeated random sequences)')
    .addOption(new Option('--sequences <n>', 'repeated random sequences').default(16).argParser(positiveInt('--sequences')))
    .addOption(new Option('--half <n>', 'tokens in each sequence\'s repeated half').default(16).argParser(positiveInt('--half')))
    .addOption(new Option('--seed <n>', 'seed of the random sequences').default(0).argParser(nonNegativeInt('--seed')))
    .option('--plot <file>', 'write the curve as SVG')
    .option('--json [file]', 'write the result as JSON to <file> (or print it)')
    .addHelpText('after', '\nExamples:\n  lantern sweep --model EleutherAI/pythia-70m --revisions step1000,step8000,step143000 --analysis head:induction --plot induction.svg\n  lantern sweep --run runs/grok --analysis restricted-loss --plot restricted.svg')
    .action(async (o) => {
      if (!o.run === !o.model) throw new LanternError('give either --model <hub-id> with --revisions, or --run <folder>');
      if (typeof o.json === 'string') assertWritable(o.json, '--json');
      if (o.plot) assertWritable(o.plot, '--plot');
      const say = (msg: string) => { if (process.stderr.isTTY) process.stderr.write(`\r${msg}   `); };
      let r: SweepResult;
      if (o.run) r = await sweepRun(o.run, o.analysis, (step, i, n) => say(`checkpoint ${i + 1}/${n} (step ${step})`));
      else {
        if (!o.revisions) throw new LanternError('--revisions is needed with --model (e.g. step1000,step2000)');
        checkModelAnalysis(o.analysis);
        const revisions = String(o.revisions).split(',').map((s) => s.trim()).filter(Boolean);
        let rows: number[][] | undefined;
        if (o.tokens) {
          if (!fs.existsSync(o.tokens)) throw new LanternError(`--tokens file not found: ${o.tokens}`);
          rows = fs.readFileSync(o.tokens, 'utf8').split('\n').map((l) => l.trim()).filter(Boolean).map((l) => l.split(/[\s,]+/).map(Number));
          if (rows.some((row) => row.length < 2 || row.some((x) => !Number.isInteger(x) || x < 0))) throw new LanternError(`--tokens ${o.tokens}: each line needs at least 2 non-negative integer token ids`);
        }
        r = await sweepRevisions(o.model, revisions, o.analysis, { rows, sequences: o.sequences, half: o.half, seed: o.seed }, (rev, i, n) => say(`revision ${i + 1}/${n}: ${rev}`));
      }
      if (process.stderr.isTTY) process.stderr.write('\n');
      if (o.json !== true) {
        for (const p of r.points) console.log(`${p.revision.padEnd(24)} ${Object.entries(p.values).map(([k, v]) => `${k} ${v.toPrecision(4)}`).join('  ')}`);
      }
      if (o.plot) {
        fs.writeFileSync(o.plot, await sweepChartSvg(r));
        if (o.json !== true) console.log(`saved SVG to ${o.plot}`);
      }
      if (o.json === true) console.log(JSON.stringify(r, null, 2));
      else if (typeof o.json === 'string') {
        fs.writeFileSync(o.json, JSON.stringify(r, null, 2) + '\n');
        console.log(`saved JSON to ${o.json}`);
      }
    });
}
