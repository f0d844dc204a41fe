/**
 * SVG figures of the toy models, as Vega-Lite specs rendered by Vega (like src/report/plot.ts):
 * WᵀW heatmaps, feature norms coloured by superposition, the phase diagram, dimensionality,
 * and bar charts of Fourier or irrep shares.
 */
import type { TopLevelSpec } from 'vega-lite';
import type { PhaseCell, SuperpositionAnalysis } from './superposition.js';

// Vega is imported on first use, as in src/report/plot.ts: the CLI imports this module at startup.
async function render(spec: TopLevelSpec): Promise<string> {
  const [vega, vegaLite] = await Promise.all([import('vega'), import('vega-lite')]);
  const view = new vega.View(vega.parse(vegaLite.compile(spec).spec), { renderer: 'none' });
  return view.toSVG();
}

const SCHEMA = 'https://vega.github.io/schema/vega-lite/v6.json';

/** A matrix as a diverging heatmap centred on 0 (e.g. WᵀW). */
export function matrixHeatmapSvg(matrix: number[][], opts: { title: string; rowLabel?: string; colLabel?: string }): Promise<string> {
  const values = matrix.flatMap((row, i) => row.map((v, j) => ({ row: i, col: j, value: v })));
  const max = Math.max(1e-9, ...values.map((v) => Math.abs(v.value)));
  const cell = Math.max(8, Math.min(32, Math.floor(360 / Math.max(matrix.length, matrix[0]?.length ?? 1))));
  return render({
    $schema: SCHEMA, title: opts.title, background: 'white', data: { values },
    width: cell * (matrix[0]?.length ?? 0), height: cell * matrix.length,
    mark: 'rect',
    encoding: {
      x: { field: 'col', type: 'ordinal', title: opts.colLabel ?? 'feature' },
      y: { field: 'row', type: 'ordinal', title: opts.rowLabel ?? 'feature' },
      color: { field: 'value', type: 'quantitative', scale: { scheme: 'redblue', domain: [-max, max], reverse: true }, title: null },
      tooltip: [{ field: 'row' }, { field: 'col' }, { field: 'value', format: '.3f' }],
    },
  });
}

/** ‖W_i‖ per feature, coloured by how much the feature shares its direction (the paper's bar plot). */
export function featureNormsSvg(a: SuperpositionAnalysis, title: string): Promise<string> {
  const values = a.norms.map((norm, i) => ({ feature: i, norm, superposition: Math.min(1, a.superposition[i] / Math.max(1e-12, a.norms[i] ** 2)) }));
  return render({
    $schema: SCHEMA, title, background: 'white', width: Math.max(120, 18 * values.length), height: 200, data: { values },
    mark: 'bar',
    encoding: {
      x: { field: 'feature', type: 'ordinal' },
      y: { field: 'norm', type: 'quantitative', title: '‖W_i‖' },
      color: { field: 'superposition', type: 'quantitative', scale: { domain: [0, 1], range: ['black', 'gold'] }, title: 'shared (Σ_{j≠i} (Ŵ_i·W_j)² / ‖W_i‖²)' },
    },
  });
}

/** Per instance and feature, the feature dimensionality D_i against 1/(1 − S), with the instance's m/‖W‖_F² as a line. */
export function dimensionalitySvg(runs: SuperpositionAnalysis[], title: string): Promise<string> {
  const points = runs.flatMap((r) => r.featureDimensionality.map((d, i) => ({ density: 1 / (1 - r.sparsity), value: d, feature: i })));
  const line = runs.map((r) => ({ density: 1 / (1 - r.sparsity), value: r.dimsPerFeature }));
  const x = { field: 'density', type: 'quantitative' as const, scale: { type: 'log' as const }, title: '1 / (1 − S)' };
  return render({
    $schema: SCHEMA, title, background: 'white', width: 480, height: 300,
    layer: [
      { data: { values: points }, mark: { type: 'point', filled: true, opacity: 0.6 }, encoding: { x, y: { field: 'value', type: 'quantitative', title: 'dimensions per feature' } } },
      { data: { values: line }, mark: { type: 'line', color: 'black' }, encoding: { x, y: { field: 'value', type: 'quantitative' } } },
    ],
  });
}

/** The n = 2, m = 1 phase diagram: sparsity (as 1/(1 − S)) × relative importance, coloured by phase. */
export function phaseDiagramSvg(cells: PhaseCell[]): Promise<string> {
  const values = cells.map((c) => ({ density: (1 / (1 - c.sparsity)).toPrecision(3), importance: c.relativeImportance.toPrecision(3), phase: c.phase }));
  return render({
    $schema: SCHEMA, title: 'Two features in one dimension', background: 'white', data: { values },
    width: 24 * new Set(values.map((v) => v.density)).size, height: 24 * new Set(values.map((v) => v.importance)).size,
    mark: 'rect',
    encoding: {
      x: { field: 'density', type: 'ordinal', sort: null, title: '1 / (1 − S)' },
      y: { field: 'importance', type: 'ordinal', sort: 'descending', title: 'relative importance of feature 2' },
      color: { field: 'phase', type: 'nominal', scale: { domain: ['first only', 'second only', 'superposition', 'neither'], range: ['#4c78a8', '#f58518', '#54a24b', '#bbbbbb'] } },
    },
  });
}

/** Named shares as bars (Fourier frequencies, irreps). */
export function sharesSvg(shares: { name: string; share: number; key?: boolean }[], opts: { title: string; xLabel: string }): Promise<string> {
  return render({
    $schema: SCHEMA, title: opts.title, background: 'white', width: Math.max(200, 9 * shares.length), height: 220, data: { values: shares },
    mark: 'bar',
    encoding: {
      x: { field: 'name', type: 'ordinal', sort: null, title: opts.xLabel },
      y: { field: 'share', type: 'quantitative', title: 'share of variance' },
      color: { field: 'key', type: 'nominal', title: 'key', scale: { domain: [true, false], range: ['#e45756', '#9ecae9'] } },
    },
  });
}
