/**
 * What the Workbench's browser tests share: the web app built once per version of its sources
 * (not once per test file), a real Lantern server on a fresh data folder, and Debian's chromium
 * (driven by playwright-core) with one page that records the page's uncaught errors.
 *
 *   const wb = await startWorkbench();
 *   await wb.page.goto(`${wb.url}/#lens`);
 *   ...
 *   await wb.close();
 */
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { build } from 'vite';
import { chromium, type Browser, type BrowserContextOptions, type Page } from 'playwright-core';
import { buildServer, type LanternServer, type ServerOptions } from '../../src/interfaces/server/app.js';
import { ROOT } from '../helpers.js';

/** Where the browser tests leave their screenshots (gitignored). */
export const SHOTS = path.join(ROOT, 'test-artifacts', 'workbench');

/** Everything the built app depends on (as scripts/build-web.mjs sees it): a change to any rebuilds it. */
const WEB_INPUTS = ['web/src', 'web/index.html', 'web/vite.config.ts', 'package-lock.json'];
const WEB_CACHE = path.join(ROOT, '.cache', 'web-e2e');

function filesUnder(p: string): string[] {
  if (!fs.statSync(p).isDirectory()) return [p];
  return fs.readdirSync(p).sort().flatMap((name) => filesUnder(path.join(p, name)));
}

/** A digest of the web app's sources: the name of their build in the cache. */
function webSourcesKey(): string {
  const hash = crypto.createHash('sha256');
  for (const file of WEB_INPUTS.flatMap((input) => filesUnder(path.join(ROOT, input)))) {
    hash.update(path.relative(ROOT, file)).update('\0').update(fs.readFileSync(file)).update('\0');
  }
  return hash.digest('hex').slice(0, 16);
}

async function buildWebApp(): Promise<string> {
  const dir = path.join(WEB_CACHE, webSourcesKey());
  if (fs.existsSync(path.join(dir, 'index.html'))) return dir;
  fs.mkdirSync(WEB_CACHE, { recursive: true });
  // Built aside and renamed into place, so a folder under its final name is always a whole build,
  // even when another run in this checkout builds at the same time.
  const staging = fs.mkdtempSync(path.join(WEB_CACHE, 'building-'));
  await build({ configFile: path.join(ROOT, 'web', 'vite.config.ts'), logLevel: 'error', build: { outDir: staging, emptyOutDir: true } });
  for (const old of fs.readdirSync(WEB_CACHE)) {
    if (!old.startsWith('building-')) fs.rmSync(path.join(WEB_CACHE, old), { recursive: true, force: true });
  }
  try {
    fs.renameSync(staging, dir);
  } catch {
    fs.rmSync(staging, { recursive: true, force: true });
  }
  if (!fs.existsSync(path.join(dir, 'index.html'))) throw new Error(`the web app's build did not reach ${dir}`);
  return dir;
}

let webApp: Promise<string> | undefined;

/**
 * The folder of the built Workbench web app for the current sources, built with web/vite.config.ts
 * (as `npm run build:web` builds it) the first time any test file of a run asks, and kept in
 * .cache/web-e2e/ for later files and runs until the sources change. Tests never write web/dist.
 */
export function builtWebApp(): Promise<string> {
  return (webApp ??= buildWebApp());
}

/** Starts a Lantern server on localhost serving the built web app; `webDir` is filled in. */
export async function serveWorkbench(opts: ServerOptions = {}): Promise<{ app: LanternServer; url: string }> {
  const app = await buildServer({ allowHub: false, ...opts, webDir: await builtWebApp() });
  const url = await app.listen({ port: 0, host: '127.0.0.1' });
  return { app, url: url.replace('127.0.0.1', 'localhost') };
}

/** A headless chromium with one page (1280 x 900 unless `page` says otherwise). */
export interface BrowserPage {
  browser: Browser;
  page: Page;
  /** The messages of the page's uncaught errors, in order. */
  pageErrors: string[];
  close(): Promise<void>;
}

/** Launches Debian's chromium with one page whose uncaught errors are recorded. */
export async function openPage(page: BrowserContextOptions = {}): Promise<BrowserPage> {
  fs.mkdirSync(SHOTS, { recursive: true });
  const browser = await chromium.launch({
    executablePath: '/usr/bin/chromium',
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--no-first-run'],
  });
  const opened = await browser.newPage({ viewport: { width: 1280, height: 900 }, ...page });
  const pageErrors: string[] = [];
  opened.on('pageerror', (e) => pageErrors.push(e.message));
  return { browser, page: opened, pageErrors, close: () => browser.close() };
}

/** How {@link startWorkbench} sets up the server and the page. */
export interface WorkbenchOptions {
  /** Prefix of the temporary folder's name, so a leftover folder names its test. */
  name?: string;
  /** Server options besides its folders (default: no Hub ids). */
  server?: Omit<ServerOptions, 'dataDir' | 'webDir'>;
  /** Writes what the server should find in its data folder; runs before the server starts. */
  prepare?: (dirs: { tmp: string; dataDir: string }) => Promise<void> | void;
  /** Options of the browser page (e.g. its viewport). */
  page?: BrowserContextOptions;
}

/** A running server and a browser page on it; `close()` ends both and removes `tmp`. */
export interface Workbench extends BrowserPage {
  /** A fresh temporary folder for the test's own files, removed by `close()`. */
  tmp: string;
  /** The server's data folder: `tmp`/data. */
  dataDir: string;
  app: LanternServer;
  /** The server's address (http://localhost:port). */
  url: string;
}

/** Starts a server on a fresh data folder and a chromium page for it. */
export async function startWorkbench(opts: WorkbenchOptions = {}): Promise<Workbench> {
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), `${opts.name ?? 'lantern-wb'}-`));
  const dataDir = path.join(tmp, 'data');
  let app: LanternServer | undefined;
  let opened: BrowserPage | undefined;
  const close = async (): Promise<void> => {
    await opened?.close();
    await app?.close();
    fs.rmSync(tmp, { recursive: true, force: true });
  };
  try {
    await opts.prepare?.({ tmp, dataDir });
    const served = await serveWorkbench({ ...opts.server, dataDir });
    app = served.app;
    opened = await openPage(opts.page);
    return { ...opened, tmp, dataDir, app, url: served.url, close };
  } catch (e) {
    await close();
    throw e;
  }
}
