// Tuned lens on a tiny random model (trains in seconds). The evaluation is checked against KL
// divergences computed here from the logit lens's full log-probs (decodeResid, a separate graph)
// with the translators applied in plain JavaScript; the identity lens must reproduce the model's
// own logits at the last layer; training must lower held-out KL below the logit lens's.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Tensor } from '../src/engine/tensor.js';
import type { HookedTransformer } from '../src/models/hooked.js';
import { loadModel } from '../src/models/load.js';
import { TINY_GPT2, writeRandomModel } from '../src/models/random.js';
import { Rng } from '../src/rng.js';
import { decodeResid, logitLens } from '../src/methods/lens/logit-lens.js';
import {
  collectResiduals, evaluateLens, identityLens, loadTunedLens, Residuals, saveTunedLens, trainTunedLens, translate, TunedLens, tunedLensPath,
} from '../src/methods/lens/tuned-lens.js';
import { logSoftmaxAt, runLantern } from './helpers.js';
import { BUNDLED_MODEL } from '../src/paths.js';
import { tokenizeSplits } from '../src/data/brown.js';

let tmp: string;
let folder: string;
let model: HookedTransformer;
let train: Residuals;
let held: Residuals;
let lens: TunedLens;

/** Text-like streams for a random model: a Zipf-ish unigram distribution, seeded. */
function stream(n: number, seed: number): number[] {
  const rng = new Rng(seed);
  return Array.from({ length: n }, () => Math.min(999, Math.floor(Math.exp(rng.next() * Math.log(1000)))));
}

beforeAll(async () => {
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'lantern-tuned-'));
  folder = path.join(tmp, 'tiny');
  writeRandomModel(folder, TINY_GPT2, { seed: 21 });
  model = await loadModel(folder, { progress: false });
  train = await collectResiduals(model, stream(4096, 1), { seq: 64 });
  held = await collectResiduals(model, stream(1024, 2), { seq: 64 });
  lens = await trainTunedLens(model, train, { steps: 60, tokensPerStep: 128, lr: 5e-3, seed: 3 });
});

afterAll(async () => {
  await model.executor.dropWeights(model.weights);
  fs.rmSync(tmp, { recursive: true, force: true });
});

/** Mean KL(final || lens) at layer l over held-out positions with a next token, from decodeResid log-probs. */
async function klHere(which: TunedLens, layer: number, res: Residuals): Promise<number> {
  const { nLayers: L, dModel: d, dVocab: V } = model.cfg;
  const rows = Array.from({ length: res.n }, (_, i) => i).filter((i) => res.next[i] >= 0);
  const pick = (l: number) => {
    const x = new Float32Array(rows.length * d);
    rows.forEach((r, i) => x.set(res.stack.subarray((l * res.n + r) * d, (l * res.n + r + 1) * d), i * d));
    return x;
  };
  const lensRows = translate(which, layer, pick(layer));
  const both = new Float32Array(2 * rows.length * d);
  both.set(lensRows, 0);
  both.set(pick(L), rows.length * d);
  const { logprobs } = await decodeResid(model, Tensor.f32(both, [2, rows.length, d]), { topK: 0, logprobs: true });
  const lp = logprobs!.f32;
  let kl = 0;
  for (let i = 0; i < rows.length; i++) {
    let s = 0;
    for (let v = 0; v < V; v++) {
      const q = lp[(rows.length + i) * V + v];
      s += Math.exp(q) * (q - lp[i * V + v]);
    }
    kl += s / rows.length;
  }
  return kl;
}

describe('tuned lens', () => {
  it('the evaluation equals KL computed independently, for the logit lens and the tuned lens', async () => {
    const ev = await evaluateLens(model, lens, held);
    const L = model.cfg.nLayers;
    for (let l = 0; l < L; l++) {
      const logit = await klHere(identityLens(L, model.cfg.dModel), l, held);
      const tuned = await klHere(lens, l, held);
      expect(Math.abs(ev.logitLens.kl[l] - logit)).toBeLessThan(1e-3 * Math.max(1, logit));
      expect(Math.abs(ev.tunedLens.kl[l] - tuned)).toBeLessThan(1e-3 * Math.max(1, tuned));
    }
    expect(ev.logitLens.kl[L]).toBe(0);
    expect(ev.tunedLens.kl[L]).toBe(0);
  });

  it('training lowers held-out KL below the logit lens at every layer', async () => {
    const ev = await evaluateLens(model, lens, held);
    const L = model.cfg.nLayers;
    for (let l = 0; l < L; l++) {
      expect(ev.tunedLens.kl[l]).toBeLessThan(0.8 * ev.logitLens.kl[l]);
      expect(ev.tunedLens.ce[l]).toBeLessThan(ev.logitLens.ce[l]);
    }
    console.log(`tiny random model, held-out KL logit -> tuned: ${ev.layers.map((x, l) => `${x} ${ev.logitLens.kl[l].toFixed(3)} -> ${ev.tunedLens.kl[l].toFixed(3)}`).join(', ')}`);
  });

  it("the identity lens is the logit lens, and any lens at the last layer is the model's own output", async () => {
    const tokens = stream(12, 9);
    const logits = await model.run([tokens]);
    const V = model.cfg.dVocab;
    const L = model.cfg.nLayers;
    const argmax = tokens.map((_, p) => {
      const row = logits.f32.subarray(p * V, (p + 1) * V);
      return row.indexOf(Math.max(...row));
    });
    const plain = await logitLens(model, tokens, { target: argmax, topK: 3 });
    const ident = await logitLens(model, tokens, { target: argmax, topK: 3, tuned: identityLens(L, model.cfg.dModel) });
    const tuned = await logitLens(model, tokens, { target: argmax, topK: 3, tuned: lens });
    expect(ident.cells).toEqual(plain.cells);
    tokens.forEach((_, p) => {
      const expected = logSoftmaxAt(logits.f32.subarray(p * V, (p + 1) * V), argmax[p]);
      expect(Math.abs(ident.cells[L][p].target!.logprob - expected)).toBeLessThan(1e-5);
      expect(tuned.cells[L][p].target!.logprob).toBe(ident.cells[L][p].target!.logprob);
      expect(tuned.cells[L][p].target!.rank).toBe(0);
    });
    // Trained translators do change the earlier layers.
    expect(tuned.cells[0]).not.toEqual(ident.cells[0]);
  });

  it('saves and loads exactly; a lens for another shape or a missing file is a clear error', async () => {
    const file = tunedLensPath(folder);
    saveTunedLens(file, lens);
    const back = loadTunedLens(folder, model);
    expect(back.nLayers).toBe(lens.nLayers);
    back.weights.forEach((w, l) => expect(w).toEqual(lens.weights[l]));
    back.biases.forEach((b, l) => expect(b).toEqual(lens.biases[l]));
    expect(back.metadata.steps).toBe('60');
    const other = path.join(tmp, 'other.safetensors');
    saveTunedLens(other, identityLens(3, 64));
    expect(() => loadTunedLens(other, model)).toThrow(/tuned lens for 3 layers of width 64; the model has 2 of width 64/);
    expect(() => loadTunedLens(path.join(tmp, 'nope'))).toThrow(/no tuned lens at .*lantern tuned-lens train/);
  });

  it('lantern lens --tuned decodes through the saved lens', async () => {
    saveTunedLens(tunedLensPath(folder), lens);
    const r = await runLantern(['lens', '--model', folder, '--text', 'abc def', '--tuned', '--json'], tmp);
    expect(r.code, r.stderr).toBe(0);
    const j = JSON.parse(r.stdout);
    expect(j.method).toBe('tuned-lens');
    const plain = JSON.parse((await runLantern(['lens', '--model', folder, '--text', 'abc def', '--json'], tmp)).stdout);
    expect(j.cells[j.cells.length - 1]).toEqual(plain.cells[plain.cells.length - 1]);
    expect(j.cells[0]).not.toEqual(plain.cells[0]);
  });

  it('the committed lens of the bundled model beats the logit lens on held-out Brown text at every layer', async () => {
    const demo = await loadModel(BUNDLED_MODEL, { progress: false });
    try {
      const tuned = loadTunedLens(BUNDLED_MODEL, demo);
      // 256 held-out tokens from the middle of the held-out stream (the lens was evaluated on its first 1024).
      const heldout = tokenizeSplits().heldout;
      const res = await collectResiduals(demo, heldout.subarray(20000, 20256), { seq: 128 });
      const ev = await evaluateLens(demo, tuned, res);
      for (let l = 0; l < demo.cfg.nLayers; l++) expect(ev.tunedLens.kl[l]).toBeLessThan(0.5 * ev.logitLens.kl[l]);
      console.log(`bundled model, 255 held-out tokens, KL logit -> tuned: ${ev.layers.slice(0, -1).map((x, l) => `${x} ${ev.logitLens.kl[l].toFixed(3)} -> ${ev.tunedLens.kl[l].toFixed(3)}`).join(', ')}`);
    } finally {
      await demo.executor.dropWeights(demo.weights);
    }
  });
});
