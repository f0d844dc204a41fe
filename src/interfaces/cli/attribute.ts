import fs from 'node:fs';
import { Command, Option } from 'commander';
import { LanternError } from '../../errors.js';
import type { HookedTransformer } from '../../models/hooked.js';
import {
  attribute, checkMethod, mergeWords, renderHtml, renderTerminal, resultToJSON, METHODS, SCORE_KINDS,
} from '../../methods/attribution/index.js';
import type { AttributionResult, AttributionSettings, ScoreKind } from '../../methods/attribution/index.js';
import { attributeViaBackend, backendOptions, rejectBackendOnly } from './attribute-backend.js';
import { ATTRIBUTION, ATTRIBUTION_SETTINGS } from '../../methods/attribution/options.js';
import { checkOptionsApply } from '../../methods/options.js';
import { cliOption } from './method-options.js';
import { nonNegativeInt } from './forward.js';
import { assertWritable } from './output.js';
import { modelOption, revisionOption, loadModelFromFlags } from './model-option.js';
import { attributeDataFile, checkDataFlags } from './attribute-data.js';
import { jobOptions } from './job-options.js';
import { chatMessages, chatOption, chatTemplateFlag, chatTemplateOption, checkChatFlags, systemOption } from './chat-option.js';

function oneOf<T extends string>(flag: string, values: readonly T[]) {
  return (v: string): T => {
    if ((values as readonly string[]).includes(v)) return v as T;
    throw new LanternError(`${flag} must be one of ${values.join(', ')}, got '${v}'`);
  };
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
    .addOption(modelOption('model folder or Hub id (default: the bundled model)')).addOption(revisionOption())
    .option('-t, --text <text>', 'the prompt (with --chat: the user\'s message)')
    .option('--data <file>', 'or: attribute every prompt of a .jsonl, .csv or .parquet file (columns prompt or text, optional target and foil) as a resumable job; --json saves every result and the faithfulness averages')
    .option('--prompt-column <name>', "--data: the prompt column (default 'prompt', else 'text')")
    .option('--target-column <name>', "--data: the target column (default 'target' when present)")
    .option('--foil-column <name>', "--data: the foil column (default 'foil' when present)")
    .addOption(chatOption()).addOption(systemOption()).addOption(chatTemplateFlag())
    .option('--attribute-template-tokens', "--chat: attribute the chat template's tokens (and the system message) too; by default only the user's words get scores")
    .option('--target <text>', "what to explain: one token (next-token target) or several (a teacher-forced continuation); default: the model's top next token")
    .option('--foil <text>', 'contrastive: explain logit(target) − logit(foil) (with --kind prob: p(target) − p(foil)); needs a one-token --target')
    .addOption(new Option('--method <name>', `one of ${METHODS.join(', ')}`).default('ig').argParser((v: string) => checkMethod(v)))
    .addOption(new Option('--kind <kind>', `how the target token is scored: ${SCORE_KINDS.join(', ')} (with a --foil: prob gives the probability difference, otherwise the logit difference)`).default('logprob').argParser(oneOf('--kind', SCORE_KINDS)))
    .option('--eval', 'also measure faithfulness: comprehensiveness, sufficiency, AOPC, Kendall tau vs leave-one-out, deletion and insertion AUC')
    .option('--aopc <bins>', "--eval: AOPC rationale sizes, 'ferret' (10%..100%, default) or 'eraser' (1, 5, 10, 20, 50%)", oneOf('--aopc', ['ferret', 'eraser'] as const))
    .option('--special', 'also attribute to special tokens (e.g. <|endoftext|> between chat turns); by default they are kept as context and left out')
    .option('--words', 'show scores merged into words (summed over each word\'s tokens); --json stays per token')
    .addOption(new Option('--seed <n>', 'seeds lime, shap and shapley sampling; recorded with the result').default(0).argParser(nonNegativeInt('--seed', 0xffffffff)))
    .option('--html <file.html>', 'write a self-contained HTML report')
    .option('--json <file.json>', 'write the result as JSON (reload with loadResult)')
    .option('--no-color', 'plain text output')
    .addHelpText('after', '\nExamples:\n  lantern attribute --text "The capital of France is" --target " Paris" --foil " Rome" --method ig --steps 64 --eval --html out.html\n  lantern attribute --data prompts.jsonl --method ig --eval --json results.json --shard-size 16\n  lantern attribute --backend http://127.0.0.1:8000/v1 --text "The capital of France is" --target " Paris" --method shap --granularity word')
    .action(async (opts) => {
      checkChatFlags(opts);
      if (opts.attributeTemplateTokens && !opts.chat) throw new LanternError('--attribute-template-tokens applies only with --chat');
      if (opts.backend !== undefined && opts.chat) throw new LanternError('--chat is not available with --backend (the backend applies its own chat template)');
      if (opts.backend !== undefined && (opts.model !== undefined || opts.revision !== undefined)) throw new LanternError('--model and --revision name a Lantern model; with --backend the backend names it');
      if ((opts.text === undefined) === (opts.data === undefined)) throw new LanternError('give --text (one prompt) or --data (a file of prompts), not both');
      checkDataFlags(opts);
      if (opts.backend !== undefined && opts.data !== undefined) throw new LanternError('--data is not available with --backend');
      if (opts.backend !== undefined) return attributeViaBackend(opts, cmd.getOptionValueSource('method') !== 'default');
      rejectBackendOnly(opts);
      const method = opts.method as string;
      if (opts.foil !== undefined && opts.target === undefined) throw new LanternError('--foil needs --target (the token to contrast the foil with)');
      checkOptionsApply(ATTRIBUTION.options, (k) => (k === 'method' ? method : k === 'evaluate' ? opts.eval : opts[k]), 'cli');
      if (opts.aopc !== undefined && !opts.eval) throw new LanternError('--aopc applies only with --eval');
      if (opts.html) assertWritable(opts.html, '--html');
      if (opts.json) assertWritable(opts.json, '--json');
      const model = await loadModelFromFlags(opts);

      let target: string | undefined;
      let continuation: string | undefined;
      if (opts.target !== undefined) {
        const n = model.encode(opts.target).length;
        if (n === 0) throw new LanternError('--target is empty');
        if (n > 1 && opts.foil !== undefined) throw new LanternError(`--target ${JSON.stringify(opts.target)} is ${n} tokens; a contrastive --foil needs a one-token target`);
        if (n > 1) continuation = opts.target;
        else target = opts.target;
      }
      const settings: Record<string, unknown> = {};
      for (const spec of ATTRIBUTION_SETTINGS) {
        const v = opts[spec.key];
        if (v !== undefined) settings[spec.key] = spec.type.kind === 'token' ? tokenChoice(model, spec.flag, v) : v;
      }
      if (opts.data !== undefined) {
        await attributeDataFile(opts, model, settings as AttributionSettings);
        return;
      }
      const result = await attribute(model, {
        ...(opts.chat
          ? { messages: chatMessages(opts, opts.text), chat: { template: chatTemplateOption(opts) }, templateTokens: Boolean(opts.attributeTemplateTokens) }
          : { text: opts.text }),
        target, foil: opts.foil, continuation, kind: opts.kind as ScoreKind, method, settings: settings as AttributionSettings, seed: opts.seed, evaluate: Boolean(opts.eval), aopc: opts.aopc, special: Boolean(opts.special),
      });
      const shown = opts.words ? wordLevel(result) : result;
      if (opts.json) fs.writeFileSync(opts.json, JSON.stringify(resultToJSON(result), null, 2) + '\n');
      if (opts.html) fs.writeFileSync(opts.html, renderHtml(shown));
      console.log(renderTerminal(shown, { color: opts.color !== false && useColor() }));
      if (opts.json) console.log(`saved the result to ${opts.json}`);
      if (opts.html) console.log(`saved the HTML report to ${opts.html}`);
    });
  // Every method setting, from the one declaration the Workbench API is built from too.
  for (const spec of ATTRIBUTION_SETTINGS) cmd.addOption(cliOption(spec, BACKEND_NOTES[spec.key]));
  for (const o of backendOptions()) cmd.addOption(o);
  // --concurrency is the http backend's requests in flight here.
  jobOptions(cmd, { concurrency: false });
}

/** What a setting means with --backend (black-box attribution reads some of them too). */
const BACKEND_NOTES: Partial<Record<string, string>> = {
  mask: "; with --backend: 'delete' (default), 'text:<replacement>' or 'token:<id>'",
  granularity: " ('word' is the default with --backend)",
};
