/**
 * A language model behind an OpenAI-compatible HTTP API (OpenAI, vLLM, Lantern's own
 * `serveOpenAI`, ...), as a LanguageModelBackend.
 *
 * Scoring a fixed continuation:
 *   'completions' (default)  POST /v1/completions with the prompt followed by the continuation,
 *                 `echo: true`, `max_tokens: 0` and `logprobs: 1`: the server returns the log-prob
 *                 of every token it was given, so the continuation's log-probs are exact. The
 *                 prompt may be text or token ids (the API accepts an array of ids).
 *   'chat'        POST /v1/chat/completions cannot be given an answer to score, only asked for
 *                 one: the greedy reply is requested with `logprobs` and `top_logprobs`, and the
 *                 continuation is read off it — exact while the reply follows the continuation,
 *                 then the first diverging token is looked up among the top alternatives (the
 *                 smallest listed log-prob, an upper bound, when it is not there), and later tokens
 *                 are not scored because the reply no longer conditions on the continuation.
 *                 Every such score says `approximate: true`.
 *
 * Transport: at most `concurrency` requests in flight; 429, 408, 5xx, network errors, timeouts and
 * unparseable bodies are retried with exponential backoff and jitter (a server's Retry-After is
 * honoured up to `maxBackoffMs`), other 4xx fail at once; each attempt has a timeout covering the
 * body, so a stalled server cannot hang a run. Identical queries are answered from a cache (the
 * in-flight promise is shared, so concurrent duplicates cost one request). Usage sums the
 * server-reported tokens and, given prices, their cost.
 */
import pLimit from 'p-limit';
import { LanternError } from '../errors.js';
import type {
  Continuation, ContinuationScore, Generation, GenerateOptions, LanguageModelBackend, Prompt, PromptLogprobs, ScoreOptions, Usage,
} from './types.js';

/** Which OpenAI endpoint scores continuations: `completions` (exact, `echo` + `logprobs`) or `chat` (approximate, read off `top_logprobs`). */
export type HttpApi = 'completions' | 'chat';

/** How to reach an OpenAI-compatible server and how patiently to talk to it. */
export interface HttpBackendOptions {
  /** e.g. 'https://api.openai.com/v1' or 'http://127.0.0.1:8000' ('/v1' is appended when the path is empty). */
  baseURL: string;
  model: string;
  api?: HttpApi;
  /** Default: the environment variable named by `apiKeyEnv`. Sent as a Bearer token when set. */
  apiKey?: string;
  /** Default 'OPENAI_API_KEY'. */
  apiKeyEnv?: string;
  /** Requests in flight at once (default 4). */
  concurrency?: number;
  /** Retries after the first attempt (default 2). */
  retries?: number;
  /** Per-attempt limit, including reading the body (default 20 s). */
  timeoutMs?: number;
  /** First backoff delay (default 500 ms), doubled per retry, with ±50% jitter. */
  backoffMs?: number;
  /** Cap on one backoff delay, also on a server's Retry-After (default 20 s). */
  maxBackoffMs?: number;
  /** Answer identical queries from memory (default true). */
  cache?: boolean;
  /** Most answers kept; the oldest are dropped first (default 10000). */
  cacheEntries?: number;
  /** Price per million prompt / completion tokens, for Usage.cost. */
  prices?: { prompt: number; completion: number };
  /** Chat scoring: alternatives asked per token (default 20, OpenAI's maximum). */
  topLogprobs?: number;
  /** Chat: an optional system message before the prompt. */
  system?: string;
  /** Told about every retry and every final failure (e.g. to print progress). */
  onEvent?: (e: HttpEvent) => void;
}

/** One event an HttpBackend reports (a retry, a response), for progress and logs. */
export interface HttpEvent {
  type: 'retry' | 'failure';
  path: string;
  attempt: number;
  reason: string;
  delayMs?: number;
}

interface Outcome {
  retryable: boolean;
  reason: string;
  retryAfterMs?: number;
}

/** Parses a Retry-After header (seconds or an HTTP date) into milliseconds. */
function retryAfter(h: string | null): number | undefined {
  if (!h) return undefined;
  const s = Number(h);
  if (Number.isFinite(s) && s >= 0) return s * 1000;
  const t = Date.parse(h);
  return Number.isFinite(t) ? Math.max(0, t - Date.now()) : undefined;
}

function errorText(body: string): string {
  try {
    const j = JSON.parse(body) as { error?: { message?: string } | string; message?: string };
    const m = typeof j.error === 'string' ? j.error : j.error?.message ?? j.message;
    if (m) return m;
  } catch { /* not JSON: show the start of the body */ }
  return body.replace(/\s+/g, ' ').slice(0, 200) || '(empty body)';
}

/** The useful part of a fetch failure: undici wraps the socket error (sometimes an AggregateError) in `cause`. */
function networkReason(e: unknown): string {
  const c = (e as { cause?: { code?: string; message?: string; errors?: { code?: string }[] } }).cause;
  return c?.code ?? c?.errors?.find((x) => x.code)?.code ?? c?.message ?? (e as Error).message;
}

function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) return reject(signal.reason);
    const timer = setTimeout(() => { signal?.removeEventListener('abort', onAbort); resolve(); }, ms);
    const onAbort = () => { clearTimeout(timer); reject(signal!.reason); };
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}

function positiveInt(v: number | undefined, fallback: number, what: string, min = 1): number {
  const n = v ?? fallback;
  if (!Number.isInteger(n) || n < min) throw new LanternError(`${what} must be an integer >= ${min}, got ${v}`);
  return n;
}

export const DEFAULT_RETRIES = 2;
export const DEFAULT_TIMEOUT_MS = 20_000;

/** Code points, the unit of OpenAI's `text_offset` (a Python string index). */
const codePoints = (s: string): number => [...s].length;

interface CompletionLogprobs {
  tokens: string[];
  token_logprobs: (number | null)[];
  text_offset?: number[];
  top_logprobs?: (Record<string, number> | null)[] | null;
}

interface ChatTokenLogprob {
  token: string;
  logprob: number;
  top_logprobs?: { token: string; logprob: number }[];
}

/** A model behind an OpenAI-compatible HTTP API (OpenAI, vLLM, Lantern's own `/v1`), with retries, a concurrency limit and a query cache. */
export class HttpBackend implements LanguageModelBackend {
  readonly id: string;
  readonly api: HttpApi;
  readonly baseURL: string;
  private readonly opts: Required<Pick<HttpBackendOptions, 'retries' | 'timeoutMs' | 'backoffMs' | 'maxBackoffMs' | 'topLogprobs'>>;
  private readonly apiKey: string | undefined;
  private readonly limit: ReturnType<typeof pLimit>;
  private readonly cache: Map<string, Promise<unknown>> | undefined;
  private readonly cacheEntries: number;
  private readonly counts: Required<Usage> = { requests: 0, cachedRequests: 0, promptTokens: 0, completionTokens: 0, retries: 0, failures: 0, cost: 0 };

  constructor(private readonly o: HttpBackendOptions) {
    let url: URL;
    try {
      url = new URL(o.baseURL);
    } catch {
      throw new LanternError(`not a URL: '${o.baseURL}' (give e.g. http://127.0.0.1:8000/v1)`);
    }
    if (url.protocol !== 'http:' && url.protocol !== 'https:') throw new LanternError(`the backend URL must be http(s), got '${o.baseURL}'`);
    if (url.pathname === '/' || url.pathname === '') url.pathname = '/v1';
    this.baseURL = url.toString().replace(/\/+$/, '');
    if (!o.model) throw new LanternError('an HTTP backend needs a model name (what the server calls it)');
    this.api = o.api ?? 'completions';
    if (this.api !== 'completions' && this.api !== 'chat') throw new LanternError(`unknown API '${String(o.api)}'; use 'completions' or 'chat'`);
    this.id = `http:${o.model}@${this.baseURL}${this.api === 'chat' ? ' (chat)' : ''}`;
    this.apiKey = o.apiKey ?? process.env[o.apiKeyEnv ?? 'OPENAI_API_KEY'];
    this.limit = pLimit(positiveInt(o.concurrency, 4, 'concurrency'));
    this.opts = {
      // A hanging server fails a command within about a minute: 3 attempts of 20 s, plus backoff.
      retries: positiveInt(o.retries, DEFAULT_RETRIES, 'retries', 0),
      timeoutMs: positiveInt(o.timeoutMs, DEFAULT_TIMEOUT_MS, 'timeout (ms)'),
      backoffMs: positiveInt(o.backoffMs, 500, 'backoff (ms)', 0),
      maxBackoffMs: positiveInt(o.maxBackoffMs, 20_000, 'max backoff (ms)', 0),
      topLogprobs: positiveInt(o.topLogprobs, 20, 'top logprobs', 0),
    };
    this.cache = o.cache === false ? undefined : new Map();
    this.cacheEntries = positiveInt(o.cacheEntries, 10_000, 'cache entries');
  }

  /** Requests, tokens and (given prices) cost so far. */
  usage(): Usage {
    return { ...this.counts, cost: this.o.prices ? this.counts.cost : undefined };
  }

  /** Forgets cached answers (e.g. to time a run from cold). */
  clearCache(): void {
    this.cache?.clear();
  }

  /** POST `body` to `path` (relative to the base URL; '../x' for the server root), via the cache and the concurrency limit. */
  private post<T>(path: string, body: object, signal?: AbortSignal): Promise<T> {
    const key = this.cache ? `${path}\n${JSON.stringify(body)}` : undefined;
    if (key) {
      const hit = this.cache!.get(key);
      if (hit) {
        this.counts.cachedRequests++;
        return hit as Promise<T>;
      }
    }
    const p = this.limit(() => this.send<T>(path, body, signal));
    if (key) {
      // A Map iterates in insertion order: the first key is the oldest.
      if (this.cache!.size >= this.cacheEntries) this.cache!.delete(this.cache!.keys().next().value!);
      this.cache!.set(key, p);
      // A failed query is not an answer: the next identical one asks again.
      p.catch(() => this.cache!.delete(key));
    }
    return p;
  }

  private url(path: string): string {
    if (path.startsWith('../')) return new URL(path.slice(3), new URL(this.baseURL).origin + '/').toString();
    return `${this.baseURL}/${path}`;
  }

  /** `body` undefined: a GET. */
  private async send<T>(path: string, body: object | undefined, signal?: AbortSignal): Promise<T> {
    const method = body === undefined ? 'GET' : 'POST';
    const headers: Record<string, string> = { accept: 'application/json', ...(body === undefined ? {} : { 'content-type': 'application/json' }) };
    if (this.apiKey) headers.authorization = `Bearer ${this.apiKey}`;
    const payload = body === undefined ? undefined : JSON.stringify(body);
    for (let attempt = 0; ; attempt++) {
      let outcome: Outcome;
      const timeout = AbortSignal.timeout(this.opts.timeoutMs);
      try {
        const res = await fetch(this.url(path), {
          method, headers, body: payload, signal: signal ? AbortSignal.any([signal, timeout]) : timeout,
        });
        const text = await res.text();
        if (res.ok) {
          try {
            const json = JSON.parse(text) as T & { usage?: { prompt_tokens?: number; completion_tokens?: number } };
            this.account(json.usage);
            return json;
          } catch {
            outcome = { retryable: true, reason: `malformed JSON in a ${res.status} response: ${JSON.stringify(text.slice(0, 80))}` };
          }
        } else {
          const s = res.status;
          outcome = { retryable: s === 429 || s === 408 || s >= 500, reason: `HTTP ${s}: ${errorText(text)}`, retryAfterMs: retryAfter(res.headers.get('retry-after')) };
        }
      } catch (e) {
        if (signal?.aborted) throw signal.reason ?? e;
        outcome = timeout.aborted
          ? { retryable: true, reason: `no complete response within ${this.opts.timeoutMs} ms` }
          : { retryable: true, reason: `network error: ${networkReason(e)}` };
      }
      if (!outcome.retryable || attempt >= this.opts.retries) {
        this.counts.failures++;
        this.o.onEvent?.({ type: 'failure', path, attempt, reason: outcome.reason });
        const tries = attempt > 0 ? ` after ${attempt + 1} attempts` : '';
        throw new LanternError(`${this.id}: ${method} ${path} failed${tries}: ${outcome.reason}`);
      }
      const backoff = Math.min(this.opts.maxBackoffMs, this.opts.backoffMs * 2 ** attempt) * (0.5 + Math.random());
      const delayMs = Math.min(this.opts.maxBackoffMs, Math.max(backoff, outcome.retryAfterMs ?? 0));
      this.counts.retries++;
      this.o.onEvent?.({ type: 'retry', path, attempt: attempt + 1, reason: outcome.reason, delayMs });
      await sleep(delayMs, signal);
    }
  }

  private account(u: { prompt_tokens?: number; completion_tokens?: number } | undefined): void {
    this.counts.requests++;
    const p = Number(u?.prompt_tokens) || 0;
    const c = Number(u?.completion_tokens) || 0;
    this.counts.promptTokens += p;
    this.counts.completionTokens += c;
    if (this.o.prices) this.counts.cost += (p * this.o.prices.prompt + c * this.o.prices.completion) / 1e6;
  }

  private malformed(what: string): LanternError {
    return new LanternError(`${this.id}: the server's answer ${what}`);
  }

  /** Log-probability of each continuation token given the prompt, from the server's logprobs (exact with the completions API, approximate with chat). */
  async scoreContinuation(prompt: Prompt, continuation: Continuation, opts: ScoreOptions = {}): Promise<ContinuationScore> {
    if (continuation.length === 0) throw new LanternError('empty continuation: nothing to score');
    if (prompt.length === 0) throw new LanternError('empty prompt: give at least one token');
    return this.api === 'chat' ? this.scoreChat(prompt, continuation, opts) : this.scoreCompletion(prompt, continuation, opts);
  }

  private async scoreCompletion(prompt: Prompt, continuation: Continuation, opts: ScoreOptions): Promise<ContinuationScore> {
    let input: string | number[];
    let count: number | undefined;
    if (typeof prompt === 'string' && typeof continuation === 'string') {
      input = prompt + continuation;
    } else {
      // Ids on either side: both must be ids (the server's tokenizer splits text; ask it to).
      const p = typeof prompt === 'string' ? await this.tokenize(prompt) : prompt;
      const c = typeof continuation === 'string' ? await this.tokenize(continuation) : continuation;
      input = [...p, ...c];
      count = c.length;
    }
    const body = { model: this.o.model, prompt: input, max_tokens: 0, echo: true, logprobs: 1, temperature: 0 };
    const res = await this.post<{ choices?: { logprobs?: CompletionLogprobs }[] }>('completions', body, opts.signal);
    const lp = res.choices?.[0]?.logprobs;
    if (!lp || !Array.isArray(lp.tokens) || !Array.isArray(lp.token_logprobs) || lp.tokens.length !== lp.token_logprobs.length) {
      throw this.malformed('has no echoed logprobs (does it support echo with logprobs on /v1/completions? if not, use the chat API)');
    }
    let start: number;
    if (count !== undefined) {
      start = lp.tokens.length - count;
    } else {
      // Text: the continuation's tokens are those starting at or after the prompt's end.
      const offsets = lp.text_offset;
      if (!Array.isArray(offsets) || offsets.length !== lp.tokens.length) throw this.malformed('has no text_offset to find where the continuation starts');
      const at = codePoints(prompt as string);
      start = offsets.findIndex((o) => o >= at);
      if (start < 0) start = offsets.length;
      if (offsets[start] !== at) {
        if (start === 0) throw this.malformed('has text offsets that do not match the prompt');
        throw new LanternError(`${this.id}: the server's tokenizer merged the end of the prompt with the start of the continuation into one token (${JSON.stringify(lp.tokens[start - 1])}); start the continuation with a space or pass token ids`);
      }
    }
    if (start < 1) throw this.malformed('echoed fewer tokens than the prompt has');
    const logprobs = lp.token_logprobs.slice(start);
    if (logprobs.length === 0 || !logprobs.every((v): v is number => typeof v === 'number' && Number.isFinite(v))) throw this.malformed('has missing or non-numeric logprobs for the continuation');
    return { tokens: lp.tokens.slice(start), logprobs, total: logprobs.reduce((a, b) => a + b, 0), approximate: false };
  }

  /**
   * The prompt echoed with the top alternatives at every token (completions API: `echo`,
   * `max_tokens: 0`, `logprobs: topK`, which OpenAI's legacy API caps at 5). The chat API cannot
   * echo a prompt: there this method is absent in effect and says so.
   */
  async promptLogprobs(prompt: string, topK: number, opts: ScoreOptions = {}): Promise<PromptLogprobs> {
    if (this.api === 'chat') throw new LanternError(`${this.id}: the chat API cannot echo a prompt's log-probs; use the completions API`);
    const body = { model: this.o.model, prompt, max_tokens: 0, echo: true, logprobs: positiveInt(topK, 5, 'top logprobs'), temperature: 0 };
    const res = await this.post<{ choices?: { logprobs?: CompletionLogprobs }[] }>('completions', body, opts.signal);
    const lp = res.choices?.[0]?.logprobs;
    const n = lp?.tokens?.length;
    if (!lp || !Array.isArray(lp.tokens) || !Array.isArray(lp.text_offset) || lp.text_offset.length !== n || !Array.isArray(lp.top_logprobs) || lp.top_logprobs.length !== n) {
      throw this.malformed('has no echoed tokens, text offsets and top logprobs (does the server support echo with logprobs on /v1/completions?)');
    }
    return { tokens: lp.tokens, offsets: lp.text_offset, top: lp.top_logprobs.map((t) => t ?? {}) };
  }

  private messages(prompt: Prompt): { role: string; content: string }[] {
    if (typeof prompt !== 'string') throw new LanternError(`${this.id}: the chat API takes text prompts, not token ids (use the completions API for ids)`);
    return [...(this.o.system ? [{ role: 'system', content: this.o.system }] : []), { role: 'user', content: prompt }];
  }

  private async scoreChat(prompt: Prompt, continuation: Continuation, opts: ScoreOptions): Promise<ContinuationScore> {
    if (typeof continuation !== 'string') throw new LanternError(`${this.id}: the chat API scores text continuations, not token ids`);
    const body = {
      model: this.o.model, messages: this.messages(prompt), temperature: 0, logprobs: true, top_logprobs: this.opts.topLogprobs,
      // Enough tokens to cover the continuation (tokens are rarely shorter than 1 character).
      max_tokens: Math.min(256, codePoints(continuation) + 1),
    };
    const res = await this.post<{ choices?: { logprobs?: { content?: ChatTokenLogprob[] | null } | null }[] }>('chat/completions', body, opts.signal);
    const content = res.choices?.[0]?.logprobs?.content;
    if (!Array.isArray(content)) throw this.malformed('has no logprobs.content (does the server support logprobs on /v1/chat/completions?)');
    const tokens: string[] = [];
    const logprobs: number[] = [];
    let rest = continuation;
    for (const step of content) {
      if (rest.length === 0) break;
      if (typeof step?.token !== 'string' || typeof step.logprob !== 'number') throw this.malformed('has a malformed logprobs.content entry');
      if (step.token.length > 0 && rest.startsWith(step.token)) {
        tokens.push(step.token);
        logprobs.push(step.logprob);
        rest = rest.slice(step.token.length);
        continue;
      }
      const alts = (step.top_logprobs ?? []).filter((a) => typeof a?.token === 'string' && typeof a.logprob === 'number');
      const hit = alts.filter((a) => a.token.length > 0 && rest.startsWith(a.token)).sort((a, b) => b.token.length - a.token.length)[0];
      if (hit) {
        tokens.push(hit.token);
        logprobs.push(hit.logprob);
      } else {
        tokens.push(rest);
        logprobs.push(alts.length ? Math.min(...alts.map((a) => a.logprob), step.logprob) : step.logprob);
      }
      break;
    }
    if (tokens.length === 0) throw this.malformed('has an empty reply: nothing to read the continuation from');
    return { tokens, logprobs, total: logprobs.reduce((a, b) => a + b, 0), approximate: true };
  }

  /** Asks the server for a continuation of `prompt`. */
  async generate(prompt: Prompt, opts: GenerateOptions): Promise<Generation> {
    const maxTokens = positiveInt(opts.maxTokens, 16, 'maxTokens');
    const common = {
      model: this.o.model, max_tokens: maxTokens, temperature: opts.temperature ?? 0,
      ...(opts.seed !== undefined ? { seed: opts.seed } : {}), ...(opts.stop?.length ? { stop: opts.stop } : {}),
    };
    if (this.api === 'chat') {
      const body = { ...common, messages: this.messages(prompt), ...(opts.topLogprobs ? { logprobs: true, top_logprobs: opts.topLogprobs } : {}) };
      const res = await this.post<{ choices?: { message?: { content?: string | null }; logprobs?: { content?: ChatTokenLogprob[] | null } | null }[] }>('chat/completions', body, opts.signal);
      const choice = res.choices?.[0];
      if (!choice || typeof choice.message?.content !== 'string') throw this.malformed('has no choices[0].message.content');
      const out: Generation = { text: choice.message.content };
      const content = choice.logprobs?.content;
      if (Array.isArray(content)) {
        out.tokens = content.map((c) => c.token);
        out.logprobs = content.map((c) => c.logprob);
        out.topLogprobs = content.map((c) => Object.fromEntries((c.top_logprobs ?? []).map((a) => [a.token, a.logprob])));
      }
      return out;
    }
    const body = { ...common, prompt, ...(opts.topLogprobs ? { logprobs: opts.topLogprobs } : {}) };
    const res = await this.post<{ choices?: { text?: string; logprobs?: CompletionLogprobs | null }[] }>('completions', body, opts.signal);
    const choice = res.choices?.[0];
    if (!choice || typeof choice.text !== 'string') throw this.malformed('has no choices[0].text');
    const out: Generation = { text: choice.text };
    const lp = choice.logprobs;
    if (lp && Array.isArray(lp.tokens)) {
      out.tokens = lp.tokens;
      out.logprobs = lp.token_logprobs.map((v) => v ?? NaN);
      if (Array.isArray(lp.top_logprobs)) out.topLogprobs = lp.top_logprobs.map((t) => t ?? {});
    }
    return out;
  }

  /** The model ids the server lists at GET /models, with the same retries as every other request. */
  async models(): Promise<string[]> {
    const res = await this.limit(() => this.send<{ data?: { id?: unknown }[] }>('models', undefined));
    if (!Array.isArray(res?.data)) throw this.malformed('to GET /models has no data list');
    return res.data.map((m) => String(m?.id));
  }

  /** Token ids by the server's tokenizer, through vLLM's `POST /tokenize` (Lantern's server has it too). */
  async tokenize(text: string): Promise<number[]> {
    const res = await this.post<{ tokens?: unknown }>('../tokenize', { model: this.o.model, prompt: text });
    const t = res.tokens;
    if (!Array.isArray(t) || !t.every((x) => Number.isInteger(x))) throw this.malformed('to /tokenize has no token list (the server may not offer /tokenize; pass token ids instead)');
    return t as number[];
  }

  /** Text of the given token ids, through the server's `/detokenize` (vLLM style). */
  async detokenize(ids: number[]): Promise<string> {
    const res = await this.post<{ prompt?: unknown }>('../detokenize', { model: this.o.model, tokens: ids });
    if (typeof res.prompt !== 'string') throw this.malformed('to /detokenize has no prompt text');
    return res.prompt;
  }
}

/** The models a server lists at GET /v1/models (retried as any request: 429, 5xx, timeouts). */
export async function listModels(baseURL: string, o: string | Partial<Omit<HttpBackendOptions, 'baseURL' | 'model'>> = {}): Promise<string[]> {
  const opts = typeof o === 'string' ? { apiKey: o } : o;
  const b = new HttpBackend({ ...opts, baseURL, model: '-', cache: false });
  try {
    return await b.models();
  } catch (e) {
    // No model is named yet: say which URL failed instead of the placeholder's id.
    if (e instanceof LanternError) throw new LanternError(e.message.replace(`${b.id}: GET models`, `GET ${b.baseURL}/models`));
    throw e;
  }
}
