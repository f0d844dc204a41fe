/**
 * The activations SAE training reads, harvested as a job: the windows a {@link ModelSource} runs
 * (forward `f` runs windows `(f·P + b) mod W`, P windows per forward, W in the corpus), in that
 * order, split into shards of whole forwards. Each shard is a safetensors file of its rows at the
 * hook (`x`) and, for transcoders, at hook_out (`y`). A {@link HarvestedSource} replays the files
 * forward by forward with ModelSource's position as its state, so training from them draws the
 * same batches, and checkpoints move between the two.
 */
import { LanternError } from '../../errors.js';
import type { HookedTransformer } from '../../models/hooked.js';
import { readFloat32, readSafetensorsHeader, writeSafetensors, WritableTensor } from '../../models/safetensors.js';
import { createJob, DEFAULT_SHARD_SIZE, JobSpec, readJobData, shardRanges } from '../../engine/jobs/store.js';
import type { Analysis } from '../../engine/jobs/run.js';
import { modelRef, openJobModel } from '../representations/activations-job.js';
import { ActivationChunk, ActivationSource, ModelSource, windowActivations } from './source.js';

/** What the shards of an SAE harvest compute: the {@link ModelSource} settings, and the widths. */
export interface SaeHarvestSettings {
  hook: string;
  /** Transcoders: the hook whose activations are the targets. */
  hookOut?: string;
  context: number;
  skipPositions: number;
  windowsPerForward: number;
  /** Whole windows in the corpus: the stream wraps around after them. */
  corpusWindows: number;
  dIn: number;
  /** Width of the targets, else 0. */
  dOut: number;
}

/** What the shards of an SAE harvest share: the model, and the tokens of every window of the stream, in order. */
export interface SaeHarvestContext {
  model: HookedTransformer;
  windows: number[][];
}

/** One example of the job: a window of the stream (its index in the corpus) and its tokens. */
interface WindowExample { window: number; tokens: number[] }

const settingsOf = (job: JobSpec) => job.settings as unknown as SaeHarvestSettings;
const gcd = (a: number, b: number): number => (b ? gcd(b, a % b) : a);

/**
 * Forwards of `source` that yield `rows` rows. The stream repeats after W / gcd(W, P) forwards
 * (every forward then starts where an earlier one did), so no more than that are needed.
 */
export function harvestForwards(source: ModelSource, rows: number): number {
  const period = source.windows / gcd(source.windows, source.windowsPerForward);
  return Math.min(Math.ceil(rows / source.rowsPerChunk), period);
}

/** Rows and bytes on disk of a harvest job's shards (float32 rows of d_in, plus d_out for transcoders). */
export function saeHarvestSize(job: JobSpec): { rows: number; bytes: number } {
  const s = settingsOf(job);
  const rows = job.dataset.examples * (s.context - s.skipPositions);
  return { rows, bytes: rows * (s.dIn + s.dOut) * 4 };
}

/**
 * Creates (or finds) under `dir` the job that harvests what `source` yields over its first `rows`
 * rows (rounded up to whole forwards), `shardSize` windows per shard (rounded up to whole
 * forwards; default 256). The job stores the windows' tokens, so workers need no corpus.
 */
export async function saeHarvestJob(dir: string, source: ModelSource, opts: { rows: number; shardSize?: number; corpus?: string }): Promise<JobSpec> {
  if (!(Number.isInteger(opts.rows) && opts.rows >= 1)) throw new LanternError(`rows must be a positive integer, got ${opts.rows}`);
  const P = source.windowsPerForward;
  const shardSize = Math.ceil((opts.shardSize ?? DEFAULT_SHARD_SIZE) / P) * P;
  const windows = harvestForwards(source, opts.rows) * P;
  const settings: SaeHarvestSettings = {
    hook: source.opts.hook, ...(source.opts.hookOut ? { hookOut: source.opts.hookOut } : {}), context: source.context, skipPositions: source.skipPositions,
    windowsPerForward: P, corpusWindows: source.windows, dIn: source.dIn, dOut: source.dOut,
  };
  return createJob(dir, {
    analysis: saeHarvestAnalysis.name, model: await modelRef(source.model), settings: settings as unknown as Record<string, unknown>, seed: 0,
    dataset: { name: opts.corpus ?? '' }, shards: shardRanges(windows, shardSize), ext: 'safetensors',
  }, Array.from({ length: windows }, (_, i): WindowExample => ({ window: i % source.windows, tokens: source.windowTokens(i % source.windows) })));
}

/** The context for running `job`'s shards in this process, from the source it was made from (no second model load). */
export function saeHarvestContext(source: ModelSource, job: JobSpec): SaeHarvestContext {
  return { model: source.model, windows: Array.from({ length: job.dataset.examples }, (_, i) => source.windowTokens(i % source.windows)) };
}

/**
 * The harvested activations as an {@link ActivationSource}: the chunks a {@link ModelSource} with
 * the job's settings yields, read from the shard files (one shard in memory at a time), with the
 * same state (the window the next forward starts at).
 */
export class HarvestedSource implements ActivationSource {
  readonly dIn: number;
  readonly dOut: number;
  private window = 0;
  /** The forward of the job that starts at each window. */
  private readonly forwardAt = new Map<number, number>();
  private loaded?: { shard: number; x: Float32Array; y?: Float32Array };

  constructor(readonly job: JobSpec, readonly files: string[]) {
    if (job.analysis !== saeHarvestAnalysis.name) throw new LanternError(`job ${job.id} is a '${job.analysis}' job, not an SAE harvest`);
    const s = settingsOf(job);
    this.dIn = s.dIn;
    this.dOut = s.dOut;
    for (let f = 0; f * s.windowsPerForward < job.dataset.examples; f++) this.forwardAt.set((f * s.windowsPerForward) % s.corpusWindows, f);
  }

  async next(): Promise<ActivationChunk> {
    const { job } = this;
    const s = settingsOf(job);
    const f = this.forwardAt.get(this.window);
    if (f === undefined) throw new LanternError(`job ${job.id} holds ${job.dataset.examples} windows, and training reads past them (from window ${this.window}): it was harvested for fewer steps or a smaller batch`);
    const first = f * s.windowsPerForward;
    const shard = job.shards.findIndex(([a, b]) => a <= first && first < b);
    const per = s.context - s.skipPositions;
    if (this.loaded?.shard !== shard) {
      const header = readSafetensorsHeader(this.files[shard]);
      const [a, b] = job.shards[shard];
      const shapeOk = (name: string, width: number) => JSON.stringify(header.tensors.get(name)?.shape) === JSON.stringify([(b - a) * per, width]);
      if (!shapeOk('x', s.dIn) || (s.dOut && !shapeOk('y', s.dOut))) throw new LanternError(`${this.files[shard]} does not hold the rows of windows ${a}–${b - 1} of job ${job.id}`);
      this.loaded = { shard, x: readFloat32(header, 'x'), y: s.dOut ? readFloat32(header, 'y') : undefined };
    }
    const row = (first - job.shards[shard][0]) * per;
    const rows = s.windowsPerForward * per;
    this.window = (this.window + s.windowsPerForward) % s.corpusWindows;
    return { rows, x: this.loaded.x.slice(row * s.dIn, (row + rows) * s.dIn), y: this.loaded.y?.slice(row * s.dOut, (row + rows) * s.dOut) };
  }

  state(): unknown {
    return { window: this.window };
  }

  /** Continues from a position `state` returned (this source's, or a {@link ModelSource}'s). */
  restore(state: unknown): void {
    this.window = (state as { window: number }).window;
  }
}

/** The analysis behind `lantern sae train --harvest`: each shard runs its windows, a forward at a time, as {@link ModelSource} does; the merge is a {@link HarvestedSource} over the files. */
export const saeHarvestAnalysis: Analysis<SaeHarvestContext, Record<string, never>, HarvestedSource> = {
  name: 'sae-activations',

  async open(dir, job, opts) {
    return { model: await openJobModel(job, opts), windows: readJobData<WindowExample>(dir, job).map((e) => e.tokens) };
  },

  async runShard({ model, windows }, job, shard, file) {
    const s = settingsOf(job);
    const [a, b] = job.shards[shard];
    const chunks: ActivationChunk[] = [];
    for (let w = a; w < b; w += s.windowsPerForward) chunks.push(await windowActivations(model, windows.slice(w, w + s.windowsPerForward), s.hook, s.hookOut, s.skipPositions));
    const rows = chunks.reduce((n, c) => n + c.rows, 0);
    const cat = (pick: (c: ActivationChunk) => Float32Array, width: number) => {
      const out = new Float32Array(rows * width);
      let r = 0;
      for (const c of chunks) { out.set(pick(c), r * width); r += c.rows; }
      return out;
    };
    const tensors: Record<string, WritableTensor> = { x: { dtype: 'F32', shape: [rows, s.dIn], data: cat((c) => c.x, s.dIn) } };
    if (s.dOut) tensors.y = { dtype: 'F32', shape: [rows, s.dOut], data: cat((c) => c.y!, s.dOut) };
    writeSafetensors(file, tensors, { job: job.id, shard: String(shard), hook: s.hook, ...(s.hookOut ? { hook_out: s.hookOut } : {}) });
  },

  async merge(_context, job, files) {
    return new HarvestedSource(job, files);
  },
};
