/** The options of the logit and tuned lens (`lantern lens`, POST /api/lens), declared once (see ../options.ts). */
import type { MethodFamily } from '../options.js';

/** The lens options (`lantern lens`, POST /api/lens), declared once for the CLI, the API and the Workbench. */
export const LENS: MethodFamily = {
  name: 'lens', command: 'lens',
  options: [
    { key: 'text', flag: '--text', short: '-t', arg: '<text>', type: { kind: 'prompt' }, required: true, help: 'the prompt' },
    { key: 'target', flag: '--target', arg: '<token>', type: { kind: 'text', maxLength: 100 }, help: "a token (one token, e.g. ' Paris') whose probability and rank to show at every cell" },
    { key: 'topK', flag: '--top-k', short: '-k', arg: '<n>', type: { kind: 'integer', min: 1, max: 20 }, default: 5, help: 'top tokens per cell' },
    // A file path: the server reads no files a request names.
    // The server reads only the tuned lens that sits with the model (<model>/tuned-lens.safetensors).
    { key: 'tunedLens', flag: '--tuned-lens', arg: '', type: { kind: 'boolean' }, only: 'api', help: "decode through the tuned lens saved with the model (tuned-lens.safetensors in the model's folder)" },
    { key: 'tuned', flag: '--tuned', arg: '[file]', type: { kind: 'text', maxLength: 4096 }, only: 'cli', help: 'decode through a tuned lens (default file: <model>/tuned-lens.safetensors; train one with lantern tuned-lens train)' },
  ],
};
