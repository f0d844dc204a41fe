/**
 * Causal interventions: activation patching sweeps, attribution patching, causal tracing, and clean/corrupted prompt pairs.
 *
 * @module
 */
export { activationPatching, sweepSlots, effectAt, SWEEPS, SWEEP_HOOKS } from './activation.js';
export type { PatchingOptions, PatchingResult, PatchSlot, PatchMetric, Sweep } from './activation.js';
export { attributionPatching, linearAttribution, pearson } from './attribution.js';
export type { AttributionOptions, AttributionResult, LinearAttribution } from './attribution.js';
export { promptPairs, ioiPairs, greaterThanPairs, factualPairs, pairTokens, taskPairs, TASKS, IOI_TEXT_TEMPLATES, FACT_RELATIONS } from './prompts.js';
export type { PromptPair, PairOptions, TokenizedPair, Task } from './prompts.js';
export { causalTrace, traceNoise, traceWindow, embeddingStd, TRACE_KINDS, TRACE_HOOKS } from './causal-tracing.js';
export type { CausalTraceOptions, CausalTraceResult, TraceKind } from './causal-tracing.js';
