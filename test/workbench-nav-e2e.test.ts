/**
 * The Workbench's navigation, saved direct runs, comparison cancelling and path-patching progress,
 * in Chromium (Debian's, driven by playwright-core) against a real server on the bundled and
 * planted models (set up by test/support/browser.ts).
 * Leaves a screenshot of every view in test-artifacts/workbench/ (gitignored).
 */
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Page } from 'playwright-core';
import { loadPlanted, makePlanted, ngramPrompts } from '../src/models/planted/index.js';
import { buildDashboards, neuronSource, writeDashboards } from '../src/methods/features/index.js';
import { SHOTS, startWorkbench, type Workbench } from './support/browser.js';

const PROMPT = 'The quick brown fox jumps over the lazy';

let wb: Workbench;
let page: Page;
let url: string;
let pageErrors: string[];

beforeAll(async () => {
  wb = await startWorkbench({
    name: 'lantern-nav-e2e',
    // A small dashboard set, for the features found on a prompt.
    prepare: async ({ tmp, dataDir }) => {
      const folder = path.join(tmp, 'ngram');
      await makePlanted('ngram-neuron', folder, { measure: false });
      const { model } = await loadPlanted(folder);
      const set = await buildDashboards(model, await neuronSource(model, 'blocks.0.mlp.hook_post'), ngramPrompts(20, { seed: 2 }).flatMap((p) => p.tokens), { seq: 32, topK: 4 });
      writeDashboards(set, path.join(dataDir, 'dashboards', 'ngram-mlp0'));
    },
  });
  ({ page, url, pageErrors } = wb);
}, 120_000);

afterAll(async () => {
  await wb?.close();
});

async function fresh(hash = 'predict'): Promise<void> {
  await page.goto(`${url}/#${hash}`);
  await page.locator('#model option').first().waitFor({ state: 'attached' });
}

const shown = () => page.evaluate(() => [...document.querySelectorAll('#views > section.view')].filter((s) => !s.hasAttribute('hidden')).map((s) => s.id.slice('view-'.length)));
const api = async (p: string) => (await fetch(`${url}${p}`)).json();

/** The newest saved run of a kind, in full. */
async function newest(kind: string): Promise<any> {
  const { runs } = await api(`/api/runs?kind=${kind}&limit=1`);
  return runs.length ? api(`/api/runs/${runs[0].id}`) : undefined;
}

/** Opens a saved run through Saved runs (its row's Open button). */
async function openFromList(id: string): Promise<void> {
  await page.click('#group-runs');
  await page.click('#tab-runs');
  await page.locator(`table.runs tr[data-run="${id}"] button:has-text("Open")`).click();
}

/** Opens a saved run by typing its permalink into the open page. */
async function openPermalink(id: string): Promise<void> {
  await page.click('#group-runs');
  await page.click('#tab-runs'); // elsewhere first, so the view must be shown again
  await page.evaluate((rid) => (location.hash = `#run/${rid}`), id);
}

/** The permalink a view shows above its result. */
const permalink = (view: string) => page.locator(`#view-${view} .provenance a[href^="#run/"]`).getAttribute('href');

describe('Workbench navigation', () => {
  let viewIds: string[] = [];

  it('groups the views in two rows: every view reachable by Alt+digit and by arrow keys, the first row fits the screen', async () => {
    await fresh('predict');
    viewIds = await page.evaluate(() => [...document.querySelectorAll('#views > section.view')].map((s) => s.id.slice('view-'.length)));
    expect(viewIds.length).toBeGreaterThan(9);
    const first = page.locator('nav.tabs[role=tablist] > [role=tab]');
    const groups = await first.count();
    expect(groups).toBeLessThanOrEqual(9);
    // The first row fits a 1280-pixel window: no horizontal scrolling.
    const [scroll, client] = await page.locator('nav.tabs').evaluate((el) => [el.scrollWidth, el.clientWidth]);
    expect(scroll).toBeLessThanOrEqual(client);

    // Alt+N opens group N; pressing it again moves through the group's views. Together: every view.
    const reached = new Set<string>();
    for (let g = 1; g <= groups; g++) {
      const members = ((await first.nth(g - 1).getAttribute('data-views')) ?? '').split(' ');
      for (let k = 0; k < members.length; k++) {
        await page.keyboard.press(`Alt+${g}`);
        const [v] = await shown();
        expect(members).toContain(v);
        expect(await first.nth(g - 1).getAttribute('aria-selected')).toBe('true');
        expect(await page.locator(`#tab-${v}`).getAttribute('aria-selected')).toBe('true');
        expect(await page.evaluate(() => location.hash)).toBe(`#${v}`);
        reached.add(v);
      }
    }
    expect([...reached].sort()).toEqual([...viewIds].sort());

    // Arrow keys: along the first row from Predictions, then along a group's own row.
    await page.click('#tab-predict');
    await page.focus('#tab-predict');
    await page.keyboard.press('ArrowRight');
    expect(await shown()).toEqual(['attribution']);
    expect(await page.evaluate(() => document.activeElement?.id)).toBe('tab-attribution');
    // A group reopens the view last shown in it: Causal, where Alt+5 left it.
    await page.click('#group-patching');
    expect(await shown()).toEqual(['causal']);
    const row = page.locator('#subtabs-patching');
    expect(await row.getAttribute('role')).toBe('tablist');
    expect(await row.isVisible()).toBe(true);
    await page.focus('#tab-causal');
    await page.keyboard.press('ArrowRight');
    expect(await shown()).toEqual(['patching']);
    await page.keyboard.press('ArrowRight');
    expect(await shown()).toEqual(['trace']);
    expect(await page.evaluate(() => document.activeElement?.id)).toBe('tab-trace');
    await page.keyboard.press('End');
    expect(await shown()).toEqual(['causal']);
    await page.keyboard.press('Home');
    expect(await shown()).toEqual(['patching']);
    await page.click('#tab-predict');
    expect(await row.isVisible()).toBe(false);
    await page.click('#group-patching');
    expect(await shown()).toEqual(['patching']);
    expect(pageErrors).toEqual([]);
  });

  it('follows #<view> for every view (its group and tab selected), and leaves a screenshot of each', async () => {
    await fresh('predict');
    for (const v of viewIds) {
      await page.evaluate((id) => (location.hash = `#${id}`), v);
      await page.waitForFunction((id) => !document.querySelector(`#view-${id}`)!.hasAttribute('hidden'), v);
      expect(await shown()).toEqual([v]);
      const tab = page.locator(`#tab-${v}`);
      expect(await tab.isVisible()).toBe(true);
      expect(await tab.getAttribute('aria-selected')).toBe('true');
      expect(await tab.getAttribute('aria-controls')).toBe(`view-${v}`);
      expect(await page.locator(`#view-${v}`).getAttribute('role')).toBe('tabpanel');
      await page.screenshot({ path: path.join(SHOTS, `nav-${v}.png`), fullPage: true });
    }
    for (const v of viewIds) expect(fs.existsSync(path.join(SHOTS, `nav-${v}.png`)), v).toBe(true);
  });
});

describe('direct results are saved runs', () => {
  /**
   * After a result is drawn: it is the newest saved run of `kind` (model, method, settings, seed),
   * its permalink shown; it reopens from the list, from its permalink and as an imported export,
   * each time drawing the same `probe` text.
   */
  async function savedAndReopened(view: string, kind: string, probe: string, check: (run: any) => void): Promise<void> {
    const run = await newest(kind);
    expect(run, kind).toBeDefined();
    expect(run.status).toBe('done');
    check(run);
    expect(await permalink(view)).toBe(`#run/${run.id}`);
    const before = (await page.locator(probe).first().textContent())!;
    expect(before).not.toBe('');

    await openFromList(run.id);
    await page.waitForFunction(([v, rid]) => document.querySelector(`#view-${v} .provenance a`)?.getAttribute('href') === `#run/${rid}` && !document.querySelector(`#view-${v}`)!.hasAttribute('hidden'), [view, run.id]);
    expect(await page.locator(probe).first().textContent()).toBe(before);

    await openPermalink(run.id);
    await page.waitForFunction((v) => !document.querySelector(`#view-${v}`)!.hasAttribute('hidden'), view);
    expect(await page.locator(probe).first().textContent()).toBe(before);

    const exported = await (await fetch(`${url}/api/runs/${run.id}/export`)).text();
    await page.click('#group-runs');
    await page.click('#tab-runs');
    await page.setInputFiles('#view-runs input[name=import]', { name: 'run.json', mimeType: 'application/json', buffer: Buffer.from(exported) });
    const imported = page.locator('table.runs tbody tr', { hasText: '(imported)' }).filter({ hasText: run.title.slice(0, 20) });
    await imported.first().waitFor();
    const importedId = (await imported.first().getAttribute('data-run'))!;
    expect(importedId).not.toBe(run.id);
    await imported.first().locator('button', { hasText: 'Open' }).click();
    await page.waitForFunction(([v, rid]) => document.querySelector(`#view-${v} .provenance a`)?.getAttribute('href') === `#run/${rid}`, [view, importedId]);
    expect(await page.locator(probe).first().textContent()).toBe(before);
  }

  it('heads: the grid and a clicked head', async () => {
    await fresh('heads');
    await page.selectOption('#model', 'planted:induction');
    await page.fill('#prompt', 'ABCDABCD');
    await page.fill('#view-heads input[name=sequences]', '4');
    await page.fill('#view-heads input[name=seed]', '3');
    await page.click('#view-heads button.run');
    await page.locator('#view-heads .head-cell').first().waitFor({ timeout: 45_000 });
    await savedAndReopened('heads', 'heads', '#view-heads .head-cell[data-layer="1"][data-head="1"]', (run) => {
      expect(run.model).toBe('planted:induction');
      expect(run.request).toMatchObject({ model: 'planted:induction', method: 'induction', detector: 'induction', sequences: 4, seed: 3 });
      expect(run.result.scores.length).toBe(2);
    });
    // The cell shows the saved score.
    const run = await newest('heads');
    expect(Number(await page.locator('#view-heads .head-cell[data-layer="1"][data-head="1"]').getAttribute('data-score'))).toBe(run.result.scores[1][1]);

    await page.click('#tab-heads');
    await page.locator('#view-heads .head-cell[data-layer="1"][data-head="1"]').click();
    await page.locator('#view-heads .head-pattern').waitFor({ timeout: 30_000 });
    await savedAndReopened('heads', 'head', '#view-heads .copying', (r) => {
      expect(r.request).toMatchObject({ model: 'planted:induction', layer: 1, head: 1, prompt: 'ABCDABCD' });
      expect(r.result.head).toBe('L1H1');
    });
  }, 120_000);

  it('neurons, steering, causal abstraction and features on a prompt', async () => {
    await fresh('neurons');
    await page.selectOption('#model', 'planted:ngram-neuron');
    await page.fill('#view-neurons input[name=layer]', '0');
    await page.fill('#view-neurons input[name=neuron]', '3');
    await page.fill('#view-neurons input[name=maxTokens]', '256');
    await page.click('#view-neurons button.run');
    await page.locator('#view-neurons .neuron-stats').waitFor({ timeout: 45_000 });
    await savedAndReopened('neurons', 'neuron', '#view-neurons .neuron-stats', (run) => {
      expect(run.request).toMatchObject({ model: 'planted:ngram-neuron', method: 'neurons', layer: 0, neuron: 3, maxTokens: 256 });
      expect(run.result.neuron.neuron).toBe(3);
    });

    await page.click('#group-representations');
    await page.click('#tab-steering');
    await page.selectOption('#model', 'bundled');
    await page.fill('#prompt', PROMPT);
    await page.fill('#view-steering input[name=layer]', '1');
    await page.fill('#view-steering input[name=maxNewTokens]', '4');
    await page.click('#view-steering button.run');
    await page.locator('#view-steering .side-by-side').waitFor({ timeout: 45_000 });
    await savedAndReopened('steering', 'steering', '#view-steering article.steered', (run) => {
      expect(run.request).toMatchObject({ model: 'bundled', prompt: PROMPT, layer: 1, coef: 4, maxNewTokens: 4, seed: 0, method: 'actadd', direction: { source: 'pair', positive: ' Love', negative: ' Hate' } });
      expect(run.result.rows[0].prompt).toBe(PROMPT);
    });
    // Reopened, the controls are the run's.
    expect(await page.locator('#view-steering input[name=layer]').inputValue()).toBe('1');
    expect(await page.locator('#prompt').inputValue()).toBe(PROMPT);

    await page.click('#group-patching');
    await page.click('#tab-causal');
    await page.selectOption('#model', 'planted:induction');
    await page.selectOption('#view-causal select[name=task]', 'induction');
    await page.selectOption('#view-causal select[name=method]', 'interchange-whole');
    await page.fill('#view-causal input[name=positions]', '-1');
    await page.fill('#view-causal input[name=test]', '8');
    await page.fill('#view-causal input[name=seed]', '5');
    await page.click('#view-causal button.run');
    await page.locator('#view-causal .iia-cell').first().waitFor({ timeout: 45_000 });
    await savedAndReopened('causal', 'causal', '#view-causal .iia-heatmap', (run) => {
      expect(run.request).toMatchObject({ model: 'planted:induction', task: 'induction', method: 'interchange-whole', positions: [-1], test: 8, seed: 5 });
      expect(run.result.iia.length).toBe(3);
    });
    expect(await page.locator('#view-causal input[name=seed]').inputValue()).toBe('5');

    await page.click('#group-representations');
    await page.click('#tab-features');
    await page.locator('#view-features tr[data-feature]').first().waitFor();
    await page.fill('#prompt', 'the hat');
    await page.click('#features-on-prompt');
    await page.locator('#features-prompt-out .feature-link').first().waitFor({ timeout: 45_000 });
    await savedAndReopened('features', 'features', '#features-prompt-out', (run) => {
      expect(run.request).toMatchObject({ set: 'ngram-mlp0', text: 'the hat', k: 10 });
      expect(run.result.top.length).toBeGreaterThan(0);
    });
    expect(pageErrors).toEqual([]);
  }, 180_000);
});

describe('jobs', () => {
  /** Records #status-text and the progress bar's state at each change of the status text. */
  const record = () => page.evaluate(() => {
    const seen: { text: string; value: number | null }[] = [];
    (window as any).seen = seen;
    const bar = document.querySelector('#progress') as HTMLProgressElement;
    new MutationObserver(() => seen.push({ text: document.querySelector('#status-text')!.textContent ?? '', value: bar.hasAttribute('value') ? bar.value : null }))
      .observe(document.querySelector('#status-text')!, { childList: true, characterData: true, subtree: true });
  });

  it('Cancel stops both methods of a comparison, queued or running, and says so', async () => {
    await fresh('attribution');
    await page.selectOption('#model', 'bundled');
    await page.fill('#prompt', PROMPT);
    // Cancelled while the first runs: the second is queued behind it, and both end cancelled.
    await page.selectOption('#view-attribution select[name=method]', 'ig');
    await page.fill('#view-attribution input[name=steps]', '512');
    await page.fill('#view-attribution input[name=batchSize]', '1');
    await page.selectOption('#view-attribution select[name=compare]', 'occlusion');
    await page.click('#view-attribution button.run');
    await page.waitForFunction(() => /running attribution/.test(document.querySelector('#status-text')!.textContent ?? ''), undefined, { timeout: 30_000 });
    await expect.poll(async () => (await api('/api/runs?kind=attribution&limit=2')).runs.length).toBe(2);
    await page.click('#cancel');
    await page.locator('#view-attribution .error:not([hidden])').waitFor();
    expect(await page.locator('#view-attribution .error').textContent()).toBe('Cancelled: ig and occlusion, each saved as cancelled.');
    await expect.poll(async () => (await api('/api/runs?kind=attribution&limit=2')).runs.map((r: any) => [r.request.method, r.status]))
      .toEqual([['occlusion', 'cancelled'], ['ig', 'cancelled']]);

    // Cancelled while the second runs (the first done): the second stops and its section says so.
    await page.selectOption('#view-attribution select[name=method]', 'saliency');
    await page.selectOption('#view-attribution select[name=compare]', 'shapley');
    await page.fill('#prompt', `${PROMPT} dog. `.repeat(12));
    await page.click('#view-attribution button.run');
    await page.waitForFunction(() => /shapley: running attribution/.test(document.querySelector('[data-testid=compare-status]')?.textContent ?? ''), undefined, { timeout: 60_000 });
    await page.click('#cancel');
    await page.locator('[data-testid=compare-result][data-outcome=cancelled]').waitFor();
    expect(await page.locator('[data-testid=compare-status]').textContent()).toBe('shapley: cancelled');
    await page.waitForFunction(() => document.querySelector('#status')!.hasAttribute('hidden'));
    await expect.poll(async () => (await api('/api/runs?kind=attribution&limit=2')).runs.map((r: any) => [r.request.method, r.status]))
      .toEqual([['shapley', 'cancelled'], ['saliency', 'done']]);
    // The first method's result stays: it finished.
    expect(await page.locator('#view-attribution [data-testid=attribution-tokens] .token-chip').count()).toBeGreaterThan(0);
    await page.selectOption('#view-attribution select[name=compare]', '');
  }, 120_000);

  it('path patching shows a determinate bar that rises with the forwards done', async () => {
    await fresh('circuit');
    await page.selectOption('#model', 'planted:induction');
    await page.selectOption('#view-circuit select[name=task]', 'induction');
    await page.selectOption('#view-circuit select[name=method]', 'path');
    await page.fill('#view-circuit [name=sender]', 'L0H2');
    await page.fill('#view-circuit [name=n]', '8');
    await record();
    await page.click('#view-circuit button.run');
    await page.locator('[data-testid=path-table]').waitFor({ timeout: 60_000 });
    const all = ((await page.evaluate(() => (window as any).seen)) as { text: string; value: number | null }[]).filter((s) => s.text.startsWith('running path'));
    // The stage is announced, then counted at once (before any forward): determinate from there on.
    const from = all.findIndex((s) => s.value !== null);
    expect(from, JSON.stringify(all)).toBeLessThanOrEqual(1);
    const seen = all.slice(from);
    expect(seen.length).toBeGreaterThan(2);
    const values = seen.map((s) => s.value);
    expect(values.every((v) => v !== null), JSON.stringify(seen)).toBe(true);
    expect([...values].sort((a, b) => a! - b!)).toEqual(values);
    expect(values.at(-1)).toBe(0.99); // all forwards counted; below 1 until saved
    expect(seen.every((s) => /· \d+%/.test(s.text))).toBe(true);
    expect(pageErrors).toEqual([]);
  }, 90_000);
});
