// The HTTP backend (src/backends/http.ts) and Lantern's OpenAI-compatible server
// (src/interfaces/server/openai-compat.ts), against real servers on ephemeral ports: the bundled
// model behind the plugin, queried by the official `openai` client and by HttpBackend, with
// log-probs checked against the engine's own logits; and a scripted node:http server that
// answers 429 / 500 / nothing / malformed JSON, for the transport's retries and timeouts.
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import OpenAI from 'openai';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { HttpBackend, HttpEvent, listModels } from '../src/backends/http.js';
import { LanternBackend } from '../src/backends/lantern.js';
import { plainChatTemplate, serveOpenAI, RunningServer } from '../src/interfaces/server/openai-compat.js';
import type { HookedTransformer } from '../src/models/hooked.js';
import { loadModel } from '../src/models/load.js';
import { logSoftmaxAt } from '../src/models/predictions.js';
import { BUNDLED_MODEL } from '../src/paths.js';

let model: HookedTransformer;
let srv: RunningServer;
let client: OpenAI;
const ID = 'lantern-demo';

/** log p(ids[t] | ids[<t]) for t >= 1, straight from the engine's logits. */
/** The engine's scores, which the server must return bit for bit. */
async function engineLogprobs(ids: number[]): Promise<number[]> {
  return (await model.tokenLogprobs(ids)).logprobs;
}

/** An independent computation: float64 log-softmax in JavaScript over the logits of a plain forward. */
async function referenceLogprobs(ids: number[]): Promise<number[]> {
  const logits = await model.run([ids]);
  const V = model.cfg.dVocab;
  return ids.slice(1).map((tok, t) => logSoftmaxAt(logits.f32.subarray(t * V, (t + 1) * V), tok));
}

beforeAll(async () => {
  model = await loadModel(BUNDLED_MODEL);
  srv = await serveOpenAI(model, { id: ID });
  client = new OpenAI({ baseURL: srv.baseURL, apiKey: 'not-checked', maxRetries: 0 });
});
afterAll(async () => {
  await srv?.close();
});

describe('OpenAI-compatible server, through the official openai client', () => {
  it('lists its models', async () => {
    const list = await client.models.list();
    expect(list.data.map((m) => m.id)).toEqual([ID]);
    expect(await listModels(srv.baseURL)).toEqual([ID]);
  });

  it('echoes every prompt token with its exact log-prob (max_tokens 0), for text and token-id prompts', async () => {
    const text = 'The jury said that the city was';
    const ids = model.toTokens(text);
    const expected = await engineLogprobs(ids);
    for (const prompt of [text, ids]) {
      const r = await client.completions.create({ model: ID, prompt, max_tokens: 0, echo: true, logprobs: 2 });
      const lp = r.choices[0].logprobs!;
      expect(r.choices[0].text).toBe(text);
      expect(lp.tokens).toEqual(model.tokenStrings(ids));
      expect(lp.token_logprobs![0]).toBeNull();
      expect(lp.token_logprobs!.slice(1)).toEqual(expected); // bit-identical: the engine's own numbers
      (await referenceLogprobs(ids)).forEach((x, t) => expect(Math.abs(lp.token_logprobs![t + 1]! - x)).toBeLessThan(1e-6));
      expect(lp.text_offset).toEqual([0, 3, 8, 13, 18, 22, 27]);
      // The top alternatives are sorted and the most likely is at least as likely as the actual token.
      const top = Object.values(lp.top_logprobs![3]!);
      expect(top.length).toBe(2);
      expect(top[0]).toBeGreaterThanOrEqual(top[1]);
      expect(top[0]).toBeGreaterThanOrEqual(expected[2]);
      expect(r.usage).toMatchObject({ prompt_tokens: ids.length, completion_tokens: 0 });
    }
  });

  it('generates greedily with logprobs of the generated tokens, and honours stop strings', async () => {
    const prompt = 'He opened the door and';
    const r = await client.completions.create({ model: ID, prompt, max_tokens: 6, temperature: 0, logprobs: 1 });
    const c = r.choices[0];
    const genIds = model.toTokens(c.text);
    const all = [...model.toTokens(prompt), ...genIds];
    const lp = await engineLogprobs(all);
    expect(c.logprobs!.token_logprobs).toEqual(lp.slice(-genIds.length));
    // Greedy: every generated token is the top alternative at its position.
    c.logprobs!.tokens!.forEach((tok, i) => expect(Object.keys(c.logprobs!.top_logprobs![i]!)[0]).toBe(tok));
    const word = c.text.trim().split(' ')[1];
    const cut = await client.completions.create({ model: ID, prompt, max_tokens: 6, temperature: 0, stop: [word] });
    expect(cut.choices[0].text).toBe(c.text.slice(0, c.text.indexOf(word)));
    expect(cut.choices[0].finish_reason).toBe('stop');
  });

  it('chat completions: the plain template, logprobs and top_logprobs of the reply', async () => {
    const messages = [{ role: 'system' as const, content: 'Be brief.' }, { role: 'user' as const, content: 'Where is the city?' }];
    const r = await client.chat.completions.create({ model: ID, messages, max_tokens: 4, temperature: 0, logprobs: true, top_logprobs: 3 });
    const c = r.choices[0];
    const promptIds = model.toTokens('System: Be brief.\nUser: Where is the city?\nAssistant:');
    expect(plainChatTemplate(messages)).toBe('System: Be brief.\nUser: Where is the city?\nAssistant:');
    const content = c.logprobs!.content!;
    expect(content.map((x) => x.token).join('')).toBe(c.message.content);
    const lp = await engineLogprobs([...promptIds, ...model.toTokens(c.message.content!)]);
    expect(content.map((x) => x.logprob)).toEqual(lp.slice(-content.length));
    expect(content[0].top_logprobs.length).toBe(3);
    expect(content[0].top_logprobs[0].token).toBe(content[0].token);
    expect(r.usage?.prompt_tokens).toBe(promptIds.length);
  });

  it('answers bad requests with OpenAI-shaped errors', async () => {
    await expect(client.completions.create({ model: 'nope', prompt: 'x' })).rejects.toMatchObject({ status: 404, message: expect.stringMatching(/model 'nope' does not exist/) });
    await expect(client.completions.create({ model: ID, prompt: [1, 2, 99999999] })).rejects.toMatchObject({ status: 400, message: expect.stringMatching(/outside the vocabulary/) });
    await expect(client.completions.create({ model: ID, prompt: 'x', logprobs: 9 })).rejects.toMatchObject({ status: 400, message: expect.stringMatching(/logprobs must be an integer in \[0, 5\]/) });
    await expect(client.completions.create({ model: ID, prompt: 'x', max_tokens: 2000 })).rejects.toMatchObject({ status: 400 });
    await expect(client.chat.completions.create({ model: ID, messages: [] })).rejects.toMatchObject({ status: 400, message: expect.stringMatching(/messages must be/) });
    const res = await fetch(`${srv.baseURL}/completions`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"model": ' });
    expect(res.status).toBe(400);
    expect(((await res.json()) as { error: { message: string } }).error.message).toMatch(/JSON/);
  });
});

describe('/v1 work is bounded', () => {
  it('refuses a batch of 10,000 prompts with one clear 400', async () => {
    const res = await fetch(`${srv.baseURL}/completions`, {
      method: 'POST', headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ model: ID, prompt: Array.from({ length: 10_000 }, () => 'the cat'), max_tokens: 1 }),
    });
    expect(res.status).toBe(400);
    expect(await res.json()).toMatchObject({ error: { message: 'prompt is a batch of 10000 prompts; this server takes at most 32 per request', param: 'prompt' } });
    // 32 is still a batch it answers.
    const ok = await client.completions.create({ model: ID, prompt: Array.from({ length: 32 }, (_, i) => `n${i}`), max_tokens: 0, echo: true });
    expect(ok.choices).toHaveLength(32);
  });

  it('stops computing when the client disconnects', async () => {
    let runs = 0;
    const counted = Object.create(model, { runWithHooks: { value: (...a: Parameters<HookedTransformer['runWithHooks']>) => (runs++, model.runWithHooks(...a)) } }) as HookedTransformer;
    const own = await serveOpenAI(counted, { id: 'counted' });
    try {
      const ac = new AbortController();
      // 32 prompts generated together, 250 tokens: 250 forward passes if nobody stopped it.
      const req = fetch(`${own.baseURL}/completions`, {
        method: 'POST', headers: { 'content-type': 'application/json' }, signal: ac.signal,
        body: JSON.stringify({ model: 'counted', prompt: Array.from({ length: 32 }, (_, i) => `Story ${i}:`), max_tokens: 250, temperature: 0 }),
      }).catch((e: Error) => e);
      while (runs < 5) await new Promise((r) => setTimeout(r, 20));
      ac.abort();
      expect(await req).toBeInstanceOf(Error);
      // At most the pass in flight finishes; then the count stays put.
      await new Promise((r) => setTimeout(r, 500));
      const after = runs;
      await new Promise((r) => setTimeout(r, 500));
      expect(runs).toBe(after);
      expect(after).toBeLessThan(100);
      // And the server still answers.
      expect((await fetch(`${own.baseURL}/models`)).status).toBe(200);
    } finally {
      await own.close();
    }
  });
});

describe('HttpBackend against the served model', () => {
  it('scores a continuation exactly as the engine does, from text or token ids', async () => {
    const local = new LanternBackend(model);
    const http = new HttpBackend({ baseURL: srv.baseURL, model: ID });
    const prompt = 'The jury said that the';
    const want = await local.scoreContinuation(prompt, ' city was clean');
    const got = await http.scoreContinuation(prompt, ' city was clean');
    expect(got).toEqual(want);
    const ids = model.toTokens(prompt);
    const cont = model.toTokens(' city was clean');
    expect(await http.scoreContinuation(ids, cont)).toEqual(want);
    // Mixed: the server's /tokenize splits the text side.
    expect((await http.scoreContinuation(ids, ' city was clean')).logprobs).toEqual(want.logprobs);
    expect(await http.tokenize(prompt)).toEqual(ids);
    expect(await http.detokenize(ids)).toBe(prompt);
    const u = http.usage();
    // The third query, once tokenized, is the second one again: answered from the cache.
    expect(u.promptTokens).toBe(2 * (ids.length + cont.length));
    expect(u).toMatchObject({ requests: 2 + 3, cachedRequests: 1, failures: 0 });
  });

  it('text_offset counts code points of the decoded text on emoji, CJK and combining characters', async () => {
    const offsets = async (text: string) => {
      const r = await client.completions.create({ model: ID, prompt: text, max_tokens: 0, echo: true, logprobs: 0 });
      return { tokens: r.choices[0].logprobs!.tokens!, offsets: r.choices[0].logprobs!.text_offset! };
    };
    // " dog" starts at code point 13: x, space, the croissant (one code point, 4 UTF-8 bytes in 3 tokens), " went to a".
    const dog = await offsets('x 🥐 went to a dog');
    expect(dog.tokens).toEqual(['x', ' �', '�', '�', ' went', ' to', ' a', ' dog']);
    expect(dog.offsets).toEqual([0, 1, 2, 2, 3, 8, 11, 13]);
    // A token starting inside a character gets that character's offset.
    expect((await offsets('東京は日本の首都です')).offsets).toEqual([0, 0, 1, 1, 2, 3, 3, 4, 4, 5, 6, 6, 7, 7, 8, 9]);
    // e + U+0301 (combining acute) are two code points.
    expect((await offsets('cafe\u0301 au lait')).offsets).toEqual([0, 1, 4, 4, 5, 8, 10]);
    // Without echo, offsets continue from the end of the prompt.
    const g = await client.completions.create({ model: ID, prompt: 'x 🥐 went to a', max_tokens: 2, temperature: 0, logprobs: 0 });
    expect(g.choices[0].logprobs!.text_offset![0]).toBe(13);
  });

  it('scores only the continuation after emoji and other non-ASCII prompts, as the Lantern backend does', async () => {
    const local = new LanternBackend(model);
    const http = new HttpBackend({ baseURL: srv.baseURL, model: ID });
    for (const [prompt, cont] of [['x 🥐 went to a', ' dog'], ['I ordered a ☕ then I', ' went'], ['東京は日本の', ' city'], ['cafe\u0301 au', ' lait']]) {
      const got = await http.scoreContinuation(prompt, cont);
      expect(got).toEqual(await local.scoreContinuation(prompt, cont));
      expect(got.tokens.join('')).toBe(cont);
    }
  });

  it('refuses a continuation the server would merge with the prompt', async () => {
    const http = new HttpBackend({ baseURL: srv.baseURL, model: ID });
    // "the" + "re" is tokenized as " there": the continuation has no boundary of its own.
    await expect(http.scoreContinuation('He went to the', 're')).rejects.toThrow(/merged the end of the prompt/);
    // The engine's own backend refuses it the same way, rather than scoring tokens the model would not see.
    await expect(new LanternBackend(model).scoreContinuation('He went to the', 're')).rejects.toThrow(/^lantern:.*: the tokenizer merged the end of the prompt with the start of the continuation into one token \(" there"\)/);
  });

  it('chat scoring is marked approximate; its first token equals the exact completions log-prob', async () => {
    const chat = new HttpBackend({ baseURL: srv.baseURL, model: ID, api: 'chat', topLogprobs: 20 });
    const exact = new HttpBackend({ baseURL: srv.baseURL, model: ID });
    const prompt = 'Where is the city?';
    const templated = plainChatTemplate([{ role: 'user', content: prompt }]);
    const reply = await chat.generate(prompt, { maxTokens: 3 });
    // The greedy reply itself is scored exactly token by token.
    const s = await chat.scoreContinuation(prompt, reply.text);
    expect(s.approximate).toBe(true);
    expect(s.logprobs).toEqual((await exact.scoreContinuation(model.toTokens(templated), model.toTokens(reply.text))).logprobs);
    // A continuation off the greedy path: its first token from the top alternatives, then nothing.
    const top = await exact.generate(templated, { maxTokens: 1, topLogprobs: 5 });
    const second = Object.keys(top.topLogprobs![0])[1];
    const off = await chat.scoreContinuation(prompt, second + ' the');
    expect(off.tokens).toEqual([second]);
    expect(off.logprobs[0]).toBe(top.topLogprobs![0][second]);
    // An explanation through the chat API (of the reply's first token) carries the flag into its result.
    const { explainWithBackend } = await import('../src/methods/attribution/index.js');
    const first = (await chat.generate(prompt, { maxTokens: 1 })).text;
    const r = await explainWithBackend(chat, { prompt, target: first, method: 'occlusion' });
    expect(r.backend.approximate).toBe(true);
    expect(r.scores[0].every(Number.isFinite)).toBe(true);
  });
});

// ---------------------------------------------------------------------------------------------
// A scripted server: each request takes the next behaviour from the script (then 'ok').

type Behaviour = 'ok' | '429' | '500' | '400' | 'hang' | 'malformed' | 'slow-ok';

/** An echo of `text` (a prompt followed by ' b') as two tokens. */
function echoBody(text: string): object {
  const head = text.slice(0, -2);
  return {
    choices: [{ text, logprobs: { tokens: [head, ' b'], token_logprobs: [null, -1.5], text_offset: [0, head.length] } }],
    usage: { prompt_tokens: 2, completion_tokens: 0 },
  };
}

async function scriptedServer(script: Behaviour[]) {
  const seen: { at: number; behaviour: Behaviour }[] = [];
  let inFlight = 0;
  let maxInFlight = 0;
  const server = http.createServer((req, res) => {
    let body = '';
    req.on('data', (c) => (body += c));
    req.on('end', () => {
      const behaviour = script.shift() ?? 'ok';
      seen.push({ at: Date.now(), behaviour });
      inFlight++;
      maxInFlight = Math.max(maxInFlight, inFlight);
      const done = () => { inFlight--; };
      const prompt = (JSON.parse(body) as { prompt: string }).prompt;
      const send = (status: number, text: string, headers: Record<string, string> = {}) => {
        res.writeHead(status, { 'content-type': 'application/json', ...headers });
        res.end(text);
        done();
      };
      switch (behaviour) {
        case 'ok': return send(200, JSON.stringify(echoBody(prompt)));
        case 'slow-ok': return setTimeout(() => send(200, JSON.stringify(echoBody(prompt))), 40);
        case '429': return send(429, JSON.stringify({ error: { message: 'Rate limit reached' } }), { 'retry-after': '0.05' });
        case '500': return send(500, 'Internal Server Error');
        case '400': return send(400, JSON.stringify({ error: { message: 'bad field' } }));
        case 'malformed': return send(200, '{"choices": [');
        case 'hang': res.on('close', done); return; // never answers
      }
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/v1`;
  return {
    url, seen, maxInFlight: () => maxInFlight,
    close: () => new Promise<void>((r) => { server.closeAllConnections(); server.close(() => r()); }),
  };
}

describe('HttpBackend transport faults (a real local server)', () => {
  const fast = { backoffMs: 10, maxBackoffMs: 100, timeoutMs: 300 };

  it('retries 429 (honouring Retry-After), 500, a hung request and malformed JSON, then succeeds and reports each retry', async () => {
    const s = await scriptedServer(['429', '500', 'hang', 'malformed', 'ok']);
    const events: HttpEvent[] = [];
    const b = new HttpBackend({ baseURL: s.url, model: 'm', retries: 4, ...fast, onEvent: (e) => events.push(e) });
    const t0 = Date.now();
    const r = await b.scoreContinuation('a', ' b');
    expect(r).toEqual({ tokens: [' b'], logprobs: [-1.5], total: -1.5, approximate: false });
    expect(s.seen.map((x) => x.behaviour)).toEqual(['429', '500', 'hang', 'malformed', 'ok']);
    expect(events.map((e) => e.reason.replace(/:.*/, ''))).toEqual(['HTTP 429', 'HTTP 500', 'no complete response within 300 ms', 'malformed JSON in a 200 response']);
    expect(events.every((e) => e.type === 'retry')).toBe(true);
    // Retry-After of 50 ms was waited for at least.
    expect(s.seen[1].at - s.seen[0].at).toBeGreaterThanOrEqual(45);
    expect(Date.now() - t0).toBeLessThan(3000);
    expect(b.usage()).toMatchObject({ requests: 1, retries: 4, failures: 0, promptTokens: 2 });
    await s.close();
  });

  it('gives up after the last retry with one clear error, and never hangs', async () => {
    const s = await scriptedServer(['hang', 'hang', 'hang']);
    const b = new HttpBackend({ baseURL: s.url, model: 'm', retries: 2, ...fast });
    const t0 = Date.now();
    await expect(b.scoreContinuation('a', ' b')).rejects.toThrow(/POST completions failed after 3 attempts: no complete response within 300 ms/);
    expect(Date.now() - t0).toBeLessThan(3000);
    expect(b.usage()).toMatchObject({ requests: 0, retries: 2, failures: 1 });
    await s.close();
  });

  it('does not retry a 400, and reports the server message', async () => {
    const s = await scriptedServer(['400']);
    const b = new HttpBackend({ baseURL: s.url, model: 'm', ...fast });
    await expect(b.scoreContinuation('a', ' b')).rejects.toThrow(/failed: HTTP 400: bad field$/);
    expect(s.seen.length).toBe(1);
    await s.close();
  });

  it('a refused connection is retried and then reported', async () => {
    const s = await scriptedServer([]);
    await s.close();
    const b = new HttpBackend({ baseURL: s.url, model: 'm', retries: 1, ...fast });
    await expect(b.scoreContinuation('a', ' b')).rejects.toThrow(/failed after 2 attempts: network error: ECONNREFUSED/);
  });

  it('keeps at most `concurrency` requests in flight, and answers identical queries from the cache', async () => {
    const s = await scriptedServer(Array(12).fill('slow-ok'));
    const b = new HttpBackend({ baseURL: s.url, model: 'm', concurrency: 3, ...fast });
    const prompts = Array.from({ length: 12 }, (_, i) => `a${i % 6}`);
    await Promise.all(prompts.map((p) => b.scoreContinuation(p, ' b')));
    expect(s.maxInFlight()).toBe(3);
    expect(s.seen.length).toBe(6); // six distinct prompts, each twice: the duplicates share the request
    expect(b.usage()).toMatchObject({ requests: 6, cachedRequests: 6 });
    const off = new HttpBackend({ baseURL: s.url, model: 'm', cache: false, concurrency: 3, ...fast });
    await Promise.all(prompts.map((p) => off.scoreContinuation(p, ' b')));
    expect(s.seen.length).toBe(18);
    await s.close();
  });

  it('a whole explanation through a faulty proxy in front of the real server completes, equals the fault-free run, and reports its retries', async () => {
    // Every third request fails in turn as 429, 500, a hang and malformed JSON; the rest are
    // forwarded to Lantern's server.
    const faults: Behaviour[] = ['429', '500', 'hang', 'malformed'];
    let n = 0;
    const proxy = http.createServer((req, res) => {
      let body = '';
      req.on('data', (c) => (body += c));
      req.on('end', async () => {
        const k = n++;
        const fault = k % 3 === 1 ? faults[Math.floor(k / 3) % faults.length] : undefined;
        if (fault === 'hang') return;
        if (fault === '429') { res.writeHead(429, { 'retry-after': '0' }); return res.end('{}'); }
        if (fault === '500') { res.writeHead(500); return res.end('oops'); }
        const upstream = await fetch(new URL(req.url!, srv.baseURL.replace(/\/v1$/, '/')), { method: 'POST', headers: { 'content-type': 'application/json' }, body });
        const text = await upstream.text();
        res.writeHead(upstream.status, { 'content-type': 'application/json' });
        res.end(fault === 'malformed' ? text.slice(0, text.length / 2) : text);
      });
    });
    await new Promise<void>((r) => proxy.listen(0, '127.0.0.1', r));
    const url = `http://127.0.0.1:${(proxy.address() as AddressInfo).port}/v1`;
    const events: HttpEvent[] = [];
    // One request at a time and a generous timeout: on a loaded CI machine, requests queued behind
    // each other at the real server must not be mistaken for the proxy's injected hang.
    const flaky = new HttpBackend({ baseURL: url, model: ID, ...fast, concurrency: 1, timeoutMs: 5000, retries: 3, onEvent: (e) => events.push(e) });
    const { explainWithBackend } = await import('../src/methods/attribution/index.js');
    // 12 words: 13 queries, enough for every kind of fault to come up.
    const opts = { prompt: 'The jury said that the city was clean and the people were happy', target: ' and', method: 'occlusion' as const };
    const got = await explainWithBackend(flaky, opts);
    const want = await explainWithBackend(new HttpBackend({ baseURL: srv.baseURL, model: ID }), opts);
    expect(got.scores).toEqual(want.scores);
    expect(new Set(events.map((e) => e.reason.replace(/:.*/, '')))).toEqual(new Set(['HTTP 429', 'HTTP 500', 'no complete response within 5000 ms', 'malformed JSON in a 200 response']));
    expect(got.backend.usage.retries).toBe(events.length);
    expect(got.backend.usage.failures).toBe(0);
    proxy.closeAllConnections();
    proxy.close();
  });

  it('counts cost from a price table, sends the API key, and rejects bad options in one line', async () => {
    let auth: string | undefined;
    const server = http.createServer((req, res) => {
      auth = req.headers.authorization;
      req.resume();
      req.on('end', () => { res.writeHead(200, { 'content-type': 'application/json' }); res.end(JSON.stringify(echoBody('a b'))); });
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    process.env.LANTERN_TEST_KEY = 'sk-test';
    const b = new HttpBackend({ baseURL: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, model: 'm', apiKeyEnv: 'LANTERN_TEST_KEY', prices: { prompt: 0.5, completion: 2 } });
    await b.scoreContinuation('a', ' b');
    expect(auth).toBe('Bearer sk-test');
    expect(b.usage().cost).toBeCloseTo((2 * 0.5) / 1e6, 15);
    expect(b.baseURL).toMatch(/\/v1$/);
    server.close();
    expect(() => new HttpBackend({ baseURL: 'localhost:8000', model: 'm' })).toThrow(/must be http\(s\)|not a URL/);
    expect(() => new HttpBackend({ baseURL: 'http://x', model: 'm', concurrency: 0 })).toThrow(/concurrency must be an integer >= 1/);
  });
});

describe('the OpenAI-compatible API inside the Workbench server (lantern serve)', () => {
  it('answers OpenAI clients under /v1 behind the Workbench token, loading the model on first use', async () => {
    const fs = await import('node:fs');
    const os = await import('node:os');
    const path = await import('node:path');
    const { buildServer } = await import('../src/interfaces/server/app.js');
    const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'lantern-serve-openai-'));
    const openai = { id: path.basename(BUNDLED_MODEL) };
    const app = await buildServer({ dataDir: tmp, token: 'secret-token-1', allowHub: false, openai: true });
    try {
      const address = await app.listen({ port: 0, host: '127.0.0.1' });
      const ok = new OpenAI({ baseURL: `${address}/v1`, apiKey: 'secret-token-1', maxRetries: 0 });
      expect((await ok.models.list()).data.map((m) => m.id)).toEqual([openai.id]);
      const ids = model.toTokens('The jury said that');
      const r = await ok.completions.create({ model: openai.id, prompt: ids, max_tokens: 0, echo: true, logprobs: 0 });
      expect(r.choices[0].logprobs!.token_logprobs!.slice(1)).toEqual(await engineLogprobs(ids));
      const denied = new OpenAI({ baseURL: `${address}/v1`, apiKey: 'wrong', maxRetries: 0 });
      await expect(denied.models.list()).rejects.toMatchObject({ status: 401 });
    } finally {
      await app.close();
      fs.rmSync(tmp, { recursive: true, force: true });
    }
  });
});
