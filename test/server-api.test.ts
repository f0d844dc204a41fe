/**
 * The Workbench's HTTP API on a real server (ephemeral port): every endpoint, its results against
 * direct library calls on the same model, and bad input.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildServer, LanternServer } from '../src/interfaces/server/app.js';
import { RunStore } from '../src/interfaces/server/store.js';
import { loadModel } from '../src/models/load.js';
import { topK } from '../src/models/predictions.js';
import { attribute } from '../src/methods/attribution/index.js';
import { logitLens } from '../src/methods/lens/index.js';
import { activationPatching } from '../src/methods/patching/index.js';
import { writeRandomModel, TINY_GPT2 } from '../src/models/random.js';
import type { HookedTransformer } from '../src/models/hooked.js';
import { BUNDLED_MODEL } from '../src/paths.js';
import { expectOneLineError, runLantern } from './helpers.js';
import { startLanternServe } from './support/processes.js';

const PROMPT = 'The cat sat on the';
const CLEAN = 'When Mary and John went to the store, John gave a drink to';
const CORRUPT = 'When Mary and John went to the store, Mary gave a drink to';

let tmp: string;
let app: LanternServer;
let base: string;
let lib: HookedTransformer;

async function api(method: string, url: string, body?: unknown, headers: Record<string, string> = {}) {
  const res = await fetch(base + url, {
    method,
    headers: body === undefined ? headers : { 'content-type': 'application/json', ...headers },
    body: body === undefined ? undefined : typeof body === 'string' ? body : JSON.stringify(body),
  });
  const text = await res.text();
  let json: any;
  try {
    json = text ? JSON.parse(text) : undefined;
  } catch {
    json = text;
  }
  return { status: res.status, json, headers: res.headers };
}

/** Reads a server-sent event stream to its end: the events' data objects. */
async function events(url: string): Promise<any[]> {
  const res = await fetch(base + url);
  expect(res.headers.get('content-type')).toMatch(/text\/event-stream/);
  const text = await res.text();
  return text.split('\n\n').filter((b) => b.includes('data: ')).map((b) => JSON.parse(b.slice(b.indexOf('data: ') + 6)));
}

beforeAll(async () => {
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'lantern-server-'));
  app = await buildServer({ dataDir: path.join(tmp, 'data'), allowHub: false });
  base = await app.listen({ port: 0, host: '127.0.0.1' });
  lib = await loadModel(BUNDLED_MODEL);
});

afterAll(async () => {
  await app?.close();
  fs.rmSync(tmp, { recursive: true, force: true });
});

describe('compute endpoints equal the library', () => {
  it('forward: tokens and top-k predictions', async () => {
    const r = await api('POST', '/api/forward', { text: PROMPT, topK: 5 });
    expect(r.status).toBe(200);
    expect(r.json.status).toBe('done');
    const tokens = lib.toTokens(PROMPT);
    const want = topK(await lib.run([tokens]), tokens.length - 1, 5, (id) => lib.tokenStrings([id])[0]);
    expect(r.json.result.tokens).toEqual(tokens);
    expect(r.json.result.tokenStrings).toEqual(lib.tokenStrings(tokens));
    expect(r.json.result.predictions.map((p: any) => p.id)).toEqual(want.map((p) => p.id));
    r.json.result.predictions.forEach((p: any, i: number) => expect(p.prob).toBeCloseTo(want[i].prob, 6));
  });

  it('attribution: saliency scores, words, and IG with faithfulness', async () => {
    const r = await api('POST', '/api/attribution', { text: PROMPT, method: 'saliency', target: ' mat' });
    expect(r.status).toBe(200);
    const want = await attribute(lib, { text: PROMPT, method: 'saliency', target: ' mat' });
    const got = r.json.result;
    expect(got.format).toBe('lantern-attribution');
    expect(got.tokenStrings).toEqual(want.tokenStrings);
    expect(got.scores).toHaveLength(1);
    got.scores[0].forEach((s: number, i: number) => expect(s).toBeCloseTo(want.scores[0][i], 5));
    expect(got.words.words.join('')).toBe(PROMPT);

    const ig = await api('POST', '/api/attribution', { text: PROMPT, method: 'ig', steps: 8, target: ' mat', foil: ' floor', evaluate: true });
    expect(ig.status).toBe(200);
    const res = ig.json.result;
    expect(res.target.foil).toBeDefined();
    expect(res.settings.steps).toBe(8);
    // IG's completeness: the scores sum to f(x) - f(baseline) up to the recorded convergence delta.
    expect(res.convergenceDelta).toHaveLength(1);
    expect(res.faithfulness).toBeDefined();
    expect(res.faithfulness.rows).toHaveLength(1);
    expect(Object.keys(res.faithfulness.rows[0])).toEqual(expect.arrayContaining(['comprehensiveness', 'sufficiency']));
  });

  it('lens: the logit-lens grid', async () => {
    const r = await api('POST', '/api/lens', { text: PROMPT, target: ' mat', topK: 3 });
    expect(r.status).toBe(200);
    const want = await logitLens(lib, PROMPT, { topK: 3, target: ' mat' });
    expect(r.json.result.layers).toEqual(want.layers);
    expect(r.json.result.cells).toHaveLength(lib.cfg.nLayers + 1);
    r.json.result.cells.forEach((row: any[], l: number) => row.forEach((c, p) => {
      expect(c.top.map((t: any) => t.id)).toEqual(want.cells[l][p].top.map((t) => t.id));
      expect(c.target.prob).toBeCloseTo(want.cells[l][p].target!.prob, 6);
    }));
  });

  it('attention: every layer and head, rows are causal distributions equal to the cached pattern', async () => {
    const r = await api('POST', '/api/attention', { text: PROMPT });
    expect(r.status).toBe(200);
    const { patterns, nLayers, nHeads, tokens } = r.json.result;
    const T = tokens.length;
    expect([nLayers, nHeads]).toEqual([lib.cfg.nLayers, lib.cfg.nHeads]);
    expect(patterns).toHaveLength(nLayers);
    const { cache } = await lib.runWithCache([tokens], ['blocks.2.attn.hook_pattern']);
    const p = cache.get('blocks.2.attn.hook_pattern').f32;
    for (let h = 0; h < nHeads; h++) {
      for (let q = 0; q < T; q++) {
        const row: number[] = patterns[2][h][q];
        expect(row.reduce((a, b) => a + b, 0)).toBeCloseTo(1, 4);
        for (let k = q + 1; k < T; k++) expect(row[k]).toBe(0);
        row.forEach((v, k) => expect(v).toBeCloseTo(p[(h * T + q) * T + k], 5));
      }
    }
  });

  it('patching: activation and attribution patching sweeps', async () => {
    const body = { clean: CLEAN, corrupt: CORRUPT, answer: ' Mary', wrong: ' John', sweep: 'heads' };
    const r = await api('POST', '/api/patching', body);
    expect(r.status).toBe(200);
    const want = await activationPatching(lib, { ...body, batchSize: 64 });
    expect(r.json.result.shape).toEqual([lib.cfg.nLayers, lib.cfg.nHeads]);
    r.json.result.effects.forEach((e: number, i: number) => expect(e).toBeCloseTo(want.effects[i], 4));
    expect(r.json.result.corruptTokenStrings).toEqual(lib.tokenStrings(lib.toTokens(CORRUPT)));
    const a = await api('POST', '/api/patching', { ...body, sweep: 'resid', method: 'attribution' });
    expect(a.status).toBe(200);
    expect(a.json.result.method).toBe('attribution-patching');
    expect(a.json.result.shape).toEqual([lib.cfg.nLayers, lib.toTokens(CORRUPT).length]);
  });
});

describe('bad input is a 4xx naming the problem', () => {
  const cases: [string, string, unknown, number, RegExp][] = [
    ['empty text', '/api/forward', { text: '' }, 400, /^the prompt \(text\) is empty$/],
    ['missing text', '/api/lens', {}, 400, /^the request is missing the prompt \(text\)$/],
    ['unknown field', '/api/attribution', { text: 'a', stpes: 3 }, 400, /unknown field 'stpes'/],
    ['wrong type', '/api/forward', { text: 'a', topK: '5' }, 400, /^topK must be a whole number$/],
    ['out of range', '/api/forward', { text: 'a', topK: 0 }, 400, /^topK must be at least 1$/],
    ['unknown method', '/api/attribution', { text: 'a', method: 'igg' }, 400, /^method must be one of: ig, saliency/],
    ['unknown sweep', '/api/patching', { clean: 'a', corrupt: 'b', answer: ' c', sweep: 'neurons' }, 400, /^sweep must be one of: resid, attn, mlp, heads, pattern/],
    ['foil without target', '/api/attribution', { text: PROMPT, foil: ' dog', method: 'saliency' }, 400, /foil needs a target/],
    ['an IG setting for another method', '/api/attribution', { text: PROMPT, method: 'saliency', steps: 8 }, 400, /steps applies only to method ig, layer-ig \(the method is saliency\)/],
    ['samples for IG', '/api/attribution', { text: PROMPT, samples: 8 }, 400, /samples applies only to method lime, shap, shapley \(the method is ig\)/],
    ['byPosition for resid', '/api/patching', { clean: CLEAN, corrupt: CORRUPT, answer: ' Mary', byPosition: true }, 400, /byPosition applies only to sweep heads, pattern \(the sweep is resid\)/],
    ['logit-diff without wrong', '/api/patching', { clean: CLEAN, corrupt: CORRUPT, answer: ' Mary', metric: 'logit-diff' }, 400, /metric logit-diff needs a wrong answer/],
    ['multi-token foil target', '/api/attribution', { text: PROMPT, target: ' the big mat', foil: ' dog', method: 'saliency' }, 400, /is 3 tokens; a contrastive foil needs a one-token target/],
    ['multi-token lens target', '/api/lens', { text: PROMPT, target: ' big mat' }, 400, /is 2 tokens \(" big", " mat"\), not a single token/],
    ['longer than the context', '/api/forward', { text: 'word '.repeat(300) }, 400, /text is 301 tokens; the model's context is 256/],
    ['attention prompt too long', '/api/attention', { text: 'word '.repeat(150) }, 400, /attention patterns are limited to 128 tokens \(the prompt is 151\)/],
    ['pair of different lengths', '/api/patching', { clean: 'The cat sat', corrupt: 'The big cat sat', answer: ' on' }, 400, /token/],
    ['unknown model', '/api/forward', { text: 'a', model: 'gpt9' }, 400, /unknown model 'gpt9'/],
    ['unknown planted kind', '/api/forward', { text: 'a', model: 'planted:nope' }, 400, /unknown planted model 'nope'; kinds: induction/],
    ['unregistered folder', '/api/forward', { text: 'a', model: 'folder:abc' }, 400, /no added model folder with id 'abc'/],
    ['Hub off', '/api/forward', { text: 'a', model: 'hub:gpt2' }, 400, /Hub models are turned off/],
  ];
  for (const [label, url, body, status, pattern] of cases) {
    it(label, async () => {
      const r = await api('POST', url, body);
      expect(r.status, JSON.stringify(r.json)).toBe(status);
      expect(r.json.error).toMatch(pattern);
    });
  }

  it('bodies over the size limit are 413, non-JSON bodies 415, malformed JSON 400', async () => {
    const big = await api('POST', '/api/forward', { text: 'x'.repeat(300 * 1024) });
    expect(big.status).toBe(413);
    expect(big.json.error).toMatch(/too large/i);
    const form = await api('POST', '/api/forward', 'text=hi', { 'content-type': 'application/x-www-form-urlencoded' });
    expect(form.status).toBe(415);
    const broken = await api('POST', '/api/forward', '{"text": ', { 'content-type': 'application/json' });
    expect(broken.status).toBe(400);
    expect(broken.json.error).toMatch(/JSON/);
  });

  it('health answers; unknown routes, runs, jobs and folders are 404', async () => {
    expect((await api('GET', '/api/health')).json).toMatchObject({ ok: true, apiVersion: '1' });
    expect((await api('DELETE', '/api/models/folders/nope')).status).toBe(404);
    expect((await api('GET', '/api/jobs/nope')).status).toBe(404);
    expect((await api('GET', '/api/nothing')).status).toBe(404);
    expect((await api('GET', '/api/runs/nope')).json.error).toMatch(/no saved run nope/);
    expect((await api('PATCH', '/api/runs/nope', { title: 'x' })).status).toBe(404);
    expect((await api('DELETE', '/api/runs/nope')).status).toBe(404);
    expect((await api('GET', '/api/runs/nope/export')).status).toBe(404);
    expect((await api('POST', '/api/jobs/nope/cancel')).status).toBe(404);
    expect((await api('GET', '/api/jobs/nope/events')).status).toBe(404);
  });

  it('requests for another Host are refused (DNS rebinding)', async () => {
    const res = await new Promise<number>((resolve, reject) => {
      import('node:http').then(({ request }) => {
        const u = new URL(base);
        const req = request({ host: u.hostname, port: u.port, path: '/api/runs', headers: { host: 'evil.example:80' } }, (r) => resolve(r.statusCode!));
        req.on('error', reject);
        req.end();
      });
    });
    expect(res).toBe(403);
  });
});

describe('models', () => {
  it('lists bundled and planted models; planted models run', async () => {
    const r = await api('GET', '/api/models');
    expect(r.json.default).toBe('bundled');
    const refs = r.json.models.map((m: any) => m.ref);
    expect(refs).toEqual(expect.arrayContaining(['bundled', 'planted:induction', 'planted:ioi', 'planted:copy-suppression', 'planted:ngram-neuron']));
    const f = await api('POST', '/api/forward', { text: 'NBAKaeNBAK', model: 'planted:induction', topK: 1 });
    expect(f.status).toBe(200);
    // The planted induction circuit continues the repeated sequence: after "NBAKaeNBAK" comes "a".
    expect(f.json.result.predictions[0].token).toBe('a');
  });

  it('adds a checked local folder, runs it, removes it; refuses paths that are not model folders', async () => {
    const folder = path.join(tmp, 'tiny');
    writeRandomModel(folder, { ...TINY_GPT2, dVocab: 50257 }, { seed: 3 });
    fs.copyFileSync(path.join(BUNDLED_MODEL, 'tokenizer.json'), path.join(folder, 'tokenizer.json'));
    const add = await api('POST', '/api/models/folders', { path: folder, name: 'tiny random' });
    expect(add.status).toBe(201);
    expect(add.json.ref).toMatch(/^folder:/);
    expect((await api('GET', '/api/models')).json.models.find((m: any) => m.ref === add.json.ref)?.label).toBe('tiny random');
    const f = await api('POST', '/api/forward', { text: 'Hello there', model: add.json.ref, topK: 2 });
    expect(f.status, JSON.stringify(f.json)).toBe(200);
    const direct = await loadModel(folder);
    const tokens = direct.toTokens('Hello there');
    expect(f.json.result.predictions[0].id).toBe(topK(await direct.run([tokens]), tokens.length - 1, 1, String)[0].id);
    expect((await api('DELETE', `/api/models/folders/${add.json.id}`)).status).toBe(204);
    expect((await api('POST', '/api/forward', { text: 'a', model: add.json.ref })).status).toBe(400);

    for (const [p, pattern] of [
      ['relative/path', /must be an absolute folder path/],
      ['/etc', /has no config\.json/],
      ['/etc/passwd', /is not a folder/],
      [path.join(tmp, 'missing'), /no folder at/],
    ] as const) {
      const r = await api('POST', '/api/models/folders', { path: p });
      expect(r.status, p).toBe(400);
      expect(r.json.error).toMatch(pattern);
    }
  });
});

describe('Hub models', () => {
  it("'hub:<id>' downloads through HF_ENDPOINT with 'downloading' progress, then runs like the same folder loaded directly", async () => {
    // A miniature Hub serving one folder: /{repo}/resolve/{rev}/{file} with the headers the client checks.
    const folder = path.join(tmp, 'hub-src');
    writeRandomModel(folder, { ...TINY_GPT2, dVocab: 50257 }, { seed: 5 });
    fs.copyFileSync(path.join(BUNDLED_MODEL, 'tokenizer.json'), path.join(folder, 'tokenizer.json'));
    const { createServer } = await import('node:http');
    const { createHash } = await import('node:crypto');
    const hub = createServer((req, res) => {
      const m = /^\/tiny\/gpt\/resolve\/[^/]+\/(.+)$/.exec(req.url ?? '');
      const file = m && path.join(folder, decodeURIComponent(m[1]));
      const headers = { 'x-repo-commit': 'a'.repeat(40) };
      if (!file || !fs.existsSync(file)) {
        res.writeHead(404, { ...headers, 'x-error-code': 'EntryNotFound' }).end();
        return;
      }
      const body = fs.readFileSync(file);
      res.writeHead(200, { ...headers, etag: `"${createHash('sha256').update(body).digest('hex')}"`, 'content-length': body.length }).end(body);
    });
    await new Promise<void>((r) => hub.listen(0, '127.0.0.1', r));
    const saved = { endpoint: process.env.HF_ENDPOINT, home: process.env.HF_HOME, offline: process.env.HF_HUB_OFFLINE };
    process.env.HF_ENDPOINT = `http://127.0.0.1:${(hub.address() as { port: number }).port}`;
    process.env.HF_HOME = path.join(tmp, 'hf-home');
    delete process.env.HF_HUB_OFFLINE;
    const online = await buildServer({ dataDir: path.join(tmp, 'hub-data'), allowHub: true });
    const onlineBase = await online.listen({ port: 0, host: '127.0.0.1' });
    try {
      const start = await fetch(`${onlineBase}/api/forward?async=true`, {
        method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ text: 'Hello there', model: 'hub:tiny/gpt', topK: 3 }),
      }).then((r) => r.json());
      const text = await fetch(onlineBase + start.events).then((r) => r.text());
      const evs = text.split('\n\n').filter((b) => b.includes('data: ')).map((b) => JSON.parse(b.slice(b.indexOf('data: ') + 6)));
      expect(evs.some((e) => e.type === 'progress' && e.stage === 'downloading' && /model\.safetensors/.test(e.message))).toBe(true);
      expect(evs.at(-1).type).toBe('done');
      const run = await fetch(`${onlineBase}/api/runs/${start.id}`).then((r) => r.json());
      const direct = await loadModel(folder);
      const tokens = direct.toTokens('Hello there');
      expect(run.result.predictions.map((p: any) => p.id)).toEqual(topK(await direct.run([tokens]), tokens.length - 1, 3, String).map((p) => p.id));
      // Hub ids never name local paths.
      for (const bad of ['hub:../etc', 'hub:/etc/passwd', 'hub:models']) {
        const r = await fetch(`${onlineBase}/api/forward`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ text: 'a', model: bad }) });
        expect(r.status, bad).toBe(400);
        expect((await r.json()).error).toMatch(/is not a Hub model id/);
      }
    } finally {
      await online.close();
      hub.close();
      for (const [k, v] of [['HF_ENDPOINT', saved.endpoint], ['HF_HOME', saved.home], ['HF_HUB_OFFLINE', saved.offline]] as const) {
        if (v === undefined) delete process.env[k];
        else process.env[k] = v;
      }
    }
  });
});

describe('runs, jobs and progress', () => {
  it('lists, reopens, renames, exports and deletes saved runs', async () => {
    const made = await api('POST', '/api/forward', { text: 'Once upon a time', title: 'fairy tale' });
    const id = made.json.id;
    const list = await api('GET', '/api/runs?kind=forward&limit=500');
    expect(list.json.runs.find((r: any) => r.id === id)).toMatchObject({ title: 'fairy tale', status: 'done', kind: 'forward' });
    expect(list.json.runs.every((r: any) => r.kind === 'forward')).toBe(true);
    expect((await api('GET', '/api/runs?limit=abc')).status).toBe(400);
    const got = await api('GET', `/api/runs/${id}`);
    expect(got.json.result).toEqual(made.json.result);
    const renamed = await api('PATCH', `/api/runs/${id}`, { title: 'renamed' });
    expect(renamed.json.title).toBe('renamed');
    expect((await api('PATCH', `/api/runs/${id}`, { title: '   ' })).status).toBe(400);
    const exp = await api('GET', `/api/runs/${id}/export`);
    expect(exp.headers.get('content-disposition')).toMatch(/attachment; filename="lantern-forward-renamed\.json"/);
    expect(exp.json).toMatchObject({ format: 'lantern-run', version: 1, id, title: 'renamed', result: made.json.result });
    expect((await api('DELETE', `/api/runs/${id}`)).status).toBe(204);
    expect((await api('GET', `/api/runs/${id}`)).status).toBe(404);
  });

  it('async jobs stream progress as server-sent events and end with done', async () => {
    const start = await api('POST', '/api/patching?async=true', { clean: CLEAN, corrupt: CORRUPT, answer: ' Mary', sweep: 'resid', batchSize: 16 });
    expect(start.status).toBe(202);
    const evs = await events(start.json.events);
    expect(evs[0].type).toBe('queued');
    const progress = evs.filter((e) => e.type === 'progress' && e.stage === 'computing' && e.runs > 0);
    expect(progress.length).toBeGreaterThan(0);
    // Fractions rise to 1 as the sweep's batches complete.
    const fr = progress.map((e) => e.fraction);
    expect([...fr].sort((a, b) => a - b)).toEqual(fr);
    expect(evs.at(-1)).toMatchObject({ type: 'done', runId: start.json.id });
    expect((await api('GET', `/api/runs/${start.json.id}`)).json.status).toBe('done');
    expect((await api('POST', `/api/jobs/${start.json.id}/cancel`)).status).toBe(409);
  });

  it('cancels a running job at its next graph run, and a queued one before it starts', async () => {
    // batchSize 1: one graph run per patch, so there is a boundary to stop at.
    const slow = await api('POST', '/api/patching?async=1', { clean: CLEAN, corrupt: CORRUPT, answer: ' Mary', sweep: 'heads', byPosition: true, batchSize: 1 });
    const queued = await api('POST', '/api/forward?async=1', { text: 'queued behind' });
    expect((await api('GET', `/api/jobs/${queued.json.id}`)).json.status).toBe('queued');
    expect((await api('DELETE', `/api/runs/${slow.json.id}`)).status).toBe(409);
    const stream = events(slow.json.events);
    await new Promise((r) => setTimeout(r, 300));
    expect((await api('POST', `/api/jobs/${queued.json.id}/cancel`)).status).toBe(202);
    expect((await api('POST', `/api/jobs/${slow.json.id}/cancel`)).status).toBe(202);
    const evs = await stream;
    expect(evs.at(-1).type).toBe('cancelled');
    const runs = evs.filter((e) => e.type === 'progress').at(-1).runs;
    expect(runs).toBeLessThan(4 * 8 * 15);
    expect((await api('GET', `/api/runs/${slow.json.id}`)).json).toMatchObject({ status: 'cancelled', result: null });
    expect((await api('GET', `/api/runs/${queued.json.id}`)).json.status).toBe('cancelled');
    // The queue goes on.
    expect((await api('POST', '/api/forward', { text: 'after' })).status).toBe(200);
  });

  it('a waiting request for a cancelled job gets 409', async () => {
    const waiting = api('POST', '/api/patching', { clean: CLEAN, corrupt: CORRUPT, answer: ' Mary', sweep: 'heads', byPosition: true, batchSize: 1 });
    await new Promise((r) => setTimeout(r, 300));
    const running = (await api('GET', '/api/runs?limit=1')).json.runs[0];
    expect(running.status).toBe('running');
    await api('POST', `/api/jobs/${running.id}/cancel`);
    const r = await waiting;
    expect(r.status).toBe(409);
    expect(r.json.error).toMatch(/cancelled/);
  });

  it('describes every endpoint in OpenAPI', async () => {
    const r = await api('GET', '/api/openapi.json');
    expect(r.json.openapi).toBe('3.0.3');
    for (const p of ['/api/forward', '/api/attribution', '/api/lens', '/api/attention', '/api/patching', '/api/runs', '/api/runs/{id}', '/api/runs/{id}/export', '/api/jobs/{id}/events', '/api/jobs/{id}/cancel', '/api/models', '/api/models/folders']) {
      expect(Object.keys(r.json.paths), p).toContain(p);
    }
    expect(r.json.paths['/api/attribution'].post.requestBody.content['application/json'].schema.properties.method.enum).toContain('ig');
  });
});

describe('token', () => {
  it('with --token every request must carry it: header, ?token= (sets a cookie), or the cookie', async () => {
    const secured = await buildServer({ dataDir: path.join(tmp, 'secured'), token: 's3cret-token', allowHub: false });
    const url = await secured.listen({ port: 0, host: '127.0.0.1' });
    try {
      const none = await fetch(`${url}/api/runs`);
      expect(none.status).toBe(401);
      expect((await none.json()).error).toMatch(/needs a token/);
      expect((await fetch(`${url}/api/runs`, { headers: { authorization: 'Bearer wrong' } })).status).toBe(401);
      expect((await fetch(`${url}/api/runs`, { headers: { authorization: 'Bearer s3cret-token' } })).status).toBe(200);
      const viaQuery = await fetch(`${url}/api/models?token=s3cret-token`);
      expect(viaQuery.status).toBe(200);
      const cookie = viaQuery.headers.get('set-cookie')!;
      expect(cookie).toMatch(/lantern_token=s3cret-token; Path=\/; HttpOnly; SameSite=Strict/);
      expect((await fetch(`${url}/api/runs`, { headers: { cookie: cookie.split(';')[0] } })).status).toBe(200);
      // Non-loopback Host names are fine once a token guards the server.
      expect((await fetch(`${url}/api/health`, { headers: { authorization: 'Bearer s3cret-token' } })).status).toBe(200);
    } finally {
      await secured.close();
    }
  });
});

describe('lantern serve', () => {
  it('refuses a non-loopback host without a token, and a short token', async () => {
    expectOneLineError(await runLantern(['serve', '--host', '0.0.0.0'], tmp), /--host 0\.0\.0\.0 is reachable from other machines; give --token/);
    expectOneLineError(await runLantern(['serve', '--host', '0.0.0.0', '--token', 'abc'], tmp), /--token must be at least 8 characters/);
    expectOneLineError(await runLantern(['serve', '--port', '70000'], tmp), /--port must be an integer from 0 to 65535/);
  });
});

describe('crash safety', () => {
  it('a server killed mid-run keeps every saved run; the run in flight is marked interrupted', async () => {
    const home = path.join(tmp, 'crash-home');
    const { child, url } = await startLanternServe([], home);
    try {
      const post = (u: string, b: unknown) => fetch(url + u, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(b) }).then((r) => r.json());
      const saved = await post('/api/forward', { text: 'kept safe' });
      expect(saved.status).toBe('done');
      const inflight = await post('/api/patching?async=1', { clean: CLEAN, corrupt: CORRUPT, answer: ' Mary', sweep: 'heads', byPosition: true, batchSize: 1 });
      await new Promise((r) => setTimeout(r, 500));
      child.kill('SIGKILL');
      await new Promise((r) => child.once('exit', r));
      const store = new RunStore(path.join(home, 'workbench', 'runs.sqlite'));
      try {
        expect(store.get(saved.id)).toMatchObject({ status: 'done', result: saved.result });
        expect(store.get(inflight.id)).toMatchObject({ status: 'interrupted', result: null });
      } finally {
        store.close();
      }
    } finally {
      if (child.exitCode === null) child.kill('SIGKILL');
    }
  });
});

describe('work limits', () => {
  const LONG = 'the '.repeat(250).trim(); // 250 tokens

  it('refuses the request that killed the server (Shapley, 5000 permutations, 250 tokens) up front, naming the limit; the server keeps answering', async () => {
    const before = (await api('GET', '/api/runs?limit=1000')).json.runs.length;
    for (const url of ['/api/attribution?async=true', '/api/attribution']) {
      const r = await api('POST', url, { text: LONG, method: 'shapley', samples: 5000 });
      expect(r.status).toBe(400);
      expect(r.json.limit).toBe('max-job-seconds');
      expect(r.json.error).toMatch(/^this attribution request \(5000 permutations x 251 coalitions, 250 tokens\) needs about 1,255,000 forward passes, ~[\d.]+ hours: more than this server's --max-job-seconds 600; use fewer samples or a shorter prompt$/);
    }
    // Nothing was queued or saved, and the server answers at once.
    expect((await api('GET', '/api/runs?limit=1000')).json.runs.length).toBe(before);
    expect((await api('GET', '/api/health')).json).toMatchObject({ ok: true, queued: 0 });
    expect((await api('POST', '/api/forward', { text: 'still here' })).status).toBe(200);
  });

  it('limits set by the owner: long IG, LIME and SHAP runs and big memory are 400s naming --max-job-seconds / --max-job-memory; small ones run', async () => {
    const dir = path.join(tmp, 'limits');
    const small = await buildServer({ dataDir: dir, allowHub: false, limits: { maxJobSeconds: 30, maxJobMemory: 64 * 2 ** 20 } });
    try {
      const post = async (url: string, body: unknown) => {
        const r = await small.inject({ method: 'POST', url, payload: body as object, headers: { host: 'localhost' } });
        return { status: r.statusCode, json: r.json() };
      };
      for (const body of [{ method: 'ig', steps: 512 }, { method: 'lime', samples: 5000 }, { method: 'shap', samples: 5000 }]) {
        const r = await post('/api/attribution?async=true', { text: LONG, ...body });
        expect(r.status, JSON.stringify(body)).toBe(400);
        expect(r.json).toMatchObject({ limit: 'max-job-seconds', error: expect.stringMatching(/more than this server's --max-job-seconds 30; use fewer (steps|samples) or a shorter prompt$/) });
      }
      const mem = await post('/api/attribution', { text: LONG, method: 'ig', steps: 4 });
      expect(mem.status).toBe(400);
      expect(mem.json).toMatchObject({ limit: 'max-job-memory', error: expect.stringMatching(/and ~\d+ MiB of memory: more than this server's --max-job-memory 64 MiB/) });
      const ok = await post('/api/attribution', { text: PROMPT, method: 'ig', steps: 8 });
      expect(ok.status).toBe(200);
      expect(ok.json.status).toBe('done');
    } finally {
      await small.close();
    }
  });

  it('a job whose estimate was too low is stopped at --max-job-seconds with an error, and the queue goes on', async () => {
    // An absurd arithmetic rate makes the estimate pass; 1952 single-patch runs then outlast 1 s.
    const dir = path.join(tmp, 'deadline');
    const s = await buildServer({ dataDir: dir, allowHub: false, limits: { maxJobSeconds: 1, flopsPerSecond: 1e18 } });
    try {
      const body = { clean: `${'the '.repeat(60)}cat`, corrupt: `${'the '.repeat(60)}dog`, answer: ' sat', sweep: 'heads', byPosition: true, batchSize: 1 };
      const r = await s.inject({ method: 'POST', url: '/api/patching', payload: body, headers: { host: 'localhost' } });
      expect(r.statusCode).toBe(400);
      expect(r.json().error).toMatch(/^stopped after 1 s, this server's --max-job-seconds/);
      const after = await s.inject({ method: 'POST', url: '/api/forward', payload: { text: 'next' }, headers: { host: 'localhost' } });
      expect(after.json().status).toBe('done');
    } finally {
      await s.close();
    }
  });

  it('the endpoints that answer in the request are held to --max-job-seconds too, and their failure is saved', async () => {
    const dir = path.join(tmp, 'direct-deadline');
    const s = await buildServer({ dataDir: dir, allowHub: false, limits: { maxJobSeconds: 0.3 } });
    try {
      const t0 = Date.now();
      const r = await s.inject({ method: 'POST', url: '/api/heads/scores', payload: { detector: 'induction', sequences: 100, half: 64 }, headers: { host: 'localhost' } });
      expect(r.statusCode, r.body).toBe(400);
      expect(r.json().error).toMatch(/^stopped after 0.3 s, this server's --max-job-seconds/);
      // Stopped at a graph run after the deadline, not after the whole grid (two forwards of 100 x 128 tokens per layer).
      expect(Date.now() - t0).toBeLessThan(20_000);
      const runs = (await s.inject({ method: 'GET', url: '/api/runs?kind=heads', headers: { host: 'localhost' } })).json().runs;
      expect(runs).toHaveLength(1);
      expect(runs[0]).toMatchObject({ kind: 'heads', status: 'error' });
    } finally {
      await s.close();
    }
  });

  it('lantern serve takes --max-job-seconds and --max-job-memory, and rejects bad values in one line', async () => {
    expectOneLineError(await runLantern(['serve', '--max-job-seconds', '0'], tmp), /--max-job-seconds must be a positive number, got '0'/);
    expectOneLineError(await runLantern(['serve', '--max-job-memory', 'lots'], tmp), /--max-job-memory must be a size such as 2G, 512M or a byte count, got 'lots'/);
  });
});
