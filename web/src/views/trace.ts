/** Causal tracing (ROME): noise the subject, restore one clean state at a time, see how much of p(answer) returns. */
import { draw, labels, patchingSpec, show } from '../charts';
import { loadWhenReady, OptionsForm } from '../options-form';
import { $, h, meta, output, panel, promptBody, tokenLabelsOf, View, warnings } from '../ui';

const traceOptions = loadWhenReady(new OptionsForm('tracing', {
  skip: ['text'],
  initial: { subject: 'The Eiffel Tower', answer: ' Paris', samples: '4' },
  labels: { subject: 'Subject', answer: 'Answer', noise: 'Noise (× embedding std)', samples: 'Noise samples', seed: 'Seed', window: 'Window', kinds: 'States' },
}));

export const trace: View = {
  id: 'trace', label: 'Causal tracing', kind: 'trace',
  panel: panel('trace', 'Causal tracing', [traceOptions.el]),
  body: () => ({ ...('text' in promptBody() ? { text: (promptBody() as { text: string }).text } : {}), ...traceOptions.body() }),
  restore: (r) => traceOptions.restore(r),
  render: async (run) => {
    const r = run.result;
    const toks = labels(tokenLabelsOf(r)).map((t, p) => (r.subjectPositions.includes(p) ? `${t}*` : t));
    meta(trace, `p(${show(run.request.answer)}): clean ${r.clean.toFixed(4)}, subject noised ${r.corrupt.toFixed(4)} · cell = (p restored − p noised) / (p clean − p noised); * = subject token`);
    warnings(trace, r.clean - r.corrupt < 0.01 ? [`Noising the subject barely changes p(answer) (clean − noised = ${(r.clean - r.corrupt).toExponential(2)}): the normalised cells divide by almost nothing.`] : []);
    const out = output(trace);
    const kinds = Object.keys(r.effects);
    for (const k of kinds) out.append(h('h4', { text: `${k} (${r.effects[k].hook})` }), h('div', { class: 'chart scroll', 'data-kind': k }));
    for (const k of kinds) {
      const e: number[][] = r.effects[k].normalised;
      await draw($(`.chart[data-kind="${k}"]`, out), patchingSpec(e.map((_, l) => `L${l}`), toks, (i, j) => e[i][j]));
    }
  },
};
