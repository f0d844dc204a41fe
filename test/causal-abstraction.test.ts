// Causal abstraction on models whose mechanism is known: the planted IOI model computes its
// subject S at the last position in layer 0 (S-inhibition head L0H1) and moves the other name
// there in layer 1 (name mover L1H2). Interchange interventions are checked against the source's
// own run and one pair at a time; the rotation graph against a float64 Householder product and
// central differences written out here; DAS, Boundless DAS and causal scrubbing against where the
// variable is and is not.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { writeSafetensors } from '../src/models/safetensors.js';
import { Tensor } from '../src/engine/tensor.js';
import { defaultExecutor } from '../src/engine/runtime/executor.js';
import { HookedTransformer } from '../src/models/hooked.js';
import { weightShapes } from '../src/models/forward.js';
import { buildPlanted, IOI_NAMES, IOI_HEADS, INDUCTION_HEADS } from '../src/models/planted/index.js';
import { Rng } from '../src/rng.js';
import { LanternError } from '../src/errors.js';
import {
  CausalModel, causalModelFromJson, causalScrub, das, interchange, interchangeAccuracy, interchangeVector, ioiExamples, ioiTask,
  orthogonalityError, orthonormalRows, rotate, inductionTask, loadSubspace,
} from '../src/methods/causal-abstraction/index.js';
import type { CausalInput, Hypothesis } from '../src/methods/causal-abstraction/index.js';

async function planted(kind: 'ioi' | 'induction'): Promise<HookedTransformer> {
  const { cfg, weights } = buildPlanted(kind);
  const shapes = weightShapes(cfg);
  return HookedTransformer.create(cfg, Object.fromEntries(Object.entries(weights).map(([n, d]) => [n, Tensor.f32(d, shapes[n])])), undefined, `planted:${kind}`);
}

let ioi: HookedTransformer;
let induction: HookedTransformer;
beforeAll(async () => {
  ioi = await planted('ioi');
  induction = await planted('induction');
});

const task = ioiTask();
const S_HOOK = `blocks.${IOI_HEADS.nameMover.layer}.hook_resid_pre`; // S is in the stream here, at the last position
const EARLY_HOOK = 'blocks.0.hook_resid_pre'; // only the tokens: the last one is ' to' in every prompt

describe('interchange interventions', () => {
  it('a whole-stream interchange at every position reproduces the source run', async () => {
    const examples = ioiExamples(6, 11).filter((e) => task.tokens(e.base).length === task.tokens(e.sources[0]).length);
    const pairs = examples.map((e) => ({ base: task.tokens(e.base), sources: [task.tokens(e.sources[0])] }));
    const positions = Array.from({ length: pairs[0].base.length }, (_, i) => i);
    const same = pairs.filter((p) => p.base.length === positions.length);
    const candidates = IOI_NAMES.map((n) => n.id);
    const r = await interchange(ioi, { pairs: same, interventions: [{ hook: 'blocks.1.hook_resid_pre', positions }], candidates });
    const src = await ioi.runWithHooks(same.map((p) => p.sources[0]), { logitPositions: same.map((p) => [p.sources[0].length - 1]) });
    const V = ioi.cfg.dVocab;
    same.forEach((_, b) => candidates.forEach((t, j) => expect(r.candidateLogits![b][j]).toBeCloseTo(src.logits.f32[b * V + t], 4)));
  });

  it('batched equals one pair at a time (subspaces, heads, two sources, prompts of different lengths)', async () => {
    const rng = new Rng(3);
    const examples = ioiExamples(12, 5);
    const pairs = examples.map((e, i) => ({ base: task.tokens(e.base), sources: [task.tokens(e.sources[0]), task.tokens(examples[(i + 1) % 12].base)] }));
    expect(new Set(pairs.map((p) => p.base.length)).size).toBeGreaterThan(1);
    const dHead = ioi.cfg.dHead;
    const interventions = [
      { hook: 'blocks.0.attn.hook_z', positions: [-1], heads: [1], subspace: { basis: Array.from({ length: 3 * dHead }, () => rng.normal()), k: 3, dim: dHead } },
      { hook: 'blocks.1.hook_resid_pre', positions: [1, 3], source: 1, subspace: { basis: Array.from({ length: 20 * ioi.cfg.dModel }, () => rng.normal()), k: 20, dim: ioi.cfg.dModel } },
    ];
    const candidates = IOI_NAMES.map((n) => n.id);
    const batched = await interchange(ioi, { pairs, interventions, candidates, batchSize: 12 });
    const single = await interchange(ioi, { pairs, interventions, candidates, batchSize: 1 });
    expect(batched.predictions).toEqual(single.predictions);
    batched.candidateLogits!.forEach((row, b) => row.forEach((x, j) => expect(x).toBeCloseTo(single.candidateLogits![b][j], 4)));
    const a = await interchangeAccuracy(ioi, { task, examples: examples.slice(0, 12), variables: ['S'], interventions: [{ hook: S_HOOK, positions: [-1] }], batchSize: 5 });
    const b = await interchangeAccuracy(ioi, { task, examples: examples.slice(0, 12), variables: ['S'], interventions: [{ hook: S_HOOK, positions: [-1] }], batchSize: 1 });
    expect(a.predictions).toEqual(b.predictions);
    expect(a.iia).toBe(b.iia);
  });

  it('a subspace interchange moves exactly the projection (hand-computed case)', () => {
    const basis = orthonormalRows({ basis: [1, 1, 0, 0, 0, 0, 2, 0], k: 2, dim: 4 });
    const x = Float32Array.from([1, 2, 3, 4]);
    interchangeVector(x, Float32Array.from([5, 0, 7, 0]), basis, 2);
    // Span{(1,1,0,0)/√2, (0,0,1,0)}: the (1,1) component's mean becomes the source's (2.5), x_2 becomes 7.
    expect(Array.from(x).map((v) => +v.toFixed(5))).toEqual([2, 3, 7, 4]);
    expect(() => orthonormalRows({ basis: [1, 0, 2, 0], k: 2, dim: 2 })).toThrow(/combination of the ones before/);
  });

  it('a saved direction loads as a one-dimensional subspace; a missing tensor is named', () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'lantern-subspace-'));
    const file = path.join(dir, 'probe.safetensors');
    writeSafetensors(file, { direction: { dtype: 'F32', shape: [4], data: Float32Array.from([0, 3, 0, 4]) } });
    const { subspace } = loadSubspace(file, 'direction');
    expect([subspace.k, subspace.dim]).toEqual([1, 4]);
    const x = Float32Array.from([1, 1, 1, 1]);
    interchangeVector(x, Float32Array.from([0, 0, 0, 0]), orthonormalRows(subspace), 1);
    // Removes x's component along (0, 0.6, 0, 0.8): 0.6 + 0.8 = 1.4 of it.
    expect(Array.from(x).map((v) => +v.toFixed(5))).toEqual([1, 1 - 1.4 * 0.6, 1, 1 - 1.4 * 0.8].map((v) => +v.toFixed(5)));
    expect(() => loadSubspace(file)).toThrow(/has no tensor 'basis'; it has direction/);
    fs.rmSync(dir, { recursive: true, force: true });
  });

  it('IIA of the whole stream: 1 where S is computed, 0 before it', async () => {
    const examples = ioiExamples(40, 7);
    const at = await interchangeAccuracy(ioi, { task, examples, variables: ['S'], interventions: [{ hook: S_HOOK, positions: [-1] }] });
    const before = await interchangeAccuracy(ioi, { task, examples, variables: ['S'], interventions: [{ hook: EARLY_HOOK, positions: [-1] }] });
    expect(at.changed).toBe(40);
    expect(at.iia).toBe(1);
    expect(before.iia).toBe(0);
  });

  it('bad input: one clear message', async () => {
    const pairs = [{ base: [1, 2], sources: [[1, 2]] }];
    await expect(interchange(ioi, { pairs, interventions: [{ hook: 'blocks.0.hook_resid_prex', positions: [0] }] })).rejects.toThrow(/unknown hook 'blocks.0.hook_resid_prex'; did you mean 'blocks.0.hook_resid_pre'/);
    await expect(interchange(ioi, { pairs, interventions: [{ hook: 'blocks.0.hook_resid_pre', positions: [5] }] })).rejects.toThrow(/position 5 outside a prompt of 2 tokens/);
    await expect(interchange(ioi, { pairs, interventions: [{ hook: 'blocks.0.hook_resid_pre', positions: [0], subspace: { basis: [1, 0], k: 1, dim: 2 } }] })).rejects.toThrow(/subspace of dim 2, but the hook's last axis has 192/);
    await expect(interchange(ioi, { pairs, interventions: [{ hook: 'blocks.0.hook_resid_pre', positions: [0], heads: [0] }] })).rejects.toThrow(LanternError);
  });
});

describe('causal models', () => {
  const m = causalModelFromJson({
    inputs: ['x', 'a', 'b'],
    variables: { above: { parents: ['x', 'a'], op: 'ge' }, below: { parents: ['x', 'b'], op: 'le' }, inside: { parents: ['above', 'below'], op: 'and' } },
    output: 'inside',
  });
  it('counterfactuals by hand: x=5 in [3, 8]; take "below" from x=9 (false) -> false; take "above" from x=1 -> false', () => {
    expect(m.output({ x: 5, a: 3, b: 8 })).toBe(true);
    expect(m.counterfactual({ x: 5, a: 3, b: 8 }, [{ x: 9, a: 0, b: 8 }], ['below'])).toBe(false);
    expect(m.counterfactual({ x: 5, a: 3, b: 8 }, [{ x: 1, a: 3, b: 8 }, { x: 5, a: 0, b: 9 }], ['above', 'below'])).toBe(false);
    expect(m.counterfactual({ x: 9, a: 3, b: 8 }, [{ x: 1, a: 0, b: 2 }], ['below'])).toBe(true);
  });
  it('bad descriptions name the problem', () => {
    expect(() => causalModelFromJson({ inputs: ['x'], variables: { y: { parents: ['x'], op: 'nott' } }, output: 'y' })).toThrow(/unknown op 'nott' \(did you mean 'not'/);
    expect(() => causalModelFromJson({ inputs: ['x'], variables: { y: { parents: ['x', 'x'], op: 'not' } }, output: 'y' })).toThrow(/takes 1 parent/);
    expect(() => new CausalModel({ inputs: [], variables: { a: { parents: ['b'], compute: (x) => x }, b: { parents: ['a'], compute: (x) => x } }, output: 'a' })).toThrow(/cycle/);
    expect(() => m.counterfactual({ x: 1, a: 0, b: 2 }, [{ x: 1, a: 0, b: 2 }], ['insid'])).toThrow(/unknown variable 'insid' \(did you mean 'inside'/);
  });
});

describe('the DAS rotation', () => {
  /** Q = H_0 … H_{k-1} E_k in float64, written out. */
  function householderFrame(v: Float64Array, dim: number, k: number): Float64Array {
    const q = new Float64Array(dim * k);
    for (let i = 0; i < k; i++) q[i * k + i] = 1;
    for (let i = k - 1; i >= 0; i--) {
      const vi = v.subarray(i * dim, (i + 1) * dim);
      const n2 = vi.reduce((s, x) => s + x * x, 0);
      for (let c = 0; c < k; c++) {
        let dot = 0;
        for (let t = 0; t < dim; t++) dot += vi[t] * q[t * k + c];
        for (let t = 0; t < dim; t++) q[t * k + c] -= (2 * vi[t] * dot) / n2;
      }
    }
    return q;
  }
  const objective = (v: Float64Array, boundary: number, temperature: number, x: Float32Array, s: Float32Array, g: Float32Array, dim: number, k: number) => {
    const q = householderFrame(v, dim, k);
    let f = 0;
    for (let r = 0; r < x.length / dim; r++) {
      for (let c = 0; c < k; c++) {
        let coord = 0;
        for (let t = 0; t < dim; t++) coord += (s[r * dim + t] - x[r * dim + t]) * q[t * k + c];
        const m = 1 / (1 + Math.exp(-(boundary - c - 0.5) / temperature));
        for (let t = 0; t < dim; t++) f += g[r * dim + t] * coord * m * q[t * k + c];
      }
      for (let t = 0; t < dim; t++) f += g[r * dim + t] * x[r * dim + t];
    }
    return f;
  };

  it('frame, interchange and gradients agree with a float64 Householder product and central differences', async () => {
    const rng = new Rng(9);
    const dim = 6, k = 3, n = 4;
    const p = { dim, k, v: Float64Array.from({ length: k * dim }, () => rng.normal()), boundary: 1.7, temperature: 0.8 };
    const x = Float32Array.from({ length: n * dim }, () => rng.normal());
    const s = Float32Array.from({ length: n * dim }, () => rng.normal());
    const g = Float32Array.from({ length: n * dim }, () => rng.normal());
    const out = await rotate(defaultExecutor(), p, x, s, g);
    const ref = householderFrame(p.v, dim, k);
    out.q.forEach((q, i) => expect(q).toBeCloseTo(ref[i], 12));
    expect(orthogonalityError(out.q, dim, k)).toBeLessThan(1e-12);
    const eps = 1e-5;
    p.v.forEach((_, i) => {
      const up = Float64Array.from(p.v); up[i] += eps;
      const dn = Float64Array.from(p.v); dn[i] -= eps;
      const fd = (objective(up, p.boundary, p.temperature, x, s, g, dim, k) - objective(dn, p.boundary, p.temperature, x, s, g, dim, k)) / (2 * eps);
      expect(out.dv![i]).toBeCloseTo(fd, 6);
    });
    const fdB = (objective(p.v, p.boundary + eps, p.temperature, x, s, g, dim, k) - objective(p.v, p.boundary - eps, p.temperature, x, s, g, dim, k)) / (2 * eps);
    expect(out.dboundary!).toBeCloseTo(fdB, 6);
  });
});

describe('DAS and Boundless DAS on the planted IOI model', () => {
  // Four names: S then spans 3 dimensions of the stream.
  const train = ioiExamples(128, 2, { names: 4 });
  const test = ioiExamples(48, 3, { names: 4 });
  const common = { task, variable: 'S', position: -1, train, test, epochs: 3, seed: 1 };

  it('DAS finds S where the model computes it (IIA >= 0.95, frame orthogonal to 1e-5) and not before (<= 0.6)', async () => {
    const found = await das(ioi, { ...common, hook: S_HOOK, k: 8 });
    expect(found.iia).toBeGreaterThanOrEqual(0.95);
    expect(found.orthogonality).toBeLessThan(1e-5);
    expect(found.subspace.k).toBe(8);
    // The learned subspace is the same number as an interchange of it, batched (the result's own figure).
    const again = await interchangeAccuracy(ioi, { task, examples: test, variables: ['S'], interventions: [{ hook: S_HOOK, positions: [-1], subspace: found.subspace }], batchSize: 7 });
    expect(again.iia).toBe(found.iia);
    const absent = await das(ioi, { ...common, hook: EARLY_HOOK, k: 8 });
    expect(absent.iia).toBeLessThanOrEqual(0.6);
  });

  it('Boundless DAS learns a boundary and finds S (IIA >= 0.95) where it is, not before', async () => {
    const found = await das(ioi, { ...common, hook: S_HOOK, boundless: true, k: 24 });
    expect(found.iia).toBeGreaterThanOrEqual(0.95);
    expect(found.k).toBeGreaterThanOrEqual(3);
    expect(found.k).toBeLessThan(24);
    expect(found.orthogonality).toBeLessThan(1e-5);
    const absent = await das(ioi, { ...common, hook: EARLY_HOOK, boundless: true, k: 24 });
    expect(absent.iia).toBeLessThanOrEqual(0.6);
  });

  it('bad settings name the problem', async () => {
    await expect(das(ioi, { ...common, hook: 'blocks.0.attn.hook_z', k: 2 })).rejects.toThrow(/needs a head \(0 \.\. 3\)/);
    await expect(das(ioi, { ...common, hook: S_HOOK, k: 500 })).rejects.toThrow(/k must be an integer in \[1, 192\]/);
    await expect(das(ioi, { ...common, hook: S_HOOK, variable: 'SS' })).rejects.toThrow(/unknown variable 'SS'/);
  });
});

describe('causal scrubbing', () => {
  it('IOI: the true hypothesis recovers >= 0.95 of the loss; omitting the S-inhibition path <= 0.5', async () => {
    const pool: CausalInput[] = [];
    for (const x of IOI_NAMES) for (const y of IOI_NAMES) if (x !== y) for (const s of [x.id, y.id]) pool.push({ template: 0, a: x.id, b: y.id, s });
    const inputs = pool.filter((_, i) => i % 7 === 0).slice(0, 48);
    const truth: Hypothesis = { nodes: { S: { components: ['L0H1'], parents: ['input'] }, IO: { components: ['L1H2'], parents: ['S', 'input'] } }, output: { parents: ['IO'] } };
    const noS: Hypothesis = { nodes: { IO: { components: ['L1H2'], parents: ['input'] } }, output: { parents: ['IO'] } };
    const good = await causalScrub(ioi, { task, hypothesis: truth, inputs, pool, seed: 1 });
    expect(good.recovered).toBeGreaterThanOrEqual(0.95);
    expect(good.random).toBeGreaterThan(good.clean + 1);
    const bad = await causalScrub(ioi, { task, hypothesis: noS, inputs, pool, seed: 1 });
    expect(bad.recovered).toBeLessThanOrEqual(0.5);
  });

  it('induction: previous-token head -> induction head recovers the loss; without the previous-token path it does not', async () => {
    const t = inductionTask();
    const inputs = Array.from({ length: 32 }, (_, i) => ({ seed: i }));
    const pool = Array.from({ length: 128 }, (_, i) => ({ seed: 1000 + i }));
    const { previousToken: p, induction: ind } = INDUCTION_HEADS;
    const truth: Hypothesis = { nodes: { prev: { components: [`L${p.layer}H${p.head}`], parents: ['input'] }, next: { components: [`L${ind.layer}H${ind.head}`], parents: ['prev', 'input'] } }, output: { parents: ['next'] } };
    const noPrev: Hypothesis = { nodes: { next: { components: [`L${ind.layer}H${ind.head}`], parents: ['input'] } }, output: { parents: ['next'] } };
    const good = await causalScrub(induction, { task: t, hypothesis: truth, inputs, pool: [...inputs, ...pool], seed: 2 });
    expect(good.recovered).toBeGreaterThanOrEqual(0.95);
    const bad = await causalScrub(induction, { task: t, hypothesis: noPrev, inputs, pool: [...inputs, ...pool], seed: 2 });
    expect(bad.recovered).toBeLessThanOrEqual(0.5);
  });

  it('bad hypotheses name the problem', async () => {
    const inputs = ioiExamples(4, 1).map((e) => e.base);
    await expect(causalScrub(ioi, { task, hypothesis: { nodes: { S: { components: ['L0H9'], parents: ['input'] } }, output: { parents: ['S'] } }, inputs })).rejects.toThrow(/head 9 outside \[0, 4\)/);
    await expect(causalScrub(ioi, { task, hypothesis: { nodes: { S: { components: ['L0H1'], parents: ['inptu'] } }, output: { parents: ['S'] } }, inputs })).rejects.toThrow(/unknown parent 'inptu'/);
    await expect(causalScrub(ioi, { task, hypothesis: { nodes: { SS: { components: ['L0H1'], parents: ['input'] } }, output: { parents: ['SS'] } }, inputs })).rejects.toThrow(/unknown variable 'SS'/);
  });
});
