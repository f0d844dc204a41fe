/**
 * Activation harvesting as a job: each shard harvests its example range to a safetensors file
 * (rows, their example and position, the activations at each hook); the merge concatenates the
 * shards in order and writes the same activations file a direct {@link harvestToFile} writes.
 * Shards start on batch boundaries, so every forward sees the same prompts as the direct run
 * and the result is identical to the bit.
 */
import fs from 'node:fs';
import path from 'node:path';
import { LanternError } from '../../errors.js';
import type { HookedTransformer } from '../../models/hooked.js';
import { loadModel } from '../../models/load.js';
import { readFloat32, readInt32, readSafetensorsHeader, writeSafetensors, WritableTensor } from '../../models/safetensors.js';
import { createJob, DEFAULT_SHARD_SIZE, jobModel, JobSpec, readJobData, shardRanges } from '../../engine/jobs/store.js';
import type { Analysis, OpenOptions } from '../../engine/jobs/run.js';
import { weightsHash } from '../attribution/result.js';
import { ActivationBatch, activationBatches, activationsMeta, ActivationsMeta, HarvestExample, hookWidth, parsePositions, Positions, positionsLabel, writeActivations } from './activations.js';

/** The settings of an activations job. */
export interface ActivationsJobSettings {
  hooks: string[];
  /** As {@link positionsLabel} writes them. */
  positions: string;
  batchSize: number;
  /** The dataset's name, saved with the activations. */
  dataset: string;
}

/** What the shards of one activations job share. */
export interface ActivationsJobContext {
  model: HookedTransformer;
  examples: HarvestExample[];
}

/** Where and how the merged activations are written. */
export interface ActivationsTarget {
  out: string;
  shardRows?: number;
}

const parsePositionsLabel = (s: string): Positions => (s.startsWith('token:') ? { token: s.slice('token:'.length) } : parsePositions(s));

const models = new Map<string, Promise<HookedTransformer>>();

/** Loads (once per process and executor) the job's model and checks it is the one the job was submitted with. */
export async function openJobModel(job: JobSpec, opts: OpenOptions): Promise<HookedTransformer> {
  const spec = jobModel(job);
  const key = `${spec.load}\u0000${spec.weightsSha256}`;
  let p = models.get(key);
  if (!p) {
    p = (async () => {
      const model = await loadModel(spec.load, { executor: opts.executor });
      // Shown as the user gave it, as the direct command saves it.
      (model as { source: string }).source = spec.source;
      const hash = await weightsHash(model);
      if (hash !== spec.weightsSha256) throw new LanternError(`the model at ${spec.load} has weights sha256 ${hash.slice(0, 16)}…, not the ${spec.weightsSha256.slice(0, 16)}… job ${job.id} was submitted with`);
      return model;
    })();
    p.catch(() => models.delete(key));
    models.set(key, p);
  }
  return p;
}

/** A job's model record for `model`: its source, where workers load it from (an absolute path for a folder), and its weights hash. */
export async function modelRef(model: HookedTransformer): Promise<NonNullable<JobSpec['model']>> {
  return { source: model.source, load: fs.existsSync(model.source) ? path.resolve(model.source) : model.source, weightsSha256: await weightsHash(model) };
}

/** The analysis behind `lantern activations`. */
export const activationsAnalysis: Analysis<ActivationsJobContext, ActivationsTarget, ActivationsMeta> = {
  name: 'activations',

  async open(dir, job, opts) {
    return { model: await openJobModel(job, opts), examples: readJobData<HarvestExample>(dir, job) };
  },

  async runShard({ model, examples }, job, shard, file) {
    const s = job.settings as unknown as ActivationsJobSettings;
    const [start, end] = job.shards[shard];
    const hooks = s.hooks;
    const widths = hooks.map((h) => hookWidth(model, h));
    const batches: ActivationBatch[] = [];
    const texts = examples.slice(start, end).map((e) => e.text);
    for await (const b of activationBatches(model, texts, { hooks, positions: parsePositionsLabel(s.positions), batchSize: s.batchSize, firstExample: start })) batches.push(b);
    const rows = batches.reduce((n, b) => n + b.rows, 0);
    const cat = (pick: (b: ActivationBatch) => Int32Array | Float32Array, out: Int32Array | Float32Array, width = 1) => {
      let r = 0;
      for (const b of batches) { out.set(pick(b), r * width); r += b.rows; }
      return out;
    };
    const tensors: Record<string, WritableTensor> = {
      example: { dtype: 'I32', shape: [rows], data: cat((b) => b.example, new Int32Array(rows)) },
      position: { dtype: 'I32', shape: [rows], data: cat((b) => b.position, new Int32Array(rows)) },
    };
    hooks.forEach((h, j) => (tensors[`acts.${h}`] = { dtype: 'F32', shape: [rows, widths[j]], data: cat((b) => b.acts[h], new Float32Array(rows * widths[j]), widths[j]) }));
    writeSafetensors(file, tensors, { job: job.id, shard: String(shard) });
  },

  async merge({ model, examples }, job, files, target) {
    const s = job.settings as unknown as ActivationsJobSettings;
    const headers = files.map(readSafetensorsHeader);
    const rows = headers.reduce((n, h) => n + h.tensors.get('example')!.shape[0], 0);
    const meta = activationsMeta(model, examples, { hooks: s.hooks, positions: parsePositionsLabel(s.positions), dataset: s.dataset, seed: job.seed }, rows);
    async function* batches(): AsyncGenerator<ActivationBatch> {
      for (const h of headers) {
        const n = h.tensors.get('example')!.shape[0];
        yield { rows: n, example: readInt32(h, 'example'), position: readInt32(h, 'position'), acts: Object.fromEntries(s.hooks.map((k) => [k, readFloat32(h, `acts.${k}`)])) };
      }
    }
    return writeActivations(target.out, examples, meta, batches(), target.shardRows);
  },
};

/** Options for {@link activationsJob}. */
export interface ActivationsJobOptions {
  hooks: string[];
  positions?: Positions;
  /** Prompts per forward (default 32). */
  batchSize?: number;
  /** Examples per shard, rounded up to whole batches (default 256). */
  shardSize?: number;
  dataset?: string;
  seed?: number;
}

/**
 * Creates (or finds) the activations job for `examples` under `dir`. Shards are whole batches, so
 * the job computes exactly what {@link harvestToFile} computes.
 */
export async function activationsJob(dir: string, model: HookedTransformer, examples: readonly HarvestExample[], opts: ActivationsJobOptions): Promise<JobSpec> {
  if (opts.hooks.length === 0) throw new LanternError('give at least one hook');
  opts.hooks.forEach((h) => hookWidth(model, h));
  const batchSize = opts.batchSize ?? 32;
  if (!Number.isInteger(batchSize) || batchSize < 1) throw new LanternError(`batch size must be a positive integer, got ${batchSize}`);
  const shardSize = Math.ceil((opts.shardSize ?? DEFAULT_SHARD_SIZE) / batchSize) * batchSize;
  const settings: ActivationsJobSettings = { hooks: opts.hooks, positions: positionsLabel(opts.positions ?? 'last'), batchSize, dataset: opts.dataset ?? '' };
  return createJob(dir, {
    analysis: 'activations', model: await modelRef(model),
    settings: settings as unknown as Record<string, unknown>, seed: opts.seed ?? 0, dataset: { name: opts.dataset ?? '' },
    shards: shardRanges(examples.length, shardSize), ext: 'safetensors',
  }, examples.map((e) => ({ text: e.text, label: e.label, ...(e.split !== undefined ? { split: e.split } : {}), ...(e.side !== undefined ? { side: e.side, pair: e.pair } : {}) })));
}
