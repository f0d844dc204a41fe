/** Agreement and correlation measures used by the evaluation reports. */

/** Pearson correlation of two equally long series; null when either is constant or shorter than 2. */
export function pearsonOrNull(x: number[], y: number[]): number | null {
  const n = x.length;
  if (n < 2 || y.length !== n) return null;
  const mx = x.reduce((a, b) => a + b, 0) / n;
  const my = y.reduce((a, b) => a + b, 0) / n;
  let sxy = 0;
  let sxx = 0;
  let syy = 0;
  for (let i = 0; i < n; i++) {
    sxy += (x[i] - mx) * (y[i] - my);
    sxx += (x[i] - mx) ** 2;
    syy += (y[i] - my) ** 2;
  }
  return sxx === 0 || syy === 0 ? null : sxy / Math.sqrt(sxx * syy);
}

/** Ranks with ties sharing their mean rank (1-based). */
export function ranks(x: number[]): number[] {
  const order = x.map((v, i) => [v, i] as const).sort((a, b) => a[0] - b[0]);
  const r = new Array<number>(x.length);
  for (let i = 0; i < order.length; ) {
    let j = i;
    while (j + 1 < order.length && order[j + 1][0] === order[i][0]) j++;
    for (let k = i; k <= j; k++) r[order[k][1]] = (i + j) / 2 + 1;
    i = j + 1;
  }
  return r;
}

/** Spearman rank correlation (Pearson of tie-averaged ranks); null when undefined. */
export function spearman(x: number[], y: number[]): number | null {
  return pearsonOrNull(ranks(x), ranks(y));
}

/** Percent agreement and Cohen's κ between two raters' categorical labels. */
export function agreement<T>(a: T[], b: T[]): { n: number; percent: number | null; kappa: number | null } {
  const n = a.length;
  if (n === 0) return { n, percent: null, kappa: null };
  const key = (v: T) => JSON.stringify(v);
  let same = 0;
  const ca = new Map<string, number>();
  const cb = new Map<string, number>();
  for (let i = 0; i < n; i++) {
    if (key(a[i]) === key(b[i])) same++;
    ca.set(key(a[i]), (ca.get(key(a[i])) ?? 0) + 1);
    cb.set(key(b[i]), (cb.get(key(b[i])) ?? 0) + 1);
  }
  const po = same / n;
  let pe = 0;
  for (const [k, c] of ca) pe += (c / n) * ((cb.get(k) ?? 0) / n);
  // κ is undefined when chance agreement is certain (both raters always give the same one label).
  return { n, percent: po, kappa: pe === 1 ? null : (po - pe) / (1 - pe) };
}

/** Mean of a list (NaN when empty). */
export function mean(x: number[]): number {
  return x.length ? x.reduce((a, b) => a + b, 0) / x.length : NaN;
}

/** Population standard deviation (NaN when empty). */
export function std(x: number[]): number {
  if (!x.length) return NaN;
  const m = mean(x);
  return Math.sqrt(x.reduce((a, v) => a + (v - m) ** 2, 0) / x.length);
}

/** Words in a text (whitespace-separated), the length measure of the length-bias checks. */
export function wordCount(s: string): number {
  return s.split(/\s+/).filter(Boolean).length;
}
