/**
 * Lenses: decode the residual stream at every layer as a next-token distribution (logit lens, tuned lens).
 *
 * @module
 */
export { logitLens, decodeResid, singleToken } from './logit-lens.js';
export type { LogitLensResult, LogitLensOptions, LensCell, Decoded, DecodeOptions } from './logit-lens.js';
export { trainTunedLens, evaluateLens, collectResiduals, saveTunedLens, loadTunedLens, identityLens, translate, translateStack, tunedLensPath, TUNED_LENS_FILE } from './tuned-lens.js';
export type { TunedLens, Residuals, LensEvaluation, TrainLensOptions } from './tuned-lens.js';
