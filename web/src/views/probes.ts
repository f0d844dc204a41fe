import { draw, probeAccuracySpec, probePcaSpec } from '../charts';
import { field, h, input, meta, output, panel, select, View } from '../ui';

// ---- Probes
const probeData = select('dataset', ['capitals', 'cities', 'comparisons', 'sentiment'], 'sentiment');
const probeKind = select('kind', ['logistic', 'linear', 'mass-mean', 'mass-mean-iid', 'k-sparse', 'ccs'], 'logistic');
const probePositions = select('positions', ['last', 'mean'], 'last');
const probeLimit = input('limit', { type: 'number', min: 4, max: 1000, value: 100 });
export const probes: View = {
  id: 'probes', label: 'Probes', kind: 'probes',
  panel: panel('probes', 'Probes', [field('Dataset', probeData, 'built-in, labelled'), field('Probe', probeKind), field('Position', probePositions), field('Subjects', probeLimit, 'a quarter held out')]),
  body: () => ({ dataset: probeData.value, kind: probeKind.value, positions: probePositions.value, limit: Number(probeLimit.value) }),
  restore: (r) => {
    probeData.value = r.dataset;
    probeKind.value = r.kind ?? 'logistic';
    probePositions.value = r.positions ?? 'last';
    probeLimit.value = String(r.limit ?? 100);
  },
  render: async (run) => {
    const r = run.result;
    meta(probes, `${r.settings.kind} probe per layer on ${r.dataset} (${r.layers[0].test.n} held-out rows; majority class ${r.baseline.toFixed(3)}) · right: ${r.pca.hook}, the best layer, on its top two principal components`);
    const out = output(probes);
    out.append(h('div', { class: 'chart' }), h('div', { class: 'chart' }));
    const [acc, pca] = out.querySelectorAll<HTMLElement>('.chart');
    await draw(acc, probeAccuracySpec(r.layers, r.baseline));
    await draw(pca, probePcaSpec(r.pca.points, r.pca.explained, r.pca.hook));
  },
};

