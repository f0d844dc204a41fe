import { Command, Option } from 'commander';
import { LanternError } from '../../errors.js';
import { generateStream, GenerateOptions, Generation } from '../../models/generate.js';
import { nonNegativeInt, positiveInt } from './forward.js';
import { assertOutputsWritable, emitOutputs } from './output.js';
import { hubRecord, modelOption, revisionOption, loadModelFromFlags, modelSource } from './model-option.js';
import { chatFromFlags, chatOption, chatTemplateFlag, chatSettings, checkChatFlags, systemOption } from './chat-option.js';

function numberIn(flag: string, lo: number, hi: number, loOpen = false) {
  return (v: string): number => {
    const n = Number(v);
    if (v.trim() === '' || !Number.isFinite(n) || n > hi || (loOpen ? n <= lo : n < lo)) throw new LanternError(`${flag} must be a number in ${loOpen ? '(' : '['}${lo}, ${hi}], got '${v}'`);
    return n;
  };
}

const collect = (parse: (v: string) => unknown) => (v: string, prev: unknown[] = []) => [...prev, parse(v)];

export function generateCommand(program: Command): void {
  program
    .command('generate')
    .description('Continue a prompt, streaming the text as it is generated (key/value cache; greedy with --temperature 0).')
    .addOption(modelOption('Hugging Face model folder or Hub id (default: the bundled model)')).addOption(revisionOption())
    .requiredOption('-t, --text <text>', 'the prompt (with --chat: the user\'s message)')
    .addOption(chatOption()).addOption(systemOption()).addOption(chatTemplateFlag())
    .addOption(new Option('-n, --max-new-tokens <n>', 'tokens to generate at most').default(40).argParser(positiveInt('--max-new-tokens')))
    .addOption(new Option('--temperature <t>', 'sampling temperature; 0 = greedy').default(0.8).argParser(numberIn('--temperature', 0, 100)))
    .addOption(new Option('--top-k <k>', 'sample among the k most likely tokens (0 = all)').default(40).argParser(nonNegativeInt('--top-k')))
    .addOption(new Option('--top-p <p>', 'sample among the most likely tokens holding probability p (1 = all)').default(1).argParser(numberIn('--top-p', 0, 1, true)))
    .addOption(new Option('--min-p <p>', 'drop tokens less likely than p times the most likely (0 = none)').default(0).argParser(numberIn('--min-p', 0, 1)))
    .addOption(new Option('--repetition-penalty <r>', 'discourage tokens already seen (> 1; Hugging Face\'s)').default(1).argParser(numberIn('--repetition-penalty', 0, 100, true)))
    .addOption(new Option('--seed <n>', 'random seed for sampling').default(0).argParser(nonNegativeInt('--seed', 2 ** 32 - 1)))
    .option('--stop <text>', 'stop when the output contains this text (repeatable)', collect(String))
    .option('--stop-token <id>', 'stop at this token id (repeatable; default: the tokenizer\'s end-of-text tokens)', collect(nonNegativeInt('--stop-token')))
    .option('--json [file]', 'write the result (model, settings, seed, tokens, text) as JSON to <file> (or print it instead of the stream when no file is given)')
    .addHelpText('after', '\nExample:\n  lantern generate --text "Once upon a time" --max-new-tokens 60 --temperature 0.7 --top-p 0.9 --json story.json')
    .action(async (opts) => {
      const source = modelSource(opts);
      checkChatFlags(opts);
      assertOutputsWritable(opts, []);
      const model = await loadModelFromFlags(opts);
      const chat = opts.chat ? chatFromFlags(model, opts, opts.text) : undefined;
      const prompt = chat ? chat.tokens : model.toTokens(opts.text);
      if (prompt.length >= model.cfg.nCtx) throw new LanternError(`the prompt is ${prompt.length} tokens, which fills the model's context of ${model.cfg.nCtx}: no room to generate`);
      const settings: GenerateOptions = {
        maxNewTokens: opts.maxNewTokens, temperature: opts.temperature, topK: opts.topK, topP: opts.topP, minP: opts.minP,
        repetitionPenalty: opts.repetitionPenalty, seed: opts.seed, stop: opts.stop ?? [], ...(opts.stopToken ? { stopTokens: opts.stopToken } : {}),
      };
      const streaming = opts.json !== true;
      let result: Generation | undefined;
      if (streaming) process.stdout.write(chat ? chat.text : opts.text);
      for await (const c of generateStream(model, prompt, settings)) {
        if (streaming && c.text) process.stdout.write(c.text);
        result ??= c.result;
      }
      if (streaming) process.stdout.write('\n');
      const { tokens, text, finishReason } = result!;
      const saved = {
        model: source, ...hubRecord(model), method: 'generate', settings: { ...settings, stopTokens: settings.stopTokens ?? null, ...chatSettings(opts, chat) }, seed: opts.seed,
        prompt: opts.text, promptTokens: prompt, tokens, tokenStrings: model.tokenStrings(tokens), text, finishReason,
      };
      emitOutputs(opts, saved, {}, () => {});
    });
}
