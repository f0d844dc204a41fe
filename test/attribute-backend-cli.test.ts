// `lantern attribute --backend …` (black-box perturbation methods) as a user runs it (a subprocess): against the bundled model directly and
// against Lantern's OpenAI-compatible server on an ephemeral port, with the JSON it writes checked
// against the library's result; bad input is one line.
import fs from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { LanternBackend } from '../src/backends/lantern.js';
import { DEFAULT_RETRIES, DEFAULT_TIMEOUT_MS, listModels } from '../src/backends/http.js';
import { serveOpenAI, RunningServer } from '../src/interfaces/server/openai-compat.js';
import { attribute, explainWithBackend, loadResult } from '../src/methods/attribution/index.js';
import type { HookedTransformer } from '../src/models/hooked.js';
import { loadModel } from '../src/models/load.js';
import { BUNDLED_MODEL } from '../src/paths.js';
import { modelEmbedder, smile } from '../src/methods/blackbox/index.js';
import type { SmileResult } from '../src/methods/blackbox/index.js';
import { loadBlackboxResult } from '../src/methods/blackbox/result.js';
import { expectOneLineError, runLantern } from './helpers.js';

let tmp: string;
let model: HookedTransformer;
let srv: RunningServer;

beforeAll(async () => {
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'lantern-explain-'));
  model = await loadModel(BUNDLED_MODEL);
  srv = await serveOpenAI(model, { id: 'demo' });
});
afterAll(async () => {
  await srv?.close();
  fs.rmSync(tmp, { recursive: true, force: true });
});

describe('lantern attribute --backend', () => {
  it('explains through the OpenAI-compatible server; the JSON equals the library result on the engine', async () => {
    const json = path.join(tmp, 'http.json');
    const r = await runLantern(['attribute', '--backend', srv.baseURL, '--text', 'The jury said that the city', '--target', ' was', '--method', 'shap', '--json', json, '--no-color'], tmp);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/logprob\(" was"\)/);
    expect(r.stdout).toMatch(/backend http:demo@http:\/\/127\.0\.0\.1:\d+\/v1: \d+ requests/);
    const saved = loadResult(json) as Awaited<ReturnType<typeof explainWithBackend>>;
    const here = await explainWithBackend(new LanternBackend(model), { prompt: 'The jury said that the city', target: ' was', method: 'shap' });
    expect(saved.tokenStrings).toEqual(['The', ' jury', ' said', ' that', ' the', ' city']);
    expect(saved.settings).toMatchObject({ granularity: 'word', mask: 'delete', enumerated: true });
    saved.scores[0].forEach((s, i) => expect(s).toBeCloseTo(here.scores[0][i], 9));
    expect(saved.backend.approximate).toBe(false);
  });

  it('token granularity with { token } masking over HTTP gives the white-box numbers of --mask token:220', async () => {
    const json = path.join(tmp, 'tok.json');
    const text = 'The jury said that';
    const r = await runLantern(['attribute', '--backend', srv.baseURL, '--text', text, '--target', ' the', '--granularity', 'token', '--mask', 'token:220', '--json', json, '--no-color'], tmp);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/method: occlusion/); // the default with --backend
    const white = await attribute(model, { text, target: ' the', method: 'occlusion', settings: { mask: { token: 220 } } });
    // The server's log-softmax runs in the graph (float32 exponentials), the white-box one in
    // float64 JavaScript; and the white-box masked copies run packed into shared rows, whose float32
    // logits round differently from whole runs' (up to ~3e-6 on these log-probs of about −5).
    const black = loadResult(json).scores;
    expect(black[0].length).toBe(white.scores[0].length);
    black[0].forEach((s, i) => expect(Math.abs(s - white.scores[0][i])).toBeLessThan(1e-5));
  });

  it('lantern attribute --granularity word: white-box word occlusion with --eval, as the library computes it', async () => {
    const json = path.join(tmp, 'words.json');
    const text = 'The antidisestablishment jury said';
    const r = await runLantern(['attribute', '--text', text, '--method', 'occlusion', '--granularity', 'word', '--eval', '--json', json, '--no-color'], tmp);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    const saved = loadResult(json);
    const here = await attribute(model, { text, method: 'occlusion', settings: { granularity: 'word' }, evaluate: true });
    expect(saved.tokenStrings).toEqual(['The', ' antidisestablishment', ' jury', ' said']);
    expect(saved.spans).toEqual(here.spans);
    saved.scores[0].forEach((s, i) => expect(s).toBeCloseTo(here.scores[0][i], 5));
    // Kendall tau of leave-one-out against itself.
    expect(saved.faithfulness!.rows[0].kendallTauLoo).toBe(1);
    saved.faithfulness!.rows[0].leaveOneOut.forEach((v, i) => expect(v).toBeCloseTo(here.scores[0][i], 5));
    expectOneLineError(await runLantern(['attribute', '--text', text, '--method', 'ig', '--granularity', 'word'], tmp), /--granularity applies only to --method occlusion/);
  });

  it('lantern explain --method smile (SMILE) runs through the OpenAI-compatible server too, with the responses of the engine', async () => {
    const json = path.join(tmp, 'smile.json');
    const prompt = 'The old man walked to the river';
    const r = await runLantern(['explain', '--method', 'smile', '--backend', srv.baseURL, '--text', prompt, '--samples', '8', '--max-tokens', '3', '--seed', '4', '--json', json, '--quiet'], tmp);
    expect(r.code, r.stderr).toBe(0);
    const saved = loadBlackboxResult(json) as SmileResult;
    const here = await smile(new LanternBackend(model), prompt, { embedder: modelEmbedder(model), samples: 8, maxTokens: 3, seed: 4 });
    expect(saved.backend).toMatch(/^http:demo@/);
    expect(saved.samples.map((s) => [s.mask, s.response])).toEqual(here.samples.map((s) => [s.mask, s.response]));
    saved.importances.forEach((v, i) => expect(v).toBeCloseTo(here.importances[i], 9));
  });

  it('bad input is one line', async () => {
    expectOneLineError(await runLantern(['attribute', '--backend', 'lantern', '--text', 'a b', '--method', 'ig'], tmp), /--method ig needs the model's internals; with --backend use occlusion, lime, shap, shapley/);
    expectOneLineError(await runLantern(['attribute', '--backend', 'lantern', '--text', 'a b', '--mask', 'zero'], tmp), /with --backend, --mask must be 'delete', 'text:<replacement>' or 'token:<id>'/);
    expectOneLineError(await runLantern(['attribute', '--backend', 'lantern', '--text', 'a b', '--concurrency', '2'], tmp), /--concurrency applies only to an http\(s\):\/\/ backend/);
    expectOneLineError(await runLantern(['attribute', '--text', 'a b', '--remote-model', 'x'], tmp), /--remote-model applies only with --backend/);
    expectOneLineError(await runLantern(['attribute', '--backend', 'lantern', '--text', 'a b', '--steps', '4'], tmp), /--steps does not apply with --backend/);
    expectOneLineError(await runLantern(['attribute', '--backend', 'lantern', '--text', 'a b', '--kind', 'logit'], tmp), /--kind logit needs the model's logits/);
    const closed = net.createServer();
    await new Promise<void>((r) => closed.listen(0, '127.0.0.1', r));
    const port = (closed.address() as net.AddressInfo).port;
    await new Promise((r) => closed.close(r));
    expectOneLineError(await runLantern(['attribute', '--backend', `http://127.0.0.1:${port}/v1`, '--retries', '0', '--text', 'a b'], tmp), /GET http:\/\/127\.0\.0\.1:\d+\/v1\/models failed: network error: ECONNREFUSED/);
    expectOneLineError(await runLantern(['attribute', '--backend', 'htp://127.0.0.1:8000/v1', '--text', 'a b'], tmp), /^lantern: error: unknown backend scheme 'htp:\/\/' in 'htp:\/\/127\.0\.0\.1:8000\/v1'; use http\(s\):\/\/host:port\/v1, gguf:<file\.gguf>, or lantern:/);
    expectOneLineError(await runLantern(['attribute', '--backend', srv.baseURL, '--remote-model', 'nope', '--retries', '0', '--text', 'a b', '--target', ' c'], tmp), /HTTP 404: The model 'nope' does not exist/);
  });
});

describe('HTTP options and a hanging or refusing server', () => {
  /** A server that accepts connections and never answers. */
  async function hanging(): Promise<{ url: string; close: () => Promise<void> }> {
    const sockets = new Set<net.Socket>();
    const s = net.createServer((c) => { sockets.add(c); c.on('error', () => {}); });
    await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
    const url = `http://127.0.0.1:${(s.address() as net.AddressInfo).port}/v1`;
    return { url, close: () => { for (const c of sockets) c.destroy(); return new Promise((r) => s.close(() => r())); } };
  }

  it('the defaults give up on a hanging server within about a minute: 3 attempts of 20 s plus at most 2.25 s of backoff', () => {
    expect(DEFAULT_RETRIES).toBe(2);
    expect(DEFAULT_TIMEOUT_MS).toBe(20_000);
    // Backoff: 500 ms doubled per retry, with up to +50% jitter.
    const worst = (DEFAULT_RETRIES + 1) * DEFAULT_TIMEOUT_MS + [0, 1].reduce((a, i) => a + 1.5 * 500 * 2 ** i, 0);
    expect(worst).toBe(62_250);
  });

  it('explain takes --remote-model, --timeout, --retries, --api and --api-key-env; each retry is printed, then one error', async () => {
    const h = await hanging();
    try {
      const r = await runLantern(['explain', '--method', 'smile', '--backend', h.url, '--remote-model', 'm', '--timeout', '300', '--retries', '1', '--api', 'completions', '--api-key-env', 'NO_SUCH_KEY', '--text', 'The old man walked', '--quiet'], tmp);
      expect(r.code).toBe(1);
      expect(r.stdout).toBe('');
      const lines = r.stderr.trim().split('\n');
      expect(lines).toHaveLength(2);
      expect(lines[0]).toMatch(/^lantern: completions attempt 1 of 2 failed \(no complete response within 300 ms\); retrying in \d+ ms$/);
      expect(lines[1]).toMatch(/^lantern: error: http:m@http:\/\/127\.0\.0\.1:\d+\/v1: POST completions failed after 2 attempts: no complete response within 300 ms$/);
    } finally {
      await h.close();
    }
  });

  it('explain against a server with two models names them, and --remote-model picks one', async () => {
    const two = await serveOpenAI({ a: model, b: model });
    try {
      expectOneLineError(await runLantern(['explain', '--method', 'smile', '--backend', two.baseURL, '--text', 'The old man walked', '--quiet'], tmp), /serves 2 models \(a, b\); name one with --remote-model/);
      const r = await runLantern(['explain', '--method', 'smile', '--backend', two.baseURL, '--remote-model', 'b', '--text', 'The old man walked', '--samples', '4', '--max-tokens', '2', '--quiet', '--json', '-'], tmp);
      expect(r.code, r.stderr).toBe(0);
      expect(JSON.parse(r.stdout).backend).toBe(`http:b@${two.baseURL}`);
      expectOneLineError(await runLantern(['explain', '--method', 'smile', '--text', 'a b', '--remote-model', 'b'], tmp), /--remote-model applies only to an http\(s\):\/\/ backend/);
    } finally {
      await two.close();
    }
  });

  it('GET /models is retried like every other request', async () => {
    let n = 0;
    const flaky = http.createServer((req, res) => {
      if (req.url?.endsWith('/models') && n++ === 0) { res.writeHead(503); res.end('busy'); return; }
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ object: 'list', data: [{ id: 'only' }] }));
    });
    await new Promise<void>((r) => flaky.listen(0, '127.0.0.1', r));
    try {
      const url = `http://127.0.0.1:${(flaky.address() as net.AddressInfo).port}/v1`;
      expect(await listModels(url, { backoffMs: 1 })).toEqual(['only']);
      expect(n).toBe(2);
    } finally {
      await new Promise((r) => flaky.close(r));
    }
  });
});
