import { Command } from 'commander';
import { writeControlVector } from '../../backends/control-vector.js';
import { exportGguf } from '../../backends/gguf-export.js';
import { LanternError } from '../../errors.js';
import { readRegularText } from '../../files.js';
import { readConfig } from '../../models/config.js';
import { assertWritable } from './output.js';
import { modelOption, revisionOption, modelFolderFromFlags } from './model-option.js';

export function exportGgufCommand(program: Command): void {
  program
    .command('export-gguf')
    .description('Write a model (GPT-2, Llama, Mistral, Qwen 2 or 3, Gemma 1, 2 or 3, GPT-NeoX, Phi-3) as a GGUF file (for llama.cpp, node-llama-cpp, Ollama, or `lantern attribute --backend gguf:<file>`).')
    .addOption(modelOption('model folder or Hub id (default: the bundled model)')).addOption(revisionOption())
    .requiredOption('-o, --out <file.gguf>', 'the GGUF file to write')
    .option('--name <name>', "the file's general.name (default: the model folder's name)")
    .option('--dtype <type>', 'storage of the weight matrices: f16 (default) or f32; norms and biases are always f32', 'f16')
    .addHelpText('after', '\nExample:\n  lantern export-gguf --out demo.gguf && lantern attribute --backend gguf:demo.gguf --text "The jury said that the city" --target " was"')
    .action(async (opts) => {
      if (opts.dtype !== 'f16' && opts.dtype !== 'f32') throw new LanternError(`--dtype must be f16 or f32, got '${opts.dtype}'`);
      assertWritable(opts.out, '--out');
      const folder = await modelFolderFromFlags(opts);
      const r = exportGguf(folder, opts.out, { dtype: opts.dtype, name: opts.name });
      console.log(`wrote ${r.tensors} tensors (${(r.bytes / 2 ** 20).toFixed(1)} MiB, ${opts.dtype}) to ${opts.out}`);
      for (const c of r.caveats) console.error(`note: ${c}`);
    });
}

/** Reads `{ "blocks.{l}.hook_resid_post": [numbers], ... }` (or plain block numbers as keys). */
function readDirections(file: string): Map<number, Float32Array> {
  let raw: unknown;
  try {
    raw = JSON.parse(readRegularText(file, 256 * 2 ** 20, '--directions file'));
  } catch (e) {
    throw e instanceof LanternError ? e : new LanternError(`${file} is not valid JSON: ${(e as Error).message.replace(/\s*\n\s*/g, ' ')}`);
  }
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) throw new LanternError(`${file} must hold an object of hook names to arrays of numbers, e.g. {"blocks.3.hook_resid_post": [0.1, ...]}`);
  const out = new Map<number, Float32Array>();
  for (const [key, values] of Object.entries(raw)) {
    const m = /^(?:blocks\.(\d+)\.hook_resid_post|(\d+))$/.exec(key);
    if (!m) throw new LanternError(`${file}: '${key}' is not blocks.{l}.hook_resid_post (llama.cpp adds control vectors to block outputs only)`);
    if (!Array.isArray(values) || values.some((v) => typeof v !== 'number')) throw new LanternError(`${file}: '${key}' must be an array of numbers`);
    out.set(Number(m[1] ?? m[2]), Float32Array.from(values as number[]));
  }
  return out;
}

export function exportControlVectorCommand(program: Command): void {
  program
    .command('export-control-vector')
    .description("Write steering directions (vectors added to block outputs, blocks.{l}.hook_resid_post) as a llama.cpp control vector GGUF (llama.cpp's --control-vector; direction.{l} is added to the output of block l, so block 0 cannot be steered).")
    .requiredOption('-d, --directions <file.json>', 'JSON object: {"blocks.{l}.hook_resid_post": [d_model numbers], ...}')
    .requiredOption('-o, --out <file.gguf>', 'the control vector file to write')
    .addOption(modelOption('the model the directions are for: checks blocks and width, and names its family in the file (default: the bundled model)')).addOption(revisionOption())
    .addHelpText('after', '\nExample:\n  lantern export-control-vector --model ./my-llama --directions happy.json --out happy.gguf\n  llama-cli -m my-llama.gguf --control-vector-scaled happy.gguf 0.8 ...')
    .action(async (opts) => {
      assertWritable(opts.out, '--out');
      const directions = readDirections(opts.directions);
      const cfg = readConfig(await modelFolderFromFlags(opts));
      const bytes = writeControlVector(opts.out, { modelHint: cfg.architecture, directions }, { nLayers: cfg.nLayers, dModel: cfg.dModel });
      console.log(`wrote ${directions.size} direction${directions.size === 1 ? '' : 's'} (blocks ${[...directions.keys()].sort((a, b) => a - b).join(', ')}; ${bytes} bytes) to ${opts.out}`);
    });
}
