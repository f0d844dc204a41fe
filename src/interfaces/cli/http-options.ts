/**
 * The options every command that can talk to an OpenAI-compatible server takes (`attribute
 * --backend http…`, `explain --backend/--judge/--infiller http…`), parsed the same way, and the
 * retry lines they print: a run waiting on a slow or throttling server says so instead of
 * printing nothing for a minute.
 */
import { Option } from 'commander';
import type { OpenBackendOptions } from '../../backends/index.js';
import { DEFAULT_RETRIES, DEFAULT_TIMEOUT_MS, HttpEvent } from '../../backends/http.js';
import { LanternError } from '../../errors.js';
import { nonNegativeInt, positiveInt } from './forward.js';

export function httpOptions(): Option[] {
  return [
    new Option('--remote-model <name>', 'with an http backend: the model name on the server (default: its only model)'),
    new Option('--api <api>', 'with an http backend: completions (exact scores via echo + logprobs, default) or chat (approximate, from top_logprobs)'),
    new Option('--retries <n>', `with an http backend: retries on 429 / 5xx / timeouts / malformed answers (default ${DEFAULT_RETRIES})`).argParser(nonNegativeInt('--retries', 100)),
    new Option('--timeout <ms>', `with an http backend: per-request timeout in ms (default ${DEFAULT_TIMEOUT_MS})`).argParser(positiveInt('--timeout')),
    new Option('--api-key-env <name>', 'with an http backend: environment variable holding the API key (default OPENAI_API_KEY)'),
  ];
}

/** The option keys httpOptions() adds, as commander names them. */
export const HTTP_OPTION_KEYS = ['remoteModel', 'api', 'retries', 'timeout', 'apiKeyEnv'] as const;

export function httpBackendOptions(opts: Record<string, any>): OpenBackendOptions {
  if (opts.api !== undefined && opts.api !== 'completions' && opts.api !== 'chat') throw new LanternError(`--api must be completions or chat, got '${opts.api}'`);
  const tries = (opts.retries ?? DEFAULT_RETRIES) + 1;
  return {
    model: opts.remoteModel, api: opts.api, retries: opts.retries, timeoutMs: opts.timeout, apiKeyEnv: opts.apiKeyEnv,
    onEvent: (e: HttpEvent) => {
      if (e.type === 'retry') console.error(`lantern: ${e.path} attempt ${e.attempt} of ${tries} failed (${e.reason}); retrying in ${Math.round(e.delayMs ?? 0)} ms`);
    },
  };
}
