import { Command, Option } from 'commander';
import { LanternError } from '../../errors.js';
import { loadModel } from '../../models/load.js';
import { tokenizeSplits } from '../../data/brown.js';
import { buildN2G, evaluateN2G, neuronsAnalysis, neuronsJob, NeuronStats, N2GEvaluation, N2GPattern } from '../../methods/neurons/index.js';
import { defaultJobsDir, jobOptions, runAndMerge } from './job-options.js';
import { defaultModel } from './defaults.js';
import { nonNegativeInt, positiveInt } from './forward.js';
import { addOutputOptions, assertOutputsWritable, emitOutputs } from './output.js';
import { escapeHtml, htmlPage } from './lens.js';
import { parsePool } from './heads.js';
import fs from 'node:fs';
import path from 'node:path';
import { PLANTED_FILE, plantedPrompts, readPlantedDescription } from '../../models/planted/index.js';
import { Rng } from '../../rng.js';

/** Token ids from a file of whitespace- or comma-separated integers. */
async function readTokenFile(file: string): Promise<number[]> {
  const fs = await import('node:fs');
  if (!fs.existsSync(file)) throw new LanternError(`--tokens file not found: ${file}`);
  const ids = fs.readFileSync(file, 'utf8').split(/[\s,]+/).filter(Boolean).map(Number);
  if (ids.some((x) => !Number.isInteger(x) || x < 0)) throw new LanternError(`--tokens ${file}: expected non-negative integer token ids`);
  return ids;
}

export function neuronsCommand(program: Command): void {
  const cmd = program
    .command('neurons')
    .description('Label every MLP neuron over a corpus (dead, positional, token / n-gram detector, token-frequency) in one pass, run as a resumable job over rows of the corpus (--shard-size rows per shard; --queue for lantern worker processes); explain one neuron with N2G and score it on held-out text.')
    .option('-m, --model <folder|hub-id>', 'Hugging Face model folder or Hub id (default: the bundled model)')
    .option('--tokens <file>', 'corpus as token ids (whitespace- or comma-separated); the last tenth is held out for N2G (default: a planted model\'s task prompts, else the Brown corpus)')
    .addOption(new Option('--max-tokens <n>', 'tokens of the corpus to read').default(20000).argParser(positiveInt('--max-tokens')))
    .addOption(new Option('--seq <n>', 'tokens per row (default: the context, at most 128)').argParser(positiveInt('--seq')))
    .option('--layers <list>', 'comma-separated layers (default: all)')
    .addOption(new Option('--threshold <x>', 'a neuron fires above this activation').default(0).argParser(Number))
    .addOption(new Option('--batch-size <n>', 'rows per forward').default(8).argParser(positiveInt('--batch-size')))
    .option('--n2g <neuron>', 'explain one neuron (L0N13 or 0.13) with N2G from its top examples and score it on held-out text')
    .option('--pool <ids>', 'N2G replacement tokens, e.g. 32-57,64-89 (default: tokens of the corpus)')
    .addOption(new Option('--seed <n>', 'seed of the N2G replacements').default(0).argParser(nonNegativeInt('--seed')))
    .addOption(new Option('-k, --top-k <n>', 'neurons listed per label').default(10).argParser(positiveInt('--top-k')));
  jobOptions(cmd);
  addOutputOptions(cmd, 'write the labels and top examples as an HTML page')
    .addHelpText('after', '\nExamples:\n  lantern neurons --max-tokens 20000\n  lantern neurons --model /tmp/ngram --tokens corpus.txt --seq 32 --n2g L0N13')
    .action(async (opts) => {
      const source: string = opts.model ?? defaultModel();
      assertOutputsWritable(opts);
      // Checked before the statistics pass, which may be long.
      const n2gRef = opts.n2g ? parseNeuronRef(String(opts.n2g)) : undefined;
      const model = await loadModel(source, { progress: process.stderr.isTTY });
      let train: ArrayLike<number>;
      let heldout: ArrayLike<number>;
      let corpus: string;
      if (opts.tokens) {
        const ids = await readTokenFile(opts.tokens);
        const cut = Math.floor(ids.length * 0.9);
        train = ids.slice(0, Math.min(cut, opts.maxTokens));
        heldout = ids.slice(cut);
        corpus = opts.tokens;
      } else if (fs.existsSync(path.join(source, PLANTED_FILE))) {
        // A planted model reads its own task's prompts (other seeds than its measurements).
        const kind = readPlantedDescription(source).kind;
        const stream = (n: number, seed: number) => plantedPrompts(kind, n, seed).flatMap((p) => p.tokens);
        const perPrompt = plantedPrompts(kind, 1, 1001)[0].tokens.length;
        train = stream(Math.ceil(opts.maxTokens / perPrompt), 1001).slice(0, opts.maxTokens);
        heldout = stream(Math.max(20, Math.ceil(opts.maxTokens / perPrompt / 10)), 1002);
        corpus = `planted ${kind} task prompts (seed 1001; held-out seed 1002)`;
      } else {
        if (model.cfg.dVocab < 50257) throw new LanternError(`the Brown corpus is GPT-2 tokens, outside ${source}'s vocabulary of ${model.cfg.dVocab}; give --tokens`);
        const splits = tokenizeSplits();
        train = splits.train.subarray(0, opts.maxTokens);
        heldout = splits.heldout.subarray(0, Math.max(2000, Math.floor(opts.maxTokens / 10)));
        corpus = 'Brown (train split; held-out split for N2G)';
      }
      const layers = opts.layers ? String(opts.layers).split(',').map((s) => Number(s.trim())) : undefined;
      const dir = path.resolve(opts.jobsDir ?? defaultJobsDir());
      const job = await neuronsJob(dir, model, Array.from(train), { layers, seq: opts.seq, threshold: opts.threshold, batchSize: opts.batchSize, shardRows: opts.shardSize, corpus });
      const stats = await runAndMerge(opts, dir, job, neuronsAnalysis, { model, tokens: Array.from(train) }, {});
      let n2g: { neuron: string; patterns: N2GPattern[]; evaluation: N2GEvaluation } | undefined;
      if (opts.n2g) {
        const ref = n2gRef!;
        const summary = stats.neurons.find((n) => n.layer === ref.layer && n.neuron === ref.neuron);
        if (!summary) throw new LanternError(`neuron ${opts.n2g} is not among the analysed layers (${stats.settings.layers.join(', ')}) and ${model.cfg.dMlp} neurons`);
        const examples = summary.top.map((e) => Array.from({ length: e.position + 1 }, (_, i) => train[e.offset - e.position + i]));
        const rng = new Rng(opts.seed);
        const pool = opts.pool ? parsePool(opts.pool, model.cfg.dVocab) : [...new Set(Array.from({ length: 200 }, () => train[Math.floor(rng.next() * train.length)]))];
        const built = await buildN2G(model, ref, examples, { pool, seed: opts.seed });
        n2g = { neuron: `L${ref.layer}N${ref.neuron}`, patterns: built.patterns, evaluation: await evaluateN2G(model, built, heldout, { seq: stats.settings.seq }) };
      }
      const saved = { ...stats, corpus, ...(n2g ? { n2g } : {}) };
      emitOutputs(opts, saved, { html: () => neuronsHtml(stats, source, model.tokenizer ? (t: number) => model.tokenStrings([t])[0] : String) }, () => printNeurons(stats, source, opts.topK, (t) => (model.tokenizer ? model.tokenStrings([t])[0] : String(t)), n2g));
    });
}

function parseNeuronRef(v: string): { layer: number; neuron: number } {
  const m = /^(?:L(\d+)N(\d+)|(\d+)\.(\d+))$/i.exec(v.trim());
  if (!m) throw new LanternError(`--n2g '${v}' is not of the form L<layer>N<neuron> (e.g. L0N13) or <layer>.<neuron>`);
  return { layer: Number(m[1] ?? m[3]), neuron: Number(m[2] ?? m[4]) };
}

function ngramText(tokens: number[], text: (t: number) => string): string {
  return tokens.map((t) => JSON.stringify(text(t))).join(' ');
}

function printNeurons(s: NeuronStats, source: string, k: number, text: (t: number) => string, n2g?: { neuron: string; patterns: N2GPattern[]; evaluation: N2GEvaluation }): void {
  console.log(`model: ${source}; ${s.tokens} tokens (data ${s.dataHash}), rows of ${s.settings.seq}, layers ${s.settings.layers.join(',')}, fires above ${s.settings.threshold}`);
  console.log(`labels: ${Object.entries(s.counts).map(([l, c]) => `${l} ${c}`).join(', ')}`);
  const show = (label: string, detail: (n: NeuronStats['neurons'][number]) => string) => {
    const xs = s.neurons.filter((n) => n.label === label);
    if (!xs.length) return;
    console.log(`\n${label}:`);
    for (const n of xs.slice(0, k)) console.log(`  L${n.layer}N${n.neuron}`.padEnd(12) + detail(n));
    if (xs.length > k) console.log(`  ... ${xs.length - k} more`);
  };
  show('positional', (n) => `variance explained by position ${n.positionVariance.toFixed(3)}, fires at ${(100 * n.fireRate).toFixed(1)}% of tokens`);
  show('token', (n) => `${ngramText(n.ngram!.tokens, text)} (${n.ngram!.count} in the corpus), max ${n.max.toFixed(3)}`);
  show('n-gram', (n) => `${ngramText(n.ngram!.tokens, text)} (${n.ngram!.count} in the corpus), max ${n.max.toFixed(3)}`);
  show('token-frequency', (n) => `correlation with log token frequency ${n.frequencyCorrelation.toFixed(3)}`);
  const dead = s.neurons.filter((n) => n.label === 'dead');
  if (dead.length) console.log(`\ndead: ${dead.slice(0, 3 * k).map((n) => `L${n.layer}N${n.neuron}`).join(' ')}${dead.length > 3 * k ? ` ... ${dead.length - 3 * k} more` : ''}`);
  if (n2g) {
    console.log(`\nN2G ${n2g.neuron}: ${n2g.patterns.length} pattern(s) (oldest token first, * = any token)`);
    for (const p of n2g.patterns.slice(0, k)) console.log(`  ${p.tokens.map((set) => (set[0] === -1 ? '*' : set.map((t) => JSON.stringify(text(t))).join('|'))).join(' ')}  (activation ${p.activation.toFixed(2)} of the largest)`);
    const e = n2g.evaluation;
    console.log(`  held-out (${e.tokens} tokens): precision ${e.precision.toFixed(3)}, recall ${e.recall.toFixed(3)} (fires at ${e.fired}, predicted at ${e.predicted})`);
  }
}

function neuronsHtml(s: NeuronStats, source: string, text: (t: number) => string): string {
  const rows = s.neurons.filter((n) => n.label !== 'dead' && n.label !== 'other').map((n) =>
    `<tr><td>L${n.layer}N${n.neuron}</td><td>${n.label}</td><td>${n.max.toFixed(3)}</td><td>${(100 * n.fireRate).toFixed(2)}%</td><td>${n.positionVariance.toFixed(3)}</td><td>${n.frequencyCorrelation.toFixed(3)}</td><td>${n.ngram ? escapeHtml(ngramText(n.ngram.tokens, text)) : ''}</td></tr>`).join('\n');
  const head = '<tr><th>neuron</th><th>label</th><th>max</th><th>fires</th><th>η² (position)</th><th>corr(log freq)</th><th>n-gram</th></tr>';
  const counts = Object.entries(s.counts).map(([l, c]) => `${l} ${c}`).join(', ');
  return htmlPage(`Neurons — ${source}`, `<p>${s.tokens} tokens, data hash ${s.dataHash}. Labels: ${escapeHtml(counts)}.</p>\n<table>\n${head}\n${rows}\n</table>`);
}
