import { createWriteStream, readFileSync } from 'node:fs';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { pipeline } from 'node:stream/promises';
import cliProgress from 'cli-progress';
import type { SingleBar } from 'cli-progress';
import { LanternError } from '../errors.js';

export interface DownloadProgress {
  file: string;
  received: number;
  total: number | undefined;
}

/** Options for {@link resolveModel} and {@link resolveModelFolder}: revision, files, offline mode and progress reporting. */
export interface ResolveOptions {
  /** Branch, tag or commit sha; default 'main'. */
  revision?: string;
  /** Files to fetch, relative to the repo root. Default: config.json, tokenizer.json and the safetensors weights (single file, or index plus shards). */
  files?: string[];
  /** Files fetched when the repo has them and skipped when it does not (with `files`). */
  optionalFiles?: string[];
  /** Never touch the network; also on when HF_HUB_OFFLINE is 1/true/yes/on. */
  offline?: boolean;
  /** Progress bar on stderr; default: process.stderr.isTTY. */
  progress?: boolean;
  /** Called as each chunk of a download arrives, with the file name and bytes received so far (and the total, when known). */
  onProgress?: (e: DownloadProgress) => void;
  /** The fetch function used for Hub requests; default: the global fetch (replace it to use a proxy or a test double). */
  fetchImpl?: typeof fetch;
}

const DEFAULT_ENDPOINT = 'https://huggingface.co';
const CONFIG = 'config.json';
const BASE_FILES = [CONFIG, 'tokenizer.json'];
// Read when the repo has them (BOS handling, chat templates); a repo without them still loads.
const OPTIONAL_FILES = ['tokenizer_config.json', 'chat_template.jinja'];
const WEIGHTS = 'model.safetensors';
const WEIGHTS_INDEX = 'model.safetensors.index.json';
const COMMIT_SHA = /^[0-9a-f]{40}$/;
// huggingface_hub's REPO_ID_REGEX, restricted to ASCII.
const REPO_ID = /^(\b[\w.-]+\b\/)?\b[\w.-]+\b$/;
const BAR_MIN_BYTES = 1 << 20;

/** Where huggingface_hub keeps its cache, with the same environment variables and precedence. */
export function hubCacheDir(): string {
  const explicit = process.env.HF_HUB_CACHE || process.env.HUGGINGFACE_HUB_CACHE;
  return explicit ? expandHome(explicit) : path.join(hfHome(), 'hub');
}

/**
 * A path to an existing folder is returned as is (must contain config.json, else LanternError).
 * Otherwise `source` is a Hub id (`gpt2` or `org/name`), downloaded into the standard Hugging Face
 * cache layout; the snapshot folder is returned.
 */
export async function resolveModelFolder(source: string, opts: ResolveOptions = {}): Promise<string> {
  return (await resolveModel(source, opts)).folder;
}

/** Where a model came from: its folder, and for a Hub id the revision asked for and the commit it resolved to. */
export interface ResolvedModel {
  folder: string;
  hub?: { id: string; revision: string; commit: string };
}

/** resolveModelFolder, telling also which commit of a Hub repo the folder holds. */
export async function resolveModel(source: string, opts: ResolveOptions = {}): Promise<ResolvedModel> {
  const local = await localFolder(source);
  if (local !== undefined) {
    if (opts.revision !== undefined) throw new LanternError(`--revision (${opts.revision}) applies to Hub ids, but ${source} is a local folder`);
    return { folder: local };
  }
  const folder = await resolveHubFolder(source, opts);
  return { folder, hub: { id: source, revision: opts.revision ?? 'main', commit: path.basename(folder) } };
}

async function resolveHubFolder(source: string, opts: ResolveOptions): Promise<string> {
  checkRepoId(source);
  const revision = opts.revision ?? 'main';
  checkRelativePath(revision, 'revision');
  for (const file of opts.files ?? []) checkRelativePath(file, 'file name');
  for (const file of opts.optionalFiles ?? []) checkRelativePath(file, 'file name');
  if (opts.files?.length === 0 && !opts.optionalFiles?.length) throw new LanternError('resolveModelFolder: `files` must name at least one file.');

  const cache = hubCacheDir();
  const repoDir = path.join(cache, `models--${source.replaceAll('/', '--')}`);
  const offline = opts.offline || isTrue(process.env.HF_HUB_OFFLINE);
  const cached = await cachedSnapshot(repoDir, revision, opts.files, offline, opts.optionalFiles);
  if (cached !== undefined) return cached;

  if (offline) {
    throw new LanternError(
      `Model "${source}" (revision ${revision}) is not in the Hugging Face cache at ${cache}, and offline mode is on (HF_HUB_OFFLINE or the offline option); ` +
        'turn it off to download the model, or copy the cache from a machine that has it.',
    );
  }
  return new HubDownload(source, revision, repoDir, opts).run();
}

async function localFolder(source: string): Promise<string | undefined> {
  const stat = await fs.stat(source).catch(() => undefined);
  if (stat?.isDirectory()) {
    if (!(await exists(path.join(source, CONFIG)))) {
      throw new LanternError(`${source} has no config.json; a model folder needs the Hugging Face layout (config.json, tokenizer.json, model.safetensors).`);
    }
    return source;
  }
  // Hub ids cannot take these shapes, so the user meant a local path.
  if (/^[.~/\\]/.test(source) || source.includes('\\') || source.split('/').length > 2 || path.isAbsolute(source)) {
    throw new LanternError(stat ? `${source} is a file; give the model folder that contains it.` : `No model folder at ${source}.`);
  }
  return undefined;
}

function checkRepoId(id: string): void {
  if (!REPO_ID.test(id) || id.includes('--') || id.includes('..') || id.endsWith('.git') || id.length > 96) {
    throw new LanternError(
      `"${id}" is neither an existing folder nor a valid Hugging Face model id (like gpt2 or org/name: letters, digits, '-', '_', '.'; no '--' or '..').`,
    );
  }
}

// Revisions and file names become cache paths; one from a hostile index must not escape the repo folder.
function checkRelativePath(p: string, what: string): void {
  if (p === '' || path.isAbsolute(p) || p.includes('\\') || p.split('/').some((s) => s === '' || s === '.' || s === '..')) {
    throw new LanternError(`Invalid ${what} "${p}".`);
  }
}

async function cachedSnapshot(repoDir: string, revision: string, files: string[] | undefined, offline: boolean, optional: string[] = []): Promise<string | undefined> {
  const commit = COMMIT_SHA.test(revision) ? revision : await readRef(repoDir, revision);
  if (commit === undefined) return undefined;
  const snapshot = path.join(repoDir, 'snapshots', commit);
  const wanted = files ?? [...BASE_FILES, ...(await cachedWeights(snapshot))];
  for (const file of wanted) if (!(await exists(path.join(snapshot, file)))) return undefined;
  // An optional file neither cached nor known to be missing is worth asking for, unless offline.
  if ((files === undefined || optional.length) && !offline) {
    for (const file of files === undefined ? [...OPTIONAL_FILES, ...optional] : optional) {
      if (!(await exists(path.join(snapshot, file))) && !(await exists(path.join(repoDir, '.no_exist', commit, file)))) return undefined;
    }
  }
  return snapshot;
}

async function cachedWeights(snapshot: string): Promise<string[]> {
  const index = path.join(snapshot, WEIGHTS_INDEX);
  if (!(await exists(index))) return [WEIGHTS];
  return [WEIGHTS_INDEX, ...shardsOf(await fs.readFile(index, 'utf8'), index)];
}

async function readRef(repoDir: string, revision: string): Promise<string | undefined> {
  const sha = (await fs.readFile(path.join(repoDir, 'refs', revision), 'utf8').catch(() => '')).trim();
  return COMMIT_SHA.test(sha) ? sha : undefined;
}

function shardsOf(json: string, where: string): string[] {
  let weightMap: unknown;
  try {
    weightMap = (JSON.parse(json) as { weight_map?: unknown }).weight_map;
  } catch {
    weightMap = undefined;
  }
  if (typeof weightMap !== 'object' || weightMap === null) {
    throw new LanternError(`${where} is not a safetensors index (no weight_map object).`);
  }
  const shards = [...new Set(Object.values(weightMap))];
  for (const shard of shards) {
    if (typeof shard !== 'string') throw new LanternError(`${where} maps a tensor to a non-string shard name.`);
    checkRelativePath(shard, `shard name in ${where}`);
  }
  return shards as string[];
}

interface FileMetadata {
  commit: string;
  etag: string;
  size: number | undefined;
  /** Set when the Hub redirected to a CDN; otherwise the body of `res` is the file. */
  location: string | undefined;
  res: Response;
}

// One download per blob at a time within this process; other processes are kept apart by pid-named temp files.
const blobsInFlight = new Map<string, Promise<void>>();

class HubDownload {
  private readonly endpoint = (process.env.HF_ENDPOINT || DEFAULT_ENDPOINT).replace(/\/+$/, '');
  private readonly token = hfToken();
  private readonly fetch: typeof fetch;
  private readonly progress: boolean;
  private commit: string | undefined;

  constructor(
    private readonly repoId: string,
    private readonly revision: string,
    private readonly repoDir: string,
    private readonly opts: ResolveOptions,
  ) {
    this.fetch = opts.fetchImpl ?? fetch;
    this.progress = opts.progress ?? process.stderr.isTTY === true;
  }

  async run(): Promise<string> {
    for (const file of this.opts.files ?? BASE_FILES) await this.get(file);
    for (const file of this.opts.optionalFiles ?? []) await this.get(file, true);
    if (this.opts.files === undefined) {
      for (const file of OPTIONAL_FILES) await this.get(file, true);
      if (await this.get(WEIGHTS_INDEX, true)) {
        const index = path.join(this.snapshot(), WEIGHTS_INDEX);
        for (const shard of shardsOf(await fs.readFile(index, 'utf8'), index)) await this.get(shard);
      } else {
        await this.get(WEIGHTS);
      }
    }
    return this.snapshot();
  }

  private snapshot(): string {
    return path.join(this.repoDir, 'snapshots', this.commit!);
  }

  /** Puts `file` into the snapshot; false when `optional` and the repo has no such file. */
  private async get(file: string, optional = false): Promise<boolean> {
    // A commit's snapshot never changes, so once the commit is known a present file needs no request.
    if (this.commit !== undefined && (await exists(path.join(this.snapshot(), file)))) return true;

    const meta = await this.metadata(file, optional);
    if (meta === undefined) return false;
    const { res } = meta;
    const pointer = path.join(this.snapshot(), file);
    const blob = path.join(this.repoDir, 'blobs', meta.etag);
    if ((await exists(pointer)) || (await exists(blob))) {
      await res.body?.cancel();
    } else {
      let pending = blobsInFlight.get(blob);
      if (pending === undefined) {
        pending = this.download(file, meta, blob).finally(() => blobsInFlight.delete(blob));
        blobsInFlight.set(blob, pending);
      } else {
        await res.body?.cancel();
      }
      await pending;
    }
    await linkPointer(blob, pointer);
    return true;
  }

  private async metadata(file: string, optional: boolean): Promise<FileMetadata | undefined> {
    const rev = this.commit ?? this.revision;
    const filePath = file.split('/').map(encodeURIComponent).join('/');
    let url = `${this.endpoint}/${this.repoId}/resolve/${encodeURIComponent(rev)}/${filePath}`;
    let res: Response;
    let location: string | undefined;
    // Relative redirects are renamed repos (gpt2 -> openai-community/gpt2) and keep the Hub's headers;
    // an absolute one is the CDN holding an LFS file, described by the headers of the redirect itself.
    for (let hops = 0; ; hops++) {
      res = await this.request(url, { redirect: 'manual', headers: this.headers(true) }, this.endpoint);
      const target = res.headers.get('location');
      if (res.status < 300 || res.status >= 400 || target === null) break;
      await res.body?.cancel();
      if (/^([a-z][a-z\d+.-]*:)?\/\//i.test(target)) {
        location = new URL(target, url).href;
        break;
      }
      if (hops === 10) throw new LanternError(`${this.endpoint} redirected "${file}" of "${this.repoId}" too many times.`);
      url = new URL(target, url).href;
    }

    if (res.status >= 400 || (location === undefined && res.status !== 200)) {
      await res.body?.cancel();
      const code = res.headers.get('x-error-code');
      const missingFile = code === 'EntryNotFound' || (code === null && res.status === 404 && this.commit !== undefined);
      if (optional && missingFile) {
        await this.rememberMissing(file, res.headers.get('x-repo-commit'));
        return undefined;
      }
      throw this.httpError(res, file, missingFile);
    }

    const commit = res.headers.get('x-repo-commit');
    const etag = normalizeEtag(res.headers.get('x-linked-etag') ?? res.headers.get('etag'));
    if (commit === null || !COMMIT_SHA.test(commit) || etag === undefined) {
      await res.body?.cancel();
      throw new LanternError(
        `${this.endpoint} answered for "${file}" of "${this.repoId}" without usable X-Repo-Commit and ETag headers of a Hugging Face Hub; check HF_ENDPOINT.`,
      );
    }
    if (this.commit === undefined) {
      this.commit = commit;
      await this.writeRef(commit);
    }
    const size = parseSize(res.headers.get('x-linked-size') ?? (location === undefined ? res.headers.get('content-length') : null));
    return { commit, etag, size, location, res };
  }

  private async download(file: string, meta: FileMetadata, blob: string): Promise<void> {
    let res = meta.res;
    if (meta.location !== undefined) {
      // Like huggingface_hub: the CDN URL is pre-signed, and the token must not leak to another host.
      res = await this.request(meta.location, { headers: this.headers(false) }, new URL(meta.location).origin);
      if (res.status !== 200) {
        await res.body?.cancel();
        throw new LanternError(
          `Downloading "${file}" of "${this.repoId}" from ${new URL(meta.location).host} failed: HTTP ${res.status} ${res.statusText}.`,
        );
      }
    }
    const encoded = (res.headers.get('content-encoding') ?? 'identity') !== 'identity';
    const sizes = [meta.size, encoded ? undefined : parseSize(res.headers.get('content-length'))];
    const total = sizes.find((s) => s !== undefined);

    await fs.mkdir(path.dirname(blob), { recursive: true });
    await removeStaleTemps(blob);
    const temp = `${blob}.${process.pid}.incomplete`;
    const bar = this.progress && total !== undefined && total >= BAR_MIN_BYTES ? startBar(file, total) : undefined;
    const started = Date.now();
    let received = 0;
    const body = res.body;
    const onProgress = this.opts.onProgress;
    let networkError: unknown;
    async function* chunks() {
      if (body === null) return;
      try {
        for await (const chunk of body) {
          received += chunk.length;
          onProgress?.({ file, received, total });
          bar?.update(received, progressPayload(received, started));
          yield chunk;
        }
      } catch (e) {
        networkError = e;
        throw e;
      }
    }
    try {
      try {
        await pipeline(chunks(), createWriteStream(temp));
      } catch (e) {
        if (networkError === undefined) throw new LanternError(`Cannot write ${temp}: ${(e as Error).message}`);
        const of = total === undefined ? '' : ` of ${total}`;
        throw new LanternError(
          `Download of "${file}" of "${this.repoId}" was cut off after ${received}${of} bytes (${reason(networkError)}); run again to retry.`,
        );
      } finally {
        bar?.stop();
      }
      const wrong = sizes.find((s) => s !== undefined && s !== received);
      if (wrong !== undefined) {
        throw new LanternError(
          `Download of "${file}" of "${this.repoId}" is incomplete: got ${received} bytes, expected ${wrong}; run again to retry.`,
        );
      }
      await fs.rename(temp, blob);
    } catch (e) {
      await fs.rm(temp, { force: true });
      throw e;
    }
  }

  private async request(url: string, init: RequestInit, host: string): Promise<Response> {
    try {
      return await this.fetch(url, init);
    } catch (e) {
      throw new LanternError(
        `Cannot reach ${host} (${reason(e)}) to download "${this.repoId}", and it is not fully in the Hugging Face cache at ${this.repoDir}; ` +
          'check the network or HF_ENDPOINT, or copy the cache from a machine that has the model.',
      );
    }
  }

  private headers(withToken: boolean): Record<string, string> {
    const headers: Record<string, string> = {
      'user-agent': `lantern; node/${process.versions.node}`,
      // A compressed body would make Content-Length useless for catching truncation.
      'accept-encoding': 'identity',
    };
    if (withToken && this.token !== undefined) headers.authorization = `Bearer ${this.token}`;
    return headers;
  }

  private httpError(res: Response, file: string, missingFile: boolean): LanternError {
    const code = res.headers.get('x-error-code');
    const where = `on ${this.endpoint}`;
    const tokenHint =
      this.token === undefined
        ? 'if it is private or gated, set HF_TOKEN to a token that can read it'
        : 'the token in HF_TOKEN was sent; check that it can read this repo';
    if (code === 'GatedRepo') {
      return new LanternError(
        `Model "${this.repoId}" is gated ${where} (HTTP ${res.status}): accept its terms on its model page, then set HF_TOKEN to a token of that account` +
          (this.token === undefined ? '.' : ' (the token in HF_TOKEN was sent and refused).'),
      );
    }
    if (code === 'RevisionNotFound') {
      return new LanternError(`Revision "${this.revision}" of model "${this.repoId}" was not found ${where}.`);
    }
    if (missingFile) {
      const hint = file === WEIGHTS ? '; Lantern reads safetensors weights (model.safetensors, or model.safetensors.index.json with shards)' : '';
      return new LanternError(`File "${file}" was not found in model "${this.repoId}" at revision "${this.revision}" ${where}${hint}.`);
    }
    if (code === 'RepoNotFound' || res.status === 401 || res.status === 404) {
      return new LanternError(`Model "${this.repoId}" was not found ${where} (HTTP ${res.status}); check the id, and ${tokenHint}.`);
    }
    if (res.status === 403) {
      return new LanternError(`Access to model "${this.repoId}" was refused ${where} (HTTP 403); ${tokenHint}.`);
    }
    return new LanternError(`Downloading "${file}" of "${this.repoId}" ${where} failed: HTTP ${res.status} ${res.statusText}.`);
  }

  // Same files as huggingface_hub, so that its tools resolve the revision and skip known-missing files too.
  private async writeRef(commit: string): Promise<void> {
    if (this.revision === commit) return;
    const ref = path.join(this.repoDir, 'refs', this.revision);
    if ((await readRef(this.repoDir, this.revision)) === commit) return;
    await fs.mkdir(path.dirname(ref), { recursive: true });
    await fs.writeFile(ref, commit);
  }

  private async rememberMissing(file: string, commit: string | null): Promise<void> {
    const sha = this.commit ?? (commit !== null && COMMIT_SHA.test(commit) ? commit : undefined);
    if (sha === undefined) return;
    const marker = path.join(this.repoDir, '.no_exist', sha, file);
    await fs.mkdir(path.dirname(marker), { recursive: true });
    await fs.writeFile(marker, '');
  }
}

async function linkPointer(blob: string, pointer: string): Promise<void> {
  if (await exists(pointer)) return;
  await fs.mkdir(path.dirname(pointer), { recursive: true });
  await fs.rm(pointer, { force: true }); // a dangling link left after its blob was deleted
  try {
    // Relative, as huggingface_hub makes them, so the cache survives being moved.
    await fs.symlink(path.relative(path.dirname(pointer), blob), pointer);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'EEXIST' && (await exists(pointer))) return; // another process linked it first
    if (code !== 'EPERM' && code !== 'EACCES' && code !== 'ENOTSUP') throw e;
    // Windows without developer mode: huggingface_hub also degrades to plain files.
    await fs.copyFile(blob, pointer);
  }
}

// Temp files of killed downloads would otherwise stay next to the blob forever.
async function removeStaleTemps(blob: string): Promise<void> {
  const prefix = `${path.basename(blob)}.`;
  for (const name of await fs.readdir(path.dirname(blob))) {
    const pid = name.startsWith(prefix) ? /^(\d+)\.incomplete$/.exec(name.slice(prefix.length))?.[1] : undefined;
    if (pid !== undefined && !processAlive(Number(pid))) await fs.rm(path.join(path.dirname(blob), name), { force: true });
  }
}

function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}

function startBar(file: string, total: number): SingleBar {
  const bar = new cliProgress.SingleBar({
    stream: process.stderr,
    format: `${file} |{bar}| {percentage}% {done}/{size} {speed} ETA {eta_formatted}`,
    barCompleteChar: '\u2588',
    barIncompleteChar: '\u2591',
    noTTYOutput: !process.stderr.isTTY,
    // Its SIGINT handler only stops the bar, which would swallow Ctrl-C during a long download.
    gracefulExit: false,
  });
  bar.start(total, 0, { ...progressPayload(0, Date.now()), size: formatBytes(total) });
  return bar;
}

function progressPayload(received: number, started: number): { done: string; speed: string } {
  const seconds = (Date.now() - started) / 1000;
  return { done: formatBytes(received), speed: seconds > 0 ? `${formatBytes(received / seconds)}/s` : '' };
}

function formatBytes(n: number): string {
  const units = ['B', 'kB', 'MB', 'GB', 'TB'];
  let i = 0;
  while (n >= 1000 && i < units.length - 1) {
    n /= 1000;
    i++;
  }
  return `${i === 0 ? Math.round(n) : n.toFixed(1)} ${units[i]}`;
}

// The etag names the blob file, so anything but a plain name (the Hub sends hex) is refused.
function normalizeEtag(etag: string | null): string | undefined {
  const value = etag?.replace(/^W\//, '').replace(/^"|"$/g, '');
  return value !== undefined && /^[\w-][\w.-]*$/.test(value) ? value : undefined;
}

function hfToken(): string | undefined {
  const fromEnv = process.env.HF_TOKEN || process.env.HUGGING_FACE_HUB_TOKEN;
  if (fromEnv) return fromEnv.trim();
  // Written by `huggingface-cli login` / `hf auth login`.
  const file = process.env.HF_TOKEN_PATH ? expandHome(process.env.HF_TOKEN_PATH) : path.join(hfHome(), 'token');
  try {
    return readFileSync(file, 'utf8').trim() || undefined;
  } catch {
    return undefined;
  }
}

function hfHome(): string {
  if (process.env.HF_HOME) return expandHome(process.env.HF_HOME);
  const xdg = process.env.XDG_CACHE_HOME ? expandHome(process.env.XDG_CACHE_HOME) : path.join(os.homedir(), '.cache');
  return path.join(xdg, 'huggingface');
}

function expandHome(p: string): string {
  return p === '~' || p.startsWith('~/') ? path.join(os.homedir(), p.slice(1)) : p;
}

function isTrue(value: string | undefined): boolean {
  return ['1', 'ON', 'YES', 'TRUE'].includes((value ?? '').toUpperCase());
}

async function exists(p: string): Promise<boolean> {
  return fs.stat(p).then(
    () => true,
    () => false,
  );
}

function parseSize(header: string | null): number | undefined {
  const n = header === null ? NaN : Number(header);
  return Number.isSafeInteger(n) && n >= 0 ? n : undefined;
}

function reason(e: unknown): string {
  const cause = (e as { cause?: { code?: string; message?: string } }).cause;
  return cause?.message || cause?.code || (e as Error).message || String(e);
}
