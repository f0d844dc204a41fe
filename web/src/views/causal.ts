/**
 * The causal-abstraction view: where does the model compute a built-in task's high-level variable?
 * Held-out interchange intervention accuracy (IIA) at every layer × position, with a learned DAS
 * or Boundless DAS subspace or the whole activation interchanged, drawn as a heatmap with each
 * cell's value, and downloadable as JSON (model, method, settings, seed and the table). Each search
 * is saved as a run ('causal') by the server, reopened here.
 */
import { api, ApiError, Run } from '../api';
import { answeredRun, clearResult, field, h, input, legend, resultFrame, select, sequential, showAnswered, View } from '../ui';

/** What the server answers (src/interfaces/server/causal.ts). */
export interface CausalResponse {
  model: string;
  method: string;
  variable: string;
  hooks: string[];
  positions: number[];
  /** iia[i][j]: hook i, position j. */
  iia: number[][];
  k: number[][];
  settings: Record<string, unknown>;
  seed: number;
  best?: { location: { hook: string; position: number }; iia: number; k: number; orthogonality: number };
  elapsedMs: number;
}

/** The heatmap: hooks as rows, positions as columns, each cell coloured by its IIA and labelled with it. */
function heatmap(r: CausalResponse): HTMLElement {
  const head = h('tr', {}, h('th', { scope: 'col', text: 'hook \\ position' }), ...r.positions.map((p) => h('th', { scope: 'col', text: String(p) })));
  const rows = r.hooks.map((hook, i) => h('tr', {}, h('th', { scope: 'row', text: hook }), ...r.iia[i].map((v, j) => h('td', {
    class: 'iia-cell', 'data-iia': String(v), 'data-hook': hook, 'data-position': r.positions[j],
    title: `${hook} @ ${r.positions[j]}: IIA ${v.toFixed(3)} (k=${r.k[i][j]})`,
    style: `background:${sequential(v)};color:${v > 0.6 ? 'white' : 'black'};text-align:center;font-variant-numeric:tabular-nums`,
    text: v.toFixed(3),
  }))));
  return h('figure', {}, h('table', { class: 'iia-heatmap', style: 'width:auto' }, h('thead', {}, head), h('tbody', {}, ...rows)),
    h('figcaption', {}, `Held-out IIA of ${r.variable} (positions negative from the end)`, legend(0, 1, true)));
}

/** The view's panel, for the tab list in main.ts. */
export function causalView(deps: { model: () => string }): View {
  const task = select('task', ['ioi', 'induction'], 'ioi');
  const method = select('method', ['das', 'boundless', 'interchange-whole'], 'das');
  const positions = input('positions', { type: 'text', value: '-1, -2, -3' });
  const k = input('k', { type: 'number', min: 1, step: 1, value: 4 });
  const epochs = input('epochs', { type: 'number', min: 1, max: 100, step: 1, value: 3 });
  const train = input('train', { type: 'number', min: 8, max: 1024, step: 1, value: 128 });
  const test = input('test', { type: 'number', min: 8, max: 1024, step: 1, value: 48 });
  const seed = input('seed', { type: 'number', min: 0, step: 1, value: 0 });
  const button = h('button', { type: 'submit', class: 'run', text: 'Search' });
  const form = h('form', { class: 'controls causal' },
    field('Task', task, 'ioi: subject S · induction: next token'), field('Method', method),
    field('Positions', positions, 'comma-separated, negative from the end'), field('k', k, 'dimensions (Boundless: at most)'),
    field('Epochs', epochs, 'training passes'), field('Train pairs', train), field('Test pairs', test), field('Seed', seed), button);
  const error = h('p', { class: 'error', role: 'alert', hidden: true });
  const meta = h('div', { class: 'meta' });
  const out = h('div', { class: 'output' });
  const panel = h('section', { id: 'view-causal', class: 'view', role: 'tabpanel', 'aria-label': 'Causal', hidden: true }, form, error, ...resultFrame(), meta, out);

  let busy = false;
  async function run(): Promise<void> {
    if (busy) return;
    busy = true;
    error.hidden = true;
    button.setAttribute('aria-busy', 'true');
    out.classList.add('stale');
    try {
      const pos = positions.value.split(',').map((s) => s.trim()).filter(Boolean).map(Number);
      const bad = pos.find((p) => !Number.isInteger(p));
      if (pos.length === 0 || bad !== undefined) throw new Error(`positions must be integers separated by commas, got '${positions.value}'`);
      const request = {
        model: deps.model(), task: task.value, method: method.value, positions: pos,
        k: Number(k.value), epochs: Number(epochs.value), train: Number(train.value), test: Number(test.value), seed: Number(seed.value),
      };
      await showAnswered(view, answeredRun('causal', request, await api.causal<CausalResponse & { runId?: string }>(request)));
    } catch (e) {
      error.hidden = false;
      error.textContent = e instanceof ApiError ? e.message : (e as Error).message;
      // The previous table is not this request's: never leave it under the error.
      clearResult(view);
    } finally {
      busy = false;
      button.removeAttribute('aria-busy');
      out.classList.remove('stale');
    }
  }
  function render(saved: Run<CausalResponse>): void {
    const r = saved.result;
    const best = r.best ? ` · best ${r.best.location.hook} @ ${r.best.location.position}: IIA ${r.best.iia.toFixed(3)} with ${r.best.k} dimensions` : '';
    meta.textContent = `${r.method} for ${r.variable} on ${r.model}, seed ${r.seed}, ${(r.elapsedMs / 1000).toFixed(1)} s${best}`;
    const download = h('button', { type: 'button', class: 'secondary download', text: 'Download JSON' });
    download.addEventListener('click', () => {
      const a = h('a', { href: URL.createObjectURL(new Blob([JSON.stringify(r, null, 2)], { type: 'application/json' })), download: `iia-${r.variable}-${r.method}-seed${r.seed}.json` });
      a.click();
      setTimeout(() => URL.revokeObjectURL(a.href), 1000);
    });
    out.replaceChildren(heatmap(r), download);
  }

  form.addEventListener('submit', (e) => {
    e.preventDefault();
    void run();
  });
  const view: View = {
    id: 'causal', label: 'Causal', kinds: ['causal'], panel, render,
    restore: (req) => {
      task.value = req.task ?? task.value;
      method.value = req.method ?? method.value;
      if (Array.isArray(req.positions)) positions.value = req.positions.join(', ');
      for (const [el, key] of [[k, 'k'], [epochs, 'epochs'], [train, 'train'], [test, 'test'], [seed, 'seed']] as const) if (req[key] !== undefined) el.value = String(req[key]);
    },
  };
  return view;
}
