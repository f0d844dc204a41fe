/**
 * Dataset-scale jobs: shards by example range, each written once with its content hash, run
 * in-process or by workers on a BullMQ queue, then merged.
 *
 * @module
 */
export * from './store.js';
export * from './run.js';
export * from './queue.js';
export * from './table.js';
