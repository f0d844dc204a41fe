/**
 * Representations: labelled data, activation harvesting and linear probes.
 *
 * @module
 */
export * from './data.js';
export * from './activations.js';
export * from './activations-job.js';
export * from './probes/index.js';
export { capitals, cities, comparisons, sentiment, statementPairs, sentimentPromptPairs, builtinDataset, GENERATORS } from '../../data/statements.js';
export type { GeneratorOptions } from '../../data/statements.js';
