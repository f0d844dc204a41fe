/** Lantern's library entry point. */
export { LanternError } from './errors.js';
export { Tensor } from './engine/tensor.js';
export { Graph } from './engine/graph/ir.js';
export { gradients } from './engine/autodiff/grad.js';
export { toOnnx } from './engine/graph/onnx.js';
export { Executor, defaultExecutor } from './engine/runtime/executor.js';
export { loadModel } from './models/load.js';
export { BUNDLED_MODEL } from './paths.js';
export { HookedTransformer, objectives } from './models/hooked.js';
export type { Intervention, HookCallback, RunOptions, ObjectiveTerm, ModelInput, RunResult, GradientResult, AttentionWeights } from './models/hooked.js';
export { KvCache } from './models/kv-cache.js';
export { ActivationCache } from './models/cache.js';
export { readConfig, parseConfig, architectureFor, architectures, SUPPORTED_ARCHITECTURES } from './models/config.js';
export type { ModelConfig, Rope } from './models/config.js';
export type { Architecture, ModelContext, WeightSpec, GgufLayout } from './models/architecture.js';
export { buildForward, hookNames, weightShapes, readout, OPTIONAL_HOOKS } from './models/forward.js';
export { loadWeights, checkWeights } from './models/weights.js';
export { ATTRIBUTION, ATTRIBUTION_SETTINGS } from './methods/attribution/options.js';
export { PATCHING, TRACING } from './methods/patching/options.js';
export { LENS } from './methods/lens/options.js';
export { CIRCUITS } from './methods/circuits/options.js';
export { checkOptionsApply, optionSchema, parseOption, requestSchema, withDefaults } from './methods/options.js';
export type { MethodFamily, OptionSpec, OptionType } from './methods/options.js';
export { resolveModelFolder, resolveModel, hubCacheDir } from './models/hub.js';
export type { ResolveOptions, ResolvedModel } from './models/hub.js';
export { Tokenizer } from './models/tokenizer.js';
export { chatPrompt, checkMessages } from './models/chat.js';
export type { ChatOptions, ChatPrompt, MessageSpan } from './models/chat.js';
export { writeRandomModel, randomWeights, GPT2_SMALL, TINY_GPT2 } from './models/random.js';
export { readSafetensorsHeader, readFloat32, writeSafetensors, openModelWeights } from './models/safetensors.js';
export { topK } from './models/predictions.js';
export * from './models/planted/index.js';
export { generate, generateBatch, generateStream, samplingDistribution, applyRepetitionPenalty } from './models/generate.js';
// The backends' GenerateOptions and Generation (below) are a backend's view; these are the model's own.
export type { GenerateOptions as ModelGenerateOptions, Generation as ModelGeneration, GenerationChunk, SamplingOptions, FinishReason } from './models/generate.js';
export { Rng } from './rng.js';
export * as attribution from './methods/attribution/index.js';
export * as lens from './methods/lens/index.js';
export * as patching from './methods/patching/index.js';
export * as circuits from './methods/circuits/index.js';
export * as blackbox from './methods/blackbox/index.js';
export * as heads from './methods/heads/index.js';
export * as neurons from './methods/neurons/index.js';
export * as features from './methods/features/index.js';
export * as representations from './methods/representations/index.js';
export * as steering from './methods/steering/index.js';
export * as causal from './methods/causal-abstraction/index.js';
export * as sae from './methods/sae/index.js';
export * as evaluation from './methods/evaluation/index.js';
export * as jobs from './engine/jobs/index.js';
export { HttpBackend, LanternBackend, listModels, openBackend } from './backends/index.js';
export type {
  LanguageModelBackend, Prompt, Continuation, ContinuationScore, Generation, GenerateOptions, Usage, ScoreOptions, HttpBackendOptions, HttpEvent, HttpApi,
  OpenBackendOptions, ControlVectorSpec,
} from './backends/index.js';
export { exportGguf } from './backends/gguf-export.js';
export { readControlVector, writeControlVector } from './backends/control-vector.js';
export type { ControlVector } from './backends/control-vector.js';
// gguf.ts loads node-llama-cpp only when a model is opened.
export { GgufBackend } from './backends/gguf.js';
export type { GgufOptions } from './backends/gguf.js';
export { openAICompat, serveOpenAI, plainChatTemplate } from './interfaces/server/openai-compat.js';
export type { OpenAICompatOptions, ServeOptions, RunningServer, ChatMessage } from './interfaces/server/openai-compat.js';
export * as toys from './methods/toys/index.js';
export * as sweep from './methods/sweep/index.js';
export { appendAdamW, adamwFeeds, adamwState } from './train/adamw.js';
export type { AdamWSettings } from './train/adamw.js';
