/**
 * How an evaluation talks to its judge: every request goes through one JudgeRunner, which
 *   - answers a request seen before from the store (a re-run of a finished evaluation sends none),
 *   - keeps at most `concurrency` requests in flight,
 *   - retries failures with exponential backoff (on top of an HTTP backend's own transport
 *     retries, which already cover 429, 5xx and timeouts; default 0 here),
 *   - limits each request's time, and
 *   - turns a failure into a per-item error instead of failing the run.
 * Usage (requests sent, answered from the store, failed, tokens, cost) is the backend's own count
 * over the run, so it is what the provider bills.
 */
import pLimit from 'p-limit';
import type { LanguageModelBackend, Usage } from '../../backends/types.js';
import { LanternError } from '../../errors.js';
import { EvalStore, requestKey } from './store.js';

/** Generation settings of a judge request (part of its cache key). */
export interface JudgeSampling {
  maxTokens: number;
  temperature: number;
  seed?: number;
}

/** How patiently and how widely a run asks its judge. */
export interface RunnerOptions {
  /** Where requests and verdicts are kept (default: a fresh in-memory store). */
  store?: EvalStore;
  /** Requests in flight at once (default 4). */
  concurrency?: number;
  /** Retries of a failed request (default 0: HTTP backends already retry at the transport). */
  retries?: number;
  /** First backoff delay in ms, doubled per retry (default 250). */
  backoffMs?: number;
  /** Per-request time limit in ms (default: none beyond the backend's own). */
  timeoutMs?: number;
  /** Called after each request: done of total. */
  progress?: (done: number, total: number) => void;
}

/** An answer, or why there is none. */
export type JudgeReply = { ok: true; text: string; cached: boolean } | { ok: false; error: string };

/** Requests and tokens of one run. */
export interface RunUsage extends Usage {
  /** Requests answered from the store, never sent. */
  fromStore: number;
  /** Requests that failed for good (the items they belong to are marked). */
  failed: number;
}

/** A run that has asked nothing yet. */
export const NO_USAGE: RunUsage = { requests: 0, cachedRequests: 0, promptTokens: 0, completionTokens: 0, retries: 0, failures: 0, fromStore: 0, failed: 0 };

/**
 * `a + sign × b`, field by field (a cost where either has one): a run's usage from its parts', or
 * one part's from two readings of a runner.
 */
export function addUsage(a: RunUsage, b: RunUsage, sign: 1 | -1 = 1): RunUsage {
  const f = (k: keyof RunUsage) => ((a[k] as number | undefined) ?? 0) + sign * ((b[k] as number | undefined) ?? 0);
  return {
    requests: f('requests'), cachedRequests: f('cachedRequests'), promptTokens: f('promptTokens'), completionTokens: f('completionTokens'),
    retries: f('retries'), failures: f('failures'), ...(a.cost !== undefined || b.cost !== undefined ? { cost: f('cost') } : {}), fromStore: f('fromStore'), failed: f('failed'),
  };
}

/** Sends judge requests with caching, a concurrency limit, retries and per-item errors. */
export class JudgeRunner {
  readonly store: EvalStore;
  private readonly limit: ReturnType<typeof pLimit>;
  private readonly before: Usage;
  private fromStore = 0;
  private failed = 0;
  private done = 0;
  private total = 0;

  constructor(readonly judge: LanguageModelBackend, private readonly o: RunnerOptions = {}) {
    this.store = o.store ?? new EvalStore();
    const c = o.concurrency ?? 4;
    if (!Number.isInteger(c) || c < 1) throw new LanternError(`concurrency must be an integer ≥ 1, got ${c}`);
    const r = o.retries ?? 0;
    if (!Number.isInteger(r) || r < 0) throw new LanternError(`retries must be an integer ≥ 0, got ${r}`);
    this.limit = pLimit(c);
    this.before = judge.usage();
  }

  /** Announces `n` more requests to come, for the progress count. */
  expect(n: number): void {
    this.total += n;
  }

  /** Asks the judge once (or reads the stored answer). Never throws for a failed request. */
  async ask(prompt: string, sampling: JudgeSampling): Promise<JudgeReply> {
    const key = requestKey(this.judge.id, prompt, sampling);
    const hit = this.store.response(key);
    if (hit !== undefined) {
      this.fromStore++;
      this.tick();
      return { ok: true, text: hit, cached: true };
    }
    const reply = await this.limit(() => this.send(prompt, sampling));
    if (reply.ok) this.store.saveResponse(key, this.judge.id, prompt, sampling, reply.text);
    else this.failed++;
    this.tick();
    return reply;
  }

  private tick(): void {
    this.done++;
    this.o.progress?.(this.done, Math.max(this.total, this.done));
  }

  private async send(prompt: string, s: JudgeSampling): Promise<JudgeReply> {
    const retries = this.o.retries ?? 0;
    for (let attempt = 0; ; attempt++) {
      try {
        const signal = this.o.timeoutMs ? AbortSignal.timeout(this.o.timeoutMs) : undefined;
        const g = await this.judge.generate(prompt, { maxTokens: s.maxTokens, temperature: s.temperature, seed: s.seed, signal });
        return { ok: true, text: g.text, cached: false };
      } catch (e) {
        if (attempt >= retries) {
          const msg = (e as Error)?.name === 'TimeoutError' ? `no answer within ${this.o.timeoutMs} ms` : (e as Error)?.message ?? String(e);
          return { ok: false, error: `request failed: ${msg}` };
        }
        await new Promise((r) => setTimeout(r, (this.o.backoffMs ?? 250) * 2 ** attempt * (0.5 + Math.random())));
      }
    }
  }

  /** The run's requests and tokens so far (the backend's own count since the runner began). */
  usage(): RunUsage {
    const now = this.judge.usage();
    const d = (k: keyof Usage) => ((now[k] as number | undefined) ?? 0) - ((this.before[k] as number | undefined) ?? 0);
    return {
      requests: d('requests'), cachedRequests: d('cachedRequests'), promptTokens: d('promptTokens'), completionTokens: d('completionTokens'),
      retries: d('retries'), failures: d('failures'), ...(now.cost !== undefined ? { cost: d('cost') } : {}), fromStore: this.fromStore, failed: this.failed,
    };
  }
}
