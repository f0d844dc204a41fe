// The interfaces on other families: every CLI command that takes --model runs on a Qwen 3 folder
// (grouped-query attention, q/k norms) and equals the library; the Workbench adds a Gemma 2 folder
// (sliding window, soft-capping) by reference and runs each view on it.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { writeRandomModel } from '../src/models/random.js';
import { architectureFor } from '../src/models/architectures/index.js';
import { loadModel } from '../src/models/load.js';
import { attribute } from '../src/methods/attribution/index.js';
import { buildServer, LanternServer } from '../src/interfaces/server/app.js';
import { runLantern } from './helpers.js';

let tmp: string;
let qwen: string;
let gemma: string;
beforeAll(() => {
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'lantern-families-if-'));
  qwen = path.join(tmp, 'qwen3');
  gemma = path.join(tmp, 'gemma2');
  writeRandomModel(qwen, architectureFor('qwen3').presets.tiny, { seed: 3 });
  writeRandomModel(gemma, architectureFor('gemma2').presets.tiny, { seed: 4 });
});
afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));

const TEXT = 'the cat sat on the';

describe('CLI on a Qwen 3 folder', () => {
  it('forward, hooks, attribute, lens, patch, trace and circuit run; attribute equals the library', async () => {
    const ok = async (...args: string[]) => {
      const r = await runLantern(args, tmp);
      expect(r.stderr, args.join(' ')).toBe('');
      expect(r.code, args.join(' ')).toBe(0);
      return r.stdout;
    };
    const fwd = JSON.parse(await ok('forward', '--model', qwen, '--text', TEXT, '--json'));
    expect(fwd.tokens.length).toBeGreaterThan(3);
    expect(await ok('hooks', '--model', qwen)).toContain('blocks.1.attn.hook_rot_q');
    const file = path.join(tmp, 'attr.json');
    await ok('attribute', '--model', qwen, '--text', TEXT, '--target', ' the', '--method', 'saliency', '--json', file);
    const saved = JSON.parse(fs.readFileSync(file, 'utf8'));
    const model = await loadModel(qwen);
    const lib = await attribute(model, { text: TEXT, target: ' the', method: 'saliency' });
    saved.scores[0].forEach((s: number, i: number) => expect(s).toBeCloseTo(lib.scores[0][i], 5));
    expect(saved.model.config.architecture).toBe('qwen3');
    await model.executor.dropWeights(model.weights);
    await ok('lens', '--model', qwen, '--text', TEXT);
    await ok('patch', '--model', qwen, '--clean', TEXT, '--corrupt', 'the dog sat on the', '--answer', ' the', '--metric', 'logprob', '--sweep', 'heads');
    await ok('trace', '--model', qwen, '--text', TEXT, '--subject', 'the cat', '--answer', ' the', '--samples', '2');
    const c = JSON.parse(await ok('circuit', '--model', qwen, '--task', 'induction', '--n', '2', '--method', 'eap', '--json'));
    expect(c.totalEdges).toBeGreaterThan(0);
  }, 240_000);
});

describe('Workbench on a Gemma 2 folder', () => {
  let app: LanternServer;
  let base: string;
  beforeAll(async () => {
    app = await buildServer({ dataDir: path.join(tmp, 'data'), allowHub: false });
    base = await app.listen({ port: 0, host: '127.0.0.1' });
  });
  afterAll(async () => app?.close());
  const post = async (url: string, body: unknown) => {
    const res = await fetch(base + url, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
    return { status: res.status, json: await res.json() as any };
  };

  it('adds the folder by path and runs forward, attribution, lens, attention and patching on it', async () => {
    const add = await post('/api/models/folders', { path: gemma, name: 'gemma2 tiny' });
    expect(add.status, JSON.stringify(add.json)).toBe(201);
    const model = add.json.ref;
    for (const [url, body] of [
      ['/api/forward', { text: TEXT, topK: 3 }],
      ['/api/attribution', { text: TEXT, method: 'ig', steps: 8, evaluate: true }],
      ['/api/lens', { text: TEXT }],
      ['/api/attention', { text: TEXT }],
      ['/api/patching', { clean: TEXT, corrupt: 'the dog sat on the', answer: ' the', metric: 'logprob', sweep: 'resid' }],
    ] as const) {
      const r = await post(url, { ...body, model });
      expect(r.status, `${url}: ${JSON.stringify(r.json).slice(0, 300)}`).toBe(200);
      expect(r.json.status, url).toBe('done');
    }
  }, 120_000);
});
