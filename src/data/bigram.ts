/**
 * Count-based baselines over token-id streams, to put a trained model's held-out loss in context:
 * a bigram model with interpolated Kneser-Ney smoothing, and a unigram model.
 *
 * Why interpolated Kneser-Ney: it is the standard best-performing smoother for n-gram models
 * (Chen & Goodman 1998), clearly better than add-k, whose pseudo-counts spread over a 50,257-token
 * vocabulary give far too much mass to unseen pairs, and better than Witten-Bell. Its backoff
 * distribution counts how many different tokens a token follows rather than how often it occurs,
 * which is the right thing to back off to (" Francisco" is frequent but only ever follows " San").
 * And its one free parameter per level, the absolute discount D, has Ney's closed-form estimate
 * D = n1 / (n1 + 2 n2) from the training counts' count-of-counts (n_r: how many types occur r
 * times), so nothing is tuned and the held-out stream is touched only to be scored.
 *
 *   P(w | v) = max(c(v,w) - D, 0) / c(v)  +  D N1+(v·) / c(v) · Pc(w)       (Pc(w) when c(v) = 0)
 *   Pc(w)    = max(N1+(·w) - Dc, 0) / N1+(··)  +  Dc |{w: N1+(·w) > 0}| / N1+(··) · 1/V
 *   Pu(w)    = max(c(w) - Du, 0) / N  +  Du |{w: c(w) > 0}| / N · 1/V          (the unigram baseline)
 *
 * c(v,w): how often w follows v in train; c(v) = Σ_w c(v,w); N1+(v·): how many different tokens
 * follow v; N1+(·w): how many different tokens w follows; N1+(··): bigram types; V: vocabulary
 * size. Dc is estimated from the continuation counts N1+(·w), Du from the unigram counts c(w).
 * Each level sums to exactly 1 over the vocabulary, and every token, seen or not, gets mass.
 *
 * Context: every stream is read as if preceded by `bos` (GPT-2's `<|endoftext|>`, which also
 * separates documents), so all N tokens of a stream are predicted, the first given `bos`.
 */
import { LanternError } from '../errors.js';

export interface BigramOptions {
  /** Ids are 0 … vocabSize-1. Default 50257 (GPT-2). */
  vocabSize?: number;
  /** Context of a stream's first token. Default 50256 (`<|endoftext|>`). */
  bos?: number;
  /** Fix the bigram discount D instead of estimating it (0 < D ≤ 1). */
  discount?: number;
}

export interface Score {
  /** Mean negative log-likelihood, nats per token. */
  crossEntropy: number;
  perplexity: number;
}

export interface BaselineResult {
  /** Tokens scored (the whole held-out stream). */
  tokens: number;
  unigram: Score;
  bigram: Score;
  discounts: { bigram: number; continuation: number; unigram: number };
  method: string;
}

/** Ney's absolute discount n1 / (n1 + 2 n2); 0.5 when there are no singletons to estimate it from. */
export function neyDiscount(counts: Iterable<number>): number {
  let n1 = 0;
  let n2 = 0;
  for (const c of counts) {
    if (c === 1) n1++;
    else if (c === 2) n2++;
  }
  return n1 > 0 ? n1 / (n1 + 2 * n2) : 0.5;
}

function checkStream(tokens: ArrayLike<number>, vocabSize: number, what: string): void {
  for (let i = 0; i < tokens.length; i++) {
    const t = tokens[i];
    if (!Number.isInteger(t) || t < 0 || t >= vocabSize) throw new LanternError(`${what}: token ${t} at ${i} is outside the vocabulary 0..${vocabSize - 1}`);
  }
}

export class BigramModel {
  readonly vocabSize: number;
  readonly bos: number;
  /** Bigram discount D, continuation discount Dc, unigram discount Du. */
  readonly discount: number;
  readonly continuationDiscount: number;
  readonly unigramDiscount: number;

  // Bigram counts as a sparse matrix in CSR form: the followers of v are cols[rowStart[v] … rowStart[v+1]), ascending.
  private readonly rowStart: Int32Array;
  private readonly cols: Int32Array;
  private readonly counts: Int32Array;
  private readonly contextCount: Float64Array; // c(v)
  private readonly followerTypes: Float64Array; // N1+(v·)
  private readonly continuation: Float64Array; // Pc(w)
  private readonly unigram: Float64Array; // Pu(w)

  private constructor(train: ArrayLike<number>, opts: BigramOptions) {
    const V = (this.vocabSize = opts.vocabSize ?? 50257);
    this.bos = opts.bos ?? 50256;
    if (!Number.isInteger(V) || V < 1) throw new LanternError(`vocabSize must be a positive integer, got ${V}`);
    if (!Number.isInteger(this.bos) || this.bos < 0 || this.bos >= V) throw new LanternError(`bos ${this.bos} is outside the vocabulary 0..${V - 1}`);
    checkStream(train, V, 'train stream');
    if (train.length === 0) throw new LanternError('train stream is empty');

    // Sort the pair keys v*V + w (exact in a double: V² < 2^53) and run-length them.
    const keys = new Float64Array(train.length);
    for (let i = 0; i < train.length; i++) keys[i] = (i === 0 ? this.bos : train[i - 1]) * V + train[i];
    keys.sort();
    let types = 0;
    for (let i = 0; i < keys.length; i++) if (i === 0 || keys[i] !== keys[i - 1]) types++;
    this.rowStart = new Int32Array(V + 1);
    this.cols = new Int32Array(types);
    this.counts = new Int32Array(types);
    this.contextCount = new Float64Array(V);
    this.followerTypes = new Float64Array(V);
    const precedingTypes = new Float64Array(V); // N1+(·w)
    let k = -1;
    for (let i = 0; i < keys.length; i++) {
      if (i === 0 || keys[i] !== keys[i - 1]) {
        k++;
        const v = Math.floor(keys[i] / V);
        const w = keys[i] - v * V;
        this.cols[k] = w;
        this.rowStart[v + 1]++;
        this.followerTypes[v]++;
        precedingTypes[w]++;
      }
      this.counts[k]++;
      this.contextCount[Math.floor(keys[i] / V)]++;
    }
    for (let v = 0; v < V; v++) this.rowStart[v + 1] += this.rowStart[v];

    if (opts.discount !== undefined && !(opts.discount > 0 && opts.discount <= 1)) {
      throw new LanternError(`discount must be in (0, 1], got ${opts.discount}`);
    }
    this.discount = opts.discount ?? neyDiscount(this.counts);
    this.continuationDiscount = neyDiscount(precedingTypes);
    this.continuation = interpolateWithUniform(precedingTypes, this.continuationDiscount);

    const unigramCounts = new Float64Array(V);
    for (let i = 0; i < train.length; i++) unigramCounts[train[i]]++;
    this.unigramDiscount = neyDiscount(unigramCounts);
    this.unigram = interpolateWithUniform(unigramCounts, this.unigramDiscount);
  }

  /** Counts a train stream (as if preceded by `bos`). */
  static train(train: ArrayLike<number>, opts: BigramOptions = {}): BigramModel {
    return new BigramModel(train, opts);
  }

  /** c(v, w): how often w follows v in the train stream. */
  count(prev: number, next: number): number {
    let lo = this.rowStart[prev];
    let hi = this.rowStart[prev + 1];
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      const c = this.cols[mid];
      if (c === next) return this.counts[mid];
      if (c < next) lo = mid + 1;
      else hi = mid;
    }
    return 0;
  }

  /** P(next | prev), Kneser-Ney. */
  prob(prev: number, next: number): number {
    const cv = this.contextCount[prev];
    if (cv === 0) return this.continuation[next];
    const D = this.discount;
    return Math.max(this.count(prev, next) - D, 0) / cv + ((D * this.followerTypes[prev]) / cv) * this.continuation[next];
  }

  /** P(w) of the unigram baseline. */
  unigramProb(w: number): number {
    return this.unigram[w];
  }

  /** The whole distribution P(· | prev) over the vocabulary. */
  distribution(prev: number): Float64Array {
    const cv = this.contextCount[prev];
    if (cv === 0) return this.continuation.slice();
    const D = this.discount;
    const out = new Float64Array(this.vocabSize);
    const backoff = (D * this.followerTypes[prev]) / cv;
    for (let w = 0; w < this.vocabSize; w++) out[w] = backoff * this.continuation[w];
    for (let j = this.rowStart[prev]; j < this.rowStart[prev + 1]; j++) out[this.cols[j]] += Math.max(this.counts[j] - D, 0) / cv;
    return out;
  }

  /** Bigram cross-entropy (nats/token) and perplexity of a stream, its first token given `bos`. */
  score(stream: ArrayLike<number>): Score {
    checkStream(stream, this.vocabSize, 'scored stream');
    if (stream.length === 0) throw new LanternError('scored stream is empty');
    let nll = 0;
    for (let i = 0; i < stream.length; i++) nll -= Math.log(this.prob(i === 0 ? this.bos : stream[i - 1], stream[i]));
    return toScore(nll / stream.length);
  }

  /** Unigram cross-entropy (nats/token) and perplexity of a stream. */
  unigramScore(stream: ArrayLike<number>): Score {
    checkStream(stream, this.vocabSize, 'scored stream');
    if (stream.length === 0) throw new LanternError('scored stream is empty');
    let nll = 0;
    for (let i = 0; i < stream.length; i++) nll -= Math.log(this.unigram[stream[i]]);
    return toScore(nll / stream.length);
  }
}

/** max(c(w) - D, 0) / Σc  +  D · |{w: c(w) > 0}| / Σc · 1/V, which sums to 1. */
function interpolateWithUniform(counts: Float64Array, D: number): Float64Array {
  const V = counts.length;
  let total = 0;
  let seen = 0;
  for (const c of counts) {
    total += c;
    if (c > 0) seen++;
  }
  const uniform = (D * seen) / total / V;
  return counts.map((c) => Math.max(c - D, 0) / total + uniform);
}

function toScore(crossEntropy: number): Score {
  return { crossEntropy, perplexity: Math.exp(crossEntropy) };
}

/** Trains on `train`, scores `heldout`: bigram (interpolated Kneser-Ney) and unigram perplexity. */
export function bigramBaseline(train: ArrayLike<number>, heldout: ArrayLike<number>, opts: BigramOptions = {}): BaselineResult {
  const model = BigramModel.train(train, opts);
  return {
    tokens: heldout.length,
    unigram: model.unigramScore(heldout),
    bigram: model.score(heldout),
    discounts: { bigram: model.discount, continuation: model.continuationDiscount, unigram: model.unigramDiscount },
    method: 'bigram: interpolated Kneser-Ney, Ney discounts; unigram: absolute discounting interpolated with uniform',
  };
}
