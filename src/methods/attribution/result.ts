/**
 * The result of an attribution, its JSON file format, and word-level merging.
 *
 * JSON (format 'lantern-attribution', version 1): model { source, weightsSha256, config }, method,
 * settings, seed, text, tokens, tokenStrings, target (TargetInfo), scores [rows][prompt tokens],
 * and optionally convergenceDelta (IG) and faithfulness. `weightsSha256` is the SHA-256 of the
 * config JSON followed by every weight's name, shape and float32 bytes in name order, so two
 * results agree on it exactly when they came from the same numbers.
 */
import crypto from 'node:crypto';
import fs from 'node:fs';
import { LanternError } from '../../errors.js';
import type { HookedTransformer } from '../../models/hooked.js';
import type { Faithfulness } from './faithfulness.js';
import type { TargetInfo } from './targets.js';

/** The `format` field of attribution JSON files. */
export const RESULT_FORMAT = 'lantern-attribution';
export const RESULT_VERSION = 1;

/** A saved attribution: model, method, settings, seed, tokens, targets and scores (and faithfulness when asked). */
export interface AttributionResult {
  /** `hub`: for a Hub model, the revision asked for and the commit it resolved to. */
  model: { source: string; hub?: { id: string; revision: string; commit: string }; weightsSha256: string; config: Record<string, unknown> };
  method: string;
  settings: Record<string, unknown>;
  seed: number;
  text?: string;
  /** The prompt's token ids (the columns, unless `spans` groups them). */
  tokens: number[];
  /** The text of each column. */
  tokenStrings: string[];
  /** Perturbation methods at word or sentence granularity: each column's token range [start, end). */
  spans?: [number, number][];
  granularity?: 'token' | 'word' | 'sentence';
  target: TargetInfo;
  /** scores[row][token]: rows follow target.rows. */
  scores: number[][];
  /** IG only: Σ attributions − (f(x) − f(baseline)), per row. */
  convergenceDelta?: number[];
  /** LIME only: the surrogate's weighted R², per row. */
  surrogateR2?: number[];
  faithfulness?: Faithfulness;
  /**
   * Special tokens of the prompt that were kept as context and not attributed (their positions
   * in the prompt); `tokens`, `tokenStrings` and the score columns leave them out.
   */
  skippedSpecial?: { position: number; token: number; string: string }[];
  /**
   * For a chat (`messages`): the templated prompt, the token ranges [start, end) of the user's
   * messages, and the positions of the template's tokens (and other roles' words) that were kept as
   * context and not attributed (none when `templateTokens`).
   */
  chat?: { messages: { role: string; content: string }[]; template: string; text: string; userSpans: [number, number][]; templatePositions: number[]; templateTokens: boolean };
}

const hashes = new WeakMap<HookedTransformer, Promise<string>>();

/** SHA-256 of the model's config and weights (cached per model object). */
export function weightsHash(model: HookedTransformer): Promise<string> {
  let h = hashes.get(model);
  if (!h) {
    h = (async () => {
      const names = Object.keys(model.weights.shapes).sort();
      const hash = crypto.createHash('sha256');
      hash.update(JSON.stringify(model.cfg));
      // A few at a time: every weight is copied out of the compute thread once.
      for (let i = 0; i < names.length; i += 8) {
        const got = await model.executor.readWeights(model.weights, names.slice(i, i + 8));
        for (const n of names.slice(i, i + 8)) {
          const t = got[n];
          hash.update(`${n}:${t.shape.join('x')}:`);
          hash.update(new Uint8Array(t.data.buffer, t.data.byteOffset, t.data.byteLength));
        }
      }
      return hash.digest('hex');
    })();
    hashes.set(model, h);
  }
  return h;
}

/** The JSON form of a result (what {@link saveResult} writes). */
export function resultToJSON(r: AttributionResult): object {
  return { format: RESULT_FORMAT, version: RESULT_VERSION, ...r };
}

/** Writes a result as JSON. */
export function saveResult(file: string, r: AttributionResult): void {
  fs.writeFileSync(file, JSON.stringify(resultToJSON(r), null, 2) + '\n');
}

/** Parses and checks a saved result. */
export function parseResult(json: unknown, source = 'attribution JSON'): AttributionResult {
  const o = json as Record<string, unknown> | null;
  if (typeof o !== 'object' || o === null || o.format !== RESULT_FORMAT) throw new LanternError(`${source} is not a Lantern attribution result (format '${RESULT_FORMAT}')`);
  if (o.version !== RESULT_VERSION) throw new LanternError(`${source}: unsupported version ${String(o.version)} (this Lantern reads version ${RESULT_VERSION})`);
  const tokens = o.tokens as unknown;
  const scores = o.scores as unknown;
  const strs = o.tokenStrings as unknown;
  const isNums = (a: unknown): a is number[] => Array.isArray(a) && a.every((x) => typeof x === 'number');
  const spans = o.spans as unknown;
  if (spans !== undefined && !(Array.isArray(spans) && spans.every((s) => isNums(s) && s.length === 2))) throw new LanternError(`${source}: spans must be [start, end] pairs`);
  const columns = spans !== undefined ? (spans as unknown[]).length : isNums(tokens) ? tokens.length : -1;
  if (!isNums(tokens) || !Array.isArray(strs) || strs.length !== columns) throw new LanternError(`${source}: tokens and tokenStrings must be arrays of the same length (or tokenStrings one per span)`);
  if (!Array.isArray(scores) || !scores.every((r) => isNums(r) && r.length === columns)) throw new LanternError(`${source}: scores must be rows of one number per token (or per span)`);
  const target = o.target as TargetInfo | undefined;
  if (!target || !Array.isArray(target.rows) || target.rows.length !== scores.length) throw new LanternError(`${source}: target.rows must label each row of scores`);
  if (typeof o.method !== 'string' || typeof o.model !== 'object' || o.model === null) throw new LanternError(`${source}: missing method or model`);
  const { format: _f, version: _v, ...rest } = o;
  return rest as unknown as AttributionResult;
}

/** Reads an attribution JSON file, checking its format. */
export function loadResult(file: string): AttributionResult {
  let json: unknown;
  try {
    json = JSON.parse(fs.readFileSync(file, 'utf8'));
  } catch (e) {
    throw new LanternError(`cannot read ${file}: ${(e as Error).message}`);
  }
  return parseResult(json, file);
}

/** How token scores combine into a word's score: sum, the score of largest magnitude, or mean. */
export type WordAggregation = 'sum' | 'absmax' | 'mean';

/**
 * Merges subword tokens into words: a token starts a new word when its text begins with
 * whitespace (GPT-2's byte-level BPE puts the space on the word's first token) or it is the first
 * token; punctuation-only tokens also stand alone. Scores of a word's tokens are combined by
 * 'sum' (default: additive methods stay additive), 'mean', or 'absmax' (Inseq's default: the
 * value with the largest magnitude, sign kept).
 */
export function mergeWords(tokenStrings: string[], scores: number[][], how: WordAggregation = 'sum'): { words: string[]; spans: [number, number][]; scores: number[][] } {
  const spans: [number, number][] = [];
  const punct = /^\s*[^\p{L}\p{N}\s]+\s*$/u;
  tokenStrings.forEach((s, i) => {
    const startsWord = i === 0 || /^\s/.test(s) || punct.test(s) || punct.test(tokenStrings[i - 1]);
    if (startsWord) spans.push([i, i + 1]);
    else spans[spans.length - 1][1] = i + 1;
  });
  const words = spans.map(([a, b]) => tokenStrings.slice(a, b).join(''));
  const merged = scores.map((row) => spans.map(([a, b]) => {
    const xs = row.slice(a, b);
    if (how === 'mean') return xs.reduce((p, q) => p + q, 0) / xs.length;
    if (how === 'absmax') return xs.reduce((p, q) => (Math.abs(q) > Math.abs(p) ? q : p), 0);
    return xs.reduce((p, q) => p + q, 0);
  }));
  return { words, spans, scores: merged };
}
