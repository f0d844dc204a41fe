/**
 * Path patching (Wang et al., 2022; Goldowsky-Dill et al., 2023): run the clean prompt, but let
 * the sender's corrupted output reach the receiver only along one path. A direct path
 * [sender, receiver] patches the single edge sender -> receiver. A longer path
 * [sender, r1, r2, ..., receiver] patches sender -> r1, and every node on the way (the node r1
 * belongs to, ...) passes its changed output on only along the path: all its other readers see its
 * clean output. Effect (m_path - m_clean) / (m_corrupt - m_clean): 1 = this path carries the
 * whole difference between the prompts, 0 = none of it.
 */
import { LanternError } from '../../errors.js';
import type { HookedTransformer } from '../../models/hooked.js';
import type { EdgeExample, EdgeMetric } from './graph.js';
import { EdgeRunner, EdgeSpace } from './graph.js';
import { klMean, metricMean, prepare, PreparedData } from './data.js';

/** Path patching's settings: sender, receivers, task or examples. */
export interface PathPatchingOptions {
  examples: EdgeExample[];
  metric: EdgeMetric;
  /** Rows per ORT call (default 64). */
  batchSize?: number;
  /**
   * Called as forwards finish: `done` of `total` sequences run (the clean and corrupted caches,
   * the clean log-probabilities, then every path-patched row).
   */
  progress?: (done: number, total: number) => void;
}

/** The effect of patching one path (sender to receivers). */
export interface PathEffect {
  path: string[];
  /** Normalised effect (m_path - m_clean) / (m_corrupt - m_clean). */
  effect: number;
  value: number;
  /** Mean KL(clean || path-patched) at the targets. */
  kl: number;
}

/** Path patching's effects, per sender or path. */
export interface PathPatchingResult {
  method: 'path-patching';
  metric: EdgeMetric;
  clean: number;
  corrupt: number;
  paths: PathEffect[];
  settings: { examples: number; batchSize: number };
}

/** Checks a path and returns its sender and receiver indices. */
export function resolvePath(space: EdgeSpace, path: string[]): { sender: number; receivers: number[] } {
  if (path.length < 2) throw new LanternError(`a path needs a sender and at least one receiver, got [${path.join(', ')}]`);
  const sender = space.sender(path[0]);
  const receivers = path.slice(1).map((r) => space.receiver(r));
  let from = sender;
  receivers.forEach((r, i) => {
    if (from >= space.upstream[r]) throw new LanternError(`path step ${space.senders[from]} -> ${space.receivers[r]}: ${space.receivers[r]} is not downstream of ${space.senders[from]}`);
    if (i < receivers.length - 1) {
      if (space.receiverNode[r] < 0) throw new LanternError('the logits can only end a path');
      from = space.receiverNode[r];
    }
  });
  return { sender, receivers };
}

/** Edge mask and refs of one path-patched run (see the file comment). */
function pathRow(space: EdgeSpace, data: PreparedData, b: number, sender: number, receivers: number[], D: number) {
  const S = space.S;
  const seq = data.seq;
  const mask = new Float32Array(space.R * S);
  const ref = data.cleanActs[b].slice();
  const corrupt = data.corruptActs[b];
  for (let t = 0; t < seq; t++) ref.set(corrupt.subarray((t * S + sender) * D, (t * S + sender + 1) * D), (t * S + sender) * D);
  mask[receivers[0] * S + sender] = 1;
  for (let i = 0; i + 1 < receivers.length; i++) {
    const node = space.receiverNode[receivers[i]];
    for (let r = 0; r < space.R; r++) if (space.upstream[r] > node && r !== receivers[i + 1]) mask[r * S + node] = 1;
  }
  return { mask, ref };
}

/** The effect of each path (a list of paths, batched). */
export async function pathPatching(model: HookedTransformer, paths: string[][], opts: PathPatchingOptions): Promise<PathPatchingResult> {
  const runner = new EdgeRunner(model);
  const { space } = runner;
  const resolved = paths.map((p) => resolvePath(space, p));
  const batchSize = opts.batchSize ?? 64;
  if (!Number.isInteger(batchSize) || batchSize < 1) throw new LanternError(`batch size must be a positive integer, got ${batchSize}`);
  const n = opts.examples.length;
  // prepare runs the corrupted and clean caches (n rows each) and the clean log-probabilities (n more).
  const preparing = 3 * n;
  const total = preparing + resolved.length * n;
  opts.progress?.(0, total);
  const data = await prepare(runner, opts.examples, opts.metric);
  opts.progress?.(preparing, total);
  const D = model.cfg.dModel;
  const rows = resolved.flatMap(({ sender, receivers }) => data.examples.map((e, b) => ({
    tokens: e.clean, targets: e.targets, cleanLogprobs: data.cleanLogprobs[b], ...pathRow(space, data, b, sender, receivers, D),
  })));
  // Whole paths per call, so each call's metric means are over complete sets of examples.
  const perCall = Math.max(1, Math.floor(batchSize / n)) * n;
  const out: PathEffect[] = [];
  for (let i = 0; i < rows.length; i += perCall) {
    const chunk = rows.slice(i, i + perCall);
    const r = await runner.run(chunk, data.seq, { senders: false, grad: null });
    const targets = data.examples.map((e) => e.targets);
    let start = 0;
    for (let k = 0; k < chunk.length / n; k++) {
      const value = metricMean(r, targets, data.metric, start);
      const kl = klMean(r.kl, targets, start);
      start += targets.reduce((a, t) => a + t.length, 0);
      out.push({ path: paths[(i / n) + k], effect: (value - data.clean) / (data.corrupt - data.clean), value, kl });
    }
    opts.progress?.(preparing + i + chunk.length, total);
  }
  return { method: 'path-patching', metric: data.metric, clean: data.clean, corrupt: data.corrupt, paths: out, settings: { examples: n, batchSize } };
}

/** Every direct path out of `sender` (to each downstream receiver), batched. */
export async function pathPatchingSweep(model: HookedTransformer, sender: string, opts: PathPatchingOptions): Promise<PathPatchingResult> {
  const space = new EdgeSpace(model.cfg);
  const s = space.sender(sender);
  const receivers = space.receivers.filter((_, r) => space.upstream[r] > s);
  return pathPatching(model, receivers.map((r) => [sender, r]), opts);
}
