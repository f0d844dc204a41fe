/**
 * DAS over many locations (the Boundless DAS paper's layer × position search): one alignment per
 * (hook, position), summarised as a heatmap of held-out IIA; and saving a learned subspace.
 */
import { LanternError } from '../../errors.js';
import type { HookedTransformer } from '../../models/hooked.js';
import { writeSafetensors, readSafetensorsHeader, readFloat32 } from '../../models/safetensors.js';
import { das, DasOptions, DasResult } from './das.js';
import type { Subspace } from './interchange.js';

/** Options of {@link dasSearch}: those of {@link das} without a location, and the locations to try. */
export interface DasSearchOptions extends Omit<DasOptions, 'hook' | 'position' | 'head' | 'onProgress'> {
  /** Hooks tried (rows of the heatmap), e.g. every layer's hook_resid_pre. */
  hooks: string[];
  /** Positions tried (columns), negative from the end. */
  positions: number[];
  /** Head, for per-head hooks. */
  head?: number;
  /** Called after each location with its result. */
  onProgress?: (done: number, total: number, last: DasResult) => void;
}

/** Held-out IIA by hook × position, and the best alignment. */
export interface DasSearchResult {
  method: 'das-search';
  variable: string;
  hooks: string[];
  positions: number[];
  /** iia[i][j]: hook i, position j. */
  iia: number[][];
  /** Dimensions interchanged at each location (Boundless: learned). */
  k: number[][];
  best: DasResult;
  seed: number;
}

/** Runs DAS at every hook × position and tabulates held-out IIA. */
export async function dasSearch(model: HookedTransformer, opts: DasSearchOptions): Promise<DasSearchResult> {
  if (!Array.isArray(opts.hooks) || opts.hooks.length === 0) throw new LanternError('DAS search: give at least one hook');
  if (!Array.isArray(opts.positions) || opts.positions.length === 0) throw new LanternError('DAS search: give at least one position');
  const iia: number[][] = [];
  const k: number[][] = [];
  let best: DasResult | undefined;
  let done = 0;
  for (const hook of opts.hooks) {
    const row: number[] = [];
    const krow: number[] = [];
    for (const position of opts.positions) {
      const r = await das(model, { ...opts, hook, position, head: opts.head, onProgress: undefined });
      row.push(r.iia);
      krow.push(r.k);
      if (!best || r.iia > best.iia) best = r;
      opts.onProgress?.(++done, opts.hooks.length * opts.positions.length, r);
    }
    iia.push(row);
    k.push(krow);
  }
  return { method: 'das-search', variable: opts.variable, hooks: opts.hooks, positions: opts.positions, iia, k, best: best!, seed: opts.seed ?? 0 };
}

/**
 * Saves a learned subspace as safetensors: `basis` [k, dim] (orthonormal rows, usable as probe or
 * steering directions), with the location, variable and IIA in the metadata.
 */
export function saveSubspace(file: string, r: DasResult): void {
  writeSafetensors(file, { basis: { dtype: 'F32', shape: [r.subspace.k, r.subspace.dim], data: Float32Array.from(r.subspace.basis) } }, {
    format: 'lantern-das-subspace',
    method: r.method,
    variable: r.variable,
    hook: r.location.hook,
    position: String(r.location.position),
    ...(r.location.head === undefined ? {} : { head: String(r.location.head) }),
    iia: String(r.iia),
    seed: String(r.seed),
  });
}

/**
 * Reads a subspace from safetensors: `tensor` (default `basis`, as {@link saveSubspace} writes) of
 * shape [k, dim] (rows), or [dim] (one direction, e.g. a probe's or an SAE feature's).
 */
export function loadSubspace(file: string, tensor = 'basis'): { subspace: Subspace; metadata: Record<string, string> } {
  const header = readSafetensorsHeader(file);
  const entry = header.tensors.get(tensor);
  if (!entry) throw new LanternError(`${file} has no tensor '${tensor}'; it has ${[...header.tensors.keys()].join(', ') || 'none'}`);
  if (entry.shape.length !== 1 && entry.shape.length !== 2) throw new LanternError(`${file}: '${tensor}' has shape [${entry.shape}]; a subspace is [k, dim] or one direction [dim]`);
  const [k, dim] = entry.shape.length === 2 ? entry.shape : [1, entry.shape[0]];
  return { subspace: { basis: readFloat32(header, tensor), k, dim }, metadata: header.metadata };
}

const escape = (s: string) => s.replace(/[&<>"]/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;' })[c]!);

/** An SVG heatmap of IIA (0 white → 1 dark blue), hooks as rows and positions as columns, each cell labelled. */
export function iiaHeatmapSvg(r: Pick<DasSearchResult, 'hooks' | 'positions' | 'iia' | 'variable'>, opts: { positionLabels?: string[] } = {}): string {
  const cell = 44;
  const left = Math.max(...r.hooks.map((h) => h.length)) * 7 + 16;
  const top = 48;
  const width = left + cell * r.positions.length + 16;
  const height = top + cell * r.hooks.length + 40;
  const labels = opts.positionLabels ?? r.positions.map(String);
  const parts = [`<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" font-family="sans-serif" font-size="12">`,
    `<text x="${left}" y="18" font-size="14">IIA of variable ${escape(r.variable)} by location</text>`];
  labels.forEach((l, j) => parts.push(`<text x="${left + j * cell + cell / 2}" y="${top - 8}" text-anchor="middle">${escape(l)}</text>`));
  r.hooks.forEach((h, i) => {
    parts.push(`<text x="${left - 8}" y="${top + i * cell + cell / 2 + 4}" text-anchor="end">${escape(h)}</text>`);
    r.iia[i].forEach((v, j) => {
      const shade = Math.round(255 * (1 - v));
      parts.push(`<rect x="${left + j * cell}" y="${top + i * cell}" width="${cell - 2}" height="${cell - 2}" fill="rgb(${shade},${Math.round(255 - 155 * v)},255)"><title>${escape(h)} @ ${escape(labels[j])}: IIA ${v.toFixed(3)}</title></rect>`);
      parts.push(`<text x="${left + j * cell + cell / 2 - 1}" y="${top + i * cell + cell / 2 + 4}" text-anchor="middle" fill="${v > 0.6 ? 'white' : 'black'}">${v.toFixed(2)}</text>`);
    });
  });
  parts.push(`<text x="${left}" y="${height - 14}">positions (negative: from the end)</text>`, '</svg>');
  return parts.join('\n');
}

/** A standalone HTML page with the heatmap and the table of numbers. */
export function iiaHeatmapHtml(r: DasSearchResult): string {
  const rows = r.hooks.map((h, i) => `<tr><th>${escape(h)}</th>${r.iia[i].map((v, j) => `<td>${v.toFixed(3)} (k=${r.k[i][j]})</td>`).join('')}</tr>`).join('\n');
  return `<!doctype html><html><head><meta charset="utf-8"><title>DAS: ${escape(r.variable)}</title>
<style>body{font-family:sans-serif;margin:2em}td,th{padding:4px 8px;border:1px solid #ccc}</style></head><body>
<h1>Where is ${escape(r.variable)}? Held-out IIA by location</h1>
${iiaHeatmapSvg(r)}
<table><tr><th>hook \\ position</th>${r.positions.map((p) => `<th>${p}</th>`).join('')}</tr>
${rows}</table>
<p>Best: ${escape(r.best.location.hook)} at position ${r.best.location.position}, IIA ${r.best.iia.toFixed(3)} with ${r.best.k} dimensions (seed ${r.seed}).</p>
</body></html>
`;
}
