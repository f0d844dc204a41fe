/**
 * A head's OV and QK circuits through the embedding and unembedding (Elhage et al., 2021, "A
 * Mathematical Framework for Transformer Circuits"), kept factored: the full OV circuit
 * W_E W_V W_O W_U is vocab x vocab, but every number here comes from d_head-sized products.
 *
 * Conventions (row vectors, as TransformerLens): a token's embedding row e, the head's value
 * e·W_V, its write e·W_V·W_O, its direct logits e·W_V·W_O·W_U. Weights come from the model with
 * ln1 and the final norm's weights folded in (`HookedTransformer.attentionWeights`,
 * `unembeddingMatrix`); biases and the norms' division by the scale are left out, as in the
 * paper's and TransformerLens's circuit analysis.
 */
import { EigenvalueDecomposition, Matrix } from 'ml-matrix';
import { LanternError } from '../../errors.js';
import type { HookedTransformer, AttentionWeights } from '../../models/hooked.js';
import type { Tensor } from '../../engine/tensor.js';

/** A row-major dense matrix. */
export interface Dense {
  rows: number;
  cols: number;
  data: Float64Array;
}

/** A rows × cols {@link Dense} matrix: a copy of `data` (row-major, rows·cols values), or zeros without it. */
export function dense(rows: number, cols: number, data?: ArrayLike<number>): Dense {
  if (data && data.length !== rows * cols) throw new LanternError(`matrix of ${data.length} values is not ${rows} x ${cols}`);
  return { rows, cols, data: data ? Float64Array.from(data) : new Float64Array(rows * cols) };
}

/** The matrix product a·b (a: n × k, b: k × m), as a new n × m matrix. */
export function matmul(a: Dense, b: Dense): Dense {
  if (a.cols !== b.rows) throw new LanternError(`cannot multiply ${a.rows}x${a.cols} by ${b.rows}x${b.cols}`);
  const out = dense(a.rows, b.cols);
  for (let i = 0; i < a.rows; i++) {
    const o = i * b.cols;
    for (let k = 0; k < a.cols; k++) {
      const x = a.data[i * a.cols + k];
      if (x === 0) continue;
      const r = k * b.cols;
      for (let j = 0; j < b.cols; j++) out.data[o + j] += x * b.data[r + j];
    }
  }
  return out;
}

/** The transpose of `a`, as a new matrix. */
export function transpose(a: Dense): Dense {
  const out = dense(a.cols, a.rows);
  for (let i = 0; i < a.rows; i++) for (let j = 0; j < a.cols; j++) out.data[j * a.rows + i] = a.data[i * a.cols + j];
  return out;
}

/** A low-rank matrix A·B (A: n x r, B: r x m), never formed: TransformerLens's FactoredMatrix. */
export interface Factored {
  A: Dense;
  B: Dense;
}

/** ||A B||_F² = tr((AᵀA)(B Bᵀ)): two r x r Gram matrices instead of the n x m product. */
export function frobeniusSq(f: Factored): number {
  const ga = matmul(transpose(f.A), f.A);
  const gb = matmul(f.B, transpose(f.B));
  let s = 0;
  for (let i = 0; i < ga.rows; i++) for (let j = 0; j < ga.cols; j++) s += ga.data[i * ga.cols + j] * gb.data[j * gb.cols + i];
  return s;
}

/** (A1 B1)(A2 B2) = A1 (B1 A2 B2): still factored, with the inner product folded into the right factor. */
export function compose(left: Factored, right: Factored): Factored {
  return { A: left.A, B: matmul(matmul(left.B, right.A), right.B) };
}

/** (A B)ᵀ = Bᵀ Aᵀ. */
export function factoredTranspose(f: Factored): Factored {
  return { A: transpose(f.B), B: transpose(f.A) };
}

/**
 * The composition score of Elhage et al.: ||left · right||_F / (||left||_F ||right||_F), between
 * 0 and 1: how much of what `left` writes `right` reads.
 */
export function compositionScore(left: Factored, right: Factored): number {
  const num = frobeniusSq(compose(left, right));
  const den = frobeniusSq(left) * frobeniusSq(right);
  return den > 0 ? Math.sqrt(num / den) : 0;
}

/**
 * Eigenvalues of A·B (n x n) from those of B·A (r x r): the same non-zero eigenvalues. Returns
 * real and imaginary parts.
 */
export function factoredEigenvalues(f: Factored): { re: number[]; im: number[] } {
  const ba = matmul(f.B, f.A);
  const m = new Matrix(Array.from({ length: ba.rows }, (_, i) => Array.from(ba.data.subarray(i * ba.cols, (i + 1) * ba.cols))));
  const e = new EigenvalueDecomposition(m, { assumeSymmetric: false });
  return { re: e.realEigenvalues, im: e.imaginaryEigenvalues };
}

/**
 * The eigenvalue copying score: Σλ / Σ|λ| over the eigenvalues of a circuit, in [-1, 1]. Near 1:
 * the head maps tokens to themselves (copying); near -1: to minus themselves (suppression).
 */
export function copyingScore(f: Factored): number {
  const { re, im } = factoredEigenvalues(f);
  let sum = 0;
  let abs = 0;
  re.forEach((r, i) => { sum += r; abs += Math.hypot(r, im[i]); });
  return abs > 0 ? sum / abs : 0;
}

// ---------------------------------------------------------------------------------------------
// A model's circuits

/** One attention head. */
export interface HeadRef {
  layer: number;
  head: number;
}

/** A head's short name, `L{layer}H{head}` (e.g. L1H2), as reports write it and {@link parseHead} reads it. */
export function headLabel(h: HeadRef): string {
  return `L${h.layer}H${h.head}`;
}

/** Parses 'L1H2' or '1.2'; a LanternError names the valid range. */
export function parseHead(text: string, model: Pick<HookedTransformer, 'cfg'>): HeadRef {
  const m = /^(?:L(\d+)H(\d+)|(\d+)\.(\d+))$/i.exec(text.trim());
  const { nLayers, nHeads } = model.cfg;
  if (!m) throw new LanternError(`head '${text}' is not of the form L<layer>H<head> (e.g. L1H2) or <layer>.<head>`);
  const layer = Number(m[1] ?? m[3]);
  const head = Number(m[2] ?? m[4]);
  if (layer >= nLayers || head >= nHeads) throw new LanternError(`head ${text} outside the model's ${nLayers} layers x ${nHeads} heads (L0H0 .. L${nLayers - 1}H${nHeads - 1})`);
  return { layer, head };
}

function slice3(t: Tensor, i: number): Dense {
  const [, r, c] = t.shape;
  return dense(r, c, t.f32.subarray(i * r * c, (i + 1) * r * c));
}

/**
 * Every head's weights, the embedding and the unembedding, read once: what the circuit functions
 * below share. Reading costs one small graph per layer.
 */
export class ModelCircuits {
  private constructor(
    readonly model: HookedTransformer,
    readonly layers: AttentionWeights[],
    /** [vocab, d_model] */
    readonly embedding: Tensor,
    /** [d_model, vocab] */
    readonly unembedding: Tensor,
  ) {}

  /** Reads a model's attention weights (every layer), embedding and unembedding, ready for circuit analysis. */
  static async read(model: HookedTransformer): Promise<ModelCircuits> {
    const layers: AttentionWeights[] = [];
    for (let l = 0; l < model.cfg.nLayers; l++) layers.push(await model.attentionWeights(l));
    return new ModelCircuits(model, layers, await model.embeddingMatrix(), await model.unembeddingMatrix());
  }

  private weights(h: HeadRef): AttentionWeights {
    const w = this.layers[h.layer];
    if (!w || h.head < 0 || h.head >= this.model.cfg.nHeads) throw new LanternError(`no head ${headLabel(h)} in this model`);
    return w;
  }

  /** W_V[kv(h)] W_O[h]: d_model x d_model, factored through d_head. */
  ov(h: HeadRef): Factored {
    const w = this.weights(h);
    return { A: slice3(w.W_V, w.kvHeadOf(h.head)), B: slice3(w.W_O, h.head) };
  }

  /** W_Q[h] W_K[kv(h)]ᵀ: query residual x key residual, d_model x d_model, factored through d_head. */
  qk(h: HeadRef): Factored {
    const w = this.weights(h);
    return { A: slice3(w.W_Q, h.head), B: transpose(slice3(w.W_K, w.kvHeadOf(h.head))) };
  }

  /** Rows of the embedding for `tokens`, [n, d_model]. */
  embedRows(tokens: number[]): Dense {
    const [V, D] = this.embedding.shape;
    const out = dense(tokens.length, D);
    tokens.forEach((t, i) => {
      if (!Number.isInteger(t) || t < 0 || t >= V) throw new LanternError(`token id ${t} is outside the vocabulary [0, ${V})`);
      for (let d = 0; d < D; d++) out.data[i * D + d] = this.embedding.f32[t * D + d];
    });
    return out;
  }

  /** Columns of the unembedding for `tokens`, [d_model, n]. */
  unembedColumns(tokens: number[]): Dense {
    const [D, V] = this.unembedding.shape;
    const out = dense(D, tokens.length);
    tokens.forEach((t, j) => {
      if (!Number.isInteger(t) || t < 0 || t >= V) throw new LanternError(`token id ${t} is outside the vocabulary [0, ${V})`);
      for (let d = 0; d < D; d++) out.data[d * tokens.length + j] = this.unembedding.f32[d * V + t];
    });
    return out;
  }

  /** The full OV circuit restricted to source and destination tokens: [sources, destinations] direct logits. */
  fullOv(h: HeadRef, sources: number[], destinations: number[]): Dense {
    const { A, B } = this.ov(h);
    return matmul(matmul(matmul(this.embedRows(sources), A), B), this.unembedColumns(destinations));
  }

  /** The full QK circuit restricted to query and key tokens: [queries, keys] bilinear attention scores (before the 1/sqrt(d_head) scale). */
  fullQk(h: HeadRef, queries: number[], keys: number[]): Dense {
    const { A, B } = this.qk(h);
    return matmul(matmul(this.embedRows(queries), A), matmul(B, transpose(this.embedRows(keys))));
  }

  /**
   * The full OV circuit W_E W_V W_O W_U (vocab x vocab) as a factored matrix: A = W_E W_V
   * [vocab, d_head], B = W_O W_U [d_head, vocab].
   */
  fullOvFactored(h: HeadRef): Factored {
    const { A, B } = this.ov(h);
    const [V, D] = this.embedding.shape;
    return { A: matmul(dense(V, D, this.embedding.f32), A), B: matmul(B, dense(D, this.unembedding.shape[1], this.unembedding.f32)) };
  }

  /** The eigenvalue copying score of the full OV circuit (Elhage et al.). */
  copyingScore(h: HeadRef): number {
    return copyingScore(this.fullOvFactored(h));
  }

  /**
   * The tokens a head copies most: diagonal entries of the full OV circuit (a token's direct logit
   * when the head attends to it), for `tokens` (default: every token), largest first (sign 1) or
   * most negative first (sign -1), the first `k` (default 10).
   */
  topCopied(h: HeadRef, opts: { tokens?: number[]; k?: number; sign?: 1 | -1 } = {}): { token: number; value: number }[] {
    const V = this.embedding.shape[0];
    const tokens = opts.tokens ?? Array.from({ length: V }, (_, i) => i);
    const { A, B } = this.ov(h);
    const u = matmul(this.embedRows(tokens), A); // [n, dh]
    const w = matmul(B, this.unembedColumns(tokens)); // [dh, n]
    const dh = u.cols;
    const sign = opts.sign ?? 1;
    const diag = tokens.map((token, i) => {
      let s = 0;
      for (let r = 0; r < dh; r++) s += u.data[i * dh + r] * w.data[r * tokens.length + i];
      return { token, value: s };
    });
    return diag.sort((a, b) => sign * (b.value - a.value)).slice(0, opts.k ?? 10);
  }

  /**
   * Composition scores between every pair of heads in different layers (Elhage et al.):
   * Q: W_OV(sender) · W_QK(receiver), K: W_OV(sender) · W_QK(receiver)ᵀ, V: W_OV(sender) ·
   * W_OV(receiver). `scores[kind][i][j]` for sender head i and receiver head j, heads numbered
   * layer·n_heads + head; pairs with the receiver not in a later layer are 0.
   */
  compositionScores(): { Q: number[][]; K: number[][]; V: number[][] } {
    const { nLayers: L, nHeads: H } = this.model.cfg;
    const n = L * H;
    const heads = Array.from({ length: n }, (_, i) => ({ layer: Math.floor(i / H), head: i % H }));
    const ov = heads.map((h) => this.ov(h));
    const qk = heads.map((h) => this.qk(h));
    const out = { Q: grid(n), K: grid(n), V: grid(n) };
    for (let i = 0; i < n; i++) {
      for (let j = 0; j < n; j++) {
        if (heads[j].layer <= heads[i].layer) continue;
        out.Q[i][j] = compositionScore(ov[i], qk[j]);
        out.K[i][j] = compositionScore(ov[i], factoredTranspose(qk[j]));
        out.V[i][j] = compositionScore(ov[i], ov[j]);
      }
    }
    return out;
  }
}

function grid(n: number): number[][] {
  return Array.from({ length: n }, () => new Array<number>(n).fill(0));
}
