/**
 * Circuit discovery over the head/MLP edge graph (see graph.ts).
 *
 * ACDC (Conmy et al., 2023): start from the full graph and visit receivers from the logits
 * backwards, each receiver's incoming edges from the latest sender to the earliest. Patch the edge
 * (its receiver now sees the sender's corrupted output); if the mean KL divergence of the output
 * from the clean model's grows by less than the threshold, the edge stays out. A receiver whose
 * node no longer sends along any kept edge has nothing downstream, so its edges go without a run.
 *
 * EAP (Syed et al., 2023): score every edge at once by the first-order change in the metric when
 * it is patched, (a_corrupt - a_clean) · d metric / d receiver input, which is d metric / d m[s, r]
 * at m = 0 in the edge graph: one forward and one backward. EAP-IG (Hanna et al., 2024) averages
 * that gradient along m = alpha for alpha in (0, 1], which matters where attention is saturated
 * and the gradient at the clean point vanishes. Scores are normalised by m_clean - m_corrupt, so
 * an edge's score is the fraction of the clean-corrupted difference it is predicted to carry; the
 * circuit is the edges with |score| >= threshold.
 *
 * Both prune dangling edges (from a node nothing feeds, or into a node that feeds nothing) and
 * report the circuit's faithfulness: the metric with every other edge patched.
 */
import { LanternError } from '../../errors.js';
import type { HookedTransformer } from '../../models/hooked.js';
import { EdgeExample, EdgeMetric, EdgeRunner, EdgeSpace } from './graph.js';
import { klMean, metricMean, prepare, PreparedData } from './data.js';

export interface CircuitEdge {
  sender: string;
  receiver: string;
  /** ACDC: how much KL(clean || circuit) rose when the edge was tried (on top of the edges removed before it); EAP: its normalised score. */
  score: number;
}

export interface Circuit {
  method: 'acdc' | 'eap' | 'eap-ig';
  model: string;
  metric: EdgeMetric;
  threshold: number;
  edges: CircuitEdge[];
  /** Nodes touched by the circuit's edges (senders, and receivers' nodes). */
  nodes: string[];
  /** Edges of the full graph. */
  totalEdges: number;
  /** Mean metric clean / corrupted / with only the circuit's edges clean (every other edge patched), and its normalised value. */
  clean: number;
  corrupt: number;
  circuitMetric: number;
  faithfulness: number;
  /** Mean KL(clean || circuit) at the targets. */
  circuitKl: number;
  /** Every edge's score (EAP) or KL increase when tried (ACDC; 0 for edges into nodes that no longer fed anything, removed without a run), by 'sender->receiver'. */
  scores: Record<string, number>;
  settings: Record<string, unknown>;
  /** ORT forward runs (ACDC), or forward+backward runs (EAP). */
  runs: number;
}

export interface DiscoveryOptions {
  examples: EdgeExample[];
  metric: EdgeMetric;
  threshold: number;
  /** Called with (step, total) as edges are visited (ACDC) or steps run (EAP-IG). */
  progress?: (done: number, total: number) => void;
}

/** The node (sender index) a receiver belongs to, or -1 for the logits. */
function receiverSender(space: EdgeSpace, r: number): number {
  return space.receiverNode[r];
}

/** Removes edges that cannot matter: out of non-input nodes with no kept incoming edge, into nodes with no kept outgoing edge. */
export function pruneDangling(space: EdgeSpace, kept: Set<number>): Set<number> {
  const S = space.S;
  const out = new Set(kept);
  for (let changed = true; changed;) {
    changed = false;
    const hasIn = new Set<number>();
    const hasOut = new Set<number>();
    for (const e of out) {
      const s = e % S;
      const r = Math.floor(e / S);
      hasOut.add(s);
      const node = receiverSender(space, r);
      if (node >= 0) hasIn.add(node);
    }
    for (const e of [...out]) {
      const s = e % S;
      const r = Math.floor(e / S);
      const node = receiverSender(space, r);
      if ((s !== 0 && !hasIn.has(s)) || (node >= 0 && !hasOut.has(node))) {
        out.delete(e);
        changed = true;
      }
    }
  }
  return out;
}

/** Rows of one edge configuration (1 = patched) over all examples. */
function rowsFor(data: PreparedData, patched: Float32Array, alpha = 1) {
  const mask = alpha === 1 ? patched : patched.map((x) => x * alpha);
  return data.examples.map((e, b) => ({
    tokens: e.clean, targets: e.targets, mask, ref: data.corruptActs[b], cleanLogprobs: data.cleanLogprobs[b],
    coef: e.targets.map(() => 1 / (e.targets.length * data.examples.length)),
  }));
}

async function evaluate(runner: EdgeRunner, data: PreparedData, patched: Float32Array) {
  const r = await runner.run(rowsFor(data, patched), data.seq, { senders: false, grad: null });
  const targets = data.examples.map((e) => e.targets);
  return { kl: klMean(r.kl, targets), metric: metricMean(r, targets, data.metric) };
}

async function finish(
  runner: EdgeRunner, data: PreparedData, method: Circuit['method'], threshold: number, kept: Set<number>,
  scores: Map<number, number>, settings: Record<string, unknown>, runs: number,
): Promise<Circuit> {
  const { space } = runner;
  const S = space.S;
  const final = pruneDangling(space, kept);
  const patched = new Float32Array(space.R * S);
  for (const [s, r] of space.edges()) if (!final.has(r * S + s)) patched[r * S + s] = 1;
  const ev = await evaluate(runner, data, patched);
  const edges = [...final].sort((a, b) => a - b).map((e) => ({
    sender: space.senders[e % S], receiver: space.receivers[Math.floor(e / S)], score: scores.get(e) ?? 0,
  }));
  const nodes = new Set<string>();
  for (const e of edges) {
    nodes.add(e.sender);
    nodes.add(e.receiver === 'logits' ? 'logits' : e.receiver.replace(/\.[qkv]$/, ''));
  }
  const named: Record<string, number> = {};
  for (const [e, v] of scores) named[space.edgeName(e % S, Math.floor(e / S))] = v;
  return {
    method, model: runner.model.source, metric: data.metric, threshold, edges, nodes: [...nodes], totalEdges: space.edges().length,
    clean: data.clean, corrupt: data.corrupt, circuitMetric: ev.metric, faithfulness: (ev.metric - data.corrupt) / (data.clean - data.corrupt),
    circuitKl: ev.kl, scores: named, settings: { examples: data.examples.length, ...settings }, runs: runs + 1,
  };
}

function checkThreshold(t: number): void {
  if (typeof t !== 'number' || !Number.isFinite(t) || t < 0) throw new LanternError(`threshold must be a non-negative number, got ${t}`);
}

export async function acdc(model: HookedTransformer, opts: DiscoveryOptions): Promise<Circuit> {
  checkThreshold(opts.threshold);
  const runner = new EdgeRunner(model);
  const { space } = runner;
  const S = space.S;
  const data = await prepare(runner, opts.examples, opts.metric);
  const patched = new Float32Array(space.R * S);
  let runs = 0;
  let current = (await evaluate(runner, data, patched)).kl;
  runs++;
  const scores = new Map<number, number>();
  const total = space.edges().length;
  let done = 0;
  // Out-degree (kept edges) of each sender.
  const outDegree = new Array<number>(S).fill(0);
  for (const [s] of space.edges()) outDegree[s]++;
  for (let r = space.R - 1; r >= 0; r--) {
    const node = receiverSender(space, r);
    const dead = node >= 0 && outDegree[node] === 0;
    for (let s = space.upstream[r] - 1; s >= 0; s--) {
      const e = r * S + s;
      if (dead) {
        patched[e] = 1;
        outDegree[s]--;
        scores.set(e, 0);
      } else {
        patched[e] = 1;
        const kl = (await evaluate(runner, data, patched)).kl;
        runs++;
        scores.set(e, kl - current);
        if (kl - current < opts.threshold) {
          current = kl;
          outDegree[s]--;
        } else {
          patched[e] = 0;
        }
      }
      opts.progress?.(++done, total);
    }
  }
  const kept = new Set<number>();
  for (const [s, r] of space.edges()) if (patched[r * S + s] === 0) kept.add(r * S + s);
  return finish(runner, data, 'acdc', opts.threshold, kept, scores, { threshold: opts.threshold, criterion: 'kl' }, runs);
}

export async function eap(model: HookedTransformer, opts: DiscoveryOptions & { igSteps?: number }): Promise<Circuit> {
  checkThreshold(opts.threshold);
  const steps = opts.igSteps ?? 0;
  if (!Number.isInteger(steps) || steps < 0) throw new LanternError(`IG steps must be a non-negative integer, got ${steps}`);
  const runner = new EdgeRunner(model);
  const { space } = runner;
  const S = space.S;
  const R = space.R;
  const data = await prepare(runner, opts.examples, opts.metric);
  const ones = new Float32Array(R * S);
  for (const [s, r] of space.edges()) ones[r * S + s] = 1;
  const alphas = steps === 0 ? [0] : Array.from({ length: steps }, (_, j) => (j + 1) / steps);
  const grad = new Float64Array(R * S);
  for (let j = 0; j < alphas.length; j++) {
    // The objective is the mean metric over examples; its gradient summed over rows is d mean / d m.
    const out = await runner.run(rowsFor(data, ones, alphas[j]), data.seq, { senders: false, grad: data.metric });
    const gr = out.grad!.f32;
    for (let b = 0; b < data.examples.length; b++) for (let i = 0; i < R * S; i++) grad[i] += gr[b * R * S + i] / alphas.length;
    opts.progress?.(j + 1, alphas.length);
  }
  const denom = data.clean - data.corrupt;
  const scores = new Map<number, number>();
  const kept = new Set<number>();
  for (const [s, r] of space.edges()) {
    const e = r * S + s;
    // Patching moves the metric by ~grad; as a fraction of the clean - corrupted difference lost:
    const score = -grad[e] / denom;
    scores.set(e, score);
    if (Math.abs(score) >= opts.threshold) kept.add(e);
  }
  const method = steps === 0 ? 'eap' : 'eap-ig';
  return finish(runner, data, method, opts.threshold, kept, scores, { threshold: opts.threshold, igSteps: steps }, alphas.length);
}
