/**
 * Saved runs and user-added model folders, in one SQLite database (WAL mode).
 *
 * A run's row is written when it is queued and again when it finishes, each in its own committed
 * transaction, so a crash mid-run loses only the run in flight: on the next start, rows still
 * 'queued' or 'running' are marked 'interrupted' and every finished run is intact.
 */
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import Database from 'better-sqlite3';
import type { Run, RunStatus, RunSummary, SavedRunKind } from './api-types.js';

export interface ModelFolder {
  id: string;
  path: string;
  name: string;
  addedAt: string;
}

interface RunRow {
  id: string; kind: SavedRunKind; title: string; model: string; status: RunStatus; created_at: string; finished_at: string | null;
  error: string | null; request: string; result: string | null;
}

const SCHEMA = `
CREATE TABLE IF NOT EXISTS runs (
  id TEXT PRIMARY KEY,
  kind TEXT NOT NULL,
  title TEXT NOT NULL,
  model TEXT NOT NULL,
  status TEXT NOT NULL,
  created_at TEXT NOT NULL,
  finished_at TEXT,
  error TEXT,
  request TEXT NOT NULL,
  result TEXT
);
CREATE INDEX IF NOT EXISTS runs_created ON runs (created_at DESC);
CREATE TABLE IF NOT EXISTS model_folders (
  id TEXT PRIMARY KEY,
  path TEXT NOT NULL UNIQUE,
  name TEXT NOT NULL,
  added_at TEXT NOT NULL
);
`;

function summary(r: RunRow): RunSummary {
  return { id: r.id, kind: r.kind, title: r.title, model: r.model, status: r.status, createdAt: r.created_at, finishedAt: r.finished_at, error: r.error };
}

export class RunStore {
  readonly db: Database.Database;

  constructor(readonly file: string) {
    if (file !== ':memory:') fs.mkdirSync(path.dirname(file), { recursive: true });
    this.db = new Database(file);
    this.db.pragma('journal_mode = WAL');
    // FULL: a run reported as saved survives power loss too, not only a process crash.
    this.db.pragma('synchronous = FULL');
    this.db.exec(SCHEMA);
    this.db.prepare(`UPDATE runs SET status = 'interrupted', error = 'the server stopped before this run finished', finished_at = ?
      WHERE status IN ('queued', 'running')`).run(new Date().toISOString());
  }

  create(kind: SavedRunKind, model: string, title: string, request: Record<string, unknown>): RunSummary {
    const row: RunRow = {
      id: crypto.randomUUID(), kind, title, model, status: 'queued', created_at: new Date().toISOString(), finished_at: null, error: null,
      request: JSON.stringify(request), result: null,
    };
    this.db.prepare(`INSERT INTO runs (id, kind, title, model, status, created_at, finished_at, error, request, result)
      VALUES (@id, @kind, @title, @model, @status, @created_at, @finished_at, @error, @request, @result)`).run(row);
    return summary(row);
  }

  setStatus(id: string, status: RunStatus): void {
    this.db.prepare('UPDATE runs SET status = ? WHERE id = ?').run(status, id);
  }

  finish(id: string, outcome: { result: unknown } | { status: 'error' | 'cancelled'; error: string }): void {
    const now = new Date().toISOString();
    if ('result' in outcome) {
      this.db.prepare(`UPDATE runs SET status = 'done', result = ?, finished_at = ?, error = NULL WHERE id = ?`).run(JSON.stringify(outcome.result), now, id);
    } else {
      this.db.prepare('UPDATE runs SET status = ?, error = ?, finished_at = ? WHERE id = ?').run(outcome.status, outcome.error, now, id);
    }
  }

  /**
   * Runs newest first, each with its request (the settings it ran with); `q` keeps those whose
   * title, model, kind or request contains it (case-insensitive).
   */
  list(opts: { kind?: SavedRunKind; q?: string; limit?: number; offset?: number } = {}): { runs: (RunSummary & { request: Record<string, unknown> })[]; total: number } {
    const conds = [...(opts.kind ? ['kind = @kind'] : []), ...(opts.q ? [`(title || ' ' || model || ' ' || kind || ' ' || request) LIKE @q ESCAPE '\\'`] : [])];
    const where = conds.length ? `WHERE ${conds.join(' AND ')}` : '';
    const q = opts.q ? `%${opts.q.replace(/[\\%_]/g, (c) => `\\${c}`)}%` : undefined;
    const rows = this.db.prepare(`SELECT id, kind, title, model, status, created_at, finished_at, error, request FROM runs ${where}
      ORDER BY created_at DESC, rowid DESC LIMIT @limit OFFSET @offset`).all({ kind: opts.kind, q, limit: opts.limit ?? 100, offset: opts.offset ?? 0 }) as RunRow[];
    const { n } = this.db.prepare(`SELECT count(*) AS n FROM runs ${where}`).get({ kind: opts.kind, q }) as { n: number };
    return { runs: rows.map((r) => ({ ...summary(r), request: JSON.parse(r.request) })), total: n };
  }

  /** Saves a run exported from this or another Workbench (GET /api/runs/{id}/export) as a new run. */
  import(run: { kind: SavedRunKind; title: string; model: string; status: RunStatus; request: Record<string, unknown>; result: unknown; error?: string | null; createdAt?: string }): RunSummary {
    const now = new Date().toISOString();
    const row: RunRow = {
      id: crypto.randomUUID(), kind: run.kind, title: run.title, model: run.model, status: run.status, created_at: now, finished_at: now,
      error: run.error ?? null, request: JSON.stringify(run.request), result: run.result === null || run.result === undefined ? null : JSON.stringify(run.result),
    };
    this.db.prepare(`INSERT INTO runs (id, kind, title, model, status, created_at, finished_at, error, request, result)
      VALUES (@id, @kind, @title, @model, @status, @created_at, @finished_at, @error, @request, @result)`).run(row);
    return summary(row);
  }

  get(id: string): Run | undefined {
    const r = this.db.prepare('SELECT * FROM runs WHERE id = ?').get(id) as RunRow | undefined;
    if (!r) return undefined;
    return { ...summary(r), request: JSON.parse(r.request), result: r.result === null ? null : JSON.parse(r.result) };
  }

  rename(id: string, title: string): boolean {
    return this.db.prepare('UPDATE runs SET title = ? WHERE id = ?').run(title, id).changes === 1;
  }

  delete(id: string): boolean {
    return this.db.prepare('DELETE FROM runs WHERE id = ?').run(id).changes === 1;
  }

  folders(): ModelFolder[] {
    return (this.db.prepare('SELECT id, path, name, added_at FROM model_folders ORDER BY added_at').all() as { id: string; path: string; name: string; added_at: string }[])
      .map((r) => ({ id: r.id, path: r.path, name: r.name, addedAt: r.added_at }));
  }

  addFolder(folderPath: string, name: string): ModelFolder {
    const existing = this.folders().find((f) => f.path === folderPath);
    if (existing) return existing;
    const f: ModelFolder = { id: crypto.randomUUID().slice(0, 8), path: folderPath, name, addedAt: new Date().toISOString() };
    this.db.prepare('INSERT INTO model_folders (id, path, name, added_at) VALUES (?, ?, ?, ?)').run(f.id, f.path, f.name, f.addedAt);
    return f;
  }

  removeFolder(id: string): boolean {
    return this.db.prepare('DELETE FROM model_folders WHERE id = ?').run(id).changes === 1;
  }

  close(): void {
    this.db.close();
  }
}
