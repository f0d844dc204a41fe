import { api } from '../api';
import { field, h, meta, output, panel, select, showError, View } from '../ui';
import { openRun } from '../registry';

// ---- Saved runs
const runsKind = select('kind', ['all kinds', 'forward', 'attribution', 'lens', 'attention', 'patching', 'probes'], 'all kinds');
export const runsView: View = {
  id: 'runs', label: 'Saved runs',
  panel: panel('runs', 'Saved runs', []),
  onShow: () => void refreshRuns(),
};

runsView.panel.prepend(h('div', { class: 'grid-controls' }, field('Show', runsKind)));
runsKind.addEventListener('change', () => void refreshRuns());


async function refreshRuns(): Promise<void> {
  const out = output(runsView);
  out.append(h('p', { 'aria-busy': 'true', text: 'Loading saved runs…' }));
  try {
    const { runs, total } = await api.runs(runsKind.value === 'all kinds' ? undefined : runsKind.value);
    meta(runsView, `${total} saved run${total === 1 ? '' : 's'}`);
    const table = h('table', { class: 'striped runs' }, h('thead', {}, h('tr', {}, ...['Title', 'Kind', 'Model', 'Created', 'Status', ''].map((t) => h('th', { text: t })))));
    const tbody = h('tbody');
    for (const r of runs) {
      const openBtn = h('button', { type: 'button', class: 'small', text: 'Open', disabled: r.status === 'running' || r.status === 'queued' });
      openBtn.addEventListener('click', () => void openRun(r.id));
      const renameBtn = h('button', { type: 'button', class: 'small outline', text: 'Rename' });
      renameBtn.addEventListener('click', async () => {
        const t = prompt('New title', r.title);
        if (t && t.trim()) {
          await api.rename(r.id, t.trim()).catch((e) => showError(runsView, e.message));
          void refreshRuns();
        }
      });
      const exportLink = h('a', { href: `api/runs/${r.id}/export`, download: '', role: 'button', class: 'small outline', text: 'Export' });
      const delBtn = h('button', { type: 'button', class: 'small outline secondary', text: 'Delete' });
      delBtn.addEventListener('click', async () => {
        if (confirm(`Delete “${r.title}”?`)) {
          await api.remove(r.id).catch((e) => showError(runsView, e.message));
          void refreshRuns();
        }
      });
      tbody.append(h('tr', { 'data-run': r.id },
        h('td', { class: 'title' }, r.title, ...(r.error ? [h('small', { class: 'run-error', text: r.error })] : [])), h('td', { text: r.kind }), h('td', { text: r.model }),
        h('td', { text: new Date(r.createdAt).toLocaleString() }), h('td', { text: r.status, title: r.error ?? '' }),
        h('td', { class: 'actions' }, openBtn, renameBtn, exportLink, delBtn)));
    }
    table.append(tbody);
    out.replaceChildren(runs.length ? h('div', { class: 'scroll' }, table) : h('p', { class: 'muted', text: 'No saved runs yet: every run you make is saved here.' }));
  } catch (e) {
    out.replaceChildren();
    showError(runsView, (e as Error).message);
  }
}

