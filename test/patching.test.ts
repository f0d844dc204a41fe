// Activation patching. Batched sweeps (many patched copies of the corrupted prompt per ORT call,
// each with its own mask) are checked against one-at-a-time patching through the public
// runWithHooks `replace` intervention, for every sweep; then on the planted IOI and induction
// models, head patching must find exactly the planted heads.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runLantern, expectOneLineError, logSoftmaxAt } from './helpers.js';
import { LanternError } from '../src/errors.js';
import type { HookedTransformer, Intervention } from '../src/models/hooked.js';
import { loadModel } from '../src/models/load.js';
import { TINY_GPT2, writeRandomModel } from '../src/models/random.js';
import { activationPatching, effectAt, PatchingResult, PatchSlot, Sweep, SWEEP_HOOKS } from '../src/methods/patching/index.js';
import { inductionPrompts, ioiPrompts, IOI_NAMES, LETTER_IDS, makePlanted, SPACE } from '../src/models/planted/index.js';


let tmp: string;
let tinyFolder: string;
let ioiFolder: string;
let tiny: HookedTransformer;
let ioi: HookedTransformer;
let induction: HookedTransformer;
const loaded: HookedTransformer[] = [];

beforeAll(async () => {
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'lantern-patching-'));
  tinyFolder = path.join(tmp, 'tiny');
  writeRandomModel(tinyFolder, TINY_GPT2, { seed: 5 });
  ioiFolder = path.join(tmp, 'ioi');
  await makePlanted('ioi', ioiFolder, { measure: false });
  await makePlanted('induction', path.join(tmp, 'induction'), { measure: false });
  tiny = await loadModel(tinyFolder, { progress: false });
  ioi = await loadModel(ioiFolder, { progress: false });
  induction = await loadModel(path.join(tmp, 'induction'), { progress: false });
  loaded.push(tiny, ioi, induction);
});

afterAll(async () => {
  for (const m of loaded) await m.executor.dropWeights(m.weights);
  fs.rmSync(tmp, { recursive: true, force: true });
});


/** One patched run through runWithHooks' `replace` intervention, measured here. */
async function patchOne(model: HookedTransformer, r: PatchingResult, slot: PatchSlot | null): Promise<number> {
  const interventions: Intervention[] = [];
  if (slot) {
    const hook = SWEEP_HOOKS[r.sweep](slot.layer);
    const { cache } = await model.runWithCache([r.cleanTokens], [hook]);
    interventions.push({
      hook, op: 'replace', value: cache.get(hook),
      ...(slot.pos !== undefined ? { positions: [slot.pos] } : {}),
      ...(slot.head !== undefined ? { heads: [slot.head] } : {}),
    });
  }
  const { logits } = await model.runWithHooks([slot ? r.corruptTokens : r.cleanTokens], { interventions });
  const V = model.cfg.dVocab;
  const row = logits.f32.subarray(r.pos * V, (r.pos + 1) * V);
  return r.metric === 'logit-diff' ? row[r.answer] - row[r.wrong!] : logSoftmaxAt(row, r.answer);
}

const CLEAN = [17, 402, 9, 999, 250, 3, 77, 640, 12];
const CORRUPT = [17, 402, 91, 999, 250, 300, 77, 640, 12];

describe('batched sweeps equal one-at-a-time patching', () => {
  const cases: { sweep: Sweep; byPosition?: boolean; metric?: 'logprob' }[] = [
    { sweep: 'resid' }, { sweep: 'attn' }, { sweep: 'mlp' }, { sweep: 'heads' }, { sweep: 'heads', byPosition: true },
    { sweep: 'pattern' }, { sweep: 'pattern', byPosition: true }, { sweep: 'resid', metric: 'logprob' },
  ];
  for (const c of cases) {
    it(`${c.sweep}${c.byPosition ? ' by position' : ''}, ${c.metric ?? 'logit-diff'}`, async () => {
      const r = await activationPatching(tiny, {
        clean: CLEAN, corrupt: CORRUPT, answer: 5, wrong: c.metric ? undefined : 17, metric: c.metric, sweep: c.sweep, byPosition: c.byPosition, batchSize: 7,
      });
      const { nLayers: L, nHeads: H } = tiny.cfg;
      const T = CLEAN.length;
      expect(r.shape).toEqual(c.sweep === 'resid' || c.sweep === 'attn' || c.sweep === 'mlp' ? [L, T] : c.byPosition ? [L, H, T] : [L, H]);
      expect(r.effects).toHaveLength(r.shape.reduce((p, q) => p * q, 1));
      expect(Math.abs(r.clean - (await patchOne(tiny, r, null)))).toBeLessThan(1e-5);
      const denom = r.clean - r.corrupt;
      let worstValue = 0;
      let worstEffect = 0;
      for (let i = 0; i < r.slots.length; i++) {
        const single = await patchOne(tiny, r, r.slots[i]);
        worstValue = Math.max(worstValue, Math.abs(single - r.values[i]));
        worstEffect = Math.max(worstEffect, Math.abs((single - r.corrupt) / denom - r.effects[i]));
      }
      // Raw metric within 1e-5; the normalised effect divides that by |clean - corrupted|, which
      // is small on a random model for some metrics.
      expect(worstValue).toBeLessThan(1e-5);
      expect(worstEffect).toBeLessThan(1e-5 / Math.min(1, Math.abs(denom)));
      console.log(`${c.sweep}${c.byPosition ? ' by position' : ''} ${r.metric}: ${r.slots.length} patches, clean - corrupted ${denom.toFixed(4)}, max |batched - single| metric ${worstValue.toExponential(2)}, effect ${worstEffect.toExponential(2)}`);
    });
  }

  it('the batch size changes nothing; causality and unchanged tokens give 0 (to float rounding across batch shapes)', async () => {
    const opts = { clean: CLEAN, corrupt: CORRUPT, answer: 5, wrong: 17, sweep: 'resid', pos: 6 };
    const a = await activationPatching(tiny, { ...opts, batchSize: 1 });
    const b = await activationPatching(tiny, { ...opts, batchSize: 1000 });
    a.values.forEach((v, i) => expect(Math.abs(v - b.values[i])).toBeLessThan(1e-6));
    for (let l = 0; l < tiny.cfg.nLayers; l++) for (let p = 7; p < CLEAN.length; p++) expect(Math.abs(effectAt(a, l, p))).toBeLessThan(1e-5); // after the measured position
    for (let p = 0; p < CLEAN.length; p++) if (CLEAN[p] === CORRUPT[p]) expect(Math.abs(effectAt(a, 0, p))).toBeLessThan(1e-5); // identical activations
  });

  it('bad input is a LanternError', async () => {
    const base = { clean: CLEAN, corrupt: CORRUPT, answer: 5, wrong: 17, sweep: 'resid' };
    await expect(activationPatching(tiny, { ...base, corrupt: CORRUPT.slice(1) })).rejects.toThrow(/same number of tokens \(clean 9, corrupted 8\)/);
    await expect(activationPatching(tiny, { ...base, answer: ' Lantern patching' })).rejects.toThrow(/not a single token/);
    await expect(activationPatching(tiny, { ...base, sweep: 'neurons' })).rejects.toThrow(/unknown sweep 'neurons'/);
    await expect(activationPatching(tiny, { ...base, wrong: undefined, metric: 'logit-diff' })).rejects.toThrow(/needs a wrong answer/);
    await expect(activationPatching(tiny, { ...base, corrupt: CLEAN })).rejects.toThrow(LanternError);
    await expect(activationPatching(tiny, { ...base, pos: 9 })).rejects.toThrow(/outside the prompt/);
  });
});

// ---- planted models: head patching finds the planted heads

const headLabel = (l: number, h: number) => `L${l}H${h}`;

function headEffects(r: PatchingResult): Map<string, number> {
  const m = new Map<string, number>();
  const [L, H] = r.shape;
  for (let l = 0; l < L; l++) for (let h = 0; h < H; h++) m.set(headLabel(l, h), effectAt(r, l, h));
  return m;
}

/** Every planted head above 0.8 and the largest; every other head below 0.1 in absolute value. */
function expectFinds(effects: Map<string, number>, planted: string[], what: string): void {
  const others = [...effects].filter(([k]) => !planted.includes(k));
  for (const p of planted) {
    expect(effects.get(p)!, `${what}: ${p}`).toBeGreaterThan(0.8);
    for (const [k, v] of others) expect(v, `${what}: ${k} vs ${p}`).toBeLessThan(effects.get(p)!);
  }
  for (const [k, v] of others) expect(Math.abs(v), `${what}: ${k}`).toBeLessThan(0.1);
}

describe('planted IOI: head patching finds the planted heads', () => {
  const prompts = ioiPrompts(6, { seed: 21 });

  it('S2 -> IO flip ("..., Mary gave a drink to"): the name mover L1H2 and the S-inhibition head L0H1, nothing else', async () => {
    const worst = { planted: Infinity, other: 0 };
    for (const p of prompts) {
      const m = p.meta as Record<string, number>;
      const corrupt = p.tokens.slice();
      corrupt[m.s2Pos] = m.io;
      const r = await activationPatching(ioi, { clean: p.tokens, corrupt, answer: m.io, wrong: m.s, sweep: 'heads' });
      const e = headEffects(r);
      expectFinds(e, ['L1H2', 'L0H1'], p.text);
      worst.planted = Math.min(worst.planted, e.get('L1H2')!, e.get('L0H1')!);
      worst.other = Math.max(worst.other, ...[...e].filter(([k]) => k !== 'L1H2' && k !== 'L0H1').map(([, v]) => Math.abs(v)));
    }
    console.log(`IOI S2 flip, heads: planted min ${worst.planted.toFixed(6)}, others max |effect| ${worst.other.toExponential(2)}`);
  });

  it('by position: only the two planted heads at the final position', async () => {
    const p = prompts[0];
    const m = p.meta as Record<string, number>;
    const corrupt = p.tokens.slice();
    corrupt[m.s2Pos] = m.io;
    const r = await activationPatching(ioi, { clean: p.tokens, corrupt, answer: m.io, wrong: m.s, sweep: 'heads', byPosition: true, batchSize: 16 });
    const e = new Map<string, number>();
    const [L, H, T] = r.shape;
    for (let l = 0; l < L; l++) for (let h = 0; h < H; h++) for (let t = 0; t < T; t++) e.set(`${headLabel(l, h)}@${t}`, effectAt(r, l, h, t));
    expectFinds(e, [`L1H2@${m.end}`, `L0H1@${m.end}`], p.text);
    // Batched equals one-at-a-time here too, where the metric moves by ~20 logits.
    let worst = 0;
    for (let i = 0; i < r.slots.length; i++) worst = Math.max(worst, Math.abs((await patchOne(ioi, r, r.slots[i])) - r.values[i]));
    expect(worst).toBeLessThan(1e-5);
    console.log(`IOI heads by position: ${r.slots.length} patches, clean - corrupted ${(r.clean - r.corrupt).toFixed(4)}, max |batched - single| ${worst.toExponential(2)}`);
  });

  it('IO swapped for a third name: only the name mover L1H2 (the S-inhibition head carries S, which did not change)', async () => {
    let nm = Infinity;
    let other = 0;
    for (const p of prompts) {
      const m = p.meta as Record<string, number>;
      const third = IOI_NAMES.find((n) => n.id !== m.io && n.id !== m.s)!.id;
      const corrupt = p.tokens.map((t, i) => (i === m.ioPos ? third : t));
      const r = await activationPatching(ioi, { clean: p.tokens, corrupt, answer: m.io, wrong: m.s, sweep: 'heads' });
      const e = headEffects(r);
      expectFinds(e, ['L1H2'], p.text);
      nm = Math.min(nm, e.get('L1H2')!);
      other = Math.max(other, ...[...e].filter(([k]) => k !== 'L1H2').map(([, v]) => Math.abs(v)));
    }
    console.log(`IOI IO swap, heads: name mover min ${nm.toFixed(6)}, others max |effect| ${other.toExponential(2)}`);
  });

  it('resid sweep: S2 at layer 0 and the final position at layer 1 carry the whole effect', async () => {
    const p = prompts[1];
    const m = p.meta as Record<string, number>;
    const corrupt = p.tokens.slice();
    corrupt[m.s2Pos] = m.io;
    const r = await activationPatching(ioi, { clean: p.tokens, corrupt, answer: m.io, wrong: m.s, sweep: 'resid' });
    expect(effectAt(r, 0, m.s2Pos)).toBeGreaterThan(0.99);
    expect(effectAt(r, 1, m.end)).toBeGreaterThan(0.99);
    for (let t = 0; t < p.tokens.length; t++) if (t !== m.s2Pos) expect(effectAt(r, 0, t)).toBe(0);
  });
});

describe('planted induction: head patching finds the planted heads', () => {
  it('a corrupted first-half token breaks the match: the previous-token head L0H2 and the induction head L1H1, nothing else', async () => {
    const prompts = inductionPrompts(4, { half: 12, seed: 33 });
    let planted = Infinity;
    let other = 0;
    for (const [n, p] of prompts.entries()) {
      const half = p.tokens.length / 2;
      const j = 3 + n; // the token the induction head should copy; its predecessor j-1 is corrupted
      const unused = LETTER_IDS.find((id) => !p.tokens.includes(id))!;
      const corrupt = p.tokens.map((t, i) => (i === j - 1 ? unused : t));
      const pos = half + j - 1; // the query whose token is s_{j-1}: predicts s_j
      const r = await activationPatching(induction, { clean: p.tokens, corrupt, answer: p.tokens[j], wrong: SPACE, sweep: 'heads', pos });
      const e = headEffects(r);
      expectFinds(e, ['L1H1', 'L0H2'], p.text);
      planted = Math.min(planted, e.get('L1H1')!, e.get('L0H2')!);
      other = Math.max(other, ...[...e].filter(([k]) => k !== 'L1H1' && k !== 'L0H2').map(([, v]) => Math.abs(v)));
      // The log-prob metric finds the same heads.
      const lp = await activationPatching(induction, { clean: p.tokens, corrupt, answer: p.tokens[j], metric: 'logprob', sweep: 'heads', pos });
      expectFinds(headEffects(lp), ['L1H1', 'L0H2'], `${p.text} (logprob)`);
    }
    console.log(`induction, heads: planted min ${planted.toFixed(6)}, others max |effect| ${other.toExponential(2)}`);
  });

  it('a whole new first half: the induction head restores the answer; measured for the previous-token head too', async () => {
    const [p] = inductionPrompts(1, { half: 12, seed: 34 });
    const half = p.tokens.length / 2;
    const unused = LETTER_IDS.filter((id) => !p.tokens.includes(id));
    const corrupt = p.tokens.map((t, i) => (i < half ? unused[i] : t));
    const pos = half + 4;
    const r = await activationPatching(induction, { clean: p.tokens, corrupt, answer: p.tokens[pos + 1], wrong: SPACE, sweep: 'heads', pos });
    const e = headEffects(r);
    console.log(`induction, new first half: ${[...e].map(([k, v]) => `${k} ${v.toFixed(4)}`).join(', ')}`);
    expect(e.get('L1H1')!).toBeGreaterThan(0.8);
    for (const [k, v] of e) if (k !== 'L1H1') expect(v).toBeLessThan(e.get('L1H1')!);
  });
});

// ---- CLI


const lantern = (...args: string[]) => runLantern(args, tmp);


describe('lantern patch', () => {
  const clean = 'When Mary and John went to the store, John gave a drink to';
  const corrupt = 'When Mary and John went to the store, Mary gave a drink to';

  it('prints a layer x head heatmap and saves JSON (model, method, settings) and HTML equal to the library result', async () => {
    const json = path.join(tmp, 'patch.json');
    const html = path.join(tmp, 'patch.html');
    const r = await lantern('patch', '--model', ioiFolder, '--clean', clean, '--corrupt', corrupt, '--answer', ' Mary', '--wrong', ' John', '--sweep', 'heads', '--json', json, '--html', html);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/^L0\s+\+0\.00\s+\+1\.00\s+\+0\.00\s+\+0\.00$/m);
    expect(r.stdout).toMatch(/^L1\s+\+0\.00\s+\+0\.00\s+\+1\.00\s+\+0\.00$/m);
    const saved = JSON.parse(fs.readFileSync(json, 'utf8'));
    expect(saved.model).toBe(ioiFolder);
    expect(saved.method).toBe('activation-patching');
    expect(saved.settings).toEqual({ clean, corrupt, answer: ' Mary', wrong: ' John', metric: 'logit-diff', sweep: 'heads', byPosition: false, pos: 13, batchSize: 64 });
    const lib = await activationPatching(ioi, { clean, corrupt, answer: ' Mary', wrong: ' John', sweep: 'heads' });
    expect(saved.effects).toEqual(lib.effects);
    expect(saved.axes).toEqual(['layer', 'head']);
    expect(fs.readFileSync(html, 'utf8')).toMatch(/<table>[\s\S]*L1H?/);
  });

  it('--json without a file prints JSON; the resid sweep is layer x position', async () => {
    const r = await lantern('patch', '--model', ioiFolder, '--clean', clean, '--corrupt', corrupt, '--answer', ' Mary', '--wrong', ' John', '--sweep', 'resid', '--json');
    expect(r.code, r.stderr).toBe(0);
    const out = JSON.parse(r.stdout);
    expect(out.shape).toEqual([2, 14]);
    expect(out.corruptTokenStrings[9]).toBe(' Mary');
  });

  it('bad input is one `lantern: error:` line', async () => {
    const base = ['patch', '--model', ioiFolder, '--clean', clean, '--answer', ' Mary', '--wrong', ' John'];
    expectOneLineError(await lantern(...base, '--corrupt', 'When Mary and John went to the store, Mary gave a drink'), /same number of tokens \(clean 14, corrupted 13\)/);
    expectOneLineError(await lantern('patch', '--model', ioiFolder, '--clean', clean, '--corrupt', corrupt, '--answer', ' Mary Ann', '--wrong', ' John'), /answer " Mary Ann" is 2 tokens/);
    expectOneLineError(await lantern(...base, '--corrupt', corrupt, '--sweep', 'neurons'), /--sweep must be one of resid, attn, mlp, heads, pattern, got 'neurons'/);
  });
});
