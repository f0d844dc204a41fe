/**
 * Analyses across checkpoints: one scalar analysis (or a few, e.g. one per layer) run on each
 * revision of a Hub model (Pythia's step1000 … step143000 branches) or on each checkpoint of a
 * toy training run, giving curves over training.
 *
 * @module
 */
import { LanternError } from '../../errors.js';
import { loadModel } from '../../models/load.js';
import type { HookedTransformer } from '../../models/hooked.js';
import { PATTERN_DETECTORS, PatternDetector, patternScores, repeatedRandomSequences } from '../heads/detectors.js';
import { collectResiduals, evaluateLens, identityLens } from '../lens/tuned-lens.js';
import { analyseGrokking, loadGrokkingParams, readGrokkingRun } from '../toys/grokking.js';
import { builtinDataset, GENERATORS } from '../../data/statements.js';
import { sweepLayers } from '../representations/probes/index.js';
import path from 'node:path';

/** Analyses of a language model, by name (`probe:<dataset>` for any built-in labelled dataset). */
export const MODEL_ANALYSES = ['loss', 'lens-kl', ...PATTERN_DETECTORS.map((d) => `head:${d}`), 'probe:<dataset>'] as const;
/** Subjects of a built-in dataset a `probe:<dataset>` analysis draws (a quarter held out). */
export const PROBE_SUBJECTS = 100;
/** Analyses of a grokking run's checkpoints, by name. */
export const RUN_ANALYSES = ['train-loss', 'test-loss', 'test-accuracy', 'restricted-loss', 'excluded-loss', 'key-share'] as const;

/** One revision's values: series name -> value. */
export interface SweepPoint {
  revision: string;
  /** The training step, from a `step<N>` revision name or a run's checkpoint. */
  step: number | null;
  /** The Hub commit the revision resolved to. */
  commit?: string;
  values: Record<string, number>;
}

/** A sweep's result, reproducible from its settings and seed. */
export interface SweepResult {
  method: 'sweep';
  source: string;
  analysis: string;
  settings: Record<string, unknown>;
  seed: number;
  points: SweepPoint[];
}

/** Which data a model analysis reads: repeated random sequences (seeded) or given token rows. */
export interface SweepData {
  /** Token rows; default: `sequences` rows of a random half repeated (the induction detector needs this form). */
  rows?: number[][];
  sequences?: number;
  half?: number;
  seed?: number;
}

/** Parses `head:<detector>`, `head:<detector>:<layer>.<head>` and `probe:<dataset>`; other names pass through. */
function parseAnalysis(name: string): { kind: string; detector?: PatternDetector; head?: [number, number]; dataset?: string } {
  const probe = /^probe:(.*)$/.exec(name);
  if (probe) {
    if (!GENERATORS[probe[1]]) throw new LanternError(`unknown built-in dataset '${probe[1]}' for a probe sweep; choose ${Object.keys(GENERATORS).map((d) => `probe:${d}`).join(', ')}`);
    return { kind: 'probe', dataset: probe[1] };
  }
  const m = /^head:([a-z-]+)(?::(\d+)\.(\d+))?$/.exec(name);
  if (m) {
    if (!(PATTERN_DETECTORS as readonly string[]).includes(m[1])) throw new LanternError(`unknown head detector '${m[1]}'; choose ${PATTERN_DETECTORS.join(', ')}`);
    return { kind: 'head', detector: m[1] as PatternDetector, head: m[2] ? [Number(m[2]), Number(m[3])] : undefined };
  }
  if (!(MODEL_ANALYSES as readonly string[]).includes(name)) {
    throw new LanternError(`unknown analysis '${name}'; choose ${MODEL_ANALYSES.join(', ')} (head:<detector>:<layer>.<head> for one head)`);
  }
  return { kind: name };
}

/** Checks an analysis name before any model is loaded. */
export function checkModelAnalysis(name: string): void {
  parseAnalysis(name);
}

/** Mean next-token cross-entropy (nats) over every predicted position of `rows`. */
async function meanLoss(model: HookedTransformer, rows: number[][]): Promise<number> {
  let total = 0;
  let count = 0;
  for (const r of rows) {
    const { logprobs } = await model.tokenLogprobs(r);
    for (const lp of logprobs) { total -= lp; count++; }
  }
  return total / count;
}

/**
 * The analysis `name` of one loaded model on `rows`. `probe:<dataset>` instead reads
 * {@link PROBE_SUBJECTS} subjects of a built-in dataset drawn with `seed` and reports a logistic
 * probe's held-out accuracy on the residual stream after each block.
 */
export async function analyseModel(model: HookedTransformer, name: string, rows: number[][], repeat?: { half: number; offset: number }, seed = 0): Promise<Record<string, number>> {
  const a = parseAnalysis(name);
  if (a.kind === 'loss') return { loss: await meanLoss(model, rows) };
  if (a.kind === 'probe') {
    const items = builtinDataset(a.dataset!, { seed, limit: PROBE_SUBJECTS }).examples;
    const r = await sweepLayers(model, items, { kind: 'logistic', seed, dataset: a.dataset });
    return Object.fromEntries(r.layers.map((l, i) => [`accuracy L${i}`, l.test.accuracy]));
  }
  if (a.kind === 'lens-kl') {
    const flat = rows.flat();
    const res = await collectResiduals(model, flat, { seq: rows[0].length });
    const ev = await evaluateLens(model, identityLens(model.cfg.nLayers, model.cfg.dModel), res);
    return Object.fromEntries(ev.layers.map((l, i) => [`KL ${l}`, ev.logitLens.kl[i]]));
  }
  const { scores } = await patternScores(model, rows, { repeat });
  const grid = scores[a.detector!];
  if (a.head) {
    const [l, h] = a.head;
    if (l >= model.cfg.nLayers || h >= model.cfg.nHeads) throw new LanternError(`head ${l}.${h} is outside the model's ${model.cfg.nLayers} layers × ${model.cfg.nHeads} heads`);
    return { [`${a.detector} ${l}.${h}`]: grid[l][h] };
  }
  let best = { v: -Infinity, l: 0, h: 0 };
  grid.forEach((row, l) => row.forEach((v, h) => { if (v > best.v) best = { v, l, h }; }));
  return { [`${a.detector} (best head)`]: best.v };
}

const stepOf = (revision: string) => {
  const m = /step(\d+)/.exec(revision);
  return m ? Number(m[1]) : null;
};

/**
 * Runs `analysis` on every revision of Hub model `model` (loaded one at a time, freed after).
 * The data are the same for every revision: drawn once from the first revision's vocabulary.
 */
export async function sweepRevisions(
  model: string, revisions: string[], analysis: string, data: SweepData = {},
  onRevision?: (revision: string, i: number, n: number) => void,
): Promise<SweepResult> {
  checkModelAnalysis(analysis);
  if (revisions.length === 0) throw new LanternError('give at least one revision');
  const seed = data.seed ?? 0;
  let rows = data.rows;
  let repeat: { half: number; offset: number } | undefined;
  const points: SweepPoint[] = [];
  for (const [i, revision] of revisions.entries()) {
    onRevision?.(revision, i, revisions.length);
    const m = await loadModel(model, { revision, progress: false });
    try {
      if (!rows) {
        const r = repeatedRandomSequences(m, { n: data.sequences ?? 16, half: data.half ?? 16, seed });
        rows = r.tokens;
        repeat = { half: r.half, offset: r.offset };
      }
      points.push({ revision, step: stepOf(revision), ...(m.hub ? { commit: m.hub.commit } : {}), values: await analyseModel(m, analysis, rows, repeat, seed) });
    } finally {
      await m.executor.dropWeights(m.weights);
    }
  }
  return {
    method: 'sweep', source: model, analysis, seed, points,
    settings: data.rows ? { rows: data.rows.length, tokens: data.rows.reduce((a, r) => a + r.length, 0) } : { data: 'repeated random sequences', sequences: data.sequences ?? 16, half: data.half ?? 16 },
  };
}

/** Runs a grokking-run analysis over the run folder's checkpoints (key frequencies: the final model's). */
export async function sweepRun(folder: string, analysis: string, onCheckpoint?: (step: number, i: number, n: number) => void): Promise<SweepResult> {
  if (!(RUN_ANALYSES as readonly string[]).includes(analysis)) throw new LanternError(`unknown run analysis '${analysis}'; choose ${RUN_ANALYSES.join(', ')}`);
  const run = readGrokkingRun(folder);
  const s = run.settings;
  if (run.checkpoints.length === 0) throw new LanternError(`${folder}: the run saved no checkpoints`);
  const final = await analyseGrokking(loadGrokkingParams(path.join(folder, 'final.safetensors'), s), s);
  const points: SweepPoint[] = [];
  for (const [i, c] of run.checkpoints.entries()) {
    onCheckpoint?.(c.step, i, run.checkpoints.length);
    const a = await analyseGrokking(loadGrokkingParams(path.join(folder, c.file), s), s, final.keyFrequencies);
    const value = { 'train-loss': a.trainLoss, 'test-loss': a.testLoss, 'test-accuracy': a.testAccuracy, 'restricted-loss': a.restrictedLoss, 'excluded-loss': a.excludedLoss, 'key-share': a.keyShare }[analysis as (typeof RUN_ANALYSES)[number]];
    points.push({ revision: c.file, step: c.step, values: { [analysis]: value } });
  }
  return { method: 'sweep', source: folder, analysis, settings: { run: s, keyFrequencies: final.keyFrequencies }, seed: s.seed, points };
}
