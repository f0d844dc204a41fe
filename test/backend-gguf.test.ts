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
import { checkGgufFile } from '../src/backends/gguf-check.js';
import { probeGguf } from '../src/backends/gguf-probe.js';
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
    await expect(gguf.scoreContinuation('He went to the', 're')).rejects.toThrow(/^gguf:.*: the tokenizer merged the end of the prompt with the start of the continuation into one token \(" there"\)/);
    expectOneLineError(await runLantern(['export-gguf', '--model', tmp, '--out', path.join(tmp, 'y.gguf')], tmp), /config\.json/);
  });
});

describe('hostile GGUF files are refused before llama.cpp sees them', () => {
  /** The exported file with `edit` applied to a copy; the metadata's value offsets come from the checker. */
  function mutant(name: string, edit: (b: Buffer, info: ReturnType<typeof checkGgufFile>) => void): string {
    const b = fs.readFileSync(file);
    edit(b, checkGgufFile(file));
    const out = path.join(tmp, `${name}.gguf`);
    fs.writeFileSync(out, b);
    return out;
  }
  const at = (info: ReturnType<typeof checkGgufFile>, key: string) => info.metadata.get(key)!.offset;

  it('reads the exported file: 52 tensors, 4 blocks, the vocabulary counted', () => {
    const info = checkGgufFile(file);
    expect(info.tensors).toHaveLength(52);
    expect(info.metadata.get('gpt2.block_count')!.value).toBe(4);
    expect(info.metadata.get('tokenizer.ggml.tokens')!.length).toBe(50257);
    expect(info.tensors.find((t) => t.name === 'token_embd.weight')).toMatchObject({ dims: [256, 50257], type: 1, bytes: 256 * 50257 * 2 });
  });

  it('block_count 0 or 1e9, a NaN epsilon, a 2^63 tensor count and garbage after the magic are one-line errors (llama.cpp aborted or spun on each)', async () => {
    const cases: [string, (b: Buffer, info: ReturnType<typeof checkGgufFile>) => void, RegExp][] = [
      ['blocks0', (b, i) => b.writeUInt32LE(0, at(i, 'gpt2.block_count')), /gpt2\.block_count is 0; it must be an integer from 1 to 4096/],
      ['blocks1e9', (b, i) => b.writeUInt32LE(1e9, at(i, 'gpt2.block_count')), /gpt2\.block_count is 1000000000/],
      ['blocks1', (b, i) => b.writeUInt32LE(1, at(i, 'gpt2.block_count')), /gpt2\.block_count is 1, but the tensors hold blocks 0 to 3/],
      ['epsnan', (b, i) => b.writeFloatLE(NaN, at(i, 'gpt2.attention.layer_norm_epsilon')), /layer_norm_epsilon is NaN, not a finite number/],
      ['tensors', (b) => b.writeBigUInt64LE(2n ** 63n, 8), /the tensor count is 9223372036854775808, more than the \d+ byte file can describe \(at byte 8\)/],
      ['garbage', (b) => { for (let i = 24; i < 4096; i++) b[i] = (i * 7919) & 255; }, /the length of metadata key 0 is \d+, more than the \d+ bytes left can hold \(at byte 24\)/],
      ['eos', (b, i) => b.writeUInt32LE(60000, at(i, 'tokenizer.ggml.eos_token_id')), /eos_token_id is 60000; it must be an integer from 0 to 50256/],
    ];
    for (const [name, edit, message] of cases) {
      const f = mutant(name, edit);
      expect(() => checkGgufFile(f), name).toThrow(message);
      await expect(openBackend(`gguf:${f}`, { threads: 1 }), name).rejects.toThrow(message);
    }
    const cut = path.join(tmp, 'cut.gguf');
    fs.writeFileSync(cut, fs.readFileSync(file).subarray(0, 5_000_000));
    expect(() => checkGgufFile(cut)).toThrow(/tensor position_embd\.weight lies outside the file/);
    const link = path.join(tmp, 'zero.gguf');
    fs.symlinkSync('/dev/zero', link);
    await expect(openBackend(`gguf:${link}`)).rejects.toThrow(/zero\.gguf is not a regular file/);
    // Through the CLI: one line, exit 1, no native abort.
    const blocks0 = path.join(tmp, 'blocks0.gguf');
    expectOneLineError(await runLantern(['attribute', '--backend', `gguf:${blocks0}`, '--text', 'The cat sat', '--target', ' on'], tmp), /block_count is 0/);
  });

  it("a file llama.cpp itself refuses names llama.cpp's reason, not only 'Failed to load model'", async () => {
    // A tensor renamed: valid GGUF, but gpt2 needs output_norm.weight.
    const f = mutant('renamed', (b) => {
      const i = b.indexOf('output_norm.weight');
      b.write('output_norm.weighx', i, 'latin1');
    });
    await expect(openBackend(`gguf:${f}`, { threads: 1 })).rejects.toThrow(/llama\.cpp cannot load .*renamed\.gguf: .*output_norm\.weight/);
  });
});

describe('llama.cpp loads each file first in a child process', () => {
  it("a child that aborts (llama.cpp's assertions exit 134) or never finishes is an error here, not this process's end", async () => {
    const aborts = path.join(tmp, 'abort-child.mjs');
    fs.writeFileSync(aborts, 'process.abort();\n');
    await expect(probeGguf(file, 60_000, aborts)).rejects.toThrow(`llama.cpp aborted while loading ${file} (SIGABRT); the file is malformed or not one llama.cpp supports`);
    const spins = path.join(tmp, 'spin-child.mjs');
    fs.writeFileSync(spins, 'setInterval(() => {}, 1000);\n');
    await expect(probeGguf(file, 500, spins)).rejects.toThrow(`llama.cpp did not finish loading ${file} within 0.5 s; the file is likely malformed`);
    // The real child loads the exported file.
    await expect(probeGguf(file)).resolves.toBeUndefined();
  });
});
