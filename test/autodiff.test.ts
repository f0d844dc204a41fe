// Every gradient rule against central finite differences, in float64 where ORT has the kernel.
import { describe, it, expect, afterAll } from 'vitest';
import { Graph, Value, DType, liveNodes } from '../src/engine/graph/ir.js';
import { gradients, differentiableOps } from '../src/engine/autodiff/grad.js';
import { Executor } from '../src/engine/runtime/executor.js';
import { Tensor } from '../src/engine/tensor.js';
import { Rng } from '../src/rng.js';

const ex = new Executor();
afterAll(() => ex.close());

type In = { shape: number[]; lo?: number; hi?: number; ints?: number[]; declared?: (number | string)[] };
const covered = new Set<string>();
let caseId = 0;

async function check(build: (g: Graph, xs: Value[]) => Value, ins: In[], dtype: DType = 'float64', tol = 1e-6, epsilon?: number) {
  const r = new Rng(++caseId * 7919);
  const rand = () => r.next();
  const sig = `grad-case-${caseId}`;
  const data = ins.map((s) => s.ints ?? Array.from({ length: s.shape.reduce((p, q) => p * q, 1) }, () => (s.lo ?? -1.5) + ((s.hi ?? 1.5) - (s.lo ?? -1.5)) * rand()));
  const floatIdx = ins.map((s, i) => (s.ints ? -1 : i)).filter((i) => i >= 0);
  let weightsLen = 0;
  const graph = () => {
    const g = new Graph();
    const xs = ins.map((s, i) => g.input(`x${i}`, s.ints ? 'int64' : dtype, s.declared ?? s.shape));
    const y = build(g, xs);
    for (const n of g.nodes) covered.add(n.op);
    const n = y.shape.reduce((p: number, q) => p * (q as number), 1);
    weightsLen = n;
    const r = g.constant(Array.from({ length: n }, (_, k) => Math.sin(1.3 * k + 0.7) + 0.3), y.shape as number[], dtype);
    const loss = g.reduceSum(g.mul(y, r), [...y.shape.keys()], false);
    g.output('loss', loss);
    const gs = gradients(g, loss, floatIdx.map((i) => xs[i]));
    gs.forEach((gv, k) => g.output(`grad${floatIdx[k]}`, gv));
    return g;
  };
  const feeds = (vals: number[][]) => Object.fromEntries(vals.map((v, i) => [
    `x${i}`,
    ins[i].ints ? Tensor.i64(v, ins[i].shape) : dtype === 'float64' ? Tensor.f64(v, ins[i].shape) : Tensor.f32(v, ins[i].shape),
  ]));
  const base = await ex.run(sig, graph, feeds(data));
  expect(weightsLen).toBeGreaterThan(0);
  const eps = epsilon ?? (dtype === 'float64' ? 1e-6 : 1e-2);
  for (const i of floatIdx) {
    const analytic = base[`grad${i}`].toArray();
    expect(base[`grad${i}`].shape).toEqual(ins[i].shape);
    for (let k = 0; k < data[i].length; k++) {
      const plus = data.map((d) => d.slice());
      const minus = data.map((d) => d.slice());
      plus[i][k] += eps;
      minus[i][k] -= eps;
      const lp = (await ex.run(sig, graph, feeds(plus))).loss.toArray()[0];
      const lm = (await ex.run(sig, graph, feeds(minus))).loss.toArray()[0];
      const numeric = (lp - lm) / (2 * eps);
      expect(Math.abs(analytic[k] - numeric)).toBeLessThanOrEqual(tol * Math.max(1, Math.abs(numeric)));
    }
  }
}

describe('gradient rules match central finite differences', () => {
  it('elementwise binary ops with broadcasting', async () => {
    await check((g, [a, b]) => g.add(a, b), [{ shape: [2, 3] }, { shape: [3] }]);
    await check((g, [a, b]) => g.sub(a, b), [{ shape: [2, 1] }, { shape: [1, 3] }]);
    await check((g, [a, b]) => g.mul(a, b), [{ shape: [2, 3, 2] }, { shape: [3, 1] }]);
    await check((g, [a, b]) => g.div(a, b), [{ shape: [2, 3] }, { shape: [2, 1], lo: 0.5, hi: 2 }]);
  });

  it('elementwise unary ops', async () => {
    await check((g, [x]) => g.neg(x), [{ shape: [5] }]);
    await check((g, [x]) => g.exp(x), [{ shape: [5] }]);
    await check((g, [x]) => g.log(x), [{ shape: [5], lo: 0.3, hi: 3 }]);
    await check((g, [x]) => g.tanh(x), [{ shape: [5] }]);
    await check((g, [x]) => g.sigmoid(x), [{ shape: [5], lo: -4, hi: 4 }]);
    await check((g, [x]) => g.mul(x, g.sigmoid(x)), [{ shape: [5], lo: -4, hi: 4 }]); // SiLU
    await check((g, [x]) => g.sqrt(x), [{ shape: [5], lo: 0.3, hi: 3 }]);
    await check((g, [x]) => g.pow(x, 2), [{ shape: [5] }]);
    await check((g, [x]) => g.pow(x, 3), [{ shape: [5] }]);
    await check((g, [x]) => g.pow(x, 1.5), [{ shape: [5], lo: 0.5, hi: 2 }]);
    await check((g, [x]) => g.pow(x, -0.5), [{ shape: [5], lo: 0.5, hi: 2 }]);
    await check((g, [x]) => g.identity(x), [{ shape: [4] }]);
    // ORT has Erf only in float32: finite differences in float32 with a matching tolerance.
    await check((g, [x]) => g.erf(x), [{ shape: [6] }], 'float32', 2e-3);
    // A float32 round trip: the step must be large against float32 rounding.
    await check((g, [x]) => g.cast(g.mul(g.cast(x, 'float32'), g.scalar(2, 'float32')), 'float64'), [{ shape: [4] }], 'float64', 1e-4, 1e-2);
  });

  it('matmul: plain, batched, shared weight, broadcast batch', async () => {
    await check((g, [a, b]) => g.matmul(a, b), [{ shape: [2, 3] }, { shape: [3, 4] }]);
    await check((g, [a, b]) => g.matmul(a, b), [{ shape: [2, 2, 3] }, { shape: [2, 3, 2] }]);
    await check((g, [a, b]) => g.matmul(a, b), [{ shape: [2, 3, 4] }, { shape: [4, 2] }]);
    await check((g, [a, b]) => g.matmul(a, b), [{ shape: [2, 1, 2, 3] }, { shape: [3, 3, 2] }]);
    await check((g, [a, b]) => g.matmulTransB(a, b), [{ shape: [2, 3, 4] }, { shape: [5, 4] }]);
    await check((g, [a, b]) => g.matmulTransB(a, b), [{ shape: [3, 4] }, { shape: [2, 4] }]);
    for (const [tA, tB] of [[false, false], [false, true], [true, false], [true, true]]) {
      await check((g, [a, b]) => g.gemm(a, b, tA, tB), [{ shape: tA ? [3, 2] : [2, 3] }, { shape: tB ? [4, 3] : [3, 4] }]);
    }
  });

  it('softmax, log-softmax and reductions', async () => {
    await check((g, [x]) => g.softmax(x, -1), [{ shape: [2, 4] }]);
    await check((g, [x]) => g.softmax(x, 0), [{ shape: [3, 2] }]);
    await check((g, [x]) => g.logSoftmax(x, -1), [{ shape: [2, 4] }]);
    await check((g, [x, t]) => g.softmaxCrossEntropy(x, t), [{ shape: [3, 5] }, { shape: [3], ints: [4, 0, 4] }]);
    await check((g, [x]) => g.reduceSum(x, [1], true), [{ shape: [2, 3, 2] }]);
    await check((g, [x]) => g.reduceSum(x, [0, 2], false), [{ shape: [2, 3, 2] }]);
    await check((g, [x]) => g.reduceMean(x, [-1], true), [{ shape: [2, 3] }]);
    await check((g, [x]) => g.reduceMean(x, [0], false), [{ shape: [2, 3] }]);
    // a mean over a symbolic dim (count known only at run time)
    await check((g, [x]) => g.reduceMean(x, [0, 1], false), [{ shape: [3, 2, 2], declared: ['n', 2, 2] }]);
  });

  it('shape ops', async () => {
    await check((g, [x]) => g.reshape(x, [3, 2, 1]), [{ shape: [2, 3] }]);
    await check((g, [x]) => g.unsqueeze(x, [0, 2]), [{ shape: [2, 3] }]);
    await check((g, [x]) => g.squeeze(x, [1]), [{ shape: [2, 1, 3] }]);
    await check((g, [x]) => g.transpose(x, [2, 0, 1]), [{ shape: [2, 3, 2] }]);
    await check((g, [x]) => g.slice(x, 1, 1, 3), [{ shape: [2, 4] }]);
    await check((g, [x]) => g.split(x, -1, [1, 3])[1], [{ shape: [2, 4] }]);
    await check((g, [x]) => { const [a, b] = g.split(x, 0, [1, 2]); return g.mul(a, b); }, [{ shape: [3, 2] }]);
    await check((g, [a, b]) => g.concat([a, b], 1), [{ shape: [2, 1] }, { shape: [2, 3] }]);
    await check((g, [x]) => g.expandLike(x, g.zerosLike(g.concat([x, x, x], 0))), [{ shape: [1, 3] }]);
  });

  it('indexing: gather (with repeats), gather-elements, where', async () => {
    await check((g, [x, i]) => g.gather(x, i), [{ shape: [4, 3] }, { shape: [2, 3], ints: [0, 2, 2, 3, 0, 0] }]);
    await check((g, [x, i]) => g.gatherElements(x, i, 1), [{ shape: [3, 4] }, { shape: [3, 2], ints: [0, 3, 1, 1, 2, 0] }]);
    await check((g, [a, b]) => g.where(g.greater(a, b), a, b), [{ shape: [2, 3] }, { shape: [3] }]);
  });

  it('composites: layer norm and tanh-GELU', async () => {
    await check((g, [x]) => {
      const mu = g.reduceMean(x, [-1]);
      const c = g.sub(x, mu);
      const scale = g.sqrt(g.add(g.reduceMean(g.mul(c, c), [-1]), g.scalar(1e-5, 'float64')));
      return g.div(c, scale);
    }, [{ shape: [2, 5] }]);
    await check((g, [x]) => {
      const inner = g.mul(g.add(x, g.mul(g.pow(x, 3), g.scalar(0.044715, 'float64'))), g.scalar(Math.sqrt(2 / Math.PI), 'float64'));
      return g.mul(g.mul(x, g.scalar(0.5, 'float64')), g.add(g.scalar(1, 'float64'), g.tanh(inner)));
    }, [{ shape: [6] }]);
  });

  it('every op with a gradient rule was checked above', () => {
    const missing = differentiableOps().filter((op) => !covered.has(op));
    expect(missing).toEqual([]);
  });
});

describe('gradients', () => {
  it('prunes paths that do not reach wrt and zero-fills unreachable wrt', async () => {
    const build = () => {
      const g = new Graph();
      const x = g.input('x', 'float64', [3]);
      const w = g.input('w', 'float64', [3]);
      const loss = g.reduceSum(g.mul(x, w), [0], false);
      g.output('loss', loss);
      const unrelated = g.input('u', 'float64', [2]);
      const [gx, gu] = gradients(g, loss, [x, unrelated]);
      g.output('gx', gx);
      g.output('gu', gu);
      // Only wrt x: no node may compute anything from the gradient flowing into w.
      expect(liveNodes(g).filter((n) => n.op === 'Mul').length).toBe(2);
      return g;
    };
    const out = await ex.run('prune', build, { x: Tensor.f64([1, 2, 3], [3]), w: Tensor.f64([4, 5, 6], [3]), u: Tensor.f64([1, 1], [2]) });
    expect(out.gx.toArray()).toEqual([4, 5, 6]);
    expect(out.gu.toArray()).toEqual([0, 0]);
  });

  it('rejects a non-scalar objective', () => {
    const g = new Graph();
    const x = g.input('x', 'float32', [3]);
    expect(() => gradients(g, g.exp(x), [x])).toThrow(/scalar/);
  });
});
