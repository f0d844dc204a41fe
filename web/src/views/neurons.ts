/**
 * Neuron page: one MLP neuron's statistics and label (dead, positional, token / n-gram,
 * token-frequency, other) over a small bundled corpus sample, the labelled neurons of its layer,
 * and its top-activating contexts with every token shaded by the neuron's activation there. Each
 * page is saved as a run ('neuron') by the server, reopened here.
 */
import { ApiError } from '../api';
import { show } from '../charts';
import { answeredRun, clearResult, field, h, input, modelEl, resultFrame, sequential, showAnswered, View } from '../ui';
import { postJson } from './heads';

/** What POST api/neurons/neuron answers. */
interface NeuronPage {
  corpus: string;
  tokens: number;
  dataHash: string;
  neuron: {
    layer: number; neuron: number; label: string; max: number; mean: number; fireRate: number; positionVariance: number; frequencyCorrelation: number;
    ngram?: { tokens: number[]; count: number; share: number }; ngramLabels?: string[];
  };
  layerCounts: Record<string, number>;
  labelled: { neuron: number; label: string; max: number }[];
  examples: { activation: number; tokenLabels: string[]; focus: number; activations: number[] }[];
}

/** The Neurons tab, for the tab list in main.ts. */
export function neuronsView(): View {
  const layer = input('layer', { type: 'number', min: 0, step: 1, value: 0 });
  const neuron = input('neuron', { type: 'number', min: 0, step: 1, value: 0 });
  const maxTokens = input('maxTokens', { type: 'number', min: 64, max: 20000, value: 4000 });
  const button = h('button', { type: 'submit', class: 'run', text: 'Show neuron' });
  const form = h('form', { class: 'controls neurons' },
    field('Layer', layer), field('Neuron', neuron), field('Corpus tokens', maxTokens, 'Brown, or a planted model’s task prompts'), button);
  const error = h('p', { class: 'error', role: 'alert', hidden: true });
  const meta = h('div', { class: 'meta' });
  const out = h('div', { class: 'output' });
  const panel = h('section', { id: 'view-neurons', class: 'view', role: 'tabpanel', 'aria-label': 'Neurons', hidden: true }, form, error, ...resultFrame(), meta, out);

  async function load(): Promise<void> {
    error.hidden = true;
    button.setAttribute('aria-busy', 'true');
    out.classList.add('stale');
    try {
      const request = { model: modelEl.value, layer: Number(layer.value), neuron: Number(neuron.value), maxTokens: Number(maxTokens.value) };
      await showAnswered(view, answeredRun('neuron', request, await postJson<NeuronPage & { runId?: string }>('api/neurons/neuron', request)));
    } catch (e) {
      clearResult(view);
      error.hidden = false;
      error.textContent = e instanceof ApiError ? e.message : (e as Error).message;
    } finally {
      button.removeAttribute('aria-busy');
      out.classList.remove('stale');
    }
  }

  function draw(r: NeuronPage): void {
    const n = r.neuron;
    meta.textContent = `L${n.layer}N${n.neuron} over ${r.tokens.toLocaleString('en-US')} tokens of ${r.corpus} (data ${r.dataHash})`;
    const stat = (name: string, value: string) => [h('dt', { text: name }), h('dd', { text: value, style: 'margin:0' })];
    const stats = h('dl', { class: 'neuron-stats', style: 'display:grid;grid-template-columns:max-content 1fr;gap:0.1rem 1.5rem' },
      ...stat('label', n.label),
      ...(n.ngram ? stat(n.label === 'token' ? 'token' : 'n-gram', `${(n.ngramLabels ?? n.ngram.tokens.map(String)).map((t) => `“${show(t)}”`).join(' ')} (${n.ngram.count} in the corpus; ends ${(100 * n.ngram.share).toFixed(0)}% of the top examples)`) : []),
      ...stat('max activation', n.max.toFixed(4)),
      ...stat('mean activation', n.mean.toFixed(4)),
      ...stat('fires at', `${(100 * n.fireRate).toFixed(2)}% of tokens`),
      ...stat('variance explained by position (η²)', n.positionVariance.toFixed(3)),
      ...stat('correlation with log token frequency', n.frequencyCorrelation.toFixed(3)));
    const others = h('p', { class: 'layer-neurons' }, `Layer ${n.layer}: ${Object.entries(r.layerCounts).map(([l, c]) => `${l} ${c}`).join(', ')}. `,
      ...(r.labelled.length ? ['Labelled: '] : []),
      ...r.labelled.flatMap((x) => {
        const b = h('a', { href: '#neurons', class: 'neuron-link', 'data-neuron': x.neuron, text: `N${x.neuron} (${x.label})` });
        b.addEventListener('click', (e) => {
          e.preventDefault();
          neuron.value = String(x.neuron);
          void load();
        });
        return [b, ' '];
      }));
    const top = Math.max(1e-12, n.max);
    const contexts = h('div', { class: 'neuron-contexts' }, ...r.examples.map((ex) => h('div', { class: 'context', style: 'font-family:ui-monospace,monospace;margin:0.2rem 0' },
      h('small', { class: 'muted', text: `${ex.activation.toFixed(3)}  ` }),
      ...ex.tokenLabels.map((t, i) => h('span', {
        class: i === ex.focus ? 'tok focus' : 'tok', 'data-activation': ex.activations[i], title: `${show(t)}: ${ex.activations[i].toFixed(4)}`,
        style: `background:${sequential(Math.max(0, ex.activations[i]) / top)};color:${ex.activations[i] > 0.6 * top ? 'white' : 'black'};white-space:pre;padding:0 1px;${i === ex.focus ? 'outline:2px solid #222;' : ''}`,
        text: show(t),
      })))));
    out.replaceChildren(stats, others, h('h4', { text: 'Top-activating contexts (shade: activation at each token)' }), contexts);
  }

  form.addEventListener('submit', (e) => {
    e.preventDefault();
    void load();
  });
  const view: View = {
    id: 'neurons', label: 'Neurons', kinds: ['neuron'], panel,
    restore: (req) => {
      layer.value = String(req.layer ?? layer.value);
      neuron.value = String(req.neuron ?? neuron.value);
      maxTokens.value = String(req.maxTokens ?? maxTokens.value);
    },
    render: (run) => draw(run.result),
  };
  return view;
}
