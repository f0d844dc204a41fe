// Sampling attribution (src/methods/attribution/sampling.ts): LIME, KernelSHAP, Shapley value
// sampling. Exact Shapley values are computed here by brute force: every one of the 2^n
// coalitions of a short prompt is run through the model (one masked prompt per coalition, zero
// embeddings put in place by a replace intervention written out here) and combined with the
// Shapley formula. LIME is checked on scorers whose output is linear in the keep-mask.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Tensor } from '../src/engine/tensor.js';
import type { HookedTransformer } from '../src/models/hooked.js';
import { loadModel } from '../src/models/load.js';
import { TINY_GPT2, writeRandomModel } from '../src/models/random.js';
import {
  attribute, kernelShapFit, limeFit, loadResult, resolveTarget, shapleySamplingFit, CoalitionScorer,
} from '../src/methods/attribution/index.js';
import { expectOneLineError, runLantern, seededModel, logSoftmaxAt } from './helpers.js';

const cfg = { ...TINY_GPT2, nCtx: 16 };
const PROMPT = [17, 401, 9, 733, 250];
let tiny: HookedTransformer;
let tmp: string;
let folder: string;
let exact: number[];
let target: number;
let fx: number;
let fEmpty: number;

function logprobAt(logits: Tensor, b: number, pos: number, token: number): number {
  const [, T, V] = logits.shape;
  return logSoftmaxAt(logits.f32.subarray((b * T + pos) * V, (b * T + pos + 1) * V), token);
}

function factorial(k: number): number {
  return k <= 1 ? 1 : k * factorial(k - 1);
}

/** log p(token) for every coalition bits ∈ [0, 2^n) (bit i set: token i kept; others zeroed), in one run. */
async function everyCoalition(model: HookedTransformer, tokens: number[], token: number): Promise<number[]> {
  const n = tokens.length;
  const d = model.cfg.dModel;
  const x = Float32Array.from((await model.runWithCache([tokens], ['hook_embed'])).cache.get('hook_embed').f32);
  const count = 2 ** n;
  const value = new Float32Array(count * n * d);
  for (let bits = 0; bits < count; bits++) {
    for (let i = 0; i < n; i++) if ((bits >> i) & 1) value.set(x.subarray(i * d, (i + 1) * d), (bits * n + i) * d);
  }
  const { logits } = await model.runWithHooks(Array.from({ length: count }, () => tokens), {
    interventions: [{ hook: 'hook_embed', op: 'replace', value: Tensor.f32(value, [count, n, d]) }],
  });
  return Array.from({ length: count }, (_, b) => logprobAt(logits, b, n - 1, token));
}

/** φ_i = Σ_{S ∌ i} |S|! (n − |S| − 1)! / n! · (v(S ∪ i) − v(S)). */
function shapleyByBruteForce(v: number[], n: number): number[] {
  const pop = (b: number) => b.toString(2).split('').filter((c) => c === '1').length;
  return Array.from({ length: n }, (_, i) => {
    let phi = 0;
    for (let s = 0; s < 2 ** n; s++) {
      if ((s >> i) & 1) continue;
      const k = pop(s);
      phi += (factorial(k) * factorial(n - k - 1)) / factorial(n) * (v[s | (1 << i)] - v[s]);
    }
    return phi;
  });
}

beforeAll(async () => {
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'lantern-attr-sampling-'));
  folder = path.join(tmp, 'tiny');
  writeRandomModel(folder, TINY_GPT2, { seed: 4 });
  tiny = await seededModel(cfg, 11);
  const t = await resolveTarget(tiny, PROMPT, {});
  target = t.info.token!;
  const v = await everyCoalition(tiny, PROMPT, target);
  exact = shapleyByBruteForce(v, PROMPT.length);
  fx = v[2 ** PROMPT.length - 1];
  fEmpty = v[0];
});

afterAll(async () => {
  await tiny.executor.dropWeights(tiny.weights);
  fs.rmSync(tmp, { recursive: true, force: true });
});

const sum = (xs: number[]) => xs.reduce((p, q) => p + q, 0);
const maxDiff = (a: number[], b: number[]) => Math.max(...a.map((x, i) => Math.abs(x - b[i])));

describe('Shapley values on a tiny model (exact by brute force over all 2^5 coalitions)', () => {
  it('the brute-force values are efficient and not trivial', () => {
    expect(Math.abs(sum(exact) - (fx - fEmpty))).toBeLessThan(1e-9);
    expect(Math.max(...exact.map(Math.abs))).toBeGreaterThan(1e-3);
  });

  it('KernelSHAP with every coalition enumerated equals them within 1e-4 and is efficient', async () => {
    const r = await attribute(tiny, { tokens: PROMPT, target, method: 'shap' });
    expect(r.settings.enumerated).toBe(true);
    expect(maxDiff(r.scores[0], exact)).toBeLessThan(1e-4);
    expect(Math.abs(sum(r.scores[0]) - (fx - fEmpty))).toBeLessThan(1e-4);
  });

  it('sampled KernelSHAP (budget below 2^n − 2) is still efficient, and close to exact with many samples', async () => {
    const few = await attribute(tiny, { tokens: PROMPT, target, method: 'shap', settings: { samples: 12 }, seed: 3 });
    expect(few.settings.enumerated).toBe(false);
    expect(Math.abs(sum(few.scores[0]) - (fx - fEmpty))).toBeLessThan(1e-4);
    const many = await attribute(tiny, { tokens: PROMPT, target, method: 'shap', settings: { samples: 29 }, seed: 3 });
    expect(many.settings.enumerated).toBe(false);
    expect(Math.abs(sum(many.scores[0]) - (fx - fEmpty))).toBeLessThan(1e-4);
  });

  it('Shapley value sampling is exactly efficient, and with 2000 antithetic permutations within 1e-4 of exact', async () => {
    // max|φ| ≈ 0.085 here; the observed error is ~2e-4 with 20 permutations and 1.6e-5..3.2e-5 with
    // 2000 (seeds 1-3): this model's log-prob is nearly additive in the kept tokens.
    const few = await attribute(tiny, { tokens: PROMPT, target, method: 'shapley', settings: { samples: 3 }, seed: 1 });
    expect(Math.abs(sum(few.scores[0]) - (fx - fEmpty))).toBeLessThan(1e-5);
    const r = await attribute(tiny, { tokens: PROMPT, target, method: 'shapley', settings: { samples: 2000 }, seed: 1 });
    expect(maxDiff(r.scores[0], exact)).toBeLessThan(1e-4);
    // More permutations: closer (error of 2000 ≤ error of 20, on this seed).
    const coarse = await attribute(tiny, { tokens: PROMPT, target, method: 'shapley', settings: { samples: 20 }, seed: 1 });
    expect(maxDiff(r.scores[0], exact)).toBeLessThanOrEqual(maxDiff(coarse.scores[0], exact));
  });

  it('the same seed gives identical results; another seed gives other samples', async () => {
    for (const method of ['lime', 'shapley'] as const) {
      const a = await attribute(tiny, { tokens: PROMPT, target, method, settings: { samples: 30 }, seed: 7 });
      const b = await attribute(tiny, { tokens: PROMPT, target, method, settings: { samples: 30 }, seed: 7 });
      const c = await attribute(tiny, { tokens: PROMPT, target, method, settings: { samples: 30 }, seed: 8 });
      expect(a.scores).toEqual(b.scores);
      expect(a.seed).toBe(7);
      expect(a.scores).not.toEqual(c.scores);
    }
    const a = await attribute(tiny, { tokens: PROMPT, target, method: 'shap', settings: { samples: 10 }, seed: 7 });
    const b = await attribute(tiny, { tokens: PROMPT, target, method: 'shap', settings: { samples: 10 }, seed: 7 });
    expect(a.scores).toEqual(b.scores);
  });

  it('LIME on the model reports a weighted R² in [0, 1] per row; batch size does not change the scores', async () => {
    const r = await attribute(tiny, { tokens: PROMPT, target, method: 'lime', seed: 2 });
    expect(r.settings).toMatchObject({ samples: 200, kernelWidth: 0.25 });
    expect(r.surrogateR2).toHaveLength(1);
    expect(r.surrogateR2![0]).toBeGreaterThanOrEqual(0);
    expect(r.surrogateR2![0]).toBeLessThanOrEqual(1);
    const b = await attribute(tiny, { tokens: PROMPT, target, method: 'lime', seed: 2, settings: { batchSize: 5 } });
    expect(maxDiff(b.scores[0], r.scores[0])).toBeLessThan(1e-5);
  });
});

describe('estimators on functions with known attributions', () => {
  const coef = [0.5, -2, 3, 0, 1.25, -0.75];
  const linear = (rows: number[][], bias: number[]): CoalitionScorer => async (keep) =>
    rows.map((c, r) => keep.map((z) => bias[r] + z.reduce((a, on, i) => a + (on ? c[i] : 0), 0)));

  it('LIME recovers the exact coefficients and R² = 1 when f is linear in the keep-mask (two rows)', async () => {
    const rows = [coef, coef.map((c) => -2 * c + 1)];
    const r = await limeFit(6, linear(rows, [4, -1]), { seed: 5, ridge: 0 });
    rows.forEach((c, k) => expect(maxDiff(r.scores[k], c)).toBeLessThan(1e-9));
    expect(maxDiff(r.intercepts, [4, -1])).toBeLessThan(1e-9);
    r.r2.forEach((v) => expect(v).toBeCloseTo(1, 12));
    // The default ridge penalty (1e-3) barely moves them.
    const d = await limeFit(6, linear([coef], [4]), { seed: 5 });
    expect(maxDiff(d.scores[0], coef)).toBeLessThan(1e-3);
  });

  it('LIME with noise has R² < 1; KernelSHAP and Shapley sampling give exact coefficients for linear f', async () => {
    const noisy: CoalitionScorer = async (keep) => [keep.map((z) => z.reduce((a, on, i) => a + (on ? coef[i] : 0), 0) + (z[0] && z[1] ? 2 : 0))];
    const r = await limeFit(6, noisy, { seed: 5 });
    expect(r.r2[0]).toBeLessThan(0.999);
    expect(r.r2[0]).toBeGreaterThan(0);
    const s = await kernelShapFit(6, linear([coef], [4]), { seed: 0 });
    expect(maxDiff(s.scores[0], coef)).toBeLessThan(1e-6);
    const sv = await shapleySamplingFit(6, linear([coef], [4]), { seed: 0, samples: 3, antithetic: false });
    expect(maxDiff(sv.scores[0], coef)).toBeLessThan(1e-12);
    // An interaction x0·x1 of size 2 is split evenly by Shapley values: exact for KernelSHAP (enumerated).
    const i = await kernelShapFit(6, noisy, { seed: 0 });
    expect(maxDiff(i.scores[0], coef.map((c, k) => c + (k < 2 ? 1 : 0)))).toBeLessThan(1e-5);
  });

  it('Shapley sampling converges on a strongly non-additive function (error ≲ 1/√permutations)', async () => {
    const n = 6;
    const g = (z: boolean[]) => 3 * Number(z[0] && z[1]) + 2 * Math.max(Number(z[2]), Number(z[3]), Number(z[4])) - 1.5 * Number(z[5] && z[0]) + Number(z[3]);
    const scorer: CoalitionScorer = async (keep) => [keep.map(g)];
    const v = Array.from({ length: 2 ** n }, (_, b) => g(Array.from({ length: n }, (_, i) => ((b >> i) & 1) === 1)));
    const truth = shapleyByBruteForce(v, n);
    const shap = await kernelShapFit(n, scorer, { seed: 0 });
    expect(maxDiff(shap.scores[0], truth)).toBeLessThan(1e-5);
    const errs: number[] = [];
    for (const samples of [10, 100, 10000]) {
      const r = await shapleySamplingFit(n, scorer, { seed: 4, samples });
      expect(Math.abs(sum(r.scores[0]) - (v[2 ** n - 1] - v[0]))).toBeLessThan(1e-9);
      errs.push(maxDiff(r.scores[0], truth));
    }
    // Per-token marginal contributions here have standard deviation ≤ ~1.5, so 10000 permutations
    // give a standard error ≤ 0.015; 0.05 is over 3 standard errors.
    expect(errs[2]).toBeLessThan(0.05);
    expect(errs[2]).toBeLessThan(errs[0]);
  });

  it('rejects bad settings', async () => {
    await expect(limeFit(3, linear([[1, 2, 3]], [0]), { seed: 0, kernelWidth: 0 })).rejects.toThrow(/kernel width/);
    await expect(attribute(tiny, { tokens: PROMPT, method: 'shapley', settings: { samples: 0 } })).rejects.toThrow(/positive integer/);
    await expect(attribute(tiny, { tokens: PROMPT, method: 'shapely' })).rejects.toThrow(/did you mean 'shapley'/);
  });
});

describe('lantern attribute --method lime|shap|shapley', () => {
  it('runs each method, --json equals the library result', async () => {
    const text = 'Hello world, this is';
    const model = await loadModel(folder);
    try {
      for (const method of ['lime', 'shap', 'shapley']) {
        const json = path.join(tmp, `${method}.json`);
        const r = await runLantern(['attribute', '--model', folder, '--text', text, '--method', method, '--samples', '40', '--seed', '3', '--json', json, '--no-color'], tmp);
        expect(r.code, r.stderr).toBe(0);
        expect(r.stdout).toContain(`method: ${method}`);
        const saved = loadResult(json);
        const here = await attribute(model, { text, method, settings: { samples: 40 }, seed: 3 });
        expect(saved.seed).toBe(3);
        expect(maxDiff(saved.scores[0], here.scores[0])).toBeLessThan(1e-6);
        if (method === 'lime') expect(saved.surrogateR2).toHaveLength(1);
      }
    } finally {
      await model.executor.dropWeights(model.weights);
    }
  }, 60_000);

  it('bad flags are one-line errors', async () => {
    expectOneLineError(await runLantern(['attribute', '--model', folder, '--text', 'Hi there', '--method', 'ig', '--samples', '5'], tmp), /--samples applies only/);
    expectOneLineError(await runLantern(['attribute', '--model', folder, '--text', 'Hi there', '--method', 'shap', '--kernel-width', '1'], tmp), /--kernel-width applies only/);
    expectOneLineError(await runLantern(['attribute', '--model', folder, '--text', 'Hi there', '--method', 'lime', '--kernel-width', '-1'], tmp), /--kernel-width must be a number above 0 and at most 100, got '-1'/);
  }, 60_000);
});

describe('coalitions that would not fit the heap', () => {
  it('Shapley sampling of 5000 permutations over 250 tokens is refused before the first coalition is scored', async () => {
    let called = 0;
    const scorer = async (keep: boolean[][]) => { called++; return [keep.map(() => 0)]; };
    await expect(shapleySamplingFit(250, scorer, { samples: 5000, seed: 0 }))
      .rejects.toThrow(/^shapley with 5000 permutations x 251 coalitions needs about [\d.]+ GiB of JavaScript memory, more than half of this process's [\d.]+ GiB heap; use fewer samples/);
    expect(called).toBe(0);
    // A run that fits goes ahead.
    expect((await shapleySamplingFit(250, scorer, { samples: 2, seed: 0 })).scores[0]).toHaveLength(250);
  });
});
