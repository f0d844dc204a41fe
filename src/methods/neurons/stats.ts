/**
 * Neuron statistics over a corpus in one pass (Voita et al., 2023, "Neurons in Large Language
 * Models: Dead, N-gram, Positional"): every MLP neuron of the chosen layers (its hook_post), with
 * memory that does not grow with the corpus: fixed accumulators per neuron, per neuron and
 * position, and a bounded heap of each neuron's top examples.
 *
 * Labels, first that applies:
 *   dead             never above `threshold`
 *   positional       position explains at least `positionalMin` of the activation's variance (η²)
 *   token / n-gram   at least 90% of the top examples end in one n-gram (smallest n first), the
 *                    n-gram occurs in the corpus about as often as the neuron fires (within 10%),
 *                    and the neuron fires at >= 90% of up to 32 sampled occurrences of it (rerun in
 *                    their corpus context: a bounded check, not a second pass): it fires on that
 *                    n-gram and on little else. n = 1 is a token detector.
 *   token-frequency  |corr(activation, log frequency of the current token)| >= `frequencyMin`
 *   other
 */
import { createHash } from 'node:crypto';
import { LanternError } from '../../errors.js';
import type { HookedTransformer } from '../../models/hooked.js';
import { Rng } from '../../rng.js';

/** What kind of neuron {@link neuronStats} judged a neuron to be (the rules are listed at the top of this module). */
export type NeuronLabel = 'dead' | 'positional' | 'token' | 'n-gram' | 'token-frequency' | 'other';

/** One MLP neuron: its layer and its index among the layer's d_mlp hidden units. */
export interface NeuronRef {
  /** The block, counted from 0. */
  layer: number;
  /** The neuron's index in the layer's `mlp.hook_post`. */
  neuron: number;
}

/** Options for {@link neuronStats}: which layers, how the corpus is cut into rows, and the labelling thresholds. */
export interface NeuronStatsOptions {
  /** Layers to analyse (default: all). */
  layers?: number[];
  /** Tokens per row (default: the context, at most 128). */
  seq?: number;
  /** Rows per forward pass (default 8). */
  batchSize?: number;
  /** A neuron fires where its activation exceeds this (default 0). */
  threshold?: number;
  /** Top examples kept per neuron (default 20). */
  topK?: number;
  /** η² above which a neuron is positional (default 0.5). */
  positionalMin?: number;
  /** |correlation| above which a neuron is a token-frequency neuron (default 0.5). */
  frequencyMin?: number;
  /** Longest n-gram tried (default 3). */
  maxN?: number;
  /** Called after each batch of the main pass with rows done and rows in all. */
  progress?: (done: number, total: number) => void;
}

/** One of a neuron's highest activations over the corpus, and where it happened. */
export interface TopExample {
  /** The neuron's activation (its hook_post value) there. */
  activation: number;
  /** Index into the corpus of the token where the neuron fired. */
  offset: number;
  /** Its position in its row. */
  position: number;
}

/** One neuron's statistics over the corpus and the label they earn it. */
export interface NeuronSummary extends NeuronRef {
  /** What kind of neuron it is. */
  label: NeuronLabel;
  /** Its largest activation over the corpus. */
  max: number;
  /** Its mean activation over every corpus token. */
  mean: number;
  /** Fraction of tokens where it fires. */
  fireRate: number;
  /** Variance explained by position (η²). */
  positionVariance: number;
  /** Correlation of the activation with the log corpus frequency of the current token. */
  frequencyCorrelation: number;
  /** For token and n-gram neurons: the n-gram (oldest token first), its corpus count, and the share of top examples ending in it. */
  ngram?: { tokens: number[]; count: number; share: number };
  /** Its highest activations, largest first (at most `topK`). */
  top: TopExample[];
}

/** The result of {@link neuronStats}, ready to save as JSON: a summary per neuron, and how many neurons got each label. */
export interface NeuronStats {
  /** The model's source (folder or Hub id). */
  model: string;
  method: 'neurons';
  /** The settings used, defaults filled in. */
  settings: Required<Omit<NeuronStatsOptions, 'progress' | 'layers'>> & { layers: number[] };
  /** Corpus length, in tokens. */
  tokens: number;
  /** sha256 (first 16 hex digits) of the corpus tokens read. */
  dataHash: string;
  /** Every analysed neuron, by layer then index. */
  neurons: NeuronSummary[];
  /** How many neurons got each label. */
  counts: Record<NeuronLabel, number>;
}

/** A fixed-size min-heap of the largest activations. */
class TopHeap {
  readonly act: Float64Array;
  readonly off: Int32Array;
  readonly pos: Int32Array;
  size = 0;
  constructor(readonly k: number) {
    this.act = new Float64Array(k);
    this.off = new Int32Array(k);
    this.pos = new Int32Array(k);
  }
  get min(): number {
    return this.size < this.k ? -Infinity : this.act[0];
  }
  push(a: number, off: number, pos: number): void {
    if (this.size < this.k) {
      let i = this.size++;
      this.act[i] = a; this.off[i] = off; this.pos[i] = pos;
      while (i > 0) {
        const p = (i - 1) >> 1;
        if (this.act[p] <= this.act[i]) break;
        this.swap(i, p);
        i = p;
      }
      return;
    }
    if (a <= this.act[0]) return;
    this.act[0] = a; this.off[0] = off; this.pos[0] = pos;
    let i = 0;
    for (;;) {
      const l = 2 * i + 1;
      const r = l + 1;
      let m = i;
      if (l < this.size && this.act[l] < this.act[m]) m = l;
      if (r < this.size && this.act[r] < this.act[m]) m = r;
      if (m === i) break;
      this.swap(i, m);
      i = m;
    }
  }
  private swap(i: number, j: number): void {
    [this.act[i], this.act[j]] = [this.act[j], this.act[i]];
    [this.off[i], this.off[j]] = [this.off[j], this.off[i]];
    [this.pos[i], this.pos[j]] = [this.pos[j], this.pos[i]];
  }
  sorted(): TopExample[] {
    return Array.from({ length: this.size }, (_, i) => ({ activation: this.act[i], offset: this.off[i], position: this.pos[i] })).sort((a, b) => b.activation - a.activation);
  }
}

/** The corpus cut into rows of `seq` tokens (the last, shorter row kept if it has at least two tokens). */
export function corpusRows(tokens: ArrayLike<number>, seq: number): { start: number; length: number }[] {
  const rows = [];
  for (let s = 0; s < tokens.length; s += seq) {
    const length = Math.min(seq, tokens.length - s);
    if (length >= 2 || rows.length === 0) rows.push({ start: s, length });
  }
  return rows;
}

/** A short fingerprint of a token sequence: the first 16 hex digits of the sha256 of its ids as 32-bit integers. */
export function hashTokens(tokens: ArrayLike<number>): string {
  return createHash('sha256').update(Int32Array.from(tokens as ArrayLike<number>)).digest('hex').slice(0, 16);
}

/** The settings of {@link neuronStats}, defaults filled in. */
export type NeuronStatsSettings = NeuronStats['settings'];

/** Checks the model, corpus and options of a neuron-statistics run and fills in the defaults. */
export function neuronStatsSettings(model: HookedTransformer, tokens: ArrayLike<number>, opts: NeuronStatsOptions = {}): NeuronStatsSettings {
  const { nLayers, nCtx, dVocab: V } = model.cfg;
  const layers = opts.layers ?? Array.from({ length: nLayers }, (_, l) => l);
  for (const l of layers) if (!Number.isInteger(l) || l < 0 || l >= nLayers) throw new LanternError(`layer ${l} outside [0, ${nLayers})`);
  const seq = opts.seq ?? Math.min(nCtx, 128);
  if (!Number.isInteger(seq) || seq < 1 || seq > nCtx) throw new LanternError(`rows of ${seq} tokens: must be in [1, ${nCtx}] (the model's context)`);
  if (tokens.length < 2) throw new LanternError(`the corpus has ${tokens.length} tokens; neuron statistics need at least 2`);
  for (let i = 0; i < tokens.length; i++) if (!(tokens[i] >= 0 && tokens[i] < V)) throw new LanternError(`corpus token ${tokens[i]} at ${i} is outside the vocabulary [0, ${V})`);
  return {
    layers, seq, batchSize: opts.batchSize ?? 8, threshold: opts.threshold ?? 0, topK: opts.topK ?? 20,
    positionalMin: opts.positionalMin ?? 0.5, frequencyMin: opts.frequencyMin ?? 0.5, maxN: opts.maxN ?? 3,
  };
}

/**
 * The main pass's sums over a range of corpus rows, per neuron (index layer-slot × d_mlp +
 * neuron): activation sums, squares, products with the token's log frequency, per-position sums,
 * maxima, firing counts and top examples. Sums of ranges add up to the sums of the whole corpus.
 */
export interface NeuronAccumulators {
  sum: Float64Array;
  sumSq: Float64Array;
  sumAF: Float64Array;
  /** Per neuron and position: sumP[n * seq + t]. */
  sumP: Float64Array;
  max: Float64Array;
  fires: Float64Array;
  /** Tokens seen at each position. */
  countP: Float64Array;
  /** Sums of the log frequency and its square over the tokens seen. */
  sumF: number;
  sumFF: number;
  /** Each neuron's top examples in the range, largest first. */
  top: TopExample[][];
}

/** Log corpus frequency of each vocabulary token, counted from the tokens alone. */
function logFrequencies(tokens: ArrayLike<number>, V: number): Float64Array {
  const unigram = new Float64Array(V);
  for (let i = 0; i < tokens.length; i++) unigram[tokens[i]]++;
  return unigram.map((c) => Math.log(c + 1));
}

/** The main pass over corpus rows [first, last) of {@link corpusRows}: one forward per batch of rows. */
export async function accumulateNeuronRows(
  model: HookedTransformer, tokens: ArrayLike<number>, settings: NeuronStatsSettings, first: number, last: number,
  progress?: (done: number, total: number) => void,
): Promise<NeuronAccumulators> {
  const F = model.cfg.dMlp;
  const { layers, seq } = settings;
  const N = layers.length * F;
  const sum = new Float64Array(N);
  const sumSq = new Float64Array(N);
  const max = new Float64Array(N).fill(-Infinity);
  const fires = new Float64Array(N);
  const sumAF = new Float64Array(N);
  const sumP = new Float64Array(N * seq);
  const countP = new Float64Array(seq);
  const heaps = Array.from({ length: N }, () => new TopHeap(settings.topK));
  const logFreq = logFrequencies(tokens, model.cfg.dVocab);
  let sumF = 0;
  let sumFF = 0;

  const hooks = layers.map((l) => `blocks.${l}.mlp.hook_post`);
  const rows = corpusRows(tokens, seq).slice(first, last);
  for (let r0 = 0; r0 < rows.length; r0 += settings.batchSize) {
    const chunk = rows.slice(r0, r0 + settings.batchSize);
    const ids = chunk.map(({ start, length }) => Array.from({ length }, (_, i) => tokens[start + i]));
    // Only hook_post is read: logits at one position keep the unembedding out of the pass.
    const { cache, batch } = await model.runWithHooks(ids, { cache: hooks, logitPositions: [0] });
    const T = batch.seq;
    const acts = hooks.map((h) => cache.get(h).f32);
    chunk.forEach(({ start, length }, b) => {
      for (let t = 0; t < length; t++) {
        const f = logFreq[tokens[start + t]];
        sumF += f;
        sumFF += f * f;
        countP[t]++;
        for (let li = 0; li < layers.length; li++) {
          const a = acts[li];
          const o = (b * T + t) * F;
          const n0 = li * F;
          for (let j = 0; j < F; j++) {
            const x = a[o + j];
            const n = n0 + j;
            sum[n] += x;
            sumSq[n] += x * x;
            sumAF[n] += x * f;
            sumP[n * seq + t] += x;
            if (x > max[n]) max[n] = x;
            if (x > settings.threshold) fires[n]++;
            const heap = heaps[n];
            if (x > heap.min) heap.push(x, start + t, t);
          }
        }
      }
    });
    progress?.(Math.min(r0 + settings.batchSize, rows.length), rows.length);
  }
  return { sum, sumSq, sumAF, sumP, max, fires, countP, sumF, sumFF, top: heaps.map((h) => h.sorted()) };
}

/**
 * Adds the accumulators of consecutive row ranges, in order (the fold's order fixes the rounding,
 * so the same ranges always give the same bits). Top examples keep the largest; among equal
 * activations, the earlier range's.
 */
export function addNeuronAccumulators(parts: readonly NeuronAccumulators[], topK: number): NeuronAccumulators {
  if (parts.length === 0) throw new LanternError('no row ranges to add');
  const [first, ...rest] = parts;
  const out: NeuronAccumulators = {
    sum: first.sum.slice(), sumSq: first.sumSq.slice(), sumAF: first.sumAF.slice(), sumP: first.sumP.slice(), max: first.max.slice(),
    fires: first.fires.slice(), countP: first.countP.slice(), sumF: first.sumF, sumFF: first.sumFF, top: first.top.map((t) => t.slice()),
  };
  for (const p of rest) {
    for (const k of ['sum', 'sumSq', 'sumAF', 'sumP', 'fires', 'countP'] as const) {
      const a = out[k];
      const b = p[k];
      for (let i = 0; i < a.length; i++) a[i] += b[i];
    }
    for (let i = 0; i < out.max.length; i++) if (p.max[i] > out.max[i]) out.max[i] = p.max[i];
    out.sumF += p.sumF;
    out.sumFF += p.sumFF;
    // Stable: for equal activations the earlier range's example stays ahead.
    out.top = out.top.map((t, n) => [...t, ...p.top[n]].sort((x, y) => y.activation - x.activation).slice(0, topK));
  }
  return out;
}

/**
 * Statistics and labels of every MLP neuron of the chosen layers over `tokens` (one forward per
 * batch of rows). With `blockRows`, the rows are summed in blocks of that many rows and the blocks
 * added in order, as a job with shards of that size does, so the two give the same bits.
 */
export async function neuronStats(model: HookedTransformer, tokens: ArrayLike<number>, opts: NeuronStatsOptions & { blockRows?: number } = {}): Promise<NeuronStats> {
  const settings = neuronStatsSettings(model, tokens, opts);
  const rows = corpusRows(tokens, settings.seq).length;
  const block = opts.blockRows ?? rows;
  if (!Number.isInteger(block) || block < 1) throw new LanternError(`blockRows must be a positive integer, got ${block}`);
  const parts: NeuronAccumulators[] = [];
  for (let r = 0; r < rows; r += block) {
    parts.push(await accumulateNeuronRows(model, tokens, settings, r, Math.min(rows, r + block), opts.progress && ((d) => opts.progress!(r + d, rows))));
  }
  return finishNeuronStats(model, tokens, settings, addNeuronAccumulators(parts, settings.topK));
}

/** Labels every neuron from the main pass's sums over the whole corpus (n-gram checks rerun sampled occurrences). */
export async function finishNeuronStats(model: HookedTransformer, tokens: ArrayLike<number>, settings: NeuronStatsSettings, acc: NeuronAccumulators): Promise<NeuronStats> {
  const F = model.cfg.dMlp;
  const { layers, seq } = settings;
  const N = layers.length * F;
  const { sum, sumSq, sumAF, sumP, max, fires, countP, sumF, sumFF } = acc;
  const hooks = layers.map((l) => `blocks.${l}.mlp.hook_post`);
  const total = tokens.length;

  // Candidate n-grams: what the top examples of each neuron end in; counted in the corpus in one scan.
  const key = (off: number, n: number) => (off - n + 1 < 0 ? undefined : Array.from({ length: n }, (_, i) => tokens[off - n + 1 + i]).join(','));
  const candidates: ({ n: number; key: string; share: number } | undefined)[][] = acc.top.map((top) => {
    return Array.from({ length: settings.maxN }, (_, i) => {
      const n = i + 1;
      const tally = new Map<string, number>();
      for (const e of top) {
        const k = key(e.offset, n);
        if (k !== undefined) tally.set(k, (tally.get(k) ?? 0) + 1);
      }
      let best: { n: number; key: string; share: number } | undefined;
      for (const [k, c] of tally) if (!best || c > best.share) best = { n, key: k, share: c };
      return best && top.length ? { ...best, share: best.share / top.length } : undefined;
    });
  });
  const wanted = new Map<string, number>();
  for (const cs of candidates) for (const c of cs) if (c && c.share >= 0.9) wanted.set(`${c.n}:${c.key}`, 0);
  for (let n = 1; n <= settings.maxN; n++) {
    for (let i = n - 1; i < total; i++) {
      const k = `${n}:${key(i, n)}`;
      const c = wanted.get(k);
      if (c !== undefined) wanted.set(k, c + 1);
    }
  }
  // The candidates whose corpus count matches a neuron's firing count get their firing checked on
  // up to SAMPLES occurrences (reservoir sampling in a second scan of the tokens, not the model).
  const SAMPLES = 32;
  const samples = new Map<string, number[]>();
  candidates.forEach((cs, n) => {
    for (const c of cs) {
      const k = c && c.share >= 0.9 ? `${c.n}:${c.key}` : undefined;
      const count = k ? wanted.get(k) ?? 0 : 0;
      if (k && count > 0 && Math.abs(count / fires[n] - 1) <= 0.1) samples.set(k, []);
    }
  });
  const rng = new Rng(1);
  const seen = new Map<string, number>();
  for (let n = 1; n <= settings.maxN; n++) {
    for (let i = n - 1; i < total; i++) {
      const k = `${n}:${key(i, n)}`;
      const list = samples.get(k);
      if (!list) continue;
      const c = (seen.get(k) ?? 0) + 1;
      seen.set(k, c);
      if (list.length < SAMPLES) list.push(i);
      else {
        const j = Math.floor(rng.next() * c);
        if (j < SAMPLES) list[j] = i;
      }
    }
  }
  const fireShare = await occurrenceFiring(model, tokens, seq, layers, hooks, samples, settings.threshold, settings.batchSize);

  const meanF = sumF / total;
  const varF = sumFF / total - meanF * meanF;
  const neurons: NeuronSummary[] = [];
  const counts: Record<NeuronLabel, number> = { dead: 0, positional: 0, token: 0, 'n-gram': 0, 'token-frequency': 0, other: 0 };
  for (let n = 0; n < N; n++) {
    const mean = sum[n] / total;
    const varA = sumSq[n] / total - mean * mean;
    let between = 0;
    for (let t = 0; t < seq; t++) if (countP[t]) between += countP[t] * (sumP[n * seq + t] / countP[t] - mean) ** 2;
    const positionVariance = varA > 1e-12 ? Math.min(1, between / total / varA) : 0;
    const cov = sumAF[n] / total - mean * meanF;
    const frequencyCorrelation = varA > 1e-12 && varF > 1e-12 ? cov / Math.sqrt(varA * varF) : 0;
    let label: NeuronLabel = 'other';
    let ngram: NeuronSummary['ngram'];
    if (!(max[n] > settings.threshold)) label = 'dead';
    else if (positionVariance >= settings.positionalMin) label = 'positional';
    else {
      for (const c of candidates[n]) {
        if (!c || c.share < 0.9) continue;
        const k = `${c.n}:${c.key}`;
        const count = wanted.get(k) ?? 0;
        if (count > 0 && Math.abs(count / fires[n] - 1) <= 0.1 && (fireShare.get(k)?.[n] ?? 0) >= 0.9) {
          label = c.n === 1 ? 'token' : 'n-gram';
          ngram = { tokens: c.key.split(',').map(Number), count, share: c.share };
          break;
        }
      }
      if (label === 'other' && Math.abs(frequencyCorrelation) >= settings.frequencyMin) label = 'token-frequency';
    }
    counts[label]++;
    neurons.push({
      layer: layers[Math.floor(n / F)], neuron: n % F, label, max: max[n], mean, fireRate: fires[n] / total, positionVariance, frequencyCorrelation,
      ...(ngram ? { ngram } : {}), top: acc.top[n],
    });
  }
  return { model: model.source, method: 'neurons', settings, tokens: total, dataHash: hashTokens(tokens), neurons, counts };
}

/**
 * For each candidate n-gram, the share of its sampled occurrences where each neuron fires: every
 * occurrence rerun in its row's context up to it (as the pass saw it), all analysed layers at once.
 */
async function occurrenceFiring(
  model: HookedTransformer, tokens: ArrayLike<number>, seq: number, layers: number[], hooks: string[],
  samples: Map<string, number[]>, threshold: number, batchSize: number,
): Promise<Map<string, Float64Array>> {
  const F = model.cfg.dMlp;
  const N = layers.length * F;
  const jobs = [...samples.entries()].flatMap(([k, offs]) => offs.map((off) => ({ k, off })));
  const out = new Map<string, Float64Array>([...samples.keys()].map((k) => [k, new Float64Array(N)]));
  for (let i = 0; i < jobs.length; i += batchSize) {
    const chunk = jobs.slice(i, i + batchSize);
    const rows = chunk.map(({ off }) => {
      const start = off - (off % seq);
      return Array.from({ length: off - start + 1 }, (_, j) => tokens[start + j]);
    });
    const { cache, batch } = await model.runWithHooks(rows, { cache: hooks, logitPositions: [0] });
    chunk.forEach(({ k }, b) => {
      const share = out.get(k)!;
      const weight = 1 / samples.get(k)!.length;
      hooks.forEach((h, li) => {
        const a = cache.get(h).f32;
        const o = (b * batch.seq + rows[b].length - 1) * F;
        for (let j = 0; j < F; j++) if (a[o + j] > threshold) share[li * F + j] += weight;
      });
    });
  }
  return out;
}
