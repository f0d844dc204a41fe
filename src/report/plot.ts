/**
 * Static charts for reports and model cards: a Vega-Lite spec rendered to SVG by Vega (no
 * browser, no canvas), then to PNG by resvg.
 */
import type { TopLevelSpec } from 'vega-lite';

/**
 * Renders a Vega-Lite spec to SVG. Vega and Vega-Lite are imported on first use: loaded at startup
 * they add ~9 MB to the heap of every CLI process, including long-running workers that never draw
 * a chart, whose full garbage collections then take longer.
 */
async function renderSvg(spec: TopLevelSpec): Promise<string> {
  const [vega, vegaLite] = await Promise.all([import('vega'), import('vega-lite')]);
  const view = new vega.View(vega.parse(vegaLite.compile(spec).spec), { renderer: 'none' });
  return view.toSVG();
}

export interface Series {
  name: string;
  points: { x: number; y: number }[];
  /** Draw points (for sparse series such as held-out evaluations). */
  markers?: boolean;
}

export interface LineChartOptions {
  title: string;
  xLabel: string;
  yLabel: string;
  width?: number;
  height?: number;
  /** Horizontal reference lines, e.g. a baseline. */
  rules?: { name: string; y: number }[];
  yScale?: 'linear' | 'log';
}

export async function lineChartSvg(series: Series[], opts: LineChartOptions): Promise<string> {
  const rows = series.flatMap((s) => s.points.map((p) => ({ series: s.name, x: p.x, y: p.y })));
  const ruleRows = (opts.rules ?? []).map((r) => ({ series: r.name, y: r.y }));
  const y = { field: 'y', type: 'quantitative', title: opts.yLabel, scale: { type: opts.yScale ?? 'linear', zero: false } } as const;
  const color = { field: 'series', type: 'nominal', title: null, legend: { orient: 'top-right', labelLimit: 0 } } as const;
  const spec: TopLevelSpec = {
    $schema: 'https://vega.github.io/schema/vega-lite/v6.json',
    title: opts.title,
    width: opts.width ?? 640,
    height: opts.height ?? 360,
    background: 'white',
    layer: [
      ...series.map((s) => ({
        data: { values: rows.filter((r) => r.series === s.name) },
        mark: { type: 'line' as const, point: s.markers ?? false, strokeWidth: 1.5 },
        encoding: { x: { field: 'x', type: 'quantitative' as const, title: opts.xLabel }, y, color },
      })),
      ...(ruleRows.length
        ? [{ data: { values: ruleRows }, mark: { type: 'rule' as const, strokeDash: [6, 4] }, encoding: { y, color } }]
        : []),
    ],
  };
  return renderSvg(spec);
}

export async function lineChartPng(series: Series[], opts: LineChartOptions): Promise<Buffer> {
  const svg = await lineChartSvg(series, opts);
  const { Resvg } = await import('@resvg/resvg-js');
  return new Resvg(svg, { fitTo: { mode: 'zoom', value: 2 }, font: { loadSystemFonts: true } }).render().asPng();
}

export interface ScatterPoint { x: number; y: number; group: string; shape?: string }

/** Points coloured by group (e.g. a label) and shaped by another (e.g. train/test). */
export async function scatterChartSvg(points: ScatterPoint[], opts: { title: string; xLabel: string; yLabel: string; width?: number; height?: number }): Promise<string> {
  const spec: TopLevelSpec = {
    $schema: 'https://vega.github.io/schema/vega-lite/v6.json',
    title: opts.title,
    width: opts.width ?? 480,
    height: opts.height ?? 400,
    background: 'white',
    data: { values: points },
    mark: { type: 'point', filled: true, opacity: 0.7, size: 30 },
    encoding: {
      x: { field: 'x', type: 'quantitative', title: opts.xLabel, scale: { zero: false } },
      y: { field: 'y', type: 'quantitative', title: opts.yLabel, scale: { zero: false } },
      color: { field: 'group', type: 'nominal', title: null, legend: { orient: 'top-right' } },
      ...(points.some((p) => p.shape) ? { shape: { field: 'shape', type: 'nominal' as const, title: null } } : {}),
    },
  };
  return renderSvg(spec);
}
