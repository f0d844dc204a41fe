import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { createHash } from 'node:crypto';
import { zipSync } from 'fflate';
import { Graph } from '../src/engine/graph/ir.js';
import { gradients } from '../src/engine/autodiff/grad.js';
import { defaultExecutor } from '../src/engine/runtime/executor.js';
import { Tensor } from '../src/engine/tensor.js';
import { LanternError } from '../src/errors.js';
import { Sae, SaeConfig } from '../src/methods/sae/sae.js';
import { saeLossGraph, defaultTrainConfig } from '../src/methods/sae/train.js';
import { loadSae, saveSae, parseSaeLensConfig } from '../src/methods/sae/io.js';

const FIX = path.join(__dirname, '..', 'fixtures', 'sae');
const ref = JSON.parse(fs.readFileSync(path.join(FIX, 'reference.json'), 'utf8'));
const loaders = JSON.parse(fs.readFileSync(path.join(FIX, 'loaders.json'), 'utf8'));
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'lantern-sae-ref-'));
afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));

function close(actual: ArrayLike<number>, expected: number[], tol = 1e-4): void {
  expect(actual.length).toBe(expected.length);
  let worst = 0;
  for (let i = 0; i < expected.length; i++) worst = Math.max(worst, Math.abs(actual[i] - expected[i]) / Math.max(1, Math.abs(expected[i])));
  expect(worst).toBeLessThan(tol);
}

function configOf(c: any): SaeConfig {
  return {
    architecture: c.architecture, dIn: c.dIn, dSae: c.dSae, dOut: c.dOut, k: c.k, rescaleActsByDecoderNorm: c.rescaleActsByDecoderNorm,
    applyBDecToInput: c.applyBDecToInput, normalizeActivations: c.normalizeActivations, hookName: 'reference',
  };
}

describe('SAE forward, losses and gradients equal the PyTorch reference (scripts/reference/sae_reference.py)', () => {
  for (const [name, entry] of Object.entries<any>(ref.cases)) {
    const cfg = configOf(entry.config);
    if (entry.forward) {
      it(`${name}: inference forward`, async () => {
        const p = entry.params;
        const sae = new Sae(cfg, {
          W_enc: Float32Array.from(p.W_enc), W_dec: Float32Array.from(p.W_dec), b_enc: Float32Array.from(p.b_enc), b_dec: Float32Array.from(p.b_dec),
          threshold: p.threshold ? Float32Array.from(p.threshold) : undefined,
        });
        const out = await sae.run(Float32Array.from(entry.x), ref.batch, ['acts_pre', 'acts_post', 'recons', 'out']);
        for (const k of ['acts_pre', 'acts_post', 'recons', 'out'] as const) close(out[k], entry.forward[k]);
        await sae.release();
      });
    }
    if (entry.training) {
      it(`${name}: training losses and every parameter's gradient`, async () => {
        const c = entry.config;
        const tc = defaultTrainConfig(cfg, { batch: ref.batch, jumpreluBandwidth: c.bandwidth ?? 0.05, auxKCoefficient: c.auxCoefficient ?? 0 });
        const build = () => {
          const { g, loss, params } = saeLossGraph(cfg, tc);
          gradients(g, loss, params).forEach((gr, i) => g.output(`grad:${params[i].name}`, gr));
          return g;
        };
        const shapes: Record<string, number[]> = { W_enc: [cfg.dIn, cfg.dSae], W_dec: [cfg.dSae, cfg.dOut], b_enc: [cfg.dSae], b_dec: [cfg.dOut], log_threshold: [cfg.dSae] };
        const feeds: Record<string, Tensor> = {
          x: Tensor.f32(entry.x, [ref.batch, cfg.dIn]),
          sparsity_coefficient: Tensor.f32([c.coefficient ?? 0], []),
        };
        for (const n of Object.keys(entry.training.grads)) feeds[n] = Tensor.f32(entry.params[n], shapes[n]);
        if (entry.target) feeds.target = Tensor.f32(entry.target, [ref.batch, cfg.dOut]);
        if (c.dead) {
          const dead = c.dead.reduce((a: number, b: number) => a + b, 0);
          feeds.dead = Tensor.f32(c.dead, [cfg.dSae]);
          feeds.aux_scale = Tensor.f32([Math.min(dead / Math.floor(cfg.dIn / 2), 1)], []);
        }
        const out = await defaultExecutor().run(`test:sae-ref:${name}`, build, feeds);
        for (const k of ['loss', 'mse', 'sparsity', 'aux']) close(out[k].f32, [entry.training[k]]);
        if (c.dead || c.coefficient) expect(Math.abs(entry.training.sparsity) + Math.abs(entry.training.aux)).toBeGreaterThan(1e-3);
        for (const [n, g] of Object.entries<number[]>(entry.training.grads)) close(out[`grad:${n}`].f32, g);
        if (name === 'jumprelu') expect(Math.max(...entry.training.grads.log_threshold.map(Math.abs))).toBeGreaterThan(1e-3);
      });
    }
  }
});

const rows = Float32Array.from(loaders.rows);
const nRows = rows.length / loaders.dIn;

async function checkReconstruction(sae: Sae, key: string): Promise<void> {
  const out = await sae.run(rows, nRows, ['acts_post', 'out']);
  close(out.out, loaders.files[key].out);
  const l0 = Array.from({ length: nRows }, (_, r) => out.acts_post.subarray(r * sae.cfg.dSae, (r + 1) * sae.cfg.dSae).filter((a) => a > 0).length);
  expect(l0).toEqual(loaders.files[key].l0);
}

describe('loading SAEs in SAELens and Gemma Scope layouts gives the reference reconstructions', () => {
  it('SAELens 6.x folder (topk) with sparsity.safetensors', async () => {
    const { sae, logSparsity, format } = await loadSae(path.join(FIX, 'saelens-topk'));
    expect(format).toBe('saelens');
    expect(sae.cfg).toMatchObject({ architecture: 'topk', k: 8, hookName: 'blocks.1.hook_resid_post', modelName: 'lantern-demo', dIn: 256, dSae: 64 });
    expect(logSparsity![0]).toBeCloseTo(-5, 5);
    expect(logSparsity![63]).toBeCloseTo(-1, 5);
    await checkReconstruction(sae, 'saelens-topk');
  });
  it('SAELens pre-6.0 folders (hook_point, activation_fn_str, layer_norm; topk from activation_fn_kwargs)', async () => {
    const a = await loadSae(path.join(FIX, 'saelens-pre6'));
    expect(a.sae.cfg).toMatchObject({ architecture: 'standard', normalizeActivations: 'layer_norm', hookName: 'blocks.1.hook_resid_post' });
    await checkReconstruction(a.sae, 'saelens-pre6');
    const b = await loadSae(path.join(FIX, 'saelens-pre6-topk'));
    expect(b.sae.cfg).toMatchObject({ architecture: 'topk', k: 5, normalizeActivations: 'none' });
    await checkReconstruction(b.sae, 'saelens-pre6-topk');
  });
  it('Gemma Scope params.npz and params.safetensors (lower-case keys), hook from the layer_N path', async () => {
    const key = 'gemma-scope-res/layer_1/width_64/average_l0_20';
    const npz = await loadSae(FIX, { path: key });
    expect(npz.format).toBe('gemma-scope');
    expect(npz.sae.cfg).toMatchObject({ architecture: 'jumprelu', hookName: 'blocks.1.hook_resid_post', applyBDecToInput: false });
    await checkReconstruction(npz.sae, key);
    const dir = path.join(tmp, 'gs-st');
    fs.mkdirSync(dir);
    fs.copyFileSync(path.join(FIX, key, 'params.safetensors'), path.join(dir, 'params.safetensors'));
    const st = await loadSae(dir, { hook: 'blocks.1.hook_resid_post' });
    await checkReconstruction(st.sae, key);
  });
  it('saving in SAELens layout and loading back gives the same SAE', async () => {
    const { sae, logSparsity } = await loadSae(path.join(FIX, 'saelens-topk'));
    const out = path.join(tmp, 'saved');
    saveSae(sae, out, { logSparsity });
    const cfgJson = JSON.parse(fs.readFileSync(path.join(out, 'cfg.json'), 'utf8'));
    expect(cfgJson).toMatchObject({ architecture: 'topk', d_in: 256, d_sae: 64, k: 8, metadata: { hook_name: 'blocks.1.hook_resid_post' } });
    const back = await loadSae(out);
    expect(Buffer.from(back.sae.weights.W_dec.buffer).equals(Buffer.from(sae.weights.W_dec.buffer))).toBe(true);
    expect(Array.from(back.logSparsity!)).toEqual(Array.from(logSparsity!));
    await checkReconstruction(back.sae, 'saelens-topk');
  });
});

describe('SAEs from the Hub (id + path) through the Hub cache', () => {
  const files: Record<string, Buffer> = {};
  for (const f of ['cfg.json', 'sae_weights.safetensors', 'sparsity.safetensors']) files[`blocks.1/${f}`] = fs.readFileSync(path.join(FIX, 'saelens-topk', f));
  const commit = createHash('sha1').update('sae-repo').digest('hex');
  let server: http.Server;
  const saved = { HF_ENDPOINT: process.env.HF_ENDPOINT, HF_HOME: process.env.HF_HOME, HF_HUB_OFFLINE: process.env.HF_HUB_OFFLINE };
  const requests: string[] = [];
  beforeAll(async () => {
    server = http.createServer((req, res) => {
      const m = /^\/org\/saes\/resolve\/[^/]+\/(.+)$/.exec(req.url!);
      requests.push(req.url!);
      const body = m && files[decodeURIComponent(m[1])];
      if (!body) return void res.writeHead(404, { 'X-Error-Code': 'EntryNotFound', 'X-Repo-Commit': commit }).end();
      res.writeHead(200, { 'Content-Length': body.length, 'X-Repo-Commit': commit, ETag: `"${createHash('sha1').update(body).digest('hex')}"` });
      res.end(body);
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    process.env.HF_ENDPOINT = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    process.env.HF_HOME = path.join(tmp, 'hf');
    delete process.env.HF_HUB_OFFLINE;
  });
  afterAll(async () => {
    server.closeAllConnections();
    await new Promise((r) => server.close(r));
    for (const [k, v] of Object.entries(saved)) if (v === undefined) delete process.env[k]; else process.env[k] = v;
  });
  it('downloads cfg.json, weights and sparsity once, then loads from the cache', async () => {
    const a = await loadSae('org/saes', { path: 'blocks.1', progress: false });
    await checkReconstruction(a.sae, 'saelens-topk');
    expect(a.logSparsity).toBeDefined();
    const count = requests.length;
    process.env.HF_HUB_OFFLINE = '1';
    const b = await loadSae('org/saes', { path: 'blocks.1', progress: false });
    delete process.env.HF_HUB_OFFLINE;
    expect(requests.length).toBe(count);
    expect(b.sae.cfg.source).toBe('org/saes/blocks.1');
  });
});

describe('bad SAE files give one-line errors naming the problem', () => {
  async function rejects(p: Promise<unknown>, pattern: RegExp): Promise<void> {
    const e = await p.then(() => undefined, (err) => err);
    expect(e).toBeInstanceOf(LanternError);
    expect((e as Error).message).not.toContain('\n');
    expect((e as Error).message).toMatch(pattern);
  }
  it('an unknown SAELens architecture', () => {
    expect(() => parseSaeLensConfig({ architecture: 'gated', d_in: 4, d_sae: 8, metadata: { sae_lens_version: '6.1.0', hook_name: 'h' } })).toThrow(/unknown SAELens architecture "gated".*standard, topk, jumprelu/);
  });
  it('a corrupt npz and a corrupt safetensors', async () => {
    const a = path.join(tmp, 'bad-npz');
    fs.mkdirSync(a);
    fs.writeFileSync(path.join(a, 'params.npz'), Buffer.from('this is not a zip file at all'));
    await rejects(loadSae(a, { hook: 'blocks.0.hook_resid_post' }), /params\.npz is not a valid \.npz/);
    const b = path.join(tmp, 'bad-npy');
    fs.mkdirSync(b);
    fs.writeFileSync(path.join(b, 'params.npz'), zipSync({ 'W_enc.npy': new Uint8Array([1, 2, 3, 4]) }));
    await rejects(loadSae(b, { hook: 'blocks.0.hook_resid_post' }), /W_enc\.npy is not a valid \.npy/);
    const c = path.join(tmp, 'bad-st');
    fs.mkdirSync(c);
    fs.copyFileSync(path.join(FIX, 'saelens-topk', 'cfg.json'), path.join(c, 'cfg.json'));
    fs.writeFileSync(path.join(c, 'sae_weights.safetensors'), fs.readFileSync(path.join(FIX, 'saelens-topk', 'sae_weights.safetensors')).subarray(0, 5000));
    await rejects(loadSae(c), /sae_weights\.safetensors/);
  });
  it('weights whose shapes disagree with cfg.json, and a folder with no SAE', async () => {
    const d = path.join(tmp, 'bad-shape');
    fs.mkdirSync(d);
    const cfg = JSON.parse(fs.readFileSync(path.join(FIX, 'saelens-topk', 'cfg.json'), 'utf8'));
    fs.writeFileSync(path.join(d, 'cfg.json'), JSON.stringify({ ...cfg, d_in: 128 }));
    fs.copyFileSync(path.join(FIX, 'saelens-topk', 'sae_weights.safetensors'), path.join(d, 'sae_weights.safetensors'));
    await rejects(loadSae(d), /W_enc has shape \[256,64\].*d_in 128/);
    await rejects(loadSae(tmp), /holds no SAE/);
  });
});
