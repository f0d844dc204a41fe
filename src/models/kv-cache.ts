/**
 * Keys and values kept in the compute thread between runs, for generation: each run of a model
 * with a `KvCache` reads every layer's past keys and values there and leaves them there with its
 * own appended, so a decode step sends only its new token ids and gets back only its logits.
 * Copying a batch's cache to the compute thread and back at every step cost more than the step
 * itself (the 1B shape, 8 rows of ~300 positions: ~160 MB each way).
 *
 * Layout: every run appends its keys at the same slots in every row (slot = index along the past
 * axis). Prompts of different lengths run right-padded, so a shorter prompt's row holds padding
 * slots between its prompt and its first generated token; each slot's position is recorded per
 * row (-1 for padding) and a run's mask (`cachedFeeds`) lets a row see only its own keys, at
 * their true positions (rotary and sliding windows read positions, never slot indices).
 */
import { Graph } from '../engine/graph/ir.js';
import type { Executor, WeightSet } from '../engine/runtime/executor.js';
import { LanternError } from '../errors.js';
import { Tensor } from '../engine/tensor.js';
import type { ModelConfig } from './config.js';
import { cachedFeeds } from './inputs.js';

/** The name under which layer l's keys (`k`) or values (`v`) are kept, as the model graph's past input. */
export const pastName = (l: number, kind: 'k' | 'v') => `past.${l}.${kind}`;

/** A batch's keys and values, kept in the compute thread between runs of one model (see {@link HookedTransformer.createKvCache}). */
export class KvCache {
  /** Per row, the position of the key in each slot; -1 where the slot holds padding. */
  private slotPositions: number[][] = [];
  private released = false;

  /** Use `model.createKvCache()`. */
  constructor(private readonly executor: Executor, private readonly cfg: ModelConfig, readonly set: WeightSet) {}

  /** Rows kept (0 before the first run). */
  get rows(): number {
    return this.slotPositions.length;
  }

  /** Slots per row: positions kept, padding included (0 before the first run). */
  get slots(): number {
    return this.slotPositions[0]?.length ?? 0;
  }

  /** The position each row's next token takes: one past its last kept key's. */
  get nextPositions(): number[] {
    return this.slotPositions.map((row) => row.reduce((m, p) => Math.max(m, p + 1), 0));
  }

  /** Checks that a run of these rows can continue the cache, and builds its positions and masks. */
  feeds(lengths: number[], seq: number): Record<'positions' | 'key_positions' | 'causal_mask', Tensor> {
    this.checkLive();
    if (lengths.length !== this.rows) throw new LanternError(`the key/value cache holds ${this.rows} rows; this run gives ${lengths.length}`);
    const next = this.nextPositions;
    lengths.forEach((n, b) => {
      if (next[b] + n > this.cfg.nCtx) throw new LanternError(`row ${b}: ${next[b]} cached positions plus ${n} tokens is longer than the model's context of ${this.cfg.nCtx}`);
    });
    return cachedFeeds(this.slotPositions, next, lengths, seq);
  }

  /** Records a finished run's keys, now appended in the compute thread: row b's first `lengths[b]` of `seq` are real. */
  appended(lengths: number[], seq: number): void {
    const next = this.rows ? this.nextPositions : lengths.map(() => 0);
    this.slotPositions = lengths.map((n, b) => [...(this.slotPositions[b] ?? []), ...Array.from({ length: seq }, (_, j) => (j < n ? next[b] + j : -1))]);
  }

  /** Keeps only the rows `keep` (indices, in the order given), e.g. when the others have finished generating. */
  async keepRows(keep: number[]): Promise<void> {
    this.checkLive();
    if (keep.length === this.rows && keep.every((j, i) => j === i)) return;
    for (const j of keep) if (!Number.isInteger(j) || j < 0 || j >= this.rows) throw new LanternError(`row ${j} is not in the key/value cache (${this.rows} rows)`);
    if (keep.length === 0) throw new LanternError('keepRows: keep at least one row (release the cache instead)');
    const { nLayers: L, nKvHeads: H, dHead: dh } = this.cfg;
    const build = () => {
      const g = new Graph();
      const rows = g.input('rows', 'int64', ['kept']);
      for (let l = 0; l < L; l++) {
        for (const kind of ['k', 'v'] as const) g.output(`kept:${pastName(l, kind)}`, g.gather(g.input(pastName(l, kind), 'float32', ['batch', 'past', H, dh]), rows));
      }
      return g;
    };
    const update = Object.fromEntries(Array.from({ length: L }, (_, l) => (['k', 'v'] as const).map((kind) => [`kept:${pastName(l, kind)}`, { set: this.set, name: pastName(l, kind) }])).flat());
    await this.executor.run(`kv-cache:keep-rows:${L}:${H}:${dh}`, build, { rows: Tensor.i64(keep, [keep.length]) }, { weights: [this.set], update });
    this.slotPositions = keep.map((j) => this.slotPositions[j]);
  }

  /** Frees the keys and values in the compute thread; the cache cannot be used afterwards. */
  async release(): Promise<void> {
    if (this.released) return;
    this.released = true;
    await this.executor.dropWeights(this.set);
  }

  private checkLive(): void {
    if (this.released) throw new LanternError('this key/value cache was released');
  }
}
