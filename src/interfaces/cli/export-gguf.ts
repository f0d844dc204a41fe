import { Command } from 'commander';
import { exportGguf } from '../../backends/gguf-export.js';
import { LanternError } from '../../errors.js';
import { resolveModelFolder } from '../../models/hub.js';
import { defaultModel } from './defaults.js';
import { assertWritable } from './output.js';

export function exportGgufCommand(program: Command): void {
  program
    .command('export-gguf')
    .description('Write a model (GPT-2, Llama, Mistral, Qwen 2 or 3, Gemma 1, 2 or 3, GPT-NeoX, Phi-3) as a GGUF file (for llama.cpp, node-llama-cpp, Ollama, or `lantern attribute --backend gguf:<file>`).')
    .option('-m, --model <folder|hub-id>', 'model folder or Hub id (default: the bundled model)')
    .requiredOption('-o, --out <file.gguf>', 'the GGUF file to write')
    .option('--name <name>', "the file's general.name (default: the model folder's name)")
    .option('--dtype <type>', 'storage of the weight matrices: f16 (default) or f32; norms and biases are always f32', 'f16')
    .addHelpText('after', '\nExample:\n  lantern export-gguf --out demo.gguf && lantern attribute --backend gguf:demo.gguf --text "The jury said that the city" --target " was"')
    .action(async (opts) => {
      if (opts.dtype !== 'f16' && opts.dtype !== 'f32') throw new LanternError(`--dtype must be f16 or f32, got '${opts.dtype}'`);
      assertWritable(opts.out, '--out');
      const folder = await resolveModelFolder(opts.model ?? defaultModel());
      const r = exportGguf(folder, opts.out, { dtype: opts.dtype, name: opts.name });
      console.log(`wrote ${r.tensors} tensors (${(r.bytes / 2 ** 20).toFixed(1)} MiB, ${opts.dtype}) to ${opts.out}`);
      for (const c of r.caveats) console.error(`note: ${c}`);
    });
}
