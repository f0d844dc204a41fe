/**
 * Where evaluation runs keep what they did, in one SQLite database (WAL mode, like Workbench runs):
 *
 *   eval_requests  every judge request that got an answer, keyed by a hash of (backend, prompt,
 *                  generation settings): a re-run finds its answers here and sends nothing.
 *   eval_runs      one row per run: kind, settings, summary, token usage and cost.
 *   eval_verdicts  one row per judgment: the prompt, the raw response, the parsed result, the
 *                  rationale, and the error when the item failed — so a surprising number can be
 *                  traced back to the text that produced it.
 *
 * Without a file the same tables live in memory (`:memory:`), so the cache still spans a run.
 */
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import Database from 'better-sqlite3';
import { LanternError } from '../../errors.js';

const SCHEMA = `
CREATE TABLE IF NOT EXISTS eval_requests (
  key TEXT PRIMARY KEY,
  backend TEXT NOT NULL,
  prompt TEXT NOT NULL,
  settings TEXT NOT NULL,
  response TEXT NOT NULL,
  created_at TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS eval_runs (
  id TEXT PRIMARY KEY,
  kind TEXT NOT NULL,
  judge TEXT NOT NULL,
  settings TEXT NOT NULL,
  summary TEXT,
  usage TEXT,
  created_at TEXT NOT NULL,
  finished_at TEXT
);
CREATE TABLE IF NOT EXISTS eval_verdicts (
  run_id TEXT NOT NULL,
  item TEXT NOT NULL,
  variant TEXT NOT NULL,
  prompt TEXT NOT NULL,
  raw TEXT,
  parsed TEXT,
  rationale TEXT,
  error TEXT,
  meta TEXT,
  created_at TEXT NOT NULL,
  PRIMARY KEY (run_id, item, variant)
);
`;

/** One stored judgment: what was asked, what came back, what it was read as. */
export interface StoredVerdict {
  runId: string;
  /** The item judged (question id, battle, …). */
  item: string;
  /** Which judgment of the item: order (AB/BA), template, sample. */
  variant: string;
  prompt: string;
  raw: string | null;
  parsed: unknown;
  rationale: string | null;
  /** Why the item has no verdict (request failed, verdict unreadable), or null. */
  error: string | null;
  /** Anything else the browser shows (the two answers, models, lengths). */
  meta: Record<string, unknown> | null;
}

/** A run's row: kind, judge, settings, and once finished its summary and usage. */
export interface StoredRun {
  id: string;
  kind: string;
  judge: string;
  settings: Record<string, unknown>;
  summary: unknown;
  usage: unknown;
  createdAt: string;
  finishedAt: string | null;
}

/** A hash naming a judge request: the same backend, prompt and settings give the same key. */
export function requestKey(backend: string, prompt: string, settings: object): string {
  return crypto.createHash('sha256').update(JSON.stringify([backend, prompt, settings])).digest('hex');
}

/** The SQLite database behind evaluation runs: cached requests, runs, and every verdict. */
export class EvalStore {
  readonly db: Database.Database;

  /** Opens (creating if needed) the database at `file`; ':memory:' (default) keeps it in memory. */
  constructor(readonly file = ':memory:') {
    if (file !== ':memory:') {
      try {
        fs.mkdirSync(path.dirname(path.resolve(file)), { recursive: true });
      } catch (e) {
        throw new LanternError(`cannot create the folder of the evaluation store ${file}: ${(e as Error).message}`);
      }
    }
    try {
      this.db = new Database(file);
      this.db.pragma('journal_mode = WAL');
      this.db.exec(SCHEMA);
    } catch (e) {
      throw new LanternError(`cannot open the evaluation store ${file}: ${(e as Error).message}`);
    }
  }

  /** The cached answer to a request, if it was answered before. */
  response(key: string): string | undefined {
    const r = this.db.prepare('SELECT response FROM eval_requests WHERE key = ?').get(key) as { response: string } | undefined;
    return r?.response;
  }

  /** Remembers the answer to a request (committed at once, so a crash keeps it). */
  saveResponse(key: string, backend: string, prompt: string, settings: object, response: string): void {
    this.db.prepare(`INSERT OR REPLACE INTO eval_requests (key, backend, prompt, settings, response, created_at)
      VALUES (?, ?, ?, ?, ?, ?)`).run(key, backend, prompt, JSON.stringify(settings), response, new Date().toISOString());
  }

  /** Starts a run's row; `id` given, an earlier row of that id is reused (a resumed run). */
  startRun(kind: string, judge: string, settings: Record<string, unknown>, id?: string): string {
    const runId = id ?? crypto.randomUUID();
    this.db.prepare(`INSERT INTO eval_runs (id, kind, judge, settings, created_at) VALUES (?, ?, ?, ?, ?)
      ON CONFLICT(id) DO UPDATE SET settings = excluded.settings, finished_at = NULL`).run(runId, kind, judge, JSON.stringify(settings), new Date().toISOString());
    return runId;
  }

  /** Records a run's summary and usage. */
  finishRun(id: string, summary: unknown, usage: unknown): void {
    this.db.prepare('UPDATE eval_runs SET summary = ?, usage = ?, finished_at = ? WHERE id = ?').run(JSON.stringify(summary), JSON.stringify(usage), new Date().toISOString(), id);
  }

  /** Stores (or replaces) one judgment. */
  saveVerdict(v: StoredVerdict): void {
    this.db.prepare(`INSERT OR REPLACE INTO eval_verdicts (run_id, item, variant, prompt, raw, parsed, rationale, error, meta, created_at)
      VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`).run(
      v.runId, v.item, v.variant, v.prompt, v.raw, JSON.stringify(v.parsed ?? null), v.rationale, v.error, JSON.stringify(v.meta ?? null), new Date().toISOString(),
    );
  }

  /** Every run, newest first. */
  runs(): StoredRun[] {
    const rows = this.db.prepare('SELECT * FROM eval_runs ORDER BY created_at DESC, rowid DESC').all() as {
      id: string; kind: string; judge: string; settings: string; summary: string | null; usage: string | null; created_at: string; finished_at: string | null;
    }[];
    return rows.map((r) => ({
      id: r.id, kind: r.kind, judge: r.judge, settings: JSON.parse(r.settings), summary: r.summary === null ? null : JSON.parse(r.summary),
      usage: r.usage === null ? null : JSON.parse(r.usage), createdAt: r.created_at, finishedAt: r.finished_at,
    }));
  }

  /** One run's row, if it exists. */
  run(id: string): StoredRun | undefined {
    return this.runs().find((r) => r.id === id);
  }

  /** The judgments of a run, in the order they were stored. */
  verdicts(runId: string): StoredVerdict[] {
    const rows = this.db.prepare('SELECT * FROM eval_verdicts WHERE run_id = ? ORDER BY rowid').all(runId) as {
      run_id: string; item: string; variant: string; prompt: string; raw: string | null; parsed: string | null; rationale: string | null; error: string | null; meta: string | null;
    }[];
    return rows.map((r) => ({
      runId: r.run_id, item: r.item, variant: r.variant, prompt: r.prompt, raw: r.raw, parsed: r.parsed === null ? null : JSON.parse(r.parsed),
      rationale: r.rationale, error: r.error, meta: r.meta === null ? null : JSON.parse(r.meta),
    }));
  }

  /** Closes the database. */
  close(): void {
    this.db.close();
  }
}
