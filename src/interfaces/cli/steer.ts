/** `lantern steer` (generate with and without a steering vector, or sweep its coefficient) and `lantern ablate-direction`. */
import fs from 'node:fs';
import { Command, Option } from 'commander';
import { LanternError } from '../../errors.js';
import type { HookedTransformer } from '../../models/hooked.js';
import { generateBatch } from '../../models/generate.js';
import { saveOrthogonalized } from '../../models/orthogonalize.js';
import { sentimentPromptPairs } from '../../data/statements.js';
import { harmfulHarmlessSample } from '../../data/safety.js';
import { ContrastPair, loadContrastPairs, loadLabelled } from '../../methods/representations/data.js';
import { loadProbe } from '../../methods/representations/probes/index.js';
import { parsePositions } from '../../methods/representations/activations.js';
import {
  actAddVector, caaVector, checkSteeringHook, coefficientSweep, directionalAblation, layerHook, meanDifferenceVector, meanKl, readingVector,
  saveSteeringVector, steer, SteeringVector, SweepEffect, vectorFromFile,
} from '../../methods/steering/index.js';
import { nonNegativeInt, positiveInt } from './forward.js';
import { assertWritable } from './output.js';
import { hubRecord, loadModelFromFlags, modelOption, revisionOption } from './model-option.js';

/** The neutral text the KL cost is measured on unless --neutral gives others. */
export const DEFAULT_NEUTRAL = ['The report lists the opening hours of the library, the museum and the town hall for the coming week.'];

/** A finite number (a coefficient must be one: NaN or Infinity would silently ruin every activation). */
export function finiteNumber(flag: string) {
  return (v: string): number => {
    const n = Number(v);
    if (v.trim() === '' || !Number.isFinite(n)) throw new LanternError(`${flag} must be a finite number, got '${v}'`);
    return n;
  };
}

function finiteList(flag: string) {
  const one = finiteNumber(flag);
  return (v: string): number[] => v.split(',').map((s) => one(s.trim()));
}

const collect = (v: string, prev: string[] = []) => [...prev, v];

/** Where the steering vector comes from: a file (saved vector or probe), a prompt pair (ActAdd), or contrast pairs (CAA or a reading vector). */
async function vectorFromFlags(model: HookedTransformer, opts: Record<string, any>): Promise<SteeringVector> {
  const sources = [opts.vector, opts.positive ?? opts.negative, opts.pairs].filter((x) => x !== undefined).length;
  if (sources !== 1) throw new LanternError('give one source of the steering vector: --vector <file> (a saved vector or probe), --positive/--negative (ActAdd), or --pairs <file|builtin:sentiment> (CAA or a reading vector)');
  if (opts.vector) {
    if (opts.hook || opts.layer !== undefined) throw new LanternError('--vector files carry their own hook; --hook and --layer apply to vectors made here');
    return vectorFromFile(model, opts.vector);
  }
  const hook = opts.hook ?? layerHook(model, opts.layer ?? Math.floor(model.cfg.nLayers / 2));
  checkSteeringHook(model, hook);
  if (opts.positive !== undefined || opts.negative !== undefined) {
    if (opts.positive === undefined || opts.negative === undefined) throw new LanternError('ActAdd needs both --positive and --negative');
    return actAddVector(model, opts.positive, opts.negative, { hook, start: opts.start });
  }
  let pairs: ContrastPair[];
  if (opts.pairs === 'builtin:sentiment') pairs = sentimentPromptPairs({ seed: opts.seed }).caa;
  else if (String(opts.pairs).startsWith('builtin:')) throw new LanternError(`unknown built-in pairs '${opts.pairs}'; use builtin:sentiment`);
  else {
    const [positiveColumn, negativeColumn] = String(opts.pairColumns ?? 'positive,negative').split(',');
    pairs = await loadContrastPairs(opts.pairs, { positiveColumn, negativeColumn });
  }
  const positions = parsePositions(opts.positions ?? 'last');
  return opts.method === 'reading' ? readingVector(model, pairs, { hook, positions }) : caaVector(model, pairs, { hook, positions });
}

function vectorOptions(cmd: Command): Command {
  return cmd
    .option('--vector <file>', 'a saved steering vector (--save-vector) or a probe (lantern probe train)')
    .option('--positive <text>', 'ActAdd: the prompt to steer towards')
    .option('--negative <text>', 'ActAdd: the prompt to steer away from')
    .addOption(new Option('--start <n>', 'ActAdd: the prompt position its rows are added from').default(0).argParser(nonNegativeInt('--start')))
    .option('--pairs <file|builtin:sentiment>', 'contrast pairs (.jsonl/.csv/.parquet with --pair-columns, default positive,negative, and label)')
    .option('--pair-columns <positive,negative>', 'the two columns of --pairs')
    .addOption(new Option('--method <caa|reading>', 'with --pairs: the mean difference (CAA) or the first principal component (reading vector)').default('caa').choices(['caa', 'reading']))
    .option('--positions <last|mean|N|token>', 'with --pairs: which position of each prompt', 'last')
    .option('--hook <name>', 'the hook to steer at (default: blocks.<layer>.hook_resid_pre)')
    .addOption(new Option('--layer <n>', 'the layer whose input is steered (default: the middle layer)').argParser(nonNegativeInt('--layer')));
}

function printSideBySide(rows: { prompt: string; plain: string; steered: string }[], label: string): void {
  for (const r of rows) {
    console.log(`prompt: ${r.prompt}`);
    console.log(`  plain:   ${JSON.stringify(r.plain)}`);
    console.log(`  ${label.padEnd(8)} ${JSON.stringify(r.steered)}`);
  }
}

export function steerCommand(program: Command): void {
  vectorOptions(program
    .command('steer')
    .description('Generate with and without a steering vector (ActAdd, CAA, a reading vector or a probe direction), side by side, with the KL cost on neutral text; or sweep the coefficient.')
    .argument('<prompts...>', 'prompts to continue')
    .addOption(modelOption()).addOption(revisionOption()))
    .addOption(new Option('--coef <x>', 'how much of the vector to add').argParser(finiteNumber('--coef')))
    .addOption(new Option('--sweep <c1,c2,...>', 'coefficients to sweep: the effect (--target/--foil logit difference, or a probe vector\'s score) and the KL cost of each').argParser(finiteList('--sweep')))
    .option('--target <token>', 'sweep effect: logit(target) - logit(foil) at the prompts\' last position')
    .option('--foil <token>', 'see --target')
    .option('--neutral <text>', 'neutral text for the KL cost (repeatable; default: one sentence of plain prose)', collect)
    .addOption(new Option('-n, --max-new-tokens <n>', 'tokens to generate').default(30).argParser(positiveInt('--max-new-tokens')))
    .addOption(new Option('--temperature <t>', 'sampling temperature (0 = greedy)').default(0).argParser(finiteNumber('--temperature')))
    .addOption(new Option('--seed <n>', 'seed for sampling and built-in pairs').default(0).argParser(nonNegativeInt('--seed')))
    .option('--save-vector <file>', 'save the steering vector (JSON) for later --vector')
    .option('--json [file]', 'write the result (model, hook, data hash, seed, settings) as JSON to <file> (or print it)')
    .addHelpText('after', '\nExamples:\n  lantern steer "I think the food" --positive " wonderful" --negative " awful" --layer 2 --coef 4\n  lantern steer "The movie was" --pairs builtin:sentiment --sweep 0,2,4,8 --target " great" --foil " bad"')
    .action(async (prompts: string[], opts) => {
      if ((opts.coef === undefined) === (opts.sweep === undefined)) throw new LanternError('give --coef (generate side by side) or --sweep (effect and cost per coefficient)');
      for (const f of ['saveVector', 'json'] as const) if (typeof opts[f] === 'string') assertWritable(opts[f], f === 'json' ? '--json' : '--save-vector');
      const model = await loadModelFromFlags(opts);
      const vector = await vectorFromFlags(model, opts);
      if (opts.saveVector) saveSteeringVector(opts.saveVector, vector);
      const neutral: string[] = opts.neutral ?? DEFAULT_NEUTRAL;
      let result: Record<string, unknown>;
      let print: () => void;
      if (opts.sweep) {
        let effect: SweepEffect;
        if (opts.target !== undefined || opts.foil !== undefined) {
          if (opts.target === undefined || opts.foil === undefined) throw new LanternError('--target and --foil go together');
          effect = { kind: 'logit-diff', prompts, target: opts.target, foil: opts.foil };
        } else if (opts.vector && vector.method === 'probe') {
          const { saved, probe } = loadProbe(opts.vector, model);
          effect = { kind: 'probe', prompts, probe, hook: saved.hook };
        } else throw new LanternError('a sweep measures --target/--foil (a logit difference) or, for a probe --vector, the probe\'s score');
        const r = await coefficientSweep(model, vector, { coefs: opts.sweep, effect, neutral });
        result = { ...r, ...hubRecord(model), seed: opts.seed };
        print = () => {
          console.log(`${vector.method} vector at ${vector.hook}; effect: ${r.settings.effect}; cost: KL on neutral text (nats per token)`);
          console.log(`${'coef'.padStart(8)} ${'effect'.padStart(10)} ${'KL'.padStart(10)}`);
          for (const p of r.points) console.log(`${String(p.coef).padStart(8)} ${p.effect.toFixed(4).padStart(10)} ${p.kl.toFixed(4).padStart(10)}`);
        };
      } else {
        const r = await steer(model, prompts, { vector, coef: opts.coef, neutral, maxNewTokens: opts.maxNewTokens, temperature: opts.temperature, seed: opts.seed });
        result = { ...r, ...hubRecord(model) };
        print = () => {
          console.log(`${vector.method} vector at ${vector.hook}, coefficient ${opts.coef}; KL cost on neutral text ${r.kl!.toFixed(4)} nats per token`);
          printSideBySide(r.rows, 'steered:');
        };
      }
      if (opts.json === true) return console.log(JSON.stringify(result, null, 2));
      if (opts.json) fs.writeFileSync(opts.json, JSON.stringify(result, null, 2) + '\n');
      print();
      if (opts.saveVector) console.log(`saved the steering vector to ${opts.saveVector}`);
      if (typeof opts.json === 'string') console.log(`saved JSON to ${opts.json}`);
    });
}

export function ablateDirectionCommand(program: Command): void {
  program
    .command('ablate-direction')
    .description('Project a direction out of the residual stream at every layer (the refusal-direction method) and generate with and without it; --save-weights bakes it into orthogonalized weights.')
    .argument('[prompts...]', 'prompts to continue')
    .addOption(modelOption()).addOption(revisionOption())
    .option('--vector <file>', 'the direction: a saved steering vector or a probe (its first row / direction)')
    .option('--data <file|builtin:harmful-harmless>', 'or: labelled texts (label 1 vs 0, e.g. harmful vs harmless), whose mean difference at --hook is the direction')
    .option('--text-column <name>', 'the text column of --data', 'text')
    .option('--label-column <name>', 'the label column of --data', 'label')
    .option('--hook <name>', 'with --data: where the mean difference is taken (default: the last block\'s output)')
    .option('--save-weights <dir>', 'write a Hugging Face checkpoint with the direction orthogonalized out of every weight that writes to the residual stream')
    .option('--neutral <text>', 'neutral text for the KL cost (repeatable)', collect)
    .addOption(new Option('-n, --max-new-tokens <n>', 'tokens to generate').default(30).argParser(positiveInt('--max-new-tokens')))
    .addOption(new Option('--seed <n>', 'seed').default(0).argParser(nonNegativeInt('--seed')))
    .option('--json [file]', 'write the result as JSON to <file> (or print it)')
    .addHelpText('after', '\nExample:\n  lantern ablate-direction "How do I fix a bike?" --data builtin:harmful-harmless --save-weights ablated/')
    .action(async (prompts: string[], opts) => {
      if (!opts.vector === !opts.data) throw new LanternError('give the direction as --vector <file> or --data <labelled texts>');
      if (typeof opts.json === 'string') assertWritable(opts.json, '--json');
      if (prompts.length === 0 && !opts.saveWeights) throw new LanternError('give prompts to generate, or --save-weights <dir>, or both');
      const model = await loadModelFromFlags(opts);
      let vector: SteeringVector;
      if (opts.vector) vector = vectorFromFile(model, opts.vector);
      else {
        const ds = opts.data === 'builtin:harmful-harmless' ? harmfulHarmlessSample() : await loadLabelled(opts.data, { textColumn: opts.textColumn, labelColumn: opts.labelColumn });
        vector = await meanDifferenceVector(model, ds.examples, { hook: opts.hook ?? `blocks.${model.cfg.nLayers - 1}.hook_resid_post` });
      }
      const direction = vector.rows[0];
      const interventions = directionalAblation(model, direction);
      const neutral: string[] = opts.neutral ?? DEFAULT_NEUTRAL;
      const result: Record<string, unknown> = {
        model: model.source, ...hubRecord(model), method: 'ablate-direction', hook: 'every residual stream hook', datasetHash: vector.datasetHash, seed: opts.seed,
        settings: { source: opts.vector ?? opts.data, vectorMethod: vector.method, vectorHook: vector.hook, maxNewTokens: opts.maxNewTokens, neutral },
      };
      if (prompts.length) {
        const gen = { maxNewTokens: opts.maxNewTokens, temperature: 0, seed: opts.seed };
        const plain = await generateBatch(model, prompts, gen);
        const ablated = await generateBatch(model, prompts, { ...gen, interventions });
        const a = await model.runWithHooks(neutral, {});
        const b = await model.runWithHooks(neutral, { interventions });
        result.kl = meanKl(a.logits, b.logits, a.batch.lengths);
        result.rows = prompts.map((prompt, i) => ({ prompt, plain: plain[i].text, ablated: ablated[i].text }));
      }
      if (opts.saveWeights) {
        result.savedWeights = opts.saveWeights;
        result.files = await saveOrthogonalized(model, direction, opts.saveWeights, { lantern_direction_from: String(opts.vector ?? opts.data), lantern_direction_hash: vector.datasetHash });
      }
      if (opts.json === true) return console.log(JSON.stringify(result, null, 2));
      if (opts.json) fs.writeFileSync(opts.json, JSON.stringify(result, null, 2) + '\n');
      console.log(`direction: ${vector.method} at ${vector.hook}, projected out of every residual stream hook`);
      if (result.rows) {
        console.log(`KL cost on neutral text: ${(result.kl as number).toFixed(4)} nats per token`);
        printSideBySide((result.rows as { prompt: string; plain: string; ablated: string }[]).map((r) => ({ ...r, steered: r.ablated })), 'ablated:');
      }
      if (opts.saveWeights) console.log(`saved orthogonalized weights to ${opts.saveWeights} (${(result.files as string[]).join(', ')})`);
      if (typeof opts.json === 'string') console.log(`saved JSON to ${opts.json}`);
    });
}
