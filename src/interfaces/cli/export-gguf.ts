import { Command } from 'commander';
import { exportGguf } from '../../backends/gguf-export.js';
import { LanternError } from '../../errors.js';
import { assertWritable } from './output.js';
import { modelOption, revisionOption, modelFolderFromFlags } from './model-option.js';

export function exportGgufCommand(program: Command): void {
  program
    .command('export-gguf')
    .description('Write a model (GPT-2, Llama, Qwen 2 or 3, Gemma 1 or 2, GPT-NeoX) as a GGUF file (for llama.cpp, node-llama-cpp, Ollama, or `lantern attribute --backend gguf:<file>`).')
    .addOption(modelOption('model folder or Hub id (default: the bundled model)')).addOption(revisionOption())
    .requiredOption('-o, --out <file.gguf>', 'the GGUF file to write')
    .option('--dtype <type>', 'storage of the weight matrices: f16 (default) or f32; norms and biases are always f32', 'f16')
    .addHelpText('after', '\nExample:\n  lantern export-gguf --out demo.gguf && lantern attribute --backend gguf:demo.gguf --text "The jury said that the city" --target " was"')
    .action(async (opts) => {
      if (opts.dtype !== 'f16' && opts.dtype !== 'f32') throw new LanternError(`--dtype must be f16 or f32, got '${opts.dtype}'`);
      assertWritable(opts.out, '--out');
      const folder = await modelFolderFromFlags(opts);
      const r = exportGguf(folder, opts.out, { dtype: opts.dtype });
      console.log(`wrote ${r.tensors} tensors (${(r.bytes / 2 ** 20).toFixed(1)} MiB, ${opts.dtype}) to ${opts.out}`);
    });
}
