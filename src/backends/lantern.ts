/**
 * Lantern's own engine behind the black-box backend interface: the same model a white-box method
 * opens, seen only through "score this continuation" and "generate".
 */
import { LanternError } from '../errors.js';
import { generate } from '../models/generate.js';
import type { HookedTransformer } from '../models/hooked.js';
import { checkNoMerge } from './types.js';
import type { Continuation, ContinuationScore, Generation, GenerateOptions, LanguageModelBackend, Prompt, PromptLogprobs, Usage } from './types.js';

/** A Lantern model behind the backend interface, so black-box methods can run on it and be compared number for number with white-box ones. */
export class LanternBackend implements LanguageModelBackend {
  readonly id: string;
  private readonly counts: Usage = { requests: 0, cachedRequests: 0, promptTokens: 0, completionTokens: 0, retries: 0 };

  constructor(readonly model: HookedTransformer) {
    this.id = `lantern:${model.source}`;
  }

  private promptTokens(prompt: Prompt): number[] {
    const ids = typeof prompt === 'string' ? this.model.toTokens(prompt) : [...prompt];
    if (ids.length === 0) throw new LanternError('empty prompt: give at least one token');
    return ids;
  }

  /** Log-probability of each continuation token given the prompt, computed inside the model's graph (the same numbers as white-box methods read). */
  async scoreContinuation(prompt: Prompt, continuation: Continuation): Promise<ContinuationScore> {
    const p = this.promptTokens(prompt);
    const c = typeof continuation === 'string' ? this.model.encode(continuation) : [...continuation];
    const V = this.model.cfg.dVocab;
    const bad = [...p, ...c].find((t) => !Number.isInteger(t) || t < 0 || t >= V);
    if (bad !== undefined) throw new LanternError(`token id ${bad} is outside the vocabulary [0, ${V})`);
    if (c.length === 0) throw new LanternError('empty continuation: nothing to score');
    const input = [...p, ...c];
    if (typeof prompt === 'string' && typeof continuation === 'string') {
      checkNoMerge(this.id, input, this.model.toTokens(prompt + continuation), (t) => this.model.tokenStrings([t])[0]);
    }
    if (input.length > this.model.cfg.nCtx) throw new LanternError(`prompt + continuation is ${input.length} tokens, longer than the model's context of ${this.model.cfg.nCtx}`);
    // Entry t - 1 scores input token t; the continuation starts at input position p.length.
    const logprobs = (await this.model.tokenLogprobs(input)).logprobs.slice(p.length - 1);
    this.counts.requests++;
    this.counts.promptTokens += input.length;
    return { tokens: this.model.tokenStrings(c), logprobs, total: logprobs.reduce((a, b) => a + b, 0), approximate: false };
  }

  /** The prompt's tokens with the `topK` most likely next tokens before each, from one forward (a BOS the tokenizer adds is left out). */
  async promptLogprobs(prompt: string, topK: number): Promise<PromptLogprobs> {
    const ids = this.promptTokens(prompt);
    if (ids.length > this.model.cfg.nCtx) throw new LanternError(`prompt is ${ids.length} tokens, longer than the model's context of ${this.model.cfg.nCtx}`);
    const scored = await this.model.tokenLogprobs(ids, Math.min(topK, this.model.cfg.dVocab));
    const skip = ids.length - this.model.encode(prompt).length;
    const strings = this.model.tokenStrings(ids);
    const top = [{}, ...scored.top.map((alts) => Object.fromEntries(alts.map((a) => [this.model.tokenStrings([a.id])[0], a.logprob])))];
    // Offsets in code points of the decoded text before each token.
    const offsets = ids.map((_, i) => (i < skip ? 0 : [...this.model.toString(ids.slice(skip, i))].length));
    this.counts.requests++;
    this.counts.promptTokens += ids.length;
    return { tokens: strings.slice(skip), offsets: offsets.slice(skip), top: top.slice(skip) };
  }

  /** Samples a continuation of `prompt` with Lantern's engine. */
  async generate(prompt: Prompt, opts: GenerateOptions): Promise<Generation> {
    const p = this.promptTokens(prompt);
    const out = await generate(this.model, p, { maxNewTokens: opts.maxTokens, temperature: opts.temperature ?? 0, seed: opts.seed ?? 0 });
    let text = out.text;
    let tokens = out.tokens;
    for (const s of opts.stop ?? []) {
      const at = text.indexOf(s);
      if (at >= 0) {
        text = text.slice(0, at);
        tokens = this.model.encode(text);
      }
    }
    this.counts.requests++;
    this.counts.promptTokens += p.length;
    this.counts.completionTokens += tokens.length;
    return { text, tokens: this.model.tokenStrings(tokens) };
  }

  async tokenize(text: string): Promise<number[]> {
    return this.model.toTokens(text);
  }

  /** Text of the given token ids. */
  async detokenize(ids: number[]): Promise<string> {
    return this.model.toString(ids);
  }

  async contextLength(): Promise<number> {
    return this.model.cfg.nCtx;
  }

  /** Tokens scored and generated so far. */
  usage(): Usage {
    return { ...this.counts };
  }
}
