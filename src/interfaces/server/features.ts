/**
 * The Workbench's feature dashboards: every dashboard folder under `dir` (as `lantern features
 * dashboards -o <dir>/<name>` writes them) listed, browsed and opened one feature at a time (a
 * feature is read by its byte range, so a set of any size opens at once), and the features that
 * fire on a typed prompt.
 *
 *   GET  /api/features/sets                     the sets: name, model, hook, source, size, tokens
 *   GET  /api/features/sets/:set                one set's index (summaries of every feature)
 *   GET  /api/features/sets/:set/features/:n    one feature's dashboard
 *   POST /api/features/sets/:set/top {text, k}  the set's features on a text (saved as a 'features' run)
 */
import fs from 'node:fs';
import path from 'node:path';
import type { FastifyPluginAsync } from 'fastify';
import { LanternError } from '../../errors.js';
import { loadModel } from '../../models/load.js';
import type { HookedTransformer } from '../../models/hooked.js';
import type { ComputeQueue } from './queue.js';
import { promptTitle, savedRun } from './direct-runs.js';
import { dashboardSourceSpec, featuresOnText, openFeatureSource, readDashboard, readDashboardIndex, DashboardIndex, FeatureSource } from '../../methods/features/index.js';

/** Where the dashboard folders are. */
export interface FeaturesApiOptions {
  dir: string;
  /** The compute queue the features found on a text run on and are saved as runs by (the Workbench's); without one they run at once and are not saved. */
  queue?: ComputeQueue;
}

const NAME = { type: 'string', pattern: '^[\\w.-]+$', maxLength: 200 } as const;

/** Fastify plugin serving the dashboard folders under `dir`. */
export const featuresApi: FastifyPluginAsync<FeaturesApiOptions> = async (app, opts) => {
  const indexes = new Map<string, { mtime: number; index: DashboardIndex }>();
  const sources = new Map<string, Promise<{ model: HookedTransformer; source: FeatureSource }>>();

  const folder = (set: string) => path.join(opts.dir, set);
  const index = (set: string): DashboardIndex => {
    const file = path.join(folder(set), 'index.json');
    if (!fs.existsSync(file)) throw new LanternError(`no dashboard set '${set}' in ${opts.dir}`);
    const explanations = path.join(folder(set), 'explanations.json');
    const mtime = Math.max(fs.statSync(file).mtimeMs, fs.existsSync(explanations) ? fs.statSync(explanations).mtimeMs : 0);
    const hit = indexes.get(set);
    if (hit && hit.mtime === mtime) return hit.index;
    const fresh = readDashboardIndex(folder(set));
    indexes.set(set, { mtime, index: fresh });
    return fresh;
  };
  const fail = (e: unknown, reply: { code: (n: number) => { send: (x: unknown) => unknown } }) => {
    if (e instanceof LanternError) {
      const status = /^no dashboard set|outside/.test(e.message) ? 404 : 400;
      return reply.code(status).send({ error: e.message, statusCode: status });
    }
    throw e;
  };

  app.get('/api/features/sets', { schema: { tags: ['features'], summary: 'Dashboard sets' } }, async () => {
    if (!fs.existsSync(opts.dir)) return { dir: opts.dir, sets: [] };
    const sets = fs.readdirSync(opts.dir).filter((n) => fs.existsSync(path.join(opts.dir, n, 'index.json'))).sort().map((name) => {
      const { model, hook, source, size, tokens, dataHash } = index(name);
      return { name, model, hook, source, size, tokens, dataHash };
    });
    return { dir: opts.dir, sets };
  });

  app.get('/api/features/sets/:set', { schema: { tags: ['features'], summary: 'A set\'s feature summaries', params: { type: 'object', properties: { set: NAME } } } }, async (req, reply) => {
    try {
      const { ranges: _r, ...rest } = index((req.params as { set: string }).set);
      return rest;
    } catch (e) { return fail(e, reply); }
  });

  app.get('/api/features/sets/:set/features/:n', {
    schema: { tags: ['features'], summary: 'One feature\'s dashboard', params: { type: 'object', properties: { set: NAME, n: { type: 'string', pattern: '^\\d+$' } } } },
  }, async (req, reply) => {
    const { set, n } = req.params as { set: string; n: string };
    try {
      return readDashboard(folder(set), Number(n), index(set));
    } catch (e) { return fail(e, reply); }
  });

  app.post('/api/features/sets/:set/top', {
    schema: {
      tags: ['features'], summary: 'The set\'s features that fire on a text', params: { type: 'object', properties: { set: NAME } },
      body: { type: 'object', additionalProperties: false, required: ['text'], properties: { text: { type: 'string', minLength: 1, maxLength: 4000 }, k: { type: 'integer', minimum: 1, maximum: 100, default: 10 } } },
    },
  }, async (req, reply) => {
    const { set } = req.params as { set: string };
    const { text, k } = req.body as { text: string; k: number };
    try {
      const ix = index(set);
      let entry = sources.get(set);
      if (!entry) {
        entry = (async () => {
          const model = await loadModel(ix.model);
          return { model, source: await openFeatureSource(model, dashboardSourceSpec(ix)) };
        })();
        entry.catch(() => sources.delete(set));
        sources.set(set, entry);
      }
      return await savedRun(opts.queue, 'features', ix.model, promptTitle(`features of ${set}`, text), { set, text, k, method: ix.source, hook: ix.hook }, async () => {
        const { model, source } = await entry!;
        return { set, ...(await featuresOnText(model, source, text, k)) };
      });
    } catch (e) { return fail(e, reply); }
  });
};
