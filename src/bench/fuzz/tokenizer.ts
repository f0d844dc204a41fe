/**
 * tokenizer.json files for the fuzzer: GPT-2's tokenizer cut to 1000 ids, mutated as JSON (a
 * section or value replaced by random JSON or a known-bad value, or deleted), as text (truncated,
 * bytes replaced), and as a file (a link to /dev/zero, a folder, a FIFO). The oracle: loading
 * either succeeds, and then encoding and decoding text gives ids and text or a clean error, or it
 * is refused with one clean LanternError.
 */
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import fc from 'fast-check';
import { LanternError } from '../../errors.js';
import { Tokenizer } from '../../models/tokenizer.js';
import { truncatedGpt2Tokenizer } from '../../models/random.js';
import { cleanMessage, FuzzKind, Verdict } from './harness.js';

type Input =
  | { t: 'json'; path: (string | number)[]; value: unknown; remove: boolean }
  | { t: 'text'; cut: number; flips: [number, number][] }
  | { t: 'file'; what: 'zero' | 'folder' | 'fifo' };

const PATHS: (string | number)[][] = [
  [], ['model'], ['model', 'type'], ['model', 'vocab'], ['model', 'merges'], ['model', 'merges', 0], ['model', 'merges', 500],
  ['model', 'vocab', 'Ġthe'], ['model', 'vocab', 'a'], ['model', 'unk_token'], ['model', 'byte_fallback'], ['model', 'dropout'],
  ['model', 'continuing_subword_prefix'], ['model', 'end_of_word_suffix'], ['model', 'fuse_unk'], ['model', 'ignore_merges'],
  ['added_tokens'], ['pre_tokenizer'], ['pre_tokenizer', 'type'], ['decoder'], ['decoder', 'type'], ['normalizer'], ['post_processor'], ['truncation'], ['padding'],
];

const SPECIAL: unknown[] = [
  null, -1, 0, 1e308, -0.5, 2 ** 53, '', 'WordPiece', 'Unigram', 'WordLevel', 'BPE', 'x'.repeat(100_000), [], {}, [[]], [null], { type: 'Nonsense' },
  { a: -1 }, { a: 1e12 }, { a: 0.5 }, ['a b c'], ['a'], [['a', 'b']], [{ id: -1, content: 'x', special: true }], [{ id: 1e9, content: '' }],
];

const SAMPLE = 'The cat sat on the mat. 🥐 東京 café\u0301 <|endoftext|>';

export function tokenizerKind(): FuzzKind<Input> {
  let dir = '';
  let base: Record<string, unknown> = {};
  let n = 0;
  return {
    name: 'tokenizer.json',
    async setup() {
      dir = fs.mkdtempSync(path.join(os.tmpdir(), 'lantern-fuzz-tok-'));
      base = truncatedGpt2Tokenizer(1000) as Record<string, unknown>;
    },
    arbitrary() {
      return fc.oneof(
        { weight: 6, arbitrary: fc.record({
          t: fc.constant('json' as const), path: fc.constantFrom(...PATHS),
          value: fc.oneof(fc.constantFrom(...SPECIAL), fc.jsonValue({ maxDepth: 2 })), remove: fc.boolean(),
        }) },
        { weight: 3, arbitrary: fc.record({
          t: fc.constant('text' as const), cut: fc.double({ min: 0, max: 1, noNaN: true }),
          flips: fc.array(fc.tuple(fc.double({ min: 0, max: 1, noNaN: true }), fc.nat({ max: 255 })), { maxLength: 4 }),
        }) },
        { weight: 1, arbitrary: fc.record({ t: fc.constant('file' as const), what: fc.constantFrom('zero' as const, 'folder' as const, 'fifo' as const) }) },
      );
    },
    async oracle(input) {
      const file = path.join(dir, `t${n++}.json`);
      if (input.t === 'file') {
        if (input.what === 'zero') fs.symlinkSync('/dev/zero', file);
        else if (input.what === 'folder') fs.mkdirSync(file);
        else execFileSync('mkfifo', [file]);
      } else if (input.t === 'json') {
        const json = structuredClone(base) as Record<string, any>;
        const keys = input.path;
        if (keys.length === 0) {
          fs.writeFileSync(file, JSON.stringify(input.remove ? {} : input.value));
        } else {
          let at: any = json;
          for (const k of keys.slice(0, -1)) at = at?.[k];
          const last = keys[keys.length - 1];
          if (at && typeof at === 'object') {
            if (input.remove) delete at[last];
            else at[last] = input.value;
          }
          fs.writeFileSync(file, JSON.stringify(json));
        }
      } else {
        const b = Buffer.from(JSON.stringify(base));
        for (const [where, v] of input.flips) b[Math.floor(where * (b.length - 1))] = v;
        fs.writeFileSync(file, b.subarray(0, Math.max(0, Math.floor(input.cut * b.length))));
      }
      try {
        let tok: Tokenizer;
        try {
          tok = Tokenizer.fromFile(file);
        } catch (e) {
          if (!(e instanceof LanternError)) throw e;
          return verdict('refused', e.message);
        }
        try {
          const ids = tok.encode(SAMPLE);
          tok.decode(ids);
          tok.tokenStrings(ids);
        } catch (e) {
          if (!(e instanceof LanternError)) throw e;
          return verdict('loaded, refused text', e.message);
        }
        return { outcome: 'loaded' };
      } finally {
        fs.rmSync(file, { recursive: true, force: true });
      }
    },
    async teardown() {
      if (dir) fs.rmSync(dir, { recursive: true, force: true });
    },
    describe: (i) => JSON.stringify(i, (_k, v) => (typeof v === 'string' && v.length > 200 ? `${v.slice(0, 20)}…(${v.length} chars)` : v)),
  };
}

function verdict(outcome: string, message: string): Verdict {
  const bad = cleanMessage(message);
  return bad ? { outcome, violation: bad } : { outcome };
}
