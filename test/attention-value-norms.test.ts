// Value-weighted attention: ‖v_j W_O^h‖ per head and key, checked against v_j @ W_O^h written out in
// float64 from the head's own weights (attentionWeights), on GPT-2 and a grouped-query model, and
// through POST /api/attention.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import type { HookedTransformer } from '../src/models/hooked.js';
import { architectureFor } from '../src/models/architectures/index.js';
import { TINY_GPT2 } from '../src/models/random.js';
import { loadModel } from '../src/models/load.js';
import { BUNDLED_MODEL } from '../src/paths.js';
import { valueOutputNorms } from '../src/methods/heads/index.js';
import { buildServer } from '../src/interfaces/server/app.js';
import { seededModel } from './helpers.js';

const TOKENS = [5, 91, 17, 230, 4, 66];
const loaded: HookedTransformer[] = [];
afterAll(async () => { for (const m of loaded) await m.executor.dropWeights(m.weights); });

/** [head][key] ‖v W_O‖ from the cached values and the head's W_O, directly. */
async function direct(model: HookedTransformer, layer: number, tokens: number[]): Promise<number[][]> {
  const { nHeads: H, nKvHeads: KV, dHead: D, dModel: M } = model.cfg;
  const { cache } = await model.runWithCache([tokens], [`blocks.${layer}.attn.hook_v`]);
  const v = cache.get(`blocks.${layer}.attn.hook_v`).f32;
  const w = await model.attentionWeights(layer);
  return Array.from({ length: H }, (_, h) => tokens.map((_, k) => {
    const g = w.kvHeadOf(h);
    let s2 = 0;
    for (let i = 0; i < M; i++) {
      let o = 0;
      for (let a = 0; a < D; a++) o += v[(k * KV + g) * D + a] * w.W_O.f32[(h * D + a) * M + i];
      s2 += o * o;
    }
    return Math.sqrt(s2);
  }));
}

describe('valueOutputNorms', () => {
  const llama = architectureFor('llama').presets.tiny;
  for (const [name, cfg] of [['gpt2', TINY_GPT2], ['llama (grouped-query)', llama]] as const) {
    it(`${name}: equals ‖v_j W_O^h‖ from the head's weights, and differs from ‖v_j‖`, async () => {
      if (name.startsWith('llama')) expect(cfg.nKvHeads).toBeLessThan(cfg.nHeads); // query heads share values
      const model = await seededModel(cfg, 7);
      loaded.push(model);
      for (let l = 0; l < cfg.nLayers; l++) {
        const { cache } = await model.runWithCache([TOKENS], [`blocks.${l}.attn.hook_v`]);
        const got = await valueOutputNorms(model, l, cache.get(`blocks.${l}.attn.hook_v`));
        const want = await direct(model, l, TOKENS);
        expect(got.length).toBe(cfg.nHeads);
        got.forEach((row, h) => row.forEach((x, k) => expect(Math.abs(x - want[h][k])).toBeLessThan(1e-4 * Math.max(1, want[h][k]))));
        // Not the bare value norm: W_O changes the ratios between keys.
        const v = cache.get(`blocks.${l}.attn.hook_v`).f32;
        const { nKvHeads: KV, dHead: D } = cfg;
        const bare = TOKENS.map((_, k) => Math.hypot(...v.subarray(k * KV * D, k * KV * D + D)));
        expect(Math.abs(got[0][1] / got[0][0] - bare[1] / bare[0])).toBeGreaterThan(1e-3);
      }
    });
  }

  it('POST /api/attention returns these norms as valueNorms', async () => {
    const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'lantern-vnorm-'));
    const app = await buildServer({ dataDir: path.join(tmp, 'data'), allowHub: false });
    try {
      const res = await app.inject({ method: 'POST', url: '/api/attention', payload: { model: 'bundled', text: 'The cat sat on the mat' }, headers: { host: 'localhost' } });
      expect(res.statusCode, res.body).toBe(200);
      const r = res.json().result;
      const model = await loadModel(BUNDLED_MODEL, { progress: false });
      loaded.push(model);
      for (const l of [0, model.cfg.nLayers - 1]) {
        const want = await direct(model, l, r.tokens);
        r.valueNorms[l].forEach((row: number[], h: number) => row.forEach((x, k) => expect(Math.abs(x - want[h][k])).toBeLessThan(1e-4 * Math.max(1, want[h][k]))));
      }
    } finally {
      await app.close();
      fs.rmSync(tmp, { recursive: true, force: true });
    }
  }, 60_000);
});
