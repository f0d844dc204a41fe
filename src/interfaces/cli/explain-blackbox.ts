/**
 * `lantern explain`: black-box explanations of a generation through the backend interface —
 * SMILE word importances, or CELL / m-CELL contrastive prompt edits.
 */
import { Command, Option } from 'commander';
import { LanternError } from '../../errors.js';
import { assertFinite } from '../../finite.js';
import { openBackend } from '../../backends/index.js';
import { controlVectorOption, controlVectorsFor } from './control-vector-option.js';
import type { OpenBackendOptions } from '../../backends/index.js';
import { HTTP_OPTION_KEYS, httpBackendOptions, httpOptions } from './http-options.js';
import { LanternBackend } from '../../backends/lantern.js';
import type { LanguageModelBackend } from '../../backends/types.js';
import { loadModel } from '../../models/load.js';
import type { HookedTransformer } from '../../models/hooked.js';
import {
  backendInfiller, bleuScorer, blackboxToJSON, cell, checkCellSettings, checkSmileSettings, mcell, modelEmbedder, preferenceScorer,
  renderBlackbox, saveBlackboxResult, smile, CELL_DEFAULTS, SMILE_DEFAULTS,
} from '../../methods/blackbox/index.js';
import type { BlackboxResult, ContrastScorer } from '../../methods/blackbox/index.js';
import { defaultModel } from './defaults.js';
import { nonNegativeInt, positiveInt } from './forward.js';
import { assertWritable } from './output.js';

const METHODS = ['smile', 'cell', 'mcell'] as const;
const SCORERS = ['bleu', 'preference'] as const;
const SMILE_ONLY = ['samples', 'keepProb', 'minKept', 'kernelWidth', 'embedModel', 'embedHook', 'concurrency'];
const CELL_ONLY = ['epsilon', 'budget', 'chunkWords', 'radius', 'alpha', 'scorer', 'judge', 'infiller'];
const flagOf = (k: string) => `--${k.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`)}`;

function number(flag: string) {
  return (v: string): number => {
    const n = Number(v);
    if (v.trim() === '' || !Number.isFinite(n)) throw new LanternError(`${flag} must be a number, got '${v}'`);
    return n;
  };
}

function oneOf<T extends string>(flag: string, values: readonly T[]) {
  return (v: string): T => {
    if ((values as readonly string[]).includes(v)) return v as T;
    throw new LanternError(`${flag} must be one of ${values.join(', ')}, got '${v}'`);
  };
}

/**
 * Backends by spec: 'lantern' (the bundled model) or 'lantern:<folder or Hub id>'. Models are
 * loaded once, so a judge or infiller naming the same model shares it.
 */
class Backends {
  /** `http`: options for http(s) backends; `main`: the explained backend's spec, the only one --remote-model and `mainOnly` (control vectors) apply to. */
  constructor(private readonly http: OpenBackendOptions = {}, private readonly main?: string, private readonly mainOnly: OpenBackendOptions = {}) {}

  private readonly models = new Map<string, Promise<HookedTransformer>>();
  private readonly backends = new Map<string, LanternBackend>();

  static check(spec: string, flag: string): void {
    if (spec === 'lantern' || (spec.startsWith('lantern:') && spec.length > 'lantern:'.length)) return;
    if (/^https?:\/\/./.test(spec) || (spec.startsWith('gguf:') && spec.length > 'gguf:'.length)) return;
    throw new LanternError(`${flag} '${spec}' is not a backend this build knows; use 'lantern' (the bundled model), 'lantern:<model folder or Hub id>', an OpenAI-compatible http(s):// URL or gguf:<file.gguf>`);
  }

  /** Remote and GGUF backends (src/backends), opened once per spec. */
  private readonly others = new Map<string, Promise<LanguageModelBackend>>();

  model(source: string): Promise<HookedTransformer> {
    let m = this.models.get(source);
    if (!m) {
      m = loadModel(source, { progress: process.stderr.isTTY });
      this.models.set(source, m);
    }
    return m;
  }

  /** The Lantern model behind a spec; for a remote or GGUF backend, the bundled model (e.g. for SMILE's embeddings). */
  static source(spec: string): string {
    return spec === 'lantern' || !spec.startsWith('lantern:') ? defaultModel() : spec.slice('lantern:'.length);
  }

  async open(spec: string): Promise<LanguageModelBackend> {
    if (spec !== 'lantern' && !spec.startsWith('lantern:')) {
      let b = this.others.get(spec);
      if (!b) {
        b = openBackend(spec, spec === this.main ? { ...this.http, ...this.mainOnly } : { ...this.http, model: undefined });
        this.others.set(spec, b);
      }
      return b;
    }
    const source = Backends.source(spec);
    let b = this.backends.get(source);
    if (!b) {
      b = new LanternBackend(await this.model(source));
      this.backends.set(source, b);
    }
    return b;
  }
}

/** Progress on stderr: one rewritten line on a terminal, else a line per tenth of the work. */
function progressReporter(label: string, quiet: boolean): { tick: (done: number, total: number) => void; end: () => void } {
  if (quiet) return { tick: () => {}, end: () => {} };
  const tty = Boolean(process.stderr.isTTY);
  let shown = -1;
  let open = false;
  return {
    tick(done, total) {
      if (tty) {
        process.stderr.write(`\r${label}: ${done}/${total} model calls`);
        open = true;
        return;
      }
      const tenth = Math.floor((10 * done) / total);
      if (tenth > shown) {
        shown = tenth;
        process.stderr.write(`${label}: ${done}/${total} model calls\n`);
      }
    },
    end() {
      if (open) process.stderr.write('\n');
    },
  };
}

function useColor(): boolean {
  if (process.env.NO_COLOR !== undefined || process.env.FORCE_COLOR === '0') return false;
  return Boolean(process.stdout.isTTY) || (process.env.FORCE_COLOR !== undefined && process.env.FORCE_COLOR !== '');
}

export function explainBlackboxCommand(program: Command): void {
  const cmd = program
    .command('explain')
    .description('Black-box explanation of a generation, through any backend: SMILE word importances, or CELL / m-CELL contrastive prompt edits.')
    .addOption(new Option('--method <name>', `one of ${METHODS.join(', ')}`).makeOptionMandatory().argParser(oneOf('--method', METHODS)))
    .requiredOption('-t, --text <text>', 'the prompt')
    .option('--backend <spec>', "the model explained: 'lantern' (the bundled model, default), 'lantern:<model folder or Hub id>', an OpenAI-compatible http(s)://host:port/v1, or gguf:<file.gguf>", 'lantern')
    .option('--max-tokens <n>', `response length in tokens (default ${SMILE_DEFAULTS.maxTokens})`, positiveInt('--max-tokens'))
    .addOption(new Option('--seed <n>', 'seeds every random choice; recorded with the result').default(0).argParser(nonNegativeInt('--seed', 0x7fffffff)))
    .option('--samples <n>', `smile: perturbed prompts (default ${SMILE_DEFAULTS.samples})`, positiveInt('--samples'))
    .option('--keep-prob <p>', `smile: probability of keeping each word (default ${SMILE_DEFAULTS.keepProbability})`, number('--keep-prob'))
    .option('--min-kept <n>', `smile: fewest words a perturbed prompt keeps (default ${SMILE_DEFAULTS.minKept})`, positiveInt('--min-kept'))
    .option('--kernel-width <s>', `smile: σ of the kernel on prompt distance (default ${SMILE_DEFAULTS.kernelWidth})`, number('--kernel-width'))
    .option('--embed-model <folder|hub-id>', 'smile: model whose token vectors give the Wasserstein distances (default: the backend\'s model, else the bundled one)')
    .option('--embed-hook <hook>', "smile: 'hook_embed' (static token embeddings, default) or a residual hook for contextual vectors")
    .option('--concurrency <n>', 'smile: model calls in flight at once (default 1)', positiveInt('--concurrency'))
    .option('--epsilon <e>', `cell/mcell: contrast threshold on |score| (default ${CELL_DEFAULTS.epsilon})`, number('--epsilon'))
    .option('--budget <n>', `cell/mcell: most calls of the explained model, the original included (default ${CELL_DEFAULTS.budget})`, positiveInt('--budget'))
    .option('--chunk-words <k>', `cell/mcell: words per edited chunk (default ${CELL_DEFAULTS.chunkWords})`, positiveInt('--chunk-words'))
    .option('--radius <r>', `cell: new edits within this many chunks of an earlier one (default ${CELL_DEFAULTS.radius})`, nonNegativeInt('--radius'))
    .option('--alpha <a>', `cell: share of centres extending earlier edits (default ${CELL_DEFAULTS.alpha})`, number('--alpha'))
    .addOption(new Option('--scorer <name>', `cell/mcell: ${SCORERS.join(' or ')} (default bleu)`).argParser(oneOf('--scorer', SCORERS)))
    .option('--judge <spec>', 'cell/mcell with --scorer preference: the judge backend (default: the explained backend)')
    .option('--infiller <spec>', 'cell/mcell: the backend that writes replacement chunks (default: the bundled model)')
    .option('--json <file.json>', "write the result as JSON ('-': print the JSON instead of the summary)")
    .option('--quiet', 'no progress output')
    .option('--no-color', 'plain text output')
    .addHelpText('after', [
      '',
      'Examples:',
      '  lantern explain --method smile --text "The old man walked to the river" --samples 64 --json smile.json',
      '  lantern explain --method cell --text "Please write a short story about a dragon." --budget 60 --epsilon 0.5',
      '  lantern explain --method mcell --text "..." --scorer preference --judge lantern:gpt2',
    ].join('\n'));
  for (const o of httpOptions()) cmd.addOption(o);
  cmd.addOption(controlVectorOption());
  cmd.action(async (opts) => {
      const method = opts.method as (typeof METHODS)[number];
      const misplaced = (method === 'smile' ? CELL_ONLY : SMILE_ONLY).find((k) => opts[k] !== undefined);
      if (misplaced) throw new LanternError(`${flagOf(misplaced)} applies only to --method ${method === 'smile' ? 'cell or mcell' : 'smile'}`);
      if (opts.judge !== undefined && opts.scorer !== 'preference') throw new LanternError('--judge applies only to --scorer preference');
      if (method === 'cell' || method === 'mcell') {
        if (method === 'mcell' && (opts.radius !== undefined || opts.alpha !== undefined)) throw new LanternError(`--${opts.radius !== undefined ? 'radius' : 'alpha'} applies only to --method cell (m-CELL tries every chunk)`);
      }
      Backends.check(opts.backend, '--backend');
      if (opts.judge !== undefined) Backends.check(opts.judge, '--judge');
      if (opts.infiller !== undefined) Backends.check(opts.infiller, '--infiller');
      if (opts.json && opts.json !== '-') assertWritable(opts.json, '--json');
      const isHttp = (spec: string | undefined) => spec !== undefined && /^https?:\/\//i.test(spec);
      const httpFlag = HTTP_OPTION_KEYS.find((k) => opts[k] !== undefined);
      if (httpFlag && ![opts.backend, opts.judge, opts.infiller].some(isHttp)) throw new LanternError(`${flagOf(httpFlag)} applies only to an http(s):// backend`);
      if (opts.remoteModel !== undefined && !isHttp(opts.backend)) throw new LanternError('--remote-model applies only to an http(s):// --backend');
      const smileSettings = {
        samples: opts.samples, keepProbability: opts.keepProb, minKept: opts.minKept, kernelWidth: opts.kernelWidth,
        maxTokens: opts.maxTokens, concurrency: opts.concurrency,
      };
      const cellSettings = {
        epsilon: opts.epsilon, budget: opts.budget, chunkWords: opts.chunkWords, radius: opts.radius, alpha: opts.alpha, maxTokens: opts.maxTokens,
      };
      // Settings are checked before any model loads, so a typo costs nothing.
      if (method === 'smile') checkSmileSettings(smileSettings);
      else checkCellSettings(cellSettings);

      const backends = new Backends(httpBackendOptions(opts), opts.backend, { controlVectors: controlVectorsFor(opts, opts.backend) });
      const backend: LanguageModelBackend = await backends.open(opts.backend);
      const progress = progressReporter(method === 'smile' ? 'SMILE' : method === 'cell' ? 'CELL' : 'm-CELL', Boolean(opts.quiet));
      let result: BlackboxResult;
      if (method === 'smile') {
        const embedSource = opts.embedModel ?? Backends.source(opts.backend);
        const embedder = modelEmbedder(await backends.model(embedSource), { hook: opts.embedHook });
        result = await smile(backend, opts.text, { ...smileSettings, embedder, seed: opts.seed, onProgress: progress.tick });
      } else {
        const scorer: ContrastScorer = opts.scorer === 'preference' ? preferenceScorer(await backends.open(opts.judge ?? opts.backend)) : bleuScorer();
        const infiller = backendInfiller(await backends.open(opts.infiller ?? 'lantern'));
        const search = method === 'cell' ? cell : mcell;
        result = await search(backend, opts.text, { ...cellSettings, scorer, infiller, seed: opts.seed, onProgress: progress.tick });
      }
      progress.end();
      assertFinite(result, `the ${method} result`);
      if (opts.json === '-') {
        console.log(JSON.stringify(blackboxToJSON(result), null, 2));
        return;
      }
      if (opts.json) saveBlackboxResult(opts.json, result);
      console.log(renderBlackbox(result, { color: opts.color !== false && useColor() }));
      if (opts.json) console.log(`saved the result to ${opts.json}`);
    });
}
