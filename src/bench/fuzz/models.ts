/**
 * Model folders for the fuzzer: tiny random models of several families (gpt2, llama, qwen3,
 * gemma2, gpt_neox, phi3), written once, then mutated per input in three ways:
 *
 * - `config.json`: fields set to hostile values (0, -1, 2.5, "4", huge, NaN as text, objects,
 *   another family's model_type, rope_scaling/rope_parameters garbage, layer_types of the wrong
 *   length…), removed, or the file truncated and its bytes replaced;
 * - `model.safetensors`: the header length field, the JSON header (dtype, shape, data_offsets
 *   overlapping, out of order, past the end; entries removed or renamed; extra tensors with layer
 *   indices beyond the config; __metadata__), header bytes, weight values (NaN, ±Inf, ±1e38, the
 *   largest float), the body truncated or extended, the file replaced by a folder, /dev/zero or a FIFO;
 * - sharded checkpoints: `model.safetensors.index.json` with shards missing, weight_map entries
 *   pointing at the wrong shard, at paths outside the folder (`../x`, absolute paths), dropped or
 *   invented, the index itself garbage, a shard truncated or not a regular file.
 *
 * The oracle: `loadModel(folder)` either refuses with one clean LanternError, or accepts and then
 * `model.run([[1, 2, 3, 4, 5]])` gives logits that are all finite (or a clean LanternError). An
 * accepted model whose forward gives a non-finite logit is counted as 'accepted, non-finite
 * forward'; it is a violation when the checkpoint itself holds a non-finite weight (the loader
 * should have refused it), not when finite weights or config values overflow in the arithmetic
 * (results are checked for that where they are returned: src/finite.ts).
 */
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import fc from 'fast-check';
import { LanternError } from '../../errors.js';
import { architectureFor } from '../../models/config.js';
import type { HookedTransformer } from '../../models/hooked.js';
import { loadModel } from '../../models/load.js';
import { writeRandomModel } from '../../models/random.js';
import { isFloatDType, readFloat32, readSafetensorsHeader, writeSafetensors, WritableTensor } from '../../models/safetensors.js';
import { cleanMessage, FuzzKind, Verdict } from './harness.js';

export const FUZZ_FAMILIES = ['gpt2', 'llama', 'qwen3', 'gemma2', 'gpt_neox', 'phi3'] as const;
const DTYPES = ['F32', 'BF16', 'F16'] as const;
type DType = (typeof DTYPES)[number];

interface Base {
  family: string;
  dtype: DType;
  /** The folder holding the valid model (config.json + model.safetensors; no tokenizer.json: it has its own kind). */
  folder: string;
  config: Record<string, unknown>;
  configText: string;
  st: Buffer;
  headerLen: number;
  header: Record<string, { dtype: string; shape: number[]; data_offsets: [number, number] }>;
  /** Tensor names, sorted (the header's order). */
  names: string[];
}

/** Valid models, written once per process under one temporary folder and shared by the kinds. */
let bases: Promise<{ root: string; list: Base[] }> | undefined;
let users = 0;

function loadBases(): Promise<{ root: string; list: Base[] }> {
  bases ??= (async () => {
    const root = fs.mkdtempSync(path.join(os.tmpdir(), 'lantern-fuzz-models-'));
    const list: Base[] = [];
    for (const family of FUZZ_FAMILIES) {
      for (const dtype of DTYPES) {
        const folder = path.join(root, 'base', `${family}-${dtype}`);
        writeRandomModel(folder, architectureFor(family).presets.tiny, { seed: list.length + 1, dtype });
        fs.rmSync(path.join(folder, 'tokenizer.json'));
        const st = fs.readFileSync(path.join(folder, 'model.safetensors'));
        const headerLen = Number(st.readBigUInt64LE(0));
        const header = JSON.parse(st.subarray(8, 8 + headerLen).toString('utf8'));
        delete header.__metadata__;
        const configText = fs.readFileSync(path.join(folder, 'config.json'), 'utf8');
        list.push({ family, dtype, folder, config: JSON.parse(configText), configText, st, headerLen, header, names: Object.keys(header).sort() });
      }
    }
    return { root, list };
  })();
  return bases;
}

async function acquire(): Promise<{ root: string; list: Base[] }> {
  users++;
  return loadBases();
}

async function release(): Promise<void> {
  if (--users > 0 || !bases) return;
  const { root } = await bases;
  bases = undefined;
  fs.rmSync(root, { recursive: true, force: true });
}

// ---------------------------------------------------------------------------------------------
// The oracle every kind shares

function refusal(outcome: string, message: string): Verdict {
  const bad = cleanMessage(message);
  return bad ? { outcome, violation: bad } : { outcome };
}

/** Does any float tensor of the folder's safetensors files hold a NaN or an infinity? */
function holdsNonFinite(folder: string): boolean {
  const files: string[] = [];
  const walk = (d: string) => {
    for (const e of fs.readdirSync(d, { withFileTypes: true })) {
      const p = path.join(d, e.name);
      if (e.isDirectory()) walk(p);
      else if (e.name.endsWith('.safetensors')) files.push(p);
    }
  };
  walk(folder);
  for (const f of files) {
    try {
      if (!fs.statSync(f).isFile()) continue;
      const h = readSafetensorsHeader(f);
      for (const [name, entry] of h.tensors) {
        if (!isFloatDType(entry.dtype)) continue;
        for (const v of readFloat32(h, name)) if (!Number.isFinite(v)) return true;
      }
    } catch {
      /* a file the loader could not have used */
    }
  }
  return false;
}

/** Loads the folder, runs five tokens, checks the logits; the model is dropped afterwards. */
export async function judgeFolder(folder: string): Promise<Verdict> {
  let model: HookedTransformer;
  try {
    model = await loadModel(folder, { offline: true });
  } catch (e) {
    if (!(e instanceof LanternError)) throw e;
    return refusal('refused', e.message);
  }
  try {
    let data: ArrayLike<number>;
    try {
      data = (await model.run([[1, 2, 3, 4, 5]])).data as ArrayLike<number>;
    } catch (e) {
      if (!(e instanceof LanternError)) throw e;
      return refusal('accepted, refused run', e.message);
    }
    let bad = -1;
    for (let i = 0; i < data.length; i++) if (!Number.isFinite(data[i])) { bad = i; break; }
    if (data.length === 0) return { outcome: 'accepted, no logits', violation: 'the forward returned no logits' };
    if (bad < 0) return { outcome: 'accepted' };
    if (holdsNonFinite(folder)) {
      return { outcome: 'accepted, non-finite forward', violation: `loadModel accepted a checkpoint holding a non-finite weight; logit ${bad} is ${data[bad]}` };
    }
    return { outcome: 'accepted, non-finite forward' };
  } finally {
    await model.executor.dropWeights(model.weights);
  }
}

let serial = 0;
function freshFolder(root: string): string {
  const dir = path.join(root, 'in', `m${serial++}`);
  fs.mkdirSync(dir, { recursive: true });
  return dir;
}

const describeInput = (i: unknown) =>
  JSON.stringify(i, (_k, v) => (typeof v === 'bigint' ? `${v}n` : typeof v === 'string' && v.length > 200 ? `${v.slice(0, 20)}…(${v.length} chars)` : Number.isNaN(v) ? 'NaN' : v === Infinity ? 'Infinity' : v === -Infinity ? '-Infinity' : v));

// ---------------------------------------------------------------------------------------------
// config.json

/** Fields any family reads (and some it rejects), beyond those its own config.json holds. */
const CONFIG_KEYS = [
  'model_type', 'n_layer', 'n_embd', 'n_head', 'n_inner', 'n_positions', 'n_ctx', 'layer_norm_epsilon', 'activation_function',
  'num_hidden_layers', 'hidden_size', 'num_attention_heads', 'num_key_value_heads', 'head_dim', 'intermediate_size',
  'max_position_embeddings', 'vocab_size', 'rms_norm_eps', 'layer_norm_eps', 'hidden_act', 'hidden_activation',
  'tie_word_embeddings', 'rope_theta', 'rope_scaling', 'rope_parameters', 'partial_rotary_factor', 'rotary_pct', 'rotary_emb_base',
  'attention_bias', 'mlp_bias', 'sliding_window', 'layer_types', 'use_sliding_window', 'query_pre_attn_scalar',
  'attn_logit_softcapping', 'final_logit_softcapping', 'use_parallel_residual', 'num_local_experts', 'num_experts',
  'scale_attn_weights', 'scale_attn_by_inverse_layer_idx', 'reorder_and_upcast_attn', 'add_cross_attention',
  'sliding_window_pattern', 'rope_local_base_freq', 'bos_token_id', 'eos_token_id', '__proto__', 'constructor',
];

const ROPE_GARBAGE: unknown[] = [
  { rope_type: 'llama3', factor: 8 }, { rope_type: 'llama3', factor: 8, low_freq_factor: 4, high_freq_factor: 1 },
  { rope_type: 'llama3', factor: 8, original_max_position_embeddings: 0 }, { rope_type: 'llama3', factor: 1e-300, original_max_position_embeddings: 1e300 },
  { rope_type: 'linear', factor: 0 }, { rope_type: 'linear', factor: -2 }, { rope_type: 'linear', factor: 1e308 }, { rope_type: 'linear', factor: 1e-308 },
  { rope_type: 'linear', factor: '2' }, { type: 'linear', factor: 2 }, { rope_type: 'yarn', factor: 4 }, { rope_type: 'dynamic', factor: 2 },
  { rope_type: 'default' }, { rope_type: null }, { rope_type: 'constructor' }, { rope_type: '__proto__' }, { factor: 2 },
  { rope_theta: -1 }, { rope_theta: 0 }, { rope_theta: 'abc' }, { rope_theta: 1e308 }, { rope_theta: 1e-308 }, { rope_theta: [] },
  { rope_theta: 10000, partial_rotary_factor: 2 }, { rope_theta: 10000, partial_rotary_factor: 0.01 }, { rope_theta: 10000, partial_rotary_factor: '0.5' },
  { rope_theta: 10000, rope_type: 'default' }, { full_attention: { rope_theta: 10000 }, sliding_attention: null }, { full_attention: 5 },
  { full_attention: { rope_theta: -5, rope_type: 'linear', factor: 0 } }, [], [1, 2], 'llama3', 0,
];

const SPECIALS: unknown[] = [
  0, -1, 1, 2, 3, 5, 7, 64, -0.5, 0.5, 2.5, 1e-300, 1e-45, 1e38, 3.5e38, 1e300, 1.7976931348623157e308, 4096, 4097, 2 ** 24, 2 ** 24 + 1, 2 ** 31, 2 ** 53, 2 ** 53 + 2,
  '', '4', 'NaN', 'Infinity', 'gpt2', 'llama', 'qwen3', 'gemma2', 'gemma3_text', 'gpt_neox', 'phi3', 'mistral', 'qwen2', 'gemma', 'bert', 'mamba',
  'constructor', '__proto__', 'toString', 'hasOwnProperty', 'relu', 'gelu', 'silu', 'gelu_pytorch_tanh', 'tanh',
  null, true, false, [], {}, [null], ['sliding_attention', 'full_attention'], ['full_attention', 'full_attention'], ['sliding_attention'],
  ['sliding_attention', 'sliding_attention', 'full_attention'], ['full_attention', 'chunked_attention'], [0, 1], 'sliding_attention',
  ...ROPE_GARBAGE,
];

type Rel = 'double' | 'half' | 'inc' | 'dec' | 'float' | 'string' | 'neg' | 'square';
type ConfigMut = { key: string; value: { v: unknown } | { rel: Rel } | { nan: 'NaN' | 'Infinity' | '-Infinity' }; remove: boolean };
type ConfigInput =
  | { t: 'json'; base: number; muts: ConfigMut[] }
  | { t: 'text'; base: number; cut: number; flips: [number, number][] };

function relative(v: unknown, rel: Rel): unknown {
  if (typeof v !== 'number') return rel === 'string' ? String(v) : v;
  switch (rel) {
    case 'double': return v * 2;
    case 'half': return v / 2;
    case 'inc': return v + 1;
    case 'dec': return v - 1;
    case 'float': return v + 0.5;
    case 'string': return String(v);
    case 'neg': return -v;
    case 'square': return v * v;
  }
}

/** config.json text for an input; NaN and ±Infinity are written as Python's json module does. */
function configText(b: Base, input: ConfigInput): string {
  if (input.t === 'text') {
    const buf = Buffer.from(b.configText);
    for (const [where, v] of input.flips) buf[Math.floor(where * (buf.length - 1))] = v;
    return buf.subarray(0, Math.max(0, Math.ceil(input.cut * buf.length))).toString('latin1');
  }
  const json: Record<string, unknown> = JSON.parse(b.configText);
  const literals: string[] = [];
  for (const m of input.muts) {
    if (m.remove) { delete json[m.key]; continue; }
    let v: unknown;
    if ('v' in m.value) v = structuredClone(m.value.v);
    else if ('rel' in m.value) v = relative(json[m.key], m.value.rel);
    else { v = `@@LITERAL${literals.length}@@`; literals.push(m.value.nan); }
    Object.defineProperty(json, m.key, { value: v, enumerable: true, writable: true, configurable: true });
  }
  let text = JSON.stringify(json);
  literals.forEach((lit, i) => (text = text.replace(`"@@LITERAL${i}@@"`, lit)));
  return text;
}

export function configKind(): FuzzKind<ConfigInput> {
  let root = '';
  let list: Base[] = [];
  return {
    name: 'config.json',
    async setup() {
      ({ root, list } = await acquire());
    },
    arbitrary() {
      const value = fc.oneof(
        { weight: 6, arbitrary: fc.constantFrom(...SPECIALS).map((v) => ({ v })) },
        { weight: 3, arbitrary: fc.integer({ min: -2, max: 70 }).map((v) => ({ v })) },
        { weight: 3, arbitrary: fc.constantFrom<Rel>('double', 'half', 'inc', 'dec', 'float', 'string', 'neg', 'square').map((rel) => ({ rel })) },
        { weight: 1, arbitrary: fc.constantFrom('NaN' as const, 'Infinity' as const, '-Infinity' as const).map((nan) => ({ nan })) },
        // Names an object lookup finds on Object.prototype (an activation, a rope type, a model_type).
        { weight: 1, arbitrary: fc.constantFrom('constructor', '__proto__', 'toString', 'valueOf', 'hasOwnProperty').map((v) => ({ v })) },
        { weight: 2, arbitrary: fc.jsonValue({ maxDepth: 2 }).map((v) => ({ v })) },
      );
      // The fields of the family's own config.json most of the time, any family's field otherwise.
      const json = fc.nat({ max: list.length - 1 }).chain((base) => {
        const own = Object.keys(list[base].config);
        const key = fc.oneof({ weight: 3, arbitrary: fc.constantFrom(...own) }, { weight: 2, arbitrary: fc.constantFrom(...CONFIG_KEYS) });
        // One mutation in ten removes its field instead.
        const mut: fc.Arbitrary<ConfigMut> = fc.record({ key, value, r: fc.nat({ max: 9 }) }).map(({ key, value, r }) => ({ key, value, remove: r === 0 }));
        return fc.record({ t: fc.constant('json' as const), base: fc.constant(base), muts: fc.array(mut, { minLength: 0, maxLength: 3 }) });
      });
      return fc.oneof(
        { weight: 8, arbitrary: json },
        { weight: 2, arbitrary: fc.record({
          t: fc.constant('text' as const), base: fc.nat({ max: list.length - 1 }), cut: fc.oneof(fc.constant(1), fc.double({ min: 0, max: 1, noNaN: true })),
          flips: fc.array(fc.tuple(fc.double({ min: 0, max: 1, noNaN: true }), fc.nat({ max: 255 })), { maxLength: 3 }),
        }) },
      );
    },
    async oracle(input) {
      const b = list[input.base % list.length];
      const dir = freshFolder(root);
      try {
        fs.writeFileSync(path.join(dir, 'config.json'), configText(b, input), input.t === 'text' ? 'latin1' : 'utf8');
        fs.symlinkSync(path.join(b.folder, 'model.safetensors'), path.join(dir, 'model.safetensors'));
        return await judgeFolder(dir);
      } finally {
        fs.rmSync(dir, { recursive: true, force: true });
      }
    },
    teardown: release,
    describe: (i) => `${list[i.base % list.length]?.family}-${list[i.base % list.length]?.dtype} ${describeInput(i)}`,
  };
}

// ---------------------------------------------------------------------------------------------
// model.safetensors

type Poison = 'NaN' | 'Inf' | '-Inf' | 'huge' | '-huge' | 'max' | 'tiny';
type StMut =
  | { t: 'len'; val: bigint | { rel: number } }
  | { t: 'entry'; tensor: number; field: 'dtype' | 'shape' | 'data_offsets' | 'whole'; value: unknown }
  | { t: 'offsets'; tensor: number; how: 'overlap-prev' | 'swap' | 'past-end' | 'shift' | 'empty' | 'reverse'; by: number }
  | { t: 'remove'; tensor: number }
  | { t: 'rename'; tensor: number; to: string }
  | { t: 'extra'; tensor: number; layer: number; placed: 'append' | 'overlap' | 'past-end' | 'zero-size' }
  | { t: 'metadata'; value: unknown }
  | { t: 'header-bytes'; flips: [number, number][] }
  | { t: 'values'; tensor: number; value: Poison; all: boolean; at: number }
  | { t: 'body-bytes'; flips: [number, number][] }
  | { t: 'truncate'; frac: number }
  | { t: 'append'; n: number };
type StInput = { base: number; muts: StMut[] } | { base: number; file: 'folder' | 'zero' | 'fifo' | 'empty' | 'missing' };

const DTYPE_VALUES = ['F32', 'F16', 'BF16', 'F64', 'I64', 'I32', 'I8', 'U8', 'BOOL', 'F8_E4M3', 'f32', '', null, 3, 'constructor', '__proto__', 'toString'];
const ENTRY_VALUES: unknown[] = [
  null, 0, -1, 'x', [], {}, [0], [-1], [1.5], ['4'], [2 ** 53], [2 ** 53 + 2], [0, 0], [1e300], [64, 64, 64], [1000, 64], [64, 1000],
  [2 ** 31, 2 ** 31], [2 ** 26, 2 ** 26], [0, 2 ** 53], [2 ** 60, 2 ** 60], [1, 2, 3], { dtype: 'F32' }, { shape: [], dtype: 'F32', data_offsets: [0, 4] },
];
const LENS = [0n, 1n, 2n, 7n, 8n, 100_000_000n, 100_000_001n, 2n ** 31n, 2n ** 32n, 2n ** 53n, 2n ** 63n, 2n ** 64n - 1n];

function poisonBits(dtype: string, p: Poison): { bytes: number; write: (b: Buffer, at: number) => void } {
  const f32: Record<Poison, number> = { NaN: NaN, Inf: Infinity, '-Inf': -Infinity, huge: 1e38, '-huge': -1e38, max: 3.4028234663852886e38, tiny: 1e-45 };
  if (dtype === 'F32') return { bytes: 4, write: (b, at) => b.writeFloatLE(f32[p], at) };
  if (dtype === 'F64') return { bytes: 8, write: (b, at) => b.writeDoubleLE(f32[p], at) };
  if (dtype === 'BF16') {
    const bits: Record<Poison, number> = { NaN: 0x7fc0, Inf: 0x7f80, '-Inf': 0xff80, huge: 0x7e96, '-huge': 0xfe96, max: 0x7f7f, tiny: 0x0001 };
    return { bytes: 2, write: (b, at) => b.writeUInt16LE(bits[p], at) };
  }
  const bits: Record<Poison, number> = { NaN: 0x7e00, Inf: 0x7c00, '-Inf': 0xfc00, huge: 0x7bff, '-huge': 0xfbff, max: 0x7bff, tiny: 0x0001 };
  return { bytes: 2, write: (b, at) => b.writeUInt16LE(bits[p], at) };
}

/** The name of `name` moved to layer `layer` (or a layer-ish name when it has no layer index). */
function atLayer(name: string, layer: number): string {
  const moved = name.replace(/(^|\.)(h|layers)\.\d+\./, `$1$2.${layer}.`);
  return moved !== name ? moved : `model.layers.${layer}.${name}`;
}

function buildSafetensors(b: Base, muts: StMut[]): Buffer {
  const header: Record<string, any> = structuredClone(b.header);
  const names = b.names;
  const pick = (i: number) => names[i % names.length];
  let data = Buffer.from(b.st.subarray(8 + b.headerLen));
  const dataLen = data.length;
  let metadata: unknown = { format: 'pt' };
  // Structural changes to the JSON header first, then the bytes.
  for (const m of muts) {
    switch (m.t) {
      case 'entry': {
        const e = header[pick(m.tensor)];
        if (!e) break;
        if (m.field === 'whole') header[pick(m.tensor)] = structuredClone(m.value);
        else e[m.field] = structuredClone(m.value);
        break;
      }
      case 'offsets': {
        const name = pick(m.tensor);
        const e = header[name];
        if (!e || !Array.isArray(e.data_offsets)) break;
        const [s, t] = e.data_offsets as [number, number];
        const size = t - s;
        switch (m.how) {
          case 'overlap-prev': e.data_offsets = [Math.max(0, s - 1 - (m.by % 64)), t - 1 - (m.by % 64)]; break;
          case 'swap': { const other = header[pick(m.tensor + 1 + m.by)]; if (other?.data_offsets) [e.data_offsets, other.data_offsets] = [other.data_offsets, e.data_offsets]; break; }
          case 'past-end': e.data_offsets = [dataLen - size + 1 + m.by, dataLen + 1 + m.by]; break;
          case 'shift': e.data_offsets = [s + 2 + 2 * m.by, t + 2 + 2 * m.by]; break;
          case 'empty': e.data_offsets = [s, s]; e.shape = [0, ...(Array.isArray(e.shape) ? e.shape.slice(1) : [])]; break;
          case 'reverse': e.data_offsets = [t, s]; break;
        }
        break;
      }
      case 'remove': delete header[pick(m.tensor)]; break;
      case 'rename': {
        const name = pick(m.tensor);
        if (!header[name]) break;
        const e = header[name];
        delete header[name];
        Object.defineProperty(header, m.to, { value: e, enumerable: true, writable: true, configurable: true });
        break;
      }
      case 'extra': {
        const src = header[pick(m.tensor)];
        if (!src || !Array.isArray(src.shape) || typeof src.dtype !== 'string') break;
        const name = atLayer(pick(m.tensor), m.layer);
        const bytes = (src.data_offsets?.[1] ?? 0) - (src.data_offsets?.[0] ?? 0);
        const start = data.length;
        if (m.placed === 'append') { data = Buffer.concat([data, Buffer.alloc(Math.max(0, bytes))]); header[name] = { ...src, data_offsets: [start, start + bytes] }; }
        else if (m.placed === 'overlap') header[name] = { ...src };
        else if (m.placed === 'past-end') header[name] = { ...src, data_offsets: [start, start + bytes] };
        else header[name] = { ...src, shape: [0], data_offsets: [start, start] };
        break;
      }
      case 'metadata': metadata = structuredClone(m.value); break;
      default: break;
    }
  }
  // Values: written where the valid header put each tensor.
  for (const m of muts) {
    if (m.t !== 'values') continue;
    const e = b.header[pick(m.tensor)];
    const p = poisonBits(e.dtype, m.value);
    const [s, t] = e.data_offsets;
    const n = (t - s) / p.bytes;
    if (m.all) for (let i = 0; i < n; i++) p.write(data, s + i * p.bytes);
    else p.write(data, s + (m.at % n) * p.bytes);
  }
  for (const m of muts) {
    if (m.t === 'body-bytes') for (const [where, v] of m.flips) if (data.length) data[Math.floor(where * (data.length - 1))] = v;
    if (m.t === 'append') data = Buffer.concat([data, Buffer.alloc(m.n, 0x41)]);
  }
  const json = Buffer.from(JSON.stringify({ __metadata__: metadata, ...header }));
  for (const m of muts) if (m.t === 'header-bytes') for (const [where, v] of m.flips) json[Math.floor(where * (json.length - 1))] = v;
  const prefix = Buffer.alloc(8);
  prefix.writeBigUInt64LE(BigInt(json.length));
  for (const m of muts) {
    if (m.t !== 'len') continue;
    const v = typeof m.val === 'bigint' ? m.val : BigInt(Math.max(0, json.length + m.val.rel));
    prefix.writeBigUInt64LE(v);
  }
  let file = Buffer.concat([prefix, json, data]);
  for (const m of muts) if (m.t === 'truncate') file = file.subarray(0, Math.floor(file.length * m.frac));
  return file;
}

export function safetensorsKind(): FuzzKind<StInput> {
  let root = '';
  let list: Base[] = [];
  return {
    name: 'model.safetensors',
    async setup() {
      ({ root, list } = await acquire());
    },
    arbitrary() {
      const base = fc.nat({ max: FUZZ_FAMILIES.length * DTYPES.length - 1 });
      const tensor = fc.nat({ max: 1000 });
      const frac = fc.double({ min: 0, max: 1, noNaN: true });
      const flips = fc.array(fc.tuple(frac, fc.nat({ max: 255 })), { minLength: 1, maxLength: 4 });
      const mut: fc.Arbitrary<StMut> = fc.oneof(
        fc.record({ t: fc.constant('len' as const), val: fc.oneof(fc.constantFrom(...LENS), fc.integer({ min: -16, max: 16 }).map((rel) => ({ rel }))) }),
        fc.record({ t: fc.constant('entry' as const), tensor, field: fc.constant('dtype' as const), value: fc.constantFrom(...DTYPE_VALUES) }),
        fc.record({ t: fc.constant('entry' as const), tensor, field: fc.constantFrom('shape' as const, 'data_offsets' as const, 'whole' as const), value: fc.oneof(fc.constantFrom(...ENTRY_VALUES), fc.jsonValue({ maxDepth: 2 })) }),
        fc.record({ t: fc.constant('offsets' as const), tensor, how: fc.constantFrom('overlap-prev' as const, 'swap' as const, 'past-end' as const, 'shift' as const, 'empty' as const, 'reverse' as const), by: fc.nat({ max: 100 }) }),
        fc.record({ t: fc.constant('remove' as const), tensor }),
        fc.record({ t: fc.constant('rename' as const), tensor, to: fc.oneof(fc.constantFrom('__metadata__', '', '__proto__', 'constructor', 'lm_head.weight', 'model.layers.99.mlp.up_proj.weight', 'h.1000000000000.attn.c_attn.weight'), fc.string({ maxLength: 20 })) }),
        fc.record({ t: fc.constant('extra' as const), tensor, layer: fc.oneof(fc.integer({ min: 0, max: 8 }), fc.constantFrom(4096, 2 ** 31, 1e21)), placed: fc.constantFrom('append' as const, 'append' as const, 'overlap' as const, 'past-end' as const, 'zero-size' as const) }),
        fc.record({ t: fc.constant('metadata' as const), value: fc.oneof(fc.constantFrom(null, 1, 'pt', [], { format: 1 }, { format: 'tf' }), fc.jsonValue({ maxDepth: 2 })) }),
        fc.record({ t: fc.constant('header-bytes' as const), flips }),
        fc.record({ t: fc.constant('values' as const), tensor, value: fc.constantFrom<Poison>('NaN', 'Inf', '-Inf', 'huge', '-huge', 'max', 'tiny'), all: fc.boolean(), at: fc.nat() }),
        fc.record({ t: fc.constant('body-bytes' as const), flips }),
        fc.record({ t: fc.constant('truncate' as const), frac }),
        fc.record({ t: fc.constant('append' as const), n: fc.integer({ min: 1, max: 64 }) }),
      );
      return fc.oneof(
        { weight: 30, arbitrary: fc.record({ base, muts: fc.array(mut, { minLength: 0, maxLength: 3 }) }) },
        { weight: 1, arbitrary: fc.record({ base, file: fc.constantFrom('folder' as const, 'zero' as const, 'fifo' as const, 'empty' as const, 'missing' as const) }) },
      );
    },
    async oracle(input) {
      const b = list[input.base % list.length];
      const dir = freshFolder(root);
      try {
        fs.copyFileSync(path.join(b.folder, 'config.json'), path.join(dir, 'config.json'));
        const st = path.join(dir, 'model.safetensors');
        if ('file' in input) {
          if (input.file === 'folder') fs.mkdirSync(st);
          else if (input.file === 'zero') fs.symlinkSync('/dev/zero', st);
          else if (input.file === 'fifo') execFileSync('mkfifo', [st]);
          else if (input.file === 'empty') fs.writeFileSync(st, '');
        } else {
          fs.writeFileSync(st, buildSafetensors(b, input.muts));
        }
        return await judgeFolder(dir);
      } finally {
        fs.rmSync(dir, { recursive: true, force: true });
      }
    },
    teardown: release,
    describe: (i) => `${list[i.base % list.length]?.family}-${list[i.base % list.length]?.dtype} ${describeInput(i)}`,
  };
}

// ---------------------------------------------------------------------------------------------
// Sharded checkpoints

type ShardMut =
  | { t: 'delete-shard'; shard: number }
  | { t: 'wrong-shard'; entry: number; shard: number }
  | { t: 'path'; entry: number; to: string }
  | { t: 'drop-entry'; entry: number }
  | { t: 'extra-entry'; name: string | { layer: number; like: number }; shard: number }
  | { t: 'index'; value: unknown; whole: boolean }
  | { t: 'index-text'; cut: number; flips: [number, number][] }
  | { t: 'shard-file'; shard: number; what: 'folder' | 'zero' | 'fifo' | 'empty' | 'truncated' | 'link-outside' }
  | { t: 'single-too'; valid: boolean };
type ShardInput = { base: number; shards: number; muts: ShardMut[] };

/** Paths a weight_map may name; OUTSIDE and ABS are replaced by a valid shard outside the folder. */
const SHARD_PATHS = [
  '../outside.safetensors', 'ABS', '../../../../../../etc/passwd', '/dev/zero', '/etc/hostname', '', '.', '..', './', 'config.json',
  'model.safetensors.index.json', 'sub/../SHARD0', './SHARD0', 'SHARD0/', 'SHARD0\u0000x', 'nope.safetensors', 'sub/deeper.safetensors', 'C:\\x.safetensors',
];

function shardName(i: number, n: number): string {
  return `model-${String(i + 1).padStart(5, '0')}-of-${String(n).padStart(5, '0')}.safetensors`;
}

export function shardedKind(): FuzzKind<ShardInput> {
  let root = '';
  let list: Base[] = [];
  /** Per base and shard count: the shards' tensors and the valid weight_map. */
  const split = new Map<string, { files: Buffer[]; map: Record<string, string> }>();
  const shardsOf = (b: Base, n: number) => {
    const key = `${b.family}-${b.dtype}-${n}`;
    let s = split.get(key);
    if (!s) {
      const h = readSafetensorsHeader(path.join(b.folder, 'model.safetensors'));
      const groups: Record<string, WritableTensor>[] = Array.from({ length: n }, () => ({}));
      const map: Record<string, string> = {};
      b.names.forEach((name, i) => {
        const entry = h.tensors.get(name)!;
        groups[i % n][name] = { dtype: 'F32', shape: entry.shape, data: readFloat32(h, name) };
        map[name] = shardName(i % n, n);
      });
      const files = groups.map((g, i) => {
        const f = path.join(root, `shard-${key}-${i}.safetensors`);
        writeSafetensors(f, g, { format: 'pt' });
        const buf = fs.readFileSync(f);
        fs.rmSync(f);
        return buf;
      });
      s = { files, map };
      split.set(key, s);
    }
    return s;
  };
  return {
    name: 'sharded',
    async setup() {
      ({ root, list } = await acquire());
    },
    arbitrary() {
      const base = fc.nat({ max: FUZZ_FAMILIES.length - 1 }).map((i) => i * DTYPES.length); // F32 bases
      const entry = fc.nat({ max: 1000 });
      const shard = fc.nat({ max: 3 });
      const frac = fc.double({ min: 0, max: 1, noNaN: true });
      const mut: fc.Arbitrary<ShardMut> = fc.oneof(
        fc.record({ t: fc.constant('delete-shard' as const), shard }),
        fc.record({ t: fc.constant('wrong-shard' as const), entry, shard }),
        fc.record({ t: fc.constant('path' as const), entry, to: fc.oneof(fc.constantFrom(...SHARD_PATHS), fc.string({ maxLength: 12 })) }),
        fc.record({ t: fc.constant('drop-entry' as const), entry }),
        fc.record({ t: fc.constant('extra-entry' as const), name: fc.oneof(fc.constantFrom('__metadata__', '__proto__', 'constructor', ''), fc.record({ layer: fc.integer({ min: 0, max: 6 }), like: entry })), shard }),
        fc.record({ t: fc.constant('index' as const), value: fc.oneof(fc.constantFrom(null, 0, 'x', [], {}, [['a', 'b']], { 'lm_head.weight': 5 }, { 'x': null }), fc.jsonValue({ maxDepth: 2 })), whole: fc.boolean() }),
        fc.record({ t: fc.constant('index-text' as const), cut: frac, flips: fc.array(fc.tuple(frac, fc.nat({ max: 255 })), { maxLength: 3 }) }),
        fc.record({ t: fc.constant('shard-file' as const), shard, what: fc.constantFrom('folder' as const, 'zero' as const, 'fifo' as const, 'empty' as const, 'truncated' as const, 'link-outside' as const) }),
        fc.record({ t: fc.constant('single-too' as const), valid: fc.boolean() }),
      );
      return fc.record({ base, shards: fc.integer({ min: 1, max: 3 }), muts: fc.array(mut, { minLength: 0, maxLength: 3 }) });
    },
    async oracle(input) {
      const b = list[input.base % list.length];
      const { files, map } = shardsOf(b, input.shards);
      const top = freshFolder(root);
      const dir = path.join(top, 'model');
      fs.mkdirSync(dir);
      try {
        fs.copyFileSync(path.join(b.folder, 'config.json'), path.join(dir, 'config.json'));
        const names = files.map((_, i) => shardName(i, files.length));
        files.forEach((f, i) => fs.writeFileSync(path.join(dir, names[i]), f));
        fs.writeFileSync(path.join(top, 'outside.safetensors'), files[0]);
        const weightMap: Record<string, unknown> = { ...map };
        const keys = Object.keys(map);
        let index: unknown = { metadata: { total_size: 0 }, weight_map: weightMap };
        let indexText: ShardMut & { t: 'index-text' } | undefined;
        for (const m of input.muts) {
          switch (m.t) {
            case 'delete-shard': fs.rmSync(path.join(dir, names[m.shard % names.length]), { recursive: true, force: true }); break;
            case 'wrong-shard': weightMap[keys[m.entry % keys.length]] = names[(names.indexOf(map[keys[m.entry % keys.length]]) + 1 + m.shard) % names.length]; break;
            case 'path': {
              const to = m.to === 'ABS' ? path.join(top, 'outside.safetensors') : m.to.replace('SHARD0', names[0]);
              weightMap[keys[m.entry % keys.length]] = to;
              break;
            }
            case 'drop-entry': delete weightMap[keys[m.entry % keys.length]]; break;
            case 'extra-entry': {
              const name = typeof m.name === 'string' ? m.name : atLayer(keys[m.name.like % keys.length], m.name.layer);
              Object.defineProperty(weightMap, name, { value: names[m.shard % names.length], enumerable: true, writable: true, configurable: true });
              break;
            }
            case 'index': index = m.whole ? structuredClone(m.value) : { weight_map: structuredClone(m.value) }; break;
            case 'index-text': indexText = m; break;
            case 'shard-file': {
              const f = path.join(dir, names[m.shard % names.length]);
              fs.rmSync(f, { recursive: true, force: true });
              if (m.what === 'folder') fs.mkdirSync(f);
              else if (m.what === 'zero') fs.symlinkSync('/dev/zero', f);
              else if (m.what === 'fifo') execFileSync('mkfifo', [f]);
              else if (m.what === 'empty') fs.writeFileSync(f, '');
              else if (m.what === 'truncated') fs.writeFileSync(f, files[m.shard % names.length].subarray(0, files[m.shard % names.length].length - 1 - m.shard * 37));
              // The Hugging Face cache links snapshot files to blobs outside the folder: allowed.
              else fs.symlinkSync(path.join('..', 'outside.safetensors'), f);
              break;
            }
            case 'single-too': fs.writeFileSync(path.join(dir, 'model.safetensors'), m.valid ? b.st : Buffer.from('garbage')); break;
          }
        }
        let text = JSON.stringify(index);
        if (indexText) {
          const buf = Buffer.from(text);
          for (const [where, v] of indexText.flips) buf[Math.floor(where * (buf.length - 1))] = v;
          text = buf.subarray(0, Math.ceil(indexText.cut * buf.length)).toString('latin1');
        }
        fs.writeFileSync(path.join(dir, 'model.safetensors.index.json'), text, indexText ? 'latin1' : 'utf8');
        return await judgeFolder(dir);
      } finally {
        fs.rmSync(top, { recursive: true, force: true });
      }
    },
    teardown: release,
    describe: (i) => `${list[i.base % list.length]?.family} ${describeInput(i)}`,
  };
}

/** The three model-folder kinds. */
export function modelKinds(): FuzzKind<any>[] {
  return [configKind(), safetensorsKind(), shardedKind()];
}
