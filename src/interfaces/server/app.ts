/**
 * The Workbench's HTTP server: the JSON API, its OpenAPI description, and the web app's files.
 * Every plugin is registered here, in `buildServer`, so other interfaces (e.g. an
 * OpenAI-compatible API) plug in at one place.
 *
 * Security model: bound to loopback by default, where requests must name a loopback Host (so a
 * web page cannot reach the API through DNS rebinding); any other host needs a token, carried as
 * `Authorization: Bearer <token>`, `?token=` (which also sets a same-site cookie, so the browser
 * app and its EventSource keep working) or that cookie. JSON bodies only (a cross-site form post
 * cannot be JSON without a CORS preflight, which this server never grants).
 */
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import Fastify, { FastifyError, FastifyInstance, FastifyPluginAsync, FastifyReply, FastifyRequest } from 'fastify';
import swagger from '@fastify/swagger';
import fastifyStatic from '@fastify/static';
import { LanternError } from '../../errors.js';
import { assertFinite, firstNonFinite } from '../../finite.js';
import { BUNDLED_MODEL, lanternHome } from '../../paths.js';
import { API_FAMILIES, checkRequestWork, compute, defaultTitle, precheck, SCHEMAS } from './compute.js';
import { describeFamily } from '../../methods/options.js';
import { checkLimits, DEFAULT_LIMITS, WorkLimitError, WorkLimits } from './limits.js';
import { ModelRegistry } from './models.js';
import { openAICompat, servedId } from './openai-compat.js';
import { featuresApi } from './features.js';
import { CancelledError, ComputeQueue, Job, JobExecutor } from './queue.js';
import { ATTRIBUTION_SETTINGS } from '../../methods/attribution/options.js';
import { METHODS } from '../../methods/attribution/index.js';
import { RUN_KINDS, SAVED_RUN_KINDS, type RunKind, type SavedRunKind } from './api-types.js';
import { RunStore } from './store.js';
import { steeringRoutes } from './steering.js';
import { causalRoutes } from './causal.js';
import { headsRoutes } from './heads.js';
import { workbenchRoutes } from './workbench.js';
import { evaluationApi } from './evaluation.js';
import { datasetJobsRoutes } from './dataset-jobs.js';

export interface ServerOptions {
  /** Where the database and planted models go (default: <lanternHome>/workbench). */
  dataDir?: string;
  /** The jobs folder whose dataset-scale jobs GET /api/dataset-jobs lists (default: <lanternHome>/jobs, as the CLI's). */
  jobsDir?: string;
  /** The default model (folder or Hub id), as given to `lantern serve --model`. */
  model?: string;
  /** The Hub revision of `model` (`lantern serve --revision`). */
  revision?: string;
  /** Required on every request when set. */
  token?: string;
  /** The web app's built files (default: web/dist in the package). */
  webDir?: string;
  /** Allow 'hub:' models (default: true unless HF_HUB_OFFLINE is set). */
  allowHub?: boolean;
  /**
   * More Fastify plugins (e.g. an OpenAI-compatible API), registered after the Workbench API and
   * behind the same token and Host checks.
   */
  plugins?: { plugin: FastifyPluginAsync<any>; options?: Record<string, unknown> }[];
  /** Also answer OpenAI clients under /v1 with the default model (the registry's own copy). */
  openai?: boolean;
  /** What one job may cost (defaults: DEFAULT_LIMITS); requests estimated above a limit are a 400 naming it. */
  limits?: Partial<WorkLimits>;
  /** Largest request body, in bytes (default 256 KiB). */
  bodyLimit?: number;
  logger?: boolean;
}

export const API_VERSION = '1';
const PACKAGE_ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..', '..');
export const DEFAULT_WEB_DIR = path.join(PACKAGE_ROOT, 'web', 'dist');
const COOKIE = 'lantern_token';

export function defaultDataDir(): string {
  return path.join(lanternHome(), 'workbench');
}

function sameSecret(a: string, b: string): boolean {
  const x = crypto.createHash('sha256').update(a).digest();
  const y = crypto.createHash('sha256').update(b).digest();
  return crypto.timingSafeEqual(x, y);
}

function cookieToken(req: FastifyRequest): string | undefined {
  const m = /(?:^|;\s*)lantern_token=([^;]*)/.exec(req.headers.cookie ?? '');
  return m ? decodeURIComponent(m[1]) : undefined;
}

const LOOPBACK_HOST = /^(localhost|127\.\d+\.\d+\.\d+|\[::1\])(:\d+)?$/i;

const idParams = { type: 'object', required: ['id'], properties: { id: { type: 'string', minLength: 1, maxLength: 100 } } };

function jobInfo(job: Job) {
  return { id: job.id, kind: job.run.kind, status: job.status, events: `/api/jobs/${job.id}/events`, run: `/api/runs/${job.id}` };
}

/** What a request's fields are called in messages (the rest by their own names). */
const FIELD_NAMES: Record<string, string> = {
  'body.text': 'the prompt (text)', 'body.clean': 'the clean prompt (clean)', 'body.corrupt': 'the corrupted prompt (corrupt)',
  'body.target': 'the target', 'body.foil': 'the foil', 'body.answer': 'the answer', 'body.wrong': 'the wrong answer',
};
const TYPE_NAMES: Record<string, string> = { integer: 'a whole number', number: 'a number', string: 'text', boolean: 'true or false', array: 'a list', object: 'an object' };

/** A schema validation error as one sentence a person reads: what is wrong with which field, with the limit. */
function validationMessage(err: FastifyError): string {
  const v = err.validation![0];
  const where = `${err.validationContext ?? 'request'}${v?.instancePath ? v.instancePath.replace(/\//g, '.') : ''}`;
  const field = FIELD_NAMES[where] ?? where.replace(/^body\./, '');
  const p = (v?.params ?? {}) as Record<string, any>;
  switch (v?.keyword) {
    case 'additionalProperties': return `${where} has an unknown field '${p.additionalProperty}'`;
    case 'required': return `${field === 'body' ? 'the request' : field} is missing ${FIELD_NAMES[`body.${p.missingProperty}`] ?? p.missingProperty}`;
    case 'anyOf': return 'give a prompt (text) or a chat (messages)';
    case 'minLength': return p.limit === 1 ? `${field} is empty` : `${field} must be at least ${p.limit} characters`;
    case 'maxLength': return `${field} is longer than ${p.limit} characters, the most this accepts`;
    case 'minimum': return `${field} must be at least ${p.limit}`;
    case 'maximum': return `${field} must be at most ${p.limit}`;
    case 'exclusiveMinimum': return `${field} must be above ${p.limit}`;
    case 'type': return `${field} must be ${TYPE_NAMES[p.type] ?? p.type}`;
    case 'enum': return `${field} must be one of: ${(p.allowedValues as unknown[]).join(', ')}`;
    case 'minItems': return `${field} needs at least ${p.limit} item${p.limit === 1 ? '' : 's'}`;
    case 'maxItems': return `${field} takes at most ${p.limit} items`;
    default: return `${field} ${v?.message ?? err.message}`;
  }
}

export type LanternServer = FastifyInstance & { lantern: { store: RunStore; queue: ComputeQueue; models: ModelRegistry } };

export async function buildServer(opts: ServerOptions = {}): Promise<LanternServer> {
  const dataDir = opts.dataDir ?? defaultDataDir();
  fs.mkdirSync(dataDir, { recursive: true });
  const store = new RunStore(path.join(dataDir, 'runs.sqlite'));
  const limits = checkLimits({ ...DEFAULT_LIMITS, ...opts.limits });
  const executor = new JobExecutor();
  const queue = new ComputeQueue(store, executor, { maxJobSeconds: limits.maxJobSeconds });
  const hubOffline = /^(1|true|yes|on)$/i.test(process.env.HF_HUB_OFFLINE ?? '');
  const models = new ModelRegistry({
    store, executor, plantedDir: path.join(dataDir, 'planted'), defaultSource: opts.model, defaultRevision: opts.revision, allowHub: opts.allowHub ?? !hubOffline,
  });

  const app = Fastify({
    logger: opts.logger ?? false,
    bodyLimit: opts.bodyLimit ?? 256 * 1024,
    // Unknown fields are errors (a typo such as 'stpes' must not be silently dropped), and types are not coerced.
    ajv: { customOptions: { removeAdditional: false, coerceTypes: false, useDefaults: true, allErrors: false } },
  });

  app.addHook('onClose', async () => {
    queue.cancelAll();
    await queue.drain();
    store.close();
    await executor.close();
  });

  app.addHook('onRequest', async (req, reply) => {
    if (opts.token === undefined) {
      if (!LOOPBACK_HOST.test(req.headers.host ?? '')) {
        return reply.code(403).send({ error: `this server only answers requests for localhost (Host was ${JSON.stringify(req.headers.host ?? '')}); start it with --host and --token to serve other names`, statusCode: 403 });
      }
      return;
    }
    const auth = req.headers.authorization;
    const fromQuery = (req.query as Record<string, unknown> | undefined)?.token;
    const given = auth?.startsWith('Bearer ') ? auth.slice(7) : typeof fromQuery === 'string' ? fromQuery : cookieToken(req);
    if (given === undefined || !sameSecret(given, opts.token)) {
      return reply.code(401).send({ error: 'this server needs a token: send Authorization: Bearer <token>, or open the URL with ?token=<token>', statusCode: 401 });
    }
    if (typeof fromQuery === 'string') {
      reply.header('set-cookie', `${COOKIE}=${encodeURIComponent(given)}; Path=/; HttpOnly; SameSite=Strict`);
    }
  });

  app.setErrorHandler((err: FastifyError, _req, reply) => {
    if (err.validation) return reply.code(400).send({ error: validationMessage(err), statusCode: 400 });
    if (err instanceof WorkLimitError) return reply.code(400).send({ error: err.message, statusCode: 400, limit: err.limit });
    if (err instanceof LanternError) return reply.code(400).send({ error: err.message, statusCode: 400 });
    const status = err.statusCode && err.statusCode >= 400 ? err.statusCode : 500;
    if (status >= 500) app.log.error(err);
    return reply.code(status).send({ error: status >= 500 ? `internal error: ${err.message}` : err.message, statusCode: status });
  });
  // Every reply is checked as queued runs' results are: JSON would send a NaN or an infinity as
  // null, a reply that looks complete and is not.
  app.addHook('preSerialization', async (_req, reply, payload) => {
    if (reply.statusCode < 400) assertFinite(payload, 'the result');
    return payload;
  });
  app.setNotFoundHandler((req, reply) => reply.code(404).send({ error: `no route ${req.method} ${req.url.split('?')[0]}`, statusCode: 404 }));

  await app.register(swagger, {
    openapi: {
      openapi: '3.0.3',
      info: {
        title: 'Lantern Workbench API', version: API_VERSION,
        description: 'Compute endpoints queue a job on one compute queue and save it as a run. By default they wait and return the run; with ?async=true they answer 202 at once, and GET /api/jobs/{id}/events streams progress (server-sent events).',
      },
      components: { securitySchemes: { bearer: { type: 'http', scheme: 'bearer' } } },
    },
  });
  app.get('/api/openapi.json', { schema: { hide: true } }, async () => app.swagger());

  app.get('/api/health', { schema: { tags: ['server'] } }, async () => ({ ok: true, apiVersion: API_VERSION, queued: queue.length }));

  app.get('/api/models', { schema: { tags: ['models'], summary: 'The models a request may name' } }, async () => ({ default: models.defaultRef, models: models.choices() }));

  // Each method family's options, from the one declaration the request schemas and the CLI are
  // built from: the web app builds its forms from this.
  app.get('/api/methods/settings', { schema: { tags: ['methods'], summary: 'The options of each method family with an endpoint: types, ranges, defaults, and which methods read them' } }, async () => ({
    families: Object.fromEntries(API_FAMILIES.map((f) => [f.name, describeFamily(f)])),
  }));
  // The attribution part of the above, in the shape it had before every family was described.
  app.get('/api/attribution/settings', { schema: { tags: ['attribution'], summary: 'The attribution methods and the settings each reads (see /api/methods/settings)' } }, async () => ({
    methods: METHODS,
    settings: ATTRIBUTION_SETTINGS.map(({ key, type, appliesTo, alsoWith, help }) => ({ key, type, methods: appliesTo.values, alsoForEval: alsoWith !== undefined, help })),
  }));

  workbenchRoutes(app, models);

  app.post('/api/models/folders', {
    schema: {
      tags: ['models'], summary: 'Add a local model folder (checked: a config.json of a supported architecture and safetensors weights)',
      body: { type: 'object', additionalProperties: false, required: ['path'], properties: { path: { type: 'string', minLength: 1, maxLength: 4096 }, name: { type: 'string', maxLength: 100 } } },
    },
  }, async (req, reply) => {
    const { path: p, name } = req.body as { path: string; name?: string };
    const f = models.addFolder(p, name);
    return reply.code(201).send({ ...f, ref: `folder:${f.id}` });
  });

  app.delete('/api/models/folders/:id', { schema: { tags: ['models'], params: idParams } }, async (req, reply) => {
    if (!store.removeFolder((req.params as { id: string }).id)) return reply.code(404).send({ error: 'no model folder with that id', statusCode: 404 });
    return reply.code(204).send();
  });

  for (const kind of RUN_KINDS) {
    app.post(`/api/${kind}`, {
      schema: {
        tags: ['compute'], summary: `Run ${kind} (queued; saved as a run)`,
        body: SCHEMAS[kind],
        querystring: { type: 'object', additionalProperties: false, properties: { async: { type: 'string', enum: ['true', 'false', '1', '0'] }, token: { type: 'string' } } },
      },
    }, async (req, reply) => {
      const body = req.body as Record<string, any>;
      const ref = body.model ?? models.defaultRef;
      await models.resolve(ref, false); // an unknown model is a 400 now, not a failed job later
      precheck(kind, body);
      // Estimated before it is queued wherever the model is at hand; otherwise once it has loaded.
      const local = await models.loadIfLocal(ref);
      if (local) checkRequestWork(kind as RunKind, local, body, limits);
      const { title, model: _m, ...params } = body;
      const job = queue.enqueue(kind as RunKind, ref, title ?? defaultTitle(kind, body), { ...params, model: ref }, async (ctx) => {
        ctx.stage('loading', `loading ${ref}`);
        // The downloader reports every chunk; one event per whole megabyte is plenty.
        let shown = '';
        const m = await models.load(ref, (e) => {
          const mb = `${e.file} ${Math.floor(e.received / 1e6)}`;
          if (mb === shown) return;
          shown = mb;
          const of = e.total ? ` of ${(e.total / 1e6).toFixed(1)} MB` : ' MB';
          ctx.stage('downloading', `downloading ${e.file}: ${(e.received / 1e6).toFixed(1)}${of}`);
        });
        if (!local) checkRequestWork(kind as RunKind, m, params, limits);
        const out = await compute(kind, m, params, ctx);
        // Which commit of a Hub model ('hub:<id>@<revision>') the run used.
        return m.hub ? { ...(out as object), hub: m.hub } : out;
      });
      const q = (req.query as { async?: string }).async;
      if (q === 'true' || q === '1') return reply.code(202).send(jobInfo(job));
      try {
        await job.done;
      } catch (e) {
        if (e instanceof CancelledError) return reply.code(409).send({ error: 'the run was cancelled', statusCode: 409, id: job.id });
        throw e;
      }
      return reply.send(store.get(job.id));
    });
  }

  app.get('/api/jobs/:id', { schema: { tags: ['jobs'], params: idParams } }, async (req, reply) => {
    const id = (req.params as { id: string }).id;
    const job = queue.get(id);
    if (job) return { ...jobInfo(job), last: job.events[job.events.length - 1] };
    const run = store.get(id);
    if (!run) return reply.code(404).send({ error: `no job ${id}`, statusCode: 404 });
    return { id, kind: run.kind, status: run.status, events: `/api/jobs/${id}/events`, run: `/api/runs/${id}` };
  });

  app.get('/api/jobs/:id/events', { schema: { tags: ['jobs'], summary: 'Progress as server-sent events (queued, progress, done, error, cancelled)', params: idParams } }, async (req, reply) => {
    const id = (req.params as { id: string }).id;
    const job = queue.get(id);
    const run = job ? undefined : store.get(id);
    if (!job && !run) return reply.code(404).send({ error: `no job ${id}`, statusCode: 404 });
    reply.hijack();
    const res = reply.raw;
    res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache', connection: 'keep-alive', 'x-accel-buffering': 'no' });
    const send = (e: { type: string; [k: string]: unknown }) => res.write(`event: ${e.type}\ndata: ${JSON.stringify(e)}\n\n`);
    if (!job) {
      // Finished before this server started (or long ago): one terminal event from the store.
      const s = run!.status;
      send(s === 'done' ? { type: 'done', runId: id } : s === 'cancelled' ? { type: 'cancelled' } : { type: 'error', message: run!.error ?? s } as { type: string });
      res.end();
      return;
    }
    for (const e of job.events) send(e);
    if (job.finished) {
      res.end();
      return;
    }
    const onEvent = (e: { type: string }) => {
      send(e);
      if (e.type === 'done' || e.type === 'error' || e.type === 'cancelled') {
        job.off('event', onEvent);
        res.end();
      }
    };
    job.on('event', onEvent);
    // A comment line now and then keeps idle connections (proxies, long queues) from timing out.
    const ping = setInterval(() => res.write(': ping\n\n'), 15_000);
    res.on('close', () => {
      clearInterval(ping);
      job.off('event', onEvent);
    });
  });

  app.post('/api/jobs/:id/cancel', { schema: { tags: ['jobs'], params: idParams } }, async (req, reply) => {
    const id = (req.params as { id: string }).id;
    const job = queue.get(id);
    if (!job) return reply.code(404).send({ error: `no active job ${id}`, statusCode: 404 });
    if (!queue.cancel(id)) return reply.code(409).send({ error: `job ${id} already finished (${job.status})`, statusCode: 409 });
    return reply.code(202).send(jobInfo(job));
  });

  app.get('/api/runs', {
    schema: {
      tags: ['runs'], summary: 'Saved runs, newest first',
      querystring: {
        type: 'object', additionalProperties: false, properties: {
          kind: { type: 'string', enum: [...SAVED_RUN_KINDS] }, q: { type: 'string', maxLength: 200 }, limit: { type: 'string', pattern: '^[0-9]{1,4}$' }, offset: { type: 'string', pattern: '^[0-9]{1,9}$' }, token: { type: 'string' },
        },
      },
    },
  }, async (req) => {
    const q = req.query as { kind?: SavedRunKind; q?: string; limit?: string; offset?: string };
    return store.list({ kind: q.kind, q: q.q || undefined, limit: q.limit ? Math.min(1000, Number(q.limit)) : 100, offset: q.offset ? Number(q.offset) : 0 });
  });

  const runOr404 = (req: FastifyRequest, reply: FastifyReply) => {
    const id = (req.params as { id: string }).id;
    const run = store.get(id);
    if (!run) void reply.code(404).send({ error: `no saved run ${id}`, statusCode: 404 });
    return run;
  };

  app.get('/api/runs/:id', { schema: { tags: ['runs'], params: idParams } }, async (req, reply) => runOr404(req, reply) ?? reply);

  app.get('/api/runs/:id/export', { schema: { tags: ['runs'], summary: 'The run as a JSON file', params: idParams } }, async (req, reply) => {
    const run = runOr404(req, reply);
    if (!run) return reply;
    const safe = run.title.replace(/[^\w.-]+/g, '-').replace(/^-|-$/g, '').slice(0, 60) || run.kind;
    reply.header('content-disposition', `attachment; filename="lantern-${run.kind}-${safe}.json"`);
    return { format: 'lantern-run', version: 1, ...run };
  });

  app.post('/api/runs/import', {
    // Exported runs carry their whole result (an attention run's patterns are megabytes).
    bodyLimit: 64 * 2 ** 20,
    schema: {
      tags: ['runs'], summary: 'Save a run exported by GET /api/runs/{id}/export (from this Workbench or another) as a new run',
      body: {
        type: 'object', required: ['format', 'kind', 'title', 'model', 'status', 'request'],
        properties: {
          format: { type: 'string', enum: ['lantern-run'] }, version: { type: 'integer', enum: [1] }, kind: { type: 'string', enum: [...SAVED_RUN_KINDS] },
          title: { type: 'string', minLength: 1, maxLength: 200 }, model: { type: 'string', minLength: 1, maxLength: 300 },
          status: { type: 'string', enum: ['done', 'error', 'cancelled', 'interrupted'] }, request: { type: 'object' }, result: {}, error: { type: ['string', 'null'] },
        },
      },
    },
  }, async (req, reply) => {
    const b = req.body as { kind: SavedRunKind; title: string; model: string; status: 'done' | 'error' | 'cancelled' | 'interrupted'; request: Record<string, unknown>; result?: unknown; error?: string | null };
    if (b.status === 'done' && (b.result === null || b.result === undefined)) return reply.code(400).send({ error: 'a done run needs its result', statusCode: 400 });
    // JSON reads 1e999 as Infinity, which the store would save as null.
    const bad = firstNonFinite(b.result);
    if (bad) return reply.code(400).send({ error: `the imported run's result holds ${bad.value} at ${bad.path || 'the top'}; results hold finite numbers only`, statusCode: 400 });
    const run = store.import({ ...b, title: b.title.endsWith('(imported)') ? b.title : `${b.title.slice(0, 189)} (imported)`, result: b.result ?? null });
    return reply.code(201).send(run);
  });

  app.patch('/api/runs/:id', {
    schema: {
      tags: ['runs'], summary: 'Rename a run', params: idParams,
      body: { type: 'object', additionalProperties: false, required: ['title'], properties: { title: { type: 'string', minLength: 1, maxLength: 200 } } },
    },
  }, async (req, reply) => {
    const id = (req.params as { id: string }).id;
    const title = (req.body as { title: string }).title.trim();
    if (!title) return reply.code(400).send({ error: 'title must not be blank', statusCode: 400 });
    if (!store.rename(id, title)) return reply.code(404).send({ error: `no saved run ${id}`, statusCode: 404 });
    return store.get(id);
  });

  app.delete('/api/runs/:id', { schema: { tags: ['runs'], params: idParams } }, async (req, reply) => {
    const id = (req.params as { id: string }).id;
    const job = queue.get(id);
    if (job && !job.finished) return reply.code(409).send({ error: `run ${id} is still ${job.status}; cancel it first (POST /api/jobs/${id}/cancel)`, statusCode: 409 });
    if (!store.delete(id)) return reply.code(404).send({ error: `no saved run ${id}`, statusCode: 404 });
    return reply.code(204).send();
  });

  // Other interfaces plug in here, before the web app's catch-all static files.
  if (opts.openai) {
    const id = servedId(opts.model ?? BUNDLED_MODEL);
    await app.register(openAICompat, { models: { [id]: () => models.load(models.defaultRef) } });
  }
  await app.register(steeringRoutes, { models, queue });
  await app.register(evaluationApi, { file: path.join(dataDir, 'evaluation.sqlite') });
  await app.register(causalRoutes, { models, queue });
  await app.register(headsRoutes, { models, queue });
  for (const p of opts.plugins ?? []) await app.register(p.plugin, p.options ?? {});
  await app.register(featuresApi, { dir: path.join(dataDir, 'dashboards'), queue });
  await app.register(datasetJobsRoutes, { dir: opts.jobsDir ?? path.join(lanternHome(), 'jobs') });

  const webDir = opts.webDir ?? DEFAULT_WEB_DIR;
  if (fs.existsSync(path.join(webDir, 'index.html'))) {
    await app.register(fastifyStatic, { root: webDir, prefix: '/', index: ['index.html'] });
  } else {
    app.get('/', async (_req, reply) => reply.type('text/plain').send(`The web app is not built (${webDir} is missing); run \`npm run build:web\`. The API is at /api (see /api/openapi.json).\n`));
  }

  app.decorate('lantern', { store, queue, models });
  return app as unknown as LanternServer;
}
