/**
 * `lantern attribute --backend <spec>`: the perturbation methods (occlusion / leave-one-out, LIME,
 * KernelSHAP, Shapley sampling) through a black-box backend instead of the engine's internals —
 * the same flags and method code as white-box `attribute`, so a user moves between the two by
 * adding one flag. The options only this path takes are added to `attribute` from here.
 */
import fs from 'node:fs';
import { Option } from 'commander';
import { openBackend } from '../../backends/index.js';
import { LanternError } from '../../errors.js';
import { explainWithBackend, renderHtml, renderTerminal, resultToJSON, PERTURBATION_METHODS } from '../../methods/attribution/index.js';
import type { BackendMasking, Granularity } from '../../methods/attribution/index.js';
import { defaultModel } from './defaults.js';
import { positiveInt } from './forward.js';
import { controlVectorOption, controlVectorsFor } from './control-vector-option.js';
import { httpBackendOptions, httpOptions } from './http-options.js';
import { assertWritable } from './output.js';

/** Options of `attribute` that only a backend run takes. */
export function backendOptions(): Option[] {
  return [
    new Option('--backend <spec>', "explain through a black-box backend: http(s)://host:port/v1 (OpenAI-compatible), gguf:<file.gguf>, lantern (the bundled model) or lantern:<folder|hub-id>; perturbation methods only"),
    ...httpOptions(),
    new Option('--concurrency <n>', 'with an http backend: requests in flight (default 4)').argParser(positiveInt('--concurrency')),
    new Option('--no-cache', 'with an http backend: do not answer identical queries from memory'),
    controlVectorOption(),
  ];
}

const BACKEND_ONLY = ['remoteModel', 'api', 'concurrency', 'retries', 'timeout', 'apiKeyEnv'];
// Includes flags of white-box methods added on other branches (hook, rollout, aopc, special).
const WHITE_BOX_ONLY = ['model', 'foil', 'steps', 'rule', 'baseline', 'aggregate', 'batchSize', 'layers', 'heads', 'hook', 'rollout', 'aopc', 'special'];
const flagOf = (k: string) => `--${k.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`)}`;

function masking(v: string): BackendMasking {
  if (v === 'delete') return v;
  const m = /^(text|token):(.*)$/s.exec(v);
  if (!m) throw new LanternError(`with --backend, --mask must be 'delete', 'text:<replacement>' or 'token:<id>', got '${v}'`);
  if (m[1] === 'text') return { text: m[2] };
  if (!/^\d+$/.test(m[2])) throw new LanternError(`with --backend, --mask token:<id> needs a token id of the backend, got '${m[2]}'`);
  return { token: Number(m[2]) };
}

/** Options only a backend run takes, when no backend is given: one clear error. */
export function rejectBackendOnly(opts: Record<string, unknown>): void {
  const k = BACKEND_ONLY.find((o) => opts[o] !== undefined) ?? (opts.cache === false ? 'cache' : undefined);
  if (k) throw new LanternError(`${k === 'cache' ? '--no-cache' : flagOf(k)} applies only with --backend`);
  if (opts.controlVector !== undefined) throw new LanternError('--control-vector applies only with --backend gguf:<file.gguf>');
}

/** `methodGiven`: --method was on the command line (otherwise the white-box default, ig, is replaced by occlusion). */
export async function attributeViaBackend(opts: Record<string, any>, methodGiven: boolean): Promise<void> {
  const method = methodGiven ? String(opts.method) : 'occlusion';
  if (!(PERTURBATION_METHODS as readonly string[]).includes(method)) {
    throw new LanternError(`--method ${method} needs the model's internals; with --backend use ${PERTURBATION_METHODS.join(', ')}`);
  }
  const white = WHITE_BOX_ONLY.find((k) => opts[k] !== undefined);
  if (white) throw new LanternError(`${flagOf(white)} does not apply with --backend${white === 'model' ? ' (use --backend lantern:<folder>)' : ''}`);
  if (opts.kind === 'logit') throw new LanternError("--kind logit needs the model's logits; with --backend use logprob or prob");
  if (opts.samples !== undefined && method === 'occlusion') throw new LanternError('--samples applies only to --method lime, shap or shapley');
  if (opts.kernelWidth !== undefined && method !== 'lime') throw new LanternError('--kernel-width applies only to --method lime');
  if (opts.html) assertWritable(opts.html, '--html');
  if (opts.json) assertWritable(opts.json, '--json');
  // defaultModel() explains a missing bundled model in one line.
  const spec: string = opts.backend === 'lantern' ? `lantern:${defaultModel()}` : opts.backend;
  const http = /^https?:\/\//.test(spec);
  const httpOnly = BACKEND_ONLY.find((k) => opts[k] !== undefined) ?? (opts.cache === false ? 'cache' : undefined);
  if (!http && httpOnly) throw new LanternError(`${httpOnly === 'cache' ? '--no-cache' : flagOf(httpOnly)} applies only to an http(s):// backend`);
  const controlVectors = controlVectorsFor(opts, spec);
  const mask = opts.mask === undefined ? undefined : masking(opts.mask);
  const backend = await openBackend(spec, { ...httpBackendOptions(opts), concurrency: opts.concurrency, cache: opts.cache, controlVectors });
  try {
    const result = await explainWithBackend(backend, {
      prompt: opts.text, target: opts.target, method, granularity: opts.granularity as Granularity | undefined, mask, kind: opts.kind,
      samples: opts.samples, kernelWidth: opts.kernelWidth, seed: opts.seed, evaluate: Boolean(opts.eval),
    });
    if (opts.json) fs.writeFileSync(opts.json, JSON.stringify(resultToJSON(result), null, 2) + '\n');
    if (opts.html) fs.writeFileSync(opts.html, renderHtml(result));
    const color = opts.color !== false && process.env.NO_COLOR === undefined && process.env.FORCE_COLOR !== '0'
      && (Boolean(process.stdout.isTTY) || Boolean(process.env.FORCE_COLOR));
    console.log(renderTerminal(result, { color }));
    const u = result.backend.usage;
    console.log(`backend ${backend.id}: ${u.requests} requests, ${u.cachedRequests} answered from the cache, ${u.retries} retries, ${u.promptTokens} prompt tokens${u.cost !== undefined ? `, cost ${u.cost.toFixed(6)}` : ''}`);
    if (result.backend.approximate) console.log('note: the scores are approximate (the chat API cannot score a fixed continuation exactly)');
    if (opts.json) console.log(`saved the result to ${opts.json}`);
    if (opts.html) console.log(`saved the HTML report to ${opts.html}`);
  } finally {
    await backend.close?.();
  }
}
