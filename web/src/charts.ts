/** Vega-Lite charts for each view, drawn with vega-embed. */
import embed from 'vega-embed';
import type { VisualizationSpec } from 'vega-embed';

export async function draw(el: HTMLElement, spec: VisualizationSpec): Promise<void> {
  // vega-embed makes its element an inline-block as wide as the chart; inside `el` (a block that
  // scrolls) a wide chart scrolls instead of widening the page on small screens.
  const inner = document.createElement('div');
  el.replaceChildren(inner);
  await embed(inner, spec, { actions: { export: true, source: false, compiled: false, editor: false }, renderer: 'svg' });
}

/** A token as a readable label: leading space as '·', newline as '↵', never empty. */
export function show(t: string): string {
  const s = t.replace(/ /g, '·').replace(/\n/g, '↵').replace(/\t/g, '→');
  return s === '' ? '∅' : s;
}

/** Unique column labels (a prompt may repeat a token): "3 ·the". */
export function labels(tokens: string[]): string[] {
  return tokens.map((t, i) => `${i} ${show(t)}`);
}

const axisLabels = { labelAngle: -45, labelOverlap: false as const, labelLimit: 120, labelFont: 'ui-monospace, monospace' };

export function predictionsSpec(preds: { id?: number; token: string; prob: number; logit: number }[]): VisualizationSpec {
  return {
    $schema: 'https://vega.github.io/schema/vega-lite/v6.json',
    width: 'container',
    height: { step: 22 },
    data: { values: preds.map((p, i) => ({ rank: i + 1, token: `${i + 1}. ${show(p.token)}`, id: p.id, prob: p.prob, logit: p.logit, text: p.prob >= 1e-3 ? `${(100 * p.prob).toFixed(1)}%` : p.prob.toExponential(1) })) },
    encoding: {
      y: { field: 'token', type: 'nominal', sort: null, title: null, axis: { labelFont: 'ui-monospace, monospace', labelLimit: 200 } },
      x: { field: 'prob', type: 'quantitative', title: 'probability', axis: { format: '.1~%', tickCount: 6 }, scale: { domainMax: Math.min(1, 1.15 * Math.max(...preds.map((p) => p.prob))) } },
      tooltip: [{ field: 'token' }, { field: 'id', title: 'token id' }, { field: 'prob', format: '.3%' }, { field: 'logit', format: '.3f' }],
    },
    layer: [
      { mark: { type: 'bar', tooltip: true, color: '#1f77b4' } },
      // The value at the end of each bar.
      { mark: { type: 'text', align: 'left', dx: 3, fontSize: 11 }, encoding: { text: { field: 'text' } } },
    ],
  };
}

/** Signed scores on a diverging scale centred on zero, with a legend. */
export function attributionSpec(cols: string[], rows: string[], scores: number[][], range?: string[]): VisualizationSpec {
  const max = Math.max(1e-12, ...scores.flat().map(Math.abs));
  const values = rows.flatMap((r, i) => cols.map((c, j) => ({ row: r, col: c, score: scores[i][j] })));
  return {
    $schema: 'https://vega.github.io/schema/vega-lite/v6.json',
    width: { step: Math.max(28, Math.min(60, 900 / Math.max(1, cols.length))) },
    height: { step: 30 },
    data: { values },
    encoding: {
      x: { field: 'col', type: 'nominal', sort: null, title: null, axis: axisLabels },
      y: { field: 'row', type: 'nominal', sort: null, title: 'target' },
    },
    layer: [
      {
        mark: { type: 'rect', tooltip: true },
        encoding: {
          color: { field: 'score', type: 'quantitative', title: 'attribution', scale: range ? { range, domain: [-max, 0, max] } : { scheme: 'redblue', reverse: true, domain: [-max, max] }, legend: { orient: 'right', gradientLength: 120 } },
          tooltip: [{ field: 'col', title: 'token' }, { field: 'row', title: 'target' }, { field: 'score', format: '.4f' }],
        },
      },
      {
        mark: { type: 'text', fontSize: 10 },
        encoding: {
          text: { field: 'score', type: 'quantitative', format: '.2f' },
          color: { condition: { test: `abs(datum.score) > ${0.6 * max}`, value: 'white' }, value: 'black' },
        },
      },
    ],
  };
}

/** A lens layer name ('3_pre', 'final_post') as TransformerLens calls that residual stream: 'L3 resid_pre', 'L11 resid_post'. */
export function lensLayerLabel(name: string, nLayers: number): string {
  const m = /^(\d+)_(pre|mid|post)$/.exec(name);
  if (m) return `L${m[1]} resid_${m[2]}`;
  if (name === 'final_post') return `L${nLayers - 1} resid_post`;
  return name;
}

/** A probability for a label: a percentage, or scientific notation when below 0.1%. */
export function fmtProb(p: number): string {
  return p >= 1e-3 ? `${(100 * p).toFixed(2)}%` : p.toExponential(2);
}

/** A KL divergence (nats) for a label: three decimals, or scientific notation when below 0.001 (0 stays 0). */
export function fmtKl(kl: number): string {
  return kl === 0 ? '0' : kl >= 1e-3 ? kl.toFixed(3) : kl.toExponential(2);
}

/**
 * The lens grid: top token per cell, coloured by its (or the target's) probability, or with `showKl`
 * coloured and labelled by KL(final layer ‖ this layer) in nats.
 */
export function lensSpec(tokens: string[], layers: string[], cells: { top: { token?: string; label?: string; id: number; prob: number }[]; target?: { prob: number; rank: number }; kl?: number }[][], target: boolean, showKl = false): VisualizationSpec {
  const cols = labels(tokens);
  const nBlocks = layers.length - 1;
  const rows = layers.map((l) => lensLayerLabel(l, nBlocks));
  const name = (t: { token?: string; label?: string; id: number }) => show(t.label ?? t.token ?? String(t.id));
  const values = layers.flatMap((_, i) => cols.map((c, p) => {
    const cell = cells[i][p];
    const top = cell.top[0];
    const prob = target ? cell.target!.prob : top.prob;
    return {
      layer: rows[i], pos: c, top: name(top), prob, probText: fmtProb(prob), kl: cell.kl ?? null, klText: cell.kl === undefined ? null : fmtKl(cell.kl),
      rank: cell.target?.rank ?? null, alts: cell.top.map((t) => `${name(t)} ${fmtProb(t.prob)}`).join(', '),
    };
  }));
  const hasKl = cells[0]?.[0]?.kl !== undefined;
  // KL on a log scale too: early layers sit near 10 nats, the last ones near 1e-3, the final layer at 0 (drawn at the scale's floor).
  const colour = showKl
    ? { field: 'kl', type: 'quantitative', scale: { type: 'symlog', constant: 1e-4, scheme: 'magma', reverse: true, domain: [0, 10], clamp: true }, legend: null }
    : { field: 'prob', type: 'quantitative', scale: { type: 'log', scheme: 'viridis', domain: [1e-6, 1], clamp: true }, legend: null };
  return {
    $schema: 'https://vega.github.io/schema/vega-lite/v6.json',
    width: { step: 64 },
    height: { step: 24 },
    data: { values },
    encoding: {
      x: { field: 'pos', type: 'nominal', sort: null, title: 'position', axis: { ...axisLabels, orient: 'top' } },
      y: { field: 'layer', type: 'nominal', sort: null, title: null, axis: { labelFont: 'ui-monospace, monospace' } },
    },
    layer: [
      {
        mark: { type: 'rect', tooltip: true },
        encoding: {
          // Log scale: a target's probability is often 1e-5 at early layers and 0.3 at the last; linear would show one colour.
          // The legend is drawn outside the chart (always visible while the grid scrolls).
          color: colour as any,
          tooltip: [
            { field: 'layer' }, { field: 'pos', title: 'position' }, { field: 'top', title: 'top token' }, { field: 'probText', title: target ? 'p(target)' : 'p(top)' },
            ...(target ? [{ field: 'rank', title: 'target rank' }] : []), ...(hasKl ? [{ field: 'klText', title: 'KL(final ‖ layer), nats' }] : []), { field: 'alts', title: 'top tokens' },
          ],
        },
      },
      {
        mark: { type: 'text', fontSize: 10, font: 'ui-monospace, monospace', limit: 60 },
        encoding: showKl
          ? { text: { field: 'klText' }, color: { condition: { test: 'datum.kl < 0.02', value: 'black' }, value: 'white' } }
          : { text: { field: 'top' }, color: { condition: { test: 'datum.prob > 0.01', value: 'black' }, value: 'white' } },
      },
    ],
  };
}

/** Patching effects: 1 = clean behaviour restored, 0 = none; diverging around 0. */
/** Held-out (and training) probe accuracy by layer, with the held-out majority class as a dashed rule. */
export function probeAccuracySpec(layers: { hook: string; train: { accuracy: number }; test: { accuracy: number; auroc: number } }[], baseline: number): VisualizationSpec {
  const rows = layers.flatMap((l, i) => [
    { layer: i, hook: l.hook, split: 'held-out', accuracy: l.test.accuracy, auroc: l.test.auroc },
    { layer: i, hook: l.hook, split: 'train', accuracy: l.train.accuracy, auroc: null },
  ]);
  return {
    width: 480, height: 260,
    layer: [
      {
        data: { values: rows }, mark: { type: 'line', point: true },
        encoding: {
          x: { field: 'layer', type: 'quantitative', title: 'layer', axis: { tickMinStep: 1, format: 'd' } },
          y: { field: 'accuracy', type: 'quantitative', scale: { zero: false } },
          color: { field: 'split', type: 'nominal', title: null },
          tooltip: [{ field: 'hook' }, { field: 'split' }, { field: 'accuracy', format: '.3f' }, { field: 'auroc', title: 'AUROC', format: '.3f' }],
        },
      },
      { data: { values: [{ baseline }] }, mark: { type: 'rule', strokeDash: [6, 4] }, encoding: { y: { field: 'baseline', type: 'quantitative' }, tooltip: [{ field: 'baseline', title: 'held-out majority class', format: '.3f' }] } },
    ],
  } as VisualizationSpec;
}

/** Activations on their top two principal components, coloured by label, shaped by split. */
export function probePcaSpec(points: { x: number; y: number; label: number; split: string }[], explained: [number, number], hook: string): VisualizationSpec {
  return {
    width: 420, height: 360, title: hook,
    data: { values: points.map((p) => ({ ...p, label: String(p.label) })) },
    mark: { type: 'point', filled: true, opacity: 0.7 },
    encoding: {
      x: { field: 'x', type: 'quantitative', title: `PC1 (${(100 * explained[0]).toFixed(1)}%)`, scale: { zero: false } },
      y: { field: 'y', type: 'quantitative', title: `PC2 (${(100 * explained[1]).toFixed(1)}%)`, scale: { zero: false } },
      color: { field: 'label', type: 'nominal' },
      shape: { field: 'split', type: 'nominal' },
    },
  } as VisualizationSpec;
}

export function patchingSpec(rows: string[], cols: string[], at: (i: number, j: number) => number): VisualizationSpec {
  const values = rows.flatMap((r, i) => cols.map((c, j) => ({ row: r, col: c, effect: at(i, j) })));
  const max = Math.max(1, ...values.map((v) => Math.abs(v.effect)));
  return {
    $schema: 'https://vega.github.io/schema/vega-lite/v6.json',
    width: { step: Math.max(26, Math.min(56, 900 / Math.max(1, cols.length))) },
    height: { step: rows.length > 16 ? 14 : 26 },
    data: { values },
    encoding: {
      x: { field: 'col', type: 'nominal', sort: null, title: null, axis: axisLabels },
      y: { field: 'row', type: 'nominal', sort: null, title: null },
    },
    layer: [
      {
        mark: { type: 'rect', tooltip: true },
        encoding: {
          color: { field: 'effect', type: 'quantitative', title: 'effect', scale: { scheme: 'redblue', reverse: true, domain: [-max, max] } },
          tooltip: [{ field: 'row' }, { field: 'col' }, { field: 'effect', format: '.3f' }],
        },
      },
      ...(rows.length * cols.length <= 400 ? [{
        mark: { type: 'text' as const, fontSize: 9 },
        encoding: {
          text: { field: 'effect', type: 'quantitative' as const, format: '.2f' },
          color: { condition: { test: `abs(datum.effect) > ${0.6 * max}`, value: 'white' }, value: 'black' },
        },
      }] : []),
    ],
  };
}
