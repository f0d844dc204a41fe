// `lantern attribute` as a user runs it (a subprocess), on a random tiny model written here: its
// saved JSON must equal the library's result in this process, its HTML must be written, and bad
// input must be exactly one `lantern: error:` line with exit code 1.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runLantern, expectOneLineError } from './helpers.js';
import type { HookedTransformer } from '../src/models/hooked.js';
import { loadModel } from '../src/models/load.js';
import { TINY_GPT2, writeRandomModel } from '../src/models/random.js';
import { attribute, loadResult } from '../src/methods/attribution/index.js';


let tmp: string;
let tiny: string;
let model: HookedTransformer;


const lantern = (...args: string[]) => runLantern(args, tmp);


beforeAll(async () => {
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'lantern-attr-cli-'));
  tiny = path.join(tmp, 'tiny');
  writeRandomModel(tiny, TINY_GPT2, { seed: 4 });
  model = await loadModel(tiny);
});

afterAll(async () => {
  await model.executor.dropWeights(model.weights);
  fs.rmSync(tmp, { recursive: true, force: true });
});

describe('lantern attribute', () => {
  it('--json equals the library result; --html and --eval are written', async () => {
    const json = path.join(tmp, 'r.json');
    const html = path.join(tmp, 'r.html');
    const text = 'Hello world, this is';
    const r = await lantern('attribute', '--model', tiny, '--text', text, '--method', 'ig', '--steps', '8', '--eval', '--json', json, '--html', html);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toContain('method: ig');
    expect(r.stdout).toContain('AOPC comprehensiveness');
    const saved = loadResult(json);
    const here = await attribute(model, { text, method: 'ig', settings: { steps: 8 }, evaluate: true });
    expect(saved.tokens).toEqual(model.toTokens(text));
    expect(saved.target.token).toBe(here.target.token);
    expect(saved.model.weightsSha256).toBe(here.model.weightsSha256);
    saved.scores[0].forEach((s, i) => expect(Math.abs(s - here.scores[0][i])).toBeLessThan(1e-6));
    expect(saved.faithfulness!.rows[0].k).toEqual(here.faithfulness!.rows[0].k);
    const page = fs.readFileSync(html, 'utf8');
    expect(page).toMatch(/^<!DOCTYPE html>/);
    expect(page).toContain('Faithfulness');
  });

  it('a multi-token --target is a teacher-forced continuation (one row per token plus the sum)', async () => {
    const r = await lantern('attribute', '--model', tiny, '--text', 'Hello world', '--target', ', this is', '--method', 'occlusion', '--no-color');
    expect(r.code, r.stderr).toBe(0);
    const n = model.toTokens(', this is').length;
    expect(n).toBeGreaterThan(1);
    expect(r.stdout).toContain('teacher forcing');
    expect(r.stdout.match(/^logprob\(/gm)).toHaveLength(n);
    expect(r.stdout).toContain('sum logprob(continuation)');
  });

  it('bad input is one error line', async () => {
    const base = ['attribute', '--model', tiny, '--text', 'Hello world'];
    const cases: [string[], RegExp][] = [
      [['--method', 'lrp'], /unknown attribution method 'lrp'.*methods: ig, saliency/],
      [['--foil', ' x'], /--foil needs --target/],
      [['--target', ', this is', '--foil', ' x'], /one-token target/],
      [['--steps', '0'], /--steps must be an integer from 1 to 512, got '0'/],
      [['--method', 'occlusion', '--steps', '8'], /--steps applies only to --method ig/],
      [['--html', path.join(tmp, 'missing', 'r.html')], /--html .*does not exist/],
    ];
    const runs = await Promise.all(cases.map(([args]) => lantern(...base, ...args)));
    runs.forEach((r, i) => expectOneLineError(r, cases[i][1]));
  });
});
