/**
 * The endpoints that answer directly (steering, heads, neurons, causal abstraction, features on a
 * prompt) run their work as a job on the server's one compute queue and wait for it: the run is
 * saved when the request starts and again when it ends, so every result (and every failure) is in
 * Saved runs with its model, settings and seed, reopens from its permalink and exports like any
 * other run; and, like every queued job, the work takes its turn on the compute thread, shows in
 * /api/jobs, can be cancelled, and is stopped at the server's --max-job-seconds.
 */
import { CancelledError, type ComputeQueue } from './queue.js';
import type { SavedRunKind } from './api-types.js';

/**
 * Runs `work` as a queued, saved run of `kind` and answers its result with the run's id (`runId`).
 * `request` is what reopening the run restores: the settings the request gave, with their defaults
 * filled in (the schema's defaults), so the seed is always recorded. Without a queue (a plugin
 * registered on its own) the work just runs.
 */
export async function savedRun<R extends object>(
  queue: ComputeQueue | undefined, kind: SavedRunKind, model: string, title: string, request: Record<string, unknown>, work: () => Promise<R>,
): Promise<R & { runId?: string }> {
  if (!queue) return work();
  const job = queue.enqueue(kind, model, title, { ...request, model }, work);
  try {
    return { ...((await job.done) as R), runId: job.id };
  } catch (e) {
    if (e instanceof CancelledError) throw Object.assign(new Error('the run was cancelled'), { statusCode: 409 });
    throw e;
  }
}

/** A short title from the first characters of a prompt. */
export function promptTitle(prefix: string, prompt: string): string {
  const p = prompt.replace(/\s+/g, ' ').trim();
  return `${prefix}: ${p.length > 50 ? `${p.slice(0, 49)}…` : p}`;
}
