/**
 * llama.cpp control vectors: steering directions as a GGUF file (`general.architecture =
 * controlvector`, one F32 tensor `direction.{n}` per steered layer), the format llama.cpp's
 * `--control-vector` and repeng's `export_gguf` read and write.
 *
 * Layer numbering (llama.cpp's common_control_vector_load and llama_adapter_cvec::apply): the
 * data of `direction.{n}` is added, times its strength, to the output of llama.cpp's layer n,
 * counted from 0, at every position; n starts at 1, since llama.cpp never steers layer 0's output.
 * So `direction.{l}` is exactly a vector added to Lantern's `blocks.{l}.hook_resid_post`, and
 * the functions here take Lantern's block numbers, which are the file's.
 */
import fs from 'node:fs';
import { LanternError } from '../errors.js';
import { fileKind } from '../files.js';
import { parseGguf } from './gguf-check.js';
import { GgufValueType as T, writeGguf } from './gguf-write.js';

/** Far above real control vectors (80 layers × 8192 floats is 2.5 MiB). */
const MAX_BYTES = 256 * 2 ** 20;

/**
 * A llama.cpp control vector in memory: per-block steering directions and the model family they
 * belong to, as read by {@link readControlVector} and written by {@link writeControlVector}.
 */
export interface ControlVector {
  /** Which model family the directions were found on (controlvector.model_hint: config.json's model_type, as repeng writes). */
  modelHint: string;
  /** Block l -> the vector added to blocks.{l}.hook_resid_post (l ≥ 1). */
  directions: Map<number, Float32Array>;
}

export interface WriteControlVectorOptions {
  /** The model's layer count and width, when known: directions are checked against them. */
  nLayers?: number;
  dModel?: number;
}

/** Checks a control vector's directions: blocks 1 to nLayers - 1, one width, finite values. */
function checkDirections(cv: ControlVector, o: WriteControlVectorOptions): number {
  if (cv.directions.size === 0) throw new LanternError('a control vector needs at least one direction');
  let width: number | undefined;
  for (const [block, v] of cv.directions) {
    if (!Number.isInteger(block) || block < 1) {
      throw new LanternError(`llama.cpp adds control vectors to the outputs of blocks 1 and up; block ${block} cannot be steered${block === 0 ? ' (llama.cpp never steers the output of block 0)' : ''}`);
    }
    if (o.nLayers !== undefined && block >= o.nLayers) throw new LanternError(`block ${block} is past the model's last block (${o.nLayers - 1})`);
    if (!(v instanceof Float32Array) || v.length === 0) throw new LanternError(`the direction for block ${block} must be a non-empty Float32Array`);
    width ??= v.length;
    if (v.length !== width) throw new LanternError(`the direction for block ${block} has ${v.length} values, the others ${width}`);
    const bad = v.findIndex((x) => !Number.isFinite(x));
    if (bad >= 0) throw new LanternError(`the direction for block ${block} has a non-finite value (${v[bad]}) at index ${bad}`);
  }
  if (o.dModel !== undefined && width !== o.dModel) throw new LanternError(`the directions have ${width} values; the model's residual stream has ${o.dModel}`);
  return width!;
}

/** Writes a control vector file; returns its size in bytes. */
export function writeControlVector(file: string, cv: ControlVector, o: WriteControlVectorOptions = {}): number {
  if (!cv.modelHint) throw new LanternError('a control vector needs a model hint (the model family it was found on)');
  checkDirections(cv, o);
  const blocks = [...cv.directions.keys()].sort((a, b) => a - b);
  return writeGguf(file, [
    ['general.architecture', { t: T.STRING, v: 'controlvector' }],
    ['controlvector.model_hint', { t: T.STRING, v: cv.modelHint }],
    ['controlvector.layer_count', { t: T.U32, v: blocks.length }],
  ], blocks.map((l) => ({ name: `direction.${l}`, ne: [cv.directions.get(l)!.length], data: cv.directions.get(l)!, f16: false })));
}

/**
 * Reads a control vector file, checked as llama.cpp's loader checks it (direction.{n} tensors,
 * n ≥ 1, F32, one dimension, one width), so a file read here is one llama.cpp accepts.
 */
export function readControlVector(file: string): ControlVector {
  let fd: number;
  try {
    fd = fs.openSync(file, fs.constants.O_RDONLY | (fs.constants.O_NONBLOCK ?? 0));
  } catch (e) {
    throw new LanternError((e as NodeJS.ErrnoException).code === 'ENOENT' ? `no control vector file at ${file}` : `cannot read ${file}: ${(e as Error).message}`);
  }
  let buf: Buffer;
  try {
    const st = fs.fstatSync(fd);
    if (!st.isFile()) throw new LanternError(`${file} is not a regular file (${fileKind(st)})`);
    if (st.size > MAX_BYTES) throw new LanternError(`${file} is ${(st.size / 2 ** 20).toFixed(0)} MiB, more than a control vector can sensibly be`);
    buf = Buffer.alloc(st.size);
    let got = 0;
    while (got < st.size) {
      const n = fs.readSync(fd, buf, got, st.size - got, got);
      if (n === 0) break;
      got += n;
    }
  } finally {
    fs.closeSync(fd);
  }
  const info = parseGguf({ size: buf.length, read: (pos, len) => buf.subarray(pos, pos + len) }, file);
  const arch = info.metadata.get('general.architecture')?.value;
  if (arch !== 'controlvector') throw new LanternError(`${file} is not a control vector (its general.architecture is ${JSON.stringify(arch ?? null)}, not "controlvector")`);
  const hint = info.metadata.get('controlvector.model_hint')?.value;
  const directions = new Map<number, Float32Array>();
  for (const t of info.tensors) {
    const m = /^direction\.(\d+)$/.exec(t.name);
    if (!m) throw new LanternError(`${file}: tensor ${t.name} is not named direction.{layer}`);
    const block = Number(m[1]);
    if (block < 1) throw new LanternError(`${file}: ${t.name}: layers are counted from 1 (llama.cpp refuses direction.0)`);
    if (t.type !== 0 || t.dims.length !== 1) throw new LanternError(`${file}: ${t.name} must be a one-dimensional F32 tensor (llama.cpp refuses others)`);
    const at = info.dataOffset + t.offset;
    directions.set(block, new Float32Array(buf.buffer.slice(buf.byteOffset + at, buf.byteOffset + at + t.bytes)));
  }
  // llama.cpp reads neither the hint nor the count; a file without them is still one it applies.
  const cv = { modelHint: typeof hint === 'string' ? hint : '', directions };
  if (!directions.size) throw new LanternError(`${file}: a control vector with no direction tensors`);
  checkDirections(cv, {});
  return cv;
}
