/** GPT-2 (Radford et al., 2019): learned positions, pre-LayerNorm blocks, GELU MLP, tied unembedding. */
import type { Architecture, GgufLayout, ModelContext } from '../architecture.js';
import type { Tensor } from '../../engine/tensor.js';
import { LanternError } from '../../errors.js';
import type { ModelConfig } from '../config.js';
import type { Value } from '../../engine/graph/ir.js';
import { norm } from '../components/norms.js';
import { attentionSublayer, HeadWeights } from '../components/attention.js';
import { mlp } from '../components/mlp.js';
import { B, T } from '../inputs.js';
import { ConfigFields } from './fields.js';

function embed(m: ModelContext): Value {
  const { g, inputs } = m;
  const tokens = m.hook('hook_embed', g.gather(m.W('embed.W_E'), inputs.tokens));
  const rows = g.gather(m.W('pos_embed.W_pos'), inputs.positions); // [t, d], or packed rows' [b, t, d]
  const positions = m.hook('hook_pos_embed', g.expandLike(rows.shape.length === 3 ? rows : g.unsqueeze(rows, [0]), tokens));
  return g.add(tokens, positions);
}

/** q, k, v from the fused [D, 3D] projection (Conv1D layout: columns [q heads | k heads | v heads]). */
function qkv(m: ModelContext, l: number, x: Value): Value[] {
  const { g, cfg } = m;
  const p = `blocks.${l}.attn`;
  const D = cfg.dModel;
  const fused = g.add(g.matmul(x, m.W(`${p}.W_QKV`)), m.W(`${p}.b_QKV`));
  return g.split(fused, -1, [D, D, D]).map((t) => g.reshape(t, [B, T, cfg.nHeads, cfg.dHead]));
}

function headWeights(m: ModelContext, l: number): HeadWeights {
  const { g, cfg } = m;
  const { dModel: D, nHeads: H, dHead: dh } = cfg;
  const p = `blocks.${l}.attn`;
  const W = g.split(g.transpose(g.reshape(m.W(`${p}.W_QKV`), [D, 3, H, dh]), [1, 2, 0, 3]), 0, [1, 1, 1]).map((t) => g.reshape(t, [H, D, dh]));
  const b = g.split(g.reshape(m.W(`${p}.b_QKV`), [3, H, 1, dh]), 0, [1, 1, 1]).map((t) => g.reshape(t, [H, 1, dh]));
  return { q: { W: W[0], b: b[0] }, k: { W: W[1], b: b[1] }, v: { W: W[2], b: b[2] } };
}

function block(m: ModelContext, l: number, x: Value): Value {
  const { g } = m;
  const p = `blocks.${l}`;
  const residPre = m.hook(`${p}.hook_resid_pre`, x);
  const attnOut = m.hook(`${p}.hook_attn_out`, attentionSublayer(m, l, residPre, (h) => qkv(m, l, h), headWeights));
  const residMid = m.hook(`${p}.hook_resid_mid`, g.add(residPre, attnOut));
  const mlpOut = m.hook(`${p}.hook_mlp_out`, mlp(m, p, norm(m, m.hook(`${p}.hook_mlp_in`, residMid), `${p}.ln2`)));
  return m.hook(`${p}.hook_resid_post`, g.add(residMid, mlpOut));
}

/** Lantern weight name -> Hugging Face GPT-2 tensor name (without the optional `transformer.` prefix). */
export function gpt2HfName(name: string): string {
  const fixed: Record<string, string> = {
    'embed.W_E': 'wte.weight', 'pos_embed.W_pos': 'wpe.weight', 'ln_final.w': 'ln_f.weight', 'ln_final.b': 'ln_f.bias', 'unembed.W_U_T': 'lm_head.weight',
  };
  if (fixed[name]) return fixed[name];
  const m = /^blocks\.(\d+)\.(.+)$/.exec(name);
  const inner: Record<string, string> = {
    'ln1.w': 'ln_1.weight', 'ln1.b': 'ln_1.bias', 'ln2.w': 'ln_2.weight', 'ln2.b': 'ln_2.bias',
    'attn.W_QKV': 'attn.c_attn.weight', 'attn.b_QKV': 'attn.c_attn.bias', 'attn.W_O': 'attn.c_proj.weight', 'attn.b_O': 'attn.c_proj.bias',
    'mlp.W_in': 'mlp.c_fc.weight', 'mlp.b_in': 'mlp.c_fc.bias', 'mlp.W_out': 'mlp.c_proj.weight', 'mlp.b_out': 'mlp.c_proj.bias',
  };
  if (!m || !inner[m[2]]) throw new Error(`no Hugging Face name for ${name}`);
  return `h.${m[1]}.${inner[m[2]]}`;
}

function weights(cfg: ModelConfig) {
  const { dModel: D, dMlp: F, dVocab: V, nCtx: P } = cfg;
  const shapes: [string, number[]][] = [['embed.W_E', [V, D]], ['pos_embed.W_pos', [P, D]]];
  for (let l = 0; l < cfg.nLayers; l++) {
    const p = `blocks.${l}`;
    shapes.push(
      [`${p}.ln1.w`, [D]], [`${p}.ln1.b`, [D]],
      [`${p}.attn.W_QKV`, [D, 3 * D]], [`${p}.attn.b_QKV`, [3 * D]], [`${p}.attn.W_O`, [D, D]], [`${p}.attn.b_O`, [D]],
      [`${p}.ln2.w`, [D]], [`${p}.ln2.b`, [D]],
      [`${p}.mlp.W_in`, [D, F]], [`${p}.mlp.b_in`, [F]], [`${p}.mlp.W_out`, [F, D]], [`${p}.mlp.b_out`, [D]],
    );
  }
  shapes.push(['ln_final.w', [D]], ['ln_final.b', [D]]);
  // The unembedding is stored as [vocab, d_model] (tied to W_E, or HF's lm_head) and read
  // transposed in place, so it is never copied into [d_model, vocab].
  if (!cfg.tiedUnembed) shapes.push(['unembed.W_U_T', [V, D]]);
  return shapes.map(([name, shape]) => ({ name, shape, hf: [gpt2HfName(name)], layout: name === 'unembed.W_U_T' ? 'out_in' as const : 'in_out' as const }));
}

/** Row-major [rows, cols] -> [cols, rows]. */
function transpose(a: Float32Array, rows: number, cols: number): Float32Array {
  const out = new Float32Array(a.length);
  for (let r = 0; r < rows; r++) for (let c = 0; c < cols; c++) out[c * rows + r] = a[r * cols + c];
  return out;
}

/**
 * llama.cpp's 'gpt2': Conv1D weights are [in, out] row-major, and llama.cpp wants ne = [in, out]
 * with `in` contiguous, i.e. row-major [out, in]: every matrix is transposed.
 */
function gguf(cfg: ModelConfig, W: Record<string, Tensor>): GgufLayout {
  if (cfg.act !== 'gelu_new') throw new LanternError(`llama.cpp's gpt2 uses the tanh GELU (gelu_new); this model uses ${cfg.act}`);
  const { dModel: D, dMlp: F } = cfg;
  const tensors: GgufLayout['tensors'] = [];
  const vec = (name: string, src: string) => tensors.push({ name, ne: [W[src].shape[0]], data: W[src].f32, matrix: false });
  const mat = (name: string, src: string, inDim: number, outDim: number) => tensors.push({ name, ne: [inDim, outDim], data: transpose(W[src].f32, inDim, outDim), matrix: true });
  tensors.push({ name: 'token_embd.weight', ne: [D, cfg.dVocab], data: W['embed.W_E'].f32, matrix: true });
  tensors.push({ name: 'position_embd.weight', ne: [D, cfg.nCtx], data: W['pos_embed.W_pos'].f32, matrix: true });
  for (let l = 0; l < cfg.nLayers; l++) {
    const b = `blocks.${l}`;
    const g = `blk.${l}`;
    vec(`${g}.attn_norm.weight`, `${b}.ln1.w`); vec(`${g}.attn_norm.bias`, `${b}.ln1.b`);
    mat(`${g}.attn_qkv.weight`, `${b}.attn.W_QKV`, D, 3 * D); vec(`${g}.attn_qkv.bias`, `${b}.attn.b_QKV`);
    mat(`${g}.attn_output.weight`, `${b}.attn.W_O`, D, D); vec(`${g}.attn_output.bias`, `${b}.attn.b_O`);
    vec(`${g}.ffn_norm.weight`, `${b}.ln2.w`); vec(`${g}.ffn_norm.bias`, `${b}.ln2.b`);
    mat(`${g}.ffn_up.weight`, `${b}.mlp.W_in`, D, F); vec(`${g}.ffn_up.bias`, `${b}.mlp.b_in`);
    mat(`${g}.ffn_down.weight`, `${b}.mlp.W_out`, F, D); vec(`${g}.ffn_down.bias`, `${b}.mlp.b_out`);
  }
  vec('output_norm.weight', 'ln_final.w'); vec('output_norm.bias', 'ln_final.b');
  if (!cfg.tiedUnembed) tensors.push({ name: 'output.weight', ne: [D, cfg.dVocab], data: W['unembed.W_U_T'].f32, matrix: true });
  return {
    arch: 'gpt2',
    meta: [
      ['gpt2.context_length', 'u32', cfg.nCtx], ['gpt2.embedding_length', 'u32', D], ['gpt2.feed_forward_length', 'u32', F],
      ['gpt2.block_count', 'u32', cfg.nLayers], ['gpt2.attention.head_count', 'u32', cfg.nHeads], ['gpt2.attention.layer_norm_epsilon', 'f32', cfg.lnEps],
    ],
    tensors,
  };
}

const base = { architecture: 'gpt2', lnEps: 1e-5, act: 'gelu_new', tiedUnembed: true } as const;

export const gpt2: Architecture = {
  modelType: 'gpt2',
  covers: 'GPT-2',
  parseConfig(raw, file) {
    const f = new ConfigFields(raw, file, 'GPT-2');
    const dModel = f.int('n_embd');
    const nHeads = f.int('n_head');
    const dHead = f.headDim(dModel, nHeads, 'n_embd', 'n_head');
    if (dHead * nHeads !== dModel) throw new LanternError(`${file}: head_dim=${dHead} times n_head=${nHeads} is not n_embd=${dModel}; GPT-2's heads split n_embd`);
    f.reject([
      ['scale_attn_by_inverse_layer_idx', (v) => v === true, 'GPT-2 attention scaled by 1/layer'],
      ['reorder_and_upcast_attn', (v) => v === true, 'only changes float16 rounding, but is not implemented'],
      ['scale_attn_weights', (v) => v === false, 'unscaled attention'],
      ['add_cross_attention', (v) => v === true, 'encoder-decoder cross-attention'],
    ]);
    return {
      ...base,
      nLayers: f.int('n_layer'), dModel, nHeads, nKvHeads: nHeads, dHead,
      dMlp: raw.n_inner == null ? 4 * dModel : f.int('n_inner'),
      nCtx: f.int(['n_positions', 'n_ctx']), dVocab: f.int('vocab_size'),
      lnEps: f.num('layer_norm_epsilon', 1e-5),
      act: f.activation(['activation_function'], 'gelu_new'),
      tiedUnembed: raw.tie_word_embeddings !== false,
    };
  },
  toHfConfig: (cfg) => ({
    model_type: 'gpt2', architectures: ['GPT2LMHeadModel'],
    n_layer: cfg.nLayers, n_embd: cfg.dModel, n_head: cfg.nHeads, n_inner: cfg.dMlp, n_positions: cfg.nCtx, n_ctx: cfg.nCtx,
    vocab_size: cfg.dVocab, layer_norm_epsilon: cfg.lnEps, activation_function: cfg.act, tie_word_embeddings: cfg.tiedUnembed,
    bos_token_id: 50256, eos_token_id: 50256,
  }),
  weights,
  embed,
  block,
  headWeights,
  finalNorm: (m, x) => norm(m, x, 'ln_final'),
  unembed: (m, rows) => m.g.matmulTransB(rows, m.W(m.cfg.tiedUnembed ? 'embed.W_E' : 'unembed.W_U_T')),
  gguf,
  presets: {
    tiny: { ...base, nLayers: 2, dModel: 64, nHeads: 4, nKvHeads: 4, dHead: 16, dMlp: 256, nCtx: 64, dVocab: 1000 },
    'gpt2-small': { ...base, nLayers: 12, dModel: 768, nHeads: 12, nKvHeads: 12, dHead: 64, dMlp: 3072, nCtx: 1024, dVocab: 50257 },
  },
};
