/**
 * The options of activation / attribution patching (`lantern patch`, POST /api/patching) and of
 * causal tracing (`lantern trace`), declared once (see ../options.ts).
 */
import type { MethodFamily } from '../options.js';
import { SWEEPS } from './activation.js';
import { TRACE_KINDS } from './causal-tracing.js';

export const PATCHING_METHODS = ['activation', 'attribution', 'both'] as const;
export type PatchingMethod = (typeof PATCHING_METHODS)[number];

/** Activation and attribution patching's options (`lantern patch`, POST /api/patching), declared once for the CLI, the API and the Workbench. */
export const PATCHING: MethodFamily = {
  name: 'patching', command: 'patch',
  options: [
    { key: 'clean', flag: '--clean', arg: '<text>', type: { kind: 'prompt' }, required: true, help: 'the clean prompt' },
    { key: 'corrupt', flag: '--corrupt', arg: '<text>', type: { kind: 'prompt' }, required: true, help: 'the corrupted prompt (the same number of tokens)' },
    { key: 'answer', flag: '--answer', arg: '<token>', type: { kind: 'text', maxLength: 100 }, required: true, help: "the clean answer, one token (e.g. ' Mary')" },
    { key: 'wrong', flag: '--wrong', arg: '<token>', type: { kind: 'text', maxLength: 100 }, help: 'the wrong answer, one token; the metric is logit(answer) - logit(wrong) (without it: log p(answer))' },
    { key: 'metric', flag: '--metric', arg: '<metric>', type: { kind: 'enum', choices: ['logit-diff', 'logprob'] }, help: 'logit-diff (needs a wrong answer) or logprob (default: logit-diff with a wrong answer, else logprob)' },
    { key: 'sweep', flag: '--sweep', arg: '<sweep>', type: { kind: 'enum', choices: SWEEPS }, default: 'resid', help: 'what to patch' },
    { key: 'byPosition', flag: '--by-position', arg: '', type: { kind: 'boolean' }, appliesTo: { key: 'sweep', values: ['heads', 'pattern'] }, help: 'one patch per position too (pattern: the query position)' },
    { key: 'pos', flag: '--pos', arg: '<n>', type: { kind: 'integer', min: 0 }, help: 'position whose prediction is measured (default: the last)' },
    { key: 'method', flag: '--method', arg: '<method>', type: { kind: 'enum', choices: PATCHING_METHODS }, default: 'activation', help: 'activation (patched runs), attribution (linear approximation: one forward+backward), or both (and their Pearson r)' },
    { key: 'batchSize', flag: '--batch-size', arg: '<n>', type: { kind: 'integer', min: 1, max: 256 }, default: 64, appliesTo: { key: 'method', values: ['activation', 'both'] }, help: 'patched runs per model call' },
    { key: 'igSteps', flag: '--ig-steps', arg: '<n>', type: { kind: 'integer', min: 0, max: 512 }, default: 0, appliesTo: { key: 'method', values: ['attribution', 'both'] }, help: 'average gradients over n embeddings interpolated from the corrupted to the clean prompt (integrated attribution; fixes saturated attention); 0: the gradient at the corrupted run' },
  ],
};

/** Causal tracing's options (`lantern trace`), declared once. */
export const TRACING: MethodFamily = {
  name: 'tracing', command: 'trace',
  options: [
    { key: 'text', flag: '--text', short: '-t', arg: '<text>', type: { kind: 'prompt' }, required: true, help: 'the prompt' },
    { key: 'subject', flag: '--subject', arg: '<text>', type: { kind: 'prompt' }, required: true, help: 'the subject, as it appears in the prompt (its tokens are noised)' },
    { key: 'answer', flag: '--answer', arg: '<token>', type: { kind: 'text', maxLength: 100 }, required: true, help: "the answer whose probability is traced, one token (e.g. ' Paris')" },
    { key: 'noise', flag: '--noise', arg: '<x>', type: { kind: 'number', exclusiveMin: 0 }, default: 3, help: 'noise std as a multiple of the embedding std' },
    { key: 'samples', flag: '--samples', arg: '<n>', type: { kind: 'integer', min: 1 }, default: 10, help: 'noise samples averaged' },
    { key: 'seed', flag: '--seed', arg: '<n>', type: { kind: 'integer', min: 0 }, default: 1, help: 'noise seed' },
    { key: 'window', flag: '--window', arg: '<n>', type: { kind: 'integer', min: 1 }, default: 1, help: 'mlp/attn: restore this many consecutive layers around each layer' },
    { key: 'kinds', flag: '--kinds', arg: '<list>', type: { kind: 'choices', choices: TRACE_KINDS }, default: TRACE_KINDS, help: 'states to restore' },
  ],
};
