/**
 * Feature dashboards as a job: the corpus rows are the examples, shards cover whole batches of
 * rows, and each shard writes its {@link DashboardPart} (top contexts, histogram-bin samples with
 * their counts, sums, the random contexts in its rows) as JSON lines: the rows and random contexts,
 * then one line per feature, so no shard is ever one string, however many features the source
 * has. The merge folds the parts in order, a line at a time ({@link mergeDashboardParts}). A shard is a pure function of the model, the feature source (an
 * SAE checked by its content hash), the settings, its rows and the seed, so the merged dashboards
 * are the same however many workers ran the shards, in this process or on a queue.
 */
import fs from 'node:fs';
import { LanternError } from '../../errors.js';
import type { HookedTransformer } from '../../models/hooked.js';
import { createJob, JobSpec, readJobData, shardRanges } from '../../engine/jobs/store.js';
import type { Analysis } from '../../engine/jobs/run.js';
import { readLines } from '../../engine/jobs/lines.js';
import { modelRef, openJobModel } from '../representations/activations-job.js';
import { corpusExamples, joinCorpus, NEURONS_SHARD_ROWS, RowExample } from '../neurons/job.js';
import { DashboardOptions, dashboardPart, DashboardPart, DashboardSet, DashboardSettings, dashboardSettings, FeaturePart, mergeDashboardParts } from './dashboards.js';
import { FeatureSourceSpec, JobFeatureSource, openJobFeatureSource } from './open.js';
import type { FeatureSource } from './source.js';

/** What the shards of a dashboards job share: the model, the feature source and the whole corpus (random contexts are drawn over all of it). */
export interface DashboardsJobContext {
  model: HookedTransformer;
  source: FeatureSource;
  tokens: number[];
}

/** A dashboards job's settings: the dashboards', the source as workers open it (and an SAE's hash), and the corpus tokens after the last row. */
interface DashboardsJobSettings {
  dashboards: DashboardSettings;
  source: FeatureSourceSpec;
  saeSha256?: string;
  tail: number[];
}

const settingsOf = (job: JobSpec) => job.settings as unknown as DashboardsJobSettings;

/** The analysis behind `lantern features dashboards`. */
export const dashboardsAnalysis: Analysis<DashboardsJobContext, Record<string, never>, DashboardSet> = {
  name: 'feature-dashboards',

  async open(dir, job, opts) {
    const s = settingsOf(job);
    const model = await openJobModel(job, opts);
    const { source } = await openJobFeatureSource(model, s.source, s.saeSha256);
    return { model, source, tokens: joinCorpus(readJobData<RowExample>(dir, job), s.tail) };
  },

  async runShard({ model, source, tokens }, job, shard, file) {
    const [first, last] = job.shards[shard];
    const { features, ...head } = await dashboardPart(model, source, tokens, settingsOf(job).dashboards, first, last, shard);
    const fd = fs.openSync(file, 'w');
    try {
      fs.writeSync(fd, JSON.stringify(head) + '\n');
      for (const f of features) fs.writeSync(fd, JSON.stringify(f) + '\n');
    } finally {
      fs.closeSync(fd);
    }
  },

  async merge({ model, source, tokens }, job, files) {
    // Each part is read as the fold reaches it, a feature at a time.
    function* parts(): Generator<DashboardPart> {
      for (const file of files) {
        const lines = readLines(file);
        const head = lines.next();
        if (head.done) throw new LanternError(`${file} is empty; remove the job's folder and run it again`);
        yield { ...(JSON.parse(head.value) as Omit<DashboardPart, 'features'>), features: { [Symbol.iterator]: () => map(lines, (l) => JSON.parse(l) as FeaturePart) } };
      }
    }
    return mergeDashboardParts(model, source, tokens, settingsOf(job).dashboards, parts());
  },
};

function* map<T, U>(it: Iterator<T>, f: (x: T) => U): Generator<U> {
  try {
    for (let r = it.next(); !r.done; r = it.next()) yield f(r.value);
  } finally {
    // A merge that stops early (a bad part) closes the file.
    it.return?.();
  }
}

/**
 * Creates (or finds) the dashboards job for `source` over `tokens` under `dir`, `shardRows` corpus
 * rows per shard (default 64), rounded up to whole batches so every forward sees the rows a single
 * pass would. `source` comes from {@link openJobFeatureSource}.
 */
export async function dashboardsJob(dir: string, model: HookedTransformer, source: JobFeatureSource, tokens: ArrayLike<number>, opts: Omit<DashboardOptions, 'progress'> & { shardRows?: number; corpus?: string } = {}): Promise<JobSpec> {
  const dashboards = dashboardSettings(model, tokens, opts);
  const { rows, tail } = corpusExamples(tokens, dashboards.seq);
  const asked = opts.shardRows ?? NEURONS_SHARD_ROWS;
  if (!Number.isInteger(asked) || asked < 1) throw new LanternError(`shard size must be a positive integer, got ${asked}`);
  const shardRows = Math.ceil(asked / dashboards.batchSize) * dashboards.batchSize;
  const settings: DashboardsJobSettings = { dashboards, source: source.spec, ...(source.saeSha256 ? { saeSha256: source.saeSha256 } : {}), tail };
  return createJob(dir, {
    analysis: 'feature-dashboards', model: await modelRef(model),
    settings: settings as unknown as Record<string, unknown>, seed: dashboards.seed, dataset: { name: opts.corpus ?? '' },
    shards: shardRanges(rows.length, shardRows), ext: 'json',
  }, rows);
}
