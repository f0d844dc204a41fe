/**
 * Explaining a dashboard folder's features as a job: the features to explain are the examples,
 * each shard explains and scores a range of them with the backend ({@link explainDashboard},
 * exactly as one feature at a time would) and writes the results as JSON; the merge stores the
 * explanations in the folder and returns every result in feature order. The job records the
 * backend (its id, and the spec and non-secret options workers open it with: API keys stay in the
 * environment each worker reads), the folder, and a hash of its dashboards, so re-running resumes
 * and changed dashboards do not.
 */
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { LanternError } from '../../errors.js';
import { openBackend } from '../../backends/index.js';
import type { LanguageModelBackend } from '../../backends/types.js';
import { createJob, DEFAULT_SHARD_SIZE, jobBackend, JobBackend, JobSpec, readJobData, shardRanges } from '../../engine/jobs/store.js';
import type { Analysis } from '../../engine/jobs/run.js';
import { explainDashboard } from './explain-dashboard.js';
import type { ExplainPrompts, ExplanationResult } from './explain.js';
import { DashboardIndex, readDashboard, readDashboardIndex, writeExplanations } from './store.js';

/** Settings of an explain job (what each feature's explanation depends on besides the backend and the dashboards). */
export interface ExplainJobSettings {
  /** The dashboards' data hash and a sha256 of their index.json and features.jsonl. */
  dashboards: { dataHash: string; sha256: string };
  /** A different backend to simulate with (default: the explainer), opened with the explainer's options. */
  simulatorBackend?: string;
  simulator: 'auto' | 'logprobs' | 'generate';
  detection: boolean;
  fuzzing: boolean;
  prompts: Partial<ExplainPrompts>;
}

/** What the shards of an explain job share: the dashboard folder and its index, the features to explain, and the backends. */
export interface ExplainJobContext {
  folder: string;
  features: number[];
  index: DashboardIndex;
  backend: LanguageModelBackend;
  simulatorBackend?: LanguageModelBackend;
}

/** One feature's explanation and scores, as the job returns them. */
export type FeatureExplanation = { feature: number } & ExplanationResult;

/** sha256 of a dashboard folder's dashboards (index.json, then features.jsonl); explanations, kept apart, do not change it. */
function dashboardsSha256(folder: string): string {
  const h = crypto.createHash('sha256');
  for (const f of ['index.json', 'features.jsonl']) h.update(fs.readFileSync(path.join(folder, f)));
  return h.digest('hex');
}

const settingsOf = (job: JobSpec) => job.settings as unknown as ExplainJobSettings;

type OpenOptions = Parameters<typeof openBackend>[1];

/** The analysis behind `lantern features explain`. */
export const explainAnalysis: Analysis<ExplainJobContext, Record<string, never>, FeatureExplanation[]> = {
  name: 'feature-explain',

  async open(dir, job) {
    const s = settingsOf(job);
    const folder = job.dataset.name;
    const index = readDashboardIndex(folder);
    const sha256 = dashboardsSha256(folder);
    if (sha256 !== s.dashboards.sha256) throw new LanternError(`the dashboards in ${folder} have sha256 ${sha256.slice(0, 16)}…, not the ${s.dashboards.sha256.slice(0, 16)}… job ${job.id} was submitted with`);
    // Keys come from the worker's environment (the variable options.open.apiKeyEnv names), never from the job.
    const { load, options } = jobBackend(job);
    const backend = await openBackend(load, options.open as OpenOptions);
    const simulatorBackend = s.simulatorBackend ? await openBackend(s.simulatorBackend, options.open as OpenOptions) : undefined;
    return { folder, index, features: readJobData<{ feature: number }>(dir, job).map((e) => e.feature), backend, simulatorBackend };
  },

  async runShard({ folder, index, features, backend, simulatorBackend }, job, shard, file) {
    const s = settingsOf(job);
    const [first, last] = job.shards[shard];
    const results: FeatureExplanation[] = [];
    for (const feature of features.slice(first, last)) {
      const d = readDashboard(folder, feature, index);
      const r = await explainDashboard(backend, d, index.random, { prompts: s.prompts, simulator: s.simulator, simulatorBackend, detection: s.detection, fuzzing: s.fuzzing, seed: job.seed });
      results.push({ feature, ...r });
    }
    fs.writeFileSync(file, JSON.stringify(results) + '\n');
  },

  async merge({ folder }, job, files) {
    const results = files.flatMap((f) => JSON.parse(fs.readFileSync(f, 'utf8')) as FeatureExplanation[]);
    writeExplanations(folder, Object.fromEntries(results.map((r) => [r.feature, { text: r.explanation, score: r.score, method: `explain-simulate (${r.simulator})` }])));
    return results;
  },
};

/** Features per shard of an explain job by default: each is a few backend requests. */
export const EXPLAIN_SHARD_FEATURES = Math.max(1, Math.round(DEFAULT_SHARD_SIZE / 32));

/**
 * Creates (or finds) the job explaining `features` of the dashboard folder `folder` with
 * `backend`, `shardFeatures` per shard (default 8).
 */
export function explainJob(dir: string, folder: string, features: number[], backend: JobBackend, opts: Omit<ExplainJobSettings, 'dashboards'> & { seed: number; shardFeatures?: number }): JobSpec {
  const index = readDashboardIndex(folder);
  for (const f of features) if (!Number.isInteger(f) || f < 0 || f >= index.size) throw new LanternError(`feature ${f} outside [0, ${index.size}) of ${folder}`);
  const { seed, shardFeatures, ...rest } = opts;
  const settings: ExplainJobSettings = { dashboards: { dataHash: index.dataHash, sha256: dashboardsSha256(folder) }, ...rest };
  return createJob(dir, {
    analysis: 'feature-explain', backend,
    settings: settings as unknown as Record<string, unknown>, seed, dataset: { name: path.resolve(folder) },
    shards: shardRanges(features.length, shardFeatures ?? EXPLAIN_SHARD_FEATURES), ext: 'json',
  }, features.map((feature) => ({ feature })));
}
