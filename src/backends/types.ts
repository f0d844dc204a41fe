/**
 * The one interface every language-model backend offers to model-agnostic (black-box) methods:
 * score a fixed continuation after a prompt, and generate. Implemented by Lantern's own engine,
 * by an OpenAI-compatible HTTP server, and by GGUF models through node-llama-cpp.
 *
 * Prompts are either text or token ids: token ids let a black-box method perturb exactly the
 * tokens a white-box method perturbs (OpenAI's /v1/completions accepts an array of ids), so the
 * two can be compared number for number.
 */

import { LanternError } from '../errors.js';

/** A prompt as text or as token ids (ids avoid re-tokenization, so masked prompts stay exactly the ones meant). */
export type Prompt = string | number[];

/**
 * What to score after the prompt: text, or token ids in the backend's vocabulary. Ids are needed
 * with a token-id prompt on a remote server, whose tokenizer this side cannot know.
 */
export type Continuation = string | number[];

/** Per-call scoring settings. */
export interface ScoreOptions {
  signal?: AbortSignal;
}

/** Per-token log-probabilities of a continuation, and whether they are exact. */
export interface ContinuationScore {
  /** The continuation's tokens as the backend split them (text of each token). */
  tokens: string[];
  /** log p(token_t | prompt, tokens_<t), natural log, one per token. */
  logprobs: number[];
  /** Σ logprobs. */
  total: number;
  /**
   * True when the backend could not score the continuation exactly (e.g. a chat endpoint that
   * only reports top-k log-probs of its own sampled tokens): results built on it must say so.
   */
  approximate: boolean;
}

/** How much to generate and how to sample it. */
export interface GenerateOptions {
  maxTokens: number;
  /** 0 (default) is greedy. */
  temperature?: number;
  seed?: number;
  /** Also return this many most likely alternatives per generated token. */
  topLogprobs?: number;
  stop?: string[];
  signal?: AbortSignal;
}

/** A generated continuation: its text, token ids where the backend knows them, and log-probs. */
export interface Generation {
  text: string;
  tokens?: string[];
  logprobs?: number[];
  /** Per generated token: alternative token text → log-prob. */
  topLogprobs?: Record<string, number>[];
}

/** Token and cost accounting, summed over a backend's lifetime. */
export interface Usage {
  requests: number;
  cachedRequests: number;
  promptTokens: number;
  completionTokens: number;
  retries: number;
  /** Requests that failed for good (after every retry). */
  failures?: number;
  /** Estimated cost in the currency of the backend's price table, when it has one. */
  cost?: number;
}

/**
 * The error every backend gives when text scoring cannot separate the continuation from the
 * prompt: tokenized together, the end of one and the start of the other become one token, so the
 * continuation's own tokens are not what the model would see.
 */
export function checkNoMerge(id: string, separate: number[], joint: number[], tokenString: (id: number) => string): void {
  if (separate.length === joint.length && separate.every((t, i) => t === joint[i])) return;
  let i = 0;
  while (i < joint.length && joint[i] === separate[i]) i++;
  throw new LanternError(`${id}: the tokenizer merged the end of the prompt with the start of the continuation into one token (${JSON.stringify(tokenString(joint[i] ?? separate[i]))}); start the continuation with a space or pass token ids`);
}

/** A prompt echoed back token by token, with each token's most likely alternatives given the text before it. */
export interface PromptLogprobs {
  /** The prompt's tokens as text. */
  tokens: string[];
  /** Where each token starts in the prompt, in code points. */
  offsets: number[];
  /** Per token: alternative token text -> log-prob at that position (empty for the first token). */
  top: Record<string, number>[];
}

/** What black-box methods need from a model: score a continuation and generate one. Implemented by Lantern's engine, OpenAI-compatible servers and GGUF files. */
export interface LanguageModelBackend {
  /** Identifies the model in saved results (e.g. 'lantern:lantern-demo', 'http:gpt-4o-mini@https://…', 'gguf:/path/model.gguf'). */
  readonly id: string;
  /** Log-probability of each token of `continuation` after `prompt`. */
  scoreContinuation(prompt: Prompt, continuation: Continuation, opts?: ScoreOptions): Promise<ContinuationScore>;
  /** Generates a continuation of `prompt`. */
  generate(prompt: Prompt, opts: GenerateOptions): Promise<Generation>;
  /**
   * The prompt's tokens with the `topK` most likely tokens at each position, from one request,
   * where the backend can give them (OpenAI's completions API with `echo`; Lantern's engine).
   */
  promptLogprobs?(prompt: string, topK: number, opts?: ScoreOptions): Promise<PromptLogprobs>;
  /** Token ids of `text` in the backend's own vocabulary, when it can tell. */
  tokenize?(text: string): Promise<number[]>;
  /** Text of the given token ids, where the backend has a tokenizer. */
  detokenize?(ids: number[]): Promise<string>;
  /** Most tokens a prompt and its continuation may take together, when the backend can tell. */
  contextLength?(): Promise<number | undefined>;
  /** Calls, tokens and cost so far. */
  usage(): Usage;
  /** Releases the backend's resources (model memory, connections). */
  close?(): Promise<void>;
}
