/**
 * What an attribution explains: a scalar function of the model's logits, one per *row* of the
 * result. Three kinds of target:
 *
 *   next-token    the logit, log-prob or probability of one next token after the prompt
 *                 (default: the model's top token); one row.
 *   contrastive   logit(target) − logit(foil) at the next position (Yin & Neubig 2022); one row.
 *                 (The log-prob difference is the same number: the log-normaliser cancels.)
 *                 With kind 'prob': p(target) − p(foil) (Inseq's contrast_prob_diff).
 *   continuation  a fixed multi-token continuation fed by teacher forcing after the prompt (as
 *                 Captum's LLMAttribution): row 0 is Σ_t log p(y_t | prompt, y_<t) (with 'prob',
 *                 the joint probability exp Σ), then one row per continuation token.
 *
 * Columns are always the prompt's tokens: the continuation is model input (teacher forcing) but
 * is not attributed to.
 */
import { LanternError } from '../../errors.js';
import type { Tensor } from '../../engine/tensor.js';
import type { ActivationCache } from '../../models/cache.js';
import type { HookedTransformer, ObjectiveTerm } from '../../models/hooked.js';
import { logSoftmaxAt } from '../../models/predictions.js';

/** How a token's score is read from the logits. Default 'logprob'. */
export type ScoreKind = 'logit' | 'logprob' | 'prob';
/** What a target scores: its logit, log-probability or probability. */
export const SCORE_KINDS: readonly ScoreKind[] = ['logit', 'logprob', 'prob'];

/** What to explain: the next token (default the top prediction), a contrast with a foil, or a teacher-forced continuation. */
export interface TargetRequest {
  /** The next token to explain (id, or text that is exactly one token). Default: the model's top prediction. */
  target?: number | string;
  /** Contrastive: explain logit(target) − logit(foil). Needs `target`. */
  foil?: number | string;
  /** Teacher-forced continuation (ids or text); excludes `target` and `foil`. */
  continuation?: number[] | string;
  kind?: ScoreKind;
}

/**
 * One scalar being explained: Σ coef·(logit|logprob) over `terms`, exponentiated when `exp`; or,
 * with `expEach`, Σ coef·exp(term) (a difference of probabilities).
 */
export interface TargetRow {
  label: string;
  /** Terms on batch 0; methods re-index the batch. */
  terms: ObjectiveTerm[];
  /** Value = exp(Σ terms) (probabilities); the gradient is then value · ∇Σ terms. */
  exp: boolean;
  /** Value = Σ coef·exp(term), each term a log-prob; the gradient Σ coef·exp(term)·∇term. */
  expEach?: boolean;
}

/** What was explained: the mode, the score kind, the position, and the target and foil tokens. */
export interface TargetInfo {
  mode: 'next-token' | 'contrastive' | 'continuation';
  /** 'logit-diff' or 'prob-diff' for contrastive targets. */
  kind: ScoreKind | 'logit-diff' | 'prob-diff';
  /** The position whose next-token distribution is explained (the last prompt token). */
  position: number;
  token?: number;
  tokenString?: string;
  foil?: number;
  foilString?: string;
  continuation?: number[];
  continuationStrings?: string[];
  /** True when the target was the model's own top token (no target given). */
  predicted?: boolean;
  /** One label per row of scores. */
  rows: string[];
  /** Each row's value on the unperturbed input. */
  values: number[];
}

/** A resolved target: what to feed (prompt + teacher-forced continuation) and the rows' objectives. */
export interface ResolvedTarget {
  info: TargetInfo;
  rows: TargetRow[];
  /** Tokens fed to the model: the prompt, then the continuation without its last token. */
  input: number[];
  promptLength: number;
  /**
   * Prompt positions that are context, not features (special tokens of a chat template, unless
   * asked for): IG keeps their real embedding in its baseline, so they get no share of f(x) − f(x').
   */
  fixed?: number[];
  /**
   * Every layer's keys and values (`model.pastHooks`) on `input`, kept from the run that resolved
   * the target, so that perturbation methods continue the unperturbed prefix without running the
   * prompt again.
   */
  promptCache?: ActivationCache;
}

function tokenString(model: HookedTransformer, id: number): string {
  return model.tokenizer ? model.tokenStrings([id])[0] : `#${id}`;
}

function oneToken(model: HookedTransformer, t: number | string, what: string): number {
  if (typeof t === 'number') {
    if (!Number.isInteger(t) || t < 0 || t >= model.cfg.dVocab) throw new LanternError(`${what} token id ${t} is outside the vocabulary [0, ${model.cfg.dVocab})`);
    return t;
  }
  const ids = model.encode(t);
  if (ids.length !== 1) {
    throw new LanternError(`${what} ${JSON.stringify(t)} is ${ids.length} tokens (${JSON.stringify(model.tokenStrings(ids))}); it must be exactly one token${what === 'target' ? ' (use a continuation for several)' : ''}`);
  }
  return ids[0];
}


/**
 * Each row's value for prompt `b` of a batched run's logits ([batch, seq, vocab]). When the run
 * computed logits only at some positions (`logitPositions`), `at` maps a position to its index there.
 */
export function rowValues(logits: Tensor, b: number, rows: TargetRow[], at?: Map<number, number>): number[] {
  const [, T, V] = logits.shape;
  const data = logits.f32;
  return rows.map((r) => {
    let s = 0;
    for (const t of r.terms) {
      const p = at ? at.get(t.pos)! : t.pos;
      const row = data.subarray((b * T + p) * V, (b * T + p + 1) * V);
      const v = t.kind === 'logit' ? row[t.token] : logSoftmaxAt(row, t.token);
      s += (t.coef ?? 1) * (r.expEach ? Math.exp(v) : v);
    }
    return r.exp ? Math.exp(s) : s;
  });
}

/** The unperturbed run: logits at `positions` only (and `at`, their indices), and the keys and values for `promptCache`. */
async function targetRun(model: HookedTransformer, input: number[], positions: number[]): Promise<{ logits: Tensor; at: Map<number, number>; promptCache: ActivationCache }> {
  const { logits, cache } = await model.runWithHooks([input], { cache: model.pastHooks, logitPositions: positions });
  return { logits, at: new Map(positions.map((p, k) => [p, k])), promptCache: cache };
}

/** Checks a request and turns it into rows of objectives (runs the model once, for the values and the default target). */
export async function resolveTarget(model: HookedTransformer, prompt: number[], req: TargetRequest): Promise<ResolvedTarget> {
  const kind = req.kind ?? 'logprob';
  if (!SCORE_KINDS.includes(kind)) throw new LanternError(`unknown target kind '${kind}'; use one of ${SCORE_KINDS.join(', ')}`);
  if (prompt.length === 0) throw new LanternError('the prompt is empty (no tokens)');
  if (req.foil !== undefined && req.target === undefined) throw new LanternError('a foil needs a target: give the token to contrast it with');
  if (req.continuation !== undefined && (req.target !== undefined || req.foil !== undefined)) {
    throw new LanternError('give either a continuation or a target (and foil), not both');
  }
  const position = prompt.length - 1;
  const termKind = kind === 'logit' ? 'logit' : 'logprob';
  const exp = kind === 'prob';
  const label = (id: number) => `${kind}(${JSON.stringify(tokenString(model, id))})`;

  if (req.continuation !== undefined) {
    const cont = typeof req.continuation === 'string' ? model.encode(req.continuation) : req.continuation;
    if (cont.length === 0) throw new LanternError('the continuation is empty (no tokens)');
    cont.forEach((t) => oneToken(model, t, 'continuation'));
    const input = [...prompt, ...cont.slice(0, -1)];
    if (input.length > model.cfg.nCtx) throw new LanternError(`prompt + continuation is ${input.length} tokens, longer than the model's context of ${model.cfg.nCtx}`);
    const terms: ObjectiveTerm[] = cont.map((token, i) => ({ pos: position + i, token, kind: termKind }));
    const rows: TargetRow[] = [
      { label: kind === 'prob' ? 'joint prob(continuation)' : `sum ${kind}(continuation)`, terms, exp },
      ...terms.map((t) => ({ label: label(t.token), terms: [t], exp })),
    ];
    const { logits, at, promptCache } = await targetRun(model, input, terms.map((t) => t.pos));
    return {
      input, promptLength: prompt.length, rows, promptCache,
      info: {
        mode: 'continuation', kind, position, continuation: cont, continuationStrings: cont.map((t) => tokenString(model, t)),
        rows: rows.map((r) => r.label), values: rowValues(logits, 0, rows, at),
      },
    };
  }

  const { logits, at, promptCache } = await targetRun(model, prompt, [position]);
  if (req.foil !== undefined) {
    const token = oneToken(model, req.target!, 'target');
    const foil = oneToken(model, req.foil, 'foil');
    if (foil === token) throw new LanternError('the foil is the same token as the target');
    const prob = kind === 'prob';
    const fn = prob ? 'prob' : 'logit';
    const rows: TargetRow[] = [{
      label: `${fn}(${JSON.stringify(tokenString(model, token))}) − ${fn}(${JSON.stringify(tokenString(model, foil))})`,
      terms: [{ pos: position, token, kind: prob ? 'logprob' : 'logit', coef: 1 }, { pos: position, token: foil, kind: prob ? 'logprob' : 'logit', coef: -1 }],
      exp: false,
      expEach: prob,
    }];
    return {
      input: prompt, promptLength: prompt.length, rows, promptCache,
      info: {
        mode: 'contrastive', kind: prob ? 'prob-diff' : 'logit-diff', position, token, tokenString: tokenString(model, token), foil, foilString: tokenString(model, foil),
        rows: rows.map((r) => r.label), values: rowValues(logits, 0, rows, at),
      },
    };
  }

  let token: number;
  const predicted = req.target === undefined;
  if (req.target === undefined) {
    const V = logits.shape[2];
    const row = logits.f32.subarray(0, V); // the one position computed
    token = 0;
    for (let i = 1; i < V; i++) if (row[i] > row[token]) token = i;
  } else {
    token = oneToken(model, req.target, 'target');
  }
  const rows: TargetRow[] = [{ label: label(token), terms: [{ pos: position, token, kind: termKind }], exp }];
  return {
    input: prompt, promptLength: prompt.length, rows, promptCache,
    info: {
      mode: 'next-token', kind, position, token, tokenString: tokenString(model, token), predicted,
      rows: rows.map((r) => r.label), values: rowValues(logits, 0, rows, at),
    },
  };
}
