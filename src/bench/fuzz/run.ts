/**
 * `npm run fuzz`: a longer fuzzing campaign than the test suite's (test/fuzz.test.ts), printing
 * the count of each outcome per input kind. `npm run fuzz -- --runs 2000 --seed 7 --only gguf`;
 * kinds: gguf, tokenizer.json, 'workbench requests', '/v1 requests', config.json, model.safetensors, sharded,
 * 'dataset files', 'chat templates', 'control vectors', 'SAE folders', 'workbench routes', 'job folders'.
 */
import { campaign, formatReport, FuzzKind } from './harness.js';
import { ggufKind } from './gguf.js';
import { tokenizerKind } from './tokenizer.js';
import { workbenchKind, openaiKind } from './requests.js';
import { configKind, safetensorsKind, shardedKind } from './models.js';
import { chatTemplateKind, controlVectorKind, datasetKind } from './files.js';
import { saeKind } from './sae.js';
import { routesKind } from './routes.js';
import { jobsKind } from './jobs.js';

function arg(name: string, fallback: string): string {
  const i = process.argv.indexOf(`--${name}`);
  return i > 0 && process.argv[i + 1] !== undefined ? process.argv[i + 1] : fallback;
}

const runs = Number(arg('runs', '1000'));
const seed = Number(arg('seed', '20261206'));
const only = arg('only', '');
const kinds: FuzzKind<any>[] = [ggufKind({ loads: 24 }), tokenizerKind(), workbenchKind(), openaiKind(), configKind(), safetensorsKind(), shardedKind(), datasetKind(), chatTemplateKind(), controlVectorKind(), saeKind(), routesKind(), jobsKind()].filter((k) => !only || only.split(',').includes(k.name));
let failed = false;
for (const k of kinds) {
  const t = Date.now();
  const r = await campaign(k, { runs, seed, shrink: true });
  console.log(`${formatReport(r)}  (${((Date.now() - t) / 1000).toFixed(0)} s)`);
  failed ||= r.failure !== undefined;
}
process.exit(failed ? 1 : 0);
