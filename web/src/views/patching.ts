import { draw, labels, patchingSpec } from '../charts';
import { loadWhenReady, OptionsForm } from '../options-form';
import { chatEl, h, meta, output, panel, View, warnings } from '../ui';

// ---- Patching
const patchOptions = loadWhenReady(new OptionsForm('patching', {
  initial: {
    clean: 'When Mary and John went to the store, John gave a drink to', corrupt: 'When Mary and John went to the store, Mary gave a drink to',
    answer: ' Mary', wrong: ' John',
  },
  labels: { clean: 'Clean prompt', corrupt: 'Corrupted prompt', answer: 'Answer', wrong: 'Wrong answer', sweep: 'Sweep', method: 'Method', batchSize: 'Batch size', byPosition: 'By position', igSteps: 'IG steps', metric: 'Metric', pos: 'Position' },
}));
export const patching: View = {
  id: 'patching', label: 'Patching', kind: 'patching',
  panel: panel('patching', 'Patching', [patchOptions.el]),
  body: () => ({ ...patchOptions.body(), ...(chatEl.checked ? { chat: true } : {}) }),
  restore: (r) => patchOptions.restore(r),
  render: async (run) => {
    const r = run.result;
    const [L, A, P] = r.shape;
    const toks = labels(r.corruptTokenLabels ?? r.corruptTokenStrings);
    const rows = r.axes.length === 3 ? Array.from({ length: L * A }, (_, i) => `L${Math.floor(i / A)}H${i % A}`) : Array.from({ length: L }, (_, l) => `L${l}`);
    const cols = r.axes.length === 3 || r.axes[1] !== 'head' ? toks : Array.from({ length: A }, (_, i) => `H${i}`);
    const at = (effects: number[]) => (i: number, j: number) => effects[i * (r.axes.length === 3 ? P : A) + j];
    const both = r.attribution !== undefined;
    meta(patching, `${both ? 'activation and attribution' : r.method} · ${r.sweep} at ${r.hook} · metric ${r.metric} at position ${r.pos}: clean ${r.clean.toFixed(3)}, corrupted ${r.corrupt.toFixed(3)} · cell = (patched − corrupted) / (clean − corrupted): 1 restores the clean behaviour` +
      (both ? ` · Pearson r ${r.pearson === null ? 'undefined (a constant grid)' : r.pearson.toFixed(3)}` : ''));
    warnings(patching, patchingCautions(r));
    const out = output(patching);
    out.append(...(both ? [h('h4', { text: 'Activation patching' })] : []), h('div', { class: 'chart scroll' }));
    if (both) out.append(h('h4', { text: 'Attribution patching' }), h('div', { class: 'chart scroll' }));
    const charts = out.querySelectorAll<HTMLElement>('.chart');
    await draw(charts[0], patchingSpec(rows, cols, at(r.effects)));
    if (both) await draw(charts[1], patchingSpec(rows, cols, at(r.attribution.effects)));
  },
};


/** When the normalised effects (divided by clean − corrupted) cannot be read as "fraction restored". */
export function patchingCautions(r: { metric: string; clean: number; corrupt: number }): string[] {
  const d = r.clean - r.corrupt;
  const out: string[] = [];
  if (d < 0) out.push(`The metric is lower on the clean prompt (${r.clean.toFixed(3)}) than on the corrupted one (${r.corrupt.toFixed(3)}): clean − corrupted = ${d.toFixed(3)}, so every cell's sign is flipped and 1 does not mean "clean behaviour restored". Check the answer and the wrong answer.`);
  else if (Math.abs(d) < 0.1 * Math.max(1, Math.abs(r.clean))) out.push(`Clean and corrupted differ by only ${d.toFixed(3)}: dividing by so small a difference makes the effects large and noisy.`);
  if (r.metric === 'logit-diff' && r.clean < 0) out.push(`The model prefers the wrong answer even on the clean prompt (logit difference ${r.clean.toFixed(3)}).`);
  return out;
}
