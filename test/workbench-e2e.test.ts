/**
 * The Workbench's numbers and labels, checked in Chromium (Debian's, driven by playwright-core)
 * against a real server: every label comes from the result it describes, a failed run never leaves
 * an older chart looking current, and numbers that should not be trusted say so. Screenshots of
 * every view go to test-artifacts/workbench/ (gitignored).
 */
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Page } from 'playwright-core';
import { loadModel } from '../src/models/load.js';
import type { HookedTransformer } from '../src/models/hooked.js';
import { BUNDLED_MODEL } from '../src/paths.js';
import { SHOTS, startWorkbench, type Workbench } from './support/browser.js';

const PROMPT = 'The quick brown fox jumps over the lazy';

let wb: Workbench;
let page: Page;
let url: string;
let lib: HookedTransformer;
let pageErrors: string[];

beforeAll(async () => {
  // Hub ids are allowed (only checked here: nothing is downloaded).
  wb = await startWorkbench({ name: 'lantern-wb', server: { allowHub: true } });
  ({ page, url, pageErrors } = wb);
  page.on('dialog', (d) => void d.accept(nextAnswer.shift()));
  lib = await loadModel(BUNDLED_MODEL);
});

afterAll(async () => {
  await wb?.close();
});

/** Answers for the app's prompt() and confirm() dialogs, in order. */
const nextAnswer: string[] = [];

async function fresh(hash = 'predict'): Promise<void> {
  await page.goto(`${url}/#${hash}`);
  await page.locator('#model option').first().waitFor({ state: 'attached' });
}

async function run(view: string): Promise<void> {
  await page.click(`#view-${view} button.run`);
  await page.waitForFunction(() => document.querySelector('#status')!.hasAttribute('hidden') && !document.querySelector('button.run[aria-busy]'), undefined, { timeout: 45_000 });
}

/** The saved run behind a view's current result, through its permalink. */
async function shownRun(view: string): Promise<any> {
  const href = await page.locator(`#view-${view} .provenance a[href^="#run/"]`).getAttribute('href');
  const res = await fetch(`${url}/api/runs/${href!.slice('#run/'.length)}`);
  return res.json();
}

function softmaxAt(logits: Float32Array, V: number, pos: number): Float64Array {
  const row = logits.subarray(pos * V, (pos + 1) * V);
  let max = -Infinity;
  for (const x of row) max = Math.max(max, x);
  const p = new Float64Array(V);
  let z = 0;
  for (let i = 0; i < V; i++) z += (p[i] = Math.exp(row[i] - max));
  for (let i = 0; i < V; i++) p[i] /= z;
  return p;
}

describe('the Workbench tells the truth about its results', () => {
  it('names a contrastive probability score as the difference of probabilities it is (computed here from the logits)', async () => {
    await fresh('attribution');
    await page.fill('#prompt', PROMPT);
    await page.selectOption('#view-attribution select[name=method]', 'saliency');
    await page.fill('#view-attribution input[name=target]', ' dog');
    await page.fill('#view-attribution input[name=foil]', ' cat');
    await page.selectOption('#view-attribution select[name=kind]', 'prob');
    await run('attribution');
    const ids = lib.toTokens(PROMPT);
    const probs = softmaxAt((await lib.run([ids])).f32, lib.cfg.dVocab, ids.length - 1);
    const want = probs[lib.encode(' dog')[0]] - probs[lib.encode(' cat')[0]];
    const text = (await page.locator('#view-attribution .meta').textContent())!;
    expect(text).not.toContain('logit(');
    const m = /p\(·dog\) − p\(·cat\) = (-?[\d.e-]+)/.exec(text);
    expect(m, text).not.toBeNull();
    expect(Number(m![1])).toBeCloseTo(want, 4);
    await page.screenshot({ path: path.join(SHOTS, 'attribution-contrastive.png'), fullPage: true });

    // Two methods side by side, their faithfulness in one table (each row as its own run computed it).
    await page.fill('#view-attribution input[name=foil]', '');
    await page.selectOption('#view-attribution select[name=kind]', 'logprob');
    await page.check('#view-attribution input[name=evaluate]');
    await page.selectOption('#view-attribution select[name=compare]', 'occlusion');
    await run('attribution');
    await page.locator('[data-testid=compare-result] .chart svg.marks').waitFor();
    const cells = await page.locator('[data-testid=faith-compare] tbody tr').evaluateAll((trs) => trs.map((tr) => [...tr.querySelectorAll('td')].map((td) => td.textContent)));
    expect(cells.map((c) => c[0])).toEqual(['saliency', 'occlusion']);
    const { runs } = await (await fetch(`${url}/api/runs?kind=attribution&limit=2`)).json();
    const [occ, sal] = await Promise.all(runs.map(async (x: { id: string }) => (await (await fetch(`${url}/api/runs/${x.id}`)).json()).result));
    expect([sal.method, occ.method]).toEqual(['saliency', 'occlusion']);
    const keys = Object.keys(sal.faithfulness.rows[0]).filter((k) => typeof sal.faithfulness.rows[0][k] === 'number');
    keys.forEach((k, i) => {
      expect(Number(cells[0][i + 1])).toBeCloseTo(sal.faithfulness.rows[0][k], 4);
      expect(Number(cells[1][i + 1])).toBeCloseTo(occ.faithfulness.rows[0][k], 4);
    });
    await page.screenshot({ path: path.join(SHOTS, 'attribution-compare.png'), fullPage: true });
    await page.selectOption('#view-attribution select[name=compare]', '');
  });

  it('says which model and prompt made a result, and a failed run clears the older result', async () => {
    await fresh('predict');
    await page.selectOption('#model', 'planted:induction');
    await page.fill('#prompt', 'abcdabcdab');
    await run('predict');
    await page.locator('#view-predict .chart svg.marks').waitFor();
    const prov = (await page.locator('#view-predict .provenance').textContent())!;
    expect(prov).toContain('planted:induction');
    expect(prov).toContain('abcdabcdab');
    await page.selectOption('#model', 'planted:copy-suppression');
    await page.fill('#prompt', 'abcdefgh'.repeat(12));
    await run('predict');
    expect(await page.locator('#view-predict .error').textContent()).toMatch(/context is 32/);
    expect(await page.locator('#view-predict .chart').count()).toBe(0);
    expect(await page.locator('#view-predict .provenance').isHidden()).toBe(true);
  });

  it('refuses relative paths as models, keeps added Hub ids across a reload, and removes added models', async () => {
    await fresh('predict');
    for (const bad of ['./models/lantern-demo', '../../../etc']) {
      nextAnswer.push(bad);
      await page.click('#add-model');
      await page.locator('#view-predict .error:not([hidden])').waitFor();
      expect(await page.locator('#view-predict .error').textContent()).toMatch(/is a relative path, not a Hub id/);
      expect(await page.locator(`#model option[value="hub:${bad}"]`).count()).toBe(0);
    }
    nextAnswer.push('gpt2');
    await page.click('#add-model');
    await page.locator('#model option[value="hub:gpt2"]').waitFor({ state: 'attached' });
    nextAnswer.push(BUNDLED_MODEL);
    await page.click('#add-model');
    await page.waitForFunction(() => (document.querySelector('#model') as HTMLSelectElement).value.startsWith('folder:'));
    await page.reload();
    await page.locator('#model option[value="hub:gpt2"]').waitFor({ state: 'attached' });
    expect(await page.locator('#model').inputValue()).toMatch(/^folder:/);
    // Remove both (the confirm dialogs are accepted); they stay gone after a reload.
    await page.click('#remove-model');
    await page.waitForFunction(() => ![...(document.querySelector('#model') as HTMLSelectElement).options].some((o) => o.value.startsWith('folder:')));
    await page.selectOption('#model', 'hub:gpt2');
    await page.click('#remove-model');
    await page.waitForFunction(() => !document.querySelector('#model option[value="hub:gpt2"]'));
    await page.reload();
    await page.locator('#model option').first().waitFor({ state: 'attached' });
    expect(await page.locator('#model option[value="hub:gpt2"]').count()).toBe(0);
    expect(await page.locator('#model option[value^="folder:"]').count()).toBe(0);
    expect(await page.locator('#remove-model').isHidden()).toBe(true);
  });

  it("recolours the attention token strip from the chosen head's pattern when the layer or head changes", async () => {
    await fresh('attention');
    await page.selectOption('#model', 'bundled');
    await page.fill('#prompt', PROMPT);
    await run('attention');
    const r = (await shownRun('attention')).result;
    const chips = page.locator('[data-testid=attention-tokens] .token-chip');
    await chips.nth(4).hover();
    const weights = async () => Promise.all([0, 1, 2, 3, 4].map(async (j) => Number(await chips.nth(j).getAttribute('data-weight'))));
    (await weights()).forEach((w, j) => expect(w).toBeCloseTo(r.patterns[0][0][4][j], 6));
    await page.selectOption('#view-attention select[name=layer]', '2');
    await page.selectOption('#view-attention select[name=head]', '5');
    (await weights()).forEach((w, j) => expect(w).toBeCloseTo(r.patterns[2][5][4][j], 6));
    // A thumbnail click selects its head, and the strip follows it too.
    await page.locator('[data-testid=attention-thumbs] canvas[data-layer="3"][data-head="1"]').click();
    expect(await page.locator('#view-attention select[name=head]').inputValue()).toBe('1');
    await chips.nth(4).hover();
    (await weights()).forEach((w, j) => expect(w).toBeCloseTo(r.patterns[3][1][4][j], 6));
  });

  it('follows the URL hash after load, opens permalinks, and remembers the model and prompt across a reload', async () => {
    await fresh('predict');
    await page.evaluate(() => (location.hash = '#lens'));
    await page.locator('#view-lens').waitFor();
    expect(await page.locator('#view-predict').isHidden()).toBe(true);
    await page.selectOption('#model', 'planted:induction');
    await page.fill('#prompt', 'remember me');
    await page.reload();
    await page.locator('#model option').first().waitFor({ state: 'attached' });
    await page.waitForFunction(() => (document.querySelector('#model') as HTMLSelectElement).value === 'planted:induction');
    expect(await page.locator('#prompt').inputValue()).toBe('remember me');
    expect(await page.locator('#view-lens').isVisible()).toBe(true);
    // A permalink to a saved run opens it in its view, even when typed into an open page.
    const { runs } = await (await fetch(`${url}/api/runs?kind=attention`)).json();
    await page.evaluate((id) => (location.hash = `#run/${id}`), runs[0].id);
    await page.locator('#view-attention [data-testid=attention-main]').waitFor();
    expect(await page.locator('#prompt').inputValue()).toBe(PROMPT);
  });

  it('shows the characters that byte pieces of emoji and CJK text form, everywhere, with the raw token on hover', async () => {
    const text = 'I love 🍕 and 東京!';
    await fresh('predict');
    await page.selectOption('#model', 'bundled');
    await page.fill('#prompt', text);
    await run('predict');
    const ids = lib.toTokens(text);
    expect(lib.tokenStrings(ids).some((s) => s.includes('\uFFFD'))).toBe(true); // the case being tested
    const chips = page.locator('[data-testid=position-tokens] .token-chip');
    expect(await chips.count()).toBe(ids.length);
    expect(await page.locator('#view-predict').textContent()).not.toContain('\uFFFD');
    // Each run of pieces shows its characters once per piece, marked ¹ ² …; joined back they are the prompt.
    const labels = await page.locator('[data-testid=position-tokens] .token-chip > span').allTextContents();
    const joined = labels.filter((l) => !/[²³⁴]$/.test(l)).map((l) => l.replace(/¹$/, '').replace(/·/g, ' ')).join('');
    expect(joined).toBe(text);
    expect(await chips.nth(ids.length - 3).getAttribute('title')).toContain(`token ${ids[ids.length - 3]}`);
    await page.screenshot({ path: path.join(SHOTS, 'predictions-unicode.png'), fullPage: true });
  });

  it('counts the real work in progress: IG with faithfulness never sits at 100%, and Shapley shows a fraction', async () => {
    await fresh('attribution');
    await page.fill('#prompt', PROMPT);
    const record = () => page.evaluate(() => {
      const seen: string[] = [];
      (window as any).seen = seen;
      new MutationObserver(() => seen.push(document.querySelector('#status-text')!.textContent ?? '')).observe(document.querySelector('#status-text')!, { childList: true, characterData: true, subtree: true });
    });
    const percents = async () => ((await page.evaluate(() => (window as any).seen)) as string[])
      .filter((s) => s.startsWith('running attribution')).map((s) => Number(/· (\d+)%/.exec(s)?.[1] ?? NaN));
    await record();
    await page.selectOption('#view-attribution select[name=method]', 'ig');
    await page.fill('#view-attribution input[name=target]', ' dog');
    await page.fill('#view-attribution input[name=foil]', '');
    await page.selectOption('#view-attribution select[name=kind]', 'logprob');
    await page.fill('#view-attribution input[name=steps]', '32');
    await page.fill('#view-attribution input[name=batchSize]', '4');
    await page.check('#view-attribution input[name=evaluate]');
    await run('attribution');
    const ig = await percents();
    expect(ig.length).toBeGreaterThan(5);
    expect(ig.every((p) => Number.isFinite(p) && p < 100), ig.join(' ')).toBe(true);
    expect(Math.max(...ig), ig.join(' ')).toBeGreaterThanOrEqual(80);
    expect([...ig].sort((a, b) => a - b)).toEqual(ig);

    await page.evaluate(() => ((window as any).seen.length = 0));
    await page.uncheck('#view-attribution input[name=evaluate]');
    await page.selectOption('#view-attribution select[name=method]', 'shapley');
    await page.fill('#view-attribution input[name=samples]', '8');
    await page.fill('#view-attribution input[name=batchSize]', '8');
    await run('attribution');
    const shapley = await percents();
    expect(shapley.length).toBeGreaterThan(2);
    expect(shapley.every((p) => Number.isFinite(p) && p < 100), shapley.join(' ')).toBe(true);
    // The estimate counts every coalition; Shapley evaluates a repeated coalition once, so it ends early.
    expect(Math.max(...shapley)).toBeGreaterThanOrEqual(50);
  });

  it("puts validation errors in plain words, and shows each view's prompt limits before running", async () => {
    await fresh('attention');
    expect(await page.locator('#view-attention .limits').textContent()).toMatch(/up to 1,000 characters and 128 tokens/);
    await page.click('#tab-predict');
    expect(await page.locator('#view-predict .limits').textContent()).toMatch(/up to 4,000 characters/);
    await page.fill('#prompt', '');
    await run('predict');
    expect(await page.locator('#view-predict .error').textContent()).toBe('the prompt (text) is empty');
  });

  it('warns about numbers not to trust: unconverged IG, a target without its space or of several tokens, target-free methods, a flipped patching baseline', async () => {
    await fresh('attribution');
    await page.selectOption('#model', 'bundled');
    await page.fill('#prompt', PROMPT);
    await page.uncheck('#view-attribution input[name=evaluate]');
    await page.selectOption('#view-attribution select[name=method]', 'ig');
    await page.fill('#view-attribution input[name=steps]', '2');
    await page.fill('#view-attribution input[name=batchSize]', '');
    await page.fill('#view-attribution input[name=target]', ' dog');
    await run('attribution');
    const r = (await shownRun('attribution')).result;
    const delta = Math.abs(r.convergenceDelta[0]);
    const total = r.scores[0].reduce((a: number, b: number) => a + Math.abs(b), 0);
    const warn = page.locator('#view-attribution .warnings');
    expect(delta / total).toBeGreaterThan(0.1); // two steps do not converge here
    expect(await warn.textContent()).toMatch(/did not converge: δ = -?[\d.]+ against scores whose magnitudes sum to [\d.]+/);
    await page.fill('#view-attribution input[name=steps]', '64');
    await page.fill('#view-attribution input[name=target]', 'dog');
    await run('attribution');
    expect(await warn.textContent()).toMatch(/"dog" has no leading space.*Did you mean " dog"\?/);
    await page.fill('#view-attribution input[name=target]', ' dog sat');
    await run('attribution');
    expect(await warn.textContent()).toMatch(/is 2 tokens .* teacher-forced continuation/);
    await page.fill('#view-attribution input[name=target]', ' dog');
    await page.selectOption('#view-attribution select[name=method]', 'attention');
    await run('attribution');
    const meta = (await page.locator('#view-attribution .meta').textContent())!;
    expect(meta).not.toMatch(/explaining/);
    expect(meta).toContain('the same for any target');

    // Patching: on the bundled model the default name-mover example scores lower on the clean
    // prompt than on the corrupted one; with the answers swapped the difference is small.
    await page.click('#group-patching'); // the view's group, then its tab in the second row
    await page.click('#tab-patching');
    await page.selectOption('#view-patching select[name=sweep]', 'resid');
    await run('patching');
    const p = (await shownRun('patching')).result;
    expect(p.clean - p.corrupt).toBeLessThan(0);
    expect(await page.locator('#view-patching .warnings').textContent()).toContain(`clean − corrupted = ${(p.clean - p.corrupt).toFixed(3)}, so every cell's sign is flipped`);
    await page.fill('#view-patching input[name=answer]', ' John');
    await page.fill('#view-patching input[name=wrong]', ' Mary');
    await run('patching');
    const q = (await shownRun('patching')).result;
    expect(q.clean - q.corrupt).toBeCloseTo(-(p.clean - p.corrupt), 5);
    expect(await page.locator('#view-patching .warnings').textContent()).toContain(`differ by only ${(q.clean - q.corrupt).toFixed(3)}`);
    await page.screenshot({ path: path.join(SHOTS, 'patching-warning.png'), fullPage: true });
    expect(pageErrors).toEqual([]);
  });

  it('lists runs with their method and settings; searches, compares two, imports an export, and reopens a failed run with its settings', async () => {
    await fresh('runs');
    const rows = page.locator('table.runs tbody tr');
    await rows.first().waitFor();
    await page.fill('#view-runs input[name=q]', 'saliency');
    await page.waitForFunction(() => /matching “saliency”/.test(document.querySelector('#view-runs .meta')!.textContent ?? ''));
    const listed = await (await fetch(`${url}/api/runs?q=saliency`)).json();
    expect(listed.total).toBeGreaterThan(0);
    await expect.poll(() => rows.count()).toBe(listed.total);
    for (const text of await rows.locator('td.settings-cell').allTextContents()) expect(text).toMatch(/^saliency · /);
    // Compare the two newest attribution runs: settings side by side, differences marked.
    await page.fill('#view-runs input[name=q]', '');
    await page.selectOption('#view-runs select[name=kind]', 'attribution');
    await page.waitForFunction(() => !/matching/.test(document.querySelector('#view-runs .meta')!.textContent ?? '') && document.querySelectorAll('table.runs tbody tr').length > 2);
    await rows.nth(0).locator('input[name=compare]').check();
    await rows.nth(1).locator('input[name=compare]').check();
    await page.click('#view-runs button:has-text("Compare")');
    await page.locator('[data-testid=comparison] table tr.differs').first().waitFor();
    const { runs } = await (await fetch(`${url}/api/runs?kind=attribution`)).json();
    const headers = await page.locator('[data-testid=comparison] thead th').allTextContents();
    expect(headers.slice(1)).toEqual([runs[0].title, runs[1].title]);
    // Import an exported run: it is saved anew and opens like any other.
    const exported = await (await fetch(`${url}/api/runs/${runs[0].id}/export`)).text();
    await page.setInputFiles('#view-runs input[name=import]', { name: 'run.json', mimeType: 'application/json', buffer: Buffer.from(exported) });
    const imported = rows.filter({ hasText: '(imported)' });
    await imported.first().waitFor();
    await imported.first().locator('button', { hasText: 'Open' }).click();
    await page.locator('#view-attribution .provenance').waitFor();
    expect(await page.locator('#view-attribution .meta').textContent()).not.toBe('');
    // The failed run of the too-long prompt opens with its model and prompt, and says why it failed.
    await page.click('#group-runs');
    await page.click('#tab-runs');
    await page.selectOption('#view-runs select[name=kind]', 'forward');
    await rows.filter({ hasText: 'error' }).first().locator('button', { hasText: 'Open' }).click();
    await page.locator('#view-predict .error:not([hidden])').waitFor();
    expect(await page.locator('#view-predict .error').textContent()).toMatch(/^This saved run failed: .*context is 32/);
    expect(await page.locator('#prompt').inputValue()).toBe('abcdefgh'.repeat(12));
    expect(await page.locator('#model').inputValue()).toBe('planted:copy-suppression');
  });

  it('traces a fact, draws a planted circuit with clickable edges, shows the planted model card, and leaves a screenshot of every view', async () => {
    await fresh('trace');
    await page.selectOption('#model', 'bundled');
    await page.fill('#prompt', 'The Eiffel Tower is located in the city of');
    await page.fill('#view-trace [name=kinds]', 'resid');
    await page.fill('#view-trace [name=samples]', '2');
    await run('trace');
    const t = (await shownRun('trace')).result;
    // One layer x position cell per restored residual state.
    expect(await page.locator('#view-trace .chart svg.marks g.mark-rect.layer_0_marks path').count()).toBe(t.effects.resid.normalised.length * t.tokens.length);

    await page.click('#tab-circuit');
    await page.selectOption('#model', 'planted:induction');
    await page.selectOption('#view-circuit select[name=task]', 'induction');
    await page.selectOption('#view-circuit select[name=method]', 'eap');
    expect(await page.locator('#view-circuit [name=sender]').isVisible()).toBe(false); // only for path patching
    await page.fill('#view-circuit [name=igSteps]', '1');
    await run('circuit');
    const c = (await shownRun('circuit')).result;
    expect(c.edges.length).toBeGreaterThan(0);
    await page.locator('[data-testid=circuit-graph] line[data-edge="0"]').click({ force: true });
    expect(await page.locator('[data-testid=edge-detail]').textContent()).toContain(`${c.edges[0].sender} → ${c.edges[0].receiver}: score (fraction of the clean − corrupted metric difference) ${c.edges[0].score.toPrecision(4)}`);

    // The planted model's card names its planted heads: the same as its planted.json.
    await page.locator('details.model-details summary').click();
    await page.locator('[data-testid=model-card] .mechanism li').first().waitFor();
    const card = await (await fetch(`${url}/api/models/card?ref=planted:induction`)).json();
    expect(await page.locator('[data-testid=model-card] .mechanism li').count()).toBe(card.planted.mechanism.length);
    expect(await page.locator('[data-testid=model-card] .mechanism').textContent()).toContain(`${card.planted.mechanism[0].role}: L${card.planted.mechanism[0].layer}H${card.planted.mechanism[0].head}`);
    await page.screenshot({ path: path.join(SHOTS, 'circuit-and-model-card.png'), fullPage: true });
    await page.locator('details.model-details summary').click();

    await page.selectOption('#model', 'bundled');
    // The lens of a prompt wider than the screen: rows named as TransformerLens names them, the legend in view, scrolled to the end.
    await page.click('#tab-lens');
    await page.fill('#prompt', `${PROMPT} dog. ${PROMPT} dog. ${PROMPT}`);
    await run('lens');
    expect(await page.locator('#view-lens .chart svg.marks').textContent()).toContain('L0 resid_pre');
    expect(await page.locator('#view-lens .chart svg.marks').textContent()).toContain(`L${lib.cfg.nLayers - 1} resid_post`);
    expect(await page.locator('[data-testid=lens-legend]').isVisible()).toBe(true);
    const scroll = await page.locator('#view-lens .chart').evaluate((el) => [el.scrollLeft, el.clientWidth, el.scrollWidth]);
    expect(scroll[2]).toBeGreaterThan(scroll[1]);
    expect(scroll[0] + scroll[1]).toBeGreaterThanOrEqual(scroll[2] - 1);
    await page.click('#group-representations'); // the view's group, then its tab in the second row
    await page.click('#tab-probes');
    await page.fill('#view-probes input[name=limit]', '8');
    await run('probes');
    // Each view with its latest result, opened from its permalink.
    const kinds: Record<string, string> = { predict: 'forward', attribution: 'attribution', lens: 'lens', attention: 'attention', patching: 'patching', trace: 'trace', circuit: 'circuit', probes: 'probes' };
    for (const [id, kind] of Object.entries(kinds)) {
      const { runs } = await (await fetch(`${url}/api/runs?kind=${kind}`)).json();
      const done = runs.find((x: { status: string }) => x.status === 'done');
      expect(done, kind).toBeDefined();
      await page.evaluate((rid) => (location.hash = `#run/${rid}`), done.id);
      await page.waitForFunction(([v, rid]) => !document.querySelector(`#view-${v}`)!.hasAttribute('hidden')
        && document.querySelector(`#view-${v} .provenance a`)?.getAttribute('href') === `#run/${rid}`, [id, done.id]);
      await page.screenshot({ path: path.join(SHOTS, `view-${id}.png`), fullPage: true });
    }
    await page.click('#group-runs');
    await page.click('#tab-runs');
    await page.locator('table.runs tbody tr').first().waitFor();
    await page.screenshot({ path: path.join(SHOTS, 'view-runs.png'), fullPage: true });
    expect(pageErrors).toEqual([]);
  });
});
