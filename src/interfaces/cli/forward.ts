import { Command, Option } from 'commander';
import { LanternError } from '../../errors.js';
import { assertFinite } from '../../finite.js';
import { writeSafetensors, WritableTensor } from '../../models/safetensors.js';
import { topK } from '../../models/predictions.js';
import { assertWritable } from './output.js';
import { hubRecord, modelOption, revisionOption, loadModelFromFlags, modelSource } from './model-option.js';
import { chatFromFlags, chatOption, chatTemplateFlag, chatSettings, checkChatFlags, systemOption } from './chat-option.js';

export function forwardCommand(program: Command): void {
  program
    .command('forward')
    .description('Run the model on a prompt: top next-token predictions, optionally saving logits and activations.')
    .addOption(modelOption('Hugging Face model folder or Hub id (default: the bundled model)')).addOption(revisionOption())
    .requiredOption('-t, --text <text>', 'the prompt')
    .addOption(chatOption()).addOption(systemOption()).addOption(chatTemplateFlag())
    .addOption(new Option('-k, --top-k <n>', 'how many predictions to show').default(10).argParser(positiveInt('--top-k')))
    .option('-c, --cache <hooks>', 'comma-separated hook names to save with --out (e.g. blocks.0.hook_resid_post,blocks.3.attn.hook_pattern)')
    .option('-o, --out <file.safetensors>', 'write logits [batch, pos, vocab], the cached activations (float32, named by hook) and tokens (int32)')
    .option('--json', 'print the result as JSON')
    .addHelpText('after', '\nExample:\n  lantern forward --text "The capital of France is" --top-k 5 --cache blocks.0.hook_resid_post --out run.safetensors')
    .action(async (opts) => {
      const source = modelSource(opts);
      checkChatFlags(opts);
      const names: string[] = opts.cache ? String(opts.cache).split(',').map((s: string) => s.trim()).filter(Boolean) : [];
      if (names.length && !opts.out) throw new LanternError('--cache needs --out <file.safetensors> to save the activations to');
      if (opts.out && !String(opts.out).endsWith('.safetensors')) throw new LanternError(`--out must name a .safetensors file, got '${opts.out}'`);
      // Before loading and running the model, so a typo in the path costs nothing.
      if (opts.out) assertWritable(opts.out, '--out');
      const model = await loadModelFromFlags(opts);
      names.forEach((n) => model.checkHook(n));
      const chat = opts.chat ? chatFromFlags(model, opts, opts.text) : undefined;
      const tokens = chat ? chat.tokens : model.toTokens(opts.text);
      const { logits, cache } = await model.runWithCache([tokens], names);
      const preds = assertFinite(topK(logits, tokens.length - 1, opts.topK, (id) => model.tokenStrings([id])[0]), 'the prediction');
      assertFinite(logits.f32, 'the logits');

      if (opts.out) {
        const tensors: Record<string, WritableTensor> = {
          logits: { dtype: 'F32', shape: logits.shape, data: logits.f32 },
          tokens: { dtype: 'I32', shape: [1, tokens.length], data: Int32Array.from(tokens) },
        };
        for (const [name, t] of cache.entries()) tensors[name] = { dtype: 'F32', shape: t.shape, data: t.f32 };
        writeSafetensors(opts.out, tensors, { model: source, ...(model.hub ? { commit: model.hub.commit } : {}), text: opts.text, generator: 'lantern forward' });
      }
      if (opts.json) {
        console.log(JSON.stringify({
          model: source, ...hubRecord(model), method: 'forward', settings: { topK: opts.topK, cache: names, ...chatSettings(opts, chat) },
          text: opts.text, tokens, tokenStrings: model.tokenStrings(tokens), predictions: preds,
          ...(opts.out ? { out: opts.out } : {}),
        }, null, 2));
        return;
      }
      console.log(`model: ${source}`);
      console.log(`prompt: ${JSON.stringify(opts.text)} (${tokens.length} tokens)`);
      console.log(`top ${preds.length} next tokens:`);
      const width = Math.max(...preds.map((p) => JSON.stringify(p.token).length));
      preds.forEach((p, i) => {
        const bar = '█'.repeat(Math.round(p.prob * 30));
        console.log(`${String(i + 1).padStart(3)}. ${JSON.stringify(p.token).padEnd(width)}  ${(100 * p.prob).toFixed(2).padStart(6)}%  logit ${p.logit.toFixed(3).padStart(8)}  ${bar}`);
      });
      if (opts.out) console.log(`saved logits${names.length ? ` and ${names.length} activations` : ''} to ${opts.out}`);
    });
}

export function positiveNumber(flag: string) {
  return (v: string): number => {
    const n = Number(v);
    if (!(n > 0) || !Number.isFinite(n)) throw new LanternError(`${flag} must be a positive number, got '${v}'`);
    return n;
  };
}

export function positiveInt(flag: string) {
  return (v: string): number => {
    const n = Number(v);
    if (!Number.isInteger(n) || n <= 0) throw new LanternError(`${flag} must be a positive integer, got '${v}'`);
    return n;
  };
}

export function nonNegativeInt(flag: string, max = Number.MAX_SAFE_INTEGER) {
  return (v: string): number => {
    const n = Number(v);
    if (v.trim() === '' || !Number.isInteger(n) || n < 0 || n > max) throw new LanternError(`${flag} must be an integer from 0 to ${max}, got '${v}'`);
    return n;
  };
}
