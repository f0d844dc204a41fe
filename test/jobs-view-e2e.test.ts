/**
 * The Workbench's Dataset jobs view in a real browser (Debian's chromium driven by playwright-core)
 * against a real server whose jobs folder holds real activations jobs, run part way in this
 * process: the numbers shown are the library's `jobStatus`, the list follows shards as they change
 * on disk, and Cancel marks the job cancelled in the folder.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Page } from 'playwright-core';
import { BUNDLED_MODEL, jobs, loadModel, representations as R } from '../src/index.js';
import { SHOTS, startWorkbench, type Workbench } from './support/browser.js';
import { ROOT } from './helpers.js';
import { startLanternServe } from './support/processes.js';

let jobsDir: string;
let wb: Workbench;
let page: Page;
let failedId: string;
let unfinished: jobs.JobSpec;

beforeAll(async () => {
  jobsDir = fs.mkdtempSync(path.join(os.tmpdir(), 'lantern-jobs-view-'));
  const model = await loadModel(BUNDLED_MODEL);
  const examples = R.capitals({ seed: 1, limit: 16 }).examples.slice(0, 16);
  // Every capitals prompt has the token " of" except the one replaced here: its shard (1 of 4) fails.
  const bad = examples.map((e, i) => (i === 5 ? { ...e, text: 'Paris' } : e));
  const failing = await R.activationsJob(jobsDir, model, bad, { hooks: ['blocks.1.hook_resid_post'], positions: { token: ' of' }, batchSize: 4, shardSize: 4, dataset: 'capitals' });
  await expect(jobs.runJobLocally(jobsDir, failing, R.activationsAnalysis, { model, examples: bad })).rejects.toBeInstanceOf(jobs.JobFailedError);
  failedId = failing.id;
  // A finished job whose shard 2 is then lost: 3 of 4 done, unfinished.
  unfinished = await R.activationsJob(jobsDir, model, examples, { hooks: ['blocks.2.hook_resid_post'], batchSize: 4, shardSize: 4, dataset: 'capitals' });
  await jobs.runJobLocally(jobsDir, unfinished, R.activationsAnalysis, { model, examples: [...examples] });
  fs.rmSync(jobs.shardFile(jobsDir, unfinished, 2));
  wb = await startWorkbench({ name: 'lantern-jobs-view', server: { jobsDir } });
  page = wb.page;
}, 180_000);

afterAll(async () => {
  await wb?.close();
  if (jobsDir) fs.rmSync(jobsDir, { recursive: true, force: true });
});

/** What a job's row shows: counts, the progress bar, its state, failure lines, whether it has Cancel. */
async function shown(id: string) {
  const row = page.locator(`#view-dataset-jobs tr[data-job="${id}"]`);
  const counts = row.locator('.shard-counts');
  const bar = row.locator('progress');
  return {
    done: Number(await counts.getAttribute('data-done')),
    failed: Number(await counts.getAttribute('data-failed')),
    shards: Number(await counts.getAttribute('data-shards')),
    bar: [Number(await bar.getAttribute('value')), Number(await bar.getAttribute('max'))],
    state: await row.locator('td.state').textContent(),
    failures: await row.locator('ul.failures li').allTextContents(),
    cancel: await row.locator('button.cancel').count(),
  };
}

/** The same, as the library reads the folder. */
function expected(id: string) {
  const s = jobs.jobStatus(jobsDir, id);
  return {
    done: s.done.length, failed: s.failed.length, shards: s.job.shards.length, bar: [s.done.length, s.job.shards.length],
    state: s.state, failures: s.failed.map(jobs.describeFailure), cancel: s.state === 'incomplete' ? 1 : 0,
  };
}

describe('Dataset jobs view in chromium', () => {
  it('shows each job\'s shards as jobStatus counts them, follows the folder while a job is unfinished, and cancels from the page', async () => {
    await page.goto(`${wb.url}/#dataset-jobs`);
    await page.locator(`#view-dataset-jobs tr[data-job="${unfinished.id}"]`).waitFor();
    expect(await page.locator('#tab-dataset-jobs').getAttribute('aria-selected')).toBe('true');
    expect(await page.locator('#group-runs').getAttribute('aria-selected')).toBe('true');
    expect(await page.locator('#view-dataset-jobs tbody tr').count()).toBe(2);

    const failedRow = await shown(failedId);
    expect(failedRow).toEqual(expected(failedId));
    expect(failedRow).toMatchObject({ done: 3, failed: 1, shards: 4, state: 'failed', cancel: 0 });
    expect(failedRow.failures).toEqual(['shard 1 (examples 4–7): prompt 5 has no token " of": "Paris"']);
    expect(await shown(unfinished.id)).toEqual(expected(unfinished.id));
    expect(expected(unfinished.id)).toMatchObject({ done: 3, shards: 4, state: 'incomplete' });

    // Another shard goes missing on disk: the list, refreshing while a job is unfinished, follows.
    fs.rmSync(jobs.shardFile(jobsDir, unfinished, 0));
    await page.locator(`#view-dataset-jobs tr[data-job="${unfinished.id}"] .shard-counts[data-done="2"]`).waitFor({ timeout: 15_000 });
    expect(await shown(unfinished.id)).toEqual(expected(unfinished.id));
    await page.screenshot({ path: path.join(SHOTS, 'jobs-1-list.png'), fullPage: true });

    await page.locator(`#view-dataset-jobs tr[data-job="${unfinished.id}"] button.cancel`).click();
    await page.locator(`#view-dataset-jobs tr[data-job="${unfinished.id}"][data-state="cancelled"]`).waitFor({ timeout: 15_000 });
    const after = jobs.jobStatus(jobsDir, unfinished.id);
    expect(after.cancelled).toBe(true);
    expect(after.state).toBe('cancelled');
    expect(await shown(unfinished.id)).toEqual(expected(unfinished.id));
    // The job that failed was left alone.
    expect(jobs.jobStatus(jobsDir, failedId).cancelled).toBe(false);
    await page.screenshot({ path: path.join(SHOTS, 'jobs-2-cancelled.png'), fullPage: true });
    expect(wb.pageErrors).toEqual([]);
  }, 120_000);

  it('a job whose job.json is damaged is listed as unreadable, with why, and the other jobs still show', async () => {
    const damaged = path.join(jobsDir, 'activations-0123456789abcdef');
    fs.mkdirSync(damaged);
    fs.writeFileSync(path.join(damaged, 'job.json'), '{"format": "lantern-job", truncated');
    try {
      // The page is on the view already, and no job there is unfinished, so nothing refreshes it: reload.
      await page.reload();
      const row = page.locator('#view-dataset-jobs tr[data-job="activations-0123456789abcdef"]');
      await row.waitFor();
      expect(await row.getAttribute('data-state')).toBe('unreadable');
      expect(await row.locator('td.state').textContent()).toBe('unreadable');
      const why = (await row.locator('td.error').textContent())!;
      expect(why).toContain(path.join(damaged, 'job.json'));
      expect(why).toMatch(/is not valid JSON/);
      expect(await row.locator('button.cancel').count()).toBe(0);
      expect(await page.locator('#view-dataset-jobs tbody tr').count()).toBe(3);
      expect(await shown(failedId)).toEqual(expected(failedId));
      await page.screenshot({ path: path.join(SHOTS, 'jobs-3-unreadable.png'), fullPage: true });
      expect(wb.pageErrors).toEqual([]);
    } finally {
      fs.rmSync(damaged, { recursive: true, force: true });
    }
  });

  it('cancel answers 404 naming the nearest job for an unknown id, refuses paths, and keeps the Host check', async () => {
    const post = (url: string, host = 'localhost') => wb.app.inject({ method: 'POST', url, headers: { host } });
    let r = await post(`/api/dataset-jobs/${failedId}x/cancel`);
    expect(r.statusCode).toBe(404);
    expect(r.json().error.startsWith(`no job '${failedId}x' in ${jobsDir}; nearest: `)).toBe(true);
    expect(r.json().error).toContain(failedId);
    r = await post('/api/dataset-jobs/..%2F..%2Fetc/cancel');
    expect(r.statusCode).toBe(404);
    expect(r.json().error).toBe("'../../etc' is not a job id (see GET /api/dataset-jobs)");
    r = await post(`/api/dataset-jobs/${failedId}/cancel`, 'evil.example');
    expect(r.statusCode).toBe(403);
    expect(jobs.jobStatus(jobsDir, failedId).cancelled).toBe(false);
  });

  it('lantern serve --jobs-dir lists that folder\'s jobs', async () => {
    const { child, url } = await startLanternServe(['--jobs-dir', path.relative(ROOT, jobsDir)], path.join(wb.tmp, 'home'));
    try {
      const listed = await (await fetch(`${url}/api/dataset-jobs`)).json();
      expect(listed.dir).toBe(jobsDir);
      expect(listed.jobs.map((j: { id: string }) => j.id)).toEqual(jobs.jobIds(jobsDir));
      expect(listed.jobs.map((j: { id: string }) => j.id)).toEqual([failedId, unfinished.id].sort());
    } finally {
      child.kill();
    }
  }, 60_000);
});
