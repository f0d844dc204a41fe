/**
 * The forward pass of any registered architecture: embedding, blocks, final norm, and logits at
 * the positions a run reads. Every model graph (runs, gradients, training, lenses) is built here.
 */
import { Graph, Value } from '../engine/graph/ir.js';
import { LanternError } from '../errors.js';
import type { ModelConfig } from './config.js';
import type { Architecture, Layout, ModelContext, WeightSpec } from './architecture.js';
import { architectureFor } from './architectures/index.js';
import { ModelInputs, modelInputs } from './inputs.js';
import { outputWeights } from './components/attention.js';
import { normAffine } from './components/norms.js';

export type Hook = (name: string, v: Value, layout: Layout) => Value;

export interface ForwardOutputs {
  logits: Value; // [batch, seq, vocab], or [batch, logit_pos, vocab] at inputs.logitPositions
  /** The final residual after the final norm, flattened to [batch * seq, d_model]. */
  finalFlat: Value;
  /** Normalised rows [n, d_model] -> logits [n, vocab]. */
  unembed: (rows: Value) => Value;
  /** Per layer, the keys and values its attention read, [batch, past + seq, kv_heads, d_head]: what a run that keeps them (a `KvCache`) leaves for the next. */
  keys: { k: Value; v: Value }[];
}

/** Which axes of a hook are positions and heads, from its TransformerLens name. */
export function layoutOf(name: string): Layout {
  if (/\.hook_(attn_scores|pattern)$/.test(name)) return 'pattern';
  if (/\.attn\.hook_(q|k|v|z|rot_q|rot_k|result)$/.test(name)) return 'heads';
  return 'resid';
}

/**
 * Hooks a run caches only when asked by name: hook_result costs extra compute (TransformerLens's
 * use_attn_result), hook_mlp_in is the MLP's own copy of the residual stream (use_hook_mlp_in).
 */
export const OPTIONAL_HOOKS = /\.attn\.hook_result$|\.hook_mlp_in$/;

const specCache = new WeakMap<ModelConfig, Map<string, WeightSpec>>();

/** The model's weights by Lantern name. */
export function weightSpecs(cfg: ModelConfig): Map<string, WeightSpec> {
  let specs = specCache.get(cfg);
  if (!specs) {
    specs = new Map(architectureFor(cfg.architecture).weights(cfg).map((w) => [w.name, w]));
    specCache.set(cfg, specs);
  }
  return specs;
}

/** Weight shapes by Lantern name. */
export function weightShapes(cfg: ModelConfig): Record<string, number[]> {
  return Object.fromEntries([...weightSpecs(cfg).values()].map((w) => [w.name, w.shape]));
}

/** The context an architecture's math is written against (weights enter as graph inputs, fed once from the compute thread). */
export function modelContext(g: Graph, cfg: ModelConfig, inputs: ModelInputs, hook: Hook = (_n, v) => v, wants: (name: string) => boolean = () => false, kept: { k: Value; v: Value }[] = []): ModelContext {
  const specs = weightSpecs(cfg);
  const memo = new Map<string, Value>();
  const spec = (name: string) => {
    const s = specs.get(name);
    if (!s) throw new LanternError(`${cfg.architecture} has no weight '${name}'`);
    return s;
  };
  return {
    g, cfg, inputs, wants,
    hook: (name, v) => hook(name, v, layoutOf(name)),
    W: (name) => g.inputs.find((v) => v.name === name) ?? g.input(name, 'float32', spec(name).shape),
    has: (name) => specs.has(name),
    layout: (name) => spec(name).layout ?? 'in_out',
    memo: (key, build) => {
      let v = memo.get(key);
      if (!v) memo.set(key, (v = build()));
      return v;
    },
    keepKeys: (l, k, v) => {
      kept[l] = { k, v };
    },
  };
}

/** Builds the model's forward pass on `g`. */
export function buildForward(g: Graph, cfg: ModelConfig, inputs: ModelInputs, hook?: Hook, wants?: (name: string) => boolean): ForwardOutputs {
  const arch = architectureFor(cfg.architecture);
  const keys: { k: Value; v: Value }[] = [];
  const m = modelContext(g, cfg, inputs, hook, wants, keys);
  let resid = arch.embed(m);
  for (let l = 0; l < cfg.nLayers; l++) resid = arch.block(m, l, resid);
  const final = arch.finalNorm(m, resid);
  // A method that reads one position's next-token distribution need not unembed the other T − 1
  // (the unembedding is the largest single matmul of a short prompt, and its output the largest tensor).
  const finalFlat = g.reshape(final, [-1, cfg.dModel]);
  const lp = inputs.logitPositions;
  const read = !lp ? final
    : lp.shape.length === 2 ? g.gather(finalFlat, lp)
    : g.transpose(g.gather(g.transpose(final, [1, 0, 2]), lp), [1, 0, 2]);
  const unembed = (rows: Value) => arch.unembed(m, rows);
  return { logits: unembed(read), finalFlat, unembed, keys };
}

/**
 * The model's own readout of residual-stream vectors [.., d_model] (un-normalised, as the final
 * norm would receive them): its final norm, then its unembedding (soft-capped where the family
 * does). Lenses decode every layer through this, never through a copy of the family's math.
 */
export function readout(g: Graph, cfg: ModelConfig, resid: Value): Value {
  const arch = architectureFor(cfg.architecture);
  const noInputs = new Proxy({} as ModelInputs, { get: () => { throw new LanternError('the readout takes no token inputs'); } });
  const m = modelContext(g, cfg, noInputs);
  return arch.unembed(m, arch.finalNorm(m, resid));
}

/** A model context for graphs that read weights only (no token inputs). */
function weightsOnlyContext(g: Graph, cfg: ModelConfig): ModelContext {
  const noInputs = new Proxy({} as ModelInputs, { get: () => { throw new LanternError('this graph takes no token inputs'); } });
  return modelContext(g, cfg, noInputs);
}

/**
 * A graph whose outputs are layer l's attention weights per head, with ln1's weight (and bias)
 * folded in, as TransformerLens's fold_ln gives them: W_Q [heads, d_model, d_head], W_K and W_V
 * [kv_heads, d_model, d_head] (grouped-query attention: kv head j serves query heads
 * j·G … j·G + G − 1), their biases [.., d_head], W_O [heads, d_head, d_model] and b_O [d_model].
 * What multiplies them is ln1's normalised input (centred and divided by its scale for LayerNorm).
 */
export function attentionWeightsGraph(cfg: ModelConfig, l: number): Graph {
  const g = new Graph();
  const m = weightsOnlyContext(g, cfg);
  const { w, b: lnB } = normAffine(m, `blocks.${l}.ln1`);
  const heads = architectureFor(cfg.architecture).headWeights(m, l);
  for (const [kind, { W, b }] of Object.entries(heads)) {
    const n = W.shape[0] as number;
    const folded = g.mul(W, g.reshape(w, [1, cfg.dModel, 1])); // diag(w) W, per head
    g.output(`W_${kind.toUpperCase()}`, folded);
    // (x·w + b_ln) W + b = x·(diag(w) W) + (b_ln W + b)
    let bias = b ? g.reshape(b, [n, cfg.dHead]) : g.constant(new Float32Array(n * cfg.dHead), [n, cfg.dHead]);
    if (lnB) bias = g.add(bias, g.reshape(g.matmul(g.reshape(lnB, [1, 1, cfg.dModel]), W), [n, cfg.dHead]));
    g.output(`b_${kind.toUpperCase()}`, bias);
  }
  g.output('W_O', outputWeights(m, l));
  const bO = `blocks.${l}.attn.b_O`;
  g.output('b_O', m.has(bO) ? m.W(bO) : g.constant(new Float32Array(cfg.dModel), [cfg.dModel]));
  return g;
}

/**
 * A graph whose output `W_U` [d_model, vocab] is the unembedding with the final norm's weight
 * folded in: logits = (normalised final residual) @ W_U, through the family's own unembedding
 * (so a final soft-cap, where the family has one, is left out: it is not linear).
 */
export function unembedWeightsGraph(cfg: ModelConfig): Graph {
  const g = new Graph();
  const m = weightsOnlyContext(g, cfg);
  const eye = g.input('eye', 'float32', [cfg.dModel, cfg.dModel]);
  const { w } = normAffine(m, 'ln_final');
  const rows = g.mul(eye, g.reshape(w, [cfg.dModel, 1]));
  g.output('W_U', architectureFor(cfg.architecture).unembed({ ...m, cfg: { ...cfg, finalSoftcap: undefined } }, rows));
  return g;
}

/** Every hook point of the model, in execution order (from a dry build, so it is exactly what the forward records). */
export function hookNames(cfg: ModelConfig): string[] {
  return dryBuild(cfg).names;
}

/** Every hook's static shape (symbolic in batch and seq) and layout. */
export function hookShapes(cfg: ModelConfig): HookTable {
  return dryBuild(cfg);
}

interface HookTable { names: string[]; shapes: Map<string, Value['shape']>; layouts: Map<string, Layout> }

const dryCache = new WeakMap<ModelConfig, HookTable>();

function dryBuild(cfg: ModelConfig): HookTable {
  const hit = dryCache.get(cfg);
  if (hit) return hit;
  const names: string[] = [];
  const shapes = new Map<string, Value['shape']>();
  const layouts = new Map<string, Layout>();
  const g = new Graph();
  // Every optional hook, but not the circuit graph's split q/k/v inputs (a different graph).
  buildForward(g, cfg, modelInputs(g), (name, v, layout) => {
    names.push(name);
    shapes.set(name, v.shape);
    layouts.set(name, layout);
    return v;
  }, (name) => !/\.hook_[qkv]_input$/.test(name));
  const out = { names, shapes, layouts };
  dryCache.set(cfg, out);
  return out;
}

export type { Architecture };
