/**
 * Neuron statistics as a job: the corpus rows are the examples, each shard sums its rows (the
 * main pass's accumulators, {@link accumulateNeuronRows}) into a JSON file, and the merge adds the
 * shards in order and labels the neurons. A direct {@link neuronStats} with `blockRows` equal to
 * the shard size adds the same sums in the same order, so both give the same bits.
 */
import fs from 'node:fs';
import { LanternError } from '../../errors.js';
import type { HookedTransformer } from '../../models/hooked.js';
import { createJob, DEFAULT_SHARD_SIZE, JobSpec, readJobData, shardRanges } from '../../engine/jobs/store.js';
import type { Analysis } from '../../engine/jobs/run.js';
import { modelRef, openJobModel } from '../representations/activations-job.js';
import {
  accumulateNeuronRows, addNeuronAccumulators, corpusRows, finishNeuronStats, NeuronAccumulators, NeuronStats, NeuronStatsOptions, NeuronStatsSettings, neuronStatsSettings,
} from './stats.js';

/** What the shards of a neurons job share: the model and the whole corpus (n-gram counts and row offsets need all of it). */
export interface NeuronsJobContext {
  model: HookedTransformer;
  tokens: number[];
}

/** One example of a job over corpus rows: a row's tokens (the corpus is their concatenation, then the job's `tail`). */
export interface RowExample { tokens: number[] }

/** A corpus as a job's examples: its rows of `seq` tokens ({@link corpusRows}), and the tokens after the last row. */
export function corpusExamples(tokens: ArrayLike<number>, seq: number): { rows: RowExample[]; tail: number[] } {
  const rows = corpusRows(tokens, seq);
  const covered = rows.reduce((n, r) => n + r.length, 0);
  return {
    rows: rows.map(({ start, length }) => ({ tokens: Array.from({ length }, (_, i) => tokens[start + i]) })),
    tail: Array.from({ length: tokens.length - covered }, (_, i) => tokens[covered + i]),
  };
}

/** The corpus of a job over corpus rows, as {@link corpusExamples} split it. */
export const joinCorpus = (rows: RowExample[], tail: number[]): number[] => [...rows.flatMap((r) => r.tokens), ...tail];

/** The job's settings: the statistics' settings, and the corpus tokens after the last row (a row needs two). */
interface NeuronsJobSettings { stats: NeuronStatsSettings; tail: number[] }

const FLOAT_FIELDS = ['sum', 'sumSq', 'sumAF', 'sumP', 'max', 'fires', 'countP'] as const;

// JSON keeps every float64 exactly (shortest round-trip digits); only -Infinity (the maximum of no
// token) needs spelling out.
function accumulatorsToJSON(a: NeuronAccumulators): string {
  const o: Record<string, unknown> = { sumF: a.sumF, sumFF: a.sumFF, top: a.top };
  for (const k of FLOAT_FIELDS) o[k] = Array.from(a[k], (x) => (x === -Infinity ? '-Infinity' : x));
  return JSON.stringify(o);
}

function accumulatorsFromJSON(text: string): NeuronAccumulators {
  const o = JSON.parse(text) as Record<string, any>;
  const arrays = Object.fromEntries(FLOAT_FIELDS.map((k) => [k, Float64Array.from(o[k] as (number | string)[], (x) => (x === '-Infinity' ? -Infinity : (x as number)))]));
  return { ...(arrays as Pick<NeuronAccumulators, (typeof FLOAT_FIELDS)[number]>), sumF: o.sumF, sumFF: o.sumFF, top: o.top };
}

/** The analysis behind `lantern neurons`. */
export const neuronsAnalysis: Analysis<NeuronsJobContext, Record<string, never>, NeuronStats> = {
  name: 'neurons',

  async open(dir, job, opts) {
    const rows = readJobData<RowExample>(dir, job);
    return { model: await openJobModel(job, opts), tokens: joinCorpus(rows, (job.settings as unknown as NeuronsJobSettings).tail) };
  },

  async runShard({ model, tokens }, job, shard, file) {
    const [first, last] = job.shards[shard];
    fs.writeFileSync(file, accumulatorsToJSON(await accumulateNeuronRows(model, tokens, (job.settings as unknown as NeuronsJobSettings).stats, first, last)) + '\n');
  },

  async merge({ model, tokens }, job, files) {
    const { stats } = job.settings as unknown as NeuronsJobSettings;
    const parts = files.map((f) => accumulatorsFromJSON(fs.readFileSync(f, 'utf8')));
    return finishNeuronStats(model, tokens, stats, addNeuronAccumulators(parts, stats.topK));
  },
};

/** Rows per shard by default: as many tokens as an activations shard's examples hold, roughly. */
export const NEURONS_SHARD_ROWS = Math.max(1, Math.round(DEFAULT_SHARD_SIZE / 4));

/**
 * Creates (or finds) the neuron-statistics job over `tokens` under `dir`, `shardRows` corpus rows
 * per shard (default 64). `neuronStats(model, tokens, { ...opts, blockRows: shardRows })` computes the same.
 */
export async function neuronsJob(dir: string, model: HookedTransformer, tokens: ArrayLike<number>, opts: NeuronStatsOptions & { shardRows?: number; corpus?: string } = {}): Promise<JobSpec> {
  const stats = neuronStatsSettings(model, tokens, opts);
  const { rows, tail } = corpusExamples(tokens, stats.seq);
  const shardRows = opts.shardRows ?? NEURONS_SHARD_ROWS;
  if (!Number.isInteger(shardRows) || shardRows < 1) throw new LanternError(`shard size must be a positive integer, got ${shardRows}`);
  const settings: NeuronsJobSettings = { stats, tail };
  return createJob(dir, {
    analysis: 'neurons', model: await modelRef(model),
    settings: settings as unknown as Record<string, unknown>, seed: 0, dataset: { name: opts.corpus ?? '' },
    shards: shardRanges(rows.length, shardRows), ext: 'json',
  }, rows);
}
