/**
 * Showing an attribution: a terminal heatmap (each token on a background whose colour and
 * strength follow its score, ANSI 24-bit colour) and a self-contained HTML report (no scripts or
 * external files: tokens coloured by score with a legend, one line per target row, the method,
 * its settings and the faithfulness numbers).
 *
 * Colour scale, per row: red for positive, blue for negative, intensity |s| / max|s| over the
 * row (a row of non-negative scores, e.g. saliency or attention, uses the red half only).
 */
import type { AttributionResult } from './result.js';

/** Background colour of score s on a scale of ±max: white to red (positive) or blue (negative). */
export function scoreColor(s: number, max: number): [number, number, number] {
  const x = max > 0 && Number.isFinite(s) ? Math.max(-1, Math.min(1, s / max)) : 0;
  const a = Math.abs(x);
  return x >= 0
    ? [255, Math.round(255 * (1 - 0.75 * a)), Math.round(255 * (1 - 0.75 * a))]
    : [Math.round(255 * (1 - 0.75 * a)), Math.round(255 * (1 - 0.6 * a)), 255];
}

const visible = (s: string) => s.replace(/\n/g, '↵').replace(/\t/g, '⇥');

function rowMax(row: number[]): number {
  return Math.max(0, ...row.filter(Number.isFinite).map(Math.abs));
}

function fmt(x: number): string {
  if (!Number.isFinite(x)) return String(x);
  const a = Math.abs(x);
  return a !== 0 && (a < 1e-3 || a >= 1e4) ? x.toExponential(2) : x.toFixed(4);
}

function describeTarget(r: AttributionResult): string {
  const t = r.target;
  if (t.mode === 'contrastive') return `${JSON.stringify(t.tokenString)} vs foil ${JSON.stringify(t.foilString)} (${t.kind === 'prob-diff' ? 'probability' : 'logit'} difference)`;
  if (t.mode === 'continuation') return `continuation ${JSON.stringify((t.continuationStrings ?? []).join(''))} (${t.kind}, teacher forcing)`;
  return `next token ${JSON.stringify(t.tokenString)}${t.predicted ? ' (the top prediction)' : ''} (${t.kind})`;
}

/** Terminal heatmap; `color: false` prints tokens with their scores in brackets instead. */
export function renderTerminal(r: AttributionResult, opts: { color?: boolean } = {}): string {
  const color = opts.color ?? true;
  const lines: string[] = [];
  lines.push(`model: ${r.model.source}`);
  lines.push(`method: ${r.method} ${JSON.stringify(r.settings)}`);
  lines.push(`target: ${describeTarget(r)}`);
  if (r.chat?.templatePositions.length) lines.push(`chat: only the user's words are attributed; ${r.chat.templatePositions.length} template tokens kept as context`);
  if (r.skippedSpecial?.length) lines.push(`special tokens kept as context, not attributed: ${r.skippedSpecial.map((x) => `${JSON.stringify(x.string)} at ${x.position}`).join(', ')}`);
  r.scores.forEach((row, i) => {
    const max = rowMax(row);
    lines.push('');
    lines.push(`${r.target.rows[i]} = ${fmt(r.target.values[i])}${r.convergenceDelta ? `  (convergence delta ${fmt(r.convergenceDelta[i])})` : ''}`);
    const toks = r.tokenStrings.map((s, k) => {
      if (!color) return `${visible(s)}[${fmt(row[k])}]`;
      const [R, G, B] = scoreColor(row[k], max);
      return `\x1b[48;2;${R};${G};${B}m\x1b[38;2;0;0;0m${visible(s)}\x1b[0m`;
    });
    lines.push(color ? toks.join('') : toks.join(' '));
    if (color) {
      const order = row.map((s, k) => [s, k] as const).sort((a, b) => Math.abs(b[0]) - Math.abs(a[0])).slice(0, 5);
      lines.push(`  largest: ${order.map(([s, k]) => `${JSON.stringify(r.tokenStrings[k])} ${fmt(s)}`).join(', ')}`);
    }
  });
  if (color) lines.push('', `scale per row: \x1b[48;2;64;115;255m  \x1b[0m negative  \x1b[48;2;255;255;255m  \x1b[0m 0  \x1b[48;2;255;64;64m  \x1b[0m positive (strength = |score| / max |score|)`);
  if (r.faithfulness) {
    lines.push('', `faithfulness (masking ${JSON.stringify(r.faithfulness.masking)}):`);
    r.faithfulness.rows.forEach((f, i) => {
      lines.push(`  ${r.target.rows[i]}: AOPC comprehensiveness ${fmt(f.aopcComprehensiveness)} (higher is better), AOPC sufficiency ${fmt(f.aopcSufficiency)} (lower is better), Kendall tau vs leave-one-out ${f.kendallTauLoo === null ? 'n/a' : fmt(f.kendallTauLoo)}`);
      // Results saved before deletion / insertion curves existed have none.
      if (f.deletionCurve) lines.push(`    deletion AUC ${normFmt(f.deletionAucNormalized)} (lower is better), insertion AUC ${normFmt(f.insertionAucNormalized)} (higher is better); normalised so f(x) = 1, fully masked = 0`);
    });
  }
  return lines.join('\n');
}

function normFmt(x: number | null | undefined): string {
  return x === null || x === undefined ? 'n/a' : fmt(x);
}

function esc(s: string): string {
  return s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');
}

/** A self-contained HTML page. */
export function renderHtml(r: AttributionResult): string {
  const rows = r.scores.map((row, i) => {
    const max = rowMax(row);
    const toks = r.tokenStrings.map((s, k) => {
      const [R, G, B] = scoreColor(row[k], max);
      return `<span class="tok" style="background:rgb(${R},${G},${B})" title="${esc(`${JSON.stringify(s)} (token ${r.tokens[k]}, position ${k}): ${fmt(row[k])}`)}">${esc(visible(s)).replace(/ /g, '&nbsp;')}</span>`;
    }).join('');
    const delta = r.convergenceDelta ? ` · convergence delta ${fmt(r.convergenceDelta[i])}` : '';
    return `<section class="row"><h3>${esc(r.target.rows[i])} = ${fmt(r.target.values[i])}${delta}</h3><div class="toks">${toks}</div>
<div class="legend"><span>${fmt(-max)}</span><span class="bar"></span><span>${fmt(max)}</span></div></section>`;
  }).join('\n');
  const faith = r.faithfulness ? `<h2>Faithfulness</h2><p>Masking: ${esc(JSON.stringify(r.faithfulness.masking))}. Comprehensiveness f(x) − f(x∖r<sub>k</sub>) (higher is better), sufficiency f(x) − f(r<sub>k</sub>) (lower is better), averaged over k = ${esc(r.faithfulness.rows[0]?.k.join(', ') ?? '')} top tokens; Kendall τ<sub>b</sub> against leave-one-out; deletion (lower is better) and insertion (higher is better) AUC: tokens masked, or unmasked from the fully masked prompt, in decreasing score order, the area normalised so that f(x) is 1 and the fully masked prompt 0.</p>
<table><tr><th>target</th><th>AOPC comprehensiveness</th><th>AOPC sufficiency</th><th>Kendall τ (LOO)</th><th>deletion AUC</th><th>insertion AUC</th></tr>
${r.faithfulness.rows.map((f, i) => `<tr><td>${esc(r.target.rows[i])}</td><td>${fmt(f.aopcComprehensiveness)}</td><td>${fmt(f.aopcSufficiency)}</td><td>${f.kendallTauLoo === null ? 'n/a' : fmt(f.kendallTauLoo)}</td><td>${normFmt(f.deletionAucNormalized)}</td><td>${normFmt(f.insertionAucNormalized)}</td></tr>`).join('\n')}</table>` : '';
  return `<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>Lantern attribution: ${esc(r.method)}</title>
<style>
body{font-family:system-ui,sans-serif;margin:2em;max-width:70em;color:#222}
.toks{font-family:ui-monospace,monospace;font-size:15px;line-height:2;white-space:normal}
.tok{padding:2px 1px;border-radius:3px;margin:0 1px;border:1px solid #ddd}
.legend{display:flex;align-items:center;gap:.5em;font-size:12px;color:#555;margin-top:.3em}
.bar{display:inline-block;width:16em;height:.9em;border:1px solid #ccc;background:linear-gradient(to right,rgb(64,102,255),rgb(255,255,255),rgb(255,64,64))}
table{border-collapse:collapse}td,th{border:1px solid #ccc;padding:.3em .6em;text-align:left}
code{background:#f4f4f4;padding:0 .2em}
</style></head><body>
<h1>Attribution: ${esc(r.method)}</h1>
<p>Model <code>${esc(r.model.source)}</code> (weights sha256 <code>${esc(r.model.weightsSha256.slice(0, 16))}…</code>) · target: ${esc(describeTarget(r))} · seed ${r.seed}</p>
<p>Settings: <code>${esc(JSON.stringify(r.settings))}</code></p>
<p>Red: the token supports the target; blue: it works against it; strength: |score| / max |score| in its row. Hover a token for its score.</p>
${rows}
${faith}
</body></html>
`;
}
