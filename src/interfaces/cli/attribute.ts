import fs from 'node:fs';
import { Command, Option } from 'commander';
import { LanternError } from '../../errors.js';
import { loadModel } from '../../models/load.js';
import type { HookedTransformer } from '../../models/hooked.js';
import {
  attribute, checkMethod, mergeWords, renderHtml, renderTerminal, resultToJSON, INTEGRATION_RULES, METHODS, SCORE_KINDS,
} from '../../methods/attribution/index.js';
import type { AttributionResult, AttributionSettings, Baseline, IntegrationRule, Masking, ScoreKind } from '../../methods/attribution/index.js';
import { attributeViaBackend, backendOptions, rejectBackendOnly } from './attribute-backend.js';
import { defaultModel } from './defaults.js';
import { nonNegativeInt, positiveInt } from './forward.js';
import { assertWritable } from './output.js';

function oneOf<T extends string>(flag: string, values: readonly T[]) {
  return (v: string): T => {
    if ((values as readonly string[]).includes(v)) return v as T;
    throw new LanternError(`${flag} must be one of ${values.join(', ')}, got '${v}'`);
  };
}

function intList(flag: string) {
  return (v: string): number[] => v.split(',').map((s) => {
    const n = Number(s.trim());
    if (s.trim() === '' || !Number.isInteger(n) || n < 0) throw new LanternError(`${flag} must be comma-separated non-negative integers, got '${v}'`);
    return n;
  });
}

/** 'zero', or 'token:<id>' / 'token:<text of one token>'. */
function tokenChoice(model: HookedTransformer, flag: string, v: string | undefined): 'zero' | { token: number } | undefined {
  if (v === undefined || v === 'zero') return v;
  const m = /^token:(.*)$/s.exec(v);
  if (!m) throw new LanternError(`${flag} must be 'zero' or 'token:<id or text>', got '${v}'`);
  if (/^\d+$/.test(m[1])) return { token: Number(m[1]) };
  const ids = model.encode(m[1]);
  if (ids.length !== 1) throw new LanternError(`${flag} ${JSON.stringify(m[1])} is ${ids.length} tokens; give exactly one token (or its id)`);
  return { token: ids[0] };
}

function positiveNumber(flag: string) {
  return (v: string): number => {
    const n = Number(v);
    if (v.trim() === '' || !Number.isFinite(n) || n <= 0) throw new LanternError(`${flag} must be a positive number, got '${v}'`);
    return n;
  };
}

function wordLevel(r: AttributionResult): AttributionResult {
  const w = mergeWords(r.tokenStrings, r.scores);
  return { ...r, tokenStrings: w.words, tokens: w.spans.map(([a]) => r.tokens[a]), scores: w.scores };
}

function useColor(): boolean {
  if (process.env.NO_COLOR !== undefined || process.env.FORCE_COLOR === '0') return false;
  return Boolean(process.stdout.isTTY) || (process.env.FORCE_COLOR !== undefined && process.env.FORCE_COLOR !== '');
}

export function attributeCommand(program: Command): void {
  const cmd = program
    .command('attribute')
    .description('Input attribution: how much each prompt token contributes to a prediction (gradients at the input or any hook, attention, value zeroing, occlusion, LIME or Shapley values).')
    .option('-m, --model <folder|hub-id>', 'model folder or Hub id (default: the bundled model)')
    .requiredOption('-t, --text <text>', 'the prompt')
    .option('--target <text>', "what to explain: one token (next-token target) or several (a teacher-forced continuation); default: the model's top next token")
    .option('--foil <text>', 'contrastive: explain logit(target) − logit(foil) (with --kind prob: p(target) − p(foil)); needs a one-token --target')
    .addOption(new Option('--method <name>', `one of ${METHODS.join(', ')}`).default('ig').argParser((v: string) => checkMethod(v)))
    .addOption(new Option('--kind <kind>', `how the target token is scored: ${SCORE_KINDS.join(', ')} (with a --foil: prob gives the probability difference, otherwise the logit difference)`).default('logprob').argParser(oneOf('--kind', SCORE_KINDS)))
    .option('--hook <name>', 'layer-ig, layer-grad-x-act: the hook point whose activation is attributed, e.g. blocks.3.hook_resid_post (default hook_embed)')
    .option('--steps <n>', 'ig, layer-ig: integration steps (default 50)', positiveInt('--steps'))
    .option('--rule <rule>', `ig, layer-ig: ${INTEGRATION_RULES.join(', ')} (default gausslegendre)`, oneOf('--rule', INTEGRATION_RULES))
    .option('--baseline <b>', "ig, layer-ig: 'zero' (default) or 'token:<id or text>' (that token at every prompt position)")
    .option('--aggregate <how>', "embedding dims -> token score: 'sum' or 'l2' (default: l2 for saliency, sum otherwise)", oneOf('--aggregate', ['sum', 'l2'] as const))
    .option('--batch-size <n>', 'inputs per model run (ig steps, masked copies)', positiveInt('--batch-size'))
    .option('--layers <list>', 'attention/rollout: layers to use, e.g. 0,1 (default all); value-zeroing: layers to average (default the last) or roll out (default all)', intList('--layers'))
    .option('--rollout', 'value-zeroing: multiply the chosen layers\' value-zeroing matrices (value zeroing rollout)')
    .option('--heads <list>', 'attention/rollout: heads to average (default all)', intList('--heads'))
    .option('--samples <n>', 'lime: random masks (default 200); shap: coalition budget (default max(200, 4 × tokens); all coalitions when 2^n − 2 fit); shapley: permutations (default 50)', positiveInt('--samples'))
    .option('--kernel-width <w>', 'lime: width of the exponential kernel on cosine distance to the full prompt (default 0.25)', positiveNumber('--kernel-width'))
    .option('--mask <m>', "occlusion, lime, shap, shapley and --eval: 'zero' (zero the token embedding, default) or 'token:<id or text>' (substitute that token); with --backend: 'delete' (default), 'text:<replacement>' or 'token:<id>'")
    .option('--granularity <g>', "occlusion, lime, shap, shapley: mask each 'token' (default; 'word' with --backend), or whole 'word's or 'sentence's together (one score each)", oneOf('--granularity', ['token', 'word', 'sentence'] as const))
    .option('--eval', 'also measure faithfulness: comprehensiveness, sufficiency, AOPC, Kendall tau vs leave-one-out, deletion and insertion AUC')
    .option('--aopc <bins>', "--eval: AOPC rationale sizes, 'ferret' (10%..100%, default) or 'eraser' (1, 5, 10, 20, 50%)", oneOf('--aopc', ['ferret', 'eraser'] as const))
    .option('--special', 'also attribute to special tokens (e.g. <|endoftext|> between chat turns); by default they are kept as context and left out')
    .option('--words', 'show scores merged into words (summed over each word\'s tokens); --json stays per token')
    .addOption(new Option('--seed <n>', 'seeds lime, shap and shapley sampling; recorded with the result').default(0).argParser(nonNegativeInt('--seed', 0xffffffff)))
    .option('--html <file.html>', 'write a self-contained HTML report')
    .option('--json <file.json>', 'write the result as JSON (reload with loadResult)')
    .option('--no-color', 'plain text output')
    .addHelpText('after', '\nExamples:\n  lantern attribute --text "The capital of France is" --target " Paris" --foil " Rome" --method ig --steps 64 --eval --html out.html\n  lantern attribute --backend http://127.0.0.1:8000/v1 --text "The capital of France is" --target " Paris" --method shap --granularity word')
    .action(async (opts) => {
      if (opts.backend !== undefined) return attributeViaBackend(opts, cmd.getOptionValueSource('method') !== 'default');
      rejectBackendOnly(opts);
      const method = opts.method as string;
      if (opts.foil !== undefined && opts.target === undefined) throw new LanternError('--foil needs --target (the token to contrast the foil with)');
      const igOnly = ['steps', 'rule', 'baseline'].filter((k) => opts[k] !== undefined);
      if (igOnly.length && method !== 'ig' && method !== 'layer-ig') throw new LanternError(`--${igOnly[0]} applies only to --method ig or layer-ig`);
      if (opts.hook !== undefined && !method.startsWith('layer-')) throw new LanternError('--hook applies only to --method layer-ig or layer-grad-x-act');
      if (opts.layers && !['attention', 'rollout', 'value-zeroing'].includes(method)) throw new LanternError('--layers applies only to --method attention, rollout or value-zeroing');
      if (opts.heads && method !== 'attention' && method !== 'rollout') throw new LanternError('--heads applies only to --method attention or rollout');
      if (opts.rollout && method !== 'value-zeroing') throw new LanternError('--rollout applies only to --method value-zeroing (use --method rollout for attention rollout)');
      const masking = ['occlusion', 'lime', 'shap', 'shapley'];
      if (opts.mask !== undefined && !masking.includes(method) && !opts.eval) throw new LanternError('--mask applies only to --method occlusion, lime, shap, shapley or --eval');
      if (opts.granularity !== undefined && !masking.includes(method)) throw new LanternError('--granularity applies only to --method occlusion, lime, shap or shapley');
      if (opts.samples !== undefined && !['lime', 'shap', 'shapley'].includes(method)) throw new LanternError('--samples applies only to --method lime, shap or shapley');
      if (opts.aopc !== undefined && !opts.eval) throw new LanternError('--aopc applies only with --eval');
      if (opts.kernelWidth !== undefined && method !== 'lime') throw new LanternError('--kernel-width applies only to --method lime');
      if (opts.aggregate && !['ig', 'saliency', 'input-x-grad', 'layer-ig', 'layer-grad-x-act'].includes(method)) {
        throw new LanternError('--aggregate applies only to gradient methods (ig, saliency, input-x-grad, layer-ig, layer-grad-x-act)');
      }
      if (opts.html) assertWritable(opts.html, '--html');
      if (opts.json) assertWritable(opts.json, '--json');
      const model = await loadModel(opts.model ?? defaultModel(), { progress: process.stderr.isTTY });

      let target: string | undefined;
      let continuation: string | undefined;
      if (opts.target !== undefined) {
        const n = model.encode(opts.target).length;
        if (n === 0) throw new LanternError('--target is empty');
        if (n > 1 && opts.foil !== undefined) throw new LanternError(`--target ${JSON.stringify(opts.target)} is ${n} tokens; a contrastive --foil needs a one-token target`);
        if (n > 1) continuation = opts.target;
        else target = opts.target;
      }
      const settings: AttributionSettings = {
        hook: opts.hook, steps: opts.steps, rule: opts.rule as IntegrationRule | undefined, aggregate: opts.aggregate, batchSize: opts.batchSize,
        layers: opts.layers, heads: opts.heads, rollout: opts.rollout, samples: opts.samples, kernelWidth: opts.kernelWidth,
        baseline: tokenChoice(model, '--baseline', opts.baseline) as Baseline | undefined,
        mask: tokenChoice(model, '--mask', opts.mask) as Masking | undefined,
      };
      settings.granularity = opts.granularity;
      for (const k of Object.keys(settings) as (keyof AttributionSettings)[]) if (settings[k] === undefined) delete settings[k];
      const result = await attribute(model, {
        text: opts.text, target, foil: opts.foil, continuation, kind: opts.kind as ScoreKind, method, settings, seed: opts.seed, evaluate: Boolean(opts.eval), aopc: opts.aopc, special: Boolean(opts.special),
      });
      const shown = opts.words ? wordLevel(result) : result;
      if (opts.json) fs.writeFileSync(opts.json, JSON.stringify(resultToJSON(result), null, 2) + '\n');
      if (opts.html) fs.writeFileSync(opts.html, renderHtml(shown));
      console.log(renderTerminal(shown, { color: opts.color !== false && useColor() }));
      if (opts.json) console.log(`saved the result to ${opts.json}`);
      if (opts.html) console.log(`saved the HTML report to ${opts.html}`);
    });
  for (const o of backendOptions()) cmd.addOption(o);
}
