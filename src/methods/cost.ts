/**
 * Up-front estimates of what a computation will cost — forward passes, arithmetic, memory — from
 * its settings and the prompt's length alone, so that a request which would run for hours or
 * exhaust memory is refused before it starts instead of taking a server down (a Shapley run of
 * 5000 permutations over 250 tokens holds 1.25 M coalitions of 250 flags in JavaScript arrays:
 * ~4 GB, more than Node's heap, before its first forward pass).
 *
 * The figures are deliberately coarse upper-end estimates: arithmetic counts the matmuls (2 flops
 * per weight per token, attention's T² terms, the unembedding of the positions a method reads,
 * backward at twice the forward), and memory counts what dominates: the activations a batch
 * keeps, the logits it returns, and the JavaScript bookkeeping a sampling method holds for every
 * coalition. A limit is checked against these numbers, and a job that runs past its time anyway
 * is stopped by the caller's deadline.
 */
import v8 from 'node:v8';
import { LanternError } from '../errors.js';

/** The model's shape, as far as cost goes. */
export interface ShapeForCost {
  nLayers: number;
  dModel: number;
  nHeads: number;
  dMlp: number;
  dVocab: number;
}

export interface WorkEstimate {
  /** Sequences run through the model (a batch of 16 counts 16), backward passes included. */
  passes: number;
  /** Floating-point operations, forward and backward. */
  flops: number;
  /** Peak memory of the computation beyond the model's weights, in bytes. */
  bytes: number;
  /** Of `bytes`, what JavaScript itself holds (bounded by Node's heap, not by the machine). */
  jsBytes: number;
  /** What dominates, for error messages: e.g. '5000 permutations x 251 coalitions'. */
  what: string;
}

/** Bytes a JavaScript boolean[] / number[] element costs, with V8's object headers amortised. */
const JS_FLAG = 8;
const JS_NUMBER = 8;

/** Forward flops of one sequence of T tokens, `unembedded` of its positions through the vocabulary. */
export function forwardFlops(s: ShapeForCost, T: number, unembedded = 1): number {
  const perToken = 2 * s.nLayers * (4 * s.dModel * s.dModel + 2 * s.dModel * s.dMlp);
  const attention = 4 * s.nLayers * T * T * s.dModel; // QK^T and the weighted sum, over all positions
  return T * perToken + attention + 2 * s.dModel * s.dVocab * unembedded;
}

/** Activations of `batch` sequences of T tokens that a graph run holds at once (backward keeps them all). */
export function activationBytes(s: ShapeForCost, T: number, batch: number, backward: boolean): number {
  const perLayer = T * (6 * s.dModel + 2 * s.dMlp) + 2 * s.nHeads * T * T;
  const layers = backward ? s.nLayers : 2;
  return 4 * batch * layers * perLayer;
}

export interface AttributionCostInput {
  method: string;
  /** Prompt tokens. */
  tokens: number;
  /** Features perturbed (tokens, or words / sentences with a coarser granularity); default: tokens. */
  features?: number;
  /** Target rows (a continuation's length; 1 for a next-token target). */
  rows?: number;
  steps?: number;
  samples?: number;
  batchSize?: number;
  evaluate?: boolean;
}

/**
 * Forward-equivalent sequence runs and JavaScript bookkeeping of an attribution method, without a
 * model: the same counts serve the black-box backends (where each run is a model call).
 */
export function attributionCalls(c: AttributionCostInput): { calls: number; backward: boolean; jsBytes: number; what: string; batch: number } {
  const n = Math.max(1, c.features ?? c.tokens);
  const rows = Math.max(1, c.rows ?? 1);
  let calls: number;
  let backward = false;
  let jsBytes = 0;
  let what: string;
  switch (c.method) {
    case 'ig': case 'layer-ig': {
      const steps = c.steps ?? 50;
      calls = steps * rows + rows;
      backward = true;
      what = `${steps} integration steps`;
      break;
    }
    case 'saliency': case 'input-x-grad': case 'layer-grad-x-act':
      calls = rows;
      backward = true;
      what = 'one gradient';
      break;
    case 'attention': case 'rollout':
      calls = 1;
      what = 'one forward pass';
      break;
    case 'value-zeroing':
      calls = c.tokens + 1;
      what = `${c.tokens} zeroed tokens`;
      break;
    case 'occlusion':
      calls = n + 1;
      what = `${n} masked copies`;
      break;
    case 'lime': case 'shap': {
      const samples = c.samples ?? (c.method === 'lime' ? 200 : Math.max(200, 4 * n));
      const coalitions = Math.min(samples, n < 31 ? 2 ** n : Infinity) + 2;
      calls = coalitions;
      // Each coalition: its flags, its 0/1 regression row, its key string; the normal equations are (n+1)².
      jsBytes = coalitions * n * (2 * JS_FLAG + JS_NUMBER + 1) + (n + 1) * (n + 1) * JS_NUMBER * (1 + rows);
      what = `${samples} samples over ${n} features`;
      break;
    }
    case 'shapley': {
      const samples = c.samples ?? 50;
      calls = samples * (n + 1);
      jsBytes = calls * n * (2 * JS_FLAG + 1) + calls * rows * JS_NUMBER;
      what = `${samples} permutations x ${n + 1} coalitions`;
      break;
    }
    default:
      throw new LanternError(`no cost model for attribution method '${c.method}'`);
  }
  if (c.evaluate) calls += 3 * n + 22; // leave-one-out, deletion and insertion curves, the AOPC bins
  // The methods' own default batch sizes: ~1024 tokens a run for gradients, 32 coalitions for sampling.
  const batch = c.batchSize ?? (['lime', 'shap', 'shapley'].includes(c.method) ? 32 : Math.max(1, Math.min(16, Math.floor(1024 / Math.max(1, c.tokens)))));
  return { calls, backward, jsBytes, what, batch };
}

/** An attribution on a model of shape `s`. */
export function estimateAttribution(s: ShapeForCost, c: AttributionCostInput): WorkEstimate {
  const a = attributionCalls(c);
  const T = c.tokens + Math.max(0, (c.rows ?? 1) - 1);
  const f = forwardFlops(s, T, c.rows ?? 1) * (a.backward ? 3 : 1);
  const batch = Math.max(1, Math.min(a.batch, a.calls));
  const native = activationBytes(s, T, batch, a.backward) + 4 * batch * s.dVocab * (c.rows ?? 1) + (a.backward ? 4 * batch * T * s.dModel : 0);
  return { passes: a.calls, flops: a.calls * f, bytes: native + a.jsBytes, jsBytes: a.jsBytes, what: a.what };
}

/** Human-readable sizes and durations for error messages. */
export function formatBytes(b: number): string {
  if (b >= 2 ** 30) return `${(b / 2 ** 30).toFixed(1)} GiB`;
  if (b >= 2 ** 20) return `${(b / 2 ** 20).toFixed(0)} MiB`;
  return `${Math.ceil(b / 1024)} KiB`;
}

export function formatSeconds(s: number): string {
  if (s >= 7200) return `${(s / 3600).toFixed(1)} hours`;
  if (s >= 120) return `${Math.round(s / 60)} minutes`;
  return `${Math.max(1, Math.round(s))} s`;
}

/**
 * Refuses a computation whose JavaScript bookkeeping would not fit Node's heap, before it starts:
 * running out of heap kills the process with a trace, and long before that the garbage collector
 * stalls everything. `heapLimit` defaults to this process's (node --max-old-space-size).
 */
export function checkHeap(jsBytes: number, what: string, advice: string, heapLimit?: number): void {
  const limit = heapLimit ?? heapSizeLimit();
  // Half the heap: the rest of the process (the model's tokenizer, results, the GC's headroom) needs room too.
  if (jsBytes > limit / 2) {
    throw new LanternError(`${what} needs about ${formatBytes(jsBytes)} of JavaScript memory, more than half of this process's ${formatBytes(limit)} heap; ${advice}`);
  }
}

function heapSizeLimit(): number {
  return v8.getHeapStatistics().heap_size_limit;
}
