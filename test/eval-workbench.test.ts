/**
 * The evaluation views in a real browser (Debian's chromium through playwright-core) against a
 * real server whose evaluation store holds a pairwise run by a judge with a planted position
 * bias: the judgment browser must list exactly the flipped comparisons and open one with both
 * orders' verdicts; the leaderboard must rank the run's battles as the library does.
 */
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Page } from 'playwright-core';
import { HttpBackend } from '../src/backends/http.js';
import { arena } from '../src/methods/evaluation/arena.js';
import { loadAnswers, loadQuestions, SAMPLE_DATA } from '../src/methods/evaluation/data.js';
import { judgePairwise, type PairwiseReport } from '../src/methods/evaluation/judge.js';
import { JudgeRunner } from '../src/methods/evaluation/runner.js';
import { EvalStore } from '../src/methods/evaluation/store.js';
import { pairOf, scriptedServer } from './eval-helpers.js';
import { SHOTS, startWorkbench, type Workbench } from './support/browser.js';

let wb: Workbench;
let page: Page;
let url = '';
let report: PairwiseReport;
let errors: string[];

beforeAll(async () => {
  wb = await startWorkbench({
    name: 'lantern-eval-wb',
    prepare: async ({ dataDir }) => {
      const WRONG = /Around 90 degrees|Yes, 91 is prime|^Sydney\.$|180 km\/h|Eat oats|It shines/m;
      const judge = await scriptedServer((p) => {
        const { a, b } = pairOf(p);
        return WRONG.test(a) === WRONG.test(b) ? 'Both fine. [[A]]' : WRONG.test(a) ? 'B is right. [[B]]' : 'A is right. [[A]]';
      });
      const store = new EvalStore(path.join(dataDir, 'evaluation.sqlite'));
      const questions = await loadQuestions(path.join(SAMPLE_DATA, 'questions.jsonl'));
      const answers = await loadAnswers(path.join(SAMPLE_DATA, 'answers.jsonl'));
      report = await judgePairwise(new JudgeRunner(new HttpBackend({ baseURL: judge.baseURL, model: 'scripted-judge', api: 'chat' }), { store }), { questions, answers });
      store.close();
      await judge.close();
    },
  });
  ({ page, url, pageErrors: errors } = wb);
}, 120_000);

afterAll(async () => {
  await wb?.close();
});

describe('evaluation views in chromium', () => {
  it('the judgment browser lists the position flips and opens one with both orders', async () => {
    await page.goto(`${url}/#judgments`);
    await page.locator('#view-judgments select[name=run] option').first().waitFor({ state: 'attached' });
    await page.selectOption('#view-judgments select[name=filter]', 'flip');
    await page.click('#view-judgments button.run');
    const rows = page.locator('#view-judgments table.judgments tbody tr');
    await rows.first().waitFor();
    const flips = report.outcomes.filter((o) => o.consistent === false).map((o) => `${o.question}:${o.x}|${o.y}`).sort();
    expect(flips.length).toBe(6);
    expect((await rows.evaluateAll((trs) => trs.map((t) => t.getAttribute('data-item')))).sort()).toEqual(flips);
    await rows.first().locator('button').click();
    const cards = page.locator('#view-judgments article.judgment');
    await cards.first().waitFor();
    expect((await cards.evaluateAll((a) => a.map((x) => x.getAttribute('data-variant')))).sort()).toEqual(['pairwise/xy/s0', 'pairwise/yx/s0']);
    await expect.poll(() => page.locator('#view-judgments .final').textContent()).toMatch(/forward (careful|wordy), swapped (careful|wordy) → "tie" \(position flip\)/);
    expect(await page.locator('#view-judgments .judgment-detail').textContent()).toContain('Both fine.');
    await page.screenshot({ path: path.join(SHOTS, 'judgments.png') });
  }, 60_000);

  it('the leaderboard ranks the run as the library does, with intervals and the win-rate matrix', async () => {
    await page.click('#tab-leaderboard');
    await page.locator('#view-leaderboard select[name=run] option').first().waitFor({ state: 'attached' });
    await page.click('#view-leaderboard button.run');
    const rows = page.locator('#view-leaderboard table.leaderboard tbody tr');
    await rows.first().waitFor();
    const lib = arena(report.battles, { bootstrap: 100, pseudoTies: 1 });
    expect(await rows.evaluateAll((trs) => trs.map((t) => t.getAttribute('data-model')))).toEqual(lib.models);
    expect(await rows.first().locator('td').nth(2).textContent()).toBe(lib.leaderboard[0].rating.toFixed(1));
    expect(await page.locator('#view-leaderboard table.win-rate tbody tr').count()).toBe(3);
    await page.screenshot({ path: path.join(SHOTS, 'leaderboard.png') });
    expect(errors).toEqual([]);
  }, 60_000);
});
