import { Command } from 'commander';
import { logitLens, LogitLensResult } from '../../methods/lens/logit-lens.js';
import { loadTunedLens, tunedLensPath } from '../../methods/lens/tuned-lens.js';
import { LENS } from '../../methods/lens/options.js';
import { withDefaults } from '../../methods/options.js';
import { addCliOptions } from './method-options.js';
import { addOutputOptions, assertOutputsWritable, emitOutputs } from './output.js';
import { hubRecord, modelOption, revisionOption, loadModelFromFlags, modelSource } from './model-option.js';
import { chatFromFlags, chatOption, chatTemplateFlag, chatSettings, checkChatFlags, systemOption } from './chat-option.js';

/** ANSI colour unless FORCE_COLOR=0 / NO_COLOR, or stdout is not a terminal (FORCE_COLOR=1 forces it). */
export function useColor(): boolean {
  if (process.env.NO_COLOR || process.env.FORCE_COLOR === '0') return false;
  if (process.env.FORCE_COLOR) return true;
  return !!process.stdout.isTTY;
}

/** A printable, fixed-width token: leading spaces as '·', newlines as '↵'. */
export function cellText(s: string, width: number): string {
  const t = s.replace(/ /g, '·').replace(/\n/g, '↵').replace(/\t/g, '→').replace(/[\x00-\x1f\x7f]/g, '?');
  return (t.length > width ? t.slice(0, width - 1) + '…' : t).padEnd(width);
}

/** Sequential colour ramp, 0 → dark, 1 → bright (xterm-256 background, readable foreground). */
export function ansiProb(text: string, p: number): string {
  const v = Math.max(0, Math.min(1, p));
  const shades = [17, 18, 19, 20, 26, 32, 38, 44, 79, 114, 149, 184, 220];
  const bg = shades[Math.round(v * (shades.length - 1))];
  return `\x1b[48;5;${bg}m\x1b[38;5;${v > 0.6 ? 16 : 231}m${text}\x1b[0m`;
}

/** Diverging colour ramp for signed effects in about [-1, 1]: blue (negative) - grey - red (positive). */
export function ansiSigned(text: string, x: number): string {
  const v = Math.max(-1, Math.min(1, x));
  const pos = [238, 95, 131, 167, 203, 196];
  const neg = [238, 60, 61, 62, 63, 21];
  const ramp = v >= 0 ? pos : neg;
  const bg = ramp[Math.round(Math.abs(v) * (ramp.length - 1))];
  return `\x1b[48;5;${bg}m\x1b[38;5;231m${text}\x1b[0m`;
}

export function escapeHtml(s: string): string {
  return s.replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]!);
}

export function htmlPage(title: string, body: string): string {
  return `<!doctype html>
<html><head><meta charset="utf-8"><title>${escapeHtml(title)}</title>
<style>body{font-family:system-ui,sans-serif;margin:1.5em}table{border-collapse:collapse;font-family:ui-monospace,monospace;font-size:12px}
td,th{border:1px solid #ddd;padding:3px 6px;text-align:center;white-space:pre}th{background:#f4f4f4}</style></head>
<body><h2>${escapeHtml(title)}</h2>
${body}
</body></html>
`;
}

/** rgb() for a probability (white → blue). */
export function cssProb(p: number): string {
  const v = Math.max(0, Math.min(1, p));
  return `rgb(${Math.round(255 - 215 * v)},${Math.round(255 - 155 * v)},255)`;
}

/** rgb() for a signed effect (blue ← white → red). */
export function cssSigned(x: number): string {
  const v = Math.max(-1, Math.min(1, x));
  const a = Math.round(255 * (1 - Math.abs(v)));
  return v >= 0 ? `rgb(255,${a},${a})` : `rgb(${a},${a},255)`;
}

function lensHtml(r: LogitLensResult, source: string): string {
  const toks = r.tokenStrings ?? r.tokens.map(String);
  const head = `<tr><th>layer \\ pos</th>${toks.map((t, p) => `<th>${p}<br>${escapeHtml(JSON.stringify(t))}</th>`).join('')}</tr>`;
  const rows = r.layers.map((label, l) => `<tr><th>${escapeHtml(label)}</th>${r.cells[l].map((c) => {
    const top = c.top[0];
    const tip = c.top.map((t) => `${JSON.stringify(t.token ?? t.id)} ${(100 * t.prob).toFixed(2)}%`).join('\n') +
      (c.target ? `\ntarget ${JSON.stringify(r.settings.target)}: ${(100 * c.target.prob).toFixed(2)}%, rank ${c.target.rank}` : '');
    const shown = c.target ? c.target.prob : top ? top.prob : 0;
    return `<td title="${escapeHtml(tip)}" style="background:${cssProb(shown)}">${top ? escapeHtml(top.token ?? String(top.id)) : ''}${c.target ? `<br>${(100 * c.target.prob).toFixed(1)}%` : ''}</td>`;
  }).join('')}</tr>`).join('\n');
  const note = r.settings.target !== undefined ? 'Cell: the top token; colour and second line: the target\'s probability.' : 'Cell: the top token, coloured by its probability.';
  return htmlPage(`Logit lens — ${source}`, `<p>${escapeHtml(note)} Hover for the top ${r.settings.topK}.</p>\n<table>\n${head}\n${rows}\n</table>`);
}

export function lensCommand(program: Command): void {
  const cmd = program
    .command('lens')
    .description("Logit lens: decode the residual stream at every layer and position through the model's final LayerNorm and unembedding.")
    .addOption(modelOption('Hugging Face model folder or Hub id (default: the bundled model)')).addOption(revisionOption())
    .addOption(chatOption()).addOption(systemOption()).addOption(chatTemplateFlag());
  addCliOptions(cmd, LENS);
  addOutputOptions(cmd, 'write an HTML heatmap')
    .addHelpText('after', '\nExample:\n  lantern lens --text "The capital of France is" --target " Paris" --html lens.html')
    .action(async (given) => {
      const opts = withDefaults(LENS, given);
      const source = modelSource(opts);
      checkChatFlags(opts);
      assertOutputsWritable(opts);
      const model = await loadModelFromFlags(opts);
      const tunedFile = opts.tuned === undefined ? undefined : opts.tuned === true ? tunedLensPath(source) : String(opts.tuned);
      const tuned = tunedFile ? loadTunedLens(tunedFile, model) : undefined;
      const chat = opts.chat ? chatFromFlags(model, opts, opts.text) : undefined;
      const r = await logitLens(model, chat ? chat.tokens : opts.text, { topK: opts.topK, target: opts.target, tuned });
      const saved = {
        model: source, ...hubRecord(model), method: tuned ? 'tuned-lens' : 'logit-lens',
        settings: { topK: opts.topK, ...(opts.target !== undefined ? { target: opts.target, targetId: r.settings.target } : {}), ...(tunedFile ? { tunedLens: tunedFile } : {}), ...chatSettings(opts, chat) },
        text: opts.text, tokens: r.tokens, tokenStrings: r.tokenStrings, layers: r.layers, cells: r.cells,
      };
      emitOutputs(opts, saved, { html: () => lensHtml(r, source) }, () => printLens(r, source, opts.target, !!tuned));
    });
}

function printLens(r: LogitLensResult, source: string, target?: string, tuned = false): void {
  const color = useColor();
  const W = 8;
  const toks = r.tokenStrings ?? r.tokens.map(String);
  const labelW = Math.max(...r.layers.map((l) => l.length), 5);
  console.log(`model: ${source}`);
  console.log(`${tuned ? 'tuned' : 'logit'} lens: top token at each layer (rows) and position (columns)${color ? ', coloured by its probability' : ''}`);
  const grid = (cell: (l: number, p: number) => [string, number]) => {
    console.log(`${'pos'.padEnd(labelW)} ${toks.map((_, p) => String(p).padEnd(W)).join(' ')}`);
    console.log(`${'token'.padEnd(labelW)} ${toks.map((t) => cellText(t, W)).join(' ')}`);
    r.layers.forEach((label, l) => {
      const cells = toks.map((_, p) => {
        const [text, v] = cell(l, p);
        return color ? ansiProb(text, v) : text;
      });
      console.log(`${label.padEnd(labelW)} ${cells.join(' ')}`);
    });
  };
  grid((l, p) => {
    const top = r.cells[l][p].top[0];
    return [cellText(top.token ?? String(top.id), W), top.prob];
  });
  if (target !== undefined) {
    // Rank on its own line of cells: "prob%(rank)" does not fit a token-wide column.
    console.log(`\ntarget ${JSON.stringify(target)}: probability at each layer and position`);
    grid((l, p) => {
      const t = r.cells[l][p].target!;
      return [(t.prob >= 1e-3 ? `${(100 * t.prob).toFixed(1)}%` : t.prob.toExponential(1)).padEnd(W), t.prob];
    });
    console.log(`\ntarget ${JSON.stringify(target)}: rank (0 = top) at each layer and position`);
    grid((l, p) => {
      const t = r.cells[l][p].target!;
      return [String(t.rank).padEnd(W), t.prob];
    });
  }
}
