/**
 * Reads and checks a GGUF file's header, metadata and tensor descriptors in TypeScript before
 * llama.cpp sees it. llama.cpp trusts what the header says: a tensor count of 2^63 or a garbage
 * string length after valid magic makes it allocate until memory runs out, and metadata such as
 * `block_count` 0 or a NaN norm epsilon fail its assertions, which abort the whole process
 * (exit 134) where no JavaScript error can be caught.
 *
 * Every read here is bounded by the file: a count or a length is checked against the bytes that
 * are left before anything is allocated for it, so a hostile header costs at most one pass over
 * the file. Array contents are walked, not kept (a vocabulary is counted, not copied).
 *
 * Not a general GGUF library (node-llama-cpp reads GGUF metadata too, but trusts the same counts,
 * and gguf-export.ts writes): it exists to refuse what llama.cpp would abort or spin on.
 */
import fs from 'node:fs';
import { LanternError } from '../errors.js';
import { fileKind } from '../files.js';

export enum GgufType { U8 = 0, I8 = 1, U16 = 2, I16 = 3, U32 = 4, I32 = 5, F32 = 6, BOOL = 7, STRING = 8, ARRAY = 9, U64 = 10, I64 = 11, F64 = 12 }

const SCALAR_BYTES: Partial<Record<GgufType, number>> = {
  [GgufType.U8]: 1, [GgufType.I8]: 1, [GgufType.U16]: 2, [GgufType.I16]: 2, [GgufType.U32]: 4, [GgufType.I32]: 4,
  [GgufType.F32]: 4, [GgufType.BOOL]: 1, [GgufType.U64]: 8, [GgufType.I64]: 8, [GgufType.F64]: 8,
};

/** ggml tensor types: [name, elements per block, bytes per block] (ggml.h / ggml.c type_traits). */
const GGML_TYPES: Record<number, [string, number, number]> = {
  0: ['F32', 1, 4], 1: ['F16', 1, 2], 2: ['Q4_0', 32, 18], 3: ['Q4_1', 32, 20], 6: ['Q5_0', 32, 22], 7: ['Q5_1', 32, 24],
  8: ['Q8_0', 32, 34], 9: ['Q8_1', 32, 36], 10: ['Q2_K', 256, 84], 11: ['Q3_K', 256, 110], 12: ['Q4_K', 256, 144],
  13: ['Q5_K', 256, 176], 14: ['Q6_K', 256, 210], 15: ['Q8_K', 256, 292], 16: ['IQ2_XXS', 256, 66], 17: ['IQ2_XS', 256, 74],
  18: ['IQ3_XXS', 256, 98], 19: ['IQ1_S', 256, 50], 20: ['IQ4_NL', 32, 18], 21: ['IQ3_S', 256, 110], 22: ['IQ2_S', 256, 82],
  23: ['IQ4_XS', 256, 136], 24: ['I8', 1, 1], 25: ['I16', 1, 2], 26: ['I32', 1, 4], 27: ['I64', 1, 8], 28: ['F64', 1, 8],
  29: ['IQ1_M', 256, 56], 30: ['BF16', 1, 2], 34: ['TQ1_0', 256, 54], 35: ['TQ2_0', 256, 66], 39: ['MXFP4', 32, 17],
};

/** Limits far above real files, below what would exhaust memory walking them. */
const MAX_KEY_BYTES = 65_535; // GGUF's own limit on key length
const MAX_STRING_BYTES = 64 * 2 ** 20;
const MAX_ARRAY_LENGTH = 2 ** 26;
const MAX_TENSOR_NAME_BYTES = 64; // GGML_MAX_NAME
const MAX_DIMS = 4; // GGML_MAX_DIMS
const MAX_BLOCKS = 4096;

export type GgufScalar = number | bigint | boolean | string;

export interface GgufEntry {
  type: GgufType;
  /** Scalars and strings; arrays keep only their element type and length. */
  value?: GgufScalar;
  arrayType?: GgufType;
  length?: number;
  /** Where the value's bytes start in the file (after its type tag). */
  offset: number;
}

export interface GgufTensorInfo {
  /** Where its descriptor starts in the file. */
  at: number;
  name: string;
  dims: number[];
  type: number;
  /** Relative to the start of the data section. */
  offset: number;
  bytes: number;
}

export interface GgufInfo {
  version: number;
  metadata: Map<string, GgufEntry>;
  tensors: GgufTensorInfo[];
  dataOffset: number;
  fileSize: number;
}

/** Random access to the bytes being checked: a file descriptor, or a buffer (for tests and fuzzing). */
interface Source {
  size: number;
  read(pos: number, len: number): Buffer;
}

class Reader {
  pos = 0;
  private window: Buffer = Buffer.alloc(0);
  private windowAt = 0;

  constructor(private readonly src: Source, private readonly where: string) {}

  fail(msg: string, at = this.pos): never {
    throw new LanternError(`${this.where}: not a valid GGUF file: ${msg} (at byte ${at})`);
  }

  get left(): number {
    return this.src.size - this.pos;
  }

  bytes(n: number, what: string): Buffer {
    if (n > this.left) this.fail(`the file ends inside ${what} (needs ${n} bytes, ${this.left} left)`);
    if (this.pos < this.windowAt || this.pos + n > this.windowAt + this.window.length) {
      this.windowAt = this.pos;
      this.window = this.src.read(this.pos, Math.min(this.left, Math.max(n, 1 << 20)));
    }
    const b = this.window.subarray(this.pos - this.windowAt, this.pos - this.windowAt + n);
    this.pos += n;
    return b;
  }

  u32(what: string): number { return this.bytes(4, what).readUInt32LE(0); }
  u64(what: string): bigint { return this.bytes(8, what).readBigUInt64LE(0); }

  /** A u64 count or length that must fit the bytes left at `each` bytes per item, and `max`. */
  count(what: string, each: number, max: number): number {
    const at = this.pos;
    const n = this.u64(what);
    const fits = BigInt(Math.floor(this.left / Math.max(each, 1)));
    if (n > fits) this.fail(`${what} is ${n}, more than the ${this.left} bytes left can hold`, at);
    if (n > BigInt(max)) this.fail(`${what} is ${n}, more than the ${max} allowed`, at);
    return Number(n);
  }

  string(what: string, max = MAX_STRING_BYTES): string {
    const n = this.count(`the length of ${what}`, 1, max);
    return this.bytes(n, what).toString('utf8');
  }

  skip(n: number, what: string): void {
    if (n > this.left) this.fail(`the file ends inside ${what}`);
    this.pos += n;
  }
}

function typeName(t: number): string {
  return GgufType[t] ?? `unknown type ${t}`;
}

function readScalar(r: Reader, t: GgufType, what: string): GgufScalar {
  const size = SCALAR_BYTES[t];
  if (t === GgufType.STRING) return r.string(what);
  if (size === undefined) r.fail(`${what} has ${typeName(t)}`);
  const b = r.bytes(size, what);
  switch (t) {
    case GgufType.U8: return b.readUInt8(0);
    case GgufType.I8: return b.readInt8(0);
    case GgufType.U16: return b.readUInt16LE(0);
    case GgufType.I16: return b.readInt16LE(0);
    case GgufType.U32: return b.readUInt32LE(0);
    case GgufType.I32: return b.readInt32LE(0);
    case GgufType.F32: return b.readFloatLE(0);
    case GgufType.BOOL: {
      const v = b.readUInt8(0);
      if (v > 1) r.fail(`${what} is a bool of value ${v}`, r.pos - 1);
      return v === 1;
    }
    case GgufType.U64: return b.readBigUInt64LE(0);
    case GgufType.I64: return b.readBigInt64LE(0);
    case GgufType.F64: return b.readDoubleLE(0);
    default: return r.fail(`${what} has ${typeName(t)}`);
  }
}

function readEntry(r: Reader, key: string): GgufEntry {
  const tagAt = r.pos;
  const type = r.u32(`the type of ${key}`);
  const offset = r.pos;
  if (type === GgufType.ARRAY) {
    const arrayType = r.u32(`the element type of ${key}`);
    if (arrayType === GgufType.ARRAY) r.fail(`${key} is an array of arrays, which llama.cpp does not read`, tagAt);
    if (arrayType === GgufType.STRING) {
      const length = r.count(`the length of ${key}`, 8, MAX_ARRAY_LENGTH);
      for (let i = 0; i < length; i++) r.skip(r.count(`the length of ${key}[${i}]`, 1, MAX_STRING_BYTES), `${key}[${i}]`);
      return { type, arrayType, length, offset };
    }
    const size = SCALAR_BYTES[arrayType as GgufType];
    if (size === undefined) r.fail(`${key} is an array of ${typeName(arrayType)}`, tagAt);
    const length = r.count(`the length of ${key}`, size, MAX_ARRAY_LENGTH);
    r.skip(length * size, key);
    return { type, arrayType, length, offset };
  }
  if (!(type in SCALAR_BYTES) && type !== GgufType.STRING) r.fail(`${key} has ${typeName(type)}`, tagAt);
  return { type, value: readScalar(r, type, key), offset };
}

/** Parses and checks the structure; `checkGguf` adds the checks on what the metadata means. */
export function parseGguf(src: Source, where: string): GgufInfo {
  const r = new Reader(src, where);
  if (src.size < 4 || r.bytes(4, 'the magic').toString('latin1') !== 'GGUF') {
    throw new LanternError(`${where} is not a GGUF file (it does not start with "GGUF")`);
  }
  const version = r.u32('the version');
  if (version !== 2 && version !== 3) r.fail(`version ${version} is not one llama.cpp reads (2 or 3)`, 4);
  // Each tensor descriptor takes at least 8 (name length) + 4 (dims) + 8 (one dim) + 4 (type) + 8 (offset) bytes; each key/value 8 + 1 + 4 + 1.
  const tensorCountAt = r.pos;
  const tensorCount = r.u64('the tensor count');
  const kvCount = r.count('the metadata count', 14, 1 << 20);
  if (tensorCount > BigInt(Math.floor(r.left / 32))) r.fail(`the tensor count is ${tensorCount}, more than the ${src.size} byte file can describe`, tensorCountAt);
  const metadata = new Map<string, GgufEntry>();
  for (let i = 0; i < kvCount; i++) {
    const at = r.pos;
    const key = r.string(`metadata key ${i}`, MAX_KEY_BYTES);
    if (key.length === 0) r.fail(`metadata key ${i} is empty`, at);
    if (metadata.has(key)) r.fail(`metadata key ${key} appears twice`, at);
    metadata.set(key, readEntry(r, key));
  }
  const align = metadata.get('general.alignment');
  let alignment = 32;
  if (align) {
    if (align.type !== GgufType.U32 || typeof align.value !== 'number' || align.value === 0 || (align.value & (align.value - 1)) !== 0) {
      r.fail(`general.alignment must be a u32 power of two, got ${String(align.value ?? typeName(align.type))}`, align.offset);
    }
    alignment = align.value as number;
  }
  const tensors: GgufTensorInfo[] = [];
  const names = new Set<string>();
  for (let i = 0; i < Number(tensorCount); i++) {
    const at = r.pos;
    const name = r.string(`the name of tensor ${i}`, MAX_TENSOR_NAME_BYTES);
    if (names.has(name)) r.fail(`tensor ${name} appears twice`, at);
    names.add(name);
    const nDims = r.u32(`the dimension count of ${name}`);
    if (nDims < 1 || nDims > MAX_DIMS) r.fail(`tensor ${name} has ${nDims} dimensions (1 to ${MAX_DIMS} allowed)`, at);
    const dims: number[] = [];
    let elements = 1;
    for (let d = 0; d < nDims; d++) {
      const n = r.u64(`dimension ${d} of ${name}`);
      if (n < 1n || n > BigInt(src.size) * 8n) r.fail(`tensor ${name} has dimension ${d} of ${n}`, at);
      dims.push(Number(n));
      elements *= Number(n);
    }
    const type = r.u32(`the type of ${name}`);
    const t = GGML_TYPES[type];
    if (!t) r.fail(`tensor ${name} has unknown ggml type ${type}`, at);
    const [typeLabel, block, blockBytes] = t;
    if (dims[0] % block !== 0) r.fail(`tensor ${name} (${typeLabel}) has a first dimension of ${dims[0]}, not a multiple of its block of ${block}`, at);
    const bytes = (elements / block) * blockBytes;
    const offsetAt = r.pos;
    const offset = r.u64(`the offset of ${name}`);
    if (offset % BigInt(alignment) !== 0n) r.fail(`tensor ${name} starts at ${offset}, not a multiple of the alignment ${alignment}`, offsetAt);
    if (!Number.isSafeInteger(bytes) || offset > BigInt(src.size)) r.fail(`tensor ${name} lies outside the file`, offsetAt);
    tensors.push({ at, name, dims, type, offset: Number(offset), bytes });
  }
  const dataOffset = Math.ceil(r.pos / alignment) * alignment;
  for (const t of tensors) {
    if (dataOffset + t.offset + t.bytes > src.size) {
      throw new LanternError(`${where}: not a valid GGUF file: tensor ${t.name} (${t.bytes} bytes at ${dataOffset + t.offset}) runs past the end of the ${src.size} byte file`);
    }
  }
  return { version, metadata, tensors, dataOffset, fileSize: src.size };
}

function int(info: GgufInfo, key: string, where: string, lo: number, hi: number, required: boolean): number | undefined {
  const e = info.metadata.get(key);
  if (!e) {
    if (required) throw new LanternError(`${where}: the GGUF metadata has no ${key}`);
    return undefined;
  }
  const v = typeof e.value === 'bigint' ? Number(e.value) : e.value;
  if (typeof v !== 'number' || !Number.isInteger(v) || v < lo || v > hi) {
    throw new LanternError(`${where}: the GGUF metadata's ${key} is ${String(e.value ?? `an array of ${e.length}`)}; it must be an integer from ${lo} to ${hi}`);
  }
  return v;
}

/**
 * What llama.cpp asserts on or trusts, checked here: the architecture's block count against the
 * blocks the tensors hold, positive sizes, finite positive norm epsilons, the vocabulary and the
 * special token ids inside it.
 */
export function checkGgufMetadata(info: GgufInfo, where: string): void {
  const archEntry = info.metadata.get('general.architecture');
  if (!archEntry || typeof archEntry.value !== 'string' || !/^[\w.-]{1,64}$/.test(archEntry.value)) {
    throw new LanternError(`${where}: the GGUF metadata has no valid general.architecture`);
  }
  const arch = archEntry.value;
  for (const [key, e] of info.metadata) {
    if ((e.type === GgufType.F32 || e.type === GgufType.F64) && !Number.isFinite(e.value as number)) {
      throw new LanternError(`${where}: the GGUF metadata's ${key} is ${e.value}, not a finite number`);
    }
    if (/epsilon/.test(key) && (e.type === GgufType.F32 || e.type === GgufType.F64) && !((e.value as number) > 0 && (e.value as number) < 1)) {
      throw new LanternError(`${where}: the GGUF metadata's ${key} is ${e.value}; a norm epsilon must be between 0 and 1`);
    }
  }
  const blocks = int(info, `${arch}.block_count`, where, 1, MAX_BLOCKS, true)!;
  const seen = new Set<number>();
  for (const t of info.tensors) {
    const m = /^blk\.(\d+)\./.exec(t.name);
    if (m) seen.add(Number(m[1]));
  }
  const missing = Array.from({ length: blocks }, (_, i) => i).find((i) => !seen.has(i));
  const extra = [...seen].find((i) => i >= blocks);
  if (missing !== undefined || extra !== undefined) {
    throw new LanternError(`${where}: the GGUF metadata's ${arch}.block_count is ${blocks}, but the tensors hold blocks ${seen.size ? `0 to ${Math.max(...seen)}` : '(none)'}${missing !== undefined ? ` (blk.${missing} is missing)` : ''}`);
  }
  const dModel = int(info, `${arch}.embedding_length`, where, 1, 1 << 20, true)!;
  int(info, `${arch}.context_length`, where, 1, 1 << 24, true);
  int(info, `${arch}.feed_forward_length`, where, 1, 1 << 24, false);
  const heads = info.metadata.get(`${arch}.attention.head_count`);
  if (heads && heads.type !== GgufType.ARRAY) int(info, `${arch}.attention.head_count`, where, 1, dModel, true);
  const tokens = info.metadata.get('tokenizer.ggml.tokens');
  if (!tokens || tokens.arrayType !== GgufType.STRING || !tokens.length) throw new LanternError(`${where}: the GGUF metadata has no tokenizer.ggml.tokens (a vocabulary)`);
  const vocab = tokens.length;
  for (const k of ['tokenizer.ggml.token_type', 'tokenizer.ggml.scores']) {
    const e = info.metadata.get(k);
    if (e && e.length !== vocab) throw new LanternError(`${where}: the GGUF metadata's ${k} has ${e.length ?? 'no'} entries for a vocabulary of ${vocab}`);
  }
  for (const [k] of info.metadata) {
    if (/^tokenizer\.ggml\.\w+_token_id$/.test(k)) int(info, k, where, 0, vocab - 1, false);
  }
  const embd = info.tensors.find((t) => t.name === 'token_embd.weight');
  if (embd && (embd.dims[0] !== dModel || embd.dims[1] !== vocab)) {
    throw new LanternError(`${where}: tensor token_embd.weight is [${embd.dims.join(', ')}]; the metadata says [${dModel}, ${vocab}] (embedding_length, vocabulary)`);
  }
}

export function checkGgufBuffer(buf: Buffer, where = 'GGUF'): GgufInfo {
  const info = parseGguf({ size: buf.length, read: (pos, len) => buf.subarray(pos, pos + len) }, where);
  checkGgufMetadata(info, where);
  return info;
}

/** Checks a GGUF file; a LanternError names the first problem. */
export function checkGgufFile(file: string): GgufInfo {
  let fd: number;
  try {
    fd = fs.openSync(file, fs.constants.O_RDONLY | (fs.constants.O_NONBLOCK ?? 0));
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    throw new LanternError(code === 'ENOENT' ? `no GGUF file at ${file}` : `cannot read ${file}: ${(e as Error).message}`);
  }
  try {
    const st = fs.fstatSync(fd);
    if (!st.isFile()) throw new LanternError(`${file} is not a regular file (${fileKind(st)})`);
    const info = parseGguf({
      size: st.size,
      read: (pos, len) => {
        const b = Buffer.alloc(len);
        let got = 0;
        while (got < len) {
          const n = fs.readSync(fd, b, got, len - got, pos + got);
          if (n === 0) break;
          got += n;
        }
        return b.subarray(0, got);
      },
    }, file);
    checkGgufMetadata(info, file);
    return info;
  } finally {
    fs.closeSync(fd);
  }
}
