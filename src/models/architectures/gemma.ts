/**
 * Gemma 1, 2 and 3 (text). Llama-like blocks with Gemma's own details: RMSNorm as x̂·(1 + w),
 * embeddings scaled by √d_model, a GeGLU (tanh) MLP; Gemma 2 and 3 add sandwich norms,
 *
 *   h = x + n1_post(attn(n1(x))),   y = h + n2_post(mlp(n2(h))),
 *
 * and local (sliding-window) layers between global ones; Gemma 2 soft-caps attention scores and
 * logits; Gemma 3 normalises q and k per head and gives local layers their own rotary base.
 */
import type { Architecture, ModelContext } from '../architecture.js';
import type { ModelConfig } from '../config.js';
import type { Value } from '../../engine/graph/ir.js';
import { norm } from '../components/norms.js';
import { gatedMlp } from '../components/mlp.js';
import { ConfigFields } from './fields.js';
import { attention, headWeights, decoderConfig, decoderGguf, decoderWeights, layerTypes, llamaHfConfig, tokenEmbedding, unembed, LLAMA_NAMES } from './llama.js';

function block(m: ModelContext, l: number, x: Value): Value {
  const { g, cfg } = m;
  const p = `blocks.${l}`;
  const post = (v: Value, prefix: string) => (cfg.postNorms ? norm(m, v, prefix) : v);
  const residPre = m.hook(`${p}.hook_resid_pre`, x);
  const attnOut = m.hook(`${p}.hook_attn_out`, post(attention(m, l, residPre), `${p}.ln1_post`));
  const residMid = m.hook(`${p}.hook_resid_mid`, g.add(residPre, attnOut));
  const mlpOut = m.hook(`${p}.hook_mlp_out`, post(gatedMlp(m, p, norm(m, m.hook(`${p}.hook_mlp_in`, residMid), `${p}.ln2`)), `${p}.ln2_post`));
  return m.hook(`${p}.hook_resid_post`, g.add(residMid, mlpOut));
}

const GEMMA_FORWARD = { embed: tokenEmbedding, block, headWeights, finalNorm: (m: ModelContext, x: Value) => norm(m, x, 'ln_final'), unembed };

const SANDWICH_NAMES = { ...LLAMA_NAMES, ln1Post: 'post_attention_layernorm', ln2: 'pre_feedforward_layernorm', ln2Post: 'post_feedforward_layernorm' };

function gemmaCommon(f: ConfigFields, architecture: string): ModelConfig {
  const cfg = decoderConfig(f, architecture, { tied: true });
  return {
    ...cfg,
    // Gemma reads hidden_activation; its hidden_act is ignored (HF falls back to the tanh GELU).
    act: f.activation(['hidden_activation'], 'gelu_pytorch_tanh' as never),
    norm: 'rmsnorm_plus_one',
    embedScale: Math.sqrt(cfg.dModel),
  };
}

/** A soft-capping field: `fallback` when absent (Gemma 2's defaults), none when null. */
function softcap(f: ConfigFields, key: string, fallback?: number): number | undefined {
  return key in f.raw ? f.optionalNum(key) : fallback;
}

function sandwichHfConfig(cfg: ModelConfig, modelType: string, architectures: string[]): Record<string, unknown> {
  return {
    ...llamaHfConfig(cfg, modelType, architectures),
    hidden_act: undefined, hidden_activation: 'gelu_pytorch_tanh',
    query_pre_attn_scalar: cfg.attnScale ? Math.round(cfg.attnScale ** -2) : cfg.dHead,
    sliding_window: cfg.slidingWindow ?? null,
    layer_types: Array.from({ length: cfg.nLayers }, (_, l) => (cfg.slidingLayers?.includes(l) ? 'sliding_attention' : 'full_attention')),
  };
}

const tinyGemma = {
  nLayers: 2, dModel: 64, nHeads: 4, nKvHeads: 2, dHead: 16, dMlp: 192, nCtx: 128, dVocab: 1000,
  lnEps: 1e-6, act: 'gelu_new', norm: 'rmsnorm_plus_one', tiedUnembed: true, embedScale: 8, rope: { dims: 16, base: 10000 },
} as const;

export const gemma: Architecture = {
  modelType: 'gemma',
  covers: 'Gemma 1',
  parseConfig: (raw, file) => gemmaCommon(new ConfigFields(raw, file, 'Gemma'), 'gemma'),
  toHfConfig: (cfg) => ({ ...llamaHfConfig(cfg, 'gemma', ['GemmaForCausalLM']), hidden_act: undefined, hidden_activation: 'gelu_pytorch_tanh' }),
  weights: (cfg) => decoderWeights(cfg),
  ...GEMMA_FORWARD,
  gguf: decoderGguf('gemma'),
  presets: { tiny: { architecture: 'gemma', ...tinyGemma, nKvHeads: 1 } },
};

export const gemma2: Architecture = {
  modelType: 'gemma2',
  covers: 'Gemma 2 (2B, 9B, 27B)',
  parseConfig(raw, file) {
    const f = new ConfigFields(raw, file, 'Gemma 2');
    const cfg = gemmaCommon(f, 'gemma2');
    return {
      ...cfg,
      postNorms: true,
      attnScale: f.num('query_pre_attn_scalar', 256) ** -0.5,
      attnSoftcap: softcap(f, 'attn_logit_softcapping', 50),
      finalSoftcap: softcap(f, 'final_logit_softcapping', 30),
      slidingWindow: f.int('sliding_window', 4096),
      // Hugging Face's order: local layers first (0, 2, 4, ...).
      slidingLayers: layerTypes(f, cfg.nLayers) ?? Array.from({ length: cfg.nLayers }, (_, l) => l).filter((l) => l % 2 === 0),
    };
  },
  toHfConfig: (cfg) => ({
    ...sandwichHfConfig(cfg, 'gemma2', ['Gemma2ForCausalLM']),
    attn_logit_softcapping: cfg.attnSoftcap ?? null, final_logit_softcapping: cfg.finalSoftcap ?? null,
  }),
  weights: (cfg) => decoderWeights(cfg, SANDWICH_NAMES),
  ...GEMMA_FORWARD,
  gguf: decoderGguf('gemma2'),
  presets: {
    tiny: { architecture: 'gemma2', ...tinyGemma, postNorms: true, attnScale: 32 ** -0.5, attnSoftcap: 50, finalSoftcap: 30, slidingWindow: 4, slidingLayers: [0] },
    'gemma-2-2b': {
      architecture: 'gemma2', nLayers: 26, dModel: 2304, nHeads: 8, nKvHeads: 4, dHead: 256, dMlp: 9216, nCtx: 8192, dVocab: 256000,
      lnEps: 1e-6, act: 'gelu_new', norm: 'rmsnorm_plus_one', tiedUnembed: true, embedScale: Math.sqrt(2304), rope: { dims: 256, base: 10000 },
      postNorms: true, attnScale: 256 ** -0.5, attnSoftcap: 50, finalSoftcap: 30, slidingWindow: 4096,
      slidingLayers: Array.from({ length: 13 }, (_, i) => 2 * i),
    },
  },
};

export const gemma3: Architecture = {
  modelType: 'gemma3_text',
  covers: 'Gemma 3 text models',
  parseConfig(raw, file) {
    const f = new ConfigFields(raw, file, 'Gemma 3');
    const cfg = gemmaCommon(f, 'gemma3_text');
    const pattern = f.int('sliding_window_pattern', 6);
    const localBase = f.num('rope_local_base_freq', 10000);
    return {
      ...cfg,
      rope: f.rope(cfg.dHead, { defaultBase: 1000000, kind: 'full_attention' }),
      localRope: f.raw.rope_parameters ? f.rope(cfg.dHead, { kind: 'sliding_attention', defaultBase: localBase }) : { dims: cfg.dHead, base: localBase },
      postNorms: true,
      qkNorm: true,
      attnScale: f.num('query_pre_attn_scalar', 256) ** -0.5,
      attnSoftcap: softcap(f, 'attn_logit_softcapping'),
      finalSoftcap: softcap(f, 'final_logit_softcapping'),
      slidingWindow: f.int('sliding_window', 4096),
      slidingLayers: layerTypes(f, cfg.nLayers) ?? Array.from({ length: cfg.nLayers }, (_, l) => l).filter((l) => (l + 1) % pattern !== 0),
    };
  },
  toHfConfig: (cfg) => ({
    ...sandwichHfConfig(cfg, 'gemma3_text', ['Gemma3ForCausalLM']),
    rope_local_base_freq: cfg.localRope?.base ?? 10000, attn_logit_softcapping: null, final_logit_softcapping: null,
  }),
  weights: (cfg) => decoderWeights(cfg, SANDWICH_NAMES),
  ...GEMMA_FORWARD,
  gguf: decoderGguf('gemma3'),
  presets: {
    tiny: {
      architecture: 'gemma3_text', ...tinyGemma, nLayers: 3, postNorms: true, qkNorm: true, attnScale: 16 ** -0.5,
      rope: { dims: 16, base: 1000000, scaling: { type: 'linear', factor: 8 } }, localRope: { dims: 16, base: 10000 },
      slidingWindow: 4, slidingLayers: [0, 1],
    },
  },
};
