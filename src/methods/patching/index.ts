export { activationPatching, sweepSlots, effectAt, SWEEPS, SWEEP_HOOKS } from './activation.js';
export type { PatchingOptions, PatchingResult, PatchSlot, PatchMetric, Sweep } from './activation.js';
