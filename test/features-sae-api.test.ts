// A dashboard set built from an SAE (the bundled model's resid1-topk32) opens in the Workbench's
// features API, and "features on a prompt" runs the SAE: its activations equal the SAE's own
// graph encoder on the hook's activations.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildServer, LanternServer } from '../src/interfaces/server/app.js';
import { buildDashboards, openFeatureSource, writeDashboards } from '../src/methods/features/index.js';
import { loadSae } from '../src/methods/sae/index.js';
import { loadModel } from '../src/models/load.js';
import type { HookedTransformer } from '../src/models/hooked.js';

const MODEL = path.resolve('models/lantern-demo');
const SAE = path.join(MODEL, 'saes', 'resid1-topk32');
let tmp: string;
let app: LanternServer;
let model: HookedTransformer;

beforeAll(async () => {
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'lantern-features-sae-'));
  model = await loadModel(MODEL);
  const source = await openFeatureSource(model, { sae: SAE });
  const tokens = model.toTokens('The Fulton County Grand Jury said Friday an investigation of the recent primary election produced no evidence that any irregularities took place. '.repeat(4));
  const set = await buildDashboards(model, source, tokens, { seq: 32, topK: 4 });
  writeDashboards(set, path.join(tmp, 'data', 'dashboards', 'sae'));
  app = await buildServer({ dataDir: path.join(tmp, 'data'), allowHub: false });
}, 120_000);

afterAll(async () => {
  await app?.close();
  fs.rmSync(tmp, { recursive: true, force: true });
});

describe('SAE dashboards in the features API', () => {
  it('lists the set with the SAE as its source and runs the SAE on a typed prompt', async () => {
    const { sets } = (await app.inject({ method: 'GET', url: '/api/features/sets' })).json();
    expect(sets.find((s: { name: string }) => s.name === 'sae')).toMatchObject({ hook: 'blocks.1.hook_resid_post', size: 2048, source: SAE });
    const text = 'The jury said the city was fine.';
    const res = await app.inject({ method: 'POST', url: '/api/features/sets/sae/top', payload: { text, k: 3 } });
    expect(res.statusCode, res.body).toBe(200);
    const r = res.json();
    const { sae } = await loadSae(SAE);
    const { cache } = await model.runWithCache(text, [sae.cfg.hookName]);
    const acts = cache.get(sae.cfg.hookName);
    const rows = acts.shape[1];
    const feats = await sae.encode(acts.f32, rows);
    expect(r.top.length).toBe(3);
    for (const t of r.top as { index: number; activations: number[] }[]) {
      t.activations.forEach((a, p) => expect(a).toBeCloseTo(feats[p * sae.cfg.dSae + t.index], 3));
    }
  }, 120_000);
});
