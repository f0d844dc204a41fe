/**
 * A thin wrapper over `@huggingface/tokenizers` (pure JS, reads Hugging Face `tokenizer.json`),
 * fixing the options interpretability work needs: no special tokens slipped in, and decoding
 * that gives back exactly the text that was encoded.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { Tokenizer as HFTokenizer } from '@huggingface/tokenizers';
import { LanternError } from '../errors.js';
import { readRegularText } from '../files.js';

/** Far above any real tokenizer.json (GPT-2's is 1.4 MB, large multilingual ones ~30 MB). */
const MAX_TOKENIZER_BYTES = 256 * 2 ** 20;

/** A Hugging Face tokenizer.json tokenizer, with the model's BOS rule. */
export class Tokenizer {
  readonly vocabSize: number;
  /** id -> token; holes (ids no token has) stay undefined. */
  private readonly idTokens: (string | undefined)[];

  /**
   * The BOS token Hugging Face's tokenizer puts before a prompt (encode with add_special_tokens),
   * or undefined when it adds none (GPT-2, Qwen). Set from tokenizer_config.json (`withConfig`).
   */
  bos?: { id: number; token: string };

  /**
   * The chat template(s) of tokenizer_config.json (`chat_template`, a string or named templates) or
   * of chat_template.jinja, which newer transformers versions write beside it; set by `fromFolder`.
   */
  chatTemplates?: Record<string, string>;

  /** bos_token, eos_token, unk_token, pad_token and the other special-token names of tokenizer_config.json, as templates see them. */
  specialTokensMap: Record<string, string | string[] | null> = {};

  private constructor(
    private readonly inner: HFTokenizer,
    private readonly source: string,
  ) {
    const vocab = inner.get_vocab(true);
    this.idTokens = [];
    for (const [token, id] of vocab) if (typeof token === 'string') this.idTokens[id] = token;
    this.vocabSize = this.idTokens.filter((t) => t !== undefined).length;
  }

  /** Loads a Hugging Face `tokenizer.json`. */
  static fromFile(path: string): Tokenizer {
    return Tokenizer.build(Tokenizer.readJson(path), path);
  }

  /**
   * Reads the file through one descriptor, checked with fstat before any byte is read: a device
   * (a link to /dev/zero), a FIFO or a folder would make readFileSync read forever or abort the
   * process allocating, and checking the path first would leave a window for it to be swapped.
   */
  private static readJson(path: string): unknown {
    const text = readRegularText(path, MAX_TOKENIZER_BYTES, 'tokenizer file');
    try {
      return JSON.parse(text);
    } catch (e) {
      throw new LanternError(`${path}: tokenizer file is not JSON (${(e as Error).message})`);
    }
  }

  /**
   * tokenizer.json plus tokenizer_config.json (when present) from a model folder: the config's
   * `add_bos_token` and `bos_token` decide the BOS, as transformers does; without them, the BOS is
   * what tokenizer.json's post-processor puts first (Llama 3's template adds <|begin_of_text|>).
   */
  static fromFolder(folder: string): Tokenizer {
    const tok = Tokenizer.fromFile(path.join(folder, 'tokenizer.json'));
    const configPath = path.join(folder, 'tokenizer_config.json');
    let config: Record<string, unknown> = {};
    if (fs.existsSync(configPath)) {
      const text = readRegularText(configPath, 64 << 20, 'tokenizer_config.json');
      try {
        config = JSON.parse(text);
      } catch (e) {
        throw new LanternError(`${configPath} is not valid JSON: ${(e as Error).message}`);
      }
      if (typeof config !== 'object' || config === null || Array.isArray(config)) throw new LanternError(`${configPath} must hold a JSON object`);
    }
    tok.bos = bosOf(tok, config, configPath);
    tok.specialTokensMap = specialTokensOf(config);
    tok.chatTemplates = chatTemplatesOf(folder, config, configPath);
    return tok;
  }

  /** The ids Hugging Face's post-processor puts before a prompt's own (encode with add_special_tokens). */
  templatePrefix(): number[] {
    const plain = this.inner.encode('a', { add_special_tokens: false }).ids;
    const full = this.inner.encode('a', { add_special_tokens: true }).ids;
    for (let k = 0; k + plain.length <= full.length; k++) {
      if (plain.every((id: number, i: number) => full[k + i] === id)) return full.slice(0, k);
    }
    return [];
  }

  /** A tokenizer from parsed tokenizer.json. */
  static fromJSON(json: object): Tokenizer {
    return Tokenizer.build(json, 'tokenizer.json');
  }

  private static build(json: unknown, source: string): Tokenizer {
    if (typeof json !== 'object' || json === null || Array.isArray(json)) {
      throw new LanternError(`${source}: tokenizer is not a JSON object`);
    }
    const obj = json as Record<string, unknown>;
    if (typeof obj.model !== 'object' || obj.model === null) {
      throw new LanternError(`${source}: tokenizer has no "model" section; is this a Hugging Face tokenizer.json?`);
    }
    // The library builds a BPE model from anything with a vocabulary, so a WordPiece or Unigram
    // file would load and then split text wrongly rather than fail.
    const model = obj.model as Record<string, unknown>;
    const type = model.type ?? (Array.isArray(model.merges) ? 'BPE' : undefined);
    if (type !== 'BPE') {
      throw new LanternError(`${source}: tokenizer model type ${type === undefined ? '(none given)' : JSON.stringify(type)} is not supported; Lantern reads BPE tokenizers (as GPT-2's)`);
    }
    // The library insists these keys exist even though tokenizer.json allows leaving them out.
    const filled = {
      normalizer: null,
      pre_tokenizer: null,
      post_processor: null,
      decoder: null,
      ...obj,
      added_tokens: obj.added_tokens ?? [],
    };
    try {
      // clean_up_tokenization_spaces would rewrite " ." to "." and break decode(encode(s)) === s.
      return new Tokenizer(new HFTokenizer(filled, { clean_up_tokenization_spaces: false }), source);
    } catch (e) {
      throw new LanternError(`${source}: cannot build tokenizer (${e instanceof Error ? e.message.split('\n')[0] : String(e)})`);
    }
  }

  /** Token ids of `text`, with no special tokens added (no BOS/EOS). */
  encode(text: string): number[] {
    const { ids, tokens } = this.inner.encode(text, { add_special_tokens: false });
    for (let i = 0; i < ids.length; i++) {
      // Without an unk token the library yields undefined ids rather than failing.
      if (ids[i] === undefined) {
        throw new LanternError(`${this.source}: the vocabulary has no token for ${JSON.stringify(tokens[i])} and no unknown token`);
      }
    }
    return ids;
  }

  /** Text of `ids`; for byte-level tokenizers decode(encode(s)) === s for any well-formed string. */
  decode(ids: number[]): string {
    if (ids.length === 0) return '';
    for (const id of ids) this.checkId(id);
    return this.inner.decode(ids, { skip_special_tokens: false, clean_up_tokenization_spaces: false });
  }

  /** Each id decoded on its own, for display (a token holding part of a UTF-8 character shows U+FFFD). */
  tokenStrings(ids: number[]): string[] {
    return ids.map((id) => this.decode([id]));
  }

  /** Ids of the special tokens (added tokens marked special, e.g. GPT-2's <|endoftext|>). */
  specialIds(): Set<number> {
    const ids = new Set<number>();
    for (const [id, t] of this.inner.get_added_tokens_decoder()) if (t.special) ids.add(id);
    return ids;
  }

  /** The id of a token string, or undefined. */
  tokenToId(token: string): number | undefined {
    return this.inner.token_to_id(token);
  }

  /** The raw vocabulary string of `id` (e.g. "Ġthe" for GPT-2), not its decoded text. */
  idToToken(id: number): string | undefined {
    return Number.isInteger(id) ? this.idTokens[id] : undefined;
  }

  private checkId(id: number): void {
    if (!Number.isInteger(id) || this.idTokens[id] === undefined) {
      throw new LanternError(`${this.source}: token id ${id} is not in the vocabulary (ids 0..${this.idTokens.length - 1})`);
    }
  }
}

function bosOf(tok: Tokenizer, config: Record<string, unknown>, configPath: string): Tokenizer['bos'] {
  const raw = config.bos_token;
  const named = typeof raw === 'string' ? raw : typeof raw === 'object' && raw !== null && typeof (raw as { content?: unknown }).content === 'string' ? (raw as { content: string }).content : undefined;
  if (config.add_bos_token === false) return undefined;
  if (config.add_bos_token === true) {
    if (named === undefined) throw new LanternError(`${configPath}: add_bos_token is true but no bos_token is named`);
    const id = tok.tokenToId(named);
    if (id === undefined) throw new LanternError(`${configPath}: bos_token ${JSON.stringify(named)} is not in the vocabulary`);
    return { id, token: named };
  }
  const prefix = tok.templatePrefix();
  if (prefix.length === 1) return { id: prefix[0], token: tok.idToToken(prefix[0]) ?? String(prefix[0]) };
  return undefined;
}

/** Named special tokens as transformers passes them to a chat template (strings; AddedToken objects give their content). */
function specialTokensOf(config: Record<string, unknown>): Record<string, string | string[] | null> {
  const content = (v: unknown): string | null | undefined =>
    typeof v === 'string' ? v : v === null ? null : typeof v === 'object' && typeof (v as { content?: unknown }).content === 'string' ? (v as { content: string }).content : undefined;
  const map: Record<string, string | string[] | null> = {};
  for (const key of ['bos_token', 'eos_token', 'unk_token', 'pad_token', 'sep_token', 'cls_token', 'mask_token']) {
    const v = content(config[key]);
    if (v !== undefined) map[key] = v;
  }
  if (Array.isArray(config.additional_special_tokens)) {
    map.additional_special_tokens = config.additional_special_tokens.map(content).filter((v): v is string => typeof v === 'string');
  }
  return map;
}

function chatTemplatesOf(folder: string, config: Record<string, unknown>, configPath: string): Record<string, string> | undefined {
  const jinjaPath = path.join(folder, 'chat_template.jinja');
  if (fs.existsSync(jinjaPath)) return { default: readRegularText(jinjaPath, 16 << 20, 'chat_template.jinja') };
  const raw = config.chat_template;
  if (raw === undefined || raw === null) return undefined;
  if (typeof raw === 'string') return { default: raw };
  // Several named templates (e.g. 'default', 'tool_use'), as transformers saves them.
  if (Array.isArray(raw) && raw.every((t) => typeof t?.name === 'string' && typeof t?.template === 'string')) {
    return Object.fromEntries(raw.map((t: { name: string; template: string }) => [t.name, t.template]));
  }
  throw new LanternError(`${configPath}: chat_template must be a string or a list of {name, template}`);
}
