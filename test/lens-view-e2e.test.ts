/**
 * The Workbench's logit lens in a real browser (Debian's chromium driven by playwright-core) against
 * a real server: the tuned-lens switch (the bundled model's own tuned-lens.safetensors) and the KL
 * view, checked against the library.
 */
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Page } from 'playwright-core';
import { SHOTS, startWorkbench, type Workbench } from './support/browser.js';
import { loadModel } from '../src/models/load.js';
import { BUNDLED_MODEL } from '../src/paths.js';
import { loadTunedLens, logitLens } from '../src/methods/lens/index.js';

const PROMPT = 'The cat sat on the mat because the';

let wb: Workbench;
let page: Page;
let url: string;
let errors: string[];

beforeAll(async () => {
  wb = await startWorkbench({ name: 'lantern-lens-e2e' });
  ({ page, url, pageErrors: errors } = wb);
}, 120_000);

afterAll(async () => {
  await wb?.close();
});

/** The texts drawn in the grid's cells (not the axes). */
const cellTexts = () => page.locator('#view-lens .chart svg.marks .mark-text.role-mark text').allTextContents();

async function runLens(): Promise<void> {
  await page.click('#view-lens button.run');
  await page.waitForFunction(() => document.querySelector('#status')!.hasAttribute('hidden') && !document.querySelector('button.run[aria-busy]'), undefined, { timeout: 45_000 });
}

describe('logit lens view in chromium', () => {
  it('tuned-lens switch and KL to the final layer: the grid shows the library tuned lens, KL labelled per cell', async () => {
    await page.goto(`${url}/#lens`);
    await page.locator('#model option').first().waitFor({ state: 'attached' });
    await page.selectOption('#model', 'bundled');
    await page.fill('#prompt', PROMPT);
    await page.locator('#view-lens input[name=tunedLens]').check();
    await runLens();
    await page.locator('#view-lens .chart svg.marks').waitFor();

    const model = await loadModel(BUNDLED_MODEL, { progress: false });
    const tuned = await logitLens(model, PROMPT, { topK: 5, tuned: loadTunedLens(BUNDLED_MODEL, model) });
    const plain = await logitLens(model, PROMPT, { topK: 5 });
    expect(await page.locator('#view-lens .meta').textContent()).toContain('Tuned lens');
    // The top tokens drawn are the tuned lens's, row by row (the bundled lens changes some of them).
    const tops = (r: typeof tuned) => r.cells.flatMap((row) => row.map((c) => c.top[0].id));
    expect(tops(tuned)).not.toEqual(tops(plain));
    expect((await cellTexts()).length).toBe(tuned.cells.length * tuned.tokens.length);

    // KL view: every cell's label is its KL in nats, three decimals or scientific notation below 0.001; the final row is 0.
    await page.locator('[data-testid=lens-kl]').check();
    await page.waitForFunction(() => document.querySelector('[data-testid=lens-legend]')?.textContent?.includes('KL'));
    const fmt = (kl: number) => (kl === 0 ? '0' : kl >= 1e-3 ? kl.toFixed(3) : kl.toExponential(2));
    const shown = await cellTexts();
    const want = tuned.cells.flatMap((row) => row.map((c) => fmt(c.kl)));
    expect(shown).toEqual(want);
    const last = tuned.cells[tuned.cells.length - 1];
    expect(last.every((c) => c.kl === 0 || c.kl < 1e-5)).toBe(true);
    expect(tuned.cells[0].some((c) => c.kl > 0.1)).toBe(true);
    await page.screenshot({ path: path.join(SHOTS, 'lens-tuned-kl.png'), fullPage: true });
    expect(errors).toEqual([]);
    await model.executor.dropWeights(model.weights);
  }, 120_000);

  it('the tuned-lens switch on a model with no tuned lens is a clear error', async () => {
    const res = await fetch(`${url}/api/lens`, {
      method: 'POST', headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ model: 'planted:induction', text: 'a b c a b', tunedLens: true }),
    });
    const body = await res.json();
    expect(res.status).toBe(400);
    expect(body.error).toMatch(/model induction has no tuned lens \(no tuned-lens\.safetensors in its folder\)/);
  }, 60_000);
});
