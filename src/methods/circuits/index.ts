/**
 * Circuits on the graph of heads and MLPs: path patching, ACDC and edge attribution patching over one edge-masked run of the model.
 *
 * @module
 */
export { EdgeSpace, EdgeRunner, edgeGraph, targetLogprobs } from './graph.js';
export type { EdgeExample, EdgeTarget, EdgeMetric } from './graph.js';
export { taskExamples, inductionExamples, prepare, CIRCUIT_TASKS, TASK_METRIC } from './data.js';
export type { CircuitTask, PreparedData } from './data.js';
export { pathPatching, pathPatchingSweep, resolvePath } from './path-patching.js';
export type { PathPatchingOptions, PathPatchingResult, PathEffect } from './path-patching.js';
export { acdc, eap, pruneDangling, receiverGroups, IG_PATHS } from './discovery.js';
export type { Circuit, CircuitEdge, DiscoveryOptions, EapOptions, IgPath } from './discovery.js';
export { circuitSvg, circuitHtml } from './render.js';
