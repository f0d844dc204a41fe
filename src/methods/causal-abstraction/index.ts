/**
 * Causal abstraction: interchange interventions on whole activations or subspaces, interchange
 * intervention accuracy against a high-level causal model, distributed alignment search (DAS and
 * Boundless DAS) with a search over locations, and causal scrubbing.
 *
 * @module
 */
export { interchange, interchangeVector, orthonormalRows } from './interchange.js';
export type { Subspace, InterchangeIntervention, InterchangePair, InterchangeOptions, InterchangeResult } from './interchange.js';
export { CausalModel, causalModelFromJson, CAUSAL_OPS } from './causal-model.js';
export type { CausalValue, CausalInput, CausalVariable, CausalModelSpec, CausalModelJson, CausalOp } from './causal-model.js';
export { interchangeAccuracy, counterfactualData, sampleExamples } from './iia.js';
export type { AlignmentTask, CounterfactualExample, IiaOptions, IiaResult } from './iia.js';
export { das, dasGradient, checkLocation } from './das.js';
export type { DasLocation, DasOptions, DasResult } from './das.js';
export { rotate, orthogonalityError } from './rotation.js';
export type { RotationParams, RotationPass } from './rotation.js';
export { causalScrub, checkHypothesis } from './scrubbing.js';
export type { Hypothesis, HypothesisNode, ScrubOptions, ScrubResult } from './scrubbing.js';
export { ioiTask, ioiExamples, inductionTask } from './tasks.js';
export { dasSearch, saveSubspace, loadSubspace, iiaHeatmapSvg, iiaHeatmapHtml } from './search.js';
export type { DasSearchOptions, DasSearchResult } from './search.js';
export { alignmentTaskFromJson } from './task-json.js';
export type { AlignmentTaskJson } from './task-json.js';
export { priceTaggingTask, priceTaggingInputs, priceTaggingTokens, trainPriceTagger } from './price-tagging.js';
export type { PriceTagger, PriceTaggerAlignment, PriceTaggerOptions } from './price-tagging.js';
