/**
 * Dataset jobs: every job in the server's jobs folder (`lantern activations`, `lantern attribute
 * --data`, `lantern neurons` …) with its shards done, failed and left, why each failed shard
 * failed, and a Cancel button. The list refreshes while any job is unfinished, since the shards are
 * written by other processes (the command that runs the job, or queue workers).
 */
import { h, meta, output, panel, showError, View } from '../ui';

/** A job whose folder cannot be read (a damaged job.json), as GET /api/dataset-jobs lists it. */
interface UnreadableJob {
  id: string;
  state: 'unreadable';
  error: string;
  createdAt: string;
}

/** A job as GET /api/dataset-jobs lists it. */
interface DatasetJob {
  id: string;
  analysis: string;
  model: string;
  dataset: { name: string; examples: number };
  shards: number;
  done: number;
  failed: number;
  state: 'done' | 'failed' | 'cancelled' | 'incomplete';
  createdAt: string;
  failures: { shard: number; range: [number, number]; message: string }[];
}

const REFRESH_MS = 1500;

export const jobsView: View = {
  id: 'dataset-jobs', label: 'Dataset jobs',
  panel: panel('dataset-jobs', 'Dataset jobs', []),
  onShow: () => void refresh(),
};

async function call<T>(method: 'GET' | 'POST', url: string): Promise<T> {
  const res = await fetch(url, { method });
  const json = await res.json().catch(() => ({ error: `${res.status} ${res.statusText}` }));
  if (!res.ok) throw new Error(json.error ?? `${res.status} ${res.statusText}`);
  return json as T;
}

let timer: ReturnType<typeof setTimeout> | undefined;

async function refresh(): Promise<void> {
  clearTimeout(timer);
  timer = undefined;
  try {
    const { dir, jobs } = await call<{ dir: string; jobs: (DatasetJob | UnreadableJob)[] }>('GET', 'api/dataset-jobs');
    showError(jobsView, null);
    const unfinished = jobs.filter((j) => j.state === 'incomplete').length;
    meta(jobsView, `${jobs.length} job${jobs.length === 1 ? '' : 's'} in ${dir}${unfinished ? ` · ${unfinished} unfinished, refreshing` : ''}`);
    const table = h('table', { class: 'striped dataset-jobs' },
      h('thead', {}, h('tr', {}, ...['Job', 'Analysis', 'Model / dataset', 'Shards', 'Status', 'Created', ''].map((t) => h('th', { text: t })))),
      h('tbody', {}, ...jobs.map(row)));
    output(jobsView).append(jobs.length ? h('div', { class: 'scroll' }, table)
      : h('p', { class: 'muted', text: `No jobs in ${dir}: dataset-scale commands (lantern activations, attribute --data, neurons, features dashboards|explain, judge, chainpoll, sae train --harvest) run as jobs there.` }));
    // Only while the list is on screen: a hidden view starts refreshing again when shown.
    if (unfinished && !jobsView.panel.hidden) timer = setTimeout(() => void refresh(), REFRESH_MS);
  } catch (e) {
    showError(jobsView, (e as Error).message);
  }
}

function row(j: DatasetJob | UnreadableJob): HTMLElement {
  if (j.state === 'unreadable') {
    return h('tr', { 'data-job': j.id, 'data-state': j.state },
      h('td', {}, h('code', { text: j.id })), h('td', {}), h('td', {}),
      h('td', { class: 'error', text: j.error }),
      h('td', { class: 'state', text: j.state }),
      h('td', { text: new Date(j.createdAt).toLocaleString() }), h('td', {}));
  }
  const cancel = h('button', { type: 'button', class: 'small outline secondary cancel', text: 'Cancel', title: 'Stop the job at its next shard; running its command again resumes it' });
  cancel.addEventListener('click', async () => {
    cancel.setAttribute('aria-busy', 'true');
    try {
      await call('POST', `api/dataset-jobs/${encodeURIComponent(j.id)}/cancel`);
    } catch (e) {
      showError(jobsView, (e as Error).message);
    }
    void refresh();
  });
  const left = j.shards - j.done - j.failed;
  return h('tr', { 'data-job': j.id, 'data-state': j.state },
    h('td', {}, h('code', { text: j.id })),
    h('td', { text: j.analysis }),
    h('td', { text: `${j.model} / ${j.dataset.name || '-'} (${j.dataset.examples} examples)` }),
    h('td', { class: 'shards' },
      h('progress', { value: j.done, max: j.shards, 'aria-label': `${j.done} of ${j.shards} shards done` }),
      h('small', { class: 'shard-counts', 'data-done': j.done, 'data-failed': j.failed, 'data-shards': j.shards, text: `${j.done} done · ${j.failed} failed · ${left} left of ${j.shards}` }),
      ...(j.failures.length ? [h('ul', { class: 'failures' }, ...j.failures.map((f) => h('li', { 'data-shard': f.shard, text: `shard ${f.shard} (examples ${f.range[0]}–${f.range[1] - 1}): ${f.message}` })))] : [])),
    h('td', { class: 'state', text: j.state }),
    h('td', { text: new Date(j.createdAt).toLocaleString() }),
    h('td', {}, ...(j.state === 'incomplete' ? [cancel] : [])));
}
