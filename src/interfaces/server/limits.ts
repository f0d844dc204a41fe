/**
 * Work limits of the Workbench: what one job may cost, set by the server's owner
 * (`lantern serve --max-job-seconds --max-job-memory`). Every compute request is estimated before
 * it is queued (src/methods/cost.ts) and refused with a 400 naming the limit when it exceeds one;
 * a job that runs past its time anyway is stopped by the queue's deadline.
 */
import { LanternError } from '../../errors.js';
import {
  activationBytes, estimateAttribution, formatBytes, formatSeconds, forwardFlops, ShapeForCost, WorkEstimate,
} from '../../methods/cost.js';
import type { RunKind } from './api-types.js';

export interface WorkLimits {
  /** Longest a job may take, in seconds (estimated before it starts, enforced while it runs). */
  maxJobSeconds: number;
  /** Most memory a job's computation may need beyond the model's weights, in bytes. */
  maxJobMemory: number;
  /**
   * Sustained arithmetic rate for turning flops into seconds. The default is what this project's
   * 2-core CPU reference machine sustains on small batches (well below its ~260 GFLOP/s sgemm peak),
   * so estimates err long; a GPU server should raise it.
   */
  flopsPerSecond: number;
}

export const DEFAULT_LIMITS: WorkLimits = { maxJobSeconds: 600, maxJobMemory: 2 * 2 ** 30, flopsPerSecond: 20e9 };

/** Each sequence run costs some fixed time (graph dispatch, copies) whatever its size. */
const SECONDS_PER_PASS = 2e-4;

export class WorkLimitError extends LanternError {
  override name = 'WorkLimitError';
  constructor(message: string, readonly limit: 'max-job-seconds' | 'max-job-memory') {
    super(message);
  }
}

export function checkLimits(limits: WorkLimits): WorkLimits {
  for (const k of ['maxJobSeconds', 'maxJobMemory', 'flopsPerSecond'] as const) {
    if (!(limits[k] > 0) || !Number.isFinite(limits[k])) throw new LanternError(`work limit ${k} must be a positive number, got ${limits[k]}`);
  }
  return limits;
}

export interface RequestShape {
  kind: RunKind;
  body: Record<string, any>;
  /** Prompt tokens (the clean prompt for patching). */
  tokens: number;
  /** Tokens of a multi-token attribution target (a continuation); 1 otherwise. */
  rows?: number;
}

export function estimateRequest(s: ShapeForCost, r: RequestShape): WorkEstimate {
  const T = r.tokens;
  const b = r.body;
  switch (r.kind) {
    case 'forward':
      return { passes: 1, flops: forwardFlops(s, T, T), bytes: activationBytes(s, T, 1, false) + 4 * T * s.dVocab, jsBytes: 0, what: 'one forward pass' };
    case 'attention':
      return { passes: 1, flops: forwardFlops(s, T, 1), bytes: activationBytes(s, T, 1, false) + 4 * s.nLayers * s.nHeads * T * T * 3, jsBytes: 8 * s.nLayers * s.nHeads * T * T, what: 'every attention pattern' };
    case 'lens':
      // Every layer's residual at every position goes through the unembedding.
      return {
        passes: 1, flops: forwardFlops(s, T, 1) + 2 * s.dModel * s.dVocab * (s.nLayers + 1) * T,
        bytes: activationBytes(s, T, 1, false) + 4 * (s.nLayers + 1) * T * (s.dModel + s.dVocab), jsBytes: 0, what: 'the unembedding of every layer and position',
      };
    case 'patching': {
      // Attribution patching: a clean forward, a corrupted forward and backward, and with igSteps one
      // batch of that many interpolated forwards and backwards.
      const k = b.igSteps ?? 0;
      const linear: WorkEstimate = {
        passes: 3 + 3 * k, flops: 3 * (3 + k) * forwardFlops(s, T, 1), bytes: 3 * activationBytes(s, T, 1, true) + activationBytes(s, T, k, true), jsBytes: 0, what: 'attribution patching',
      };
      if (b.method === 'attribution') return linear;
      const heads = b.sweep === 'heads' || b.sweep === 'pattern';
      const slots = heads ? s.nLayers * s.nHeads * (b.byPosition ? T : 1) : s.nLayers * T;
      const batch = Math.min(slots, b.batchSize ?? 64);
      const patched: WorkEstimate = {
        passes: slots + 2, flops: (slots + 2) * forwardFlops(s, T, 1), bytes: activationBytes(s, T, batch, false) + 4 * batch * s.dVocab,
        jsBytes: 8 * slots, what: `${slots} patched runs`,
      };
      if (b.method !== 'both') return patched;
      return {
        passes: patched.passes + linear.passes, flops: patched.flops + linear.flops, bytes: Math.max(patched.bytes, linear.bytes),
        jsBytes: 2 * patched.jsBytes, what: `${slots} patched runs and attribution patching`,
      };
    }
    case 'probes': {
      // Up to two prompts per subject (a true and a false statement, or a contrast pair's sides) of about `T` tokens.
      const prompts = 2 * (b.limit ?? 100) * ((b.kind ?? 'logistic') === 'ccs' ? 2 : 1);
      return { passes: Math.ceil(prompts / 32), flops: prompts * forwardFlops(s, T, 1), bytes: activationBytes(s, T, 32, false), jsBytes: 4 * prompts * s.dModel * s.nLayers, what: `${prompts} prompts at every layer` };
    }
    case 'trace': {
      // Per noise sample: the clean and noised runs, then one restored run per (kind, layer, position).
      const kinds = (b.kinds ?? ['resid', 'mlp', 'attn']).length;
      const samples = b.samples ?? 10;
      const passes = samples * (2 + kinds * s.nLayers * T);
      return { passes, flops: passes * forwardFlops(s, T, 1), bytes: activationBytes(s, T, Math.min(64, passes), false) + 4 * Math.min(64, passes) * s.dVocab, jsBytes: 0, what: `${kinds * s.nLayers * T} restored states x ${samples} noise samples` };
    }
    case 'circuit': {
      // Edges between every head, MLP, the input and the logits; ACDC tries each edge once, EAP
      // (IG) takes a forward and backward per step and receiver layer, path patching a run per path.
      const nodes = s.nLayers * (s.nHeads + 1) + 2;
      const edges = (nodes * nodes) / 2;
      const n = b.n ?? 10;
      const method = b.method ?? 'acdc';
      const runs = method === 'acdc' ? edges + 2 : method === 'eap' ? 3 * ((b.igSteps ?? 5) + 1) * (s.nLayers + 1) + 2 : nodes + 2;
      const passes = runs * n;
      return { passes, flops: passes * forwardFlops(s, 16, 1), bytes: activationBytes(s, 16, n, method === 'eap'), jsBytes: 8 * edges, what: `${method} over ~${Math.round(edges)} edges on ${n} examples` };
    }
    case 'attribution':
      return estimateAttribution(s, {
        method: b.method ?? 'ig', tokens: T, rows: r.rows, steps: b.steps, samples: b.samples, batchSize: b.batchSize, evaluate: !!b.evaluate,
      });
  }
}

export function estimatedSeconds(e: WorkEstimate, limits: WorkLimits): number {
  return e.flops / limits.flopsPerSecond + e.passes * SECONDS_PER_PASS;
}

/** What to change, per kind, so the message says how to get under the limit. */
function advice(r: RequestShape): string {
  if (r.kind === 'attribution') {
    const m = r.body.method ?? 'ig';
    if (['lime', 'shap', 'shapley'].includes(m)) return 'use fewer samples or a shorter prompt';
    if (m === 'ig' || m === 'layer-ig') return 'use fewer steps or a shorter prompt';
    if (r.body.evaluate) return 'leave out evaluate, or use a shorter prompt';
  }
  if (r.kind === 'patching') return 'use a shorter prompt, or a sweep without byPosition';
  return 'use a shorter prompt';
}

/** Throws a WorkLimitError naming the limit when the estimate exceeds one. */
export function checkWork(e: WorkEstimate, r: RequestShape, limits: WorkLimits): { seconds: number; bytes: number } {
  const seconds = estimatedSeconds(e, limits);
  const head = `this ${r.kind} request (${e.what}, ${r.tokens} tokens) needs about ${e.passes.toLocaleString('en-US')} forward passes`;
  if (seconds > limits.maxJobSeconds) {
    throw new WorkLimitError(`${head}, ~${formatSeconds(seconds)}: more than this server's --max-job-seconds ${limits.maxJobSeconds}; ${advice(r)}`, 'max-job-seconds');
  }
  if (e.bytes > limits.maxJobMemory) {
    throw new WorkLimitError(`${head} and ~${formatBytes(e.bytes)} of memory: more than this server's --max-job-memory ${formatBytes(limits.maxJobMemory)}; ${advice(r)}`, 'max-job-memory');
  }
  return { seconds, bytes: e.bytes };
}
