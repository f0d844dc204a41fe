/** Helpers shared by the evaluation views (leaderboard, judgments): elements, API calls, the run picker. */

export function h<K extends keyof HTMLElementTagNameMap>(tag: K, attrs: Record<string, string | boolean | number> = {}, ...children: (Node | string)[]): HTMLElementTagNameMap[K] {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v === false) continue;
    if (k === 'text') el.textContent = String(v);
    else el.setAttribute(k, v === true ? '' : String(v));
  }
  el.append(...children);
  return el;
}

/** JSON from the evaluation API, or an Error carrying the server's message. */
export async function getJSON<T>(url: string, body?: unknown): Promise<T> {
  const res = await fetch(url, body === undefined ? {} : { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
  const json = await res.json().catch(() => ({ error: `${res.status} ${res.statusText}` }));
  if (!res.ok) throw new Error(json.error ?? `${res.status} ${res.statusText}`);
  return json as T;
}

/** A stored evaluation run as the API lists it. */
export interface EvalRun {
  id: string;
  kind: string;
  judge: string;
  createdAt: string;
}

/** A view's section, with the same parts as the other Workbench views. */
export function section(id: string, label: string): { panel: HTMLElement; controls: HTMLElement; error: HTMLElement; meta: HTMLElement; output: HTMLElement } {
  const controls = h('div', { class: 'controls' });
  const error = h('p', { class: 'error', role: 'alert', hidden: true });
  const meta = h('div', { class: 'meta' });
  const output = h('div', { class: 'output' });
  const panel = h('section', { id: `view-${id}`, class: 'view', role: 'tabpanel', 'aria-label': label, hidden: true }, controls, error, meta, output);
  return { panel, controls, error, meta, output };
}

export function showError(el: HTMLElement, message: string | null): void {
  el.hidden = message === null;
  el.textContent = message ?? '';
}

/** Fills a select with stored runs (of the given kinds), newest first. */
export async function fillRuns(select: HTMLSelectElement, kinds: string[]): Promise<EvalRun[]> {
  const { runs } = await getJSON<{ runs: EvalRun[] }>('api/evaluation/runs');
  const mine = runs.filter((r) => kinds.includes(r.kind));
  const keep = select.value;
  select.replaceChildren(...mine.map((r) => h('option', { value: r.id, text: `${r.kind} · ${r.judge} · ${new Date(r.createdAt).toLocaleString()}` })));
  if (mine.some((r) => r.id === keep)) select.value = keep;
  return mine;
}

export const fmt = (v: number | null | undefined, d = 3) => (v === null || v === undefined || !Number.isFinite(v) ? '–' : v.toFixed(d));
