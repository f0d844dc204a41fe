/**
 * Logit lens: every layer's residual stream decoded through the final LayerNorm and unembedding
 * (or first through the model's tuned lens). Rows are named as TransformerLens names the streams
 * ('L3 resid_pre'); the legend stays in view while a long prompt's grid scrolls, which starts at the
 * last position. A switch shows each cell's KL divergence from the final layer instead of its top token.
 */
import { draw, fmtKl, fmtProb, lensSpec, show } from '../charts';
import { loadWhenReady, OptionsForm } from '../options-form';
import { h, input, meta, output, panel, promptBody, tokenLabelsOf, View } from '../ui';

const lensOptions = loadWhenReady(new OptionsForm('lens', { skip: ['text'], labels: { target: 'Target', topK: 'Top k', tunedLens: 'Tuned lens' } }));
export const lens: View = {
  id: 'lens', label: 'Logit lens', kind: 'lens',
  panel: panel('lens', 'Logit lens', [lensOptions.el]),
  body: () => ({ ...promptBody(), ...lensOptions.body() }),
  restore: (r) => lensOptions.restore(r),
  render: async (run) => {
    const r = run.result;
    const target = run.request.target;
    const tuned = r.method === 'tuned-lens';
    const decoded = tuned ? "through the model's tuned lens, then the final LayerNorm and unembedding" : 'through the final LayerNorm and unembedding';
    meta(lens, `${tuned ? 'Tuned lens' : 'Logit lens'}. Each cell: the top token when the residual stream at that layer is decoded ${decoded}; colour: ${target ? `p(${show(target)})` : 'its probability'}, or with the switch, its KL divergence from the final layer.`);
    const out = output(lens);
    const chart = h('div', { class: 'chart scroll lens-grid' });
    const hasKl = r.cells[0]?.[0]?.kl !== undefined;
    const klBox = input('kl', { type: 'checkbox', role: 'switch', 'data-testid': 'lens-kl', disabled: !hasKl });
    const legendSlot = h('div', {});
    const redraw = async () => {
      const showKl = klBox.checked;
      legendSlot.replaceChildren(showKl ? klLegend() : logLegend(target ? `p(${show(target)})` : 'p(top token)'));
      await draw(chart, lensSpec(tokenLabelsOf(r), r.layers, r.cells, !!target, showKl));
      // The next-token prediction of interest is usually at the end.
      chart.scrollLeft = chart.scrollWidth;
    };
    klBox.addEventListener('change', () => void redraw());
    out.append(
      h('div', { class: 'grid-controls' }, h('label', { class: 'switch', title: "each cell's KL divergence from the final layer's next-token distribution at that position, KL(final ‖ layer), in nats" }, klBox, 'KL to final layer')),
      legendSlot, chart,
    );
    await redraw();
  },
};

/** The lens's log colour scale (viridis, 1e-6 to 1), outside the scrolling grid. */
function logLegend(title: string): HTMLElement {
  const stops = ['#440154', '#3b528b', '#21918c', '#5ec962', '#fde725'];
  return h('div', { class: 'legend', 'data-testid': 'lens-legend', role: 'img', 'aria-label': `${title}: log colour scale from 1e-6 to 1` },
    h('span', { text: title }), h('span', { text: fmtProb(1e-6) }),
    h('span', { class: 'bar', style: `background:linear-gradient(to right, ${stops.join(', ')})` }), h('span', { text: '100%' }));
}

/** The KL colour scale (reversed magma, symmetric-log from 0 to 10 nats). */
function klLegend(): HTMLElement {
  const stops = ['#fcfdbf', '#fc8961', '#b73779', '#51127c', '#000004'];
  return h('div', { class: 'legend', 'data-testid': 'lens-legend', role: 'img', 'aria-label': 'KL(final ‖ layer) in nats: log colour scale from 0 to 10' },
    h('span', { text: 'KL(final ‖ layer), nats' }), h('span', { text: fmtKl(0) }),
    h('span', { class: 'bar', style: `background:linear-gradient(to right, ${stops.join(', ')})` }), h('span', { text: '10' }));
}
