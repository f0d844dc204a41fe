// The attribution settings are declared once (src/methods/attribution/options.ts); the CLI's flags
// and the Workbench API's schema are both built from that declaration, so what one accepts the
// other does: every setting is a flag and a schema property, and a setting the CLI reads for a
// method (layer IG's hook, occlusion's granularity) runs through the API with the same result.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ATTRIBUTION_SETTINGS } from '../src/methods/attribution/options.js';
import { SCHEMAS } from '../src/interfaces/server/compute.js';
import { buildServer, LanternServer } from '../src/interfaces/server/app.js';
import { attribute } from '../src/methods/attribution/index.js';
import { loadModel } from '../src/models/load.js';
import { BUNDLED_MODEL } from '../src/paths.js';
import { runLantern } from './helpers.js';

let tmp: string;
let app: LanternServer;
let base: string;
beforeAll(async () => {
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'lantern-options-'));
  app = await buildServer({ dataDir: path.join(tmp, 'data'), allowHub: false });
  base = await app.listen({ port: 0, host: '127.0.0.1' });
});
afterAll(async () => {
  await app?.close();
  fs.rmSync(tmp, { recursive: true, force: true });
});

describe('one declaration of the attribution settings', () => {
  it('every setting is a CLI flag and a property of the API schema', async () => {
    const help = (await runLantern(['attribute', '--help'], tmp)).stdout;
    const props = (SCHEMAS.attribution as { properties: Record<string, unknown> }).properties;
    for (const spec of ATTRIBUTION_SETTINGS) {
      expect(help, spec.flag).toContain(spec.flag);
      expect(props[spec.key], spec.key).toBeDefined();
    }
  });

  it('layer IG at a hook and word-level occlusion run through the API as in the library; a setting for another method is refused alike', async () => {
    const model = await loadModel(BUNDLED_MODEL);
    const text = 'The cat sat on the';
    const post = async (body: unknown) => {
      const res = await fetch(`${base}/api/attribution`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
      return { status: res.status, json: await res.json() as any };
    };
    const layer = await post({ text, target: ' mat', method: 'layer-ig', hook: 'blocks.2.hook_resid_post', steps: 16 });
    expect(layer.status, JSON.stringify(layer.json)).toBe(200);
    const lib = await attribute(model, { text, target: ' mat', method: 'layer-ig', settings: { hook: 'blocks.2.hook_resid_post', steps: 16 } });
    layer.json.result.scores[0].forEach((s: number, i: number) => expect(s).toBeCloseTo(lib.scores[0][i], 5));
    const words = await post({ text, target: ' mat', method: 'occlusion', granularity: 'word' });
    expect(words.status, JSON.stringify(words.json)).toBe(200);
    expect(words.json.result.scores[0].length).toBe(5);
    const api = await post({ text, method: 'ig', granularity: 'word' });
    expect(api.status).toBe(400);
    expect(api.json.error).toMatch(/^granularity applies only to method occlusion, lime, shap, shapley \(the method is ig\)$/);
    const cli = await runLantern(['attribute', '--text', text, '--method', 'ig', '--granularity', 'word'], tmp);
    expect(cli.code).toBe(1);
    expect(cli.stderr.trim()).toMatch(/--granularity applies only to --method occlusion, lime, shap or shapley/);
  }, 120_000);
});
