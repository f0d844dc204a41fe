import { ApiError, runJob, Run } from '../api';
import { attributionSpec, draw, labels, show } from '../charts';
import { loadWhenReady, OptionsForm } from '../options-form';
import { $, diverging, field, h, input, legend, meta, output, panel, promptBody, select, tokenLabelsOf, View, warnings } from '../ui';

// ---- Attribution
const attrTarget = input('target', { type: 'text', placeholder: 'top prediction' });
const attrFoil = input('foil', { type: 'text', placeholder: 'none' });
const attrKind = select('kind', ['logprob', 'logit', 'prob'], 'logprob');
const attrEval = input('evaluate', { type: 'checkbox', role: 'switch' });
const attrWords = input('words', { type: 'checkbox', role: 'switch' });
const compareWith = select('compare', [''], '');
compareWith.options[0].text = 'none';
const attrOptions = loadWhenReady(new OptionsForm('attribution', { outside: { evaluate: attrEval }, labels: { method: 'Method' } }));

let lastAttribution: Run | undefined;
/** The second method's job of a comparison, queued right after the first so that one Cancel stops both. */
interface Pending { first?: string; method: string; job: Promise<Run>; status: string; onStatus?: (s: string) => void }
let pending: Pending | undefined;
/** The comparison drawn beside a run (kept for redrawing it, e.g. when tokens are merged into words). */
let compared: { first: string; method: string; outcome: Run | 'cancelled' | Error } | undefined;
export const attribution: View = {
  id: 'attribution', label: 'Attribution', kind: 'attribution',
  panel: panel('attribution', 'Attribution', [
    field('Target', attrTarget, 'one token, or several for a continuation'), field('Foil', attrFoil, 'contrast: target − foil'),
    field('Score', attrKind), h('label', { class: 'switch' }, attrEval, 'Faithfulness'), attrOptions.el,
    field('Compare with', compareWith, 'a second method on the same prompt and target (its default settings)'),
  ]),
  body: () => ({
    ...promptBody(), kind: attrKind.value, evaluate: attrEval.checked,
    ...(attrTarget.value ? { target: attrTarget.value } : {}), ...(attrFoil.value ? { foil: attrFoil.value } : {}), ...attrOptions.body(),
  }),
  alongside: (body) => {
    const method = compareWith.value;
    pending = undefined;
    if (!method || method === body.method) return;
    const keep = ['text', 'messages', 'target', 'foil', 'kind', 'evaluate', 'seed', 'model'];
    const second = { ...Object.fromEntries(Object.entries(body).filter(([k]) => keep.includes(k))), method };
    const p: Pending = { method, status: `${method}: queued for comparison`, job: Promise.resolve(undefined as unknown as Run) };
    p.job = runJob('attribution', second, (prog) => {
      p.status = `${method}: ${prog.message}${prog.fraction !== null ? ` · ${Math.round(100 * prog.fraction)}%` : ''}`;
      p.onStatus?.(p.status);
    }, () => {});
    p.job.catch(() => {}); // its outcome is shown where the comparison is drawn
    pending = p;
  },
  restore: (r) => {
    // A saved run opens alone (a comparison is a second run, started only by Run).
    compareWith.value = '';
    pending = undefined;
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
    const strings: string[] = words ? r.words.words : tokenLabelsOf(r);
    const scores: number[][] = words ? r.words.scores : r.scores;
    const rows: string[] = r.target.rows;
    meta(attribution, `${r.method} · ${strings.length} ${words ? 'words' : 'tokens'} · ${explained(r)}` +
      (r.convergenceDelta ? ` · convergence δ ${r.convergenceDelta.map((d: number) => d.toExponential(1)).join(', ')}` : ''));
    warnings(attribution, cautions(run));
    const out = output(attribution);
    const toggle = h('label', { class: 'switch' }, attrWords, 'Merge tokens into words');
    // One scale for the chips, the heatmap and the legend.
    const max = Math.max(1e-12, ...scores.flat().map(Math.abs));
    const ids: number[] = r.tokens;
    const chips = h('div', { class: 'chips', 'data-testid': 'attribution-tokens' }, ...strings.map((s, i) => {
      const v = scores[0][i];
      const raw = words ? '' : ` · token ${ids[i]} ${JSON.stringify(r.tokenStrings[i])}`;
      return h('span', { class: 'token-chip', 'data-score': v, style: `background:${diverging(v / max)};color:${Math.abs(v / max) > 0.6 ? 'white' : 'black'}`, title: `${show(s)}: ${v.toFixed(4)}${raw}`, tabindex: 0, text: show(s) });
    }));
    out.append(toggle, downloads(run), h('p', { class: 'muted', text: `First row (${rows[0]}), coloured by score:` }), chips, legend(-max, max), h('div', { class: 'chart scroll' }));
    if (r.faithfulness) out.append(h('div', { class: 'scroll' }, faithTable(r.faithfulness, rows)));
    await draw($('.chart', out), attributionSpec(labels(strings), rows, scores, DIVERGING_RANGE));
    if (pending && !pending.first) {
      pending.first = run.id;
      await compareRun(run, pending, out);
    } else if (compared?.first === run.id) drawComparison(run, compared.method, compared.outcome, out);
  },
};

// The method choices arrive with the form; the comparison offers the same.
const methodChoices = new MutationObserver(() => {
  const methods = [...attribution.panel.querySelectorAll<HTMLOptionElement>('select[name=method] option')].map((o) => o.value).filter(Boolean);
  if (methods.length && compareWith.options.length === 1) compareWith.append(...methods.map((m) => h('option', { value: m, text: m })));
});
methodChoices.observe(attribution.panel, { childList: true, subtree: true });

/** Waits for the second method's job (queued with the first) and shows it beside `first`, with both faithfulness rows in one table. */
async function compareRun(first: Run, p: Pending, out: HTMLElement): Promise<void> {
  const section = drawComparison(first, p.method, undefined, out);
  const status = $('[data-testid=compare-status]', section);
  status.textContent = p.status;
  p.onStatus = (s) => (status.textContent = s);
  let outcome: Run | 'cancelled' | Error;
  try {
    outcome = await p.job;
  } catch (e) {
    outcome = e instanceof ApiError && e.message === 'cancelled' ? 'cancelled' : (e as Error);
  }
  if (pending === p) pending = undefined;
  compared = { first: first.id, method: p.method, outcome };
  section.remove();
  drawComparison(first, p.method, outcome, out);
}

/** The comparison section: waiting (no outcome yet), cancelled, failed, or the second method's scores. */
function drawComparison(first: Run, method: string, outcome: Run | 'cancelled' | Error | undefined, out: HTMLElement): HTMLElement {
  const status = h('p', { class: 'muted', 'data-testid': 'compare-status', text: outcome === 'cancelled' ? `${method}: cancelled` : outcome instanceof Error ? `${method} failed: ${outcome.message}` : `${method}: queued for comparison` });
  const section = h('section', { class: 'compare-result', 'data-testid': 'compare-result', 'data-outcome': outcome === undefined ? 'waiting' : outcome === 'cancelled' ? 'cancelled' : outcome instanceof Error ? 'error' : 'done' }, h('h4', { text: `Compared with ${method}` }), status);
  out.append(section);
  if (outcome === undefined || outcome === 'cancelled' || outcome instanceof Error) return section;
  const r = outcome.result;
  const strings = tokenLabelsOf(r);
  const max = Math.max(1e-12, ...r.scores.flat().map(Math.abs));
  status.textContent = `${r.method} · ${explained(r)}`;
  section.append(legend(-max, max), h('div', { class: 'chart scroll' }));
  if (first.result.faithfulness && r.faithfulness) section.append(h('div', { class: 'scroll' }, methodsFaithTable([first.result, r])));
  void draw($('.chart', section), attributionSpec(labels(strings), r.target.rows, r.scores, DIVERGING_RANGE));
  return section;
}

/** Faithfulness of several methods (first target row each), one row per method. */
function methodsFaithTable(results: any[]): HTMLElement {
  const keys = Object.keys(results[0].faithfulness.rows[0]).filter((k) => typeof results[0].faithfulness.rows[0][k] === 'number');
  return h('table', { class: 'striped faith', 'data-testid': 'faith-compare' },
    h('caption', { text: 'Faithfulness, side by side (first target row)' }),
    h('thead', {}, h('tr', {}, h('th', { text: 'method' }), ...keys.map((k) => h('th', { text: FAITH_LABELS[k] ?? k })))),
    h('tbody', {}, ...results.map((x) => h('tr', {}, h('td', { text: x.method }), ...keys.map((k) => h('td', { text: x.faithfulness.rows[0][k].toFixed(4) }))))));
}

/** The chips' diverging colours (ui.ts diverging), for the heatmap's scale. */
const DIVERGING_RANGE = ['rgb(0,0,255)', 'rgb(255,255,255)', 'rgb(255,0,0)'];

/** Methods whose scores do not depend on the target (they read attention weights only). */
const TARGET_FREE = ['attention', 'rollout'];

/** What the scores explain, named from the result itself (its score kind and target). */
export function explained(r: any): string {
  const t = r.target;
  if (TARGET_FREE.includes(r.method)) return 'attention weights into the last position (the same for any target)';
  const f = (v: number) => (Math.abs(v) < 1e-3 && v !== 0 ? v.toExponential(3) : v.toFixed(4));
  const values = ` = ${t.values.map(f).join(', ')}`;
  if (t.mode === 'contrastive') {
    const fn = t.kind === 'prob-diff' ? 'p' : t.kind === 'logprob-diff' ? 'logprob' : 'logit';
    return `explaining ${fn}(${show(t.tokenString)}) − ${fn}(${show(t.foilString)})${values}`;
  }
  if (t.mode === 'continuation') return `explaining the ${t.kind} of the continuation ${(t.continuationStrings ?? []).map(show).join('')}${values}`;
  return `explaining the ${t.kind} of ${show(t.tokenString)}${t.predicted ? ' (the top prediction)' : ''}${values}`;
}

/** Reasons not to trust these numbers as they stand. */
function cautions(run: Run): string[] {
  const r = run.result;
  const out: string[] = [];
  const t = r.target;
  const given: string | undefined = run.request.target;
  if (given !== undefined && !/^\s/.test(given) && !/\s$/.test(run.request.text ?? '')) {
    out.push(`The target ${JSON.stringify(given)} has no leading space, so it is not the word after a space: ${t.mode === 'continuation' ? `it became ${t.continuation.length} tokens` : `it is token ${t.token} ${JSON.stringify(t.tokenString)}`}. Did you mean ${JSON.stringify(` ${given}`)}?`);
  }
  if (t.mode === 'continuation') out.push(`The target is ${t.continuation.length} tokens (${t.continuationStrings.map(show).join(' ')}), so it is scored as a teacher-forced continuation, one row per token, not as one next token.`);
  if (r.convergenceDelta) {
    // IG's completeness: the scores of a row should sum to its value minus the baseline's; δ is what they miss.
    r.convergenceDelta.forEach((d: number, i: number) => {
      const total = Math.max(1e-9, r.scores[i].reduce((a: number, b: number) => a + Math.abs(b), 0));
      if (Math.abs(d) > 0.1 * total) out.push(`Integrated gradients did not converge${rows(r) > 1 ? ` for row ${r.target.rows[i]}` : ''}: δ = ${d.toFixed(3)} against scores whose magnitudes sum to ${total.toFixed(3)}. Use more steps.`);
    });
  }
  return out;
}
const rows = (r: any) => r.target.rows.length;

/** CSV (one row per token, one column per target row) and JSON downloads of the run. */
function downloads(run: Run): HTMLElement {
  const r = run.result;
  const head = ['position', 'token_id', 'token', ...r.target.rows.map((x: string) => `score ${x}`)];
  const quote = (x: string) => `"${x.replace(/"/g, '""')}"`;
  const lines = [head.map(quote).join(','), ...r.tokenStrings.map((s: string, i: number) => [i, r.tokens[i], quote(s), ...r.scores.map((row: number[]) => row[i])].join(','))];
  const link = (name: string, type: string, text: string, label: string) =>
    h('a', { href: URL.createObjectURL(new Blob([text], { type })), download: name, role: 'button', class: 'small outline', text: label });
  return h('div', { class: 'downloads' },
    link(`attribution-${run.id}.csv`, 'text/csv', `${lines.join('\n')}\n`, 'CSV'),
    link(`attribution-${run.id}.json`, 'application/json', JSON.stringify(run, null, 1), 'JSON'));
}
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

