// llama.cpp control vectors written by Lantern (src/backends/control-vector.ts) and read back by
// node-llama-cpp's own GGUF reader, an independent implementation of the format: the metadata,
// the tensor names, shapes and types llama.cpp's loader requires, and every value bit for bit.
// node-llama-cpp 3.22 cannot apply a control vector to a context (it has no binding for
// llama.cpp's llama_set_adapter_cvec), so llama.cpp's loader is not exercised here; what is, in
// llama.cpp, is where the vector lands: llama.cpp adds direction.{l} right after block l's MLP
// output joins the residual stream (build_cvec(cur, il) in each model's graph), which is where a
// bias on block l's MLP output lands too, and that moves llama.cpp's logits as adding the vector
// to blocks.{l}.hook_resid_post moves Lantern's. GgufBackend's controlVectors rest on that: they
// are baked into ffn_down's bias (src/backends/gguf-steer.ts), checked here per architecture
// against Lantern's own hooks, on F32 and on Q8_0 files.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readGgufFileInfo } from 'node-llama-cpp';
import { readControlVector, writeControlVector } from '../src/backends/control-vector.js';
import { exportGguf } from '../src/backends/gguf-export.js';
import { architectureFor } from '../src/models/architectures/index.js';
import { normalSampler, randomWeights, writeRandomModel } from '../src/models/random.js';
import { GgufBackend } from '../src/backends/gguf.js';
import { checkGgufFile, type GgufInfo } from '../src/backends/gguf-check.js';
import { steeredGgufCopy } from '../src/backends/gguf-steer.js';
import { openBackend } from '../src/backends/index.js';
import { Tensor } from '../src/engine/tensor.js';
import { loadModel } from '../src/models/load.js';
import { float16ToFloat32, float32ToFloat16, writeSafetensors } from '../src/models/safetensors.js';
import { rewriteGguf } from '../src/backends/gguf-write.js';
import { toHfTensors } from '../src/models/weights.js';
import { expectOneLineError, runLantern } from './helpers.js';

let tmp: string;
beforeAll(() => (tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'lantern-cvec-'))));
afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));

function randomVector(n: number, seed: number): Float32Array {
  const normal = normalSampler(seed);
  return Float32Array.from({ length: n }, () => normal());
}

describe('control vector files', () => {
  it("node-llama-cpp's GGUF reader finds controlvector metadata and direction.{l} tensors (F32, [d_model]) holding exactly the values written", async () => {
    const file = path.join(tmp, 'steer.gguf');
    const directions = new Map([[3, randomVector(64, 1)], [1, randomVector(64, 2)]]);
    writeControlVector(file, { modelHint: 'llama', directions }, { nLayers: 4, dModel: 64 });
    const info = await readGgufFileInfo(file, { logWarnings: false });
    const meta = info.metadata as unknown as { general: { architecture: string; alignment: number }; controlvector: { model_hint: string; layer_count: number } };
    expect(meta.general.architecture).toBe('controlvector');
    expect(meta.controlvector).toEqual({ model_hint: 'llama', layer_count: 2 });
    const tensors = info.tensorInfo!;
    expect(tensors.map((t) => t.name)).toEqual(['direction.1', 'direction.3']);
    const bytes = fs.readFileSync(file);
    for (const t of tensors) {
      expect(t.dimensions.map(Number)).toEqual([64]);
      expect(t.ggmlType).toBe(0); // GGML_TYPE_F32: llama.cpp's loader refuses any other
      const at = info.infoEndOffset! + Number(t.offset);
      const values = new Float32Array(bytes.buffer.slice(bytes.byteOffset + at, bytes.byteOffset + at + 64 * 4));
      expect(values).toEqual(directions.get(Number(t.name.split('.')[1])));
    }
    // And Lantern's reader gives back the same.
    const back = readControlVector(file);
    expect(back.modelHint).toBe('llama');
    expect([...back.directions.keys()].sort()).toEqual([1, 3]);
    for (const [l, v] of directions) expect(back.directions.get(l)).toEqual(v);
  });

  it("what llama.cpp could not apply is refused: block 0, blocks past the model's, other widths, non-finite values", () => {
    const f = path.join(tmp, 'bad.gguf');
    const v = randomVector(64, 3);
    const write = (directions: Map<number, Float32Array>) => () => writeControlVector(f, { modelHint: 'llama', directions }, { nLayers: 4, dModel: 64 });
    expect(write(new Map([[0, v]]))).toThrow(/llama\.cpp adds control vectors to the outputs of blocks 1 and up; block 0 cannot be steered \(llama\.cpp never steers the output of block 0\)/);
    expect(write(new Map([[4, v]]))).toThrow(/block 4 is past the model's last block \(3\)/);
    expect(write(new Map([[1, randomVector(32, 1)]]))).toThrow(/the directions have 32 values; the model's residual stream has 64/);
    expect(write(new Map([[1, v], [2, randomVector(63, 1)]]))).toThrow(/the direction for block 2 has 63 values, the others 64/);
    expect(write(new Map([[2, Float32Array.from(v, (x, i) => (i === 5 ? NaN : x))]]))).toThrow(/the direction for block 2 has a non-finite value \(NaN\) at index 5/);
    expect(write(new Map())).toThrow(/at least one direction/);
  });

  it('a model GGUF is not a control vector', () => {
    const dir = path.join(tmp, 'tiny');
    writeRandomModel(dir, architectureFor('llama').presets.tiny, { seed: 1 });
    const model = path.join(tmp, 'tiny.gguf');
    exportGguf(dir, model);
    expect(() => readControlVector(model)).toThrow(/tiny\.gguf is not a control vector \(its general\.architecture is "llama", not "controlvector"\)/);
    expect(() => readControlVector(path.join(tmp, 'none.gguf'))).toThrow(/no control vector file at/);
  });
});

describe('lantern export-control-vector', () => {
  it('writes directions from JSON for a model, checked against its blocks and width; mistakes are one-line errors', async () => {
    const dir = path.join(tmp, 'cli-model');
    writeRandomModel(dir, architectureFor('qwen2').presets.tiny, { seed: 1 });
    const v = Array.from(randomVector(64, 4));
    const json = path.join(tmp, 'dirs.json');
    fs.writeFileSync(json, JSON.stringify({ 'blocks.1.hook_resid_post': v }));
    const out = path.join(tmp, 'cli.gguf');
    const r = await runLantern(['export-control-vector', '--model', dir, '--directions', json, '--out', out], tmp);
    expect(r.stderr).toBe('');
    expect(r.stdout.trim()).toBe(`wrote 1 direction (blocks 1; ${fs.statSync(out).size} bytes) to ${out}`);
    const back = readControlVector(out);
    expect(back.modelHint).toBe('qwen2');
    expect(back.directions.get(1)).toEqual(Float32Array.from(v));

    fs.writeFileSync(json, JSON.stringify({ 'blocks.1.hook_mlp_out': v }));
    expectOneLineError(await runLantern(['export-control-vector', '--model', dir, '--directions', json, '--out', out], tmp), /'blocks\.1\.hook_mlp_out' is not blocks\.\{l\}\.hook_resid_post/);
    fs.writeFileSync(json, JSON.stringify({ 'blocks.2.hook_resid_post': v }));
    expectOneLineError(await runLantern(['export-control-vector', '--model', dir, '--directions', json, '--out', out], tmp), /block 2 is past the model's last block \(1\)/);
  }, 60_000);
});

describe('where llama.cpp adds direction.{l}', () => {
  it("a vector after block 1's MLP moves llama.cpp's logits as adding it to blocks.1.hook_resid_post moves Lantern's (within 5e-3)", async () => {
    const cfg = { ...architectureFor('llama').presets.tiny, nLayers: 3 };
    const v = Float32Array.from(randomVector(cfg.dModel, 5), (x) => 0.5 * x);
    // The same weights with MLP biases that are zero except block 1's output bias, v.
    const plain = path.join(tmp, 'steer-plain');
    writeRandomModel(plain, cfg, { seed: 9, matrixStd: 0.06 });
    const biasedCfg = { ...cfg, mlpBias: true };
    const weights = randomWeights(cfg, 9, { matrixStd: 0.06 });
    weights['blocks.1.mlp.b_out'] = v;
    for (let l = 0; l < cfg.nLayers; l++) {
      weights[`blocks.${l}.mlp.b_gate_up`] = new Float32Array(2 * cfg.dMlp);
      weights[`blocks.${l}.mlp.b_out`] ??= new Float32Array(cfg.dModel);
    }
    const biased = path.join(tmp, 'steer-biased');
    writeRandomModel(biased, biasedCfg, { seed: 9 });
    writeSafetensors(path.join(biased, 'model.safetensors'), toHfTensors(biasedCfg, weights), { format: 'pt' });
    const file = path.join(tmp, 'steer-biased.gguf');
    exportGguf(biased, file, { dtype: 'f32' });

    const model = await loadModel(plain);
    const gguf = (await openBackend(`gguf:${file}`, { threads: 1 })) as GgufBackend;
    try {
      const prompt = [464, 318, 257, 286, 262, 290, 11, 13];
      const V = cfg.dVocab;
      const steered = (await model.runWithHooks([prompt], { interventions: [{ hook: 'blocks.1.hook_resid_post', op: 'add', value: Tensor.f32(v, [cfg.dModel]) }] })).logits.f32;
      const unsteered = (await model.run([prompt])).f32;
      let worst = 0;
      let moved = 0;
      for (const n of [1, 4, prompt.length]) {
        const theirs = await gguf.nextTokenLogits(prompt.slice(0, n));
        for (let i = 0; i < V; i++) {
          worst = Math.max(worst, Math.abs(steered[(n - 1) * V + i] - theirs[i]));
          moved = Math.max(moved, Math.abs(steered[(n - 1) * V + i] - unsteered[(n - 1) * V + i]));
        }
      }
      expect(moved).toBeGreaterThan(0.1);
      expect(worst).toBeLessThan(5e-3);
    } finally {
      await gguf.close();
      await model.executor.dropWeights(model.weights);
    }
  }, 120_000);
});

// GgufBackend's controlVectors: llama.cpp runs a copy of the model with Σ strength × direction.{l}
// added to blk.{l}.ffn_down.bias (src/backends/gguf-steer.ts); its logits must be Lantern's with
// the same vectors added to blocks.{l}.hook_resid_post, computed by Lantern's own hooks.
describe('control vectors applied through the GGUF backend', () => {
  const steerable: [label: string, modelType: string, extra: Record<string, unknown>][] = [
    ['llama (no ffn_down bias: one is added)', 'llama', {}],
    ['llama with MLP biases (added to)', 'llama', { mlpBias: true }],
    ['gpt2', 'gpt2', {}],
    ['gptneox', 'gpt_neox', {}],
  ];
  const prompt = [464, 318, 257, 286, 262, 290, 11, 13];

  for (const [label, modelType, extra] of steerable) {
    it(`${label}: llama.cpp's logits with vectors at strengths s equal Lantern's with s × vector added to blocks.{l}.hook_resid_post (within 5e-3); two vectors sum; strength 0 is unsteered`, async () => {
      const cfg = { ...architectureFor(modelType).presets.tiny, nLayers: 3, ...extra };
      const dir = path.join(tmp, `steer-${modelType}-${Object.keys(extra).join('')}`);
      writeRandomModel(dir, cfg, { seed: 11, matrixStd: 0.06 });
      const file = `${dir}.gguf`;
      exportGguf(dir, file, { dtype: 'f32' });
      const d = cfg.dModel;
      const a1 = Float32Array.from(randomVector(d, 21), (x) => 0.4 * x);
      const a2 = Float32Array.from(randomVector(d, 22), (x) => 0.4 * x);
      const b2 = Float32Array.from(randomVector(d, 23), (x) => 0.4 * x);
      const cvA = path.join(tmp, `${modelType}-a.gguf`);
      const cvB = path.join(tmp, `${modelType}-b.gguf`);
      writeControlVector(cvA, { modelHint: modelType, directions: new Map([[1, a1], [2, a2]]) });
      writeControlVector(cvB, { modelHint: modelType, directions: new Map([[2, b2]]) });

      const model = await loadModel(dir);
      const V = cfg.dVocab;
      const lantern = async (adds: Map<number, Float32Array>) => {
        const interventions = [...adds].map(([l, v]) => ({ hook: `blocks.${l}.hook_resid_post`, op: 'add' as const, value: Tensor.f32(v, [d]) }));
        return (await model.runWithHooks([prompt], { interventions })).logits.f32;
      };
      const scaled = (v: Float32Array, s: number) => Float32Array.from(v, (x) => s * x);
      const plus = (u: Float32Array, v: Float32Array) => Float32Array.from(u, (x, i) => x + v[i]);
      const cases: [Parameters<typeof GgufBackend.open>[1] & object, Map<number, Float32Array>][] = [
        [{ controlVectors: [{ path: cvA, strength: 0.8 }] }, new Map([[1, scaled(a1, 0.8)], [2, scaled(a2, 0.8)]])],
        [{ controlVectors: [{ path: cvA, strength: 0.8 }, { path: cvB, strength: -1.5 }] }, new Map([[1, scaled(a1, 0.8)], [2, plus(scaled(a2, 0.8), scaled(b2, -1.5))]])],
        [{ controlVectors: [{ path: cvA, strength: 0 }] }, new Map()],
      ];
      const unsteered = await lantern(new Map());
      try {
        for (const [options, adds] of cases) {
          const expected = await lantern(adds);
          const gguf = await GgufBackend.open(file, { ...options, threads: 1, isolate: false, steeredCacheDir: path.join(tmp, 'steered') });
          let worst = 0;
          let moved = 0;
          try {
            expect(gguf.loadedFile).not.toBe(gguf.file);
            for (const n of [1, 4, prompt.length]) {
              const theirs = await gguf.nextTokenLogits(prompt.slice(0, n));
              for (let i = 0; i < V; i++) {
                worst = Math.max(worst, Math.abs(expected[(n - 1) * V + i] - theirs[i]));
                moved = Math.max(moved, Math.abs(expected[(n - 1) * V + i] - unsteered[(n - 1) * V + i]));
              }
            }
          } finally {
            await gguf.close();
          }
          expect(worst).toBeLessThan(5e-3);
          if (adds.size) expect(moved).toBeGreaterThan(0.1);
          else expect(moved).toBe(0);
        }
      } finally {
        await model.executor.dropWeights(model.weights);
      }
    }, 180_000);
  }

  it('the steered copy keeps every other tensor byte for byte (F16 matrices included), aligned; the same steering reuses it', () => {
    const dir = path.join(tmp, 'copy-llama');
    const cfg = { ...architectureFor('llama').presets.tiny, nLayers: 3 };
    writeRandomModel(dir, cfg, { seed: 3 });
    const file = `${dir}.gguf`;
    exportGguf(dir, file, { dtype: 'f16' });
    const cv = path.join(tmp, 'copy-cv.gguf');
    const v = randomVector(cfg.dModel, 7);
    writeControlVector(cv, { modelHint: 'llama', directions: new Map([[2, v]]) });
    const cache = path.join(tmp, 'copy-cache');
    const info = checkGgufFile(file);
    const out = steeredGgufCopy(file, info, [{ path: cv, strength: 2 }], cache);
    const steered = checkGgufFile(out);
    const src = fs.readFileSync(file);
    const dst = fs.readFileSync(out);
    const bytesOf = (buf: Buffer, i: GgufInfo, name: string) => {
      const t = i.tensors.find((x) => x.name === name)!;
      expect((i.dataOffset + t.offset) % 32).toBe(0);
      return buf.subarray(i.dataOffset + t.offset, i.dataOffset + t.offset + t.bytes);
    };
    expect(steered.tensors.map((t) => t.name)).toEqual([...info.tensors.map((t) => t.name), 'blk.2.ffn_down.bias']);
    for (const t of info.tensors) {
      expect(steered.tensors.find((x) => x.name === t.name)!.type).toBe(t.type);
      expect(bytesOf(dst, steered, t.name).equals(bytesOf(src, info, t.name))).toBe(true);
    }
    expect(info.tensors.some((t) => t.type === 1)).toBe(true); // F16 matrices were copied
    const bias = bytesOf(dst, steered, 'blk.2.ffn_down.bias');
    expect(new Float32Array(bias.buffer.slice(bias.byteOffset, bias.byteOffset + bias.length))).toEqual(Float32Array.from(v, (x) => 2 * x));
    expect([...steered.metadata.keys()]).toEqual([...info.metadata.keys()]);
    const mtime = fs.statSync(out).mtimeMs;
    expect(steeredGgufCopy(file, info, [{ path: cv, strength: 2 }], cache)).toBe(out);
    expect(fs.statSync(out).mtimeMs).toBe(mtime);
    expect(steeredGgufCopy(file, info, [{ path: cv, strength: 3 }], cache)).not.toBe(out);
  });

  it('an architecture without an equivalent bias, and vectors for other blocks or widths, are one-line errors', async () => {
    const cv = path.join(tmp, 'err-cv.gguf');
    writeControlVector(cv, { modelHint: 'gemma2', directions: new Map([[1, randomVector(64, 8)]]) });
    const open = (file: string, strength = 1, p = cv) => GgufBackend.open(file, { controlVectors: [{ path: p, strength }], isolate: false, steeredCacheDir: path.join(tmp, 'err-cache') });
    for (const [modelType, why] of [
      ['gemma2', /cannot apply a control vector to a gemma2 model: llama\.cpp's gemma2 graph normalizes the MLP output \(post_ffw_norm\) after ffn_down/],
      ['qwen2', /cannot apply a control vector to a qwen2 model: llama\.cpp's qwen2 graph loads no ffn_down bias/],
    ] as const) {
      const dir = path.join(tmp, `err-${modelType}`);
      // llama.cpp's gemma2 scales attention by 1/sqrt(head_dim) only, so export-gguf needs that scale.
      writeRandomModel(dir, { ...architectureFor(modelType).presets.tiny, ...(modelType === 'gemma2' ? { attnScale: 16 ** -0.5 } : {}) }, { seed: 1 });
      exportGguf(dir, `${dir}.gguf`);
      await expect(open(`${dir}.gguf`)).rejects.toThrow(why);
    }
    const dir = path.join(tmp, 'err-llama');
    const cfg = architectureFor('llama').presets.tiny; // 2 blocks, width 64
    writeRandomModel(dir, cfg, { seed: 1 });
    const file = `${dir}.gguf`;
    exportGguf(dir, file);
    const far = path.join(tmp, 'err-far.gguf');
    writeControlVector(far, { modelHint: 'llama', directions: new Map([[2, randomVector(64, 9)]]) });
    await expect(open(file, 1, far)).rejects.toThrow(/control vector .*err-far\.gguf steers block 2, past the model's last block \(1\)/);
    const wide = path.join(tmp, 'err-wide.gguf');
    writeControlVector(wide, { modelHint: 'llama', directions: new Map([[1, randomVector(96, 9)]]) });
    await expect(open(file, 1, wide)).rejects.toThrow(/control vector .*err-wide\.gguf has 96 values per direction; the model's residual stream has 64/);
    await expect(open(file, NaN)).rejects.toThrow(/strength of control vector .* must be a finite number, got NaN/);
    await expect(open(file, 1, file)).rejects.toThrow(/is not a control vector/);
    await expect(openBackend('lantern', { controlVectors: [{ path: cv }] })).rejects.toThrow(/control vectors apply only to a gguf:<file> backend, not 'lantern'/);
    for (const e of await Promise.allSettled([open(`${path.join(tmp, 'err-gemma2')}.gguf`), open(file, 1, far)])) {
      expect(e.status).toBe('rejected');
      expect(String((e as PromiseRejectedResult).reason.message)).not.toMatch(/\n/);
    }
  }, 60_000);
});

describe('--control-vector on the CLI', () => {
  it("lantern attribute --backend gguf:… --control-vector a:s --control-vector b:t scores as Lantern does with s·a + t·b added (within 5e-3); misuse is a one-line error", async () => {
    const cfg = { ...architectureFor('gpt2').presets.tiny, nLayers: 3 };
    const dir = path.join(tmp, 'cli-steer');
    writeRandomModel(dir, cfg, { seed: 5, matrixStd: 0.06 });
    const file = `${dir}.gguf`;
    exportGguf(dir, file, { dtype: 'f32' });
    const a = Float32Array.from(randomVector(cfg.dModel, 31), (x) => 2 * x);
    const b = Float32Array.from(randomVector(cfg.dModel, 32), (x) => 2 * x);
    const cvA = path.join(tmp, 'cli-a.gguf');
    const cvB = path.join(tmp, 'cli-b.gguf');
    writeControlVector(cvA, { modelHint: 'gpt2', directions: new Map([[1, a]]) });
    writeControlVector(cvB, { modelHint: 'gpt2', directions: new Map([[2, b]]) });

    const text = 'The jury said that the city';
    const model = await loadModel(dir);
    const ids = model.toTokens(text);
    const target = model.toTokens(' was', { prependBos: false })[0];
    const V = cfg.dVocab;
    const logprob = (logits: Float32Array) => {
      const row = logits.subarray((ids.length - 1) * V, ids.length * V);
      const max = Math.max(...row);
      return row[target] - max - Math.log(row.reduce((s, x) => s + Math.exp(x - max), 0));
    };
    const interventions = [
      { hook: 'blocks.1.hook_resid_post', op: 'add' as const, value: Tensor.f32(Float32Array.from(a, (x) => 2 * x), [cfg.dModel]) },
      { hook: 'blocks.2.hook_resid_post', op: 'add' as const, value: Tensor.f32(Float32Array.from(b, (x) => -0.5 * x), [cfg.dModel]) },
    ];
    const expected = logprob((await model.runWithHooks([ids], { interventions })).logits.f32);
    const plain = logprob((await model.run([ids])).f32);
    await model.executor.dropWeights(model.weights);
    expect(Math.abs(expected - plain)).toBeGreaterThan(0.1);

    const r = await runLantern(['attribute', '--backend', `gguf:${file}`, '--control-vector', `${cvA}:2`, '--control-vector', `${cvB}:-0.5`, '--text', text, '--target', ' was'], tmp);
    expect(r.stderr).toBe('');
    const got = Number(/logprob\(" was"\) = (\S+)/.exec(r.stdout)?.[1]);
    expect(Math.abs(got - expected)).toBeLessThan(5e-3);
    expect(r.stdout).toContain(`+cvec ${cvA}:2 +cvec ${cvB}:-0.5`);
    expect(fs.readdirSync(path.join(tmp, 'lantern-home', 'steered-gguf')).filter((f) => f.endsWith('.gguf'))).toHaveLength(1);

    expectOneLineError(await runLantern(['attribute', '--control-vector', cvA, '--text', text, '--target', ' was'], tmp), /--control-vector applies only with --backend gguf:<file\.gguf>/);
    expectOneLineError(await runLantern(['attribute', '--backend', 'lantern', '--control-vector', cvA, '--text', text, '--target', ' was'], tmp), /--control-vector applies only to a gguf:<file\.gguf> backend, not 'lantern:/);
    expectOneLineError(await runLantern(['explain', '--method', 'smile', '--backend', 'lantern', '--control-vector', cvA, '--text', text], tmp), /--control-vector applies only to a gguf:<file\.gguf> backend, not 'lantern'/);
    expectOneLineError(await runLantern(['attribute', '--backend', `gguf:${file}`, '--control-vector', `${cvA}:1e999`, '--text', text, '--target', ' was'], tmp), /--control-vector strength must be a finite number, got '1e999'/);
  }, 180_000);
});

/** ggml's Q8_0 (quantize_row_q8_0_ref): per 32 values, an F16 scale amax / 127 and 32 int8. */
function encodeQ8_0(x: Float32Array): Uint8Array {
  const out = Buffer.alloc((x.length / 32) * 34);
  for (let b = 0; b < x.length / 32; b++) {
    const block = x.subarray(32 * b, 32 * b + 32);
    const d = Math.max(...block.map(Math.abs)) / 127;
    const inv = d ? 1 / d : 0;
    out.writeUInt16LE(float32ToFloat16(d), 34 * b);
    for (let i = 0; i < 32; i++) out.writeInt8(Math.round(block[i] * inv), 34 * b + 2 + i);
  }
  return out;
}

/** What llama.cpp computes with from a Q8_0 tensor: each value quantized and scaled back. */
function roundTripQ8_0(x: Float32Array): Float32Array {
  const q = Buffer.from(encodeQ8_0(x));
  return Float32Array.from(x, (_, i) => q.readInt8(34 * Math.floor(i / 32) + 2 + (i % 32)) * float16ToFloat32(q.readUInt16LE(34 * Math.floor(i / 32))));
}

describe('a quantized (Q8_0) model', () => {
  it("steered through the GGUF backend (quantized tensors copied as they are): llama.cpp's logits are as close to Lantern's on the same weights with s × vector added as the unsteered file's are to Lantern's unsteered, and the vector moves them 20x more", async () => {
    const cfg = { ...architectureFor('llama').presets.tiny, nLayers: 3 };
    // Lantern's copy holds each matrix as Q8_0 gives it back, so both sides compute with the same weights.
    const hf = toHfTensors(cfg, randomWeights(cfg, 13, { matrixStd: 0.06 }));
    for (const t of Object.values(hf)) if (t.shape.length === 2 && t.shape[1] % 32 === 0) t.data = roundTripQ8_0(Float32Array.from(t.data as Float32Array));
    const dir = path.join(tmp, 'q8');
    writeRandomModel(dir, cfg, { seed: 13 });
    writeSafetensors(path.join(dir, 'model.safetensors'), hf, { format: 'pt' });
    const f32 = `${dir}-f32.gguf`;
    exportGguf(dir, f32, { dtype: 'f32' });
    const info = checkGgufFile(f32);
    const bytes = fs.readFileSync(f32);
    const quantized = new Map(info.tensors.filter((t) => t.dims.length === 2 && t.dims[0] % 32 === 0).map((t) => {
      const at = info.dataOffset + t.offset;
      return [t.name, { dims: t.dims, type: 8, data: encodeQ8_0(new Float32Array(bytes.buffer.slice(bytes.byteOffset + at, bytes.byteOffset + at + t.bytes))) }];
    }));
    expect(quantized.size).toBe(2 + 7 * cfg.nLayers); // token_embd, output, and each block's q, k, v, o, gate, up, down
    const q8 = `${dir}-q8_0.gguf`;
    rewriteGguf(f32, info, q8, quantized);

    const v = Float32Array.from(randomVector(cfg.dModel, 41), (x) => 0.5 * x);
    const cv = path.join(tmp, 'q8-cv.gguf');
    writeControlVector(cv, { modelHint: 'llama', directions: new Map([[1, v]]) });
    const model = await loadModel(dir);
    const open = (o: Parameters<typeof GgufBackend.open>[1]) => GgufBackend.open(q8, { ...o, threads: 1, isolate: false, steeredCacheDir: path.join(tmp, 'q8-steered') });
    const V = cfg.dVocab;
    // Largest |difference| over the vocabulary at three prompt lengths, and the largest effect of the vector.
    const compare = async (gguf: GgufBackend, expected: Float32Array, unsteered: Float32Array) => {
      let worst = 0;
      let moved = 0;
      for (const n of [1, 4, prompt().length]) {
        const theirs = await gguf.nextTokenLogits(prompt().slice(0, n));
        for (let i = 0; i < V; i++) {
          worst = Math.max(worst, Math.abs(expected[(n - 1) * V + i] - theirs[i]));
          moved = Math.max(moved, Math.abs(expected[(n - 1) * V + i] - unsteered[(n - 1) * V + i]));
        }
      }
      return { worst, moved };
    };
    const value = Tensor.f32(Float32Array.from(v, (x) => 1.5 * x), [cfg.dModel]);
    const expected = (await model.runWithHooks([prompt()], { interventions: [{ hook: 'blocks.1.hook_resid_post', op: 'add', value }] })).logits.f32;
    const unsteered = (await model.run([prompt()])).f32;
    await model.executor.dropWeights(model.weights);
    const plain = await open({});
    // llama.cpp multiplies Q8_0 weights by activations it quantizes to Q8_0 too, so even the
    // unsteered file is not within 5e-3 of Lantern: that difference is the yardstick here.
    const baseline = await compare(plain, unsteered, unsteered);
    await plain.close();
    const gguf = await open({ controlVectors: [{ path: cv, strength: 1.5 }] });
    try {
      expect(checkGgufFile(gguf.loadedFile).tensors.filter((t) => t.type === 8)).toHaveLength(quantized.size);
      const steered = await compare(gguf, expected, unsteered);
      expect(steered.moved).toBeGreaterThan(20 * Math.max(baseline.worst, 5e-3));
      expect(steered.worst).toBeLessThan(2 * Math.max(baseline.worst, 5e-3));
    } finally {
      await gguf.close();
    }
  }, 120_000);
});

function prompt(): number[] {
  return [464, 318, 257, 286, 262, 290, 11, 13];
}
