// Backends and representations whose behaviour is a known function of the prompt: the ground truth
// that black-box explanations are tested against. They are real implementations of the interfaces
// (any method must work with any backend), not stand-ins for the code under test.
import type { ContinuationScore, Generation, GenerateOptions, LanguageModelBackend, Prompt, Usage } from '../src/backends/types.js';
import type { TextEmbedder } from '../src/methods/blackbox/embed.js';
import { splitWords } from '../src/methods/blackbox/text.js';

export class RuleBackend implements LanguageModelBackend {
  generateCalls = 0;
  scoreCalls = 0;
  readonly prompts: string[] = [];

  constructor(
    readonly id: string,
    private readonly rule: (prompt: string, opts: GenerateOptions) => string,
    private readonly logprob: (prompt: string, continuation: string) => number = () => Math.log(0.5),
  ) {}

  async generate(prompt: Prompt, opts: GenerateOptions): Promise<Generation> {
    if (typeof prompt !== 'string') throw new Error('RuleBackend reads text prompts');
    this.generateCalls++;
    this.prompts.push(prompt);
    return { text: this.rule(prompt, opts) };
  }

  // `string | number[]`: also the continuation type once backends may score token ids.
  async scoreContinuation(prompt: Prompt, continuation: string | number[]): Promise<ContinuationScore> {
    if (typeof prompt !== 'string' || typeof continuation !== 'string') throw new Error('RuleBackend reads text');
    this.scoreCalls++;
    const lp = this.logprob(prompt, continuation);
    return { tokens: [continuation], logprobs: [lp], total: lp, approximate: false };
  }

  usage(): Usage {
    return { requests: this.generateCalls + this.scoreCalls, cachedRequests: 0, promptTokens: 0, completionTokens: 0, retries: 0 };
  }
}

/** One unit vector per distinct word: two words are 0 apart when equal and √2 apart otherwise. */
export function oneHotWords(dim = 512): TextEmbedder {
  const index = new Map<string, number>();
  return {
    id: 'one-hot-words',
    async embed(text: string) {
      return splitWords(text).map((w) => {
        if (!index.has(w)) index.set(w, index.size);
        const v = new Float64Array(dim);
        v[index.get(w)!] = 1;
        return v;
      });
    },
  };
}

/**
 * W1 between the uniform word distributions of two texts under the 0/√2 metric, computed as √2 ×
 * total variation distance (mass that must move, each unit moving √2). The empty text is the
 * origin, 1 away from every word.
 */
export function oneHotDistance(a: string, b: string): number {
  const wa = splitWords(a);
  const wb = splitWords(b);
  if (wa.length === 0 || wb.length === 0) return wa.length === wb.length ? 0 : 1;
  const p = new Map<string, number>();
  for (const w of wa) p.set(w, (p.get(w) ?? 0) + 1 / wa.length);
  for (const w of wb) p.set(w, (p.get(w) ?? 0) - 1 / wb.length);
  let tv = 0;
  for (const v of p.values()) tv += Math.abs(v);
  return (Math.SQRT2 * tv) / 2;
}
