import { draw, predictionsSpec, show } from '../charts';
import { $, field, h, input, meta, output, panel, promptBody, tokenStrip, View } from '../ui';

// ---- Predictions
const predK = input('topK', { type: 'number', min: 1, max: 100, value: 10 });
export const predict: View = {
  id: 'predict', label: 'Predictions', kind: 'forward',
  panel: panel('predict', 'Predictions', [field('Top k', predK)]),
  body: () => ({ ...promptBody(), topK: Number(predK.value) }),
  restore: (r) => (predK.value = String(r.topK ?? 10)),
  render: async (run) => {
    const r = run.result;
    meta(predict, `${r.tokens.length} tokens · next-token predictions after “${show(r.tokenStrings.at(-1))}”`);
    const out = output(predict);
    out.append(tokenStrip(r.tokenStrings), h('div', { class: 'chart' }));
    await draw($('.chart', out), predictionsSpec(r.predictions));
  },
};

