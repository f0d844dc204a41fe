/**
 * Applying llama.cpp control vectors to a GGUF model by baking them into a steered copy.
 *
 * llama.cpp adds a control vector's `direction.{l}` to the output of block l, right after the
 * block's last residual add (build_cvec(cur, il) in each model's graph). node-llama-cpp has no
 * binding for llama_set_adapter_cvec, so the vector goes into the file instead: where llama.cpp's
 * graph adds ffn_down's bias to the MLP output just before that output joins the residual stream,
 *   block output = resid + (W_down·h + b) + v = resid + (W_down·h + (b + v)),
 * so a copy whose `blk.{l}.ffn_down.bias` is b + Σ strength × direction.{l} computes what llama.cpp
 * computes with the vectors applied (up to float rounding of the order of the adds). Only that bias
 * changes; every other tensor, quantized or not, is copied byte for byte.
 *
 * Which architectures allow it was read from llama.cpp's graphs (src/models/<arch>.cpp of the
 * version node-llama-cpp bundles): those listed in UNSUPPORTED have no such bias.
 */
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { LanternError } from '../errors.js';
import { lanternHome } from '../paths.js';
import { readControlVector } from './control-vector.js';
import type { GgufInfo, GgufTensorInfo } from './gguf-check.js';
import { readAt, rewriteGguf, type GgufReplacement } from './gguf-write.js';

/** A llama.cpp control vector file and how strongly to apply it. */
export interface ControlVectorSpec {
  /** A control vector GGUF (`general.architecture = controlvector`). */
  path: string;
  /** What its directions are multiplied by (default 1), as llama.cpp's --control-vector-scaled. */
  strength?: number;
}

/** Architectures whose graph adds ffn_down's bias right before block l's residual add (and loads it). */
const SUPPORTED = new Set(['llama', 'gpt2', 'gptneox']);

/** Why the others cannot take a control vector as a bias, from their llama.cpp graphs. */
const UNSUPPORTED: Record<string, string> = {
  qwen2: "llama.cpp's qwen2 graph loads no ffn_down bias, nor any other tensor added between the MLP and the residual add",
  qwen3: "llama.cpp's qwen3 graph loads no ffn_down bias, nor any other tensor added between the MLP and the residual add",
  gemma: "llama.cpp's gemma graph loads no ffn_down bias, nor any other tensor added between the MLP and the residual add",
  phi3: "llama.cpp's phi3 graph loads no ffn_down bias, nor any other tensor added between the MLP and the residual add",
  gemma2: "llama.cpp's gemma2 graph normalizes the MLP output (post_ffw_norm) after ffn_down, so a bias there is normalized away, and a norm's weight scales rather than adds",
  gemma3: "llama.cpp's gemma3 graph normalizes the MLP output (post_ffw_norm) after ffn_down, so a bias there is normalized away, and a norm's weight scales rather than adds",
};

const GGML_F32 = 0;

/** Σ strength × direction per block, checked against the model's blocks and width. */
function summedDirections(specs: ControlVectorSpec[], nLayers: number, dModel: number): Map<number, Float32Array> {
  const sum = new Map<number, Float32Array>();
  for (const spec of specs) {
    const strength = spec.strength ?? 1;
    if (!Number.isFinite(strength)) throw new LanternError(`the strength of control vector ${spec.path} must be a finite number, got ${strength}`);
    const cv = readControlVector(spec.path);
    for (const [block, v] of cv.directions) {
      if (v.length !== dModel) throw new LanternError(`control vector ${spec.path} has ${v.length} values per direction; the model's residual stream has ${dModel}`);
      if (block >= nLayers) throw new LanternError(`control vector ${spec.path} steers block ${block}, past the model's last block (${nLayers - 1})`);
      let acc = sum.get(block);
      if (!acc) sum.set(block, (acc = new Float32Array(dModel)));
      // Summed in float32, as llama.cpp's common_control_vector_load sums the files it is given.
      for (let i = 0; i < dModel; i++) acc[i] += strength * v[i];
    }
  }
  for (const [block, acc] of sum) {
    const bad = acc.findIndex((x) => !Number.isFinite(x));
    if (bad >= 0) throw new LanternError(`the control vectors for block ${block}, times their strengths, overflow float32 at index ${bad} (${acc[bad]}); use smaller strengths`);
  }
  return sum;
}

function metaNumber(info: GgufInfo, key: string): number | undefined {
  const v = info.metadata.get(key)?.value;
  return typeof v === 'bigint' ? Number(v) : typeof v === 'number' ? v : undefined;
}

/** Checks that `info`'s architecture adds ffn_down's bias right before each block's residual add; returns the architecture. */
function checkSteerable(info: GgufInfo, where: string): string {
  const arch = String(info.metadata.get('general.architecture')?.value);
  if (!SUPPORTED.has(arch)) {
    throw new LanternError(`${where}: cannot apply a control vector to a ${arch} model: ${UNSUPPORTED[arch] ?? `Lantern has not checked where llama.cpp's ${arch} graph adds an MLP output bias`}; ${[...SUPPORTED].join(', ')} models can be steered`);
  }
  if ((metaNumber(info, `${arch}.expert_count`) ?? 0) > 0) {
    throw new LanternError(`${where}: cannot apply a control vector to a mixture-of-experts ${arch} model: llama.cpp's expert MLPs take no ffn_down bias`);
  }
  const scaled = info.tensors.find((t) => /^blk\.\d+\.ffn_down\.scale$/.test(t.name));
  if (scaled) throw new LanternError(`${where}: cannot apply a control vector: llama.cpp multiplies the ffn_down bias by ${scaled.name}, so a vector added there would be scaled`);
  return arch;
}

/** The existing bias (llama.cpp's converter and quantizer keep one-dimensional tensors F32). */
function readBias(fd: number, info: GgufInfo, t: GgufTensorInfo, dModel: number, where: string): Float32Array {
  if (t.dims.length !== 1 || t.dims[0] !== dModel) throw new LanternError(`${where}: ${t.name} is [${t.dims.join(', ')}], not [${dModel}]`);
  if (t.type === GGML_F32) {
    const raw = readAt(fd, info.dataOffset + t.offset, t.bytes, where);
    return new Float32Array(raw.buffer.slice(raw.byteOffset, raw.byteOffset + raw.length));
  }
  throw new LanternError(`${where}: ${t.name} has ggml type ${t.type}; a control vector can be added only to an F32 bias`);
}

/**
 * The path of a copy of `file` (already checked: `info`) with the control vectors baked into
 * ffn_down's bias. The name hashes the model file's identity and the summed vectors, so the same
 * steering reuses the copy; it is written beside others of its kind under `cacheDir` (default
 * $LANTERN_HOME/steered-gguf) through a temporary name, so a reader never sees half a file.
 */
export function steeredGgufCopy(file: string, info: GgufInfo, specs: ControlVectorSpec[], cacheDir = path.join(lanternHome(), 'steered-gguf')): string {
  if (specs.length === 0) throw new LanternError('no control vectors to apply');
  const arch = checkSteerable(info, file);
  const nLayers = metaNumber(info, `${arch}.block_count`)!;
  const dModel = metaNumber(info, `${arch}.embedding_length`)!;
  const steer = summedDirections(specs, nLayers, dModel);

  const st = fs.statSync(file);
  const hash = crypto.createHash('sha256').update(JSON.stringify([path.resolve(file), st.size, st.mtimeMs, st.ino]));
  for (const block of [...steer.keys()].sort((a, b) => a - b)) hash.update(`${block}:`).update(new Uint8Array(steer.get(block)!.buffer));
  fs.mkdirSync(cacheDir, { recursive: true });
  const out = path.join(cacheDir, `${path.basename(file, '.gguf')}-steered-${hash.digest('hex').slice(0, 16)}.gguf`);
  if (fs.existsSync(out)) return out;

  const fd = fs.openSync(file, 'r');
  const replaced = new Map<string, GgufReplacement>();
  try {
    for (const t of info.tensors) {
      const add = steer.get(Number(/^blk\.(\d+)\.ffn_down\.bias$/.exec(t.name)?.[1] ?? -1));
      if (!add) continue;
      const bias = readBias(fd, info, t, dModel, file);
      for (let i = 0; i < dModel; i++) bias[i] += add[i];
      const bad = bias.findIndex((x) => !Number.isFinite(x));
      if (bad >= 0) throw new LanternError(`${file}: ${t.name} plus the control vectors overflows float32 at index ${bad} (${bias[bad]}); use smaller strengths`);
      replaced.set(t.name, { dims: [dModel], type: GGML_F32, data: bias });
    }
  } finally {
    fs.closeSync(fd);
  }
  // Blocks with no bias yet get one (llama's is optional: absent, llama.cpp adds none).
  const added = [...steer].filter(([l]) => !replaced.has(`blk.${l}.ffn_down.bias`))
    .map(([l, v]) => ({ name: `blk.${l}.ffn_down.bias`, dims: [dModel], type: GGML_F32, data: Float32Array.from(v) }));
  rewriteGguf(file, info, out, replaced, added);
  return out;
}
