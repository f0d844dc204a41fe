// Hub revisions: checkpoint branches of one repo (as Pythia's step1000 … step143000) load
// different weights through the library, the CLI and the Workbench's model references, land in
// the Hugging Face cache layout (refs/<branch>, snapshots/<commit>), and load offline from it.
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadModel } from '../src/models/load.js';
import { writeRandomModel } from '../src/models/random.js';
import { architectureFor } from '../src/models/config.js';
import { weightsHash } from '../src/methods/attribution/index.js';
import { ModelRegistry } from '../src/interfaces/server/models.js';
import { RunStore } from '../src/interfaces/server/store.js';
import { defaultExecutor } from '../src/engine/runtime/executor.js';
import { expectOneLineError, runLantern } from './helpers.js';

const REPO = 'tiny/pythia';
const sha1 = (b: Buffer) => createHash('sha1').update(b).digest('hex');

let tmp: string;
let server: http.Server;
let endpoint: string;
let hits: string[] = [];
/** branch -> commit, commit -> file -> bytes */
const branches: Record<string, string> = {};
const commits: Record<string, Record<string, Buffer>> = {};
const folders: Record<string, string> = {};

function serve(req: http.IncomingMessage, res: http.ServerResponse): void {
  const url = new URL(req.url!, endpoint);
  hits.push(url.pathname);
  const m = /^\/(.+)\/resolve\/([^/]+)\/(.+)$/.exec(url.pathname);
  if (!m || m[1] !== REPO) return void res.writeHead(404, { 'X-Error-Code': 'RepoNotFound' }).end();
  const rev = decodeURIComponent(m[2]);
  const commit = branches[rev] ?? (commits[rev] ? rev : undefined);
  if (commit === undefined) return void res.writeHead(404, { 'X-Error-Code': 'RevisionNotFound' }).end();
  const file = commits[commit][decodeURIComponent(m[3])];
  if (!file) return void res.writeHead(404, { 'X-Error-Code': 'EntryNotFound', 'X-Repo-Commit': commit }).end();
  res.writeHead(200, { 'Content-Length': file.length, 'X-Repo-Commit': commit, ETag: `"${sha1(file)}"` });
  res.end(file);
}

const hfHome = () => path.join(tmp, 'hf-home');
const repoDir = () => path.join(hfHome(), 'hub', `models--${REPO.replace('/', '--')}`);
const ENV_KEYS = ['HF_ENDPOINT', 'HF_HOME', 'HF_HUB_CACHE', 'HUGGINGFACE_HUB_CACHE', 'HF_HUB_OFFLINE'];
const savedEnv = Object.fromEntries(ENV_KEYS.map((k) => [k, process.env[k]]));

beforeAll(async () => {
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'lantern-revisions-'));
  // Two "checkpoints" of one Pythia-shaped (GPT-NeoX) model: same config, different weights.
  const cfg = architectureFor('gpt_neox').presets.tiny;
  for (const [branch, seed] of [['step1000', 1], ['step2000', 2]] as const) {
    const folder = path.join(tmp, branch);
    writeRandomModel(folder, cfg, { seed });
    folders[branch] = folder;
    const files = Object.fromEntries(['config.json', 'tokenizer.json', 'model.safetensors'].map((f) => [f, fs.readFileSync(path.join(folder, f))]));
    const commit = sha1(Buffer.concat([Buffer.from(branch), files['model.safetensors']]));
    commits[commit] = files;
    branches[branch] = commit;
  }
  branches.main = branches.step2000;
  server = http.createServer(serve);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  endpoint = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  for (const k of ENV_KEYS) delete process.env[k];
  process.env.HF_ENDPOINT = endpoint;
  process.env.HF_HOME = hfHome();
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

async function hashOf(source: string, revision?: string): Promise<{ hash: string; hub: unknown }> {
  const model = await loadModel(source, { revision, progress: false });
  try {
    return { hash: await weightsHash(model), hub: model.hub };
  } finally {
    await model.executor.dropWeights(model.weights);
  }
}

describe('Hub revisions', () => {
  it('loads each checkpoint branch with its own weights, into the Hugging Face cache layout', async () => {
    const local = { step1000: (await hashOf(folders.step1000)).hash, step2000: (await hashOf(folders.step2000)).hash };
    expect(local.step1000).not.toBe(local.step2000);
    for (const branch of ['step1000', 'step2000'] as const) {
      const commit = branches[branch];
      const r = await hashOf(REPO, branch);
      expect(r.hash).toBe(local[branch]);
      expect(r.hub).toEqual({ id: REPO, revision: branch, commit });
      expect(fs.readFileSync(path.join(repoDir(), 'refs', branch), 'utf8')).toBe(commit);
      const pointer = path.join(repoDir(), 'snapshots', commit, 'model.safetensors');
      expect(fs.readlinkSync(pointer)).toBe(`../../blobs/${sha1(commits[commit]['model.safetensors'])}`);
      // A repo without tokenizer_config.json is remembered as such, as huggingface_hub does.
      expect(fs.existsSync(path.join(repoDir(), '.no_exist', commit, 'tokenizer_config.json'))).toBe(true);
    }
    // Without a revision: main, here the same commit as step2000.
    expect((await hashOf(REPO)).hub).toEqual({ id: REPO, revision: 'main', commit: branches.step2000 });
    // A commit sha is a revision too, and needs no request once cached.
    hits = [];
    expect((await hashOf(REPO, branches.step1000)).hash).toBe(local.step1000);
    expect(hits).toEqual([]);
  });

  it('loads each revision offline from the cache, and names a revision that is not there', async () => {
    await hashOf(REPO, 'step1000');
    await hashOf(REPO, 'step2000');
    hits = [];
    process.env.HF_HUB_OFFLINE = '1';
    try {
      expect((await hashOf(REPO, 'step1000')).hash).toBe((await hashOf(folders.step1000)).hash);
      expect((await hashOf(REPO, 'step2000')).hash).toBe((await hashOf(folders.step2000)).hash);
      await expect(hashOf(REPO, 'step3000')).rejects.toThrow(/"tiny\/pythia" \(revision step3000\) is not in the Hugging Face cache.*offline/);
    } finally {
      delete process.env.HF_HUB_OFFLINE;
    }
    expect(hits).toEqual([]);
    await expect(hashOf(REPO, 'step3000')).rejects.toThrow('Revision "step3000" of model "tiny/pythia" was not found');
    await expect(hashOf(folders.step1000, 'step1000')).rejects.toThrow(/--revision \(step1000\) applies to Hub ids, but .* is a local folder/);
  });

  it('takes --revision on the command line and records the commit in saved results', async () => {
    const env = { HF_HUB_OFFLINE: undefined, HF_ENDPOINT: endpoint, HF_HOME: hfHome() };
    const run = async (...args: string[]) => {
      const r = await runLantern(['forward', '--model', REPO, '--text', 'Hello there', '--json', ...args], tmp, env);
      expect(r.code, r.stderr).toBe(0);
      return JSON.parse(r.stdout);
    };
    const [a, b] = [await run('--revision', 'step1000'), await run('--revision', 'step2000')];
    expect(a.hub).toEqual({ id: REPO, revision: 'step1000', commit: branches.step1000 });
    expect(b.hub).toEqual({ id: REPO, revision: 'step2000', commit: branches.step2000 });
    // Each revision's predictions are its own checkpoint's (the local folders give the references).
    const local = async (branch: string) => {
      const r = await runLantern(['forward', '--model', folders[branch], '--text', 'Hello there', '--json'], tmp);
      return JSON.parse(r.stdout).predictions;
    };
    expect(a.predictions).toEqual(await local('step1000'));
    expect(b.predictions).toEqual(await local('step2000'));
    expect(a.predictions).not.toEqual(b.predictions);
    // Offline (runLantern's default), each revision comes from the cache.
    const offline = await runLantern(['forward', '--model', REPO, '--revision', 'step1000', '--text', 'Hello there', '--json'], tmp, { HF_HOME: hfHome() });
    expect(JSON.parse(offline.stdout).predictions).toEqual(a.predictions);
    expectOneLineError(await runLantern(['forward', '--model', REPO, '--revision', 'nope', '--text', 'x'], tmp, env), /Revision "nope" of model "tiny\/pythia" was not found/);
  });

  it("lets the Workbench name a revision as 'hub:<id>@<revision>'", async () => {
    const store = new RunStore(path.join(tmp, 'runs.sqlite'));
    try {
      const registry = new ModelRegistry({ store, executor: defaultExecutor(), plantedDir: path.join(tmp, 'planted') });
      const m = await registry.load(`hub:${REPO}@step1000`);
      expect(m.hub?.commit).toBe(branches.step1000);
      expect(await weightsHash(m)).toBe((await hashOf(folders.step1000)).hash);
      expect((await registry.load(`hub:${REPO}@step2000`)).hub?.commit).toBe(branches.step2000);
      await expect(registry.resolve(`hub:${REPO}@../x`)).rejects.toThrow("'../x' is not a Hub revision");
    } finally {
      store.close();
    }
  });
});
