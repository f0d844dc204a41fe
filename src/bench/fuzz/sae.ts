/**
 * SAE folders for the fuzzer (src/methods/sae/io.ts): tiny valid SAEs in every layout the loader
 * reads — SAELens 6.x cfg.json (standard, topk, jumprelu, transcoder, with sparsity.safetensors),
 * the pre-6.0 flat cfg.json (hook_point, activation_fn_str, topk from activation_fn_kwargs, boolean
 * normalize_activations), Gemma Scope params.npz and params.safetensors — written once, then
 * mutated per input: cfg.json fields (d_in, d_sae, k, architecture, normalisation, hooks, the
 * version that picks the layout) set to hostile values or removed, cfg.json truncated or its bytes
 * replaced; tensors with the wrong shape for d_in/d_sae, another dtype (safetensors F16/BF16/F64/
 * I32, .npy f8/f2/i4/i8/b1/U3/c8/big-endian), renamed, removed, or holding NaN/±Inf/huge values;
 * safetensors headers with hostile shapes/dtypes; .npy headers and .npz zip bytes truncated or
 * flipped; files removed, or replaced by a FIFO, /dev/zero or a folder.
 *
 * The oracle: `loadSae(folder)` refuses with one clean LanternError, or accepts with every weight
 * finite and of the declared shape (and sparsity of d_sae values, no NaN); an accepted SAE is then
 * run on two rows, which must give finite activations unless finite weights overflow float32
 * (counted as 'accepted, overflow', not a violation: results are checked where they are returned).
 */
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import fc from 'fast-check';
import { zipSync } from 'fflate';
import { dump as dumpNpy } from 'npyjs';
import { LanternError } from '../../errors.js';
import { loadSae } from '../../methods/sae/io.js';
import { saeParamShapes } from '../../methods/sae/sae.js';
import { writeSafetensors, WritableTensor } from '../../models/safetensors.js';
import { cleanMessage, FuzzKind, Verdict } from './harness.js';

const D_IN = 8;
const D_SAE = 16;
const HOOK = 'blocks.0.hook_resid_pre';

type Layout = 'saelens' | 'gemma-npz' | 'gemma-safetensors';

interface SaeBase {
  name: string;
  layout: Layout;
  /** cfg.json (SAELens layouts). */
  cfg?: Record<string, unknown>;
  tensors: Record<string, { shape: number[]; data: Float32Array }>;
  sparsity?: Float32Array;
}

function rand(n: number, seed: number, scale = 0.3): Float32Array {
  let s = seed >>> 0;
  return Float32Array.from({ length: n }, () => {
    s = (s * 1664525 + 1013904223) >>> 0;
    return ((s / 2 ** 32) * 2 - 1) * scale;
  });
}

function params(dIn: number, dSae: number, dOut: number, threshold: boolean, seed: number): SaeBase['tensors'] {
  const t: SaeBase['tensors'] = {
    W_enc: { shape: [dIn, dSae], data: rand(dIn * dSae, seed) },
    W_dec: { shape: [dSae, dOut], data: rand(dSae * dOut, seed + 1) },
    b_enc: { shape: [dSae], data: rand(dSae, seed + 2, 0.05) },
    b_dec: { shape: [dOut], data: rand(dOut, seed + 3, 0.05) },
  };
  if (threshold) t.threshold = { shape: [dSae], data: rand(dSae, seed + 4, 0.05).map(Math.abs) };
  return t;
}

const meta = (extra: Record<string, unknown> = {}) => ({ sae_lens_version: '6.5.0', model_name: 'tiny', hook_name: HOOK, ...extra });

const BASES: SaeBase[] = [
  { name: 'saelens standard', layout: 'saelens', cfg: { architecture: 'standard', d_in: D_IN, d_sae: D_SAE, dtype: 'float32', apply_b_dec_to_input: true, normalize_activations: 'none', metadata: meta() }, tensors: params(D_IN, D_SAE, D_IN, false, 1), sparsity: rand(D_SAE, 9, 3).map((v) => v - 4) },
  { name: 'saelens topk', layout: 'saelens', cfg: { architecture: 'topk', d_in: D_IN, d_sae: D_SAE, k: 4, rescale_acts_by_decoder_norm: true, apply_b_dec_to_input: false, normalize_activations: 'none', metadata: meta() }, tensors: params(D_IN, D_SAE, D_IN, false, 11) },
  { name: 'saelens jumprelu', layout: 'saelens', cfg: { architecture: 'jumprelu', d_in: D_IN, d_sae: D_SAE, apply_b_dec_to_input: false, normalize_activations: 'expected_average_only_in', metadata: meta() }, tensors: params(D_IN, D_SAE, D_IN, true, 21) },
  { name: 'saelens transcoder', layout: 'saelens', cfg: { architecture: 'transcoder', d_in: D_IN, d_sae: D_SAE, d_out: 6, apply_b_dec_to_input: false, normalize_activations: 'none', metadata: meta({ hook_name: 'blocks.0.ln2.hook_normalized', hook_name_out: 'blocks.0.hook_mlp_out' }) }, tensors: params(D_IN, D_SAE, 6, false, 31) },
  { name: 'saelens pre-6.0', layout: 'saelens', cfg: { sae_lens_version: '3.2.0', model_name: 'tiny', hook_point: HOOK, d_in: D_IN, d_sae: D_SAE, activation_fn_str: 'relu', apply_b_dec_to_input: true, normalize_activations: false }, tensors: params(D_IN, D_SAE, D_IN, false, 41), sparsity: rand(D_SAE, 49, 2).map((v) => v - 3) },
  { name: 'saelens pre-6.0 topk', layout: 'saelens', cfg: { model_name: 'tiny', hook_name: HOOK, d_in: D_IN, d_sae: D_SAE, activation_fn: 'topk', activation_fn_kwargs: { k: 3 }, normalize_activations: 'layer_norm' }, tensors: params(D_IN, D_SAE, D_IN, false, 51) },
  { name: 'gemma scope npz', layout: 'gemma-npz', tensors: params(D_IN, D_SAE, D_IN, true, 61) },
  { name: 'gemma scope safetensors', layout: 'gemma-safetensors', tensors: params(D_IN, D_SAE, D_IN, true, 71) },
];

const CFG_KEYS = [
  'architecture', 'd_in', 'd_sae', 'd_out', 'k', 'rescale_acts_by_decoder_norm', 'apply_b_dec_to_input', 'normalize_activations', 'metadata', 'dtype',
  'sae_lens_version', 'hook_point', 'hook_name', 'activation_fn_str', 'activation_fn', 'activation_fn_kwargs', 'model_name', '__proto__', 'constructor',
];
const META_KEYS = ['hook_name', 'hook_name_out', 'sae_lens_version', 'model_name', 'constructor'];
const CFG_VALUES: unknown[] = [
  0, -1, 1, 2, 3, 4, 8, 15, 16, 17, 0.5, 2.5, 1e300, 2 ** 31, 2 ** 53, -(2 ** 53), '', '8', '16', 'NaN', 'Infinity',
  'standard', 'topk', 'jumprelu', 'transcoder', 'batchtopk', 'gated', 'matryoshka', 'relu', 'tanh-relu', 'constructor', '__proto__', 'toString',
  'none', 'expected_average_only_in', 'constant_norm_rescale', 'layer_norm', 'blocks.0.hook_resid_post', 'blocks.99.hook_resid_pre', 'a\nb',
  '6.0.0', '5.9.9', '6', 'v6', '10.0.0', '0.1', null, true, false, [], {}, [8], { k: 3 }, { k: 0 }, { k: -2 }, { k: 1.5 }, { k: 100 }, { k: '3' }, { k: null },
];

type Poison = 'NaN' | 'Inf' | '-Inf' | 'huge' | 'max';
const POISON: Record<Poison, number> = { NaN: NaN, Inf: Infinity, '-Inf': -Infinity, huge: 1e38, max: 3.4028234663852886e38 };
type FileName = 'cfg.json' | 'weights' | 'sparsity.safetensors';
const NPY_DTYPES = ['<f8', '<f2', '<i4', '<i8', '|b1', '<U3', '<c8', '>f4', '|u1', '<f4'] as const;
const ST_DTYPES = ['F16', 'BF16', 'I32', 'I64'] as const;

type Mut =
  | { t: 'cfg'; key: string; value: unknown; remove: boolean }
  | { t: 'meta'; key: string; value: unknown; remove: boolean }
  | { t: 'cfg-text'; cut: number; flips: [number, number][] }
  | { t: 'shape'; tensor: number; shape: number[] }
  | { t: 'poison'; tensor: number; value: Poison; at: number; all: boolean }
  | { t: 'rename'; tensor: number; to: string }
  | { t: 'remove'; tensor: number }
  | { t: 'log-threshold' }
  | { t: 'dtype'; tensor: number; st: (typeof ST_DTYPES)[number]; npy: (typeof NPY_DTYPES)[number] }
  | { t: 'st-header'; tensor: number; field: 'dtype' | 'shape' | 'data_offsets'; value: unknown }
  | { t: 'npy-bytes'; tensor: number; cut: number; flips: [number, number][] }
  | { t: 'bytes'; file: FileName; cut: number; flips: [number, number][] }
  | { t: 'drop'; file: FileName }
  | { t: 'special'; file: FileName; as: 'fifo' | 'zero' | 'folder' }
  | { t: 'sparsity'; value: Poison | 'short' | 'empty' };
interface SaeInput { base: number; muts: Mut[] }

interface Built {
  cfg?: Record<string, unknown>;
  tensors: Record<string, { shape: number[]; data: Float32Array; dtype?: string }>;
  sparsity?: Float32Array | { shape: number[]; data: Float32Array };
}

/** Values laid out cyclically to fill `shape` (a wrong-shape tensor keeps plausible numbers). */
function refill(data: Float32Array, shape: number[]): Float32Array {
  const n = shape.reduce((a, b) => a * b, 1);
  return Float32Array.from({ length: Math.max(0, Math.min(n, 1 << 16)) }, (_, i) => data[i % Math.max(1, data.length)] ?? 0);
}

function build(b: SaeBase, muts: Mut[]): Built {
  const cfg = b.cfg ? structuredClone(b.cfg) : undefined;
  const tensors: Built['tensors'] = Object.fromEntries(Object.entries(b.tensors).map(([k, v]) => [k, { shape: [...v.shape], data: v.data.slice() }]));
  let sparsity: Built['sparsity'] = b.sparsity?.slice();
  const pick = (i: number) => Object.keys(tensors)[i % Math.max(1, Object.keys(tensors).length)];
  const set = (o: Record<string, unknown>, key: string, value: unknown, remove: boolean) => {
    if (remove) delete o[key];
    else Object.defineProperty(o, key, { value: structuredClone(value), enumerable: true, writable: true, configurable: true });
  };
  for (const m of muts) {
    const name = pick('tensor' in m ? m.tensor : 0);
    const t = name === undefined ? undefined : tensors[name];
    switch (m.t) {
      case 'cfg': if (cfg) set(cfg, m.key, m.value, m.remove); break;
      case 'meta': if (cfg) {
        if (typeof cfg.metadata !== 'object' || cfg.metadata === null || Array.isArray(cfg.metadata)) cfg.metadata = {};
        set(cfg.metadata as Record<string, unknown>, m.key, m.value, m.remove);
      } break;
      case 'shape': if (t) { t.data = refill(t.data, m.shape); t.shape = m.shape; } break;
      case 'poison': if (t && t.data.length) {
        if (m.all) t.data.fill(POISON[m.value]);
        else t.data[m.at % t.data.length] = POISON[m.value];
      } break;
      case 'rename': if (t) { delete tensors[name]; tensors[m.to] = t; } break;
      case 'remove': if (t) delete tensors[name]; break;
      case 'log-threshold': if (tensors.threshold) { tensors.log_threshold = { shape: tensors.threshold.shape, data: tensors.threshold.data.map(Math.log) }; delete tensors.threshold; } break;
      case 'dtype': if (t) t.dtype = b.layout === 'gemma-npz' ? m.npy : m.st; break;
      case 'sparsity': if (sparsity) {
        if (m.value === 'short') sparsity = sparsity.slice(1);
        else if (m.value === 'empty') sparsity = new Float32Array(0);
        else (sparsity as Float32Array)[3] = POISON[m.value];
      } break;
      default: break;
    }
  }
  return { cfg, tensors, sparsity };
}

/** A safetensors file's bytes with its JSON header edited. */
function editHeader(file: string, edit: (h: Record<string, any>) => void): void {
  const buf = fs.readFileSync(file);
  const len = Number(buf.readBigUInt64LE(0));
  const header = JSON.parse(buf.subarray(8, 8 + len).toString('utf8'));
  edit(header);
  const json = Buffer.from(JSON.stringify(header));
  const prefix = Buffer.alloc(8);
  prefix.writeBigUInt64LE(BigInt(json.length));
  fs.writeFileSync(file, Buffer.concat([prefix, json, buf.subarray(8 + len)]));
}

function writeSt(file: string, tensors: Built['tensors']): void {
  const out: Record<string, WritableTensor> = {};
  const ints: Record<string, 'I32' | 'I64'> = {};
  for (const [name, t] of Object.entries(tensors)) {
    if (t.dtype === 'I32' || t.dtype === 'I64') ints[name] = t.dtype;
    const dtype = (t.dtype === 'F16' || t.dtype === 'BF16' ? t.dtype : 'F32') as WritableTensor['dtype'];
    out[name] = t.dtype === 'I32' ? { dtype: 'I32', shape: t.shape, data: Int32Array.from(t.data, (v) => (Number.isFinite(v) ? Math.round(v * 10) : 0)) } as WritableTensor
      : t.dtype === 'I64' ? { dtype: 'I64', shape: t.shape, data: BigInt64Array.from(t.data, (v) => BigInt(Number.isFinite(v) ? Math.round(v * 10) : 0)) } as WritableTensor
        : { dtype, shape: t.shape, data: t.data };
  }
  writeSafetensors(file, out);
}

function npyOf(t: { shape: number[]; data: Float32Array; dtype?: string }): Uint8Array {
  const dt = t.dtype ?? '<f4';
  const d = t.data;
  let buf: ArrayBuffer;
  switch (dt) {
    case '<f8': buf = dumpNpy(Float64Array.from(d), t.shape); break;
    case '<i4': buf = dumpNpy(Int32Array.from(d, (v) => (Number.isFinite(v) ? Math.round(v * 10) : 0)), t.shape); break;
    case '<i8': buf = dumpNpy(BigInt64Array.from(d, (v) => BigInt(Number.isFinite(v) ? Math.round(v * 10) : 0)), t.shape); break;
    case '|u1': buf = dumpNpy(Uint8Array.from(d, (v) => (v > 0 ? 1 : 0)), t.shape); break;
    case '<f2': {
      // npyjs writes float16 from raw half bits.
      buf = dumpNpy(Float32Array.from(d), t.shape);
      const text = Buffer.from(buf).toString('latin1').replace("'<f4'", "'<f2'");
      const bytes = Buffer.from(text, 'latin1');
      const hl = bytes.readUInt16LE(8);
      buf = new Uint8Array(bytes.subarray(0, 10 + hl + d.length * 2)).buffer;
      break;
    }
    default: {
      // Another descr over the float32 bytes: |b1, <U3, <c8, >f4 read the same bytes differently.
      const bytes = Buffer.from(dumpNpy(Float32Array.from(d), t.shape));
      const text = bytes.toString('latin1').replace("'<f4'", `'${dt}'`);
      buf = new Uint8Array(Buffer.from(text, 'latin1')).buffer;
    }
  }
  return new Uint8Array(buf);
}

function mutateBytes(bytes: Uint8Array, cut: number, flips: [number, number][]): Uint8Array {
  const b = Buffer.from(bytes);
  for (const [where, v] of flips) if (b.length) b[Math.floor(where * (b.length - 1))] = v;
  return b.subarray(0, Math.ceil(cut * b.length));
}

const byteMuts = (muts: Mut[], file: FileName) => muts.filter((m): m is Extract<Mut, { t: 'bytes' }> => m.t === 'bytes' && m.file === file);

/** Writes the input's folder; returns the folder to load. */
function writeInput(dir: string, b: SaeBase, muts: Mut[]): void {
  fs.rmSync(dir, { recursive: true, force: true });
  fs.mkdirSync(dir, { recursive: true });
  const built = build(b, muts);
  const weightsFile = b.layout === 'saelens' ? 'sae_weights.safetensors' : b.layout === 'gemma-npz' ? 'params.npz' : 'params.safetensors';
  if (built.cfg) {
    let text = JSON.stringify(built.cfg);
    for (const m of muts) if (m.t === 'cfg-text') text = Buffer.from(mutateBytes(Buffer.from(text), m.cut, m.flips)).toString('latin1');
    fs.writeFileSync(path.join(dir, 'cfg.json'), text, 'latin1');
  }
  if (b.layout === 'gemma-npz') {
    const entries: Record<string, Uint8Array> = {};
    const names = Object.keys(built.tensors);
    for (const [name, t] of Object.entries(built.tensors)) entries[`${name}.npy`] = npyOf(t);
    for (const m of muts) {
      if (m.t !== 'npy-bytes' || !names.length) continue;
      const key = `${names[m.tensor % names.length]}.npy`;
      if (entries[key]) entries[key] = mutateBytes(entries[key], m.cut, m.flips);
    }
    fs.writeFileSync(path.join(dir, weightsFile), zipSync(entries));
  } else {
    writeSt(path.join(dir, weightsFile), built.tensors);
    const edits = muts.filter((m): m is Extract<Mut, { t: 'st-header' }> => m.t === 'st-header');
    if (edits.length) {
      editHeader(path.join(dir, weightsFile), (h) => {
        const names = Object.keys(h).filter((k) => k !== '__metadata__');
        for (const m of edits) if (names.length) h[names[m.tensor % names.length]][m.field] = structuredClone(m.value);
      });
    }
  }
  if (built.sparsity) {
    const s = built.sparsity as Float32Array;
    writeSafetensors(path.join(dir, 'sparsity.safetensors'), { sparsity: { dtype: 'F32', shape: [s.length], data: s } });
  }
  const files: Record<FileName, string> = { 'cfg.json': 'cfg.json', weights: weightsFile, 'sparsity.safetensors': 'sparsity.safetensors' };
  for (const [key, file] of Object.entries(files) as [FileName, string][]) {
    const p = path.join(dir, file);
    if (!fs.existsSync(p)) continue;
    for (const m of byteMuts(muts, key)) fs.writeFileSync(p, mutateBytes(fs.readFileSync(p), m.cut, m.flips));
    if (muts.some((m) => m.t === 'drop' && m.file === key)) fs.rmSync(p);
    const special = muts.find((m): m is Extract<Mut, { t: 'special' }> => m.t === 'special' && m.file === key);
    if (special) {
      fs.rmSync(p, { force: true });
      if (special.as === 'fifo') execFileSync('mkfifo', [p]);
      else if (special.as === 'zero') fs.symlinkSync('/dev/zero', p);
      else fs.mkdirSync(p);
    }
  }
}

function refusal(outcome: string, message: string): Verdict {
  const bad = cleanMessage(message);
  return bad ? { outcome, violation: bad } : { outcome };
}

/** Loads the folder and checks what the loader promised: shapes, finite weights, sparsity; then runs two rows. */
export async function judgeSaeFolder(folder: string): Promise<Verdict> {
  let loaded;
  try {
    loaded = await loadSae(folder);
  } catch (e) {
    if (!(e instanceof LanternError)) throw e;
    return refusal('refused', e.message);
  }
  const { sae, logSparsity } = loaded;
  try {
    for (const [name, shape] of Object.entries(saeParamShapes(sae.cfg))) {
      const w = sae.weights[name as keyof typeof sae.weights];
      const n = shape.reduce((a, b) => a * b, 1);
      if (!w || w.length !== n) return { outcome: 'accepted, wrong shape', violation: `${name} has ${w?.length} values for shape [${shape}]` };
      const bad = w.findIndex((v) => !Number.isFinite(v));
      if (bad >= 0) return { outcome: 'accepted, non-finite weight', violation: `${name}[${bad}] is ${w[bad]}` };
    }
    if (logSparsity && (logSparsity.length !== sae.cfg.dSae || logSparsity.some(Number.isNaN))) {
      return { outcome: 'accepted, bad sparsity', violation: `sparsity has ${logSparsity.length} values for d_sae ${sae.cfg.dSae}${logSparsity.some(Number.isNaN) ? ', with NaN' : ''}` };
    }
    const rows = 2;
    const x = Float32Array.from({ length: rows * sae.cfg.dIn }, (_, i) => Math.sin(i + 1));
    let out;
    try {
      out = await sae.run(x, rows);
    } catch (e) {
      if (!(e instanceof LanternError)) throw e;
      return refusal('accepted, run refused', e.message);
    }
    if (out.acts_post.length !== rows * sae.cfg.dSae || out.out.length !== rows * sae.cfg.dOut) {
      return { outcome: 'accepted, wrong output', violation: `outputs of ${out.acts_post.length} and ${out.out.length} values for ${rows} rows` };
    }
    const finite = [...out.acts_post, ...out.out].every(Number.isFinite);
    return { outcome: finite ? `accepted ${loaded.format}` : 'accepted, overflow' };
  } finally {
    await sae.release();
  }
}

const describeInput = (i: unknown) =>
  JSON.stringify(i, (_k, v) => (Number.isNaN(v) ? 'NaN' : v === Infinity ? 'Infinity' : v === -Infinity ? '-Infinity' : v));

/** The SAE-folder fuzz kind (see the module comment). */
export function saeKind(): FuzzKind<SaeInput> {
  let root = '';
  const frac = fc.oneof(fc.constant(1), fc.double({ min: 0, max: 1, noNaN: true }));
  const flips = fc.array(fc.tuple(fc.double({ min: 0, max: 1, noNaN: true }), fc.nat({ max: 255 })), { maxLength: 3 });
  const dim = fc.constantFrom(0, 1, D_IN - 1, D_IN, D_IN + 1, 6, D_SAE, D_SAE + 1, 2 * D_SAE);
  const mut: fc.Arbitrary<Mut> = fc.oneof(
    { weight: 6, arbitrary: fc.record({ t: fc.constant('cfg' as const), key: fc.constantFrom(...CFG_KEYS), value: fc.oneof({ weight: 4, arbitrary: fc.constantFrom(...CFG_VALUES) }, { weight: 1, arbitrary: fc.jsonValue({ maxDepth: 2 }) }), remove: fc.boolean() }) },
    { weight: 2, arbitrary: fc.record({ t: fc.constant('meta' as const), key: fc.constantFrom(...META_KEYS), value: fc.constantFrom(...CFG_VALUES), remove: fc.boolean() }) },
    { weight: 1, arbitrary: fc.record({ t: fc.constant('cfg-text' as const), cut: frac, flips }) },
    { weight: 3, arbitrary: fc.record({ t: fc.constant('shape' as const), tensor: fc.nat(), shape: fc.oneof(fc.array(dim, { minLength: 0, maxLength: 3 }), fc.constantFrom<number[]>([D_SAE, D_IN], [D_IN, D_SAE, 1], [1, D_IN, D_SAE], [D_IN * D_SAE])) }) },
    { weight: 3, arbitrary: fc.record({ t: fc.constant('poison' as const), tensor: fc.nat(), value: fc.constantFrom<Poison>('NaN', 'Inf', '-Inf', 'huge', 'max'), at: fc.nat(), all: fc.boolean() }) },
    { weight: 1, arbitrary: fc.record({ t: fc.constant('rename' as const), tensor: fc.nat(), to: fc.constantFrom('w_enc', 'W_ENC', 'b_dec', 'threshold', 'log_threshold', 'x', 'constructor', '__proto__') }) },
    { weight: 1, arbitrary: fc.record({ t: fc.constant('remove' as const), tensor: fc.nat() }) },
    { weight: 1, arbitrary: fc.constant({ t: 'log-threshold' as const }) },
    { weight: 2, arbitrary: fc.record({ t: fc.constant('dtype' as const), tensor: fc.nat(), st: fc.constantFrom(...ST_DTYPES), npy: fc.constantFrom(...NPY_DTYPES) }) },
    { weight: 2, arbitrary: fc.record({ t: fc.constant('st-header' as const), tensor: fc.nat(), field: fc.constantFrom('dtype' as const, 'shape' as const, 'data_offsets' as const), value: fc.constantFrom<unknown>('F64', 'I8', 'BOOL', 'U8', 'x', null, [], [0], [-1], [D_SAE], [D_IN, D_SAE], [2 ** 53], [0, 0], [0, 2 ** 40], 'constructor') }) },
    { weight: 2, arbitrary: fc.record({ t: fc.constant('npy-bytes' as const), tensor: fc.nat(), cut: frac, flips }) },
    { weight: 2, arbitrary: fc.record({ t: fc.constant('bytes' as const), file: fc.constantFrom<FileName>('cfg.json', 'weights', 'sparsity.safetensors'), cut: frac, flips }) },
    { weight: 1, arbitrary: fc.record({ t: fc.constant('drop' as const), file: fc.constantFrom<FileName>('cfg.json', 'weights', 'sparsity.safetensors') }) },
    { weight: 1, arbitrary: fc.record({ t: fc.constant('special' as const), file: fc.constantFrom<FileName>('cfg.json', 'weights', 'sparsity.safetensors'), as: fc.constantFrom('fifo' as const, 'zero' as const, 'folder' as const) }) },
    { weight: 1, arbitrary: fc.record({ t: fc.constant('sparsity' as const), value: fc.constantFrom<Poison | 'short' | 'empty'>('NaN', 'Inf', '-Inf', 'short', 'empty') }) },
  );
  return {
    name: 'SAE folders',
    async setup() {
      root = fs.mkdtempSync(path.join(os.tmpdir(), 'lantern-fuzz-sae-'));
    },
    // Unmutated folders stay reachable (an empty list), so both sides of the oracle are seen.
    arbitrary: () => fc.record({ base: fc.nat({ max: BASES.length - 1 }), muts: fc.array(mut, { minLength: 0, maxLength: 3 }) }),
    async oracle({ base, muts }) {
      const b = BASES[base % BASES.length];
      // One folder per base, reused: Gemma Scope reads its hook from layer_N in the path, and the
      // same path keeps the executor's compiled graphs to one per base.
      const dir = path.join(root, `b${base % BASES.length}`, 'layer_0');
      writeInput(dir, b, muts);
      return judgeSaeFolder(dir);
    },
    async teardown() {
      fs.rmSync(root, { recursive: true, force: true });
    },
    describe: (i) => `${BASES[i.base % BASES.length].name} ${describeInput(i.muts)}`,
  };
}
