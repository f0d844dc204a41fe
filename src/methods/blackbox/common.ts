/** Pieces shared by the black-box methods: settings checks, bounded concurrency, progress. */
import { LanternError } from '../../errors.js';

/** Called after each model call: `done` of at most `total`. */
export type Progress = (done: number, total: number) => void;

export function checkInt(name: string, v: number, min: number): number {
  if (!Number.isInteger(v) || v < min) throw new LanternError(`${name} must be an integer ≥ ${min}, got ${v}`);
  return v;
}

export function checkNumber(name: string, v: number, test: (x: number) => boolean, what: string): number {
  if (typeof v !== 'number' || !Number.isFinite(v) || !test(v)) throw new LanternError(`${name} must be ${what}, got ${v}`);
  return v;
}

/** Runs fn over items with at most `limit` in flight; results in input order. */
export async function mapLimit<T, R>(items: T[], limit: number, fn: (item: T, index: number) => Promise<R>): Promise<R[]> {
  const out = new Array<R>(items.length);
  let next = 0;
  const worker = async () => {
    while (next < items.length) {
      const i = next++;
      out[i] = await fn(items[i], i);
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
  return out;
}
