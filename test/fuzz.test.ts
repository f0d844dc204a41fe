/**
 * Property-based fuzzing with fixed seeds (src/bench/fuzz/): mutated GGUF headers, tokenizer.json
 * files, Workbench API bodies, /v1 bodies, config.json files, model.safetensors files, sharded
 * checkpoints, labelled dataset files, chat templates with their messages, control vectors
 * baked into a GGUF model, requests to the newer Workbench routes (steering, heads, neurons,
 * causal, tracing, circuits, features, evaluation, runs, jobs, dataset jobs, models), SAE folders
 * (SAELens, Gemma Scope) and job folders must each end in a result or one clean error —
 * never a stack trace, a native abort, a hang, a non-finite number or a server that stops
 * answering. `npm run fuzz` runs the same kinds for longer.
 */
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { asyncRefusal, refusal } from './helpers.js';
import { readConfig } from '../src/models/config.js';
import { openModelWeights, readSafetensorsHeader } from '../src/models/safetensors.js';
import { writeRandomModel, TINY_GPT2 } from '../src/models/random.js';
import { campaign, formatReport, FuzzKind } from '../src/bench/fuzz/harness.js';
import { ggufKind } from '../src/bench/fuzz/gguf.js';
import { tokenizerKind } from '../src/bench/fuzz/tokenizer.js';
import { openaiKind, workbenchKind } from '../src/bench/fuzz/requests.js';
import { configKind, safetensorsKind, shardedKind } from '../src/bench/fuzz/models.js';
import { chatTemplateKind, controlVectorKind, datasetKind } from '../src/bench/fuzz/files.js';
import { saeKind } from '../src/bench/fuzz/sae.js';
import { routesKind } from '../src/bench/fuzz/routes.js';
import { jobsKind } from '../src/bench/fuzz/jobs.js';
import { buildServer } from '../src/interfaces/server/app.js';
import { PLAYGROUND_NEUTRAL } from '../src/interfaces/server/steering.js';
import { EvalStore } from '../src/methods/evaluation/store.js';
import { arena } from '../src/methods/evaluation/arena.js';
import type { Battle } from '../src/methods/evaluation/judge.js';
import { loadSae, saveSae, Sae } from '../src/methods/sae/index.js';
import { writeSafetensors } from '../src/models/safetensors.js';
import { loadContrastPairs, loadLabelled } from '../src/methods/representations/data.js';
import { writeControlVector } from '../src/backends/control-vector.js';
import { steeredGgufCopy } from '../src/backends/gguf-steer.js';
import { checkGgufFile } from '../src/backends/gguf-check.js';
import { exportGguf } from '../src/backends/gguf-export.js';

const SEED = 424242;

async function fuzz(kind: FuzzKind<any>, runs: number, expected: string[]) {
  const r = await campaign(kind, { runs, seed: SEED, timeoutMs: 20_000, shrink: true });
  expect(r.failure, formatReport(r)).toBeUndefined();
  expect(r.runs).toBe(runs);
  // The mutator reaches both sides of each oracle, not only its refusals.
  for (const outcome of expected) expect(r.counts[outcome] ?? 0, `${outcome} in ${formatReport(r)}`).toBeGreaterThan(0);
  return r;
}

describe('the harness', () => {
  const kind = (oracle: (n: number) => Promise<{ outcome: string }>): FuzzKind<number> => ({ name: 'numbers', arbitrary: () => fc.nat({ max: 1000 }), oracle });

  it('counts outcomes, and reports a crash (an exception that is not a verdict) with a shrunk input', async () => {
    const r = await campaign(kind(async (n) => {
      if (n > 500) (undefined as unknown as { x: number }).x;
      return { outcome: n % 2 ? 'odd' : 'even' };
    }), { runs: 200, seed: 1, shrink: true });
    expect(r.failure?.violation).toMatch(/^TypeError: Cannot read properties of undefined/);
    expect(r.failure?.input).toBe('501');
    expect((r.counts.odd ?? 0) + (r.counts.even ?? 0) + r.counts.crash).toBeLessThanOrEqual(200);
    expect(r.counts.crash).toBe(1);
  });

  it('reports a hang past the bound', async () => {
    const r = await campaign(kind(async (n) => (n === 7 ? new Promise(() => {}) : { outcome: 'ok' })), { runs: 50, seed: 2, timeoutMs: 200, shrink: false });
    const again = await campaign(kind(async () => new Promise(() => {})), { runs: 5, seed: 2, timeoutMs: 100 });
    expect(again.failure?.violation).toBe('no answer within 100 ms');
    expect(again.counts).toEqual({ hang: 1 });
    expect(r.failure === undefined || r.failure.violation === 'no answer within 200 ms').toBe(true);
  });
});

describe('fuzzing (fixed seeds)', () => {
  it('GGUF headers: refused cleanly or accepted, and accepted files load in llama.cpp without an abort', async () => {
    await fuzz(ggufKind({ loads: 4 }), 200, ['refused', 'accepted', 'llama.cpp loaded']);
  });

  it('tokenizer.json files: refused cleanly, or loaded and usable', async () => {
    await fuzz(tokenizerKind(), 300, ['refused', 'loaded']);
  });

  it('Workbench API bodies: a done run with finite numbers or a 4xx with a one-line error; the server keeps answering', async () => {
    await fuzz(workbenchKind(), 120, ['refused 400', 'done', 'async done']);
  });

  it('/v1 bodies: a 200 with finite log-probs, a well-formed stream, or a 4xx with a one-line error', async () => {
    await fuzz(openaiKind(), 200, ['refused 400', '200', 'streamed']);
  });
});

describe('fuzzing model folders (fixed seeds)', () => {
  it('config.json: every family, hostile fields: refused cleanly, or loaded with finite logits', async () => {
    await fuzz(configKind(), 80, ['refused', 'accepted']);
  });

  it('model.safetensors: header, offsets, dtypes, shapes, values, truncation: refused cleanly, or loaded with finite logits', async () => {
    await fuzz(safetensorsKind(), 80, ['refused', 'accepted']);
  });

  it('sharded checkpoints: missing shards, paths outside the folder, wrong shards: refused cleanly, or loaded with finite logits', async () => {
    await fuzz(shardedKind(), 60, ['refused', 'accepted']);
  });
});

describe('fuzzing user files (fixed seeds)', () => {
  it('dataset files (.jsonl, .csv, .parquet) with hostile columns: refused cleanly, or examples with text and finite labels', async () => {
    await fuzz(datasetKind(), 300, ['refused', 'accepted']);
  });

  it('chat templates and messages: refused cleanly, or tokens in the vocabulary with spans inside them', async () => {
    await fuzz(chatTemplateKind(), 300, ['refused', 'rendered']);
  });

  it('control vectors baked into a GGUF model: refused cleanly, or a copy that parses and changes only finite ffn_down biases', async () => {
    await fuzz(controlVectorKind(), 150, ['refused', 'steered']);
  });
});

describe('fuzzing the newer Workbench routes (fixed seed)', () => {
  it('steering, heads, neurons, causal, trace, circuits, features, evaluation, runs, jobs, dataset jobs, models: finite 2xx or a one-line 4xx; the server keeps answering', async () => {
    const kind = routesKind();
    const r = await fuzz(kind, 120, ['ok', 'refused 400', 'async done']);
    // Most routes were reached and answered with a result at least once, not only refused.
    const answered = [...kind.reached].filter(([, statuses]) => [...statuses.keys()].some((s) => s < 300)).map(([route]) => route);
    expect(answered.length, `${answered.join(', ')}\n${formatReport(r)}`).toBeGreaterThanOrEqual(20);
    for (const route of ['POST /api/steering', 'POST /api/causal', 'POST /api/heads/scores', 'POST /api/trace', 'POST /api/circuit']) expect(kind.reached.has(route), route).toBe(true);
    for (const route of ['GET /api/dataset-jobs', 'POST /api/dataset-jobs/:id/cancel', 'GET /api/jobs/:id/events']) expect(kind.reached.get(route)?.get(200), route).toBeGreaterThan(0);
  }, 180_000);
});

describe('Workbench routes: what fuzzing found', () => {
  let tmp: string;
  beforeAll(() => {
    tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'lantern-fuzz-routes-found-'));
  });
  afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));

  it('steering: a probe whose held-out examples have one label is a 400 naming it (its AUROC was NaN, sent as null in a 200); a small-context model gets a neutral text that fits', async () => {
    const dir = path.join(tmp, 'steer');
    writeRandomModel(path.join(dir, 'tiny'), TINY_GPT2);
    const app = await buildServer({ dataDir: path.join(dir, 'data'), model: path.join(dir, 'tiny'), allowHub: false, webDir: path.join(dir, 'none') });
    try {
      const res = await app.inject({
        method: 'POST', url: '/api/steering', headers: { host: 'localhost' },
        payload: { prompt: 'The cat sat on the mat because', layer: 0, coef: 2, direction: { source: 'probe', dataset: 'sentiment', kind: 'mass-mean', limit: 8 }, maxNewTokens: 3, temperature: 0.7, seed: 3 },
      });
      expect(res.statusCode, res.body).toBe(400);
      expect(res.json().error).toMatch(/^the probe's \d+ held-out examples of the sentiment dataset all have one label, so its held-out AUROC is undefined: use a larger limit \(now 8\)/);
      // A planted model with a character-level tokenizer and a context of 64: the neutral text the
      // cost is measured on is cut to fit (every request failed with 'prompt 0 is 100 tokens').
      const planted = await app.inject({
        method: 'POST', url: '/api/steering', headers: { host: 'localhost' },
        payload: { model: 'planted:induction', prompt: 'A B C A B', layer: 0, coef: 2, direction: { source: 'pair', positive: 'A', negative: 'B' }, maxNewTokens: 3 },
      });
      expect(planted.statusCode, planted.body).toBe(200);
      const neutral: string = planted.json().settings.neutral[0];
      expect(PLAYGROUND_NEUTRAL[0].startsWith(neutral) && neutral.length > 20).toBe(true);
      const m = await app.lantern.models.load('planted:induction');
      expect(m.toTokens(neutral).length).toBeLessThanOrEqual(m.cfg.nCtx);
      // Cut no shorter than needed: one more word would not fit.
      const oneMore = PLAYGROUND_NEUTRAL[0].split(' ').slice(0, neutral.split(' ').length + 1).join(' ');
      expect(m.toTokens(oneMore).length).toBeGreaterThan(m.cfg.nCtx);
      // A run whose result holds 1e999 (JSON's Infinity) is refused, not saved with null in its place.
      const saved = app.lantern.store.list().total; // the two steering answers above are saved runs
      const run = { format: 'lantern-run', version: 1, kind: 'forward', title: 't', model: 'm', status: 'done', request: {} };
      const bad = await app.inject({ method: 'POST', url: '/api/runs/import', headers: { host: 'localhost', 'content-type': 'application/json' }, payload: `${JSON.stringify({ ...run, result: { p: [0.5] } }).slice(0, -3)}1e999]}}` });
      expect(bad.statusCode, bad.body).toBe(400);
      expect(bad.json().error).toBe("the imported run's result holds Infinity at p[0]; results hold finite numbers only");
      expect(app.lantern.store.list().total).toBe(saved);
      expect(app.lantern.store.list({ kind: 'steering' }).runs.map((r) => r.status).sort()).toEqual(['done', 'error']);
    } finally {
      await app.close();
    }
  }, 60_000);

  it('a leaderboard asking for more bootstrap resamples than POST /api/evaluation/arena allows is a 400 (bootstrap=1e7 kept the server from answering for half a minute)', async () => {
    const dir = path.join(tmp, 'leaderboard');
    const app = await buildServer({ dataDir: dir, allowHub: false, webDir: path.join(dir, 'none') });
    try {
      const store = new EvalStore(path.join(dir, 'evaluation.sqlite'));
      const battles = [{ model_a: 'x', model_b: 'y', winner: 'model_a' }, { model_a: 'x', model_b: 'y', winner: 'model_b' }, { model_a: 'y', model_b: 'x', winner: 'model_a' }];
      const id = store.startRun('judge-pairwise', 'judge', {});
      store.finishRun(id, { battles }, {});
      store.close();
      for (const bootstrap of ['10000000', '1e9', '2001']) {
        const res = await app.inject({ method: 'GET', url: `/api/evaluation/runs/${id}/leaderboard?bootstrap=${bootstrap}`, headers: { host: 'localhost' } });
        expect(res.statusCode, res.body).toBe(400);
        expect(res.json().error).toBe(`bootstrap must be at most 2000, got "${bootstrap}"`);
      }
      const ok = await app.inject({ method: 'GET', url: `/api/evaluation/runs/${id}/leaderboard?bootstrap=2000`, headers: { host: 'localhost' } });
      expect(ok.statusCode, ok.body).toBe(200);
      expect(ok.json()).toEqual(JSON.parse(JSON.stringify(arena(battles as Battle[], { bootstrap: 2000, pseudoTies: 1 }))));
    } finally {
      await app.close();
    }
  });

  it('a route answering directly with a NaN is a 400 naming where, not a 200 with null; a 404 says 404 in its body', async () => {
    const dir = path.join(tmp, 'nan');
    const app = await buildServer({ dataDir: dir, allowHub: false, webDir: path.join(dir, 'none'), plugins: [{ plugin: async (a) => { a.get('/api/nan', async () => ({ scores: [[1, NaN]] })); } }] });
    try {
      const res = await app.inject({ method: 'GET', url: '/api/nan', headers: { host: 'localhost' } });
      expect(res.statusCode).toBe(400);
      expect(res.json().error).toMatch(/^the result has a non-finite number \(NaN at scores\[0\]\[1\]\)/);
      // A missing dashboard set: a 404 whose body says 404 too (it said 400).
      const missing = await app.inject({ method: 'GET', url: '/api/features/sets/nope', headers: { host: 'localhost' } });
      expect([missing.statusCode, missing.json().statusCode]).toEqual([404, 404]);
      expect(missing.json().error).toMatch(/^no dashboard set 'nope' in /);
    } finally {
      await app.close();
    }
  });
});

describe('fuzzing SAE folders (fixed seed)', () => {
  it('SAELens (current and pre-6.0 cfg.json) and Gemma Scope (npz, safetensors): refused cleanly, or finite weights of the declared shapes that run', async () => {
    await fuzz(saeKind(), 300, ['refused', 'accepted saelens', 'accepted gemma-scope']);
  });
});

describe('fuzzing job folders (fixed seed)', () => {
  it('activations and neurons jobs with files corrupted, edited or replaced (FIFO, /dev/zero, folder, loop, huge): every reader ends cleanly, and merges (as-is or after a re-run) equal the clean run', async () => {
    // Regression tests for what this found: test/jobs-damaged.test.ts.
    await fuzz(jobsKind(), 150, ['resumed, reused', 'resumed, recomputed', 'resumed, recomputed (job.json refused)', 'resume refused (job.json refused)']);
  }, 120_000);
});

describe('SAE loading: what fuzzing found', () => {
  let tmp: string;
  let folder: string;
  beforeAll(() => {
    tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'lantern-fuzz-sae-found-'));
    const cfg = { architecture: 'standard' as const, dIn: 2, dSae: 3, dOut: 2, applyBDecToInput: true, normalizeActivations: 'none' as const, hookName: 'blocks.0.hook_resid_pre' };
    const f = (n: number) => Float32Array.from({ length: n }, (_, i) => (i + 1) / 10);
    folder = path.join(tmp, 'sae');
    saveSae(new Sae(cfg, { W_enc: f(6), W_dec: f(6), b_enc: f(3), b_dec: f(2) }), folder, { logSparsity: Float32Array.from([-1, -2, -Infinity]) });
  });
  afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));

  const copy = (name: string) => {
    const to = path.join(tmp, name);
    fs.cpSync(folder, to, { recursive: true });
    return to;
  };
  const patchCfg = (dir: string, patch: Record<string, unknown>) => {
    const cfg = JSON.parse(fs.readFileSync(path.join(dir, 'cfg.json'), 'utf8'));
    fs.writeFileSync(path.join(dir, 'cfg.json'), JSON.stringify({ ...cfg, ...patch }));
  };

  it('the valid folder loads, with its weights and sparsity (a dead feature is -Infinity)', async () => {
    const { sae, logSparsity } = await loadSae(folder);
    expect(Array.from(sae.weights.W_enc)).toEqual(Array.from({ length: 6 }, (_, i) => Math.fround((i + 1) / 10)));
    expect(Array.from(logSparsity!)).toEqual([-1, -2, -Infinity]);
  });

  it('cfg.json that is not JSON is a LanternError on one line (was a SyntaxError trace)', async () => {
    const dir = copy('not-json');
    fs.writeFileSync(path.join(dir, 'cfg.json'), '\u0000\n "architecture": "standard"\n}');
    expect(await asyncRefusal(() => loadSae(dir))).toMatch(/cfg\.json is not valid JSON: /);
    fs.writeFileSync(path.join(dir, 'cfg.json'), '[1, 2]');
    expect(await asyncRefusal(() => loadSae(dir))).toMatch(/cfg\.json must hold a JSON object/);
  });

  it('a NaN or infinite weight is refused, naming the tensor and index (was loaded and spread NaN through every encode)', async () => {
    const dir = copy('nan');
    const f = (n: number) => Float32Array.from({ length: n }, () => 0.5);
    const W_dec = f(6);
    W_dec[4] = NaN;
    writeSafetensors(path.join(dir, 'sae_weights.safetensors'), { W_enc: { dtype: 'F32', shape: [2, 3], data: f(6) }, W_dec: { dtype: 'F32', shape: [3, 2], data: W_dec }, b_enc: { dtype: 'F32', shape: [3], data: f(3) }, b_dec: { dtype: 'F32', shape: [2], data: f(2) } });
    expect(await asyncRefusal(() => loadSae(dir))).toMatch(/W_dec holds NaN at index 4; an SAE's weights must be finite/);
  });

  it('sparsity with NaN or a positive log10 density is refused (was returned as the feature densities)', async () => {
    const dir = copy('sparsity');
    writeSafetensors(path.join(dir, 'sparsity.safetensors'), { sparsity: { dtype: 'F32', shape: [3], data: Float32Array.from([-1, NaN, -2]) } });
    expect(await asyncRefusal(() => loadSae(dir))).toMatch(/feature 1 has log10 density NaN/);
    writeSafetensors(path.join(dir, 'sparsity.safetensors'), { sparsity: { dtype: 'F32', shape: [3], data: Float32Array.from([-1, -2, Infinity]) } });
    expect(await asyncRefusal(() => loadSae(dir))).toMatch(/feature 2 has log10 density Infinity/);
  });

  it('a FIFO or /dev/zero as params.npz or cfg.json is refused (a FIFO params.npz blocked the process forever)', async () => {
    const gemma = path.join(tmp, 'gemma', 'layer_0');
    fs.mkdirSync(gemma, { recursive: true });
    execFileSync('mkfifo', [path.join(gemma, 'params.npz')]);
    expect(await asyncRefusal(() => loadSae(gemma))).toMatch(/params\.npz: params\.npz is not a regular file \(a FIFO\)/);
    fs.rmSync(path.join(gemma, 'params.npz'));
    fs.symlinkSync('/dev/zero', path.join(gemma, 'params.npz'));
    expect(await asyncRefusal(() => loadSae(gemma))).toMatch(/is not a regular file \(a character device\)/);
    const dir = copy('fifo-cfg');
    fs.rmSync(path.join(dir, 'cfg.json'));
    execFileSync('mkfifo', [path.join(dir, 'cfg.json')]);
    expect(await asyncRefusal(() => loadSae(dir))).toMatch(/cfg\.json: cfg\.json is not a regular file \(a FIFO\)/);
  });

  it("an architecture with a line break is quoted on one line; 'constructor' and 'toString' are no architectures", async () => {
    const dir = copy('arch');
    patchCfg(dir, { architecture: 'top\nk' });
    expect(await asyncRefusal(() => loadSae(dir))).toMatch(/unknown SAELens architecture "top\\nk"; Lantern loads standard/);
    for (const arch of ['constructor', 'toString']) {
      patchCfg(dir, { architecture: arch });
      expect(await asyncRefusal(() => loadSae(dir))).toMatch(new RegExp(`unknown SAELens architecture "${arch}"`));
    }
  });
});

describe('user files: what fuzzing found', () => {
  let tmp: string;
  beforeAll(() => {
    tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'lantern-fuzz-files-'));
  });
  afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));


  it('a column name with a line break is quoted on one line; an inherited name (constructor) is no column', async () => {
    const f = path.join(tmp, 'd.jsonl');
    fs.writeFileSync(f, '{"text": "a", "label": 1}\n{"text": "b", "label": 0}\n');
    expect(await asyncRefusal(() => loadLabelled(f, { labelColumn: 'la\nbel' }))).toMatch(/has no column "la\\nbel" \(--label-column\); columns nearest to it: "label"/);
    expect(await asyncRefusal(() => loadLabelled(f, { textColumn: 'constructor' }))).toMatch(/has no column "constructor"/);
  });

  it('contrast pairs whose statements are missing or not text are refused (were read as "null", "[object Object]")', async () => {
    const f = path.join(tmp, 'p.jsonl');
    fs.writeFileSync(f, '{"positive": "x. True", "negative": "x. False", "label": 1}\n{"positive": null, "negative": {}, "label": 0}\n');
    expect(await asyncRefusal(() => loadContrastPairs(f))).toMatch(/row 1 has no text in column "positive"/);
  });

  it('a control vector times a strength that overflows float32 is refused, not baked in as infinities', async () => {
    const dir = path.join(tmp, 'tiny');
    writeRandomModel(dir, { ...TINY_GPT2, nLayers: 3 });
    const model = path.join(tmp, 'tiny.gguf');
    exportGguf(dir, model, { dtype: 'f32' });
    const cv = path.join(tmp, 'cv.gguf');
    writeControlVector(cv, { modelHint: 'gpt2', directions: new Map([[1, new Float32Array(TINY_GPT2.dModel).fill(2)]]) });
    const info = checkGgufFile(model);
    expect(await asyncRefusal(() => steeredGgufCopy(model, info, [{ path: cv, strength: 3e38 }], path.join(tmp, 'steered')))).toMatch(/block 1, times their strengths, overflow float32 at index 0 \(Infinity\)/);
    // Two vectors that each fit but whose sum does not.
    expect(await asyncRefusal(() => steeredGgufCopy(model, info, [{ path: cv, strength: 1e38 }, { path: cv, strength: 1e38 }], path.join(tmp, 'steered')))).toMatch(/overflow float32/);
    expect(fs.existsSync(steeredGgufCopy(model, info, [{ path: cv, strength: 1e30 }], path.join(tmp, 'steered')))).toBe(true);
  });
});

describe('model folder loading: what fuzzing found', () => {
  let tmp: string;
  beforeAll(() => {
    tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'lantern-fuzz-found-'));
  });
  afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));

  it('a FIFO or a device as model.safetensors, a shard or the index is refused, not read forever', () => {
    const fifo = path.join(tmp, 'fifo');
    execFileSync('mkfifo', [fifo]);
    expect(refusal(() => readSafetensorsHeader(fifo))).toMatch(/is a FIFO, not a regular file/);
    expect(refusal(() => readSafetensorsHeader('/dev/zero'))).toMatch(/is a character device, not a regular file/);
    const folder = path.join(tmp, 'sharded');
    fs.mkdirSync(folder);
    fs.symlinkSync(fifo, path.join(folder, 'model.safetensors.index.json'));
    expect(refusal(() => openModelWeights(folder))).toMatch(/index\.json: is a FIFO/);
    fs.rmSync(path.join(folder, 'model.safetensors.index.json'));
    fs.writeFileSync(path.join(folder, 'model.safetensors.index.json'), JSON.stringify({ weight_map: { 'wte.weight': 'model-00001-of-00001.safetensors' } }));
    fs.symlinkSync(fifo, path.join(folder, 'model-00001-of-00001.safetensors'));
    expect(refusal(() => openModelWeights(folder))).toMatch(/model-00001-of-00001\.safetensors: is a FIFO/);
  });

  const withConfig = (name: string, patch: Record<string, unknown>, text?: string) => {
    const folder = path.join(tmp, name);
    writeRandomModel(folder, TINY_GPT2);
    const cfg = { ...JSON.parse(fs.readFileSync(path.join(folder, 'config.json'), 'utf8')), ...patch };
    fs.writeFileSync(path.join(folder, 'config.json'), text ?? JSON.stringify(cfg, null, 2));
    return folder;
  };

  it('config.json that is not JSON: one line, even when V8 quotes text with line breaks', () => {
    const folder = withConfig('nul', {}, '\u0000\n  "model_type": "gpt2"\n}');
    expect(refusal(() => readConfig(folder))).toMatch(/config\.json is not valid JSON: /);
  });

  it("an activation named after an Object.prototype member ('constructor', 'toString') is unsupported, not a function", () => {
    for (const act of ['constructor', 'toString', '__proto__']) {
      expect(refusal(() => readConfig(withConfig(`act-${act}`, { activation_function: act })))).toMatch(/unsupported activation_function/);
    }
  });

  it("GPT-2 with a head_dim that does not split n_embd is a clean error (was Error('unreachable'))", () => {
    expect(refusal(() => readConfig(withConfig('head-dim', { head_dim: 8 })))).toMatch(/head_dim=8 times n_head=4 is not n_embd=64/);
  });
});
