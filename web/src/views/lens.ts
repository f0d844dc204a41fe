/**
 * Logit lens: every layer's residual stream decoded through the final LayerNorm and unembedding.
 * Rows are named as TransformerLens names the streams ('L3 resid_pre'); the legend stays in view
 * while a long prompt's grid scrolls, which starts at the last position.
 */
import { draw, fmtProb, lensSpec, show } from '../charts';
import { loadWhenReady, OptionsForm } from '../options-form';
import { $, h, meta, output, panel, promptBody, tokenLabelsOf, View } from '../ui';

const lensOptions = loadWhenReady(new OptionsForm('lens', { skip: ['text'], labels: { target: 'Target', topK: 'Top k' } }));
export const lens: View = {
  id: 'lens', label: 'Logit lens', kind: 'lens',
  panel: panel('lens', 'Logit lens', [lensOptions.el]),
  body: () => ({ ...promptBody(), ...lensOptions.body() }),
  restore: (r) => lensOptions.restore(r),
  render: async (run) => {
    const r = run.result;
    const target = run.request.target;
    meta(lens, `Each cell: the top token when the residual stream at that layer is decoded through the final LayerNorm and unembedding${target ? `; colour: p(${show(target)})` : '; colour: its probability'}.` +
      (r.kl ? ' Hover a cell for its KL divergence from the final layer.' : ''));
    const out = output(lens);
    const chart = h('div', { class: 'chart scroll lens-grid' });
    out.append(logLegend(target ? `p(${show(target)})` : 'p(top token)'), chart);
    await draw(chart, lensSpec(tokenLabelsOf(r), r.layers, r.cells, !!target, r.kl));
    // The next-token prediction of interest is usually at the end.
    chart.scrollLeft = chart.scrollWidth;
  },
};

/** The lens's log colour scale (viridis, 1e-6 to 1), outside the scrolling grid. */
function logLegend(title: string): HTMLElement {
  const stops = ['#440154', '#3b528b', '#21918c', '#5ec962', '#fde725'];
  return h('div', { class: 'legend', 'data-testid': 'lens-legend', role: 'img', 'aria-label': `${title}: log colour scale from 1e-6 to 1` },
    h('span', { text: title }), h('span', { text: fmtProb(1e-6) }),
    h('span', { class: 'bar', style: `background:linear-gradient(to right, ${stops.join(', ')})` }), h('span', { text: '100%' }));
}
