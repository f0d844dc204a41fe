/**
 * `lantern features`: dashboards of every feature of a source over a corpus (one pass, stored as a
 * folder the Workbench opens at once), static HTML export, automated explanations (explain →
 * simulate → score, detection, fuzzing), SASC, and the features that fire on a typed text.
 */
import fs from 'node:fs';
import path from 'node:path';
import { Command, Option } from 'commander';
import { LanternError } from '../../errors.js';
import { loadModel } from '../../models/load.js';
import type { HookedTransformer } from '../../models/hooked.js';
import { tokenizeSplits } from '../../data/brown.js';
import { openBackend } from '../../backends/index.js';
import { PLANTED_FILE, plantedPrompts, readPlantedDescription } from '../../models/planted/index.js';
import {
  dashboardsAnalysis, dashboardsHtml, dashboardsJob, dashboardSourceSpec, explainAnalysis, explainJob, featuresOnText, openFeatureSource, openJobFeatureSource, readDashboard,
  readDashboardIndex, sascDashboard, writeDashboards, writeExplanations, ExplainPrompts, DEFAULT_PROMPTS,
} from '../../methods/features/index.js';
import { defaultModel } from './defaults.js';
import { nonNegativeInt, positiveInt } from './forward.js';
import { assertWritable } from './output.js';
import { HTTP_OPTION_KEYS, httpBackendOptions, httpOptions } from './http-options.js';
import { defaultJobsDir, jobOptions, runAndMerge } from './job-options.js';
import { backendRecord } from './eval-options.js';

/** The corpus: token ids from --tokens, text from --data (tokenized by the model), a planted model's own task prompts, or Brown. */
function readCorpus(model: HookedTransformer, source: string, opts: { tokens?: string; data?: string; maxTokens: number }): { tokens: ArrayLike<number>; corpus: string } {
  const cap = <T extends ArrayLike<number>>(t: T) => (t.length > opts.maxTokens ? Array.from({ length: opts.maxTokens }, (_, i) => t[i]) : t);
  if (opts.tokens) {
    if (!fs.existsSync(opts.tokens)) throw new LanternError(`--tokens file not found: ${opts.tokens}`);
    const ids = fs.readFileSync(opts.tokens, 'utf8').split(/[\s,]+/).filter(Boolean).map(Number);
    if (ids.some((x) => !Number.isInteger(x) || x < 0)) throw new LanternError(`--tokens ${opts.tokens}: expected non-negative integer token ids`);
    return { tokens: cap(ids), corpus: opts.tokens };
  }
  if (opts.data) {
    if (!fs.existsSync(opts.data)) throw new LanternError(`--data file not found: ${opts.data}`);
    const raw = fs.readFileSync(opts.data, 'utf8');
    // JSONL with a "text" field per line, or plain text.
    const texts = opts.data.endsWith('.jsonl')
      ? raw.split('\n').filter((l) => l.trim()).map((l, i) => {
        try { return String((JSON.parse(l) as { text?: unknown }).text ?? ''); } catch { throw new LanternError(`--data ${opts.data}: line ${i + 1} is not JSON`); }
      })
      : [raw];
    const ids: number[] = [];
    for (const t of texts) {
      if (ids.length >= opts.maxTokens) break;
      ids.push(...model.toTokens(t));
    }
    return { tokens: cap(ids), corpus: opts.data };
  }
  if (fs.existsSync(path.join(source, PLANTED_FILE))) {
    const kind = readPlantedDescription(source).kind;
    const per = plantedPrompts(kind, 1, 1001)[0].tokens.length;
    return { tokens: plantedPrompts(kind, Math.ceil(opts.maxTokens / per), 1001).flatMap((p) => p.tokens).slice(0, opts.maxTokens), corpus: `planted ${kind} task prompts (seed 1001)` };
  }
  if (model.cfg.dVocab < 50257) throw new LanternError(`the Brown corpus is GPT-2 tokens, outside ${source}'s vocabulary of ${model.cfg.dVocab}; give --tokens or --data`);
  return { tokens: tokenizeSplits().train.subarray(0, opts.maxTokens), corpus: 'Brown (train split)' };
}

function parseFeatureList(spec: string, size: number): number[] {
  const out: number[] = [];
  for (const part of spec.split(',').map((s) => s.trim()).filter(Boolean)) {
    const m = /^(\d+)(?:-(\d+))?$/.exec(part);
    if (!m) throw new LanternError(`--features '${spec}': expected indices and ranges like 0,5,10-19`);
    const [a, b] = [Number(m[1]), Number(m[2] ?? m[1])];
    for (let i = a; i <= b; i++) {
      if (i >= size) throw new LanternError(`feature ${i} outside [0, ${size})`);
      out.push(i);
    }
  }
  return out;
}

function readPrompts(file?: string): Partial<ExplainPrompts> {
  if (!file) return {};
  if (!fs.existsSync(file)) throw new LanternError(`--prompts file not found: ${file}`);
  let p: Record<string, unknown>;
  try { p = JSON.parse(fs.readFileSync(file, 'utf8')) as Record<string, unknown>; } catch (e) { throw new LanternError(`--prompts ${file} is not valid JSON: ${(e as Error).message}`); }
  for (const k of Object.keys(p)) {
    if (!(k in DEFAULT_PROMPTS)) throw new LanternError(`--prompts ${file}: unknown prompt '${k}'; the prompts are ${Object.keys(DEFAULT_PROMPTS).join(', ')}`);
    if (typeof p[k] !== 'string') throw new LanternError(`--prompts ${file}: '${k}' must be a string`);
  }
  return p as Partial<ExplainPrompts>;
}

export function featuresCommand(program: Command): void {
  const cmd = program.command('features').description('Feature dashboards over a corpus, automated explanations (explain → simulate → score), SASC, and the features that fire on a text.');

  const dashboards = cmd.command('dashboards')
    .description('Build every feature\'s dashboard in one pass over a corpus and store them in a folder (index.json + features.jsonl). Runs as a resumable job over row ranges, in this process or on lantern worker processes (--queue).')
    .option('-m, --model <folder|hub-id>', 'model (default: the bundled model)')
    .option('--source <spec>', 'features to read: neurons:<hook> (default neurons:blocks.0.mlp.hook_post)')
    .option('--sae <path>', 'a sparse autoencoder as the feature source')
    .option('--data <file>', 'corpus as text (.txt) or JSONL with a "text" field per line')
    .option('--tokens <file>', 'corpus as token ids (whitespace- or comma-separated)')
    .addOption(new Option('--max-tokens <n>', 'tokens of the corpus to read').default(20000).argParser(positiveInt('--max-tokens')))
    .addOption(new Option('--seq <n>', 'tokens per row (default: the context, at most 128)').argParser(positiveInt('--seq')))
    .addOption(new Option('--batch-size <n>', 'rows per forward').default(8).argParser(positiveInt('--batch-size')))
    .addOption(new Option('-k, --top-k <n>', 'top contexts kept per feature').default(20).argParser(positiveInt('--top-k')))
    .addOption(new Option('--seed <n>', 'seed of the samples and random contexts').default(0).argParser(nonNegativeInt('--seed')))
    .requiredOption('-o, --out <folder>', 'folder to write the dashboards to')
    .option('--html <file>', 'also write a static HTML page of the features in --html-features')
    .option('--html-features <list>', 'features on the HTML page, e.g. 0-19,40 (default: the 20 densest)');
  jobOptions(dashboards)
    .addHelpText('after', '\nExamples:\n  lantern features dashboards --source neurons:blocks.1.mlp.hook_post --max-tokens 20000 -o dash\n  lantern features dashboards --model /tmp/ngram --tokens corpus.txt --seq 32 -o dash --html dash.html\n  lantern features dashboards --sae /shared/sae --data big.jsonl -o dash --jobs-dir /shared/jobs --queue redis://10.0.0.5:6379')
    .action(async (opts) => {
      const modelSpec: string = opts.model ?? defaultModel();
      if (opts.html) assertWritable(opts.html, '--html');
      if (fs.existsSync(opts.out) && !fs.statSync(opts.out).isDirectory()) throw new LanternError(`--out ${opts.out} is a file; give a folder`);
      const model = await loadModel(modelSpec, { progress: process.stderr.isTTY });
      const opened = await openJobFeatureSource(model, opts);
      const { tokens, corpus } = readCorpus(model, modelSpec, opts);
      const dir = path.resolve(opts.jobsDir ?? defaultJobsDir());
      const job = await dashboardsJob(dir, model, opened, tokens, { seq: opts.seq, batchSize: opts.batchSize, topK: opts.topK, seed: opts.seed, shardRows: opts.shardSize, corpus });
      const set = await runAndMerge(opts, dir, job, dashboardsAnalysis, { model, source: opened.source, tokens: Array.from(tokens) }, {});
      writeDashboards(set, opts.out);
      const live = set.features.filter((f) => f.density > 0).length;
      console.log(`model: ${modelSpec}; source ${set.source} (${set.size} features) at ${set.hook}; ${set.tokens} tokens of ${corpus} (data ${set.dataHash}), seed ${set.seed}`);
      console.log(`${live} of ${set.size} features fire; densest: ${[...set.features].sort((a, b) => b.density - a.density).slice(0, 5).map((f) => `#${f.index} ${(100 * f.density).toFixed(2)}%`).join(', ')}`);
      console.log(`saved dashboards to ${opts.out}`);
      if (opts.html) {
        const pick = opts.htmlFeatures ? parseFeatureList(opts.htmlFeatures, set.size) : [...set.features].sort((a, b) => b.density - a.density).slice(0, 20).map((f) => f.index);
        fs.writeFileSync(opts.html, dashboardsHtml(set, pick.map((i) => set.features[i])));
        console.log(`saved HTML to ${opts.html}`);
      }
    });

  cmd.command('html')
    .description('Write a static HTML page of stored dashboards')
    .requiredOption('-d, --dashboards <folder>', 'dashboard folder (from `features dashboards`)')
    .requiredOption('--features <list>', 'features to include, e.g. 0-19,40')
    .requiredOption('-o, --out <file>', 'HTML file to write')
    .action((opts) => {
      assertWritable(opts.out, '--out');
      const index = readDashboardIndex(opts.dashboards);
      const pick = parseFeatureList(opts.features, index.size);
      fs.writeFileSync(opts.out, dashboardsHtml(index, pick.map((i) => readDashboard(opts.dashboards, i, index))));
      console.log(`saved HTML of ${pick.length} features to ${opts.out}`);
    });

  const backendOpts = (c: Command) => {
    c.requiredOption('-b, --backend <spec>', 'explainer: http(s)://host:port/v1 (OpenAI-compatible), gguf:<file>, or lantern[:<model>]');
    for (const o of httpOptions()) c.addOption(o);
    return c;
  };
  const openWith = async (spec: string, opts: Record<string, unknown>) => {
    const http = Object.fromEntries(HTTP_OPTION_KEYS.map((k) => [k, opts[k]]));
    return openBackend(spec, /^https?:/.test(spec) ? httpBackendOptions(http) : {});
  };

  const explain = backendOpts(cmd.command('explain')
    .description('Explain features with a black-box backend (top contexts as token<TAB>activation records) and score each explanation by simulation')
    .requiredOption('-d, --dashboards <folder>', 'dashboard folder (from `features dashboards`); explanations are stored in it')
    .requiredOption('--features <list>', 'features to explain, e.g. 0-9,40')
    .option('--simulator-backend <spec>', 'a different backend to simulate with (default: the explainer)')
    .addOption(new Option('--simulator <variant>', 'auto (log-probs where the backend gives them), logprobs, or generate').default('auto').choices(['auto', 'logprobs', 'generate']))
    .option('--detection', 'also compute the detection score')
    .option('--fuzzing', 'also compute the fuzzing score')
    .option('--prompts <file>', 'JSON object replacing some of the prompts (explainer, simulator, simulatorGenerate, detection, fuzzing)')
    .addOption(new Option('--seed <n>', 'seed of the fuzzing marks').default(0).argParser(nonNegativeInt('--seed')))
    .option('--json <file>', 'write every result (explanations, scores, simulated activations) as JSON'));
  jobOptions(explain)
    .addHelpText('after', '\nExamples:\n  lantern features explain -d dash --features 0-4 --backend http://127.0.0.1:8000/v1 --detection\n  lantern features explain -d /shared/dash --features 0-999 --backend http://10.0.0.7:8000/v1 --jobs-dir /shared/jobs --queue redis://10.0.0.5:6379')
    .action(async (opts) => {
      if (opts.json) assertWritable(opts.json, '--json');
      const index = readDashboardIndex(opts.dashboards);
      const pick = parseFeatureList(opts.features, index.size);
      const prompts = readPrompts(opts.prompts);
      // The job records how workers reach the backends (checked before they are opened); a key stays
      // in the environment variable --api-key-env names.
      const record = backendRecord(opts.backend, { ...opts, concurrency: undefined }, '--backend');
      const simulatorLoad = opts.simulatorBackend ? backendRecord(opts.simulatorBackend, {}, '--simulator-backend').load : undefined;
      const backend = await openWith(opts.backend, opts);
      const simulatorBackend = opts.simulatorBackend ? await openWith(opts.simulatorBackend, opts) : undefined;
      const dir = path.resolve(opts.jobsDir ?? defaultJobsDir());
      const job = explainJob(dir, opts.dashboards, pick, { id: backend.id, ...record }, {
        simulatorBackend: simulatorLoad, simulator: opts.simulator, detection: Boolean(opts.detection), fuzzing: Boolean(opts.fuzzing), prompts, seed: opts.seed, shardFeatures: opts.shardSize,
      });
      const results = await runAndMerge(opts, dir, job, explainAnalysis, { folder: opts.dashboards, index, features: pick, backend, simulatorBackend }, {});
      for (const r of results) {
        const extra = [r.detection !== undefined ? `detection ${r.detection.toFixed(3)}` : '', r.fuzzing !== undefined ? `fuzzing ${r.fuzzing.toFixed(3)}` : ''].filter(Boolean).join(', ');
        console.log(`#${r.feature}: ${r.explanation}  (score ${r.score.toFixed(3)}${extra ? `, ${extra}` : ''})`);
      }
      if (opts.json) {
        const { features: _f, ranges: _r, random: _rc, ...meta } = index;
        fs.writeFileSync(opts.json, JSON.stringify({ ...meta, method: 'explain-simulate-score', backend: backend.id, simulatorBackend: simulatorBackend?.id ?? backend.id, settings: { simulator: opts.simulator, detection: Boolean(opts.detection), fuzzing: Boolean(opts.fuzzing), prompts }, results }, null, 2) + '\n');
        console.log(`saved JSON to ${opts.json}`);
      }
      await backend.close?.();
      await simulatorBackend?.close?.();
    });

  backendOpts(cmd.command('sasc')
    .description('SASC for one feature or neuron: summarise its top n-grams into candidate explanations, score each by its response to synthesised texts')
    .requiredOption('-d, --dashboards <folder>', 'dashboard folder (from `features dashboards`)')
    .requiredOption('-f, --feature <n>', 'the feature (neuron) to explain', nonNegativeInt('--feature'))
    .addOption(new Option('--candidates <n>', 'candidate explanations').default(3).argParser(positiveInt('--candidates')))
    .addOption(new Option('--texts <n>', 'texts synthesised per candidate').default(5).argParser(positiveInt('--texts')))
    .option('--prompts <file>', 'JSON object replacing the summarize / synthesize prompts')
    .addOption(new Option('--seed <n>', 'seed of the sampled candidates').default(0).argParser(nonNegativeInt('--seed')))
    .option('--json <file>', 'write the candidates, texts and responses as JSON'))
    .addHelpText('after', '\nExample:\n  lantern features sasc -d dash -f 13 --backend http://127.0.0.1:8000/v1')
    .action(async (opts) => {
      if (opts.json) assertWritable(opts.json, '--json');
      const index = readDashboardIndex(opts.dashboards);
      const d = readDashboard(opts.dashboards, opts.feature, index);
      const model = await loadModel(index.model, { progress: process.stderr.isTTY });
      const source = await openFeatureSource(model, dashboardSourceSpec(index));
      const backend = await openWith(opts.backend, opts);
      const r = await sascDashboard(backend, model, source, d, index.random, { candidates: opts.candidates, texts: opts.texts, seed: opts.seed, prompts: readPrompts(opts.prompts) });
      writeExplanations(opts.dashboards, { [opts.feature]: { text: r.explanation, score: r.score, method: 'sasc' } });
      console.log(`#${opts.feature} ${index.source}: n-grams ${r.ngrams.slice(0, 8).map((g) => JSON.stringify(g)).join(', ')}`);
      for (const c of r.candidates) console.log(`  ${c.score.toFixed(3).padStart(8)}  ${c.explanation}`);
      console.log(`best: ${r.explanation} (score ${r.score.toFixed(3)} baseline std)`);
      if (opts.json) {
        const { features: _f, ranges: _r, random: _rc, ...meta } = index;
        fs.writeFileSync(opts.json, JSON.stringify({ ...meta, feature: opts.feature, backend: backend.id, settings: { candidates: opts.candidates, texts: opts.texts, seed: opts.seed }, ...r }, null, 2) + '\n');
        console.log(`saved JSON to ${opts.json}`);
      }
      await backend.close?.();
    });

  cmd.command('top')
    .description('The features that fire on a text: each token\'s strongest features and the strongest overall (with their explanations, given dashboards)')
    .requiredOption('-t, --text <text>', 'the text')
    .option('-d, --dashboards <folder>', 'dashboard folder: its model and source, and explanations to show')
    .option('-m, --model <folder|hub-id>', 'model (default: the dashboards\' model, else the bundled model)')
    .option('--source <spec>', 'features: neurons:<hook> (default: the dashboards\' source)')
    .option('--sae <path>', 'a sparse autoencoder as the feature source')
    .addOption(new Option('-k, --top-k <n>', 'features listed').default(10).argParser(positiveInt('--top-k')))
    .option('--json [file]', 'write the result as JSON to <file> (or print it)')
    .action(async (opts) => {
      if (typeof opts.json === 'string') assertWritable(opts.json, '--json');
      const index = opts.dashboards ? readDashboardIndex(opts.dashboards) : undefined;
      const model = await loadModel(opts.model ?? index?.model ?? defaultModel(), { progress: process.stderr.isTTY });
      const source = await openFeatureSource(model, opts.source || opts.sae ? opts : index ? dashboardSourceSpec(index) : opts);
      const r = await featuresOnText(model, source, opts.text, opts.topK);
      const saved = { ...r, ...(index ? { dashboards: opts.dashboards, dataHash: index.dataHash } : {}) };
      if (opts.json === true) { console.log(JSON.stringify(saved, null, 2)); return; }
      if (typeof opts.json === 'string') fs.writeFileSync(opts.json, JSON.stringify(saved, null, 2) + '\n');
      console.log(`model: ${r.model}; source ${r.source}; ${r.tokens.length} tokens`);
      for (const f of r.top) {
        const ex = index?.features[f.index]?.explanation;
        console.log(`  #${String(f.index).padEnd(6)} max ${f.max.toFixed(3)}  ${r.tokens.map((t, i) => (f.activations[i] > 0 ? `[${t}]` : t)).join('')}${ex ? `  — ${ex}` : ''}`);
      }
      if (typeof opts.json === 'string') console.log(`saved JSON to ${opts.json}`);
    });
}

