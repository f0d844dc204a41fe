// GGUF: the bundled model exported by `lantern export-gguf` (src/backends/gguf-export.ts, fp16 as
// stored) and loaded by llama.cpp through node-llama-cpp (src/backends/gguf.ts) — an independent
// implementation of GPT-2, so agreement with Lantern's engine cross-checks both. llama.cpp uses
// approximations (e.g. its GELU and F16 matmul paths), so logits agree to ~5e-3 (F32 export), not bit for bit.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openBackend } from '../src/backends/index.js';
import { GgufBackend } from '../src/backends/gguf.js';
import { LanternBackend } from '../src/backends/lantern.js';
import { explainWithBackend } from '../src/methods/attribution/index.js';
import type { HookedTransformer } from '../src/models/hooked.js';
import { loadModel } from '../src/models/load.js';
import { BUNDLED_MODEL } from '../src/paths.js';
import { expectOneLineError, runLantern } from './helpers.js';

let tmp: string;
let file: string;
let gguf: GgufBackend;
let model: HookedTransformer;

beforeAll(async () => {
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'lantern-gguf-'));
  file = path.join(tmp, 'demo.gguf');
  const r = await runLantern(['export-gguf', '--out', file], tmp);
  expect(r.stderr).toBe('');
  expect(r.code).toBe(0);
  expect(r.stdout).toMatch(/wrote 52 tensors/);
  // One thread: llama.cpp's threads spin-wait for each other, which stalls on a busy shared machine.
  gguf = (await openBackend(`gguf:${file}`, { threads: 1 })) as GgufBackend;
  model = await loadModel(BUNDLED_MODEL);
}, 60_000);
afterAll(async () => {
  await gguf?.close();
  fs.rmSync(tmp, { recursive: true, force: true });
});

describe('the bundled model as GGUF in llama.cpp', () => {
  it('has the same tokenizer', async () => {
    for (const text of ['The jury said that the city', " He's 42 — naïve café!\n\tOK", '<|endoftext|>x']) {
      expect(await gguf.tokenize(text)).toEqual(model.toTokens(text));
    }
    const ids = model.toTokens('Hello there, world.');
    expect(await gguf.detokenize(ids)).toBe('Hello there, world.');
  });

  it("gives next-token logits within 5e-3 of Lantern's over the whole vocabulary (F32 export); F16 within 1e-3 of the logits' range", async () => {
    const ids = model.toTokens('The jury said that the city was clean and the people');
    const logits = await model.run([ids]);
    const V = model.cfg.dVocab;
    const compare = async (backend: GgufBackend) => {
      let worst = 0;
      let range = 0;
      for (const n of [1, 4, ids.length]) {
        const mine = logits.f32.subarray((n - 1) * V, n * V);
        const theirs = await backend.nextTokenLogits(ids.slice(0, n));
        expect(theirs.length).toBe(V);
        for (let i = 0; i < V; i++) {
          worst = Math.max(worst, Math.abs(mine[i] - theirs[i]));
          range = Math.max(range, Math.abs(mine[i]));
        }
      }
      expect(worst).toBeGreaterThan(0); // a different implementation, not a copy of ours
      return { worst, range };
    };
    // F32 matrices: only llama.cpp's own kernels differ (measured 1.0e-3 to 1.4e-3 on the bundled models so far).
    const f32File = path.join(tmp, 'demo-f32.gguf');
    expect((await runLantern(['export-gguf', '--dtype', 'f32', '--out', f32File], tmp)).code).toBe(0);
    const f32 = (await openBackend(`gguf:${f32File}`, { threads: 1 })) as GgufBackend;
    try {
      expect((await compare(f32)).worst).toBeLessThan(5e-3);
    } finally {
      await f32.close();
    }
    // The default F16 file: llama.cpp's F16 matmuls round activations to half precision too
    // (measured 3.8e-3 to 6.8e-3 at logits up to 10.5 to 11.5: at most 6e-4 of their range).
    const half = await compare(gguf);
    expect(half.worst).toBeLessThan(1e-3 * half.range);
  });

  it('scores continuations and generates as the engine does', async () => {
    const local = new LanternBackend(model);
    const prompt = 'The jury said that the city was clean and';
    const a = await gguf.scoreContinuation(prompt, ' the people were happy');
    const b = await local.scoreContinuation(prompt, ' the people were happy');
    expect(a.tokens).toEqual(b.tokens);
    a.logprobs.forEach((v, i) => expect(Math.abs(v - b.logprobs[i])).toBeLessThan(5e-3));
    const g1 = await gguf.generate('He opened the door and', { maxTokens: 8 });
    const g2 = await local.generate('He opened the door and', { maxTokens: 8 });
    expect(g1.text).toBe(g2.text);
    expect(gguf.usage().requests).toBeGreaterThanOrEqual(2);
  });

  it('word leave-one-out through the GGUF backend matches the engine within 1e-2', async () => {
    const opts = { prompt: 'The jury said that the city', target: ' was', method: 'occlusion' as const };
    const a = await explainWithBackend(gguf, opts);
    const b = await explainWithBackend(new LanternBackend(model), opts);
    expect(a.tokenStrings).toEqual(b.tokenStrings);
    a.scores[0].forEach((s, i) => expect(Math.abs(s - b.scores[0][i])).toBeLessThan(1e-2));
  });

  it('bad files are one-line errors', async () => {
    const notGguf = path.join(tmp, 'x.gguf');
    fs.writeFileSync(notGguf, 'hello');
    await expect(openBackend(`gguf:${notGguf}`)).rejects.toThrow(/is not a GGUF file/);
    await expect(openBackend(`gguf:${path.join(tmp, 'missing.gguf')}`)).rejects.toThrow(/no GGUF file at/);
    await expect(gguf.scoreContinuation([1, 2, 60000], ' x')).rejects.toThrow(/token id 60000 is outside the vocabulary \[0, 50257\)/);
    expectOneLineError(await runLantern(['export-gguf', '--model', tmp, '--out', path.join(tmp, 'y.gguf')], tmp), /config\.json/);
  });
});
