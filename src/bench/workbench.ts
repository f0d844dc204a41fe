/**
 * `npm run bench -- --workbench`: how long the Workbench takes in Chromium to draw a result once it
 * has arrived, for a 128-token prompt on a GPT-2-small-shaped model (random weights), beside the
 * server's time for the same run. The bar is 0.5 s from data received to drawn for the attention,
 * logit lens and attribution views.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { build } from 'vite';
import { chromium } from 'playwright-core';
import { buildServer } from '../interfaces/server/app.js';
import { GPT2_SMALL, randomWeights } from '../models/random.js';
import { writeGpt2Folder } from '../models/planted/index.js';
import type { Report } from './backends.js';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
// One GPT-2 token each, so the prompt is exactly 128 tokens.
const WORDS = [' the', ' cat', ' sat', ' on', ' a', ' mat', ' and', ' then', ' it', ' saw', ' dog', ' in', ' old', ' house', ' by', ' road'];
export const BENCH_PROMPT = Array.from({ length: 128 }, (_, i) => WORDS[(i * 7 + (i >> 4)) % WORDS.length]).join('').trimStart();

export async function workbenchBench(report: Report): Promise<void> {
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'lantern-wb-bench-'));
  const browser = await chromium.launch({
    executablePath: process.env.CHROMIUM ?? '/usr/bin/chromium',
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--no-first-run'],
  });
  const folder = path.join(tmp, 'gpt2-small-random');
  writeGpt2Folder(folder, GPT2_SMALL, randomWeights(GPT2_SMALL, 0), {});
  const webDir = path.join(tmp, 'web');
  await build({ configFile: path.join(ROOT, 'web', 'vite.config.ts'), logLevel: 'error', build: { outDir: webDir } });
  const app = await buildServer({ dataDir: path.join(tmp, 'data'), webDir, model: folder, allowHub: false });
  try {
    const url = (await app.listen({ port: 0, host: '127.0.0.1' })).replace('127.0.0.1', 'localhost');
    const page = await browser.newPage({ viewport: { width: 1440, height: 1000 } });
    await page.goto(`${url}/#predict`);
    await page.locator('#model option').first().waitFor({ state: 'attached' });
    await page.fill('#prompt', BENCH_PROMPT);
    console.log(`Workbench in Chromium: ${BENCH_PROMPT.split(' ').length} words, GPT-2-small shape (random weights)`);
    const views: [string, string, () => Promise<void>][] = [
      ['attention', 'attention', async () => {}],
      ['lens', 'logit lens', async () => {}],
      ['attribution', 'attribution (saliency)', async () => {
        await page.selectOption('#view-attribution select[name=method]', 'saliency');
      }],
    ];
    for (const [id, name, setup] of views) {
      // Twice: the first run also loads the model and compiles its graphs; the second is timed.
      let t = { receivedMs: 0, drawnMs: 0, serverMs: 0 };
      let tokens = 0;
      for (let i = 0; i < 2; i++) {
        // By its hash: a view's tab may sit in its group's second row.
        await page.evaluate((v) => (location.hash = `#${v}`), id);
        await page.locator(`#view-${id}`).waitFor();
        await setup();
        await page.evaluate((v) => delete (window as any).lanternTimings[v], id);
        await page.click(`#view-${id} button.run`);
        await page.waitForFunction((v) => (window as any).lanternTimings[v] !== undefined || !document.querySelector(`#view-${v} .error`)!.hasAttribute('hidden'), id, { timeout: 600_000 });
        const err = await page.locator(`#view-${id} .error`).textContent();
        if (err) throw new Error(`${name}: ${err}`);
        t = await page.evaluate((v) => (window as any).lanternTimings[v], id);
        const href = await page.locator(`#view-${id} .provenance a`).getAttribute('href');
        const run = await (await fetch(`${url}/api/runs/${href!.slice(5)}`)).json() as { result: { tokens: number[] } };
        tokens = run.result.tokens.length;
      }
      const drawn = (t.drawnMs - t.receivedMs) / 1000;
      report(`Workbench ${name}: received -> drawn (s)`, drawn, '<=', 0.5, `${tokens} tokens; server ${(t.serverMs / 1000).toFixed(2)} s for the same run`);
    }
  } finally {
    await browser.close();
    await app.close();
    fs.rmSync(tmp, { recursive: true, force: true });
  }
}
