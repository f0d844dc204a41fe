// loadModel end to end: a Hugging Face folder (F32, F16, BF16, sharded, `transformer.`-prefixed,
// untied lm_head) or a Hub id gives the logits of the same weights built in memory, and every kind
// of bad input fails with a one-line LanternError that names the problem.
//
// The references are independent of the loader: checkpoints are written here with hand-written
// Hugging Face GPT-2 names (not hfName), half-precision rounding is redone here from its
// definition, and the untied unembedding is multiplied out in plain JavaScript.
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Tensor } from '../src/engine/tensor.js';
import { LanternError } from '../src/errors.js';
import type { ModelConfig } from '../src/models/config.js';
import { weightShapes } from '../src/models/forward.js';
import { HookedTransformer } from '../src/models/hooked.js';
import { loadModel } from '../src/models/load.js';
import { normalSampler, randomWeights, TINY_GPT2, writeRandomModel } from '../src/models/random.js';
import {
  bfloat16ToFloat32,
  float16ToFloat32,
  float32ToBfloat16,
  float32ToFloat16,
  writeSafetensors,
  type WritableTensor,
} from '../src/models/safetensors.js';
import { maxAbsDiff, relError, seededModel } from './helpers.js';

const cfg = TINY_GPT2; // 2 layers, d_model 64, 4 heads, d_mlp 256, ctx 64, vocab 1000
const SEED = 7;
/** 12 token ids spread over the vocabulary, first and last ids included. */
const TOKENS = [0, 17, 999, 256, 500, 3, 3, 871, 42, 640, 128, 998];

/** The Hugging Face GPT-2 name and shape of every Lantern weight, written out from GPT2LMHeadModel's modules. */
function hfTensors(c: ModelConfig): { lantern: string; hf: string; shape: number[] }[] {
  const { dModel: D, dMlp: F, dVocab: V, nCtx: P } = c;
  const out = [
    { lantern: 'embed.W_E', hf: 'wte.weight', shape: [V, D] },
    { lantern: 'pos_embed.W_pos', hf: 'wpe.weight', shape: [P, D] },
  ];
  for (let l = 0; l < c.nLayers; l++) {
    const [lt, hf] = [`blocks.${l}`, `h.${l}`];
    out.push(
      { lantern: `${lt}.ln1.w`, hf: `${hf}.ln_1.weight`, shape: [D] },
      { lantern: `${lt}.ln1.b`, hf: `${hf}.ln_1.bias`, shape: [D] },
      { lantern: `${lt}.attn.W_QKV`, hf: `${hf}.attn.c_attn.weight`, shape: [D, 3 * D] },
      { lantern: `${lt}.attn.b_QKV`, hf: `${hf}.attn.c_attn.bias`, shape: [3 * D] },
      { lantern: `${lt}.attn.W_O`, hf: `${hf}.attn.c_proj.weight`, shape: [D, D] },
      { lantern: `${lt}.attn.b_O`, hf: `${hf}.attn.c_proj.bias`, shape: [D] },
      { lantern: `${lt}.ln2.w`, hf: `${hf}.ln_2.weight`, shape: [D] },
      { lantern: `${lt}.ln2.b`, hf: `${hf}.ln_2.bias`, shape: [D] },
      { lantern: `${lt}.mlp.W_in`, hf: `${hf}.mlp.c_fc.weight`, shape: [D, F] },
      { lantern: `${lt}.mlp.b_in`, hf: `${hf}.mlp.c_fc.bias`, shape: [F] },
      { lantern: `${lt}.mlp.W_out`, hf: `${hf}.mlp.c_proj.weight`, shape: [F, D] },
      { lantern: `${lt}.mlp.b_out`, hf: `${hf}.mlp.c_proj.bias`, shape: [D] },
    );
  }
  out.push({ lantern: 'ln_final.w', hf: 'ln_f.weight', shape: [D] }, { lantern: 'ln_final.b', hf: 'ln_f.bias', shape: [D] });
  return out;
}

/** config.json as transformers writes it for GPT-2 (n_inner null = 4 * n_embd). */
function hfConfig(c: ModelConfig, extra: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    activation_function: 'gelu_new', architectures: ['GPT2LMHeadModel'], bos_token_id: 50256, eos_token_id: 50256,
    layer_norm_epsilon: 1e-5, model_type: 'gpt2', n_ctx: c.nCtx, n_embd: c.dModel, n_head: c.nHeads,
    n_inner: null, n_layer: c.nLayers, n_positions: c.nCtx, vocab_size: c.dVocab, ...extra,
  };
}

let tmp: string;
const loaded: HookedTransformer[] = [];

async function load(source: string): Promise<HookedTransformer> {
  const m = await loadModel(source, { progress: false });
  loaded.push(m);
  return m;
}

async function inMemory(c: ModelConfig, weights: Record<string, Float32Array>): Promise<HookedTransformer> {
  const shapes = weightShapes(c);
  const m = await HookedTransformer.create(c, Object.fromEntries(Object.entries(weights).map(([n, d]) => [n, Tensor.f32(d, shapes[n])])), undefined, 'memory');
  loaded.push(m);
  return m;
}

async function seeded(seed: number): Promise<HookedTransformer> {
  const m = await seededModel(cfg, seed);
  loaded.push(m);
  return m;
}

function expectIdentical(a: Tensor, b: Tensor): void {
  expect(a.shape).toEqual(b.shape);
  expect(maxAbsDiff(a, b)).toBe(0);
}

function folder(name: string): string {
  const dir = path.join(tmp, name);
  fs.mkdirSync(dir, { recursive: true });
  return dir;
}

beforeAll(() => {
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'lantern-load-'));
});

afterAll(async () => {
  for (const m of loaded) await m.executor.dropWeights(m.weights);
  fs.rmSync(tmp, { recursive: true, force: true });
});

// ---------------------------------------------------------------------------------------------
// Half precision, from the definition: keep `mantBits` fraction bits, round to nearest, ties to even.

const f64 = new DataView(new ArrayBuffer(8));
/** floor(log2 |x|) for a nonzero finite x, read from the float64 exponent field. */
function exponentOf(x: number): number {
  f64.setFloat64(0, x);
  return ((f64.getUint16(0) >>> 4) & 0x7ff) - 1023;
}

function roundTo(x: number, mantBits: number, minNormalExp: number): number {
  if (x === 0) return x;
  const ulp = 2 ** (Math.max(exponentOf(x), minNormalExp) - mantBits); // subnormals share the smallest normal's spacing
  const q = x / ulp; // exact: ulp is a power of two
  const r = Math.abs(q - Math.trunc(q)) === 0.5 ? 2 * Math.round(q / 2) : Math.round(q);
  return r * ulp;
}

const HALF = {
  F16: { round: (x: number) => roundTo(x, 10, -14), lib: (x: number) => float16ToFloat32(float32ToFloat16(x)) },
  BF16: { round: (x: number) => roundTo(x, 7, -126), lib: (x: number) => bfloat16ToFloat32(float32ToBfloat16(x)) },
};

describe('loadModel from a folder', () => {
  it('F32: a written random model gives exactly the logits of the same seeded weights built in memory', async () => {
    const dir = folder('f32');
    writeRandomModel(dir, cfg, { seed: SEED });
    const model = await load(dir);
    expect(model.cfg).toEqual(cfg);
    expect(model.tokenizer).toBeDefined();
    const ref = await seeded(SEED);
    const logits = await model.run([TOKENS]);
    expect(logits.shape).toEqual([1, TOKENS.length, cfg.dVocab]);
    expectIdentical(logits, await ref.run([TOKENS]));
    // The comparison can tell weights apart: another seed gives other logits.
    expect(maxAbsDiff(logits, await (await seeded(SEED + 1)).run([TOKENS]))).toBeGreaterThan(1e-3);
    // Text goes through the folder's tokenizer.json.
    const text = 'The quick brown fox';
    expectIdentical(await model.run(text), await ref.run([model.toTokens(text)]));
  });

  for (const dtype of ['F16', 'BF16'] as const) {
    it(`${dtype}: converting on load is exact (logits equal the weights rounded to ${dtype} in memory)`, async () => {
      const dir = folder(dtype.toLowerCase());
      writeRandomModel(dir, cfg, { seed: SEED, dtype });
      const { round, lib } = HALF[dtype];
      let changed = 0;
      let total = 0;
      const rounded: Record<string, Float32Array> = {};
      for (const [name, data] of Object.entries(randomWeights(cfg, SEED))) {
        const r = Float32Array.from(data, round);
        for (let i = 0; i < data.length; i++) {
          // The writer's rounding agrees with the definition, so the file holds exactly `r`.
          if (lib(data[i]) !== r[i]) expect.fail(`${name}[${i}]: ${dtype} rounding of ${data[i]} gave ${lib(data[i])}, expected ${r[i]}`);
          if (r[i] !== data[i]) changed++;
        }
        total += data.length;
        rounded[name] = r;
      }
      expect(changed / total).toBeGreaterThan(0.9); // the rounding really changed the weights
      const model = await load(dir);
      const logits = await model.run([TOKENS]);
      expectIdentical(logits, await (await inMemory(cfg, rounded)).run([TOKENS]));
      // ...and differs from the unrounded model, by a plausible amount for the format.
      const vsF32 = relError(logits, await (await seeded(SEED)).run([TOKENS]));
      expect(vsF32).toBeGreaterThan(0);
      expect(vsF32).toBeLessThan(dtype === 'F16' ? 1e-2 : 5e-2);
    });
  }

  it('sharded checkpoint (index + 2 shards) with the transformer. prefix gives the same logits', async () => {
    const dir = folder('sharded');
    const weights = randomWeights(cfg, SEED);
    const shards: Record<string, WritableTensor>[] = [{}, {}];
    const names = ['model-00001-of-00002.safetensors', 'model-00002-of-00002.safetensors'];
    const weightMap: Record<string, string> = {};
    let bytes = 0;
    for (const t of hfTensors(cfg)) {
      const k = t.hf.startsWith('h.1.') || t.hf.startsWith('ln_f.') ? 1 : 0; // block 1 and ln_f in shard 2
      const name = `transformer.${t.hf}`;
      shards[k][name] = { dtype: 'F32', shape: t.shape, data: weights[t.lantern] };
      weightMap[name] = names[k];
      bytes += 4 * weights[t.lantern].length;
    }
    names.forEach((n, k) => writeSafetensors(path.join(dir, n), shards[k], { format: 'pt' }));
    fs.writeFileSync(path.join(dir, 'model.safetensors.index.json'), JSON.stringify({ metadata: { total_size: bytes }, weight_map: weightMap }));
    fs.writeFileSync(path.join(dir, 'config.json'), JSON.stringify(hfConfig(cfg)));
    const model = await load(dir);
    expect(model.cfg).toEqual(cfg);
    expect(model.tokenizer).toBeUndefined();
    expectIdentical(await model.run([TOKENS]), await (await seeded(SEED)).run([TOKENS]));
  });

  it('untied model (tie_word_embeddings: false) unembeds with lm_head.weight, not wte', async () => {
    const dir = folder('untied');
    const weights = randomWeights(cfg, SEED);
    const normal = normalSampler(1234);
    const lmHead = Float32Array.from({ length: cfg.dVocab * cfg.dModel }, () => 0.05 * normal());
    const tensors: Record<string, WritableTensor> = {};
    for (const t of hfTensors(cfg)) tensors[`transformer.${t.hf}`] = { dtype: 'F32', shape: t.shape, data: weights[t.lantern] };
    tensors['lm_head.weight'] = { dtype: 'F32', shape: [cfg.dVocab, cfg.dModel], data: lmHead }; // as GPT2LMHeadModel saves it
    writeSafetensors(path.join(dir, 'model.safetensors'), tensors, { format: 'pt' });
    fs.writeFileSync(path.join(dir, 'config.json'), JSON.stringify(hfConfig(cfg, { tie_word_embeddings: false })));

    const model = await load(dir);
    expect(model.cfg.tiedUnembed).toBe(false);
    const { logits, cache } = await model.runWithCache([TOKENS], ['ln_final.hook_normalized']);
    const normalized = cache.get('ln_final.hook_normalized'); // [1, T, D]
    const [T, D, V] = [TOKENS.length, cfg.dModel, cfg.dVocab];
    // logits[t, v] = sum_d normalized[t, d] * W[v, d], in float64 in JS.
    const unembed = (W: Float32Array) => {
      const out = new Float32Array(T * V);
      for (let t = 0; t < T; t++) {
        for (let v = 0; v < V; v++) {
          let s = 0;
          for (let d = 0; d < D; d++) s += normalized.f32[t * D + d] * W[v * D + d];
          out[t * V + v] = s;
        }
      }
      return Tensor.f32(out, [1, T, V]);
    };
    expect(relError(logits, unembed(lmHead))).toBeLessThan(1e-5);
    expect(relError(logits, unembed(weights['embed.W_E']))).toBeGreaterThan(0.5); // not the tied unembedding
  });
});

// ---------------------------------------------------------------------------------------------
// A miniature Hub: /{repo}/resolve/{rev}/{file}; the weights behind an LFS redirect, like huggingface.co.

describe('loadModel from a Hub id', () => {
  const REPO = 'lantern-test/tiny-gpt2';
  const COMMIT = createHash('sha1').update(REPO).digest('hex');
  const ENV_KEYS = ['HF_ENDPOINT', 'HF_HOME', 'HF_HUB_CACHE', 'HUGGINGFACE_HUB_CACHE', 'HF_HUB_OFFLINE', 'HF_TOKEN', 'HUGGING_FACE_HUB_TOKEN', 'HF_TOKEN_PATH'];
  const saved = Object.fromEntries(ENV_KEYS.map((k) => [k, process.env[k]]));
  let server: http.Server;
  let endpoint: string;
  let repoFolder: string;
  const hits: string[] = [];

  beforeAll(async () => {
    repoFolder = folder('hub-source');
    writeRandomModel(repoFolder, cfg, { seed: SEED + 2 });
    server = http.createServer((req, res) => {
      const url = new URL(req.url!, endpoint);
      hits.push(url.pathname);
      const cdn = /^\/cdn\/(.+)$/.exec(url.pathname);
      if (cdn) {
        const bytes = fs.readFileSync(path.join(repoFolder, decodeURIComponent(cdn[1])));
        return void res.writeHead(200, { 'Content-Length': bytes.length }).end(bytes);
      }
      const m = /^\/(.+)\/resolve\/([^/]+)\/(.+)$/.exec(url.pathname);
      if (!m || m[1] !== REPO) return void res.writeHead(404, { 'X-Error-Code': 'RepoNotFound' }).end();
      const file = decodeURIComponent(m[3]);
      const p = path.join(repoFolder, file);
      if (!fs.existsSync(p)) return void res.writeHead(404, { 'X-Error-Code': 'EntryNotFound', 'X-Repo-Commit': COMMIT }).end();
      const bytes = fs.readFileSync(p);
      if (file.endsWith('.safetensors')) {
        const sha256 = createHash('sha256').update(bytes).digest('hex');
        return void res
          .writeHead(302, { Location: `${endpoint}/cdn/${encodeURIComponent(file)}`, 'X-Repo-Commit': COMMIT, 'X-Linked-Etag': `"${sha256}"`, 'X-Linked-Size': bytes.length })
          .end();
      }
      const sha1 = createHash('sha1').update(bytes).digest('hex');
      res.writeHead(200, { 'Content-Length': bytes.length, 'X-Repo-Commit': COMMIT, ETag: `W/"${sha1}"` }).end(bytes);
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    endpoint = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    for (const k of ENV_KEYS) delete process.env[k];
    process.env.HF_ENDPOINT = endpoint;
    process.env.HF_HOME = folder('hf-home');
  });

  afterAll(async () => {
    server.closeAllConnections();
    await new Promise((resolve) => server.close(resolve));
    for (const [k, v] of Object.entries(saved)) {
      if (v === undefined) delete process.env[k];
      else process.env[k] = v;
    }
  });

  it('downloads into the HF cache and gives the same logits as loading the folder', async () => {
    const fromHub = await load(REPO);
    expect(fromHub.source).toBe(REPO);
    const snapshot = path.join(process.env.HF_HOME!, 'hub', 'models--lantern-test--tiny-gpt2', 'snapshots', COMMIT);
    for (const f of ['config.json', 'tokenizer.json', 'model.safetensors']) {
      expect(fs.readFileSync(path.join(snapshot, f)).equals(fs.readFileSync(path.join(repoFolder, f)))).toBe(true);
    }
    expect(hits).toContain(`/cdn/model.safetensors`);
    const fromFolder = await load(repoFolder);
    const text = 'Hello, world! Lantern loads models.';
    expect(fromHub.toTokens(text)).toEqual(fromFolder.toTokens(text));
    expectIdentical(await fromHub.run(text), await fromFolder.run(text));

    // A second load is served from the cache without a request.
    hits.length = 0;
    expectIdentical(await (await load(REPO)).run(text), await fromFolder.run(text));
    expect(hits).toEqual([]);
  });
});

// ---------------------------------------------------------------------------------------------
// Bad input

async function rejection(p: Promise<unknown>): Promise<string> {
  const e = await p.then(
    () => undefined,
    (err: unknown) => err,
  );
  expect(e).toBeInstanceOf(LanternError);
  const message = (e as Error).message;
  expect(message).not.toContain('\n');
  return message;
}

describe('loadModel rejects bad input with a one-line LanternError', () => {
  let good: string;
  let model: HookedTransformer;

  /** A copy of the good folder, changed by `edit`. */
  function variant(name: string, edit: (dir: string) => void): string {
    const dir = path.join(tmp, `bad-${name}`);
    fs.cpSync(good, dir, { recursive: true });
    edit(dir);
    return dir;
  }
  const editConfig = (dir: string, change: (c: Record<string, unknown>) => void) => {
    const file = path.join(dir, 'config.json');
    const c = JSON.parse(fs.readFileSync(file, 'utf8'));
    change(c);
    fs.writeFileSync(file, JSON.stringify(c));
  };
  /** Rewrites model.safetensors from the seeded weights under HF names, changed by `change`. */
  const editWeights = (dir: string, change: (t: Record<string, WritableTensor>) => void) => {
    const weights = randomWeights(cfg, 1);
    const tensors: Record<string, WritableTensor> = {};
    for (const t of hfTensors(cfg)) tensors[t.hf] = { dtype: 'F32', shape: t.shape, data: weights[t.lantern] };
    change(tensors);
    writeSafetensors(path.join(dir, 'model.safetensors'), tensors);
  };

  beforeAll(async () => {
    good = folder('good');
    writeRandomModel(good, cfg, { seed: 1 });
    model = await load(good);
  });

  it('missing folder', async () => {
    const missing = path.join(tmp, 'no-such-model');
    expect(await rejection(loadModel(missing))).toBe(`No model folder at ${missing}.`);
  });

  it('folder without config.json', async () => {
    const dir = variant('noconfig', (d) => fs.rmSync(path.join(d, 'config.json')));
    expect(await rejection(loadModel(dir))).toMatch(/has no config\.json/);
  });

  it('config.json that is not JSON', async () => {
    const dir = variant('notjson', (d) => fs.writeFileSync(path.join(d, 'config.json'), '{"model_type": "gpt2", n_layer: 2'));
    expect(await rejection(loadModel(dir))).toMatch(/config\.json is not valid JSON/);
  });

  it('unknown model_type, listing the supported architectures', async () => {
    const dir = variant('bert', (d) => editConfig(d, (c) => (c.model_type = 'bert')));
    expect(await rejection(loadModel(dir))).toMatch(/config\.json: unsupported architecture model_type="bert"; supported architectures: gpt2, llama, .*gpt_neox, phi3$/);
    // A known family whose fields are missing names the field.
    const llama = variant('llama', (d) => editConfig(d, (c) => (c.model_type = 'llama')));
    expect(await rejection(loadModel(llama))).toMatch(/config\.json: 'hidden_size' is missing; a Llama config\.json needs it$/);
    const none = variant('notype', (d) => editConfig(d, (c) => delete c.model_type));
    expect(await rejection(loadModel(none))).toMatch(/config\.json: no 'model_type' given; supported architectures: gpt2, llama, /);
  });

  it('n_embd not divisible by n_head, and a missing size', async () => {
    const dir = variant('heads', (d) => editConfig(d, (c) => (c.n_head = 5)));
    expect(await rejection(loadModel(dir))).toMatch(/config\.json: n_embd=64 is not divisible by n_head=5$/);
    const noLayers = variant('nlayer', (d) => editConfig(d, (c) => delete c.n_layer));
    expect(await rejection(loadModel(noLayers))).toMatch(/config\.json: 'n_layer' is missing/);
    const noCtx = variant('nctx', (d) => editConfig(d, (c) => { delete c.n_positions; delete c.n_ctx; }));
    expect(await rejection(loadModel(noCtx))).toMatch(/'n_positions' \(or 'n_ctx'\) is missing/);
    const badVocab = variant('vocab', (d) => editConfig(d, (c) => (c.vocab_size = 10.5)));
    expect(await rejection(loadModel(badVocab))).toMatch(/'vocab_size' must be a positive integer, got 10\.5/);
  });

  it('missing weight tensor (with the nearest stored names), missing lm_head of an untied model', async () => {
    const dir = variant('missing', (d) => editWeights(d, (t) => delete t['h.1.mlp.c_fc.bias']));
    expect(await rejection(loadModel(dir))).toMatch(/weights have no tensor 'h\.1\.mlp\.c_fc\.bias' \(needed for blocks\.1\.mlp\.b_in.*nearest stored names: 'h\.0\.mlp\.c_fc\.bias'/);
    const untied = variant('nohead', (d) => editConfig(d, (c) => (c.tie_word_embeddings = false)));
    expect(await rejection(loadModel(untied))).toMatch(/tie_word_embeddings: false, but the weights have no 'lm_head\.weight' \[1000,64\]/);
  });

  it('weight with the wrong shape, or an integer dtype', async () => {
    // config.json says 128 positions; the file has GPT-2's [64, 64] position table.
    const dir = variant('shape', (d) => editConfig(d, (c) => (c.n_positions = c.n_ctx = 128)));
    expect(await rejection(loadModel(dir))).toMatch(/model\.safetensors: tensor 'wpe\.weight' has shape \[64,64\], but config\.json implies \[128,64\] \(for pos_embed\.W_pos\)$/);
    const ints = variant('int', (d) =>
      editWeights(d, (t) => (t['ln_f.bias'] = { dtype: 'I32', shape: [cfg.dModel], data: new Int32Array(cfg.dModel) })),
    );
    expect(await rejection(loadModel(ints))).toMatch(/tensor 'ln_f\.bias' is I32; model weights must be floating point/);
  });

  it('truncated or malformed safetensors', async () => {
    const truncated = variant('truncated', (d) => {
      const file = path.join(d, 'model.safetensors');
      fs.truncateSync(file, Math.floor(fs.statSync(file).size / 2));
    });
    expect(await rejection(loadModel(truncated))).toMatch(/model\.safetensors: tensor "[^"]+": data_offsets .* go beyond the end of the file/);
    const tiny = variant('stub', (d) => fs.writeFileSync(path.join(d, 'model.safetensors'), 'abc'));
    expect(await rejection(loadModel(tiny))).toMatch(/model\.safetensors: file is 3 bytes, shorter than the 8-byte header length/);
    const garbage = variant('garbage', (d) => {
      const header = Buffer.from('{"wte.weight": [1, 2');
      const prefix = Buffer.alloc(8);
      prefix.writeBigUInt64LE(BigInt(header.length));
      fs.writeFileSync(path.join(d, 'model.safetensors'), Buffer.concat([prefix, header, Buffer.alloc(64)]));
    });
    expect(await rejection(loadModel(garbage))).toMatch(/model\.safetensors: header is not JSON/);
    const none = variant('noweights', (d) => fs.rmSync(path.join(d, 'model.safetensors')));
    expect(await rejection(loadModel(none))).toMatch(/no model\.safetensors or model\.safetensors\.index\.json/);
  });

  it('prompt longer than the context', async () => {
    const long = Array.from({ length: cfg.nCtx + 1 }, (_, i) => i);
    expect(await rejection(model.run([long]))).toMatch(/65 tokens, longer than the model's context of 64/);
    await model.run([long.slice(0, cfg.nCtx)]); // exactly the context is fine
  });

  it('token id out of the vocabulary', async () => {
    expect(await rejection(model.run([[1, 2, 1000]]))).toMatch(/token id 1000 is outside the vocabulary \[0, 1000\)/);
    expect(await rejection(model.run([[-1, 2]]))).toMatch(/token id -1 is outside the vocabulary/);
  });

  it('unknown hook name, suggesting the nearest', async () => {
    const message = await rejection(model.runWithCache([[1, 2, 3]], ['blocks.0.attn.hook_patern']));
    expect(message).toMatch(/^unknown hook 'blocks\.0\.attn\.hook_patern'; did you mean 'blocks\.0\.attn\.hook_pattern'/);
    expect(await rejection(model.runWithCache([[1, 2, 3]], ['blocks.7.hook_resid_post']))).toMatch(/did you mean .*'blocks\.\d\.hook_resid_post'/);
  });
});
