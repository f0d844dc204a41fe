/**
 * Weight orthogonalization (Arditi et al., *Refusal in Language Models Is Mediated by a Single
 * Direction*): every weight that writes into the residual stream — the token and position
 * embeddings, each attention output and each MLP output, with their biases — has its component
 * along a unit direction u removed, W ← (I − u uᵀ) W. The stream then never holds any u, exactly as
 * when u is projected out of the residual stream at every layer while the model runs, and the
 * edited weights save as an ordinary checkpoint.
 */
import fs from 'node:fs';
import path from 'node:path';
import { LanternError } from '../errors.js';
import { Tensor } from '../engine/tensor.js';
import type { ModelConfig } from './config.js';
import { toHfConfig } from './config.js';
import { weightSpecs } from './forward.js';
import { HookedTransformer } from './hooked.js';
import { toHfTensors } from './weights.js';
import { writeSafetensors } from './safetensors.js';

/** The files besides the weights that a checkpoint's tokenizer and generation need. */
const TOKENIZER_FILES = /^(tokenizer.*|special_tokens_map\.json|added_tokens\.json|generation_config\.json|vocab\.json|merges\.txt|chat_template\.(jinja|json))$/;

/** A weight that writes into the residual stream, and which of its axes is d_model. */
export interface ResidualWriter {
  name: string;
  axis: number;
}

/**
 * The weights that write into the residual stream. Refused where a norm sits between a sublayer and
 * the stream (Gemma 2 and 3's post-norms rescale what is written, so no edit of the weights before
 * them removes a direction after them).
 */
export function residualWriters(cfg: ModelConfig): ResidualWriter[] {
  if (cfg.postNorms) {
    throw new LanternError(`weight orthogonalization does not apply to ${cfg.architecture}: its post-attention and post-MLP norms rescale what each sublayer writes; use run-time directional ablation instead`);
  }
  const writers: ResidualWriter[] = [];
  for (const spec of weightSpecs(cfg).values()) {
    const n = spec.name;
    if (n === 'embed.W_E' || n === 'pos_embed.W_pos') writers.push({ name: n, axis: 1 });
    else if (/\.attn\.W_O$|\.mlp\.W_out$/.test(n)) writers.push({ name: n, axis: spec.layout === 'out_in' ? 0 : 1 });
    else if (/\.attn\.b_O$|\.mlp\.b_out$/.test(n)) writers.push({ name: n, axis: 0 });
  }
  return writers;
}

/** `data` (shape `shape`) with its component along unit `u` removed on axis `axis`, computed in float64. */
export function projectOut(data: Float32Array, shape: number[], axis: number, u: ArrayLike<number>): Float32Array {
  const D = shape[axis];
  if (u.length !== D) throw new LanternError(`direction has ${u.length} values; the weight's d_model axis has ${D}`);
  const out = Float32Array.from(data);
  if (shape.length === 1 || axis === shape.length - 1) {
    // Rows are vectors in the residual space.
    const rows = data.length / D;
    for (let r = 0; r < rows; r++) {
      let dot = 0;
      for (let j = 0; j < D; j++) dot += data[r * D + j] * u[j];
      for (let j = 0; j < D; j++) out[r * D + j] = data[r * D + j] - dot * u[j];
    }
    return out;
  }
  // [D, cols]: columns are vectors in the residual space.
  const cols = data.length / D;
  const dots = new Float64Array(cols);
  for (let i = 0; i < D; i++) for (let c = 0; c < cols; c++) dots[c] += u[i] * data[i * cols + c];
  for (let i = 0; i < D; i++) for (let c = 0; c < cols; c++) out[i * cols + c] = data[i * cols + c] - u[i] * dots[c];
  return out;
}

/** A unit vector (float64) from `direction`; refuses a zero or non-finite one. */
export function unitDirection(direction: ArrayLike<number>, dModel: number): Float64Array {
  if (direction.length !== dModel) throw new LanternError(`direction has ${direction.length} values; the model's d_model is ${dModel}`);
  const u = Float64Array.from(direction);
  const norm = Math.hypot(...u);
  if (!Number.isFinite(norm) || norm === 0) throw new LanternError('direction must be finite and non-zero');
  return u.map((v) => v / norm);
}

/**
 * The model's weights with `direction` removed from everything that writes into the residual
 * stream, and the config they run under: a tied unembedding is untied (it keeps the original
 * embedding, since the unembedding reads the stream rather than writing it).
 */
export async function orthogonalizedWeights(model: HookedTransformer, direction: ArrayLike<number>): Promise<{ cfg: ModelConfig; weights: Record<string, Float32Array> }> {
  const { cfg } = model;
  const u = unitDirection(direction, cfg.dModel);
  const writers = residualWriters(cfg);
  const names = [...weightSpecs(cfg).keys()];
  const read = await model.executor.readWeights(model.weights, names);
  const weights: Record<string, Float32Array> = Object.fromEntries(names.map((n) => [n, read[n].f32]));
  for (const { name, axis } of writers) weights[name] = projectOut(read[name].f32, read[name].shape, axis, u);
  const out: ModelConfig = { ...cfg, tiedUnembed: false };
  if (cfg.tiedUnembed) weights['unembed.W_U_T'] = read['embed.W_E'].f32;
  return { cfg: out, weights };
}

/** Builds a model from orthogonalized weights in memory (same tokenizer and executor). */
export async function orthogonalizedModel(model: HookedTransformer, direction: ArrayLike<number>): Promise<HookedTransformer> {
  const { cfg, weights } = await orthogonalizedWeights(model, direction);
  const specs = weightSpecs(cfg);
  const tensors = Object.fromEntries(Object.entries(weights).map(([n, d]) => [n, Tensor.f32(d, specs.get(n)!.shape)]));
  return HookedTransformer.create(cfg, tensors, model.tokenizer, `${model.source} (orthogonalized)`, model.executor);
}

/**
 * Writes the orthogonalized model to `dir` as a Hugging Face checkpoint (config.json,
 * model.safetensors) and copies the source folder's tokenizer and generation files,
 * so `loadModel(dir)` runs the ablated model with no hooks.
 */
export async function saveOrthogonalized(model: HookedTransformer, direction: ArrayLike<number>, dir: string, metadata: Record<string, string> = {}): Promise<string[]> {
  const { cfg, weights } = await orthogonalizedWeights(model, direction);
  fs.mkdirSync(dir, { recursive: true });
  const written = ['config.json', 'model.safetensors'];
  if (fs.existsSync(model.source) && fs.statSync(model.source).isDirectory()) {
    for (const f of fs.readdirSync(model.source)) {
      if (!TOKENIZER_FILES.test(f)) continue;
      const from = path.join(model.source, f);
      if (!fs.statSync(from).isFile()) continue;
      fs.copyFileSync(from, path.join(dir, f));
      written.push(f);
    }
  } else if (model.tokenizer) {
    throw new LanternError(`model ${model.source} is not a local folder, so its tokenizer files cannot be copied next to the saved weights`);
  }
  writeSafetensors(path.join(dir, 'model.safetensors'), toHfTensors(cfg, weights), { format: 'pt', ...metadata });
  fs.writeFileSync(path.join(dir, 'config.json'), JSON.stringify(toHfConfig(cfg, { lantern_orthogonalized: metadata }), null, 2));
  return written;
}
