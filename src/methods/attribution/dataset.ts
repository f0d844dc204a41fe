/**
 * Attribution over a dataset of prompts: every example is attributed on its own (with its own
 * target), and the faithfulness metrics are averaged over every target row of every example.
 * {@link attributeDataset} computes it directly; {@link attributionJob} and
 * {@link attributionAnalysis} compute it as a job whose shards are example ranges, each written
 * as a JSON file of its examples' results. Both paths build the result with
 * {@link datasetAttribution} from the same per-example results in example order, so the saved
 * files are identical byte for byte.
 */
import fs from 'node:fs';
import { LanternError, nearest } from '../../errors.js';
import type { HookedTransformer } from '../../models/hooked.js';
import { readRows } from '../representations/data.js';
import { createJob, jobModel, JobSpec, readJobData, shardRanges } from '../../engine/jobs/store.js';
import type { Analysis } from '../../engine/jobs/run.js';
import { modelRef, openJobModel } from '../representations/activations-job.js';
import { attribute, checkMethod, AttributionSettings } from './index.js';
import type { AopcBins } from './faithfulness.js';
import { AttributionResult, weightsHash } from './result.js';
import type { ScoreKind } from './targets.js';

/** One prompt of an attribution dataset: the text, and optionally the target (one token, or a continuation) and a one-token foil. */
export interface AttributionExample {
  text: string;
  target?: string;
  foil?: string;
}

/** How every example of a dataset is attributed (as {@link attribute}'s options, without the prompt and target). */
export interface DatasetAttributionOptions {
  method: string;
  kind?: ScoreKind;
  settings?: AttributionSettings;
  /** Seeds the sampling methods; every example uses it. Default 0. */
  seed?: number;
  /** Also compute faithfulness per example and its averages over the dataset. */
  evaluate?: boolean;
  aopc?: AopcBins;
  special?: boolean;
  /** The dataset's name, saved with the result. */
  dataset?: string;
}

/** One example's attribution: its index in the dataset, and the result without the fields every example shares. */
export type ExampleAttribution = { example: number } & Omit<AttributionResult, 'model' | 'method' | 'seed'>;

/** The mean of one faithfulness metric over the target rows where it is defined, and how many rows that is. */
export interface MetricMean {
  mean: number | null;
  n: number;
}

/** Faithfulness averaged over every target row of every example. */
export interface FaithfulnessAggregate {
  rows: number;
  aopcComprehensiveness: MetricMean;
  aopcSufficiency: MetricMean;
  kendallTauLoo: MetricMean;
  deletionAucNormalized: MetricMean;
  insertionAucNormalized: MetricMean;
}

/** The `format` of a saved dataset attribution. */
export const DATASET_ATTRIBUTION_FORMAT = 'lantern-attribution-dataset';

/** Attribution over a dataset: model, method, settings, seed, each example's result, and the faithfulness aggregates. */
export interface DatasetAttribution {
  format: typeof DATASET_ATTRIBUTION_FORMAT;
  version: 1;
  model: { source: string; weightsSha256: string; config: Record<string, unknown> };
  method: string;
  kind: ScoreKind;
  settings: Record<string, unknown>;
  seed: number;
  dataset: { name: string; examples: number };
  results: ExampleAttribution[];
  faithfulness?: FaithfulnessAggregate;
}

/** Columns of a data file read by {@link loadAttributionExamples}. */
export interface AttributionColumns {
  /** Default 'prompt', or 'text' when the file has no 'prompt' column. */
  promptColumn?: string;
  /** Default 'target'; the column is optional unless named. */
  targetColumn?: string;
  /** Default 'foil'; the column is optional unless named. */
  foilColumn?: string;
}

/** Prompts (with optional targets and foils) from a .jsonl, .csv or .parquet file. */
export async function loadAttributionExamples(file: string, cols: AttributionColumns = {}): Promise<AttributionExample[]> {
  const rows = await readRows(file);
  if (rows.length === 0) throw new LanternError(`${file} has no rows`);
  // JSONL rows may leave out an optional column (a row without a foil), so every row's keys count.
  const columns = [...new Set(rows.flatMap((r) => Object.keys(r)))];
  const need = (c: string, what: string) => {
    if (!columns.includes(c)) throw new LanternError(`${file} has no ${what} column ${JSON.stringify(c)}; its columns nearest to it: ${nearest(c, columns).map((x) => JSON.stringify(x)).join(', ')}`);
    return c;
  };
  const prompt = need(cols.promptColumn ?? (columns.includes('prompt') || !columns.includes('text') ? 'prompt' : 'text'), 'prompt');
  const target = cols.targetColumn !== undefined ? need(cols.targetColumn, 'target') : columns.includes('target') ? 'target' : undefined;
  const foil = cols.foilColumn !== undefined ? need(cols.foilColumn, 'foil') : columns.includes('foil') ? 'foil' : undefined;
  const str = (r: Record<string, unknown>, c: string | undefined, i: number, required: boolean) => {
    const v = c === undefined ? undefined : r[c];
    if (v === undefined || v === null || v === '') {
      if (required) throw new LanternError(`${file}: row ${i} has no text in column ${JSON.stringify(c)}`);
      return undefined;
    }
    if (typeof v !== 'string') throw new LanternError(`${file}: row ${i} column ${JSON.stringify(c)} is ${JSON.stringify(v)}, not text`);
    return v;
  };
  return rows.map((r, i) => {
    const ex: AttributionExample = { text: str(r, prompt, i, true)! };
    const t = str(r, target, i, false);
    const f = str(r, foil, i, false);
    if (t !== undefined) ex.target = t;
    if (f !== undefined) ex.foil = f;
    return ex;
  });
}

/** Attributes one example; a multi-token target is a teacher-forced continuation, as in `lantern attribute`. */
async function attributeExample(model: HookedTransformer, ex: AttributionExample, index: number, opts: DatasetAttributionOptions): Promise<ExampleAttribution> {
  let target: string | undefined;
  let continuation: string | undefined;
  if (ex.foil !== undefined && ex.target === undefined) throw new LanternError(`example ${index} has a foil but no target to contrast it with`);
  if (ex.target !== undefined) {
    const n = model.encode(ex.target).length;
    if (n === 0) throw new LanternError(`example ${index} has an empty target`);
    if (n > 1 && ex.foil !== undefined) throw new LanternError(`example ${index}: target ${JSON.stringify(ex.target)} is ${n} tokens; a foil needs a one-token target`);
    if (n > 1) continuation = ex.target;
    else target = ex.target;
  }
  try {
    const { model: _m, method: _method, seed: _s, ...rest } = await attribute(model, {
      text: ex.text, target, foil: ex.foil, continuation, method: opts.method, kind: opts.kind, settings: opts.settings,
      seed: opts.seed, evaluate: opts.evaluate, aopc: opts.aopc, special: opts.special,
    });
    return { example: index, ...rest };
  } catch (e) {
    if (e instanceof LanternError) throw new LanternError(`example ${index}: ${e.message}`);
    throw e;
  }
}

function mean(xs: (number | null)[]): MetricMean {
  const defined = xs.filter((x): x is number => x !== null);
  // Summed in example order, so every run of the same results gives the same bits.
  return { mean: defined.length ? defined.reduce((a, b) => a + b, 0) / defined.length : null, n: defined.length };
}

/** Faithfulness averaged over every target row of the results that have it. */
export function aggregateFaithfulness(results: readonly ExampleAttribution[]): FaithfulnessAggregate | undefined {
  const rows = results.flatMap((r) => r.faithfulness?.rows ?? []);
  if (!results.some((r) => r.faithfulness)) return undefined;
  return {
    rows: rows.length,
    aopcComprehensiveness: mean(rows.map((r) => r.aopcComprehensiveness)),
    aopcSufficiency: mean(rows.map((r) => r.aopcSufficiency)),
    kendallTauLoo: mean(rows.map((r) => r.kendallTauLoo)),
    deletionAucNormalized: mean(rows.map((r) => r.deletionAucNormalized)),
    insertionAucNormalized: mean(rows.map((r) => r.insertionAucNormalized)),
  };
}

/**
 * The dataset attribution made of per-example results given in example order. The results pass
 * through JSON (as shard files do), so a direct run and a job build the same value.
 */
export function datasetAttribution(model: DatasetAttribution['model'], opts: DatasetAttributionOptions, results: ExampleAttribution[]): DatasetAttribution {
  const same = JSON.parse(JSON.stringify(results)) as ExampleAttribution[];
  const faithfulness = aggregateFaithfulness(same);
  return {
    format: DATASET_ATTRIBUTION_FORMAT, version: 1, model, method: opts.method, kind: opts.kind ?? 'logprob',
    settings: JSON.parse(JSON.stringify(opts.settings ?? {})), seed: opts.seed ?? 0,
    dataset: { name: opts.dataset ?? '', examples: same.length }, results: same, ...(faithfulness ? { faithfulness } : {}),
  };
}

const modelInfo = async (model: HookedTransformer, source = model.source) => ({ source, weightsSha256: await weightsHash(model), config: { ...model.cfg } as Record<string, unknown> });

/** Attributes every example in order, in this process, without a job. */
export async function attributeDataset(model: HookedTransformer, examples: readonly AttributionExample[], opts: DatasetAttributionOptions): Promise<DatasetAttribution> {
  checkMethod(opts.method);
  const results: ExampleAttribution[] = [];
  for (let i = 0; i < examples.length; i++) results.push(await attributeExample(model, examples[i], i, opts));
  return datasetAttribution(await modelInfo(model), opts, results);
}

/** Writes a dataset attribution as JSON. */
export function saveDatasetAttribution(file: string, r: DatasetAttribution): void {
  fs.writeFileSync(file, JSON.stringify(r, null, 2) + '\n');
}

/** What the shards of one attribution job share. */
export interface AttributionJobContext {
  model: HookedTransformer;
  examples: AttributionExample[];
}

const jobOptions = (job: JobSpec) => job.settings as unknown as DatasetAttributionOptions;

/** The analysis behind `lantern attribute --data`: each shard attributes its examples; the merge concatenates them and averages faithfulness. */
export const attributionAnalysis: Analysis<AttributionJobContext, { out?: string }, DatasetAttribution> = {
  name: 'attribution',

  async open(dir, job, opts) {
    return { model: await openJobModel(job, opts), examples: readJobData<AttributionExample>(dir, job) };
  },

  async runShard({ model, examples }, job, shard, file) {
    const [start, end] = job.shards[shard];
    const results: ExampleAttribution[] = [];
    for (let i = start; i < end; i++) results.push(await attributeExample(model, examples[i], i, { ...jobOptions(job), seed: job.seed }));
    fs.writeFileSync(file, JSON.stringify(results) + '\n');
  },

  async merge({ model }, job, files, target) {
    const results = files.flatMap((f) => JSON.parse(fs.readFileSync(f, 'utf8')) as ExampleAttribution[]);
    const r = datasetAttribution(await modelInfo(model, jobModel(job).source), { ...jobOptions(job), seed: job.seed }, results);
    if (target.out) saveDatasetAttribution(target.out, r);
    return r;
  },
};

/** Examples per shard by default: attribution costs tens of forwards per example. */
export const ATTRIBUTION_SHARD_SIZE = 16;

/** Creates (or finds) the job attributing `examples` under `dir`, `shardSize` examples per shard (default 16). */
export async function attributionJob(dir: string, model: HookedTransformer, examples: readonly AttributionExample[], opts: DatasetAttributionOptions & { shardSize?: number }): Promise<JobSpec> {
  checkMethod(opts.method);
  if (examples.length === 0) throw new LanternError('the dataset has no examples to attribute');
  const { shardSize, seed, ...rest } = opts;
  const settings = JSON.parse(JSON.stringify({ ...rest, kind: rest.kind ?? 'logprob', settings: rest.settings ?? {}, dataset: rest.dataset ?? '' })) as Record<string, unknown>;
  return createJob(dir, {
    analysis: 'attribution', model: await modelRef(model),
    settings, seed: seed ?? 0, dataset: { name: opts.dataset ?? '' },
    shards: shardRanges(examples.length, shardSize ?? ATTRIBUTION_SHARD_SIZE), ext: 'json',
  }, examples.map((e) => ({ text: e.text, ...(e.target !== undefined ? { target: e.target } : {}), ...(e.foil !== undefined ? { foil: e.foil } : {}) })));
}
