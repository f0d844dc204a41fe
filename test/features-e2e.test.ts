/**
 * The Features view in a real browser (Debian's chromium via playwright-core) against a real
 * server: dashboards of the planted n-gram model's neurons, where neuron 5 fires on "h" only.
 * Screenshots go to test-artifacts/workbench/ (gitignored).
 */
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Page } from 'playwright-core';
import { loadPlanted, makePlanted, ngramPrompts, NGRAM } from '../src/models/planted/index.js';
import { buildDashboards, neuronSource, writeDashboards, writeExplanations } from '../src/methods/features/index.js';
import { SHOTS, startWorkbench, type Workbench } from './support/browser.js';

const H = NGRAM.currentHDistractorNeuron;

let wb: Workbench;
let page: Page;
let url: string;

beforeAll(async () => {
  wb = await startWorkbench({
    name: 'lantern-features-e2e',
    prepare: async ({ tmp, dataDir }) => {
      const folder = path.join(tmp, 'ngram');
      await makePlanted('ngram-neuron', folder, { measure: false });
      const { model } = await loadPlanted(folder);
      const set = await buildDashboards(model, await neuronSource(model, 'blocks.0.mlp.hook_post'), ngramPrompts(40, { seed: 2 }).flatMap((p) => p.tokens), { seq: 32, topK: 6 });
      const dir = path.join(dataDir, 'dashboards', 'ngram-mlp0');
      writeDashboards(set, dir);
      writeExplanations(dir, { [H]: { text: 'the letter h', score: 0.99 } });
    },
  });
  ({ page, url } = wb);
}, 120_000);

afterAll(async () => {
  await wb?.close();
});

describe('features view in chromium', () => {
  const errors: string[] = [];
  it('lists the set, searches by explanation, opens a feature, shows the features on the prompt', async () => {
    page.on('pageerror', (e) => errors.push(e.message));
    await page.goto(`${url}/#features`);
    await page.locator('#features-set option').first().waitFor({ state: 'attached' });
    expect(await page.locator('#features-set').inputValue()).toBe('ngram-mlp0');
    await page.locator('#view-features tr[data-feature]').first().waitFor();
    expect(await page.locator('#view-features tr[data-feature]').count()).toBe(64);

    await page.fill('#features-search', 'letter h');
    expect(await page.locator('#view-features tr[data-feature]').count()).toBe(1);
    await page.click(`#view-features tr[data-feature="${H}"]`);
    await page.locator('#feature-detail h4').waitFor();
    expect(await page.locator('#feature-detail h4').textContent()).toBe(`Feature #${H}`);
    expect(await page.locator('#feature-detail .feature-explanation').textContent()).toContain('the letter h');
    // Six top contexts, each with its activating token an "h".
    const at = await page.locator('#feature-detail .feature-context .tok.at').allTextContents();
    expect(at.slice(0, 6)).toEqual(['h', 'h', 'h', 'h', 'h', 'h']);

    await page.fill('#prompt', 'the hat');
    await page.click('#features-on-prompt');
    await page.locator('#features-prompt-out .feature-link').first().waitFor();
    const ids = await page.locator('#features-prompt-out .feature-link').evaluateAll((els) => els.map((e) => Number((e as HTMLElement).dataset.feature)));
    expect(ids).toContain(H);
    await page.screenshot({ path: path.join(SHOTS, 'features.png'), fullPage: true });
    expect(errors).toEqual([]);
  }, 60_000);
});
