/**
 * Writes a Lantern / Hugging Face model folder as a GGUF file (v3) that llama.cpp loads, in the
 * layout its architecture gives (`Architecture.gguf`: GPT-2, Llama, Qwen 2 and 3, Gemma 1 and 2, GPT-NeoX so far).
 *
 * Hand-written rather than a dependency: GGUF is a flat little-endian format (header, key/value
 * metadata, tensor descriptors, 32-byte aligned data), the npm packages for it read rather than
 * write, and the only alternative is llama.cpp's Python converter. Each family's tensor names and
 * metadata live with the family; what is common is here:
 *   - Matrices are stored F16 (default) or F32; norms and biases stay F32 (llama.cpp requires it).
 *   - The tokenizer goes in as tokenizer.ggml.model 'gpt2' (byte-level BPE) with the vocabulary in
 *     id order and the BPE merges, pre-tokenizer 'gpt-2'; a BOS is added exactly when the model's
 *     Hugging Face tokenizer adds one.
 */
import fs from 'node:fs';
import path from 'node:path';
import { LanternError } from '../errors.js';
import { loadWeights } from '../models/weights.js';
import { architectureFor, architectures, readConfig } from '../models/config.js';
import { Tokenizer } from '../models/tokenizer.js';
import { float32ToFloat16 } from '../models/safetensors.js';

const ALIGN = 32;
enum T { U32 = 4, I32 = 5, F32 = 6, BOOL = 7, STRING = 8, ARRAY = 9 }

class Writer {
  private parts: Buffer[] = [];
  size = 0;
  push(b: Buffer): void { this.parts.push(b); this.size += b.length; }
  u32(v: number): void { const b = Buffer.alloc(4); b.writeUInt32LE(v); this.push(b); }
  i32(v: number): void { const b = Buffer.alloc(4); b.writeInt32LE(v); this.push(b); }
  u64(v: number): void { const b = Buffer.alloc(8); b.writeBigUInt64LE(BigInt(v)); this.push(b); }
  f32(v: number): void { const b = Buffer.alloc(4); b.writeFloatLE(v); this.push(b); }
  str(s: string): void { const b = Buffer.from(s, 'utf8'); this.u64(b.length); this.push(b); }
  pad(): void { const n = (ALIGN - (this.size % ALIGN)) % ALIGN; if (n) this.push(Buffer.alloc(n)); }
  buffers(): Buffer[] { return this.parts; }
}

type Value = { t: T.U32 | T.I32 | T.F32 | T.BOOL; v: number | boolean } | { t: T.STRING; v: string } | { t: T.ARRAY; of: T.STRING; v: string[] } | { t: T.ARRAY; of: T.I32; v: number[] };

function writeValue(w: Writer, x: Value): void {
  w.u32(x.t);
  switch (x.t) {
    case T.U32: return w.u32(x.v as number);
    case T.I32: return w.i32(x.v as number);
    case T.F32: return w.f32(x.v as number);
    case T.BOOL: return w.push(Buffer.from([x.v ? 1 : 0]));
    case T.STRING: return w.str(x.v);
    case T.ARRAY:
      w.u32(x.of);
      w.u64(x.v.length);
      for (const e of x.v) (x.of === T.STRING ? w.str(e as string) : w.i32(e as number));
  }
}

export interface ExportGgufOptions {
  /** Matrix storage type (default 'f16'). */
  dtype?: 'f16' | 'f32';
}

/** Writes `folder` (a model folder with tokenizer.json) to `out` as GGUF; returns the tensor count. */
export function exportGguf(folder: string, out: string, o: ExportGgufOptions = {}): { tensors: number; bytes: number } {
  const dtype = o.dtype ?? 'f16';
  if (dtype !== 'f16' && dtype !== 'f32') throw new LanternError(`--dtype must be f16 or f32, got '${String(dtype)}'`);
  const cfg = readConfig(folder);
  const arch = architectureFor(cfg.architecture);
  if (!arch.gguf) throw new LanternError(`export-gguf does not write ${cfg.architecture} models yet; it writes ${architectures().filter((a) => a.gguf).map((a) => a.modelType).join(', ')}`);
  const tokPath = path.join(folder, 'tokenizer.json');
  if (!fs.existsSync(tokPath)) throw new LanternError(`${folder} has no tokenizer.json; GGUF files carry their tokenizer`);
  const tok = JSON.parse(fs.readFileSync(tokPath, 'utf8')) as {
    model?: { type?: string; vocab?: Record<string, number>; merges?: (string | [string, string])[] };
    added_tokens?: { id: number; content: string; special?: boolean }[];
  };
  if (tok.model?.type !== 'BPE' || !tok.model.vocab || !tok.model.merges) throw new LanternError(`${tokPath} is not a byte-level BPE tokenizer (GPT-2 style)`);
  const tokens: string[] = new Array(cfg.dVocab);
  for (const [s, id] of Object.entries(tok.model.vocab)) if (id < cfg.dVocab) tokens[id] = s;
  const special = new Set<number>();
  for (const a of tok.added_tokens ?? []) if (a.id < cfg.dVocab) { tokens[a.id] = a.content; if (a.special) special.add(a.id); }
  // Ids the tokenizer never produces (a padded embedding table) still need a unique name.
  for (let i = 0; i < cfg.dVocab; i++) if (tokens[i] === undefined) { tokens[i] = `[PAD${i}]`; special.add(i); }
  const merges = tok.model.merges.map((m) => (Array.isArray(m) ? m.join(' ') : m));
  const eos = tok.added_tokens?.find((a) => a.content === '<|endoftext|>')?.id ?? cfg.dVocab - 1;
  // llama.cpp adds the BOS Hugging Face's tokenizer adds (Llama 3, Gemma), so prompts tokenize alike.
  const bos = Tokenizer.fromFolder(folder).bos?.id;

  const layout = arch.gguf(cfg, loadWeights(folder, cfg));
  const tensors = layout.tensors.map((t) => ({ ...t, f16: t.matrix && dtype === 'f16' }));
  const typed = (type: string, v: unknown): Value => (type === 'u32' ? { t: T.U32, v: v as number } : type === 'f32' ? { t: T.F32, v: v as number } : type === 'bool' ? { t: T.BOOL, v: v as boolean } : { t: T.STRING, v: v as string });
  const meta: [string, Value][] = [
    ['general.architecture', { t: T.STRING, v: layout.arch }],
    ['general.name', { t: T.STRING, v: path.basename(path.resolve(folder)) }],
    ['general.file_type', { t: T.U32, v: dtype === 'f16' ? 1 : 0 }],
    ['general.alignment', { t: T.U32, v: ALIGN }],
    ...layout.meta.map(([k, type, v]) => [k, typed(type, v)] as [string, Value]),
    ['tokenizer.ggml.model', { t: T.STRING, v: 'gpt2' }],
    ['tokenizer.ggml.pre', { t: T.STRING, v: 'gpt-2' }],
    ['tokenizer.ggml.tokens', { t: T.ARRAY, of: T.STRING, v: tokens }],
    ['tokenizer.ggml.token_type', { t: T.ARRAY, of: T.I32, v: tokens.map((_, i) => (special.has(i) ? 3 : 1)) }],
    ['tokenizer.ggml.merges', { t: T.ARRAY, of: T.STRING, v: merges }],
    ['tokenizer.ggml.bos_token_id', { t: T.U32, v: bos ?? eos }],
    ['tokenizer.ggml.eos_token_id', { t: T.U32, v: eos }],
    ['tokenizer.ggml.add_bos_token', { t: T.BOOL, v: bos !== undefined }],
  ];

  const w = new Writer();
  w.push(Buffer.from('GGUF', 'latin1'));
  w.u32(3);
  w.u64(tensors.length);
  w.u64(meta.length);
  for (const [k, v] of meta) { w.str(k); writeValue(w, v); }
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
  const header = w.buffers();
  const fd = fs.openSync(out, 'w');
  try {
    for (const b of [...header, ...blobs]) fs.writeSync(fd, b);
  } finally {
    fs.closeSync(fd);
  }
  return { tensors: tensors.length, bytes: w.size + offset };
}
