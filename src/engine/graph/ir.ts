/**
 * Lantern's graph IR: a typed, shape-checked dataflow graph whose ops map one-to-one onto ONNX ops.
 *
 * Dims are numbers or symbols ('batch', 'seq'); shapes are inferred when a node is added, so a
 * mistake in model code fails at build time with the op and both shapes in the message instead
 * of deep inside ONNX Runtime.
 */
import { LanternError } from '../../errors.js';

export type DType = 'float32' | 'float64' | 'int64' | 'int32' | 'bool';
export type Dim = number | string;
export type Shape = Dim[];
export type Attr = number | string | number[] | { floats: number[] };

export interface Value {
  readonly id: number;
  readonly dtype: DType;
  readonly shape: Shape;
  /** ONNX name; inputs and outputs keep the user's name, intermediates get `v{id}`. */
  name: string;
  producer?: Node;
}

export interface Node {
  readonly op: string;
  readonly inputs: Value[];
  readonly outputs: Value[];
  readonly attrs: Record<string, Attr>;
  /** Static parameters that ONNX passes as constant inputs (axes, sizes), kept for autodiff. */
  readonly meta: Record<string, any>;
}

export interface Constant {
  value: Value;
  data: Float32Array | Float64Array | BigInt64Array | Int32Array | Uint8Array;
}

const isFloat = (t: DType) => t === 'float32' || t === 'float64';

export function shapeToString(s: Shape): string {
  return `[${s.join(', ')}]`;
}

/** Numpy-style broadcasting of two shapes; symbolic dims broadcast only against 1 or themselves. */
export function broadcastShapes(a: Shape, b: Shape, what: string): Shape {
  const n = Math.max(a.length, b.length);
  const out: Shape = [];
  for (let i = 0; i < n; i++) {
    const da = i - (n - a.length) >= 0 ? a[i - (n - a.length)] : 1;
    const db = i - (n - b.length) >= 0 ? b[i - (n - b.length)] : 1;
    if (da === db || db === 1) out.push(da);
    else if (da === 1) out.push(db);
    else throw new LanternError(`${what}: shapes ${shapeToString(a)} and ${shapeToString(b)} do not broadcast`);
  }
  return out;
}

export function numel(shape: Shape): number {
  let n = 1;
  for (const d of shape) {
    if (typeof d !== 'number') throw new LanternError(`shape ${shapeToString(shape)} has symbolic dims`);
    n *= d;
  }
  return n;
}

/** A computation graph, built op by op with shapes checked as it grows, then emitted as ONNX ({@link toOnnx}) and differentiated ({@link gradients}). Every Lantern computation is one of these. */
export class Graph {
  readonly nodes: Node[] = [];
  readonly inputs: Value[] = [];
  readonly outputs: Value[] = [];
  readonly constants: Constant[] = [];
  private nextId = 0;
  private readonly names = new Set<string>();

  private newValue(dtype: DType, shape: Shape, name?: string, producer?: Node): Value {
    const id = this.nextId++;
    const v: Value = { id, dtype, shape, name: name ?? `v${id}`, producer };
    return v;
  }

  private claim(name: string): string {
    if (this.names.has(name)) throw new LanternError(`graph already has a value named '${name}'`);
    this.names.add(name);
    return name;
  }

  /** A value fed at run time (tokens, weights, intervention values). */
  input(name: string, dtype: DType, shape: Shape): Value {
    const v = this.newValue(dtype, shape, this.claim(name));
    this.inputs.push(v);
    return v;
  }

  /** Marks `v` as a graph output called `name` (an Identity keeps the name independent of the producer). */
  output(name: string, v: Value): Value {
    const out = this.node('Identity', [v], {}, [[v.dtype, v.shape]])[0];
    out.name = this.claim(name);
    this.outputs.push(out);
    return out;
  }

  /** A constant tensor baked into the graph. */
  constant(data: number[] | Float32Array | Float64Array, shape: Shape = [data.length], dtype: DType = 'float32'): Value {
    const n = numel(shape);
    if (n !== data.length) throw new LanternError(`constant: ${data.length} values for shape ${shapeToString(shape)}`);
    const typed =
      dtype === 'float32' ? Float32Array.from(data)
      : dtype === 'float64' ? Float64Array.from(data)
      : dtype === 'int64' ? BigInt64Array.from(Array.from(data, (x) => BigInt(x)))
      : dtype === 'int32' ? Int32Array.from(data)
      : Uint8Array.from(data);
    const v = this.newValue(dtype, shape, `c${this.nextId}`);
    this.constants.push({ value: v, data: typed });
    return v;
  }

  /** A constant scalar. */
  scalar(x: number, dtype: DType = 'float32'): Value {
    return this.constant([x], [], dtype);
  }

  /** A constant int64 vector (shapes, axes, indices). */
  ints(xs: number[]): Value {
    return this.constant(xs, [xs.length], 'int64');
  }

  /** Adds a node whose output dtypes/shapes the caller has already inferred. */
  node(op: string, inputs: Value[], attrs: Record<string, Attr>, outs: [DType, Shape][], meta: Record<string, any> = {}): Value[] {
    const node: Node = { op, inputs, outputs: [], attrs, meta };
    for (const [dtype, shape] of outs) node.outputs.push(this.newValue(dtype, shape, undefined, node));
    this.nodes.push(node);
    return node.outputs;
  }

  private unary(op: string, x: Value, float = true): Value {
    if (float && !isFloat(x.dtype)) throw new LanternError(`${op}: expected a float tensor, got ${x.dtype}`);
    return this.node(op, [x], {}, [[x.dtype, x.shape]])[0];
  }

  private binary(op: string, a: Value, b: Value): Value {
    if (a.dtype !== b.dtype) throw new LanternError(`${op}: dtypes ${a.dtype} and ${b.dtype} differ`);
    return this.node(op, [a, b], {}, [[a.dtype, broadcastShapes(a.shape, b.shape, op)]])[0];
  }

  /** Elementwise a + b (broadcasting). */
  add(a: Value, b: Value) { return this.binary('Add', a, b); }
  /** Elementwise a − b (broadcasting). */
  sub(a: Value, b: Value) { return this.binary('Sub', a, b); }
  /** Elementwise a · b (broadcasting). */
  mul(a: Value, b: Value) { return this.binary('Mul', a, b); }
  /** Elementwise a / b (broadcasting). */
  div(a: Value, b: Value) { return this.binary('Div', a, b); }
  /** Elementwise −x. */
  neg(x: Value) { return this.unary('Neg', x); }
  /** Elementwise exponential. */
  exp(x: Value) { return this.unary('Exp', x); }
  /** Elementwise natural logarithm. */
  log(x: Value) { return this.unary('Log', x); }
  /** Elementwise hyperbolic tangent. */
  tanh(x: Value) { return this.unary('Tanh', x); }
  /** Elementwise error function (exact GELU). */
  erf(x: Value) { return this.unary('Erf', x); }
  /** Elementwise square root. */
  sqrt(x: Value) { return this.unary('Sqrt', x); }
  /** Elementwise logistic sigmoid. */
  sigmoid(x: Value) { return this.unary('Sigmoid', x); }
  /** Elementwise sine. */
  sin(x: Value) { return this.unary('Sin', x); }
  /** Elementwise cosine. */
  cos(x: Value) { return this.unary('Cos', x); }
  /** A copy of `x` (gives a value its own name, e.g. a hook output). */
  identity(x: Value) { return this.unary('Identity', x, false); }
  /** `x` in the forward pass, a constant to {@link gradients}: how straight-through estimators give an op a surrogate gradient. */
  stopGradient(x: Value) { return this.node('Identity', [x], {}, [[x.dtype, x.shape]], { stopGradient: true })[0]; }

  /** x ** p for a constant exponent p. */
  pow(x: Value, p: number) {
    return this.node('Pow', [x, this.scalar(p, x.dtype)], {}, [[x.dtype, x.shape]], { p })[0];
  }

  /** Elementwise a > b, as booleans. */
  greater(a: Value, b: Value): Value {
    return this.node('Greater', [a, b], {}, [['bool', broadcastShapes(a.shape, b.shape, 'Greater')]])[0];
  }

  /** Elementwise a == b, as booleans. */
  equal(a: Value, b: Value): Value {
    return this.node('Equal', [a, b], {}, [['bool', broadcastShapes(a.shape, b.shape, 'Equal')]])[0];
  }

  /** Converts `x` to another element type. */
  cast(x: Value, to: DType): Value {
    return this.node('Cast', [x], { to: onnxDType(to) }, [[to, x.shape]])[0];
  }

  /** Batched matmul with numpy semantics (both operands at least 2-D). */
  matmul(a: Value, b: Value): Value {
    if (a.dtype !== b.dtype) throw new LanternError(`MatMul: dtypes ${a.dtype} and ${b.dtype} differ`);
    if (a.shape.length < 2 || b.shape.length < 2) throw new LanternError('MatMul: operands must be at least 2-D');
    const [m, k] = a.shape.slice(-2);
    const [k2, n] = b.shape.slice(-2);
    if (k !== k2 && !(typeof k === 'string' && typeof k2 === 'string' && k === k2)) {
      throw new LanternError(`MatMul: inner dims differ: ${shapeToString(a.shape)} @ ${shapeToString(b.shape)}`);
    }
    const batch = broadcastShapes(a.shape.slice(0, -2), b.shape.slice(0, -2), 'MatMul');
    return this.node('MatMul', [a, b], {}, [[a.dtype, [...batch, m, n]]])[0];
  }

  /** 2-D matmul with optional transposes, read in place by the kernel (ONNX Gemm without C). */
  gemm(a: Value, b: Value, transA = false, transB = false): Value {
    if (a.shape.length !== 2 || b.shape.length !== 2) throw new LanternError('Gemm: operands must be 2-D');
    const [m, k] = transA ? [a.shape[1], a.shape[0]] : a.shape;
    const [k2, n] = transB ? [b.shape[1], b.shape[0]] : b.shape;
    if (k !== k2) throw new LanternError(`Gemm: inner dims differ: ${shapeToString(a.shape)} x ${shapeToString(b.shape)} (transA=${transA}, transB=${transB})`);
    return this.node('Gemm', [a, b], { transA: transA ? 1 : 0, transB: transB ? 1 : 0 }, [[a.dtype, [m, n]]])[0];
  }

  /**
   * Batched a @ b^T with b 2-D [n, k] read in place (ORT's FusedMatMul contrib op): the tied
   * unembedding x @ W_E^T without ever materialising W_E^T.
   */
  matmulTransB(a: Value, b: Value): Value {
    if (b.shape.length !== 2) throw new LanternError('matmulTransB: b must be 2-D');
    const k = a.shape[a.shape.length - 1];
    if (k !== b.shape[1]) throw new LanternError(`matmulTransB: inner dims differ: ${shapeToString(a.shape)} @ ${shapeToString(b.shape)}^T`);
    return this.node('FusedMatMul', [a, b], { transB: 1 }, [[a.dtype, [...a.shape.slice(0, -1), b.shape[0]]]])[0];
  }

  /**
   * Mean cross-entropy of logits [n, classes] against integer targets [n] (ONNX
   * SoftmaxCrossEntropyLoss). One op instead of log-softmax + gather keeps a language model's
   * [tokens, vocab] backward to a single pass (see its gradient rule).
   */
  softmaxCrossEntropy(logits: Value, targets: Value): Value {
    if (logits.shape.length !== 2 || targets.shape.length !== 1) throw new LanternError('softmaxCrossEntropy: logits must be [n, classes] and targets [n]');
    if (targets.dtype !== 'int64') throw new LanternError('softmaxCrossEntropy: targets must be int64');
    return this.node('SoftmaxCrossEntropyLoss', [logits, targets], { reduction: 'mean' }, [[logits.dtype, []], [logits.dtype, logits.shape]])[0];
  }

  private axis(x: Value, axis: number): number {
    const r = x.shape.length;
    const a = axis < 0 ? axis + r : axis;
    if (a < 0 || a >= r) throw new LanternError(`axis ${axis} out of range for shape ${shapeToString(x.shape)}`);
    return a;
  }

  /** Softmax along `axis`. */
  softmax(x: Value, axis = -1) {
    return this.node('Softmax', [x], { axis: this.axis(x, axis) }, [[x.dtype, x.shape]])[0];
  }

  /** Log-softmax along `axis`. */
  logSoftmax(x: Value, axis = -1) {
    return this.node('LogSoftmax', [x], { axis: this.axis(x, axis) }, [[x.dtype, x.shape]])[0];
  }

  private reduce(op: string, x: Value, axes: number[], keepdims: boolean): Value {
    const ax = axes.map((a) => this.axis(x, a)).sort((p, q) => p - q);
    const shape = keepdims ? x.shape.map((d, i) => (ax.includes(i) ? 1 : d)) : x.shape.filter((_, i) => !ax.includes(i));
    return this.node(op, [x, this.ints(ax)], { keepdims: keepdims ? 1 : 0 }, [[x.dtype, shape]], { axes: ax, keepdims })[0];
  }

  /** Sum over `axes`. */
  reduceSum(x: Value, axes: number[], keepdims = true) { return this.reduce('ReduceSum', x, axes, keepdims); }
  /** Mean over `axes`. */
  reduceMean(x: Value, axes: number[], keepdims = true) { return this.reduce('ReduceMean', x, axes, keepdims); }
  /** Maximum over `axes`. */
  reduceMax(x: Value, axes: number[], keepdims = true) { return this.reduce('ReduceMax', x, axes, keepdims); }

  /**
   * Reshape; `shape` entries are numbers, 0 (copy the input dim, ONNX semantics), -1 (inferred),
   * or a symbolic dim name that must equal the input dim at the same position.
   */
  reshape(x: Value, shape: Shape): Value {
    const target: number[] = [];
    const out: Shape = [];
    shape.forEach((d, i) => {
      if (typeof d === 'string') {
        if (x.shape[i] !== d) throw new LanternError(`Reshape: symbolic dim '${d}' must stay at position ${i} of ${shapeToString(x.shape)}`);
        target.push(0);
        out.push(d);
      } else if (d === 0) {
        target.push(0);
        out.push(x.shape[i]);
      } else {
        target.push(d);
        out.push(d);
      }
    });
    const inferred = out.indexOf(-1);
    if (inferred >= 0) out[inferred] = inferDim(x.shape, out, inferred);
    else checkSameSize(x.shape, out);
    return this.node('Reshape', [x, this.ints(target)], {}, [[x.dtype, out]])[0];
  }

  /** Reshape to the runtime shape of `like` (used by autodiff, where shapes may be symbolic). */
  reshapeLike(x: Value, like: Value): Value {
    return this.node('Reshape', [x, this.shapeOf(like)], {}, [[x.dtype, like.shape]])[0];
  }

  /** The shape of `x` as an int64 vector, for shapes only known at run time. */
  shapeOf(x: Value): Value {
    return this.node('Shape', [x], {}, [['int64', [x.shape.length]]])[0];
  }

  /** Number of elements of `x` at run time (int64 scalar). */
  sizeOf(x: Value): Value {
    return this.node('Size', [x], {}, [['int64', []]])[0];
  }

  /** Broadcasts `x` to the runtime shape of `like`. */
  expandLike(x: Value, like: Value): Value {
    return this.expand(x, this.shapeOf(like), like.shape);
  }

  /** ONNX Expand: broadcasts `x` against the runtime int64 `shape`, whose result is declared as `out`. */
  expand(x: Value, shape: Value, out: Shape): Value {
    if (shapeToString(broadcastShapes(x.shape, out, 'Expand')) !== shapeToString(out)) {
      throw new LanternError(`Expand: ${shapeToString(x.shape)} does not broadcast to ${shapeToString(out)}`);
    }
    return this.node('Expand', [x, shape], {}, [[x.dtype, out]])[0];
  }

  /** Zeros of the shape and type of `x`. */
  zerosLike(x: Value): Value {
    return this.expandLike(this.scalar(0, x.dtype), x);
  }

  /** Permutes the axes of `x`. */
  transpose(x: Value, perm: number[]): Value {
    if (perm.length !== x.shape.length || [...perm].sort().some((p, i) => p !== i)) {
      throw new LanternError(`Transpose: perm [${perm}] invalid for shape ${shapeToString(x.shape)}`);
    }
    return this.node('Transpose', [x], { perm }, [[x.dtype, perm.map((p) => x.shape[p])]], { perm })[0];
  }

  /** Inserts size-1 axes. */
  unsqueeze(x: Value, axes: number[]): Value {
    const r = x.shape.length + axes.length;
    const ax = axes.map((a) => (a < 0 ? a + r : a));
    const out: Shape = [];
    let j = 0;
    for (let i = 0; i < r; i++) out.push(ax.includes(i) ? 1 : x.shape[j++]);
    return this.node('Unsqueeze', [x, this.ints(ax)], {}, [[x.dtype, out]])[0];
  }

  /** Removes the given size-1 axes. */
  squeeze(x: Value, axes: number[]): Value {
    const ax = axes.map((a) => this.axis(x, a));
    for (const a of ax) if (x.shape[a] !== 1) throw new LanternError(`Squeeze: dim ${a} of ${shapeToString(x.shape)} is not 1`);
    return this.node('Squeeze', [x, this.ints(ax)], {}, [[x.dtype, x.shape.filter((_, i) => !ax.includes(i))]])[0];
  }

  /** Static slice along one axis (end clamps; numeric dims only for the sliced axis). */
  slice(x: Value, axis: number, start: number, end: number): Value {
    const a = this.axis(x, axis);
    const d = x.shape[a];
    if (typeof d !== 'number') throw new LanternError(`Slice: axis ${a} of ${shapeToString(x.shape)} is symbolic`);
    const s = Math.max(0, Math.min(start, d));
    const e = Math.max(s, Math.min(end, d));
    const shape = x.shape.slice();
    shape[a] = e - s;
    return this.node('Slice', [x, this.ints([s]), this.ints([e]), this.ints([a])], {}, [[x.dtype, shape]], { axis: a, start: s, end: e, dim: d })[0];
  }

  /** Splits `x` along `axis` into pieces of the given sizes. */
  split(x: Value, axis: number, sizes: number[]): Value[] {
    const a = this.axis(x, axis);
    const total = sizes.reduce((p, q) => p + q, 0);
    if (x.shape[a] !== total) throw new LanternError(`Split: sizes [${sizes}] do not sum to dim ${x.shape[a]}`);
    return this.node('Split', [x, this.ints(sizes)], { axis: a }, sizes.map((s) => {
      const shape = x.shape.slice();
      shape[a] = s;
      return [x.dtype, shape] as [DType, Shape];
    }), { axis: a, sizes });
  }

  /** Joins values along `axis`. */
  concat(xs: Value[], axis: number): Value {
    const a = this.axis(xs[0], axis);
    let total: Dim = xs[0].shape[a];
    for (const x of xs.slice(1)) {
      if (x.shape.length !== xs[0].shape.length || x.shape.some((d, i) => i !== a && d !== xs[0].shape[i])) {
        throw new LanternError(`Concat: shapes ${xs.map((v) => shapeToString(v.shape)).join(', ')} differ off axis ${a}`);
      }
      const d = x.shape[a];
      total = typeof d === 'number' && typeof total === 'number' ? total + d : `${total}+${d}`;
    }
    const shape = xs[0].shape.slice();
    shape[a] = total;
    return this.node('Concat', xs, { axis: a }, [[xs[0].dtype, shape]], { axis: a })[0];
  }

  /** Gather rows (axis 0) of `data` at integer `indices`: out shape = indices.shape ++ data.shape[1:]. */
  gather(data: Value, indices: Value): Value {
    if (indices.dtype !== 'int64' && indices.dtype !== 'int32') throw new LanternError('Gather: indices must be integers');
    return this.node('Gather', [data, indices], { axis: 0 }, [[data.dtype, [...indices.shape, ...data.shape.slice(1)]]])[0];
  }

  /** ONNX TopK along `axis`: the `k` largest values, sorted, and their indices (int64). */
  topK(x: Value, k: number, axis = -1): [Value, Value] {
    const a = this.axis(x, axis);
    const shape = x.shape.map((d, i) => (i === a ? k : d));
    const [values, indices] = this.node('TopK', [x, this.ints([k])], { axis: a, largest: 1, sorted: 1 }, [[x.dtype, shape], ['int64', shape]]);
    return [values, indices];
  }

  /** ONNX GatherElements along `axis`: out shape = indices shape. */
  gatherElements(data: Value, indices: Value, axis: number): Value {
    return this.node('GatherElements', [data, indices], { axis: this.axis(data, axis) }, [[data.dtype, indices.shape]])[0];
  }

  /** Adds `updates` into `data` at `indices` along `axis` (ONNX ScatterElements, reduction add). */
  scatterElementsAdd(data: Value, indices: Value, updates: Value, axis: number): Value {
    return this.node('ScatterElements', [data, indices, updates], { axis: this.axis(data, axis), reduction: 'add' }, [[data.dtype, data.shape]])[0];
  }

  /** Adds `updates` into `data` at N-dimensional `indices` (ONNX ScatterND, reduction add). */
  scatterNDAdd(data: Value, indices: Value, updates: Value): Value {
    return this.node('ScatterND', [data, indices, updates], { reduction: 'add' }, [[data.dtype, data.shape]])[0];
  }

  /** Elementwise `cond ? a : b`. */
  where(cond: Value, a: Value, b: Value): Value {
    if (cond.dtype !== 'bool') throw new LanternError('Where: condition must be bool');
    if (a.dtype !== b.dtype) throw new LanternError(`Where: dtypes ${a.dtype} and ${b.dtype} differ`);
    const shape = broadcastShapes(broadcastShapes(cond.shape, a.shape, 'Where'), b.shape, 'Where');
    return this.node('Where', [cond, a, b], {}, [[a.dtype, shape]])[0];
  }

  /** Zero-pads `x` (ONNX `pads` layout: all starts, then all ends). */
  pad(x: Value, pads: number[]): Value {
    const shape = x.shape.map((d, i) => {
      const extra = pads[i] + pads[i + x.shape.length];
      if (extra === 0) return d;
      if (typeof d !== 'number') throw new LanternError('Pad: cannot pad a symbolic dim');
      return d + extra;
    });
    return this.node('Pad', [x, this.ints(pads)], { mode: 'constant' }, [[x.dtype, shape]], { pads })[0];
  }
}

function inferDim(inShape: Shape, out: Shape, at: number): Dim {
  let known = 1;
  for (let i = 0; i < out.length; i++) if (i !== at) {
    const d = out[i];
    if (typeof d !== 'number') return '?';
    known *= d;
  }
  const symbolic = inShape.filter((d) => typeof d === 'string');
  const numeric = inShape.filter((d): d is number => typeof d === 'number').reduce((p, q) => p * q, 1);
  const outSymbolic = out.filter((d, i) => i !== at && typeof d === 'string');
  const remaining = symbolic.filter((s) => !outSymbolic.includes(s));
  if (remaining.length === 0) {
    if (numeric % known !== 0) throw new LanternError(`Reshape: ${shapeToString(inShape)} cannot become ${shapeToString(out)}`);
    return numeric / known;
  }
  if (remaining.length === 1 && numeric === known) return remaining[0];
  return remaining.join('*') + (numeric / known === 1 ? '' : `*${numeric / known}`);
}

function checkSameSize(a: Shape, b: Shape): void {
  const sym = (s: Shape) => s.filter((d) => typeof d === 'string').sort().join(',');
  const num = (s: Shape) => s.filter((d): d is number => typeof d === 'number').reduce((p, q) => p * q, 1);
  if (sym(a) !== sym(b) || num(a) !== num(b)) throw new LanternError(`Reshape: ${shapeToString(a)} cannot become ${shapeToString(b)}`);
}

export function onnxDType(t: DType): number {
  return { float32: 1, int32: 6, int64: 7, bool: 9, float64: 11 }[t];
}

/** The nodes that some graph output depends on, in order (model code may build values it never uses). */
export function liveNodes(g: { nodes: Node[]; outputs: Value[] }): Node[] {
  const needed = new Set<Value>(g.outputs);
  const keep: Node[] = [];
  for (let i = g.nodes.length - 1; i >= 0; i--) {
    const n = g.nodes[i];
    if (!n.outputs.some((o) => needed.has(o))) continue;
    keep.push(n);
    for (const v of n.inputs) needed.add(v);
  }
  return keep.reverse();
}
