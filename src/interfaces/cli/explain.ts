import fs from 'node:fs';
import { Command, Option } from 'commander';
import { openBackend } from '../../backends/index.js';
import type { HttpEvent } from '../../backends/http.js';
import { LanternError } from '../../errors.js';
import {
  explainWithBackend, renderHtml, renderTerminal, resultToJSON, GRANULARITIES, PERTURBATION_METHODS,
} from '../../methods/attribution/index.js';
import type { BackendMasking, Granularity } from '../../methods/attribution/index.js';
import { defaultModel } from './defaults.js';
import { assertWritable, nonNegativeInt, positiveInt } from './forward.js';

function oneOf<T extends string>(flag: string, values: readonly T[]) {
  return (v: string): T => {
    if ((values as readonly string[]).includes(v)) return v as T;
    throw new LanternError(`${flag} must be one of ${values.join(', ')}, got '${v}'`);
  };
}

function ids(flag: string) {
  return (v: string): number[] => v.split(',').map((s) => {
    const n = Number(s.trim());
    if (s.trim() === '' || !Number.isInteger(n) || n < 0) throw new LanternError(`${flag} must be comma-separated token ids, got '${v}'`);
    return n;
  });
}

function masking(v: string): BackendMasking {
  if (v === 'delete') return v;
  const m = /^(text|token):(.*)$/s.exec(v);
  if (!m) throw new LanternError(`--mask must be 'delete', 'text:<replacement>' or 'token:<id>', got '${v}'`);
  if (m[1] === 'text') return { text: m[2] };
  if (!/^\d+$/.test(m[2])) throw new LanternError(`--mask token:<id> needs a token id, got '${m[2]}'`);
  return { token: Number(m[2]) };
}

function positiveNumber(flag: string) {
  return (v: string): number => {
    const n = Number(v);
    if (v.trim() === '' || !Number.isFinite(n) || n <= 0) throw new LanternError(`${flag} must be a positive number, got '${v}'`);
    return n;
  };
}

export function explainCommand(program: Command): void {
  program
    .command('explain')
    .description('Model-agnostic attribution: occlusion / leave-one-out, LIME, KernelSHAP or Shapley sampling over the prompt\'s tokens, words or sentences, through any backend (an OpenAI-compatible server, a GGUF file, or a Lantern model).')
    .option('-b, --backend <spec>', 'http(s)://host:port/v1 (OpenAI-compatible), gguf:<file.gguf>, or lantern:<folder|hub-id> (default: the bundled model)')
    .option('--remote-model <name>', 'http: the model name on the server (default: its only model)')
    .addOption(new Option('--api <api>', 'http: completions (exact scores via echo + logprobs) or chat (approximate, from top_logprobs)').default('completions').argParser(oneOf('--api', ['completions', 'chat'] as const)))
    .option('-t, --text <text>', 'the prompt')
    .option('--tokens <ids>', 'the prompt as comma-separated token ids of the backend (instead of --text)', ids('--tokens'))
    .option('--target <text>', "the continuation to explain (default: the backend's greedy next token)")
    .option('--target-ids <ids>', 'the continuation as token ids', ids('--target-ids'))
    .addOption(new Option('--method <name>', `one of ${PERTURBATION_METHODS.join(', ')}`).default('occlusion').argParser(oneOf('--method', PERTURBATION_METHODS)))
    .addOption(new Option('--granularity <g>', `${GRANULARITIES.join(', ')} (default: word for --text, token for --tokens)`).argParser(oneOf('--granularity', GRANULARITIES)))
    .option('--mask <m>', "'delete' (default: leave the feature out), 'text:<replacement>' (words, sentences) or 'token:<id>' (tokens)", masking)
    .addOption(new Option('--kind <kind>', 'explain the log-probability or the probability of the continuation').default('logprob').argParser(oneOf('--kind', ['logprob', 'prob'] as const)))
    .option('--samples <n>', 'lime: random masks (default 200); shap: coalition budget (default max(200, 4n)); shapley: permutations (default 50)', positiveInt('--samples'))
    .option('--kernel-width <w>', 'lime: kernel width on cosine distance (default 0.25)', positiveNumber('--kernel-width'))
    .addOption(new Option('--seed <n>', 'seeds lime, shap and shapley').default(0).argParser(nonNegativeInt('--seed', 0xffffffff)))
    .option('--eval', 'also measure faithfulness (comprehensiveness, sufficiency, AOPC, Kendall tau vs leave-one-out) through the backend')
    .option('--concurrency <n>', 'http: requests in flight (default 4)', positiveInt('--concurrency'))
    .option('--retries <n>', 'http: retries on 429 / 5xx / timeouts (default 4)', nonNegativeInt('--retries', 100))
    .option('--timeout <ms>', 'http: per-request timeout in ms (default 60000)', positiveInt('--timeout'))
    .option('--no-cache', 'http: do not answer identical queries from memory')
    .option('--api-key-env <name>', 'http: environment variable holding the API key (default OPENAI_API_KEY)')
    .option('--html <file.html>', 'write a self-contained HTML report')
    .option('--json <file.json>', 'write the result as JSON')
    .option('--no-color', 'plain text output')
    .addHelpText('after', [
      '',
      'Examples:',
      '  lantern explain --backend http://127.0.0.1:8000/v1 --text "The capital of France is" --target " Paris" --method shap',
      '  lantern explain --backend gguf:demo.gguf --text "He went home. The door was open." --granularity sentence',
      '  lantern explain --tokens 464,9002,531 --target-ids 326 --mask token:220      # exactly what `attribute --mask token:220` perturbs',
    ].join('\n'))
    .action(async (opts) => {
      if ((opts.text === undefined) === (opts.tokens === undefined)) throw new LanternError('give the prompt as --text or as --tokens (one of them)');
      if (opts.target !== undefined && opts.targetIds !== undefined) throw new LanternError('give --target or --target-ids, not both');
      if (opts.samples !== undefined && opts.method === 'occlusion') throw new LanternError('--samples applies only to --method lime, shap or shapley');
      if (opts.kernelWidth !== undefined && opts.method !== 'lime') throw new LanternError('--kernel-width applies only to --method lime');
      if (opts.html) assertWritable(opts.html, '--html');
      if (opts.json) assertWritable(opts.json, '--json');
      const spec: string = opts.backend ?? `lantern:${defaultModel()}`;
      const http = /^https?:\/\//.test(spec);
      const httpOnly = ['remoteModel', 'concurrency', 'retries', 'timeout', 'apiKeyEnv'].find((k) => opts[k] !== undefined);
      if (!http && httpOnly) throw new LanternError(`--${httpOnly.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`)} applies only to an http(s):// backend`);
      const backend = await openBackend(spec, {
        model: opts.remoteModel, api: opts.api, concurrency: opts.concurrency, retries: opts.retries, timeoutMs: opts.timeout,
        cache: opts.cache, apiKeyEnv: opts.apiKeyEnv,
        onEvent: (e: HttpEvent) => { if (e.type === 'retry') console.error(`retrying (${e.attempt}) after ${e.reason}, in ${Math.round(e.delayMs ?? 0)} ms`); },
      });
      try {
        const result = await explainWithBackend(backend, {
          prompt: opts.text ?? opts.tokens, target: opts.target ?? opts.targetIds, method: opts.method,
          granularity: opts.granularity as Granularity | undefined, mask: opts.mask, kind: opts.kind,
          samples: opts.samples, kernelWidth: opts.kernelWidth, seed: opts.seed, evaluate: Boolean(opts.eval),
        });
        if (opts.json) fs.writeFileSync(opts.json, JSON.stringify(resultToJSON(result), null, 2) + '\n');
        if (opts.html) fs.writeFileSync(opts.html, renderHtml(result));
        const color = opts.color !== false && process.env.NO_COLOR === undefined && (Boolean(process.stdout.isTTY) || Boolean(process.env.FORCE_COLOR && process.env.FORCE_COLOR !== '0'));
        console.log(renderTerminal(result, { color }));
        const u = result.backend.usage;
        console.log(`backend ${backend.id}: ${u.requests} requests, ${u.cachedRequests} answered from the cache, ${u.retries} retries, ${u.promptTokens} prompt tokens${u.cost !== undefined ? `, cost ${u.cost.toFixed(6)}` : ''}`);
        if (result.backend.approximate) console.log('note: the scores are approximate (the chat API cannot score a fixed continuation exactly)');
        if (opts.json) console.log(`saved the result to ${opts.json}`);
        if (opts.html) console.log(`saved the HTML report to ${opts.html}`);
      } finally {
        await backend.close?.();
      }
    });
}
