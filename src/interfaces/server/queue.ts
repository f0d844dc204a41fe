/**
 * One compute queue: jobs run one at a time (the model work itself runs in the executor's worker
 * thread, so the HTTP event loop stays free), each with progress events and cancellation.
 *
 * Cancellation and progress hook into the executor: every graph run goes through `JobExecutor.run`,
 * which counts runs and refuses to start one once the job is cancelled. A cancelled job therefore
 * stops at the next graph boundary (a patching sweep after its current batch, IG after its current
 * batch of steps), and its partial work is discarded.
 */
import { EventEmitter } from 'node:events';
import { Executor } from '../../engine/runtime/executor.js';
import { LanternError } from '../../errors.js';
import { assertFinite } from '../../finite.js';
import type { RunSummary, SavedRunKind } from './api-types.js';
import type { RunStore } from './store.js';

export class CancelledError extends Error {
  override name = 'CancelledError';
}

export class JobExecutor extends Executor {
  signal?: AbortSignal;
  /** Called after each graph run with the sequences it ran (its batch). */
  onGraphRun?: (sequences: number) => void;

  override async run(...args: Parameters<Executor['run']>): ReturnType<Executor['run']> {
    if (this.signal?.aborted) throw new CancelledError('cancelled');
    const out = await super.run(...args);
    this.onGraphRun?.(batchOf(args[2]));
    return out;
  }
}

/**
 * The sequences one graph run processed: the largest leading dimension among its batched feeds
 * (token ids [batch, seq], embeddings [batch, seq, d]); 1 for a graph fed no batch.
 */
function batchOf(feeds: Record<string, { shape: readonly number[] }>): number {
  let n = 1;
  for (const t of Object.values(feeds)) if (t.shape.length >= 2) n = Math.max(n, t.shape[0]);
  return n;
}

export type JobEvent =
  | { type: 'queued'; position: number }
  | { type: 'progress'; stage: 'loading' | 'downloading' | 'computing' | 'saving'; message: string; runs: number; fraction: number | null; elapsedMs: number }
  | { type: 'done'; runId: string; elapsedMs: number }
  | { type: 'error'; message: string; status: number }
  | { type: 'cancelled' };

export type JobStatus = 'queued' | 'running' | 'done' | 'error' | 'cancelled';

export interface JobContext {
  signal: AbortSignal;
  /**
   * Reports a stage; `expectedSequences` (sequences this stage will run through the model, each
   * row of a batch counted) turns the sequences run so far into a fraction.
   */
  stage(stage: 'loading' | 'downloading' | 'computing', message: string, expectedSequences?: number): void;
  /**
   * Reports the stage's own count of its work (e.g. circuit edges tried), for methods whose number of
   * model runs is not known up front; the fraction is then done / total.
   */
  advance(done: number, total: number): void;
}

export class Job extends EventEmitter {
  status: JobStatus = 'queued';
  readonly events: JobEvent[] = [];
  readonly abort = new AbortController();
  /** Resolves with the saved result, or rejects with the job's error. */
  readonly done: Promise<unknown>;
  resolveDone!: (v: unknown) => void;
  rejectDone!: (e: unknown) => void;
  startedAt = 0;
  runs = 0;
  /** Sequences run so far (each row of a batched graph run counted). */
  sequences = 0;
  /** Set when the job was stopped for running past the server's time limit (not by a user). */
  timedOut = false;

  constructor(readonly run: RunSummary) {
    super();
    this.setMaxListeners(100);
    this.done = new Promise((res, rej) => {
      this.resolveDone = res;
      this.rejectDone = rej;
    });
    // Callers that only follow events must not see an unhandled rejection.
    this.done.catch(() => {});
  }

  get id(): string {
    return this.run.id;
  }

  emitEvent(e: JobEvent): void {
    this.events.push(e);
    // A long sweep emits a progress event per graph run; keep the terminal ones and the latest few.
    if (this.events.length > 200) this.events.splice(1, this.events.length - 100);
    this.emit('event', e);
  }

  get finished(): boolean {
    return this.status === 'done' || this.status === 'error' || this.status === 'cancelled';
  }
}

/**
 * A job that leaves the process this much larger than it found it has grown ORT's arenas for its
 * batches; its sessions are released so the memory goes back (recompiling costs well under a
 * second, which small jobs, below this, never pay).
 */
const RELEASE_AFTER_GROWTH = 256 * 2 ** 20;

/** How many finished jobs keep their events in memory (their runs stay in the store). */
const KEEP_FINISHED = 200;

export class ComputeQueue {
  private jobs = new Map<string, Job>();
  private waiting: { job: Job; work: (ctx: JobContext) => Promise<unknown> }[] = [];
  private running: Job | undefined;

  constructor(private store: RunStore, private executor: JobExecutor, private opts: { maxJobSeconds?: number } = {}) {}

  get(id: string): Job | undefined {
    return this.jobs.get(id);
  }

  get length(): number {
    return this.waiting.length + (this.running ? 1 : 0);
  }

  enqueue(kind: SavedRunKind, model: string, title: string, request: Record<string, unknown>, work: (ctx: JobContext) => Promise<unknown>): Job {
    const job = new Job(this.store.create(kind, model, title, request));
    this.jobs.set(job.id, job);
    this.waiting.push({ job, work });
    job.emitEvent({ type: 'queued', position: this.length - 1 });
    this.trim();
    void this.pump();
    return job;
  }

  cancel(id: string): boolean {
    const job = this.jobs.get(id);
    if (!job || job.finished) return false;
    job.abort.abort();
    const i = this.waiting.findIndex((w) => w.job === job);
    if (i >= 0) {
      this.waiting.splice(i, 1);
      this.finishCancelled(job);
    }
    return true;
  }

  private finishCancelled(job: Job): void {
    job.status = 'cancelled';
    this.store.finish(job.id, { status: 'cancelled', error: 'cancelled by the user' });
    job.emitEvent({ type: 'cancelled' });
    job.rejectDone(new CancelledError('cancelled'));
  }

  private async pump(): Promise<void> {
    if (this.running) return;
    const next = this.waiting.shift();
    if (!next) return;
    const { job, work } = next;
    this.running = job;
    job.status = 'running';
    job.startedAt = Date.now();
    const rssBefore = process.memoryUsage().rss;
    this.store.setStatus(job.id, 'running');
    this.waiting.forEach((w, i) => w.job.emitEvent({ type: 'queued', position: i + 1 }));
    let stage: { stage: 'loading' | 'downloading' | 'computing'; message: string; expected?: number; base: number; count?: { done: number; total: number } } = { stage: 'loading', message: 'starting', base: 0 };
    const fraction = () => stage.count ? stage.count.done / stage.count.total : stage.expected ? (job.sequences - stage.base) / stage.expected : null;
    const progress = () => job.emitEvent({
      type: 'progress', stage: stage.stage, message: stage.message, runs: job.runs,
      // Below 1 until the work is saved: an estimate that ran short must not show a finished bar.
      fraction: fraction() === null ? null : Math.min(0.99, fraction()!), elapsedMs: Date.now() - job.startedAt,
    });
    // The estimate let this job in; the deadline holds it to the limit if the estimate was wrong.
    const limit = this.opts.maxJobSeconds;
    const deadline = limit === undefined ? undefined : setTimeout(() => {
      job.timedOut = true;
      job.abort.abort();
    }, limit * 1000);
    this.executor.signal = job.abort.signal;
    this.executor.onGraphRun = (sequences) => {
      job.runs++;
      job.sequences += sequences;
      progress();
    };
    const ctx: JobContext = {
      signal: job.abort.signal,
      stage: (s, message, expected) => {
        stage = { stage: s, message, expected, base: job.sequences };
        progress();
      },
      advance: (done, total) => {
        if (!(total > 0)) return;
        stage.count = { done, total };
        progress();
      },
    };
    try {
      const result = await work(ctx);
      if (job.abort.signal.aborted) throw new CancelledError('cancelled');
      // JSON would save NaN as null: a run marked done whose numbers are missing.
      assertFinite(result, `the ${job.run.kind} result`);
      job.emitEvent({ type: 'progress', stage: 'saving', message: 'saving the run', runs: job.runs, fraction: 1, elapsedMs: Date.now() - job.startedAt });
      this.store.finish(job.id, { result });
      job.status = 'done';
      job.emitEvent({ type: 'done', runId: job.id, elapsedMs: Date.now() - job.startedAt });
      job.resolveDone(result);
    } catch (e) {
      if (!job.timedOut && (e instanceof CancelledError || job.abort.signal.aborted)) {
        this.finishCancelled(job);
      } else {
        const message = job.timedOut
          ? `stopped after ${limit} s, this server's --max-job-seconds (the job's estimate was lower); use a smaller request`
          : e instanceof Error ? e.message : String(e);
        const status = job.timedOut || e instanceof LanternError ? 400 : 500;
        job.status = 'error';
        this.store.finish(job.id, { status: 'error', error: message });
        job.emitEvent({ type: 'error', message, status });
        job.rejectDone(job.timedOut ? new LanternError(message) : e);
      }
    } finally {
      clearTimeout(deadline);
      this.executor.signal = undefined;
      this.executor.onGraphRun = undefined;
      if (process.memoryUsage().rss - rssBefore > RELEASE_AFTER_GROWTH) await this.executor.releaseSessions().catch(() => {});
      this.running = undefined;
      void this.pump();
    }
  }

  private trim(): void {
    const finished = [...this.jobs.values()].filter((j) => j.finished);
    for (const j of finished.slice(0, Math.max(0, finished.length - KEEP_FINISHED))) this.jobs.delete(j.id);
  }

  cancelAll(): void {
    for (const j of [...this.waiting.map((w) => w.job), ...(this.running ? [this.running] : [])]) this.cancel(j.id);
  }

  /** Waits for the running and queued jobs (for a clean shutdown). */
  async drain(): Promise<void> {
    for (const j of [this.running, ...this.waiting.map((w) => w.job)]) if (j) await j.done.catch(() => {});
  }
}
