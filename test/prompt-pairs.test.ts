// Prompt-pair generators. Structural checks on the text (what differs between clean and
// corrupted, which answers count), then the planted IOI model as an independent judge: by its
// construction (src/models/planted/ioi.ts) the clean pairs give logit(IO) - logit(S) = +10, the
// 'abc' corruption 0 (the name mover splits its attention between IO and S1) and 'swap' -10.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { LanternError } from '../src/errors.js';
import type { HookedTransformer } from '../src/models/hooked.js';
import { loadModel } from '../src/models/load.js';
import { makePlanted } from '../src/models/planted/index.js';
import { BUNDLED_MODEL } from '../src/paths.js';
import { factualPairs, greaterThanPairs, ioiPairs, pairTokens, promptPairs, taskPairs } from '../src/methods/patching/prompts.js';
import { expectOneLineError, runLantern } from './helpers.js';

let tmp: string;
let ioi: HookedTransformer;

beforeAll(async () => {
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'lantern-prompts-'));
  await makePlanted('ioi', path.join(tmp, 'ioi'), { measure: false });
  ioi = await loadModel(path.join(tmp, 'ioi'), { progress: false });
});

afterAll(async () => {
  await ioi.executor.dropWeights(ioi.weights);
  fs.rmSync(tmp, { recursive: true, force: true });
});

const words = (s: string) => s.split(' ');

describe('generators', () => {
  it('are deterministic in the seed', () => {
    for (const task of ['ioi', 'greater-than', 'factual']) {
      expect(promptPairs(task, 8, { seed: 3 })).toEqual(promptPairs(task, 8, { seed: 3 }));
      expect(promptPairs(task, 8, { seed: 3 })).not.toEqual(promptPairs(task, 8, { seed: 4 }));
    }
  });

  it('IOI: IO once, S twice; abc changes only S2 to a third name, swap changes S2 to IO', () => {
    for (const corruption of ['abc', 'swap']) {
      for (const p of ioiPairs(40, { seed: 1, corruption })) {
        const io = p.answer.trim();
        const s = p.wrong.trim();
        const w = words(p.clean);
        expect(w.filter((x) => x.replace(',', '') === io)).toHaveLength(1);
        expect(w.filter((x) => x.replace(',', '') === s)).toHaveLength(2);
        const c = words(p.corrupt);
        const diff = w.map((x, i) => (x !== c[i] ? i : -1)).filter((i) => i >= 0);
        expect(diff).toHaveLength(1);
        expect(w[diff[0]]).toBe(s);
        expect(c[diff[0]]).toBe(corruption === 'abc' ? p.meta.c : io);
        if (corruption === 'abc') expect([io, s]).not.toContain(p.meta.c);
      }
    }
    const orders = new Set(ioiPairs(40, { seed: 1 }).map((p) => p.meta.order));
    expect(orders).toEqual(new Set(['ABBA', 'BABA']));
  });

  it('greater-than: the answers are exactly the years after the start year; the corruption starts at 01', () => {
    for (const p of greaterThanPairs(30, { seed: 2 })) {
      const yy = Number(p.meta.year);
      expect(p.clean).toContain(`${p.meta.century}${String(yy).padStart(2, '0')} to`);
      expect(p.corrupt).toBe(p.clean.replace(`${p.meta.century}${String(yy).padStart(2, '0')} to`, `${p.meta.century}01 to`));
      expect(p.answers!.map(Number)).toEqual(Array.from({ length: 99 - yy }, (_, i) => yy + 1 + i));
      expect(p.wrongs!.map(Number)).toEqual(Array.from({ length: yy + 1 }, (_, i) => i));
      expect(Number(p.answer)).toBeGreaterThan(yy);
      expect(Number(p.wrong)).toBeLessThan(yy);
    }
  });

  it('factual: the corruption is another subject of the same relation with a different answer', () => {
    for (const p of factualPairs(30, { seed: 5 })) {
      expect(p.clean.startsWith(p.subject!) || p.clean.includes(` ${p.subject!} `)).toBe(true);
      expect(p.corrupt).toBe(p.clean.replace(p.subject!, String(p.meta.corruptSubject)));
      expect(p.wrong).not.toBe(p.answer);
    }
  });

  it('bad input: unknown task (with the nearest), unknown corruption, n < 1', () => {
    expect(() => promptPairs('iio', 3)).toThrow(/unknown task 'iio' \(did you mean 'ioi'\?\)/);
    expect(() => promptPairs('ioi', 3, { corruption: 'xyz' })).toThrow(/unknown IOI corruption 'xyz'/);
    expect(() => promptPairs('ioi', 0)).toThrow(LanternError);
  });
});

describe('against a model', () => {
  it('IOI pairs on the planted IOI model: clean +10, abc 0, swap -10 (its construction)', async () => {
    for (const [corruption, expected] of [['abc', 0], ['swap', -10]] as const) {
      const pairs = taskPairs(ioi, 'ioi', 12, { seed: 7, corruption });
      const V = ioi.cfg.dVocab;
      // Templates differ in length: the batch is right-padded to the longest, each prompt read at its own last token.
      const seq = Math.max(...pairs.map((p) => p.cleanTokens.length));
      const diff = (logits: { f32: Float32Array }, b: number, p: (typeof pairs)[number]) => {
        const last = b * seq + p.cleanTokens.length - 1;
        const row = logits.f32.subarray(last * V, (last + 1) * V);
        return row[p.answer] - row[p.wrong];
      };
      const clean = await ioi.run(pairs.map((p) => p.cleanTokens));
      const corrupt = await ioi.run(pairs.map((p) => p.corruptTokens));
      pairs.forEach((p, b) => {
        expect(diff(clean, b, p)).toBeCloseTo(10, 2);
        expect(Math.abs(diff(corrupt, b, p) - expected)).toBeLessThan(0.05);
      });
    }
  });

  it('factual pairs for the bundled (GPT-2 tokenizer) model: equal lengths, subject positions are the subject', async () => {
    const demo = await loadModel(BUNDLED_MODEL, { progress: false });
    try {
      const pairs = taskPairs(demo, 'factual', 12, { seed: 1 });
      for (const t of pairs) {
        expect(t.corruptTokens.length).toBe(t.cleanTokens.length);
        const sub = t.subjectPositions!.map((i) => t.cleanTokens[i]);
        expect(demo.toString(sub).trim()).toBe(t.pair.subject);
      }
      expect(new Set(pairs.map((p) => p.pair.meta.relation)).size).toBeGreaterThan(1);
    } finally {
      await demo.executor.dropWeights(demo.weights);
    }
  });

  it('a pair that does not fit the tokenizer is a one-line error naming the problem', () => {
    const p = { ...promptPairs('factual', 1)[0], corrupt: 'x' };
    expect(() => pairTokens(ioi, p)).toThrow(/tokens; clean and corrupted prompts must have the same length/);
    expect(() => pairTokens(ioi, { ...promptPairs('factual', 1)[0], answer: ' Parisian capital' })).toThrow(/answer " Parisian capital" is \d tokens/);
  });
});

describe('CLI', () => {
  it('lantern prompts prints pairs as JSON, and names an unknown task', async () => {
    const r = await runLantern(['prompts', '--task', 'ioi', '--n', '3', '--seed', '2', '--json'], tmp);
    expect(r.code, r.stderr).toBe(0);
    const j = JSON.parse(r.stdout);
    expect(j.method).toBe('prompt-pairs');
    expect(j.settings).toEqual({ task: 'ioi', n: 3, seed: 2, corruption: 'abc' });
    expect(j.pairs).toEqual(ioiPairs(3, { seed: 2 }));
    expectOneLineError(await runLantern(['prompts', '--task', 'greater', '--n', '3'], tmp), /unknown task 'greater'/);
  });
});
