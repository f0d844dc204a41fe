/** Reading config.json fields with errors that name the file and the field. */
import { LanternError } from '../../errors.js';
import type { Activation, Rope } from '../config.js';

export class ConfigFields {
  constructor(readonly raw: Record<string, unknown>, readonly file: string, readonly family: string) {}

  /**
   * A positive integer; the first of `keys` present is used. Bounded (layer and head counts by
   * 4096, sizes by 2^24) so that no config can make Lantern build per-layer or per-head structures
   * without limit before the weights' shapes are checked against it.
   */
  int(keys: string | string[], fallback?: number): number {
    const ks = Array.isArray(keys) ? keys : [keys];
    const key = ks.find((k) => this.raw[k] != null);
    if (key === undefined) {
      if (fallback !== undefined) return fallback;
      throw new LanternError(`${this.file}: '${ks[0]}'${ks.length > 1 ? ` (or '${ks.slice(1).join("', '")}')` : ''} is missing; a ${this.family} config.json needs it`);
    }
    const v = this.raw[key];
    if (typeof v !== 'number' || !Number.isInteger(v) || v <= 0) {
      throw new LanternError(`${this.file}: '${key}' must be a positive integer, got ${JSON.stringify(v)}`);
    }
    const max = /layer|head/.test(key) ? 4096 : 2 ** 24;
    if (v > max) throw new LanternError(`${this.file}: '${key}' is ${v}, more than ${max}; no model Lantern loads has that many`);
    return v;
  }

  /** A positive finite number. */
  num(key: string, fallback?: number): number {
    const v = this.raw[key];
    if (v == null) {
      if (fallback !== undefined) return fallback;
      throw new LanternError(`${this.file}: '${key}' is missing; a ${this.family} config.json needs it`);
    }
    if (typeof v !== 'number' || !Number.isFinite(v) || v <= 0) throw new LanternError(`${this.file}: '${key}' must be a positive number, got ${JSON.stringify(v)}`);
    return v;
  }

  /** A positive number or null/absent (soft-capping, sliding windows). */
  optionalNum(key: string): number | undefined {
    return this.raw[key] == null ? undefined : this.num(key);
  }

  bool(key: string, fallback: boolean): boolean {
    const v = this.raw[key];
    if (v == null) return fallback;
    if (typeof v !== 'boolean') throw new LanternError(`${this.file}: '${key}' must be true or false, got ${JSON.stringify(v)}`);
    return v;
  }

  activation(keys: string[], fallback: Activation): Activation {
    const key = keys.find((k) => this.raw[k] != null);
    const name = key === undefined ? fallback : String(this.raw[key]);
    // Own keys only: 'constructor' or 'toString' must not find Object.prototype's functions.
    const act = Object.hasOwn(ACTIVATIONS, name) ? ACTIVATIONS[name] : undefined;
    if (!act) throw new LanternError(`${this.file}: unsupported ${key ?? keys[0]} '${name}' (supported: ${Object.keys(ACTIVATIONS).join(', ')})`);
    return act;
  }

  /** head_dim, which may be absent or null: then hidden / heads, which must divide. */
  headDim(dModel: number, nHeads: number, dModelKey: string, headsKey: string): number {
    if (this.raw.head_dim != null) return this.int('head_dim');
    if (dModel % nHeads !== 0) throw new LanternError(`${this.file}: ${dModelKey}=${dModel} is not divisible by ${headsKey}=${nHeads}`);
    return dModel / nHeads;
  }

  kvHeads(nHeads: number): number {
    const K = this.int('num_key_value_heads', nHeads);
    if (nHeads % K !== 0) throw new LanternError(`${this.file}: num_attention_heads=${nHeads} is not a multiple of num_key_value_heads=${K}`);
    return K;
  }

  /**
   * The rotary embedding, from either layout: transformers 4.x (`rope_theta`, `rope_scaling`,
   * `partial_rotary_factor`) or v5's `rope_parameters` (which Gemma 3 nests per layer kind, then
   * `kind` picks one). Scalings Lantern does not implement are an error naming the field.
   */
  rope(dHead: number, opts: { defaultBase?: number; kind?: 'full_attention' | 'sliding_attention'; partialKeys?: string[]; baseKeys?: string[] } = {}): Rope {
    let params = this.raw.rope_parameters as Record<string, unknown> | undefined;
    let where = 'rope_parameters';
    if (params && opts.kind && typeof params[opts.kind] === 'object' && params[opts.kind] !== null) {
      params = params[opts.kind] as Record<string, unknown>;
      where = `rope_parameters.${opts.kind}`;
    }
    const scalingRaw = (params ?? this.raw.rope_scaling) as Record<string, unknown> | null | undefined;
    if (!params) where = 'rope_scaling';
    const baseKeys = opts.baseKeys ?? ['rope_theta'];
    const baseKey = baseKeys.find((k) => this.raw[k] != null);
    const base = params?.rope_theta != null ? Number(params.rope_theta) : baseKey ? this.num(baseKey) : (opts.defaultBase ?? 10000);
    if (!(base > 0) || !Number.isFinite(base)) throw new LanternError(`${this.file}: the rotary base must be a positive number, got ${base}`);
    const partialKey = [...(opts.partialKeys ?? []), 'partial_rotary_factor'].find((k) => this.raw[k] != null);
    const fraction = params?.partial_rotary_factor != null ? Number(params.partial_rotary_factor) : partialKey ? this.num(partialKey) : 1;
    if (!(fraction > 0 && fraction <= 1)) throw new LanternError(`${this.file}: the rotary fraction must be in (0, 1], got ${fraction}`);
    let dims = Math.floor(dHead * fraction);
    dims -= dims % 2;
    if (dims < 2) throw new LanternError(`${this.file}: a rotary fraction of ${fraction} of head_dim ${dHead} leaves no dimensions to rotate`);
    const rope: Rope = { dims, base };
    if (scalingRaw == null || typeof scalingRaw !== 'object') return rope;
    const type = String(scalingRaw.rope_type ?? scalingRaw.type ?? 'default');
    const num = (k: string, fallback?: number) => {
      const v = scalingRaw[k] ?? fallback;
      if (typeof v !== 'number' || !Number.isFinite(v) || v <= 0) throw new LanternError(`${this.file}: ${where}.${k} must be a positive number, got ${JSON.stringify(scalingRaw[k])}`);
      return v;
    };
    if (type === 'default') return rope;
    if (type === 'linear') return { ...rope, scaling: { type: 'linear', factor: num('factor') } };
    if (type === 'llama3') {
      const s = { type: 'llama3' as const, factor: num('factor'), lowFreqFactor: num('low_freq_factor', 1), highFreqFactor: num('high_freq_factor', 4), originalContext: num('original_max_position_embeddings', 8192) };
      if (s.highFreqFactor <= s.lowFreqFactor) throw new LanternError(`${this.file}: ${where}: high_freq_factor must exceed low_freq_factor`);
      return { ...rope, scaling: s };
    }
    throw new LanternError(`${this.file}: ${where} type '${type}' is not implemented (Lantern implements default, linear and llama3 rotary scaling)`);
  }

  /** Fields that would change the math in ways Lantern does not implement. */
  reject(checks: [key: string, unsupported: (v: unknown) => boolean, why: string][]): void {
    for (const [key, bad, why] of checks) {
      if (this.raw[key] != null && bad(this.raw[key])) throw new LanternError(`${this.file}: ${key}=${JSON.stringify(this.raw[key])} is not supported (${why})`);
    }
  }
}

const ACTIVATIONS: Record<string, Activation> = {
  gelu_new: 'gelu_new', gelu_pytorch_tanh: 'gelu_new', gelu_fast: 'gelu_new', gelu: 'gelu', relu: 'relu', silu: 'silu', swish: 'silu',
};
