/**
 * The Wasserstein-1 (earth mover's) distance between two point clouds with uniform weights, under
 * Euclidean ground cost. Over word or token embeddings this is the Word Mover's Distance (Kusner et
 * al. 2015) that SMILE uses between texts (Dehghani et al. 2024).
 *
 * Solved exactly as a transportation problem: scaling the masses 1/n and 1/m by n·m makes every
 * supply (m) and demand (n) an integer, and successive shortest paths on the residual bipartite
 * graph (queue-based Bellman–Ford, since reverse edges have negative cost) reach the optimum. Texts
 * here are tens of tokens, so the O((n+m)·n·m) per augmentation is cheap.
 */
import { LanternError } from '../../errors.js';

export type Point = ArrayLike<number>;

/** Euclidean distance between two points. */
export function euclidean(a: Point, b: Point): number {
  if (a.length !== b.length) throw new LanternError(`cannot compare vectors of dimension ${a.length} and ${b.length}`);
  let s = 0;
  for (let i = 0; i < a.length; i++) s += (a[i] - b[i]) ** 2;
  return Math.sqrt(s);
}

/** W1 between the uniform distributions on `a` and `b` (both non-empty). */
export function wasserstein1(a: Point[], b: Point[], cost: (x: Point, y: Point) => number = euclidean): number {
  const n = a.length;
  const m = b.length;
  if (n === 0 || m === 0) throw new LanternError('the Wasserstein distance needs two non-empty point sets');
  const c = a.map((x) => b.map((y) => cost(x, y)));
  if (n === 1) return c[0].reduce((s, v) => s + v, 0) / m;
  if (m === 1) return c.reduce((s, r) => s + r[0], 0) / n;

  const supply = new Array<number>(n).fill(m);
  const demand = new Array<number>(m).fill(n);
  const flow = Array.from({ length: n }, () => new Array<number>(m).fill(0));
  // Nodes 0..n-1 are rows (sources), n..n+m-1 columns (sinks).
  const N = n + m;
  const dist = new Float64Array(N);
  const prev = new Int32Array(N);
  const inQueue = new Uint8Array(N);
  let left = n * m;
  while (left > 0) {
    dist.fill(Infinity);
    prev.fill(-1);
    const queue: number[] = [];
    for (let i = 0; i < n; i++) {
      if (supply[i] > 0) {
        dist[i] = 0;
        queue.push(i);
        inQueue[i] = 1;
      }
    }
    // A strict improvement threshold keeps float round-off from cycling around zero-cost loops.
    const tol = 1e-12;
    for (let h = 0; h < queue.length; h++) {
      const u = queue[h];
      inQueue[u] = 0;
      if (u < n) {
        for (let j = 0; j < m; j++) {
          const d = dist[u] + c[u][j];
          if (d < dist[n + j] - tol) {
            dist[n + j] = d;
            prev[n + j] = u;
            if (!inQueue[n + j]) {
              inQueue[n + j] = 1;
              queue.push(n + j);
            }
          }
        }
      } else {
        const j = u - n;
        for (let i = 0; i < n; i++) {
          if (flow[i][j] <= 0) continue;
          const d = dist[u] - c[i][j];
          if (d < dist[i] - tol) {
            dist[i] = d;
            prev[i] = u;
            if (!inQueue[i]) {
              inQueue[i] = 1;
              queue.push(i);
            }
          }
        }
      }
    }
    let sink = -1;
    for (let j = 0; j < m; j++) if (demand[j] > 0 && (sink < 0 || dist[n + j] < dist[sink])) sink = n + j;
    if (sink < 0 || !Number.isFinite(dist[sink])) throw new Error('wasserstein1: no augmenting path (bug)');
    // Walk back to the source row, finding the bottleneck.
    let amount = demand[sink - n];
    let v = sink;
    while (prev[v] >= 0) {
      const u = prev[v];
      if (u >= n) amount = Math.min(amount, flow[v][u - n]); // reverse edge col u -> row v
      v = u;
    }
    amount = Math.min(amount, supply[v]);
    supply[v] -= amount;
    demand[sink - n] -= amount;
    v = sink;
    while (prev[v] >= 0) {
      const u = prev[v];
      if (u < n) flow[u][v - n] += amount;
      else flow[v][u - n] -= amount;
      v = u;
    }
    left -= amount;
  }
  let total = 0;
  for (let i = 0; i < n; i++) for (let j = 0; j < m; j++) total += flow[i][j] * c[i][j];
  return total / (n * m);
}
