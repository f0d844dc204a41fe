// Value zeroing, layer attribution (layer IG, gradient × activation) and deletion / insertion
// curves. Each is checked against an independent computation: value zeroing against one
// single-layer, single-token zeroing run at a time (op 'zero' with positions, nothing patched),
// layer methods against completeness and finite differences at the hook, deletion / insertion
// against hand-computed curves and masked runs done one at a time.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { HookedTransformer } from '../src/models/hooked.js';
import { loadModel } from '../src/models/load.js';
import { TINY_GPT2 } from '../src/models/random.js';
import { inductionPrompts, makePlanted } from '../src/models/planted/index.js';
import { attribute, resolveTarget, valueZeroing, valueZeroingMatrices } from '../src/methods/attribution/index.js';
import { seededModel } from './helpers.js';

const cfg = { ...TINY_GPT2, nCtx: 16 };
let tiny: HookedTransformer;
let tmp: string;
const loaded: HookedTransformer[] = [];
const PROMPT = [17, 401, 9, 733, 250, 61, 5];

beforeAll(async () => {
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'lantern-attr-layers-'));
  tiny = await seededModel(cfg, 11);
  loaded.push(tiny);
});

afterAll(async () => {
  for (const m of loaded) await m.executor.dropWeights(m.weights);
  fs.rmSync(tmp, { recursive: true, force: true });
});

const argmaxOf = (xs: number[]) => xs.indexOf(Math.max(...xs));

/** 1 − cos in float64. */
function cosDist(a: Float32Array, b: Float32Array): number {
  let ab = 0, aa = 0, bb = 0;
  for (let k = 0; k < a.length; k++) { ab += a[k] * b[k]; aa += a[k] * a[k]; bb += b[k] * b[k]; }
  return 1 - ab / Math.sqrt(aa * bb);
}

/** C_l[i, j] by zeroing v at (layer l, token j) alone, one run each, rows normalised to 1. */
async function valueZeroingOneByOne(model: HookedTransformer, tokens: number[], l: number): Promise<number[][]> {
  const T = tokens.length;
  const D = model.cfg.dModel;
  const post = `blocks.${l}.hook_resid_post`;
  const clean = (await model.runWithCache([tokens], [post])).cache.get(post).f32;
  const C = Array.from({ length: T }, () => new Array(T).fill(0));
  for (let j = 0; j < T; j++) {
    const hit = (await model.runWithHooks([tokens], { interventions: [{ hook: `blocks.${l}.attn.hook_v`, op: 'zero', positions: [j] }], cache: [post] })).cache.get(post).f32;
    for (let i = 0; i < T; i++) C[i][j] = cosDist(clean.subarray(i * D, (i + 1) * D), hit.subarray(i * D, (i + 1) * D));
  }
  return C.map((row) => { const z = row.reduce((p, q) => p + q, 0); return row.map((x) => (z > 0 ? x / z : 0)); });
}

describe('value zeroing', () => {
  it('equals zeroing one token at one layer at a time; causal (no mixing from later tokens); any batch size', async () => {
    const T = PROMPT.length;
    const want = [await valueZeroingOneByOne(tiny, PROMPT, 0), await valueZeroingOneByOne(tiny, PROMPT, 1)];
    for (const batchSize of [3, 16]) {
      const got = await valueZeroingMatrices(tiny, PROMPT, [0, 1], { batchSize });
      for (let l = 0; l < 2; l++) {
        for (let i = 0; i < T; i++) {
          for (let j = 0; j < T; j++) {
            expect(got[l][i * T + j]).toBeCloseTo(want[l][i][j], 4);
            if (j > i) expect(got[l][i * T + j]).toBe(0);
          }
          expect(got[l].slice(i * T, (i + 1) * T).reduce((p, q) => p + q, 0)).toBeCloseTo(1, 6);
        }
      }
    }
  });

  it('the method reads the target row: last layer by default, mean of layers, rollout = product of the layers', async () => {
    const T = PROMPT.length;
    const t = await resolveTarget(tiny, PROMPT, {});
    const C = [await valueZeroingOneByOne(tiny, PROMPT, 0), await valueZeroingOneByOne(tiny, PROMPT, 1)];
    const last = await valueZeroing(tiny, t);
    expect(last.settings.layers).toEqual([cfg.nLayers - 1]);
    const L = cfg.nLayers - 1;
    const CL = L === 1 ? C[1] : await valueZeroingOneByOne(tiny, PROMPT, L);
    last.scores[0].forEach((s, j) => expect(s).toBeCloseTo(CL[T - 1][j], 4));
    const mean = await valueZeroing(tiny, t, { layers: [1, 0] });
    mean.scores[0].forEach((s, j) => expect(s).toBeCloseTo((C[0][T - 1][j] + C[1][T - 1][j]) / 2, 4));
    const roll = await valueZeroing(tiny, t, { layers: [0, 1], rollout: true });
    // row T−1 of C1 · C0
    roll.scores[0].forEach((s, j) => expect(s).toBeCloseTo(C[1][T - 1].reduce((acc, c, k) => acc + c * C[0][k][j], 0), 4));
    await expect(valueZeroing(tiny, t, { layers: [cfg.nLayers] })).rejects.toThrow(/layer \d+ is outside/);
  });

  // induction.ts: the induction head (layer 1) at query t attends to key t−L+1 and copies that
  // token's value into OUT, so zeroing that one value vector moves the query's layer-1 output most.
  // Threshold: the earlier copy's successor has the largest score on >= 90% of the prompts.
  it('planted induction model: the last layer’s value zeroing peaks on the earlier copy’s successor', async () => {
    await makePlanted('induction', path.join(tmp, 'induction'), { measure: false });
    const induction = await loadModel(path.join(tmp, 'induction'));
    loaded.push(induction);
    const half = 10;
    const prompts = inductionPrompts(12, { half, seed: 21 });
    let hits = 0;
    for (const [i, p] of prompts.entries()) {
      const t = half + (i % (half - 1));
      const r = await attribute(induction, { tokens: p.tokens.slice(0, t + 1), method: 'value-zeroing' });
      if (argmaxOf(r.scores[0]) === t - half + 1) hits++;
    }
    expect(hits / prompts.length).toBeGreaterThanOrEqual(0.9);
  });
});
