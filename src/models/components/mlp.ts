/** Feed-forward blocks: a plain MLP (GPT-2, NeoX) and gated ones (SwiGLU, GeGLU). */
import type { Value } from '../../engine/graph/ir.js';
import type { ModelContext } from '../architecture.js';
import { linear } from './linear.js';

export function activation(m: ModelContext, x: Value): Value {
  const { g } = m;
  const f = (v: number) => g.scalar(v);
  switch (m.cfg.act) {
    case 'relu': return g.where(g.greater(x, f(0)), x, g.zerosLike(x));
    case 'silu': return g.mul(x, g.sigmoid(x));
    case 'gelu': return g.mul(g.mul(x, f(0.5)), g.add(f(1), g.erf(g.mul(x, f(Math.SQRT1_2)))));
    case 'gelu_new': {
      // 0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3)))
      const inner = g.mul(g.add(x, g.mul(g.pow(x, 3), f(0.044715))), f(Math.sqrt(2 / Math.PI)));
      return g.mul(g.mul(x, f(0.5)), g.add(f(1), g.tanh(inner)));
    }
  }
}

/** W_out act(W_in x + b_in) + b_out. */
export function mlp(m: ModelContext, p: string, x: Value): Value {
  const pre = m.hook(`${p}.mlp.hook_pre`, linear(m, x, `${p}.mlp.W_in`, `${p}.mlp.b_in`));
  const post = m.hook(`${p}.mlp.hook_post`, activation(m, pre));
  return linear(m, post, `${p}.mlp.W_out`, `${p}.mlp.b_out`);
}

/** W_out (act(W_gate x) * W_up x): gate and up are one fused weight [gate; up]. */
export function gatedMlp(m: ModelContext, p: string, x: Value): Value {
  const F = m.cfg.dMlp;
  const [gate, up] = m.g.split(linear(m, x, `${p}.mlp.W_gate_up`, `${p}.mlp.b_gate_up`), -1, [F, F]);
  const pre = m.hook(`${p}.mlp.hook_pre`, gate);
  const preLinear = m.hook(`${p}.mlp.hook_pre_linear`, up);
  const post = m.hook(`${p}.mlp.hook_post`, m.g.mul(activation(m, pre), preLinear));
  return linear(m, post, `${p}.mlp.W_out`, `${p}.mlp.b_out`);
}
