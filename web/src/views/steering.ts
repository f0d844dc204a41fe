/**
 * The steering playground: a direction from a prompt pair (ActAdd) or from a probe fit on a
 * built-in dataset, a layer, and a coefficient slider; the prompt's continuation without and with
 * the vector side by side, and the KL cost on neutral text. Each change of the slider runs again.
 * Every answer is a saved run ('steering'), reopened here from Saved runs or its permalink.
 */
import { api, ApiError, Run } from '../api';
import { answeredRun, clearResult, promptEl, resultFrame, showAnswered, View } from '../ui';

function h<K extends keyof HTMLElementTagNameMap>(tag: K, attrs: Record<string, string | boolean | number> = {}, ...children: (Node | string)[]): HTMLElementTagNameMap[K] {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v === false) continue;
    if (k === 'text') el.textContent = String(v);
    else el.setAttribute(k, v === true ? '' : String(v));
  }
  el.append(...children);
  return el;
}

const label = (text: string, input: HTMLElement, hint?: string) => h('label', {}, text, input, ...(hint ? [h('small', { class: 'muted', text: hint })] : []));

/** What the server answers (src/interfaces/server/steering.ts). */
export interface SteeringResponse {
  hook: string;
  vectorMethod: string;
  rows: { prompt: string; plain: string; steered: string }[];
  kl: number;
  vectorNorm: number;
  probe?: { dataset: string; kind: string; test: { accuracy: number; n: number } };
}

/** The playground's panel and its show hook, for the tab list in main.ts. */
export function steeringView(deps: { prompt: () => string; model: () => string }): View {
  const source = h('select', { name: 'source' }, h('option', { value: 'pair', text: 'prompt pair (ActAdd)' }), h('option', { value: 'probe', text: 'probe direction' }));
  const positive = h('input', { name: 'positive', type: 'text', value: ' Love' });
  const negative = h('input', { name: 'negative', type: 'text', value: ' Hate' });
  const dataset = h('select', { name: 'dataset' }, ...['sentiment', 'capitals', 'cities', 'comparisons'].map((d) => h('option', { value: d, text: d })));
  const kind = h('select', { name: 'kind' }, ...['mass-mean', 'logistic', 'mass-mean-iid'].map((d) => h('option', { value: d, text: d })));
  const layer = h('input', { name: 'layer', type: 'number', min: 0, step: 1, value: 1 });
  const coef = h('input', { name: 'coef', type: 'range', min: -20, max: 20, step: 0.5, value: 4 });
  const coefValue = h('output', { name: 'coef-value', text: coef.value });
  const tokens = h('input', { name: 'maxNewTokens', type: 'number', min: 1, max: 64, value: 20 });
  const pairFields = h('div', { class: 'grid pair-fields' }, label('Towards', positive), label('Away from', negative));
  const probeFields = h('div', { class: 'grid probe-fields', hidden: true }, label('Dataset', dataset, 'built-in, labelled'), label('Probe', kind));
  const button = h('button', { type: 'submit', class: 'run', text: 'Steer' });
  const form = h('form', { class: 'controls steering' },
    label('Direction', source), pairFields, probeFields, label('Layer', layer, 'its input is steered'),
    label('Coefficient', coef, ''), coefValue, label('New tokens', tokens), button);
  const error = h('p', { class: 'error', role: 'alert', hidden: true });
  const meta = h('div', { class: 'meta' });
  const out = h('div', { class: 'output' });
  const panel = h('section', { id: 'view-steering', class: 'view', role: 'tabpanel', 'aria-label': 'Steering', hidden: true }, form, error, ...resultFrame(), meta, out);

  source.addEventListener('change', () => {
    pairFields.hidden = source.value !== 'pair';
    probeFields.hidden = source.value !== 'probe';
  });

  let busy = false;
  let again = false;
  async function run(): Promise<void> {
    if (busy) {
      again = true; // the slider moved while a run was going: run once more with its last value
      return;
    }
    busy = true;
    error.hidden = true;
    button.setAttribute('aria-busy', 'true');
    out.classList.add('stale');
    try {
      const direction = source.value === 'pair'
        ? { source: 'pair', positive: positive.value, negative: negative.value }
        : { source: 'probe', dataset: dataset.value, kind: kind.value };
      const request = { model: deps.model(), prompt: deps.prompt(), layer: Number(layer.value), coef: Number(coef.value), maxNewTokens: Number(tokens.value), direction };
      const r = await api.steering<SteeringResponse & { runId?: string }>(request);
      await showAnswered(view, answeredRun('steering', request, r));
    } catch (e) {
      // The previous generations are not this request's: never leave them under the error.
      clearResult(view);
      error.hidden = false;
      error.textContent = e instanceof ApiError ? e.message : (e as Error).message;
    } finally {
      busy = false;
      button.removeAttribute('aria-busy');
      out.classList.remove('stale');
      if (again) {
        again = false;
        void run();
      }
    }
  }

  /** Draws a steering run (answered now, or saved). */
  function render(saved: Run<SteeringResponse>): void {
    const r = saved.result;
    const c = saved.request.coef;
    const probeNote = r.probe ? ` · ${r.probe.kind} probe on ${r.probe.dataset}, held-out accuracy ${r.probe.test.accuracy.toFixed(3)} (n=${r.probe.test.n})` : '';
    meta.textContent = `${r.vectorMethod} vector at ${r.hook} (norm ${r.vectorNorm.toFixed(2)}), coefficient ${c}${probeNote}`;
    const row = r.rows[0];
    out.replaceChildren(
      h('p', { class: 'kl-cost', text: `KL cost on neutral text: ${r.kl.toFixed(4)} nats per token` }),
      h('div', { class: 'grid side-by-side' },
        h('article', { class: 'plain' }, h('header', { text: 'Without' }), h('p', {}, h('span', { class: 'muted', text: row.prompt }), h('strong', { text: row.plain }))),
        h('article', { class: 'steered' }, h('header', { text: `With coefficient ${c}` }), h('p', {}, h('span', { class: 'muted', text: row.prompt }), h('strong', { text: row.steered })))),
    );
  }

  /** Sets the controls (and the prompt) to a saved run's request. */
  function restore(req: Record<string, any>): void {
    promptEl.value = req.prompt ?? promptEl.value;
    const d = req.direction ?? {};
    source.value = d.source === 'probe' ? 'probe' : 'pair';
    source.dispatchEvent(new Event('change'));
    if (d.source === 'probe') {
      dataset.value = d.dataset;
      kind.value = d.kind ?? 'mass-mean';
    } else {
      positive.value = d.positive ?? positive.value;
      negative.value = d.negative ?? negative.value;
    }
    layer.value = String(req.layer ?? layer.value);
    coef.value = String(req.coef ?? coef.value);
    coefValue.textContent = coef.value;
    tokens.value = String(req.maxNewTokens ?? tokens.value);
  }

  form.addEventListener('submit', (e) => {
    e.preventDefault();
    void run();
  });
  coef.addEventListener('input', () => (coefValue.textContent = coef.value));
  coef.addEventListener('change', () => void run());
  const view: View = { id: 'steering', label: 'Steering', kinds: ['steering'], panel, render: (saved) => render(saved), restore };
  return view;
}
