/**
 * Activation streams for SAE training: a source yields chunks of rows (from a model run over a
 * corpus, or synthetic), and a shuffle buffer mixes rows from many chunks so a batch does not hold
 * consecutive tokens of one text. Both have a state that a checkpoint stores, so a resumed run
 * draws exactly the batches an uninterrupted one would.
 */
import { LanternError } from '../../errors.js';
import { hookWidth } from '../representations/activations.js';
import type { HookedTransformer } from '../../models/hooked.js';
import { Rng } from '../../rng.js';

/** Rows of activations: x [rows, d_in], and for transcoders the targets y [rows, d_out]. */
export interface ActivationChunk {
  rows: number;
  x: Float32Array;
  y?: Float32Array;
}

/** An endless, resumable stream of activation rows. */
export interface ActivationSource {
  readonly dIn: number;
  /** Width of the targets (transcoders), else 0. */
  readonly dOut: number;
  /** The next chunk of rows. */
  next(): Promise<ActivationChunk>;
  /** A JSON-able position from which `restore` continues identically. */
  state(): unknown;
  /** Continues from a position `state` returned. */
  restore(state: unknown): void;
}

/**
 * Rows in superposition with known ground truth: `features` random unit directions in `dIn`
 * dimensions (more features than dimensions), each row a sum of a few of them with magnitudes
 * uniform in [0.5, 1.5]; each feature is present independently with probability `density`.
 * With `dOut`, each row also has a target: the same features' magnitudes times a second set of
 * unit directions in `dOut` dimensions (what a transcoder should learn to map to).
 */
export class SyntheticSource implements ActivationSource {
  /** The true directions, [features, dIn], unit rows. */
  readonly directions: Float32Array;
  /** The true output directions, [features, dOut] (with `dOut`). */
  readonly outDirections: Float32Array;
  readonly dOut: number;
  readonly chunkRows: number;
  private rng: Rng;

  constructor(readonly dIn: number, readonly features: number, readonly density: number, seed: number, opts: { dOut?: number; chunkRows?: number } = {}) {
    const r = new Rng(seed);
    const unitRows = (d: number) => {
      const a = new Float32Array(features * d);
      for (let f = 0; f < features; f++) {
        let s = 0;
        for (let i = 0; i < d; i++) s += (a[f * d + i] = r.normal()) ** 2;
        for (let i = 0; i < d; i++) a[f * d + i] /= Math.sqrt(s);
      }
      return a;
    };
    this.dOut = opts.dOut ?? 0;
    this.chunkRows = opts.chunkRows ?? 1024;
    this.directions = unitRows(dIn);
    this.outDirections = unitRows(this.dOut);
    this.rng = new Rng(seed + 1);
  }

  async next(): Promise<ActivationChunk> {
    const { dIn, dOut, features, chunkRows } = this;
    const x = new Float32Array(chunkRows * dIn);
    const y = dOut ? new Float32Array(chunkRows * dOut) : undefined;
    for (let r = 0; r < chunkRows; r++) for (let f = 0; f < features; f++) {
      if (this.rng.next() >= this.density) continue;
      const a = 0.5 + this.rng.next();
      for (let i = 0; i < dIn; i++) x[r * dIn + i] += a * this.directions[f * dIn + i];
      if (y) for (let i = 0; i < dOut; i++) y[r * dOut + i] += a * this.outDirections[f * dOut + i];
    }
    return { rows: chunkRows, x, y };
  }

  state(): unknown {
    return { rng: this.rng.state };
  }

  /** Continues from a position `state` returned. */
  restore(state: unknown): void {
    this.rng = new Rng((state as { rng: number }).rng);
  }
}

/** Options for {@link ModelSource}. */
export interface ModelSourceOptions {
  /** The hook whose activations to read (x). */
  hook: string;
  /** Transcoders: the hook whose activations are the targets (y). */
  hookOut?: string;
  /** Tokens per window (default 128, at most the model's context). */
  context?: number;
  /** Windows per forward (default 8). */
  windowsPerForward?: number;
  /** Skip each window's first positions (e.g. 1 to leave out the attention-sink position). */
  skipPositions?: number;
}

/**
 * Runs `windows` (token lists of one length) in one forward and returns every position's
 * activations at `hook` (and `hookOut`) as rows, window by window, each window's first `skip`
 * positions left out. Both {@link ModelSource} and the SAE harvest job compute chunks with it, so
 * the same windows give the same bits.
 */
export async function windowActivations(model: HookedTransformer, windows: number[][], hook: string, hookOut: string | undefined, skip: number): Promise<ActivationChunk> {
  const context = windows[0].length;
  const { cache } = await model.runWithCache(windows, hookOut ? [hook, hookOut] : [hook]);
  const keep = (name: string) => {
    const width = hookWidth(model, name);
    const a = cache.get(name).f32;
    const per = context - skip;
    const out = new Float32Array(windows.length * per * width);
    for (let b = 0; b < windows.length; b++) out.set(a.subarray((b * context + skip) * width, (b + 1) * context * width), b * per * width);
    return out;
  };
  return { rows: windows.length * (context - skip), x: keep(hook), y: hookOut ? keep(hookOut) : undefined };
}

/**
 * Activations of a model over a token stream: consecutive windows of `context` tokens, run
 * `windowsPerForward` at a time, every position's activation at the hook a row. Wraps around at
 * the end of the stream: forward `f` runs windows `(f * windowsPerForward + b) mod windows`.
 */
export class ModelSource implements ActivationSource {
  readonly dIn: number;
  readonly dOut: number;
  /** Tokens per window. */
  readonly context: number;
  /** Windows per forward (one chunk). */
  readonly windowsPerForward: number;
  /** Positions left out at the start of each window. */
  readonly skipPositions: number;
  /** Whole windows in the token stream. */
  readonly windows: number;
  private window = 0;

  constructor(readonly model: HookedTransformer, readonly tokens: ArrayLike<number>, readonly opts: ModelSourceOptions) {
    this.context = opts.context ?? Math.min(128, model.cfg.nCtx);
    this.windowsPerForward = opts.windowsPerForward ?? 8;
    this.skipPositions = opts.skipPositions ?? 0;
    if (this.context > model.cfg.nCtx) throw new LanternError(`context ${this.context} is longer than the model's ${model.cfg.nCtx}`);
    if (!(this.skipPositions >= 0 && this.skipPositions < this.context)) throw new LanternError(`skipPositions ${this.skipPositions} must be in [0, ${this.context})`);
    this.windows = Math.floor(tokens.length / this.context);
    if (this.windows < 1) throw new LanternError(`the corpus has ${tokens.length} tokens, fewer than one window of ${this.context}`);
    this.dIn = hookWidth(model, opts.hook);
    this.dOut = opts.hookOut ? hookWidth(model, opts.hookOut) : 0;
  }

  /** The tokens of window `w` of the stream. */
  windowTokens(w: number): number[] {
    return Array.from({ length: this.context }, (_, i) => this.tokens[w * this.context + i]);
  }

  /** Rows in each chunk. */
  get rowsPerChunk(): number {
    return this.windowsPerForward * (this.context - this.skipPositions);
  }

  async next(): Promise<ActivationChunk> {
    const batch = Array.from({ length: this.windowsPerForward }, (_, b) => this.windowTokens((this.window + b) % this.windows));
    this.window = (this.window + this.windowsPerForward) % this.windows;
    return windowActivations(this.model, batch, this.opts.hook, this.opts.hookOut, this.skipPositions);
  }

  state(): unknown {
    return { window: this.window };
  }

  /** Continues from a position `state` returned. */
  restore(state: unknown): void {
    this.window = (state as { window: number }).window;
  }
}

/**
 * A shuffle buffer of `capacity` rows: each batch takes rows at random positions and refills
 * those positions from the source, so rows leave in random order and every row is used once.
 */
export class ShuffleBuffer {
  private x: Float32Array;
  private y?: Float32Array;
  private pending?: ActivationChunk;
  private pendingAt = 0;
  private filled = false;
  private rng: Rng;

  constructor(readonly source: ActivationSource, readonly capacity: number, seed: number) {
    this.x = new Float32Array(capacity * source.dIn);
    if (source.dOut) this.y = new Float32Array(capacity * source.dOut);
    this.rng = new Rng(seed ^ 0x5bf);
  }

  private async take(): Promise<{ x: Float32Array; y?: Float32Array }> {
    if (!this.pending || this.pendingAt >= this.pending.rows) {
      this.pending = await this.source.next();
      this.pendingAt = 0;
    }
    const r = this.pendingAt++;
    const { dIn, dOut } = this.source;
    return { x: this.pending.x.subarray(r * dIn, (r + 1) * dIn), y: this.pending.y?.subarray(r * dOut, (r + 1) * dOut) };
  }

  /** Fills the buffer (once). */
  async fill(): Promise<void> {
    if (this.filled) return;
    const { dIn, dOut } = this.source;
    for (let r = 0; r < this.capacity; r++) {
      const row = await this.take();
      this.x.set(row.x, r * dIn);
      if (this.y) this.y.set(row.y!, r * dOut);
    }
    this.filled = true;
  }

  /** The whole buffer as one chunk (to initialise b_dec from). */
  peek(): ActivationChunk {
    return { rows: this.capacity, x: this.x, y: this.y };
  }

  /** `rows` rows drawn at random, each replaced by the source's next row. */
  async next(rows: number): Promise<ActivationChunk> {
    await this.fill();
    const { dIn, dOut } = this.source;
    const x = new Float32Array(rows * dIn);
    const y = this.y ? new Float32Array(rows * dOut) : undefined;
    for (let b = 0; b < rows; b++) {
      const r = this.rng.int(this.capacity);
      x.set(this.x.subarray(r * dIn, (r + 1) * dIn), b * dIn);
      if (y) y.set(this.y!.subarray(r * dOut, (r + 1) * dOut), b * dOut);
      const row = await this.take();
      this.x.set(row.x, r * dIn);
      if (this.y) this.y.set(row.y!, r * dOut);
    }
    return { rows, x, y };
  }

  /** The buffer's state: small fields as JSON, the rows as arrays (for a safetensors file). */
  snapshot(): { json: unknown; arrays: Record<string, Float32Array> } {
    const arrays: Record<string, Float32Array> = { x: this.x };
    if (this.y) arrays.y = this.y;
    if (this.pending) {
      arrays.pending_x = this.pending.x;
      if (this.pending.y) arrays.pending_y = this.pending.y;
    }
    return { json: { rng: this.rng.state, filled: this.filled, pendingRows: this.pending?.rows ?? 0, pendingAt: this.pendingAt, source: this.source.state() }, arrays };
  }

  /** Continues from a snapshot; `array(name)` reads one of its arrays. */
  restore(json: unknown, array: (name: string) => Float32Array): void {
    const s = json as { rng: number; filled: boolean; pendingRows: number; pendingAt: number; source: unknown };
    this.rng = new Rng(s.rng);
    this.filled = s.filled;
    this.x = array('x');
    if (this.y) this.y = array('y');
    this.pending = s.pendingRows ? { rows: s.pendingRows, x: array('pending_x'), y: this.y ? array('pending_y') : undefined } : undefined;
    this.pendingAt = s.pendingAt;
    this.source.restore(s.source);
  }
}
