/**
 * Feature dashboards (as Neuronpedia shows them), every feature of a source filled in one pass
 * over a corpus: top-activating contexts with per-token activations, samples across the
 * activation range, the activation histogram, top and bottom logits through the decoder
 * direction, and nearest features by decoder cosine.
 *
 * Memory is fixed by the settings, never by the corpus: per feature a top-k buffer, one reservoir
 * sample per histogram bin (each a context window of token ids and activations), and the
 * activations on a few shared random contexts (for scoring explanations against).
 *
 * The pass splits into parts over ranges of corpus rows ({@link dashboardPart}, a dashboards
 * job's shards), each a pure function of its rows and the seed, and a merge that does not depend
 * on how the corpus was split except for which firing each histogram bin's sample shows.
 */
import crypto from 'node:crypto';
import { LanternError } from '../../errors.js';
import { Graph } from '../../engine/graph/ir.js';
import { Tensor } from '../../engine/tensor.js';
import type { HookedTransformer } from '../../models/hooked.js';
import { Rng } from '../../rng.js';
import { corpusRows, hashTokens } from '../neurons/stats.js';
import { checkSource, FeatureSource, hookWidth } from './source.js';

/** Settings of {@link buildDashboards}. */
export interface DashboardOptions {
  /** Tokens per row (default: the context, at most 128). */
  seq?: number;
  /** Rows per forward (default 8). */
  batchSize?: number;
  /** Top-activating contexts kept per feature (default 20). */
  topK?: number;
  /** Tokens shown before / after the activating token (default 12 / 4). */
  contextBefore?: number;
  contextAfter?: number;
  /** A feature fires where its activation exceeds this (default 0). */
  threshold?: number;
  /** Quantile groups of the firing activations to sample from (default 5). */
  quantiles?: number;
  /** Random contexts shared by every feature, for scoring explanations (default 10). */
  randomContexts?: number;
  /** Top and bottom logits listed (default 10). */
  logits?: number;
  /** Nearest features by decoder cosine listed (default 5). */
  neighbours?: number;
  /** Seed of the reservoir samples and the random contexts (default 0). */
  seed?: number;
  /** Called after each batch with tokens done and tokens in all. */
  progress?: (done: number, total: number) => void;
}

/** A window of tokens around one position, with the feature's activation at each token. */
export interface FeatureContext {
  /** Token ids of the window. */
  ids: number[];
  /** Each token as text. */
  tokens: string[];
  /** The feature's activation at each token of the window. */
  activations: number[];
  /** Index in the window of the token the context was chosen for. */
  at: number;
  /** The activation there. */
  activation: number;
  /** Corpus offset of that token. */
  offset: number;
}

/** One feature's dashboard. */
export interface FeatureDashboard {
  /** The feature's index in its source. */
  index: number;
  /** Largest activation over the corpus (0 when it never fires). */
  max: number;
  /** Mean activation over every corpus token. */
  mean: number;
  /** Fraction of tokens where it fires (activation > threshold). */
  density: number;
  /** Top-activating contexts, largest first. */
  top: FeatureContext[];
  /** Samples from quantile groups of the firing activations, lowest group first; each range is [low, high) (low 0 for the first bin, high at least the max for the last). */
  quantiles: { range: [number, number]; contexts: FeatureContext[] }[];
  /** Firing activations counted in log10-spaced bins: counts[i] lies in [edges[i], edges[i+1]), except that the first bin also counts those below edges[1] and the last those above its lower edge. */
  histogram: { edges: number[]; counts: number[] };
  /** Tokens whose logits the decoder direction raises / lowers most (direct path through the unembedding). */
  logits?: { top: { id: number; token: string; value: number }[]; bottom: { id: number; token: string; value: number }[] };
  /** Features whose decoder directions are closest (cosine). */
  neighbours?: { index: number; cosine: number }[];
  /** An automated explanation and its score, when one was made. */
  explanation?: { text: string; score?: number; method?: string };
}

/** Every feature's dashboard and what they were built from (model, hook, source, data hash, seed, settings). */
export interface DashboardSet {
  model: string;
  method: 'feature-dashboards';
  hook: string;
  source: string;
  size: number;
  dataHash: string;
  tokens: number;
  seed: number;
  settings: DashboardSettings;
  features: FeatureDashboard[];
  /** Random corpus windows and each feature's activations on them (for scoring explanations). */
  random: { ids: number[][]; tokens: string[][]; offsets: number[]; activations: number[][][] };
}

/** Lowest bin edge is 10^HIST_LO; activations below it fall in the first bin, above 10^HIST_HI in the last. */
const HIST_LO = -3;
const HIST_HI = 3;
const BINS_PER_DECADE = 4;
const NB = (HIST_HI - HIST_LO) * BINS_PER_DECADE;

/** The histogram's bin edges (log10-spaced from 1e-3 to 1e3). */
export function histogramEdges(): number[] {
  return Array.from({ length: NB + 1 }, (_, i) => 10 ** (HIST_LO + i / BINS_PER_DECADE));
}

function binOf(x: number): number {
  const b = Math.floor((Math.log10(x) - HIST_LO) * BINS_PER_DECADE);
  return b < 0 ? 0 : b >= NB ? NB - 1 : b;
}

/**
 * Fixed-size storage of context windows: slot s holds the activation it was chosen for, its
 * corpus offset, its index in the window, and the window's ids and activations.
 */
class Windows {
  readonly act: Float64Array;
  readonly off: Int32Array;
  readonly at: Int16Array;
  readonly ids: Int32Array;
  readonly acts: Float32Array;
  constructor(slots: number, readonly W: number) {
    this.act = new Float64Array(slots);
    this.off = new Int32Array(slots);
    this.at = new Int16Array(slots);
    this.ids = new Int32Array(slots * W).fill(-1);
    this.acts = new Float32Array(slots * W);
  }
  write(s: number, activation: number, offset: number, at: number, ids: ArrayLike<number>, idBase: number, from: number, to: number, enc: Float32Array, encBase: number, F: number, f: number): void {
    this.act[s] = activation;
    this.off[s] = offset;
    this.at[s] = at;
    const W = this.W;
    for (let i = 0; i < W; i++) {
      const t = from + i;
      if (t < to) {
        this.ids[s * W + i] = ids[idBase + t];
        this.acts[s * W + i] = enc[(encBase + t) * F + f];
      } else {
        this.ids[s * W + i] = -1;
        this.acts[s * W + i] = 0;
      }
    }
  }
  swap(i: number, j: number): void {
    const W = this.W;
    [this.act[i], this.act[j]] = [this.act[j], this.act[i]];
    [this.off[i], this.off[j]] = [this.off[j], this.off[i]];
    [this.at[i], this.at[j]] = [this.at[j], this.at[i]];
    for (let k = 0; k < W; k++) {
      const a = i * W + k;
      const b = j * W + k;
      [this.ids[a], this.ids[b]] = [this.ids[b], this.ids[a]];
      [this.acts[a], this.acts[b]] = [this.acts[b], this.acts[a]];
    }
  }
  read(s: number): PartWindow {
    const W = this.W;
    const ids: number[] = [];
    const activations: number[] = [];
    for (let i = 0; i < W; i++) {
      const id = this.ids[s * W + i];
      if (id < 0) break;
      ids.push(id);
      activations.push(this.acts[s * W + i]);
    }
    return { activation: this.act[s], offset: this.off[s], at: this.at[s], ids, activations };
  }
}

/** {@link DashboardOptions} with every default filled in, as saved with the dashboards. */
export type DashboardSettings = Required<Omit<DashboardOptions, 'progress'>>;

/** Checks the corpus and fills in the default settings. */
export function dashboardSettings(model: HookedTransformer, tokens: ArrayLike<number>, opts: DashboardOptions): DashboardSettings {
  const seq = opts.seq ?? Math.min(model.cfg.nCtx, 128);
  if (!Number.isInteger(seq) || seq < 1 || seq > model.cfg.nCtx) throw new LanternError(`rows of ${seq} tokens: must be in [1, ${model.cfg.nCtx}] (the model's context)`);
  if (tokens.length < 2) throw new LanternError(`the corpus has ${tokens.length} tokens; dashboards need at least 2`);
  const V = model.cfg.dVocab;
  for (let i = 0; i < tokens.length; i++) if (!(tokens[i] >= 0 && tokens[i] < V)) throw new LanternError(`corpus token ${tokens[i]} at ${i} is outside the vocabulary [0, ${V})`);
  const s = {
    seq, batchSize: opts.batchSize ?? 8, topK: opts.topK ?? 20, contextBefore: opts.contextBefore ?? 12, contextAfter: opts.contextAfter ?? 4,
    threshold: opts.threshold ?? 0, quantiles: opts.quantiles ?? 5, randomContexts: opts.randomContexts ?? 10, logits: opts.logits ?? 10,
    neighbours: opts.neighbours ?? 5, seed: opts.seed ?? 0,
  };
  for (const [k, v] of Object.entries(s)) {
    if (k === 'threshold') { if (!Number.isFinite(v)) throw new LanternError(`${k} must be a finite number, got ${v}`); continue; }
    if (!Number.isInteger(v) || v < (k === 'batchSize' || k === 'topK' ? 1 : 0)) throw new LanternError(`${k} must be a non-negative integer${k === 'batchSize' || k === 'topK' ? ' >= 1' : ''}, got ${v}`);
  }
  return s;
}

/** A context window as a part stores it: the activation and offset it was kept for, the window's ids and activations. */
export interface PartWindow {
  activation: number;
  offset: number;
  at: number;
  ids: number[];
  activations: number[];
}

/** One feature's share of a {@link DashboardPart}. Every number is a float32 activation or a count, except `sum` (float64); all survive JSON exactly. */
export interface FeaturePart {
  /** The sum of its activations, its firings, and its largest firing (0 when none). */
  sum: number;
  fires: number;
  max: number;
  /** Its top contexts in these rows (at most topK), activation descending, then offset. */
  top: PartWindow[];
  /** One uniform sample of its firings in each non-empty histogram bin, with the bin's count, by bin. */
  samples: (PartWindow & { bin: number; count: number })[];
  /** Its activations on each of the part's random contexts. */
  random: number[][];
}

/**
 * One range of corpus rows' share of every feature's dashboard: what a shard of a dashboards job
 * holds, and what {@link mergeDashboardParts} combines. `features` yields one {@link FeaturePart}
 * per feature, in order, made as it is read, so a part of many features is never in memory as
 * objects all at once (nor written as one string).
 */
export interface DashboardPart {
  /** The corpus rows [first, last) it covers. */
  rows: [number, number];
  /** The shared random contexts that lie in these rows: their index among all, offset and ids. */
  random: { context: number; offset: number; ids: number[] }[];
  features: Iterable<FeaturePart>;
}

/** A seed for random stream `stream` of a run seeded with `seed`: the streams are independent, and each is fixed by the pair. */
function streamSeed(seed: number, stream: string): number {
  return crypto.createHash('sha256').update(`${seed}:${stream}`).digest().readInt32LE(0);
}

/** Corpus offsets of the shared random contexts: drawn from the seed alone, before any row runs, so every split of the corpus agrees. */
function randomOffsets(n: number, settings: DashboardSettings): Map<number, number> {
  const rng = new Rng(settings.seed);
  const R = Math.min(settings.randomContexts, n);
  const at = new Map<number, number>();
  while (at.size < R) {
    const off = rng.int(n);
    if (!at.has(off)) at.set(off, at.size);
  }
  return at;
}

/**
 * Rows [first, last) of the corpus (rows of `settings.seq` tokens, {@link corpusRows}) as a
 * {@link DashboardPart}: each batch of rows runs the model once (caching only `source.hook`) and is
 * encoded once. Its histogram-bin samples draw from a random stream fixed by (seed, `part`), so a
 * part is a pure function of its inputs.
 */
export async function dashboardPart(
  model: HookedTransformer, source: FeatureSource, tokens: ArrayLike<number>, settings: DashboardSettings, first: number, last: number, part: number,
  progress?: (done: number, total: number) => void,
): Promise<DashboardPart> {
  checkSource(model, source);
  const { topK: K, contextBefore: before, contextAfter: after, threshold, seq } = settings;
  const F = source.size;
  const W = before + 1 + after;
  const width = hookWidth(model, source.hook);
  const rng = new Rng(streamSeed(settings.seed, `part ${part}`));

  const top = new Windows(F * K, W);
  const topSize = new Int32Array(F);
  const samples = new Windows(F * NB, W);
  const hist = new Float64Array(F * NB);
  const sum = new Float64Array(F);
  const fires = new Float64Array(F);
  const max = new Float64Array(F);
  const randomAt = randomOffsets(tokens.length, settings);
  const random: DashboardPart['random'] = [];
  const randomActs: Float32Array[] = [];
  // Heap order: a lower activation, or an equal one at a later offset, is kept less (so ties
  // resolve by offset, whichever rows a part holds).
  const less = (a: number, b: number) => top.act[a] < top.act[b] || (top.act[a] === top.act[b] && top.off[a] > top.off[b]);

  const rows = corpusRows(tokens, seq).slice(first, last);
  const total = rows.reduce((n, r) => n + r.length, 0);
  let done = 0;
  for (let r0 = 0; r0 < rows.length; r0 += settings.batchSize) {
    const chunk = rows.slice(r0, r0 + settings.batchSize);
    const ids = chunk.map(({ start, length }) => Array.from({ length }, (_, i) => tokens[start + i]));
    const { cache, batch } = await model.runWithHooks(ids, { cache: [source.hook], logitPositions: [0] });
    const T = batch.seq;
    const acts = cache.get(source.hook).f32;
    if (acts.length !== chunk.length * T * width) throw new LanternError(`${source.hook}: unexpected activation size ${acts.length}`);
    const enc = source.encode(acts, chunk.length * T);
    if (enc.length !== chunk.length * T * F) throw new LanternError(`feature source ${source.id} returned ${enc.length} values for ${chunk.length * T} rows of ${F} features`);
    chunk.forEach(({ start, length }, b) => {
      const base = b * T;
      for (let t = 0; t < length; t++) {
        const o = (base + t) * F;
        const from = Math.max(0, t - before);
        const to = Math.min(length, t + after + 1);
        const offset = start + t;
        const ri = randomAt.get(offset);
        if (ri !== undefined) {
          random.push({ context: ri, offset, ids: Array.from({ length: to - from }, (_, i) => tokens[start + from + i]) });
          randomActs.push(enc.slice((base + from) * F, (base + to) * F));
        }
        for (let f = 0; f < F; f++) {
          const x = enc[o + f];
          sum[f] += x;
          if (!(x > threshold)) continue;
          fires[f]++;
          if (x > max[f]) max[f] = x;
          const bin = binOf(x);
          const h = f * NB + bin;
          const count = ++hist[h];
          // Reservoir of one per bin: the c-th firing in a bin replaces the sample with probability 1/c.
          if (count === 1 || rng.next() * count < 1) samples.write(h, x, offset, t - from, tokens, start, from, to, enc, base, F, f);
          // Top-k min-heap per feature, in slots f*K .. f*K+K-1. Offsets only grow, so a new
          // activation equal to the root's is the one to drop.
          const s0 = f * K;
          const n = topSize[f];
          if (n < K) {
            let i = n;
            topSize[f] = n + 1;
            top.write(s0 + i, x, offset, t - from, tokens, start, from, to, enc, base, F, f);
            while (i > 0) {
              const p = (i - 1) >> 1;
              if (!less(s0 + i, s0 + p)) break;
              top.swap(s0 + i, s0 + p);
              i = p;
            }
          } else if (x > top.act[s0]) {
            top.write(s0, x, offset, t - from, tokens, start, from, to, enc, base, F, f);
            let i = 0;
            for (;;) {
              const l = 2 * i + 1;
              const rr = l + 1;
              let m = i;
              if (l < K && less(s0 + l, s0 + m)) m = l;
              if (rr < K && less(s0 + rr, s0 + m)) m = rr;
              if (m === i) break;
              top.swap(s0 + i, s0 + m);
              i = m;
            }
          }
        }
      }
      done += length;
    });
    progress?.(done, total);
  }
  // Every window value is some token's activation, all added to `sum`: a finite sum means JSON keeps them all.
  const bad = sum.findIndex((s) => !Number.isFinite(s));
  if (bad >= 0) throw new LanternError(`feature source ${source.id}: feature ${bad} has non-finite activations (sum ${sum[bad]}) in corpus rows ${first}–${last - 1}`);

  // Random contexts come in row order; the merge orders them by index.
  return {
    rows: [first, last],
    random,
    features: {
      *[Symbol.iterator]() {
        for (let f = 0; f < F; f++) {
          const slots = Array.from({ length: topSize[f] }, (_, i) => f * K + i).sort((a, b) => top.act[b] - top.act[a] || top.off[a] - top.off[b]);
          const bins = Array.from({ length: NB }, (_, bin) => bin).filter((bin) => hist[f * NB + bin] > 0);
          yield {
            sum: sum[f], fires: fires[f], max: max[f],
            top: slots.map((s) => top.read(s)),
            samples: bins.map((bin) => ({ bin, count: hist[f * NB + bin], ...samples.read(f * NB + bin) })),
            random: randomActs.map((a, c) => Array.from({ length: random[c].ids.length }, (_, i) => a[i * F + f])),
          };
        }
      },
    },
  };
}

/** Contexts ordered largest activation first, ties by corpus offset. */
const byActivation = (a: PartWindow, b: PartWindow) => b.activation - a.activation || a.offset - b.offset;

/**
 * Every feature's dashboard from the parts covering the corpus, folded in row order (one part
 * in memory at a time): top contexts merged (ties by offset), counts and sums added, and each
 * histogram bin's sample kept by a weighted reservoir: the next part's sample replaces it with
 * probability (that part's count) / (count so far), drawn from a stream fixed by the seed, so the
 * merged sample is a uniform draw from every firing in the bin. Logits and nearest features come
 * from the weights, once.
 */
export async function mergeDashboardParts(model: HookedTransformer, source: FeatureSource, tokens: ArrayLike<number>, settings: DashboardSettings, parts: Iterable<DashboardPart>): Promise<DashboardSet> {
  checkSource(model, source);
  const F = source.size;
  const K = settings.topK;
  const rng = new Rng(streamSeed(settings.seed, 'merge'));
  const sum = new Float64Array(F);
  const fires = new Float64Array(F);
  const max = new Float64Array(F);
  const top: PartWindow[][] = Array.from({ length: F }, () => []);
  const samples = new Map<number, { window: PartWindow; count: number }>();
  const random: (DashboardPart['random'][number] & { activations: number[][] })[] = [];
  const rows = corpusRows(tokens, settings.seq).length;
  let next = 0;
  for (const part of parts) {
    if (part.rows[0] !== next || part.rows[1] <= next || part.rows[1] > rows) throw new LanternError(`dashboard part of rows ${part.rows[0]}–${part.rows[1] - 1} does not continue rows 0–${next - 1} of ${rows}`);
    next = part.rows[1];
    const contexts = part.random.map((c) => ({ ...c, activations: [] as number[][] }));
    const mismatch = () => new LanternError(`dashboard part of rows ${part.rows[0]}–${part.rows[1] - 1} does not hold the ${F} features of ${source.id}`);
    let f = 0;
    for (const p of part.features) {
      if (f >= F || p.random.length !== contexts.length) throw mismatch();
      sum[f] += p.sum;
      fires[f] += p.fires;
      if (p.max > max[f]) max[f] = p.max;
      top[f].push(...p.top);
      if (top[f].length > K) top[f] = top[f].sort(byActivation).slice(0, K);
      for (const s of p.samples) {
        const key = f * NB + s.bin;
        const kept = samples.get(key);
        if (!kept) { samples.set(key, { window: s, count: s.count }); continue; }
        kept.count += s.count;
        if (rng.next() * kept.count < s.count) kept.window = s;
      }
      p.random.forEach((a, c) => contexts[c].activations.push(a));
      f++;
    }
    if (f !== F) throw mismatch();
    random.push(...contexts);
  }
  if (next !== rows) throw new LanternError(`the dashboard parts cover rows 0–${next - 1} of ${rows}`);

  const text = (ids: number[]) => (model.tokenizer ? model.tokenStrings(ids) : ids.map(String));
  const context = ({ ids, activations, at, activation, offset }: PartWindow): FeatureContext => ({ ids, tokens: text(ids), activations, at, activation, offset });
  const edges = histogramEdges();
  const logits = source.decoderDirection && settings.logits > 0 ? await decoderLogits(model, source, settings.logits) : undefined;
  const neighbours = source.decoderDirection && settings.neighbours > 0 ? await nearestFeatures(model, source, settings.neighbours) : undefined;
  const features: FeatureDashboard[] = [];
  for (let f = 0; f < F; f++) {
    const counts = Array.from({ length: NB }, (_, bin) => samples.get(f * NB + bin)?.count ?? 0);
    features.push({
      index: f, max: max[f], mean: sum[f] / tokens.length, density: fires[f] / tokens.length,
      top: top[f].sort(byActivation).map(context),
      quantiles: quantileSamples(counts, edges, settings.quantiles, max[f], (bin) => context(samples.get(f * NB + bin)!.window)),
      histogram: { edges, counts },
      ...(logits ? { logits: logits(f) } : {}),
      ...(neighbours ? { neighbours: neighbours[f] } : {}),
    });
  }
  // A position in a dropped one-token tail row never ran: its context is left out.
  random.sort((a, b) => a.context - b.context);
  return {
    model: model.source, method: 'feature-dashboards', hook: source.hook, source: source.id, size: F,
    dataHash: hashTokens(tokens), tokens: tokens.length, seed: settings.seed, settings, features,
    random: { ids: random.map((c) => c.ids), tokens: random.map((c) => text(c.ids)), offsets: random.map((c) => c.offset), activations: Array.from({ length: F }, (_, f) => random.map((c) => c.activations[f])) },
  };
}

/**
 * Every feature's dashboard over `tokens`, from one pass: the corpus is cut into rows of `seq`
 * tokens, each batch runs the model once (caching only `source.hook`) and is encoded once. The
 * same as a dashboards job with a single shard ({@link dashboardPart} over every row, then
 * {@link mergeDashboardParts}).
 */
export async function buildDashboards(model: HookedTransformer, source: FeatureSource, tokens: ArrayLike<number>, opts: DashboardOptions = {}): Promise<DashboardSet> {
  checkSource(model, source);
  const settings = dashboardSettings(model, tokens, opts);
  const part = await dashboardPart(model, source, tokens, settings, 0, corpusRows(tokens, settings.seq).length, 0, opts.progress);
  return mergeDashboardParts(model, source, tokens, settings, [part]);
}

/**
 * Splits the firing activations into `q` groups of equal count (by the histogram) and returns each
 * group's reservoir samples: one per bin the group spans.
 */
function quantileSamples(counts: number[], edges: number[], q: number, max: number, sample: (bin: number) => FeatureContext): FeatureDashboard['quantiles'] {
  // The first bin also holds everything below its edge, the last everything above.
  const lo = (b: number) => (b === 0 ? 0 : edges[b]);
  const hi = (b: number) => (b === counts.length - 1 ? Math.max(edges[b + 1], max) : edges[b + 1]);
  const total = counts.reduce((a, b) => a + b, 0);
  if (total === 0 || q === 0) return [];
  const groups: FeatureDashboard['quantiles'] = [];
  let acc = 0;
  let bins: number[] = [];
  let g = 1;
  for (let b = 0; b < counts.length; b++) {
    if (!counts[b]) continue;
    bins.push(b);
    acc += counts[b];
    if (acc >= (g * total) / q || b === counts.length - 1) {
      groups.push({ range: [lo(bins[0]), hi(bins[bins.length - 1])], contexts: bins.map(sample) });
      bins = [];
      while (acc >= (g * total) / q && g < q) g++;
    }
  }
  if (bins.length) groups.push({ range: [lo(bins[0]), hi(bins[bins.length - 1])], contexts: bins.map(sample) });
  return groups;
}

/** The decoder directions of every feature, [size, d_model]. */
function decoderMatrix(model: HookedTransformer, source: FeatureSource): Float32Array {
  const D = model.cfg.dModel;
  const out = new Float32Array(source.size * D);
  for (let f = 0; f < source.size; f++) {
    const d = source.decoderDirection!(f);
    if (d.length !== D) throw new LanternError(`feature source ${source.id}: decoder direction ${f} has ${d.length} values; the model's d_model is ${D}`);
    out.set(d, f * D);
  }
  return out;
}

/**
 * For each row of `rows` [n, D]: the k largest and k smallest entries of rows @ matrix ([D, M]),
 * computed on the compute thread in chunks (the full [n, M] product never exists at once).
 */
async function extremes(model: HookedTransformer, rows: Float32Array, n: number, matrix: Tensor, k: number, tag: string): Promise<{ top: Int32Array; topV: Float32Array; bottom: Int32Array; bottomV: Float32Array }> {
  const [D, M] = matrix.shape;
  const kk = Math.min(k, M);
  const set = await model.executor.registerWeights({ 'features.matrix': matrix });
  const res = { top: new Int32Array(n * kk), topV: new Float32Array(n * kk), bottom: new Int32Array(n * kk), bottomV: new Float32Array(n * kk) };
  try {
    const build = () => {
      const g = new Graph();
      const x = g.input('rows', 'float32', ['n', D]);
      const scores = g.matmul(x, g.input('features.matrix', 'float32', [D, M]));
      const [tv, ti] = g.topK(scores, kk, -1);
      const [bv, bi] = g.topK(g.neg(scores), kk, -1);
      g.output('top_v', tv); g.output('top_i', ti); g.output('bottom_v', g.neg(bv)); g.output('bottom_i', bi);
      return g;
    };
    const CHUNK = 256;
    for (let r0 = 0; r0 < n; r0 += CHUNK) {
      const m = Math.min(CHUNK, n - r0);
      const out = await model.executor.run(`features.extremes:${tag}:${D}x${M}:${kk}`, build, { rows: Tensor.f32(rows.slice(r0 * D, (r0 + m) * D), [m, D]) }, { weights: [set] });
      res.topV.set(out.top_v.f32, r0 * kk);
      res.bottomV.set(out.bottom_v.f32, r0 * kk);
      for (let i = 0; i < m * kk; i++) {
        res.top[r0 * kk + i] = Number(out.top_i.data[i]);
        res.bottom[r0 * kk + i] = Number(out.bottom_i.data[i]);
      }
    }
  } finally {
    await model.executor.dropWeights(set);
  }
  return res;
}

/** Each feature's top and bottom logits: its decoder direction through the unembedding (final norm's weight folded in). */
async function decoderLogits(model: HookedTransformer, source: FeatureSource, k: number): Promise<(f: number) => NonNullable<FeatureDashboard['logits']>> {
  const dirs = decoderMatrix(model, source);
  const r = await extremes(model, dirs, source.size, await model.unembeddingMatrix(), k, 'logits');
  const kk = r.top.length / source.size;
  const text = (id: number) => (model.tokenizer ? model.tokenStrings([id])[0] : String(id));
  const list = (ids: Int32Array, vs: Float32Array, f: number) => Array.from({ length: kk }, (_, j) => ({ id: ids[f * kk + j], token: text(ids[f * kk + j]), value: vs[f * kk + j] }));
  return (f) => ({ top: list(r.top, r.topV, f), bottom: list(r.bottom, r.bottomV, f) });
}

/** Each feature's nearest other features by cosine of decoder directions. */
async function nearestFeatures(model: HookedTransformer, source: FeatureSource, k: number): Promise<{ index: number; cosine: number }[][]> {
  const D = model.cfg.dModel;
  const F = source.size;
  const dirs = decoderMatrix(model, source);
  const zero = new Uint8Array(F);
  for (let f = 0; f < F; f++) {
    let s = 0;
    for (let d = 0; d < D; d++) s += dirs[f * D + d] ** 2;
    zero[f] = s > 0 ? 0 : 1;
    const inv = s > 0 ? 1 / Math.sqrt(s) : 0;
    for (let d = 0; d < D; d++) dirs[f * D + d] *= inv;
  }
  const transposed = new Float32Array(D * F);
  for (let f = 0; f < F; f++) for (let d = 0; d < D; d++) transposed[d * F + f] = dirs[f * D + d];
  const r = await extremes(model, dirs, F, Tensor.f32(transposed, [D, F]), k + 1, 'cosine');
  const kk = r.top.length / F;
  return Array.from({ length: F }, (_, f) => {
    const out: { index: number; cosine: number }[] = [];
    // A feature that writes nothing has no direction, so no neighbours.
    if (zero[f]) return out;
    for (let j = 0; j < kk && out.length < k; j++) if (r.top[f * kk + j] !== f && !zero[r.top[f * kk + j]]) out.push({ index: r.top[f * kk + j], cosine: r.topV[f * kk + j] });
    return out;
  });
}
