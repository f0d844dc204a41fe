/**
 * Saved runs: every run, newest first, with its method and key settings; search, compare two runs
 * side by side, import an exported run, and open, rename, export or delete one.
 */
import { api, Run, RunSummary } from '../api';
import { field, h, input, meta, output, panel, select, showError, View } from '../ui';
import { openRun } from '../registry';

const runsKind = select('kind', ['all kinds', 'forward', 'attribution', 'lens', 'attention', 'patching', 'trace', 'circuit', 'probes', 'steering', 'heads', 'head', 'neuron', 'causal', 'features'], 'all kinds');
const search = input('q', { type: 'search', placeholder: 'title, model, method, setting…', 'aria-label': 'Search saved runs' });
const importFile = input('import', { type: 'file', accept: 'application/json,.json', 'aria-label': 'Import an exported run' });
const compareBtn = h('button', { type: 'button', class: 'small', text: 'Compare the two ticked runs', disabled: true });
const comparison = h('div', { class: 'comparison', 'data-testid': 'comparison' });

export const runsView: View = {
  id: 'runs', label: 'Saved runs',
  panel: panel('runs', 'Saved runs', []),
  onShow: () => void refreshRuns(),
};

runsView.panel.prepend(h('div', { class: 'grid-controls' }, field('Show', runsKind), field('Search', search), field('Import a run (JSON)', importFile)), compareBtn, comparison);
runsKind.addEventListener('change', () => void refreshRuns());
let typing: ReturnType<typeof setTimeout> | undefined;
search.addEventListener('input', () => {
  clearTimeout(typing);
  typing = setTimeout(() => void refreshRuns(), 200);
});
importFile.addEventListener('change', async () => {
  const file = importFile.files?.[0];
  if (!file) return;
  try {
    let run: unknown;
    try {
      run = JSON.parse(await file.text());
    } catch {
      throw new Error(`${file.name} is not JSON: export a run with its Export button`);
    }
    await api.importRun(run);
    showError(runsView, null);
    await refreshRuns();
  } catch (e) {
    showError(runsView, (e as Error).message);
  } finally {
    importFile.value = '';
  }
});

/** The settings worth seeing in a list: the method and what was set, without the prompt itself. */
export function keySettings(r: { kind: string; request: Record<string, any> }): string {
  const skip = new Set(['text', 'prompt', 'messages', 'model', 'title', 'clean', 'corrupt']);
  const fmt = (v: unknown) => (typeof v === 'string' ? JSON.stringify(v) : Array.isArray(v) ? v.join(',') : typeof v === 'object' && v !== null ? JSON.stringify(v) : String(v));
  const entries = Object.entries(r.request).filter(([k]) => !skip.has(k));
  const method = r.request.method ?? (r.kind === 'attribution' ? 'ig' : r.kind === 'patching' ? 'activation' : undefined);
  return [...(method ? [String(method)] : []), ...entries.filter(([k]) => k !== 'method').map(([k, v]) => `${k} ${fmt(v)}`)].join(' · ');
}

const ticked = new Set<string>();
function updateCompare(): void {
  compareBtn.disabled = ticked.size !== 2;
}
compareBtn.addEventListener('click', () => void compare([...ticked]));

/** Two runs side by side: every setting (differences marked), and their headline numbers. */
async function compare(ids: string[]): Promise<void> {
  try {
    const [a, b] = await Promise.all(ids.map((id) => api.run(id)));
    const keys = [...new Set([...Object.keys(a.request), ...Object.keys(b.request)])].sort();
    const val = (r: Run, k: string) => (r.request[k] === undefined ? '—' : typeof r.request[k] === 'string' ? r.request[k] : JSON.stringify(r.request[k]));
    const rows: [string, string, string][] = [['kind', a.kind, b.kind], ['model', a.model, b.model], ['status', a.status, b.status], ...keys.map((k) => [k, val(a, k), val(b, k)] as [string, string, string]), ...headline(a, b)];
    comparison.replaceChildren(h('table', { class: 'striped compare' },
      h('thead', {}, h('tr', {}, h('th', { text: '' }), h('th', { text: a.title }), h('th', { text: b.title }))),
      h('tbody', {}, ...rows.map(([k, x, y]) => h('tr', { class: x === y ? '' : 'differs' }, h('th', { text: k }), h('td', { text: x }), h('td', { text: y }))))));
  } catch (e) {
    showError(runsView, (e as Error).message);
  }
}

/** The numbers each kind of run is judged by, for the comparison table. */
function headline(a: Run, b: Run): [string, string, string][] {
  const pick = (r: Run): Record<string, string> => {
    const x = r.result;
    if (!x) return {};
    if (r.kind === 'attribution') {
      const out: Record<string, string> = { 'target value': x.target.values.map((v: number) => v.toPrecision(4)).join(', ') };
      if (x.faithfulness) for (const [k, v] of Object.entries(x.faithfulness.rows[0])) if (typeof v === 'number') out[k] = v.toFixed(4);
      const top = x.scores[0].map((s: number, i: number) => [s, i]).sort((p: number[], q: number[]) => Math.abs(q[0]) - Math.abs(p[0]))[0];
      if (top) out['largest score'] = `${JSON.stringify(x.tokenStrings[top[1]])} ${top[0].toFixed(4)}`;
      return out;
    }
    if (r.kind === 'forward') return { 'top prediction': `${JSON.stringify(x.predictions[0].token)} ${(100 * x.predictions[0].prob).toFixed(2)}%` };
    if (r.kind === 'patching' || r.kind === 'trace') return { clean: x.clean.toFixed(4), corrupted: x.corrupt.toFixed(4) };
    if (r.kind === 'circuit' && x.edges) return { edges: `${x.edges.length} of ${x.totalEdges}`, faithfulness: x.faithfulness.toFixed(3) };
    return {};
  };
  const pa = pick(a);
  const pb = pick(b);
  return [...new Set([...Object.keys(pa), ...Object.keys(pb)])].map((k) => [k, pa[k] ?? '—', pb[k] ?? '—']);
}

async function refreshRuns(): Promise<void> {
  const out = output(runsView);
  out.append(h('p', { 'aria-busy': 'true', text: 'Loading saved runs…' }));
  try {
    const { runs, total } = await api.runs(runsKind.value === 'all kinds' ? undefined : runsKind.value, search.value.trim() || undefined);
    meta(runsView, `${total} saved run${total === 1 ? '' : 's'}${search.value.trim() ? ` matching “${search.value.trim()}”` : ''}`);
    for (const id of [...ticked]) if (!runs.some((r) => r.id === id)) ticked.delete(id);
    updateCompare();
    const table = h('table', { class: 'striped runs' }, h('thead', {}, h('tr', {}, ...['', 'Title', 'Kind', 'Settings', 'Model', 'Created', 'Status', ''].map((t) => h('th', { text: t })))));
    const tbody = h('tbody');
    for (const r of runs) tbody.append(row(r));
    table.append(tbody);
    out.replaceChildren(runs.length ? h('div', { class: 'scroll' }, table) : h('p', { class: 'muted', text: search.value ? 'No saved run matches.' : 'No saved runs yet: every run you make is saved here.' }));
  } catch (e) {
    out.replaceChildren();
    showError(runsView, (e as Error).message);
  }
}

function row(r: RunSummary & { request: Record<string, any> }): HTMLElement {
  const tick = input('compare', { type: 'checkbox', 'aria-label': `compare ${r.title}`, checked: ticked.has(r.id) });
  tick.addEventListener('change', () => {
    if (tick.checked) ticked.add(r.id);
    else ticked.delete(r.id);
    updateCompare();
  });
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
  return h('tr', { 'data-run': r.id },
    h('td', {}, tick),
    h('td', { class: 'title' }, r.title, ...(r.error ? [h('small', { class: 'run-error', text: r.error })] : [])), h('td', { text: r.kind }),
    h('td', { class: 'settings-cell', text: keySettings(r) }), h('td', { text: r.model }),
    h('td', { text: new Date(r.createdAt).toLocaleString() }), h('td', { text: r.status, title: r.error ?? '' }),
    h('td', { class: 'actions' }, openBtn, renameBtn, exportLink, delBtn));
}
