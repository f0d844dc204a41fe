/**
 * Saving the runs of the endpoints that answer directly (steering, heads, neurons, causal
 * abstraction, features on a prompt): the run is written when the request starts and again when
 * it ends, as the queue does for jobs, so every result (and every failure) is in Saved runs with
 * its model, settings and seed, reopens from its permalink, and exports like any other run.
 */
import { LanternError } from '../../errors.js';
import type { RunStore } from './store.js';
import type { SavedRunKind } from './api-types.js';

/**
 * Runs `work` as a saved run of `kind` and answers its result with the run's id (`runId`).
 * `request` is what reopening the run restores: the settings the request gave, with their defaults
 * filled in (the schema's defaults), so the seed is always recorded.
 */
export async function savedRun<R extends object>(
  store: RunStore | undefined, kind: SavedRunKind, model: string, title: string, request: Record<string, unknown>, work: () => Promise<R>,
): Promise<R & { runId?: string }> {
  if (!store) return work();
  const run = store.create(kind, model, title, { ...request, model });
  store.setStatus(run.id, 'running');
  try {
    const result = await work();
    store.finish(run.id, { result });
    return { ...result, runId: run.id };
  } catch (e) {
    // A failed run is saved with its settings and why it failed; the error still answers the request.
    store.finish(run.id, { status: 'error', error: e instanceof LanternError ? e.message : `internal error: ${(e as Error).message}` });
    throw e;
  }
}

/** A short title from the first characters of a prompt. */
export function promptTitle(prefix: string, prompt: string): string {
  const p = prompt.replace(/\s+/g, ' ').trim();
  return `${prefix}: ${p.length > 50 ? `${p.slice(0, 49)}…` : p}`;
}
