/**
 * The Workbench's Heads and Neurons views in a real browser (Debian's chromium driven by
 * playwright-core) against a real server, on planted models whose mechanisms are known by
 * construction.
 */
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Page } from 'playwright-core';
import type { LanternServer } from '../src/interfaces/server/app.js';
import { heads, neurons, INDUCTION_HEADS, loadPlanted, makePlanted, NGRAM, plantedPool, plantedPrompts } from '../src/index.js';
import { SHOTS, startWorkbench, type Workbench } from './support/browser.js';

const PROMPT = 'ABCDEFABCDEF';

let tmp: string;
let wb: Workbench;
let page: Page;
let app: LanternServer;
let url: string;
let errors: string[];

beforeAll(async () => {
  wb = await startWorkbench({ name: 'lantern-heads-e2e' });
  ({ page, url, app, tmp, pageErrors: errors } = wb);
}, 120_000);

afterAll(async () => {
  await wb?.close();
});

const cellNumber = (sel: string, attr: string) => page.locator(sel).getAttribute(attr).then(Number);

describe('Heads and Neurons views in chromium', () => {
  it('induction heatmap on planted:induction: the planted head is the highest cell, with the library score; a click shows its pattern and OV tokens', async () => {
    await page.goto(`${url}/#heads`);
    await page.locator('#model option').first().waitFor({ state: 'attached' });
    await page.selectOption('#model', 'planted:induction');
    await page.fill('#prompt', PROMPT);
    await page.selectOption('#view-heads select[name=detector]', 'induction');
    await page.fill('#view-heads input[name=sequences]', '10');
    await page.click('#view-heads button.run');
    await page.locator('#view-heads .head-cell').first().waitFor({ timeout: 45_000 });

    const folder = path.join(tmp, 'induction');
    await makePlanted('induction', folder, { measure: false });
    const { model } = await loadPlanted(folder);
    const want = await heads.analyzeHeads(model, { detectors: ['induction'], sequences: 10, seed: 0, pool: plantedPool(folder) });
    const grid = want.scores.induction!;

    const cells = await page.locator('#view-heads .head-cell').evaluateAll((els) => els.map((e) => ({ layer: Number(e.getAttribute('data-layer')), head: Number(e.getAttribute('data-head')), score: Number(e.getAttribute('data-score')) })));
    expect(cells).toHaveLength(model.cfg.nLayers * model.cfg.nHeads);
    const best = cells.reduce((a, b) => (b.score > a.score ? b : a));
    expect({ layer: best.layer, head: best.head }).toEqual(INDUCTION_HEADS.induction);
    for (const c of cells) expect(c.score).toBeCloseTo(grid[c.layer][c.head], 12);
    expect(best.score).toBeGreaterThan(0.95);
    for (const c of cells) if (c !== best) expect(c.score).toBeLessThan(0.15);

    // Click the planted head: its pattern on the prompt as the library caches it, and the tokens its OV circuit copies.
    const { layer, head } = INDUCTION_HEADS.induction;
    await page.click(`#view-heads .head-cell[data-layer="${layer}"][data-head="${head}"]`);
    await page.locator('#view-heads .head-pattern').waitFor({ timeout: 30_000 });
    expect(await page.locator('#view-heads .head-title').textContent()).toBe(`Head L${layer}H${head}`);
    const tokens = model.toTokens(PROMPT);
    const hook = `blocks.${layer}.attn.hook_pattern`;
    const p = (await model.runWithCache([tokens], [hook])).cache.get(hook).f32;
    const T = tokens.length;
    // The second copy's 'A' (position 6) attends to the token after the first 'A' (position 1).
    expect(await cellNumber('#view-heads .head-pattern td[data-query="6"][data-key="1"]', 'data-value')).toBeGreaterThan(0.95);
    for (const q of [3, 6, 9, 11]) {
      for (let k = 0; k <= q; k++) {
        expect(await cellNumber(`#view-heads .head-pattern td[data-query="${q}"][data-key="${k}"]`, 'data-value')).toBeCloseTo(p[(head * T + q) * T + k], 6);
      }
    }
    const circuits = await heads.ModelCircuits.read(model);
    const copied = circuits.topCopied({ layer, head }, { tokens: plantedPool(folder), k: 10 }).filter((x) => x.value > 0);
    const shown = await page.locator('#view-heads ol.ov-copied li').evaluateAll((els) => els.map((e) => Number(e.getAttribute('data-token'))));
    expect(shown).toEqual(copied.map((x) => x.token));
    expect(shown.length).toBeGreaterThan(0);
    await page.screenshot({ path: path.join(SHOTS, 'heads-1-induction.png'), fullPage: true });

    // A head outside the model, asked of the API directly, is one clear message.
    const bad = await app.inject({ method: 'POST', url: '/api/heads/head', payload: { model: 'planted:induction', layer: 5, head: 0, prompt: 'AB' } });
    expect(bad.statusCode).toBe(400);
    expect(bad.json().error).toBe("head L5H0 is outside the model's 2 layers x 4 heads (L0H0 .. L1H3)");
  });

  it('neuron page on planted:ngram-neuron: the planted neuron is labelled n-gram "t h", its top contexts shaded with the library activations', async () => {
    await page.goto(`${url}/#neurons`);
    await page.selectOption('#model', 'planted:ngram-neuron');
    await page.fill('#view-neurons input[name=layer]', String(NGRAM.layer));
    await page.fill('#view-neurons input[name=neuron]', String(NGRAM.ngramNeuron));
    await page.fill('#view-neurons input[name=maxTokens]', '3200');
    await page.click('#view-neurons button.run');
    await page.locator('#view-neurons .neuron-contexts .context').first().waitFor({ timeout: 45_000 });

    const folder = path.join(tmp, 'ngram');
    await makePlanted('ngram-neuron', folder, { measure: false });
    const { model } = await loadPlanted(folder);
    const per = plantedPrompts('ngram-neuron', 1, 1001)[0].tokens.length;
    const corpus = plantedPrompts('ngram-neuron', Math.ceil(3200 / per), 1001).flatMap((x) => x.tokens).slice(0, 3200);
    const stats = await neurons.neuronStats(model, corpus, { layers: [NGRAM.layer] });
    const want = stats.neurons.find((n) => n.neuron === NGRAM.ngramNeuron)!;
    expect(want.label).toBe('n-gram');

    const dl = await page.locator('#view-neurons .neuron-stats').textContent();
    expect(dl).toContain('labeln-gram');
    expect(dl).toContain('“t” “h”');
    expect(dl).toContain(`max activation${want.max.toFixed(4)}`);
    expect(dl).toContain(`fires at${(100 * want.fireRate).toFixed(2)}% of tokens`);
    // Each context's focus token carries the library's top activation; the tokens around it are the corpus's.
    const focus = await page.locator('#view-neurons .context .tok.focus').evaluateAll((els) => els.map((e) => ({ a: Number(e.getAttribute('data-activation')), text: e.textContent })));
    expect(focus).toHaveLength(want.top.length);
    focus.forEach((f, i) => {
      expect(f.a).toBeCloseTo(want.top[i].activation, 5);
      expect(f.text).toBe('h');
    });
    // The planted neurons of the layer are listed, and one click opens another.
    await page.click(`#view-neurons a.neuron-link[data-neuron="${NGRAM.positionalNeuron}"]`);
    await page.waitForFunction(() => /labelpositional/.test(document.querySelector('#view-neurons .neuron-stats')?.textContent ?? ''));
    await page.screenshot({ path: path.join(SHOTS, 'neurons-1-positional.png'), fullPage: true });

    // Bad input: shown in place, one sentence naming the range.
    await page.fill('#view-neurons input[name=neuron]', '64');
    await page.click('#view-neurons button.run');
    await page.waitForFunction(() => /neuron 64 is outside the layer's 64 neurons \[0, 63\]/.test(document.querySelector('#view-neurons .error')?.textContent ?? ''));
    expect(await page.locator('#view-neurons .neuron-contexts').count()).toBe(0);
    const badLayer = await app.inject({ method: 'POST', url: '/api/neurons/neuron', payload: { model: 'planted:ngram-neuron', layer: 3, neuron: 0 } });
    expect(badLayer.json().error).toBe("layer 3 is outside the model's layers [0, 0]");
    const badDetector = await app.inject({ method: 'POST', url: '/api/heads/scores', payload: { model: 'planted:induction', detector: 'inductive' } });
    expect(badDetector.statusCode).toBe(400);
    expect(badDetector.json().error).toMatch(/^unknown head detector 'inductive'; did you mean 'induction'/);
    expect(errors).toEqual([]);
  });
});
