/**
 * A circuit as an SVG graph: one row per layer (attention heads, then the MLP above them), the
 * input at the bottom and the logits at the top; edges coloured by what they feed (query, key,
 * value, MLP input, logits), width by |score| relative to the largest.
 */
import type { Circuit } from './discovery.js';

const esc = (s: string) => s.replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]!);
const COLORS: Record<string, string> = { q: '#d62728', k: '#2ca02c', v: '#1f77b4', mlp: '#9467bd', logits: '#444' };

/** A circuit drawn as SVG, layer by layer. */
export function circuitSvg(c: Circuit, nLayers: number, nHeads: number): string {
  const colW = 90;
  const rowH = 70;
  const width = Math.max(nHeads + 1, 3) * colW + 40;
  const rows = 2 * nLayers + 2; // input, (heads, mlp) per layer, logits
  const height = rows * rowH + 20;
  const y = (row: number) => height - 30 - row * rowH;
  const pos = new Map<string, [number, number]>();
  pos.set('input', [width / 2, y(0)]);
  // Families whose attention output is normalised after the heads are summed have one sender per attention layer, A{l}.
  const layerSenders = c.nodes.some((n) => /^A\d+$/.test(n)) || c.edges.some((e) => /^A\d+$/.test(e.sender));
  for (let l = 0; l < nLayers; l++) {
    for (let h = 0; h < nHeads; h++) pos.set(`L${l}H${h}`, [40 + h * colW + colW / 2, y(1 + 2 * l)]);
    if (layerSenders) pos.set(`A${l}`, [20 + colW / 2, y(1 + 2 * l) - 26]);
    pos.set(`MLP${l}`, [width / 2, y(2 + 2 * l)]);
  }
  pos.set('logits', [width / 2, y(rows - 1)]);
  const max = Math.max(1e-12, ...c.edges.map((e) => Math.abs(e.score)));
  const lines = c.edges.map((e) => {
    const kind = e.receiver === 'logits' ? 'logits' : e.receiver.startsWith('MLP') ? 'mlp' : e.receiver.slice(-1);
    const target = e.receiver === 'logits' ? 'logits' : e.receiver.replace(/\.[qkv]$/, '');
    const [x1, y1] = pos.get(e.sender)!;
    const [x2, y2] = pos.get(target)!;
    // Offset q/k/v endpoints so three edges into one head stay apart.
    const dx = kind === 'q' ? -14 : kind === 'v' ? 14 : 0;
    const w = 1 + 4 * (Math.abs(e.score) / max);
    return `<line x1="${x1}" y1="${y1}" x2="${x2 + dx}" y2="${y2 + 12}" stroke="${COLORS[kind]}" stroke-width="${w.toFixed(2)}" stroke-opacity="0.8"><title>${esc(`${e.sender} -> ${e.receiver}: ${e.score.toPrecision(4)}`)}</title></line>`;
  });
  const inCircuit = new Set(c.nodes);
  const nodes = [...pos].map(([name, [x, yy]]) => {
    const on = inCircuit.has(name);
    return `<g><rect x="${x - 30}" y="${yy - 12}" width="60" height="24" rx="5" fill="${on ? '#fff3c4' : '#f4f4f4'}" stroke="${on ? '#b8860b' : '#ccc'}"/><text x="${x}" y="${yy + 4}" text-anchor="middle" font-size="12" font-family="monospace" fill="${on ? '#000' : '#999'}">${esc(name)}</text></g>`;
  });
  const legend = Object.entries(COLORS).map(([k, col], i) => `<text x="${10 + i * 70}" y="14" font-size="11" font-family="sans-serif" fill="${col}">${k === 'mlp' ? 'MLP in' : k}</text>`);
  return `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}">\n${legend.join('')}\n${lines.join('\n')}\n${nodes.join('\n')}\n</svg>\n`;
}

/** A circuit as a standalone HTML page. */
export function circuitHtml(c: Circuit, nLayers: number, nHeads: number, title: string): string {
  const rows = c.edges.map((e) => `<tr><td>${esc(e.sender)}</td><td>${esc(e.receiver)}</td><td>${e.score.toPrecision(4)}</td></tr>`).join('\n');
  return `<!doctype html>
<html><head><meta charset="utf-8"><title>${esc(title)}</title>
<style>body{font-family:system-ui,sans-serif;margin:1.5em}table{border-collapse:collapse;font-family:ui-monospace,monospace;font-size:12px}td,th{border:1px solid #ddd;padding:2px 8px}</style></head>
<body><h2>${esc(title)}</h2>
<p>${esc(`${c.method.toUpperCase()}, threshold ${c.threshold}: ${c.edges.length} of ${c.totalEdges} edges; metric ${c.metric} clean ${c.clean.toFixed(4)}, corrupted ${c.corrupt.toFixed(4)}, circuit only ${c.circuitMetric.toFixed(4)} (faithfulness ${c.faithfulness.toFixed(3)}), KL(clean || circuit) ${c.circuitKl.toFixed(4)}.`)}</p>
${circuitSvg(c, nLayers, nHeads)}
<table><tr><th>sender</th><th>receiver</th><th>score</th></tr>
${rows}
</table></body></html>
`;
}
