/**
 * An error caused by what the user gave us (a path, a flag, a model file, a hook name).
 * Interfaces print its message as one line, without a stack trace; any other error is a bug.
 */
export class LanternError extends Error {
  override name = 'LanternError';
}

/** Levenshtein distance, for "did you mean" suggestions. */
export function editDistance(a: string, b: string): number {
  const prev = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    let diag = prev[0];
    prev[0] = i;
    for (let j = 1; j <= b.length; j++) {
      const up = prev[j];
      prev[j] = Math.min(prev[j] + 1, prev[j - 1] + 1, diag + (a[i - 1] === b[j - 1] ? 0 : 1));
      diag = up;
    }
  }
  return prev[b.length];
}

/** The `count` candidates closest to `name`, nearest first. */
export function nearest(name: string, candidates: Iterable<string>, count = 3): string[] {
  return [...candidates]
    .map((c) => [c, editDistance(name, c)] as const)
    .sort((x, y) => x[1] - y[1] || x[0].localeCompare(y[0]))
    .slice(0, count)
    .map(([c]) => c);
}
