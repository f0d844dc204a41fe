import { Graph } from '../engine/graph/ir.js';
import { Tensor } from '../engine/tensor.js';
import { defaultExecutor } from '../engine/runtime/executor.js';
import { best } from './common.js';

/**
 * The machine's sgemm peak through ORT: MatMul 512x768x3072 with B fed as an input (as Lantern
 * feeds weights: the bar's reference) and as a prepacked initializer (reported alongside). The
 * product is summed to a scalar inside the graph so that copying 6 MB of output into JavaScript
 * does not dilute the peak.
 */
export async function sgemmPeak(): Promise<{ asInput: number; prepacked: number }> {
  const ex = defaultExecutor();
  const [M, K, N] = [512, 768, 3072];
  const b = new Float32Array(K * N).fill(0.02);
  const build = (initializer: boolean) => () => {
    const g = new Graph();
    const B = g.input('b', 'float32', [K, N]);
    if (initializer) {
      g.inputs.pop();
      g.constants.push({ value: B, data: b });
    }
    g.output('y', g.reduceSum(g.matmul(g.input('a', 'float32', [M, K]), B), [0, 1], false));
    return g;
  };
  const a = Tensor.f32(new Float32Array(M * K).fill(0.01), [M, K]);
  const w = await ex.registerWeights({ b: Tensor.f32(b.slice(), [K, N]) });
  const asInput = await best(() => ex.run('bench:sgemm-input', build(false), { a }, { weights: [w] }), 20, 3);
  const asInit = await best(() => ex.run('bench:sgemm-init', build(true), { a }), 20, 3);
  await ex.dropWeights(w);
  const flop = 2 * M * K * N;
  return { asInput: flop / (asInput * 1e6), prepacked: flop / (asInit * 1e6) };
}

