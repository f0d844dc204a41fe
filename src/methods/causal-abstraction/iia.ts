/**
 * Interchange intervention accuracy (IIA; Geiger et al., 2021/2023): how often the network, with
 * its activations interchanged at a candidate location, predicts what the high-level causal model
 * predicts under the matching interchange of its variables.
 */
import { LanternError } from '../../errors.js';
import type { HookedTransformer } from '../../models/hooked.js';
import { Rng } from '../../rng.js';
import { CausalInput, CausalModel, CausalValue } from './causal-model.js';
import { interchange, InterchangeIntervention, InterchangePair } from './interchange.js';

/** How a causal model's inputs and outputs meet the network: prompts and answer tokens. */
export interface AlignmentTask {
  causalModel: CausalModel;
  /** The prompt of an input, as token ids. */
  tokens: (input: CausalInput) => number[];
  /** The token the network should predict for an output value. */
  answer: (output: CausalValue) => number;
  /** Tokens predictions are chosen among (default: the answers of every example's outputs). */
  candidates?: number[];
}

/** A base input and the sources of the variables interchanged (one per variable). */
export interface CounterfactualExample {
  base: CausalInput;
  sources: CausalInput[];
}

/** Options of {@link interchangeAccuracy}. */
export interface IiaOptions {
  task: AlignmentTask;
  examples: CounterfactualExample[];
  /** High-level variables interchanged: `variables[j]` takes its value from each example's `sources[j]`. */
  variables: string[];
  /** The network interventions; intervention `source: j` reads source j, aligned with `variables[j]`. */
  interventions: InterchangeIntervention[];
  /** Pairs per model run (default 64). */
  batchSize?: number;
  /** Called after each batch with the pairs done so far. */
  onProgress?: (done: number, total: number) => void;
}

/** IIA and what it is made of. */
export interface IiaResult {
  iia: number;
  n: number;
  /** Per example: the network's prediction, the counterfactual answer, and the base's own answer. */
  predictions: number[];
  counterfactuals: number[];
  baseAnswers: number[];
  /** How many examples' counterfactual answer differs from the base's (only these can tell an interchange from none). */
  changed: number;
}

/** The network's token pairs and the causal model's counterfactual answers of `examples`. */
export function counterfactualData(task: AlignmentTask, examples: CounterfactualExample[], variables: string[]) {
  if (!Array.isArray(examples) || examples.length === 0) throw new LanternError('give at least one counterfactual example');
  const pairs: InterchangePair[] = [];
  const counterfactuals: number[] = [];
  const baseAnswers: number[] = [];
  examples.forEach((ex, i) => {
    if (!ex || !ex.base || !Array.isArray(ex.sources)) throw new LanternError(`example ${i}: needs a base input and a list of sources`);
    if (ex.sources.length !== variables.length) throw new LanternError(`example ${i}: ${ex.sources.length} sources for ${variables.length} interchanged variable(s)`);
    pairs.push({ base: task.tokens(ex.base), sources: ex.sources.map((s) => task.tokens(s)) });
    counterfactuals.push(task.answer(task.causalModel.counterfactual(ex.base, ex.sources, variables)));
    baseAnswers.push(task.answer(task.causalModel.output(ex.base)));
  });
  const candidates = task.candidates ?? [...new Set([...counterfactuals, ...baseAnswers])].sort((a, b) => a - b);
  return { pairs, counterfactuals, baseAnswers, candidates };
}

/** IIA of `interventions` against the causal model's interchange of `variables`, batched. */
export async function interchangeAccuracy(model: HookedTransformer, opts: IiaOptions): Promise<IiaResult> {
  const { pairs, counterfactuals, baseAnswers, candidates } = counterfactualData(opts.task, opts.examples, opts.variables);
  const { predictions } = await interchange(model, { pairs, interventions: opts.interventions, candidates, batchSize: opts.batchSize, onProgress: opts.onProgress });
  let hits = 0;
  let changed = 0;
  predictions.forEach((p, i) => { if (p === counterfactuals[i]) hits++; if (counterfactuals[i] !== baseAnswers[i]) changed++; });
  return { iia: hits / predictions.length, n: predictions.length, predictions, counterfactuals, baseAnswers, changed };
}

/**
 * `n` examples drawn from `inputs` (a base and one source per variable, each uniformly), seeded.
 * With `changing`, only examples whose counterfactual output differs from the base's are kept
 * (up to 50 draws per example), so an intervention that does nothing scores 0.
 */
export function sampleExamples(causalModel: CausalModel, inputs: CausalInput[], n: number, opts: { variables: string[]; seed?: number; changing?: boolean }): CounterfactualExample[] {
  if (inputs.length < 2) throw new LanternError('need at least two inputs to draw base/source pairs from');
  const rng = new Rng(opts.seed ?? 0);
  const out: CounterfactualExample[] = [];
  for (let i = 0; i < n; i++) {
    let ex: CounterfactualExample;
    let tries = 0;
    do {
      ex = { base: inputs[rng.int(inputs.length)], sources: opts.variables.map(() => inputs[rng.int(inputs.length)]) };
      tries++;
    } while (opts.changing && tries < 50 && causalModel.counterfactual(ex.base, ex.sources, opts.variables) === causalModel.output(ex.base));
    out.push(ex);
  }
  return out;
}
