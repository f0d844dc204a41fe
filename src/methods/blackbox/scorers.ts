/**
 * CELL's scoring functions s(x0, y0, x', y'): how much the response y' to an edited prompt x'
 * differs from the original response y0 to x0. CELL searches for |s| > ε (Luss et al. 2024).
 *
 *   bleu        0.8 · (1 − BLEU(y0 → y')) + 0.2 · BLEU(x0 → x')  (ICX360's BLEU scalarizer): mostly
 *               "the response changed", a little "the prompt stayed close".
 *   preference  An LLM judge's preference for the original response over the new one as answers
 *               to x0: P(A) − P(B), where the judge reads ICX360's SteamSHP prompt ("POST: x0,
 *               RESPONSE A: y0, RESPONSE B: y', Which response is better? RESPONSE") and P(A),
 *               P(B) are its probabilities of the continuations " A" and " B". The judge is any
 *               backend's scoreContinuation. ICX360 uses the raw probabilities; by default we
 *               renormalise them over {A, B}, so a general-purpose judge that spreads mass over
 *               other tokens still spans [−1, 1] and ε keeps its meaning (`normalize: false`
 *               gives ICX360's). 0 when y' = y0, as in ICX360; two judge calls otherwise, once per
 *               distinct response (the calls counted are the calls made).
 */
import type { LanguageModelBackend } from '../../backends/types.js';
import { bleu, type BleuOptions } from './bleu.js';

/** Scores how different a new (prompt, response) pair is from the original (CELL's objective). */
export interface ContrastScorer {
  /** Identifies the scorer in saved results. */
  readonly id: string;
  /** How far (x1, y1) is from (x0, y0); larger means the edit changed the response more. */
  score(x0: string, y0: string, x1: string, y1: string): Promise<number>;
  /** Calls this scorer made to a judge model so far. */
  calls(): number;
}

/** CELL's BLEU scorer: 0.8·(1 − BLEU of the responses) + 0.2·BLEU of the prompts. */
export function bleuScorer(opts: BleuOptions = {}): ContrastScorer {
  const o = { maxOrder: opts.maxOrder ?? 4, smooth: opts.smooth ?? true };
  return {
    id: `bleu(maxOrder=${o.maxOrder},smooth=${o.smooth})`,
    async score(x0, y0, x1, y1) {
      return 0.8 * (1 - bleu(y0, y1, o)) + 0.2 * bleu(x0, x1, o);
    },
    calls: () => 0,
  };
}

/** The prompt asking a judge model which of two responses fits the original prompt better. */
export function preferencePrompt(x0: string, a: string, b: string): string {
  return `POST: ${x0}\n\n RESPONSE A: ${a}. \n\n RESPONSE B: ${b}. \n\n Which response is better? RESPONSE`;
}

/** CELL's LLM-judge scorer: P(A) − P(B) for the original response over the new one, from the judge's scores. */
export function preferenceScorer(judge: LanguageModelBackend, opts: { normalize?: boolean } = {}): ContrastScorer {
  const normalize = opts.normalize ?? true;
  let calls = 0;
  // A search meets the same response again; asking the judge again would cost calls (on a backend
  // without a cache) or count calls that were never made (on one with a cache).
  const seen = new Map<string, Promise<number>>();
  const ask = async (prompt: string): Promise<number> => {
    const a = await judge.scoreContinuation(prompt, ' A');
    const b = await judge.scoreContinuation(prompt, ' B');
    calls += 2;
    if (!normalize) return Math.exp(a.total) - Math.exp(b.total);
    // p_A / (p_A + p_B) − p_B / (p_A + p_B) = tanh((log p_A − log p_B) / 2), stable for tiny probabilities.
    return Math.tanh((a.total - b.total) / 2);
  };
  return {
    id: `preference(judge=${judge.id},normalize=${normalize})`,
    async score(x0, y0, _x1, y1) {
      if (y0 === y1) return 0;
      const prompt = preferencePrompt(x0, y0, y1);
      let v = seen.get(prompt);
      if (!v) {
        v = ask(prompt);
        seen.set(prompt, v);
        v.catch(() => seen.delete(prompt));
      }
      return v;
    },
    calls: () => calls,
  };
}
