/**
 * Features: dashboards over a corpus, automated explanation (explain → simulate → score,
 * detection, fuzzing) and SASC, for any feature source (MLP neurons now, sparse autoencoders
 * through the same interface).
 *
 * @module
 */
export * from './source.js';
export * from './dashboards.js';
export * from './store.js';
export * from './explain.js';
export * from './sasc.js';
export * from './html.js';
export * from './explain-dashboard.js';
export * from './on-text.js';
export * from './open.js';
export * from './dashboards-job.js';
export * from './explain-job.js';
