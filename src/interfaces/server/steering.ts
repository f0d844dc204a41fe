/**
 * POST /api/steering: the Workbench's steering playground. Generates a prompt's continuation with
 * and without a steering vector — ActAdd from a prompt pair, or the direction of a probe fit on a
 * built-in dataset at the chosen layer — and measures the cost (KL divergence of next-token
 * distributions on neutral text). Answers in the request (a job on the compute queue): a few short
 * generations on a small model; each answer is saved as a 'steering' run.
 */
import type { FastifyPluginAsync } from 'fastify';
import type { ModelRegistry } from './models.js';
import type { ComputeQueue } from './queue.js';
import { promptTitle, savedRun } from './direct-runs.js';
import type { HookedTransformer } from '../../models/hooked.js';
import { LanternError } from '../../errors.js';
import { builtinDataset } from '../../data/statements.js';
import { harvestProbeData, steeringDirection, trainProbe, PROBE_KINDS, ProbeKind } from '../../methods/representations/probes/index.js';
import { datasetHash } from '../../methods/representations/data.js';
import { actAddVector, layerHook, steer, SteeringVector } from '../../methods/steering/index.js';

/** The neutral text the playground's KL cost is measured on. */
export const PLAYGROUND_NEUTRAL = ['The report lists the opening hours of the library, the museum and the town hall for the coming week.'];

interface SteeringBody {
  model?: string;
  prompt: string;
  layer: number;
  coef: number;
  direction: { source: 'pair'; positive: string; negative: string } | { source: 'probe'; dataset: string; kind?: ProbeKind; limit?: number };
  maxNewTokens?: number;
  temperature?: number;
  seed?: number;
}

const text = { type: 'string', minLength: 1, maxLength: 2000 };
const schema = {
  tags: ['steering'],
  summary: 'Generate with and without a steering vector (ActAdd prompt pair, or a probe direction), side by side, with the KL cost on neutral text',
  body: {
    type: 'object', additionalProperties: false, required: ['prompt', 'layer', 'coef', 'direction'],
    properties: {
      model: { type: 'string' },
      prompt: text,
      layer: { type: 'integer', minimum: 0 },
      coef: { type: 'number', minimum: -1000, maximum: 1000 },
      maxNewTokens: { type: 'integer', minimum: 1, maximum: 64, default: 20 },
      temperature: { type: 'number', minimum: 0, maximum: 10, default: 0 },
      seed: { type: 'integer', minimum: 0, default: 0 },
      direction: {
        oneOf: [
          { type: 'object', additionalProperties: false, required: ['source', 'positive', 'negative'], properties: { source: { const: 'pair' }, positive: text, negative: text } },
          {
            type: 'object', additionalProperties: false, required: ['source', 'dataset'],
            properties: { source: { const: 'probe' }, dataset: { enum: ['capitals', 'cities', 'comparisons', 'sentiment'] }, kind: { enum: PROBE_KINDS.filter((k) => k !== 'ccs' && k !== 'linear') }, limit: { type: 'integer', minimum: 4, maximum: 200 } },
          },
        ],
      },
    },
  },
};

/**
 * The neutral text cut, a word at a time, to fit the model's context: a planted model's
 * character-level tokenizer makes it longer than a small context, which failed every request.
 */
function neutralFor(model: HookedTransformer): string[] {
  const words = PLAYGROUND_NEUTRAL[0].split(' ');
  while (words.length > 1 && model.toTokens(words.join(' ')).length > model.cfg.nCtx) words.pop();
  return [words.join(' ')];
}

/** Registers POST /api/steering (behind the server's token and Host checks); each runs as a job on `queue` and is saved as a run. */
export const steeringRoutes: FastifyPluginAsync<{ models: ModelRegistry; queue: ComputeQueue }> = async (app, { models, queue }) => {
  app.post('/api/steering', { schema }, async (req) => {
    const body = req.body as SteeringBody;
    const ref = body.model ?? models.defaultRef;
    await models.resolve(ref, false); // an unknown model is a 400, not a saved failure
    return savedRun(queue, 'steering', ref, promptTitle(`steering ×${body.coef}`, body.prompt), { ...body, method: body.direction.source === 'pair' ? 'actadd' : 'probe' }, () => steerOnce(body, ref));
  });

  async function steerOnce(body: SteeringBody, ref: string) {
    const model = await models.load(ref);
    const hook = layerHook(model, body.layer);
    let vector: SteeringVector;
    let probe: Record<string, unknown> | undefined;
    const d = body.direction;
    if (d.source === 'pair') vector = await actAddVector(model, d.positive, d.negative, { hook });
    else {
      const ds = builtinDataset(d.dataset, { seed: body.seed ?? 0, limit: d.limit ?? 60 });
      const data = (await harvestProbeData(model, ds.examples, { hooks: [hook], seed: body.seed ?? 0 })).get(hook)!;
      const t = trainProbe(data, { kind: d.kind ?? 'mass-mean', seed: body.seed ?? 0 });
      if (!Number.isFinite(t.test.auroc)) throw new LanternError(`the probe's ${t.test.n} held-out examples of the ${d.dataset} dataset all have one label, so its held-out AUROC is undefined: use a larger limit (now ${d.limit ?? 60}) or another seed`);
      probe = { dataset: ds.name, kind: d.kind ?? 'mass-mean', test: t.test };
      vector = {
        format: 'lantern-steering-vector', method: 'probe', model: model.source, hook, dModel: model.cfg.dModel,
        rows: [Array.from(steeringDirection(t.probe).f32)], datasetHash: datasetHash(ds.examples), settings: probe,
      };
    }
    const r = await steer(model, [body.prompt], { vector, coef: body.coef, neutral: neutralFor(model), maxNewTokens: body.maxNewTokens, temperature: body.temperature, seed: body.seed });
    return { ...r, ...(probe ? { probe } : {}), vectorNorm: Math.hypot(...vector.rows.flat()) };
  }
};
