/**
 * GGUF models through node-llama-cpp (llama.cpp's prebuilt CPU binary), as a LanguageModelBackend.
 *
 * Scoring uses `LlamaContextSequence.controlledEvaluate`: the prompt and the continuation are
 * evaluated in one pass, asking at each position before a continuation token for that token's
 * logit, the top logit and the total logit weight Σ exp(logit − max), so
 *   log p(token) = logit − max − ln(totalLogitWeight)
 * without copying a vocabulary-sized row per position into JavaScript. The one sequence is reset
 * before each call and calls are queued, so concurrent callers cannot interleave.
 *
 * node-llama-cpp is ESM-only and loads a native addon, so it is imported on first use: the rest of
 * Lantern never pays for it.
 */
import os from 'node:os';
import path from 'node:path';
import { LanternError } from '../errors.js';
import { checkGgufFile } from './gguf-check.js';
import { probeGguf } from './gguf-probe.js';
import { steeredGgufCopy, type ControlVectorSpec } from './gguf-steer.js';
import { checkNoMerge } from './types.js';
import type { Continuation, ContinuationScore, Generation, GenerateOptions, LanguageModelBackend, Prompt, Usage } from './types.js';

type NodeLlama = typeof import('node-llama-cpp');
type LlamaModel = Awaited<ReturnType<Awaited<ReturnType<NodeLlama['getLlama']>>['loadModel']>>;
type LlamaContext = Awaited<ReturnType<LlamaModel['createContext']>>;
type LlamaSequence = ReturnType<LlamaContext['getSequence']>;

/** How a GGUF model is opened: context size, threads, load isolation, control vectors. */
export interface GgufOptions {
  /** Context size in tokens (default: 2048, capped at the model's training context). */
  contextSize?: number;
  /**
   * CPU threads (default: one fewer than the cores, at most 4). llama.cpp's threads spin-wait for
   * each other at every op, so taking every core (its default) stalls badly when anything else
   * runs: measured here on 2 busy cores, 1 thread scored a continuation ~25x faster than 2.
   */
  threads?: number;
  /**
   * Load the file in a child process first (default true), so that a file which makes llama.cpp
   * abort is an error here rather than this process's end. Costs one extra load (~1 s for small
   * models; the file is then in the page cache).
   */
  isolate?: boolean;
  /**
   * llama.cpp control vectors to apply, each times its strength (default 1), summed as llama.cpp's
   * --control-vector-scaled sums them: the model runs from a copy with them baked into each
   * steered block's ffn_down bias (see gguf-steer.ts), kept under `steeredCacheDir` for reuse.
   */
  controlVectors?: ControlVectorSpec[];
  /** Where steered copies are written (default $LANTERN_HOME/steered-gguf). */
  steeredCacheDir?: string;
}

/** A GGUF model file run by llama.cpp (through node-llama-cpp) behind the backend interface, so black-box methods can explain models you only have as GGUF. */
export class GgufBackend implements LanguageModelBackend {
  readonly id: string;
  private queue: Promise<unknown> = Promise.resolve();
  private readonly counts: Usage = { requests: 0, cachedRequests: 0, promptTokens: 0, completionTokens: 0, retries: 0 };

  private constructor(
    readonly file: string,
    /** The file llama.cpp runs: `file`, or its steered copy. */
    readonly loadedFile: string,
    readonly controlVectors: ControlVectorSpec[],
    readonly model: LlamaModel,
    private readonly context: LlamaContext,
    private readonly seq: LlamaSequence,
  ) {
    this.id = `gguf:${file}${controlVectors.map((c) => ` +cvec ${path.resolve(c.path)}:${c.strength ?? 1}`).join('')}`;
    const tokens = (model.fileInfo.metadata as unknown as { tokenizer?: { ggml?: { tokens?: unknown[] } } }).tokenizer?.ggml?.tokens;
    this.vocabSize = Array.isArray(tokens) ? tokens.length : 0;
    if (!this.vocabSize) throw new LanternError(`${file} has no tokenizer.ggml.tokens: cannot tell its vocabulary`);
  }

  private readonly vocabSize: number;

  /** Checks the file's header in TypeScript, then loads it (first in a child process, unless `isolate: false`) so that a file llama.cpp would abort on is an error, not a crash. */
  static async open(file: string, o: GgufOptions = {}): Promise<GgufBackend> {
    const original = path.resolve(file);
    // llama.cpp aborts the process or allocates without bound on a bad header; refuse those here.
    const info = checkGgufFile(original);
    const controlVectors = o.controlVectors ?? [];
    let abs = original;
    if (controlVectors.length) {
      abs = steeredGgufCopy(original, info, controlVectors, o.steeredCacheDir);
      checkGgufFile(abs);
    }
    if (o.isolate !== false) await probeGguf(abs);
    let lib: NodeLlama;
    try {
      lib = await import('node-llama-cpp');
    } catch (e) {
      throw new LanternError(`cannot load node-llama-cpp (${(e as Error).message}); run npm ci`);
    }
    // build: 'never': never compile llama.cpp from source (that would need the network and cmake).
    const llama = await lib.getLlama({ gpu: false, build: 'never', logLevel: lib.LlamaLogLevel.error, progressLogs: false });
    // llama.cpp says why a load failed only in its log, and its log lines reach JavaScript
    // asynchronously, some after loadModel has rejected: they are collected while a load is open.
    const said: string[] = [];
    const previous = llama.logger;
    llama.logger = (level, message) => {
      if (level === lib.LlamaLogLevel.error || level === lib.LlamaLogLevel.fatal) said.push(message.trim());
      else previous(level, message);
    };
    let model: LlamaModel;
    try {
      model = await llama.loadModel({ modelPath: abs });
    } catch (e) {
      await new Promise((r) => setTimeout(r, 100));
      const why = [...new Set(said.filter((l) => !/failed to load model$/.test(l)).map((l) => l.replace(/^llama_model_load:\s*/, '')))].join('; ');
      throw new LanternError(`llama.cpp cannot load ${abs}: ${why || (e as Error).message}`);
    } finally {
      llama.logger = previous;
    }
    const contextSize = Math.min(o.contextSize ?? 2048, model.trainContextSize);
    const threads = o.threads ?? Math.max(1, Math.min(4, os.availableParallelism() - 1));
    if (!Number.isInteger(threads) || threads < 1) throw new LanternError(`threads must be a positive integer, got ${o.threads}`);
    const context = await model.createContext({ contextSize, sequences: 1, threads });
    return new GgufBackend(original, abs, controlVectors, model, context, context.getSequence());
  }

  /** Runs `f` after every earlier call on the one sequence has finished. */
  private exclusive<T>(f: () => Promise<T>): Promise<T> {
    const run = this.queue.then(f, f);
    this.queue = run.catch(() => undefined);
    return run;
  }

  /**
   * Text as token ids, with the BOS before a prompt where the file says to add one (as Lantern's
   * toTokens and Hugging Face's encode do); node-llama-cpp's tokenize never adds it.
   */
  private encode(text: string, bos: boolean): number[] {
    const ids = [...this.model.tokenize(text, true)].map(Number);
    const first = this.model.tokens.bos;
    return bos && first != null && this.model.tokens.shouldPrependBosToken ? [Number(first), ...ids] : ids;
  }

  private ids(p: Prompt | Continuation, what: string, bos = what === 'prompt'): number[] {
    const ids = typeof p === 'string' ? this.encode(p, bos) : [...p];
    if (ids.length === 0) throw new LanternError(`empty ${what}: give at least one token`);
    // llama.cpp does not check ids itself (an out-of-range id reads past the embedding table).
    const V = this.vocabSize;
    const bad = ids.find((t) => !Number.isInteger(t) || t < 0 || t >= V);
    if (bad !== undefined) throw new LanternError(`token id ${bad} is outside the vocabulary [0, ${V})`);
    return ids;
  }

  /** Log-probability of each continuation token given the prompt, evaluated by llama.cpp. */
  async scoreContinuation(prompt: Prompt, continuation: Continuation): Promise<ContinuationScore> {
    const p = this.ids(prompt, 'prompt');
    const c = this.ids(continuation, 'continuation');
    const input = [...p, ...c];
    if (typeof prompt === 'string' && typeof continuation === 'string') {
      checkNoMerge(this.id, input, this.ids(prompt + continuation, 'prompt'), (t) => this.model.detokenize([t as never]));
    }
    if (input.length > this.context.contextSize) throw new LanternError(`prompt + continuation is ${input.length} tokens, more than the context of ${this.context.contextSize}`);
    const out = await this.exclusive(async () => {
      await this.seq.clearHistory();
      type Item = Parameters<LlamaSequence['controlledEvaluate']>[0][number];
      const items: Item[] = input.map((tok, i) => {
        // Token ids are plain numbers; node-llama-cpp brands them (Token) for type safety only.
        if (i < p.length - 1 || i === input.length - 1) return tok as unknown as Item;
        const next = input[i + 1];
        return [tok, { generateNext: { logits: { filter: { tokens: [next], includeTop: 1 } }, totalLogitWeight: true } }] as unknown as Item;
      });
      return this.seq.controlledEvaluate(items);
    });
    const logprobs = c.map((tok, t) => {
      const o = out[p.length - 1 + t]?.next;
      const logit = o?.logits?.get(tok as never);
      const max = o?.logits ? Math.max(...o.logits.values()) : undefined;
      if (logit === undefined || max === undefined || !(o!.totalLogitWeight! > 0)) throw new LanternError(`llama.cpp returned no logits for continuation token ${t}`);
      return logit - max - Math.log(o!.totalLogitWeight!);
    });
    this.counts.requests++;
    this.counts.promptTokens += input.length;
    const tokens = c.map((t) => this.model.detokenize([t as never]));
    return { tokens, logprobs, total: logprobs.reduce((a, b) => a + b, 0), approximate: false };
  }

  /** llama.cpp's raw next-token logits after `prompt` (the whole vocabulary), for cross-checks. */
  async nextTokenLogits(prompt: Prompt): Promise<Float32Array> {
    const p = this.ids(prompt, 'prompt');
    const out = await this.exclusive(async () => {
      await this.seq.clearHistory();
      type Item = Parameters<LlamaSequence['controlledEvaluate']>[0][number];
      const items = p.map((tok, i) => (i < p.length - 1 ? tok : [tok, { generateNext: { logits: true } }]) as unknown as Item);
      return this.seq.controlledEvaluate(items);
    });
    const logits = out[p.length - 1]?.next.logits;
    if (!logits) throw new LanternError('llama.cpp returned no logits');
    const row = new Float32Array(this.vocabSize);
    for (const [tok, v] of logits) row[Number(tok)] = v;
    return row;
  }

  /** Samples a continuation of `prompt` with llama.cpp. */
  async generate(prompt: Prompt, opts: GenerateOptions): Promise<Generation> {
    const p = this.ids(prompt, 'prompt');
    const maxTokens = opts.maxTokens;
    if (!Number.isInteger(maxTokens) || maxTokens < 1) throw new LanternError(`maxTokens must be a positive integer, got ${maxTokens}`);
    const out = await this.exclusive(async () => {
      await this.seq.clearHistory();
      const toks: number[] = [];
      const eos = this.model.tokens.eos;
      const it = this.seq.evaluate(p as never[], { temperature: opts.temperature ?? 0, ...(opts.seed !== undefined ? { seed: opts.seed } : {}) });
      for await (const tok of it) {
        if (tok === eos) break;
        toks.push(Number(tok));
        if (toks.length >= maxTokens) break;
      }
      return toks;
    });
    let text = this.model.detokenize(out as never[]);
    let ids = out;
    for (const s of opts.stop ?? []) {
      const at = text.indexOf(s);
      if (at >= 0) {
        text = text.slice(0, at);
        ids = this.encode(text, false);
      }
    }
    this.counts.requests++;
    this.counts.promptTokens += p.length;
    this.counts.completionTokens += ids.length;
    return { text, tokens: ids.map((t) => this.model.detokenize([t as never])) };
  }

  async tokenize(text: string): Promise<number[]> {
    return this.encode(text, true);
  }

  /** Text of the given token ids, in this model's vocabulary. */
  async detokenize(ids: number[]): Promise<string> {
    return this.model.detokenize(ids as never[]);
  }

  async contextLength(): Promise<number> {
    return this.context.contextSize;
  }

  /** Requests and tokens evaluated so far. */
  usage(): Usage {
    return { ...this.counts };
  }

  /** Frees the llama.cpp model and context. */
  async close(): Promise<void> {
    await this.exclusive(async () => {
      await this.context.dispose();
      await this.model.dispose();
    });
  }
}
