/**
 * POST /api/causal: the Workbench's causal-abstraction view. Where does the selected model compute
 * a built-in task's high-level variable? Held-out interchange intervention accuracy (IIA) at every
 * layer × position: with a learned DAS or Boundless DAS subspace, or interchanging the whole
 * residual stream. Answers in the request (a job on the compute queue, held to the server's
 * --max-job-seconds): the built-in tasks are short prompts, and the request's size is capped below
 * so one request stays seconds on a small model. Each answer is saved as a 'causal' run.
 */
import type { FastifyPluginAsync } from 'fastify';
import type { ModelRegistry } from './models.js';
import type { ComputeQueue } from './queue.js';
import { savedRun } from './direct-runs.js';
import { LanternError } from '../../errors.js';
import type { HookedTransformer } from '../../models/hooked.js';
import { dasSearch } from '../../methods/causal-abstraction/search.js';
import { interchangeAccuracy, sampleExamples, AlignmentTask, CounterfactualExample } from '../../methods/causal-abstraction/iia.js';
import { inductionTask, ioiExamples, ioiTask } from '../../methods/causal-abstraction/tasks.js';

/** The view's built-in tasks: the causal model, the variable searched for, and its counterfactual examples. */
export const CAUSAL_VIEW_TASKS = {
  /** IOI's subject S, with four names (S spans 3 dimensions); the planted IOI model computes it at the last position from layer 1 on. */
  ioi: { variable: 'S', task: ioiTask, examples: (n: number, seed: number) => ioiExamples(n, seed, { names: 4 }) },
  /** Induction's answer `next`, from random letter sequences; the planted induction model writes it at the last position. */
  induction: {
    variable: 'next', task: () => inductionTask(),
    examples: (n: number, seed: number) => sampleExamples(inductionTask().causalModel, Array.from({ length: 256 }, (_, i) => ({ seed: i })), n, { variables: ['next'], seed, changing: true }),
  },
} as const satisfies Record<string, { variable: string; task: () => AlignmentTask; examples: (n: number, seed: number) => CounterfactualExample[] }>;

/** The view's methods: DAS with k dimensions, Boundless DAS with at most k, or the whole activation interchanged. */
export const CAUSAL_VIEW_METHODS = ['das', 'boundless', 'interchange-whole'] as const;

/** Most training-pair passes one request may ask for (locations × (train × epochs + test)). */
export const CAUSAL_VIEW_MAX_PASSES = 200_000;

interface CausalBody {
  model?: string;
  task: keyof typeof CAUSAL_VIEW_TASKS;
  method: (typeof CAUSAL_VIEW_METHODS)[number];
  positions: number[];
  k: number;
  epochs: number;
  train: number;
  test: number;
  seed: number;
}

const schema = {
  tags: ['causal'],
  summary: 'Held-out IIA of a built-in task\'s variable at every layer × position (DAS, Boundless DAS, or whole-stream interchange)',
  body: {
    type: 'object', additionalProperties: false, required: ['task', 'method'],
    properties: {
      model: { type: 'string' },
      task: { enum: Object.keys(CAUSAL_VIEW_TASKS) },
      method: { enum: CAUSAL_VIEW_METHODS },
      positions: { type: 'array', items: { type: 'integer' }, minItems: 1, maxItems: 16, default: [-1, -2, -3] },
      k: { type: 'integer', minimum: 1, maximum: 100_000, default: 4 },
      epochs: { type: 'integer', minimum: 1, maximum: 100, default: 3 },
      train: { type: 'integer', minimum: 8, maximum: 1024, default: 128 },
      test: { type: 'integer', minimum: 8, maximum: 1024, default: 48 },
      seed: { type: 'integer', minimum: 0, maximum: 2 ** 31 - 1, default: 0 },
    },
  },
};

/** The rows of the heatmap: every layer's residual stream input, and the last layer's output. */
export function causalViewHooks(model: HookedTransformer): string[] {
  const n = model.cfg.nLayers;
  return [...Array.from({ length: n }, (_, l) => `blocks.${l}.hook_resid_pre`), `blocks.${n - 1}.hook_resid_post`];
}

/** Registers POST /api/causal (behind the server's token and Host checks); each runs as a job on `queue` and is saved as a run. */
export const causalRoutes: FastifyPluginAsync<{ models: ModelRegistry; queue: ComputeQueue }> = async (app, { models, queue }) => {
  app.post('/api/causal', { schema }, async (req) => {
    const body = req.body as CausalBody;
    // Results name the model as the request did (a reference), never by a path on the server.
    const ref = body.model ?? models.defaultRef;
    await models.resolve(ref, false);
    return savedRun(queue, 'causal', ref, `${body.method} for ${CAUSAL_VIEW_TASKS[body.task].variable} on ${body.task}`, { ...body }, () => search(body, ref));
  });

  async function search(body: CausalBody, ref: string) {
    const model = await models.load(ref);
    const hooks = causalViewHooks(model);
    const { positions, method, epochs, seed } = body;
    const spec = CAUSAL_VIEW_TASKS[body.task];
    const trainN = method === 'interchange-whole' ? 0 : body.train;
    const passes = hooks.length * positions.length * (trainN * epochs + body.test);
    if (passes > CAUSAL_VIEW_MAX_PASSES) {
      throw new LanternError(`this search would run ${passes.toLocaleString('en-US')} pair passes (${hooks.length} hooks × ${positions.length} positions × (${trainN} train × ${epochs} epochs + ${body.test} test)); the limit is ${CAUSAL_VIEW_MAX_PASSES.toLocaleString('en-US')}: use fewer positions, pairs or epochs`);
    }
    const task = spec.task();
    const test = spec.examples(body.test, seed + 1);
    const ids = [...(task.candidates ?? []), ...test.flatMap((e) => task.tokens(e.base))];
    const top = Math.max(...ids);
    if (top >= model.cfg.dVocab) {
      throw new LanternError(`task '${body.task}' uses token ids up to ${top}, outside this model's vocabulary of ${model.cfg.dVocab}: pick planted:${body.task}, or a model with GPT-2's tokenizer`);
    }
    const settings = { task: body.task, method, positions, k: body.k, epochs, train: trainN, test: body.test };
    const start = Date.now();
    if (method === 'interchange-whole') {
      const dim = model.cfg.dModel;
      const iia: number[][] = [];
      for (const hook of hooks) {
        const row: number[] = [];
        for (const position of positions) {
          row.push((await interchangeAccuracy(model, { task, examples: test, variables: [spec.variable], interventions: [{ hook, positions: [position] }] })).iia);
        }
        iia.push(row);
      }
      return { model: ref, method, variable: spec.variable, hooks, positions, iia, k: hooks.map(() => positions.map(() => dim)), settings, seed, elapsedMs: Date.now() - start };
    }
    const r = await dasSearch(model, {
      task, variable: spec.variable, hooks, positions, k: body.k, boundless: method === 'boundless', epochs, seed,
      train: spec.examples(body.train, seed), test,
    });
    const { subspace, losses, ...best } = r.best;
    return {
      model: ref, method, variable: r.variable, hooks, positions, iia: r.iia, k: r.k, settings, seed,
      best: { ...best, subspace: { k: subspace.k, dim: subspace.dim }, finalLoss: losses[losses.length - 1] }, elapsedMs: Date.now() - start,
    };
  }
};
