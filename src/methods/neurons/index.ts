/**
 * Neuron analysis: statistics and labels over a corpus, and N2G explanations.
 *
 * @module
 */
export * from './stats.js';
export * from './n2g.js';
export * from './job.js';
