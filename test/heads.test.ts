// Attention-head analysis. Three independent checks:
//  1. the per-head weight accessor against the forward's own hook activations, for every family
//     (grouped-query llama included): q, k, v, each head's write, and the logits;
//  2. the circuit scores against a torch fixture computed densely (scripts/reference/heads_reference.py)
//     and against hand-derived cases;
//  3. every detector against planted models whose mechanism is known, with the thresholds
//     stated below: planted heads score >= 0.95 (attention detectors, OV token scores, successor,
//     name mover), |copying score| >= 0.99; every other head scores <= 0.15.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Tensor } from '../src/engine/tensor.js';
import { HookedTransformer } from '../src/models/hooked.js';
import { architectureFor, SUPPORTED_ARCHITECTURES } from '../src/models/architectures/index.js';
import { randomWeights } from '../src/models/random.js';
import { weightShapes } from '../src/models/forward.js';
import { loadPlanted, makePlanted, LETTER_IDS, SUCCESSOR_IDS } from '../src/models/planted/index.js';
import {
  analyzeHeads, compositionScore, copyingScore, dense, Factored, ModelCircuits, factoredTranspose, topHeads, HeadGrid, ordinalTokens,
  successorScores, copySuppressionAblation, repeatedRandomSequences,
} from '../src/methods/heads/index.js';
import { expectOneLineError, runLantern } from './helpers.js';

let tmp: string;
const models: HookedTransformer[] = [];
beforeAll(() => {
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'lantern-heads-'));
});
afterAll(async () => {
  for (const m of models) await m.executor.dropWeights(m.weights);
  fs.rmSync(tmp, { recursive: true, force: true });
});

async function planted(kind: string) {
  const folder = path.join(tmp, kind);
  if (!fs.existsSync(folder)) await makePlanted(kind, folder, { measure: false });
  const { model } = await loadPlanted(folder);
  models.push(model);
  return { model, folder };
}

/** Every score of a grid but the planted heads' must be at most `others`; the planted ones at least `planted`. */
function expectPlanted(grid: HeadGrid, heads: [number, number][], planted: number, others: number): void {
  const isPlanted = (l: number, h: number) => heads.some(([a, b]) => a === l && b === h);
  grid.forEach((row, l) => row.forEach((x, h) => {
    if (isPlanted(l, h)) expect(x, `L${l}H${h}`).toBeGreaterThanOrEqual(planted);
    else expect(Math.abs(x), `L${l}H${h}`).toBeLessThanOrEqual(others);
  }));
}

describe('per-head weights agree with the forward, in every family', () => {
  for (const arch of SUPPORTED_ARCHITECTURES) {
    it(arch, async () => {
      const cfg = architectureFor(arch).presets.tiny;
      const raw = randomWeights(cfg, 3);
      const shapes = weightShapes(cfg);
      const model = await HookedTransformer.create(cfg, Object.fromEntries(Object.entries(raw).map(([n, d]) => [n, Tensor.f32(d, shapes[n])])), undefined, `tiny ${arch}`);
      models.push(model);
      const l = cfg.nLayers - 1;
      const p = `blocks.${l}`;
      const toks = [5, 17, 3, 99, 42, 7];
      const { cache, logits } = await model.runWithCache([toks], [`${p}.hook_resid_pre`, `${p}.ln1.hook_scale`, `${p}.attn.hook_q`, `${p}.attn.hook_k`, `${p}.attn.hook_v`, `${p}.attn.hook_z`, `${p}.attn.hook_result`, 'ln_final.hook_scale', `blocks.${cfg.nLayers - 1}.hook_resid_post`]);
      const w = await model.attentionWeights(l);
      const { dModel: D, nHeads: H, nKvHeads: K, dHead: dh } = cfg;
      expect(w.W_Q.shape).toEqual([H, D, dh]);
      expect(w.W_K.shape).toEqual([K, D, dh]);
      expect(w.W_O.shape).toEqual([H, dh, D]);
      const layerNorm = (cfg.norm ?? 'layernorm') === 'layernorm';
      const resid = cache.get(`${p}.hook_resid_pre`).f32;
      const scale = cache.get(`${p}.ln1.hook_scale`).f32;
      let worst = 0;
      for (let t = 0; t < toks.length; t++) {
        const x = Array.from(resid.subarray(t * D, (t + 1) * D));
        const mu = layerNorm ? x.reduce((s, v) => s + v, 0) / D : 0;
        const n = x.map((v) => (v - mu) / scale[t]);
        const check = (hook: string, W: Tensor, b: Tensor, heads: number) => {
          const act = cache.get(hook).f32;
          for (let h = 0; h < heads; h++) {
            for (let i = 0; i < dh; i++) {
              let s = b.f32[h * dh + i];
              for (let d = 0; d < D; d++) s += n[d] * W.f32[(h * D + d) * dh + i];
              worst = Math.max(worst, Math.abs(s - act[(t * heads + h) * dh + i]));
            }
          }
        };
        check(`${p}.attn.hook_q`, w.W_Q, w.b_Q, H);
        check(`${p}.attn.hook_k`, w.W_K, w.b_K, K);
        check(`${p}.attn.hook_v`, w.W_V, w.b_V, K);
        const z = cache.get(`${p}.attn.hook_z`).f32;
        const result = cache.get(`${p}.attn.hook_result`).f32;
        for (let h = 0; h < H; h++) {
          for (let d = 0; d < D; d++) {
            let s = 0;
            for (let i = 0; i < dh; i++) s += z[(t * H + h) * dh + i] * w.W_O.f32[(h * dh + i) * D + d];
            worst = Math.max(worst, Math.abs(s - result[(t * H + h) * D + d]));
          }
        }
      }
      expect(worst, 'q/k/v/result from the folded weights').toBeLessThan(2e-4);
      // Logits from the folded unembedding (families without a final soft-cap or LayerNorm bias).
      if (!layerNorm && !cfg.finalSoftcap) {
        const WU = await model.unembeddingMatrix();
        const V = cfg.dVocab;
        const final = cache.get(`blocks.${cfg.nLayers - 1}.hook_resid_post`).f32;
        const fs2 = cache.get('ln_final.hook_scale').f32;
        let worstLogit = 0;
        for (const t of [0, toks.length - 1]) {
          for (const v of [0, 1, 500, V - 1]) {
            let s = 0;
            for (let d = 0; d < D; d++) s += (final[t * D + d] / fs2[t]) * WU.f32[d * V + v];
            worstLogit = Math.max(worstLogit, Math.abs(s - logits.f32[t * V + v]));
          }
        }
        expect(worstLogit).toBeLessThan(2e-4);
      }
      expect((await model.embeddingMatrix()).shape).toEqual([cfg.dVocab, D]);
    });
  }
});

describe('circuit scores', () => {
  const fixture = JSON.parse(fs.readFileSync(path.join(__dirname, '..', 'fixtures', 'heads-reference.json'), 'utf8'));
  const factored = (c: { A: number[][]; B: number[][] }): Factored => ({
    A: dense(c.A.length, c.A[0].length, c.A.flat()), B: dense(c.B.length, c.B[0].length, c.B.flat()),
  });

  it('eigenvalue copying scores match torch.linalg.eigvals of the dense product', () => {
    for (const c of fixture.cases) expect(copyingScore(factored(c))).toBeCloseTo(c.copying, 9);
  });

  it('composition scores match dense Frobenius norms (torch)', () => {
    for (const p of fixture.pairs) {
      const [l, r] = [factored(fixture.cases[p.left]), factored(fixture.cases[p.right])];
      expect(compositionScore(l, r)).toBeCloseTo(p.score, 9);
      expect(compositionScore(l, factoredTranspose(r))).toBeCloseTo(p.scoreRightTransposed, 9);
    }
  });

  it('hand-derived cases: identity copies (1), minus identity suppresses (-1), a rotation neither (0)', () => {
    const eye = dense(2, 2, [1, 0, 0, 1]);
    expect(copyingScore({ A: eye, B: dense(2, 2, [3, 0, 0, 3]) })).toBeCloseTo(1, 12);
    expect(copyingScore({ A: eye, B: dense(2, 2, [-2, 0, 0, -2]) })).toBeCloseTo(-1, 12);
    expect(copyingScore({ A: eye, B: dense(2, 2, [0, -1, 1, 0]) })).toBeCloseTo(0, 12); // eigenvalues ±i
    // A head reading exactly what another writes: composition 1/sqrt(rank) for rank-r projections.
    const p = dense(3, 3, [1, 0, 0, 0, 1, 0, 0, 0, 0]);
    expect(compositionScore({ A: p, B: p }, { A: p, B: p })).toBeCloseTo(1 / Math.sqrt(2), 12);
    expect(compositionScore({ A: p, B: p }, { A: dense(3, 3, [0, 0, 0, 0, 0, 0, 0, 0, 1]), B: p })).toBe(0);
  });
});

describe('detectors on planted models', () => {
  it('induction: previous-token L0H2 and induction L1H1 score >= 0.95, every other head <= 0.15; L1H1 copies (score 1); K-composition L0H2 -> L1H1 is the strongest', async () => {
    const { model } = await planted('induction');
    const r = await analyzeHeads(model, { detectors: ['previous-token', 'induction', 'copying', 'ov-copy'], pool: LETTER_IDS, sequences: 10, half: 20, seed: 3 });
    expectPlanted(r.scores['previous-token']!, [[0, 2]], 0.95, 0.15);
    expectPlanted(r.scores.induction!, [[1, 1]], 0.95, 0.15);
    expectPlanted(r.scores.copying!, [[1, 1]], 0.99, 0.01);
    expectPlanted(r.scores['ov-copy']!, [[1, 1]], 0.95, 0.15);
    const comp = (await ModelCircuits.read(model)).compositionScores();
    const best = comp.K.flatMap((row, i) => row.map((s, j) => ({ i, j, s }))).sort((a, b) => b.s - a.s);
    expect([best[0].i, best[0].j]).toEqual([2, 5]); // L0H2 -> L1H1 (heads numbered layer·4 + head)
    expect(best[1].s).toBe(0);
    expect(r.dataHash).toMatch(/^[0-9a-f]{16}$/);
    // Same seed, same data and numbers; another seed, other data.
    const again = await analyzeHeads(model, { detectors: ['induction'], pool: LETTER_IDS, sequences: 10, half: 20, seed: 3 });
    expect(again.dataHash).toBe(r.dataHash);
    expect(again.scores.induction).toEqual(r.scores.induction);
    expect((await analyzeHeads(model, { detectors: ['induction'], pool: LETTER_IDS, sequences: 10, half: 20, seed: 4 })).dataHash).not.toBe(r.dataHash);
  });

  it('copy suppression: L1H2 is the only negative copier by the OV circuit (1 vs 0), copying score -1, and by ablation the earlier tokens rise >= 1 logit only for it', async () => {
    const { model } = await planted('copy-suppression');
    const r = await analyzeHeads(model, { detectors: ['ov-suppression', 'copying'], pool: LETTER_IDS });
    expectPlanted(r.scores['ov-suppression']!, [[1, 2]], 0.95, 0.15);
    expect(r.scores.copying![1][2]).toBeLessThanOrEqual(-0.99);
    expect(r.scores.copying![0][1]).toBeGreaterThanOrEqual(0.99); // the copying head it suppresses
    const rows = repeatedRandomSequences(model, { n: 8, half: 16, pool: LETTER_IDS, seed: 1 }).tokens.map((t) => t.slice(0, 16));
    const ablation = await copySuppressionAblation(model, rows);
    ablation.forEach((row, l) => row.forEach((x, h) => (l === 1 && h === 2 ? expect(x).toBeGreaterThanOrEqual(1) : expect(Math.abs(x)).toBeLessThanOrEqual(0.5))));
    expect(topHeads(ablation, 1)[0]).toMatchObject({ layer: 1, head: 2 });
  });

  it('the planted successor model continues ascending runs, and only through its successor head', async () => {
    const d = await makePlanted('successor', path.join(tmp, 'successor-measured'));
    expect(d.metrics!.accuracy).toBeGreaterThanOrEqual(0.95);
    expect(d.metrics!.accuracySuccessorHeadAblated).toBeLessThanOrEqual(0.05);
    expect(d.metrics!.copyRateSuccessorHeadAblated).toBeGreaterThanOrEqual(0.95); // the copying head takes over
    expect(d.metrics!.accuracyCopyingHeadAblated).toBeGreaterThanOrEqual(0.95);
    expect(d.metrics!.accuracyDistractorAblated).toBeGreaterThanOrEqual(0.95);
  });

  it('successor: L0H1 scores 1, the copying head L0H2 (copying score 1) and every other head 0', async () => {
    const { model } = await planted('successor');
    const ordinals = ordinalTokens(model);
    expect(ordinals.map((o) => [o.name, o.variant])).toEqual([['digits', '0'], ['letters', 'A'], ['letters', 'a']]);
    const { scores, items } = successorScores(await ModelCircuits.read(model), ordinals);
    expect(items).toBe(9 + 25 + 25);
    expectPlanted(scores, [[0, 1]], 0.95, 0.15);
    const r = await analyzeHeads(model, { detectors: ['copying', 'successor'], pool: SUCCESSOR_IDS });
    expect(r.scores.copying![0][2]).toBeGreaterThanOrEqual(0.99);
    expect(r.scores.successor).toEqual(scores);
  });

  it('IOI: name mover L1H2 scores >= 0.95, every other head <= 0.15 (the S-inhibition head attends to S, not IO)', async () => {
    const { model } = await planted('ioi');
    const r = await analyzeHeads(model, { detectors: ['name-mover'] });
    expectPlanted(r.scores['name-mover']!, [[1, 2]], 0.95, 0.15);
    expect(r.settings.ioiPrompts).toBe(50);
  });

  it('default detectors the vocabulary cannot feed are skipped with a reason; asked for by name, they fail', async () => {
    const { model } = await planted('induction');
    const r = await analyzeHeads(model, { pool: LETTER_IDS, sequences: 2, half: 4 });
    expect(Object.keys(r.skipped)).toEqual(['name-mover']);
    await expect(analyzeHeads(model, { detectors: ['name-mover'], pool: LETTER_IDS })).rejects.toThrow(/IOI names/);
    await expect(analyzeHeads(model, { detectors: ['inductoin'] })).rejects.toThrow(/unknown head detector 'inductoin'; did you mean 'induction'/);
  });
});

describe('lantern heads', () => {
  it('prints heatmaps and saves JSON with model, data hash, seed and settings', async () => {
    const { folder } = await planted('induction');
    const json = path.join(tmp, 'heads.json');
    const html = path.join(tmp, 'heads.html');
    const r = await runLantern(['heads', '--model', folder, '--detectors', 'previous-token,induction', '-n', '4', '--half', '10', '--head', 'L1H1', '--json', json, '--html', html], tmp);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/top: L0H2 1\.000/);
    expect(r.stdout).toMatch(/top: L1H1 1\.000/);
    expect(r.stdout).toMatch(/head L1H1: eigenvalue copying score 1\.000/);
    const saved = JSON.parse(fs.readFileSync(json, 'utf8'));
    expect(saved).toMatchObject({ model: folder, method: 'heads', settings: { seed: 0, sequences: 4, half: 10, poolSource: 'planted task tokens' } });
    expect(saved.dataHash).toMatch(/^[0-9a-f]{16}$/);
    expect(fs.readFileSync(html, 'utf8')).toContain('<h3>induction</h3>');
  });

  it('bad input is one clear error line', async () => {
    const { folder } = await planted('induction');
    expectOneLineError(await runLantern(['heads', '--model', folder, '--detectors', 'prev-token'], tmp), /unknown head detector 'prev-token'; did you mean 'previous-token'/);
    expectOneLineError(await runLantern(['heads', '--model', folder, '--head', 'L5H0'], tmp), /head L5H0 outside the model's 2 layers x 4 heads/);
    expectOneLineError(await runLantern(['heads', '--model', folder, '--half', '40'], tmp), /longer than the model's context of 64/);
  });
});
