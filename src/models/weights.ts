/**
 * Reading a Hugging Face checkpoint into the weights an architecture declares: each weight is
 * the rows of one or more stored tensors (fused q/k/v, gate/up), converted to float32 while
 * streaming straight into its final buffer, so a BF16 model never exists twice in memory.
 * Everything that can be checked from the headers is checked before the first byte is read.
 */
import fs from 'node:fs';
import os from 'node:os';
import { LanternError, nearest } from '../errors.js';
import { Tensor } from '../engine/tensor.js';
import type { ModelConfig } from './config.js';
import type { WeightSpec } from './architecture.js';
import { weightSpecs } from './forward.js';
import { elementCount, isFloatDType, openModelWeights, readFloat32, ModelWeights, WritableTensor } from './safetensors.js';

/** Where each stored tensor a weight needs lives, found and checked against the config. */
function locate(folder: string, cfg: ModelConfig, stored: ModelWeights, spec: WeightSpec) {
  const rest = spec.shape.slice(1);
  const sources = spec.hf.map((hf, i) => {
    const candidates = [hf, `transformer.${hf}`, hf.replace(/^model\./, ''), hf.replace(/^gpt_neox\./, '')];
    const name = candidates.find((c) => stored.has(c));
    if (!name) {
      if (spec.name === 'unembed.W_U_T') {
        throw new LanternError(
          `${folder}: config.json sets tie_word_embeddings: false, but the weights have no '${hf}' [${spec.shape}] (the unembedding); ` +
            'add it, or set tie_word_embeddings: true to reuse the token embedding',
        );
      }
      const near = nearest(hf, stored.keys());
      throw new LanternError(
        `${folder}: weights have no tensor '${hf}' (needed for ${spec.name}; is this a ${cfg.architecture} checkpoint?)` +
          (near.length ? `; nearest stored names: ${near.map((n) => `'${n}'`).join(', ')}` : '; the weights hold no tensors'),
      );
    }
    const found = stored.get(name)!;
    if (!isFloatDType(found.entry.dtype)) {
      throw new LanternError(`${found.header.path}: tensor '${name}' is ${found.entry.dtype}; model weights must be floating point (F32, F16, BF16 or F64)`);
    }
    const shape = found.entry.shape;
    const want = spec.rows ? [spec.rows[i], ...rest] : spec.shape;
    if (shape.join(',') !== want.join(',')) {
      throw new LanternError(`${found.header.path}: tensor '${name}' has shape [${shape}], but config.json implies [${want}] (for ${spec.name})`);
    }
    return { name, ...found };
  });
  return sources;
}

/** Layer indices in stored tensor names, so a config.json claiming fewer layers than the weights hold is caught. */
function storedLayers(stored: ModelWeights): number {
  let max = -1;
  for (const name of stored.keys()) {
    const m = /(?:^|\.)(?:h|layers)\.(\d+)\./.exec(name);
    if (m) max = Math.max(max, Number(m[1]));
  }
  return max + 1;
}

/** Memory this process may use: the machine's, or its cgroup's limit when lower. */
export function availableMemory(): number {
  let limit = os.totalmem();
  for (const file of ['/sys/fs/cgroup/memory.max', '/sys/fs/cgroup/memory/memory.limit_in_bytes']) {
    try {
      const v = Number(fs.readFileSync(file, 'utf8').trim());
      if (Number.isFinite(v) && v > 0) limit = Math.min(limit, v);
    } catch { /* no such cgroup file */ }
  }
  return limit;
}

const GB = (n: number) => `${(n / 2 ** 30).toFixed(2)} GiB`;

/**
 * Everything about a checkpoint that can be checked from its headers, before any weight is read:
 * every tensor the config needs is present with the implied shape and a float dtype, the weights
 * hold no more layers than the config says, and the float32 weights fit in memory.
 */
export function checkWeights(folder: string, cfg: ModelConfig, opts: { memoryLimit?: number } = {}) {
  const stored = openModelWeights(folder);
  const specs = [...weightSpecs(cfg).values()];
  const layers = storedLayers(stored);
  if (layers > cfg.nLayers) {
    throw new LanternError(`${folder}: the weights hold ${layers} layers, but config.json says ${cfg.nLayers}; fix the layer count in config.json`);
  }
  const located = specs.map((spec) => [spec, locate(folder, cfg, stored, spec)] as const);
  const bytes = specs.reduce((n, s) => n + 4 * s.shape.reduce((p, q) => p * q, 1), 0);
  const limit = opts.memoryLimit ?? availableMemory();
  if (bytes > limit) {
    throw new LanternError(`${folder}: the model needs ${GB(bytes)} for its float32 weights, more than the ${GB(limit)} this machine (or its cgroup) has`);
  }
  return { located, bytes };
}

/** Reads every weight the config needs from a Hugging Face folder, as float32. */
export function loadWeights(folder: string, cfg: ModelConfig, opts: { memoryLimit?: number } = {}): Record<string, Tensor> {
  const { located } = checkWeights(folder, cfg, opts);
  const out: Record<string, Tensor> = {};
  for (const [spec, sources] of located) {
    const data = new Float32Array(spec.shape.reduce((p, q) => p * q, 1));
    let offset = 0;
    for (const s of sources) {
      const n = elementCount(s.entry);
      readFloat32(s.header, s.name, { into: data.subarray(offset, offset + n) });
      offset += n;
    }
    const bad = firstNonFinite(data);
    if (bad >= 0) {
      throw new LanternError(`${sources[0].header.path}: tensor '${sources.map((s) => s.name).join("' + '")}' holds a non-finite value (${data[bad]} at element ${bad}); the checkpoint is corrupt`);
    }
    out[spec.name] = Tensor.f32(data, spec.shape);
  }
  return out;
}

function firstNonFinite(a: Float32Array): number {
  for (let i = 0; i < a.length; i++) if (a[i] - a[i] !== 0) return i; // NaN and ±Infinity give NaN
  return -1;
}

/** Lantern-named weights -> the family's Hugging Face tensors (fused weights split back into the tensors they came from). */
export function toHfTensors(cfg: ModelConfig, weights: Record<string, Float32Array>, dtype: 'F32' | 'F16' | 'BF16' = 'F32'): Record<string, WritableTensor> {
  const tensors: Record<string, WritableTensor> = {};
  for (const spec of weightSpecs(cfg).values()) {
    const data = weights[spec.name];
    if (!data) throw new LanternError(`no weight '${spec.name}' to write`);
    const rows = spec.rows ?? [spec.shape[0]];
    const rowSize = spec.shape.slice(1).reduce((p, q) => p * q, 1);
    let offset = 0;
    spec.hf.forEach((hf, i) => {
      const shape = spec.hf.length > 1 ? [rows[i], ...spec.shape.slice(1)] : spec.shape;
      tensors[hf] = { dtype, shape, data: data.subarray(offset, offset + rows[i] * rowSize) };
      offset += rows[i] * rowSize;
    });
  }
  return tensors;
}
