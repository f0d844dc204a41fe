import { draw, lensSpec, show } from '../charts';
import { loadWhenReady, OptionsForm } from '../options-form';
import { $, h, meta, output, panel, promptBody, View } from '../ui';

// ---- Logit lens
const lensOptions = loadWhenReady(new OptionsForm('lens', { skip: ['text'], labels: { target: 'Target', topK: 'Top k' } }));
export const lens: View = {
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

