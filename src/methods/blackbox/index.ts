/**
 * Model-agnostic explanations over any LanguageModelBackend: SMILE / gSMILE, CELL and m-CELL.
 *
 * @module
 */
export { smile, smileMasks, checkSmileSettings, SMILE_DEFAULTS } from './smile.js';
export type { SmileResult, SmileSample, SmileSettings, SmileOptions } from './smile.js';
export { cell, mcell, checkCellSettings, CELL_DEFAULTS } from './cell.js';
export type { CellResult, CellSettings, CellOptions, Edit, StopReason } from './cell.js';
export { bleuScorer, preferenceScorer, preferencePrompt } from './scorers.js';
export type { ContrastScorer } from './scorers.js';
export { backendInfiller } from './infill.js';
export type { Infiller, BackendInfillerOptions } from './infill.js';
export { modelEmbedder, textDistance } from './embed.js';
export type { TextEmbedder } from './embed.js';
export { wasserstein1, euclidean } from './wasserstein.js';
export { bleu, bleuOfTokens } from './bleu.js';
export type { BleuOptions } from './bleu.js';
export { splitWords, splitChunks, bleuTokens } from './text.js';
export { saveBlackboxResult, loadBlackboxResult, parseBlackboxResult, blackboxToJSON, renderBlackbox, BLACKBOX_FORMAT, BLACKBOX_VERSION } from './result.js';
export type { BlackboxResult } from './result.js';
