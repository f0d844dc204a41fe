// `lantern interchange`, `lantern das` and `lantern scrub` as a user runs them, on the planted IOI
// model (its subject S sits in the last position's stream after layer 0): the JSON task and
// hypothesis files, the IIA table, the saved subspace reused by `interchange --subspace`, and
// one-line errors.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { IOI_NAMES, IOI_TEMPLATES, makePlanted } from '../src/models/planted/index.js';
import { readFloat32, readSafetensorsHeader } from '../src/models/safetensors.js';
import { orthogonalityError } from '../src/methods/causal-abstraction/index.js';
import { expectOneLineError, runLantern } from './helpers.js';

let tmp: string;
let model: string;
let taskFile: string;
const lantern = (...args: string[]) => runLantern(args, tmp);

beforeAll(async () => {
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'lantern-causal-cli-'));
  model = path.join(tmp, 'ioi');
  await makePlanted('ioi', model, { measure: false });
  const names = IOI_NAMES.slice(0, 4).map((n) => n.id);
  const inputs = names.flatMap((a) => names.filter((b) => b !== a).flatMap((b) => [{ a, b, s: a }, { a, b, s: b }]));
  const task = {
    causalModel: { inputs: ['a', 'b', 's'], variables: { S: { parents: ['s'], op: 'identity' }, IO: { parents: ['S', 'a', 'b'], op: 'other' } }, output: 'IO' },
    promptTokens: IOI_TEMPLATES[0].map((p) => (p === 'A' ? '{a}' : p === 'B' ? '{b}' : p === 'S' ? '{s}' : p[1])),
    inputs,
  };
  taskFile = path.join(tmp, 'task.json');
  fs.writeFileSync(taskFile, JSON.stringify(task));
}, 60_000);
afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));

describe('lantern das / interchange / scrub', () => {
  it('das finds S after layer 0, saves the subspace, and interchange reuses it', async () => {
    const out = path.join(tmp, 'das.json');
    const save = path.join(tmp, 's.safetensors');
    const html = path.join(tmp, 'das.html');
    const r = await lantern('das', '--model', model, '--task', taskFile, '--variable', 'S', '--hooks', 'blocks.{l}.hook_resid_pre', '--positions', '-1', '-k', '4', '--epochs', '3', '--train', '96', '--test', '48', '--save', save, '--json', out, '--html', html);
    expect(r.code, r.stderr).toBe(0);
    const saved = JSON.parse(fs.readFileSync(out, 'utf8'));
    expect(saved.iia.hooks).toEqual(['blocks.0.hook_resid_pre', 'blocks.1.hook_resid_pre']);
    expect(saved.iia.table[1][0]).toBeGreaterThanOrEqual(0.95);
    expect(saved.iia.table[0][0]).toBeLessThanOrEqual(0.6);
    expect(saved.best.location.hook).toBe('blocks.1.hook_resid_pre');
    expect(saved.seed).toBe(0);
    expect(fs.readFileSync(html, 'utf8')).toContain('<svg');
    const header = readSafetensorsHeader(save);
    expect(header.metadata.hook).toBe('blocks.1.hook_resid_pre');
    const basis = readFloat32(header, 'basis');
    const [k, dim] = header.tensors.get('basis')!.shape;
    // Rows of the basis are the frame's columns: check them as a [dim, k] frame.
    const frame = new Float64Array(dim * k);
    for (let i = 0; i < k; i++) for (let t = 0; t < dim; t++) frame[t * k + i] = basis[i * dim + t];
    expect(orthogonalityError(frame, dim, k)).toBeLessThan(1e-5);
    const again = await lantern('interchange', '--model', model, '--task', taskFile, '--variables', 'S', '--hook', 'blocks.1.hook_resid_pre', '--subspace', save, '-n', '60', '--json');
    expect(again.code, again.stderr).toBe(0);
    expect(JSON.parse(again.stdout).iia).toBeGreaterThanOrEqual(0.95);
    const early = await lantern('interchange', '--model', model, '--task', taskFile, '--variables', 'S', '--hook', 'blocks.0.hook_resid_pre', '-n', '60', '--json');
    expect(JSON.parse(early.stdout).iia).toBe(0);
  });

  it('scrub: the true hypothesis recovers the loss, one without the S-inhibition path does not', async () => {
    const truth = path.join(tmp, 'truth.json');
    const noS = path.join(tmp, 'nos.json');
    fs.writeFileSync(truth, JSON.stringify({ nodes: { S: { components: ['L0H1'], parents: ['input'] }, IO: { components: ['L1H2'], parents: ['S', 'input'] } }, output: { parents: ['IO'] } }));
    fs.writeFileSync(noS, JSON.stringify({ nodes: { IO: { components: ['L1H2'], parents: ['input'] } }, output: { parents: ['IO'] } }));
    const good = await lantern('scrub', '--model', model, '--task', taskFile, '--hypothesis', truth, '--json');
    expect(good.code, good.stderr).toBe(0);
    expect(JSON.parse(good.stdout).recovered).toBeGreaterThanOrEqual(0.95);
    const bad = await lantern('scrub', '--model', model, '--task', taskFile, '--hypothesis', noS, '--json');
    expect(JSON.parse(bad.stdout).recovered).toBeLessThanOrEqual(0.5);
  });

  it('bad input: one line naming the problem', async () => {
    expectOneLineError(await lantern('das', '--model', model, '--task', taskFile, '--variable', 'SS'), /unknown variable 'SS' \(did you mean 'S'/);
    expectOneLineError(await lantern('interchange', '--model', model, '--task', taskFile, '--variables', 'S', '--hook', 'blocks.0.hook_resid_pre', '--positions', 'last'), /--positions must be a comma-separated list of integers/);
  });
});
