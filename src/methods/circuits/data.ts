/**
 * Task data for edge-level methods: clean/corrupted examples with their targets, the corrupted
 * (and clean) activations of every sender, and the clean next-token distributions — everything
 * path patching, ACDC and EAP compare against, computed once.
 */
import { LanternError, nearest } from '../../errors.js';
import type { HookedTransformer } from '../../models/hooked.js';
import { inductionPrompts } from '../../models/planted/induction.js';
import { LETTER_IDS } from '../../models/planted/common.js';
import { Rng } from '../../rng.js';
import { taskPairs } from '../patching/prompts.js';
import { EdgeExample, EdgeMetric, EdgeRunner, EdgeTarget, targetLogprobs } from './graph.js';

/** The tasks circuit discovery has prompts for. */
export const CIRCUIT_TASKS = ['ioi', 'induction', 'greater-than', 'factual'] as const;
/** One of {@link CIRCUIT_TASKS}. */
export type CircuitTask = (typeof CIRCUIT_TASKS)[number];

/** The metric each task is read with: the logit difference where there is a foil, else log p(answer). */
export const TASK_METRIC: Record<CircuitTask, EdgeMetric> = { ioi: 'logit-diff', induction: 'logprob', 'greater-than': 'logit-diff', factual: 'logit-diff' };

/**
 * Induction examples: a random letter sequence repeated, [s, s]; the corruption replaces the first
 * half by letters that do not occur in s, so the second half has nothing to copy from. Targets:
 * each second-half position predicts the letter after its earlier copy.
 */
export function inductionExamples(n: number, opts: { half?: number; seed?: number } = {}): EdgeExample[] {
  const half = opts.half ?? 10;
  const rng = new Rng(((opts.seed ?? 0) ^ 0x27d4eb2f) >>> 0);
  return inductionPrompts(n, { half, seed: opts.seed ?? 0 }).map((p) => {
    const s = p.tokens.slice(0, half);
    const rest = LETTER_IDS.filter((t) => !s.includes(t));
    for (let i = 0; i < half; i++) {
      const j = i + rng.int(rest.length - i);
      [rest[i], rest[j]] = [rest[j], rest[i]];
    }
    return { clean: p.tokens, corrupt: [...rest.slice(0, half), ...s], targets: p.targets.map((t) => ({ pos: t.pos, answer: t.answer })) };
  });
}

/** `n` examples of a task for `model`. */
export function taskExamples(model: HookedTransformer, task: string, n: number, seed = 0): EdgeExample[] {
  if (!(CIRCUIT_TASKS as readonly string[]).includes(task)) {
    throw new LanternError(`unknown task '${task}' (did you mean '${nearest(task, CIRCUIT_TASKS, 1)[0]}'?); tasks: ${CIRCUIT_TASKS.join(', ')}`);
  }
  if (!Number.isInteger(n) || n < 1) throw new LanternError(`the number of examples must be a positive integer, got ${n}`);
  if (task === 'induction') return inductionExamples(n, { seed });
  return taskPairs(model, task, n, { seed }).map((p) => ({
    clean: p.cleanTokens, corrupt: p.corruptTokens, targets: [{ pos: p.cleanTokens.length - 1, answer: p.answer, wrong: p.wrong }],
  }));
}

/** Clean and corrupted activations and clean log-probs of a task's examples, computed once and shared by the discovery methods. */
export interface PreparedData {
  examples: EdgeExample[];
  seq: number;
  /** Per example, every sender's activation [seq, S, D] on the corrupted and on the clean prompt. */
  corruptActs: Float32Array[];
  cleanActs: Float32Array[];
  /** Per example, the clean log-probs at its targets [targets, vocab]. */
  cleanLogprobs: Float32Array[];
  metric: EdgeMetric;
  /** Mean metric (over examples and targets) on the clean and the corrupted prompts. */
  clean: number;
  corrupt: number;
}

/** Runs the examples clean and corrupted and keeps what edge patching needs. */
export async function prepare(runner: EdgeRunner, examples: EdgeExample[], metric: EdgeMetric): Promise<PreparedData> {
  const { model, space } = runner;
  if (examples.length === 0) throw new LanternError('no examples');
  examples.forEach((e, i) => {
    if (e.clean.length !== e.corrupt.length) throw new LanternError(`example ${i}: clean and corrupted prompts differ in length (${e.clean.length} vs ${e.corrupt.length})`);
    if (e.targets.length === 0) throw new LanternError(`example ${i} has no targets`);
    for (const t of e.targets) {
      if (t.pos < 0 || t.pos >= e.clean.length) throw new LanternError(`example ${i}: target position ${t.pos} outside the prompt (length ${e.clean.length})`);
      if (metric === 'logit-diff' && t.wrong === undefined) throw new LanternError(`example ${i}: metric logit-diff needs a wrong answer at every target`);
    }
    model.toBatch([e.clean, e.corrupt]);
  });
  const seq = Math.max(...examples.map((e) => e.clean.length));
  const S = space.S;
  const D = model.cfg.dModel;
  const acts = async (which: 'clean' | 'corrupt') => {
    const out = await runner.run(examples.map((e) => ({ tokens: e[which], mask: null, ref: null, targets: e.targets })), seq, { senders: true, grad: null });
    const all = out.senders!.f32;
    return { acts: examples.map((_, b) => all.slice(b * seq * S * D, (b + 1) * seq * S * D)), value: metricMean(out, examples.map((e) => e.targets), metric) };
  };
  const c = await acts('corrupt');
  const k = await acts('clean');
  const cleanLogprobs: Float32Array[] = [];
  for (const e of examples) cleanLogprobs.push(await targetLogprobs(model, e.clean, e.targets));
  if (!(Math.abs(k.value - c.value) > 1e-6)) throw new LanternError(`the clean and corrupted prompts give the same ${metric} (${k.value.toFixed(4)}); nothing to explain`);
  return { examples, seq, corruptActs: c.acts, cleanActs: k.acts, cleanLogprobs, metric, clean: k.value, corrupt: c.value };
}

/** Mean of the metric over all targets of consecutive groups of rows. */
export function metricMean(out: { logitDiff: Float32Array; logprob: Float32Array }, targets: EdgeTarget[][], metric: EdgeMetric, start = 0): number {
  const vals = metric === 'logit-diff' ? out.logitDiff : out.logprob;
  let i = start;
  let sum = 0;
  let count = 0;
  // Each example weighs the same, whatever its number of targets.
  for (const ts of targets) {
    let s = 0;
    for (let j = 0; j < ts.length; j++) s += vals[i++];
    sum += s / ts.length;
    count++;
  }
  return sum / count;
}

export function klMean(kl: Float32Array, targets: EdgeTarget[][], start = 0): number {
  return metricMean({ logitDiff: kl, logprob: kl }, targets, 'logit-diff', start);
}
