/** Shared pieces of the Workbench's views: DOM helpers, colour scales, the prompt box, and the View shape. */
import type { DirectRunKind, Run, RunKind } from './api';
import { show } from './charts';

export const $ = <T extends HTMLElement = HTMLElement>(sel: string, root: ParentNode = document) => root.querySelector(sel) as T;

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

export function field(label: string, input: HTMLElement, hint?: string): HTMLLabelElement {
  return h('label', {}, label, input, ...(hint ? [h('small', { class: 'muted', text: hint })] : []));
}

export function select(name: string, options: readonly string[], value?: string): HTMLSelectElement {
  const s = h('select', { name });
  for (const o of options) s.append(h('option', { value: o, text: o }));
  if (value) s.value = value;
  return s;
}

export const input = (name: string, attrs: Record<string, string | number | boolean> = {}) => h('input', { name, ...attrs });

export const promptEl = $<HTMLTextAreaElement>('#prompt');
export const chatEl = $<HTMLInputElement>('#chat');
export const modelEl = $<HTMLSelectElement>('#model');

/** The prompt as the API takes it: text, or with the chat switch on, the user's message of a chat. */
export function promptBody(): { text: string } | { messages: { role: string; content: string }[] } {
  return chatEl.checked ? { messages: [{ role: 'user', content: promptEl.value }] } : { text: promptEl.value };
}

/** One tab of the Workbench. */
export interface View {
  id: string;
  label: string;
  kind?: RunKind;
  /** The kinds of saved run this view draws that the server answers directly (the view sends those requests itself). */
  kinds?: DirectRunKind[];
  panel: HTMLElement;
  /** The request body for a run, from the controls (throws Error with a message for bad input). */
  body?: () => Record<string, unknown>;
  /** Restores the controls from a saved run's request. */
  restore?: (req: Record<string, any>) => void;
  render?: (run: Run) => Promise<void> | void;
  /** Called once a run's job is queued, with its request: queues any job that goes with it (one Cancel stops them all). */
  alongside?: (body: Record<string, unknown>) => void;
  onShow?: () => void;
}

export function panel(id: string, label: string, controls: HTMLElement[], runLabel = 'Run'): HTMLElement {
  const p = h('section', { id: `view-${id}`, class: 'view', role: 'tabpanel', 'aria-label': label, hidden: true });
  if (controls.length) {
    const form = h('form', { class: 'controls' }, ...controls, h('button', { type: 'submit', class: 'run', text: runLabel }));
    p.append(form);
  }
  p.append(
    h('small', { class: 'limits muted' }), h('p', { class: 'error', role: 'alert', hidden: true }), h('div', { class: 'provenance', hidden: true }),
    h('div', { class: 'meta' }), h('ul', { class: 'warnings', role: 'note', hidden: true }), h('div', { class: 'output' }),
  );
  return p;
}

export function output(v: View): HTMLElement {
  const o = $('.output', v.panel);
  o.replaceChildren();
  return o;
}
export function meta(v: View, text: string): void {
  $('.meta', v.panel).textContent = text;
}
export function showError(v: View, msg: string | null): void {
  const e = $('.error', v.panel);
  e.hidden = msg === null;
  e.textContent = msg ?? '';
}

/** Diverging colour for x in [-1, 1]: blue (negative), white, red (positive). */
export function diverging(x: number): string {
  const v = Math.max(-1, Math.min(1, x));
  const a = Math.round(255 * (1 - Math.abs(v)));
  return v >= 0 ? `rgb(255,${a},${a})` : `rgb(${a},${a},255)`;
}
export function sequential(x: number): string {
  const v = Math.max(0, Math.min(1, x));
  return `rgb(${Math.round(255 - 180 * v)},${Math.round(255 - 215 * v)},${Math.round(255 - 100 * v)})`;
}
export function legend(lo: number, hi: number, seq = false): HTMLElement {
  const stops = seq ? [0, 0.5, 1].map(sequential) : [-1, 0, 1].map(diverging);
  const fmt = (x: number) => (seq ? `${Math.round(100 * x)}%` : x.toPrecision(2));
  return h('div', { class: 'legend', role: 'img', 'aria-label': `colour scale from ${fmt(lo)} to ${fmt(hi)}` },
    h('span', { text: fmt(lo) }), h('span', { class: 'bar', style: `background:linear-gradient(to right, ${stops.join(', ')})` }), h('span', { text: fmt(hi) }));
}
export function tokenStrip(tokens: string[]): HTMLElement {
  return h('div', { class: 'chips' }, ...tokens.map((t) => h('span', { class: 'token-chip', text: show(t) })));
}

/** The display labels of a result's prompt tokens (pieces of one character show that character), or its raw strings for older runs. */
export function tokenLabelsOf(r: { tokenLabels?: string[]; tokenStrings: string[] }): string[] {
  return r.tokenLabels ?? r.tokenStrings;
}

/** Says, above a result, which model and prompt produced it, with a permalink to the saved run. */
export function provenance(v: View, run: Run): void {
  const req = run.request;
  const userMessage = req.messages?.filter((m: { role: string }) => m.role === 'user').at(-1)?.content;
  const prompt: string | undefined = req.text ?? req.prompt ?? userMessage ?? (req.clean !== undefined ? `${req.clean} / ${req.corrupt}` : undefined);
  const el = $('.provenance', v.panel);
  el.replaceChildren(
    h('span', { text: `Model ${run.model}` }),
    ...(prompt !== undefined ? [h('span', { class: 'prompt-used', title: prompt, text: `prompt “${prompt.length > 80 ? `${prompt.slice(0, 79)}…` : prompt}”` })] : []),
    h('a', { href: `#run/${run.id}`, title: 'a link to this saved run', text: 'permalink' }),
  );
  el.hidden = false;
}

/** The elements a view's panel needs for {@link provenance}, {@link warnings} and {@link clearResult}, for views that build their own panel. */
export const resultFrame = (): HTMLElement[] => [h('div', { class: 'provenance', hidden: true }), h('ul', { class: 'warnings', role: 'note', hidden: true })];

/** A direct endpoint's answer as the saved run it became (the server answers its id as `runId`). */
export function answeredRun(kind: DirectRunKind, request: Record<string, any> & { model: string }, result: { runId?: string }): Run {
  const { runId, ...rest } = result;
  const now = new Date().toISOString();
  return { id: runId ?? '', kind, title: '', model: request.model, status: 'done', createdAt: now, finishedAt: now, error: null, request, result: rest };
}

/** Draws a directly answered run in its view, saying which model and prompt made it, with its permalink. */
export async function showAnswered(v: View, run: Run): Promise<void> {
  warnings(v, []);
  provenance(v, run);
  await v.render!(run);
}

/** Shows cautions about the numbers below (or none). */
export function warnings(v: View, msgs: string[]): void {
  const el = $('.warnings', v.panel);
  el.replaceChildren(...msgs.map((m) => h('li', { text: m })));
  el.hidden = msgs.length === 0;
}

/** Removes a view's result (after a failed run, so an older chart is never taken for the new one). */
export function clearResult(v: View): void {
  $('.output', v.panel).replaceChildren();
  $('.meta', v.panel).textContent = '';
  $('.provenance', v.panel).hidden = true;
  warnings(v, []);
}

/** A note in a view of what it accepts (shown before running). */
export function limitsNote(v: View, text: string): void {
  $('.limits', v.panel).textContent = text;
}
