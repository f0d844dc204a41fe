/**
 * Sparse autoencoders: SAELens-compatible architectures, training, loading, splicing into runs, attribution and evaluation.
 *
 * @module
 */
export { Sae, saeForward, saeParamShapes, checkSaeConfig, SAE_ARCHITECTURES, NORMALIZATIONS } from './sae.js';
export type { SaeConfig, SaeWeights, SaeArchitecture, ActivationNormalization, SaeOutputName } from './sae.js';
export { SaeTrainer, defaultTrainConfig, saeLearningRate, saeLossGraph, saeTrainingRows } from './train.js';
export type { SaeTrainConfig, SaeLogEntry, SaeTrainState } from './train.js';
export { ShuffleBuffer, SyntheticSource, ModelSource, windowActivations } from './source.js';
export { saeHarvestJob, saeHarvestAnalysis, saeHarvestContext, saeHarvestSize, harvestForwards, HarvestedSource } from './harvest-job.js';
export type { SaeHarvestSettings, SaeHarvestContext } from './harvest-job.js';
export type { ActivationSource, ActivationChunk, ModelSourceOptions } from './source.js';
export { loadSae, saveSae, parseSaeLensConfig, saeLensConfig, readNpz } from './io.js';
export type { LoadSaeOptions, LoadedSae } from './io.js';
export { runWithSaes, spliceCallbacks, steeringIntervention, featureAttribution, checkSaeFits, SAE_HOOKS } from './splice.js';
export type { SaeSplice, FeatureIntervention, FeatureAttribution } from './splice.js';
export { evaluateSae } from './metrics.js';
export type { EvaluateOptions, SaeEvaluation } from './metrics.js';
export { asFeatureSource } from './feature-source.js';
export type { FeatureSource } from './feature-source.js';
