/**
 * The Workbench web app: one prompt box, one view per method, a saved-runs list. Every run goes
 * through the server's compute queue (progress shown live, cancellable) and is saved there, so any
 * result can be reopened later from the runs list.
 */
import '@picocss/pico/css/pico.min.css';
import './style.css';
import { api, ApiError, FamilyOptions, Kind, OptionSpec, Run, runJob } from './api';
import { leaderboardView } from './views/leaderboard';
import { judgmentsView } from './views/judgments';
import { attentionSpec, attributionSpec, draw, labels, lensSpec, patchingSpec, predictionsSpec, probeAccuracySpec, probePcaSpec, show } from './charts';

const $ = <T extends HTMLElement = HTMLElement>(sel: string, root: ParentNode = document) => root.querySelector(sel) as T;

function h<K extends keyof HTMLElementTagNameMap>(tag: K, attrs: Record<string, string | boolean | number> = {}, ...children: (Node | string)[]): HTMLElementTagNameMap[K] {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v === false) continue;
    if (k === 'text') el.textContent = String(v);
    else el.setAttribute(k, v === true ? '' : String(v));
  }
  el.append(...children);
  return el;
}

function field(label: string, input: HTMLElement, hint?: string): HTMLLabelElement {
  return h('label', {}, label, input, ...(hint ? [h('small', { class: 'muted', text: hint })] : []));
}

const promptEl = $<HTMLTextAreaElement>('#prompt');
const chatEl = $<HTMLInputElement>('#chat');

/** The prompt as the API takes it: text, or with the chat switch on, the user's message of a chat. */
function promptBody(): { text: string } | { messages: { role: string; content: string }[] } {
  return chatEl.checked ? { messages: [{ role: 'user', content: promptEl.value }] } : { text: promptEl.value };
}
const modelEl = $<HTMLSelectElement>('#model');

interface View {
  id: string;
  label: string;
  kind?: Kind;
  panel: HTMLElement;
  /** The request body for a run, from the controls (throws Error with a message for bad input). */
  body?: () => Record<string, unknown>;
  /** Restores the controls from a saved run's request. */
  restore?: (req: Record<string, any>) => void;
  render?: (run: Run) => Promise<void> | void;
  onShow?: () => void;
}

function panel(id: string, label: string, controls: HTMLElement[], runLabel = 'Run'): HTMLElement {
  const p = h('section', { id: `view-${id}`, class: 'view', role: 'tabpanel', 'aria-label': label, hidden: true });
  if (controls.length) {
    const form = h('form', { class: 'controls' }, ...controls, h('button', { type: 'submit', class: 'run', text: runLabel }));
    p.append(form);
  }
  p.append(h('p', { class: 'error', role: 'alert', hidden: true }), h('div', { class: 'meta' }), h('div', { class: 'output' }));
  return p;
}

function select(name: string, options: string[], value?: string): HTMLSelectElement {
  const s = h('select', { name });
  for (const o of options) s.append(h('option', { value: o, text: o }));
  if (value) s.value = value;
  return s;
}

const input = (name: string, attrs: Record<string, string | number | boolean> = {}) => h('input', { name, ...attrs });

// ---- Predictions
const predK = input('topK', { type: 'number', min: 1, max: 100, value: 10 });
const predict: View = {
  id: 'predict', label: 'Predictions', kind: 'forward',
  panel: panel('predict', 'Predictions', [field('Top k', predK)]),
  body: () => ({ ...promptBody(), topK: Number(predK.value) }),
  restore: (r) => (predK.value = String(r.topK ?? 10)),
  render: async (run) => {
    const r = run.result;
    meta(predict, `${r.tokens.length} tokens · next-token predictions after “${show(r.tokenStrings.at(-1))}”`);
    const out = output(predict);
    out.append(tokenStrip(r.tokenStrings), h('div', { class: 'chart' }));
    await draw($('.chart', out), predictionsSpec(r.predictions));
  },
};

// ---- Method option forms
// Each method's controls come from the server's one declaration of its options (GET
// api/methods/settings), so a form offers exactly what the API accepts; an option shows only where
// it applies (e.g. for the chosen method).
type Control = HTMLInputElement | HTMLSelectElement | HTMLTextAreaElement;

function optionInput(spec: OptionSpec, initial?: string): Control {
  const t = spec.type;
  const dflt = spec.default === undefined ? undefined : Array.isArray(spec.default) ? spec.default.join(',') : String(spec.default);
  if (t.kind === 'enum') {
    const s = select(spec.key, t.choices ?? [], initial ?? dflt);
    // Without a declared default, the option may be left out: the method then chooses.
    if (dflt === undefined) {
      s.prepend(h('option', { value: '', text: 'default' }));
      s.value = initial ?? '';
    }
    return s;
  }
  if (t.kind === 'boolean') return input(spec.key, { type: 'checkbox', role: 'switch', checked: initial === 'true' || (initial === undefined && spec.default === true) });
  if (t.kind === 'prompt') {
    const area = h('textarea', { name: spec.key, rows: 2 });
    area.value = initial ?? '';
    return area;
  }
  const value = initial ?? dflt ?? '';
  if (t.kind === 'integer' || t.kind === 'number') {
    return input(spec.key, { type: 'number', min: t.min ?? t.exclusiveMin ?? '', max: t.max ?? '', step: t.kind === 'integer' ? 1 : 'any', placeholder: 'default', value });
  }
  const placeholder = t.kind === 'integers' ? 'e.g. 0,1 (default all)' : t.kind === 'token' ? "zero, or a token's id or text" : t.kind === 'choices' ? (t.choices ?? []).join(',') : spec.required ? '' : 'optional';
  return input(spec.key, { type: 'text', placeholder, value });
}

class OptionsForm {
  readonly el = h('div', { class: 'settings' });
  private specs: OptionSpec[] = [];
  private readonly inputs = new Map<string, Control>();

  /**
   * `skip`: options another control gives (the shared prompt box); `outside`: such controls that an
   * option's visibility depends on (attribution's evaluate switch); `initial`: starting values.
   */
  constructor(private readonly family: string, private readonly opts: {
    skip?: string[]; outside?: Record<string, HTMLInputElement | HTMLSelectElement>; initial?: Record<string, string>; labels?: Record<string, string>;
  } = {}) {
    for (const o of Object.values(opts.outside ?? {})) o.addEventListener('change', () => this.update());
  }

  load(families: Record<string, FamilyOptions>): void {
    this.specs = (families[this.family]?.options ?? []).filter((spec) => !(this.opts.skip ?? []).includes(spec.key));
    this.inputs.clear();
    this.el.replaceChildren();
    for (const spec of this.specs) {
      const el = optionInput(spec, this.opts.initial?.[spec.key]);
      el.addEventListener('change', () => this.update());
      this.inputs.set(spec.key, el);
      const label = this.opts.labels?.[spec.key] ?? spec.key;
      this.el.append(spec.type.kind === 'boolean'
        ? h('label', { class: 'switch', title: spec.help }, el, label)
        : h('label', { title: spec.help }, label, el, h('small', { class: 'muted', text: spec.help })));
    }
    this.update();
  }

  /** A control's current value: a switch's state, or the text ('' when left empty). */
  private current(key: string): string | boolean | undefined {
    const el = this.inputs.get(key) ?? this.opts.outside?.[key];
    if (!el) return undefined;
    return el instanceof HTMLInputElement && el.type === 'checkbox' ? el.checked : el.value;
  }

  private applies(spec: OptionSpec): boolean {
    const on = spec.appliesTo;
    if (!on || (spec.alsoWith && this.current(spec.alsoWith) === true)) return true;
    const v = this.current(on.key);
    const dep = v === undefined || v === '' ? this.specs.find((x) => x.key === on.key)?.default : v;
    return on.values.includes(String(dep));
  }

  private update(): void {
    for (const spec of this.specs) (this.inputs.get(spec.key)!.closest('label') as HTMLElement).hidden = !this.applies(spec);
  }

  /** The request's options: those shown and not left at their default. */
  body(): Record<string, unknown> {
    const b: Record<string, unknown> = {};
    for (const spec of this.specs) {
      if (!this.applies(spec)) continue;
      const v = this.current(spec.key);
      if (v === true) b[spec.key] = true;
      if (typeof v !== 'string' || v.trim() === '') continue;
      const x = spec.type.kind === 'prompt' ? v : v.trim();
      switch (spec.type.kind) {
        case 'integer': case 'number': b[spec.key] = Number(x); break;
        case 'integers': b[spec.key] = x.split(',').map((y) => Number(y.trim())); break;
        case 'choices': b[spec.key] = x.split(',').map((y) => y.trim()); break;
        case 'token': b[spec.key] = x === 'zero' ? 'zero' : /^\d+$/.test(x) ? { token: Number(x) } : { text: x }; break;
        default: b[spec.key] = x;
      }
    }
    return b;
  }

  /** Sets the controls from a saved run's request. */
  restore(req: Record<string, any>): void {
    for (const spec of this.specs) {
      const el = this.inputs.get(spec.key)!;
      const v = req[spec.key];
      if (el instanceof HTMLInputElement && el.type === 'checkbox') el.checked = !!v;
      else if (v === undefined) el.value = spec.default === undefined ? '' : String(spec.default);
      else el.value = Array.isArray(v) ? v.join(',') : typeof v === 'object' ? String(v.token ?? v.text) : String(v);
    }
    this.update();
  }
}

// ---- Attribution
const attrTarget = input('target', { type: 'text', placeholder: 'top prediction' });
const attrFoil = input('foil', { type: 'text', placeholder: 'none' });
const attrKind = select('kind', ['logprob', 'logit', 'prob'], 'logprob');
const attrEval = input('evaluate', { type: 'checkbox', role: 'switch' });
const attrWords = input('words', { type: 'checkbox', role: 'switch' });
const attrOptions = new OptionsForm('attribution', { outside: { evaluate: attrEval }, labels: { method: 'Method' } });

let lastAttribution: Run | undefined;
const attribution: View = {
  id: 'attribution', label: 'Attribution', kind: 'attribution',
  panel: panel('attribution', 'Attribution', [
    field('Target', attrTarget, 'one token, or several for a continuation'), field('Foil', attrFoil, 'contrast: target − foil'),
    field('Score', attrKind), h('label', { class: 'switch' }, attrEval, 'Faithfulness'), attrOptions.el,
  ]),
  body: () => ({
    ...promptBody(), kind: attrKind.value, evaluate: attrEval.checked,
    ...(attrTarget.value ? { target: attrTarget.value } : {}), ...(attrFoil.value ? { foil: attrFoil.value } : {}), ...attrOptions.body(),
  }),
  restore: (r) => {
    attrTarget.value = r.target ?? '';
    attrFoil.value = r.foil ?? '';
    attrKind.value = r.kind ?? 'logprob';
    attrEval.checked = !!r.evaluate;
    attrOptions.restore(r);
  },
  render: async (run) => {
    lastAttribution = run;
    const r = run.result;
    const words = attrWords.checked;
    const strings: string[] = words ? r.words.words : r.tokenStrings;
    const scores: number[][] = words ? r.words.scores : r.scores;
    const rows: string[] = r.target.rows;
    const t = r.target;
    const what = t.mode === 'contrastive' ? `logit(${show(t.tokenString)}) − logit(${show(t.foilString)})`
      : t.mode === 'continuation' ? `the continuation ${(t.continuationStrings ?? []).map(show).join('')}`
      : `${t.kind} of ${show(t.tokenString)}${t.predicted ? ' (the top prediction)' : ''}`;
    meta(attribution, `${r.method} · ${strings.length} ${words ? 'words' : 'tokens'} · explaining ${what} = ${t.values.map((v: number) => v.toFixed(3)).join(', ')}` +
      (r.convergenceDelta ? ` · convergence δ ${r.convergenceDelta.map((d: number) => d.toExponential(1)).join(', ')}` : ''));
    const out = output(attribution);
    const toggle = h('label', { class: 'switch' }, attrWords, 'Merge tokens into words');
    const max = Math.max(1e-12, ...scores.flat().map(Math.abs));
    const chips = h('div', { class: 'chips', 'data-testid': 'attribution-tokens' }, ...strings.map((s, i) => {
      const v = scores[0][i];
      return h('span', { class: 'token-chip', style: `background:${diverging(v / max)};color:${Math.abs(v / max) > 0.6 ? 'white' : 'black'}`, title: `${show(s)}: ${v.toFixed(4)}`, tabindex: 0, text: show(s) });
    }));
    out.append(toggle, h('p', { class: 'muted', text: `First row (${rows[0]}), coloured by score:` }), chips, legend(-max, max), h('div', { class: 'chart scroll' }));
    if (r.faithfulness) out.append(h('div', { class: 'scroll' }, faithTable(r.faithfulness, rows)));
    await draw($('.chart', out), attributionSpec(labels(strings), rows, scores));
  },
};
attrWords.addEventListener('change', () => {
  if (lastAttribution) void attribution.render!(lastAttribution);
});

const FAITH_LABELS: Record<string, string> = {
  aopcComprehensiveness: 'AOPC comprehensiveness ↑', aopcSufficiency: 'AOPC sufficiency ↓', kendallTauLoo: 'Kendall τ vs leave-one-out ↑',
  deletionAuc: 'deletion AUC ↓', insertionAuc: 'insertion AUC ↑',
  deletionAucNormalized: 'deletion AUC, normalised ↓', insertionAucNormalized: 'insertion AUC, normalised ↑',
};

function faithTable(f: any, rows: string[]): HTMLElement {
  const keys = Object.keys(f.rows[0]).filter((k) => typeof f.rows[0][k] === 'number');
  return h('figure', {}, h('table', { class: 'striped faith' },
    h('caption', { text: `Faithfulness (masking: ${typeof f.masking === 'string' ? f.masking : JSON.stringify(f.masking)})` }),
    h('thead', {}, h('tr', {}, h('th', { text: 'target' }), ...keys.map((k) => h('th', { text: FAITH_LABELS[k] ?? k })))),
    h('tbody', {}, ...f.rows.map((row: any, i: number) => h('tr', {}, h('td', { text: rows[i] ?? String(i) }), ...keys.map((k) => h('td', { text: row[k].toFixed(4) })))))));
}

// ---- Logit lens
const lensOptions = new OptionsForm('lens', { skip: ['text'], labels: { target: 'Target', topK: 'Top k' } });
const lens: View = {
  id: 'lens', label: 'Logit lens', kind: 'lens',
  panel: panel('lens', 'Logit lens', [lensOptions.el]),
  body: () => ({ ...promptBody(), ...lensOptions.body() }),
  restore: (r) => lensOptions.restore(r),
  render: async (run) => {
    const r = run.result;
    meta(lens, `Each cell: the top token when the residual stream at that layer is decoded through the final LayerNorm and unembedding${run.request.target ? `; colour: p(${show(run.request.target)})` : ''}.`);
    const out = output(lens);
    out.append(h('div', { class: 'chart scroll' }));
    await draw($('.chart', out), lensSpec(r.tokenStrings, r.layers, r.cells, !!run.request.target));
  },
};

// ---- Attention
const attention: View = {
  id: 'attention', label: 'Attention', kind: 'attention',
  panel: panel('attention', 'Attention', [h('p', { class: 'muted', text: 'Every layer × head pattern. Hover a token below to see where the selected head attends from it.' })]),
  body: () => ({ ...promptBody() }),
  render: async (run) => {
    const r = run.result;
    meta(attention, `${r.nLayers} layers × ${r.nHeads} heads · ${r.tokens.length} tokens`);
    const out = output(attention);
    const layerSel = select('layer', Array.from({ length: r.nLayers }, (_, i) => String(i)));
    const headSel = select('head', Array.from({ length: r.nHeads }, (_, i) => String(i)));
    const strip = h('div', { class: 'chips', 'data-testid': 'attention-tokens' });
    const chips = r.tokenStrings.map((s: string, q: number) => {
      const c = h('span', { class: 'token-chip', tabindex: 0, text: show(s), 'data-pos': q });
      const focus = () => {
        const row: number[] = r.patterns[Number(layerSel.value)][Number(headSel.value)][q];
        chips.forEach((k: HTMLElement, j: number) => {
          k.style.background = j <= q ? sequential(row[j]) : '';
          k.style.color = row[j] > 0.55 ? 'white' : '';
          k.title = j <= q ? `${(100 * row[j]).toFixed(1)}% of ${show(s)}'s attention` : 'after the query (masked)';
          k.classList.toggle('query', j === q);
        });
      };
      c.addEventListener('mouseenter', focus);
      c.addEventListener('focus', focus);
      return c;
    });
    strip.append(...chips);
    out.append(h('div', { class: 'grid-controls' }, field('Layer', layerSel), field('Head', headSel)), strip, legend(0, 1, true), h('div', { class: 'chart scroll' }));
    await draw($('.chart', out), attentionSpec(r.tokenStrings, r.patterns));
  },
};

// ---- Patching
const patchOptions = new OptionsForm('patching', {
  initial: {
    clean: 'When Mary and John went to the store, John gave a drink to', corrupt: 'When Mary and John went to the store, Mary gave a drink to',
    answer: ' Mary', wrong: ' John',
  },
  labels: { clean: 'Clean prompt', corrupt: 'Corrupted prompt', answer: 'Answer', wrong: 'Wrong answer', sweep: 'Sweep', method: 'Method', batchSize: 'Batch size', byPosition: 'By position', igSteps: 'IG steps', metric: 'Metric', pos: 'Position' },
});
const patching: View = {
  id: 'patching', label: 'Patching', kind: 'patching',
  panel: panel('patching', 'Patching', [patchOptions.el]),
  body: () => ({ ...patchOptions.body(), ...(chatEl.checked ? { chat: true } : {}) }),
  restore: (r) => patchOptions.restore(r),
  render: async (run) => {
    const r = run.result;
    const [L, A, P] = r.shape;
    const toks = labels(r.corruptTokenStrings);
    const rows = r.axes.length === 3 ? Array.from({ length: L * A }, (_, i) => `L${Math.floor(i / A)}H${i % A}`) : Array.from({ length: L }, (_, l) => `L${l}`);
    const cols = r.axes.length === 3 || r.axes[1] !== 'head' ? toks : Array.from({ length: A }, (_, i) => `H${i}`);
    const at = (effects: number[]) => (i: number, j: number) => effects[i * (r.axes.length === 3 ? P : A) + j];
    const both = r.attribution !== undefined;
    meta(patching, `${both ? 'activation and attribution' : r.method} · ${r.sweep} at ${r.hook} · metric ${r.metric} at position ${r.pos}: clean ${r.clean.toFixed(3)}, corrupted ${r.corrupt.toFixed(3)} · cell = (patched − corrupted) / (clean − corrupted): 1 restores the clean behaviour` +
      (both ? ` · Pearson r ${r.pearson === null ? 'undefined (a constant grid)' : r.pearson.toFixed(3)}` : ''));
    const out = output(patching);
    out.append(...(both ? [h('h4', { text: 'Activation patching' })] : []), h('div', { class: 'chart scroll' }));
    if (both) out.append(h('h4', { text: 'Attribution patching' }), h('div', { class: 'chart scroll' }));
    const charts = out.querySelectorAll<HTMLElement>('.chart');
    await draw(charts[0], patchingSpec(rows, cols, at(r.effects)));
    if (both) await draw(charts[1], patchingSpec(rows, cols, at(r.attribution.effects)));
  },
};

void api.methodSettings().then(({ families }) => {
  for (const form of [attrOptions, lensOptions, patchOptions]) form.load(families);
}).catch(() => { /* the views report an unreachable server on their own */ });

// ---- Probes
const probeData = select('dataset', ['capitals', 'cities', 'comparisons', 'sentiment'], 'sentiment');
const probeKind = select('kind', ['logistic', 'linear', 'mass-mean', 'mass-mean-iid', 'k-sparse', 'ccs'], 'logistic');
const probePositions = select('positions', ['last', 'mean'], 'last');
const probeLimit = input('limit', { type: 'number', min: 4, max: 1000, value: 100 });
const probes: View = {
  id: 'probes', label: 'Probes', kind: 'probes',
  panel: panel('probes', 'Probes', [field('Dataset', probeData, 'built-in, labelled'), field('Probe', probeKind), field('Position', probePositions), field('Subjects', probeLimit, 'a quarter held out')]),
  body: () => ({ dataset: probeData.value, kind: probeKind.value, positions: probePositions.value, limit: Number(probeLimit.value) }),
  restore: (r) => {
    probeData.value = r.dataset;
    probeKind.value = r.kind ?? 'logistic';
    probePositions.value = r.positions ?? 'last';
    probeLimit.value = String(r.limit ?? 100);
  },
  render: async (run) => {
    const r = run.result;
    meta(probes, `${r.settings.kind} probe per layer on ${r.dataset} (${r.layers[0].test.n} held-out rows; majority class ${r.baseline.toFixed(3)}) · right: ${r.pca.hook}, the best layer, on its top two principal components`);
    const out = output(probes);
    out.append(h('div', { class: 'chart' }), h('div', { class: 'chart' }));
    const [acc, pca] = out.querySelectorAll<HTMLElement>('.chart');
    await draw(acc, probeAccuracySpec(r.layers, r.baseline));
    await draw(pca, probePcaSpec(r.pca.points, r.pca.explained, r.pca.hook));
  },
};

// ---- Saved runs
const runsKind = select('kind', ['all kinds', 'forward', 'attribution', 'lens', 'attention', 'patching', 'probes'], 'all kinds');
const runsView: View = {
  id: 'runs', label: 'Saved runs',
  panel: panel('runs', 'Saved runs', []),
  onShow: () => void refreshRuns(),
};

runsView.panel.prepend(h('div', { class: 'grid-controls' }, field('Show', runsKind)));
runsKind.addEventListener('change', () => void refreshRuns());

const views: View[] = [predict, attribution, lens, attention, patching, probes, runsView, leaderboardView, judgmentsView];
const byKind = new Map(views.filter((v) => v.kind).map((v) => [v.kind!, v]));

function output(v: View): HTMLElement {
  const o = $('.output', v.panel);
  o.replaceChildren();
  return o;
}
function meta(v: View, text: string): void {
  $('.meta', v.panel).textContent = text;
}
function showError(v: View, msg: string | null): void {
  const e = $('.error', v.panel);
  e.hidden = msg === null;
  e.textContent = msg ?? '';
}

/** Diverging colour for x in [-1, 1]: blue (negative), white, red (positive). */
function diverging(x: number): string {
  const v = Math.max(-1, Math.min(1, x));
  const a = Math.round(255 * (1 - Math.abs(v)));
  return v >= 0 ? `rgb(255,${a},${a})` : `rgb(${a},${a},255)`;
}
function sequential(x: number): string {
  const v = Math.max(0, Math.min(1, x));
  return `rgb(${Math.round(255 - 180 * v)},${Math.round(255 - 215 * v)},${Math.round(255 - 100 * v)})`;
}
function legend(lo: number, hi: number, seq = false): HTMLElement {
  const stops = seq ? [0, 0.5, 1].map(sequential) : [-1, 0, 1].map(diverging);
  const fmt = (x: number) => (seq ? `${Math.round(100 * x)}%` : x.toPrecision(2));
  return h('div', { class: 'legend', role: 'img', 'aria-label': `colour scale from ${fmt(lo)} to ${fmt(hi)}` },
    h('span', { text: fmt(lo) }), h('span', { class: 'bar', style: `background:linear-gradient(to right, ${stops.join(', ')})` }), h('span', { text: fmt(hi) }));
}
function tokenStrip(tokens: string[]): HTMLElement {
  return h('div', { class: 'chips' }, ...tokens.map((t) => h('span', { class: 'token-chip', text: show(t) })));
}

// ---- Tabs, running, progress
const tabs = $('.tabs');
const viewsEl = $('#views');
let current: View = predict;
for (const [i, v] of views.entries()) {
  const b = h('button', { type: 'button', role: 'tab', id: `tab-${v.id}`, 'aria-controls': `view-${v.id}`, class: 'tab', text: v.label, title: `Alt+${i + 1}` });
  b.addEventListener('click', () => showView(v));
  tabs.append(b);
  viewsEl.append(v.panel);
  const form = v.panel.querySelector('form');
  form?.addEventListener('submit', (e) => {
    e.preventDefault();
    void start(v);
  });
}

function showView(v: View): void {
  current = v;
  for (const x of views) {
    x.panel.hidden = x !== v;
    const tab = $(`#tab-${x.id}`);
    tab.setAttribute('aria-selected', String(x === v));
    tab.tabIndex = x === v ? 0 : -1;
  }
  history.replaceState(null, '', `#${v.id}`);
  v.onShow?.();
}

tabs.addEventListener('keydown', (e) => {
  const i = views.indexOf(current);
  const next = e.key === 'ArrowRight' ? views[(i + 1) % views.length] : e.key === 'ArrowLeft' ? views[(i + views.length - 1) % views.length] : undefined;
  if (next) {
    showView(next);
    $(`#tab-${next.id}`).focus();
  }
});
document.addEventListener('keydown', (e) => {
  if (e.altKey && /^[1-9]$/.test(e.key) && views[Number(e.key) - 1]) {
    e.preventDefault();
    showView(views[Number(e.key) - 1]);
  }
  if ((e.ctrlKey || e.metaKey) && e.key === 'Enter' && current.kind) {
    e.preventDefault();
    void start(current);
  }
});

const statusEl = $('#status');
const progressEl = $<HTMLProgressElement>('#progress');
const statusText = $('#status-text');
let jobId: string | undefined;
$('#cancel').addEventListener('click', () => {
  if (jobId) void api.cancel(jobId).catch(() => {});
});

async function start(v: View): Promise<void> {
  if (!v.kind || !v.body) return;
  if (jobId) {
    showError(v, 'another run is in progress; wait for it or cancel it');
    return;
  }
  showError(v, null);
  const body = { ...v.body(), model: modelEl.value };
  const button = v.panel.querySelector<HTMLButtonElement>('button.run');
  if (button) button.setAttribute('aria-busy', 'true');
  statusEl.hidden = false;
  progressEl.removeAttribute('value');
  statusText.textContent = 'queued';
  // Not aria-busy on the panel: Pico turns any aria-busy element into an inline spinner.
  $('.output', v.panel).classList.add('stale');
  try {
    const run = await runJob(v.kind, body, (p) => {
      if (p.fraction === null) progressEl.removeAttribute('value');
      else progressEl.value = p.fraction;
      statusText.textContent = `${p.message}${p.fraction !== null ? ` · ${Math.round(100 * p.fraction)}%` : ''}${p.elapsedMs ? ` · ${(p.elapsedMs / 1000).toFixed(1)} s` : ''}`;
    }, (id) => (jobId = id));
    await v.render!(run);
  } catch (e) {
    showError(v, e instanceof ApiError && e.message === 'cancelled' ? 'Cancelled.' : (e as Error).message);
  } finally {
    jobId = undefined;
    statusEl.hidden = true;
    button?.removeAttribute('aria-busy');
    $('.output', v.panel).classList.remove('stale');
  }
}

async function open(id: string): Promise<void> {
  try {
    const run = await api.run(id);
    const v = byKind.get(run.kind)!;
    if (run.status !== 'done') throw new Error(`run ${run.title} is ${run.status}${run.error ? `: ${run.error}` : ''}`);
    const userMessage = run.request.messages?.filter((m: { role: string }) => m.role === 'user').at(-1)?.content;
    if (run.request.text !== undefined || userMessage !== undefined) promptEl.value = run.request.text ?? userMessage;
    if (run.kind !== 'patching') chatEl.checked = run.request.messages !== undefined;
    v.restore?.(run.request);
    if ([...modelEl.options].some((o) => o.value === run.model)) modelEl.value = run.model;
    showView(v);
    showError(v, null);
    await v.render!(run);
  } catch (e) {
    showError(runsView, (e as Error).message);
  }
}

async function refreshRuns(): Promise<void> {
  const out = output(runsView);
  out.append(h('p', { 'aria-busy': 'true', text: 'Loading saved runs…' }));
  try {
    const { runs, total } = await api.runs(runsKind.value === 'all kinds' ? undefined : runsKind.value);
    meta(runsView, `${total} saved run${total === 1 ? '' : 's'}`);
    const table = h('table', { class: 'striped runs' }, h('thead', {}, h('tr', {}, ...['Title', 'Kind', 'Model', 'Created', 'Status', ''].map((t) => h('th', { text: t })))));
    const tbody = h('tbody');
    for (const r of runs) {
      const openBtn = h('button', { type: 'button', class: 'small', text: 'Open', disabled: r.status !== 'done' });
      openBtn.addEventListener('click', () => void open(r.id));
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

// ---- Models
async function loadModels(select?: string): Promise<void> {
  const { default: def, models } = await api.models();
  modelEl.replaceChildren(...models.map((m) => h('option', { value: m.ref, text: m.label, title: m.path ?? m.ref })));
  modelEl.value = select ?? def;
}
$('#add-model').addEventListener('click', async () => {
  const p = prompt('A local Hugging Face model folder (absolute path, with config.json, model.safetensors, tokenizer.json: GPT-2, Llama, Mistral, Qwen, Gemma, Pythia, Phi-3) or a Hugging Face Hub id (e.g. gpt2):');
  if (!p?.trim()) return;
  const given = p.trim();
  try {
    if (given.startsWith('/')) {
      const f = await api.addFolder(given);
      await loadModels(f.ref);
    } else {
      // Hub ids are checked (and downloaded, with progress) by the first run that uses them.
      const ref = `hub:${given}`;
      if (![...modelEl.options].some((o) => o.value === ref)) modelEl.append(h('option', { value: ref, text: `${given} (Hub)` }));
      modelEl.value = ref;
    }
    showError(current, null);
  } catch (e) {
    showError(current, (e as Error).message);
  }
});

const initial = views.find((v) => `#${v.id}` === location.hash) ?? predict;
showView(initial);
void loadModels().catch((e) => showError(current, `cannot reach the server: ${(e as Error).message}`));
