// `lantern explain` as a user runs it (a subprocess on the bundled model): its saved JSON must
// equal what the library computes in this process with the same settings and seed; bad input is
// one `lantern: error:` line.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { LanternBackend } from '../src/backends/lantern.js';
import { loadModel } from '../src/models/load.js';
import { BUNDLED_MODEL } from '../src/paths.js';
import { modelEmbedder, smile } from '../src/methods/blackbox/index.js';
import { loadBlackboxResult, parseBlackboxResult, saveBlackboxResult } from '../src/methods/blackbox/result.js';
import type { CellResult, SmileResult } from '../src/methods/blackbox/index.js';
import { expectOneLineError, runLantern } from './helpers.js';

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'lantern-explain-'));
const lantern = (...args: string[]) => runLantern(['explain', ...args], tmp);
afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));

const PROMPT = 'The old man walked to the river';

describe('lantern explain', () => {
  it('smile: prints importances with progress, and saves exactly the library result', async () => {
    const out = path.join(tmp, 'smile.json');
    const [r, model] = await Promise.all([
      lantern('--method', 'smile', '--text', PROMPT, '--samples', '8', '--max-tokens', '3', '--seed', '4', '--json', out),
      loadModel(BUNDLED_MODEL),
    ]);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/^SMILE on lantern:.*lantern-demo/);
    expect(r.stdout).toMatch(/surrogate weighted R² = -?\d\.\d{4}/);
    expect(r.stdout).toContain(`saved the result to ${out}`);
    expect(r.stderr).toMatch(/SMILE: 9\/9 model calls/);
    const saved = loadBlackboxResult(out) as SmileResult;
    const here = await smile(new LanternBackend(model), PROMPT, { embedder: modelEmbedder(model), samples: 8, maxTokens: 3, seed: 4 });
    expect(saved.method).toBe('smile');
    expect(saved.backend).toBe(here.backend);
    expect(saved.seed).toBe(4);
    expect(saved.settings).toEqual({ samples: 8, keepProbability: 0.5, minKept: 2, kernelWidth: 0.25, maxTokens: 3 });
    expect(saved.samples.map((s) => [s.mask, s.response])).toEqual(here.samples.map((s) => [s.mask, s.response]));
    saved.importances.forEach((v, i) => expect(v).toBeCloseTo(here.importances[i], 9));
    expect(saved.r2).toBeCloseTo(here.r2, 9);
    // Every word's line is in the terminal output.
    for (const w of here.words) expect(r.stdout).toMatch(new RegExp(`\\s${w}\\s+-?\\d\\.\\d{4}`));
  });

  it('cell: --json - prints the result as JSON, within the budget, silently with --quiet', async () => {
    const r = await lantern('--method', 'cell', '--text', PROMPT, '--budget', '4', '--max-tokens', '3', '--json', '-', '--quiet');
    expect(r.code, r.stderr).toBe(0);
    expect(r.stderr.replace(/^npm warn.*\n/gm, '')).toBe('');
    const res = parseBlackboxResult(JSON.parse(r.stdout)) as CellResult;
    expect(res.method).toBe('cell');
    expect(res.calls.model).toBeLessThanOrEqual(4);
    expect(res.calls.budget).toBe(4);
    expect(res.settings).toEqual({ epsilon: 0.5, budget: 4, chunkWords: 1, radius: 5, alpha: 0.5, maxTokens: 3 });
    expect(res.prompt).toBe(PROMPT);
  });

  it('bad input: one line naming the problem, before any model loads', async () => {
    const cases: [string[], RegExp][] = [
      [['--method', 'lime', '--text', 'a b c'], /--method must be one of smile, cell, mcell, got 'lime'/],
      [['--method', 'cell', '--text', 'a b c', '--samples', '5'], /--samples applies only to --method smile/],
      [['--method', 'smile', '--text', 'a b c', '--budget', '5'], /--budget applies only to --method cell or mcell/],
      [['--method', 'cell', '--text', 'a b c', '--backend', 'ollama:llama3'], /--backend 'ollama:llama3' is not a backend this build knows/],
      [['--method', 'cell', '--text', 'a b c', '--budget', '1'], /CELL budget \(model calls\) must be an integer ≥ 2, got 1/],
      [['--method', 'smile', '--text', 'a b c', '--keep-prob', '1.5'], /keep probability must be a number strictly between 0 and 1, got 1.5/],
      [['--method', 'mcell', '--text', 'a b c', '--judge', 'lantern'], /--judge applies only to --scorer preference/],
      [['--method', 'mcell', '--text', 'a b c', '--radius', '2'], /--radius applies only to --method cell/],
      [['--text', 'a b c'], /--method/],
    ];
    const runs = await Promise.all(cases.map(([args]) => lantern(...args)));
    runs.forEach((r, i) => expectOneLineError(r, cases[i][1], cases[i][0].join(' ')));
  });
});

describe('saved black-box results', () => {
  it('round-trip, and a wrong file is a clear error', () => {
    const file = path.join(tmp, 'r.json');
    const r = {
      method: 'mcell', backend: 'b', scorer: 's', infiller: 'i', settings: { epsilon: 0.5, budget: 3, chunkWords: 1, radius: 5, alpha: 0.5, maxTokens: 2 },
      seed: 1, prompt: 'a b', response: 'x', chunks: ['a', 'b'], editedPrompt: 'a c', editedResponse: 'y', edits: [{ position: 1, from: 'b', to: 'c' }],
      score: 0.9, found: true, stopReason: 'found', candidates: 2, calls: { model: 3, budget: 3, infiller: 2, judge: 0 },
    } as CellResult;
    saveBlackboxResult(file, r);
    expect(loadBlackboxResult(file)).toEqual(r);
    fs.writeFileSync(file, JSON.stringify({ format: 'lantern-attribution', version: 1 }));
    expect(() => loadBlackboxResult(file)).toThrow(/is not a Lantern black-box result/);
    fs.writeFileSync(file, JSON.stringify({ format: 'lantern-blackbox', version: 1, method: 'smile', backend: 'b' }));
    expect(() => loadBlackboxResult(file)).toThrow(/lacks embedder, settings/);
    fs.writeFileSync(file, '{not json');
    expect(() => loadBlackboxResult(file)).toThrow(/is not valid JSON/);
  });
});
