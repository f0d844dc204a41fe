/**
 * Llama (Touvron et al., 2023) and the decoders built like it (Mistral, Qwen 2/3, Phi-3):
 * pre-RMSNorm blocks, rotary grouped-query attention, a SwiGLU MLP.
 *
 *   h = x + W_O attn(rope(W_Q n1(x)), rope(W_K n1(x)), W_V n1(x))
 *   y = h + W_down (silu(W_gate n2(h)) * W_up n2(h))
 */
import type { Architecture, GgufLayout, ModelContext, WeightSpec } from '../architecture.js';
import type { Tensor } from '../../engine/tensor.js';
import { inverseFrequencies } from '../components/rotary.js';
import { isSlidingLayer, type ModelConfig } from '../config.js';
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
export function headWeights(m: ModelContext, l: number): HeadWeights {
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

/** llama.cpp's architectures for Llama-style checkpoints (Mistral goes in as 'llama'). */
export type DecoderGgufArch = 'llama' | 'qwen2' | 'qwen3' | 'gemma' | 'gemma2' | 'gemma3' | 'phi3';

/**
 * llama.cpp's layout of a Llama-style checkpoint. Its 'llama' rotates adjacent pairs of each
 * head's dimensions, Hugging Face's checkpoints the two halves, so for it q and k rows are
 * permuted per head (row i·2 + j from row j·dh/2 + i, as llama.cpp's converter does); its Qwen,
 * Gemma and Phi-3 architectures rotate halves as Hugging Face does. Llama 3 rotary scaling travels
 * as per-frequency divisors, `rope_freqs`, which only llama.cpp's 'llama' reads. llama.cpp's Gemma
 * scales the embeddings itself and applies plain RMSNorm, so Gemma's (1 + w) norm weights (q/k
 * norms included) go in as 1 + w. Phi-3 keeps its fused qkv and gate_up matrices.
 *
 * What llama.cpp (the version node-llama-cpp bundles) hard-codes and the model could differ in is
 * refused, naming the config field; except the sliding window of Mistral and Phi-3, which llama.cpp's
 * 'llama' and 'phi3' ignore: those export with a caveat, as they agree on any sequence no longer
 * than the window.
 */
export function decoderGguf(arch: DecoderGgufArch) {
  return (cfg: ModelConfig, W: Record<string, Tensor>): GgufLayout => {
    const { dModel: D, dMlp: F, nHeads: H, nKvHeads: K, dHead: dh, dVocab: V } = cfg;
    const refuse = (why: string): never => { throw new LanternError(`export-gguf: ${why}`); };
    if (!cfg.rope || cfg.rope.dims !== dh) refuse(`llama.cpp's ${arch} rotates whole heads; this model rotates ${cfg.rope?.dims ?? 0} of ${dh} dimensions (partial_rotary_factor)`);
    const rope = cfg.rope!;
    const s = rope.scaling;
    if (s?.type === 'llama3' && arch !== 'llama') refuse(`llama.cpp's ${arch} has no Llama 3 rotary scaling; this model's rope_scaling is llama3`);
    const caveats: string[] = [];
    const windowBinds = cfg.slidingWindow !== undefined && cfg.slidingWindow < cfg.nCtx;
    if (windowBinds && (arch === 'llama' || arch === 'phi3')) {
      caveats.push(`llama.cpp's ${arch} attends to every earlier token, without this ${cfg.architecture} model's sliding window of ${cfg.slidingWindow} tokens: it computes the same as the model on sequences of at most ${cfg.slidingWindow} tokens, and differs beyond`);
    } else if (cfg.slidingWindow !== undefined && arch !== 'gemma2' && arch !== 'gemma3' && arch !== 'llama' && arch !== 'phi3') {
      refuse(`llama.cpp's ${arch} has no sliding window; this model's sliding_window is ${cfg.slidingWindow}`);
    }
    const layers = Array.from({ length: cfg.nLayers }, (_, l) => l);
    if (arch === 'gemma2' || arch === 'gemma3') {
      // llama.cpp scales queries by 1/sqrt(head_dim), except for the 27B models (known by their layer count) by 1/sqrt(d_model / heads).
      const big = cfg.nLayers === (arch === 'gemma2' ? 46 : 62);
      const scale = big ? Math.sqrt(D / H) : Math.sqrt(dh);
      if (cfg.attnScale !== undefined && Math.abs(cfg.attnScale * scale - 1) > 1e-6) refuse(`llama.cpp's ${arch} scales attention by 1/sqrt(${big ? 'd_model / heads' : 'head_dim'}) = 1/sqrt(${scale ** 2}); this model's query_pre_attn_scalar is ${Math.round(cfg.attnScale! ** -2)}`);
    }
    if (arch === 'gemma3') {
      if (cfg.attnSoftcap !== undefined) refuse("llama.cpp's gemma3 has no attention soft-capping; this model's attn_logit_softcapping is " + cfg.attnSoftcap);
      const local = cfg.localRope ?? rope;
      if (local.dims !== dh) refuse(`llama.cpp's gemma3 rotates whole heads on local layers; this model rotates ${local.dims} of ${dh} (rope_parameters.sliding_attention)`);
      if (local.scaling) refuse(`llama.cpp's gemma3 never scales the local layers' rotary embedding; this model's sliding_attention rope has ${local.scaling.type} scaling`);
    }
    if (cfg.mlpBias && arch !== 'llama') refuse(`llama.cpp's ${arch} has no MLP biases (mlp_bias)`);
    if (arch === 'gemma' && (cfg.postNorms || cfg.qkNorm)) refuse(`llama.cpp's gemma is Gemma 1; this model has Gemma 2/3 norms`);
    if (cfg.qkNorm && arch !== 'qwen3' && arch !== 'gemma3') refuse(`llama.cpp's ${arch} has no q/k norms`);
    if (arch === 'phi3') {
      if (H * dh !== D) refuse(`llama.cpp's phi3 needs heads × head_dim = hidden_size; this model has ${H} × ${dh} ≠ ${D}`);
      if (cfg.qkvBias || cfg.oBias) refuse("llama.cpp's phi3 has no attention biases (attention_bias)");
    }
    if (arch === 'gemma3' && cfg.oBias) refuse("llama.cpp's gemma3 has no attention output bias (attention_bias)");
    const tensors: GgufLayout['tensors'] = [];
    const rows = (src: string, from: number, n: number, perm?: number) => {
      const width = W[src].shape.length === 2 ? W[src].shape[1] : 1;
      const data = W[src].f32.slice(from * width, (from + n) * width);
      if (perm === undefined) return data;
      // Per head: rotate-half order (j, i) -> interleaved (i, j).
      const out = new Float32Array(data.length);
      const half = dh / 2;
      for (let h = 0; h < perm; h++) for (let j = 0; j < 2; j++) for (let i = 0; i < half; i++) {
        out.set(data.subarray((h * dh + j * half + i) * width, (h * dh + j * half + i + 1) * width), (h * dh + 2 * i + j) * width);
      }
      return out;
    };
    const interleave = arch === 'llama';
    const mat = (name: string, ne: number[], data: Float32Array) => tensors.push({ name, ne, data, matrix: true });
    const vec = (name: string, data: Float32Array) => tensors.push({ name, ne: [data.length], data, matrix: false });
    const normWeight = (name: string) => (cfg.norm === 'rmsnorm_plus_one' ? W[name].f32.map((w) => 1 + w) : W[name].f32);
    mat('token_embd.weight', [D, V], W['embed.W_E'].f32);
    for (let l = 0; l < cfg.nLayers; l++) {
      const b = `blocks.${l}`;
      const g = `blk.${l}`;
      vec(`${g}.attn_norm.weight`, normWeight(`${b}.ln1.w`));
      if (arch === 'phi3') {
        mat(`${g}.attn_qkv.weight`, [D, (H + 2 * K) * dh], W[`${b}.attn.W_QKV`].f32);
      } else {
        mat(`${g}.attn_q.weight`, [D, H * dh], rows(`${b}.attn.W_QKV`, 0, H * dh, interleave ? H : undefined));
        mat(`${g}.attn_k.weight`, [D, K * dh], rows(`${b}.attn.W_QKV`, H * dh, K * dh, interleave ? K : undefined));
        mat(`${g}.attn_v.weight`, [D, K * dh], rows(`${b}.attn.W_QKV`, (H + K) * dh, K * dh));
      }
      if (cfg.qkvBias) {
        vec(`${g}.attn_q.bias`, rows(`${b}.attn.b_QKV`, 0, H * dh, interleave ? H : undefined));
        vec(`${g}.attn_k.bias`, rows(`${b}.attn.b_QKV`, H * dh, K * dh, interleave ? K : undefined));
        vec(`${g}.attn_v.bias`, rows(`${b}.attn.b_QKV`, (H + K) * dh, K * dh));
      }
      if (cfg.qkNorm) {
        vec(`${g}.attn_q_norm.weight`, normWeight(`${b}.attn.q_norm.w`));
        vec(`${g}.attn_k_norm.weight`, normWeight(`${b}.attn.k_norm.w`));
      }
      mat(`${g}.attn_output.weight`, [H * dh, D], W[`${b}.attn.W_O`].f32);
      if (cfg.oBias) vec(`${g}.attn_output.bias`, W[`${b}.attn.b_O`].f32);
      if (cfg.postNorms) vec(`${g}.post_attention_norm.weight`, normWeight(`${b}.ln1_post.w`));
      vec(`${g}.ffn_norm.weight`, normWeight(`${b}.ln2.w`));
      if (cfg.postNorms) vec(`${g}.post_ffw_norm.weight`, normWeight(`${b}.ln2_post.w`));
      if (arch === 'phi3') {
        // llama.cpp's phi3 splits ffn_up into [gate; up] halves, the order of Hugging Face's gate_up_proj.
        mat(`${g}.ffn_up.weight`, [D, 2 * F], W[`${b}.mlp.W_gate_up`].f32);
      } else {
        mat(`${g}.ffn_gate.weight`, [D, F], rows(`${b}.mlp.W_gate_up`, 0, F));
        mat(`${g}.ffn_up.weight`, [D, F], rows(`${b}.mlp.W_gate_up`, F, F));
      }
      mat(`${g}.ffn_down.weight`, [F, D], W[`${b}.mlp.W_out`].f32);
      if (cfg.mlpBias) {
        vec(`${g}.ffn_gate.bias`, rows(`${b}.mlp.b_gate_up`, 0, F));
        vec(`${g}.ffn_up.bias`, rows(`${b}.mlp.b_gate_up`, F, F));
        vec(`${g}.ffn_down.bias`, W[`${b}.mlp.b_out`].f32);
      }
    }
    vec('output_norm.weight', normWeight('ln_final.w'));
    if (!cfg.tiedUnembed) mat('output.weight', [D, V], W['unembed.W_U_T'].f32);
    if (s?.type === 'llama3') {
      const plain = inverseFrequencies({ dims: dh, base: rope.base });
      const scaled = inverseFrequencies(rope);
      vec('rope_freqs.weight', Float32Array.from(plain, (f, i) => f / scaled[i]));
    }
    const meta: GgufLayout['meta'] = [
      [`${arch}.context_length`, 'u32', cfg.nCtx], [`${arch}.embedding_length`, 'u32', D], [`${arch}.block_count`, 'u32', cfg.nLayers],
      [`${arch}.feed_forward_length`, 'u32', F], [`${arch}.attention.head_count`, 'u32', H], [`${arch}.attention.head_count_kv`, 'u32', K],
      [`${arch}.attention.key_length`, 'u32', dh], [`${arch}.attention.value_length`, 'u32', dh], [`${arch}.rope.dimension_count`, 'u32', dh],
      [`${arch}.rope.freq_base`, 'f32', rope.base], [`${arch}.attention.layer_norm_rms_epsilon`, 'f32', cfg.lnEps],
    ];
    // Gemma 3 scales only its global layers' rotary embedding; llama.cpp applies this factor to those alone.
    if (s?.type === 'linear') meta.push([`${arch}.rope.scaling.type`, 'str', 'linear'], [`${arch}.rope.scaling.factor`, 'f32', s.factor]);
    if (cfg.slidingWindow !== undefined && (arch === 'gemma2' || arch === 'gemma3')) meta.push([`${arch}.attention.sliding_window`, 'u32', cfg.slidingWindow]);
    // Which layers are local, one flag per layer: llama.cpp's default patterns (every other layer, five in six) need not be the model's.
    if ((arch === 'gemma2' || arch === 'gemma3') && cfg.slidingWindow !== undefined) meta.push([`${arch}.attention.sliding_window_pattern`, 'bools', layers.map((l) => isSlidingLayer(cfg, l))]);
    if (arch === 'gemma3' && cfg.slidingWindow !== undefined) meta.push([`${arch}.rope.freq_base_swa`, 'f32', (cfg.localRope ?? rope).base]);
    if (cfg.attnSoftcap !== undefined) meta.push([`${arch}.attn_logit_softcapping`, 'f32', cfg.attnSoftcap]);
    if (cfg.finalSoftcap !== undefined) meta.push([`${arch}.final_logit_softcapping`, 'f32', cfg.finalSoftcap]);
    if (caveats.length && cfg.slidingWindow !== undefined) meta.push(['lantern.ignored_sliding_window', 'u32', cfg.slidingWindow]);
    return { arch, meta, tensors, caveats };
  };
}

/** The forward of every Llama-style family: token embedding, Llama blocks, final RMSNorm, unembedding. */
export const DECODER_FORWARD = {
  embed: tokenEmbedding,
  block: llamaBlock,
  headWeights,
  finalNorm: (m: ModelContext, x: Value) => norm(m, x, 'ln_final'),
  unembed,
};

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
  ...DECODER_FORWARD,
  gguf: decoderGguf('llama'),
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
