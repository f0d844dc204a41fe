/** The architecture registry, keyed by config.json's `model_type`. */
import { LanternError } from '../../errors.js';
import type { Architecture } from '../architecture.js';
import { gpt2 } from './gpt2.js';
import { llama } from './llama.js';
import { mistral } from './mistral.js';
import { qwen2, qwen3 } from './qwen.js';
import { gemma, gemma2, gemma3 } from './gemma.js';
import { gptNeox } from './gpt-neox.js';
import { phi3 } from './phi3.js';

const REGISTRY = new Map<string, Architecture>(
  [gpt2, llama, mistral, qwen2, qwen3, gemma, gemma2, gemma3, gptNeox, phi3].map((a) => [a.modelType, a]),
);

/** Every `model_type` Lantern loads. */
export const SUPPORTED_ARCHITECTURES = [...REGISTRY.keys()];

/** Every registered architecture. */
export function architectures(): Architecture[] {
  return [...REGISTRY.values()];
}

/** The architecture for a `model_type`, or an error naming the supported ones. */
export function architectureFor(modelType: string, file = 'config.json'): Architecture {
  const arch = REGISTRY.get(modelType);
  if (!arch) {
    throw new LanternError(`${file}: unsupported architecture model_type=${JSON.stringify(modelType)}; supported architectures: ${SUPPORTED_ARCHITECTURES.join(', ')}`);
  }
  return arch;
}
