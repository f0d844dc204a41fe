import { createHash, randomBytes } from 'node:crypto';
import fs from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { LanternError } from '../src/errors.js';
import { hubCacheDir, resolveModelFolder } from '../src/models/hub.js';

// A miniature Hugging Face Hub: /{repo}/resolve/{rev}/{file}, LFS files behind a 302 to /cdn/..., Hub error headers.

interface RepoFile {
  bytes: Buffer;
  lfs?: boolean;
  truncate?: boolean;
}
interface Repo {
  commit: string;
  files: Record<string, RepoFile>;
  token?: string;
}

const TOKEN = 'hf_test_secret_token';
const sha1 = (b: Buffer) => createHash('sha1').update(b).digest('hex');
const sha256 = (b: Buffer) => createHash('sha256').update(b).digest('hex');
const json = (v: unknown) => ({ bytes: Buffer.from(JSON.stringify(v)) });
const commitOf = (name: string) => sha1(Buffer.from(name));

const config = json({ model_type: 'gpt2', n_layer: 2, n_embd: 8 });
const tokenizer = json({ version: '1.0', model: { type: 'BPE', vocab: { a: 0 } } });
const weights = randomBytes(1_500_000);
const shard1 = randomBytes(3000);
const shard2 = randomBytes(2000);
const shardNames = ['model-00001-of-00002.safetensors', 'model-00002-of-00002.safetensors'];

const repos: Record<string, Repo> = {
  'tiny/gpt': {
    commit: commitOf('tiny/gpt'),
    files: { 'config.json': config, 'tokenizer.json': tokenizer, 'model.safetensors': { bytes: weights, lfs: true } },
  },
  'tiny/sharded': {
    commit: commitOf('tiny/sharded'),
    files: {
      'config.json': config,
      'tokenizer.json': tokenizer,
      'model.safetensors.index.json': json({
        metadata: { total_size: 5000 },
        weight_map: { 'wte.weight': shardNames[0], 'h.0.attn.weight': shardNames[0], 'ln_f.weight': shardNames[1] },
      }),
      [shardNames[0]]: { bytes: shard1, lfs: true },
      [shardNames[1]]: { bytes: shard2, lfs: true },
    },
  },
  'tiny/gated': {
    commit: commitOf('tiny/gated'),
    token: TOKEN,
    files: { 'config.json': config, 'tokenizer.json': tokenizer, 'model.safetensors': { bytes: randomBytes(4000), lfs: true } },
  },
  'tiny/truncated': {
    commit: commitOf('tiny/truncated'),
    files: { 'config.json': config, 'tokenizer.json': tokenizer, 'model.safetensors': { bytes: randomBytes(50_000), lfs: true, truncate: true } },
  },
};

interface Hit {
  url: string;
  authorization: string | undefined;
}
let hits: Hit[] = [];
let server: http.Server;
let endpoint: string;

function serve(req: http.IncomingMessage, res: http.ServerResponse): void {
  const url = new URL(req.url!, endpoint);
  hits.push({ url: url.pathname, authorization: req.headers.authorization });

  const cdn = /^\/cdn\/([^/]+)\/(.+)$/.exec(url.pathname);
  if (cdn) {
    const file = repos[decodeURIComponent(cdn[1])]?.files[decodeURIComponent(cdn[2])];
    if (!file) return void res.writeHead(404).end();
    res.writeHead(200, { 'Content-Length': file.bytes.length, 'Content-Type': 'application/octet-stream' });
    if (!file.truncate) return void res.end(file.bytes);
    // Less than Content-Length promised, then the connection drops.
    res.write(file.bytes.subarray(0, file.bytes.length / 2));
    setTimeout(() => res.socket?.destroy(), 10);
    return;
  }

  const m = /^\/(.+)\/resolve\/([^/]+)\/(.+)$/.exec(url.pathname);
  if (!m) return void res.writeHead(404).end();
  const [repoId, rev, file] = [m[1], decodeURIComponent(m[2]), decodeURIComponent(m[3])];
  // Like the Hub's answer for a renamed repo: a relative redirect to the new name.
  if (repoId === 'gpt2') return void res.writeHead(307, { Location: `/tiny/gpt/resolve/${m[2]}/${m[3]}` }).end();

  const repo = repos[repoId];
  if (!repo) return void res.writeHead(404, { 'X-Error-Code': 'RepoNotFound' }).end('Repository not found');
  if (repo.token && req.headers.authorization !== `Bearer ${repo.token}`) {
    return void res.writeHead(401, { 'X-Error-Code': 'GatedRepo' }).end('Access to model is restricted');
  }
  if (rev !== 'main' && rev !== repo.commit) return void res.writeHead(404, { 'X-Error-Code': 'RevisionNotFound' }).end();
  const entry = repo.files[file];
  if (!entry) return void res.writeHead(404, { 'X-Error-Code': 'EntryNotFound', 'X-Repo-Commit': repo.commit }).end();

  if (entry.lfs) {
    res.writeHead(302, {
      Location: `${endpoint}/cdn/${encodeURIComponent(repoId)}/${encodeURIComponent(file)}`,
      'X-Repo-Commit': repo.commit,
      'X-Linked-Etag': `"${sha256(entry.bytes)}"`,
      'X-Linked-Size': entry.bytes.length,
      ETag: '"not-the-blob-etag"',
    });
    return void res.end();
  }
  res.writeHead(200, { 'Content-Length': entry.bytes.length, 'X-Repo-Commit': repo.commit, ETag: `W/"${sha1(entry.bytes)}"` });
  res.end(entry.bytes);
}

const ENV_KEYS = ['HF_ENDPOINT', 'HF_HOME', 'HF_HUB_CACHE', 'HUGGINGFACE_HUB_CACHE', 'HF_HUB_OFFLINE', 'HF_TOKEN', 'HUGGING_FACE_HUB_TOKEN', 'HF_TOKEN_PATH', 'XDG_CACHE_HOME'];
const savedEnv = Object.fromEntries(ENV_KEYS.map((k) => [k, process.env[k]]));
let tmp: string;
let hfHome: string;

beforeAll(async () => {
  server = http.createServer(serve);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  endpoint = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'lantern-hub-'));
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

beforeEach(() => {
  for (const k of ENV_KEYS) delete process.env[k];
  hfHome = fs.mkdtempSync(path.join(tmp, 'home-'));
  process.env.HF_HOME = hfHome;
  process.env.HF_ENDPOINT = endpoint;
  hits = [];
});

const repoDir = (id: string) => path.join(hfHome, 'hub', `models--${id.replaceAll('/', '--')}`);
const quiet = { progress: false };

async function rejection(p: Promise<unknown>): Promise<LanternError> {
  const e = await p.then(
    () => undefined,
    (err: unknown) => err,
  );
  expect(e).toBeInstanceOf(LanternError);
  expect((e as Error).message).not.toContain('\n');
  return e as LanternError;
}

describe('resolveModelFolder from the Hub', () => {
  it('downloads into the huggingface_hub cache layout and reuses it without requests', async () => {
    const events: { file: string; received: number; total: number | undefined }[] = [];
    const folder = await resolveModelFolder('tiny/gpt', { ...quiet, onProgress: (e) => events.push(e) });

    const dir = repoDir('tiny/gpt');
    const commit = repos['tiny/gpt'].commit;
    expect(folder).toBe(path.join(dir, 'snapshots', commit));
    expect(fs.readFileSync(path.join(dir, 'refs', 'main'), 'utf8')).toBe(commit);

    const etags: Record<string, string> = {
      'config.json': sha1(config.bytes),
      'tokenizer.json': sha1(tokenizer.bytes),
      'model.safetensors': sha256(weights),
    };
    for (const [file, etag] of Object.entries(etags)) {
      const pointer = path.join(folder, file);
      expect(fs.lstatSync(pointer).isSymbolicLink()).toBe(true);
      expect(fs.readlinkSync(pointer)).toBe(`../../blobs/${etag}`);
      expect(fs.readFileSync(pointer).equals(repos['tiny/gpt'].files[file].bytes)).toBe(true);
    }
    expect(fs.readdirSync(path.join(dir, 'blobs')).sort()).toEqual(Object.values(etags).sort());
    // Missing optional files are remembered the way huggingface_hub does it.
    for (const file of ['model.safetensors.index.json', 'tokenizer_config.json', 'chat_template.jinja']) {
      expect(fs.existsSync(path.join(dir, '.no_exist', commit, file))).toBe(true);
    }

    // The LFS file came from the CDN location; every file after the first was asked for by commit sha.
    expect(hits.map((h) => h.url)).toEqual([
      '/tiny/gpt/resolve/main/config.json',
      `/tiny/gpt/resolve/${commit}/tokenizer.json`,
      `/tiny/gpt/resolve/${commit}/tokenizer_config.json`,
      `/tiny/gpt/resolve/${commit}/chat_template.jinja`,
      `/tiny/gpt/resolve/${commit}/model.safetensors.index.json`,
      `/tiny/gpt/resolve/${commit}/model.safetensors`,
      '/cdn/tiny%2Fgpt/model.safetensors',
    ]);

    const weightEvents = events.filter((e) => e.file === 'model.safetensors');
    expect(weightEvents.length).toBeGreaterThan(1);
    for (let i = 1; i < weightEvents.length; i++) expect(weightEvents[i].received).toBeGreaterThan(weightEvents[i - 1].received);
    expect(weightEvents.every((e) => e.total === weights.length)).toBe(true);
    expect(weightEvents.at(-1)!.received).toBe(weights.length);

    hits = [];
    expect(await resolveModelFolder('tiny/gpt', quiet)).toBe(folder);
    expect(await resolveModelFolder('tiny/gpt', { ...quiet, revision: commit })).toBe(folder);
    expect(hits).toEqual([]);
  });

  it('works offline from the cache and fails clearly when the model is not cached', async () => {
    const folder = await resolveModelFolder('tiny/gpt', quiet);
    hits = [];
    expect(await resolveModelFolder('tiny/gpt', { ...quiet, offline: true })).toBe(folder);
    process.env.HF_HUB_OFFLINE = '1';
    expect(await resolveModelFolder('tiny/gpt', quiet)).toBe(folder);
    const e = await rejection(resolveModelFolder('tiny/sharded', quiet));
    expect(e.message).toMatch(/"tiny\/sharded".*not in the Hugging Face cache.*offline/);
    expect(hits).toEqual([]);
  });

  it('downloads a sharded model: the index and every shard it lists', async () => {
    const folder = await resolveModelFolder('tiny/sharded', quiet);
    for (const name of ['model.safetensors.index.json', ...shardNames]) {
      expect(fs.readFileSync(path.join(folder, name)).equals(repos['tiny/sharded'].files[name].bytes)).toBe(true);
    }
    expect(fs.existsSync(path.join(folder, 'model.safetensors'))).toBe(false);
    expect(hits.some((h) => h.url.endsWith('/model.safetensors'))).toBe(false);
    hits = [];
    process.env.HF_HUB_OFFLINE = 'true';
    expect(await resolveModelFolder('tiny/sharded', quiet)).toBe(folder);
  });

  it('sends HF_TOKEN to the Hub only, and explains gated repos without it', async () => {
    const e = await rejection(resolveModelFolder('tiny/gated', quiet));
    expect(e.message).toMatch(/gated.*HF_TOKEN/);
    expect(fs.existsSync(path.join(repoDir('tiny/gated'), 'snapshots'))).toBe(false);

    process.env.HF_TOKEN = TOKEN;
    const folder = await resolveModelFolder('tiny/gated', quiet);
    expect(fs.readFileSync(path.join(folder, 'model.safetensors')).equals(repos['tiny/gated'].files['model.safetensors'].bytes)).toBe(true);
    const withToken = hits.filter((h) => h.authorization === `Bearer ${TOKEN}`);
    expect(withToken.map((h) => h.url)).toContain('/tiny/gated/resolve/main/config.json');
    // Like huggingface_hub, the pre-signed CDN location gets no token.
    expect(hits.filter((h) => h.url.startsWith('/cdn/')).map((h) => h.authorization)).toEqual([undefined]);

    process.env.HF_TOKEN = 'hf_wrong_token';
    const wrong = await rejection(resolveModelFolder('tiny/gated', { ...quiet, revision: repos['tiny/gated'].commit, files: ['other.json'] }));
    expect(wrong.message).toMatch(/token in HF_TOKEN was sent and refused/);
    expect(wrong.message).not.toContain('hf_wrong_token');
  });

  it('gives one-line errors for unknown repos, files and revisions', async () => {
    const repo = await rejection(resolveModelFolder('nobody/nothing', quiet));
    expect(repo.message).toMatch(/Model "nobody\/nothing" was not found on http:\/\/127\.0\.0\.1:\d+ \(HTTP 404\).*HF_TOKEN/);

    const file = await rejection(resolveModelFolder('tiny/gpt', { ...quiet, files: ['config.json', 'missing.bin'] }));
    expect(file.message).toMatch(/File "missing\.bin" was not found in model "tiny\/gpt"/);

    const rev = await rejection(resolveModelFolder('tiny/gpt', { ...quiet, revision: 'v9' }));
    expect(rev.message).toMatch(/Revision "v9" .*not found/);

    for (const bad of ['bad--name', 'org/na me', 'x.git']) {
      expect((await rejection(resolveModelFolder(bad, quiet))).message).toMatch(/valid Hugging Face model id/);
    }
    expect(hits.filter((h) => h.url.includes('bad'))).toEqual([]);
  });

  it('names the endpoint when the network fails', async () => {
    const closed = http.createServer();
    await new Promise<void>((resolve) => closed.listen(0, '127.0.0.1', resolve));
    const port = (closed.address() as AddressInfo).port;
    await new Promise((resolve) => closed.close(resolve));
    process.env.HF_ENDPOINT = `http://127.0.0.1:${port}`;
    const e = await rejection(resolveModelFolder('tiny/gpt', quiet));
    expect(e.message).toContain(`Cannot reach http://127.0.0.1:${port}`);
    expect(e.message).toMatch(/ECONNREFUSED/);
  });

  it('rejects a truncated download and leaves nothing broken in the cache', async () => {
    const e = await rejection(resolveModelFolder('tiny/truncated', quiet));
    expect(e.message).toMatch(/"model\.safetensors".*cut off after \d+ of 50000 bytes/);
    const dir = repoDir('tiny/truncated');
    const snapshot = path.join(dir, 'snapshots', repos['tiny/truncated'].commit);
    expect(fs.readdirSync(snapshot).sort()).toEqual(['config.json', 'tokenizer.json']);
    const blobs = fs.readdirSync(path.join(dir, 'blobs'));
    expect(blobs).toHaveLength(2);
    expect(blobs.some((b) => b.includes('incomplete'))).toBe(false);
  });

  it('follows relative redirects of renamed repos, keeping the requested id in the cache', async () => {
    // The temp file of a killed download (no such pid) must not outlive the next download of that blob.
    const stale = path.join(repoDir('gpt2'), 'blobs', `${sha256(weights)}.99999999.incomplete`);
    fs.mkdirSync(path.dirname(stale), { recursive: true });
    fs.writeFileSync(stale, 'partial');
    const folder = await resolveModelFolder('gpt2', { ...quiet, progress: true });
    expect(fs.existsSync(stale)).toBe(false);
    expect(folder).toBe(path.join(repoDir('gpt2'), 'snapshots', repos['tiny/gpt'].commit));
    expect(fs.readFileSync(path.join(folder, 'model.safetensors')).equals(weights)).toBe(true);
  });

  it('reuses blobs already in the cache for a file the snapshot lacks', async () => {
    await resolveModelFolder('tiny/gpt', quiet);
    const snapshot = path.join(repoDir('tiny/gpt'), 'snapshots', repos['tiny/gpt'].commit);
    fs.unlinkSync(path.join(snapshot, 'model.safetensors'));
    hits = [];
    await resolveModelFolder('tiny/gpt', quiet);
    expect(hits.some((h) => h.url.startsWith('/cdn/'))).toBe(false);
    expect(fs.readFileSync(path.join(snapshot, 'model.safetensors')).equals(weights)).toBe(true);
  });
});

describe('resolveModelFolder with a local folder', () => {
  it('returns a folder with config.json as is, and rejects others', async () => {
    const folder = fs.mkdtempSync(path.join(tmp, 'local-'));
    fs.writeFileSync(path.join(folder, 'config.json'), '{}');
    expect(await resolveModelFolder(folder)).toBe(folder);

    const empty = fs.mkdtempSync(path.join(tmp, 'empty-'));
    expect((await rejection(resolveModelFolder(empty))).message).toMatch(/has no config\.json/);
    expect((await rejection(resolveModelFolder(path.join(folder, 'config.json')))).message).toMatch(/is a file/);
    expect((await rejection(resolveModelFolder(path.join(tmp, 'missing')))).message).toMatch(/No model folder at/);
    expect((await rejection(resolveModelFolder('./missing-model'))).message).toMatch(/No model folder at/);
    expect(hits).toEqual([]);
  });
});

describe('hubCacheDir', () => {
  it('follows huggingface_hub precedence', () => {
    process.env.HF_HUB_CACHE = '/a/hub';
    process.env.HF_HOME = '/b';
    expect(hubCacheDir()).toBe('/a/hub');
    delete process.env.HF_HUB_CACHE;
    expect(hubCacheDir()).toBe(path.join('/b', 'hub'));
    delete process.env.HF_HOME;
    process.env.XDG_CACHE_HOME = '/c';
    expect(hubCacheDir()).toBe(path.join('/c', 'huggingface', 'hub'));
    delete process.env.XDG_CACHE_HOME;
    expect(hubCacheDir()).toBe(path.join(os.homedir(), '.cache', 'huggingface', 'hub'));
  });
});
