// Attribution patching: exact where the metric is linear in the patched activation; elsewhere
// the directional derivative of the metric along (clean - corrupted), checked against central
// finite differences through runWithHooks `replace`; on the planted IOI and induction models it
// agrees with activation patching over heads and ranks the planted heads first; and a whole sweep
// costs a clean forward plus one corrupted forward+backward, whatever its size.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Tensor } from '../src/engine/tensor.js';
import { expectOneLineError, runLantern, logSoftmaxAt } from './helpers.js';
import { LanternError } from '../src/errors.js';
import { objectives } from '../src/models/hooked.js';
import type { HookedTransformer, Intervention } from '../src/models/hooked.js';
import { loadModel } from '../src/models/load.js';
import { TINY_GPT2, writeRandomModel } from '../src/models/random.js';
import {
  activationPatching, attributionPatching, AttributionResult, effectAt, linearAttribution, pearson, PatchingResult, PatchSlot, Sweep, SWEEP_HOOKS,
} from '../src/methods/patching/index.js';
import { inductionPrompts, ioiPrompts, IOI_NAMES, LETTER_IDS, makePlanted, SPACE } from '../src/models/planted/index.js';

let tmp: string;
let tiny: HookedTransformer;
let ioi: HookedTransformer;
let induction: HookedTransformer;
const loaded: HookedTransformer[] = [];

beforeAll(async () => {
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'lantern-attrpatch-'));
  writeRandomModel(path.join(tmp, 'tiny'), TINY_GPT2, { seed: 5 });
  await makePlanted('ioi', path.join(tmp, 'ioi'), { measure: false });
  await makePlanted('induction', path.join(tmp, 'induction'), { measure: false });
  tiny = await loadModel(path.join(tmp, 'tiny'), { progress: false });
  ioi = await loadModel(path.join(tmp, 'ioi'), { progress: false });
  induction = await loadModel(path.join(tmp, 'induction'), { progress: false });
  loaded.push(tiny, ioi, induction);
});

afterAll(async () => {
  for (const m of loaded) await m.executor.dropWeights(m.weights);
  fs.rmSync(tmp, { recursive: true, force: true });
});

const CLEAN = [17, 402, 9, 999, 250, 3, 77, 640, 12];
const CORRUPT = [17, 402, 91, 999, 250, 300, 77, 640, 12];


async function metricOf(model: HookedTransformer, r: { corruptTokens: number[]; pos: number; metric: string; answer: number; wrong?: number }, interventions: Intervention[]): Promise<number> {
  const { logits } = await model.runWithHooks([r.corruptTokens], { interventions });
  const V = model.cfg.dVocab;
  const row = logits.f32.subarray(r.pos * V, (r.pos + 1) * V);
  return r.metric === 'logit-diff' ? row[r.answer] - row[r.wrong!] : logSoftmaxAt(row, r.answer);
}

describe('attribution patching is the linearisation of activation patching', () => {
  it('exact where the metric is linear in the activation: the logit difference in ln_final.hook_normalized', async () => {
    // logits = normalized · W_U (+ b): the logit difference is affine in ln_final.hook_normalized,
    // so the first-order prediction equals the patched metric (no LayerNorm in between).
    const hook = 'ln_final.hook_normalized';
    const pos = CLEAN.length - 1;
    const lin = await linearAttribution(tiny, CLEAN, CORRUPT, objectives.logitDiff(pos, 5, 17), [hook]);
    const { cache } = await tiny.runWithCache([CLEAN], [hook]);
    const r = { corruptTokens: CORRUPT, pos, metric: 'logit-diff', answer: 5, wrong: 17 };
    const D = tiny.cfg.dModel;
    const prod = lin.products[hook].f32;
    let worst = 0;
    for (let t = 0; t < CLEAN.length; t++) {
      let predicted = 0;
      for (let d = 0; d < D; d++) predicted += prod[t * D + d];
      const patched = await metricOf(tiny, r, [{ hook, op: 'replace', value: cache.get(hook), positions: [t] }]);
      worst = Math.max(worst, Math.abs(lin.corrupt + predicted - patched));
      if (t !== pos) expect(predicted).toBe(0); // other rows do not reach the final logits
    }
    const whole = await metricOf(tiny, r, [{ hook, op: 'replace', value: cache.get(hook) }]);
    expect(Math.abs(whole - lin.clean)).toBeLessThan(1e-5);
    expect(worst).toBeLessThan(1e-5);
    console.log(`linear case: clean ${lin.clean.toFixed(4)}, corrupted ${lin.corrupt.toFixed(4)}, max |corrupt + attribution - patched| ${worst.toExponential(2)}`);
  });

  /**
   * d/dε metric(corrupt + ε (clean - corrupt) at the slot) at ε = 0, by central differences
   * through runWithHooks' replace.
   */
  async function directional(model: HookedTransformer, r: AttributionResult, slot: PatchSlot, eps: number): Promise<number> {
    const hook = SWEEP_HOOKS[r.sweep](slot.layer);
    const a = (await model.runWithCache([r.cleanTokens], [hook])).cache.get(hook);
    const c = (await model.runWithCache([r.corruptTokens], [hook])).cache.get(hook);
    const at = async (e: number) => {
      const v = new Float32Array(c.size);
      for (let i = 0; i < v.length; i++) v[i] = c.f32[i] + e * (a.f32[i] - c.f32[i]);
      return metricOf(model, r, [{
        hook, op: 'replace', value: Tensor.f32(v, c.shape),
        ...(slot.pos !== undefined ? { positions: [slot.pos] } : {}),
        ...(slot.head !== undefined ? { heads: [slot.head] } : {}),
      }]);
    };
    return ((await at(eps)) - (await at(-eps))) / (2 * eps);
  }

  // Random tiny model; the pattern sweep on the planted IOI model, where patterns matter (on the
  // random model their attributions are ~1e-4, too small to test against finite differences).
  const cases: { sweep: Sweep; byPosition?: boolean; metric?: 'logprob'; planted?: boolean }[] = [
    { sweep: 'resid' }, { sweep: 'attn' }, { sweep: 'mlp' }, { sweep: 'heads' }, { sweep: 'heads', byPosition: true },
    { sweep: 'pattern', planted: true }, { sweep: 'pattern', byPosition: true, planted: true }, { sweep: 'resid', metric: 'logprob' },
  ];
  for (const c of cases) {
    it(`${c.sweep}${c.byPosition ? ' by position' : ''}, ${c.metric ?? 'logit-diff'}${c.planted ? ', planted IOI' : ''}: equals the directional derivative (central differences)`, async () => {
      let model = tiny;
      let opts: Parameters<typeof attributionPatching>[1] = {
        clean: CLEAN, corrupt: CORRUPT, answer: 5, wrong: c.metric ? undefined : 17, metric: c.metric, sweep: c.sweep, byPosition: c.byPosition,
      };
      if (c.planted) {
        const [p] = ioiPrompts(1, { seed: 21 });
        const m = p.meta as Record<string, number>;
        model = ioi;
        opts = { clean: p.tokens, corrupt: p.tokens.map((t, i) => (i === m.s2Pos ? m.io : t)), answer: m.io, wrong: m.s, sweep: c.sweep, byPosition: c.byPosition };
      }
      const r = await attributionPatching(model, opts);
      const act = await activationPatching(model, opts);
      // The same slots, layout and baselines as activation patching.
      expect(r.shape).toEqual(act.shape);
      expect(r.slots).toEqual(act.slots);
      expect(Math.abs(r.clean - act.clean)).toBeLessThan(1e-4);
      expect(Math.abs(r.corrupt - act.corrupt)).toBeLessThan(1e-4);
      const eps = 1e-2;
      let worst = 0;
      let scale = 0;
      // Every slot for the small sweeps; a spread of slots for the by-position one.
      const idx = r.slots.map((_, i) => i).filter((i) => r.slots.length <= 40 || i % 5 === 0 || Math.abs(r.attributions[i]) > 1e-3);
      for (const i of idx) {
        const fd = await directional(model, r, r.slots[i], eps);
        worst = Math.max(worst, Math.abs(fd - r.attributions[i]));
        scale = Math.max(scale, Math.abs(r.attributions[i]));
      }
      expect(scale).toBeGreaterThan(1e-3); // something to compare
      expect(worst).toBeLessThan(1e-4 + 1e-2 * scale);
      console.log(`${c.sweep}${c.byPosition ? ' by position' : ''} ${r.metric}: ${idx.length} slots, max |attribution| ${scale.toFixed(4)}, max |attribution - central difference| ${worst.toExponential(2)}; r(attribution, activation) ${pearson(r.effects, act.effects).toFixed(4)}`);
    });
  }

  it('bad input is a LanternError', async () => {
    const base = { clean: CLEAN, corrupt: CORRUPT, answer: 5, wrong: 17, sweep: 'resid' };
    await expect(attributionPatching(tiny, { ...base, corrupt: CORRUPT.slice(1) })).rejects.toThrow(/same number of tokens \(clean 9, corrupted 8\)/);
    await expect(attributionPatching(tiny, { ...base, sweep: 'neurons' })).rejects.toThrow(/unknown sweep 'neurons'/);
    await expect(attributionPatching(tiny, { ...base, wrong: undefined, metric: 'logit-diff' })).rejects.toThrow(/needs a wrong answer/);
    await expect(attributionPatching(tiny, { ...base, corrupt: CLEAN })).rejects.toThrow(LanternError);
    await expect(attributionPatching(tiny, { ...base, pos: 9 })).rejects.toThrow(/outside the prompt/);
  });
});

describe('cost: one clean forward, one corrupted forward + backward', () => {
  it('two ORT runs (one of them the gradient graph) for any sweep, against one per slot for activation patching', async () => {
    const ex = tiny.executor;
    const original = ex.run.bind(ex);
    let runs = 0;
    ex.run = ((...args: Parameters<typeof ex.run>) => { runs++; return original(...args); }) as typeof ex.run;
    const grads = tiny.gradients.bind(tiny);
    let backwards = 0;
    tiny.gradients = ((...args: Parameters<typeof tiny.gradients>) => { backwards++; return grads(...args); }) as typeof tiny.gradients;
    try {
      for (const sweep of ['resid', 'heads', 'pattern'] as Sweep[]) {
        for (const byPosition of [false, true]) {
          runs = 0;
          backwards = 0;
          const r = await attributionPatching(tiny, { clean: CLEAN, corrupt: CORRUPT, answer: 5, wrong: 17, sweep, byPosition });
          // clean forward with cache (1 run) + corrupted forward with cache and backward (1 run):
          // 3 passes in 2 runs, one of them a backward, whatever the number of slots.
          expect(runs, `${sweep} (${r.slots.length} slots)`).toBe(2);
          expect(backwards).toBe(1);
        }
      }
    } finally {
      ex.run = original;
      tiny.gradients = grads;
    }
  });
});

// ---- planted models

const headLabel = (l: number, h: number) => `L${l}H${h}`;

function ranked(r: PatchingResult | AttributionResult): string[] {
  const [L, H] = r.shape;
  const cells: [string, number][] = [];
  for (let l = 0; l < L; l++) for (let h = 0; h < H; h++) cells.push([headLabel(l, h), effectAt(r, l, h)]);
  return cells.sort((x, y) => y[1] - x[1]).map(([k]) => k);
}

/** Both methods over heads: Pearson r >= 0.9 and the planted heads are attribution's top ranks. */
async function compare(model: HookedTransformer, opts: Parameters<typeof attributionPatching>[1], planted: string[], what: string): Promise<{ r: number; attr: AttributionResult; act: PatchingResult }> {
  const attr = await attributionPatching(model, opts);
  const act = await activationPatching(model, opts);
  const r = pearson(attr.effects, act.effects);
  expect(r, what).toBeGreaterThanOrEqual(0.9);
  expect(new Set(ranked(attr).slice(0, planted.length)), what).toEqual(new Set(planted));
  return { r, attr, act };
}

describe('planted models: attribution agrees with activation patching over heads', () => {
  it('IOI, IO swapped for a third name: r >= 0.9, the name mover L1H2 first', async () => {
    const rs: number[] = [];
    for (const p of ioiPrompts(6, { seed: 21 })) {
      const m = p.meta as Record<string, number>;
      const third = IOI_NAMES.find((n) => n.id !== m.io && n.id !== m.s)!.id;
      const corrupt = p.tokens.map((t, i) => (i === m.ioPos ? third : t));
      const { r, attr } = await compare(ioi, { clean: p.tokens, corrupt, answer: m.io, wrong: m.s, sweep: 'heads' }, ['L1H2'], p.text);
      expect(effectAt(attr, 1, 2)).toBeGreaterThan(0.9);
      rs.push(r);
    }
    console.log(`IOI IO swap, heads, attribution vs activation: r ${rs.map((r) => r.toFixed(4)).join(', ')}`);
  });

  it('IOI, S2 -> IO flip: the known failure of the linearisation, a saturated attention softmax hides the S-inhibition head', async () => {
    // The S-inhibition head L0H1 acts only through the name mover's attention (its keys), and the
    // name mover's softmax is saturated in the corrupted run: the derivative there is ~0 although
    // the full patch moves the metric all the way (activation patching 1.0). Attribution still
    // finds the name mover; the value it gives L0H1 is the true derivative (finite differences).
    const rs: number[] = [];
    for (const p of ioiPrompts(6, { seed: 21 })) {
      const m = p.meta as Record<string, number>;
      const corrupt = p.tokens.slice();
      corrupt[m.s2Pos] = m.io;
      const opts = { clean: p.tokens, corrupt, answer: m.io, wrong: m.s, sweep: 'heads' };
      const attr = await attributionPatching(ioi, opts);
      const act = await activationPatching(ioi, opts);
      expect(ranked(attr)[0]).toBe('L1H2');
      expect(effectAt(attr, 1, 2)).toBeGreaterThan(0.9);
      expect(effectAt(act, 0, 1)).toBeGreaterThan(0.99);
      expect(Math.abs(effectAt(attr, 0, 1))).toBeLessThan(0.1);
      rs.push(pearson(attr.effects, act.effects));
      if (rs.length === 1) {
        const slot = attr.slots.findIndex((s) => s.layer === 0 && s.head === 1);
        const hook = SWEEP_HOOKS.heads(0);
        const a = (await ioi.runWithCache([p.tokens], [hook])).cache.get(hook);
        const c = (await ioi.runWithCache([corrupt], [hook])).cache.get(hook);
        const at = async (e: number) => {
          const v = c.f32.map((x, i) => x + e * (a.f32[i] - x));
          return metricOf(ioi, attr, [{ hook, op: 'replace', value: Tensor.f32(v, c.shape), heads: [1] }]);
        };
        const fd = ((await at(1e-2)) - (await at(-1e-2))) / 2e-2;
        expect(Math.abs(fd - attr.attributions[slot])).toBeLessThan(1e-2 * Math.abs(attr.clean - attr.corrupt));
      }
    }
    console.log(`IOI S2 flip, heads, attribution vs activation: r ${rs.map((r) => r.toFixed(4)).join(', ')} (L0H1 missed: saturated attention)`);
  });

  it('induction, corrupted first-half token: r >= 0.9, the previous-token head L0H2 and the induction head L1H1 first', async () => {
    const rs: number[] = [];
    const lines: string[] = [];
    for (const [n, p] of inductionPrompts(4, { half: 12, seed: 33 }).entries()) {
      const half = p.tokens.length / 2;
      const j = 3 + n;
      const unused = LETTER_IDS.find((id) => !p.tokens.includes(id))!;
      const corrupt = p.tokens.map((t, i) => (i === j - 1 ? unused : t));
      const pos = half + j - 1;
      const { r, attr, act } = await compare(induction, { clean: p.tokens, corrupt, answer: p.tokens[j], wrong: SPACE, sweep: 'heads', pos }, ['L1H1', 'L0H2'], p.text);
      rs.push(r);
      lines.push(`r ${r.toFixed(4)}: L1H1 attr ${effectAt(attr, 1, 1).toFixed(3)} act ${effectAt(act, 1, 1).toFixed(3)}, L0H2 attr ${effectAt(attr, 0, 2).toFixed(3)} act ${effectAt(act, 0, 2).toFixed(3)}`);
    }
    console.log(`induction heads, attribution vs activation: min r ${Math.min(...rs).toFixed(4)}\n  ${lines.join('\n  ')}`);
  });
});

describe('lantern patch --method', () => {
  const clean = 'When Mary and John went to the store, John gave a drink to';
  const corrupt = 'When Mary and John went to the store, Mary gave a drink to';
  const base = () => ['patch', '--model', path.join(tmp, 'ioi'), '--clean', clean, '--corrupt', corrupt, '--answer', ' Mary', '--wrong', ' John', '--sweep', 'heads'];

  it('both: prints both grids and their Pearson r; the JSON holds both results, equal to the library', async () => {
    const json = path.join(tmp, 'both.json');
    const r = await runLantern([...base(), '--method', 'both', '--json', json], tmp);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/activation patching:[\s\S]*attribution patching:[\s\S]*Pearson r \(activation vs attribution\): 0\.63\d\d/);
    expect(r.stdout).toMatch(/^L1\s+-?\+?0\.00\s+\+0\.00\s+\+0\.96\s+\+0\.00$/m);
    const saved = JSON.parse(fs.readFileSync(json, 'utf8'));
    const lib = await attributionPatching(ioi, { clean, corrupt, answer: ' Mary', wrong: ' John', sweep: 'heads' });
    expect(saved.method).toBe('both');
    expect(saved.attribution.effects).toEqual(lib.effects);
    expect(saved.activation.method).toBe('activation-patching');
    expect(saved.pearson).toBeCloseTo(0.6306, 3);
  });

  it('attribution alone: JSON method attribution-patching; a bad method is one error line', async () => {
    const r = await runLantern([...base(), '--method', 'attribution', '--json'], tmp);
    expect(r.code, r.stderr).toBe(0);
    const out = JSON.parse(r.stdout);
    expect(out.method).toBe('attribution-patching');
    expect(out.shape).toEqual([2, 4]);
    expectOneLineError(await runLantern([...base(), '--method', 'exact'], tmp), /^lantern: error: --method must be one of activation, attribution, both, got 'exact'$/);
  });
});
