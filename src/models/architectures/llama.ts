/**
 * Llama (Touvron et al., 2023) and the decoders built like it (Mistral, Qwen 2/3, Phi-3):
 * pre-RMSNorm blocks, rotary grouped-query attention, a SwiGLU MLP.
 *
 *   h = x + W_O attn(rope(W_Q n1(x)), rope(W_K n1(x)), W_V n1(x))
 *   y = h + W_down (silu(W_gate n2(h)) * W_up n2(h))
 */
import type { Architecture, ModelContext, WeightSpec } from '../architecture.js';
import type { ModelConfig } from '../config.js';
import type { Value } from '../../engine/graph/ir.js';
import { LanternError } from '../../errors.js';
import { norm } from '../components/norms.js';
import { attentionSublayer, HeadWeights } from '../components/attention.js';
import { gatedMlp } from '../components/mlp.js';
import { linear } from '../components/linear.js';
import { B, T } from '../inputs.js';
import { ConfigFields } from './fields.js';

/** q, k, v from one fused projection whose rows are [q heads; k heads; v heads]. */
function qkv(m: ModelContext, l: number, x: Value): Value[] {
  const { g, cfg } = m;
  const { nHeads: H, nKvHeads: K, dHead: dh } = cfg;
  const p = `blocks.${l}.attn`;
  const [q, k, v] = g.split(linear(m, x, `${p}.W_QKV`, `${p}.b_QKV`), -1, [H * dh, K * dh, K * dh]);
  const heads = (t: Value, n: number) => g.reshape(t, [B, T, n, dh]);
  return [heads(q, H), heads(k, K), heads(v, K)];
}

/** The same weights per head: rows h·dh … (h + 1)·dh of each block, as [heads, d_model, d_head]. */
function headWeights(m: ModelContext, l: number): HeadWeights {
  const { g, cfg } = m;
  const { nHeads: H, nKvHeads: K, dHead: dh, dModel: D } = cfg;
  const p = `blocks.${l}.attn`;
  const sizes = [H * dh, K * dh, K * dh];
  const counts = [H, K, K];
  const W = g.split(m.W(`${p}.W_QKV`), 0, sizes).map((t, i) => g.transpose(g.reshape(t, [counts[i], dh, D]), [0, 2, 1]));
  const b = m.has(`${p}.b_QKV`) ? g.split(m.W(`${p}.b_QKV`), 0, sizes).map((t, i) => g.reshape(t, [counts[i], 1, dh])) : [];
  return { q: { W: W[0], b: b[0] }, k: { W: W[1], b: b[1] }, v: { W: W[2], b: b[2] } };
}

/** Block l's attention sublayer (ln1, attention, output projection) from its residual input. */
export function attention(m: ModelContext, l: number, resid: Value): Value {
  return attentionSublayer(m, l, resid, (x) => qkv(m, l, x), headWeights);
}

export function llamaBlock(m: ModelContext, l: number, x: Value): Value {
  const { g } = m;
  const p = `blocks.${l}`;
  const residPre = m.hook(`${p}.hook_resid_pre`, x);
  const attnOut = m.hook(`${p}.hook_attn_out`, attention(m, l, residPre));
  const residMid = m.hook(`${p}.hook_resid_mid`, g.add(residPre, attnOut));
  const mlpOut = m.hook(`${p}.hook_mlp_out`, gatedMlp(m, p, norm(m, m.hook(`${p}.hook_mlp_in`, residMid), `${p}.ln2`)));
  return m.hook(`${p}.hook_resid_post`, g.add(residMid, mlpOut));
}

export function tokenEmbedding(m: ModelContext): Value {
  const { g, cfg } = m;
  const rows = g.gather(m.W('embed.W_E'), m.inputs.tokens);
  return m.hook('hook_embed', cfg.embedScale ? g.mul(rows, g.scalar(cfg.embedScale)) : rows);
}

export function unembed(m: ModelContext, rows: Value): Value {
  const { g, cfg } = m;
  const logits = g.matmulTransB(rows, m.W(cfg.tiedUnembed ? 'embed.W_E' : 'unembed.W_U_T'));
  const cap = cfg.finalSoftcap;
  return cap ? g.mul(g.tanh(g.mul(logits, g.scalar(1 / cap))), g.scalar(cap)) : logits;
}

/** Hugging Face names of a Llama-style checkpoint's layer tensors (Phi-3 and Gemma rename or fuse some). */
export interface DecoderNames {
  qkv: string[];
  gateUp: string[];
  ln2: string;
  /** Gemma 2/3's norms after attention and after the MLP. */
  ln1Post?: string;
  ln2Post?: string;
}

export const LLAMA_NAMES: DecoderNames = {
  qkv: ['self_attn.q_proj', 'self_attn.k_proj', 'self_attn.v_proj'],
  gateUp: ['mlp.gate_proj', 'mlp.up_proj'],
  ln2: 'post_attention_layernorm',
};

export function decoderWeights(cfg: ModelConfig, names: DecoderNames = LLAMA_NAMES): WeightSpec[] {
  const { dModel: D, dMlp: F, dVocab: V, nHeads: H, nKvHeads: K, dHead: dh } = cfg;
  const out: WeightSpec[] = [{ name: 'embed.W_E', shape: [V, D], hf: ['model.embed_tokens.weight'] }];
  const qkvRows = names.qkv.length > 1 ? { rows: [H * dh, K * dh, K * dh] } : {};
  const gateUpRows = names.gateUp.length > 1 ? { rows: [F, F] } : {};
  const lin = (name: string, shape: number[], hf: string[], rows = {}) => out.push({ name, shape, hf, layout: 'out_in', ...rows });
  const vec = (name: string, n: number, hf: string[], rows = {}) => out.push({ name, shape: [n], hf, ...rows });
  for (let l = 0; l < cfg.nLayers; l++) {
    const p = `blocks.${l}`;
    const hf = `model.layers.${l}`;
    vec(`${p}.ln1.w`, D, [`${hf}.input_layernorm.weight`]);
    lin(`${p}.attn.W_QKV`, [(H + 2 * K) * dh, D], names.qkv.map((n) => `${hf}.${n}.weight`), qkvRows);
    if (cfg.qkvBias) vec(`${p}.attn.b_QKV`, (H + 2 * K) * dh, names.qkv.map((n) => `${hf}.${n}.bias`), qkvRows);
    if (cfg.qkNorm) {
      vec(`${p}.attn.q_norm.w`, dh, [`${hf}.self_attn.q_norm.weight`]);
      vec(`${p}.attn.k_norm.w`, dh, [`${hf}.self_attn.k_norm.weight`]);
    }
    lin(`${p}.attn.W_O`, [D, H * dh], [`${hf}.self_attn.o_proj.weight`]);
    if (cfg.oBias) vec(`${p}.attn.b_O`, D, [`${hf}.self_attn.o_proj.bias`]);
    if (names.ln1Post) vec(`${p}.ln1_post.w`, D, [`${hf}.${names.ln1Post}.weight`]);
    vec(`${p}.ln2.w`, D, [`${hf}.${names.ln2}.weight`]);
    lin(`${p}.mlp.W_gate_up`, [2 * F, D], names.gateUp.map((n) => `${hf}.${n}.weight`), gateUpRows);
    if (cfg.mlpBias) vec(`${p}.mlp.b_gate_up`, 2 * F, names.gateUp.map((n) => `${hf}.${n}.bias`), gateUpRows);
    lin(`${p}.mlp.W_out`, [D, F], [`${hf}.mlp.down_proj.weight`]);
    if (cfg.mlpBias) vec(`${p}.mlp.b_out`, D, [`${hf}.mlp.down_proj.bias`]);
    if (names.ln2Post) vec(`${p}.ln2_post.w`, D, [`${hf}.${names.ln2Post}.weight`]);
  }
  vec('ln_final.w', D, ['model.norm.weight']);
  if (!cfg.tiedUnembed) lin('unembed.W_U_T', [V, D], ['lm_head.weight']);
  return out;
}

/** The fields every Llama-style config.json shares. */
export function decoderConfig(f: ConfigFields, architecture: string, defaults: { tied: boolean; eps?: number }): ModelConfig {
  const raw = f.raw;
  const dModel = f.int('hidden_size');
  const nHeads = f.int('num_attention_heads');
  const dHead = f.headDim(dModel, nHeads, 'hidden_size', 'num_attention_heads');
  f.reject([
    ['num_local_experts', (v) => Number(v) > 1, 'mixture-of-experts layers'],
    ['num_experts', (v) => Number(v) > 1, 'mixture-of-experts layers'],
  ]);
  return {
    architecture,
    nLayers: f.int('num_hidden_layers'),
    dModel, nHeads, nKvHeads: f.kvHeads(nHeads), dHead,
    dMlp: f.int('intermediate_size'),
    nCtx: f.int('max_position_embeddings', 2048),
    dVocab: f.int('vocab_size'),
    lnEps: f.num('rms_norm_eps', defaults.eps ?? 1e-6),
    act: f.activation(['hidden_act'], 'silu'),
    tiedUnembed: f.bool('tie_word_embeddings', defaults.tied),
    norm: 'rmsnorm',
    rope: f.rope(dHead),
    ...(raw.attention_bias === true ? { qkvBias: true, oBias: true } : {}),
    ...(raw.mlp_bias === true ? { mlpBias: true } : {}),
  };
}

/** Per-layer attention kinds from `layer_types`, when the config lists them. */
export function layerTypes(f: ConfigFields, nLayers: number): number[] | undefined {
  const types = f.raw.layer_types;
  if (types == null) return undefined;
  if (!Array.isArray(types) || types.length !== nLayers) throw new LanternError(`${f.file}: layer_types must list one kind per layer (${nLayers})`);
  return types.flatMap((t, l) => {
    if (t === 'sliding_attention') return [l];
    if (t === 'full_attention') return [];
    throw new LanternError(`${f.file}: layer_types[${l}] is '${t}'; Lantern knows sliding_attention and full_attention`);
  });
}

export function llamaHfConfig(cfg: ModelConfig, modelType: string, architectures: string[]): Record<string, unknown> {
  const r = cfg.rope!;
  const s = r.scaling;
  return {
    model_type: modelType, architectures,
    num_hidden_layers: cfg.nLayers, hidden_size: cfg.dModel, num_attention_heads: cfg.nHeads, num_key_value_heads: cfg.nKvHeads,
    head_dim: cfg.dHead, intermediate_size: cfg.dMlp, max_position_embeddings: cfg.nCtx, vocab_size: cfg.dVocab,
    rms_norm_eps: cfg.lnEps, hidden_act: cfg.act === 'gelu_new' ? 'gelu_pytorch_tanh' : cfg.act, tie_word_embeddings: cfg.tiedUnembed,
    rope_theta: r.base,
    ...(r.dims !== cfg.dHead ? { partial_rotary_factor: r.dims / cfg.dHead } : {}),
    rope_scaling: !s ? null : s.type === 'linear' ? { rope_type: 'linear', factor: s.factor }
      : { rope_type: 'llama3', factor: s.factor, low_freq_factor: s.lowFreqFactor, high_freq_factor: s.highFreqFactor, original_max_position_embeddings: s.originalContext },
    attention_bias: Boolean(cfg.oBias), mlp_bias: Boolean(cfg.mlpBias),
    bos_token_id: 0, eos_token_id: 0,
  };
}

const tinyDecoder = {
  nLayers: 2, dModel: 64, nHeads: 4, nKvHeads: 2, dHead: 16, dMlp: 192, nCtx: 128, dVocab: 1000,
  lnEps: 1e-5, act: 'silu', norm: 'rmsnorm', tiedUnembed: false, rope: { dims: 16, base: 10000 },
} as const;

export const llama: Architecture = {
  modelType: 'llama',
  covers: 'Llama 2, Llama 3, 3.1, 3.2, SmolLM',
  parseConfig: (raw, file) => decoderConfig(new ConfigFields(raw, file, 'Llama'), 'llama', { tied: false }),
  toHfConfig: (cfg) => llamaHfConfig(cfg, 'llama', ['LlamaForCausalLM']),
  weights: (cfg) => decoderWeights(cfg),
  embed: tokenEmbedding,
  block: llamaBlock,
  finalNorm: (m, x) => norm(m, x, 'ln_final'),
  unembed,
  presets: {
    tiny: { architecture: 'llama', ...tinyDecoder, rope: { dims: 16, base: 10000, scaling: { type: 'llama3', factor: 8, lowFreqFactor: 1, highFreqFactor: 4, originalContext: 32 } } },
    'llama-3.2-1b': {
      architecture: 'llama', nLayers: 16, dModel: 2048, nHeads: 32, nKvHeads: 8, dHead: 64, dMlp: 8192, nCtx: 131072, dVocab: 128256,
      lnEps: 1e-5, act: 'silu', norm: 'rmsnorm', tiedUnembed: true,
      rope: { dims: 64, base: 500000, scaling: { type: 'llama3', factor: 32, lowFreqFactor: 1, highFreqFactor: 4, originalContext: 8192 } },
    },
  },
};

export { tinyDecoder };
