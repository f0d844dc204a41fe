/**
 * Requests for the fuzzer: valid bodies of every Workbench compute endpoint (prompts as text and
 * as chat messages, with a system message) and of the /v1 API (streamed too), mutated (fields set to random JSON, extreme numbers, long or odd Unicode strings, unknown
 * fields, fields removed, bodies that are not JSON, ?async=true). They go to one in-process
 * server on a tiny random GPT-2 (context 64) with a 3-second job limit. The oracle: a 2xx whose
 * result is complete and finite (an async job ends done or with a clean error), or a 4xx with a
 * one-line JSON error; never a 5xx, a hang, or a server that stops answering /api/health. A
 * stream must be well-formed server-sent events ending in [DONE], or in one clean error event.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import fc from 'fast-check';
import { buildServer, LanternServer } from '../../interfaces/server/app.js';
import { servedId } from '../../interfaces/server/openai-compat.js';
import { METHODS } from '../../methods/attribution/index.js';
import { GENERATORS } from '../../data/statements.js';
import { TINY_GPT2, writeRandomModel } from '../../models/random.js';
import { firstNonFinite } from '../../finite.js';
import { cleanMessage, FuzzKind, Verdict } from './harness.js';

interface Request {
  url: string;
  /** A JSON body, or a raw string sent as application/json. */
  body: unknown;
  raw?: string;
}

type Mutation = { op: 'set'; key: string; value: unknown } | { op: 'delete'; key: string } | { op: 'raw'; text: string };

/** Hostile strings: binary, empty, long, odd Unicode, lone surrogates, special tokens. */
export const oddText = fc.oneof(
  fc.string({ unit: 'binary', maxLength: 40 }),
  fc.constantFrom('', ' ', 'the '.repeat(70), '🥐'.repeat(30), '東京は日本の首都です', 'e\u0301\u0301\u0301', '\ud800', '<|endoftext|>'.repeat(5), '\u0000', 'x'.repeat(5000)),
);
/** Numbers at and past the limits requests name. */
export const oddNumber = fc.constantFrom(-1, 0, 1, 2, 3.5, 64, 65, 256, 512, 513, 5000, 5001, 1e9, 2 ** 31, 2 ** 53, -(2 ** 53), 1e308, -1e-308);
const oddMessages = fc.array(fc.oneof(
  { weight: 5, arbitrary: fc.record({ role: fc.constantFrom('system', 'user', 'assistant', 'tool', '', 'USER'), content: oddText }) },
  { weight: 1, arbitrary: fc.constantFrom(null, 'hi', { role: 'user' }, { role: 'user', content: 3 }, { role: 'user', content: 'x', name: 'y' }) },
), { maxLength: 4 });
/** Any hostile JSON value for a field. */
export const oddValue = fc.oneof(oddText, oddNumber, oddMessages, fc.jsonValue({ maxDepth: 2 }), fc.constantFrom(null, true, false, [], {}, [1, 2, 3], Array.from({ length: 300 }, () => 1)));

function mutated(bases: Request[], fields: string[]): fc.Arbitrary<{ req: Request; async: boolean; muts: Mutation[] }> {
  const key = fc.oneof({ weight: 5, arbitrary: fc.constantFrom(...fields) }, { weight: 1, arbitrary: fc.string({ maxLength: 8 }) });
  const mutation: fc.Arbitrary<Mutation> = fc.oneof(
    { weight: 8, arbitrary: fc.record({ op: fc.constant('set' as const), key, value: oddValue }) },
    { weight: 2, arbitrary: fc.record({ op: fc.constant('delete' as const), key }) },
    { weight: 1, arbitrary: fc.record({ op: fc.constant('raw' as const), text: fc.oneof(fc.string({ maxLength: 30 }), fc.constantFrom('{', '[]', 'null', '"x"', '{"text": }', '1e999')) }) },
  );
  return fc.record({ req: fc.constantFrom(...bases), async: fc.boolean(), muts: fc.array(mutation, { maxLength: 3 }) });
}

function apply(r: Request, muts: Mutation[]): Request {
  const body = structuredClone(r.body) as Record<string, unknown>;
  let raw: string | undefined;
  for (const m of muts) {
    if (m.op === 'set') body[m.key] = m.value;
    else if (m.op === 'delete') delete body[m.key];
    else raw = m.text;
  }
  return { url: r.url, body, raw };
}

let shared: { app: LanternServer; dir: string; id: string; users: number } | undefined;

async function server(): Promise<{ app: LanternServer; id: string }> {
  if (!shared) {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'lantern-fuzz-server-'));
    const model = path.join(dir, 'tiny');
    writeRandomModel(model, TINY_GPT2);
    // A chat template, so that requests with messages can be run, not only refused.
    const template = "{% for m in messages %}<|{{ m['role'] }}|>{{ m['content'] }}\n{% endfor %}{% if add_generation_prompt %}<|assistant|>{% endif %}";
    fs.writeFileSync(path.join(model, 'tokenizer_config.json'), JSON.stringify({ chat_template: template }));
    // 3 s per job: the fuzzer's requests may ask for anything, and the limit is what answers.
    const app = await buildServer({ dataDir: path.join(dir, 'data'), model, allowHub: false, openai: true, webDir: path.join(dir, 'none'), limits: { maxJobSeconds: 3 } });
    shared = { app, dir, id: servedId(model), users: 0 };
  }
  shared.users++;
  return shared;
}

async function release(): Promise<void> {
  if (shared && --shared.users === 0) {
    await shared.app.close();
    fs.rmSync(shared.dir, { recursive: true, force: true });
    shared = undefined;
  }
}

async function send(app: LanternServer, r: Request, query = ''): Promise<{ status: number; json: any; text: string }> {
  const res = await app.inject({
    method: 'POST', url: r.url + query, headers: { host: 'localhost', 'content-type': 'application/json' },
    payload: r.raw ?? JSON.stringify(r.body),
  });
  let json: any;
  try {
    json = JSON.parse(res.body);
  } catch { /* checked below */ }
  return { status: res.statusCode, json, text: res.body };
}

/** A violation when /api/health stops answering 200. */
export async function stillAnswering(app: LanternServer): Promise<string | undefined> {
  const h = await app.inject({ method: 'GET', url: '/api/health', headers: { host: 'localhost' } });
  return h.statusCode === 200 ? undefined : `the server stopped answering: /api/health gave ${h.statusCode}`;
}

/** A refusal, a violation when its message is not one clean line. */
export function refused(status: number, message: unknown, outcome: string): Verdict {
  const bad = cleanMessage(message);
  return bad ? { outcome, violation: bad } : { outcome };
}

const TEXT = 'The cat sat on the mat because';
const CHAT = [{ role: 'system', content: 'Be brief.' }, { role: 'user', content: TEXT }];

export function workbenchKind(): FuzzKind<{ req: Request; async: boolean; muts: Mutation[] }> {
  let app: LanternServer;
  const bases: Request[] = [
    { url: '/api/forward', body: { text: TEXT } },
    { url: '/api/attention', body: { text: TEXT } },
    { url: '/api/lens', body: { text: TEXT, target: ' the' } },
    ...METHODS.map((method) => ({ url: '/api/attribution', body: { text: TEXT, method, target: ' the' } })),
    { url: '/api/attribution', body: { text: TEXT, method: 'ig', target: ' the mat', evaluate: true } },
    { url: '/api/patching', body: { clean: 'When Mary and John went, John gave it to', corrupt: 'When Mary and John went, Mary gave it to', answer: ' Mary', wrong: ' John' } },
    { url: '/api/patching', body: { clean: 'When Mary and John went, John gave it to', corrupt: 'When Mary and John went, Mary gave it to', answer: ' Mary', wrong: ' John', chat: true, system: 'Answer with a name.' } },
    { url: '/api/forward', body: { messages: CHAT } },
    { url: '/api/lens', body: { messages: CHAT, target: ' the', addGenerationPrompt: false } },
    { url: '/api/attribution', body: { messages: CHAT, method: METHODS[0], target: ' the', templateTokens: true } },
    { url: '/api/probes', body: { dataset: Object.keys(GENERATORS)[0], limit: 8 } },
  ];
  const fields = ['text', 'method', 'target', 'foil', 'kind', 'evaluate', 'seed', 'steps', 'rule', 'aggregate', 'batchSize', 'layers', 'heads', 'samples', 'kernelWidth', 'baseline', 'mask', 'topK', 'model', 'title', 'clean', 'corrupt', 'answer', 'wrong', 'metric', 'sweep', 'byPosition', 'pos',
    'messages', 'system', 'chat', 'addGenerationPrompt', 'templateTokens', 'dataset', 'limit', 'positions'];
  return {
    name: 'workbench requests',
    async setup() {
      app = (await server()).app;
    },
    arbitrary: () => mutated(bases, fields),
    async oracle({ req, async, muts }) {
      const r = apply(req, muts);
      const res = await send(app, r, async ? '?async=true' : '');
      const down = await stillAnswering(app);
      if (down) return { outcome: 'server down', violation: down };
      if (res.status >= 500) return { outcome: `${res.status}`, violation: `${res.status}: ${res.text.slice(0, 300)}` };
      if (res.status >= 400) return refused(res.status, res.json?.error, `refused ${res.status}`);
      if (res.status === 202) {
        const id = res.json?.id;
        await app.lantern.queue.get(id)?.done.catch(() => {});
        const run = app.lantern.store.get(id);
        if (run?.status === 'error') return refused(400, run.error, 'async job error');
        if (run?.status !== 'done') return { outcome: `async ${run?.status}`, violation: `the job ended ${run?.status}` };
        const nf = firstNonFinite(run.result);
        return nf ? { outcome: 'non-finite', violation: `non-finite ${nf.value} at ${nf.path}` } : { outcome: 'async done' };
      }
      if (res.json?.status !== 'done' || res.json?.result == null) return { outcome: `${res.status}`, violation: `a ${res.status} without a done run: ${res.text.slice(0, 300)}` };
      return { outcome: 'done' };
    },
    teardown: release,
  };
}

/** A stream's events: JSON chunks then [DONE], or JSON chunks then one error event with a clean message. */
function streamVerdict(text: string): Verdict {
  const events = text.split('\n\n').filter((e) => e !== '');
  for (let i = 0; i < events.length; i++) {
    const e = events[i];
    if (!e.startsWith('data: ')) return { outcome: 'bad stream', violation: `event ${i} is not a data event: ${JSON.stringify(e.slice(0, 200))}` };
    const data = e.slice(6);
    const last = i === events.length - 1;
    if (data === '[DONE]') return last ? { outcome: 'streamed' } : { outcome: 'bad stream', violation: `events after [DONE]: ${JSON.stringify(events.slice(i + 1).join('').slice(0, 200))}` };
    let json: any;
    try {
      json = JSON.parse(data);
    } catch {
      return { outcome: 'bad stream', violation: `event ${i} is not JSON: ${JSON.stringify(data.slice(0, 200))}` };
    }
    if (json?.error) {
      const message = json.error.message;
      if (!last) return { outcome: 'bad stream', violation: 'events after an error event' };
      if (typeof message === 'string' && message.startsWith('internal error')) return { outcome: 'stream error', violation: message.slice(0, 300) };
      return refused(200, message, 'stream error');
    }
  }
  return { outcome: 'bad stream', violation: 'the stream ended without [DONE] or an error event' };
}

export function openaiKind(): FuzzKind<{ req: Request; async: boolean; muts: Mutation[] }> {
  let app: LanternServer;
  let bases: Request[] = [];
  const fields = ['model', 'prompt', 'max_tokens', 'echo', 'logprobs', 'temperature', 'seed', 'stop', 'n', 'stream', 'messages', 'top_logprobs', 'max_completion_tokens', 'tokens', 'stream_options', 'top_p'];
  return {
    name: '/v1 requests',
    async setup() {
      const s = await server();
      app = s.app;
      const model = s.id;
      bases = [
        { url: '/v1/completions', body: { model, prompt: TEXT, max_tokens: 0, echo: true, logprobs: 1 } },
        { url: '/v1/completions', body: { model, prompt: [TEXT, 'x 🥐 went to a'], max_tokens: 3, logprobs: 2, temperature: 0 } },
        { url: '/v1/completions', body: { model, prompt: [464, 3797, 3332], max_tokens: 2 } },
        { url: '/v1/chat/completions', body: { model, messages: [{ role: 'user', content: 'Hello there' }], max_tokens: 3, logprobs: true, top_logprobs: 2 } },
        { url: '/v1/completions', body: { model, prompt: TEXT, max_tokens: 4, stream: true, stop: [' the'] } },
        { url: '/v1/chat/completions', body: { model, messages: CHAT, max_tokens: 3, stream: true, stream_options: { include_usage: true } } },
        { url: '/tokenize', body: { model, prompt: TEXT } },
        { url: '/detokenize', body: { model, tokens: [464, 3797] } },
      ];
    },
    arbitrary: () => mutated([{ url: '', body: {} }], fields).chain((x) => fc.constantFrom(...bases).map((req) => ({ ...x, req }))),
    async oracle({ req, muts }) {
      const r = apply(req, muts);
      const res = await send(app, r);
      const down = await stillAnswering(app);
      if (down) return { outcome: 'server down', violation: down };
      if (res.status >= 500) return { outcome: `${res.status}`, violation: `${res.status}: ${res.text.slice(0, 300)}` };
      if (res.status >= 400) return refused(res.status, res.json?.error?.message, `refused ${res.status}`);
      if (res.text.startsWith('data: ')) return streamVerdict(res.text);
      const choices = res.json?.choices;
      for (const c of Array.isArray(choices) ? choices : []) {
        const lp = c?.logprobs;
        const values: unknown[] = lp?.token_logprobs ?? lp?.content?.map((x: { logprob: unknown }) => x.logprob) ?? [];
        const badAt = values.findIndex((v, i) => !(typeof v === 'number' && Number.isFinite(v)) && !(v === null && i === 0 && r.body && (r.body as any).echo === true));
        if (badAt >= 0) return { outcome: 'non-finite', violation: `logprob ${JSON.stringify(values[badAt])} at ${badAt}` };
        if (lp?.text_offset && lp.text_offset.some((o: number, i: number) => i > 0 && o < lp.text_offset[i - 1])) return { outcome: 'bad offsets', violation: `text_offset not monotone: ${lp.text_offset}` };
      }
      return { outcome: `${res.status}` };
    },
    teardown: release,
  };
}
