/**
 * Writes GGUF files (v3): a header, key/value metadata, tensor descriptors, then the tensors'
 * data, each 32-byte aligned. Used by the model export (gguf-export.ts) and control vectors
 * (control-vector.ts); rewriteGguf copies a model with some tensors changed (gguf-steer.ts).
 *
 * Hand-written rather than a dependency: GGUF is a flat little-endian format, the npm packages
 * for it read rather than write, and the only alternative is llama.cpp's Python gguf package.
 */
import crypto from 'node:crypto';
import fs from 'node:fs';
import { LanternError } from '../errors.js';
import { float32ToFloat16 } from '../models/safetensors.js';
import type { GgufInfo } from './gguf-check.js';

const ALIGN = 32;

/** GGUF metadata value types (gguf.h). */
export enum GgufValueType { U32 = 4, I32 = 5, F32 = 6, BOOL = 7, STRING = 8, ARRAY = 9 }
const T = GgufValueType;

export type GgufValue =
  | { t: GgufValueType.U32 | GgufValueType.I32 | GgufValueType.F32 | GgufValueType.BOOL; v: number | boolean }
  | { t: GgufValueType.STRING; v: string }
  | { t: GgufValueType.ARRAY; of: GgufValueType.STRING; v: string[] }
  | { t: GgufValueType.ARRAY; of: GgufValueType.I32 | GgufValueType.F32 | GgufValueType.BOOL; v: (number | boolean)[] };

export interface GgufTensor {
  name: string;
  /** GGML dimensions, fastest first (a row-major [rows, cols] matrix is [cols, rows]). */
  ne: number[];
  data: Float32Array;
  /** Stored as F16 (GGML type 1) rather than F32 (type 0). */
  f16: boolean;
}

class Writer {
  private parts: Buffer[] = [];
  size = 0;
  push(b: Buffer): void { this.parts.push(b); this.size += b.length; }
  u32(v: number): void { const b = Buffer.alloc(4); b.writeUInt32LE(v); this.push(b); }
  i32(v: number): void { const b = Buffer.alloc(4); b.writeInt32LE(v); this.push(b); }
  u64(v: number): void { const b = Buffer.alloc(8); b.writeBigUInt64LE(BigInt(v)); this.push(b); }
  f32(v: number): void { const b = Buffer.alloc(4); b.writeFloatLE(v); this.push(b); }
  bool(v: boolean): void { this.push(Buffer.from([v ? 1 : 0])); }
  str(s: string): void { const b = Buffer.from(s, 'utf8'); this.u64(b.length); this.push(b); }
  pad(): void { const n = (ALIGN - (this.size % ALIGN)) % ALIGN; if (n) this.push(Buffer.alloc(n)); }
  buffers(): Buffer[] { return this.parts; }
}

function writeScalar(w: Writer, t: GgufValueType, v: unknown): void {
  switch (t) {
    case T.U32: return w.u32(v as number);
    case T.I32: return w.i32(v as number);
    case T.F32: return w.f32(v as number);
    case T.BOOL: return w.bool(v as boolean);
    case T.STRING: return w.str(v as string);
    default: throw new Error(`GGUF value type ${t} is not a scalar`);
  }
}

function writeValue(w: Writer, x: GgufValue): void {
  w.u32(x.t);
  if (x.t !== T.ARRAY) return writeScalar(w, x.t, x.v);
  w.u32(x.of);
  w.u64(x.v.length);
  for (const e of x.v) writeScalar(w, x.of, e);
}

/** Writes the file; returns its size in bytes. `general.alignment` is added. */
export function writeGguf(file: string, meta: [string, GgufValue][], tensors: GgufTensor[]): number {
  const w = new Writer();
  const all: [string, GgufValue][] = [...meta, ['general.alignment', { t: T.U32, v: ALIGN }]];
  w.push(Buffer.from('GGUF', 'latin1'));
  w.u32(3);
  w.u64(tensors.length);
  w.u64(all.length);
  for (const [k, v] of all) { w.str(k); writeValue(w, v); }
  let offset = 0;
  const blobs: Buffer[] = [];
  for (const t of tensors) {
    w.str(t.name);
    w.u32(t.ne.length);
    for (const n of t.ne) w.u64(n);
    w.u32(t.f16 ? 1 : 0); // GGML_TYPE_F16 = 1, F32 = 0
    w.u64(offset);
    let blob: Buffer;
    if (t.f16) {
      blob = Buffer.alloc(t.data.length * 2);
      for (let i = 0; i < t.data.length; i++) blob.writeUInt16LE(float32ToFloat16(t.data[i]), i * 2);
    } else {
      blob = Buffer.from(t.data.buffer, t.data.byteOffset, t.data.byteLength);
    }
    const padded = Math.ceil(blob.length / ALIGN) * ALIGN;
    blobs.push(blob, Buffer.alloc(padded - blob.length));
    offset += padded;
  }
  w.pad();
  const fd = fs.openSync(file, 'w');
  try {
    for (const b of [...w.buffers(), ...blobs]) fs.writeSync(fd, b);
  } finally {
    fs.closeSync(fd);
  }
  return w.size + offset;
}

/** A tensor's new data in {@link rewriteGguf}, already in its ggml type's encoding. */
export interface GgufReplacement {
  dims: number[];
  /** ggml type (0 = F32, 8 = Q8_0, …). */
  type: number;
  data: Float32Array | Uint8Array;
}

const COPY_CHUNK = 16 * 2 ** 20;

export function readAt(fd: number, pos: number, len: number, where: string): Buffer {
  const b = Buffer.alloc(len);
  let got = 0;
  while (got < len) {
    const n = fs.readSync(fd, b, got, len - got, pos + got);
    if (n === 0) throw new LanternError(`${where} ended while reading ${len} bytes at ${pos}`);
    got += n;
  }
  return b;
}

function u64(n: number): Buffer {
  const b = Buffer.alloc(8);
  b.writeBigUInt64LE(BigInt(n));
  return b;
}

function descriptor(name: string, dims: number[], type: number, offset: number): Buffer {
  const nameBytes = Buffer.from(name, 'utf8');
  const count = Buffer.alloc(4);
  count.writeUInt32LE(dims.length);
  const typeBytes = Buffer.alloc(4);
  typeBytes.writeUInt32LE(type);
  return Buffer.concat([u64(nameBytes.length), nameBytes, count, ...dims.map(u64), typeBytes, u64(offset)]);
}

/**
 * Copies the GGUF `file` (parsed and checked: `info`) to `out` with some tensors' data replaced
 * and `added` tensors appended. The metadata is copied byte for byte (its general.alignment
 * included) and every other tensor's data is streamed through unchanged, so a quantized model is
 * never decoded. Written through a temporary name, so a reader never sees half a file.
 */
export function rewriteGguf(file: string, info: GgufInfo, out: string, replaced: Map<string, GgufReplacement>, added: (GgufReplacement & { name: string })[] = []): void {
  const alignValue = info.metadata.get('general.alignment')?.value;
  const alignment = typeof alignValue === 'number' ? alignValue : ALIGN;
  const pad = (n: number) => (alignment - (n % alignment)) % alignment;
  const bytesOf = (d: Float32Array | Uint8Array) => new Uint8Array(d.buffer, d.byteOffset, d.byteLength);
  const plan = [
    ...info.tensors.map((t) => {
      const r = replaced.get(t.name);
      return r ? { name: t.name, dims: r.dims, type: r.type, bytes: r.data.byteLength, data: bytesOf(r.data) }
        : { name: t.name, dims: t.dims, type: t.type, bytes: t.bytes, from: info.dataOffset + t.offset };
    }),
    ...added.map((a) => ({ name: a.name, dims: a.dims, type: a.type, bytes: a.data.byteLength, data: bytesOf(a.data) })),
  ];
  const fd = fs.openSync(file, 'r');
  const tmp = `${out}.${process.pid}.${crypto.randomBytes(4).toString('hex')}.tmp`;
  let wfd: number | undefined;
  try {
    const head = Buffer.alloc(24);
    head.write('GGUF', 0, 'latin1');
    head.writeUInt32LE(info.version, 4);
    head.writeBigUInt64LE(BigInt(plan.length), 8);
    head.writeBigUInt64LE(BigInt(info.metadata.size), 16);
    // Versions 2 and 3 both put the metadata right after the two u64 counts, up to the first tensor descriptor.
    const metadata = readAt(fd, 24, (info.tensors[0]?.at ?? info.dataOffset) - 24, file);
    let offset = 0;
    const descriptors = plan.map((p) => {
      const d = descriptor(p.name, p.dims, p.type, offset);
      offset += p.bytes + pad(p.bytes);
      return d;
    });
    const header = Buffer.concat([head, metadata, ...descriptors]);
    wfd = fs.openSync(tmp, 'w');
    fs.writeSync(wfd, header);
    fs.writeSync(wfd, Buffer.alloc(pad(header.length)));
    for (const p of plan) {
      if ('data' in p && p.data) fs.writeSync(wfd, p.data);
      else for (let done = 0; done < p.bytes; done += COPY_CHUNK) fs.writeSync(wfd, readAt(fd, p.from! + done, Math.min(COPY_CHUNK, p.bytes - done), file));
      fs.writeSync(wfd, Buffer.alloc(pad(p.bytes)));
    }
    fs.closeSync(wfd);
    wfd = undefined;
    fs.renameSync(tmp, out);
  } catch (e) {
    if (wfd !== undefined) fs.closeSync(wfd);
    fs.rmSync(tmp, { force: true });
    throw e;
  } finally {
    fs.closeSync(fd);
  }
}
