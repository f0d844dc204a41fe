/**
 * A generic fuzzing harness: one `FuzzKind` per input kind (a GGUF header, a tokenizer.json, a
 * Workbench request, a /v1 request, …), each a mutator (a fast-check arbitrary that derives
 * hostile inputs from a valid one) and an oracle (runs one input and says what happened). The
 * harness adds what every kind shares: a time bound per input (a hang is a failure), exceptions
 * escaping the oracle counted as crashes, counts per outcome, and fixed seeds so that a failure
 * found once is found again.
 *
 * The oracle decides what is acceptable for its kind; the house rules it enforces are the same
 * everywhere: an input is either accepted (and then its result is finite) or refused with one
 * clean line (a LanternError, exit code 1, or a 4xx with a JSON error) — never a stack trace, a
 * native abort, a hang, a non-finite number, or a server that stops answering.
 *
 * Adding a kind (e.g. safetensors or config.json mutation): implement FuzzKind and list it in
 * run.ts and test/fuzz.test.ts.
 */
import fc from 'fast-check';

export interface Verdict {
  /** A short label counted per kind, e.g. 'accepted', 'refused', 'refused 400'. */
  outcome: string;
  /** Set when the input broke a rule: what happened (this fails the property). */
  violation?: string;
}

export interface FuzzKind<I> {
  readonly name: string;
  /** Builds the valid inputs the mutator starts from (files, servers); called once. */
  setup?(): Promise<void>;
  /** The mutator. Valid inputs must stay reachable too, so the oracle sees both sides. */
  arbitrary(): fc.Arbitrary<I>;
  oracle(input: I): Promise<Verdict>;
  /** Checks that need every input at once (e.g. loading accepted GGUF files in a child process). */
  finish?(): Promise<Verdict[]>;
  teardown?(): Promise<void>;
  /** A readable form of an input for failure reports. */
  describe?(input: I): string;
}

export interface CampaignOptions {
  runs: number;
  seed: number;
  /** Bound on one input; beyond it the input counts as a hang (default 20 s). */
  timeoutMs?: number;
  /** Shrink a failing input to a minimal one (slower; default false). */
  shrink?: boolean;
}

export interface CampaignReport {
  kind: string;
  runs: number;
  counts: Record<string, number>;
  /** The first violation, with its (shrunk) input. */
  failure?: { violation: string; input: string };
}

class Hang extends Error {}

async function bounded<T>(p: Promise<T>, ms: number): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  try {
    return await Promise.race([p, new Promise<T>((_, reject) => { timer = setTimeout(() => reject(new Hang(`no answer within ${ms} ms`)), ms); })]);
  } finally {
    clearTimeout(timer);
  }
}

/** Runs the oracle on one input under the time bound; exceptions and hangs become violations. */
export async function judge<I>(kind: FuzzKind<I>, input: I, timeoutMs: number): Promise<Verdict> {
  try {
    return await bounded(kind.oracle(input), timeoutMs);
  } catch (e) {
    if (e instanceof Hang) return { outcome: 'hang', violation: e.message };
    const err = e as Error;
    return { outcome: 'crash', violation: `${err?.name ?? 'error'}: ${err?.message ?? String(e)}\n${(err?.stack ?? '').split('\n').slice(1, 4).join('\n')}` };
  }
}

export async function campaign<I>(kind: FuzzKind<I>, o: CampaignOptions): Promise<CampaignReport> {
  const counts: Record<string, number> = {};
  const timeoutMs = o.timeoutMs ?? 20_000;
  let counting = true;
  let first: { violation: string; input: string } | undefined;
  await kind.setup?.();
  try {
    const result = await fc.check(fc.asyncProperty(kind.arbitrary(), async (input) => {
      const v = await judge(kind, input, timeoutMs);
      if (counting) counts[v.outcome] = (counts[v.outcome] ?? 0) + 1;
      if (v.violation) {
        counting = false; // shrinking re-runs inputs: those are not part of the campaign
        first = { violation: v.violation, input: kind.describe?.(input) ?? JSON.stringify(input)?.slice(0, 2000) ?? String(input) };
        return false;
      }
      return true;
    }), { seed: o.seed, numRuns: o.runs, endOnFailure: !o.shrink, interruptAfterTimeLimit: undefined });
    for (const v of (await kind.finish?.()) ?? []) {
      counts[v.outcome] = (counts[v.outcome] ?? 0) + 1;
      if (v.violation && !first) first = { violation: v.violation, input: '(checked after the campaign)' };
    }
    if (result.failed && result.counterexample && first) {
      first.input = kind.describe?.(result.counterexample[0] as I) ?? first.input;
    }
    return { kind: kind.name, runs: result.numRuns, counts, failure: first };
  } finally {
    await kind.teardown?.();
  }
}

/** One line per kind: its counts, then the failure if any. */
export function formatReport(r: CampaignReport): string {
  const counts = Object.entries(r.counts).sort((a, b) => b[1] - a[1]).map(([k, n]) => `${k} ${n}`).join(', ');
  return `${r.kind}: ${r.runs} inputs: ${counts}${r.failure ? `\n  FAILED: ${r.failure.violation}\n  input: ${r.failure.input}` : ''}`;
}

/** The house rule for an error message: one line, not empty, no stack frames. */
export function cleanMessage(m: unknown): string | undefined {
  if (typeof m !== 'string' || m.trim() === '') return 'the error message is empty';
  if (m.includes('\n')) return `the error message has several lines: ${JSON.stringify(m.slice(0, 300))}`;
  if (/\bat .+\(.+:\d+:\d+\)/.test(m)) return `the error message has a stack frame: ${m.slice(0, 300)}`;
  return undefined;
}
