import { Command } from 'commander';
import { activationPatching, PatchingResult } from '../../methods/patching/activation.js';
import { attributionPatching, pearson } from '../../methods/patching/attribution.js';
import { PATCHING, PatchingMethod } from '../../methods/patching/options.js';
import { checkOptionsApply, withDefaults } from '../../methods/options.js';
import { addCliOptions } from './method-options.js';
import { ansiSigned, cellText, cssSigned, escapeHtml, htmlPage, useColor } from './lens.js';
import { addOutputOptions, assertOutputsWritable, emitOutputs } from './output.js';
import { hubRecord, modelOption, revisionOption, loadModelFromFlags, modelSource } from './model-option.js';
import { chatOption, chatTemplateFlag, checkChatFlags, promptInput, systemOption } from './chat-option.js';

/** The result as rows × columns for display: rows are layers (or layer-head pairs), columns positions or heads. */
type Grid = Pick<PatchingResult, 'axes' | 'shape' | 'effects'>;

function table(r: Grid, tokens: string[]): { rows: string[]; cols: string[]; at: (i: number, j: number) => number } {
  const [L, A, P] = r.shape;
  if (r.axes.length === 3) {
    // layer × head × pos: one row per head.
    return {
      rows: Array.from({ length: L * A }, (_, i) => `L${Math.floor(i / A)}H${i % A}`),
      cols: tokens.map((t, p) => `${p}:${t}`),
      at: (i, j) => r.effects[i * P + j],
    };
  }
  const cols = r.axes[1] === 'head' ? Array.from({ length: A }, (_, h) => `H${h}`) : tokens.map((t, p) => `${p}:${t}`);
  return { rows: Array.from({ length: L }, (_, l) => `L${l}`), cols, at: (i, j) => r.effects[i * A + j] };
}

function patchHtml(r: Grid, tokens: string[], title: string, caption: string): string {
  const t = table(r, tokens);
  const head = `<tr><th></th>${t.cols.map((c) => `<th>${escapeHtml(c)}</th>`).join('')}</tr>`;
  const rows = t.rows.map((row, i) => `<tr><th>${escapeHtml(row)}</th>${t.cols.map((_, j) => {
    const v = t.at(i, j);
    return `<td style="background:${cssSigned(v)}">${v.toFixed(2)}</td>`;
  }).join('')}</tr>`).join('\n');
  return htmlPage(title, `<p>${escapeHtml(caption)}</p>\n<table>\n${head}\n${rows}\n</table>`);
}

export function patchCommand(program: Command): void {
  const cmd = program
    .command('patch')
    .description('Activation patching: run the corrupted prompt with one activation from the clean run, for every layer and position / head; 1 = clean behaviour restored, 0 = corrupted. --method attribution: its linear approximation from one forward and backward.')
    .addOption(modelOption('Hugging Face model folder or Hub id (default: the bundled model)')).addOption(revisionOption())
    .addOption(chatOption()).addOption(systemOption()).addOption(chatTemplateFlag());
  // Every method option, from the one declaration the Workbench API is built from too.
  addCliOptions(cmd, PATCHING);
  addOutputOptions(cmd, 'write an HTML heatmap')
    .addHelpText('after', '\nSweeps:\n  resid    layer x position at blocks.{l}.hook_resid_pre\n  attn     layer x position at blocks.{l}.hook_attn_out\n  mlp      layer x position at blocks.{l}.hook_mlp_out\n  heads    layer x head at blocks.{l}.attn.hook_z (all positions; --by-position: x position)\n  pattern  layer x head at blocks.{l}.attn.hook_pattern (--by-position: x query position)\n\nExample:\n  lantern patch --clean "When Mary and John went to the store, John gave a drink to" \\\n    --corrupt "When Mary and John went to the store, Mary gave a drink to" --answer " Mary" --wrong " John" --sweep heads')
    .action(async (given) => {
      checkOptionsApply(PATCHING.options, (k) => given[k], 'cli');
      const opts = withDefaults(PATCHING, given);
      const source = modelSource(opts);
      checkChatFlags(opts);
      assertOutputsWritable(opts);
      const model = await loadModelFromFlags(opts);
      const common = {
        clean: promptInput(model, opts, opts.clean), corrupt: promptInput(model, opts, opts.corrupt), answer: opts.answer, wrong: opts.wrong, metric: opts.metric,
        sweep: opts.sweep, byPosition: !!opts.byPosition, pos: opts.pos,
      };
      const method: PatchingMethod = opts.method;
      const act = method === 'attribution' ? undefined : await activationPatching(model, { ...common, batchSize: opts.batchSize });
      const attr = method === 'activation' ? undefined : await attributionPatching(model, { ...common, igSteps: opts.igSteps });
      // The displayed grids, in order; `r` (the first) carries the shared fields.
      const grids: { name: string; r: Grid }[] = [
        ...(act ? [{ name: 'activation patching', r: act }] : []),
        ...(attr ? [{ name: 'attribution patching', r: attr }] : []),
      ];
      const r = (act ?? attr)!;
      // Undefined (not NaN) when a grid is constant: a correlation of nothing is no number to print.
      const r0 = act && attr ? pearson(act.effects, attr.effects) : undefined;
      const corr = r0 !== undefined && Number.isFinite(r0) ? r0 : undefined;
      const tokens = model.tokenStrings(r.corruptTokens);
      const settings = {
        clean: opts.clean, corrupt: opts.corrupt, answer: opts.answer, wrong: opts.wrong ?? null, metric: r.metric, sweep: r.sweep,
        byPosition: r.settings.byPosition, pos: r.pos, ...(act ? { batchSize: act.settings.batchSize } : {}), ...(attr && opts.igSteps ? { igSteps: opts.igSteps } : {}),
        ...(opts.chat ? { chat: { system: opts.system ?? null, template: opts.chatTemplate ?? 'default' } } : {}),
      };
      const { method: _m, settings: _s, ...rest } = r;
      const strings = { cleanTokenStrings: model.tokenStrings(r.cleanTokens), corruptTokenStrings: tokens };
      const saved = act && attr
        ? { model: source, ...hubRecord(model), method: 'both', settings: { ...settings, method }, pearson: corr ?? null, activation: { ...act, settings: undefined }, attribution: { ...attr, settings: undefined }, ...strings }
        : { model: source, ...hubRecord(model), method: r.method, settings, ...rest, ...strings };
      const metricName = r.metric === 'logit-diff' ? `logit(${JSON.stringify(opts.answer)}) - logit(${JSON.stringify(opts.wrong)})` : `log p(${JSON.stringify(opts.answer)})`;
      const caption = `${r.sweep} patching (${r.hook}), metric ${metricName} at position ${r.pos}: clean ${r.clean.toFixed(4)}, corrupted ${r.corrupt.toFixed(4)}; cells: (${method === 'activation' ? 'patched' : method === 'attribution' ? 'predicted' : 'patched or predicted'} - corrupted) / (clean - corrupted)${method === 'activation' ? '' : ', predicted = corrupted + (a_clean - a_corrupted) · d metric / d a'}.`;
      const html = () => grids.length === 1
        ? patchHtml(grids[0].r, tokens, `${grids[0].name[0].toUpperCase()}${grids[0].name.slice(1)} — ${source}`, caption)
        : patchHtml(attr!, tokens, `Attribution patching — ${source}`, `${caption} Pearson r with activation patching: ${corr === undefined ? 'undefined (a constant grid)' : corr.toFixed(4)}.`);
      emitOutputs(opts, saved, { html }, () => {
        console.log(`model: ${source}`);
        console.log(caption);
        const color = useColor();
        for (const grid of grids) {
          if (grids.length > 1) console.log(`\n${grid.name}:`);
          const t = table(grid.r, tokens);
          const W = 8;
          const labelW = Math.max(...t.rows.map((x) => x.length), 3);
          console.log(`${''.padEnd(labelW)} ${t.cols.map((c) => cellText(c, W)).join(' ')}`);
          t.rows.forEach((row, i) => {
            const cells = t.cols.map((_, j) => {
              const v = t.at(i, j);
              const text = (v >= 0 ? '+' : '') + v.toFixed(2);
              return color ? ansiSigned(text.padStart(W), v) : text.padStart(W);
            });
            console.log(`${row.padEnd(labelW)} ${cells.join(' ')}`);
          });
        }
        if (corr !== undefined) console.log(`\nPearson r (activation vs attribution): ${corr.toFixed(4)}`);
      });
    });
}
