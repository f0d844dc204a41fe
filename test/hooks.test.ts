// Declarative interventions, JS callbacks and ActivationCache helpers on the tiny random GPT-2.
// Every intervention is checked against an independent path: a JS callback doing the same edit
// on the activation in plain JavaScript, a hand-derivable property (causality, exact zeros,
// exact equality with a clean run), or a quantity recomputed from the weights in JS.
import { describe, it, expect, beforeAll } from 'vitest';
import { Tensor } from '../src/engine/tensor.js';
import { LanternError } from '../src/errors.js';
import { HookedTransformer, Intervention } from '../src/models/hooked.js';
import { TINY_GPT2 } from '../src/models/random.js';
import { Rng } from '../src/rng.js';
import { seededModel, maxAbsDiff } from './helpers.js';

const { nLayers: L, nHeads: H, dHead: DH, dModel: D, dVocab: V } = TINY_GPT2;

function rng(seed: number) {
  const r = new Rng(seed);
  return () => r.next();
}
const rand = rng(2024);
const randomTokens = (n: number) => Array.from({ length: n }, () => Math.floor(rand() * V));
const randomTensor = (shape: number[], scale: number) =>
  Tensor.f32(Array.from({ length: shape.reduce((p, q) => p * q, 1) }, () => scale * (2 * rand() - 1)), shape);

/** A copy of `t` with f applied to every element (given its full index). Plain JS, float32 result. */
function mapIdx(t: Tensor, f: (x: number, idx: number[]) => number): Tensor {
  const st = t.strides;
  const out = new Float32Array(t.size);
  const idx = new Array<number>(t.shape.length);
  for (let i = 0; i < t.size; i++) {
    let r = i;
    for (let a = 0; a < st.length; a++) { idx[a] = Math.floor(r / st[a]); r %= st[a]; }
    out[i] = f(t.f32[i], idx);
  }
  return Tensor.f32(out, t.shape.slice());
}

/** logits[b, t, :] as a plain array. */
const row = (logits: Tensor, b: number, t: number) => Array.from(logits.get(b, t).f32);
const rowDiff = (a: Tensor, b: Tensor, bi: number, t: number) => maxAbsDiff(a.get(bi, t), b.get(bi, t));

/** How many elements differ (=== on the float32 values, so -inf equals -inf and 0 equals -0). */
function mismatches(a: Tensor, b: Tensor): number {
  expect(a.shape).toEqual(b.shape);
  let n = 0;
  for (let i = 0; i < a.size; i++) if (a.data[i] !== b.data[i]) n++;
  return n;
}

async function rejectsWith(p: Promise<unknown>, pattern: RegExp): Promise<string> {
  const err = await p.then(() => undefined, (e: unknown) => e);
  expect(err).toBeInstanceOf(LanternError);
  expect((err as Error).message).toMatch(pattern);
  return (err as Error).message;
}

let model: HookedTransformer;
const SEQ = 10;
const clean = randomTokens(SEQ);
const corrupt = randomTokens(SEQ);
type Run = Awaited<ReturnType<HookedTransformer['runWithCache']>>;
let plain: Run; // the clean prompt, every hook cached except the optional hook_result
let withResult: Run; // the clean prompt, every hook cached, hook_result too

/**
 * Logits of the clean prompt from a run caching the same hooks as the run it is compared with, so
 * "exactly unchanged" compares graphs that ORT compiles alike (a cached value is an extra output,
 * which can change how ORT fuses the nodes around it).
 */
const unchanged = async (cache: string[]) => (await model.runWithCache([clean], cache)).logits;

beforeAll(async () => {
  model = await seededModel(TINY_GPT2, 11);
  plain = await model.runWithCache([clean]);
  withResult = await model.runWithCache([clean], () => true);
});

describe('replace', () => {
  const hook = 'blocks.1.hook_resid_pre';

  it("patching a clean run's resid_pre into a corrupted run gives exactly the clean logits", async () => {
    const patched = await model.runWithHooks([corrupt], { interventions: [{ hook, op: 'replace', value: plain.cache.get(hook) }] });
    const corrupted = await model.run([corrupt]);
    expect(maxAbsDiff(corrupted, plain.logits)).toBeGreaterThan(1e-2); // the prompts really differ
    expect(maxAbsDiff(patched.logits, await model.run([clean]))).toBe(0);
    // The same patch through a JS callback.
    const viaCallback = await model.runWithHooks([corrupt], { callbacks: { [hook]: () => plain.cache.get(hook) } });
    expect(maxAbsDiff(viaCallback.logits, plain.logits)).toBeLessThan(1e-6);
  });

  it('patching selected positions changes only those positions and later ones', async () => {
    const positions = [3, 5];
    const patched = await model.runWithHooks([corrupt], {
      interventions: [{ hook, op: 'replace', value: plain.cache.get(hook), positions }],
      cache: [hook],
    });
    const corrupted = await model.runWithCache([corrupt], [hook]);
    // Cached activation: clean rows at 3 and 5, corrupted rows elsewhere, exactly.
    const expected = mapIdx(corrupted.cache.get(hook), (x, [b, t, d]) => (positions.includes(t) ? plain.cache.get(hook).at(b, t, d) : x));
    expect(maxAbsDiff(patched.cache.get(hook), expected)).toBe(0);
    // Causality: positions before the first patched one are untouched; every later one moves.
    for (let t = 0; t < 3; t++) expect(row(patched.logits, 0, t)).toEqual(row(corrupted.logits, 0, t));
    for (let t = 3; t < SEQ; t++) expect(rowDiff(patched.logits, corrupted.logits, 0, t)).toBeGreaterThan(1e-4);
    // Same as a JS callback copying those rows.
    const viaCallback = await model.runWithHooks([corrupt], {
      callbacks: { [hook]: (act) => mapIdx(act, (x, [b, t, d]) => (positions.includes(t) ? plain.cache.get(hook).at(b, t, d) : x)) },
    });
    expect(maxAbsDiff(viaCallback.logits, patched.logits)).toBeLessThan(1e-6);
  });
});

describe('add', () => {
  const hook = 'blocks.0.hook_resid_post';
  const v = randomTensor([D], 0.05);

  it('adding a [d_model] vector equals the JS callback adding it', async () => {
    const r = await model.runWithHooks([clean], { interventions: [{ hook, op: 'add', value: v }], cache: [hook] });
    const expected = mapIdx(plain.cache.get(hook), (x, [, , d]) => x + v.f32[d]);
    expect(maxAbsDiff(r.cache.get(hook), expected)).toBeLessThan(1e-7);
    const viaCallback = await model.runWithHooks([clean], { callbacks: { [hook]: (act) => mapIdx(act, (x, [, , d]) => x + v.f32[d]) } });
    expect(maxAbsDiff(r.logits, viaCallback.logits)).toBeLessThan(1e-6);
    expect(maxAbsDiff(r.logits, plain.logits)).toBeGreaterThan(1e-3);
  });

  it('restricted to positions', async () => {
    const positions = [2, 7];
    const r = await model.runWithHooks([clean], { interventions: [{ hook, op: 'add', value: v, positions }], cache: [hook] });
    const expected = mapIdx(plain.cache.get(hook), (x, [, t, d]) => (positions.includes(t) ? x + v.f32[d] : x));
    expect(maxAbsDiff(r.cache.get(hook), expected)).toBeLessThan(1e-7);
    const base = await unchanged([hook]);
    for (let t = 0; t < 2; t++) expect(row(r.logits, 0, t)).toEqual(row(base, 0, t));
    const viaCallback = await model.runWithHooks([clean], {
      callbacks: { [hook]: (act) => mapIdx(act, (x, [, t, d]) => (positions.includes(t) ? x + v.f32[d] : x)) },
    });
    expect(maxAbsDiff(r.logits, viaCallback.logits)).toBeLessThan(1e-6);
  });
});

describe('scale', () => {
  it('scaling hook_attn_out by 0 equals zero-ablation; by 0.5 equals the JS callback', async () => {
    const hook = 'blocks.0.hook_attn_out';
    const scaled = await model.runWithHooks([clean], { interventions: [{ hook, op: 'scale', factor: 0 }], cache: [hook] });
    const zeroed = await model.runWithHooks([clean], { interventions: [{ hook, op: 'zero' }], cache: [hook] });
    expect(scaled.cache.get(hook).f32.every((x) => x === 0)).toBe(true);
    expect(maxAbsDiff(scaled.logits, zeroed.logits)).toBe(0);
    expect(maxAbsDiff(scaled.logits, plain.logits)).toBeGreaterThan(1e-3);
    const half = await model.runWithHooks([clean], { interventions: [{ hook, op: 'scale', factor: 0.5 }] });
    const halfCb = await model.runWithHooks([clean], { callbacks: { [hook]: (act) => mapIdx(act, (x) => x * 0.5) } });
    expect(maxAbsDiff(half.logits, halfCb.logits)).toBeLessThan(1e-6);
  });

  it('scaling the attention pattern by 1 leaves the logits unchanged', async () => {
    const r = await model.runWithHooks([clean], { interventions: [{ hook: 'blocks.1.attn.hook_pattern', op: 'scale', factor: 1 }] });
    expect(maxAbsDiff(r.logits, await model.run([clean]))).toBe(0);
  });
});

describe('zero-ablating heads', () => {
  const hook = 'blocks.0.attn.hook_z';

  for (const positions of [undefined, [1, 6]]) {
    it(`heads [1, 3]${positions ? ` at positions [${positions}]` : ''} equals the JS callback; the cache shows zeros exactly there`, async () => {
      const heads = [1, 3];
      const hit = (t: number, h: number) => heads.includes(h) && (!positions || positions.includes(t));
      const r = await model.runWithHooks([clean], { interventions: [{ hook, op: 'zero', heads, positions }], cache: [hook] });
      const z = r.cache.get(hook);
      expect(z.shape).toEqual([1, SEQ, H, DH]);
      const expected = mapIdx(plain.cache.get(hook), (x, [, t, h]) => (hit(t, h) ? 0 : x));
      expect(maxAbsDiff(z, expected)).toBe(0);
      let zeros = 0;
      for (const x of z.f32) if (x === 0) zeros++;
      expect(zeros).toBe((positions?.length ?? SEQ) * heads.length * DH);
      const viaCallback = await model.runWithHooks([clean], { callbacks: { [hook]: (act) => mapIdx(act, (x, [, t, h]) => (hit(t, h) ? 0 : x)) } });
      expect(maxAbsDiff(r.logits, viaCallback.logits)).toBeLessThan(1e-6);
      const base = await unchanged([hook]);
      if (positions) for (let t = 0; t < positions[0]; t++) expect(row(r.logits, 0, t)).toEqual(row(base, 0, t));
    });
  }
});

describe('mean ablation', () => {
  const hook = 'blocks.0.hook_mlp_out';
  const prompts = [clean, corrupt, randomTokens(SEQ)];

  /** Mean over the batch at each (position, feature), in float64. */
  const batchMean = (act: Tensor) => {
    const [Bn, T, Dn] = act.shape;
    const m = new Float64Array(T * Dn);
    for (let b = 0; b < Bn; b++) for (let i = 0; i < T * Dn; i++) m[i] += act.f32[b * T * Dn + i] / Bn;
    return m;
  };

  it('without a value: the batch mean at each position, as a JS callback computes it', async () => {
    const base = await model.runWithCache(prompts, [hook]);
    const mean = batchMean(base.cache.get(hook));
    const r = await model.runWithHooks(prompts, { interventions: [{ hook, op: 'mean' }], cache: [hook] });
    const expected = mapIdx(base.cache.get(hook), (_, [, t, d]) => mean[t * D + d]);
    expect(maxAbsDiff(r.cache.get(hook), expected)).toBeLessThan(1e-6);
    const viaCallback = await model.runWithHooks(prompts, { callbacks: { [hook]: (act) => mapIdx(act, (_, [, t, d]) => batchMean(act)[t * D + d]) } });
    expect(maxAbsDiff(r.logits, viaCallback.logits)).toBeLessThan(1e-5);
    expect(maxAbsDiff(r.logits, base.logits)).toBeGreaterThan(1e-3);
  });

  it('restricted to positions', async () => {
    const base = await model.runWithCache(prompts, [hook]);
    const mean = batchMean(base.cache.get(hook));
    const r = await model.runWithHooks(prompts, { interventions: [{ hook, op: 'mean', positions: [4] }], cache: [hook] });
    const expected = mapIdx(base.cache.get(hook), (x, [, t, d]) => (t === 4 ? mean[t * D + d] : x));
    expect(maxAbsDiff(r.cache.get(hook), expected)).toBeLessThan(1e-6);
    for (let b = 0; b < 3; b++) for (let t = 0; t < 4; t++) expect(row(r.logits, b, t)).toEqual(row(base.logits, b, t));
  });

  it('with a given value: substitutes it (same as replace)', async () => {
    const value = randomTensor([SEQ, D], 0.05);
    const r = await model.runWithHooks(prompts, { interventions: [{ hook, op: 'mean', value }], cache: [hook] });
    const expected = mapIdx(r.cache.get(hook), (_, [, t, d]) => value.at(t, d));
    expect(maxAbsDiff(r.cache.get(hook), expected)).toBe(0);
    const viaReplace = await model.runWithHooks(prompts, { interventions: [{ hook, op: 'replace', value }], cache: [hook] });
    expect(maxAbsDiff(r.logits, viaReplace.logits)).toBe(0);
  });
});

describe('attention pattern interventions use query positions ([batch, head, q, k])', () => {
  // In the last layer, a changed pattern row can reach only its own position's logits.
  const hook = `blocks.${L - 1}.attn.hook_pattern`;

  for (const heads of [undefined, [2]]) {
    it(`zeroing query position 4${heads ? ' of head 2' : ''}`, async () => {
      const hit = (h: number, q: number) => q === 4 && (!heads || heads.includes(h));
      const r = await model.runWithHooks([clean], { interventions: [{ hook, op: 'zero', positions: [4], heads }], cache: [hook] });
      const expected = mapIdx(plain.cache.get(hook), (x, [, h, q]) => (hit(h, q) ? 0 : x));
      expect(r.cache.get(hook).shape).toEqual([1, H, SEQ, SEQ]);
      expect(maxAbsDiff(r.cache.get(hook), expected)).toBe(0);
      // Only query 4 reads a changed pattern row, so only logits at position 4 change (with the
      // key axis zeroed instead, every position from 4 on would).
      const base = await unchanged([hook]);
      for (let t = 0; t < SEQ; t++) {
        if (t === 4) expect(rowDiff(r.logits, base, 0, t)).toBeGreaterThan(1e-4);
        else expect(row(r.logits, 0, t)).toEqual(row(base, 0, t));
      }
      const viaCallback = await model.runWithHooks([clean], { callbacks: { [hook]: (act) => mapIdx(act, (x, [, h, q]) => (hit(h, q) ? 0 : x)) } });
      expect(maxAbsDiff(r.logits, viaCallback.logits)).toBeLessThan(1e-6);
    });
  }
});

describe('hook_result (per-head outputs)', () => {
  let W_O: Tensor;
  let b_O: Tensor;
  beforeAll(async () => {
    const w = await model.executor.readWeights(model.weights, ['blocks.0.attn.W_O', 'blocks.0.attn.b_O']);
    W_O = w['blocks.0.attn.W_O'];
    b_O = w['blocks.0.attn.b_O'];
  });

  it('each head is z_h @ W_O[h]; summed over heads plus b_O it is hook_attn_out', async () => {
    const z = withResult.cache.get('blocks.0.attn.hook_z');
    const result = withResult.cache.get('blocks.0.attn.hook_result');
    expect(result.shape).toEqual([1, SEQ, H, D]);
    const expected = mapIdx(result, (_, [b, t, h, d]) => {
      let s = 0;
      for (let j = 0; j < DH; j++) s += z.at(b, t, h, j) * W_O.at(h * DH + j, d);
      return s;
    });
    expect(maxAbsDiff(result, expected)).toBeLessThan(1e-6);
    // attn_out from a run that does not build hook_result (one matmul over all heads).
    const attnOut = (await model.runWithCache([clean], ['blocks.0.hook_attn_out'])).cache.get('blocks.0.hook_attn_out');
    const summed = mapIdx(attnOut, (_, [b, t, d]) => {
      let s = b_O.f32[d];
      for (let h = 0; h < H; h++) s += result.at(b, t, h, d);
      return s;
    });
    expect(maxAbsDiff(summed, attnOut)).toBeLessThan(1e-6);
  });

  it('zero-ablating head 2 via hook_result equals zero-ablating it via hook_z, and removes exactly its write', async () => {
    const viaResult = await model.runWithHooks([clean], {
      interventions: [{ hook: 'blocks.0.attn.hook_result', op: 'zero', heads: [2] }],
      cache: ['blocks.0.hook_attn_out'],
    });
    const viaZ = await model.runWithHooks([clean], { interventions: [{ hook: 'blocks.0.attn.hook_z', op: 'zero', heads: [2] }], cache: ['blocks.0.hook_attn_out'] });
    expect(maxAbsDiff(viaResult.logits, viaZ.logits)).toBeLessThan(1e-5);
    expect(maxAbsDiff(viaResult.logits, plain.logits)).toBeGreaterThan(1e-3);
    const result = withResult.cache.get('blocks.0.attn.hook_result');
    const expected = mapIdx(plain.cache.get('blocks.0.hook_attn_out'), (x, [b, t, d]) => x - result.at(b, t, 2, d));
    expect(maxAbsDiff(viaZ.cache.get('blocks.0.hook_attn_out'), expected)).toBeLessThan(1e-6);
    expect(maxAbsDiff(viaResult.cache.get('blocks.0.hook_attn_out'), expected)).toBeLessThan(1e-6);
  });
});

describe('JS callbacks', () => {
  it('several hooks at once, called in model order, matching the declarative interventions', async () => {
    const v = randomTensor([D], 0.05);
    const calls: string[] = [];
    const seen: Record<string, Tensor> = {};
    const record = (act: Tensor, name: string) => {
      calls.push(name);
      seen[name] = Tensor.f32(act.f32.slice(), act.shape);
    };
    // Keys deliberately out of model order.
    const r = await model.runWithHooks([clean], {
      callbacks: {
        'ln_final.hook_normalized': (act, name) => record(act, name),
        'blocks.1.hook_resid_mid': async (act, name) => {
          record(act, name);
          return mapIdx(act, (x, [, , d]) => x + v.f32[d]);
        },
        hook_embed: (act, name) => record(act, name),
        'blocks.0.attn.hook_pattern': (act, name) => {
          record(act, name);
          return mapIdx(act, (x, [, h]) => (h === 1 ? 0.5 * x : x));
        },
      },
      cache: ['blocks.1.hook_resid_mid', 'hook_embed'],
    });
    expect(calls).toEqual(['hook_embed', 'blocks.0.attn.hook_pattern', 'blocks.1.hook_resid_mid', 'ln_final.hook_normalized']);
    const declarative: Intervention[] = [
      { hook: 'blocks.0.attn.hook_pattern', op: 'scale', factor: 0.5, heads: [1] },
      { hook: 'blocks.1.hook_resid_mid', op: 'add', value: v },
    ];
    const d = await model.runWithHooks([clean], {
      interventions: declarative,
      cache: ['blocks.0.attn.hook_pattern', 'blocks.1.hook_resid_mid', 'ln_final.hook_normalized'],
    });
    expect(maxAbsDiff(r.logits, d.logits)).toBeLessThan(1e-6);
    expect(maxAbsDiff(r.logits, plain.logits)).toBeGreaterThan(1e-3);
    // What each callback saw: the unmodified embedding, the clean pattern, the residual the
    // modified pattern produced, and the final normalized residual of the modified run.
    expect(maxAbsDiff(seen.hook_embed, plain.cache.get('hook_embed'))).toBe(0);
    expect(maxAbsDiff(seen['blocks.0.attn.hook_pattern'], plain.cache.get('blocks.0.attn.hook_pattern'))).toBeLessThan(1e-7);
    const midBeforeAdd = mapIdx(d.cache.get('blocks.1.hook_resid_mid'), (x, [, , k]) => x - v.f32[k]);
    expect(maxAbsDiff(seen['blocks.1.hook_resid_mid'], midBeforeAdd)).toBeLessThan(1e-6);
    expect(maxAbsDiff(seen['ln_final.hook_normalized'], d.cache.get('ln_final.hook_normalized'))).toBeLessThan(1e-5);
    // The cache holds what the rest of the model used: the callback's return value, or the activation.
    expect(maxAbsDiff(r.cache.get('blocks.1.hook_resid_mid'), d.cache.get('blocks.1.hook_resid_mid'))).toBeLessThan(1e-6);
    expect(maxAbsDiff(r.cache.get('hook_embed'), plain.cache.get('hook_embed'))).toBe(0);
  });

  it('a callback returning nothing leaves the run unchanged', async () => {
    const r = await model.runWithHooks([clean], { callbacks: { 'blocks.0.hook_resid_mid': () => undefined, 'blocks.1.attn.hook_z': () => {} } });
    expect(maxAbsDiff(r.logits, plain.logits)).toBeLessThan(1e-6);
  });

  it('a callback returning the wrong shape, dtype or type is a LanternError', async () => {
    const hook = 'blocks.0.hook_resid_mid';
    await rejectsWith(
      model.runWithHooks([clean], { callbacks: { [hook]: () => Tensor.f32(new Float32Array(SEQ * D), [SEQ, D]) } }),
      /callback at blocks\.0\.hook_resid_mid returned shape \[10,64\], expected \[1,10,64\]/,
    );
    await rejectsWith(
      model.runWithHooks([clean], { callbacks: { [hook]: (act) => Tensor.f64(Array.from(act.f32), act.shape) } }),
      /returned a float64 tensor, expected float32/,
    );
    await rejectsWith(model.runWithHooks([clean], { callbacks: { [hook]: (act) => act.f32 as never } }), /returned something other than a Tensor/);
  });
});

describe('errors', () => {
  it('an unknown hook name suggests the nearest valid names', async () => {
    const msg = await rejectsWith(model.runWithHooks([clean], { interventions: [{ hook: 'blocks.0.hook_resid_pr', op: 'zero' }] }), /unknown hook 'blocks\.0\.hook_resid_pr'/);
    expect(msg).toContain("'blocks.0.hook_resid_pre'");
    await rejectsWith(model.runWithCache([clean], ['blocks.1.attn.hook_patern']), /'blocks\.1\.attn\.hook_pattern'/);
    await rejectsWith(model.runWithHooks([clean], { callbacks: { 'blocks.2.hook_resid_post': () => {} } }), /'blocks\.[01]\.hook_resid_post'/);
  });

  it('positions and heads out of range', async () => {
    const run = (iv: Intervention) => model.runWithHooks([clean], { interventions: [iv] });
    await rejectsWith(run({ hook: 'blocks.0.hook_resid_pre', op: 'zero', positions: [SEQ] }), /position 10 outside the sequence \(length 10\)/);
    await rejectsWith(run({ hook: 'blocks.0.hook_resid_pre', op: 'zero', positions: [-1] }), /position -1 outside/);
    await rejectsWith(run({ hook: 'blocks.0.hook_resid_pre', op: 'zero', positions: [1.5] }), /position 1\.5 outside/);
    await rejectsWith(run({ hook: 'blocks.0.attn.hook_z', op: 'zero', heads: [H] }), /head 4 outside \[0, 4\)/);
    await rejectsWith(run({ hook: 'blocks.0.attn.hook_pattern', op: 'zero', heads: [-1] }), /head -1 outside/);
  });

  it("'heads' on a hook without a head axis", async () => {
    await rejectsWith(
      model.runWithHooks([clean], { interventions: [{ hook: 'blocks.0.hook_resid_post', op: 'zero', heads: [0] }] }),
      /'heads' applies only to per-head hooks/,
    );
  });

  it("a value that doesn't broadcast, or is missing", async () => {
    const run = (iv: Intervention, input: number[][] = [clean]) => model.runWithHooks(input, { interventions: [iv] });
    await rejectsWith(run({ hook: 'blocks.0.hook_resid_post', op: 'add', value: randomTensor([D + 1], 1) }), /does not broadcast to the activation \[1,10,64\]/);
    await rejectsWith(run({ hook: 'blocks.0.hook_resid_post', op: 'replace', value: randomTensor([2, SEQ, D], 1) }), /does not broadcast/);
    await rejectsWith(run({ hook: 'blocks.0.hook_resid_post', op: 'replace', value: randomTensor([SEQ + 1, D], 1) }), /does not broadcast/);
    await rejectsWith(run({ hook: 'blocks.0.hook_resid_post', op: 'add', value: randomTensor([1, 1, 1, D], 1) }), /more dims than the activation/);
    await rejectsWith(run({ hook: 'blocks.0.hook_resid_post', op: 'replace' }), /needs a value tensor/);
    await rejectsWith(run({ hook: 'blocks.0.hook_resid_post', op: 'scale' }), /needs a finite factor/);
  });

  it('an unknown op', async () => {
    await rejectsWith(
      model.runWithHooks([clean], { interventions: [{ hook: 'blocks.0.hook_resid_post', op: 'multiply' as never, factor: 2 }] }),
      /intervention 0 \(multiply at blocks\.0\.hook_resid_post\): unknown op; use one of replace, add, scale, zero, mean/,
    );
  });
});

describe('ActivationCache helpers', () => {
  const lengths = [SEQ, 6];
  let batch: Awaited<ReturnType<HookedTransformer['runWithCache']>>;
  let b_O: Tensor[];
  beforeAll(async () => {
    batch = await model.runWithCache([clean, corrupt.slice(0, lengths[1])], () => true);
    const w = await model.executor.readWeights(model.weights, Array.from({ length: L }, (_, l) => `blocks.${l}.attn.b_O`));
    b_O = Array.from({ length: L }, (_, l) => w[`blocks.${l}.attn.b_O`]);
  });

  it('stack puts each layer on a new leading axis', () => {
    const s = batch.cache.stack('attn.hook_z');
    expect(s.shape).toEqual([L, 2, SEQ, H, DH]);
    for (let l = 0; l < L; l++) expect(maxAbsDiff(s.get(l), batch.cache.get(`blocks.${l}.attn.hook_z`))).toBe(0);
  });

  it('accumulatedResid: resid_pre of each layer, then the final resid_post', () => {
    const { stack, labels } = batch.cache.accumulatedResid();
    expect(labels).toEqual(['0_pre', '1_pre', 'final_post']);
    expect(stack.shape).toEqual([L + 1, 2, SEQ, D]);
    for (let l = 0; l < L; l++) expect(maxAbsDiff(stack.get(l), batch.cache.get(`blocks.${l}.hook_resid_pre`))).toBe(0);
    expect(maxAbsDiff(stack.get(L), batch.cache.get(`blocks.${L - 1}.hook_resid_post`))).toBe(0);
  });

  it('decomposeResid: the components sum to the final resid_post', () => {
    const { stack, labels } = batch.cache.decomposeResid();
    expect(labels).toEqual(['embed', 'pos_embed', '0_attn_out', '0_mlp_out', '1_attn_out', '1_mlp_out']);
    expect(stack.shape).toEqual([2 + 2 * L, 2, SEQ, D]);
    const n = stack.size / labels.length;
    const sum = new Float32Array(n);
    for (let c = 0; c < labels.length; c++) for (let i = 0; i < n; i++) sum[i] += stack.f32[c * n + i];
    const final = batch.cache.get(`blocks.${L - 1}.hook_resid_post`);
    expect(maxAbsDiff(Tensor.f32(sum, final.shape), final)).toBeLessThan(1e-5);
  });

  it("stackHeadResults: each head's write, summing with b_O to each layer's attn_out", () => {
    const { stack, labels } = batch.cache.stackHeadResults();
    expect(labels).toEqual(['L0H0', 'L0H1', 'L0H2', 'L0H3', 'L1H0', 'L1H1', 'L1H2', 'L1H3']);
    expect(stack.shape).toEqual([L * H, 2, SEQ, D]);
    for (let l = 0; l < L; l++) {
      const result = batch.cache.get(`blocks.${l}.attn.hook_result`);
      for (let h = 0; h < H; h++) {
        expect(maxAbsDiff(stack.get(l * H + h), mapIdx(stack.get(l * H + h), (_, [b, t, d]) => result.at(b, t, h, d)))).toBe(0);
      }
      const attnOut = batch.cache.get(`blocks.${l}.hook_attn_out`);
      const summed = mapIdx(attnOut, (_, [b, t, d]) => {
        let s = b_O[l].f32[d];
        for (let h = 0; h < H; h++) s += stack.at(l * H + h, b, t, d);
        return s;
      });
      expect(maxAbsDiff(summed, attnOut)).toBeLessThan(1e-6);
    }
  });

  it('prompt(b) trims to the prompt and its real length (both axes of attention maps)', () => {
    const one = batch.cache.prompt(1);
    const len = lengths[1];
    expect(one.batch).toEqual({ tokens: [corrupt.slice(0, len)], lengths: [len], seq: len });
    expect(one.names).toEqual(batch.cache.names);
    for (const [name, full] of batch.cache.entries()) {
      const t = one.get(name);
      const isMap = /hook_(attn_scores|pattern)$/.test(name);
      const expectedShape = isMap ? [1, H, len, len] : [1, len, ...full.shape.slice(2)];
      expect(t.shape, name).toEqual(expectedShape);
      const expected = mapIdx(t, (_, idx) => full.at(1, ...idx.slice(1)));
      expect(mismatches(t, expected), name).toBe(0);
    }
    expect(() => batch.cache.prompt(2)).toThrow(LanternError);
    expect(() => batch.cache.prompt(-1)).toThrow(/prompt -1 is outside the batch of 2/);
    // Prompt 0 has the full length: trimming is the identity on its rows.
    expect(mismatches(batch.cache.prompt(0).get('blocks.1.attn.hook_attn_scores'), Tensor.f32(batch.cache.get('blocks.1.attn.hook_attn_scores').get(0).f32, [1, H, SEQ, SEQ]))).toBe(0);
  });

  it('asking for an uncached hook is a LanternError naming cached neighbours', async () => {
    const r = await model.runWithCache([clean], ['blocks.0.hook_resid_pre', 'blocks.1.hook_resid_pre']);
    expect(() => r.cache.get('blocks.0.hook_resid_post')).toThrow(LanternError);
    expect(() => r.cache.get('blocks.0.hook_resid_post')).toThrow(/blocks\.0\.hook_resid_pre/);
    expect(() => r.cache.stack('hook_resid_post')).toThrow(LanternError);
  });
});
