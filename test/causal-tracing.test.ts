// Causal tracing. The batched trace is checked against an independent computation through the
// public runWithHooks API (noise added at hook_embed, clean states put back with `replace`), then
// against what the planted IOI model's construction implies when the indirect object is noised:
// only the IO position's early residual stream and the name mover's output at END carry it.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { HookedTransformer, Intervention } from '../src/models/hooked.js';
import { loadModel } from '../src/models/load.js';
import { TINY_GPT2, randomWeights, writeRandomModel } from '../src/models/random.js';
import { ioiPrompts, makePlanted } from '../src/models/planted/index.js';
import { causalTrace, traceNoise, traceWindow, TRACE_HOOKS } from '../src/methods/patching/causal-tracing.js';
import { Tensor } from '../src/engine/tensor.js';
import { expectOneLineError, runLantern } from './helpers.js';

let tmp: string;
let tiny: HookedTransformer;
let ioi: HookedTransformer;

beforeAll(async () => {
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'lantern-trace-'));
  writeRandomModel(path.join(tmp, 'tiny'), TINY_GPT2, { seed: 11 });
  await makePlanted('ioi', path.join(tmp, 'ioi'), { measure: false });
  tiny = await loadModel(path.join(tmp, 'tiny'), { progress: false });
  ioi = await loadModel(path.join(tmp, 'ioi'), { progress: false });
  const logits = await tiny.run([PROMPT]);
  const V = tiny.cfg.dVocab;
  const row = logits.f32.subarray((PROMPT.length - 1) * V);
  ANSWER = row.indexOf(Math.max(...row));
});

afterAll(async () => {
  for (const m of [tiny, ioi]) await m.executor.dropWeights(m.weights);
  fs.rmSync(tmp, { recursive: true, force: true });
});

const PROMPT = [17, 402, 9, 999, 250, 3, 77, 640];
/** The clean prediction at the last position (set below), so probabilities are not vanishingly small. */
let ANSWER = 0;

function softmaxAt(row: Float32Array, t: number): number {
  let max = -Infinity;
  for (const x of row) max = Math.max(max, x);
  let z = 0;
  for (const x of row) z += Math.exp(x - max);
  return Math.exp(row[t] - max) / z;
}

describe('causal tracing', () => {
  it('equals noised runs with states restored through runWithHooks', async () => {
    const samples = 3;
    const r = await causalTrace(tiny, { prompt: PROMPT, answer: ANSWER, subject: [1, 2], samples, seed: 9, window: 3, batchSize: 5 });
    const seq = PROMPT.length;
    const D = tiny.cfg.dModel;
    const V = tiny.cfg.dVocab;
    const noise = traceNoise(seq, D, [1, 2], r.settings.noiseStd, samples, 9);
    const { cache } = await tiny.runWithCache([PROMPT]);
    const probOf = async (interventions: Intervention[]) => {
      const { logits } = await tiny.runWithHooks([PROMPT], { interventions });
      return softmaxAt(logits.f32.subarray((seq - 1) * V, seq * V), ANSWER);
    };
    const noised = async (restore: { hook: string; pos: number }[]) => {
      let sum = 0;
      for (let s = 0; s < samples; s++) {
        const add: Intervention = { hook: 'hook_embed', op: 'add', value: Tensor.f32(noise.f32.slice(s * seq * D, (s + 1) * seq * D), [1, seq, D]) };
        sum += await probOf([add, ...restore.map(({ hook, pos }) => ({ hook, op: 'replace' as const, value: cache.get(hook), positions: [pos] }))]);
      }
      return sum / samples;
    };
    expect(Math.abs(r.clean - (await probOf([])))).toBeLessThan(1e-6);
    const corrupt = await noised([]);
    expect(Math.abs(r.corrupt - corrupt)).toBeLessThan(1e-6);
    const L = tiny.cfg.nLayers;
    let worst = 0;
    for (const kind of ['resid', 'mlp', 'attn'] as const) {
      for (const [layer, pos] of [[0, 1], [1, 2], [L - 1, 5], [Math.floor(L / 2), seq - 1]]) {
        const layers = kind === 'resid' ? [layer] : traceWindow(layer, 3, L);
        const expected = (await noised(layers.map((l) => ({ hook: TRACE_HOOKS[kind](l), pos })))) - corrupt;
        worst = Math.max(worst, Math.abs(r.effects[kind]!.indirect[layer][pos] - expected));
      }
    }
    expect(worst).toBeLessThan(1e-5 * Math.max(1e-3, r.clean - r.corrupt));
    console.log(`causal tracing vs runWithHooks: 12 states, max |difference| ${worst.toExponential(2)} (p clean ${r.clean.toFixed(4)}, noised ${r.corrupt.toFixed(4)})`);
  });

  it('noise: seeded, zero outside the subject, 3x the embedding std by default', async () => {
    const n = traceNoise(6, 32, [2, 4], 0.5, 4, 1);
    expect(n.f32).toEqual(traceNoise(6, 32, [2, 4], 0.5, 4, 1).f32);
    let s2 = 0;
    let count = 0;
    for (let s = 0; s < 4; s++) for (let p = 0; p < 6; p++) for (let d = 0; d < 32; d++) {
      const x = n.f32[(s * 6 + p) * 32 + d];
      if (p === 2 || p === 4) { s2 += x * x; count++; } else expect(x).toBe(0);
    }
    expect(Math.sqrt(s2 / count)).toBeGreaterThan(0.4);
    expect(Math.sqrt(s2 / count)).toBeLessThan(0.6);
    // The embedding std, computed here from the weights the model folder was written from.
    const we = randomWeights(TINY_GPT2, 11)['embed.W_E'];
    const mean = we.reduce((a, b) => a + b, 0) / we.length;
    const std = Math.sqrt(we.reduce((a, b) => a + (b - mean) ** 2, 0) / we.length);
    const r = await causalTrace(tiny, { prompt: PROMPT, answer: ANSWER, subject: [1], samples: 1, kinds: ['resid'] });
    expect(r.settings.noiseStd / (3 * std)).toBeCloseTo(1, 5);
  });

  it('exact identities: nothing before the subject matters, the last layer matters only at the last position', async () => {
    const r = await causalTrace(tiny, { prompt: PROMPT, answer: ANSWER, subject: [3, 4], samples: 2 });
    const L = tiny.cfg.nLayers;
    const seq = PROMPT.length;
    for (const kind of ['resid', 'mlp', 'attn'] as const) {
      for (let l = 0; l < L; l++) for (let p = 0; p < 3; p++) expect(Math.abs(r.effects[kind]!.indirect[l][p])).toBeLessThan(1e-6);
    }
    for (let p = 0; p < seq - 1; p++) expect(Math.abs(r.effects.resid!.indirect[L - 1][p])).toBeLessThan(1e-6);
    expect(r.effects.resid!.normalised[L - 1][seq - 1]).toBeCloseTo(1, 4);
  });

  it('planted IOI, indirect object noised: its layer-0 residual and the name mover output at END restore it, nothing else', async () => {
    for (const p of ioiPrompts(3, { seed: 5 })) {
      const m = p.meta as Record<string, number>;
      const r = await causalTrace(ioi, { prompt: p.tokens, answer: m.io, subject: [m.ioPos], samples: 4 });
      expect(r.clean).toBeGreaterThan(0.7);
      expect(r.corrupt).toBeLessThan(0.3 * r.clean);
      const e = r.effects;
      expect(e.resid!.normalised[0][m.ioPos]).toBeGreaterThan(0.95);
      expect(e.resid!.normalised[1][m.end]).toBeCloseTo(1, 4);
      expect(e.attn!.normalised[1][m.end]).toBeGreaterThan(0.95); // the name mover (L1H2) writes at END
      for (let l = 0; l < 2; l++) for (let q = 0; q <= m.end; q++) {
        expect(Math.abs(e.mlp!.normalised[l][q])).toBeLessThan(1e-5); // the MLPs are zero
        if (!(l === 0 && q === m.ioPos) && !(l === 1 && q === m.end)) expect(Math.abs(e.resid!.normalised[l][q])).toBeLessThan(0.05);
        if (!(l === 1 && q === m.end)) expect(Math.abs(e.attn!.normalised[l][q])).toBeLessThan(0.05);
      }
    }
  });

  it('bad input names the problem', async () => {
    await expect(causalTrace(tiny, { prompt: PROMPT, answer: ANSWER, subject: [8] })).rejects.toThrow(/subject position 8 outside the prompt \(length 8\)/);
    await expect(causalTrace(tiny, { prompt: PROMPT, answer: ANSWER, subject: 'Paris' })).rejects.toThrow(/subject as token positions/);
    await expect(causalTrace(tiny, { prompt: PROMPT, answer: ANSWER, subject: [1], kinds: ['heads' as 'resid'] })).rejects.toThrow(/unknown state kind 'heads'/);
    await expect(causalTrace(tiny, { prompt: PROMPT, answer: ANSWER, subject: [1], samples: 0 })).rejects.toThrow(/samples must be a positive integer/);
  });

  it('lantern trace: JSON with model, settings and seed; the subject found in the text; one-line errors', async () => {
    const model = path.join(tmp, 'ioi');
    const r = await runLantern(['trace', '--model', model, '--text', 'When John and Mary went to the store, Mary gave a drink to', '--subject', ' John', '--answer', ' John', '--samples', '2', '--kinds', 'resid,attn', '--json'], tmp);
    expect(r.code, r.stderr).toBe(0);
    const j = JSON.parse(r.stdout);
    expect(j.model).toBe(model);
    expect(j.method).toBe('causal-tracing');
    expect(j.subjectPositions).toEqual([1]);
    expect(j.settings).toMatchObject({ noise: 3, samples: 2, seed: 1, kinds: ['resid', 'attn'], window: 1 });
    expect(Object.keys(j.effects)).toEqual(['resid', 'attn']);
    expect(j.effects.resid.normalised[0][1]).toBeGreaterThan(0.95); // the IO position's early residual, as above
    expectOneLineError(await runLantern(['trace', '--model', model, '--text', 'When John and Mary went', '--subject', 'Paul', '--answer', ' John'], tmp), /subject "Paul" does not occur in the prompt/);
  });
});
