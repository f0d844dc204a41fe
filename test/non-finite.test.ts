/**
 * Non-finite results are errors everywhere, never a saved result: a model whose weights are all
 * finite but whose arithmetic overflows (a final LayerNorm scaled to 3e38, so logits become
 * +Inf and -Inf and log-softmax gives NaN) through the Workbench API, /v1, the CLI and the library.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildServer, LanternServer } from '../src/interfaces/server/app.js';
import { serveOpenAI, RunningServer } from '../src/interfaces/server/openai-compat.js';
import { attribute } from '../src/methods/attribution/index.js';
import { assertFinite, firstNonFinite } from '../src/finite.js';
import { loadModel } from '../src/models/load.js';
import { writeRandomModel, TINY_GPT2 } from '../src/models/random.js';
import type { HookedTransformer } from '../src/models/hooked.js';
import { expectOneLineError, runLantern } from './helpers.js';

let tmp: string;
let folder: string;
let model: HookedTransformer;

/** Overwrites every float32 of a tensor in a safetensors file with `value`. */
function fill(file: string, name: string, value: number): void {
  const buf = fs.readFileSync(file);
  const n = Number(buf.readBigUInt64LE(0));
  const header = JSON.parse(buf.subarray(8, 8 + n).toString('utf8'));
  const [a, b] = header[name].data_offsets as [number, number];
  for (let o = 8 + n + a; o < 8 + n + b; o += 4) buf.writeFloatLE(value, o);
  fs.writeFileSync(file, buf);
}

beforeAll(async () => {
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'lantern-nonfinite-'));
  folder = path.join(tmp, 'overflow');
  writeRandomModel(folder, TINY_GPT2);
  const st = path.join(folder, 'model.safetensors');
  fill(st, 'ln_f.weight', 3e38);
  fill(st, 'ln_f.bias', 3e38);
  model = await loadModel(folder);
});
afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));

describe('non-finite results', () => {
  it('finds the first NaN or infinity and its path', () => {
    expect(firstNonFinite({ a: [1, 2], b: { c: [0, NaN] } })).toEqual({ path: 'b.c[1]', value: NaN });
    expect(firstNonFinite({ x: new Float32Array([1, -Infinity]) })).toEqual({ path: 'x[1]', value: -Infinity });
    expect(firstNonFinite({ a: null, b: 'NaN', c: [1e308] })).toBeUndefined();
    expect(() => assertFinite({ scores: [[0.5, Infinity]] }, 'the attribution')).toThrow('the attribution has a non-finite number (Infinity at scores[0][1])');
  });

  it('the library refuses to return an attribution with NaN scores', async () => {
    await expect(attribute(model, { text: 'The cat sat', target: ' on', method: 'occlusion' })).rejects.toThrow(/the attribution has a non-finite number \(NaN at /);
  });

  it('the Workbench saves an error, not a run marked done with null numbers', async () => {
    const app: LanternServer = await buildServer({ dataDir: path.join(tmp, 'data'), allowHub: false });
    try {
      const inject = async (method: 'GET' | 'POST', url: string, payload?: object) => {
        const r = await app.inject({ method, url, payload, headers: { host: 'localhost' } });
        return { status: r.statusCode, json: r.json() };
      };
      const f = await inject('POST', '/api/models/folders', { path: folder });
      expect(f.status).toBe(201);
      for (const [url, body] of [['/api/forward', { text: 'The cat sat' }], ['/api/attribution', { text: 'The cat sat', target: ' on', method: 'saliency' }], ['/api/lens', { text: 'The cat sat' }]] as const) {
        const r = await inject('POST', url, { ...body, model: f.json.ref });
        expect(r.status, url).toBe(400);
        expect(r.json.error, url).toMatch(/^the \w+( result)? has a non-finite number \((NaN|-?Infinity) at .+\); the model's weights or arithmetic produced NaN or infinity, so nothing was saved$/);
      }
      const runs = (await inject('GET', '/api/runs')).json.runs as { status: string }[];
      expect(runs.map((r) => r.status)).toEqual(['error', 'error', 'error']);
    } finally {
      await app.close();
    }
  });

  it('/v1 answers a 400 rather than null log-probabilities', async () => {
    const srv: RunningServer = await serveOpenAI(model, { id: 'overflow' });
    try {
      const res = await fetch(`${srv.baseURL}/completions`, {
        method: 'POST', headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ model: 'overflow', prompt: 'The cat sat', max_tokens: 0, echo: true, logprobs: 1 }),
      });
      expect(res.status).toBe(400);
      expect(((await res.json()) as { error: { message: string } }).error.message).toMatch(/the log-probabilities has a non-finite number/);
    } finally {
      await srv.close();
    }
  });

  it('the CLI prints one error line instead of NaN%', async () => {
    expectOneLineError(await runLantern(['forward', '--model', folder, '--text', 'The cat sat'], tmp), /non-finite number/);
    expectOneLineError(await runLantern(['attribute', '--model', folder, '--text', 'The cat sat', '--target', ' on', '--method', 'occlusion'], tmp), /the attribution has a non-finite number/);
    expectOneLineError(await runLantern(['lens', '--model', folder, '--text', 'The cat sat'], tmp), /the result has a non-finite number/);
    expectOneLineError(await runLantern(['attribute', '--backend', `lantern:${folder}`, '--text', 'The cat sat', '--target', ' on'], tmp), /the attribution has a non-finite number/);
  });
});
