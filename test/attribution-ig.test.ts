// Integrated attribution patching (gradients averaged along interpolated embeddings) on the
// planted IOI model's S2 -> IO flip, where plain attribution patching misses the S-inhibition
// head (saturated name-mover softmax; r 0.63 in attribution-patching.test.ts). Activation patching
// is the reference.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { HookedTransformer } from '../src/models/hooked.js';
import { loadModel } from '../src/models/load.js';
import { ioiPrompts, makePlanted } from '../src/models/planted/index.js';
import { activationPatching, attributionPatching, effectAt, pearson } from '../src/methods/patching/index.js';

let tmp: string;
let ioi: HookedTransformer;

beforeAll(async () => {
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'lantern-attr-ig-'));
  await makePlanted('ioi', path.join(tmp, 'ioi'), { measure: false });
  ioi = await loadModel(path.join(tmp, 'ioi'), { progress: false });
});

afterAll(async () => {
  await ioi.executor.dropWeights(ioi.weights);
  fs.rmSync(tmp, { recursive: true, force: true });
});

describe('integrated attribution patching', () => {
  it('IOI S2 -> IO flip: r >= 0.99 with activation patching at 10 steps, and the S-inhibition head found', async () => {
    const rs: number[] = [];
    for (const p of ioiPrompts(3, { seed: 21 })) {
      const m = p.meta as Record<string, number>;
      const corrupt = p.tokens.slice();
      corrupt[m.s2Pos] = m.io;
      const opts = { clean: p.tokens, corrupt, answer: m.io, wrong: m.s, sweep: 'heads' };
      const act = await activationPatching(ioi, opts);
      const plain = await attributionPatching(ioi, opts);
      const ig = await attributionPatching(ioi, { ...opts, igSteps: 10 });
      expect(pearson(plain.effects, act.effects)).toBeLessThan(0.7);
      const r = pearson(ig.effects, act.effects);
      expect(r).toBeGreaterThanOrEqual(0.99);
      expect(effectAt(ig, 0, 1)).toBeGreaterThan(0.8);
      expect(effectAt(ig, 1, 2)).toBeGreaterThan(0.9);
      for (const [l, h] of [[0, 0], [0, 2], [0, 3], [1, 0], [1, 1], [1, 3]]) expect(Math.abs(effectAt(ig, l, h))).toBeLessThan(0.1);
      expect(ig.settings.igSteps).toBe(10);
      rs.push(r);
    }
    console.log(`IOI S2 flip, heads, integrated attribution (10 steps) vs activation: r ${rs.map((r) => r.toFixed(4)).join(', ')}`);
  });

  it('bad input: a pair the metric cannot tell apart, negative steps', async () => {
    // The prompts differ only after the measured position, so the metric is the same on both.
    const p = ioiPrompts(1, { seed: 2 })[0];
    const m = p.meta as Record<string, number>;
    const opts = { clean: p.tokens, corrupt: p.tokens.map((t, i) => (i === m.s2Pos ? m.io : t)), answer: m.io, wrong: m.s, sweep: 'resid', pos: m.s2Pos - 1 };
    await expect(attributionPatching(ioi, { ...opts, igSteps: 1 })).rejects.toThrow(/same logit-diff/);
    await expect(attributionPatching(ioi, { ...opts, pos: undefined, igSteps: -1 })).rejects.toThrow(/IG steps must be a non-negative integer/);
  });
});
