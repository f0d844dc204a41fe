/**
 * Text generation with a key/value cache, for every family, through the one forward
 * (HookedTransformer runs): the prompt runs once and leaves its keys and values; each step then
 * runs only the new token against them (`past`), so a step reads every weight once instead of
 * recomputing the whole sequence.
 *
 * A batch of prompts of different lengths shares one run per step. The keys and values stay in
 * the compute thread (a `KvCache`): a step sends only its new token ids and gets back only the
 * last position's logits. The prompts run right-padded and every step appends at the same slot
 * in every row, so a shorter prompt's row keeps a gap of padding slots that its mask hides; each
 * key keeps its true position. The cache's length and the batch size are symbolic in the graph,
 * so every step of every generation reuses one compiled session. Rows that finish leave the
 * batch (and the cache).
 *
 * Interventions and hook callbacks apply at every step (and to the prompt): an `add` of a vector
 * at a residual hook steers every generated position. Sampling follows Hugging Face's order:
 * repetition penalty, then temperature, top-k, top-p and min-p.
 */
import { LanternError } from '../errors.js';
import type { HookedTransformer, HookCallback, Intervention } from './hooked.js';
import { Rng } from '../rng.js';

/** How the next token is drawn from the logits: temperature, top-k, top-p, min-p and repetition penalty. */
export interface SamplingOptions {
  /** 0 = greedy (the most likely token). Default 0.8. */
  temperature?: number;
  /** Sample only among the k most likely tokens (0 = all). Default 40. */
  topK?: number;
  /** Sample only among the most likely tokens whose probabilities sum to at least topP (1 = all). */
  topP?: number;
  /** Drop tokens less likely than minP times the most likely one's probability (0 = none). */
  minP?: number;
  /** > 1 discourages tokens already in the prompt or the output (Hugging Face's: positive logits divided, negative multiplied). */
  repetitionPenalty?: number;
}

/** Options for {@link generate}, {@link generateBatch} and {@link generateStream}: sampling, length, stopping, interventions. */
export interface GenerateOptions extends SamplingOptions {
  /** Tokens to generate at most (default 40). */
  maxNewTokens?: number;
  /** Prompt b samples with seed + b, so a row of a batch generates what it would alone with that seed. */
  seed?: number;
  /** Stop once the output contains any of these strings; the text ends before it. Needs a tokenizer. */
  stop?: string[];
  /** Stop at any of these tokens (not part of the output). Default: the tokenizer's end-of-text tokens. */
  stopTokens?: number[];
  /** Applied at every step, to every position (declarative: `positions` are refused, a step's positions are not the prompt's). */
  interventions?: Intervention[];
  /**
   * Applied to the prompt's own positions only (`positions` index the prompt; ActAdd steers this
   * way): generated tokens see them through the keys and values. Without the cache they apply to
   * those positions at every step, which gives the same tokens.
   */
  promptInterventions?: Intervention[];
  /** Called at every step with that step's activation ([batch, 1, …] after the prompt). */
  callbacks?: Record<string, HookCallback>;
  /** Reuse keys and values between steps (default true); false recomputes the whole sequence at every step. */
  useCache?: boolean;
  /** Keep each step's next-token logits (before any penalty) in the result. */
  returnLogits?: boolean;
  /** Stops between steps once aborted (throwing its reason). */
  signal?: AbortSignal;
}

/** Why a row stopped: 'stop' at a stop token or stop string; 'length' at maxNewTokens or the end of the model's context. */
export type FinishReason = 'stop' | 'length';

/** One prompt's continuation, as {@link generate} and {@link generateBatch} return it. */
export interface Generation {
  /** Generated token ids (a stop token excluded; the tokens that completed a stop string included). */
  tokens: number[];
  /** Their text, ending before any stop string ('' without a tokenizer). */
  text: string;
  /** Why generation stopped. */
  finishReason: FinishReason;
  /** Per step, the next-token logits [vocab] (with `returnLogits`). */
  logits?: Float32Array[];
}

/** One streamed event: a row's new token, and the text it adds (held back while it may begin a stop string or a character). */
export interface GenerationChunk {
  row: number;
  /** The token drawn (a stop token too, though it does not join the output). */
  token: number;
  text: string;
  /** Set on a row's last chunk. */
  finishReason?: FinishReason;
  /** On a row's last chunk: its whole result, as `generateBatch` returns it. */
  result?: Generation;
}

type Prompt = string | number[];

/** Continues one prompt. */
export async function generate(model: HookedTransformer, prompt: Prompt, opts: GenerateOptions = {}): Promise<Generation> {
  return (await generateBatch(model, [prompt], opts))[0];
}

/** Continues a batch of prompts (any lengths) together; row b equals `generate` of prompt b with seed + b. */
export async function generateBatch(model: HookedTransformer, prompts: Prompt[], opts: GenerateOptions = {}): Promise<Generation[]> {
  const run = new GenerationRun(model, prompts, opts);
  for await (const _ of run.chunks()) { /* the rows collect their own results */ }
  return run.results();
}

/** The same generation as `generateBatch`, as an async iterator of chunks, in step order. */
export function generateStream(model: HookedTransformer, prompts: Prompt | Prompt[], opts: GenerateOptions = {}): AsyncGenerator<GenerationChunk> {
  const batch = typeof prompts === 'string' || (prompts.length > 0 && typeof prompts[0] === 'number') ? [prompts as Prompt] : (prompts as Prompt[]);
  return new GenerationRun(model, batch, opts).chunks();
}

// -------------------------------------------------------------------------------------------------
// Sampling

/** Index of the largest value (the first of ties). */
export function argmax(row: ArrayLike<number>): number {
  let best = 0;
  for (let i = 1; i < row.length; i++) if (row[i] > row[best]) best = i;
  return best;
}

/** Hugging Face's repetition penalty, in place: each seen token's logit divided by `penalty` when positive, multiplied when negative. */
export function applyRepetitionPenalty(row: Float32Array, seen: Iterable<number>, penalty: number): void {
  if (penalty === 1) return;
  for (const t of new Set(seen)) row[t] = row[t] > 0 ? row[t] / penalty : row[t] * penalty;
}

/**
 * The distribution a token is sampled from: softmax(logits / temperature) restricted by top-k
 * (ties with the k-th kept), top-p (the most likely tokens until their mass reaches topP: Hugging
 * Face's rule, a token goes when the mass of the tokens more likely than it is at least topP) and
 * min-p (probability at least minP × the largest), each on what the one before left, and
 * renormalised. The most likely token always stays. Ids come in no particular order, probs with them.
 */
export function samplingDistribution(row: ArrayLike<number>, opts: SamplingOptions): { ids: number[]; probs: number[] } {
  const { temperature = 0.8, topK = 40, topP = 1, minP = 0 } = opts;
  if (!(temperature > 0)) throw new LanternError('samplingDistribution needs a positive temperature (0 is greedy)');
  const V = row.length;
  // Typed arrays and plain loops: this runs once per row per step over the whole vocabulary.
  let kth = -Infinity;
  // The k-th largest logit from a native sort of a copy (a comparator sort of ids is ~20x slower).
  if (topK > 0 && topK < V) kth = Float32Array.from(row).sort()[V - topK];
  let max = -Infinity;
  for (let i = 0; i < V; i++) if (row[i] > max) max = row[i];
  let ids = new Int32Array(V);
  let w = new Float64Array(V);
  let n = 0;
  let sum = 0;
  for (let i = 0; i < V; i++) {
    if (row[i] < kth) continue;
    ids[n] = i;
    sum += w[n] = Math.exp((row[i] - max) / temperature);
    n++;
  }
  if (topP < 1) {
    // A token below (1 - topP) / V of the mass comes after tokens holding at least topP of it, so it goes: only the rest need sorting.
    const floor = ((1 - topP) / V) * sum;
    const order: number[] = [];
    for (let j = 0; j < n; j++) if (w[j] >= floor) order.push(j);
    order.sort((x, y) => w[y] - w[x] || ids[x] - ids[y]);
    const keptIds = new Int32Array(order.length);
    const keptW = new Float64Array(order.length);
    let before = 0;
    let m = 0;
    for (const j of order) {
      if (m > 0 && before >= topP * sum) break;
      keptIds[m] = ids[j];
      before += keptW[m] = w[j];
      m++;
    }
    [ids, w, n, sum] = [keptIds, keptW, m, before];
  }
  if (minP > 0) {
    let top = 0;
    for (let j = 0; j < n; j++) top = Math.max(top, w[j]);
    let m = 0;
    sum = 0;
    for (let j = 0; j < n; j++) {
      if (w[j] < minP * top) continue;
      ids[m] = ids[j];
      sum += w[m] = w[j];
      m++;
    }
    n = m;
  }
  const probs = new Array<number>(n);
  for (let j = 0; j < n; j++) probs[j] = w[j] / sum;
  return { ids: Array.from(ids.subarray(0, n)), probs };
}

function draw(dist: { ids: number[]; probs: number[] }, rng: Rng): number {
  let r = rng.next();
  for (let j = 0; j < dist.ids.length; j++) {
    r -= dist.probs[j];
    if (r < 0) return dist.ids[j];
  }
  return dist.ids[dist.ids.length - 1];
}

/** The tokenizer's end-of-text tokens (GPT-2's, Llama 3's, Qwen's, Gemma's, Mistral's), where it has them. */
function defaultStopTokens(model: HookedTransformer): number[] {
  if (!model.tokenizer) return [];
  const names = ['<|endoftext|>', '<|end_of_text|>', '<|eot_id|>', '<|im_end|>', '<eos>', '<end_of_turn>', '</s>'];
  return names.map((n) => model.tokenizer!.tokenToId(n)).filter((id): id is number => id !== undefined && id < model.cfg.dVocab);
}

// -------------------------------------------------------------------------------------------------
// The generation loop

interface Row {
  prompt: number[];
  out: number[];
  rng: Rng;
  text: string;
  /** Characters of `text` already streamed. */
  sent: number;
  /** `text` up to `out[stable]` is final: it ends on a whole character. */
  stable: number;
  stableText: string;
  finish?: FinishReason;
  logits: Float32Array[];
}

class GenerationRun {
  private readonly rows: Row[];
  private readonly o: Required<Omit<GenerateOptions, 'signal' | 'interventions' | 'promptInterventions' | 'callbacks'>> & Pick<GenerateOptions, 'signal' | 'interventions' | 'promptInterventions' | 'callbacks'>;
  private readonly stopTokens: Set<number>;

  constructor(private readonly model: HookedTransformer, prompts: Prompt[], opts: GenerateOptions) {
    const { maxNewTokens = 40, temperature = 0.8, topK = 40, topP = 1, minP = 0, repetitionPenalty = 1, seed = 0 } = opts;
    const int = (v: number, name: string, min: number) => {
      if (!Number.isInteger(v) || v < min) throw new LanternError(`generate: ${name} must be an integer >= ${min}, got ${v}`);
    };
    int(maxNewTokens, 'maxNewTokens', 0);
    int(topK, 'topK', 0);
    int(seed, 'seed', 0);
    if (!(temperature >= 0) || !Number.isFinite(temperature)) throw new LanternError(`generate: temperature must be a finite number >= 0, got ${temperature}`);
    if (!(topP > 0 && topP <= 1)) throw new LanternError(`generate: topP must be in (0, 1], got ${topP}`);
    if (!(minP >= 0 && minP <= 1)) throw new LanternError(`generate: minP must be in [0, 1], got ${minP}`);
    if (!(repetitionPenalty > 0) || !Number.isFinite(repetitionPenalty)) throw new LanternError(`generate: repetitionPenalty must be a positive number, got ${repetitionPenalty}`);
    const stop = opts.stop ?? [];
    if (!Array.isArray(stop) || !stop.every((s) => typeof s === 'string' && s.length > 0)) throw new LanternError('generate: stop must be an array of non-empty strings');
    if (stop.length && !model.tokenizer) throw new LanternError(`generate: stop strings need a tokenizer, and model ${model.source} has none; give stopTokens instead`);
    const stopTokens = opts.stopTokens ?? defaultStopTokens(model);
    for (const t of stopTokens) if (!Number.isInteger(t) || t < 0 || t >= model.cfg.dVocab) throw new LanternError(`generate: stop token ${t} is outside the vocabulary [0, ${model.cfg.dVocab})`);
    opts.interventions?.forEach((iv, k) => {
      if (iv.positions) throw new LanternError(`generate: intervention ${k} (${iv.op} at ${iv.hook}) gives positions; interventions in generation apply at every position`);
    });
    if (!Array.isArray(prompts) || prompts.length === 0) throw new LanternError('generate: give at least one prompt');
    const ids = prompts.map((p) => (typeof p === 'string' ? model.toTokens(p) : [...p]));
    model.toBatch(ids); // checks every prompt: non-empty, ids in the vocabulary, within the context
    this.rows = ids.map((prompt, b) => ({ prompt, out: [], rng: new Rng(seed + b), text: '', sent: 0, stable: 0, stableText: '', logits: [] }));
    this.stopTokens = new Set(stopTokens);
    this.o = { maxNewTokens, temperature, topK, topP, minP, repetitionPenalty, seed, stop, stopTokens, useCache: opts.useCache ?? true, returnLogits: opts.returnLogits ?? false, signal: opts.signal, interventions: opts.interventions, promptInterventions: opts.promptInterventions, callbacks: opts.callbacks };
  }

  results(): Generation[] {
    return this.rows.map((r) => this.result(r));
  }

  private result(r: Row): Generation {
    return { tokens: r.out, text: r.text, finishReason: r.finish ?? 'length', ...(this.o.returnLogits ? { logits: r.logits } : {}) };
  }

  async *chunks(): AsyncGenerator<GenerationChunk> {
    const { model, o } = this;
    const V = model.cfg.dVocab;
    let active = this.rows.map((_, b) => b).filter((b) => {
      if (o.maxNewTokens === 0 || this.rows[b].prompt.length >= model.cfg.nCtx) this.rows[b].finish = 'length';
      return !this.rows[b].finish;
    });
    if (active.length === 0) return;
    const runOpts = { interventions: o.interventions, callbacks: o.callbacks };
    const promptOpts = { interventions: [...(o.interventions ?? []), ...(o.promptInterventions ?? [])], callbacks: o.callbacks };
    const lastPositions = (seqs: number[][]) => seqs.map((s) => [s.length - 1]);
    // The first step runs the prompts and leaves their keys and values in the cache.
    const prompts = active.map((b) => this.rows[b].prompt);
    this.checkAborted();
    const kvCache = o.useCache ? await model.createKvCache() : undefined;
    try {
      let res = await model.runWithHooks(prompts, { ...promptOpts, logitPositions: lastPositions(prompts), kvCache });
      for (;;) {
        const next: number[] = [];
        const still: number[] = [];
        for (let j = 0; j < active.length; j++) {
          const b = active[j];
          const row = this.rows[b];
          const logits = res.logits.f32.subarray(j * V, (j + 1) * V);
          if (o.returnLogits) row.logits.push(logits.slice());
          const token = this.choose(row, logits);
          const text = this.accept(row, token);
          if (row.finish) yield { row: b, token, text, finishReason: row.finish, result: this.result(row) };
          else {
            yield { row: b, token, text };
            next.push(token);
            still.push(j);
          }
        }
        if (still.length === 0) return;
        await kvCache?.keepRows(still);
        active = still.map((j) => active[j]);
        this.checkAborted();
        if (kvCache) {
          res = await model.runWithHooks(next.map((t) => [t]), { ...runOpts, kvCache });
        } else {
          const seqs = active.map((b) => [...this.rows[b].prompt, ...this.rows[b].out]);
          res = await model.runWithHooks(seqs, { ...promptOpts, logitPositions: lastPositions(seqs) });
        }
      }
    } finally {
      await kvCache?.release();
    }
  }

  private checkAborted(): void {
    if (this.o.signal?.aborted) throw this.o.signal.reason;
  }

  private choose(row: Row, logits: Float32Array): number {
    const o = this.o;
    let scores = logits;
    if (o.repetitionPenalty !== 1) {
      scores = logits.slice();
      applyRepetitionPenalty(scores, [...row.prompt, ...row.out], o.repetitionPenalty);
    }
    if (o.temperature === 0) return argmax(scores);
    return draw(samplingDistribution(scores, o), row.rng);
  }

  /** Adds `token` to the row, finishes it where it stops, and returns the text it releases for streaming. */
  private accept(row: Row, token: number): string {
    const { model, o } = this;
    if (this.stopTokens.has(token)) {
      row.finish = 'stop';
      return this.release(row, row.text.length);
    }
    row.out.push(token);
    if (model.tokenizer) row.text = this.decode(row);
    let cut = -1;
    for (const s of o.stop) {
      const at = row.text.indexOf(s);
      if (at >= 0 && (cut < 0 || at < cut)) cut = at;
    }
    if (cut >= 0) {
      row.text = row.text.slice(0, cut);
      row.finish = 'stop';
    } else if (row.out.length >= o.maxNewTokens || row.prompt.length + row.out.length >= model.cfg.nCtx) {
      row.finish = 'length';
    }
    if (row.finish) return this.release(row, row.text.length);
    // Hold back a trailing partial character (decoded as U+FFFD) and any tail that may begin a stop string.
    let safe = row.text.length;
    while (safe > row.sent && row.text[safe - 1] === '\uFFFD') safe--;
    for (const s of o.stop) {
      for (let n = Math.min(s.length - 1, safe - row.sent); n > 0; n--) {
        if (row.text.slice(safe - n, safe) === s.slice(0, n)) {
          safe -= n;
          break;
        }
      }
    }
    return this.release(row, safe);
  }

  /**
   * The row's whole text, decoding only the tokens after the last whole character (decoding the
   * whole output at every step cost as much as the bundled model's step). The piece is decoded
   * with the token before it and that token's own text removed, so tokenizers that drop a
   * leading space at the start of a text (SentencePiece's) still give it; where the pieces do
   * not line up, the whole output is decoded.
   */
  private decode(row: Row): string {
    const { model } = this;
    const from = Math.max(0, row.stable - 1);
    const lead = from < row.stable ? model.toString(row.out.slice(from, row.stable)) : '';
    const both = model.toString(row.out.slice(from));
    const text = both.startsWith(lead) ? row.stableText + both.slice(lead.length) : model.toString(row.out);
    if (!text.endsWith('\uFFFD')) {
      row.stable = row.out.length;
      row.stableText = text;
    }
    return text;
  }

  private release(row: Row, upTo: number): string {
    if (upTo <= row.sent) return '';
    const text = row.text.slice(row.sent, upTo);
    row.sent = upTo;
    return text;
  }
}
