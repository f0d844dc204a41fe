// Sweeps across checkpoints. A local Hub server serves three revisions of one model (different
// random weights); each revision's expected value is computed independently from the local folder
// it was made from: the loss by a JavaScript log-softmax of the logits, a head's previous-token
// score straight from its cached attention pattern, the logit lens's KL from cached residuals decoded
// in float64 with the folder's own final norm and embed_out weights. A toy grokking run's checkpoints are swept
// against the analysis of each checkpoint file.
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadModel } from '../src/models/load.js';
import { readFloat32, readSafetensorsHeader } from '../src/models/safetensors.js';
import { writeRandomModel } from '../src/models/random.js';
import { architectureFor } from '../src/models/config.js';
import { repeatedRandomSequences } from '../src/methods/heads/detectors.js';
import { PROBE_SUBJECTS, sweepRevisions, sweepRun } from '../src/methods/sweep/index.js';
import { builtinDataset } from '../src/data/statements.js';
import { sweepLayers } from '../src/methods/representations/probes/index.js';
import { analyseGrokking, GROKKING_DEFAULTS, loadGrokkingParams, trainGrokking } from '../src/methods/toys/grokking.js';
import { expectOneLineError, klLog, logitLens64, logSoftmaxAt, logSoftmaxRow, runLantern } from './helpers.js';

const REPO = 'tiny/sweep';
const REVISIONS = ['step1000', 'step2000', 'step3000'];
const sha1 = (b: Buffer) => createHash('sha1').update(b).digest('hex');

let tmp: string;
let server: http.Server;
let endpoint: string;
const commits: Record<string, Record<string, Buffer>> = {};
const branches: Record<string, string> = {};
const folders: Record<string, string> = {};
const ENV_KEYS = ['HF_ENDPOINT', 'HF_HOME', 'HF_HUB_CACHE', 'HUGGINGFACE_HUB_CACHE', 'HF_HUB_OFFLINE'];
const savedEnv = Object.fromEntries(ENV_KEYS.map((k) => [k, process.env[k]]));

beforeAll(async () => {
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'lantern-sweep-'));
  const cfg = architectureFor('gpt_neox').presets.tiny;
  REVISIONS.forEach((branch, i) => {
    const folder = path.join(tmp, branch);
    writeRandomModel(folder, cfg, { seed: 10 + i });
    folders[branch] = folder;
    const files = Object.fromEntries(['config.json', 'tokenizer.json', 'model.safetensors'].map((f) => [f, fs.readFileSync(path.join(folder, f))]));
    const commit = sha1(Buffer.concat([Buffer.from(branch), files['model.safetensors']]));
    commits[commit] = files;
    branches[branch] = commit;
  });
  server = http.createServer((req, res) => {
    const m = /^\/(.+)\/resolve\/([^/]+)\/(.+)$/.exec(new URL(req.url!, endpoint).pathname);
    if (!m || m[1] !== REPO) return void res.writeHead(404, { 'X-Error-Code': 'RepoNotFound' }).end();
    const commit = branches[decodeURIComponent(m[2])] ?? (commits[m[2]] ? m[2] : undefined);
    if (!commit) return void res.writeHead(404, { 'X-Error-Code': 'RevisionNotFound' }).end();
    const file = commits[commit][decodeURIComponent(m[3])];
    if (!file) return void res.writeHead(404, { 'X-Error-Code': 'EntryNotFound', 'X-Repo-Commit': commit }).end();
    res.writeHead(200, { 'Content-Length': file.length, 'X-Repo-Commit': commit, ETag: `"${sha1(file)}"` });
    res.end(file);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  endpoint = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  for (const k of ENV_KEYS) delete process.env[k];
  process.env.HF_ENDPOINT = endpoint;
  process.env.HF_HOME = path.join(tmp, 'hf-home');
});

afterAll(async () => {
  server.closeAllConnections();
  await new Promise((resolve) => server.close(resolve));
  fs.rmSync(tmp, { recursive: true, force: true });
  for (const [k, v] of Object.entries(savedEnv)) {
    if (v === undefined) delete process.env[k];
    else process.env[k] = v;
  }
});

/** Loss and head 0.1's previous-token score of a local folder on `rows`, computed here. */
async function expected(folder: string, rows: number[][]): Promise<{ loss: number; prev: number }> {
  const model = await loadModel(folder);
  try {
    let loss = 0;
    let n = 0;
    let prev = 0;
    let queries = 0;
    for (const r of rows) {
      const { logits, cache } = await model.runWithHooks([r], { cache: ['blocks.0.attn.hook_pattern'] });
      const V = model.cfg.dVocab;
      for (let t = 0; t + 1 < r.length; t++) { loss -= logSoftmaxAt(logits.f32.subarray(t * V, (t + 1) * V), r[t + 1]); n++; }
      const p = cache.get('blocks.0.attn.hook_pattern').f32; // [1, H, T, T]
      const T = r.length;
      for (let t = 1; t < T; t++) { prev += p[(1 * T + t) * T + t - 1]; queries++; }
    }
    return { loss: loss / n, prev: prev / queries };
  } finally {
    await model.executor.dropWeights(model.weights);
  }
}

/**
 * Mean KL(final ‖ logit lens at block l's input) over every position that has a next token (all
 * but the last of the last row), from the folder's safetensors (GPT-NeoX names) in float64; the
 * final distribution is the model's own logits.
 */
async function expectedLensKl(folder: string, rows: number[][]): Promise<number[]> {
  const model = await loadModel(folder);
  try {
    const { nLayers: L, dModel: D, dVocab: V, lnEps } = model.cfg;
    const header = readSafetensorsHeader(path.join(folder, 'model.safetensors'));
    const w = {
      lnW: readFloat32(header, 'gpt_neox.final_layer_norm.weight'), lnB: readFloat32(header, 'gpt_neox.final_layer_norm.bias'),
      unembedT: readFloat32(header, 'embed_out.weight'), eps: lnEps,
    };
    const names = Array.from({ length: L }, (_, l) => `blocks.${l}.hook_resid_pre`);
    const sums = new Array<number>(L).fill(0);
    let cells = 0;
    for (const [r, row] of rows.entries()) {
      const { logits, cache } = await model.runWithHooks([row], { cache: names });
      for (let p = 0; p < row.length - (r === rows.length - 1 ? 1 : 0); p++) {
        const final = logSoftmaxRow(logits.f32.subarray(p * V, (p + 1) * V));
        names.forEach((name, l) => { sums[l] += klLog(final, logitLens64(cache.get(name).f32.subarray(p * D, (p + 1) * D), w)); });
        cells++;
      }
    }
    return sums.map((s) => s / cells);
  } finally {
    await model.executor.dropWeights(model.weights);
  }
}

describe('sweep', () => {
  it('over Hub revisions: each revision\'s loss and head score equal those computed from its own folder', async () => {
    const loss = await sweepRevisions(REPO, REVISIONS, 'loss', { sequences: 4, half: 8, seed: 3 });
    const head = await sweepRevisions(REPO, REVISIONS, 'head:previous-token:0.1', { sequences: 4, half: 8, seed: 3 });
    const model = await loadModel(folders.step1000);
    const rows = repeatedRandomSequences(model, { n: 4, half: 8, seed: 3 }).tokens;
    await model.executor.dropWeights(model.weights);
    const values = new Set<number>();
    for (const [i, rev] of REVISIONS.entries()) {
      const e = await expected(folders[rev], rows);
      expect(loss.points[i]).toMatchObject({ revision: rev, step: 1000 * (i + 1), commit: branches[rev] });
      expect(Math.abs(loss.points[i].values.loss - e.loss)).toBeLessThan(1e-4);
      expect(Math.abs(head.points[i].values['previous-token 0.1'] - e.prev)).toBeLessThan(1e-5);
      values.add(Math.round(e.loss * 1e4));
    }
    expect(values.size).toBe(3); // the revisions really differ
    expect(loss).toMatchObject({ method: 'sweep', source: REPO, analysis: 'loss', seed: 3 });
    await expect(sweepRevisions(REPO, ['step1000'], 'perplexity')).rejects.toThrow(/unknown analysis 'perplexity'; choose loss, lens-kl, head:previous-token/);
  }, 180_000);

  it('probe accuracy by layer: each revision\'s held-out accuracies equal a probe sweep on its own folder', async () => {
    const r = await sweepRevisions(REPO, REVISIONS.slice(0, 2), 'probe:sentiment', { seed: 4 });
    const items = builtinDataset('sentiment', { seed: 4, limit: PROBE_SUBJECTS }).examples;
    for (const [i, rev] of REVISIONS.slice(0, 2).entries()) {
      const model = await loadModel(folders[rev]);
      const e = await sweepLayers(model, items, { kind: 'logistic', seed: 4 });
      await model.executor.dropWeights(model.weights);
      expect(Object.keys(r.points[i].values)).toEqual(e.layers.map((_, l) => `accuracy L${l}`));
      e.layers.forEach((l, j) => expect(r.points[i].values[`accuracy L${j}`]).toBeCloseTo(l.test.accuracy, 12));
    }
    await expect(sweepRevisions(REPO, ['step1000'], 'probe:sentimentt')).rejects.toThrow(/unknown built-in dataset 'sentimentt' for a probe sweep; choose probe:capitals/);
  }, 180_000);

  it("logit-lens KL per layer: each revision's mean KL(final ‖ layer) equals a float64 recomputation from its own folder, 0 at the final layer", async () => {
    const r = await sweepRevisions(REPO, REVISIONS.slice(0, 2), 'lens-kl', { sequences: 2, half: 8, seed: 1 });
    const model = await loadModel(folders.step1000);
    const rows = repeatedRandomSequences(model, { n: 2, half: 8, seed: 1 }).tokens;
    await model.executor.dropWeights(model.weights);
    const L = architectureFor('gpt_neox').presets.tiny.nLayers;
    for (const [i, rev] of REVISIONS.slice(0, 2).entries()) {
      const values = r.points[i].values;
      expect(Object.keys(values)).toEqual([...Array.from({ length: L }, (_, l) => `KL ${l}_pre`), 'KL final_post']);
      expect(values['KL final_post']).toBe(0);
      const expected = await expectedLensKl(folders[rev], rows);
      expected.forEach((kl, l) => {
        expect(kl).toBeGreaterThan(1e-3);
        // float32 graph against float64 here: they agree to about 1e-7 on KLs of about 0.01.
        expect(Math.abs(values[`KL ${l}_pre`] - kl)).toBeLessThan(1e-6 + 1e-4 * kl);
      });
    }
  }, 180_000);

  it('the CLI sweeps, plots, and names bad analyses and revisions', async () => {
    const env = { HF_HUB_OFFLINE: undefined, HF_ENDPOINT: endpoint, HF_HOME: path.join(tmp, 'hf-home') };
    const plot = path.join(tmp, 'loss.svg');
    const r = await runLantern(['sweep', '--model', REPO, '--revisions', REVISIONS.join(','), '--analysis', 'loss', '--sequences', '4', '--half', '8', '--seed', '3', '--plot', plot, '--json'], tmp, env);
    expect(r.code, r.stderr).toBe(0);
    const lib = await sweepRevisions(REPO, REVISIONS, 'loss', { sequences: 4, half: 8, seed: 3 });
    expect(JSON.parse(r.stdout).points.map((p: { values: { loss: number } }) => p.values.loss)).toEqual(lib.points.map((p) => p.values.loss));
    expect(fs.readFileSync(plot, 'utf8')).toMatch(/^<svg/);
    expectOneLineError(await runLantern(['sweep', '--model', REPO, '--revisions', 'step1000', '--analysis', 'head:induktion'], tmp, env), /unknown head detector 'induktion'; choose previous-token, duplicate-token, induction/);
    expectOneLineError(await runLantern(['sweep', '--model', REPO, '--revisions', 'step9000', '--analysis', 'loss'], tmp, env), /step9000/);
  }, 180_000);

  it('over a grokking run\'s own checkpoints: each point is that checkpoint\'s analysis', async () => {
    const folder = path.join(tmp, 'grok');
    const s = { ...GROKKING_DEFAULTS, p: 13, dModel: 16, nHeads: 2, dHead: 8, dMlp: 32, steps: 40, evalEvery: 20, checkpointEvery: 20, lr: 3e-3 };
    await trainGrokking(s, folder);
    const r = await sweepRun(folder, 'test-loss');
    expect(r.points.map((p) => p.step)).toEqual([0, 20, 40]);
    for (const p of r.points) {
      const a = await analyseGrokking(loadGrokkingParams(path.join(folder, p.revision), s), s);
      expect(p.values['test-loss']).toBeCloseTo(a.testLoss, 10);
    }
    await expect(sweepRun(folder, 'test-los')).rejects.toThrow(/unknown run analysis 'test-los'; choose train-loss, test-loss/);
  }, 180_000);
});
