/** Lantern's library entry point. */
export { LanternError } from './errors.js';
export { Tensor } from './engine/tensor.js';
export { Graph } from './engine/graph/ir.js';
export { gradients } from './engine/autodiff/grad.js';
export { toOnnx } from './engine/graph/onnx.js';
export { Executor, defaultExecutor } from './engine/runtime/executor.js';
export { loadModel } from './models/load.js';
export { HookedTransformer, objectives } from './models/hooked.js';
export type { Intervention, HookCallback, RunOptions, ObjectiveTerm, ModelInput, RunResult, GradientResult } from './models/hooked.js';
export { ActivationCache } from './models/cache.js';
export { readConfig, parseConfig } from './models/config.js';
export type { ModelConfig } from './models/config.js';
export { resolveModelFolder, hubCacheDir } from './models/hub.js';
export { Tokenizer } from './models/tokenizer.js';
export { writeRandomGpt2, randomGpt2Weights, GPT2_SMALL, TINY_GPT2 } from './models/random.js';
export { readSafetensorsHeader, readFloat32, writeSafetensors, openModelWeights } from './models/safetensors.js';
export { topK } from './models/predictions.js';
