// `lantern features` on the planted n-gram model (neuron 5 fires on "h" only) with the scripted
// explainer server: dashboards → explain → sasc → top, and one-line errors.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { makePlanted, NGRAM } from '../src/models/planted/index.js';
import { readDashboardIndex, readDashboard } from '../src/methods/features/index.js';
import { expectOneLineError, runLantern } from './helpers.js';
import { scriptedServer, ScriptedServer } from './features-scripted.js';

const H = NGRAM.currentHDistractorNeuron;
let tmp: string;
let folder: string;
let server: ScriptedServer;
beforeAll(async () => {
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'lantern-features-cli-'));
  folder = path.join(tmp, 'ngram');
  await makePlanted('ngram-neuron', folder, { measure: false });
  server = await scriptedServer({ explain: () => 'the token "h".', summarize: () => 'the letter "h"' });
});
afterAll(async () => {
  await server.close();
  fs.rmSync(tmp, { recursive: true, force: true });
});

describe('lantern features', () => {
  it('builds dashboards and HTML, explains and scores a neuron, runs SASC, lists the features on a text', async () => {
    const dash = path.join(tmp, 'dash');
    const html = path.join(tmp, 'dash.html');
    const built = await runLantern(['features', 'dashboards', '--model', folder, '--source', 'neurons:blocks.0.mlp.hook_post', '--max-tokens', '1600', '--seq', '32', '-o', dash, '--html', html, '--html-features', `${H},13`], tmp);
    expect(built.code, built.stderr).toBe(0);
    expect(built.stdout).toMatch(/1600 tokens of planted ngram-neuron task prompts/);
    const index = readDashboardIndex(dash);
    expect(index).toMatchObject({ hook: 'blocks.0.mlp.hook_post', source: 'neurons:blocks.0.mlp.hook_post', tokens: 1600, seed: 0, size: 64 });
    expect(index.dataHash).toMatch(/^[0-9a-f]{16}$/);
    expect(index.features[H].topTokens).toEqual(['h']);
    expect(fs.readFileSync(html, 'utf8').match(/<section id="f\d+">/g)).toEqual([`<section id="f${H}">`, '<section id="f13">']);

    const json = path.join(tmp, 'explain.json');
    const ex = await runLantern(['features', 'explain', '-d', dash, '--features', String(H), '--backend', server.url, '--detection', '--fuzzing', '--json', json], tmp);
    expect(ex.code, ex.stderr).toBe(0);
    expect(ex.stdout).toMatch(new RegExp(`#${H}: the token "h"\\.  \\(score (0\\.9[5-9]\\d|1\\.000), detection 1\\.000, fuzzing 1\\.000\\)`));
    const saved = JSON.parse(fs.readFileSync(json, 'utf8'));
    expect(saved).toMatchObject({ method: 'explain-simulate-score', hook: 'blocks.0.mlp.hook_post', dataHash: index.dataHash, seed: 0 });
    expect(saved.results[0].score).toBeGreaterThanOrEqual(0.95);
    expect(readDashboard(dash, H).explanation?.text).toBe('the token "h".');

    const sasc = await runLantern(['features', 'sasc', '-d', dash, '-f', String(H), '--backend', server.url, '--candidates', '1'], tmp);
    expect(sasc.code, sasc.stderr).toBe(0);
    expect(sasc.stdout).toMatch(/best: the letter "h" \(score \d+\.\d+ baseline std\)/);

    const top = await runLantern(['features', 'top', '-d', dash, '--text', 'the hat', '-k', '3', '--json'], tmp);
    expect(top.code, top.stderr).toBe(0);
    const r = JSON.parse(top.stdout);
    expect(r.tokens).toEqual(['t', 'h', 'e', ' ', 'h', 'a', 't']);
    // Neuron 5 fires on both "h"s; neuron 13 on the bigram "t h".
    expect(r.top.map((t: { index: number }) => t.index)).toContain(H);
    const five = r.top.find((t: { index: number }) => t.index === H);
    expect(five.activations.map((a: number) => a > 1)).toEqual([false, true, false, false, true, false, false]);
  }, 120_000);

  it('bad input: a hook not in the model', async () => {
    const a = await runLantern(['features', 'dashboards', '--model', folder, '--source', 'neurons:blocks.3.mlp.hook_post', '-o', path.join(tmp, 'x')], tmp);
    expectOneLineError(a, /unknown hook 'blocks\.3\.mlp\.hook_post'; did you mean/);
  }, 60_000);
});

describe('lantern features with an SAE as the source', () => {
  it('top: the bundled model\'s SAE features on a text equal the SAE\'s own graph encoder on the hook\'s activations', async () => {
    const saeFolder = path.resolve('models/lantern-demo/saes/resid1-topk32');
    const text = 'The jury said the city was fine.';
    const top = await runLantern(['features', 'top', '--sae', saeFolder, '--text', text, '-k', '4', '--json'], tmp);
    expect(top.code, top.stderr).toBe(0);
    const r = JSON.parse(top.stdout);
    const { loadModel } = await import('../src/models/load.js');
    const { loadSae } = await import('../src/methods/sae/index.js');
    const model = await loadModel('models/lantern-demo');
    const { sae } = await loadSae(saeFolder);
    const { cache } = await model.runWithCache(text, [sae.cfg.hookName]);
    const acts = cache.get(sae.cfg.hookName);
    const rows = acts.shape[1];
    const feats = await sae.encode(acts.f32, rows);
    expect(r.top.length).toBe(4);
    for (const t of r.top as { index: number; activations: number[] }[]) {
      const expected = Array.from({ length: rows }, (_, p) => feats[p * sae.cfg.dSae + t.index]);
      expect(t.activations.length).toBe(rows);
      t.activations.forEach((a, p) => expect(a).toBeCloseTo(expected[p], 3));
    }
  }, 120_000);

  it('bad input: an SAE whose d_in does not fit the model', async () => {
    const a = await runLantern(['features', 'top', '--model', folder, '--sae', path.resolve('models/lantern-demo/saes/resid1-topk32'), '--text', 'hat'], tmp);
    expectOneLineError(a, /unknown hook 'blocks\.1\.hook_resid_post'; did you mean/);
  }, 60_000);
});
