/**
 * Loading and saving SAEs in the layouts people publish them in:
 * - SAELens folders: cfg.json (the current layout with a `metadata` object, or the pre-6.0 flat
 *   one: hook_point, activation_fn_str, boolean normalize_activations…), sae_weights.safetensors,
 *   and optionally sparsity.safetensors (log10 feature densities);
 * - Gemma Scope: params.npz (or params.safetensors) with W_enc, W_dec, b_enc, b_dec, threshold
 *   (lower-case keys too), a JumpReLU SAE whose hook is read from the path (layer_N) or given.
 * A source is a local folder, or a Hub id with the path inside the repo, fetched into the Hub cache.
 * Saving writes the SAELens layout, so Lantern's SAEs load in Python tools.
 */
import fs from 'node:fs';
import path from 'node:path';
import { unzipSync } from 'fflate';
import { parse as parseNpy } from 'npyjs';
import { LanternError } from '../../errors.js';
import { readRegularBytes, readRegularText } from '../../files.js';
import type { Executor } from '../../engine/runtime/executor.js';
import { resolveModel, ResolveOptions } from '../../models/hub.js';
import { readFloat32, readSafetensorsHeader, SafetensorsHeader, writeSafetensors, WritableTensor } from '../../models/safetensors.js';
import { ActivationNormalization, NORMALIZATIONS, Sae, SaeArchitecture, SaeConfig, SaeWeights, saeParamShapes } from './sae.js';

/** Options for {@link loadSae}. */
export interface LoadSaeOptions extends Omit<ResolveOptions, 'files' | 'optionalFiles'> {
  /** The SAE's folder inside `source` (a Hub repo or local folder), e.g. layer_6/width_16k/average_l0_71. */
  path?: string;
  /** The hook the SAE reads, when its files do not say (Gemma Scope without layer_N in its path). */
  hook?: string;
  executor?: Executor;
}

/** A loaded SAE, with SAELens's feature sparsity when the folder has it. */
export interface LoadedSae {
  sae: Sae;
  /** log10 of each feature's firing frequency (sparsity.safetensors), when present. */
  logSparsity?: Float32Array;
  /** Which layout the files had. */
  format: 'saelens' | 'gemma-scope';
}

const SAELENS_FILES = ['cfg.json', 'sae_weights.safetensors'];
const OPTIONAL_FILES = ['sparsity.safetensors', 'params.npz', 'params.safetensors'];
/** SAELens architectures Lantern runs, and what each loads as. */
const LOADABLE: Record<string, SaeArchitecture> = { standard: 'standard', topk: 'topk', jumprelu: 'jumprelu', transcoder: 'transcoder', batchtopk: 'jumprelu' };

/** Loads an SAE from a local folder, or a Hub id with `path` (via the Hub cache). */
export async function loadSae(source: string, opts: LoadSaeOptions = {}): Promise<LoadedSae> {
  const sub = opts.path ?? '';
  let folder: string;
  let label = sub ? `${source}/${sub}` : source;
  if (fs.existsSync(source) && fs.statSync(source).isDirectory()) {
    folder = path.join(source, sub);
    label = folder;
  } else if (fs.existsSync(source)) {
    throw new LanternError(`${source} is a file; give the SAE's folder (with cfg.json and sae_weights.safetensors, or params.npz)`);
  } else {
    const { files: _f, optionalFiles: _o, ...hubOpts } = opts as ResolveOptions;
    const within = (f: string) => (sub ? `${sub.replace(/\/+$/, '')}/${f}` : f);
    const resolved = await resolveModel(source, { ...hubOpts, files: [], optionalFiles: [...SAELENS_FILES, ...OPTIONAL_FILES].map(within) });
    folder = path.join(resolved.folder, sub);
  }
  const has = (f: string) => fs.existsSync(path.join(folder, f));
  if (has('cfg.json') && has('sae_weights.safetensors')) {
    const cfg = parseSaeLensConfig(readCfgJson(path.join(folder, 'cfg.json'), path.join(label, 'cfg.json')), path.join(label, 'cfg.json'));
    cfg.source = label;
    if (opts.hook && opts.hook !== cfg.hookName) cfg.hookName = opts.hook;
    const header = readSafetensorsHeader(path.join(folder, 'sae_weights.safetensors'));
    const weights = weightsFrom(cfg, (name) => (header.tensors.has(name) ? readTensor(header, name) : undefined), path.join(label, 'sae_weights.safetensors'));
    let logSparsity: Float32Array | undefined;
    if (has('sparsity.safetensors')) {
      const sp = readSafetensorsHeader(path.join(folder, 'sparsity.safetensors'));
      const name = sp.tensors.has('sparsity') ? 'sparsity' : [...sp.tensors.keys()][0];
      if (name === undefined) throw new LanternError(`${label}/sparsity.safetensors holds no tensor`);
      logSparsity = readFloat32(sp, name);
      if (logSparsity.length !== cfg.dSae) throw new LanternError(`${label}/sparsity.safetensors has ${logSparsity.length} values for ${cfg.dSae} features`);
      // log10 of a frequency: -Infinity is a feature that never fired; NaN or above 0 is no frequency.
      const bad = logSparsity.findIndex((v) => Number.isNaN(v) || v > 0);
      if (bad >= 0) throw new LanternError(`${label}/sparsity.safetensors: feature ${bad} has log10 density ${logSparsity[bad]}, which is no log10 of a frequency (at most 0)`);
    }
    return { sae: new Sae(cfg, weights, opts.executor), logSparsity, format: 'saelens' };
  }
  for (const file of ['params.npz', 'params.safetensors']) {
    if (!has(file)) continue;
    const where = path.join(label, file);
    const tensors = file.endsWith('.npz') ? readNpz(path.join(folder, file), where) : readSafetensorsAll(path.join(folder, file));
    const get = (name: string) => Object.entries(tensors).find(([k]) => k.toLowerCase() === name.toLowerCase())?.[1];
    const enc = get('W_enc');
    if (!enc) throw new LanternError(`${where} has no W_enc (keys: ${Object.keys(tensors).join(', ')})`);
    if (enc.shape.length !== 2) throw new LanternError(`${where}: W_enc has shape [${enc.shape}], expected [d_in, d_sae]`);
    const hook = opts.hook ?? gemmaScopeHook(`${source}/${sub}`);
    if (!hook) throw new LanternError(`cannot tell which hook ${label} reads (no layer_N in its path); give it with the hook option (--hook)`);
    const cfg: SaeConfig = {
      architecture: 'jumprelu', dIn: enc.shape[0], dSae: enc.shape[1], dOut: enc.shape[0], applyBDecToInput: false, normalizeActivations: 'none', hookName: hook, source: label,
    };
    const weights = weightsFrom(cfg, (name) => get(name), where);
    return { sae: new Sae(cfg, weights, opts.executor), format: 'gemma-scope' };
  }
  throw new LanternError(`${label} holds no SAE: expected cfg.json + sae_weights.safetensors (SAELens) or params.npz / params.safetensors (Gemma Scope)`);
}

/** Gemma Scope's hook from a path like gemma-scope-2b-pt-res/layer_12/width_16k/…: residual, MLP or attention output of that layer. */
function gemmaScopeHook(where: string): string | undefined {
  const layer = /layer_(\d+)/.exec(where)?.[1];
  if (layer === undefined) return undefined;
  if (/-att/.test(where)) return `blocks.${layer}.attn.hook_z`;
  if (/-mlp/.test(where)) return `blocks.${layer}.hook_mlp_out`;
  return `blocks.${layer}.hook_resid_post`;
}

interface RawTensor { data: Float32Array; shape: number[] }

function readTensor(header: SafetensorsHeader, name: string): RawTensor {
  return { data: readFloat32(header, name), shape: header.tensors.get(name)!.shape };
}

function readSafetensorsAll(file: string): Record<string, RawTensor> {
  const header = readSafetensorsHeader(file);
  return Object.fromEntries([...header.tensors.keys()].map((n) => [n, readTensor(header, n)]));
}

/** Largest .npz read whole (Node's largest Buffer is about this). */
const NPZ_MAX_BYTES = 2 ** 32 - 1;

/** The arrays of an .npz (a zip of .npy files), as float32. */
export function readNpz(file: string, where = file): Record<string, RawTensor> {
  // Checked before any byte is read: a FIFO would block the process forever, a device never end.
  const bytes = readRegularBytes(file, NPZ_MAX_BYTES, 'params.npz');
  let entries: Record<string, Uint8Array>;
  try {
    entries = unzipSync(new Uint8Array(bytes.buffer, bytes.byteOffset, bytes.byteLength));
  } catch (e) {
    throw new LanternError(`${where} is not a valid .npz file (${(e as Error).message})`);
  }
  const out: Record<string, RawTensor> = {};
  for (const [name, bytes] of Object.entries(entries)) {
    if (!name.endsWith('.npy')) continue;
    let arr;
    try {
      arr = parseNpy(bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength) as ArrayBuffer);
    } catch (e) {
      throw new LanternError(`${where}: ${name} is not a valid .npy array (${(e as Error).message})`);
    }
    if (arr.fortranOrder && arr.shape.length > 1) throw new LanternError(`${where}: ${name} is stored in Fortran order; save it C-ordered`);
    const data = arr.data as unknown as ArrayLike<number | bigint>;
    const n = arr.shape.reduce((a, b) => a * b, 1);
    if (data.length !== n) throw new LanternError(`${where}: ${name} has ${data.length} values for shape [${arr.shape}]`);
    out[name.slice(0, -4)] = { data: data instanceof Float32Array ? data : Float32Array.from(data as ArrayLike<number>, Number), shape: arr.shape };
  }
  return out;
}

function weightsFrom(cfg: SaeConfig, get: (name: string) => RawTensor | undefined, where: string): SaeWeights {
  const shapes = saeParamShapes(cfg);
  const w: Partial<SaeWeights> = {};
  for (const [name, shape] of Object.entries(shapes)) {
    let t = get(name);
    if (!t && name === 'threshold') {
      const log = get('log_threshold');
      if (log) t = { data: log.data.map(Math.exp), shape: log.shape };
    }
    if (!t) throw new LanternError(`${where} lacks ${name}, which a ${cfg.architecture} SAE needs`);
    if (t.shape.join() !== shape.join()) {
      throw new LanternError(`${where}: ${name} has shape [${t.shape}], but the config (d_in ${cfg.dIn}, d_sae ${cfg.dSae}${cfg.dOut !== cfg.dIn ? `, d_out ${cfg.dOut}` : ''}) needs [${shape}]`);
    }
    // A NaN or an infinity would spread through every encode silently; SAELens files never hold one.
    const bad = t.data.findIndex((v) => !Number.isFinite(v));
    if (bad >= 0) throw new LanternError(`${where}: ${name} holds ${t.data[bad]} at index ${bad}${name === 'threshold' && get('log_threshold') ? ' (exp of log_threshold)' : ''}; an SAE's weights must be finite`);
    w[name as keyof SaeWeights] = t.data;
  }
  return w as SaeWeights;
}

function readCfgJson(file: string, where: string): Record<string, any> {
  let raw: unknown;
  try {
    raw = JSON.parse(readRegularText(file, 16 << 20, 'cfg.json'));
  } catch (e) {
    if (e instanceof LanternError) throw e;
    // V8 quotes the text around the error, line breaks included: the message stays one line.
    throw new LanternError(`${where} is not valid JSON: ${(e as Error).message.replace(/\s*\n\s*/g, ' ')}`);
  }
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) throw new LanternError(`${where} must hold a JSON object`);
  return raw as Record<string, any>;
}

const major = (v: unknown) => (typeof v === 'string' ? Number(/^(\d+)/.exec(v)?.[1] ?? NaN) : NaN);

/** A SAELens cfg.json (current or pre-6.0 layout) as a Lantern SaeConfig. */
export function parseSaeLensConfig(raw: Record<string, any>, where = 'cfg.json'): SaeConfig {
  if (typeof raw !== 'object' || raw === null) throw new LanternError(`${where} is not a JSON object`);
  const version = raw.sae_lens_version ?? raw.metadata?.sae_lens_version;
  const pre6 = !(major(version) >= 6);
  const c: Record<string, any> = { ...raw };
  const meta: Record<string, any> = { ...(raw.metadata ?? {}) };
  if (pre6) {
    // SAELens's handle_pre_6_0_config: renamed keys, defaults, topk from activation_fn, boolean normalisation.
    if ('hook_point' in c) c.hook_name = c.hook_point;
    if ('activation_fn_str' in c) c.activation_fn = c.activation_fn_str;
    c.architecture ??= 'standard';
    c.apply_b_dec_to_input ??= true;
    if (c.activation_fn === 'topk' && c.activation_fn_kwargs?.k != null) {
      c.architecture = 'topk';
      c.k = c.activation_fn_kwargs.k;
    }
    if (typeof c.normalize_activations === 'boolean') c.normalize_activations = c.normalize_activations ? 'expected_average_only_in' : 'none';
    meta.hook_name ??= c.hook_name;
    meta.model_name ??= c.model_name;
    meta.hook_name_out ??= c.hook_name_out;
  }
  const arch = c.architecture;
  // Own keys only: 'constructor' or 'toString' is no architecture. Values are quoted as JSON, so a
  // name with a line break stays on the message's one line.
  const mapped = typeof arch === 'string' && Object.hasOwn(LOADABLE, arch) ? LOADABLE[arch] : undefined;
  if (!mapped) throw new LanternError(`${where}: unknown SAELens architecture ${JSON.stringify(arch) ?? 'undefined'}; Lantern loads ${Object.keys(LOADABLE).join(', ')}`);
  const norm = (c.normalize_activations ?? 'none') as ActivationNormalization;
  if (!NORMALIZATIONS.includes(norm)) throw new LanternError(`${where}: unknown normalize_activations ${JSON.stringify(c.normalize_activations)}; expected one of ${NORMALIZATIONS.join(', ')}`);
  const hookName = meta.hook_name ?? c.hook_name;
  if (typeof hookName !== 'string' || hookName === '') throw new LanternError(`${where} names no hook (metadata.hook_name)`);
  if (mapped === 'transcoder' && meta.hook_name_out !== undefined && meta.hook_name_out !== null && typeof meta.hook_name_out !== 'string') {
    throw new LanternError(`${where}: metadata.hook_name_out must be a hook name, got ${JSON.stringify(meta.hook_name_out)}`);
  }
  const modelName = typeof meta.model_name === 'string' ? meta.model_name : undefined;
  for (const key of ['d_in', 'd_sae']) if (!Number.isInteger(c[key]) || c[key] < 1) throw new LanternError(`${where}: ${key} must be a positive integer, got ${JSON.stringify(c[key])}`);
  return {
    architecture: mapped,
    dIn: c.d_in,
    dSae: c.d_sae,
    dOut: mapped === 'transcoder' ? c.d_out ?? c.d_in : c.d_in,
    k: mapped === 'topk' ? c.k : undefined,
    rescaleActsByDecoderNorm: mapped === 'topk' ? Boolean(c.rescale_acts_by_decoder_norm) : undefined,
    applyBDecToInput: mapped === 'transcoder' ? false : Boolean(c.apply_b_dec_to_input ?? true),
    normalizeActivations: norm,
    hookName,
    hookNameOut: mapped === 'transcoder' ? meta.hook_name_out ?? undefined : undefined,
    modelName,
  };
}

/** The SAELens (6.x) cfg.json of an SAE. */
export function saeLensConfig(cfg: SaeConfig, extra: Record<string, unknown> = {}): Record<string, unknown> {
  const out: Record<string, unknown> = {
    architecture: cfg.architecture,
    d_in: cfg.dIn,
    d_sae: cfg.dSae,
    dtype: 'float32',
    device: 'cpu',
    apply_b_dec_to_input: cfg.applyBDecToInput,
    normalize_activations: cfg.normalizeActivations,
    reshape_activations: cfg.hookName.endsWith('hook_z') ? 'hook_z' : 'none',
    metadata: {
      sae_lens_version: '6.0.0',
      sae_lens_training_version: null,
      model_name: cfg.modelName ?? null,
      hook_name: cfg.hookName,
      ...(cfg.hookNameOut ? { hook_name_out: cfg.hookNameOut } : {}),
      written_by: 'lantern',
      ...extra,
    },
  };
  if (cfg.architecture === 'topk') Object.assign(out, { k: cfg.k, rescale_acts_by_decoder_norm: Boolean(cfg.rescaleActsByDecoderNorm) });
  if (cfg.architecture === 'transcoder') out.d_out = cfg.dOut;
  return out;
}

/** Writes `sae` as a SAELens folder: cfg.json, sae_weights.safetensors, and sparsity.safetensors when `logSparsity` is given. */
export function saveSae(sae: Sae, folder: string, opts: { logSparsity?: Float32Array; metadata?: Record<string, unknown> } = {}): void {
  if (sae.cfg.architecture === 'batchtopk') throw new LanternError('a batchtopk SAE is saved in its inference form: take it from the trainer (SaeTrainer.sae gives a jumprelu SAE)');
  fs.mkdirSync(folder, { recursive: true });
  const tensors: Record<string, WritableTensor> = {};
  for (const [name, shape] of Object.entries(saeParamShapes(sae.cfg))) tensors[name] = { dtype: 'F32', shape, data: sae.weights[name as keyof SaeWeights]! };
  writeSafetensors(path.join(folder, 'sae_weights.safetensors'), tensors);
  fs.writeFileSync(path.join(folder, 'cfg.json'), JSON.stringify(saeLensConfig(sae.cfg, opts.metadata), null, 2));
  if (opts.logSparsity) writeSafetensors(path.join(folder, 'sparsity.safetensors'), { sparsity: { dtype: 'F32', shape: [sae.cfg.dSae], data: opts.logSparsity } });
}
