/**
 * The Workbench in a real browser: Debian's chromium driven by playwright-core, against a real
 * server. Screenshots go to test-artifacts/workbench/ (gitignored).
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Page } from 'playwright-core';
import type { LanternServer } from '../src/interfaces/server/app.js';
import { loadModel } from '../src/models/load.js';
import { BUNDLED_MODEL } from '../src/paths.js';
import { openPage, serveWorkbench, SHOTS, type BrowserPage } from './support/browser.js';

const PROMPT = 'The quick brown fox jumps over the lazy';

let tmp: string;
let chromium: BrowserPage;
let page: Page;

function startServer(token?: string): Promise<{ app: LanternServer; url: string }> {
  return serveWorkbench({ dataDir: path.join(tmp, token ? 'secured' : 'data'), token });
}

beforeAll(async () => {
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'lantern-e2e-'));
  chromium = await openPage();
  page = chromium.page;
});

afterAll(async () => {
  await chromium?.close();
  fs.rmSync(tmp, { recursive: true, force: true });
});

// The tests share one browser page and one data folder, in order: each stays well under vitest's
// 60 s worker-RPC limit even on a loaded machine.
describe('workbench in chromium', () => {
  let app: LanternServer | undefined;
  let url = '';
  let nTokens = 0;
  const errors: string[] = [];

  beforeAll(async () => {
    nTokens = (await loadModel(BUNDLED_MODEL)).toTokens(PROMPT).length;
    page.on('pageerror', (e) => errors.push(e.message));
  });
  afterAll(async () => {
    await app?.close();
  });

  it('types a prompt and shows next-token predictions (Ctrl+Enter)', async () => {
    ({ app, url } = await startServer());
    await page.goto(url);
    await page.locator('#model option').first().waitFor({ state: 'attached' });
    expect(await page.locator('#model').inputValue()).toBe('bundled');
    await page.fill('#prompt', '');
    await page.type('#prompt', PROMPT);
    await page.press('#prompt', 'Control+Enter');
    await page.locator('#view-predict .chart svg.marks').waitFor();
    expect(await page.locator('#view-predict .meta').textContent()).toContain(`${nTokens} tokens`);
    expect(await page.locator('#view-predict .chart svg.marks g.mark-rect path').count()).toBe(10);
    await page.screenshot({ path: path.join(SHOTS, '1-predictions.png'), fullPage: true });
  });

  it('runs an attribution: one heatmap cell and one coloured chip per token, faithfulness, word toggle', async () => {
    await page.click('#tab-attribution');
    await page.fill('#view-attribution input[name=target]', ' dog');
    await page.fill('#view-attribution input[name=steps]', '16');
    await page.check('#view-attribution input[name=evaluate]');
    await page.click('#view-attribution button.run');
    await page.locator('#view-attribution .chart svg.marks').waitFor({ timeout: 45_000 });
    expect(await page.locator('#view-attribution .error').isHidden()).toBe(true);
    expect(await page.locator('[data-testid=attribution-tokens] .token-chip').count()).toBe(nTokens);
    // The heatmap's rect layer (vega-lite draws one path per datum): one target row x nTokens columns.
    expect(await page.locator('#view-attribution .chart svg.marks g.mark-rect.layer_0_marks path').count()).toBe(nTokens);
    expect(await page.locator('#view-attribution table.faith').textContent()).toContain('AOPC comprehensiveness');
    await page.screenshot({ path: path.join(SHOTS, '2-attribution.png'), fullPage: true });

    // Here every word is one token, so the word view has as many columns as words.
    await page.check('#view-attribution input[name=words]');
    expect(await page.locator('[data-testid=attribution-tokens] .token-chip').count()).toBe(PROMPT.split(' ').length);
    await page.uncheck('#view-attribution input[name=words]');

    // Bad input is shown in place: refused at once (no target for the foil) ...
    await page.fill('#view-attribution input[name=target]', '');
    await page.fill('#view-attribution input[name=foil]', ' cat');
    await page.click('#view-attribution button.run');
    await page.locator('#view-attribution .error:not([hidden])').waitFor();
    expect(await page.locator('#view-attribution .error').textContent()).toMatch(/foil needs a target/);
    // ... or found by the job (a foil needs a one-token target), which is saved as a failed run.
    await page.fill('#view-attribution input[name=target]', ' big dog');
    await page.click('#view-attribution button.run');
    await page.waitForFunction(() => /a contrastive foil needs a one-token target/.test(document.querySelector('#view-attribution .error')!.textContent ?? ''));
    await page.fill('#view-attribution input[name=foil]', '');
  });

  it('opens the saved attribution after a server restart', async () => {
    await app!.close();
    ({ app, url } = await startServer());
    await page.goto(`${url}/#runs`);
    const row = page.locator('table.runs tbody tr').filter({ hasText: 'attribution' }).filter({ hasText: 'done' }).first();
    await row.waitFor();
    await page.screenshot({ path: path.join(SHOTS, '3-runs.png'), fullPage: true });
    // Runs made so far: one forward, one attribution, one failed attribution.
    expect(await page.locator('table.runs tbody tr').count()).toBe(3);
    await page.selectOption('#view-runs select[name=kind]', 'forward');
    // The list is redrawn as a whole, so wait for the count itself rather than one row's detachment.
    await expect.poll(() => page.locator('table.runs tbody tr').count()).toBe(1);
    await page.selectOption('#view-runs select[name=kind]', 'all kinds');
    await page.locator('table.runs tbody tr').nth(2).waitFor();
    await row.locator('button', { hasText: 'Open' }).click();
    await page.locator('#view-attribution .chart svg.marks').waitFor();
    expect(await page.locator('#view-attribution').isVisible()).toBe(true);
    expect(await page.locator('[data-testid=attribution-tokens] .token-chip').count()).toBe(nTokens);
    expect(await page.locator('#view-attribution .chart svg.marks g.mark-rect.layer_0_marks path').count()).toBe(nTokens);
    expect(await page.locator('#view-attribution input[name=target]').inputValue()).toBe(' dog');
    expect(await page.locator('#prompt').inputValue()).toBe(PROMPT);
    await page.screenshot({ path: path.join(SHOTS, '4-reopened.png'), fullPage: true });

    // Rename and delete from the list (native prompt and confirm dialogs).
    await page.click('#group-runs');
    await page.click('#tab-runs');
    page.once('dialog', (d) => void d.accept('fox attribution'));
    await page.locator('table.runs tbody tr').filter({ hasText: 'done' }).filter({ hasText: 'attribution' }).locator('button', { hasText: 'Rename' }).click();
    await page.locator('table.runs td.title', { hasText: 'fox attribution' }).waitFor();
    page.once('dialog', (d) => void d.accept());
    await page.locator('table.runs tbody tr').filter({ hasText: 'error' }).locator('button', { hasText: 'Delete' }).click();
    await expect.poll(() => page.locator('table.runs tbody tr').count()).toBe(2);
  });

  it('draws the logit lens and the attention view; hovering a token marks it as the query', async () => {
    await page.click('#tab-lens');
    await page.fill('#view-lens input[name=target]', ' dog');
    await page.click('#view-lens button.run');
    await page.locator('#view-lens .chart svg.marks').waitFor();
    await page.screenshot({ path: path.join(SHOTS, '5-lens.png'), fullPage: true });

    await page.click('#group-components'); // the view's group, then its tab in the second row
    await page.click('#tab-attention');
    await page.click('#view-attention button.run');
    await page.locator('#view-attention [data-testid=attention-main]').waitFor();
    // One thumbnail per layer and head of the bundled model (4 x 8).
    expect(await page.locator('[data-testid=attention-thumbs] canvas').count()).toBe(32);
    await page.locator('[data-testid=attention-tokens] .token-chip').nth(3).hover();
    expect(await page.locator('[data-testid=attention-tokens] .token-chip.query').count()).toBe(1);
    await page.screenshot({ path: path.join(SHOTS, '6-attention.png'), fullPage: true });
  });

  it('draws a patching heatmap, and cancels a long sweep in place', async () => {
    await page.click('#group-patching'); // the view's group, then its tab in the second row
    await page.click('#tab-patching');
    await page.selectOption('#view-patching select[name=sweep]', 'heads');
    await page.click('#view-patching button.run');
    await page.locator('#view-patching .chart svg.marks').waitFor();
    // layer x head: 4 x 8 cells.
    expect(await page.locator('#view-patching .chart svg.marks g.mark-rect.layer_0_marks path').count()).toBe(32);
    await page.screenshot({ path: path.join(SHOTS, '7-patching.png'), fullPage: true });

    // One patched run per call: long enough to watch its progress and cancel it.
    await page.check('#view-patching input[name=byPosition]');
    await page.fill('#view-patching input[name=batchSize]', '1');
    await page.click('#view-patching button.run');
    await page.waitForFunction(() => Number((document.querySelector('#progress') as HTMLProgressElement).value) > 0.05);
    expect(await page.locator('#status-text').textContent()).toMatch(/running patching · \d+%/);
    await page.screenshot({ path: path.join(SHOTS, '8-progress.png'), fullPage: true });
    await page.click('#cancel');
    await page.locator('#view-patching .error:not([hidden])').waitFor();
    expect(await page.locator('#view-patching .error').textContent()).toBe('Cancelled.');
    expect(await page.locator('#status').isHidden()).toBe(true);
  });

  it("builds the attribution form from the server's declaration: each method shows its own settings, and layer IG runs at a hook", async () => {
    // The form comes from the server's declaration of each method's settings: only the chosen
    // method's show, and layer IG at a hook runs with them.
    await page.click('#tab-attribution');
    await page.fill('#prompt', PROMPT);
    await page.fill('#view-attribution input[name=target]', ' dog');
    const visible = (name: string) => page.locator(`#view-attribution [name=${name}]`).isVisible();
    await page.selectOption('#view-attribution select[name=method]', 'lime');
    expect([await visible('samples'), await visible('kernelWidth'), await visible('steps'), await visible('hook')]).toEqual([true, true, false, false]);
    await page.selectOption('#view-attribution select[name=method]', 'layer-ig');
    expect([await visible('hook'), await visible('steps'), await visible('samples')]).toEqual([true, true, false]);
    await page.fill('#view-attribution input[name=hook]', 'blocks.1.hook_resid_post');
    await page.fill('#view-attribution input[name=steps]', '8');
    await page.uncheck('#view-attribution input[name=evaluate]');
    await page.click('#view-attribution button.run');
    await page.waitForFunction(() => /^layer-ig/.test(document.querySelector('#view-attribution .meta')!.textContent ?? ''), undefined, { timeout: 45_000 });
    expect(await page.locator('[data-testid=attribution-tokens] .token-chip').count()).toBe(nTokens);
    await page.fill('#view-attribution input[name=hook]', '');
    await page.selectOption('#view-attribution select[name=method]', 'ig');
  });

  it("builds the patching and lens forms from the server's declaration: options show where they apply, and 'both' draws both grids", async () => {
    await page.click('#group-patching'); // the view's group, then its tab in the second row
    await page.click('#tab-patching');
    const visible = (name: string) => page.locator(`#view-patching [name=${name}]`).isVisible();
    await page.selectOption('#view-patching select[name=sweep]', 'resid');
    await page.selectOption('#view-patching select[name=method]', 'attribution');
    expect([await visible('igSteps'), await visible('batchSize'), await visible('byPosition')]).toEqual([true, false, false]);
    await page.selectOption('#view-patching select[name=method]', 'both');
    expect([await visible('igSteps'), await visible('batchSize')]).toEqual([true, true]);
    await page.fill('#view-patching input[name=igSteps]', '2');
    await page.fill('#view-patching input[name=batchSize]', '64');
    await page.click('#view-patching button.run');
    await page.waitForFunction(() => document.querySelectorAll('#view-patching .chart svg.marks').length === 2, undefined, { timeout: 45_000 });
    expect(await page.locator('#view-patching .meta').textContent()).toMatch(/^activation and attribution · resid .* Pearson r -?\d\.\d{3}$/);
    await page.screenshot({ path: path.join(SHOTS, '8b-patching-both.png'), fullPage: true });
    await page.selectOption('#view-patching select[name=method]', 'activation');
    // The lens form: its declared top-k range is the input's.
    await page.click('#tab-lens');
    const topK = page.locator('#view-lens input[name=topK]');
    expect([await topK.getAttribute('min'), await topK.getAttribute('max'), await topK.inputValue()]).toEqual(['1', '20', '5']);
  });

  it('fits a narrow screen without horizontal scrolling, and raised no page errors', async () => {
    await page.setViewportSize({ width: 420, height: 900 });
    await page.click('#tab-attribution');
    await page.screenshot({ path: path.join(SHOTS, '9-narrow.png'), fullPage: true });
    expect(await page.evaluate(() => document.documentElement.scrollWidth)).toBeLessThanOrEqual(420);
    expect(errors).toEqual([]);
  });

  it('with a token: the URL with ?token= opens the app, whose requests and progress stream then work', async () => {
    const secured = await startServer('e2e-secret-token');
    try {
      const denied = await page.goto(secured.url);
      expect(denied!.status()).toBe(401);
      await page.goto(`${secured.url}/?token=e2e-secret-token`);
      await page.locator('#model option').first().waitFor({ state: 'attached' });
      await page.click('#tab-predict');
      await page.fill('#prompt', 'Hello');
      await page.click('#view-predict button.run');
      await page.locator('#view-predict .chart svg.marks').waitFor();
      expect(await page.locator('#view-predict .error').isHidden()).toBe(true);
    } finally {
      await secured.app.close();
    }
  });
});
