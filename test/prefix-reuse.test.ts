// Prefix reuse: a run that is given the keys and values of a prompt's first positions (`past`)
// and computes only the tokens after them must give what a run of the whole sequence gives at
// those positions (causal attention), checked against whole runs here; and `evaluate`, which
// reuses the unperturbed prefix for perturbation methods, against full recomputation and against
// masked prompts run whole, on a random and on a planted model.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { Tensor } from '../src/engine/tensor.js';
import type { HookedTransformer } from '../src/models/hooked.js';
import { loadModel } from '../src/models/load.js';
import { TINY_GPT2 } from '../src/models/random.js';
import { makePlanted, ngramPrompts, NGRAM, SPACE } from '../src/models/planted/index.js';
import { attribute, resolveTarget } from '../src/methods/attribution/index.js';
import { evaluate, Example, tokenEmbeddings } from '../src/methods/attribution/common.js';
import { logSoftmaxAt, seededModel } from './helpers.js';

const cfg = { ...TINY_GPT2, nCtx: 64 };
let tiny: HookedTransformer;
let ngram: HookedTransformer;
let tmp: string;
const PROMPT = [17, 401, 9, 733, 250, 61, 5, 88, 940, 12];
const T = PROMPT.length;
/** Long enough that continuing the prompt's prefix saves more than the prompt's own run costs. */
const LONG = Array.from({ length: 40 }, (_, i) => (i * 131 + 17) % cfg.dVocab);

beforeAll(async () => {
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'lantern-prefix-'));
  tiny = await seededModel(cfg, 11);
  await makePlanted('ngram-neuron', path.join(tmp, 'ngram'), { measure: false });
  ngram = await loadModel(path.join(tmp, 'ngram'));
});
afterAll(async () => {
  for (const m of [tiny, ngram]) if (m) await m.executor.dropWeights(m.weights);
  fs.rmSync(tmp, { recursive: true, force: true });
});

/** max |a − b| / max |b| over two equally long arrays. */
function rel(a: ArrayLike<number>, b: ArrayLike<number>): number {
  expect(a.length).toBe(b.length);
  let num = 0;
  let den = 0;
  for (let i = 0; i < b.length; i++) {
    num = Math.max(num, Math.abs(a[i] - b[i]));
    den = Math.max(den, Math.abs(b[i]));
  }
  return num / den;
}

/** Rows [from, to) of prompt b of a [batch, seq, ...] tensor, flattened. */
function rowsOf(t: Tensor, b: number, from: number, to: number): Float32Array {
  const [, seq] = t.shape;
  const w = t.size / (t.shape[0] * seq);
  return t.f32.slice((b * seq + from) * w, (b * seq + to) * w);
}

describe('runs that continue past keys and values', () => {
  it('give the whole sequence\'s logits and activations at the continued positions, for every past length and several continuations', async () => {
    const hooks = ['blocks.0.hook_resid_post', 'blocks.1.attn.hook_k', 'ln_final.hook_normalized'];
    const { cache } = await tiny.runWithCache([PROMPT], tiny.pastHooks);
    for (const P of [1, 4, T - 2, T - 1]) {
      const past = tiny.pastKeyValues(cache, P);
      const tail = PROMPT.slice(P);
      const conts = [tail, tail.map((t, i) => (i === 0 ? 7 : t)), tail.map((t, i) => (i === tail.length - 1 ? 3 : t))];
      const part = await tiny.runWithHooks(conts, { past, cache: hooks });
      const whole = await tiny.runWithHooks(conts.map((c) => [...PROMPT.slice(0, P), ...c]), { cache: hooks });
      expect(part.logits.shape).toEqual([3, T - P, cfg.dVocab]);
      for (let b = 0; b < conts.length; b++) {
        expect(rel(rowsOf(part.logits, b, 0, T - P), rowsOf(whole.logits, b, P, T))).toBeLessThan(1e-5);
        for (const h of hooks) expect(rel(rowsOf(part.cache.get(h), b, 0, T - P), rowsOf(whole.cache.get(h), b, P, T))).toBeLessThan(1e-5);
      }
    }
  });

  it('attend over past and own keys: the pattern rows equal the whole run\'s', async () => {
    const P = 6;
    const hook = 'blocks.1.attn.hook_pattern';
    const { cache } = await tiny.runWithCache([PROMPT], tiny.pastHooks);
    const part = await tiny.runWithHooks([PROMPT.slice(P)], { past: tiny.pastKeyValues(cache, P), cache: [hook] });
    const whole = (await tiny.runWithCache([PROMPT], [hook])).cache.get(hook);
    const got = part.cache.get(hook);
    const H = cfg.nHeads;
    expect(got.shape).toEqual([1, H, T - P, T]);
    for (let h = 0; h < H; h++) {
      const want = whole.f32.slice((h * T + P) * T, (h + 1) * T * T);
      expect(rel(got.f32.slice(h * (T - P) * T, (h + 1) * (T - P) * T), want)).toBeLessThan(1e-5);
    }
  });

  it('count hook, intervention and logit positions from the first continued token', async () => {
    const P = 3;
    const { cache } = await tiny.runWithCache([PROMPT], tiny.pastHooks);
    const part = await tiny.runWithHooks([PROMPT.slice(P)], {
      past: tiny.pastKeyValues(cache, P),
      interventions: [{ hook: 'hook_embed', op: 'zero', positions: [1] }],
      logitPositions: [T - P - 1, 0],
    });
    const whole = await tiny.runWithHooks([PROMPT], { interventions: [{ hook: 'hook_embed', op: 'zero', positions: [P + 1] }] });
    const V = cfg.dVocab;
    expect(part.logits.shape).toEqual([1, 2, V]);
    expect(rel(part.logits.f32.slice(0, V), rowsOf(whole.logits, 0, T - 1, T))).toBeLessThan(1e-5);
    expect(rel(part.logits.f32.slice(V), rowsOf(whole.logits, 0, P, P + 1))).toBeLessThan(1e-5);
  });

  it('reject past keys and values that do not fit', async () => {
    const { cache } = await tiny.runWithCache([PROMPT], tiny.pastHooks);
    const past = tiny.pastKeyValues(cache, 5);
    expect(() => tiny.pastKeyValues(cache, T + 1)).toThrow(/past length 11 outside \[1, 10\]/);
    await expect(tiny.runWithHooks([Array(cfg.nCtx - 4).fill(1)], { past })).rejects.toThrow(/longer than the model's context of 64/);
    await expect(tiny.runWithHooks([[1, 2]], { past: { ...past, keys: past.keys.slice(1) } })).rejects.toThrow(/one tensor per layer/);
    await expect(tiny.runWithHooks([[1, 2]], { past: { ...past, length: 4 } })).rejects.toThrow(/past k of layer 0: expected float32 \[1,4,/);
    const pattern = Tensor.f32(new Float32Array(cfg.nHeads * 2 * 7), [1, cfg.nHeads, 2, 7]);
    await expect(tiny.runWithHooks([[1, 2]], { past, interventions: [{ hook: 'blocks.0.attn.hook_pattern', op: 'replace', value: pattern }] }))
      .rejects.toThrow(/takes no attention-pattern values/);
  });
});

describe('evaluate reusing the unperturbed prefix', () => {
  /** Runs `fn` and returns the past lengths of the runs it made that continued a prefix. */
  async function pastLengths(model: HookedTransformer, fn: () => Promise<unknown>): Promise<number[]> {
    const spy = vi.spyOn(model, 'runWithHooks');
    try {
      await fn();
      return spy.mock.calls.flatMap(([, o]) => (o.past ? [o.past.length] : []));
    } finally {
      spy.mockRestore();
    }
  }

  /** Leave-one-out examples (zero embedding at each position) plus the unperturbed input, for every row. */
  async function looExamples(model: HookedTransformer, input: number[], rows: number, n: number): Promise<Example[]> {
    const x = await tokenEmbeddings(model, input);
    const d = model.cfg.dModel;
    const out: Example[] = [];
    for (let row = 0; row < rows; row++) {
      out.push({ row, embed: x });
      for (let i = 0; i < n; i++) out.push({ row, embed: x.slice().fill(0, i * d, (i + 1) * d) });
    }
    return out;
  }

  it('gives exactly the values of full recomputation, and those of masked prompts run whole (next token and a continuation)', async () => {
    for (const req of [{ target: 5 }, { continuation: [40, 41, 42] }]) {
      const t = await resolveTarget(tiny, LONG, req);
      const examples = await looExamples(tiny, t.input, t.rows.length, t.promptLength);
      for (const batchSize of [1, 8, 32]) {
        let reused: { values: number[] } | undefined;
        const past = await pastLengths(tiny, async () => { reused = await evaluate(tiny, t.input, t.rows, examples, { grad: false, batchSize }); });
        // Runs that start later than 0, none later than seq − 2 (at least two positions each).
        expect(past.length).toBeGreaterThan(0);
        expect(Math.max(...past)).toBeLessThanOrEqual(t.input.length - 2);
        const full = await evaluate(tiny, t.input, t.rows, examples, { grad: false, batchSize, reusePrefix: false });
        expect(reused!.values).toEqual(full.values);
      }
      // Independently: each masked prompt run whole through a zero intervention, its rows read here.
      const { values } = await evaluate(tiny, t.input, t.rows, examples, { grad: false, batchSize: 8 });
      const per = t.promptLength + 1;
      for (let row = 0; row < t.rows.length; row++) {
        for (let i = -1; i < t.promptLength; i++) {
          const { logits } = await tiny.runWithHooks([t.input], i < 0 ? {} : { interventions: [{ hook: 'hook_embed', op: 'zero', positions: [i] }] });
          const V = cfg.dVocab;
          const want = t.rows[row].terms.reduce((s, term) => s + (term.coef ?? 1) * logSoftmaxAt(logits.f32.subarray(term.pos * V, (term.pos + 1) * V), term.token), 0);
          expect(Math.abs(values[row * per + i + 1] - want)).toBeLessThan(1e-5 * Math.max(1, Math.abs(want)));
        }
      }
    }
  });

  it('token substitution from several positions on at once: the run starts at the first substituted token', async () => {
    const t = await resolveTarget(tiny, LONG, { target: 5 });
    const n = LONG.length;
    const examples: Example[] = [[20, 27], [35], [38, 39], [30, 12], []].map((ps) => ({ row: 0, tokens: LONG.map((tok, i) => (ps.includes(i) ? 0 : tok)) }));
    let values: number[] = [];
    const past = await pastLengths(tiny, async () => ({ values } = await evaluate(tiny, t.input, t.rows, examples, { grad: false, batchSize: 1 })));
    expect(past).toEqual([12, 20, 35, n - 2, n - 2]);
    const want = await Promise.all(examples.map(async (x) => logSoftmaxAt((await tiny.run([x.tokens!])).f32.subarray((n - 1) * cfg.dVocab, n * cfg.dVocab), 5)));
    values.forEach((v, i) => expect(Math.abs(v - want[i])).toBeLessThan(1e-5 * Math.max(1, Math.abs(want[i]))));
    expect(values).toEqual((await evaluate(tiny, t.input, t.rows, examples, { grad: false, batchSize: 1, reusePrefix: false })).values);
  });

  it('on a planted model: occlusion scores equal those of full recomputation and of masked prompts run one at a time', async () => {
    const p = ngramPrompts(2, { seed: 4, length: 30, bigrams: 1 });
    for (const { tokens } of p) {
      for (const mask of ['zero', { token: SPACE }] as const) {
        let r: Awaited<ReturnType<typeof attribute>> | undefined;
        const past = await pastLengths(ngram, async () => { r = await attribute(ngram, { tokens, target: NGRAM.predicts, method: 'occlusion', settings: { mask, batchSize: 8 } }); });
        expect(past.length).toBeGreaterThan(0);
        const t = await resolveTarget(ngram, tokens, { target: NGRAM.predicts });
        const lp = async (input: number[], zeroAt?: number) => {
          const { logits } = await ngram.runWithHooks([input], zeroAt === undefined ? {} : { interventions: [{ hook: 'hook_embed', op: 'zero', positions: [zeroAt] }] });
          const V = ngram.cfg.dVocab;
          return logSoftmaxAt(logits.f32.subarray((input.length - 1) * V, input.length * V), NGRAM.predicts);
        };
        const fx = await lp(tokens);
        for (let i = 0; i < tokens.length; i++) {
          const masked = mask === 'zero' ? await lp(tokens, i) : await lp(tokens.map((tok, j) => (j === i ? SPACE : tok)));
          expect(Math.abs(r!.scores[0][i] - (fx - masked))).toBeLessThan(1e-5 * Math.max(1, Math.abs(fx)));
        }
        const x = mask === 'zero' ? await tokenEmbeddings(ngram, tokens) : undefined;
        const d = ngram.cfg.dModel;
        const examples: Example[] = Array.from({ length: tokens.length }, (_, i) => (x
          ? { row: 0, embed: x.slice().fill(0, i * d, (i + 1) * d) }
          : { row: 0, tokens: tokens.map((tok, j) => (j === i ? SPACE : tok)) }));
        const reused = await evaluate(ngram, t.input, t.rows, examples, { grad: false, batchSize: 8 });
        const full = await evaluate(ngram, t.input, t.rows, examples, { grad: false, batchSize: 8, reusePrefix: false });
        expect(reused.values).toEqual(full.values);
      }
    }
  });
});
