/** The Workbench API, as the web app uses it. The token (if any) travels in a cookie the server set. */

export type Kind = 'forward' | 'attribution' | 'lens' | 'attention' | 'patching' | 'probes' | 'trace' | 'circuit';
/** Runs of the endpoints that answer directly (saved when they answer, with their `runId`). */
export type DirectKind = 'steering' | 'heads' | 'head' | 'neuron' | 'causal' | 'features';

export interface RunSummary {
  id: string;
  kind: Kind | DirectKind;
  title: string;
  model: string;
  status: string;
  createdAt: string;
  finishedAt: string | null;
  error: string | null;
}

export interface Run<R = any> extends RunSummary {
  request: Record<string, any>;
  result: R;
}

export interface ModelChoice {
  ref: string;
  label: string;
  kind: string;
  path?: string;
}

/** One component of a planted model's mechanism (or a control). */
export interface PlantedPart {
  component: string;
  layer: number;
  head?: number;
  neuron?: number;
  role: string;
}

/** A model's card (GET api/models/card). */
export interface ModelCard {
  ref: string;
  family: string;
  nLayers: number;
  nHeads: number;
  nKvHeads: number;
  dModel: number;
  dMlp: number;
  nCtx: number;
  dVocab: number;
  tokenizer: string;
  planted?: { description: string; mechanism: PlantedPart[]; controls: PlantedPart[]; task: { prompts: string; answer: string; metric: string } };
}

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

/** One method option as the server declares it (src/methods/options.ts, through GET api/methods/settings). */
export interface OptionSpec {
  key: string;
  type: {
    kind: 'integer' | 'number' | 'enum' | 'choices' | 'integers' | 'boolean' | 'prompt' | 'text' | 'token';
    min?: number; max?: number; exclusiveMin?: number; maxLength?: number; choices?: string[];
  };
  default?: string | number | boolean | string[];
  required: boolean;
  /** Read only when another option (e.g. the method) has one of these values. */
  appliesTo?: { key: string; values: string[] };
  /** Also read when this switch is on. */
  alsoWith?: string;
  help: string;
}

export interface FamilyOptions {
  name: string;
  command: string;
  options: OptionSpec[];
}

export const api = {
  methodSettings: () => call<{ families: Record<string, FamilyOptions> }>('GET', 'api/methods/settings'),
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
export async function runJob(kind: Kind, body: Record<string, unknown>, onProgress: (p: Progress) => void, onJob: (id: string) => void): Promise<Run> {
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
