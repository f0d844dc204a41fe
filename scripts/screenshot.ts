/**
 * Redraws docs/images/workbench.png: the Workbench's attribution view on the bundled model, in
 * Debian's chromium (the browser the end-to-end tests drive). Run: npx tsx scripts/screenshot.ts
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { build } from 'vite';
import { chromium } from 'playwright-core';
import { buildServer } from '../src/interfaces/server/app.js';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const OUT = path.join(ROOT, 'docs', 'images', 'workbench.png');
const CHROMIUM = process.env.CHROMIUM ?? '/usr/bin/chromium';

const data = fs.mkdtempSync(path.join(os.tmpdir(), 'lantern-screenshot-'));
await build({ configFile: path.join(ROOT, 'web', 'vite.config.ts'), logLevel: 'error' });
const app = await buildServer({ dataDir: data, webDir: path.join(ROOT, 'web', 'dist'), allowHub: false });
const browser = await chromium.launch({
  executablePath: CHROMIUM,
  args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--no-first-run'],
});
try {
  const url = await app.listen({ port: 0, host: '127.0.0.1' });
  const page = await browser.newPage({ viewport: { width: 1100, height: 760 } });
  await page.goto(url);
  await page.locator('#model option').first().waitFor({ state: 'attached' });
  await page.fill('#prompt', 'The capital of France is Paris, and the capital of Italy is');
  await page.click('#tab-attribution');
  await page.fill('#view-attribution input[name=target]', ' Rome');
  await page.fill('#view-attribution input[name=steps]', '32');
  await page.check('#view-attribution input[name=evaluate]');
  await page.click('#view-attribution button.run');
  await page.locator('#view-attribution .chart svg.marks').waitFor({ timeout: 120_000 });
  fs.mkdirSync(path.dirname(OUT), { recursive: true });
  await page.screenshot({ path: OUT, fullPage: true });
  console.log(`wrote ${path.relative(ROOT, OUT)} (${Math.round(fs.statSync(OUT).size / 1024)} KiB)`);
} finally {
  await browser.close();
  await app.close();
  fs.rmSync(data, { recursive: true, force: true });
}
