/**
 * Reverse-mode differentiation over the graph IR.
 *
 * `gradients` appends the backward pass to the same graph, so ONNX Runtime runs forward and
 * backward as one session and plans memory for both. Only nodes on a path from a `wrt` value to
 * the objective are differentiated: asking for the gradient wrt the embeddings never computes
 * weight gradients, which keeps forward+backward near 2x a forward.
 *
 * Each op's rule is checked against central finite differences in test/autodiff.test.ts.
 */
import { LanternError } from '../../errors.js';
import { Graph, Node, Value, Shape } from '../graph/ir.js';

type Rule = (g: Graph, node: Node, dys: (Value | undefined)[]) => (Value | undefined)[];

const last2 = (rank: number) => [...Array(rank - 2).keys(), rank - 1, rank - 2];

/** Sums `dy` over the axes along which `x` was broadcast to produce it. */
function unbroadcast(g: Graph, dy: Value, x: Value): Value {
  const extra = dy.shape.length - x.shape.length;
  const axes: number[] = [];
  dy.shape.forEach((d, i) => {
    if (i < extra) axes.push(i);
    else if (x.shape[i - extra] === 1 && d !== 1) axes.push(i);
  });
  if (axes.length === 0 && extra === 0) return dy;
  const summed = axes.length ? g.reduceSum(dy, axes, true) : dy;
  return sameShape(summed.shape, x.shape) ? summed : g.reshapeLike(summed, x);
}

const sameShape = (a: Shape, b: Shape) => a.length === b.length && a.every((d, i) => d === b[i]);

function transposeLast2(g: Graph, x: Value): Value {
  return g.transpose(x, last2(x.shape.length));
}

const rules: Record<string, Rule> = {
  Identity: (_g, _n, [dy]) => [dy],
  Add: (g, n, [dy]) => [unbroadcast(g, dy!, n.inputs[0]), unbroadcast(g, dy!, n.inputs[1])],
  Sub: (g, n, [dy]) => [unbroadcast(g, dy!, n.inputs[0]), unbroadcast(g, g.neg(dy!), n.inputs[1])],
  Mul: (g, n, [dy]) => {
    const [a, b] = n.inputs;
    return [unbroadcast(g, g.mul(dy!, b), a), unbroadcast(g, g.mul(dy!, a), b)];
  },
  Div: (g, n, [dy]) => {
    const [a, b] = n.inputs;
    const y = n.outputs[0];
    return [unbroadcast(g, g.div(dy!, b), a), unbroadcast(g, g.neg(g.div(g.mul(dy!, y), b)), b)];
  },
  Neg: (g, _n, [dy]) => [g.neg(dy!)],
  Exp: (g, n, [dy]) => [g.mul(dy!, n.outputs[0])],
  Log: (g, n, [dy]) => [g.div(dy!, n.inputs[0])],
  Tanh: (g, n, [dy]) => {
    const y = n.outputs[0];
    return [g.mul(dy!, g.sub(g.scalar(1, y.dtype), g.mul(y, y)))];
  },
  Sigmoid: (g, n, [dy]) => {
    const y = n.outputs[0];
    return [g.mul(dy!, g.mul(y, g.sub(g.scalar(1, y.dtype), y)))];
  },
  Sqrt: (g, n, [dy]) => [g.div(g.mul(dy!, g.scalar(0.5, dy!.dtype)), n.outputs[0])],
  Erf: (g, n, [dy]) => {
    const x = n.inputs[0];
    const gauss = g.exp(g.neg(g.mul(x, x)));
    return [g.mul(dy!, g.mul(gauss, g.scalar(2 / Math.sqrt(Math.PI), x.dtype)))];
  },
  Pow: (g, n, [dy]) => {
    const p: number = n.meta.p;
    const x = n.inputs[0];
    // x^2 as x*x: ORT's Pow kernel is several times slower than Mul (GELU's x^3 hits this).
    const xp = p === 2 ? x : p === 3 ? g.mul(x, x) : g.pow(x, p - 1);
    return [g.mul(dy!, g.mul(g.scalar(p, x.dtype), xp))];
  },
  Cast: (g, n, [dy]) => [g.cast(dy!, n.inputs[0].dtype)],
  Expand: (g, n, [dy]) => [unbroadcast(g, dy!, n.inputs[0])],
  MatMul: (g, n, [dy]) => {
    const [a, b] = n.inputs;
    const da = unbroadcast(g, g.matmul(dy!, transposeLast2(g, b)), a);
    let db: Value;
    if (b.shape.length === 2 && a.shape.length > 2) {
      // A weight shared across batch and positions: one big matmul instead of a batched one and a sum.
      const k = a.shape[a.shape.length - 1];
      const m = dy!.shape[dy!.shape.length - 1];
      const a2 = g.reshape(a, [-1, k]);
      const dy2 = g.reshape(dy!, [-1, m]);
      db = g.matmul(g.transpose(a2, [1, 0]), dy2);
    } else {
      db = unbroadcast(g, g.matmul(transposeLast2(g, a), dy!), b);
    }
    return [da, db];
  },
  Gemm: (g, n, [dy]) => {
    const [a, b] = n.inputs;
    const tA = n.attrs.transA === 1;
    const tB = n.attrs.transB === 1;
    if (!tA && !tB) return [g.gemm(dy!, b, false, true), g.gemm(a, dy!, true, false)];
    if (!tA && tB) return [g.gemm(dy!, b), g.gemm(dy!, a, true, false)];
    if (tA && !tB) return [g.gemm(b, dy!, false, true), g.gemm(a, dy!)];
    return [g.gemm(b, dy!, true, true), g.gemm(dy!, a, true, true)];
  },
  FusedMatMul: (g, n, [dy]) => {
    // y = a @ b^T (transB only, as Graph.matmulTransB builds it)
    const [a, b] = n.inputs;
    const k = a.shape[a.shape.length - 1];
    const m = b.shape[0];
    const db = g.gemm(g.reshape(dy!, [-1, m]), g.reshape(a, [-1, k]), true, false);
    return [g.matmul(dy!, b), db];
  },
  SoftmaxCrossEntropyLoss: (g, n, [dy]) => {
    // d mean_i(-log p_i[t_i]) / d logits = (softmax - onehot(t)) / n, from the log-probs the
    // forward already computed.
    const [logits, targets] = n.inputs;
    const t = g.unsqueeze(targets, [1]);
    const minusOne = g.expandLike(g.scalar(-1, logits.dtype), t);
    const shifted = g.scatterElementsAdd(g.exp(n.outputs[1]), t, minusOne, 1);
    const count = g.cast(g.sizeOf(targets), logits.dtype);
    return [g.mul(shifted, g.div(dy!, count)), undefined];
  },
  Softmax: (g, n, [dy]) => {
    const y = n.outputs[0];
    const axis = n.attrs.axis as number;
    return [g.mul(y, g.sub(dy!, g.reduceSum(g.mul(dy!, y), [axis], true)))];
  },
  LogSoftmax: (g, n, [dy]) => {
    const y = n.outputs[0];
    const axis = n.attrs.axis as number;
    return [g.sub(dy!, g.mul(g.exp(y), g.reduceSum(dy!, [axis], true)))];
  },
  ReduceSum: (g, n, [dy]) => [spreadReduced(g, n, dy!)],
  ReduceMean: (g, n, [dy]) => {
    const x = n.inputs[0];
    const dims = (n.meta.axes as number[]).map((a) => x.shape[a]);
    const count = dims.every((d) => typeof d === 'number')
      ? g.scalar(1 / (dims as number[]).reduce((p, q) => p * q, 1), x.dtype)
      // Symbolic reduced dims (e.g. a mean over batch * seq): the count is |x| / |y| at run time.
      : g.div(g.cast(g.sizeOf(n.outputs[0]), x.dtype), g.cast(g.sizeOf(x), x.dtype));
    return [g.mul(spreadReduced(g, n, dy!), count)];
  },
  Reshape: (g, n, [dy]) => [g.reshapeLike(dy!, n.inputs[0])],
  Unsqueeze: (g, n, [dy]) => [g.reshapeLike(dy!, n.inputs[0])],
  Squeeze: (g, n, [dy]) => [g.reshapeLike(dy!, n.inputs[0])],
  Transpose: (g, n, [dy]) => {
    const perm: number[] = n.meta.perm;
    const inv = perm.map((_, i) => perm.indexOf(i));
    return [g.transpose(dy!, inv)];
  },
  Slice: (g, n, [dy]) => {
    const { axis, start, end, dim } = n.meta as { axis: number; start: number; end: number; dim: number };
    const r = dy!.shape.length;
    const pads = new Array(2 * r).fill(0);
    pads[axis] = start;
    pads[axis + r] = dim - end;
    return [g.pad(dy!, pads)];
  },
  Split: (g, n, dys) => [g.concat(n.outputs.map((o, i) => dys[i] ?? g.zerosLike(o)), n.meta.axis)],
  Concat: (g, n, [dy]) => {
    const axis: number = n.meta.axis;
    const sizes = n.inputs.map((x) => x.shape[axis]);
    if (sizes.some((s) => typeof s !== 'number')) throw new LanternError('Concat gradient needs static sizes on the concat axis');
    return g.split(dy!, axis, sizes as number[]);
  },
  Gather: (g, n, [dy]) => {
    const [data, idx] = n.inputs;
    const idx64 = idx.dtype === 'int64' ? idx : g.cast(idx, 'int64');
    return [g.scatterNDAdd(g.zerosLike(data), g.unsqueeze(idx64, [-1]), dy!), undefined];
  },
  GatherElements: (g, n, [dy]) => {
    const [data, idx] = n.inputs;
    return [g.scatterElementsAdd(g.zerosLike(data), idx, dy!, n.attrs.axis as number), undefined];
  },
  Where: (g, n, [dy]) => {
    const [c, a, b] = n.inputs;
    const zero = g.scalar(0, dy!.dtype);
    return [undefined, unbroadcast(g, g.where(c, dy!, zero), a), unbroadcast(g, g.where(c, zero, dy!), b)];
  },
};

/** Gradient of a reduction: put dy back on the reduced axes and broadcast it over them. */
function spreadReduced(g: Graph, n: Node, dy: Value): Value {
  const x = n.inputs[0];
  const kept = n.meta.keepdims ? dy : g.unsqueeze(dy, n.meta.axes);
  return g.expandLike(kept, x);
}

const isFloat = (v: Value) => v.dtype === 'float32' || v.dtype === 'float64';

export function differentiableOps(): string[] {
  return Object.keys(rules);
}

/**
 * Appends to `g` the gradients of the scalar `objective` with respect to each of `wrt`.
 * A `wrt` value the objective does not depend on gets zeros.
 */
export function gradients(g: Graph, objective: Value, wrt: Value[]): Value[] {
  if (objective.shape.some((d) => d !== 1)) {
    throw new LanternError(`gradients: the objective must be a scalar, got shape [${objective.shape}]`);
  }
  const nodes = g.nodes.slice();
  // Forward: which values depend on some wrt value.
  const live = new Set<Value>(wrt);
  for (const n of nodes) if (!n.meta.stopGradient && n.inputs.some((v) => live.has(v))) for (const o of n.outputs) if (isFloat(o)) live.add(o);
  if (!live.has(objective)) return wrt.map((w) => g.zerosLike(w));

  const grads = new Map<Value, Value>();
  grads.set(objective, g.constant([1], objective.shape as number[], objective.dtype));
  for (let i = nodes.length - 1; i >= 0; i--) {
    const n = nodes[i];
    const dys = n.outputs.map((o) => grads.get(o));
    if (dys.every((d) => d === undefined)) continue;
    if (!n.inputs.some((v) => live.has(v))) continue;
    const rule = rules[n.op];
    if (!rule) throw new LanternError(`no gradient rule for op ${n.op}`);
    const dxs = rule(g, n, dys);
    n.inputs.forEach((x, k) => {
      const dx = dxs[k];
      if (!dx || !live.has(x)) return;
      const prev = grads.get(x);
      grads.set(x, prev ? g.add(prev, dx) : dx);
    });
  }
  return wrt.map((w) => grads.get(w) ?? g.zerosLike(w));
}
