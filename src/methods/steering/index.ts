/**
 * Steering and ablation: ActAdd, CAA and reading vectors, steering during generation, coefficient
 * sweeps (effect against KL cost), directional ablation with its weight-orthogonalized form, and
 * hidden-state safety analysis.
 *
 * @module
 */
export * from './vectors.js';
export * from './apply.js';
export * from './safety.js';
export { residualWriters, orthogonalizedWeights, orthogonalizedModel, saveOrthogonalized } from '../../models/orthogonalize.js';
export type { ResidualWriter } from '../../models/orthogonalize.js';
export { harmfulHarmlessSample } from '../../data/safety.js';
