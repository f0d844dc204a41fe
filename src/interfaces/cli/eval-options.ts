/**
 * What the evaluation commands (judge, arena, chainpoll, mcq, self-explain) share: the judge
 * backend and its HTTP settings, the run store, concurrency, prices, the progress line, and
 * writing the report.
 */
import fs from 'node:fs';
import path from 'node:path';
import { Command, Option } from 'commander';
import { openBackend } from '../../backends/index.js';
import { LanternBackend } from '../../backends/lantern.js';
import type { LanguageModelBackend } from '../../backends/types.js';
import type { JobBackend } from '../../engine/jobs/store.js';
import { LanternError } from '../../errors.js';
import { assertFinite } from '../../finite.js';
import { EvalStore } from '../../methods/evaluation/store.js';
import { JudgeRunner } from '../../methods/evaluation/runner.js';
import { loadModel } from '../../models/load.js';
import { defaultModel } from './defaults.js';
import { nonNegativeInt, positiveInt } from './forward.js';
import { httpBackendOptions, httpOptions } from './http-options.js';
import { assertWritable } from './output.js';

/** The backend a command talks to: `lantern` (the bundled model), `lantern:<model>`, `http(s)://…/v1` or `gguf:<file>`. */
export function backendOption(flag = '--judge', what = 'the judge'): Option {
  return new Option(`${flag} <spec>`, `${what}: 'lantern' (the bundled model, default), 'lantern:<model folder or Hub id>', an OpenAI-compatible http(s)://host:port/v1, or gguf:<file.gguf>`).default('lantern');
}

/** Adds the options every judge-driven command takes. */
export function addRunOptions(cmd: Command): Command {
  for (const o of httpOptions()) cmd.addOption(o);
  return cmd
    .option('--store <file>', 'SQLite file keeping every request and verdict; a re-run answers finished requests from it (default: in memory)')
    .option('--run-id <id>', 'resume (or name) a stored run')
    .option('--concurrency <n>', 'requests in flight at once (default 4)', positiveInt('--concurrency'))
    .option('--prices <prompt,completion>', 'price per million prompt and completion tokens, for the cost line')
    .addOption(new Option('--seed <n>', 'seeds sampling; recorded with the result').default(0).argParser(nonNegativeInt('--seed', 0x7fffffff)))
    .option('--json <file>', 'write the full report as JSON')
    .option('--quiet', 'no progress line');
}

function prices(v: unknown): { prompt: number; completion: number } | undefined {
  if (v === undefined) return undefined;
  const parts = String(v).split(',').map(Number);
  if (parts.length !== 2 || !parts.every((x) => Number.isFinite(x) && x >= 0)) throw new LanternError(`--prices must be two non-negative numbers 'prompt,completion', got '${v}'`);
  return { prompt: parts[0], completion: parts[1] };
}

/** Opens the backend named by a spec, with the command's HTTP settings. */
export async function openSpec(spec: string, opts: Record<string, any>): Promise<LanguageModelBackend> {
  if (spec === 'lantern' || spec.startsWith('lantern:')) {
    const source = spec === 'lantern' ? defaultModel() : spec.slice('lantern:'.length);
    return new LanternBackend(await loadModel(source, { progress: process.stderr.isTTY }));
  }
  return openBackend(spec, { ...httpBackendOptions(opts), prices: prices(opts.prices) });
}

/**
 * How a job's workers open the backend `spec` (given with `flag`): the spec with local files made absolute and the
 * bundled model named, and the command's HTTP settings. The API key stays in the environment
 * variable --api-key-env names (each worker reads its own); a URL with credentials in it is refused
 * rather than written to job.json. Checked before the judge is opened.
 */
export function backendRecord(spec: string, opts: Record<string, any>, flag = '--judge'): Omit<JobBackend, 'id'> {
  let load = spec;
  if (/^https?:\/\//i.test(spec)) {
    let url: URL;
    try {
      url = new URL(spec);
    } catch {
      throw new LanternError(`${flag}: not a URL: '${spec}' (give e.g. http://127.0.0.1:8000/v1)`);
    }
    if (url.username || url.password) throw new LanternError(`${flag} ${url.protocol}//…@${url.host}: a job does not keep credentials; give the key in an environment variable (--api-key-env) instead of the URL`);
  } else if (spec === 'lantern') {
    load = `lantern:${defaultModel()}`;
  } else {
    const [scheme, file] = spec.startsWith('gguf:') ? ['gguf:', spec.slice(5)] : ['lantern:', spec.replace(/^lantern:/, '')];
    load = `${scheme}${fs.existsSync(file) ? path.resolve(file) : file}`;
  }
  const { model, api, retries, timeoutMs, apiKeyEnv } = httpBackendOptions(opts);
  const open = Object.fromEntries(Object.entries({ model, api, retries, timeoutMs, apiKeyEnv, prices: prices(opts.prices) }).filter(([, v]) => v !== undefined));
  return { load, options: { open, ...(opts.concurrency !== undefined ? { concurrency: opts.concurrency } : {}) } };
}

/** Progress on stderr: one rewritten line on a terminal, else a line per tenth. */
export function progressLine(label: string, quiet: boolean): { tick: (done: number, total: number) => void; end: () => void } {
  if (quiet) return { tick: () => {}, end: () => {} };
  const tty = Boolean(process.stderr.isTTY);
  let shown = -1;
  let open = false;
  return {
    tick(done, total) {
      const width = 24;
      const filled = Math.round((width * done) / Math.max(total, 1));
      const line = `${label} [${'#'.repeat(filled)}${'.'.repeat(width - filled)}] ${done}/${total}`;
      if (tty) {
        process.stderr.write(`\r${line}`);
        open = true;
        return;
      }
      const tenth = Math.floor((10 * done) / Math.max(total, 1));
      if (tenth > shown) {
        shown = tenth;
        process.stderr.write(`${line}\n`);
      }
    },
    end() {
      if (open) process.stderr.write('\n');
    },
  };
}

/** The judge behind a runner with the command's store, concurrency and progress. */
export async function openRunner(opts: Record<string, any>, label: string): Promise<{ runner: JudgeRunner; done: () => Promise<void> }> {
  if (opts.json) assertWritable(opts.json, '--json');
  if (opts.prices !== undefined) prices(opts.prices);
  const judge = await openSpec(opts.judge, opts);
  const store = new EvalStore(opts.store ?? ':memory:');
  const progress = progressLine(label, Boolean(opts.quiet));
  const runner = new JudgeRunner(judge, { store, concurrency: opts.concurrency, progress: progress.tick });
  return {
    runner,
    done: async () => {
      progress.end();
      store.close();
      await judge.close?.();
    },
  };
}

/** Writes the report when --json names a file. */
export function writeReport(opts: Record<string, any>, report: unknown): void {
  if (!opts.json) return;
  assertFinite(report, 'the report');
  fs.writeFileSync(opts.json, JSON.stringify(report, null, 2) + '\n');
  console.log(`saved JSON to ${opts.json}`);
}

/** A usage line: requests sent, answered from the store, failed, tokens, cost. */
export function usageLine(u: { requests: number; fromStore: number; failed: number; promptTokens: number; completionTokens: number; cost?: number }): string {
  return `requests: ${u.requests} sent, ${u.fromStore} from the store, ${u.failed} failed; tokens: ${u.promptTokens} prompt + ${u.completionTokens} completion${u.cost !== undefined ? `; cost ${u.cost.toFixed(4)}` : ''}`;
}

/** A number for a table cell. */
export function fmt(v: number | null | undefined, digits = 3): string {
  return v === null || v === undefined || !Number.isFinite(v) ? '-' : v.toFixed(digits);
}
