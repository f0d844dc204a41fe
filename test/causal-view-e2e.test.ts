/**
 * The Workbench's Causal view in a real browser (Debian's chromium driven by playwright-core)
 * against a real server, on the planted IOI model: the heatmap's cells must equal the IIA table the
 * library computes here for the same seed and settings.
 */
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Page } from 'playwright-core';
import { Tensor } from '../src/engine/tensor.js';
import { HookedTransformer } from '../src/models/hooked.js';
import { weightShapes } from '../src/models/forward.js';
import { buildPlanted } from '../src/models/planted/index.js';
import { dasSearch, interchangeAccuracy, ioiExamples, ioiTask } from '../src/methods/causal-abstraction/index.js';
import { SHOTS, startWorkbench, type Workbench } from './support/browser.js';

const SEED = 5;
const POSITIONS = [-1, -2];

let wb: Workbench;
let page: Page;
let url: string;
let ioi: HookedTransformer;
let errors: string[];

/** Every cell of the drawn heatmap, row by row: the exact IIA it carries and the text shown in it. */
async function cells(): Promise<{ hook: string; values: number[]; shown: string[] }[]> {
  return page.locator('#view-causal table.iia-heatmap tbody tr').evaluateAll((rows) => rows.map((tr) => ({
    hook: tr.querySelector('th')!.textContent!,
    values: [...tr.querySelectorAll('td.iia-cell')].map((td) => Number((td as HTMLElement).dataset.iia)),
    shown: [...tr.querySelectorAll('td.iia-cell')].map((td) => td.textContent!),
  })));
}

async function search(method: string): Promise<void> {
  await page.selectOption('#view-causal select[name=method]', method);
  const before = await page.locator('#view-causal .meta').textContent();
  await page.click('#view-causal button.run');
  await page.waitForFunction((old) => {
    const m = document.querySelector('#view-causal .meta')?.textContent ?? '';
    return (m !== old && m !== '') || !document.querySelector('#view-causal .error')?.hasAttribute('hidden');
  }, before, { timeout: 60_000 });
}

beforeAll(async () => {
  wb = await startWorkbench({ name: 'lantern-causal-e2e', page: { acceptDownloads: true } });
  ({ page, url, pageErrors: errors } = wb);
  // The library's own copy of the planted IOI model, built in memory (the server writes and loads its own).
  const { cfg, weights } = buildPlanted('ioi');
  const shapes = weightShapes(cfg);
  ioi = await HookedTransformer.create(cfg, Object.fromEntries(Object.entries(weights).map(([n, d]) => [n, Tensor.f32(d, shapes[n])])), undefined, 'planted:ioi');
}, 120_000);

afterAll(async () => {
  await wb?.close();
});

describe('Causal view in chromium, on planted:ioi', () => {
  // Every layer's stream input, then the last layer's output: the rows the view searches.
  const hooks = () => [...Array.from({ length: ioi.cfg.nLayers }, (_, l) => `blocks.${l}.hook_resid_pre`), `blocks.${ioi.cfg.nLayers - 1}.hook_resid_post`];

  it('DAS: the heatmap equals the library\'s IIA table for the same seed; the JSON download carries it with the settings', async () => {
    await page.goto(`${url}/#causal`);
    await page.locator('#model option[value="planted:ioi"]').waitFor({ state: 'attached' });
    await page.selectOption('#model', 'planted:ioi');
    await page.fill('#view-causal input[name=positions]', POSITIONS.join(', '));
    await page.fill('#view-causal input[name=k]', '4');
    await page.fill('#view-causal input[name=epochs]', '2');
    await page.fill('#view-causal input[name=train]', '64');
    await page.fill('#view-causal input[name=test]', '32');
    await page.fill('#view-causal input[name=seed]', String(SEED));
    await search('das');

    const task = ioiTask();
    const want = await dasSearch(ioi, {
      task, variable: 'S', hooks: hooks(), positions: POSITIONS, k: 4, epochs: 2, seed: SEED,
      train: ioiExamples(64, SEED, { names: 4 }), test: ioiExamples(32, SEED + 1, { names: 4 }),
    });
    const got = await cells();
    expect(got.map((r) => r.hook)).toEqual(want.hooks);
    expect(got.map((r) => r.values)).toEqual(want.iia);
    expect(got.map((r) => r.shown)).toEqual(want.iia.map((row) => row.map((v) => v.toFixed(3))));
    // The planted model computes S at the last position from layer 1 on: the table is not flat.
    expect(want.iia[1][0]).toBeGreaterThanOrEqual(0.95);
    expect(want.iia[0][0]).toBeLessThanOrEqual(0.6);
    expect(await page.locator('#view-causal figcaption .legend').count()).toBe(1);
    expect(await page.locator('#view-causal .meta').textContent()).toContain(`das for S on planted:ioi, seed ${SEED}`);
    await page.screenshot({ path: path.join(SHOTS, 'causal-1-das.png'), fullPage: true });

    const [download] = await Promise.all([page.waitForEvent('download'), page.click('#view-causal button.download')]);
    const saved = JSON.parse(fs.readFileSync((await download.path())!, 'utf8'));
    expect(saved).toMatchObject({ method: 'das', variable: 'S', seed: SEED, hooks: want.hooks, positions: POSITIONS, iia: want.iia, settings: { task: 'ioi', k: 4, epochs: 2, train: 64, test: 32 } });
    expect(saved.model).toBe('planted:ioi');
  });

  it('whole-stream interchange: each cell equals interchangeAccuracy at that hook and position', async () => {
    await search('interchange-whole');
    const task = ioiTask();
    const test = ioiExamples(32, SEED + 1, { names: 4 });
    const want: number[][] = [];
    for (const hook of hooks()) {
      const row: number[] = [];
      for (const p of POSITIONS) row.push((await interchangeAccuracy(ioi, { task, examples: test, variables: ['S'], interventions: [{ hook, positions: [p] }] })).iia);
      want.push(row);
    }
    expect((await cells()).map((r) => r.values)).toEqual(want);
    expect(want.flat()).toContain(1);
    expect(want.flat()).toContain(0);
  });

  it('bad input: the server\'s message in place, and no stale heatmap under it', async () => {
    await page.fill('#view-causal input[name=positions]', '20');
    await search('das');
    await page.waitForFunction(() => /position 20 outside a prompt of 14 tokens/.test(document.querySelector('#view-causal .error')?.textContent ?? ''));
    expect(await page.locator('#view-causal table.iia-heatmap').count()).toBe(0);
    // 3 hooks × 1 position × (1024 train × 100 epochs + 32 held-out) = 307,296 pair passes.
    await page.fill('#view-causal input[name=positions]', '-1');
    await page.fill('#view-causal input[name=train]', '1024');
    await page.fill('#view-causal input[name=epochs]', '100');
    await page.click('#view-causal button.run');
    await page.waitForFunction(() => /would run 307,296 pair passes .*the limit is 200,000/.test(document.querySelector('#view-causal .error')?.textContent ?? ''));
    // A task whose tokens the model does not have.
    await page.fill('#view-causal input[name=epochs]', '2');
    await page.fill('#view-causal input[name=train]', '64');
    await page.selectOption('#model', 'planted:induction');
    await page.click('#view-causal button.run');
    await page.waitForFunction(() => /task 'ioi' uses token ids up to \d+, outside this model's vocabulary of 256: pick planted:ioi/.test(document.querySelector('#view-causal .error')?.textContent ?? ''), undefined, { timeout: 30_000 });
    await page.fill('#view-causal input[name=positions]', '-1, x');
    await page.click('#view-causal button.run');
    await page.waitForFunction(() => /positions must be integers separated by commas, got '-1, x'/.test(document.querySelector('#view-causal .error')?.textContent ?? ''));
    expect(errors).toEqual([]);
  });
});
