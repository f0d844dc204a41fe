/**
 * Feature dashboards (as Neuronpedia shows them), every feature of a source filled in one pass
 * over a corpus: top-activating contexts with per-token activations, samples across the
 * activation range, the activation histogram, top and bottom logits through the decoder
 * direction, and nearest features by decoder cosine.
 *
 * Memory is fixed by the settings, never by the corpus: per feature a top-k buffer, one reservoir
 * sample per histogram bin (each a context window of token ids and activations), and the
 * activations on a few shared random contexts (for scoring explanations against).
 */
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
  settings: Required<Omit<DashboardOptions, 'progress'>>;
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
  read(s: number, text: (ids: number[]) => string[]): FeatureContext {
    const W = this.W;
    const ids: number[] = [];
    const activations: number[] = [];
    for (let i = 0; i < W; i++) {
      const id = this.ids[s * W + i];
      if (id < 0) break;
      ids.push(id);
      activations.push(this.acts[s * W + i]);
    }
    return { ids, tokens: text(ids), activations, at: this.at[s], activation: this.act[s], offset: this.off[s] };
  }
}

/** Checks the corpus and fills in the default settings. */
function settingsOf(model: HookedTransformer, tokens: ArrayLike<number>, opts: DashboardOptions): Required<Omit<DashboardOptions, 'progress'>> {
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

/**
 * Every feature's dashboard over `tokens`, from one pass: the corpus is cut into rows of `seq`
 * tokens, each batch runs the model once (caching only `source.hook`) and is encoded once.
 */
export async function buildDashboards(model: HookedTransformer, source: FeatureSource, tokens: ArrayLike<number>, opts: DashboardOptions = {}): Promise<DashboardSet> {
  checkSource(model, source);
  const settings = settingsOf(model, tokens, opts);
  const { topK: K, contextBefore: before, contextAfter: after, threshold, seq } = settings;
  const F = source.size;
  const W = before + 1 + after;
  const width = hookWidth(model, source.hook);
  const rng = new Rng(settings.seed);

  const top = new Windows(F * K, W);
  const topSize = new Int32Array(F);
  const samples = new Windows(F * NB, W);
  const hist = new Float64Array(F * NB);
  const sum = new Float64Array(F);
  const fires = new Float64Array(F);
  const max = new Float64Array(F);
  // Random contexts: positions chosen before the pass, their windows filled when their row runs.
  const R = Math.min(settings.randomContexts, tokens.length);
  const randomAt = new Map<number, number>();
  while (randomAt.size < R) {
    const off = rng.int(tokens.length);
    if (!randomAt.has(off)) randomAt.set(off, randomAt.size);
  }
  const randomIds: number[][] = new Array(R);
  const randomAt0: number[] = new Array(R);
  const randomActs = new Float32Array(F * R * W);

  const rows = corpusRows(tokens, seq);
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
          randomIds[ri] = Array.from({ length: to - from }, (_, i) => tokens[start + from + i]);
          randomAt0[ri] = offset;
          for (let f = 0; f < F; f++) for (let i = 0; i < to - from; i++) randomActs[(f * R + ri) * W + i] = enc[(base + from + i) * F + f];
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
          // Top-k min-heap per feature, in slots f*K .. f*K+K-1.
          const s0 = f * K;
          const n = topSize[f];
          if (n < K) {
            let i = n;
            topSize[f] = n + 1;
            top.write(s0 + i, x, offset, t - from, tokens, start, from, to, enc, base, F, f);
            while (i > 0) {
              const p = (i - 1) >> 1;
              if (top.act[s0 + p] <= top.act[s0 + i]) break;
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
              if (l < K && top.act[s0 + l] < top.act[s0 + m]) m = l;
              if (rr < K && top.act[s0 + rr] < top.act[s0 + m]) m = rr;
              if (m === i) break;
              top.swap(s0 + i, s0 + m);
              i = m;
            }
          }
        }
      }
      done += length;
    });
    opts.progress?.(done, tokens.length);
  }

  const text = (ids: number[]) => (model.tokenizer ? model.tokenStrings(ids) : ids.map(String));
  const edges = histogramEdges();
  const logits = source.decoderDirection && settings.logits > 0 ? await decoderLogits(model, source, settings.logits) : undefined;
  const neighbours = source.decoderDirection && settings.neighbours > 0 ? await nearestFeatures(model, source, settings.neighbours) : undefined;
  const features: FeatureDashboard[] = [];
  for (let f = 0; f < F; f++) {
    const slots = Array.from({ length: topSize[f] }, (_, i) => f * K + i).sort((a, b) => top.act[b] - top.act[a]);
    const counts = Array.from(hist.subarray(f * NB, (f + 1) * NB));
    features.push({
      index: f, max: max[f], mean: sum[f] / tokens.length, density: fires[f] / tokens.length,
      top: slots.map((s) => top.read(s, text)),
      quantiles: quantileSamples(counts, edges, settings.quantiles, max[f], (bin) => samples.read(f * NB + bin, text)),
      histogram: { edges, counts },
      ...(logits ? { logits: logits(f) } : {}),
      ...(neighbours ? { neighbours: neighbours[f] } : {}),
    });
  }
  // A position in a dropped one-token tail row never ran: its context is left out.
  const kept = Array.from({ length: R }, (_, c) => c).filter((c) => randomIds[c] !== undefined);
  const random = {
    ids: kept.map((c) => randomIds[c]), tokens: kept.map((c) => text(randomIds[c])), offsets: kept.map((c) => randomAt0[c]),
    activations: Array.from({ length: F }, (_, f) => kept.map((c) => Array.from(randomActs.subarray((f * R + c) * W, (f * R + c) * W + randomIds[c].length)))),
  };
  return {
    model: model.source, method: 'feature-dashboards', hook: source.hook, source: source.id, size: F,
    dataHash: hashTokens(tokens), tokens: tokens.length, seed: settings.seed, settings, features, random,
  };
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
