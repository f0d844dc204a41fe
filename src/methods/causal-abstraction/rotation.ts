/**
 * The learned subspace of distributed alignment search: an orthonormal frame Q [dim, k], the first
 * k columns of a rotation, parametrised as a product of k Householder reflections,
 * Q = H_0 H_1 … H_{k-1} E_k with H_i = I − 2 v_i v_iᵀ / ‖v_i‖². Every such product is orthogonal
 * exactly (whatever the v_i), every k-frame is reachable, and it needs only matmuls, so Lantern's
 * autodiff differentiates it; the frame is computed in float64 so it stays orthonormal to ~1e-15
 * before the cast to float32 (~1e-7).
 *
 * The interchange in rotated coordinates keeps the base's coordinates outside the frame and takes
 * the source's inside it, weighted per rotated dimension by a mask m (all ones for DAS; for
 * Boundless DAS a sigmoid boundary m_i = σ((b − i − ½) / τ) whose position b is learned while the
 * temperature τ anneals): x' = x + ((s − x) Q ⊙ m) Qᵀ.
 */
import { Graph, Value } from '../../engine/graph/ir.js';
import { gradients } from '../../engine/autodiff/grad.js';
import { Tensor } from '../../engine/tensor.js';
import type { Executor } from '../../engine/runtime/executor.js';
import { EVD, Matrix } from 'ml-matrix';
import { orthonormalRows } from './interchange.js';

function frame(g: Graph, v: Value, dim: number, k: number): Value {
  const eye = new Float64Array(dim * k);
  for (let i = 0; i < k; i++) eye[i * k + i] = 1;
  let q = g.constant(eye, [dim, k], 'float64');
  for (let i = k - 1; i >= 0; i--) {
    const vi = g.slice(v, 0, i, i + 1); // [1, dim]
    const norm2 = g.reduceSum(g.mul(vi, vi), [0, 1], true); // [1, 1]
    const proj = g.matmul(vi, q); // [1, k]
    q = g.sub(q, g.div(g.mul(g.scalar(2, 'float64'), g.matmul(g.transpose(vi, [1, 0]), proj)), norm2));
  }
  return q;
}

/** The rotation graph: frame, soft mask and interchanged rows; with `grad`, the vector–Jacobian product for the parameters. */
function rotationGraph(dim: number, k: number, grad: boolean): Graph {
  const g = new Graph();
  const v = g.identity(g.input('das.v', 'float64', [k, dim]));
  const boundary = g.identity(g.input('das.boundary', 'float64', []));
  const temperature = g.input('das.temperature', 'float64', []);
  const x = g.cast(g.input('das.x', 'float32', ['n', dim]), 'float64');
  const s = g.cast(g.input('das.s', 'float32', ['n', dim]), 'float64');
  const q = frame(g, v, dim, k);
  const centres = g.constant(Array.from({ length: k }, (_, i) => i + 0.5), [1, k], 'float64');
  const mask = g.sigmoid(g.div(g.sub(boundary, centres), temperature)); // [1, k]
  const coords = g.mul(g.matmul(g.sub(s, x), q), mask); // [n, k]
  const patched = g.add(x, g.matmul(coords, g.transpose(q, [1, 0])));
  g.output('das.patched', g.cast(patched, 'float32'));
  g.output('das.q', q);
  g.output('das.mask', mask);
  if (grad) {
    const upstream = g.cast(g.input('das.upstream', 'float32', ['n', dim]), 'float64');
    const objective = g.reduceSum(g.mul(upstream, patched), [0, 1], false);
    const [dv, db] = gradients(g, objective, [v, boundary]);
    g.output('das.dv', dv);
    g.output('das.dboundary', db);
  }
  return g;
}

/** The learnable part of a DAS intervention: Householder vectors and (Boundless DAS) a boundary and temperature. */
export interface RotationParams {
  dim: number;
  k: number;
  /** [k, dim] Householder vectors, row-major. */
  v: Float64Array;
  /** Position of the soft boundary over the k rotated dimensions (a large value: every one is on). */
  boundary: number;
  temperature: number;
}

/** What one pass of the rotation graph gives. */
export interface RotationPass {
  patched: Float32Array;
  /** The frame Q [dim, k] row-major, float64. */
  q: Float64Array;
  mask: Float64Array;
  dv?: Float64Array;
  dboundary?: number;
}

/**
 * Runs the rotation graph on base rows `x` and source rows `s` ([n, dim] each); with `upstream`
 * (dL/dpatched), also returns dL/dv and dL/dboundary.
 */
export async function rotate(executor: Executor, p: RotationParams, x: Float32Array, s: Float32Array, upstream?: Float32Array): Promise<RotationPass> {
  const { dim, k } = p;
  const n = x.length / dim;
  const grad = Boolean(upstream);
  const feeds: Record<string, Tensor> = {
    'das.v': Tensor.f64(p.v, [k, dim]),
    'das.boundary': Tensor.f64([p.boundary], []),
    'das.temperature': Tensor.f64([p.temperature], []),
    'das.x': Tensor.f32(x, [n, dim]),
    'das.s': Tensor.f32(s, [n, dim]),
  };
  if (upstream) feeds['das.upstream'] = Tensor.f32(upstream, [n, dim]);
  const out = await executor.run(JSON.stringify({ das: 'householder', dim, k, grad }), () => rotationGraph(dim, k, grad), feeds);
  return {
    patched: out['das.patched'].f32,
    q: out['das.q'].data as Float64Array,
    mask: out['das.mask'].data as Float64Array,
    dv: grad ? (out['das.dv'].data as Float64Array) : undefined,
    dboundary: grad ? (out['das.dboundary'].data as Float64Array)[0] : undefined,
  };
}

/** max |QᵀQ − I| of a frame Q [dim, k] (row-major): how far its columns are from orthonormal. */
export function orthogonalityError(q: ArrayLike<number>, dim: number, k: number): number {
  let worst = 0;
  for (let i = 0; i < k; i++) {
    for (let j = i; j < k; j++) {
      let dot = 0;
      for (let t = 0; t < dim; t++) dot += q[t * k + i] * q[t * k + j];
      worst = Math.max(worst, Math.abs(dot - (i === j ? 1 : 0)));
    }
  }
  return worst;
}

/**
 * Householder vectors [k, dim] whose product's first k columns span the same subspace as the
 * orthonormal columns of `frame` [dim, k] (row-major): Householder QR of the frame, whose R is
 * diagonal ±1 because the columns are orthonormal.
 */
export function householderVectors(frame: Float64Array, dim: number, k: number): Float64Array {
  const a = Float64Array.from(frame);
  const vs = new Float64Array(k * dim);
  for (let j = 0; j < k; j++) {
    const v = vs.subarray(j * dim, (j + 1) * dim);
    let norm = 0;
    for (let t = j; t < dim; t++) norm += a[t * k + j] ** 2;
    norm = Math.sqrt(norm);
    for (let t = j; t < dim; t++) v[t] = a[t * k + j];
    v[j] += (a[j * k + j] >= 0 ? 1 : -1) * norm;
    const n2 = v.reduce((s, x) => s + x * x, 0);
    for (let c = 0; c < k; c++) {
      let dot = 0;
      for (let t = j; t < dim; t++) dot += v[t] * a[t * k + c];
      for (let t = j; t < dim; t++) a[t * k + c] -= (2 * v[t] * dot) / n2;
    }
  }
  return vs;
}

/**
 * The top-k principal directions of the rows of `diff` ([n, dim]: source minus base activations),
 * as an orthonormal frame [dim, k]: where interchanges move the activation most, a starting point
 * for DAS. Directions beyond the data's rank are completed with standard basis vectors.
 */
export function principalFrame(diff: Float32Array, dim: number, k: number): Float64Array {
  const n = diff.length / dim;
  const cov = new Matrix(dim, dim);
  for (let r = 0; r < n; r++) {
    const row = diff.subarray(r * dim, (r + 1) * dim);
    for (let i = 0; i < dim; i++) {
      if (row[i] === 0) continue;
      for (let j = 0; j < dim; j++) cov.set(i, j, cov.get(i, j) + row[i] * row[j]);
    }
  }
  const evd = new EVD(cov, { assumeSymmetric: true });
  const order = evd.realEigenvalues.map((e, i) => [e, i]).sort((x, y) => y[0] - x[0]).map(([, i]) => i);
  const vecs = evd.eigenvectorMatrix;
  const basis: number[] = [];
  for (let c = 0; c < k; c++) for (let t = 0; t < dim; t++) basis.push(vecs.get(t, order[c]));
  const rows = orthonormalRows({ basis, k, dim }, 'principal frame');
  const frame = new Float64Array(dim * k);
  for (let c = 0; c < k; c++) for (let t = 0; t < dim; t++) frame[t * k + c] = rows[c * dim + t];
  return frame;
}
