import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { architectureFor, loadModel, writeRandomModel, steering as S, generate } from '../src/index.js';
import { expectOneLineError, runLantern } from './helpers.js';

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'lantern-steer-cli-'));
afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));
const model = path.join(tmp, 'model');
writeRandomModel(model, architectureFor('gpt2').presets.tiny, { seed: 2, matrixStd: 0.08 });

describe('lantern steer and ablate-direction', () => {
  it('steer --json: plain and steered side by side, equal to the library, with model, hook, data hash, seed and settings', async () => {
    const vec = path.join(tmp, 'v.json');
    const r = await runLantern(['steer', 'The day was', '-m', model, '--positive', 'Love', '--negative', 'Hate', '--layer', '1', '--coef', '5', '-n', '6', '--save-vector', vec, '--json'], tmp);
    expect(r.stderr).toBe('');
    const out = JSON.parse(r.stdout);
    expect(out).toMatchObject({ model, method: 'steer', hook: 'blocks.1.hook_resid_pre', vectorMethod: 'actadd', seed: 0, settings: { coef: 5, maxNewTokens: 6 } });
    expect(out.datasetHash).toMatch(/^[0-9a-f]+$/);
    const m = await loadModel(model);
    const v = S.loadSteeringVector(vec, m);
    const steered = await generate(m, 'The day was', { maxNewTokens: 6, temperature: 0, ...S.steeringInterventions(m, v, 5) });
    expect(out.rows[0].steered).toBe(steered.text);
    expect(out.rows[0].plain).toBe((await generate(m, 'The day was', { maxNewTokens: 6, temperature: 0 })).text);
    expect(out.kl).toBeGreaterThan(0);
  });

  it('ablate-direction --save-weights writes weights that run as the ablated model', async () => {
    const vec = path.join(tmp, 'dir.json');
    const m = await loadModel(model);
    S.saveSteeringVector(vec, await S.actAddVector(m, 'Yes', 'No', { hook: 'blocks.1.hook_resid_pre' }));
    const dir = path.join(tmp, 'ortho');
    const r = await runLantern(['ablate-direction', 'Once upon', '-m', model, '--vector', vec, '--save-weights', dir, '-n', '5', '--json'], tmp);
    expect(r.stderr).toBe('');
    const out = JSON.parse(r.stdout);
    const baked = await generate(await loadModel(dir), 'Once upon', { maxNewTokens: 5, temperature: 0 });
    expect(out.rows[0].ablated).toBe(baked.text);
    expect(out).toMatchObject({ method: 'ablate-direction', savedWeights: dir, seed: 0 });
  });

  it('safety --json: the library\'s analysis of the sample, with model, data hash, seed and settings', async () => {
    const r = await runLantern(['safety', '--data', 'builtin:harmful-harmless', '-m', model, '--top', '3', '--json'], tmp);
    expect(r.stderr).toBe('');
    const out = JSON.parse(r.stdout);
    const want = await S.safetyAnalysis(await loadModel(model), S.harmfulHarmlessSample().examples, { topK: 3 });
    expect(out).toMatchObject({ method: 'safety-analysis', datasetHash: want.datasetHash, seed: 0, settings: { kind: 'mass-mean', chat: false, topK: 3 } });
    expect(out.layers.map((l: S.SafetyLayer) => [l.hook, l.test.accuracy, l.promoted.map((t) => t.id)])).toEqual(want.layers.map((l) => [l.hook, l.test.accuracy, l.promoted.map((t) => t.id)]));
    const single = path.join(tmp, 'one-class.jsonl');
    fs.writeFileSync(single, ['a', 'b', 'c', 'd'].map((t) => JSON.stringify({ text: t, label: 1 })).join('\n') + '\n');
    expectOneLineError(await runLantern(['safety', '--data', single, '-m', model], tmp), /single class|one class|two classes/i, 'single class');
  });

  it('bad input: one line each', async () => {
    const base = ['steer', 'x', '-m', model];
    expectOneLineError(await runLantern([...base, '--positive', 'a', '--negative', 'b', '--coef', 'Infinity'], tmp), /--coef must be a finite number, got 'Infinity'/, 'coef');
    expectOneLineError(await runLantern([...base, '--positive', 'a', '--negative', 'b', '--coef', '1', '--hook', 'blocks.0.hook_resid_psot'], tmp), /unknown hook 'blocks.0.hook_resid_psot'; did you mean 'blocks.0.hook_resid_post'/, 'hook');
    const wide = path.join(tmp, 'wide.json');
    fs.writeFileSync(wide, JSON.stringify({ format: 'lantern-steering-vector', method: 'caa', model: 'gpt2', hook: 'blocks.0.hook_resid_pre', dModel: 768, rows: [Array(768).fill(0)], datasetHash: '', settings: {} }));
    expectOneLineError(await runLantern([...base, '--vector', wide, '--coef', '1'], tmp), /steering vector .*wide.json has d_model 768 \(from gpt2\); .* has d_model 64/, 'd_model');
  });
});
