// Value zeroing, layer attribution (layer IG, gradient × activation) and deletion / insertion
// curves. Each is checked against an independent computation: value zeroing against one
// single-layer, single-token zeroing run at a time (op 'zero' with positions, nothing patched),
// layer methods against completeness and finite differences at the hook, deletion / insertion
// against hand-computed curves and masked runs done one at a time.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { HookedTransformer } from '../src/models/hooked.js';
import { loadModel } from '../src/models/load.js';
import { randomWeights, truncatedGpt2Tokenizer, TINY_GPT2 } from '../src/models/random.js';
import { Tokenizer } from '../src/models/tokenizer.js';
import { weightShapes } from '../src/models/forward.js';
import { Tensor } from '../src/engine/tensor.js';
import { inductionPrompts, makePlanted } from '../src/models/planted/index.js';
import {
  attribute, curveAuc, faithfulnessPlan, integratedGradients, layerGradientXActivation, rationaleSizes, ERASER_FRACTIONS, layerIntegratedGradients, resolveTarget, valueZeroing, valueZeroingMatrices,
} from '../src/methods/attribution/index.js';
import type { Intervention } from '../src/models/hooked.js';
import { expectOneLineError, logSoftmaxAt, runLantern, seededModel } from './helpers.js';
import { FIXTURES } from './fixtures.js';
import { chunks, defaultBatchSize } from '../src/methods/attribution/common.js';
import { readFloat32, readSafetensorsHeader } from '../src/models/safetensors.js';
import { writeRandomModel } from '../src/models/random.js';
import { loadResult } from '../src/methods/attribution/index.js';

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

/** log p(token) at the last position of one run with `interventions`. */
async function lastLogprob(model: HookedTransformer, tokens: number[], token: number, interventions: Intervention[] = []): Promise<number> {
  const { logits } = await model.runWithHooks([tokens], { interventions });
  const V = model.cfg.dVocab;
  return logSoftmaxAt(logits.f32.subarray((tokens.length - 1) * V, tokens.length * V), token);
}

describe('layer attribution', () => {
  it('gradient × activation at a hook equals the derivative of f along each position’s own activation (finite differences)', async () => {
    const t = await resolveTarget(tiny, PROMPT, {});
    const token = t.info.token!;
    for (const hook of ['blocks.0.hook_resid_post', 'blocks.1.attn.hook_z', 'blocks.0.mlp.hook_post']) {
      const r = await layerGradientXActivation(tiny, t, { hook });
      expect(Math.max(...r.scores[0].map(Math.abs)), 'not vacuous').toBeGreaterThan(0.02);
      const eps = 1e-2;
      for (let p = 0; p < PROMPT.length; p++) {
        // d/dε f(a with a_p scaled by 1 + ε) at 0 = Σ_k a_pk ∂f/∂a_pk
        const up = await lastLogprob(tiny, PROMPT, token, [{ hook, op: 'scale', factor: 1 + eps, positions: [p] }]);
        const down = await lastLogprob(tiny, PROMPT, token, [{ hook, op: 'scale', factor: 1 - eps, positions: [p] }]);
        expect(r.scores[0][p], `${hook} position ${p}`).toBeCloseTo((up - down) / (2 * eps), 2);
      }
    }
  });

  it('layer IG is complete: Σ scores = f(x) − f(baseline activation) within 1%, for zero and token baselines', async () => {
    const t = await resolveTarget(tiny, PROMPT, {});
    const token = t.info.token!;
    const hook = 'blocks.0.hook_resid_mid';
    const fx = await lastLogprob(tiny, PROMPT, token);
    const all = PROMPT.map((_, i) => i);
    const fZero = await lastLogprob(tiny, PROMPT, token, [{ hook, op: 'zero', positions: all }]);
    const base = (await tiny.runWithCache([PROMPT.map(() => 3)], [hook])).cache.get(hook);
    const fTok = await lastLogprob(tiny, PROMPT, token, [{ hook, op: 'replace', value: base }]);
    for (const [baseline, fb] of [['zero', fZero], [{ token: 3 }, fTok]] as const) {
      const r = await layerIntegratedGradients(tiny, t, { hook, steps: 64, baseline });
      const total = r.scores[0].reduce((p, q) => p + q, 0);
      expect(Math.abs(total - (fx - fb)), JSON.stringify(baseline)).toBeLessThan(0.01 * Math.abs(fx - fb));
      const delta = (r.extra!.convergenceDelta as number[])[0];
      expect(Math.abs(delta - (total - (fx - fb)))).toBeLessThan(1e-4);
    }
  });

  it('layer IG at hook_embed is IG; bad hooks are clear errors', async () => {
    const t = await resolveTarget(tiny, PROMPT, { continuation: [5, 6] });
    const a = await layerIntegratedGradients(tiny, t, { hook: 'hook_embed', steps: 8 });
    const b = await integratedGradients(tiny, t, { steps: 8 });
    a.scores.forEach((row, r) => row.forEach((s, i) => expect(s).toBeCloseTo(b.scores[r][i], 6)));
    await expect(layerIntegratedGradients(tiny, t, { hook: 'blocks.0.attn.hook_pattern' })).rejects.toThrow(/needs a hook with a position axis/);
    await expect(layerGradientXActivation(tiny, t, { hook: 'blocks.0.hook_resid' })).rejects.toThrow(/unknown hook 'blocks.0.hook_resid'; did you mean/);
    const r = await attribute(tiny, { tokens: PROMPT, method: 'layer-grad-x-act', settings: { hook: 'blocks.1.hook_resid_pre' } });
    expect(r.settings.hook).toBe('blocks.1.hook_resid_pre');
  });
});

describe('deletion and insertion curves', () => {
  it('match a hand-computed case: f = Σ of the unmasked tokens’ weights [1, 2, 3, 4], scores [3, 1, 2, 0]', () => {
    const w = [1, 2, 3, 4];
    const { masks, assemble } = faithfulnessPlan([3, 1, 2, 0]);
    // Each distinct masked prompt once: x, deletion k=1..4, insertion k=1..3, and the two
    // leave-one-out masks that are not already curve points (top and bottom token are).
    expect(masks).toHaveLength(10);
    const r = assemble(masks.map((m) => w.filter((_, i) => !m[i]).reduce((p, q) => p + q, 0)));
    // Ranking 0, 2, 1, 3: delete w0, w2, w1, w3 in turn; insert them in the same order.
    expect(r.deletionCurve).toEqual([10, 9, 6, 4, 0]);
    expect(r.insertionCurve).toEqual([0, 1, 4, 6, 10]);
    expect(r.deletionAuc).toBe((9.5 + 7.5 + 5 + 2) / 4);
    expect(r.insertionAuc).toBe((0.5 + 2.5 + 5 + 8) / 4);
    expect(r.deletionAucNormalized).toBeCloseTo(0.6, 12);
    expect(r.insertionAucNormalized).toBeCloseTo(0.4, 12);
    expect(r.leaveOneOut).toEqual([1, 2, 3, 4]);
    expect(r.comprehensiveness).toEqual([1, 4, 6, 10]);
    expect(r.sufficiency).toEqual([9, 6, 4, 0]);
    // The best order (by weight) scores better on both: deletion 10, 6, 3, 1, 0 → 3.75 / 10;
    // insertion 0, 4, 7, 9, 10 → 6.25 / 10.
    const best = faithfulnessPlan([1, 2, 3, 4]);
    const rb = best.assemble(best.masks.map((m) => w.filter((_, i) => !m[i]).reduce((p, q) => p + q, 0)));
    expect(rb.deletionAucNormalized).toBeCloseTo(0.375, 12);
    expect(rb.insertionAucNormalized).toBeCloseTo(0.625, 12);
    expect(curveAuc([2, 2])).toBe(2);
    expect(rationaleSizes(20, ERASER_FRACTIONS)).toEqual([1, 2, 4, 10]);
  });

  it('on a model: every curve point equals the masked prompt run on its own; ERASER bins on request', async () => {
    const r = await attribute(tiny, { tokens: PROMPT, target: 5, method: 'input-x-grad', evaluate: true, aopc: 'eraser' });
    const f = r.faithfulness!.rows[0];
    expect(r.faithfulness!.fractions).toEqual(ERASER_FRACTIONS);
    expect(f.k).toEqual(rationaleSizes(PROMPT.length, ERASER_FRACTIONS));
    const order = r.scores[0].map((s, i) => [s, i] as const).sort((a, b) => b[0] - a[0] || a[1] - b[1]).map(([, i]) => i);
    const V = cfg.dVocab;
    const T = PROMPT.length;
    for (let k = 0; k <= T; k++) {
      const top = order.slice(0, k);
      const rest = order.slice(k);
      const run = async (positions: number[]) => {
        const { logits } = await tiny.runWithHooks([PROMPT], positions.length ? { interventions: [{ hook: 'hook_embed', op: 'zero', positions }] } : {});
        return logSoftmaxAt(logits.f32.subarray((T - 1) * V, T * V), 5);
      };
      expect(f.deletionCurve[k]).toBeCloseTo(await run(top), 5);
      expect(f.insertionCurve[k]).toBeCloseTo(await run(rest), 5);
    }
    expect(f.deletionAucNormalized).toBeCloseTo((f.deletionAuc - f.deletionCurve[T]) / (f.deletionCurve[0] - f.deletionCurve[T]), 12);
    await expect(attribute(tiny, { tokens: PROMPT, method: 'saliency', evaluate: true, aopc: [0, 0.5] })).rejects.toThrow(/fractions must be .* in \(0, 1\]/);
  });
});

describe('special tokens in chat-style prompts', () => {
  it('are kept as context and left out unless asked: IG completeness over the rest, occlusion columns, --eval never masks them', async () => {
    // A tiny model whose tokenizer has a special token (id 999, GPT-2's <|endoftext|>).
    const json = truncatedGpt2Tokenizer(cfg.dVocab) as { model: { vocab: Record<string, number> } };
    const vocab = Object.fromEntries(Object.entries(json.model.vocab).filter(([, id]) => id !== 999));
    vocab['<|endoftext|>'] = 999;
    const tokenizer = Tokenizer.fromJSON({
      ...json, model: { ...json.model, vocab },
      added_tokens: [{ id: 999, content: '<|endoftext|>', single_word: false, lstrip: false, rstrip: false, normalized: true, special: true }],
    });
    const shapes = weightShapes(cfg);
    const raw = randomWeights(cfg, 11);
    const demo = await HookedTransformer.create(cfg, Object.fromEntries(Object.entries(raw).map(([n, d]) => [n, Tensor.f32(d, shapes[n])])), tokenizer, 'tiny+special');
    loaded.push(demo);
    const text = 'Hi<|endoftext|>User: Hello<|endoftext|>Assistant:';
    const prompt = demo.toTokens(text);
    const special = prompt.flatMap((id, i) => (id === 999 ? [i] : []));
    expect(special).toHaveLength(2);
    const words = prompt.flatMap((_, i) => (special.includes(i) ? [] : [i]));

    const ig = await attribute(demo, { text, method: 'ig', settings: { steps: 24 }, kind: 'logit' });
    expect(ig.tokens).toEqual(words.map((i) => prompt[i]));
    expect(ig.skippedSpecial!.map((s) => [s.position, s.string])).toEqual(special.map((p) => [p, '<|endoftext|>']));
    // Baseline: the words' embeddings zeroed, the special tokens' kept.
    const { logits } = await demo.runWithHooks([prompt], { interventions: [{ hook: 'hook_embed', op: 'zero', positions: words }] });
    const V = demo.cfg.dVocab;
    const fb = logits.f32[(prompt.length - 1) * V + ig.target.token!];
    const fx = ig.target.values[0];
    const total = ig.scores[0].reduce((p, q) => p + q, 0);
    expect(Math.abs(total - (fx - fb))).toBeLessThan(0.01 * Math.abs(fx - fb));

    const all = await attribute(demo, { text, method: 'occlusion', special: true });
    expect(all.tokens).toEqual(prompt);
    expect(all.skippedSpecial).toBeUndefined();
    const some = await attribute(demo, { text, method: 'occlusion', evaluate: true });
    some.scores[0].forEach((s, c) => expect(s).toBeCloseTo(all.scores[0][words[c]], 5));
    // Leave-one-out over the word columns only, and the fully masked prompt keeps the specials.
    some.faithfulness!.rows[0].leaveOneOut.forEach((v, c) => expect(v).toBeCloseTo(all.scores[0][words[c]], 5));
    expect(some.faithfulness!.rows[0].deletionCurve).toHaveLength(words.length + 1);
    const empty = (await demo.runWithHooks([prompt], { interventions: [{ hook: 'hook_embed', op: 'zero', positions: words }] })).logits;
    const row = empty.f32.subarray((prompt.length - 1) * V, prompt.length * V);
    expect(some.faithfulness!.rows[0].deletionCurve.at(-1)).toBeCloseTo(logSoftmaxAt(row, some.target.token!), 4);
    await expect(attribute(demo, { text: '<|endoftext|>', method: 'saliency' })).rejects.toThrow(/every prompt token is a special token/);
  });
});

describe('lantern attribute (new methods and --eval curves)', () => {
  it('value-zeroing, layer-ig and deletion / insertion AUC from the command line; misplaced flags are one-line errors', async () => {
    const folder = path.join(tmp, 'cli-tiny');
    writeRandomModel(folder, TINY_GPT2, { seed: 4 });
    const model = await loadModel(folder);
    loaded.push(model);
    const json = path.join(tmp, 'vz.json');
    const text = 'Hello world, this is';
    const base = ['attribute', '--model', folder, '--text', text];
    const [vz, lig, ...bad] = await Promise.all([
      runLantern([...base, '--method', 'value-zeroing', '--rollout', '--eval', '--aopc', 'eraser', '--json', json], tmp),
      runLantern([...base, '--method', 'layer-ig', '--hook', 'blocks.1.hook_resid_pre', '--steps', '8'], tmp),
      runLantern([...base, '--method', 'ig', '--hook', 'blocks.0.hook_resid_post'], tmp),
      runLantern([...base, '--method', 'ig', '--rollout'], tmp),
      runLantern([...base, '--aopc', 'eraser'], tmp),
      runLantern([...base, '--method', 'layer-ig', '--hook', 'blocks.0.attn.hook_pattern'], tmp),
    ]);
    expect(vz.code, vz.stderr).toBe(0);
    expect(vz.stdout).toContain('method: value-zeroing');
    expect(vz.stdout).toMatch(/deletion AUC .* insertion AUC/);
    const saved = loadResult(json);
    const here = await attribute(model, { text, method: 'value-zeroing', settings: { rollout: true }, evaluate: true, aopc: 'eraser' });
    saved.scores[0].forEach((x, i) => expect(x).toBeCloseTo(here.scores[0][i], 6));
    expect(saved.faithfulness!.rows[0].deletionCurve).toHaveLength(saved.tokens.length + 1);
    expect(lig.code, lig.stderr).toBe(0);
    expect(lig.stdout).toContain('"hook":"blocks.1.hook_resid_pre"');
    expectOneLineError(bad[0], /--hook applies only to --method layer-ig or layer-grad-x-act/);
    expectOneLineError(bad[1], /--rollout applies only to --method value-zeroing/);
    expectOneLineError(bad[2], /--aopc applies only with --eval/);
    expectOneLineError(bad[3], /needs a hook with a position axis/);
  });
});

describe('contrastive probability difference', () => {
  it('explains p(target) − p(foil): values from the logits, IG complete against a zero-embedding run, any batch size', async () => {
    const V = cfg.dVocab;
    const T = PROMPT.length;
    const probs = async (interventions: Intervention[] = []) => {
      const { logits } = await tiny.runWithHooks([PROMPT], { interventions });
      const row = logits.f32.subarray((T - 1) * V, T * V);
      return [Math.exp(logSoftmaxAt(row, 5)), Math.exp(logSoftmaxAt(row, 9))];
    };
    const [pt, pf] = await probs();
    const [bt, bf] = await probs([{ hook: 'hook_embed', op: 'zero' }]);
    const r = await attribute(tiny, { tokens: PROMPT, target: 5, foil: 9, kind: 'prob', method: 'ig', settings: { steps: 64 } });
    expect(r.target.kind).toBe('prob-diff');
    expect(r.target.rows[0]).toMatch(/^prob\(.*\) − prob\(/);
    expect(r.target.values[0]).toBeCloseTo(pt - pf, 6);
    const total = r.scores[0].reduce((p, q) => p + q, 0);
    expect(Math.abs(total - ((pt - pf) - (bt - bf)))).toBeLessThan(0.01 * Math.abs((pt - pf) - (bt - bf)));
    const one = await attribute(tiny, { tokens: PROMPT, target: 5, foil: 9, kind: 'prob', method: 'ig', settings: { steps: 64, batchSize: 1 } });
    one.scores[0].forEach((s, i) => expect(s).toBeCloseTo(r.scores[0][i], 6));
    const occ = await attribute(tiny, { tokens: PROMPT, target: 5, foil: 9, kind: 'prob', method: 'occlusion' });
    const [mt, mf] = await probs([{ hook: 'hook_embed', op: 'zero', positions: [2] }]);
    expect(occ.scores[0][2]).toBeCloseTo((pt - pf) - (mt - mf), 6);
  });
});

describe('gradient methods against the float64 PyTorch fixture and the bundled model', () => {
  // fixtures/gpt2-tiny-seed7: d log p(grad.token at grad.pos) / d resid_pre0, which is also the
  // gradient wrt the token embeddings (resid_pre0 = embed + pos_embed); grad.pos is the last token.
  it('saliency and input × gradient equal the reference gradient’s per-token L2 norm and x · g to 1e-4', async () => {
    const f = FIXTURES.find((x) => x.preset === 'tiny')!;
    expect(f.grad.pos).toBe(f.tokens.length - 1);
    const header = readSafetensorsHeader(path.join(__dirname, '..', 'fixtures', f.file));
    const g = readFloat32(header, 'grad_resid_pre0');
    const x = readFloat32(header, 'hook_embed');
    const model = await seededModel(TINY_GPT2, f.seed);
    loaded.push(model);
    const d = TINY_GPT2.dModel;
    const sal = await attribute(model, { tokens: [...f.tokens], target: f.grad.token, method: 'saliency' });
    const ixg = await attribute(model, { tokens: [...f.tokens], target: f.grad.token, method: 'input-x-grad' });
    const norm = f.tokens.map((_, p) => Math.hypot(...g.subarray(p * d, (p + 1) * d)));
    const dot = f.tokens.map((_, p) => x.subarray(p * d, (p + 1) * d).reduce((acc, v, k) => acc + v * g[p * d + k], 0));
    const scale = (xs: number[]) => Math.max(...xs.map(Math.abs));
    sal.scores[0].forEach((s, p) => expect(Math.abs(s - norm[p]) / scale(norm), `saliency ${p}`).toBeLessThan(1e-4));
    ixg.scores[0].forEach((s, p) => expect(Math.abs(s - dot[p]) / scale(dot), `input x grad ${p}`).toBeLessThan(1e-4));
  });

  // fixtures/ig-tiny-seed7 (scripts/reference/ig_reference.py): float64 PyTorch IG of the same
  // target, 16 Gauss–Legendre nodes from numpy's leggauss, zero baseline.
  it('IG equals the float64 PyTorch reference to 1e-4', async () => {
    const f = FIXTURES.find((x) => x.preset === 'tiny')!;
    const header = readSafetensorsHeader(path.join(__dirname, '..', 'fixtures', 'ig-tiny-seed7.safetensors'));
    const want = Array.from(readFloat32(header, 'ig_scores'));
    const model = await seededModel(TINY_GPT2, f.seed);
    loaded.push(model);
    const r = await attribute(model, { tokens: [...f.tokens], target: f.grad.token, method: 'ig', settings: { steps: 16 } });
    const scale = Math.max(...want.map(Math.abs));
    r.scores[0].forEach((s, p) => expect(Math.abs(s - want[p]) / scale, `position ${p}`).toBeLessThan(1e-4));
    expect(r.target.values[0]).toBeCloseTo(readFloat32(header, 'f_x')[0], 4);
  });

  it('IG on the bundled model is complete to 1% (50 Gauss–Legendre steps, zero baseline)', async () => {
    const demo = await loadModel(path.join(__dirname, '..', 'models', 'lantern-demo'));
    loaded.push(demo);
    const text = 'He opened the door and looked at the';
    const r = await attribute(demo, { text, method: 'ig' });
    const prompt = demo.toTokens(text);
    const { logits } = await demo.runWithHooks([prompt], { interventions: [{ hook: 'hook_embed', op: 'zero' }] });
    const V = demo.cfg.dVocab;
    const fb = logSoftmaxAt(logits.f32.subarray((prompt.length - 1) * V, prompt.length * V), r.target.token!);
    const want = r.target.values[0] - fb;
    const total = r.scores[0].reduce((p, q) => p + q, 0);
    expect(Math.abs(total - want)).toBeLessThan(0.01 * Math.abs(want));
  });
});

describe('batching', () => {
  it('splits examples into the fewest runs of near-equal size; default batch sizes follow the prompt length', () => {
    expect(chunks(65, 32)).toEqual([[0, 22], [22, 44], [44, 65]]);
    expect(chunks(64, 32)).toEqual([[0, 32], [32, 64]]);
    expect(chunks(5, 16)).toEqual([[0, 5]]);
    expect(chunks(3, 1)).toEqual([[0, 1], [1, 2], [2, 3]]);
    expect(chunks(0, 4)).toEqual([]);
    expect([8, 64, 65, 512, 2000].map((T) => defaultBatchSize(T))).toEqual([16, 16, 15, 2, 1]);
  });
});
