/** The card of the chosen model: family, shape, context, tokenizer, and for planted models the ground truth. */
import type { ModelCard, PlantedComponent } from './api';
import { h } from './ui';

const part = (p: PlantedComponent) => `${p.role}: L${p.layer}${p.head !== undefined ? `H${p.head}` : ''}${p.neuron !== undefined ? ` neuron ${p.neuron}` : ''} (${p.component})`;

export function modelCard(c: ModelCard): HTMLElement {
  const facts: [string, string][] = [
    ['family', c.family], ['layers', String(c.nLayers)],
    ['heads', c.nKvHeads !== c.nHeads ? `${c.nHeads} (${c.nKvHeads} key/value)` : String(c.nHeads)],
    ['d_model', String(c.dModel)], ['d_mlp', String(c.dMlp)], ['context', `${c.nCtx} tokens`], ['vocabulary', String(c.dVocab)], ['tokenizer', c.tokenizer],
  ];
  const card = h('div', { class: 'model-card', 'data-testid': 'model-card' },
    h('dl', {}, ...facts.flatMap(([k, v]) => [h('dt', { text: k }), h('dd', { text: v })])));
  if (c.planted) {
    const p = c.planted;
    card.append(
      h('p', { text: p.description }),
      h('p', {}, h('strong', { text: 'Planted mechanism (ground truth): ' })),
      h('ul', { class: 'mechanism' }, ...p.mechanism.map((m) => h('li', { text: part(m) }))),
      ...(p.controls.length ? [h('p', { class: 'muted', text: `Controls (not needed by the task): ${p.controls.map(part).join('; ')}` })] : []),
      h('p', { class: 'muted', text: `Task: ${p.task.prompts} → ${p.task.answer}; measured by ${p.task.metric}` }),
    );
  }
  return card;
}
