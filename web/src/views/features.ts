/**
 * The Features view: browse and search a dashboard set, open a feature's dashboard (top contexts
 * with per-token activations, quantile samples, histogram, logits, nearest features, explanation),
 * and see which features fire on the prompt (saved by the server as a 'features' run, reopened here).
 */
import type { Run } from '../api';
import { answeredRun, provenance, resultFrame, View } from '../ui';

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

async function get<T>(url: string, body?: unknown): Promise<T> {
  const res = await fetch(url, body === undefined ? {} : { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
  const json = await res.json().catch(() => ({ error: `${res.status} ${res.statusText}` }));
  if (!res.ok) throw new Error(json.error ?? `${res.status} ${res.statusText}`);
  return json as T;
}

interface Summary { index: number; max: number; density: number; topTokens: string[]; explanation?: string; score?: number }
interface SetInfo { name: string; model: string; hook: string; source: string; size: number; tokens: number; dataHash: string }
interface Context { tokens: string[]; activations: number[]; at: number; activation: number }
interface Dashboard {
  index: number; max: number; mean: number; density: number; top: Context[];
  quantiles: { range: [number, number]; contexts: Context[] }[];
  histogram: { edges: number[]; counts: number[] };
  logits?: { top: { token: string; value: number }[]; bottom: { token: string; value: number }[] };
  neighbours?: { index: number; cosine: number }[];
  explanation?: { text: string; score?: number };
}

const visible = (t: string) => t.replace(/\n/g, '⏎').replace(/\t/g, '⇥');

function contextRow(c: Context, max: number): HTMLElement {
  return h('div', { class: 'feature-context' }, ...c.tokens.map((t, i) => {
    const a = Math.max(0, Math.min(1, max > 0 ? c.activations[i] / max : 0));
    return h('span', { class: i === c.at ? 'tok at' : 'tok', title: c.activations[i].toFixed(3), style: `background:rgba(255,120,0,${a.toFixed(2)})`, text: visible(t) });
  }), h('small', { class: 'muted', text: ` ${c.activation.toFixed(3)}` }));
}

/** The Features view: its tab id and label, its panel, and what it does when shown. */
export function featuresView(promptEl: HTMLTextAreaElement, model: () => string): View {
  const setEl = h('select', { id: 'features-set', 'aria-label': 'Dashboard set' });
  const searchEl = h('input', { id: 'features-search', type: 'search', placeholder: 'search: index, token or explanation' });
  const onPrompt = h('button', { type: 'button', id: 'features-on-prompt', text: 'Features on the prompt' });
  const error = h('p', { class: 'error', role: 'alert', hidden: true });
  const metaEl = h('div', { class: 'meta' });
  const listEl = h('div', { class: 'feature-list scroll' });
  const detailEl = h('div', { class: 'feature-detail', id: 'feature-detail' });
  const promptOut = h('div', { class: 'feature-prompt output', id: 'features-prompt-out' });
  const panel = h('section', { id: 'view-features', class: 'view', role: 'tabpanel', 'aria-label': 'Features', hidden: true },
    h('div', { class: 'grid-controls' }, h('label', {}, 'Dashboards', setEl), h('label', {}, 'Search', searchEl), onPrompt),
    error, ...resultFrame(), metaEl, promptOut, h('div', { class: 'grid features-grid' }, listEl, detailEl));
  let summaries: Summary[] = [];
  let sets: SetInfo[] = [];
  const showError = (msg: string | null) => { error.hidden = msg === null; error.textContent = msg ?? ''; };
  const setName = () => setEl.value;

  const renderList = () => {
    const q = searchEl.value.trim().toLowerCase();
    const hits = summaries.filter((s) => !q || String(s.index) === q || s.topTokens.some((t) => t.toLowerCase().includes(q)) || (s.explanation ?? '').toLowerCase().includes(q));
    const rows = hits.slice(0, 300).map((s) => {
      const tr = h('tr', { 'data-feature': s.index, tabindex: 0 },
        h('td', { text: `#${s.index}` }), h('td', { text: `${(100 * s.density).toFixed(2)}%` }), h('td', { text: s.max.toFixed(2) }),
        h('td', { text: s.topTokens.map((t) => JSON.stringify(t)).join(' ') }), h('td', { text: s.explanation ?? '' }));
      tr.addEventListener('click', () => void openFeature(s.index));
      tr.addEventListener('keydown', (e) => { if (e.key === 'Enter') void openFeature(s.index); });
      return tr;
    });
    listEl.replaceChildren(h('p', { class: 'muted', text: `${hits.length} of ${summaries.length} features${hits.length > 300 ? ' (first 300 shown)' : ''}` }),
      h('table', { class: 'striped' }, h('thead', {}, h('tr', {}, ...['Feature', 'Density', 'Max', 'Top tokens', 'Explanation'].map((t) => h('th', { text: t })))), h('tbody', {}, ...rows)));
  };

  const openFeature = async (n: number) => {
    try {
      const d = await get<Dashboard>(`api/features/sets/${encodeURIComponent(setName())}/features/${n}`);
      showError(null);
      const maxCount = Math.max(1, ...d.histogram.counts);
      const hist = h('div', { class: 'feature-hist', role: 'img', 'aria-label': 'activation histogram' }, ...d.histogram.counts.map((c, i) =>
        h('span', { style: `height:${(60 * c / maxCount).toFixed(1)}px`, title: `[${d.histogram.edges[i].toPrecision(3)}, ${d.histogram.edges[i + 1].toPrecision(3)}): ${c}` })));
      const logits = d.logits ? h('div', { class: 'grid' },
        h('div', {}, h('h6', { text: 'Top logits' }), ...d.logits.top.map((l) => h('div', { text: `${JSON.stringify(l.token)} ${l.value.toFixed(3)}` }))),
        h('div', {}, h('h6', { text: 'Bottom logits' }), ...d.logits.bottom.map((l) => h('div', { text: `${JSON.stringify(l.token)} ${l.value.toFixed(3)}` })))) : '';
      const near = d.neighbours?.length ? h('p', {}, 'Nearest: ', ...d.neighbours.map((x) => {
        const a = h('a', { href: '#features', text: `#${x.index} (${x.cosine.toFixed(2)})` });
        a.addEventListener('click', (e) => { e.preventDefault(); void openFeature(x.index); });
        return h('span', {}, a, ' ');
      })) : '';
      detailEl.replaceChildren(
        h('h4', { text: `Feature #${d.index}` }),
        ...(d.explanation ? [h('p', { class: 'feature-explanation', text: `${d.explanation.text}${d.explanation.score !== undefined ? ` (score ${d.explanation.score.toFixed(3)})` : ''}` })] : []),
        h('p', { class: 'muted', text: `max ${d.max.toFixed(3)} · density ${(100 * d.density).toFixed(3)}% · mean ${d.mean.toFixed(4)}` }),
        hist, logits, near,
        h('h6', { text: 'Top activations' }), ...d.top.map((c) => contextRow(c, d.max)),
        ...d.quantiles.flatMap((q) => [h('h6', { text: `Activations in [${q.range[0].toPrecision(3)}, ${q.range[1].toPrecision(3)})` }), ...q.contexts.map((c) => contextRow(c, d.max))]),
      );
    } catch (e) {
      showError((e as Error).message);
    }
  };

  const loadSet = async () => {
    if (!setName()) return;
    try {
      const ix = await get<{ features: Summary[]; model: string; hook: string; source: string; tokens: number; dataHash: string }>(`api/features/sets/${encodeURIComponent(setName())}`);
      summaries = ix.features;
      metaEl.textContent = `${ix.source} · ${ix.features.length} features · ${ix.tokens} tokens (data ${ix.dataHash}) · model ${ix.model}`;
      renderList();
      showError(null);
    } catch (e) {
      showError((e as Error).message);
    }
  };

  /** Draws the features found on a prompt (answered now, or a saved run). */
  const drawOnPrompt = (run: Run<{ tokens: string[]; top: { index: number; max: number; activations: number[] }[] }>) => {
    const r = run.result;
    promptOut.replaceChildren(h('h6', { text: 'Features on the prompt' }), ...r.top.map((f) => {
      const row = contextRow({ tokens: r.tokens, activations: f.activations, at: -1, activation: f.max }, f.max);
      const a = h('a', { href: '#features', class: 'feature-link', 'data-feature': f.index, text: `#${f.index}` });
      a.addEventListener('click', (e) => { e.preventDefault(); void openFeature(f.index); });
      const ex = summaries[f.index]?.explanation;
      return h('div', { class: 'feature-on-prompt' }, a, ' ', row, ...(ex ? [h('small', { text: ` ${ex}` })] : []));
    }));
  };

  onPrompt.addEventListener('click', async () => {
    try {
      const request = { set: setName(), text: promptEl.value, k: 10 };
      const r = await get<{ runId?: string; tokens: string[]; top: { index: number; max: number; activations: number[] }[] }>(`api/features/sets/${encodeURIComponent(request.set)}/top`, { text: request.text, k: request.k });
      showError(null);
      const run = answeredRun('features', { ...request, model: sets.find((x) => x.name === request.set)?.model ?? model() }, r);
      provenance(view, run);
      drawOnPrompt(run);
    } catch (e) {
      promptOut.replaceChildren();
      (panel.querySelector('.provenance') as HTMLElement).hidden = true;
      showError((e as Error).message);
    }
  });
  searchEl.addEventListener('input', renderList);
  setEl.addEventListener('change', () => void loadSet());

  /** The set a reopened run was made with, selected once the sets have loaded. */
  let wantedSet: string | undefined;
  const view: View = {
    id: 'features', label: 'Features', kinds: ['features'], panel,
    restore: (req) => {
      wantedSet = req.set;
      if (sets.some((x) => x.name === req.set) && setEl.value !== req.set) {
        setEl.value = req.set;
        void loadSet();
      }
    },
    render: (run) => drawOnPrompt(run),
    onShow: () => {
      if (sets.length) return;
      void get<{ dir: string; sets: SetInfo[] }>('api/features/sets').then(async (r) => {
        sets = r.sets;
        setEl.replaceChildren(...sets.map((s) => h('option', { value: s.name, text: `${s.name} — ${s.source} (${s.size})` })));
        if (!sets.length) { metaEl.textContent = `No dashboards yet: build some with \`lantern features dashboards -o ${r.dir}/<name>\`.`; return; }
        if (wantedSet && sets.some((x) => x.name === wantedSet)) setEl.value = wantedSet;
        await loadSet();
      }).catch((e) => showError((e as Error).message));
    },
  };
  return view;
}
