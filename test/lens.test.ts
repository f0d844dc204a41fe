// Logit lens: the residual stream at every layer decoded through ln_final and the unembedding by
// one ONNX graph. Checked against the model's own log-softmaxed logits at the last layer, against
// ln_final(resid_pre_l) @ W_U written out here in float64 JavaScript at earlier layers, against
// its own full log-probs for top-k and target rank, and through the CLI.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Tensor } from '../src/engine/tensor.js';
import { LanternError } from '../src/errors.js';
import type { HookedTransformer } from '../src/models/hooked.js';
import { loadModel } from '../src/models/load.js';
import { TINY_GPT2, writeRandomModel } from '../src/models/random.js';
import { decodeResid, identityLens, logitLens, translate } from '../src/methods/lens/index.js';
import { makePlanted, inductionPrompts } from '../src/models/planted/index.js';
import { klLog, logitLens64, logSoftmaxRow, seededModel, runLantern } from './helpers.js';


let tmp: string;
let tinyFolder: string;
let tiny: HookedTransformer; // with a tokenizer
let seeded: HookedTransformer; // untied unembedding, no tokenizer
const loaded: HookedTransformer[] = [];

beforeAll(async () => {
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'lantern-lens-'));
  tinyFolder = path.join(tmp, 'tiny');
  writeRandomModel(tinyFolder, TINY_GPT2, { seed: 5 });
  tiny = await loadModel(tinyFolder, { progress: false });
  seeded = await seededModel({ ...TINY_GPT2, nLayers: 3, tiedUnembed: false }, 11);
  loaded.push(tiny, seeded);
});

afterAll(async () => {
  for (const m of loaded) await m.executor.dropWeights(m.weights);
  fs.rmSync(tmp, { recursive: true, force: true });
});

async function residStack(model: HookedTransformer, tokens: number[]): Promise<Tensor> {
  const L = model.cfg.nLayers;
  const names = [...Array.from({ length: L }, (_, l) => `blocks.${l}.hook_resid_pre`), `blocks.${L - 1}.hook_resid_post`];
  const { cache } = await model.runWithCache([tokens], names);
  return cache.accumulatedResid().stack.reshape([L + 1, tokens.length, model.cfg.dModel]);
}

const TOKENS = [17, 402, 9, 999, 250, 3, 77, 640];

describe('decodeResid (the lens graph)', () => {
  for (const which of ['tied', 'untied'] as const) {
    it(`${which} unembedding: the last layer equals the model's own log-softmax(logits) to 1e-5`, async () => {
      const model = which === 'tied' ? tiny : seeded;
      const stack = await residStack(model, TOKENS);
      const d = await decodeResid(model, stack, { logprobs: true, topK: 0 });
      const L = model.cfg.nLayers;
      const V = model.cfg.dVocab;
      const T = TOKENS.length;
      expect(d.logprobs!.shape).toEqual([L + 1, T, V]);
      const logits = await model.run([TOKENS]);
      let worst = 0;
      for (let p = 0; p < T; p++) {
        const ref = logSoftmaxRow(logits.f32.subarray(p * V, (p + 1) * V));
        const got = d.logprobs!.f32.subarray((L * T + p) * V, (L * T + p + 1) * V);
        for (let v = 0; v < V; v++) worst = Math.max(worst, Math.abs(got[v] - ref[v]));
      }
      expect(worst).toBeLessThan(1e-5);
    });
  }

  it('layer l equals ln_final(resid_pre_l) @ W_U computed in float64 JavaScript', async () => {
    const model = seeded; // untied: W_U is unembed.W_U_T, not W_E
    const { dModel: D, dVocab: V, lnEps } = model.cfg;
    const stack = await residStack(model, TOKENS);
    const d = await decodeResid(model, stack, { logprobs: true, topK: 3, target: TOKENS.map((t, i) => TOKENS[(i + 1) % TOKENS.length]) });
    const w = await model.executor.readWeights(model.weights, ['ln_final.w', 'ln_final.b', 'unembed.W_U_T']);
    const T = TOKENS.length;
    for (const [l, p] of [[0, 0], [1, 3], [2, 7], [3, 5]]) {
      const x = Array.from(stack.f32.subarray((l * T + p) * D, (l * T + p + 1) * D));
      const mu = x.reduce((s, v) => s + v, 0) / D;
      const varr = x.reduce((s, v) => s + (v - mu) ** 2, 0) / D;
      const n = x.map((v, i) => ((v - mu) / Math.sqrt(varr + lnEps)) * w['ln_final.w'].f32[i] + w['ln_final.b'].f32[i]);
      const logits = Array.from({ length: V }, (_, v) => {
        let s = 0;
        for (let i = 0; i < D; i++) s += n[i] * w['unembed.W_U_T'].f32[v * D + i];
        return s;
      });
      const ref = logSoftmaxRow(logits);
      const got = d.logprobs!.f32.subarray((l * T + p) * V, (l * T + p + 1) * V);
      for (const v of [0, 1, 17, 500, 999]) expect(Math.abs(got[v] - ref[v])).toBeLessThan(1e-5);
      // Top-3 and the target's rank agree with the float64 reference.
      const order = ref.map((lp, v) => [lp, v]).sort((a, b) => b[0] - a[0]);
      expect(d.topIds![l][p]).toEqual(order.slice(0, 3).map((o) => o[1]));
      const target = TOKENS[(p + 1) % T];
      expect(d.targetRank![l][p]).toBe(ref.filter((lp) => lp > ref[target]).length);
      expect(Math.abs(d.targetLogprob![l][p] - ref[target])).toBeLessThan(1e-5);
    }
  });

  it('rejects a stack of the wrong width and targets outside the vocabulary', async () => {
    await expect(decodeResid(seeded, Tensor.f32(new Float32Array(2 * 3 * 5), [2, 3, 5]))).rejects.toThrow(LanternError);
    const stack = await residStack(seeded, TOKENS.slice(0, 2));
    await expect(decodeResid(seeded, stack, { target: 1000 })).rejects.toThrow(/outside the vocabulary/);
  });
});

describe('logitLens', () => {
  it('gives every layer and position top-k (sorted, probabilities) and the target, consistent with decodeResid', async () => {
    const text = 'The quick brown fox jumps over the lazy';
    const r = await logitLens(tiny, text, { topK: 4, target: ' the' });
    const tokens = tiny.toTokens(text);
    expect(r.tokens).toEqual(tokens);
    expect(r.layers).toEqual(['0_pre', '1_pre', 'final_post']);
    expect(r.cells).toHaveLength(3);
    expect(r.cells[0]).toHaveLength(tokens.length);
    const target = tiny.toTokens(' the')[0];
    const d = await decodeResid(tiny, await residStack(tiny, tokens), { logprobs: true, topK: 0 });
    const V = tiny.cfg.dVocab;
    r.cells.forEach((row, l) => row.forEach((c, p) => {
      expect(c.top).toHaveLength(4);
      for (let j = 1; j < 4; j++) expect(c.top[j].prob).toBeLessThanOrEqual(c.top[j - 1].prob);
      const lp = d.logprobs!.f32.subarray((l * tokens.length + p) * V, (l * tokens.length + p + 1) * V);
      expect(Math.abs(c.top[0].logprob - Math.max(...lp))).toBeLessThan(1e-6);
      expect(c.top[0].token).toBe(tiny.tokenStrings([c.top[0].id])[0]);
      expect(c.target!.id).toBe(target);
      expect(Math.abs(c.target!.logprob - lp[target])).toBeLessThan(1e-6);
    }));
  });

  it('KL(final ‖ layer) per cell: 0 at the final layer, and equal to a float64 recomputation from cached residuals, ln_final and W_U (logit and tuned lens)', async () => {
    const model = seeded; // untied unembedding, no tokenizer
    const { nLayers: L, dModel: D, dVocab: V, lnEps } = model.cfg;
    const T = TOKENS.length;
    const w = await model.executor.readWeights(model.weights, ['ln_final.w', 'ln_final.b', 'unembed.W_U_T']);
    const decode64 = (x: ArrayLike<number>) => logitLens64(x, { lnW: w['ln_final.w'].f32, lnB: w['ln_final.b'].f32, unembedT: w['unembed.W_U_T'].f32, eps: lnEps });
    // The final distribution from the model's own logits, not from the lens.
    const logits = await model.run([TOKENS]);
    const finalLp = (p: number) => logSoftmaxRow(logits.f32.subarray(p * V, (p + 1) * V));
    const kl = (p: number, lp: number[]) => klLog(finalLp(p), lp);
    const stack = await residStack(model, TOKENS);
    // A tuned lens with random translators: the KL must be of the translated stream's distribution.
    const tuned = identityLens(L, D);
    let seed = 3;
    const rand = () => ((seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31 - 0.5) * 0.2;
    for (let l = 0; l < L; l++) { tuned.weights[l] = Float32Array.from(tuned.weights[l], rand); tuned.biases[l] = Float32Array.from(tuned.biases[l], rand); }
    for (const lens of [undefined, tuned]) {
      const r = await logitLens(model, TOKENS, { topK: 1, tuned: lens });
      expect(r.method).toBe(lens ? 'tuned-lens' : 'logit-lens');
      for (let p = 0; p < T; p++) expect(r.cells[L][p].kl).toBeLessThan(1e-5);
      for (const [l, p] of [[0, 2], [1, 6], [2, 4]]) {
        const raw = stack.f32.subarray((l * T + p) * D, (l * T + p + 1) * D);
        const ref = kl(p, decode64(lens ? translate(lens, l, raw) : raw));
        expect(ref).toBeGreaterThan(1e-3);
        expect(Math.abs(r.cells[l][p].kl - ref)).toBeLessThan(1e-4 * Math.max(1, ref));
      }
    }
  });

  it('a target that is not one token is a LanternError', async () => {
    await expect(logitLens(tiny, 'Hello there', { target: ' Lantern lens' })).rejects.toThrow(/not a single token/);
  });

  it('on the planted induction model: only the final residual predicts the next letter of the repeated half', async () => {
    const folder = path.join(tmp, 'induction');
    await makePlanted('induction', folder, { measure: false });
    const model = await loadModel(folder, { progress: false });
    loaded.push(model);
    const [prompt] = inductionPrompts(1, { half: 10, seed: 9 });
    const next = prompt.tokens.map((_, i) => prompt.tokens[i + 1] ?? prompt.tokens[0]);
    const r = await logitLens(model, prompt.tokens, { topK: 1, target: next });
    const L = model.cfg.nLayers;
    for (const t of prompt.targets) {
      expect(r.cells[L][t.pos].top[0].id).toBe(t.answer);
      expect(r.cells[L][t.pos].target!.rank).toBe(0);
      for (let l = 0; l < L; l++) expect(r.cells[l][t.pos].target!.rank).toBeGreaterThan(0); // the induction head writes in the last block
    }
  });
});

// ---- CLI


const lantern = (...args: string[]) => runLantern(args, tmp);

describe('lantern lens', () => {
  it('prints a layer x position grid and saves JSON (model, method, settings) and HTML equal to the library result', async () => {
    const text = 'Hello world, this is';
    const json = path.join(tmp, 'lens.json');
    const html = path.join(tmp, 'lens.html');
    const r = await lantern('lens', '--model', tinyFolder, '--text', text, '--target', ' the', '--top-k', '3', '--json', json, '--html', html);
    expect(r.code, r.stderr).toBe(0);
    const lines = r.stdout.split('\n');
    for (const label of ['0_pre', '1_pre', 'final_post']) expect(lines.filter((l) => l.startsWith(label))).toHaveLength(3); // top-token, target probability and target rank grids
    expect(r.stdout).not.toMatch(/\x1b\[/); // FORCE_COLOR=0
    const saved = JSON.parse(fs.readFileSync(json, 'utf8'));
    expect(saved.model).toBe(tinyFolder);
    expect(saved.method).toBe('logit-lens');
    expect(saved.settings).toEqual({ topK: 3, target: ' the', targetId: tiny.toTokens(' the')[0] });
    const lib = await logitLens(tiny, text, { topK: 3, target: ' the' });
    expect(saved.cells).toEqual(JSON.parse(JSON.stringify(lib.cells)));
    expect(fs.readFileSync(html, 'utf8')).toMatch(/<table>[\s\S]*final_post/);
  });

  it('bad input is one `lantern: error:` line', async () => {
    const r = await lantern('lens', '--model', tinyFolder, '--text', 'Hello', '--target', ' Lantern lens');
    expect(r.code).toBe(1);
    expect(r.stdout).toBe('');
    expect(r.stderr.trim().split('\n')).toHaveLength(1);
    expect(r.stderr).toMatch(/^lantern: error: target " Lantern lens" is \d tokens/);
  });
});
