import { Command, Option } from 'commander';
import { LanternError } from '../../errors.js';
import { hookNames } from '../../models/forward.js';
import { writeRandomModel } from '../../models/random.js';
import { architectureFor, architectures, readConfig, SUPPORTED_ARCHITECTURES } from '../../models/config.js';
import { positiveInt, nonNegativeInt } from './forward.js';
import { modelOption, revisionOption, modelFolderFromFlags } from './model-option.js';

export function hooksCommand(program: Command): void {
  program
    .command('hooks')
    .description("List the model's hook points (TransformerLens names).")
    .addOption(modelOption('model folder or Hub id (default: the bundled model)')).addOption(revisionOption())
    .action(async (opts) => {
      const folder = await modelFolderFromFlags(opts);
      for (const name of hookNames(readConfig(folder))) console.log(name);
    });
}

export function makeRandomCommand(program: Command): void {
  const presets = architectures().map((a) => `${a.modelType}: ${Object.keys(a.presets).join(', ')}`).join('; ');
  program
    .command('make-random')
    .description('Write a model of any family with random weights (for tests and benchmarks) as a Hugging Face folder.')
    .argument('<folder>', 'where to write config.json, model.safetensors and tokenizer.json')
    .addOption(new Option('--arch <model_type>', 'architecture').choices(SUPPORTED_ARCHITECTURES).default('gpt2'))
    .option('--preset <name>', `starting shape (${presets})`, 'tiny')
    .option('--layers <n>', 'number of blocks', positiveInt('--layers'))
    .option('--d-model <n>', 'residual width', positiveInt('--d-model'))
    .option('--heads <n>', 'attention heads', positiveInt('--heads'))
    .option('--kv-heads <n>', 'key/value heads (grouped-query attention)', positiveInt('--kv-heads'))
    .option('--d-mlp <n>', 'MLP width', positiveInt('--d-mlp'))
    .option('--vocab <n>', 'vocabulary size (>= 256; 50257 = GPT-2)', positiveInt('--vocab'))
    .option('--ctx <n>', 'context length', positiveInt('--ctx'))
    .addOption(new Option('--seed <n>', 'random seed (0 to 4294967295)').default(0).argParser(nonNegativeInt('--seed', 0xffffffff)))
    .addOption(new Option('--dtype <dtype>', 'stored dtype').choices(['F32', 'F16', 'BF16']).default('F32'))
    .addHelpText('after', '\nExamples:\n  lantern make-random /tmp/gpt2-random --preset gpt2-small --seed 1\n  lantern make-random /tmp/llama-1b --arch llama --preset llama-3.2-1b --dtype BF16')
    .action((folder: string, opts) => {
      const arch = architectureFor(opts.arch);
      const base = arch.presets[opts.preset];
      if (!base) throw new LanternError(`--preset ${opts.preset} is not a ${arch.modelType} preset; presets: ${Object.keys(arch.presets).join(', ')}`);
      const dModel = opts.dModel ?? base.dModel;
      const nHeads = opts.heads ?? base.nHeads;
      const reshaped = opts.dModel !== undefined || opts.heads !== undefined;
      if (reshaped && dModel % nHeads !== 0) throw new LanternError(`--d-model ${dModel} is not divisible by --heads ${nHeads}`);
      const dHead = reshaped ? dModel / nHeads : base.dHead;
      const nKvHeads = opts.kvHeads ?? (opts.heads !== undefined ? nHeads : base.nKvHeads);
      if (nHeads % nKvHeads !== 0) throw new LanternError(`--heads ${nHeads} is not a multiple of --kv-heads ${nKvHeads}`);
      if (nKvHeads !== nHeads && (arch.modelType === 'gpt2' || arch.modelType === 'gpt_neox')) throw new LanternError(`${arch.modelType} has no grouped-query attention: --kv-heads must equal --heads`);
      const vocab = opts.vocab ?? base.dVocab;
      if (vocab < 256) throw new LanternError('--vocab must be at least 256 (the byte alphabet)');
      // Rotary dimensions keep the preset's fraction of each head.
      const rotary = (r: typeof base.rope) => r && { ...r, dims: Math.max(2, 2 * Math.round((r.dims / base.dHead) * dHead / 2)) };
      const cfg = {
        ...base, nLayers: opts.layers ?? base.nLayers, dModel, nHeads, nKvHeads, dHead,
        dMlp: opts.dMlp ?? (opts.dModel ? 4 * dModel : base.dMlp), dVocab: vocab, nCtx: opts.ctx ?? base.nCtx,
        ...(base.rope ? { rope: rotary(base.rope) } : {}), ...(base.localRope ? { localRope: rotary(base.localRope) } : {}),
        ...(base.embedScale ? { embedScale: Math.sqrt(dModel) } : {}),
        ...(base.slidingLayers ? { slidingLayers: base.slidingLayers.filter((l) => l < (opts.layers ?? base.nLayers)) } : {}),
      };
      try {
        writeRandomModel(folder, cfg, { seed: opts.seed, dtype: opts.dtype });
      } catch (e) {
        // A file in the way, no permission, a full disk: the user's path, not a bug.
        if (e instanceof LanternError || !(e as NodeJS.ErrnoException).code) throw e;
        throw new LanternError(`cannot write the model to ${folder}: ${(e as Error).message}`);
      }
      const kv = cfg.nKvHeads !== cfg.nHeads ? ` (${cfg.nKvHeads} key/value)` : '';
      console.log(`wrote a random ${arch.modelType} (${cfg.nLayers} layers, d_model ${cfg.dModel}, ${cfg.nHeads} heads${kv}, vocab ${cfg.dVocab}) to ${folder}`);
    });
}
