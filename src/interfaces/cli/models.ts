import { Command, Option } from 'commander';
import { LanternError } from '../../errors.js';
import { readConfig } from '../../models/config.js';
import { hookNames } from '../../models/forward.js';
import { resolveModelFolder } from '../../models/hub.js';
import { writeRandomModel, GPT2_SMALL, TINY_GPT2 } from '../../models/random.js';
import { defaultModel } from './defaults.js';
import { positiveInt, nonNegativeInt } from './forward.js';

export function hooksCommand(program: Command): void {
  program
    .command('hooks')
    .description("List the model's hook points (TransformerLens names).")
    .option('-m, --model <folder|hub-id>', 'model folder or Hub id (default: the bundled model)')
    .action(async (opts) => {
      const folder = await resolveModelFolder(opts.model ?? defaultModel());
      for (const name of hookNames(readConfig(folder))) console.log(name);
    });
}

export function makeRandomCommand(program: Command): void {
  program
    .command('make-random')
    .description('Write a GPT-2 model with random weights (for tests and benchmarks) as a Hugging Face folder.')
    .argument('<folder>', 'where to write config.json, model.safetensors and tokenizer.json')
    .addOption(new Option('--preset <name>', 'starting shape').choices(['tiny', 'gpt2-small']).default('tiny'))
    .option('--layers <n>', 'number of blocks', positiveInt('--layers'))
    .option('--d-model <n>', 'residual width', positiveInt('--d-model'))
    .option('--heads <n>', 'attention heads', positiveInt('--heads'))
    .option('--d-mlp <n>', 'MLP width', positiveInt('--d-mlp'))
    .option('--vocab <n>', 'vocabulary size (>= 256; 50257 = GPT-2)', positiveInt('--vocab'))
    .option('--ctx <n>', 'context length', positiveInt('--ctx'))
    .addOption(new Option('--seed <n>', 'random seed (0 to 4294967295)').default(0).argParser(nonNegativeInt('--seed', 0xffffffff)))
    .addOption(new Option('--dtype <dtype>', 'stored dtype').choices(['F32', 'F16', 'BF16']).default('F32'))
    .addHelpText('after', '\nExample:\n  lantern make-random /tmp/gpt2-random --preset gpt2-small --seed 1')
    .action((folder: string, opts) => {
      const base = opts.preset === 'gpt2-small' ? GPT2_SMALL : TINY_GPT2;
      const dModel = opts.dModel ?? base.dModel;
      const nHeads = opts.heads ?? base.nHeads;
      if (dModel % nHeads !== 0) throw new LanternError(`--d-model ${dModel} is not divisible by --heads ${nHeads}`);
      const vocab = opts.vocab ?? base.dVocab;
      if (vocab < 256) throw new LanternError('--vocab must be at least 256 (the byte alphabet)');
      const cfg = {
        ...base, nLayers: opts.layers ?? base.nLayers, dModel, nHeads, dHead: dModel / nHeads,
        dMlp: opts.dMlp ?? (opts.dModel ? 4 * dModel : base.dMlp), dVocab: vocab, nCtx: opts.ctx ?? base.nCtx,
      };
      try {
        writeRandomModel(folder, cfg, { seed: opts.seed, dtype: opts.dtype });
      } catch (e) {
        // A file in the way, no permission, a full disk: the user's path, not a bug.
        if (e instanceof LanternError || !(e as NodeJS.ErrnoException).code) throw e;
        throw new LanternError(`cannot write the model to ${folder}: ${(e as Error).message}`);
      }
      console.log(`wrote a random GPT-2 (${cfg.nLayers} layers, d_model ${cfg.dModel}, ${cfg.nHeads} heads, vocab ${cfg.dVocab}) to ${folder}`);
    });
}
