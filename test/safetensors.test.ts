import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { LanternError } from '../src/errors.js';
import {
  bfloat16ToFloat32,
  float16ToFloat32,
  float32ToBfloat16,
  float32ToFloat16,
  getWeight,
  openModelWeights,
  readFloat32,
  readInt32,
  readSafetensorsHeader,
  writeSafetensors,
} from '../src/models/safetensors.js';

let dir: string;
beforeAll(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'lantern-st-'));
});
afterAll(() => {
  fs.rmSync(dir, { recursive: true, force: true });
});

let counter = 0;
function tmp(name = 'x.safetensors'): string {
  return path.join(dir, `${counter++}-${name}`);
}

/** Writes a file byte for byte: header JSON exactly as given (no padding unless asked), then data. */
function craft(header: unknown, data: Uint8Array | number[] = [], opts: { rawHeader?: string; lengthOverride?: bigint } = {}): string {
  const p = tmp();
  const json = Buffer.from(opts.rawHeader ?? JSON.stringify(header), 'utf8');
  const prefix = Buffer.alloc(8);
  prefix.writeBigUInt64LE(opts.lengthOverride ?? BigInt(json.length));
  fs.writeFileSync(p, Buffer.concat([prefix, json, Buffer.from(data instanceof Uint8Array ? data : Uint8Array.from(data))]));
  return p;
}

function expectLantern(fn: () => unknown, ...fragments: string[]): void {
  let err: unknown;
  try {
    fn();
  } catch (e) {
    err = e;
  }
  expect(err, 'expected a LanternError').toBeInstanceOf(LanternError);
  const msg = (err as Error).message;
  expect(msg).not.toContain('\n');
  for (const f of fragments) expect(msg).toContain(f);
}

function u16At(file: string, header: ReturnType<typeof readSafetensorsHeader>, name: string): number[] {
  const e = header.tensors.get(name)!;
  const b = fs.readFileSync(file).subarray(e.begin, e.end);
  const out: number[] = [];
  for (let i = 0; i < b.length; i += 2) out.push(b.readUInt16LE(i));
  return out;
}

describe('scalar half conversions', () => {
  it('decodes hand-checked f16 bit patterns', () => {
    expect(float16ToFloat32(0x3c00)).toBe(1);
    expect(float16ToFloat32(0xc000)).toBe(-2);
    expect(float16ToFloat32(0x7bff)).toBe(65504);
    expect(float16ToFloat32(0x0001)).toBe(2 ** -24);
    expect(float16ToFloat32(0x03ff)).toBe(2 ** -14 - 2 ** -24);
    expect(float16ToFloat32(0x0400)).toBe(2 ** -14);
    expect(float16ToFloat32(0x3555)).toBeCloseTo(1 / 3, 3);
    expect(float16ToFloat32(0x7c00)).toBe(Infinity);
    expect(float16ToFloat32(0xfc00)).toBe(-Infinity);
    expect(float16ToFloat32(0x7e00)).toBeNaN();
    expect(float16ToFloat32(0xfe01)).toBeNaN();
    expect(Object.is(float16ToFloat32(0x8000), -0)).toBe(true);
  });

  it('encodes f16 with round-to-nearest-even', () => {
    expect(float32ToFloat16(1)).toBe(0x3c00);
    expect(float32ToFloat16(-2)).toBe(0xc000);
    expect(float32ToFloat16(65504)).toBe(0x7bff);
    expect(float32ToFloat16(65519)).toBe(0x7bff); // just below the halfway point to 65536
    expect(float32ToFloat16(65520)).toBe(0x7c00); // tie, 0x7bff is odd: rounds up to inf
    expect(float32ToFloat16(1e6)).toBe(0x7c00);
    expect(float32ToFloat16(-Infinity)).toBe(0xfc00);
    expect(float32ToFloat16(NaN) & 0x7e00).toBe(0x7e00);
    expect(float32ToFloat16(-0)).toBe(0x8000);
    expect(float32ToFloat16(2 ** -24)).toBe(0x0001);
    expect(float32ToFloat16(2 ** -25)).toBe(0x0000); // tie to even zero
    expect(float32ToFloat16(3 * 2 ** -26)).toBe(0x0001);
    expect(float32ToFloat16(3 * 2 ** -25)).toBe(0x0002); // tie between 1 and 2 subnormal units
    expect(float32ToFloat16(2 ** -26)).toBe(0x0000);
    expect(float32ToFloat16(2 ** -14 - 2 ** -25)).toBe(0x0400); // tie at the top of the subnormals carries into the exponent
    expect(float32ToFloat16(1 + 2 ** -11)).toBe(0x3c00); // tie, even
    expect(float32ToFloat16(1 + 3 * 2 ** -11)).toBe(0x3c02); // tie, rounds to even mantissa 2
    expect(float32ToFloat16(1 + 2 ** -11 + 2 ** -20)).toBe(0x3c01); // just above the tie
  });

  it('round-trips every non-NaN half and agrees with the textbook formula', () => {
    for (let h = 0; h < 65536; h++) {
      const e = (h >> 10) & 0x1f;
      const m = h & 0x3ff;
      const s = h & 0x8000 ? -1 : 1;
      const expected = e === 0 ? s * m * 2 ** -24 : e === 31 ? (m ? NaN : s * Infinity) : s * (1 + m / 1024) * 2 ** (e - 15);
      const got = float16ToFloat32(h);
      if (Number.isNaN(expected)) {
        expect(got).toBeNaN();
        continue;
      }
      if (!Object.is(got, expected)) expect.fail(`f16 0x${h.toString(16)}: got ${got}, expected ${expected}`);
      if (float32ToFloat16(got) !== h) expect.fail(`f16 0x${h.toString(16)} does not round-trip`);
    }
  });

  it('converts bf16', () => {
    expect(float32ToBfloat16(1)).toBe(0x3f80);
    expect(float32ToBfloat16(-2)).toBe(0xc000);
    expect(bfloat16ToFloat32(0x3f80)).toBe(1);
    expect(bfloat16ToFloat32(0x4049)).toBe(3.140625);
    expect(float32ToBfloat16(1 + 2 ** -8)).toBe(0x3f80); // tie, even
    expect(float32ToBfloat16(1 + 3 * 2 ** -8)).toBe(0x3f82); // tie, even
    expect(float32ToBfloat16(Infinity)).toBe(0x7f80);
    expect(float32ToBfloat16(3.4028234663852886e38)).toBe(0x7f80); // above bf16 max + half ulp
    expect(float32ToBfloat16(NaN) & 0x7fc0).toBe(0x7fc0);
    expect(bfloat16ToFloat32(0x7fc0)).toBeNaN();
    expect(Object.is(bfloat16ToFloat32(0x8000), -0)).toBe(true);
  });
});

describe('write then read', () => {
  it('round-trips F32 exactly, including specials', () => {
    const p = tmp();
    const values = Float32Array.from([0, -0, 1, -1.5, 3.4028234663852886e38, 1e-45, Infinity, -Infinity, NaN, Math.PI]);
    writeSafetensors(p, { w: { dtype: 'F32', shape: [2, 5], data: values } }, { format: 'pt', note: 'hi' });
    const h = readSafetensorsHeader(p);
    expect(h.metadata).toEqual({ format: 'pt', note: 'hi' });
    expect(h.tensors.get('w')).toMatchObject({ dtype: 'F32', shape: [2, 5] });
    const got = readFloat32(h, 'w');
    expect(got.buffer).toBeInstanceOf(ArrayBuffer);
    for (let i = 0; i < values.length; i++) expect(Object.is(got[i], values[i])).toBe(true);
  });

  it('round-trips F16 with the expected bits on disk', () => {
    const p = tmp();
    const values = Float32Array.from([1, -2, 65504, 2 ** -24, Infinity, -Infinity, NaN, 0.1, 65520, 1 + 2 ** -11]);
    writeSafetensors(p, { h: { dtype: 'F16', shape: [10], data: values } });
    const header = readSafetensorsHeader(p);
    const bits = u16At(p, header, 'h');
    expect(bits.slice(0, 6)).toEqual([0x3c00, 0xc000, 0x7bff, 0x0001, 0x7c00, 0xfc00]);
    expect(bits[6] & 0x7e00).toBe(0x7e00);
    expect(bits.slice(7)).toEqual([0x2e66, 0x7c00, 0x3c00]);
    const got = readFloat32(header, 'h');
    expect(Array.from(got.subarray(0, 6))).toEqual([1, -2, 65504, 2 ** -24, Infinity, -Infinity]);
    expect(got[6]).toBeNaN();
    expect(got[7]).toBeCloseTo(0.1, 3);
    expect(got[8]).toBe(Infinity);
    expect(got[9]).toBe(1);
  });

  it('round-trips BF16', () => {
    const p = tmp();
    writeSafetensors(p, { b: { dtype: 'BF16', shape: [4], data: Float32Array.from([1, -2, 3.14159, NaN]) } });
    const header = readSafetensorsHeader(p);
    expect(u16At(p, header, 'b').slice(0, 3)).toEqual([0x3f80, 0xc000, 0x4049]);
    const got = readFloat32(header, 'b');
    expect(Array.from(got.subarray(0, 3))).toEqual([1, -2, 3.140625]);
    expect(got[3]).toBeNaN();
  });

  it('round-trips I32 and I64 (from BigInt64Array and from Int32Array)', () => {
    const p = tmp();
    const i32 = Int32Array.from([0, 1, -1, 2147483647, -2147483648]);
    writeSafetensors(p, {
      a: { dtype: 'I32', shape: [5], data: i32 },
      b: { dtype: 'I64', shape: [1, 5], data: BigInt64Array.from([0n, 1n, -1n, 2147483647n, -2147483648n]) },
      c: { dtype: 'I64', shape: [5], data: i32 },
    });
    const h = readSafetensorsHeader(p);
    expect(Array.from(readInt32(h, 'a'))).toEqual(Array.from(i32));
    expect(Array.from(readInt32(h, 'b'))).toEqual(Array.from(i32));
    expect(Array.from(readInt32(h, 'c'))).toEqual(Array.from(i32));
    const raw = fs.readFileSync(p);
    expect(raw.readBigInt64LE(h.tensors.get('c')!.begin + 16)).toBe(-1n);
  });

  it('throws when an I64 value does not fit in int32', () => {
    const p = tmp();
    writeSafetensors(p, { big: { dtype: 'I64', shape: [3], data: BigInt64Array.from([1n, 2n, 2147483648n]) } });
    expectLantern(() => readInt32(readSafetensorsHeader(p), 'big'), p, '"big"', '2147483648', 'element 2', 'does not fit in int32');
    const q = tmp();
    writeSafetensors(q, { neg: { dtype: 'I64', shape: [1], data: BigInt64Array.from([-2147483649n]) } });
    expectLantern(() => readInt32(readSafetensorsHeader(q), 'neg'), 'does not fit in int32');
  });

  it('lays the header out like the reference: sorted keys, space padding to 8 bytes, contiguous data', () => {
    const p = tmp();
    writeSafetensors(
      p,
      {
        zeta: { dtype: 'F16', shape: [3], data: new Float32Array(3) },
        alpha: { dtype: 'F32', shape: [1], data: new Float32Array(1) },
        mid: { dtype: 'I64', shape: [], data: new BigInt64Array(1) },
        empty: { dtype: 'F32', shape: [0, 4], data: new Float32Array(0) },
      },
      { format: 'pt' },
    );
    const raw = fs.readFileSync(p);
    const n = Number(raw.readBigUInt64LE(0));
    expect(n % 8).toBe(0);
    const text = raw.subarray(8, 8 + n).toString('utf8');
    expect(text.trimEnd()).toBe(
      '{"__metadata__":{"format":"pt"},' +
        '"alpha":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},' +
        '"empty":{"dtype":"F32","shape":[0,4],"data_offsets":[4,4]},' +
        '"mid":{"dtype":"I64","shape":[],"data_offsets":[4,12]},' +
        '"zeta":{"dtype":"F16","shape":[3],"data_offsets":[12,18]}}',
    );
    expect(/^ *$/.test(text.slice(text.trimEnd().length))).toBe(true);
    expect(raw.length).toBe(8 + n + 18);
    const h = readSafetensorsHeader(p);
    expect(readFloat32(h, 'empty').length).toBe(0);
    expect(Array.from(readInt32(h, 'mid'))).toEqual([0]);
  });

  it('returns SharedArrayBuffer-backed arrays when asked, for every float dtype', () => {
    const p = tmp();
    const v = Float32Array.from([1, 2, 3]);
    writeSafetensors(p, {
      a: { dtype: 'F32', shape: [3], data: v },
      b: { dtype: 'F16', shape: [3], data: v },
      c: { dtype: 'BF16', shape: [3], data: v },
    });
    const h = readSafetensorsHeader(p);
    for (const name of ['a', 'b', 'c']) {
      const got = readFloat32(h, name, { shared: true });
      expect(got.buffer).toBeInstanceOf(SharedArrayBuffer);
      expect(Array.from(got)).toEqual([1, 2, 3]);
    }
  });

  it('reads tensors larger than one read chunk (16 MiB) correctly across the boundary', () => {
    const p = tmp();
    const n = 5_000_000; // 20 MB as F32, 10 MB as F16
    const v = new Float32Array(n);
    for (let i = 0; i < n; i++) v[i] = (i % 2048) - 1024;
    writeSafetensors(p, { f32: { dtype: 'F32', shape: [n], data: v }, f16: { dtype: 'F16', shape: [n], data: v } });
    const h = readSafetensorsHeader(p);
    for (const name of ['f32', 'f16']) {
      const got = readFloat32(h, name, { shared: name === 'f16' });
      for (let i = 0; i < n; i++) if (got[i] !== v[i]) expect.fail(`${name}[${i}] = ${got[i]}, expected ${v[i]}`);
    }
  });
});

describe('crafted files', () => {
  it('reads tensors at unaligned file offsets, of every dtype', () => {
    // 8 + header length is odd and every tensor starts at an odd offset, so no typed-array view could alias the file.
    const parts: [string, string, number[], number[]][] = [];
    const bytes: number[] = [];
    const add = (name: string, dtype: string, shape: number[], data: number[]) => {
      parts.push([name, dtype, shape, [bytes.length, bytes.length + data.length]]);
      bytes.push(...data);
    };
    const le = (nbytes: number, write: (b: Buffer) => void) => {
      const b = Buffer.alloc(nbytes);
      write(b);
      return [...b];
    };
    add('u8', 'U8', [3], [7, 255, 0]);
    add('f32', 'F32', [2], le(8, (b) => (b.writeFloatLE(1.5, 0), b.writeFloatLE(-3.25, 4))));
    add('f16', 'F16', [2], le(4, (b) => (b.writeUInt16LE(0x3c00, 0), b.writeUInt16LE(0xc000, 2))));
    add('bool', 'BOOL', [1], [1]);
    add('i8', 'I8', [1], [0xff]);
    add('bf16', 'BF16', [1], le(2, (b) => b.writeUInt16LE(0x3f80, 0)));
    add('f64', 'F64', [2], le(16, (b) => (b.writeDoubleLE(Math.PI, 0), b.writeDoubleLE(-1e300, 8))));
    add('i16', 'I16', [2], le(4, (b) => (b.writeInt16LE(-300, 0), b.writeInt16LE(300, 2))));
    add('i64', 'I64', [2], le(16, (b) => (b.writeBigInt64LE(-5n, 0), b.writeBigInt64LE(123456789n, 8))));
    add('i32', 'I32', [1], le(4, (b) => b.writeInt32LE(-123456, 0)));
    const header: Record<string, unknown> = {};
    for (const [name, dtype, shape, offsets] of parts) header[name] = { dtype, shape, data_offsets: offsets };
    let raw = JSON.stringify(header);
    while ((8 + Buffer.byteLength(raw)) % 8 !== 2) raw += ' ';
    const p = craft(null, bytes, { rawHeader: raw });
    const h = readSafetensorsHeader(p);
    const itemBytes: Record<string, number> = { F32: 4, F16: 2, BF16: 2, F64: 8, I16: 2, I64: 8, I32: 4 };
    for (const [name, t] of h.tensors) if (itemBytes[t.dtype]) expect(t.begin % itemBytes[t.dtype], name).not.toBe(0);
    expect(Array.from(readInt32(h, 'u8'))).toEqual([7, 255, 0]);
    expect(Array.from(readFloat32(h, 'f32'))).toEqual([1.5, -3.25]);
    expect(Array.from(readInt32(h, 'bool'))).toEqual([1]);
    expect(Array.from(readFloat32(h, 'f16'))).toEqual([1, -2]);
    expect(Array.from(readInt32(h, 'i8'))).toEqual([-1]);
    expect(Array.from(readFloat32(h, 'bf16'))).toEqual([1]);
    expect(Array.from(readFloat32(h, 'f64'))).toEqual([Math.fround(Math.PI), -Infinity]);
    expect(Array.from(readInt32(h, 'i16'))).toEqual([-300, 300]);
    expect(Array.from(readInt32(h, 'i64'))).toEqual([-5, 123456789]);
    expect(Array.from(readInt32(h, 'i32'))).toEqual([-123456]);
  });

  it('accepts tensors listed in any key order and zero-size tensors', () => {
    const p = craft(
      {
        b: { dtype: 'U8', shape: [2], data_offsets: [2, 4] },
        __metadata__: { k: 'v' },
        a: { dtype: 'U8', shape: [2], data_offsets: [0, 2] },
        z: { dtype: 'F32', shape: [0], data_offsets: [4, 4] },
      },
      [1, 2, 3, 4],
    );
    const h = readSafetensorsHeader(p);
    expect([...h.tensors.keys()].sort()).toEqual(['a', 'b', 'z']);
    expect(h.metadata).toEqual({ k: 'v' });
    expect(Array.from(readInt32(h, 'b'))).toEqual([3, 4]);
  });
});

describe('malformed input throws LanternError naming file and problem', () => {
  const ok = { w: { dtype: 'F32', shape: [2], data_offsets: [0, 8] } };

  it('missing file, directory', () => {
    const p = path.join(dir, 'nope.safetensors');
    expectLantern(() => readSafetensorsHeader(p), p, 'not found');
    expectLantern(() => readSafetensorsHeader(dir), dir, 'is a directory');
  });

  it('file shorter than 8 bytes', () => {
    const p = tmp();
    fs.writeFileSync(p, Buffer.from([1, 2, 3]));
    expectLantern(() => readSafetensorsHeader(p), p, '3 bytes', 'shorter than the 8-byte header length');
  });

  it('header length larger than the file', () => {
    const p = craft(ok, new Uint8Array(8), { lengthOverride: 10_000n });
    expectLantern(() => readSafetensorsHeader(p), p, 'header length 10000 is larger than the file');
    const q = craft(ok, new Uint8Array(8), { lengthOverride: 2n ** 63n });
    expectLantern(() => readSafetensorsHeader(q), 'is larger than the file');
  });

  it('header not JSON / not an object', () => {
    expectLantern(() => readSafetensorsHeader(craft(null, [], { rawHeader: '{"a": ' })), 'header is not JSON');
    expectLantern(() => readSafetensorsHeader(craft(null, [], { rawHeader: '[1,2]' })), 'header is not a JSON object');
    const bad = tmp();
    fs.writeFileSync(bad, Buffer.concat([Buffer.from([2, 0, 0, 0, 0, 0, 0, 0]), Buffer.from([0xff, 0xfe])]));
    expectLantern(() => readSafetensorsHeader(bad), bad, 'header is not JSON');
  });

  it('unknown dtype', () => {
    const p = craft({ w: { dtype: 'F8_E4M3', shape: [8], data_offsets: [0, 8] } }, new Uint8Array(8));
    expectLantern(() => readSafetensorsHeader(p), p, '"w"', 'unknown dtype "F8_E4M3"');
  });

  it('bad shape or offsets fields', () => {
    expectLantern(() => readSafetensorsHeader(craft({ w: { dtype: 'F32', shape: [-1], data_offsets: [0, 0] } })), 'shape [-1]');
    expectLantern(() => readSafetensorsHeader(craft({ w: { dtype: 'F32', shape: [1], data_offsets: [0] } }, [0, 0, 0, 0])), 'data_offsets [0]');
    expectLantern(() => readSafetensorsHeader(craft({ w: 5 })), '"w"', 'not a JSON object');
    expectLantern(() => readSafetensorsHeader(craft({ __metadata__: { n: 1 } })), '__metadata__', '"n"', 'not a string');
  });

  it('shape / offsets byte count mismatch', () => {
    const p = craft({ w: { dtype: 'F32', shape: [3], data_offsets: [0, 8] } }, new Uint8Array(8));
    expectLantern(() => readSafetensorsHeader(p), p, '"w"', 'needs 12 bytes', 'span 8');
  });

  it('offsets beyond the file', () => {
    const p = craft({ w: { dtype: 'F32', shape: [4], data_offsets: [0, 16] } }, new Uint8Array(8));
    expectLantern(() => readSafetensorsHeader(p), p, 'beyond the end of the file');
  });

  it('reversed offsets', () => {
    const p = craft({ w: { dtype: 'U8', shape: [0], data_offsets: [8, 0] } }, new Uint8Array(8));
    expectLantern(() => readSafetensorsHeader(p), 'out of order');
  });

  it('overlapping data, gaps, and trailing bytes', () => {
    const overlap = craft(
      { a: { dtype: 'F32', shape: [2], data_offsets: [0, 8] }, b: { dtype: 'F32', shape: [2], data_offsets: [4, 12] } },
      new Uint8Array(12),
    );
    expectLantern(() => readSafetensorsHeader(overlap), overlap, 'overlaps');
    const gap = craft(
      { a: { dtype: 'F32', shape: [1], data_offsets: [0, 4] }, b: { dtype: 'F32', shape: [1], data_offsets: [8, 12] } },
      new Uint8Array(12),
    );
    expectLantern(() => readSafetensorsHeader(gap), gap, 'gap in the data region', 'bytes 4..8');
    const trailing = craft(ok, new Uint8Array(12));
    expectLantern(() => readSafetensorsHeader(trailing), trailing, 'data region is 12 bytes', 'cover only 8');
  });

  it('tensor that does not exist suggests nearest names', () => {
    const p = tmp();
    writeSafetensors(p, {
      'h.0.attn.c_attn.weight': { dtype: 'F32', shape: [1], data: new Float32Array(1) },
      'h.0.mlp.c_fc.weight': { dtype: 'F32', shape: [1], data: new Float32Array(1) },
    });
    const h = readSafetensorsHeader(p);
    expectLantern(() => readFloat32(h, 'h.0.attn.c_atn.weight'), p, 'no tensor "h.0.attn.c_atn.weight"', 'did you mean "h.0.attn.c_attn.weight"');
    expectLantern(() => readInt32(h, 'missing'), 'no tensor "missing"');
  });

  it('float read as int and int read as float', () => {
    const p = tmp();
    writeSafetensors(p, {
      f: { dtype: 'F16', shape: [1], data: new Float32Array(1) },
      i: { dtype: 'I64', shape: [1], data: new BigInt64Array(1) },
    });
    const h = readSafetensorsHeader(p);
    expectLantern(() => readInt32(h, 'f'), p, '"f" is F16, a float tensor', 'readFloat32');
    expectLantern(() => readFloat32(h, 'i'), p, '"i" is I64, an integer tensor', 'readInt32');
  });

  it('file truncated after its header was read', () => {
    const p = tmp();
    writeSafetensors(p, { w: { dtype: 'F32', shape: [4], data: new Float32Array(4) } });
    const h = readSafetensorsHeader(p);
    fs.truncateSync(p, fs.statSync(p).size - 4);
    expectLantern(() => readFloat32(h, 'w'), p, 'file ended');
  });
});

describe('model folders', () => {
  function shardedFolder(): string {
    const folder = fs.mkdtempSync(path.join(dir, 'sharded-'));
    writeSafetensors(path.join(folder, 'model-00001-of-00002.safetensors'), {
      'wte.weight': { dtype: 'F32', shape: [2, 2], data: Float32Array.from([1, 2, 3, 4]) },
      'h.0.ln.weight': { dtype: 'BF16', shape: [2], data: Float32Array.from([0.5, -1]) },
    });
    writeSafetensors(path.join(folder, 'model-00002-of-00002.safetensors'), {
      'h.1.ln.weight': { dtype: 'F16', shape: [2], data: Float32Array.from([2, 3]) },
      ids: { dtype: 'I64', shape: [2], data: BigInt64Array.from([5n, 6n]) },
    });
    fs.writeFileSync(
      path.join(folder, 'model.safetensors.index.json'),
      JSON.stringify({
        metadata: { total_size: 34 },
        weight_map: {
          'wte.weight': 'model-00001-of-00002.safetensors',
          'h.0.ln.weight': 'model-00001-of-00002.safetensors',
          'h.1.ln.weight': 'model-00002-of-00002.safetensors',
          ids: 'model-00002-of-00002.safetensors',
        },
      }),
    );
    return folder;
  }

  it('opens a sharded folder and reads lazily from each shard', () => {
    const folder = shardedFolder();
    const w = openModelWeights(folder);
    expect([...w.keys()].sort()).toEqual(['h.0.ln.weight', 'h.1.ln.weight', 'ids', 'wte.weight']);
    const wte = w.get('wte.weight')!;
    expect(wte.entry.shape).toEqual([2, 2]);
    expect(Array.from(readFloat32(wte.header, 'wte.weight'))).toEqual([1, 2, 3, 4]);
    expect(Array.from(readFloat32(w.get('h.0.ln.weight')!.header, 'h.0.ln.weight'))).toEqual([0.5, -1]);
    expect(Array.from(readFloat32(w.get('h.1.ln.weight')!.header, 'h.1.ln.weight'))).toEqual([2, 3]);
    expect(Array.from(readInt32(w.get('ids')!.header, 'ids'))).toEqual([5, 6]);
    // Tensors in the same shard share one parsed header.
    expect(w.get('wte.weight')!.header).toBe(w.get('h.0.ln.weight')!.header);
    expectLantern(() => getWeight(w, 'wte.weights', folder), 'no tensor "wte.weights"', 'did you mean "wte.weight"');
  });

  it('opens a single model.safetensors folder', () => {
    const folder = fs.mkdtempSync(path.join(dir, 'single-'));
    writeSafetensors(path.join(folder, 'model.safetensors'), { a: { dtype: 'F32', shape: [1], data: Float32Array.from([7]) } });
    const w = openModelWeights(folder);
    expect([...w.keys()]).toEqual(['a']);
    expect(Array.from(readFloat32(w.get('a')!.header, 'a'))).toEqual([7]);
  });

  it('index.json naming a missing shard', () => {
    const folder = shardedFolder();
    fs.rmSync(path.join(folder, 'model-00002-of-00002.safetensors'));
    expectLantern(() => openModelWeights(folder), 'model.safetensors.index.json', 'lists shard file "model-00002-of-00002.safetensors", which is missing');
  });

  it('index.json naming a tensor its shard lacks, or malformed', () => {
    const folder = shardedFolder();
    const indexPath = path.join(folder, 'model.safetensors.index.json');
    fs.writeFileSync(indexPath, JSON.stringify({ weight_map: { ghost: 'model-00001-of-00002.safetensors' } }));
    expectLantern(() => openModelWeights(folder), indexPath, 'tensor "ghost"', 'no such tensor');
    fs.writeFileSync(indexPath, '{ not json');
    expectLantern(() => openModelWeights(folder), indexPath, 'not JSON');
    fs.writeFileSync(indexPath, '{}');
    expectLantern(() => openModelWeights(folder), indexPath, 'no "weight_map"');
    fs.writeFileSync(indexPath, JSON.stringify({ weight_map: { a: '../../etc/passwd' } }));
    expectLantern(() => openModelWeights(folder), 'outside the model folder');
  });

  it('folder missing or without weights', () => {
    expectLantern(() => openModelWeights(path.join(dir, 'no-such-folder')), 'model folder not found');
    const empty = fs.mkdtempSync(path.join(dir, 'empty-'));
    expectLantern(() => openModelWeights(empty), empty, 'no model.safetensors or model.safetensors.index.json');
  });
});
