/**
 * Writes a Lantern / Hugging Face model folder as a GGUF file that llama.cpp loads, in the layout
 * its architecture gives (`Architecture.gguf`: every family llama.cpp implements: GPT-2, Llama,
 * Mistral, Qwen 2 and 3, Gemma 1, 2 and 3, GPT-NeoX, Phi-3). Each family's tensor names and
 * metadata live with the family; what is common is here:
 *   - Matrices are stored F16 (default) or F32; norms and biases stay F32 (llama.cpp requires it).
 *   - The tokenizer metadata follows tokenizer.json, whatever the architecture: byte-level BPE
 *     (GPT-2, Llama 3, Qwen) goes in as tokenizer.ggml.model 'gpt2' with its merges and the name
 *     llama.cpp gives its pre-tokenizer; SentencePiece-style BPE with byte fallback (Llama 2,
 *     Mistral, Phi-3, Gemma) as 'llama', scored so that llama.cpp merges in the merges' order.
 *     A BOS is added exactly when the model's Hugging Face tokenizer adds one.
 *   - Where llama.cpp computes something other than the model (an ignored sliding window), the
 *     layout's caveats go into general.description and are returned for the caller to show.
 */
import fs from 'node:fs';
import path from 'node:path';
import { LanternError } from '../errors.js';
import { readRegularText } from '../files.js';
import { loadWeights } from '../models/weights.js';
import { architectureFor, architectures, readConfig } from '../models/config.js';
import type { ModelConfig } from '../models/config.js';
import { Tokenizer } from '../models/tokenizer.js';
import { GgufValueType as T, writeGguf, type GgufValue } from './gguf-write.js';

export interface ExportGgufOptions {
  /** Matrix storage type (default 'f16'). */
  dtype?: 'f16' | 'f32';
  /** general.name (default: the folder's name). */
  name?: string;
}

export interface ExportGgufResult {
  tensors: number;
  bytes: number;
  /** Where llama.cpp will compute something other than the model, one sentence each. */
  caveats: string[];
}

type Meta = [string, GgufValue][];

interface TokenizerJson {
  model?: { type?: string; vocab?: Record<string, number>; merges?: (string | [string, string])[]; byte_fallback?: boolean; unk_token?: string | null };
  added_tokens?: { id: number; content: string; special?: boolean }[];
  normalizer?: Step | null;
  pre_tokenizer?: Step | null;
  decoder?: Step | null;
}
interface Step {
  type?: string;
  pretokenizers?: Step[];
  normalizers?: Step[];
  decoders?: Step[];
  pattern?: { Regex?: string; String?: string };
  content?: string;
  prepend?: string;
  use_regex?: boolean;
  add_prefix_space?: boolean;
  prepend_scheme?: string;
}

/** A pipeline step and, for a Sequence, its parts. */
function steps(s: Step | null | undefined): Step[] {
  if (!s) return [];
  const inner = s.pretokenizers ?? s.normalizers ?? s.decoders;
  return s.type === 'Sequence' && inner ? inner.flatMap(steps) : [s];
}

/**
 * llama.cpp's pre-tokenizer names for the Split regexes of byte-level tokenizers, as
 * tokenizer.json gives them (quoted in llama-vocab.cpp beside llama.cpp's own adaptation).
 */
const PRE_TOKENIZERS: [name: string, regex: string][] = [
  ['llama-bpe', "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1,3}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+"],
  ['qwen2', "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+"],
];

/** The vocabulary by id, with added tokens; ids the tokenizer never produces (a padded embedding table) get a unique name. */
function vocabulary(tok: TokenizerJson, dVocab: number): { tokens: string[]; special: Set<number>; user: Set<number> } {
  const tokens: string[] = new Array(dVocab);
  for (const [s, id] of Object.entries(tok.model!.vocab!)) if (id < dVocab) tokens[id] = s;
  const special = new Set<number>();
  const user = new Set<number>();
  for (const a of tok.added_tokens ?? []) if (a.id < dVocab) { tokens[a.id] = a.content; (a.special ? special : user).add(a.id); }
  for (let i = 0; i < dVocab; i++) if (tokens[i] === undefined) { tokens[i] = `[PAD${i}]`; special.add(i); }
  return { tokens, special, user };
}

function mergeStrings(tok: TokenizerJson): string[] {
  return tok.model!.merges!.map((m) => (Array.isArray(m) ? m.join(' ') : m));
}

function byteLevelMetadata(tok: TokenizerJson, tokPath: string, dVocab: number): Meta {
  const pre = steps(tok.pre_tokenizer);
  const split = pre.find((p) => p.type === 'Split');
  const byteLevel = pre.find((p) => p.type === 'ByteLevel');
  // ByteLevel splitting with its own regex is GPT-2's; other tokenizers give theirs in a Split.
  const name = split ? PRE_TOKENIZERS.find(([, r]) => r === (split.pattern?.Regex ?? split.pattern?.String))?.[0] : byteLevel?.use_regex !== false ? 'gpt-2' : undefined;
  if (!name || pre.filter((p) => p.type === 'Split').length > 1 || (split && byteLevel?.use_regex) || byteLevel?.add_prefix_space) {
    throw new LanternError(`${tokPath}: llama.cpp has no pre-tokenizer known to split as this one does (${JSON.stringify(tok.pre_tokenizer).slice(0, 300)}); export-gguf knows GPT-2's, Llama 3's and Qwen 2's`);
  }
  const { tokens, special, user } = vocabulary(tok, dVocab);
  return [
    ['tokenizer.ggml.model', { t: T.STRING, v: 'gpt2' }],
    ['tokenizer.ggml.pre', { t: T.STRING, v: name }],
    ['tokenizer.ggml.tokens', { t: T.ARRAY, of: T.STRING, v: tokens }],
    ['tokenizer.ggml.token_type', { t: T.ARRAY, of: T.I32, v: tokens.map((_, i) => (special.has(i) ? 3 : user.has(i) ? 4 : 1)) }],
    ['tokenizer.ggml.merges', { t: T.ARRAY, of: T.STRING, v: mergeStrings(tok) }],
  ];
}

/**
 * SentencePiece-style BPE ("▁" for spaces, <0xHH> byte tokens): llama.cpp's 'llama' tokenizer
 * merges the adjacent pair whose result scores highest, so each merge's result scores minus its
 * rank and llama.cpp merges in the order Hugging Face's BPE does.
 */
function sentencePieceMetadata(tok: TokenizerJson, tokPath: string, dVocab: number): Meta {
  const { tokens, special, user } = vocabulary(tok, dVocab);
  if (!tokens.includes('<0x0A>')) throw new LanternError(`${tokPath}: a SentencePiece-style tokenizer needs the byte tokens <0x00> to <0xFF> (it has no <0x0A>)`);
  const rank = new Map<string, number>();
  mergeStrings(tok).forEach((m, r) => {
    const result = m.replace(' ', '');
    if (!rank.has(result)) rank.set(result, r);
  });
  const unk = tok.model!.unk_token != null ? tok.model!.vocab![tok.model!.unk_token] : undefined;
  const type = (s: string, i: number) => (i === unk ? 2 : special.has(i) ? 3 : user.has(i) ? 4 : /^<0x[0-9A-F]{2}>$/.test(s) ? 6 : 1);
  // A leading "▁" comes from a Prepend normalizer (Llama 2, Mistral) or a Metaspace pre-tokenizer.
  const prefix = steps(tok.normalizer).some((n) => n.type === 'Prepend' && n.prepend === '▁')
    || steps(tok.pre_tokenizer).some((p) => p.type === 'Metaspace' && (p.prepend_scheme ? p.prepend_scheme !== 'never' : p.add_prefix_space !== false));
  return [
    ['tokenizer.ggml.model', { t: T.STRING, v: 'llama' }],
    ['tokenizer.ggml.tokens', { t: T.ARRAY, of: T.STRING, v: tokens }],
    ['tokenizer.ggml.scores', { t: T.ARRAY, of: T.F32, v: tokens.map((s) => -(rank.get(s) ?? 0)) }],
    ['tokenizer.ggml.token_type', { t: T.ARRAY, of: T.I32, v: tokens.map(type) }],
    ['tokenizer.ggml.add_space_prefix', { t: T.BOOL, v: prefix }],
    ...(unk !== undefined ? [['tokenizer.ggml.unknown_token_id', { t: T.U32, v: unk }] as [string, GgufValue]] : []),
  ];
}

/** The tokenizer.ggml.* metadata for `folder`'s tokenizer.json, by the kind of tokenizer it is. */
function tokenizerMetadata(folder: string, cfg: ModelConfig): Meta {
  const tokPath = path.join(folder, 'tokenizer.json');
  if (!fs.existsSync(tokPath)) throw new LanternError(`${folder} has no tokenizer.json; GGUF files carry their tokenizer`);
  let tok: TokenizerJson;
  try {
    tok = JSON.parse(readRegularText(tokPath, 256 * 2 ** 20, 'tokenizer file')) as TokenizerJson;
  } catch (e) {
    throw e instanceof LanternError ? e : new LanternError(`${tokPath}: tokenizer file is not JSON (${(e as Error).message})`);
  }
  if (tok.model?.type !== 'BPE' || !tok.model.vocab || !tok.model.merges) throw new LanternError(`${tokPath}: export-gguf writes BPE tokenizers (byte-level or SentencePiece-style); this one is ${tok.model?.type ?? 'of no model type'}`);
  const byteLevel = [...steps(tok.pre_tokenizer), ...steps(tok.decoder)].some((s) => s.type === 'ByteLevel');
  if (!byteLevel && !tok.model.byte_fallback) throw new LanternError(`${tokPath}: a BPE tokenizer that is neither byte-level (GPT-2 style) nor SentencePiece-style with byte_fallback; llama.cpp has no tokenizer for it`);
  const meta = byteLevel ? byteLevelMetadata(tok, tokPath, cfg.dVocab) : sentencePieceMetadata(tok, tokPath, cfg.dVocab);
  const tokens = (meta.find(([k]) => k === 'tokenizer.ggml.tokens')![1] as { v: string[] }).v;
  const id = (content: string) => { const i = tokens.indexOf(content); return i >= 0 ? i : undefined; };
  const eos = id('<|endoftext|>') ?? id('</s>') ?? id('<eos>') ?? id('<|end_of_text|>') ?? cfg.dVocab - 1;
  // llama.cpp adds the BOS Hugging Face's tokenizer adds (Llama, Gemma), so prompts tokenize alike.
  const bos = Tokenizer.fromFolder(folder).bos?.id;
  return [
    ...meta,
    ['tokenizer.ggml.bos_token_id', { t: T.U32, v: bos ?? eos }],
    ['tokenizer.ggml.eos_token_id', { t: T.U32, v: eos }],
    ['tokenizer.ggml.add_bos_token', { t: T.BOOL, v: bos !== undefined }],
  ];
}

/**
 * llama.cpp sets some tokens' attributes by general.name: a name containing "phi3" or "phi-3"
 * gets Phi-3's, and loading fails ("_Map_base::at") when the vocabulary lacks one of its tokens.
 */
function checkNameRules(name: string, tokens: string[]): void {
  if (!/phi-?3/i.test(name)) return;
  const have = new Set(tokens);
  const missing = ['</s>', '<unk>', '<s>', '<|endoftext|>'].filter((t) => !have.has(t));
  if (missing.length) throw new LanternError(`llama.cpp gives a model named '${name}' Phi-3's special tokens, and this vocabulary lacks ${missing.join(', ')}: give the GGUF another name (--name)`);
}

/** Writes `folder` (a model folder with tokenizer.json) to `out` as GGUF. */
export function exportGguf(folder: string, out: string, o: ExportGgufOptions = {}): ExportGgufResult {
  const dtype = o.dtype ?? 'f16';
  if (dtype !== 'f16' && dtype !== 'f32') throw new LanternError(`--dtype must be f16 or f32, got '${String(dtype)}'`);
  const cfg = readConfig(folder);
  const arch = architectureFor(cfg.architecture);
  if (!arch.gguf) throw new LanternError(`export-gguf does not write ${cfg.architecture} models; it writes ${architectures().filter((a) => a.gguf).map((a) => a.modelType).join(', ')}`);
  const tokenizer = tokenizerMetadata(folder, cfg);
  const name = o.name ?? path.basename(path.resolve(folder));
  checkNameRules(name, (tokenizer.find(([k]) => k === 'tokenizer.ggml.tokens')![1] as { v: string[] }).v);
  const layout = arch.gguf(cfg, loadWeights(folder, cfg));
  const caveats = layout.caveats ?? [];
  const typed = (type: string, v: unknown): GgufValue => (type === 'u32' ? { t: T.U32, v: v as number }
    : type === 'f32' ? { t: T.F32, v: v as number }
      : type === 'bool' ? { t: T.BOOL, v: v as boolean }
        : type === 'bools' ? { t: T.ARRAY, of: T.BOOL, v: v as boolean[] }
          : { t: T.STRING, v: v as string });
  const meta: Meta = [
    ['general.architecture', { t: T.STRING, v: layout.arch }],
    ['general.name', { t: T.STRING, v: name }],
    ['general.file_type', { t: T.U32, v: dtype === 'f16' ? 1 : 0 }],
    ...(caveats.length ? [['general.description', { t: T.STRING, v: caveats.join(' ') }] as [string, GgufValue]] : []),
    ...layout.meta.map(([k, type, v]) => [k, typed(type, v)] as [string, GgufValue]),
    ...tokenizer,
  ];
  const tensors = layout.tensors.map((t) => ({ ...t, f16: t.matrix && dtype === 'f16' }));
  const bytes = writeGguf(out, meta, tensors);
  return { tensors: tensors.length, bytes, caveats };
}
