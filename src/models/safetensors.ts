/**
 * Safetensors reading and writing (https://github.com/huggingface/safetensors).
 *
 * Layout: u64 little-endian header length N, N bytes of JSON header, then the data region.
 * Offsets in the header are relative to the data region; we store absolute file offsets.
 *
 * Everything is read with positional reads: model files can exceed 2 GiB (the limit of a
 * single Buffer / readFileSync), and callers load tensors lazily one at a time.
 */
import * as fs from 'node:fs';
import * as nodePath from 'node:path';
import { fileKind } from '../files.js';
import { LanternError, nearest } from '../errors.js';

export type SafetensorsDType = 'F64' | 'F32' | 'F16' | 'BF16' | 'I64' | 'I32' | 'I16' | 'I8' | 'U8' | 'BOOL';

/** `begin`/`end` are absolute byte offsets in the file. */
export interface TensorEntry {
  dtype: SafetensorsDType;
  shape: number[];
  begin: number;
  end: number;
}

export interface SafetensorsHeader {
  path: string;
  tensors: Map<string, TensorEntry>;
  metadata: Record<string, string>;
}

export const DTYPE_BYTES: Readonly<Record<SafetensorsDType, number>> = {
  F64: 8,
  F32: 4,
  F16: 2,
  BF16: 2,
  I64: 8,
  I32: 4,
  I16: 2,
  I8: 1,
  U8: 1,
  BOOL: 1,
};

const FLOAT_DTYPES: ReadonlySet<SafetensorsDType> = new Set(['F64', 'F32', 'F16', 'BF16']);

export function isFloatDType(dtype: SafetensorsDType): boolean {
  return FLOAT_DTYPES.has(dtype);
}

/** Same cap as the reference implementation: a bigger header is corruption, not a model. */
const MAX_HEADER_BYTES = 100_000_000;

/** Bytes per positional read; a multiple of 8 so no element straddles two chunks. */
const CHUNK_BYTES = 1 << 24;

const LITTLE_ENDIAN = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;

// ---------------------------------------------------------------------------------------------
// Scalar conversions

const scratchF32 = new Float32Array(1);
const scratchU32 = new Uint32Array(scratchF32.buffer);

let f16Table: Uint32Array | undefined;

/** All 65536 half-precision bit patterns as float32 bit patterns: conversion becomes one lookup. */
function f16ToF32BitsTable(): Uint32Array {
  if (f16Table) return f16Table;
  const table = new Uint32Array(65536);
  for (let h = 0; h < 65536; h++) {
    const sign = (h & 0x8000) << 16;
    const exp = (h >>> 10) & 0x1f;
    let mant = h & 0x3ff;
    if (exp === 0x1f) {
      // Keeps NaN payloads (and so their quiet bit) instead of canonicalising them.
      table[h] = sign | 0x7f800000 | (mant << 13);
    } else if (exp !== 0) {
      table[h] = sign | ((exp + 112) << 23) | (mant << 13);
    } else if (mant === 0) {
      table[h] = sign;
    } else {
      // Subnormal half: every one is a normal float32, so renormalise the mantissa.
      let e = 113;
      while ((mant & 0x400) === 0) {
        mant <<= 1;
        e--;
      }
      table[h] = sign | (e << 23) | ((mant & 0x3ff) << 13);
    }
  }
  f16Table = table;
  return table;
}

export function float16ToFloat32(bits: number): number {
  scratchU32[0] = f16ToF32BitsTable()[bits & 0xffff];
  return scratchF32[0];
}

/** Round to nearest, ties to even; overflow gives ±inf, NaN stays NaN. */
export function float32ToFloat16(x: number): number {
  scratchF32[0] = x;
  const b = scratchU32[0];
  const sign = (b >>> 16) & 0x8000;
  const exp = (b >>> 23) & 0xff;
  let mant = b & 0x7fffff;
  if (exp === 0xff) return sign | 0x7c00 | (mant !== 0 ? 0x200 | (mant >>> 13) : 0);
  const e = exp - 112; // rebias 127 -> 15
  if (e >= 0x1f) return sign | 0x7c00;
  if (e <= 0) {
    // Below 2^-25 even rounding up cannot reach the smallest subnormal (2^-24).
    if (e < -10) return sign;
    mant |= 0x800000;
    const shift = 14 - e;
    const half = mant >>> shift;
    const rem = mant & ((1 << shift) - 1);
    const halfway = 1 << (shift - 1);
    // A carry out of the subnormal range lands on 0x400, the smallest normal: still correct.
    return sign | (rem > halfway || (rem === halfway && (half & 1) !== 0) ? half + 1 : half);
  }
  const r = (e << 10) | (mant >>> 13);
  const rem = mant & 0x1fff;
  // A carry into the exponent is correct too, up to 0x7c00 = inf.
  return sign | (rem > 0x1000 || (rem === 0x1000 && (r & 1) !== 0) ? r + 1 : r);
}

export function bfloat16ToFloat32(bits: number): number {
  scratchU32[0] = (bits & 0xffff) << 16;
  return scratchF32[0];
}

/** Round to nearest, ties to even; NaN becomes a quiet NaN rather than rounding to inf. */
export function float32ToBfloat16(x: number): number {
  scratchF32[0] = x;
  const b = scratchU32[0];
  if ((b & 0x7f800000) === 0x7f800000 && (b & 0x7fffff) !== 0) return (b >>> 16) | 0x40;
  return ((b + 0x7fff + ((b >>> 16) & 1)) >>> 16) & 0xffff;
}

// ---------------------------------------------------------------------------------------------
// Header

function fail(path: string, problem: string): never {
  throw new LanternError(`${path}: ${problem}`);
}

function describe(e: unknown): string {
  return e instanceof Error ? e.message.split('\n')[0] : String(e);
}

/**
 * Opens a regular file for reading. Non-blocking, so that a FIFO (which would block `open` until
 * a writer comes, forever) is opened at once and then refused like a device or a folder.
 */
function openForRead(path: string): number {
  let fd: number;
  try {
    fd = fs.openSync(path, fs.constants.O_RDONLY | (fs.constants.O_NONBLOCK ?? 0));
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') fail(path, 'file not found');
    if (code === 'EISDIR') fail(path, 'is a directory, not a safetensors file');
    fail(path, `cannot open: ${describe(e)}`);
  }
  const st = fs.fstatSync(fd);
  if (!st.isFile()) {
    fs.closeSync(fd);
    fail(path, st.isDirectory() ? 'is a directory, not a safetensors file' : `is ${fileKind(st)}, not a regular file`);
  }
  return fd;
}

/** A small JSON file (an index) read whole, refusing what is not a regular file of at most `max` bytes. */
function readSmallFile(path: string, max: number): string {
  const fd = openForRead(path);
  try {
    const size = fs.fstatSync(fd).size;
    if (size > max) fail(path, `is ${size} bytes; more than the ${max} bytes such a file could need`);
    const buf = new Uint8Array(size);
    readFully(fd, path, buf, 0);
    return Buffer.from(buf.buffer, buf.byteOffset, buf.byteLength).toString('utf8');
  } finally {
    fs.closeSync(fd);
  }
}

/** Fills `dst` from `position`, looping because readSync may return fewer bytes than asked. */
function readFully(fd: number, path: string, dst: Uint8Array, position: number): void {
  let done = 0;
  while (done < dst.byteLength) {
    const n = fs.readSync(fd, dst, done, dst.byteLength - done, position + done);
    if (n === 0) fail(path, `file ended at byte ${position + done} while reading (was it changed since its header was read?)`);
    done += n;
  }
}

function isPlainObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function isDType(v: unknown): v is SafetensorsDType {
  return typeof v === 'string' && Object.hasOwn(DTYPE_BYTES, v);
}

function isCount(v: unknown): v is number {
  return typeof v === 'number' && Number.isSafeInteger(v) && v >= 0;
}

/** Reads a safetensors file's header (names, types, shapes, offsets) with bounded reads, checking it. */
export function readSafetensorsHeader(path: string): SafetensorsHeader {
  const fd = openForRead(path);
  try {
    const stat = fs.fstatSync(fd);
    if (stat.isDirectory()) fail(path, 'is a directory, not a safetensors file');
    const size = stat.size;
    if (size < 8) fail(path, `file is ${size} bytes, shorter than the 8-byte header length`);
    const prefix = new Uint8Array(8);
    readFully(fd, path, prefix, 0);
    const headerLen = new DataView(prefix.buffer).getBigUint64(0, true);
    if (headerLen > BigInt(size - 8)) {
      fail(path, `header length ${headerLen} is larger than the file (${size} bytes); not a safetensors file or truncated`);
    }
    if (headerLen > BigInt(MAX_HEADER_BYTES)) fail(path, `header length ${headerLen} exceeds the ${MAX_HEADER_BYTES}-byte limit`);
    const n = Number(headerLen);
    const raw = new Uint8Array(n);
    readFully(fd, path, raw, 8);

    let json: unknown;
    try {
      json = JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(raw));
    } catch (e) {
      fail(path, `header is not JSON (${describe(e)})`);
    }
    if (!isPlainObject(json)) fail(path, 'header is not a JSON object');

    const dataStart = 8 + n;
    const dataLen = size - dataStart;
    const tensors = new Map<string, TensorEntry>();
    let metadata: Record<string, string> = {};
    for (const [name, value] of Object.entries(json)) {
      if (name === '__metadata__') {
        metadata = parseMetadata(path, value);
        continue;
      }
      tensors.set(name, parseEntry(path, name, value, dataStart, dataLen));
    }
    checkCoverage(path, tensors, dataStart, dataLen);
    return { path, tensors, metadata };
  } finally {
    fs.closeSync(fd);
  }
}

function parseMetadata(path: string, value: unknown): Record<string, string> {
  if (!isPlainObject(value)) fail(path, '__metadata__ is not a JSON object');
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(value)) {
    if (typeof v !== 'string') fail(path, `__metadata__ value for "${k}" is not a string`);
    out[k] = v;
  }
  return out;
}

function parseEntry(path: string, name: string, value: unknown, dataStart: number, dataLen: number): TensorEntry {
  if (!isPlainObject(value)) fail(path, `tensor "${name}": header entry is not a JSON object`);
  const { dtype, shape, data_offsets: offsets } = value;
  if (!isDType(dtype)) {
    fail(path, `tensor "${name}": unknown dtype ${JSON.stringify(dtype)} (supported: ${Object.keys(DTYPE_BYTES).join(', ')})`);
  }
  if (!Array.isArray(shape) || !shape.every(isCount)) {
    fail(path, `tensor "${name}": shape ${JSON.stringify(shape)} is not a list of non-negative integers`);
  }
  if (!Array.isArray(offsets) || offsets.length !== 2 || !offsets.every(isCount)) {
    fail(path, `tensor "${name}": data_offsets ${JSON.stringify(offsets)} is not a pair of non-negative integers`);
  }
  const [begin, end] = offsets as [number, number];
  if (begin > end) fail(path, `tensor "${name}": data_offsets [${begin}, ${end}] are out of order (begin after end)`);
  if (end > dataLen) {
    fail(path, `tensor "${name}": data_offsets [${begin}, ${end}] go beyond the end of the file (data region is ${dataLen} bytes)`);
  }
  const elements = (shape as number[]).reduce((a, b) => a * b, 1);
  const expected = elements * DTYPE_BYTES[dtype];
  if (expected !== end - begin) {
    fail(
      path,
      `tensor "${name}": shape [${shape.join(', ')}] of ${dtype} needs ${expected} bytes but data_offsets [${begin}, ${end}] span ${end - begin}`,
    );
  }
  return { dtype, shape: shape as number[], begin: dataStart + begin, end: dataStart + end };
}

/** Like the reference implementation: tensors must tile the data region with no gap or overlap. */
function checkCoverage(path: string, tensors: Map<string, TensorEntry>, dataStart: number, dataLen: number): void {
  const sorted = [...tensors].sort((a, b) => a[1].begin - b[1].begin || a[1].end - b[1].end);
  let cursor = dataStart;
  let prev = '';
  for (const [name, t] of sorted) {
    if (t.begin < cursor) {
      fail(path, `tensor "${name}" overlaps tensor "${prev}" (data_offsets begin ${t.begin - dataStart}, previous ends at ${cursor - dataStart})`);
    }
    if (t.begin > cursor) {
      fail(path, `gap in the data region: bytes ${cursor - dataStart}..${t.begin - dataStart} belong to no tensor (before "${name}")`);
    }
    cursor = t.end;
    prev = name;
  }
  if (cursor !== dataStart + dataLen) {
    fail(path, `data region is ${dataLen} bytes but the tensors cover only ${cursor - dataStart} (trailing bytes belong to no tensor)`);
  }
}

// ---------------------------------------------------------------------------------------------
// Tensor data

function entryOf(header: SafetensorsHeader, name: string): TensorEntry {
  const entry = header.tensors.get(name);
  if (entry) return entry;
  const near = nearest(name, header.tensors.keys());
  fail(header.path, `no tensor "${name}"${near.length ? `; did you mean ${near.map((s) => `"${s}"`).join(', ')}?` : ' (file has no tensors)'}`);
}

export function elementCount(entry: TensorEntry): number {
  return entry.shape.reduce((a, b) => a * b, 1);
}

/**
 * Streams the tensor's bytes through an 8-byte-aligned scratch buffer: file offsets need not be
 * aligned, so typed-array views are only ever made over our own buffer.
 * `convert(bytes, firstElement, count)` gets whole elements only.
 */
function streamElements(
  header: SafetensorsHeader,
  entry: TensorEntry,
  convert: (chunk: ArrayBuffer, first: number, count: number) => void,
): void {
  const itemBytes = DTYPE_BYTES[entry.dtype];
  const total = entry.end - entry.begin;
  const scratch = new ArrayBuffer(Math.min(CHUNK_BYTES, Math.max(total, 8)));
  const fd = openForRead(header.path);
  try {
    for (let off = 0; off < total; off += CHUNK_BYTES) {
      const len = Math.min(CHUNK_BYTES, total - off);
      readFully(fd, header.path, new Uint8Array(scratch, 0, len), entry.begin + off);
      convert(scratch, off / itemBytes, len / itemBytes);
    }
  } finally {
    fs.closeSync(fd);
  }
}

/**
 * Reads float tensors (F64/F32/F16/BF16) converted to float32. When `shared` is true the
 * Float32Array is backed by a SharedArrayBuffer (so it can be handed to a worker thread without copying).
 */
export function readFloat32(header: SafetensorsHeader, name: string, opts: { shared?: boolean; into?: Float32Array } = {}): Float32Array {
  const entry = entryOf(header, name);
  if (!isFloatDType(entry.dtype)) {
    fail(header.path, `tensor "${name}" is ${entry.dtype}, an integer tensor; read it with readInt32`);
  }
  const n = elementCount(entry);
  if (opts.into && opts.into.length !== n) throw new Error(`readFloat32: ${name} has ${n} elements, the destination ${opts.into.length}`);
  // `into` lets a caller assemble one weight from several tensors (fused q/k/v) with no extra copy.
  const out = opts.into ?? new Float32Array(opts.shared ? new SharedArrayBuffer(n * 4) : new ArrayBuffer(n * 4));
  if (n === 0) return out;

  if (entry.dtype === 'F32' && LITTLE_ENDIAN) {
    // Straight into the destination: no scratch copy for the common case.
    const fd = openForRead(header.path);
    try {
      const bytes = new Uint8Array(out.buffer, out.byteOffset, out.byteLength);
      for (let off = 0; off < bytes.byteLength; off += CHUNK_BYTES) {
        readFully(fd, header.path, bytes.subarray(off, Math.min(off + CHUNK_BYTES, bytes.byteLength)), entry.begin + off);
      }
    } finally {
      fs.closeSync(fd);
    }
    return out;
  }

  const outBits = new Uint32Array(out.buffer, out.byteOffset, out.length);
  switch (entry.dtype) {
    case 'F16': {
      const table = f16ToF32BitsTable();
      streamElements(header, entry, (buf, first, count) => {
        const src = LITTLE_ENDIAN ? new Uint16Array(buf, 0, count) : leU16(buf, count);
        for (let i = 0; i < count; i++) outBits[first + i] = table[src[i]];
      });
      break;
    }
    case 'BF16': {
      // An Int32Array target keeps `<< 16` (negative for sign-bit values) on the int fast path.
      const outI32 = new Int32Array(out.buffer, out.byteOffset, out.length);
      streamElements(header, entry, (buf, first, count) => {
        const src = LITTLE_ENDIAN ? new Uint16Array(buf, 0, count) : leU16(buf, count);
        for (let i = 0; i < count; i++) outI32[first + i] = src[i] << 16;
      });
      break;
    }
    case 'F32':
      streamElements(header, entry, (buf, first, count) => {
        const dv = new DataView(buf);
        for (let i = 0; i < count; i++) out[first + i] = dv.getFloat32(i * 4, true);
      });
      break;
    case 'F64':
      streamElements(header, entry, (buf, first, count) => {
        if (LITTLE_ENDIAN) {
          const src = new Float64Array(buf, 0, count);
          for (let i = 0; i < count; i++) out[first + i] = src[i];
        } else {
          const dv = new DataView(buf);
          for (let i = 0; i < count; i++) out[first + i] = dv.getFloat64(i * 8, true);
        }
      });
      break;
  }
  return out;
}

function leU16(buf: ArrayBuffer, count: number): Uint16Array {
  const dv = new DataView(buf);
  const out = new Uint16Array(count);
  for (let i = 0; i < count; i++) out[i] = dv.getUint16(i * 2, true);
  return out;
}

/** Reads integer tensors (I64/I32/I16/I8/U8/BOOL) as Int32Array, throwing if an I64 value doesn't fit. */
export function readInt32(header: SafetensorsHeader, name: string): Int32Array {
  const entry = entryOf(header, name);
  if (isFloatDType(entry.dtype)) {
    fail(header.path, `tensor "${name}" is ${entry.dtype}, a float tensor; read it with readFloat32`);
  }
  const out = new Int32Array(elementCount(entry));
  if (out.length === 0) return out;
  switch (entry.dtype) {
    case 'I64':
      streamElements(header, entry, (buf, first, count) => {
        const dv = new DataView(buf);
        for (let i = 0; i < count; i++) {
          const lo = dv.getInt32(i * 8, true);
          const hi = dv.getInt32(i * 8 + 4, true);
          // Fits in int32 exactly when the high word is the sign extension of the low word.
          if (hi !== lo >> 31) {
            fail(header.path, `tensor "${name}": I64 value ${dv.getBigInt64(i * 8, true)} at element ${first + i} does not fit in int32`);
          }
          out[first + i] = lo;
        }
      });
      break;
    case 'I32':
      streamElements(header, entry, (buf, first, count) => {
        if (LITTLE_ENDIAN) out.set(new Int32Array(buf, 0, count), first);
        else {
          const dv = new DataView(buf);
          for (let i = 0; i < count; i++) out[first + i] = dv.getInt32(i * 4, true);
        }
      });
      break;
    case 'I16':
      streamElements(header, entry, (buf, first, count) => {
        const dv = new DataView(buf);
        for (let i = 0; i < count; i++) out[first + i] = dv.getInt16(i * 2, true);
      });
      break;
    case 'I8':
      streamElements(header, entry, (buf, first, count) => out.set(new Int8Array(buf, 0, count), first));
      break;
    case 'U8':
    case 'BOOL':
      streamElements(header, entry, (buf, first, count) => out.set(new Uint8Array(buf, 0, count), first));
      break;
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
// Model folders

export type ModelWeights = Map<string, { header: SafetensorsHeader; entry: TensorEntry }>;

/**
 * All tensors of a Hugging Face model folder: `model.safetensors`, or the shards listed in
 * `model.safetensors.index.json` (`weight_map: {tensorName: shardFile}`). Returns name -> {header, entry},
 * so callers read lazily one tensor at a time.
 */
export function openModelWeights(folder: string): ModelWeights {
  let isDir = false;
  try {
    isDir = fs.statSync(folder).isDirectory();
  } catch {
    fail(folder, 'model folder not found');
  }
  if (!isDir) fail(folder, 'is not a folder');

  const weights: ModelWeights = new Map();
  const single = nodePath.join(folder, 'model.safetensors');
  const indexPath = nodePath.join(folder, 'model.safetensors.index.json');
  // Same preference as transformers: the single file wins when both exist.
  if (fs.existsSync(single)) {
    const header = readSafetensorsHeader(single);
    for (const [name, entry] of header.tensors) weights.set(name, { header, entry });
    return weights;
  }
  if (!fs.existsSync(indexPath)) fail(folder, 'no model.safetensors or model.safetensors.index.json in this folder');

  const indexText = readSmallFile(indexPath, 64 << 20);
  let index: unknown;
  try {
    index = JSON.parse(indexText);
  } catch (e) {
    fail(indexPath, `not JSON (${describe(e)})`);
  }
  if (!isPlainObject(index) || !isPlainObject(index.weight_map)) fail(indexPath, 'has no "weight_map" object');

  const root = nodePath.resolve(folder);
  const headers = new Map<string, SafetensorsHeader>();
  for (const [name, shard] of Object.entries(index.weight_map)) {
    if (typeof shard !== 'string') fail(indexPath, `weight_map entry for "${name}" is not a file name`);
    let header = headers.get(shard);
    if (!header) {
      const shardPath = nodePath.join(folder, shard);
      const rel = nodePath.relative(root, nodePath.resolve(shardPath));
      if (rel.startsWith('..') || nodePath.isAbsolute(rel)) fail(indexPath, `shard "${shard}" is outside the model folder`);
      if (!fs.existsSync(shardPath)) fail(indexPath, `lists shard file "${shard}", which is missing from the folder`);
      header = readSafetensorsHeader(shardPath);
      headers.set(shard, header);
    }
    const entry = header.tensors.get(name);
    if (!entry) fail(indexPath, `says tensor "${name}" is in "${shard}", but that shard has no such tensor`);
    weights.set(name, { header, entry });
  }
  return weights;
}

/** Looks a tensor up in `openModelWeights`' result, with "did you mean" suggestions when absent. */
export function getWeight(weights: ModelWeights, name: string, folder = 'model'): { header: SafetensorsHeader; entry: TensorEntry } {
  const w = weights.get(name);
  if (w) return w;
  const near = nearest(name, weights.keys());
  fail(folder, `no tensor "${name}"${near.length ? `; did you mean ${near.map((s) => `"${s}"`).join(', ')}?` : ''}`);
}

// ---------------------------------------------------------------------------------------------
// Writing

export type WritableTensor = {
  dtype: 'F32' | 'F16' | 'BF16' | 'I32' | 'I64';
  shape: number[];
  data: Float32Array | Int32Array | BigInt64Array;
};

/** Key order by UTF-8 bytes, as Rust sorts strings, so files match the reference byte for byte. */
function byUtf8(a: string, b: string): number {
  return Buffer.compare(Buffer.from(a, 'utf8'), Buffer.from(b, 'utf8'));
}

/** Little-endian bytes of one tensor, in chunks, converting F16/BF16/I64 on the way. */
function* tensorBytes(name: string, t: WritableTensor): Generator<Uint8Array> {
  const n = t.data.length;
  const step = CHUNK_BYTES / 8;
  const asBytes = (v: ArrayBufferView) => new Uint8Array(v.buffer, v.byteOffset, v.byteLength);
  switch (t.dtype) {
    case 'F32':
    case 'I32':
      if (t.dtype === 'F32' ? !(t.data instanceof Float32Array) : !(t.data instanceof Int32Array)) {
        throw new Error(`writeSafetensors: tensor "${name}" is ${t.dtype} but its data is a ${t.data.constructor.name}`);
      }
      if (LITTLE_ENDIAN) {
        yield asBytes(t.data);
      } else {
        for (let s = 0; s < n; s += step) {
          const c = Math.min(step, n - s);
          const dv = new DataView(new ArrayBuffer(c * 4));
          for (let i = 0; i < c; i++) {
            if (t.dtype === 'F32') dv.setFloat32(i * 4, t.data[s + i] as number, true);
            else dv.setInt32(i * 4, t.data[s + i] as number, true);
          }
          yield new Uint8Array(dv.buffer);
        }
      }
      return;
    case 'F16':
    case 'BF16': {
      const data = t.data;
      if (!(data instanceof Float32Array)) {
        throw new Error(`writeSafetensors: tensor "${name}" is ${t.dtype}; give its data as a Float32Array, not ${data.constructor.name}`);
      }
      const conv = t.dtype === 'F16' ? float32ToFloat16 : float32ToBfloat16;
      for (let s = 0; s < n; s += step) {
        const c = Math.min(step, n - s);
        if (LITTLE_ENDIAN) {
          const u16 = new Uint16Array(c);
          for (let i = 0; i < c; i++) u16[i] = conv(data[s + i]);
          yield new Uint8Array(u16.buffer);
        } else {
          const dv = new DataView(new ArrayBuffer(c * 2));
          for (let i = 0; i < c; i++) dv.setUint16(i * 2, conv(data[s + i]), true);
          yield new Uint8Array(dv.buffer);
        }
      }
      return;
    }
    case 'I64': {
      const data = t.data;
      if (data instanceof BigInt64Array) {
        if (LITTLE_ENDIAN) {
          yield asBytes(data);
          return;
        }
        for (let s = 0; s < n; s += step) {
          const c = Math.min(step, n - s);
          const dv = new DataView(new ArrayBuffer(c * 8));
          for (let i = 0; i < c; i++) dv.setBigInt64(i * 8, data[s + i], true);
          yield new Uint8Array(dv.buffer);
        }
        return;
      }
      if (!(data instanceof Int32Array)) {
        throw new Error(`writeSafetensors: tensor "${name}" is I64; give its data as a BigInt64Array or Int32Array`);
      }
      // Token ids usually live in Int32Array; sign-extend rather than make callers build BigInts.
      for (let s = 0; s < n; s += step) {
        const c = Math.min(step, n - s);
        const dv = new DataView(new ArrayBuffer(c * 8));
        for (let i = 0; i < c; i++) {
          dv.setInt32(i * 8, data[s + i], true);
          dv.setInt32(i * 8 + 4, data[s + i] >> 31, true);
        }
        yield new Uint8Array(dv.buffer);
      }
      return;
    }
  }
}

const WRITE_BYTES: Record<WritableTensor['dtype'], number> = { F32: 4, F16: 2, BF16: 2, I32: 4, I64: 8 };

/**
 * Writes a safetensors file; for F16/BF16 `data` is a Float32Array that is converted (round to
 * nearest even). Header keys sorted; tensors laid out in that order; header padded with spaces to
 * a multiple of 8 bytes, as the reference implementation does. The file appears atomically.
 */
export function writeSafetensors(path: string, tensors: Record<string, WritableTensor>, metadata?: Record<string, string>): void {
  const names = Object.keys(tensors).sort(byUtf8);
  const header: Record<string, unknown> = {};
  if (metadata && Object.keys(metadata).length > 0) header.__metadata__ = metadata;
  let offset = 0;
  for (const name of names) {
    if (name === '__metadata__') throw new Error('writeSafetensors: "__metadata__" is reserved and cannot name a tensor');
    const t = tensors[name];
    if (!Object.hasOwn(WRITE_BYTES, t.dtype)) throw new Error(`writeSafetensors: tensor "${name}" has unsupported dtype ${t.dtype}`);
    const n = t.shape.reduce((a, b) => a * b, 1);
    if (!t.shape.every(isCount) || n !== t.data.length) {
      throw new Error(`writeSafetensors: tensor "${name}" has shape [${t.shape.join(', ')}] but ${t.data.length} values`);
    }
    const bytes = n * WRITE_BYTES[t.dtype];
    header[name] = { dtype: t.dtype, shape: t.shape, data_offsets: [offset, offset + bytes] };
    offset += bytes;
  }
  let json = JSON.stringify(header);
  const jsonBytes = Buffer.byteLength(json, 'utf8');
  json += ' '.repeat((8 - (jsonBytes % 8)) % 8);
  const headerBuf = Buffer.from(json, 'utf8');
  const prefix = Buffer.alloc(8);
  prefix.writeBigUInt64LE(BigInt(headerBuf.byteLength));

  const tmp = `${path}.tmp-${process.pid}`;
  let fd: number;
  try {
    fd = fs.openSync(tmp, 'w');
  } catch (e) {
    fail(path, `cannot write: ${describe(e)}`);
  }
  let open = true;
  try {
    // In pieces of at most 1 GiB: one write of 2 GiB or more is refused by Node (an embedding of
    // 256000 x 2304 float32 weights is 2.36 GB).
    const writeAll = (buf: Uint8Array) => {
      for (let done = 0; done < buf.byteLength; ) done += fs.writeSync(fd, buf, done, Math.min(buf.byteLength - done, 1 << 30));
    };
    writeAll(prefix);
    writeAll(headerBuf);
    for (const name of names) for (const chunk of tensorBytes(name, tensors[name])) writeAll(chunk);
    open = false;
    fs.closeSync(fd);
    fs.renameSync(tmp, path);
  } catch (e) {
    if (open) fs.closeSync(fd);
    fs.rmSync(tmp, { force: true });
    if (e instanceof Error && !(e instanceof LanternError) && (e as NodeJS.ErrnoException).code) {
      fail(path, `cannot write: ${describe(e)}`);
    }
    throw e;
  }
}
