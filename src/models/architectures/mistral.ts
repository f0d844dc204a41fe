/** Mistral 7B (v0.1–v0.3): Llama with an optional sliding attention window on every layer. */
import type { Architecture } from '../architecture.js';
import { ConfigFields } from './fields.js';
import { DECODER_FORWARD, decoderConfig, decoderGguf, decoderWeights, llama, llamaHfConfig, tinyDecoder } from './llama.js';

export const mistral: Architecture = {
  modelType: 'mistral',
  covers: 'Mistral 7B v0.1–v0.3',
  parseConfig(raw, file) {
    const f = new ConfigFields(raw, file, 'Mistral');
    const window = f.optionalNum('sliding_window');
    return { ...decoderConfig(f, 'mistral', { tied: false }), ...(window ? { slidingWindow: f.int('sliding_window') } : {}) };
  },
  toHfConfig: (cfg) => ({ ...llamaHfConfig(cfg, 'mistral', ['MistralForCausalLM']), sliding_window: cfg.slidingWindow ?? null }),
  weights: (cfg) => decoderWeights(cfg),
  ...DECODER_FORWARD,
  // llama.cpp reads Mistral as 'llama', which has no sliding window: the export says so (GgufLayout.caveats).
  gguf: decoderGguf('llama'),
  presets: {
    tiny: { architecture: 'mistral', ...tinyDecoder, slidingWindow: 5 },
    'mistral-7b': { ...llama.presets['llama-3.2-1b'], architecture: 'mistral', nLayers: 32, dModel: 4096, nHeads: 32, nKvHeads: 8, dHead: 128, dMlp: 14336, nCtx: 32768, dVocab: 32768, tiedUnembed: false, rope: { dims: 128, base: 1000000 } },
  },
};
