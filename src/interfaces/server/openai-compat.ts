/**
 * Lantern models behind an OpenAI-compatible API, as a Fastify (v5) plugin:
 *
 *   GET  /v1/models
 *   POST /v1/completions        prompt as text, token ids, or a batch of either; `echo` and
 *                               `logprobs` (0..5) as OpenAI's legacy API: with `echo` and
 *                               `max_tokens: 0` the log-prob of every prompt token (the first is
 *                               null), which is how a black-box client scores a fixed continuation.
 *   POST /v1/chat/completions   `logprobs` / `top_logprobs` (0..20). Messages go through the
 *                               model's own chat template (tokenizer_config.json's), as an
 *                               OpenAI-compatible server for that model would; a model without
 *                               one gets plain text — "System: …", "User: …", "Assistant: …"
 *                               lines, then "Assistant:" — and the plugin's `chatTemplate`, when
 *                               given, overrides both.
 *   POST /tokenize, /detokenize vLLM's endpoints, so clients can perturb the server's own tokens.
 *
 * Both completion endpoints take `stream: true` (server-sent events, chunk by chunk as tokens
 * come, then `data: [DONE]`; `stream_options.include_usage` adds a last chunk with the token
 * counts), `temperature`, `top_p`, `seed` and `stop`. Generation uses the model's key/value cache;
 * a batch of prompts generates together, prompt b sampling with seed + b.
 *
 * Log-probs are natural logs of the softmax of the model's raw logits (temperature does not
 * change them, as with OpenAI). `text_offset` counts code points, as OpenAI's Python servers do.
 * Errors are OpenAI-shaped: { error: { message, type, param, code } } with 400 / 404.
 *
 *   await app.register(openAICompat, { models: { 'lantern-demo': model } });
 *   const srv = await serveOpenAI(model, { port: 0 });  // standalone, for tests and benches
 */
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import Fastify, { FastifyInstance, FastifyPluginAsync, FastifyReply, FastifyRequest } from 'fastify';
import { LanternError } from '../../errors.js';
import { assertFinite } from '../../finite.js';
import { generateBatch, generateStream, GenerateOptions, Generation } from '../../models/generate.js';
import type { HookedTransformer } from '../../models/hooked.js';
import { chatPrompt } from '../../models/chat.js';
import type { ChatMessage } from '../../models/chat.js';

export type { ChatMessage };

/**
 * A served model, or a loader called on each request, which caches as it sees fit (the Workbench
 * passes its model registry's, so /v1 and the Workbench share one copy of the weights).
 */
export type ServedModel = HookedTransformer | (() => Promise<HookedTransformer>);

/** Settings for the {@link openAICompat} plugin: the model it serves and how chats become prompts. */
export interface OpenAICompatOptions {
  /** Served models by the id clients name. */
  models: Record<string, ServedModel>;
  /** Renders every model's chat prompts (default: each model's own template, else plainChatTemplate). */
  chatTemplate?: (messages: ChatMessage[]) => string;
  /** Cap on max_tokens per request (default 512). */
  maxTokensLimit?: number;
  /** Most prompts in one /v1/completions batch (default 32). */
  maxBatch?: number;
}

/** The rendering of chat messages for models without a chat template. */
export function plainChatTemplate(messages: ChatMessage[]): string {
  const title = (r: string) => r.charAt(0).toUpperCase() + r.slice(1);
  return messages.map((m) => `${title(m.role)}: ${m.content}\n`).join('') + 'Assistant:';
}

class ApiError extends Error {
  constructor(readonly status: number, message: string, readonly param: string | null = null, readonly type = 'invalid_request_error') {
    super(message);
  }
}

const bad = (message: string, param: string | null = null) => new ApiError(400, message, param);

interface TokenLogprobs {
  ids: number[];
  strings: string[];
  logprobs: (number | null)[];
  /** Top alternatives per position: [token string, id, logprob][]. */
  top: ([string, number, number][] | null)[];
}

/**
 * Log-probs of `ids[from..]` given what precedes them (position 0 has none: null), and the `k`
 * most likely alternatives at those positions, from one forward pass.
 */
async function tokenLogprobs(model: HookedTransformer, ids: number[], from: number, k: number): Promise<TokenLogprobs> {
  const out: TokenLogprobs = { ids: ids.slice(from), strings: model.tokenStrings(ids.slice(from)), logprobs: [], top: [] };
  if (ids.length === 0 || from >= ids.length) return out;
  // The engine's own scores (entry t - 1 is token t): exactly what LanternBackend reads, and within
  // ~2e-7 of a float64 log-softmax of the logits (what white-box attribution computes).
  const scored = await model.tokenLogprobs(ids, k);
  assertFinite(scored.logprobs, 'the log-probabilities');
  for (let t = from; t < ids.length; t++) {
    if (t === 0) {
      out.logprobs.push(null);
      out.top.push(null);
      continue;
    }
    out.logprobs.push(scored.logprobs[t - 1]);
    if (k > 0) {
      const best = scored.top[t - 1];
      const strs = model.tokenStrings(best.map((b) => b.id));
      out.top.push(best.map((b, j) => [strs[j], b.id, b.logprob]));
    } else {
      out.top.push(null);
    }
  }
  return out;
}

function intIn(v: unknown, name: string, lo: number, hi: number, fallback: number): number {
  if (v === undefined || v === null) return fallback;
  if (typeof v !== 'number' || !Number.isInteger(v) || v < lo || v > hi) throw bad(`${name} must be an integer in [${lo}, ${hi}], got ${JSON.stringify(v)}`, name);
  return v;
}

function numberIn(v: unknown, name: string, lo: number, hi: number, fallback: number): number {
  if (v === undefined || v === null) return fallback;
  if (typeof v !== 'number' || !Number.isFinite(v) || v < lo || v > hi) throw bad(`${name} must be a number in [${lo}, ${hi}], got ${JSON.stringify(v)}`, name);
  return v;
}

function stops(v: unknown): string[] {
  if (v === undefined || v === null) return [];
  const a = typeof v === 'string' ? [v] : v;
  if (!Array.isArray(a) || a.length > 4 || !a.every((s) => typeof s === 'string' && s.length > 0)) throw bad('stop must be a non-empty string or an array of up to 4 of them', 'stop');
  return a as string[];
}

const isIds = (v: unknown): v is number[] => Array.isArray(v) && v.length > 0 && v.every((x) => typeof x === 'number');

/** A completion's prompts: a string, an array of ids, or a batch of at most `max` of either. */
function prompts(v: unknown, max: number): (string | number[])[] {
  if (typeof v === 'string') return [v];
  if (isIds(v)) return [v];
  if (Array.isArray(v) && v.length > max && !isIds(v)) throw bad(`prompt is a batch of ${v.length} prompts; this server takes at most ${max} per request`, 'prompt');
  if (Array.isArray(v) && v.length > 0 && v.every((p) => typeof p === 'string' || isIds(p))) return v as (string | number[])[];
  throw bad('prompt must be a string, an array of token ids, or a non-empty array of either', 'prompt');
}


/**
 * OpenAI's `text_offset`: where each token starts in the decoded text, in code points. A token's
 * own string cannot tell this when it holds part of a UTF-8 character (it decodes to U+FFFD), so
 * offsets come from decoding prefixes of the ids and comparing them with the whole text. A token
 * that starts inside a character gets that character's offset. Prefixes are decoded only from the
 * last token boundary that fell between whole characters, so ASCII text costs one decode per token.
 */
export function textOffsets(decode: (ids: number[]) => string, ids: number[]): number[] {
  const full = decode(ids);
  const out: number[] = [];
  // The last boundary known to fall between characters: token index, and its offset in UTF-16 units.
  let base = 0;
  let baseAt = 0;
  let at = 0;
  for (let i = 0; i < ids.length; i++) {
    if (i > base) {
      let piece = decode(ids.slice(base, i));
      if (full.startsWith(piece, baseAt)) {
        base = i;
        baseAt += piece.length;
        at = baseAt;
      } else {
        // Only a partial character at the end can differ; its replacement characters are dropped.
        while (piece.endsWith('\uFFFD') && !full.startsWith(piece, baseAt)) piece = piece.slice(0, -1);
        at = Math.min(full.length, baseAt + piece.length);
      }
    }
    out.push(at);
  }
  // UTF-16 units to code points.
  const cps: number[] = [];
  let cp = 0;
  let unit = 0;
  for (const o of out) {
    while (unit < o) {
      const c = full.codePointAt(unit)!;
      unit += c > 0xffff ? 2 : 1;
      cp++;
    }
    cps.push(cp);
  }
  return cps;
}

class ClientGoneError extends Error {}

/**
 * Aborted when the client disconnects before its answer is written, so that a batch or a long
 * generation stops at its next forward pass instead of computing for nobody.
 */
function clientGone(reply: FastifyReply): AbortSignal {
  const ac = new AbortController();
  reply.raw.on('close', () => {
    if (!reply.raw.writableFinished) ac.abort(new ClientGoneError('the client disconnected'));
  });
  return ac.signal;
}

/**
 * The model seen through a view whose forward passes refuse to start once `signal` is aborted;
 * everything else is the model's own (the view delegates to it). Generation runs one forward
 * pass (runWithHooks) per token, so this stops a generation between tokens.
 */
function abortable(model: HookedTransformer, signal: AbortSignal): HookedTransformer {
  const check = () => {
    if (signal.aborted) throw signal.reason;
  };
  return Object.create(model, {
    runWithHooks: { value: (...a: Parameters<HookedTransformer['runWithHooks']>) => (check(), model.runWithHooks(...a)) },
    tokenLogprobs: { value: (...a: Parameters<HookedTransformer['tokenLogprobs']>) => (check(), model.tokenLogprobs(...a)) },
  }) as HookedTransformer;
}

/** OpenAI's `stream_options: { include_usage: true }`: a last chunk with the token counts. */
function includeUsage(b: Record<string, unknown>): boolean {
  const o = b.stream_options;
  return typeof o === 'object' && o !== null && (o as Record<string, unknown>).include_usage === true;
}

interface Generated {
  promptIds: number[];
  ids: number[];
  text: string;
  finish: 'stop' | 'length';
}

/** Fastify plugin serving a Lantern model as an OpenAI-compatible API (`/models`, `/completions` with echo and logprobs, `/chat/completions`, `/tokenize`), so OpenAI clients and black-box tools can use it. */
export const openAICompat: FastifyPluginAsync<OpenAICompatOptions> = async (app, opts) => {
  const ids = Object.keys(opts.models);
  if (ids.length === 0) throw new LanternError('the OpenAI-compatible server needs at least one model');
  const maxTokensLimit = opts.maxTokensLimit ?? 512;
  const maxBatch = opts.maxBatch ?? 32;
  const created = Math.floor(Date.now() / 1000);
  const load = (id: string): Promise<HookedTransformer> => {
    const v = opts.models[id];
    return typeof v === 'function' ? v() : Promise.resolve(v);
  };

  app.setErrorHandler((err: Error & { statusCode?: number; validation?: unknown }, _req, reply) => {
    // Nobody is listening; the socket is gone.
    if (err instanceof ClientGoneError) return reply.code(499).send();
    if (err instanceof ApiError) return reply.code(err.status).send({ error: { message: err.message, type: err.type, param: err.param, code: null } });
    if (err instanceof LanternError) return reply.code(400).send({ error: { message: err.message, type: 'invalid_request_error', param: null, code: null } });
    const status = err.statusCode && err.statusCode >= 400 && err.statusCode < 500 ? err.statusCode : 500;
    if (status === 500) app.log.error(err);
    return reply.code(status).send({ error: { message: status === 500 ? `internal error: ${err.message}` : err.message, type: status === 500 ? 'server_error' : 'invalid_request_error', param: null, code: null } });
  });

  async function modelOf(body: Record<string, unknown>): Promise<[string, HookedTransformer]> {
    const id = body.model;
    if (typeof id !== 'string') throw bad('model is required (see GET /v1/models)', 'model');
    if (!Object.hasOwn(opts.models, id)) throw new ApiError(404, `The model '${id}' does not exist; this server has ${ids.map((i) => `'${i}'`).join(', ')}`, 'model');
    return [id, await load(id)];
  }

  function bodyOf(req: FastifyRequest): Record<string, unknown> {
    const b = req.body;
    if (typeof b !== 'object' || b === null || Array.isArray(b)) throw bad('the request body must be a JSON object');
    return b as Record<string, unknown>;
  }

  function checkIds(model: HookedTransformer, p: number[], extra: number): void {
    const V = model.cfg.dVocab;
    const badId = p.find((t) => !Number.isInteger(t) || t < 0 || t >= V);
    if (badId !== undefined) throw bad(`token id ${badId} is outside the vocabulary [0, ${V})`, 'prompt');
    if (p.length + extra > model.cfg.nCtx) {
      throw bad(`This model's maximum context length is ${model.cfg.nCtx} tokens; the prompt has ${p.length} and ${extra} more were requested`, 'max_tokens');
    }
  }

  /** Generation settings of a request: temperature, top_p, seed and stop strings, as OpenAI names them. */
  function settingsOf(b: Record<string, unknown>, maxTokens: number): GenerateOptions {
    return {
      maxNewTokens: maxTokens,
      temperature: numberIn(b.temperature, 'temperature', 0, 2, 1),
      topK: 0,
      topP: numberIn(b.top_p, 'top_p', Number.MIN_VALUE, 1, 1),
      seed: intIn(b.seed, 'seed', 0, 2 ** 32 - 1, crypto.randomInt(2 ** 31)),
      stop: stops(b.stop),
    };
  }

  function promptIdsOf(model: HookedTransformer, prompt: string | number[], maxTokens: number): number[] {
    const promptIds = typeof prompt === 'string' ? model.toTokens(prompt) : prompt;
    if (promptIds.length === 0) throw bad('the prompt is empty (no tokens)', 'prompt');
    checkIds(model, promptIds, maxTokens);
    return promptIds;
  }

  /** OpenAI's completion tokens: those whose text lies wholly before a stop string (the one completing it is dropped). */
  function generated(model: HookedTransformer, promptIds: number[], g: Generation): Generated {
    let ids = g.tokens;
    if (g.finishReason === 'stop' && model.toString(ids) !== g.text) {
      let n = 0;
      while (n < ids.length && model.toString(ids.slice(0, n + 1)).length <= g.text.length) n++;
      ids = ids.slice(0, n);
    }
    return { promptIds, ids, text: g.text, finish: g.finishReason };
  }

  /** Continues every prompt in one batched generation (prompt b samples with seed + b). */
  async function complete(model: HookedTransformer, prompts: (string | number[])[], b: Record<string, unknown>, maxTokens: number): Promise<Generated[]> {
    const promptIds = prompts.map((p) => promptIdsOf(model, p, maxTokens));
    const settings = settingsOf(b, maxTokens);
    if (maxTokens === 0) return promptIds.map((p) => ({ promptIds: p, ids: [], text: '', finish: 'length' }));
    const gs = await generateBatch(model, promptIds, settings);
    return gs.map((g, i) => generated(model, promptIds[i], g));
  }

  /**
   * Server-sent events, as OpenAI's streaming API sends them: one `data: {json}` event per chunk,
   * then `data: [DONE]`. The request is checked before the stream opens, so bad input still gets
   * a 400; an error once the stream is open is sent as an `error` event.
   */
  async function streamEvents(reply: FastifyReply, events: AsyncIterable<object>): Promise<void> {
    reply.hijack();
    const res = reply.raw;
    res.writeHead(200, { 'content-type': 'text/event-stream; charset=utf-8', 'cache-control': 'no-cache', connection: 'keep-alive' });
    try {
      for await (const e of events) res.write(`data: ${JSON.stringify(e)}\n\n`);
      res.write('data: [DONE]\n\n');
    } catch (e) {
      if (!(e instanceof ClientGoneError)) {
        const message = e instanceof LanternError || e instanceof ApiError ? e.message : `internal error: ${(e as Error).message}`;
        if (!(e instanceof LanternError || e instanceof ApiError)) app.log.error(e);
        res.write(`data: ${JSON.stringify({ error: { message, type: 'server_error', param: null, code: null } })}\n\n`);
      }
    }
    res.end();
  }

  /** The chat as the model reads it: ids of its own template's rendering, or text. */
  function chatInput(model: HookedTransformer, msgs: ChatMessage[]): string | number[] {
    if (opts.chatTemplate) return opts.chatTemplate(msgs);
    if (model.tokenizer?.chatTemplates !== undefined) return chatPrompt(model, msgs).tokens;
    return plainChatTemplate(msgs);
  }

  app.get('/v1/models', async () => ({
    object: 'list',
    data: ids.map((id) => ({ id, object: 'model', created, owned_by: 'lantern' })),
  }));

  app.post('/v1/completions', async (req, reply) => {
    const b = bodyOf(req);
    const [id, loaded] = await modelOf(b);
    const model = abortable(loaded, clientGone(reply));
    if (b.n !== undefined && b.n !== 1) throw bad('only n = 1 is supported', 'n');
    const maxTokens = intIn(b.max_tokens, 'max_tokens', 0, maxTokensLimit, 16);
    const k = b.logprobs === undefined || b.logprobs === null ? null : intIn(b.logprobs, 'logprobs', 0, 5, 0);
    const echo = b.echo === true;
    const batch = prompts(b.prompt, maxBatch);
    if (b.stream) {
      if (k !== null) throw bad('logprobs cannot be streamed; ask without stream', 'logprobs');
      if (echo) throw bad('echo cannot be streamed; ask without stream', 'echo');
      if (maxTokens === 0) throw bad('a stream needs max_tokens of at least 1', 'max_tokens');
      const promptIds = batch.map((p) => promptIdsOf(model, p, maxTokens));
      const settings = settingsOf(b, maxTokens);
      const head = { id: `cmpl-${crypto.randomUUID()}`, object: 'text_completion', created: Math.floor(Date.now() / 1000), model: id };
      const usage = includeUsage(b);
      return streamEvents(reply, (async function* () {
        let completionTokens = 0;
        for await (const c of generateStream(model, promptIds, settings)) {
          completionTokens++;
          if (c.text || c.finishReason) yield { ...head, choices: [{ text: c.text, index: c.row, logprobs: null, finish_reason: c.finishReason ?? null }] };
        }
        const promptTokens = promptIds.reduce((n, p) => n + p.length, 0);
        if (usage) yield { ...head, choices: [], usage: { prompt_tokens: promptTokens, completion_tokens: completionTokens, total_tokens: promptTokens + completionTokens } };
      })());
    }
    let promptTokens = 0;
    let completionTokens = 0;
    const choices = [];
    const gs = await complete(model, batch, b, maxTokens);
    for (const [index, g] of gs.entries()) {
      promptTokens += g.promptIds.length;
      completionTokens += g.ids.length;
      const promptText = model.toString(g.promptIds);
      let logprobs = null;
      if (k !== null) {
        const all = [...g.promptIds, ...g.ids];
        const from = echo ? 0 : g.promptIds.length;
        const lp = await tokenLogprobs(model, all, from, k);
        const offsets = textOffsets((x) => model.toString(x), all);
        const text_offset = echo ? offsets : offsets.slice(from);
        logprobs = {
          tokens: lp.strings,
          token_logprobs: lp.logprobs,
          top_logprobs: lp.top.map((t) => (t ? Object.fromEntries(t.map(([s, , v]) => [s, v])) : null)),
          text_offset,
        };
      }
      choices.push({ text: (echo ? promptText : '') + g.text, index, logprobs, finish_reason: g.finish });
    }
    return {
      id: `cmpl-${crypto.randomUUID()}`, object: 'text_completion', created: Math.floor(Date.now() / 1000), model: id, choices,
      usage: { prompt_tokens: promptTokens, completion_tokens: completionTokens, total_tokens: promptTokens + completionTokens },
    };
  });

  app.post('/v1/chat/completions', async (req, reply) => {
    const b = bodyOf(req);
    const [id, loaded] = await modelOf(b);
    const model = abortable(loaded, clientGone(reply));
    if (b.n !== undefined && b.n !== 1) throw bad('only n = 1 is supported', 'n');
    const msgs = b.messages;
    if (!Array.isArray(msgs) || msgs.length === 0 || !msgs.every((m) => typeof m?.role === 'string' && typeof m?.content === 'string')) {
      throw bad('messages must be a non-empty array of { role, content } with string content', 'messages');
    }
    const maxTokens = intIn(b.max_completion_tokens ?? b.max_tokens, 'max_tokens', 1, maxTokensLimit, 16);
    const wantLogprobs = b.logprobs === true;
    const k = intIn(b.top_logprobs, 'top_logprobs', 0, 20, 0);
    if (k > 0 && !wantLogprobs) throw bad('top_logprobs needs logprobs: true', 'top_logprobs');
    if (b.stream) {
      if (wantLogprobs) throw bad('logprobs cannot be streamed; ask without stream', 'logprobs');
      const promptIds = promptIdsOf(model, chatInput(loaded, msgs as ChatMessage[]), maxTokens);
      const settings = settingsOf(b, maxTokens);
      const head = { id: `chatcmpl-${crypto.randomUUID()}`, object: 'chat.completion.chunk', created: Math.floor(Date.now() / 1000), model: id };
      const usage = includeUsage(b);
      return streamEvents(reply, (async function* () {
        yield { ...head, choices: [{ index: 0, delta: { role: 'assistant', content: '' }, logprobs: null, finish_reason: null }] };
        let completionTokens = 0;
        for await (const c of generateStream(model, promptIds, settings)) {
          completionTokens++;
          if (c.text) yield { ...head, choices: [{ index: 0, delta: { content: c.text }, logprobs: null, finish_reason: null }] };
          if (c.finishReason) yield { ...head, choices: [{ index: 0, delta: {}, logprobs: null, finish_reason: c.finishReason }] };
        }
        if (usage) yield { ...head, choices: [], usage: { prompt_tokens: promptIds.length, completion_tokens: completionTokens, total_tokens: promptIds.length + completionTokens } };
      })());
    }
    const [g] = await complete(model, [chatInput(loaded, msgs as ChatMessage[])], b, maxTokens);
    let logprobs = null;
    if (wantLogprobs) {
      const lp = await tokenLogprobs(model, [...g.promptIds, ...g.ids], g.promptIds.length, k);
      const bytes = (s: string) => [...Buffer.from(s, 'utf8')];
      logprobs = {
        content: lp.strings.map((token, i) => ({
          token, logprob: lp.logprobs[i], bytes: bytes(token),
          top_logprobs: (lp.top[i] ?? []).map(([s, , v]) => ({ token: s, logprob: v, bytes: bytes(s) })),
        })),
      };
    }
    return {
      id: `chatcmpl-${crypto.randomUUID()}`, object: 'chat.completion', created: Math.floor(Date.now() / 1000), model: id,
      choices: [{ index: 0, message: { role: 'assistant', content: g.text }, logprobs, finish_reason: g.finish }],
      usage: { prompt_tokens: g.promptIds.length, completion_tokens: g.ids.length, total_tokens: g.promptIds.length + g.ids.length },
    };
  });

  app.post('/tokenize', async (req) => {
    const b = bodyOf(req);
    const [, model] = await modelOf(b);
    if (typeof b.prompt !== 'string') throw bad('prompt must be a string', 'prompt');
    const tokens = model.toTokens(b.prompt);
    return { tokens, count: tokens.length, max_model_len: model.cfg.nCtx };
  });

  app.post('/detokenize', async (req) => {
    const b = bodyOf(req);
    const [, model] = await modelOf(b);
    if (!Array.isArray(b.tokens) || !b.tokens.every((t) => typeof t === 'number')) throw bad('tokens must be an array of token ids', 'tokens');
    checkIds(model, b.tokens as number[], 0);
    return { prompt: model.toString(b.tokens as number[]) };
  });
};

/** The id clients name a model by: a folder's name, or the Hub id itself. */
export function servedId(source: string): string {
  return fs.existsSync(source) ? path.basename(path.resolve(source)) : source;
}

/** Where {@link serveOpenAI} listens, and with which key. */
export interface ServeOptions {
  port?: number;
  host?: string;
  /** The id clients use (default: the model folder's name). */
  id?: string;
  /** Turns chat messages into one prompt (as in {@link OpenAICompatOptions}). */
  chatTemplate?: OpenAICompatOptions['chatTemplate'];
}

/** A server started by {@link serveOpenAI}. */
export interface RunningServer {
  app: FastifyInstance;
  /** e.g. 'http://127.0.0.1:41234/v1' — what an OpenAI client takes as baseURL. */
  baseURL: string;
  ids: string[];
  /** Stops the server and waits for open requests. */
  close(): Promise<void>;
}

/** Serves one model (or several by id) on its own Fastify instance; port 0 picks a free port. */
export async function serveOpenAI(models: HookedTransformer | Record<string, ServedModel>, o: ServeOptions = {}): Promise<RunningServer> {
  const record = 'cfg' in models && 'run' in models
    ? { [o.id ?? path.basename(path.resolve((models as HookedTransformer).source))]: models as HookedTransformer }
    : (models as Record<string, ServedModel>);
  const app = Fastify({ logger: false, bodyLimit: 16 * 1024 * 1024 });
  await app.register(openAICompat, { models: record, chatTemplate: o.chatTemplate });
  const host = o.host ?? '127.0.0.1';
  await app.listen({ port: o.port ?? 0, host });
  const addr = app.server.address();
  const port = typeof addr === 'object' && addr ? addr.port : o.port;
  return { app, baseURL: `http://${host.includes(':') ? `[${host}]` : host}:${port}/v1`, ids: Object.keys(record), close: () => app.close() };
}

