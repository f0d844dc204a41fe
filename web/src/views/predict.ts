/**
 * Predictions: the next-token distribution after the prompt (values on the bars, token ids), and at
 * every position the entropy and the loss on the token that follows; click a token for its top-k.
 */
import { draw, fmtProb, predictionsSpec, show } from '../charts';
import { $, field, h, input, meta, output, panel, promptBody, sequential, tokenLabelsOf, View } from '../ui';

const predK = input('topK', { type: 'number', min: 1, max: 100, value: 10 });
export const predict: View = {
  id: 'predict', label: 'Predictions', kind: 'forward',
  panel: panel('predict', 'Predictions', [field('Top k', predK)]),
  body: () => ({ ...promptBody(), topK: Number(predK.value) }),
  restore: (r) => (predK.value = String(r.topK ?? 10)),
  render: async (run) => {
    const r = run.result;
    const labels = tokenLabelsOf(r).map(show);
    meta(predict, `${r.tokens.length} tokens · next-token predictions after “${labels.at(-1)}”`);
    const out = output(predict);
    out.append(h('div', { class: 'chart' }));
    const preds = r.predictions.map((p: any) => ({ ...p, token: p.label ?? p.token }));
    await draw($('.chart', out), predictionsSpec(preds));
    if (r.positions) out.append(positionTable(r, labels));
  },
};

/** Each position's token (with its id), entropy and loss; a click shows that position's top tokens. */
function positionTable(r: any, labels: string[]): HTMLElement {
  const stats: { entropy: number; loss: number | null; top: { id: number; prob: number; label: string }[] }[] = r.positions;
  const maxLoss = Math.max(1e-9, ...stats.map((s) => s.loss ?? 0));
  const detail = h('div', { class: 'position-detail', 'data-testid': 'position-detail' }, h('small', { class: 'muted', text: 'Click a token to see what the model predicts after it.' }));
  const chips = labels.map((s, i) => {
    const st = stats[i];
    const chip = h('button', {
      type: 'button', class: 'token-chip position', 'data-pos': i, 'data-loss': st.loss ?? '', 'data-entropy': st.entropy,
      style: st.loss === null ? 'background:none;color:inherit' : `background:${sequential(st.loss / maxLoss)};color:${st.loss / maxLoss > 0.55 ? 'white' : 'black'}`,
      title: `token ${r.tokens[i]} ${JSON.stringify(r.tokenStrings[i])} · entropy ${st.entropy.toFixed(3)} nats${st.loss === null ? '' : ` · loss on the next token ${st.loss.toFixed(3)} nats`}`,
    }, h('span', { text: s }), h('small', { class: 'token-id', text: String(r.tokens[i]) }));
    chip.addEventListener('click', () => {
      chips.forEach((c) => c.classList.toggle('query', c === chip));
      const next = i + 1 < labels.length ? ` (the prompt continues with ${labels[i + 1]}, loss ${st.loss!.toFixed(3)} nats)` : '';
      detail.replaceChildren(
        h('p', { text: `After position ${i} ${s}: entropy ${st.entropy.toFixed(3)} nats${next}` }),
        h('table', { class: 'striped topk' },
          h('thead', {}, h('tr', {}, ...['rank', 'token', 'id', 'probability'].map((t) => h('th', { text: t })))),
          h('tbody', {}, ...st.top.map((t, k) => h('tr', {}, h('td', { text: String(k + 1) }), h('td', { text: show(t.label) }), h('td', { text: String(t.id) }), h('td', { text: fmtProb(t.prob) }))))),
      );
    });
    return chip;
  });
  const mean = stats.filter((s) => s.loss !== null);
  const avg = mean.reduce((a, s) => a + s.loss!, 0) / Math.max(1, mean.length);
  return h('section', { class: 'positions' },
    h('h4', { text: 'Every position' }),
    h('p', { class: 'muted', text: `Coloured by the loss on the token that follows (mean ${avg.toFixed(3)} nats over ${mean.length} positions); small numbers are token ids.` }),
    h('div', { class: 'chips', 'data-testid': 'position-tokens' }, ...chips), detail);
}
