/**
 * Non-finite numbers in results are errors. A model whose weights or arithmetic produce NaN or
 * infinity yields scores that JSON writes as null and a terminal prints as "NaN%": a saved result
 * that looks complete and means nothing. Every result is checked before it is saved or shown.
 */
import { LanternError } from './errors.js';

/** The path of the first NaN or ±Infinity in `v` (plain objects, arrays, typed arrays), or undefined. */
export function firstNonFinite(v: unknown, path = ''): { path: string; value: number } | undefined {
  if (typeof v === 'number') return Number.isFinite(v) ? undefined : { path, value: v };
  if (typeof v !== 'object' || v === null) return undefined;
  if (ArrayBuffer.isView(v)) {
    if (v instanceof Float32Array || v instanceof Float64Array) {
      const i = v.findIndex((x) => !Number.isFinite(x));
      return i < 0 ? undefined : { path: `${path}[${i}]`, value: v[i] };
    }
    return undefined;
  }
  if (Array.isArray(v)) {
    for (let i = 0; i < v.length; i++) {
      const hit = firstNonFinite(v[i], `${path}[${i}]`);
      if (hit) return hit;
    }
    return undefined;
  }
  for (const [k, x] of Object.entries(v)) {
    const hit = firstNonFinite(x, path ? `${path}.${k}` : k);
    if (hit) return hit;
  }
  return undefined;
}

/** Throws a LanternError naming where the first non-finite number of `result` is. */
export function assertFinite<T>(result: T, what: string): T {
  const hit = firstNonFinite(result);
  if (hit) {
    throw new LanternError(`${what} has a non-finite number (${hit.value} at ${hit.path || 'the top'}); the model's weights or arithmetic produced NaN or infinity, so nothing was saved`);
  }
  return result;
}
