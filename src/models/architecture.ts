/**
 * The one interface every model family implements. An architecture says how its `config.json`
 * parses, which weights it has (and which Hugging Face tensors they come from), and its forward
 * pass as three pieces of math: the embedding, one block, and the readout (final norm and
 * unembedding). Everything else (inputs, masks, past keys and values, logit positions, hooks,
 * gradients) is the same for every family and lives outside the architecture files.
 */
import type { Graph, Value } from '../engine/graph/ir.js';
import type { Tensor } from '../engine/tensor.js';
import type { ModelConfig } from './config.js';
import type { ModelInputs } from './inputs.js';
import type { HeadWeights } from './components/attention.js';

/** How a hook's activation is laid out, so interventions know which axes are positions and heads. */
export type Layout = 'resid' | 'heads' | 'pattern';

/** One weight of a model: Lantern's name, shape and where it comes from in the checkpoint. */
export interface WeightSpec {
  /** Lantern's (TransformerLens-like) name, also the graph input's. */
  name: string;
  shape: number[];
  /** The Hugging Face tensors whose rows, in this order, make the weight (fused q/k/v, gate/up). */
  hf: string[];
  /** With several `hf` tensors: how many rows each contributes. */
  rows?: number[];
  /**
   * 'out_in': stored as a torch Linear weight [out, in] and multiplied transposed in place, so
   * loading never transposes; 'in_out' (default): [in, out], as GPT-2's Conv1D.
   */
  layout?: 'in_out' | 'out_in';
}

/** What an architecture's math is written against: the graph, the config, the inputs, hooks and weights. */
export interface ModelContext {
  g: Graph;
  cfg: ModelConfig;
  inputs: ModelInputs;
  /** A hook point: returns the value the rest of the model should use (cached, patched, ...). */
  hook(name: string, v: Value): Value;
  /** Whether a run asks for this (optional, costly) hook. */
  wants(name: string): boolean;
  /** A weight, as a graph input. */
  W(name: string): Value;
  /** Whether the model has this weight (optional biases and norms). */
  has(name: string): boolean;
  /** Whether a linear weight is stored [in, out] or [out, in]. */
  layout(name: string): 'in_out' | 'out_in';
  /** Builds a value once per graph (e.g. rotary tables shared by every layer). */
  memo(key: string, build: () => Value): Value;
  /** Records layer l's keys and values as its attention reads them (the past's, then the run's own), before grouped heads are repeated. */
  keepKeys(l: number, keys: Value, values: Value): void;
}

/**
 * A model in llama.cpp's GGUF layout (its architecture's tensor names and metadata keys):
 * `ne` lists GGML dimensions fastest first, i.e. a row-major [rows, cols] matrix is ne [cols, rows].
 * The file format and the tokenizer's metadata are the writer's (backends/gguf-export.ts).
 */
export interface GgufLayout {
  arch: string;
  meta: [key: string, type: 'u32' | 'f32' | 'bool' | 'str' | 'bools', value: number | boolean | string | boolean[]][];
  /** `matrix`: stored in the export's matrix type (F16 or F32); vectors (norms, biases) are always F32. */
  tensors: { name: string; ne: number[]; data: Float32Array; matrix: boolean }[];
  /** Where llama.cpp will compute something other than the model (e.g. an ignored sliding window), in one sentence each. */
  caveats?: string[];
}

/** One model family: how to read its config, which weights it has, and its forward's math. Registered by `model_type`. */
export interface Architecture {
  /** config.json's `model_type`. */
  modelType: string;
  /** The models it covers, for listings and errors. */
  covers: string;
  /** Reads this family's config.json into a {@link ModelConfig}, refusing what Lantern does not implement. */
  parseConfig(raw: Record<string, unknown>, file: string): ModelConfig;
  /** The config.json of a model of this family (for random and planted models). */
  toHfConfig(cfg: ModelConfig): Record<string, unknown>;
  /** Every weight this family's model has, with its shape and checkpoint name. */
  weights(cfg: ModelConfig): WeightSpec[];
  /** The residual stream entering block 0 (records hook_embed, and hook_pos_embed where positions are learned). */
  embed(m: ModelContext): Value;
  /** Block l: resid_pre -> resid_post, recording the block's hooks. */
  block(m: ModelContext, l: number, resid: Value): Value;
  /** Block l's q/k/v projections per head, [heads, d_model, d_head] (key/value heads for k and v), as its attention reads them. */
  headWeights(m: ModelContext, l: number): HeadWeights;
  /** The final norm (records ln_final's hooks). */
  finalNorm(m: ModelContext, resid: Value): Value;
  /** Normalised rows [n, d_model] (or [.., d_model]) -> logits. */
  unembed(m: ModelContext, rows: Value): Value;
  /** Shapes for `make-random` (at least `tiny`). */
  presets: Record<string, ModelConfig>;
  /** The model in llama.cpp's layout, where llama.cpp implements the family. */
  gguf?: (cfg: ModelConfig, weights: Record<string, Tensor>) => GgufLayout;
}
