import type { Run } from '../api';
import { attributionSpec, draw, labels, show } from '../charts';
import { loadWhenReady, OptionsForm } from '../options-form';
import { $, diverging, field, h, input, legend, meta, output, panel, promptBody, select, View } from '../ui';

// ---- Attribution
const attrTarget = input('target', { type: 'text', placeholder: 'top prediction' });
const attrFoil = input('foil', { type: 'text', placeholder: 'none' });
const attrKind = select('kind', ['logprob', 'logit', 'prob'], 'logprob');
const attrEval = input('evaluate', { type: 'checkbox', role: 'switch' });
const attrWords = input('words', { type: 'checkbox', role: 'switch' });
const attrOptions = loadWhenReady(new OptionsForm('attribution', { outside: { evaluate: attrEval }, labels: { method: 'Method' } }));

let lastAttribution: Run | undefined;
export const attribution: View = {
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

