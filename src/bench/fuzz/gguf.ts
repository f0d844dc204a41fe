/**
 * GGUF files for the fuzzer: a tiny GPT-2 exported as GGUF, mutated in its header and metadata
 * (bytes flipped, counts and lengths replaced by extreme values, metadata values set to 0, NaN,
 * 2^63…, the file truncated, bytes inserted or deleted). The oracle: checkGgufBuffer either
 * accepts the file or refuses it with one clean LanternError; files it accepts are then loaded
 * by llama.cpp in child processes, where an abort (exit 134) is a failure.
 */
import { spawn } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import fc from 'fast-check';
import { LanternError } from '../../errors.js';
import { checkGgufBuffer, GgufInfo } from '../../backends/gguf-check.js';
import { exportGguf } from '../../backends/gguf-export.js';
import { TINY_GPT2, writeRandomModel } from '../../models/random.js';
import { cleanMessage, FuzzKind, Verdict } from './harness.js';

type Mutation =
  | { t: 'byte'; pos: number; val: number }
  | { t: 'u32' | 'u64' | 'f32'; field: number; val: number | bigint }
  | { t: 'truncate'; frac: number }
  | { t: 'insert'; pos: number; bytes: number[] }
  | { t: 'delete'; pos: number; n: number };

const U32S = [0, 1, 2, 3, 4, 31, 32, 33, 64, 255, 1e9, 2 ** 31, 2 ** 32 - 1];
const U64S = [0n, 1n, 2n, 255n, 2n ** 31n, 2n ** 32n, 2n ** 62n, 2n ** 63n, 2n ** 64n - 1n, 10n ** 9n];
const F32S = [NaN, Infinity, -Infinity, 0, -1, 1e-30, 1, 1e30];

export interface GgufFuzzOptions {
  /** How many distinct accepted files to load in llama.cpp afterwards (default 8). */
  loads?: number;
}

export function ggufKind(o: GgufFuzzOptions = {}): FuzzKind<Mutation[]> {
  let dir = '';
  let base: Buffer = Buffer.alloc(0);
  let header = 0;
  let fields: { at: number; width: 4 | 8 }[] = [];
  const accepted = new Map<string, string>(); // hash -> file
  const apply = (muts: Mutation[]): Buffer => {
    let b: Buffer = Buffer.from(base);
    for (const m of muts) {
      switch (m.t) {
        case 'byte': if (m.pos < b.length) b[m.pos] = m.val; break;
        case 'u32': case 'u64': case 'f32': {
          const f = fields[m.field % fields.length];
          if (f.at + 8 > b.length) break;
          if (m.t === 'u32') b.writeUInt32LE(Number(m.val) >>> 0, f.at);
          else if (m.t === 'f32') b.writeFloatLE(Number(m.val), f.at);
          else b.writeBigUInt64LE(BigInt(m.val), f.at);
          break;
        }
        case 'truncate': b = b.subarray(0, Math.floor(b.length * m.frac)); break;
        case 'insert': b = Buffer.concat([b.subarray(0, m.pos), Buffer.from(m.bytes), b.subarray(m.pos)]); break;
        case 'delete': b = Buffer.concat([b.subarray(0, m.pos), b.subarray(m.pos + m.n)]); break;
      }
    }
    return b;
  };
  return {
    name: 'gguf',
    async setup() {
      dir = fs.mkdtempSync(path.join(os.tmpdir(), 'lantern-fuzz-gguf-'));
      writeRandomModel(path.join(dir, 'tiny'), TINY_GPT2);
      const file = path.join(dir, 'tiny.gguf');
      exportGguf(path.join(dir, 'tiny'), file, { dtype: 'f32' });
      base = fs.readFileSync(file);
      const info: GgufInfo = checkGgufBuffer(base, 'base');
      header = info.dataOffset;
      // Every count, length, type tag and value a header holds: the places a hostile file lies.
      fields = [{ at: 4, width: 4 }, { at: 8, width: 8 }, { at: 16, width: 8 }];
      for (const e of info.metadata.values()) fields.push({ at: e.offset - 4, width: 4 }, { at: e.offset, width: 8 });
      for (const t of info.tensors) {
        const afterName = t.at + 8 + Buffer.byteLength(t.name);
        fields.push({ at: t.at, width: 8 }, { at: afterName, width: 4 }, { at: afterName + 4, width: 8 });
        fields.push({ at: afterName + 4 + 8 * t.dims.length, width: 4 }, { at: afterName + 8 + 8 * t.dims.length, width: 8 });
      }
    },
    arbitrary() {
      const pos = fc.nat({ max: header - 1 });
      const mutation: fc.Arbitrary<Mutation> = fc.oneof(
        fc.record({ t: fc.constant('byte' as const), pos, val: fc.nat({ max: 255 }) }),
        fc.record({ t: fc.constant('u32' as const), field: fc.nat(), val: fc.constantFrom(...U32S) }),
        fc.record({ t: fc.constant('u64' as const), field: fc.nat(), val: fc.constantFrom(...U64S) }),
        fc.record({ t: fc.constant('f32' as const), field: fc.nat(), val: fc.constantFrom(...F32S) }),
        fc.record({ t: fc.constant('truncate' as const), frac: fc.double({ min: 0, max: 1, noNaN: true }) }),
        fc.record({ t: fc.constant('insert' as const), pos, bytes: fc.array(fc.nat({ max: 255 }), { minLength: 1, maxLength: 16 }) }),
        fc.record({ t: fc.constant('delete' as const), pos, n: fc.integer({ min: 1, max: 64 }) }),
      );
      return fc.array(mutation, { minLength: 0, maxLength: 4 });
    },
    async oracle(muts) {
      const b = apply(muts);
      try {
        checkGgufBuffer(b, 'mutant.gguf');
      } catch (e) {
        if (!(e instanceof LanternError)) throw e;
        const bad = cleanMessage(e.message);
        return bad ? { outcome: 'refused', violation: bad } : { outcome: 'refused' };
      }
      const hash = crypto.createHash('sha256').update(b).digest('hex').slice(0, 16);
      if (!accepted.has(hash) && accepted.size < (o.loads ?? 8)) {
        const f = path.join(dir, `${hash}.gguf`);
        fs.writeFileSync(f, b);
        accepted.set(hash, f);
      }
      return { outcome: 'accepted' };
    },
    async finish() {
      return loadInChildren([...accepted.values()]);
    },
    async teardown() {
      if (dir) fs.rmSync(dir, { recursive: true, force: true });
    },
    describe: (muts) => JSON.stringify(muts, (_k, v) => (typeof v === 'bigint' ? `${v}n` : v)),
  };
}

const CHILD = path.join(path.dirname(fileURLToPath(import.meta.url)), `gguf-load-child${path.extname(fileURLToPath(import.meta.url))}`);

/** Loads each file in llama.cpp in a child process; a child that dies mid-file is that file's abort. */
async function loadInChildren(files: string[]): Promise<Verdict[]> {
  const out: Verdict[] = [];
  let rest = files;
  while (rest.length) {
    const { lines, code, signal } = await new Promise<{ lines: string[]; code: number | null; signal: string | null }>((resolve) => {
      const tsx = CHILD.endsWith('.ts') ? ['--import', 'tsx'] : [];
      const child = spawn(process.execPath, [...tsx, CHILD, ...rest], { stdio: ['ignore', 'pipe', 'pipe'] });
      let text = '';
      child.stdout.on('data', (d) => (text += d));
      child.stderr.on('data', () => {});
      // A load that spins is a hang: the child is killed and the file counted.
      const timer = setTimeout(() => child.kill('SIGKILL'), 30_000 + 10_000 * rest.length);
      child.on('close', (c, s) => { clearTimeout(timer); resolve({ lines: text.split('\n').filter(Boolean), code: c, signal: s }); });
    });
    let done = 0;
    for (const l of lines) {
      const m = /^(loaded|refused) (\d+)(?: (.*))?$/.exec(l);
      if (!m) continue;
      done = Number(m[2]) + 1;
      const bad = m[1] !== 'refused' ? undefined : m[3]?.startsWith('(not a LanternError)') ? `llama.cpp's refusal was not a clean error: ${m[3]}` : cleanMessage(m[3]);
      out.push({ outcome: `llama.cpp ${m[1]}`, ...(bad ? { violation: bad } : {}) });
    }
    if (done < rest.length) {
      if (code === 0) break;
      out.push({ outcome: 'llama.cpp abort', violation: `llama.cpp died (${signal ?? `exit ${code}`}) loading a file the checker accepted: ${rest[done]}` });
      done++;
    }
    rest = rest.slice(done);
  }
  return out;
}
