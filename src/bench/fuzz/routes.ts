/**
 * The Workbench routes beyond the compute endpoints of `workbenchKind` (requests.ts), each with
 * valid requests that are then mutated (body fields, nested fields, path parameters and query
 * strings set to hostile values or removed, bodies that are not JSON):
 *
 *   POST /api/steering (prompt pair and probe directions), /api/heads/scores, /api/heads/head,
 *   /api/neurons/neuron, /api/causal (DAS, Boundless DAS, whole interchange);
 *   POST /api/trace and /api/circuit (queued, also with ?async=true);
 *   the features API over a dashboard set built in setup from a tiny SAE of the served model;
 *   the evaluation API over a store holding a pairwise and a single-grading run judged in setup
 *   by an in-process scripted judge, and POST /api/evaluation/arena;
 *   runs (list, get, export, import, rename, delete), jobs (get, events, cancel), models (check,
 *   card, folders), limits and settings;
 *   dataset jobs (list, get, cancel) over a jobs folder holding a real activations job of the served
 *   model with a record replaced by a FIFO and a shard by a link to /dev/zero, a job whose job.json
 *   is not JSON, and one submitted to a queue with a password (which cancel cannot reach).
 *
 * The server is a tiny random GPT-2 (context 64, 3-second job limit) and the planted models a
 * request names. The oracle is workbenchKind's: a 2xx whose JSON holds no NaN or infinity (seen
 * before serialisation, where JSON would turn them into null) — a compute run done, an async job
 * done or ended with a clean error — or a 4xx with a one-line JSON error; never a 5xx, a hang,
 * or a server that stops answering /api/health.
 */
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import fc from 'fast-check';
import { buildServer, LanternServer } from '../../interfaces/server/app.js';
import { TINY_GPT2, writeRandomModel } from '../../models/random.js';
import { loadModel } from '../../models/load.js';
import { firstNonFinite } from '../../finite.js';
import { Sae, saveSae } from '../../methods/sae/index.js';
import { buildDashboards, openFeatureSource, writeDashboards } from '../../methods/features/index.js';
import { EvalStore } from '../../methods/evaluation/store.js';
import { JudgeRunner } from '../../methods/evaluation/runner.js';
import { judgePairwise, judgeSingle } from '../../methods/evaluation/judge.js';
import { loadAnswers, loadBattles, loadQuestions, SAMPLE_DATA } from '../../methods/evaluation/data.js';
import type { LanguageModelBackend, Usage } from '../../backends/types.js';
import { activationsAnalysis, activationsJob } from '../../methods/representations/activations-job.js';
import { runJobLocally } from '../../engine/jobs/run.js';
import { recordQueue, shardFile } from '../../engine/jobs/store.js';
import { FuzzKind, Verdict } from './harness.js';
import { oddText, oddValue, refused, stillAnswering } from './requests.js';

type Method = 'GET' | 'POST' | 'PATCH' | 'DELETE';

/** One request; path parameters written `:name`, with values from `params` ('@run' and the like are resolved at send time). */
export interface RouteRequest {
  method: Method;
  path: string;
  params?: Record<string, string>;
  query?: Record<string, string>;
  body?: Record<string, unknown>;
}

type Mutation =
  | { op: 'set'; key: string; value: unknown }
  | { op: 'delete'; key: string }
  | { op: 'param'; key: string; value: string }
  | { op: 'query'; key: string; value: string | null }
  | { op: 'raw'; text: string };

const TEXT = 'The cat sat on the mat because';
const CLEAN = 'When Mary and John went to the store, John gave a drink to';
/** The set name of the dashboards built in setup. */
const SET = 'tiny-sae';

/** Routes answered with a saved run (queued): the result must be a done run, or a 202 whose job ends done or in a clean error. */
const QUEUED = new Set(['/api/trace', '/api/circuit']);

function bases(battles: unknown[]): RouteRequest[] {
  return [
    // Steering: ActAdd from a prompt pair, a probe direction fit on a built-in dataset.
    { method: 'POST', path: '/api/steering', body: { prompt: TEXT, layer: 1, coef: 4, direction: { source: 'pair', positive: ' love', negative: ' hate' }, maxNewTokens: 4 } },
    { method: 'POST', path: '/api/steering', body: { prompt: TEXT, layer: 0, coef: 2, direction: { source: 'probe', dataset: 'sentiment', kind: 'mass-mean', limit: 8 }, maxNewTokens: 3, temperature: 0.7, seed: 3 } },
    { method: 'POST', path: '/api/steering', body: { model: 'planted:induction', prompt: 'A B C A B', layer: 1, coef: 3, direction: { source: 'pair', positive: 'A', negative: 'B' }, maxNewTokens: 3 } },
    // Heads and neurons.
    { method: 'POST', path: '/api/heads/scores', body: { detector: 'previous-token', sequences: 4 } },
    { method: 'POST', path: '/api/heads/scores', body: { model: 'planted:induction', detector: 'copying', sequences: 3, seed: 2 } },
    { method: 'POST', path: '/api/heads/head', body: { layer: 1, head: 2, prompt: TEXT, k: 5 } },
    { method: 'POST', path: '/api/neurons/neuron', body: { model: 'planted:ngram-neuron', layer: 0, neuron: 3, maxTokens: 256, context: 6 } },
    // Causal abstraction on the planted models whose task tokens fit their vocabulary.
    { method: 'POST', path: '/api/causal', body: { model: 'planted:ioi', task: 'ioi', method: 'interchange-whole', positions: [-1], test: 8 } },
    { method: 'POST', path: '/api/causal', body: { model: 'planted:induction', task: 'induction', method: 'das', positions: [-1, -2], k: 2, epochs: 1, train: 8, test: 8, seed: 1 } },
    { method: 'POST', path: '/api/causal', body: { model: 'planted:ioi', task: 'ioi', method: 'boundless', positions: [-1], k: 3, epochs: 1, train: 8, test: 8 } },
    // Causal tracing and circuits (queued runs).
    // The answer is one token of the tiny model's 1000-token vocabulary.
    { method: 'POST', path: '/api/trace', body: { text: TEXT, subject: 'The cat', answer: ' the', samples: 2, kinds: ['resid', 'mlp'] } },
    { method: 'POST', path: '/api/trace', body: { text: TEXT, subject: 'the mat', answer: ' the', samples: 3, window: 2, noise: 1.5, seed: 4 } },
    { method: 'POST', path: '/api/circuit', body: { model: 'planted:induction', task: 'induction', method: 'acdc', n: 2, threshold: 0.2 } },
    { method: 'POST', path: '/api/circuit', body: { model: 'planted:induction', task: 'induction', method: 'eap', n: 2, igSteps: 2 } },
    { method: 'POST', path: '/api/circuit', body: { model: 'planted:ioi', task: 'ioi', method: 'path', n: 2, sender: 'L0H0' } },
    // Features: the dashboard set built from a tiny SAE.
    { method: 'GET', path: '/api/features/sets' },
    { method: 'GET', path: '/api/features/sets/:set', params: { set: SET } },
    { method: 'GET', path: '/api/features/sets/:set/features/:n', params: { set: SET, n: '3' } },
    { method: 'POST', path: '/api/features/sets/:set/top', params: { set: SET }, body: { text: TEXT, k: 3 } },
    // Evaluation.
    { method: 'POST', path: '/api/evaluation/arena', body: { battles, bootstrap: 10, seed: 1 } },
    { method: 'POST', path: '/api/evaluation/arena', body: { battles: battles.slice(0, 12), pseudoTies: 0.5 } },
    { method: 'GET', path: '/api/evaluation/runs' },
    { method: 'GET', path: '/api/evaluation/runs/:id/items', params: { id: '@pairwise' }, query: { filter: 'flip' } },
    { method: 'GET', path: '/api/evaluation/runs/:id/items', params: { id: '@single' }, query: { filter: 'error' } },
    { method: 'GET', path: '/api/evaluation/runs/:id/items/:item', params: { id: '@pairwise', item: '@item' } },
    { method: 'GET', path: '/api/evaluation/runs/:id/leaderboard', params: { id: '@pairwise' }, query: { bootstrap: '10', pseudoTies: '1' } },
    { method: 'GET', path: '/api/evaluation/runs/:id/leaderboard', params: { id: '@single' } },
    // Runs, jobs, models, settings.
    { method: 'GET', path: '/api/runs', query: { kind: 'forward', q: 'cat', limit: '5', offset: '0' } },
    { method: 'GET', path: '/api/runs/:id', params: { id: '@run' } },
    { method: 'GET', path: '/api/runs/:id/export', params: { id: '@run' } },
    { method: 'POST', path: '/api/runs/import', body: { '@export': true } },
    { method: 'PATCH', path: '/api/runs/:id', params: { id: '@run' }, body: { title: 'renamed run' } },
    { method: 'DELETE', path: '/api/runs/:id', params: { id: '@fresh' } },
    { method: 'GET', path: '/api/jobs/:id', params: { id: '@run' } },
    { method: 'POST', path: '/api/jobs/:id/cancel', params: { id: '@run' } },
    { method: 'GET', path: '/api/jobs/:id/events', params: { id: '@run' } },
    // Dataset jobs.
    { method: 'GET', path: '/api/dataset-jobs' },
    { method: 'GET', path: '/api/dataset-jobs/:id', params: { id: '@djob' } },
    { method: 'POST', path: '/api/dataset-jobs/:id/cancel', params: { id: '@djob' } },
    { method: 'POST', path: '/api/dataset-jobs/:id/cancel', params: { id: '@djob-queued' } },
    { method: 'POST', path: '/api/dataset-jobs/:id/cancel', params: { id: '@djob-unreadable' } },
    { method: 'POST', path: '/api/models/check', body: { ref: 'planted:ioi' } },
    { method: 'GET', path: '/api/models/card', query: { ref: 'default' } },
    { method: 'POST', path: '/api/models/folders', body: { path: '@model', name: 'tiny copy' } },
    { method: 'DELETE', path: '/api/models/folders/:id', params: { id: '@folder' } },
    { method: 'GET', path: '/api/models' },
    { method: 'GET', path: '/api/limits' },
    { method: 'GET', path: '/api/methods/settings' },
  ];
}

/** Field names a mutation sets: every base's fields (nested ones dotted), and some that none has. */
function fieldsOf(reqs: RouteRequest[]): string[] {
  const out = new Set(['model', 'title', 'seed', 'k', 'text', 'prompt', 'layer', 'head', 'neuron', 'positions', 'steps', 'constructor', '__proto__']);
  for (const r of reqs) {
    for (const [k, v] of Object.entries(r.body ?? {})) {
      out.add(k);
      if (v && typeof v === 'object' && !Array.isArray(v)) for (const n of Object.keys(v)) out.add(`${k}.${n}`);
    }
  }
  out.delete('@export');
  return [...out];
}

const oddParam = fc.oneof(
  fc.string({ maxLength: 12 }),
  fc.constantFrom('', '0', '-1', '1.5', '99999999999999999999', 'NaN', '..', '../..', '%2e%2e', 'tiny-sae', 'x'.repeat(150), 'a b', 'é', '\u0000', '@run', '@pairwise', '@single', '@djob', 'true', '1e9', 'constructor', '__proto__'),
);

function setPath(body: Record<string, unknown>, key: string, value: unknown): void {
  const [head, tail] = key.split(/\.(.*)/s);
  if (tail === undefined) {
    Object.defineProperty(body, head, { value, enumerable: true, writable: true, configurable: true });
    return;
  }
  const inner = body[head];
  if (inner && typeof inner === 'object' && !Array.isArray(inner)) setPath(inner as Record<string, unknown>, tail, value);
  else body[head] = { [tail]: value };
}

function deletePath(body: Record<string, unknown>, key: string): void {
  const [head, tail] = key.split(/\.(.*)/s);
  if (tail === undefined) delete body[head];
  else if (body[head] && typeof body[head] === 'object') deletePath(body[head] as Record<string, unknown>, tail);
}

/** A judge answering from the prompt's hash: A, B, a tie, or no verdict at all (a parse error the browser shows). */
function scriptedJudge(): LanguageModelBackend {
  let requests = 0;
  const verdicts = ['[[A]]', '[[B]]', '[[C]]', 'Both are fine.', 'Rating: [[7]]', 'Rating: [[3]]'];
  return {
    id: 'scripted:fuzz-judge',
    async scoreContinuation() { throw new Error('not used'); },
    async generate(prompt) {
      requests++;
      const text = typeof prompt === 'string' ? prompt : JSON.stringify(prompt);
      let h = 0;
      for (let i = 0; i < text.length; i++) h = (h * 31 + text.charCodeAt(i)) >>> 0;
      return { text: `Verdict: ${verdicts[h % verdicts.length]}` };
    },
    usage: (): Usage => ({ requests, cachedRequests: 0, promptTokens: 0, completionTokens: 0, retries: 0 }),
  };
}

interface Ctx {
  app: LanternServer;
  dir: string;
  model: string;
  run: string;
  exported: Record<string, unknown>;
  pairwise: string;
  single: string;
  item: string;
  /** Dataset jobs in the server's jobs folder: a real one, one submitted to a queue, one whose job.json is not JSON. */
  djobs: { real: string; queued: string; unreadable: string };
  /** The first non-finite number of the reply being sent, seen before serialisation. */
  nonFinite?: { path: string; value: number };
}

async function setupServer(): Promise<Ctx> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'lantern-fuzz-routes-'));
  const model = path.join(dir, 'tiny');
  writeRandomModel(model, TINY_GPT2);
  const data = path.join(dir, 'data');

  // A tiny random SAE on the served model's layer-0 residual stream, and its dashboards.
  const m = await loadModel(model);
  const d = TINY_GPT2.dModel;
  const dSae = 32;
  let s = 7;
  const rnd = (n: number, scale: number) => Float32Array.from({ length: n }, () => ((s = (s * 1664525 + 1013904223) >>> 0) / 2 ** 32 - 0.5) * scale);
  const saeDir = path.join(dir, 'sae');
  saveSae(new Sae({ architecture: 'standard', dIn: d, dSae, dOut: d, applyBDecToInput: true, normalizeActivations: 'none', hookName: 'blocks.0.hook_resid_post' },
    { W_enc: rnd(d * dSae, 0.5), W_dec: rnd(dSae * d, 0.5), b_enc: rnd(dSae, 0.1), b_dec: rnd(d, 0.1) }), saeDir);
  const source = await openFeatureSource(m, { sae: saeDir });
  const tokens = Array.from({ length: 256 }, (_, i) => (i * 37 + 11) % TINY_GPT2.dVocab);
  writeDashboards(await buildDashboards(m, source, tokens, { seq: 32, topK: 4 }), path.join(data, 'dashboards', SET));
  await m.executor.dropWeights(m.weights);

  // A pairwise and a single-grading run in the evaluation store, judged by the scripted judge.
  const store = new EvalStore(path.join(data, 'evaluation.sqlite'));
  const questions = (await loadQuestions(path.join(SAMPLE_DATA, 'questions.jsonl'))).slice(0, 4);
  const answers = (await loadAnswers(path.join(SAMPLE_DATA, 'answers.jsonl'))).filter((a) => questions.some((q) => q.id === a.questionId));
  await judgePairwise(new JudgeRunner(scriptedJudge(), { store }), { questions, answers });
  await judgeSingle(new JudgeRunner(scriptedJudge(), { store }), { questions, answers });
  const runs = store.runs();
  const pairwise = runs.find((r) => r.kind === 'judge-pairwise')!.id;
  const single = runs.find((r) => r.kind === 'judge-single')!.id;
  const item = store.verdicts(pairwise)[0].item;
  store.close();

  const jobsDir = path.join(dir, 'jobs');
  const app = await buildServer({ dataDir: data, jobsDir, model, allowHub: false, webDir: path.join(dir, 'none'), limits: { maxJobSeconds: 3 } });
  const ctx: Ctx = { app, dir, model, run: '', exported: {}, pairwise, single, item, djobs: await datasetJobs(jobsDir, model) };
  app.addHook('preSerialization', async (_req, _reply, payload) => {
    ctx.nonFinite ??= firstNonFinite(payload);
    return payload;
  });
  // A saved run for the run and job routes, and its export for the import route.
  const res = await app.inject({ method: 'POST', url: '/api/forward', headers: { host: 'localhost' }, payload: { text: TEXT, title: 'the cat' } });
  ctx.run = res.json().id;
  ctx.exported = (await app.inject({ method: 'GET', url: `/api/runs/${ctx.run}/export`, headers: { host: 'localhost' } })).json();
  return ctx;
}

/** Fills `jobsDir` with the dataset jobs the routes are fuzzed over (see the module comment); returns their ids. */
async function datasetJobs(jobsDir: string, modelDir: string): Promise<Ctx['djobs']> {
  const m = await loadModel(modelDir);
  try {
    const examples = Array.from({ length: 6 }, (_, i) => ({ text: `${TEXT} ${i}`, label: i % 2 }));
    const real = await activationsJob(jobsDir, m, examples, { hooks: ['blocks.0.hook_resid_post'], batchSize: 2, shardSize: 2 });
    await runJobLocally(jobsDir, real, activationsAnalysis, { model: m, examples });
    fs.rmSync(path.join(jobsDir, real.id, 'shard-1.done.json'));
    execFileSync('mkfifo', [path.join(jobsDir, real.id, 'shard-1.done.json')]);
    fs.rmSync(shardFile(jobsDir, real, 2));
    fs.symlinkSync('/dev/zero', shardFile(jobsDir, real, 2));
    const queued = await activationsJob(jobsDir, m, examples, { hooks: ['blocks.1.hook_resid_post'], batchSize: 2, shardSize: 2 });
    recordQueue(jobsDir, queued.id, 'redis://lantern:secret@127.0.0.1:1');
    const unreadable = await activationsJob(jobsDir, m, examples.slice(1), { hooks: ['blocks.0.hook_resid_post'] });
    fs.writeFileSync(path.join(jobsDir, unreadable.id, 'job.json'), '{"format": "lantern-job", ');
    return { real: real.id, queued: queued.id, unreadable: unreadable.id };
  } finally {
    await m.executor.dropWeights(m.weights);
  }
}

/** The routes fuzz kind (see the module comment). `reached` counts, per route, the statuses seen. */
export function routesKind(): FuzzKind<{ req: RouteRequest; async: boolean; muts: Mutation[] }> & { reached: Map<string, Map<number, number>> } {
  let ctx: Ctx;
  let battles: unknown[] = [];
  let list: RouteRequest[] = [];
  const reached = new Map<string, Map<number, number>>();

  const resolve = async (v: string): Promise<string> => {
    switch (v) {
      case '@run': return ctx.run;
      case '@pairwise': return ctx.pairwise;
      case '@single': return ctx.single;
      case '@item': return ctx.item;
      case '@djob': return ctx.djobs.real;
      case '@djob-queued': return ctx.djobs.queued;
      case '@djob-unreadable': return ctx.djobs.unreadable;
      case '@model': return ctx.model;
      case '@fresh': {
        const r = await ctx.app.inject({ method: 'POST', url: '/api/runs/import', headers: { host: 'localhost' }, payload: ctx.exported });
        return r.json().id;
      }
      case '@folder': {
        const r = await ctx.app.inject({ method: 'POST', url: '/api/models/folders', headers: { host: 'localhost' }, payload: { path: ctx.model } });
        return r.json().id;
      }
      default: return v;
    }
  };

  return {
    name: 'workbench routes',
    reached,
    async setup() {
      battles = (await loadBattles(path.join(SAMPLE_DATA, 'battles.jsonl'))).slice(0, 60);
      list = bases(battles);
      ctx = await setupServer();
    },
    arbitrary() {
      const fields = fieldsOf(list);
      const key = fc.oneof({ weight: 6, arbitrary: fc.constantFrom(...fields) }, { weight: 1, arbitrary: fc.string({ maxLength: 8 }) });
      const mutation: fc.Arbitrary<Mutation> = fc.oneof(
        { weight: 8, arbitrary: fc.record({ op: fc.constant('set' as const), key, value: oddValue }) },
        // Values a schema lets through: small integers, fractions, short position lists, other names.
        { weight: 4, arbitrary: fc.record({ op: fc.constant('set' as const), key, value: fc.oneof(
          fc.integer({ min: -3, max: 70 }), fc.double({ min: -2, max: 40, noNaN: true }), fc.array(fc.integer({ min: -20, max: 20 }), { minLength: 1, maxLength: 4 }),
          fc.constantFrom('planted:induction', 'planted:ioi', 'planted:ngram-neuron', 'default', 'bundled', 'induction', 'ioi', 'greater-than', 'factual', 'das', 'boundless', 'interchange-whole',
            'acdc', 'eap', 'path', 'L0H0', 'L1H3', 'MLP0', 'input', 'L0H0,L1H1.k,logits', 'resid', 'mlp', 'attn', ['resid'], ['attn', 'mlp'], 'copying', 'induction', 'previous-token',
            'duplicate-token', 'successor', 'ov-copy', 'ov-suppression', 'copy-suppression', 'name-mover', 'capitals', 'cities', 'comparisons', 'sentiment', 'logistic', 'mass-mean-iid', 'k-sparse', 'pair', 'probe'),
        ) }) },
        { weight: 2, arbitrary: fc.record({ op: fc.constant('delete' as const), key }) },
        { weight: 3, arbitrary: fc.record({ op: fc.constant('param' as const), key: fc.constantFrom('id', 'set', 'n', 'item'), value: oddParam }) },
        { weight: 2, arbitrary: fc.record({ op: fc.constant('query' as const), key: fc.constantFrom('filter', 'bootstrap', 'pseudoTies', 'kind', 'q', 'limit', 'offset', 'ref', 'async', 'x'), value: fc.option(fc.oneof(oddParam, oddText.filter((t) => t.length < 200)), { nil: null }) }) },
        { weight: 1, arbitrary: fc.record({ op: fc.constant('raw' as const), text: fc.oneof(fc.string({ maxLength: 30 }), fc.constantFrom('{', '[]', 'null', '"x"', '{"text": }', '1e999')) }) },
      );
      return fc.record({ req: fc.constantFrom(...list), async: fc.boolean(), muts: fc.array(mutation, { maxLength: 3 }) });
    },
    async oracle({ req, async, muts }) {
      const body: Record<string, unknown> | undefined = req.body?.['@export'] ? structuredClone(ctx.exported) : structuredClone(req.body);
      const params = { ...req.params };
      const query: Record<string, string> = { ...req.query };
      let raw: string | undefined;
      for (const m of muts) {
        if (m.op === 'set' && body) setPath(body, m.key, m.value);
        else if (m.op === 'delete' && body) deletePath(body, m.key);
        else if (m.op === 'param' && m.key in params) params[m.key] = m.value;
        else if (m.op === 'query') {
          if (m.value === null) delete query[m.key];
          else query[m.key] = m.value;
        } else if (m.op === 'raw' && req.method !== 'GET') raw = m.text;
      }
      if (body && typeof body.path === 'string') body.path = await resolve(body.path);
      let url = req.path;
      for (const [k, v] of Object.entries(params)) url = url.replace(`:${k}`, encodeURIComponent(await resolve(v)));
      if (QUEUED.has(req.path) && async) query.async = 'true';
      const qs = new URLSearchParams(query).toString();
      ctx.nonFinite = undefined;
      const res = await ctx.app.inject({
        method: req.method, url: qs ? `${url}?${qs}` : url, headers: { host: 'localhost', ...(body || raw !== undefined ? { 'content-type': 'application/json' } : {}) },
        ...(raw !== undefined ? { payload: raw } : body ? { payload: JSON.stringify(body) } : {}),
      });
      const seen = reached.get(`${req.method} ${req.path}`) ?? new Map<number, number>();
      seen.set(res.statusCode, (seen.get(res.statusCode) ?? 0) + 1);
      reached.set(`${req.method} ${req.path}`, seen);
      const nonFinite = ctx.nonFinite as { path: string; value: number } | undefined;
      let json: any;
      try {
        json = res.body ? JSON.parse(res.body) : undefined;
      } catch { /* checked below */ }
      const down = await stillAnswering(ctx.app);
      if (down) return { outcome: 'server down', violation: down };
      if (res.statusCode >= 500) return { outcome: `${res.statusCode}`, violation: `${res.statusCode}: ${res.body.slice(0, 300)}` };
      if (res.statusCode >= 400 && json?.statusCode !== undefined && json.statusCode !== res.statusCode) {
        return { outcome: 'status mismatch', violation: `a ${res.statusCode} whose body says statusCode ${json.statusCode}: ${res.body.slice(0, 200)}` };
      }
      // A refused non-finite result is clean, and counted apart: it may hide arithmetic to fix.
      if (res.statusCode >= 400) return refused(res.statusCode, json?.error, /non-finite/.test(String(json?.error)) ? `refused ${res.statusCode} non-finite` : `refused ${res.statusCode}`);
      if (nonFinite) return { outcome: 'non-finite', violation: `a ${res.statusCode} whose reply has ${nonFinite.value} at ${nonFinite.path || 'the top'} (sent as null)` };
      if (res.statusCode === 202 && QUEUED.has(req.path)) {
        const id = json?.id;
        await ctx.app.lantern.queue.get(id)?.done.catch(() => {});
        const run = ctx.app.lantern.store.get(id);
        if (run?.status === 'error') return refused(400, run.error, 'async job error');
        if (run?.status !== 'done') return { outcome: `async ${run?.status}`, violation: `the job ended ${run?.status}` };
        const nf = firstNonFinite(run.result);
        return nf ? { outcome: 'non-finite', violation: `non-finite ${nf.value} at ${nf.path}` } : { outcome: 'async done' };
      }
      if (req.path === '/api/jobs/:id/events') {
        // Server-sent events, each `event: <type>` and `data: <its JSON>`.
        const events = res.body.split('\n\n').filter(Boolean);
        const bad = events.find((e) => {
          const m = /^event: (\w+)\ndata: (.*)$/s.exec(e);
          try { return !m || JSON.parse(m[2]).type !== m[1]; } catch { return true; }
        });
        return bad === undefined && events.length ? { outcome: 'ok' } : { outcome: 'bad events', violation: `a ${res.statusCode} whose events are not well-formed: ${res.body.slice(0, 300)}` };
      }
      if (QUEUED.has(req.path) && (json?.status !== 'done' || json?.result == null)) return { outcome: `${res.statusCode}`, violation: `a ${res.statusCode} without a done run: ${res.body.slice(0, 300)}` };
      if (res.statusCode !== 204 && json === undefined) return { outcome: 'not JSON', violation: `a ${res.statusCode} whose body is not JSON: ${res.body.slice(0, 200)}` };
      return { outcome: 'ok' };
    },
    async teardown() {
      await ctx?.app.close();
      if (ctx) fs.rmSync(ctx.dir, { recursive: true, force: true });
    },
    describe: (i) => JSON.stringify({ method: i.req.method, path: i.req.path, params: i.req.params, query: i.req.query, async: i.async, muts: i.muts }).slice(0, 2000),
  };
}
