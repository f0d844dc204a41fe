import { Command, Option } from 'commander';
import { LanternError } from '../../errors.js';
import { loadModel } from '../../models/load.js';
import type { HookedTransformer } from '../../models/hooked.js';
import {
  analyzeHeads, HEAD_DETECTORS, HeadAnalysis, HeadDetector, ModelCircuits, parseHead, headLabel, topHeads, HeadGrid, checkDetectors,
} from '../../methods/heads/index.js';
import { plantedPool } from '../../models/planted/index.js';
import { defaultModel } from './defaults.js';
import { nonNegativeInt, positiveInt } from './forward.js';
import { addOutputOptions, assertOutputsWritable, emitOutputs } from './output.js';
import { stagedProgressBars } from './progress-bar.js';
import { ansiProb, ansiSigned, cellText, cssProb, cssSigned, escapeHtml, htmlPage, useColor } from './lens.js';

/** Scores in [-1, 1] get the diverging colours; the rest are coloured as [0, 1] (larger values clamp). */
const SIGNED: readonly HeadDetector[] = ['copying', 'copy-suppression'];

/** '32-57,64-89' -> ids. */
export function parsePool(spec: string, vocab: number): number[] {
  const ids = new Set<number>();
  for (const part of spec.split(',').map((s) => s.trim()).filter(Boolean)) {
    const m = /^(\d+)(?:-(\d+))?$/.exec(part);
    if (!m) throw new LanternError(`--pool: '${part}' is not a token id or a range like 32-57`);
    const [a, b] = [Number(m[1]), Number(m[2] ?? m[1])];
    if (b < a || b >= vocab) throw new LanternError(`--pool: range ${part} is empty or outside the vocabulary [0, ${vocab})`);
    for (let i = a; i <= b; i++) ids.add(i);
  }
  if (ids.size === 0) throw new LanternError('--pool names no tokens');
  return [...ids];
}

export function headsCommand(program: Command): void {
  const cmd = program
    .command('heads')
    .description('Score every attention head with detectors (previous-token, duplicate-token, induction, successor, copying, copy suppression, name movers); OV/QK circuits of one head; composition scores.')
    .option('-m, --model <folder|hub-id>', 'Hugging Face model folder or Hub id (default: the bundled model)')
    .option('-d, --detectors <list>', `comma-separated, from: ${HEAD_DETECTORS.join(', ')} (default: all but copy-suppression, which ablates each head in turn)`)
    .addOption(new Option('-n, --sequences <n>', 'repeated random sequences to run').default(20).argParser(positiveInt('--sequences')))
    .addOption(new Option('--half <n>', 'length of each half of a repeated sequence (default: up to 32, within the context)').argParser(positiveInt('--half')))
    .option('--pool <ids>', 'token ids to draw the random sequences and OV token scores from, e.g. 32-57,64-89 (default: a planted model\'s task tokens, else the whole vocabulary)')
    .option('-t, --text <text...>', 'prompts for the previous- and duplicate-token detectors (and the pattern shown with --head) instead of the random sequences')
    .addOption(new Option('--seed <n>', 'seed of the random sequences and IOI prompts').default(0).argParser(nonNegativeInt('--seed')))
    .addOption(new Option('--batch-size <n>', 'prompts per forward').default(8).argParser(positiveInt('--batch-size')))
    .option('--head <head>', 'also report one head (L1H2 or 1.2): its copying score, the tokens its OV circuit copies most, and its pattern on the first --text')
    .option('--composition', 'also report the strongest Q-, K- and V-composition scores between heads')
    .addOption(new Option('-k, --top-k <n>', 'heads (and tokens) listed per detector').default(5).argParser(positiveInt('--top-k')));
  addOutputOptions(cmd, 'write the heatmaps as an HTML page')
    .addHelpText('after', '\nExamples:\n  lantern make-planted induction /tmp/induction\n  lantern heads --model /tmp/induction --detectors previous-token,induction\n  lantern heads --head L1H1 --text "The cat sat on the mat. The cat"')
    .action(async (opts) => {
      const source: string = opts.model ?? defaultModel();
      const detectors = opts.detectors ? checkDetectors(String(opts.detectors).split(',').map((s: string) => s.trim()).filter(Boolean)) : undefined;
      assertOutputsWritable(opts);
      const model = await loadModel(source, { progress: process.stderr.isTTY });
      const head = opts.head ? parseHead(opts.head, model) : undefined;
      const pool = opts.pool ? parsePool(opts.pool, model.cfg.dVocab) : plantedPool(source);
      const rows = opts.text ? (opts.text as string[]).map((t) => model.toTokens(t)) : undefined;
      const bars = stagedProgressBars('steps');
      let result: Awaited<ReturnType<typeof analyzeHeads>>;
      try {
        result = await analyzeHeads(model, { detectors, sequences: opts.sequences, half: opts.half, pool, rows, seed: opts.seed, batchSize: opts.batchSize, progress: bars.update });
      } finally {
        bars.stop();
      }
      const extra: Record<string, unknown> = {};
      let circuits: ModelCircuits | undefined;
      if (head || opts.composition) circuits = await ModelCircuits.read(model);
      if (head) extra.head = await headReport(model, circuits!, head, rows?.[0], pool, opts.topK);
      if (opts.composition) extra.composition = compositionReport(model, circuits!, opts.topK);
      const saved = { ...result, settings: { ...result.settings, poolSource: opts.pool ? 'given' : pool ? 'planted task tokens' : 'vocabulary' }, ...extra };
      emitOutputs(opts, saved, { html: () => headsHtml(result, source) }, () => printHeads(result, source, opts.topK, extra));
    });
}

interface HeadReport {
  head: string;
  copyingScore: number;
  topCopied: { token: number; text?: string; value: number }[];
  topSuppressed: { token: number; text?: string; value: number }[];
  pattern?: { tokens: string[]; rows: number[][] };
}

async function headReport(model: HookedTransformer, circuits: ModelCircuits, h: { layer: number; head: number }, prompt: number[] | undefined, pool: number[] | undefined, k: number): Promise<HeadReport> {
  const text = (t: number) => (model.tokenizer ? model.tokenStrings([t])[0] : undefined);
  const named = (xs: { token: number; value: number }[]) => xs.map((x) => ({ ...x, text: text(x.token) }));
  const report: HeadReport = {
    head: headLabel(h),
    copyingScore: circuits.copyingScore(h),
    topCopied: named(circuits.topCopied(h, { tokens: pool, k, sign: 1 }).filter((x) => x.value > 0)),
    topSuppressed: named(circuits.topCopied(h, { tokens: pool, k, sign: -1 }).filter((x) => x.value < 0)),
  };
  if (prompt) {
    const hook = `blocks.${h.layer}.attn.hook_pattern`;
    const { cache } = await model.runWithCache([prompt], [hook]);
    const T = prompt.length;
    const p = cache.get(hook).f32;
    const base = h.head * T * T;
    report.pattern = {
      tokens: model.tokenizer ? model.tokenStrings(prompt) : prompt.map(String),
      rows: Array.from({ length: T }, (_, q) => Array.from(p.subarray(base + q * T, base + q * T + T))),
    };
  }
  return report;
}

function compositionReport(model: HookedTransformer, circuits: ModelCircuits, k: number) {
  const H = model.cfg.nHeads;
  const scores = circuits.compositionScores();
  const label = (i: number) => headLabel({ layer: Math.floor(i / H), head: i % H });
  return Object.fromEntries((['Q', 'K', 'V'] as const).map((kind) => [kind, scores[kind]
    .flatMap((row, i) => row.map((score, j) => ({ sender: label(i), receiver: label(j), score })))
    .filter((x) => x.score > 0).sort((a, b) => b.score - a.score).slice(0, k)]));
}

function printGrid(grid: HeadGrid, signed: boolean): void {
  const color = useColor();
  const W = 7;
  console.log(`${'layer'.padEnd(6)} ${grid[0].map((_, h) => `H${h}`.padEnd(W)).join(' ')}`);
  grid.forEach((row, l) => {
    const cells = row.map((x) => {
      const text = cellText(x.toFixed(3), W);
      return color ? (signed ? ansiSigned(text, x) : ansiProb(text, x)) : text;
    });
    console.log(`${`L${l}`.padEnd(6)} ${cells.join(' ')}`);
  });
}

function printHeads(r: HeadAnalysis, source: string, k: number, extra: Record<string, unknown>): void {
  console.log(`model: ${source} (${r.layers} layers x ${r.heads} heads); ${r.settings.sequences} repeated random sequences of 2 x ${r.settings.half} tokens, seed ${r.settings.seed}; data ${r.dataHash}`);
  for (const [d, grid] of Object.entries(r.scores) as [HeadDetector, HeadGrid][]) {
    console.log(`\n${d}: ${r.descriptions[d]}`);
    printGrid(grid, SIGNED.includes(d));
    console.log(`top: ${topHeads(grid, k).map((x) => `${headLabel(x)} ${x.score.toFixed(3)}`).join(', ')}`);
  }
  for (const [d, why] of Object.entries(r.skipped)) console.log(`\n${d}: skipped (${why})`);
  const head = extra.head as HeadReport | undefined;
  if (head) {
    console.log(`\nhead ${head.head}: eigenvalue copying score ${head.copyingScore.toFixed(3)}`);
    const list = (xs: HeadReport['topCopied']) => xs.map((x) => `${JSON.stringify(x.text ?? x.token)} ${x.value.toFixed(2)}`).join(', ') || 'none';
    console.log(`  copies most (full OV diagonal): ${list(head.topCopied)}`);
    console.log(`  suppresses most: ${list(head.topSuppressed)}`);
    if (head.pattern) {
      console.log('  pattern (query -> the key it attends to most):');
      head.pattern.rows.forEach((row, q) => {
        const best = row.indexOf(Math.max(...row));
        console.log(`    ${String(q).padStart(3)} ${cellText(head.pattern!.tokens[q], 10)} -> ${String(best).padStart(3)} ${cellText(head.pattern!.tokens[best], 10)} ${row[best].toFixed(3)}`);
      });
    }
  }
  const comp = extra.composition as Record<string, { sender: string; receiver: string; score: number }[]> | undefined;
  if (comp) {
    console.log('');
    for (const [kind, xs] of Object.entries(comp)) console.log(`${kind}-composition, strongest: ${xs.map((x) => `${x.sender}->${x.receiver} ${x.score.toFixed(3)}`).join(', ') || 'none above 0'}`);
  }
}

function headsHtml(r: HeadAnalysis, source: string): string {
  const sections = (Object.entries(r.scores) as [HeadDetector, HeadGrid][]).map(([d, grid]) => {
    const signed = SIGNED.includes(d);
    const head = `<tr><th>layer \\ head</th>${grid[0].map((_, h) => `<th>H${h}</th>`).join('')}</tr>`;
    const rows = grid.map((row, l) => `<tr><th>L${l}</th>${row.map((x) => `<td style="background:${signed ? cssSigned(x) : cssProb(x)}">${x.toFixed(3)}</td>`).join('')}</tr>`).join('\n');
    return `<h3>${escapeHtml(d)}</h3><p>${escapeHtml(r.descriptions[d] ?? '')}</p>\n<table>\n${head}\n${rows}\n</table>`;
  });
  const note = `${r.settings.sequences} repeated random sequences of 2 x ${r.settings.half} tokens, seed ${r.settings.seed}; data hash ${r.dataHash}.`;
  return htmlPage(`Attention heads — ${source}`, `<p>${escapeHtml(note)}</p>\n${sections.join('\n')}`);
}
