/**
 * Heads: one head detector's score for every layer x head of the selected model, as a heatmap;
 * a click on a head shows its attention pattern on the prompt and the tokens its full OV circuit
 * copies and suppresses most. Answered in the request by the server (src/interfaces/server/heads.ts),
 * which saves each answer as a run ('heads' for a grid, 'head' for one head), reopened here.
 */
import { ApiError, Run } from '../api';
import { show } from '../charts';
import { answeredRun, clearResult, diverging, field, h, input, legend, modelEl, promptEl, resultFrame, select, sequential, showAnswered, View } from '../ui';

/** POSTs JSON to the server and returns its answer, or throws its error message. */
export async function postJson<T>(url: string, body: unknown): Promise<T> {
  const res = await fetch(url, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
  const json = await res.json().catch(() => ({ error: `${res.status} ${res.statusText}` }));
  if (!res.ok) throw new ApiError(json.error ?? `${res.status} ${res.statusText}`, res.status);
  return json as T;
}

/** What POST api/heads/scores answers. */
interface HeadScores {
  detector: string;
  description: string;
  layers: number;
  heads: number;
  scores: number[][];
  dataHash: string;
  settings: { sequences: number; half: number; seed: number; poolSource: string };
}

/** What POST api/heads/head answers. */
interface HeadDetail {
  head: string;
  tokenLabels: string[];
  pattern: number[][];
  copyingScore: number;
  topCopied: { token: number; value: number; label: string }[];
  topSuppressed: { token: number; value: number; label: string }[];
}

/** The detectors offered (the server's HEAD_DETECTORS; copy-suppression runs one ablation per head). */
const DETECTORS = ['previous-token', 'duplicate-token', 'induction', 'successor', 'copying', 'ov-copy', 'ov-suppression', 'copy-suppression', 'name-mover'];

/** The Heads tab, for the tab list in main.ts. */
export function headsView(): View {
  const detector = select('detector', DETECTORS, 'induction');
  const sequences = input('sequences', { type: 'number', min: 1, max: 100, value: 20 });
  const seed = input('seed', { type: 'number', min: 0, value: 0 });
  const button = h('button', { type: 'submit', class: 'run', text: 'Score heads' });
  const form = h('form', { class: 'controls heads' },
    field('Detector', detector), field('Sequences', sequences, 'repeated random sequences'), field('Seed', seed), button);
  const error = h('p', { class: 'error', role: 'alert', hidden: true });
  const meta = h('div', { class: 'meta' });
  const grid = h('div', { class: 'output heads-grid' });
  const detail = h('div', { class: 'head-detail' });
  const panel = h('section', { id: 'view-heads', class: 'view', role: 'tabpanel', 'aria-label': 'Heads', hidden: true }, form, error, ...resultFrame(), meta, grid, detail);

  const fail = (e: unknown) => {
    error.hidden = false;
    error.textContent = e instanceof ApiError ? e.message : (e as Error).message;
  };

  async function score(): Promise<void> {
    error.hidden = true;
    button.setAttribute('aria-busy', 'true');
    grid.classList.add('stale');
    try {
      const request = { model: modelEl.value, detector: detector.value, sequences: Number(sequences.value), seed: Number(seed.value) };
      await showAnswered(view, answeredRun('heads', request, await postJson<HeadScores & { runId?: string }>('api/heads/scores', request)));
    } catch (e) {
      clearResult(view);
      detail.replaceChildren();
      fail(e);
    } finally {
      button.removeAttribute('aria-busy');
      grid.classList.remove('stale');
    }
  }

  function drawGrid(r: HeadScores): void {
    const max = Math.max(1e-12, ...r.scores.flat().map(Math.abs));
    const signed = r.scores.flat().some((x) => x < 0);
    const table = h('table', { class: 'head-scores', style: 'width:auto' },
      h('thead', {}, h('tr', {}, h('th', { text: 'layer' }), ...Array.from({ length: r.heads }, (_, i) => h('th', { text: `H${i}` })))));
    const body = h('tbody');
    r.scores.forEach((row, l) => {
      body.append(h('tr', {}, h('th', { text: `L${l}` }, ), ...row.map((s, i) => {
        const cell = h('td', {
          class: 'head-cell', tabindex: 0, role: 'button', 'data-layer': l, 'data-head': i, 'data-score': s, title: `L${l}H${i}: ${s}`,
          style: `cursor:pointer;text-align:right;font-family:ui-monospace,monospace;background:${signed ? diverging(s / max) : sequential(s / max)};color:${Math.abs(s) > 0.6 * max ? 'white' : 'black'}`,
          text: s.toFixed(3),
        });
        const open = () => void headDetail(l, i);
        cell.addEventListener('click', open);
        cell.addEventListener('keydown', (e) => { if (e.key === 'Enter' || e.key === ' ') { e.preventDefault(); open(); } });
        return cell;
      })));
    });
    table.append(body);
    grid.replaceChildren(table, legend(signed ? -max : 0, max, !signed));
  }

  function drawScores(r: HeadScores): void {
    meta.textContent = `${r.detector}: ${r.description} · ${r.settings.sequences} sequences of 2 x ${r.settings.half} tokens (${r.settings.poolSource}), seed ${r.settings.seed}, data ${r.dataHash} · click a head for its pattern on the prompt`;
    drawGrid(r);
    detail.replaceChildren();
  }

  function markSelected(layer: number, head: number): void {
    for (const c of grid.querySelectorAll<HTMLElement>('.head-cell')) {
      const picked = c.getAttribute('data-layer') === String(layer) && c.getAttribute('data-head') === String(head);
      c.classList.toggle('selected', picked);
      c.style.outline = picked ? '3px solid #222' : '';
    }
  }

  async function headDetail(layer: number, head: number): Promise<void> {
    error.hidden = true;
    markSelected(layer, head);
    detail.classList.add('stale');
    try {
      const request = { model: modelEl.value, layer, head, prompt: promptEl.value };
      await showAnswered(view, answeredRun('head', request, await postJson<HeadDetail & { runId?: string }>('api/heads/head', request)));
    } catch (e) {
      detail.replaceChildren();
      (panel.querySelector('.provenance') as HTMLElement).hidden = true;
      fail(e);
    } finally {
      detail.classList.remove('stale');
    }
  }

  function drawDetail(r: HeadDetail): void {
    const T = r.tokenLabels.length;
    const pattern = h('table', { class: 'head-pattern', style: 'width:auto;font-family:ui-monospace,monospace;font-size:0.75rem' },
      h('thead', {}, h('tr', {}, h('th', { text: 'query \\ key' }), ...r.tokenLabels.map((t) => h('th', { text: show(t) })))),
      h('tbody', {}, ...r.pattern.map((row, q) => h('tr', {}, h('th', { text: `${q} ${show(r.tokenLabels[q])}` }),
        ...row.slice(0, T).map((p, k) => h('td', { 'data-query': q, 'data-key': k, 'data-value': p, title: `${show(r.tokenLabels[q])} → ${show(r.tokenLabels[k])}: ${p.toFixed(4)}`, style: `background:${sequential(p)};color:${p > 0.6 ? 'white' : 'black'};min-width:1.6rem`, text: k <= q ? p.toFixed(2) : '' }))))));
    const tokenList = (cls: string, xs: HeadDetail['topCopied']) => (xs.length
      ? h('ol', { class: cls }, ...xs.map((x) => h('li', { 'data-token': x.token, text: `${show(x.label)} ${x.value.toFixed(3)}` })))
      : h('p', { class: `${cls} muted`, text: 'none' }));
    detail.replaceChildren(
      h('h3', { class: 'head-title', text: `Head ${r.head}` }),
      h('p', { class: 'copying', text: `eigenvalue copying score of the full OV circuit: ${r.copyingScore.toFixed(3)}` }),
      h('div', { class: 'grid' },
        h('div', {}, h('h4', { text: 'Copies most (full OV diagonal)' }), tokenList('ov-copied', r.topCopied)),
        h('div', {}, h('h4', { text: 'Suppresses most' }), tokenList('ov-suppressed', r.topSuppressed))),
      h('h4', { text: 'Attention pattern on the prompt' }),
      h('div', { style: 'overflow-x:auto' }, pattern),
    );
  }

  form.addEventListener('submit', (e) => {
    e.preventDefault();
    void score();
  });
  const view: View = {
    id: 'heads', label: 'Heads', kinds: ['heads', 'head'], panel,
    restore: (req) => {
      if (req.detector !== undefined) {
        detector.value = req.detector;
        sequences.value = String(req.sequences ?? sequences.value);
        seed.value = String(req.seed ?? seed.value);
      } else {
        // One head's run stands alone: no grid of another run around it.
        promptEl.value = req.prompt ?? promptEl.value;
        grid.replaceChildren();
        meta.textContent = '';
      }
    },
    render: (run: Run) => {
      if (run.kind === 'heads') drawScores(run.result);
      else {
        markSelected(run.result.layer, run.result.index);
        drawDetail(run.result);
      }
    },
  };
  return view;
}
