/**
 * GPT-NeoX (Black et al., 2022) and Pythia: LayerNorm, partial rotary embeddings, one fused QKV
 * projection laid out head by head, and (by default) parallel attention and MLP:
 *
 *   y = x + attn(n1(x)) + mlp(n2(x))
 */
import type { Architecture, GgufLayout, ModelContext, WeightSpec } from '../architecture.js';
import type { Tensor } from '../../engine/tensor.js';
import type { ModelConfig } from '../config.js';
import type { Value } from '../../engine/graph/ir.js';
import { norm } from '../components/norms.js';
import { attentionSublayer, HeadWeights } from '../components/attention.js';
import { mlp } from '../components/mlp.js';
import { linear } from '../components/linear.js';
import { B, T } from '../inputs.js';
import { ConfigFields } from './fields.js';
import { LanternError } from '../../errors.js';

/** q, k, v from query_key_value, whose output rows are ordered (head, {q, k, v}, d_head). */
function qkv(m: ModelContext, l: number, x: Value): Value[] {
  const { g, cfg } = m;
  const p = `blocks.${l}.attn`;
  const fused = g.reshape(linear(m, x, `${p}.W_QKV`, `${p}.b_QKV`), [B, T, cfg.nHeads, 3 * cfg.dHead]);
  return g.split(fused, 3, [cfg.dHead, cfg.dHead, cfg.dHead]);
}

function headWeights(m: ModelContext, l: number): HeadWeights {
  const { g, cfg } = m;
  const { nHeads: H, dHead: dh, dModel: D } = cfg;
  const p = `blocks.${l}.attn`;
  const W = g.split(g.reshape(m.W(`${p}.W_QKV`), [H, 3, dh, D]), 1, [1, 1, 1]).map((t) => g.transpose(g.reshape(t, [H, dh, D]), [0, 2, 1]));
  const b = g.split(g.reshape(m.W(`${p}.b_QKV`), [H, 3, dh]), 1, [1, 1, 1]).map((t) => g.reshape(t, [H, 1, dh]));
  return { q: { W: W[0], b: b[0] }, k: { W: W[1], b: b[1] }, v: { W: W[2], b: b[2] } };
}

function block(m: ModelContext, l: number, x: Value): Value {
  const { g, cfg } = m;
  const p = `blocks.${l}`;
  const residPre = m.hook(`${p}.hook_resid_pre`, x);
  const attnOut = m.hook(`${p}.hook_attn_out`, attentionSublayer(m, l, residPre, (h) => qkv(m, l, h), headWeights));
  if (cfg.parallelResidual) {
    const mlpOut = m.hook(`${p}.hook_mlp_out`, mlp(m, p, norm(m, m.hook(`${p}.hook_mlp_in`, residPre), `${p}.ln2`)));
    return m.hook(`${p}.hook_resid_post`, g.add(g.add(residPre, attnOut), mlpOut));
  }
  const residMid = m.hook(`${p}.hook_resid_mid`, g.add(residPre, attnOut));
  const mlpOut = m.hook(`${p}.hook_mlp_out`, mlp(m, p, norm(m, m.hook(`${p}.hook_mlp_in`, residMid), `${p}.ln2`)));
  return m.hook(`${p}.hook_resid_post`, g.add(residMid, mlpOut));
}

function weights(cfg: ModelConfig): WeightSpec[] {
  const { dModel: D, dMlp: F, dVocab: V } = cfg;
  const out: WeightSpec[] = [{ name: 'embed.W_E', shape: [V, D], hf: ['gpt_neox.embed_in.weight'] }];
  const add = (name: string, shape: number[], hf: string, layout?: 'out_in') => out.push({ name, shape, hf: [hf], ...(layout ? { layout } : {}) });
  for (let l = 0; l < cfg.nLayers; l++) {
    const p = `blocks.${l}`;
    const hf = `gpt_neox.layers.${l}`;
    add(`${p}.ln1.w`, [D], `${hf}.input_layernorm.weight`);
    add(`${p}.ln1.b`, [D], `${hf}.input_layernorm.bias`);
    add(`${p}.attn.W_QKV`, [3 * D, D], `${hf}.attention.query_key_value.weight`, 'out_in');
    add(`${p}.attn.b_QKV`, [3 * D], `${hf}.attention.query_key_value.bias`);
    add(`${p}.attn.W_O`, [D, D], `${hf}.attention.dense.weight`, 'out_in');
    add(`${p}.attn.b_O`, [D], `${hf}.attention.dense.bias`);
    add(`${p}.ln2.w`, [D], `${hf}.post_attention_layernorm.weight`);
    add(`${p}.ln2.b`, [D], `${hf}.post_attention_layernorm.bias`);
    add(`${p}.mlp.W_in`, [F, D], `${hf}.mlp.dense_h_to_4h.weight`, 'out_in');
    add(`${p}.mlp.b_in`, [F], `${hf}.mlp.dense_h_to_4h.bias`);
    add(`${p}.mlp.W_out`, [D, F], `${hf}.mlp.dense_4h_to_h.weight`, 'out_in');
    add(`${p}.mlp.b_out`, [D], `${hf}.mlp.dense_4h_to_h.bias`);
  }
  add('ln_final.w', [D], 'gpt_neox.final_layer_norm.weight');
  add('ln_final.b', [D], 'gpt_neox.final_layer_norm.bias');
  if (!cfg.tiedUnembed) add('unembed.W_U_T', [V, D], 'embed_out.weight', 'out_in');
  return out;
}

/**
 * llama.cpp's 'gptneox': its fused QKV rows are [q heads; k heads; v heads], so the per-head
 * (head, {q, k, v}, d_head) rows are regrouped, as llama.cpp's converter does. llama.cpp computes
 * GELU with the tanh approximation, so a model with the exact GELU (Pythia's) comes out close, not exact.
 */
function gguf(cfg: ModelConfig, W: Record<string, Tensor>): GgufLayout {
  const { dModel: D, dMlp: F, nHeads: H, dHead: dh, dVocab: V } = cfg;
  const tensors: GgufLayout['tensors'] = [];
  const regroup = (a: Float32Array, width: number) => {
    const out = new Float32Array(a.length);
    for (let h = 0; h < H; h++) for (let j = 0; j < 3; j++) out.set(a.subarray((h * 3 + j) * dh * width, (h * 3 + j + 1) * dh * width), (j * H + h) * dh * width);
    return out;
  };
  const mat = (name: string, ne: number[], data: Float32Array) => tensors.push({ name, ne, data, matrix: true });
  const vec = (name: string, src: string) => tensors.push({ name, ne: [W[src].shape[0]], data: W[src].f32, matrix: false });
  mat('token_embd.weight', [D, V], W['embed.W_E'].f32);
  for (let l = 0; l < cfg.nLayers; l++) {
    const b = `blocks.${l}`;
    const g = `blk.${l}`;
    vec(`${g}.attn_norm.weight`, `${b}.ln1.w`); vec(`${g}.attn_norm.bias`, `${b}.ln1.b`);
    mat(`${g}.attn_qkv.weight`, [D, 3 * D], regroup(W[`${b}.attn.W_QKV`].f32, D));
    tensors.push({ name: `${g}.attn_qkv.bias`, ne: [3 * D], data: regroup(W[`${b}.attn.b_QKV`].f32, 1), matrix: false });
    mat(`${g}.attn_output.weight`, [D, D], W[`${b}.attn.W_O`].f32); vec(`${g}.attn_output.bias`, `${b}.attn.b_O`);
    vec(`${g}.ffn_norm.weight`, `${b}.ln2.w`); vec(`${g}.ffn_norm.bias`, `${b}.ln2.b`);
    mat(`${g}.ffn_up.weight`, [D, F], W[`${b}.mlp.W_in`].f32); vec(`${g}.ffn_up.bias`, `${b}.mlp.b_in`);
    mat(`${g}.ffn_down.weight`, [F, D], W[`${b}.mlp.W_out`].f32); vec(`${g}.ffn_down.bias`, `${b}.mlp.b_out`);
  }
  vec('output_norm.weight', 'ln_final.w'); vec('output_norm.bias', 'ln_final.b');
  mat('output.weight', [D, V], W[cfg.tiedUnembed ? 'embed.W_E' : 'unembed.W_U_T'].f32);
  return {
    arch: 'gptneox',
    meta: [
      ['gptneox.context_length', 'u32', cfg.nCtx], ['gptneox.embedding_length', 'u32', D], ['gptneox.block_count', 'u32', cfg.nLayers],
      ['gptneox.feed_forward_length', 'u32', F], ['gptneox.attention.head_count', 'u32', H], ['gptneox.rope.dimension_count', 'u32', cfg.rope!.dims],
      ['gptneox.rope.freq_base', 'f32', cfg.rope!.base], ['gptneox.use_parallel_residual', 'bool', Boolean(cfg.parallelResidual)],
      ['gptneox.attention.layer_norm_epsilon', 'f32', cfg.lnEps],
    ],
    tensors,
  };
}

const pythia = { architecture: 'gpt_neox', lnEps: 1e-5, act: 'gelu', tiedUnembed: false, norm: 'layernorm', parallelResidual: true } as const;

export const gptNeox: Architecture = {
  modelType: 'gpt_neox',
  covers: 'Pythia, GPT-NeoX',
  parseConfig(raw, file) {
    const f = new ConfigFields(raw, file, 'GPT-NeoX');
    const dModel = f.int('hidden_size');
    const nHeads = f.int('num_attention_heads');
    if (dModel % nHeads !== 0) throw new LanternError(`${file}: hidden_size=${dModel} is not divisible by num_attention_heads=${nHeads}`);
    const dHead = dModel / nHeads;
    f.reject([['attention_bias', (v) => v === false, 'GPT-NeoX without attention biases']]);
    return {
      ...pythia,
      nLayers: f.int('num_hidden_layers'), dModel, nHeads, nKvHeads: nHeads, dHead,
      dMlp: f.int('intermediate_size'), nCtx: f.int('max_position_embeddings', 2048), dVocab: f.int('vocab_size'),
      lnEps: f.num('layer_norm_eps', 1e-5),
      act: f.activation(['hidden_act'], 'gelu'),
      tiedUnembed: f.bool('tie_word_embeddings', false),
      rope: f.rope(dHead, { partialKeys: ['rotary_pct'], baseKeys: ['rotary_emb_base', 'rope_theta'] }),
      parallelResidual: f.bool('use_parallel_residual', true),
    };
  },
  toHfConfig: (cfg) => ({
    model_type: 'gpt_neox', architectures: ['GPTNeoXForCausalLM'],
    num_hidden_layers: cfg.nLayers, hidden_size: cfg.dModel, num_attention_heads: cfg.nHeads, intermediate_size: cfg.dMlp,
    max_position_embeddings: cfg.nCtx, vocab_size: cfg.dVocab, layer_norm_eps: cfg.lnEps, hidden_act: cfg.act,
    rotary_pct: cfg.rope!.dims / cfg.dHead, rotary_emb_base: cfg.rope!.base, use_parallel_residual: Boolean(cfg.parallelResidual),
    tie_word_embeddings: cfg.tiedUnembed, bos_token_id: 0, eos_token_id: 0,
  }),
  weights,
  embed(m) {
    return m.hook('hook_embed', m.g.gather(m.W('embed.W_E'), m.inputs.tokens));
  },
  block,
  headWeights,
  finalNorm: (m, x) => norm(m, x, 'ln_final'),
  unembed: (m, rows) => m.g.matmulTransB(rows, m.W(m.cfg.tiedUnembed ? 'embed.W_E' : 'unembed.W_U_T')),
  gguf,
  presets: {
    tiny: { ...pythia, nLayers: 2, dModel: 64, nHeads: 4, nKvHeads: 4, dHead: 16, dMlp: 256, nCtx: 128, dVocab: 1000, rope: { dims: 4, base: 10000 } },
    'pythia-160m': { ...pythia, nLayers: 12, dModel: 768, nHeads: 12, nKvHeads: 12, dHead: 64, dMlp: 3072, nCtx: 2048, dVocab: 50304, rope: { dims: 16, base: 10000 } },
  },
};
