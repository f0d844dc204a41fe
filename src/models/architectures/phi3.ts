/** Phi-3 (mini): Llama's math with fused `qkv_proj` and `gate_up_proj` weights and a sliding window. */
import type { Architecture } from '../architecture.js';
import { ConfigFields } from './fields.js';
import { DECODER_FORWARD, decoderConfig, decoderGguf, decoderWeights, llamaHfConfig, tinyDecoder } from './llama.js';

const PHI3_NAMES = { qkv: ['self_attn.qkv_proj'], gateUp: ['mlp.gate_up_proj'], ln2: 'post_attention_layernorm' };

export const phi3: Architecture = {
  modelType: 'phi3',
  covers: 'Phi-3 mini',
  parseConfig(raw, file) {
    const f = new ConfigFields(raw, file, 'Phi-3');
    const window = f.optionalNum('sliding_window');
    return { ...decoderConfig(f, 'phi3', { tied: false, eps: 1e-5 }), ...(window ? { slidingWindow: f.int('sliding_window') } : {}) };
  },
  toHfConfig: (cfg) => ({ ...llamaHfConfig(cfg, 'phi3', ['Phi3ForCausalLM']), sliding_window: cfg.slidingWindow ?? null }),
  weights: (cfg) => decoderWeights(cfg, PHI3_NAMES),
  ...DECODER_FORWARD,
  // llama.cpp's phi3 turns its sliding window off: the export says so (GgufLayout.caveats).
  gguf: decoderGguf('phi3'),
  presets: {
    tiny: { architecture: 'phi3', ...tinyDecoder, nKvHeads: 4, slidingWindow: 6 },
    'phi-3-mini': {
      architecture: 'phi3', nLayers: 32, dModel: 3072, nHeads: 32, nKvHeads: 32, dHead: 96, dMlp: 8192, nCtx: 4096, dVocab: 32064,
      lnEps: 1e-5, act: 'silu', norm: 'rmsnorm', tiedUnembed: false, rope: { dims: 96, base: 10000 }, slidingWindow: 2047,
    },
  },
};
