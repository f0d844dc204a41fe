import type { Value } from '../../engine/graph/ir.js';
import type { ModelContext } from '../architecture.js';

/** x W (+ b), with W read in the layout it was stored in (see WeightSpec.layout). */
export function linear(m: ModelContext, x: Value, weight: string, bias?: string): Value {
  const { g } = m;
  const y = m.layout(weight) === 'out_in' ? g.matmulTransB(x, m.W(weight)) : g.matmul(x, m.W(weight));
  return bias !== undefined && m.has(bias) ? g.add(y, m.W(bias)) : y;
}
