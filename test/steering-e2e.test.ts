/**
 * The Workbench's steering playground in a real browser (Debian's chromium driven by
 * playwright-core) against a real server.
 */
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Page } from 'playwright-core';
import { PLAYGROUND_NEUTRAL } from '../src/interfaces/server/steering.js';
import { loadModel } from '../src/models/load.js';
import { BUNDLED_MODEL } from '../src/paths.js';
import { steering as S } from '../src/index.js';
import { SHOTS, startWorkbench, type Workbench } from './support/browser.js';

const PROMPT = 'The weather today is';

let wb: Workbench;
let page: Page;
let url: string;
let errors: string[];

/** Moves the coefficient slider as a user's drag ends: input events, then change. */
async function slide(value: number): Promise<void> {
  await page.locator('#view-steering input[name=coef]').evaluate((el: HTMLInputElement, v) => {
    el.value = String(v);
    el.dispatchEvent(new Event('input', { bubbles: true }));
    el.dispatchEvent(new Event('change', { bubbles: true }));
  }, value);
}

beforeAll(async () => {
  wb = await startWorkbench({ name: 'lantern-steer-e2e' });
  ({ page, url, pageErrors: errors } = wb);
}, 120_000);

afterAll(async () => {
  await wb?.close();
});

describe('steering playground in chromium', () => {
  it('a prompt pair at a layer: both generations side by side, equal to the library, with the KL cost; the slider runs again', async () => {
    await page.goto(`${url}/#steering`);
    await page.locator('#model option').first().waitFor({ state: 'attached' });
    await page.fill('#prompt', PROMPT);
    await page.fill('#view-steering input[name=positive]', ' Love');
    await page.fill('#view-steering input[name=negative]', ' Hate');
    await page.fill('#view-steering input[name=layer]', '2');
    await page.fill('#view-steering input[name=maxNewTokens]', '8');
    await page.click('#view-steering button.run');
    await page.locator('#view-steering .side-by-side').waitFor({ timeout: 45_000 });

    const model = await loadModel(BUNDLED_MODEL);
    const vector = await S.actAddVector(model, ' Love', ' Hate', { hook: 'blocks.2.hook_resid_pre' });
    const want = await S.steer(model, [PROMPT], { vector, coef: 4, maxNewTokens: 8, temperature: 0, neutral: PLAYGROUND_NEUTRAL });
    expect(await page.locator('#view-steering article.plain strong').textContent()).toBe(want.rows[0].plain);
    expect(await page.locator('#view-steering article.steered strong').textContent()).toBe(want.rows[0].steered);
    expect(await page.locator('#view-steering .kl-cost').textContent()).toBe(`KL cost on neutral text: ${want.kl!.toFixed(4)} nats per token`);
    expect(await page.locator('#view-steering .meta').textContent()).toContain('actadd vector at blocks.2.hook_resid_pre');
    await page.screenshot({ path: path.join(SHOTS, 'steering-1-pair.png'), fullPage: true });

    // Moving the slider to 0 runs again: no steering, no cost.
    await slide(0);
    await page.waitForFunction(() => /With coefficient 0$/.test(document.querySelector('#view-steering article.steered header')?.textContent ?? ''));
    expect(await page.locator('#view-steering article.steered strong').textContent()).toBe(want.rows[0].plain);
    expect(await page.locator('#view-steering .kl-cost').textContent()).toBe('KL cost on neutral text: 0.0000 nats per token');
  });

  it('a probe direction; bad input shown in place', async () => {
    await page.selectOption('#view-steering select[name=source]', 'probe');
    await slide(6);
    await page.waitForFunction(() => /probe on /.test(document.querySelector('#view-steering .meta')?.textContent ?? ''), undefined, { timeout: 60_000 });
    expect(await page.locator('#view-steering .meta').textContent()).toMatch(/mass-mean probe on .*held-out accuracy \d\.\d{3}/);
    await page.screenshot({ path: path.join(SHOTS, 'steering-2-probe.png'), fullPage: true });
    await page.fill('#view-steering input[name=layer]', '9');
    await page.click('#view-steering button.run');
    await page.waitForFunction(() => /layer 9 is outside the model's layers \[0, 3\]/.test(document.querySelector('#view-steering .error')?.textContent ?? ''));
    expect(errors).toEqual([]);
  });
});
