import { Command } from 'commander';
import { causalTrace, TraceKind } from '../../methods/patching/causal-tracing.js';
import { TRACING } from '../../methods/patching/options.js';
import { withDefaults } from '../../methods/options.js';
import { addCliOptions } from './method-options.js';
import { ansiSigned, cellText, cssSigned, escapeHtml, htmlPage, useColor } from './lens.js';
import { addOutputOptions, assertOutputsWritable, emitOutputs } from './output.js';
import { hubRecord, modelOption, revisionOption, loadModelFromFlags, modelSource } from './model-option.js';
import { chatFromFlags, chatOption, chatTemplateFlag, chatSettings, checkChatFlags, systemOption, userTextPositions } from './chat-option.js';

export function traceCommand(program: Command): void {
  const cmd = program
    .command('trace')
    .description('Causal tracing (ROME): noise the subject\'s token embeddings, restore one clean state (residual, MLP or attention output) at a time, and show how much of p(answer) comes back, per layer and position.')
    .addOption(modelOption('Hugging Face model folder or Hub id (default: the bundled model)')).addOption(revisionOption())
    .addOption(chatOption()).addOption(systemOption()).addOption(chatTemplateFlag());
  addCliOptions(cmd, TRACING);
  addOutputOptions(cmd, 'write HTML heatmaps')
    .addHelpText('after', '\nExample:\n  lantern trace --text "The Eiffel Tower is located in the city of" --subject "The Eiffel Tower" --answer " Paris"')
    .action(async (given) => {
      const opts = withDefaults(TRACING, given);
      const source = modelSource(opts);
      checkChatFlags(opts);
      assertOutputsWritable(opts);
      const kinds = [...opts.kinds] as TraceKind[];
      const model = await loadModelFromFlags(opts);
      const chat = opts.chat ? chatFromFlags(model, opts, opts.text) : undefined;
      const r = await causalTrace(model, {
        prompt: chat ? chat.tokens : opts.text, subject: chat ? userTextPositions(model, chat, opts.subject, '--subject') : opts.subject, answer: opts.answer, noise: opts.noise, samples: opts.samples, seed: opts.seed, window: opts.window, kinds,
        progress: process.stderr.isTTY ? (d, t) => process.stderr.write(`\rtracing ${d}/${t}${d === t ? '\n' : ''}`) : undefined,
      });
      const tokens = model.tokenStrings(r.tokens);
      const saved = { model: source, ...hubRecord(model), ...r, text: opts.text, subject: opts.subject, tokenStrings: tokens, ...chatSettings(opts, chat) };
      const caption = `p(${JSON.stringify(opts.answer)}): clean ${r.clean.toFixed(4)}, subject noised ${r.corrupt.toFixed(4)} (std ${r.settings.noiseStd.toFixed(4)}, ${r.settings.samples} samples); cells: (p restored - p noised) / (p clean - p noised)`;
      const html = () => {
        const body = Object.entries(r.effects).map(([kind, e]) => {
          const head = `<tr><th></th>${tokens.map((t, p) => `<th>${p}:${escapeHtml(JSON.stringify(t))}${r.subjectPositions.includes(p) ? '*' : ''}</th>`).join('')}</tr>`;
          const rows = e!.normalised.map((row, l) => `<tr><th>L${l}</th>${row.map((v) => `<td style="background:${cssSigned(v)}">${v.toFixed(2)}</td>`).join('')}</tr>`).join('\n');
          return `<h3>${escapeHtml(kind)} (${escapeHtml(e!.hook)})</h3>\n<table>\n${head}\n${rows}\n</table>`;
        }).join('\n');
        return htmlPage(`Causal tracing — ${source}`, `<p>${escapeHtml(caption)}; * = subject token.</p>\n${body}`);
      };
      emitOutputs(opts, saved, { html }, () => {
        console.log(`model: ${source}`);
        console.log(caption);
        const color = useColor();
        const W = 8;
        for (const [kind, e] of Object.entries(r.effects)) {
          console.log(`\n${kind} (${e!.hook}):`);
          console.log(`${'   '} ${tokens.map((t, p) => cellText((r.subjectPositions.includes(p) ? '*' : '') + t, W)).join(' ')}`);
          e!.normalised.forEach((row, l) => {
            const cells = row.map((v) => {
              const text = ((v >= 0 ? '+' : '') + v.toFixed(2)).padStart(W);
              return color ? ansiSigned(text, v) : text;
            });
            console.log(`${`L${l}`.padEnd(3)} ${cells.join(' ')}`);
          });
        }
      });
    });
}
