import { attentionSpec, draw, show } from '../charts';
import { $, field, h, legend, meta, output, panel, promptBody, select, sequential, View } from '../ui';

// ---- Attention
export const attention: View = {
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

