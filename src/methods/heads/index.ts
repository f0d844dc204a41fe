/**
 * Attention-head analysis: detector scores for every layer x head, OV/QK circuits and
 * composition scores. `analyzeHeads` runs the detectors asked for and returns one saveable result.
 *
 * @module
 */
import { createHash } from 'node:crypto';
import { LanternError, nearest } from '../../errors.js';
import type { HookedTransformer } from '../../models/hooked.js';
import { ModelCircuits } from './circuits.js';
import {
  copySuppressionAblation, HeadGrid, IoiPrompt, PatternDetector, nameMoverScores, ordinalTokens, ovTokenScores, patternScores, PATTERN_DETECTORS,
  repeatedRandomSequences, successorScores,
} from './detectors.js';
import { ioiPromptsFor } from './ioi.js';

export * from './circuits.js';
export * from './detectors.js';
export { valueOutputNorms } from './value-norms.js';
export { ioiPromptsFor } from './ioi.js';

/** Names of every head detector {@link analyzeHeads} can run (see {@link DETECTOR_DESCRIPTIONS} for what each scores). */
export const HEAD_DETECTORS = [
  ...PATTERN_DETECTORS, 'successor', 'copying', 'ov-copy', 'ov-suppression', 'copy-suppression', 'name-mover',
] as const;
/** The name of one head detector, one of {@link HEAD_DETECTORS}. */
export type HeadDetector = (typeof HEAD_DETECTORS)[number];

/** What each detector's score means, for reports. */
export const DETECTOR_DESCRIPTIONS: Record<HeadDetector, string> = {
  'previous-token': 'mean attention from each position to the one before it',
  'duplicate-token': 'mean attention from a repeated token to its earlier occurrences',
  induction: 'on repeated random sequences: mean attention to the token after the earlier copy of the current token',
  successor: 'fraction of ordinal-sequence items (digits, numbers, days, months, letters) whose full OV circuit ranks the next item first',
  copying: 'eigenvalue copying score of the full OV circuit, sum(λ)/sum(|λ|) in [-1, 1]',
  'ov-copy': "fraction of pool tokens among the top 5 of their own full-OV row (the head raises the token it attends to)",
  'ov-suppression': 'fraction of pool tokens among the bottom 5 of their own full-OV row, and lowered (negative copying)',
  'copy-suppression': 'mean rise of the logits of earlier tokens (less the mean rise) when the head is zero-ablated',
  'name-mover': "on IOI prompts: attention from the end to the indirect object, where the head's direct effect favours it (else 0)",
};

/** Detectors run when none are named: everything but the one-run-per-head ablation. */
export const DEFAULT_HEAD_DETECTORS: HeadDetector[] = HEAD_DETECTORS.filter((d) => d !== 'copy-suppression');

/** Options for {@link analyzeHeads}: which detectors, and the data they run on. */
export interface HeadAnalysisOptions {
  /** Detectors to run (names from {@link HEAD_DETECTORS}); default {@link DEFAULT_HEAD_DETECTORS}. */
  detectors?: readonly string[];
  /** Repeated random sequences: how many, and the length of each half. */
  sequences?: number;
  half?: number;
  /** Token ids to draw random sequences (and the OV token scores) from (default: the whole vocabulary). */
  pool?: number[];
  /** Token rows for the previous- and duplicate-token detectors instead of the random sequences. */
  rows?: number[][];
  /** IOI prompts for the name-mover detector (default: 50 built for the model's vocabulary). */
  ioi?: IoiPrompt[];
  /** Seed for the random sequences and IOI prompts (default 0). */
  seed?: number;
  /** Prompts per forward pass (default 8). */
  batchSize?: number;
  /** Called as work advances: the stage ('patterns', 'copying', 'ablations'), units done, and units in all. */
  progress?: (stage: string, done: number, total: number) => void;
}

/**
 * The result of {@link analyzeHeads}, ready to save as JSON: a layers × heads grid of scores per
 * detector, with the settings and a hash of the data they came from.
 */
export interface HeadAnalysis {
  /** The model's source (folder or Hub id). */
  model: string;
  method: 'heads';
  settings: { detectors: HeadDetector[]; sequences: number; half: number; pool: string; seed: number; batchSize: number; givenRows: boolean; ioiPrompts: number };
  /** sha256 (first 16 hex digits) of every token row the detectors read. */
  dataHash: string;
  layers: number;
  heads: number;
  scores: Partial<Record<HeadDetector, HeadGrid>>;
  /** Default detectors this model cannot run (no ordinal sequence or IOI name in its vocabulary), and why. */
  skipped: Partial<Record<HeadDetector, string>>;
  descriptions: Partial<Record<HeadDetector, string>>;
}

/** Checks detector names against {@link HEAD_DETECTORS} (suggesting the nearest on a typo) and returns them without duplicates. */
export function checkDetectors(names: readonly string[]): HeadDetector[] {
  for (const d of names) {
    if (!(HEAD_DETECTORS as readonly string[]).includes(d)) {
      throw new LanternError(`unknown head detector '${d}'; did you mean ${nearest(d, HEAD_DETECTORS).map((n) => `'${n}'`).join(', ')}? detectors: ${HEAD_DETECTORS.join(', ')}`);
    }
  }
  return [...new Set(names)] as HeadDetector[];
}

function hashRows(parts: number[][][]): string {
  const h = createHash('sha256');
  for (const rows of parts) for (const r of rows) h.update(Int32Array.from(r)).update('\n');
  return h.digest('hex').slice(0, 16);
}

/** Runs the detectors asked for on every head. Attention patterns are cached once for all heads and all pattern detectors. */
export async function analyzeHeads(model: HookedTransformer, opts: HeadAnalysisOptions = {}): Promise<HeadAnalysis> {
  let detectors = checkDetectors(opts.detectors ?? DEFAULT_HEAD_DETECTORS);
  const skipped: HeadAnalysis['skipped'] = {};
  // A default detector the vocabulary cannot feed is skipped (and said so); one asked for by name fails.
  const feasible = (d: HeadDetector, check: () => unknown) => {
    if (!detectors.includes(d)) return;
    try {
      check();
    } catch (e) {
      if (opts.detectors || !(e instanceof LanternError)) throw e;
      skipped[d] = e.message;
      detectors = detectors.filter((x) => x !== d);
    }
  };
  const ordinals = model.tokenizer ? ordinalTokens(model) : [];
  feasible('successor', () => {
    if (ordinals.length === 0) throw new LanternError('no ordinal sequence (digits, numbers, days, months, letters) is made of single tokens of this model');
  });
  let ioi = opts.ioi;
  feasible('name-mover', () => (ioi ??= ioiPromptsFor(model, 50, opts.seed ?? 0)));
  const seed = opts.seed ?? 0;
  const batchSize = opts.batchSize ?? 8;
  const seqs = repeatedRandomSequences(model, { n: opts.sequences ?? 20, half: opts.half, pool: opts.pool, seed });
  const scores: HeadAnalysis['scores'] = {};
  const hashed: number[][][] = [seqs.tokens];
  const wantsPattern = detectors.filter((d): d is PatternDetector => (PATTERN_DETECTORS as readonly string[]).includes(d));
  if (wantsPattern.length) {
    const progress = (done: number, total: number) => opts.progress?.('patterns', done, total);
    const onRandom = await patternScores(model, seqs.tokens, { batchSize, repeat: seqs, onBatch: progress });
    const onRows = opts.rows ? await patternScores(model, opts.rows, { batchSize, onBatch: progress }) : undefined;
    if (opts.rows) hashed.push(opts.rows);
    for (const d of wantsPattern) scores[d] = (d !== 'induction' && onRows ? onRows : onRandom).scores[d];
  }
  const needsCircuits = detectors.some((d) => ['successor', 'copying', 'ov-copy', 'ov-suppression', 'name-mover'].includes(d));
  const circuits = needsCircuits ? await ModelCircuits.read(model) : undefined;
  const { nLayers: L, nHeads: H } = model.cfg;
  const pool = opts.pool ?? Array.from({ length: Math.min(model.cfg.dVocab, 2000) }, (_, i) => i);
  if (detectors.includes('successor')) scores.successor = successorScores(circuits!, ordinals).scores;
  if (detectors.includes('copying')) {
    scores.copying = Array.from({ length: L }, (_, l) => Array.from({ length: H }, (_, h) => {
      opts.progress?.('copying', l * H + h + 1, L * H);
      return circuits!.copyingScore({ layer: l, head: h });
    }));
  }
  if (detectors.includes('ov-copy')) scores['ov-copy'] = ovTokenScores(circuits!, pool, { sign: 1 });
  if (detectors.includes('ov-suppression')) scores['ov-suppression'] = ovTokenScores(circuits!, pool, { sign: -1 });
  const rows = opts.rows ?? seqs.tokens;
  if (detectors.includes('copy-suppression')) {
    scores['copy-suppression'] = await copySuppressionAblation(model, rows, { onHead: (d, t) => opts.progress?.('ablations', d, t) });
  }
  let ioiCount = 0;
  if (detectors.includes('name-mover')) {
    ioiCount = ioi!.length;
    hashed.push(ioi!.map((p) => p.tokens));
    scores['name-mover'] = (await nameMoverScores(model, ioi!, circuits!)).score;
  }
  return {
    model: model.source, method: 'heads',
    settings: {
      detectors, sequences: seqs.tokens.length, half: seqs.half, pool: opts.pool ? `${opts.pool.length} given tokens` : `token ids 0..${pool.length - 1} (OV scores), the whole vocabulary (sequences)`,
      seed, batchSize, givenRows: Boolean(opts.rows), ioiPrompts: ioiCount,
    },
    dataHash: hashRows(hashed),
    layers: L, heads: H,
    scores,
    skipped,
    descriptions: Object.fromEntries(detectors.map((d) => [d, DETECTOR_DESCRIPTIONS[d]])),
  };
}

/** The `k` highest-scoring heads of a grid, best first. */
export function topHeads(grid: HeadGrid, k = 5): { layer: number; head: number; score: number }[] {
  return grid.flatMap((row, layer) => row.map((score, head) => ({ layer, head, score }))).sort((a, b) => b.score - a.score).slice(0, k);
}
