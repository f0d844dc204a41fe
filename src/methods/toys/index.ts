/**
 * Toy models whose answers are known: superposition (Elhage et al., 2022), grokking modular
 * addition (Nanda et al., 2023) and universality on group composition (Chughtai et al., 2023),
 * each trained with Lantern's own graph, autodiff and AdamW.
 *
 * @module
 */
export * from './superposition.js';
export * from './grokking.js';
export * from './fourier.js';
export * from './universality.js';
export * from './plots.js';
export { ToyTrainer } from './fit.js';
export type { ToyOptimizer, ToyLossBuilder } from './fit.js';
