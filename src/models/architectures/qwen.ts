/** Qwen 2 / 2.5 (Llama with q/k/v biases) and Qwen 3 dense (per-head q/k RMSNorm, explicit head_dim). */
import type { Architecture } from '../architecture.js';
import { ConfigFields } from './fields.js';
import { DECODER_FORWARD, decoderConfig, decoderGguf, decoderWeights, llamaHfConfig, tinyDecoder } from './llama.js';

const noSlidingWindow = (f: ConfigFields) => f.reject([['use_sliding_window', (v) => v === true, "Qwen's sliding window over the upper layers is not implemented"]]);

export const qwen2: Architecture = {
  modelType: 'qwen2',
  covers: 'Qwen2, Qwen2.5',
  parseConfig(raw, file) {
    const f = new ConfigFields(raw, file, 'Qwen2');
    noSlidingWindow(f);
    // Qwen 2 has q/k/v biases and never an output bias, whatever attention_bias says.
    const { oBias: _none, ...cfg } = decoderConfig(f, 'qwen2', { tied: false });
    return { ...cfg, qkvBias: true };
  },
  toHfConfig: (cfg) => ({ ...llamaHfConfig(cfg, 'qwen2', ['Qwen2ForCausalLM']), use_sliding_window: false, attention_bias: undefined }),
  weights: (cfg) => decoderWeights(cfg),
  ...DECODER_FORWARD,
  gguf: decoderGguf('qwen2'),
  presets: {
    tiny: { architecture: 'qwen2', ...tinyDecoder, qkvBias: true, tiedUnembed: true },
    'qwen2.5-0.5b': {
      architecture: 'qwen2', nLayers: 24, dModel: 896, nHeads: 14, nKvHeads: 2, dHead: 64, dMlp: 4864, nCtx: 32768, dVocab: 151936,
      lnEps: 1e-6, act: 'silu', norm: 'rmsnorm', tiedUnembed: true, rope: { dims: 64, base: 1000000 }, qkvBias: true,
    },
  },
};

export const qwen3: Architecture = {
  modelType: 'qwen3',
  covers: 'Qwen3 dense',
  parseConfig(raw, file) {
    const f = new ConfigFields(raw, file, 'Qwen3');
    noSlidingWindow(f);
    return { ...decoderConfig(f, 'qwen3', { tied: false }), qkNorm: true };
  },
  toHfConfig: (cfg) => ({ ...llamaHfConfig(cfg, 'qwen3', ['Qwen3ForCausalLM']), use_sliding_window: false }),
  weights: (cfg) => decoderWeights(cfg),
  ...DECODER_FORWARD,
  gguf: decoderGguf('qwen3'),
  presets: {
    // head_dim 24 on d_model 64: Qwen 3's head_dim is its own field, not d_model / heads.
    tiny: { architecture: 'qwen3', ...tinyDecoder, dHead: 24, rope: { dims: 24, base: 1000000 }, qkNorm: true },
    'qwen3-0.6b': {
      architecture: 'qwen3', nLayers: 28, dModel: 1024, nHeads: 16, nKvHeads: 8, dHead: 128, dMlp: 3072, nCtx: 40960, dVocab: 151936,
      lnEps: 1e-6, act: 'silu', norm: 'rmsnorm', tiedUnembed: true, rope: { dims: 128, base: 1000000 }, qkNorm: true,
    },
  },
};
