export { logitLens, decodeResid, singleToken } from './logit-lens.js';
export type { LogitLensResult, LogitLensOptions, LensCell, Decoded, DecodeOptions } from './logit-lens.js';
