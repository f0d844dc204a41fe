/**
 * The Workbench's heads and neuron pages:
 *
 *   POST /api/heads/scores   one head detector's layer x head grid (src/methods/heads)
 *   POST /api/heads/head     one head's attention pattern on a prompt and the tokens its OV circuit copies
 *   POST /api/neurons/neuron one MLP neuron's statistics and label over a small corpus sample
 *                            (src/methods/neurons), with its top contexts and per-token activations
 *
 * They answer in the request (a job on the compute queue, held to the server's --max-job-seconds):
 * a detector over a few dozen short sequences, or one layer's neuron statistics over a few thousand
 * tokens, on the models the Workbench is meant for. Each answer is saved as a run ('heads', 'head', 'neuron').
 */
import fs from 'node:fs';
import path from 'node:path';
import type { FastifyPluginAsync } from 'fastify';
import { LanternError } from '../../errors.js';
import type { HookedTransformer } from '../../models/hooked.js';
import { PLANTED_FILE, plantedPool, plantedPrompts, readPlantedDescription } from '../../models/planted/index.js';
import { tokenizeSplits } from '../../data/brown.js';
import { analyzeHeads, checkDetectors, DETECTOR_DESCRIPTIONS, HEAD_DETECTORS, HeadDetector, headLabel, ModelCircuits } from '../../methods/heads/index.js';
import { corpusRows, neuronStats, NeuronStats } from '../../methods/neurons/index.js';
import { MAX_ATTENTION_TOKENS } from './compute.js';
import type { ModelRegistry } from './models.js';
import type { ComputeQueue } from './queue.js';
import { promptTitle, savedRun } from './direct-runs.js';
import { tokenLabel, tokenLabels } from './token-labels.js';

/** Most neuron statistics kept in memory at once (one per model, layer and corpus size). */
const KEEP_STATS = 4;

/**
 * The corpus sample the neuron page reads: a planted model's own task prompts (seed 1001, as
 * `lantern neurons` reads them), the first `maxTokens` of the Brown corpus's train split for a
 * GPT-2-vocabulary model; any other model has no bundled corpus.
 */
export function neuronCorpus(model: HookedTransformer, maxTokens: number): { tokens: number[]; name: string } {
  if (fs.existsSync(path.join(model.source, PLANTED_FILE))) {
    const kind = readPlantedDescription(model.source).kind;
    const perPrompt = plantedPrompts(kind, 1, 1001)[0].tokens.length;
    const tokens = plantedPrompts(kind, Math.ceil(maxTokens / perPrompt), 1001).flatMap((p) => p.tokens).slice(0, maxTokens);
    return { tokens, name: `planted ${kind} task prompts (seed 1001)` };
  }
  if (model.cfg.dVocab < 50257) throw new LanternError(`the bundled corpus sample is GPT-2 tokens (Brown), outside this model's vocabulary of ${model.cfg.dVocab}; use \`lantern neurons --tokens <file>\` for a corpus of its own`);
  return { tokens: Array.from(tokenizeSplits().train.subarray(0, maxTokens)), name: 'Brown corpus (train split)' };
}

const modelField = { type: 'string', minLength: 1, maxLength: 300 };
const scoresSchema = {
  tags: ['heads'], summary: "One head detector's score for every layer x head",
  body: {
    type: 'object', additionalProperties: false, required: ['detector'],
    properties: {
      model: modelField, detector: { type: 'string', minLength: 1, maxLength: 40, description: `one of: ${HEAD_DETECTORS.join(', ')}` },
      sequences: { type: 'integer', minimum: 1, maximum: 100, default: 20 }, half: { type: 'integer', minimum: 2, maximum: 256 },
      seed: { type: 'integer', minimum: 0, default: 0 },
    },
  },
};
const headSchema = {
  tags: ['heads'], summary: "A head's attention pattern on a prompt, its eigenvalue copying score and the tokens its full OV circuit copies and suppresses most",
  body: {
    type: 'object', additionalProperties: false, required: ['layer', 'head', 'prompt'],
    properties: {
      model: modelField, layer: { type: 'integer', minimum: 0 }, head: { type: 'integer', minimum: 0 },
      prompt: { type: 'string', minLength: 1, maxLength: 1000 }, k: { type: 'integer', minimum: 1, maximum: 50, default: 10 },
    },
  },
};
const neuronSchema = {
  tags: ['neurons'], summary: "An MLP neuron's statistics and label over the bundled corpus sample, with its top contexts and per-token activations",
  body: {
    type: 'object', additionalProperties: false, required: ['layer', 'neuron'],
    properties: {
      model: modelField, layer: { type: 'integer', minimum: 0 }, neuron: { type: 'integer', minimum: 0 },
      maxTokens: { type: 'integer', minimum: 64, maximum: 20000, default: 4000 }, context: { type: 'integer', minimum: 1, maximum: 64, default: 12 },
    },
  },
};

function checkHead(model: HookedTransformer, layer: number, head: number): void {
  const { nLayers, nHeads } = model.cfg;
  if (layer >= nLayers || head >= nHeads) throw new LanternError(`head L${layer}H${head} is outside the model's ${nLayers} layers x ${nHeads} heads (L0H0 .. L${nLayers - 1}H${nHeads - 1})`);
}

/** Registers the heads and neuron-page endpoints (behind the server's token and Host checks); each runs as a job on `queue` and is saved as a run. */
export const headsRoutes: FastifyPluginAsync<{ models: ModelRegistry; queue: ComputeQueue }> = async (app, { models, queue }) => {
  // A model's weights, read once for every head clicked (dropped with the model).
  const circuitsOf = new WeakMap<HookedTransformer, Promise<ModelCircuits>>();
  app.post('/api/heads/scores', { schema: scoresSchema }, async (req) => {
    const body = req.body as { model?: string; detector: HeadDetector; sequences: number; half?: number; seed: number };
    checkDetectors([body.detector]); // an unknown name is a 400 naming the nearest detectors
    const ref = body.model ?? models.defaultRef;
    await models.resolve(ref, false);
    return savedRun(queue, 'heads', ref, `${body.detector} heads`, { ...body, method: body.detector }, async () => {
      const model = await models.load(ref);
      const pool = plantedPool(model.source);
      const r = await analyzeHeads(model, { detectors: [body.detector], sequences: body.sequences, half: body.half, seed: body.seed, pool });
      return {
        model: ref, method: 'heads', detector: body.detector, description: DETECTOR_DESCRIPTIONS[body.detector], layers: r.layers, heads: r.heads,
        scores: r.scores[body.detector], dataHash: r.dataHash, settings: { ...r.settings, poolSource: pool ? 'planted task tokens' : 'vocabulary' },
      };
    });
  });

  app.post('/api/heads/head', { schema: headSchema }, async (req) => {
    const body = req.body as { model?: string; layer: number; head: number; prompt: string; k: number };
    const ref = body.model ?? models.defaultRef;
    await models.resolve(ref, false);
    return savedRun(queue, 'head', ref, promptTitle(`head L${body.layer}H${body.head}`, body.prompt), { ...body, method: 'head' }, async () => {
      const model = await models.load(ref);
      checkHead(model, body.layer, body.head);
      const tokens = model.toTokens(body.prompt);
      if (tokens.length > MAX_ATTENTION_TOKENS) throw new LanternError(`attention patterns are limited to ${MAX_ATTENTION_TOKENS} tokens (the prompt is ${tokens.length}); use a shorter prompt`);
      if (tokens.length > model.cfg.nCtx) throw new LanternError(`the prompt is ${tokens.length} tokens, longer than the model's context of ${model.cfg.nCtx}`);
      const h = { layer: body.layer, head: body.head };
      const hook = `blocks.${h.layer}.attn.hook_pattern`;
      const { cache } = await model.runWithHooks([tokens], { cache: [hook], logitPositions: [0] });
      const T = tokens.length;
      const p = cache.get(hook).f32;
      const base = h.head * T * T;
      let circuits = circuitsOf.get(model);
      if (!circuits) {
        circuits = ModelCircuits.read(model);
        circuitsOf.set(model, circuits);
        circuits.catch(() => circuitsOf.delete(model));
      }
      const c = await circuits;
      const pool = plantedPool(model.source);
      // The whole OV diagonal once, largest first: both ends of it are shown.
      const diagonal = c.topCopied(h, { tokens: pool, k: Infinity });
      const named = (xs: { token: number; value: number }[]) => xs.map((x) => ({ ...x, label: model.tokenizer ? tokenLabel(model, x.token) : String(x.token) }));
      return {
        head: headLabel(h), layer: h.layer, index: h.head, tokens, tokenLabels: tokenLabels(model, tokens),
        pattern: Array.from({ length: T }, (_, q) => Array.from(p.subarray(base + q * T, base + q * T + T))),
        copyingScore: c.copyingScore(h),
        topCopied: named(diagonal.slice(0, body.k).filter((x) => x.value > 0)),
        topSuppressed: named(diagonal.slice(-body.k).reverse().filter((x) => x.value < 0)),
      };
    });
  });

  // One layer's statistics serve every neuron of it: kept for the next click.
  const stats = new Map<string, Promise<{ stats: NeuronStats; corpus: { tokens: number[]; name: string } }>>();
  app.post('/api/neurons/neuron', { schema: neuronSchema }, async (req) => {
    const body = req.body as { model?: string; layer: number; neuron: number; maxTokens: number; context: number };
    const ref = body.model ?? models.defaultRef;
    await models.resolve(ref, false);
    return savedRun(queue, 'neuron', ref, `neuron L${body.layer}N${body.neuron}`, { ...body, method: 'neurons' }, async () => {
      const model = await models.load(ref);
      const { nLayers, dMlp } = model.cfg;
      if (body.layer >= nLayers) throw new LanternError(`layer ${body.layer} is outside the model's layers [0, ${nLayers - 1}]`);
      if (body.neuron >= dMlp) throw new LanternError(`neuron ${body.neuron} is outside the layer's ${dMlp} neurons [0, ${dMlp - 1}]`);
      const key = `${ref}\0${model.source}\0${body.layer}\0${body.maxTokens}`;
      let entry = stats.get(key);
      if (!entry) {
        entry = (async () => {
          const corpus = neuronCorpus(model, body.maxTokens);
          return { corpus, stats: await neuronStats(model, corpus.tokens, { layers: [body.layer] }) };
        })();
        stats.set(key, entry);
        entry.catch(() => stats.delete(key));
        while (stats.size > KEEP_STATS) stats.delete(stats.keys().next().value as string);
      }
      const { stats: s, corpus } = await entry;
      const n = s.neurons.find((x) => x.neuron === body.neuron)!;
      // Each top example in its row, from `context` tokens before it to a few after, with the
      // neuron's activation at every token (rerun from the row's start, as the pass saw it).
      const rows = corpusRows(corpus.tokens, s.settings.seq);
      const windows = n.top.map((e) => {
        const rowStart = e.offset - e.position;
        const rowEnd = rows.find((r) => r.start === rowStart)!.length + rowStart;
        return { rowStart, from: Math.max(rowStart, e.offset - body.context), to: Math.min(rowEnd, e.offset + 4), focus: e.offset };
    });
    const hook = `blocks.${body.layer}.mlp.hook_post`;
    const examples: { activation: number; tokens: number[]; tokenLabels: string[]; focus: number; activations: number[] }[] = [];
    for (let i = 0; i < windows.length; i += 8) {
      const chunk = windows.slice(i, i + 8);
      const { cache, batch } = await model.runWithHooks(chunk.map((w) => corpus.tokens.slice(w.rowStart, w.to)), { cache: [hook], logitPositions: [0] });
      const a = cache.get(hook).f32;
      chunk.forEach((w, b) => {
        const ids = corpus.tokens.slice(w.from, w.to);
        examples.push({
          activation: n.top[i + b].activation, tokens: ids, tokenLabels: tokenLabelsOrIds(model, ids), focus: w.focus - w.from,
          activations: ids.map((_, j) => a[(b * batch.seq + w.from - w.rowStart + j) * dMlp + body.neuron]),
        });
      });
    }
    const { top: _top, ...summary } = n;
    const labelled = s.neurons.filter((x) => x.label !== 'dead' && x.label !== 'other').slice(0, 100).map((x) => ({ neuron: x.neuron, label: x.label, max: x.max }));
    return {
      model: ref, method: 'neurons', corpus: corpus.name, tokens: s.tokens, dataHash: s.dataHash, settings: s.settings,
      neuron: { ...summary, ...(n.ngram ? { ngramLabels: tokenLabelsOrIds(model, n.ngram.tokens) } : {}) },
      layerCounts: s.counts, labelled, examples,
    };
    });
  });
};

function tokenLabelsOrIds(model: HookedTransformer, ids: number[]): string[] {
  return model.tokenizer ? tokenLabels(model, ids) : ids.map(String);
}
