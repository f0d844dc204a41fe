/**
 * What the Workbench asks the server besides running methods: the prompt limits of each view (so
 * they can be shown before a run), model cards, and a check of a model reference before it is
 * offered in the picker.
 */
import fs from 'node:fs';
import path from 'node:path';
import type { FastifyInstance } from 'fastify';
import { readPlantedDescription, PLANTED_FILE } from '../../models/planted/index.js';
import { MAX_ATTENTION_TOKENS, MAX_TEXT } from './compute.js';
import type { ModelCard } from './api-types.js';
import type { ModelRegistry } from './models.js';

/** Longest prompt, in characters, each view's endpoint takes (the attention and patching schemas set lower ones). */
export const VIEW_LIMITS = {
  forward: { chars: MAX_TEXT },
  attribution: { chars: MAX_TEXT },
  lens: { chars: MAX_TEXT },
  attention: { chars: 1000, tokens: MAX_ATTENTION_TOKENS },
  patching: { chars: 1000 },
} as const;

export function workbenchRoutes(app: FastifyInstance, models: ModelRegistry): void {
  app.get('/api/limits', { schema: { tags: ['server'], summary: "Each view's prompt limits (characters, and tokens where a view has a token limit)" } }, async () => ({ views: VIEW_LIMITS }));

  app.post('/api/models/check', {
    schema: {
      tags: ['models'], summary: 'Checks a model reference (as a request would name it) without loading it',
      body: { type: 'object', additionalProperties: false, required: ['ref'], properties: { ref: { type: 'string', minLength: 1, maxLength: 300 } } },
    },
  }, async (req) => {
    const { ref } = req.body as { ref: string };
    await models.resolve(ref, false);
    return { ref, ok: true };
  });

  app.get('/api/models/card', {
    schema: {
      tags: ['models'], summary: "A model's card: family, layers, heads, context, tokenizer; for planted models the mechanism and its ground truth",
      querystring: { type: 'object', additionalProperties: false, required: ['ref'], properties: { ref: { type: 'string', minLength: 1, maxLength: 300 }, token: { type: 'string' } } },
    },
  }, async (req): Promise<ModelCard> => {
    const { ref } = req.query as { ref: string };
    // A Hub model is loaded (downloaded) by its first run, not to show a card.
    const m = await models.loadIfLocal(ref);
    if (!m) return Promise.reject(Object.assign(new Error(`the card of ${ref} is available once a run has loaded it`), { statusCode: 404 }));
    const c = m.cfg;
    const card: ModelCard = {
      ref, family: c.architecture, nLayers: c.nLayers, nHeads: c.nHeads, nKvHeads: c.nKvHeads, dModel: c.dModel, dMlp: c.dMlp, nCtx: c.nCtx, dVocab: c.dVocab,
      tokenizer: m.tokenizer ? tokenizerKind(m.source) : 'none (token ids only)',
    };
    if (ref.startsWith('planted:') && fs.existsSync(path.join(m.source, PLANTED_FILE))) {
      const d = readPlantedDescription(m.source);
      card.planted = { description: d.description, mechanism: d.mechanism, controls: d.controls, task: d.task };
    }
    return card;
  });
}

/** The tokenizer model named in tokenizer.json (BPE, Unigram, WordPiece …), with its vocabulary size. */
function tokenizerKind(folder: string): string {
  try {
    const json = JSON.parse(fs.readFileSync(path.join(folder, 'tokenizer.json'), 'utf8'));
    const byteLevel = JSON.stringify(json.pre_tokenizer ?? {}).includes('ByteLevel');
    return `${json.model?.type ?? 'unknown'}${byteLevel ? ' (byte-level)' : ''}`;
  } catch {
    return 'tokenizer.json';
  }
}
