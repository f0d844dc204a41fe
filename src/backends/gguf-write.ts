/**
 * Writes GGUF files (v3): a header, key/value metadata, tensor descriptors, then the tensors'
 * data, each 32-byte aligned. Used by the model export (gguf-export.ts) and control vectors
 * (control-vector.ts).
 *
 * Hand-written rather than a dependency: GGUF is a flat little-endian format, the npm packages
 * for it read rather than write, and the only alternative is llama.cpp's Python gguf package.
 */
import fs from 'node:fs';
import { float32ToFloat16 } from '../models/safetensors.js';

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
