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

describe('packed rows (segments continuing the past)', () => {
  it('give each segment the logits and activations of its own run continuing the past, whatever shares its row', async () => {
    const { cache } = await tiny.runWithCache([PROMPT], tiny.pastHooks);
    const past = tiny.pastKeyValues(cache, T);
    // Row 0: the prompt from 3 with token 5 changed, then the prompt from 8; row 1: from 0 (no
    // past at all), then 4 positions left over; row 2: from 9 alone, then a segment from 6.
    const seg = (start: number, tokens: number[]) => ({ start, tokens });
    const rows = [
      [seg(3, [733, 250, 99, 5, 88, 940, 12]), seg(8, [940, 12])],
      [seg(0, [17, 401, 9, 733, 250])],
      [seg(9, [12]), seg(6, [5, 88, 3, 12])],
    ];
    const W = 9;
    const input = rows.map((r) => { const ids = r.flatMap((x) => x.tokens); return [...ids, ...new Array(W - ids.length).fill(7)]; });
    const segments = rows.map((r) => r.map((x) => ({ start: x.start, length: x.tokens.length })));
    const hook = 'blocks.1.hook_resid_post';
    const packed = await tiny.runWithHooks(input, { past, segments, cache: [hook] });
    const V = cfg.dVocab;
    for (let b = 0; b < rows.length; b++) {
      let offset = 0;
      for (const x of rows[b]) {
        // Independently: the whole sequence (prompt prefix, then the segment) run on its own.
        const whole = await tiny.runWithHooks([[...PROMPT.slice(0, x.start), ...x.tokens]], { cache: [hook] });
        const n = x.tokens.length;
        expect(rel(rowsOf(packed.logits, b, offset, offset + n), rowsOf(whole.logits, 0, x.start, x.start + n))).toBeLessThan(1e-5);
        expect(rel(rowsOf(packed.cache.get(hook), b, offset, offset + n), rowsOf(whole.cache.get(hook), 0, x.start, x.start + n))).toBeLessThan(1e-5);
        offset += n;
      }
    }
    // Left-over positions attend to themselves only: finite, and harmless to the rest.
    expect(packed.logits.f32.every(Number.isFinite)).toBe(true);
    // Per-row logit positions read the same numbers.
    const some = await tiny.runWithHooks(input, { past, segments, logitPositions: [[6, 0], [4, 4], [0, 1]] });
    expect(some.logits.shape).toEqual([3, 2, V]);
    const pick = (b: number, p: number) => rowsOf(packed.logits, b, p, p + 1);
    [[6, 0], [4, 4], [0, 1]].forEach((ps, b) => ps.forEach((p, k) => expect(rel(some.logits.f32.slice((b * 2 + k) * V, (b * 2 + k + 1) * V), pick(b, p))).toBeLessThan(1e-6)));
  });

  it('reject segments that do not fit, and per-row logit positions that do not match the batch', async () => {
    const { cache } = await tiny.runWithCache([PROMPT], tiny.pastHooks);
    const past = tiny.pastKeyValues(cache, 5);
    const input = [[1, 2, 3], [4, 5, 6]];
    const ok = [[{ start: 5, length: 3 }], [{ start: 1, length: 1 }, { start: 0, length: 2 }]];
    await expect(tiny.runWithHooks(input, { segments: ok })).rejects.toThrow(/give its keys and values as past/);
    await expect(tiny.runWithHooks(input, { past, segments: ok.slice(1) })).rejects.toThrow(/segments must list each of the batch's 2 rows/);
    await expect(tiny.runWithHooks(input, { past, segments: [[{ start: 6, length: 1 }], ok[1]] })).rejects.toThrow(/row 0: segment start 6 outside \[0, 5\]/);
    await expect(tiny.runWithHooks(input, { past, segments: [[{ start: 0, length: 0 }], ok[1]] })).rejects.toThrow(/row 0: segment length 0/);
    await expect(tiny.runWithHooks(input, { past, segments: [ok[0], [{ start: 0, length: 2 }, { start: 0, length: 2 }]] })).rejects.toThrow(/row 1: segments of 4 tokens in a row of 3/);
    await expect(tiny.runWithHooks(input, { past, segments: [[{ start: 5, length: 3 }], [{ start: 2, length: cfg.nCtx - 1 }]] })).rejects.toThrow(/row 1: .* longer than the model's context of 64/);
    await expect(tiny.runWithHooks(input, { past, segments: ok, logitPositions: [[0]] })).rejects.toThrow(/per-row logitPositions give 1 rows for a batch of 2/);
    await expect(tiny.runWithHooks(input, { past, segments: ok, logitPositions: [[0], [1, 2]] })).rejects.toThrow(/non-empty arrays of one length/);
    await expect(tiny.runWithHooks(input, { past, segments: ok, logitPositions: [[0], [3]] })).rejects.toThrow(/logit position 3 outside the sequence \(length 3\)/);
    await expect(tiny.gradients(input, [{ pos: 0, token: 1, kind: 'logit' }], { logitPositions: [[0], [1]] as unknown as number[] })).rejects.toThrow(/per-row logitPositions are for runs without gradients/);
  });
});

describe('evaluate reusing the unperturbed prefix', () => {
  /**
   * Runs `fn` and returns the segments of the packed runs it made (one list per row); each packed
   * run continues all of `input`'s keys and values.
   */
  async function packedRows(model: HookedTransformer, input: number[], fn: () => Promise<unknown>): Promise<{ start: number; length: number }[][]> {
    const spy = vi.spyOn(model, 'runWithHooks');
    try {
      await fn();
      return spy.mock.calls.flatMap(([, o]) => {
        if (o.segments) expect(o.past?.length).toBe(input.length);
        return o.segments ?? [];
      });
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

  /** |a − b| <= 1e-5 · max(1, |b|), elementwise: packed rows round differently from whole runs. */
  function close(a: number[], b: number[]): void {
    expect(a.length).toBe(b.length);
    a.forEach((v, i) => expect(Math.abs(v - b[i]), `value ${i}`).toBeLessThan(1e-5 * Math.max(1, Math.abs(b[i]))));
  }

  it('packs leave-one-out\'s suffixes into full rows; values equal full recomputation and masked prompts run whole (next token and a continuation)', async () => {
    for (const req of [{ target: 5 }, { continuation: [40, 41, 42] }]) {
      const t = await resolveTarget(tiny, LONG, req);
      const n = t.promptLength;
      const examples = await looExamples(tiny, t.input, t.rows.length, n);
      for (const batchSize of [1, 8, 32]) {
        let reused: { values: number[] } | undefined;
        const rows = await packedRows(tiny, t.input, async () => { reused = await evaluate(tiny, t.input, t.rows, examples, { grad: false, batchSize }); });
        // Each example's piece runs from its masked token to its last target position, once:
        // every example appears in exactly one segment, of exactly that length.
        const lastTarget = Math.max(...t.rows.flatMap((r) => r.terms.map((x) => x.pos)));
        const lengths = rows.flat().map((x) => x.length).sort((p, q) => p - q);
        const perRow = t.rows.map((r) => [Math.max(...r.terms.map((x) => x.pos)) - Math.min(...r.terms.map((x) => x.pos)) + 1, ...Array.from({ length: n }, (_, i) => Math.max(...r.terms.map((x) => x.pos)) + 1 - i)]);
        expect(lengths).toEqual(perRow.flat().sort((p, q) => p - q));
        rows.flat().forEach((x) => expect(x.start + x.length).toBeLessThanOrEqual(lastTarget + 1));
        // Full rows: no more rows than half the examples plus one per target row.
        const width = lastTarget + 1;
        rows.forEach((r) => expect(r.reduce((c, x) => c + x.length, 0)).toBeLessThanOrEqual(width));
        expect(rows.length).toBeLessThanOrEqual(t.rows.length * (Math.ceil(n / 2) + 1));
        const full = await evaluate(tiny, t.input, t.rows, examples, { grad: false, batchSize, reusePrefix: false });
        close(reused!.values, full.values);
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

  it('token substitution from several positions on at once: a piece starts at the first substituted token; first-fit-decreasing rows', async () => {
    const t = await resolveTarget(tiny, LONG, { target: 5 });
    const n = LONG.length;
    const examples: Example[] = [[20, 27], [35], [38, 39], [12, 30], []].map((ps) => ({ row: 0, tokens: LONG.map((tok, i) => (ps.includes(i) ? 0 : tok)) }));
    let values: number[] = [];
    const rows = await packedRows(tiny, t.input, async () => ({ values } = await evaluate(tiny, t.input, t.rows, examples, { grad: false, batchSize: 1 })));
    // Pieces of 28 (from 12), 20 (from 20), 5, 2 and 1 (the unchanged prompt: its target position
    // only); the longest sets the width, and the rest share the second row. One row per run.
    expect(rows).toEqual([[{ start: 12, length: 28 }], [{ start: 20, length: 20 }, { start: 35, length: 5 }, { start: 38, length: 2 }, { start: n - 1, length: 1 }]]);
    const want = await Promise.all(examples.map(async (x) => logSoftmaxAt((await tiny.run([x.tokens!])).f32.subarray((n - 1) * cfg.dVocab, n * cfg.dVocab), 5)));
    close(values, want);
    close(values, (await evaluate(tiny, t.input, t.rows, examples, { grad: false, batchSize: 1, reusePrefix: false })).values);
  });

  it('runs whole copies when packing would not save the prompt\'s own run, and continues the target\'s run when it can', async () => {
    // Masks at the very start leave nothing to share: whole runs, no prompt run of its own.
    const t = await resolveTarget(tiny, PROMPT, { target: 5 });
    const x = await tokenEmbeddings(tiny, PROMPT);
    const early: Example[] = [0, 1].map((i) => ({ row: 0, embed: x.slice().fill(0, i * cfg.dModel, (i + 1) * cfg.dModel) }));
    const spy = vi.spyOn(tiny, 'runWithHooks');
    try {
      await evaluate(tiny, t.input, t.rows, early, { grad: false, batchSize: 8 });
      expect(spy.mock.calls.map(([input, o]) => [input.length, Boolean(o.segments)])).toEqual([[2, false]]);
      spy.mockClear();
      // Leave-one-out with the target's keys and values: the packed runs are all it runs.
      const lt = await resolveTarget(tiny, LONG, { target: 5 });
      spy.mockClear();
      await evaluate(tiny, lt.input, lt.rows, await looExamples(tiny, lt.input, 1, LONG.length), { grad: false, batchSize: 64, promptCache: lt.promptCache });
      expect(spy.mock.calls.map(([, o]) => Boolean(o.segments))).toEqual([true]);
    } finally {
      spy.mockRestore();
    }
  });

  it('on a planted model: occlusion scores equal those of full recomputation and of masked prompts run one at a time', async () => {
    const p = ngramPrompts(2, { seed: 4, length: 30, bigrams: 1 });
    for (const { tokens } of p) {
      for (const mask of ['zero', { token: SPACE }] as const) {
        let r: Awaited<ReturnType<typeof attribute>> | undefined;
        const rows = await packedRows(ngram, tokens, async () => { r = await attribute(ngram, { tokens, target: NGRAM.predicts, method: 'occlusion', settings: { mask, batchSize: 8 } }); });
        expect(rows.length).toBeGreaterThan(0);
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
        close(reused.values, full.values);
      }
    }
  });
});
