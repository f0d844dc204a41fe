/**
 * The Workbench API, as the web app uses it. The token (if any) travels in a cookie the server set.
 * The shapes of its answers are the server's own declarations (types only: nothing of the server is bundled).
 */
import type { Run as SavedRun, RunKind } from '../../src/interfaces/server/api-types';
import type { ModelCard, ModelChoice, RunSummary } from '../../src/interfaces/server/api-types';
import type { DescribedFamily } from '../../src/methods/options';

export type { ModelCard, ModelChoice, RunKind, RunSummary };
export type { DirectRunKind } from '../../src/interfaces/server/api-types';
export type { DescribedFamily, DescribedOption } from '../../src/methods/options';
export type { PlantedComponent } from '../../src/models/planted/types';

/** A saved run; views read the request and result of their own kind, so both stay loosely typed here. */
export type Run<R = any> = SavedRun<R, Record<string, any>>;

export class ApiError extends Error {
  constructor(message: string, readonly status: number) {
    super(message);
  }
}

async function call<T>(method: string, url: string, body?: unknown): Promise<T> {
  const res = await fetch(url, {
    method,
    headers: body === undefined ? {} : { 'content-type': 'application/json' },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  if (res.status === 204) return undefined as T;
  const json = await res.json().catch(() => ({ error: `${res.status} ${res.statusText}` }));
  if (!res.ok) throw new ApiError(json.error ?? `${res.status} ${res.statusText}`, res.status);
  return json as T;
}

export const api = {
  methodSettings: () => call<{ families: Record<string, DescribedFamily> }>('GET', 'api/methods/settings'),
  models: () => call<{ default: string; models: ModelChoice[] }>('GET', 'api/models'),
  checkModel: (ref: string) => call<{ ok: true }>('POST', 'api/models/check', { ref }),
  removeFolder: (id: string) => call<void>('DELETE', `api/models/folders/${encodeURIComponent(id)}`),
  modelCard: (ref: string) => call<ModelCard>('GET', `api/models/card?ref=${encodeURIComponent(ref)}`),
  limits: () => call<{ views: Record<string, { chars: number; tokens?: number }> }>('GET', 'api/limits'),
  addFolder: (path: string) => call<ModelChoice & { ref: string }>('POST', 'api/models/folders', { path }),
  runs: (kind?: string, q?: string) => call<{ runs: (RunSummary & { request: Record<string, any> })[]; total: number }>('GET', `api/runs?limit=200${kind ? `&kind=${kind}` : ''}${q ? `&q=${encodeURIComponent(q)}` : ''}`),
  importRun: (run: unknown) => call<RunSummary>('POST', 'api/runs/import', run),
  run: (id: string) => call<Run>('GET', `api/runs/${encodeURIComponent(id)}`),
  rename: (id: string, title: string) => call<Run>('PATCH', `api/runs/${encodeURIComponent(id)}`, { title }),
  remove: (id: string) => call<void>('DELETE', `api/runs/${encodeURIComponent(id)}`),
  cancel: (id: string) => call<unknown>('POST', `api/jobs/${encodeURIComponent(id)}/cancel`),
  steering: <T>(body: Record<string, unknown>) => call<T>('POST', 'api/steering', body),
  causal: <T>(body: Record<string, unknown>) => call<T>('POST', 'api/causal', body),
};

export interface Progress {
  stage: string;
  message: string;
  fraction: number | null;
  elapsedMs: number;
  position?: number;
}

/** The jobs this page has queued and not yet seen finish (id → method or kind), all stopped by Cancel. */
export const activeJobs = new Map<string, string>();

/**
 * Queues a job, follows its progress events, and resolves with the saved run (or rejects with the
 * server's error). `onJob` gets the job id at once; the job is in {@link activeJobs} until it ends.
 */
export async function runJob(kind: RunKind, body: Record<string, unknown>, onProgress: (p: Progress) => void, onJob: (id: string) => void): Promise<Run> {
  const job = await call<{ id: string; events: string }>('POST', `api/${kind}?async=true`, body);
  activeJobs.set(job.id, String(body.method ?? kind));
  try {
    onJob(job.id);
    await follow(job, onProgress);
  } finally {
    activeJobs.delete(job.id);
  }
  return api.run(job.id);
}

function follow(job: { id: string; events: string }, onProgress: (p: Progress) => void): Promise<void> {
  return new Promise<void>((resolve, reject) => {
    const es = new EventSource(job.events.replace(/^\//, ''));
    es.addEventListener('queued', (e) => {
      const d = JSON.parse((e as MessageEvent).data);
      onProgress({ stage: 'queued', message: d.position > 0 ? `waiting: ${d.position} job(s) ahead` : 'starting', fraction: null, elapsedMs: 0, position: d.position });
    });
    es.addEventListener('progress', (e) => onProgress(JSON.parse((e as MessageEvent).data)));
    es.addEventListener('done', () => {
      es.close();
      resolve();
    });
    es.addEventListener('cancelled', () => {
      es.close();
      reject(new ApiError('cancelled', 409));
    });
    es.addEventListener('error', (e) => {
      const data = (e as MessageEvent).data;
      es.close();
      if (data) {
        const d = JSON.parse(data);
        reject(new ApiError(d.message, d.status ?? 500));
      } else {
        reject(new ApiError('lost the connection to the server', 0));
      }
    });
  });
}
