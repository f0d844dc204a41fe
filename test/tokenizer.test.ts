import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { encode as refEncode } from 'gpt-3-encoder';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { LanternError } from '../src/errors.js';
import { buildGpt2TokenizerJson, writeGpt2Tokenizer } from '../src/models/gpt2-tokenizer.js';
import { Tokenizer } from '../src/models/tokenizer.js';

import { Rng } from '../src/rng.js';

const EOT = '<|endoftext|>';
const EOT_ID = 50256;

/** Deterministic random numbers so failures reproduce. */
function rng(seed: number): () => number {
  const r = new Rng(seed >>> 0);
  return () => r.next();
}

const SENTENCES = [
  'The quick brown fox jumps over the lazy dog.',
  "It's a truth universally acknowledged, that a single man in possession of a good fortune, must be in want of a wife.",
  "I don't know what you're talking about; we'll see, won't we? She'd've said so.",
  'Call me Ishmael. Some years ago—never mind how long precisely—having little or no money in my purse…',
  'In 1969, Apollo 11 landed on the Moon; 600,000,000 people watched. Cost: $25.4 billion (≈ $150B today).',
  'E = mc^2, and 3.14159 is roughly π. 1/3 ≈ 0.333…, 2**10 == 1024, 1e-9 < 0.001%.',
  'HELLO WORLD!!! What?!? No... way... #hashtag @user http://example.com/path?q=1&r=two#frag',
  'Dr. Smith (Ph.D.) said: "Don\'t panic." Then he left—quietly.',
  "Rock'n'roll isn't dead, y'all; it's just resting. O'Brien's cat's toys.",
  'Mixed-case CamelCaseIdentifiers and snake_case_names and kebab-case-names and SCREAMING_CASE.',
  'Tabs\tand\ttabs, newlines\nand\r\nwindows line endings, and   multiple   spaces.',
  'Trailing spaces   ',
  '   leading spaces',
  '\n\n\nParagraph after blank lines.\n\n',
  'def f(x):\n    return x ** 2  # square\n\nprint(f(3))',
  'function add(a, b) { return a + b; } // JS\nconst xs = [1, 2, 3].map((x) => x * 2);',
  '{"name": "lantern", "version": "0.1.0", "tags": ["a", "b"], "n": [1,2,3]}',
  '<div class="x">Hello &amp; welcome</div>',
  'Café, naïve, résumé, coöperate, façade, jalapeño, Zoë, Ångström.',
  'Москва — столица России. Привет, мир!',
  'Ελληνικά: Καλημέρα κόσμε.',
  '中文：你好，世界！日本語：こんにちは世界。한국어: 안녕하세요 세계.',
  'العربية: مرحبا بالعالم. עברית: שלום עולם. हिन्दी: नमस्ते दुनिया. ไทย: สวัสดีชาวโลก',
  'Emoji: 😀😃😄 👍🏽 👨‍👩‍👧‍👦 🇺🇸🇯🇵 ❤️ 🤖 🏳️‍🌈 — done.',
  'Math: ∑_{i=1}^{n} i = n(n+1)/2, ∀x∈ℝ, √2 ∉ ℚ, ∞.',
  'Combining: e\u0301 a\u0308 n\u0303 and precomposed é ä ñ.',
  'Spaces: no-break\u00a0space, em\u2003space, ideographic\u3000space, thin\u2009space, zero\u200bwidth.',
  'Quotes: “curly” ‘single’ «guillemets» „low“ 「corner」.',
  "Numbers: 0 00 007 123456789 3.0 -42 +7 1,234.56 12:30 2024-01-31 0xDEADBEEF 1_000_000 ⅔ ½ ²³.",
  "'s 't 're 've 'm 'll 'd 'S 'T 'RE ' s",
  'A____B----C....D!!!!E????F;;;;G',
  '',
  ' ',
  '\t',
  '\n',
];

const FRAGMENTS = [
  'the', 'The', ' of', 'and', 'to', 'in', 'is', 'that', 'it', 'was', 'for', 'on', 'are', 'as', 'with', 'his', 'they',
  'I', 'at', 'be', 'this', 'have', 'from', 'or', 'one', 'had', 'by', 'word', 'but', 'not', 'what', 'all', 'were',
  'interpretability', 'transformer', 'attention', 'residual', 'logits', 'tokenization', 'antidisestablishmentarianism',
  "don't", "can't", "won't", "I'm", "you're", "we've", "they'll", "she'd", "it's", "IT'S", "Y'ALL", "o'clock",
  '.', ',', '!', '?', ';', ':', '...', '—', '–', '-', '(', ')', '[', ']', '{', '}', '"', "'", '`', '~', '@', '#', '$', '%',
  '^', '&', '*', '_', '+', '=', '<', '>', '/', '\\', '|', '<|', '|>', '<|endof', 'text|>',
  '0', '1', '42', '1000', '3.14', '-7', '1e10', '2024', '99.9%', '$5', '１２３', '٣', '๓',
  'café', 'naïve', 'Straße', 'İstanbul', 'ǅ', 'ﬁ', 'Ⅻ', 'Ω', 'ß', 'œ', 'æ',
  'Привет', 'мир', 'Ελλάδα', '你好', '世界', 'こんにちは', 'カタカナ', '안녕', 'مرحبا', 'שלום', 'नमस्ते', 'สวัสดี', 'ሰላም', 'Բարև',
  '😀', '👍🏽', '👨‍👩‍👧‍👦', '🇺🇸', '❤️', '🎉', '🤖', '🦄', '💩', '🏳️‍🌈', '✨', '©', '®', '™', '€', '£', '¥', '₹', '°',
  '\u00a0', '\u2003', '\u3000', '\u200b', '\u200d', '\ufeff', '\u0301', '\u00ad', '\u2028', '\u0085', '\u000b', '\u000c', '\u001f',
];

const SEPARATORS = [' ', ' ', ' ', '', '  ', '   ', '\t', '\n', '\n\n', '\r\n', ' \n ', '\t\t', '\u00a0', ', ', '. ', ' - '];

/** Several thousand varied strings; some contain `<|endoftext|>`. */
function sample(): string[] {
  const r = rng(20240531);
  const pick = <T>(xs: T[]) => xs[Math.floor(r() * xs.length)];
  const out = [...SENTENCES];
  for (let i = 0; i < 4000; i++) {
    let s = '';
    const parts = 1 + Math.floor(r() * 14);
    for (let j = 0; j < parts; j++) {
      const kind = r();
      if (kind < 0.55) s += pick(FRAGMENTS);
      else if (kind < 0.7) s += pick(SENTENCES);
      else if (kind < 0.8) s += String(Math.floor(r() * 10 ** (1 + Math.floor(r() * 9))));
      else if (kind < 0.88) s += ' '.repeat(1 + Math.floor(r() * 6));
      else if (kind < 0.97) {
        // Random code points from assorted blocks, skipping surrogates (JS strings with lone
        // surrogates are not valid Unicode and cannot round-trip through UTF-8).
        const blocks = [[0x20, 0x7e], [0xa0, 0x24f], [0x370, 0x52f], [0x4e00, 0x9fff], [0x1f300, 0x1faff], [0x2000, 0x2bff], [0xac00, 0xd7a3]];
        const [lo, hi] = pick(blocks);
        const len = 1 + Math.floor(r() * 5);
        for (let k = 0; k < len; k++) s += String.fromCodePoint(lo + Math.floor(r() * (hi - lo + 1)));
      } else s += EOT;
      s += pick(SEPARATORS);
    }
    out.push(r() < 0.1 ? s.trim() : s);
  }
  return out;
}

/**
 * gpt-3-encoder treats `<|endoftext|>` as plain text (it has no notion of special tokens) and
 * splits it into `<`, `|`, `end`, `of`, `text`, `|`, `>`. Hugging Face (and we) match it as the
 * single added token 50256 and encode the text between occurrences independently.
 */
function expectedIds(text: string): number[] {
  const ids: number[] = [];
  text.split(EOT).forEach((part, i) => {
    if (i > 0) ids.push(EOT_ID);
    if (part.length > 0) ids.push(...refEncode(part));
  });
  return ids;
}

let tok: Tokenizer;
let dir: string;
beforeAll(() => {
  tok = Tokenizer.fromJSON(buildGpt2TokenizerJson());
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'lantern-tok-'));
});
afterAll(() => {
  fs.rmSync(dir, { recursive: true, force: true });
});

describe('GPT-2 tokenizer.json', () => {
  it('has the structure of Hugging Face gpt2/tokenizer.json', () => {
    const json = buildGpt2TokenizerJson() as Record<string, any>;
    expect(json.version).toBe('1.0');
    expect(json.truncation).toBeNull();
    expect(json.padding).toBeNull();
    expect(json.normalizer).toBeNull();
    expect(json.added_tokens).toEqual([
      { id: 50256, content: '<|endoftext|>', single_word: false, lstrip: false, rstrip: false, normalized: true, special: true },
    ]);
    expect(json.pre_tokenizer).toEqual({ type: 'ByteLevel', add_prefix_space: false, trim_offsets: true, use_regex: true });
    expect(json.post_processor.type).toBe('ByteLevel');
    expect(json.decoder.type).toBe('ByteLevel');
    expect(json.model).toMatchObject({
      type: 'BPE',
      dropout: null,
      unk_token: null,
      continuing_subword_prefix: '',
      end_of_word_suffix: '',
      fuse_unk: false,
      byte_fallback: false,
    });
    expect(Object.keys(json.model.vocab)).toHaveLength(50257);
    expect(json.model.vocab['Ġthe']).toBe(262);
    expect(json.model.vocab['<|endoftext|>']).toBe(50256);
    expect(json.model.merges).toHaveLength(50000);
    expect(json.model.merges[0]).toBe('Ġ t');
    expect(json.model.merges[49999]).toBe('Ġg azed');
  });

  it('writes tokenizer.json into a folder and loads it back', () => {
    const folder = path.join(dir, 'gpt2');
    writeGpt2Tokenizer(folder);
    const loaded = Tokenizer.fromFile(path.join(folder, 'tokenizer.json'));
    expect(loaded.encode('Hello world')).toEqual([15496, 995]);
    expect(loaded.vocabSize).toBe(50257);
  });
});

describe('Tokenizer (GPT-2)', () => {
  it('knows its vocabulary', () => {
    expect(tok.vocabSize).toBe(50257);
    expect(tok.tokenToId('<|endoftext|>')).toBe(50256);
    expect(tok.tokenToId('Ġthe')).toBe(262);
    expect(tok.tokenToId('no such token')).toBeUndefined();
    expect(tok.idToToken(262)).toBe('Ġthe');
  });

  it('encodes hand-checked strings with no special tokens added', () => {
    expect(tok.encode('Hello world')).toEqual([15496, 995]);
    expect(tok.encode(' The')).toEqual([383]);
    expect(tok.encode('')).toEqual([]);
    expect(tok.encode(EOT)).toEqual([EOT_ID]);
    expect(tok.encode(`a${EOT}b`)).toEqual([64, EOT_ID, 65]);
    expect(tok.encode("I'm <|endoftext|> here")).toEqual([40, 1101, 220, EOT_ID, 994]);
    // gpt-3-encoder does not know special tokens:
    expect(refEncode(EOT)).toEqual([27, 91, 437, 1659, 5239, 91, 29]);
  });

  it("matches gpt-3-encoder's ids on thousands of varied strings, and decodes them back exactly", () => {
    const texts = sample();
    expect(texts.length).toBeGreaterThan(4000);
    expect(texts.filter((t) => t.includes(EOT)).length).toBeGreaterThan(100);
    let tokens = 0;
    for (const text of texts) {
      const ids = tok.encode(text);
      const want = expectedIds(text);
      if (ids.length !== want.length || ids.some((id, i) => id !== want[i])) {
        expect.fail(`ids differ for ${JSON.stringify(text)}:\n ours ${JSON.stringify(ids)}\n gpt-3-encoder ${JSON.stringify(want)}`);
      }
      const back = tok.decode(ids);
      if (back !== text) expect.fail(`round trip failed for ${JSON.stringify(text)}: got ${JSON.stringify(back)}`);
      tokens += ids.length;
    }
    expect(tokens).toBeGreaterThan(100_000);
  });

  it('gives per-token strings for display', () => {
    const ids = tok.encode("Hello, world! It's 2024 <|endoftext|> 🎉");
    const strings = tok.tokenStrings(ids);
    expect(strings.slice(0, 9)).toEqual(['Hello', ',', ' world', '!', ' It', "'s", ' 2024', ' ', EOT]);
    // The emoji is four UTF-8 bytes split over tokens: alone, each part is not valid UTF-8.
    expect(strings.slice(9).join('')).toContain('\ufffd');
    expect(tok.decode(ids.slice(9))).toBe(' 🎉');
    expect(tok.tokenStrings([])).toEqual([]);
  });

  it('rejects ids outside the vocabulary', () => {
    expect(() => tok.decode([50257])).toThrow(LanternError);
    expect(() => tok.decode([-1])).toThrow(/token id -1 is not in the vocabulary/);
    expect(() => tok.decode([1.5])).toThrow(LanternError);
    expect(tok.decode([])).toBe('');
  });
});

describe('Tokenizer loading errors', () => {
  it('missing file', () => {
    const p = path.join(dir, 'missing', 'tokenizer.json');
    expect(() => Tokenizer.fromFile(p)).toThrow(LanternError);
    expect(() => Tokenizer.fromFile(p)).toThrow(`${p}: tokenizer file not found`);
  });

  it('malformed JSON', () => {
    const p = path.join(dir, 'bad.json');
    fs.writeFileSync(p, '{"model": ');
    expect(() => Tokenizer.fromFile(p)).toThrow(LanternError);
    expect(() => Tokenizer.fromFile(p)).toThrow(/bad\.json: tokenizer file is not JSON/);
  });

  it('JSON that is not a tokenizer', () => {
    const p = path.join(dir, 'config.json');
    fs.writeFileSync(p, '{"n_layer": 12}');
    expect(() => Tokenizer.fromFile(p)).toThrow(/config\.json: tokenizer has no "model" section/);
    fs.writeFileSync(p, '[1, 2]');
    expect(() => Tokenizer.fromFile(p)).toThrow(/config\.json: tokenizer is not a JSON object/);
    expect(() => Tokenizer.fromJSON({ model: { type: 'Nonsense' } })).toThrow(LanternError);
  });

  it('a tokenizer.json that is not a regular file, or is huge, is refused before reading', () => {
    const zero = path.join(dir, 'zero-tokenizer.json');
    fs.rmSync(zero, { force: true });
    fs.symlinkSync('/dev/zero', zero);
    expect(() => Tokenizer.fromFile(zero)).toThrow(`${zero}: tokenizer file is not a regular file (a character device)`);
    const folder = path.join(dir, 'folder-tokenizer.json');
    fs.mkdirSync(folder, { recursive: true });
    expect(() => Tokenizer.fromFile(folder)).toThrow(`${folder}: tokenizer file is not a regular file (a folder)`);
    const fifo = path.join(dir, 'fifo-tokenizer.json');
    fs.rmSync(fifo, { force: true });
    execFileSync('mkfifo', [fifo]);
    expect(() => Tokenizer.fromFile(fifo)).toThrow(`${fifo}: tokenizer file is not a regular file (a FIFO)`);
    const huge = path.join(dir, 'huge-tokenizer.json');
    fs.writeFileSync(huge, '');
    fs.truncateSync(huge, 300 * 2 ** 20); // sparse: takes no disk
    expect(() => Tokenizer.fromFile(huge)).toThrow(/huge-tokenizer\.json: tokenizer file is 300 MiB, more than the 256 MiB/);
  });

  it('a tokenizer model that is not BPE is an error, not read as BPE', () => {
    const vocab = { '[UNK]': 0, a: 1, '##b': 2 };
    expect(() => Tokenizer.fromJSON({ model: { type: 'WordPiece', vocab, unk_token: '[UNK]' } }))
      .toThrow('tokenizer.json: tokenizer model type "WordPiece" is not supported; Lantern reads BPE tokenizers');
    expect(() => Tokenizer.fromJSON({ model: { type: 'Unigram', vocab: [['a', 0]] } })).toThrow(/model type "Unigram" is not supported/);
    expect(() => Tokenizer.fromJSON({ model: { vocab } })).toThrow(/model type \(none given\) is not supported/);
    // No type but merges: BPE, as the Hugging Face library reads it.
    expect(Tokenizer.fromJSON({ model: { vocab: { a: 0, b: 1, ab: 2 }, merges: ['a b'] } }).encode('ab')).toEqual([2]);
  });

  it('minimal tokenizer.json without optional sections', () => {
    const t = Tokenizer.fromJSON({
      model: { type: 'BPE', vocab: { a: 0, b: 1, ab: 2 }, merges: ['a b'], unk_token: null },
    });
    expect(t.encode('abab')).toEqual([2, 2]);
    expect(t.vocabSize).toBe(3);
    expect(t.decode([2, 0])).toBe('ab a');
  });
});
