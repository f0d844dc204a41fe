/**
 * The Workbench's evaluation API: stored evaluation runs (the SQLite file `lantern judge --store`
 * writes; by default <data dir>/evaluation.sqlite), their verdicts for the judgment browser, and
 * arena leaderboards from a pairwise run's battles or from posted battles.
 *
 *   GET  /api/evaluation/runs                     runs, newest first
 *   GET  /api/evaluation/runs/:id/items?filter=   one row per judged item (filter: flip, critique, error)
 *   GET  /api/evaluation/runs/:id/items/:item     every stored judgment of one item
 *   GET  /api/evaluation/runs/:id/leaderboard     the arena over a pairwise run's battles
 *   POST /api/evaluation/arena                    the arena over posted battles
 */
import type { FastifyPluginAsync } from 'fastify';
import { LanternError } from '../../errors.js';
import { arena } from '../../methods/evaluation/arena.js';
import type { Battle } from '../../methods/evaluation/judge.js';
import { EvalStore, type StoredVerdict } from '../../methods/evaluation/store.js';

/** Where the evaluation store lives. */
export interface EvaluationApiOptions {
  file: string;
}

const FILTERS = ['all', 'flip', 'critique', 'error'] as const;
/** Most bootstrap resamples one leaderboard request may ask for. */
const MAX_BOOTSTRAP = 2000;
/**
 * Most battle fits (battles × bootstrap resamples) one leaderboard request may ask for: the fits run
 * on the server's one thread, about 0.7 s per 10 million here, so this keeps a request to seconds
 * (200,000 battles with 2,000 resamples would block every other request for minutes).
 */
const MAX_BATTLE_FITS = 20_000_000;

/** Checks a leaderboard request's work against {@link MAX_BATTLE_FITS}. */
function checkArenaWork(battles: number, bootstrap: number): void {
  if (battles * bootstrap > MAX_BATTLE_FITS) {
    throw new LanternError(`${battles} battles × ${bootstrap} bootstrap resamples is more than this server computes in one request (${MAX_BATTLE_FITS / 1e6} million battle fits): ask for at most ${Math.floor(MAX_BATTLE_FITS / battles)} resamples, or run \`lantern arena\` from the command line`);
  }
}

/** One judged item as the browser lists it. */
interface ItemRow {
  item: string;
  kind: string;
  judgments: number;
  errors: number;
  positionFlip: boolean;
  critiqueDisagrees: boolean;
  /** The final verdict (pairwise) or the scores (single). */
  verdict: unknown;
}

function items(verdicts: StoredVerdict[]): ItemRow[] {
  const by = new Map<string, StoredVerdict[]>();
  for (const v of verdicts) by.set(v.item, [...(by.get(v.item) ?? []), v]);
  return [...by].map(([item, vs]) => {
    const judged = vs.filter((v) => v.meta?.kind !== 'pairwise-outcome');
    const finals = vs.filter((v) => v.meta?.kind === 'pairwise-outcome');
    return {
      item, kind: String(judged[0]?.meta?.kind ?? finals[0]?.meta?.kind ?? 'unknown'), judgments: judged.length,
      errors: judged.filter((v) => v.error !== null).length,
      positionFlip: finals.some((v) => v.meta?.positionFlip === true),
      critiqueDisagrees: judged.some((v) => v.meta?.critiqueDisagrees === true),
      verdict: finals.length ? finals.map((v) => (v.parsed as { final?: unknown } | null)?.final ?? null) : judged.map((v) => v.parsed),
    };
  });
}

function battlesOf(summary: unknown): Battle[] {
  const b = (summary as { battles?: Battle[] } | null)?.battles;
  if (!Array.isArray(b) || !b.length) throw new LanternError('this run has no battles: only pairwise runs do');
  return b;
}

/** The evaluation endpoints, as a Fastify plugin. */
export const evaluationApi: FastifyPluginAsync<EvaluationApiOptions> = async (app, opts) => {
  const store = new EvalStore(opts.file);
  app.addHook('onClose', async () => store.close());
  const notFound = (id: string) => ({ error: `no evaluation run ${id}`, statusCode: 404 });

  app.get('/api/evaluation/runs', async () => ({
    runs: store.runs().map((r) => ({ id: r.id, kind: r.kind, judge: r.judge, createdAt: r.createdAt, finishedAt: r.finishedAt, settings: r.settings })),
  }));

  app.get('/api/evaluation/runs/:id/items', async (req, reply) => {
    const { id } = req.params as { id: string };
    const filter = String((req.query as { filter?: string }).filter ?? 'all');
    if (!(FILTERS as readonly string[]).includes(filter)) return reply.code(400).send({ error: `filter must be one of ${FILTERS.join(', ')}, got '${filter}'`, statusCode: 400 });
    if (!store.run(id)) return reply.code(404).send(notFound(id));
    const rows = items(store.verdicts(id)).filter((r) => filter === 'all' || (filter === 'flip' ? r.positionFlip : filter === 'critique' ? r.critiqueDisagrees : r.errors > 0));
    return { items: rows };
  });

  app.get('/api/evaluation/runs/:id/items/:item', async (req, reply) => {
    const { id, item } = req.params as { id: string; item: string };
    if (!store.run(id)) return reply.code(404).send(notFound(id));
    const rows = store.verdicts(id).filter((v) => v.item === item);
    if (!rows.length) return reply.code(404).send({ error: `run ${id} has no item ${item}`, statusCode: 404 });
    return { item, judgments: rows };
  });

  app.get('/api/evaluation/runs/:id/leaderboard', async (req, reply) => {
    const { id } = req.params as { id: string };
    const run = store.run(id);
    if (!run) return reply.code(404).send(notFound(id));
    const q = req.query as { bootstrap?: string; pseudoTies?: string };
    // The bound POST /api/evaluation/arena's schema sets: the resampling runs on the server's one
    // thread, and bootstrap=1e9 would keep it from answering anyone for hours.
    if (q.bootstrap && Number(q.bootstrap) > MAX_BOOTSTRAP) return reply.code(400).send({ error: `bootstrap must be at most ${MAX_BOOTSTRAP}, got ${JSON.stringify(q.bootstrap)}`, statusCode: 400 });
    try {
      const battles = battlesOf(run.summary);
      const bootstrap = q.bootstrap ? Number(q.bootstrap) : 100;
      checkArenaWork(battles.length, bootstrap);
      return arena(battles, { bootstrap, pseudoTies: q.pseudoTies ? Number(q.pseudoTies) : 1 });
    } catch (e) {
      if (e instanceof LanternError) return reply.code(400).send({ error: e.message, statusCode: 400 });
      throw e;
    }
  });

  app.post('/api/evaluation/arena', {
    bodyLimit: 16 * 1024 * 1024,
    schema: {
      body: {
        type: 'object', required: ['battles'], additionalProperties: false,
        properties: {
          battles: { type: 'array', maxItems: 200000, items: { type: 'object', required: ['model_a', 'model_b', 'winner'], properties: { model_a: { type: 'string' }, model_b: { type: 'string' }, winner: { type: 'string' } } } },
          bootstrap: { type: 'integer', minimum: 0, maximum: MAX_BOOTSTRAP }, seed: { type: 'integer', minimum: 0 }, pseudoTies: { type: 'number', minimum: 0 },
        },
      },
    },
  }, async (req, reply) => {
    const b = req.body as { battles: Battle[]; bootstrap?: number; seed?: number; pseudoTies?: number };
    try {
      checkArenaWork(b.battles.length, b.bootstrap ?? 100);
      return arena(b.battles, { bootstrap: b.bootstrap ?? 100, seed: b.seed, pseudoTies: b.pseudoTies });
    } catch (e) {
      if (e instanceof LanternError) return reply.code(400).send({ error: e.message, statusCode: 400 });
      throw e;
    }
  });
};
