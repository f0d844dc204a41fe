/**
 * Runs Lantern graphs on ONNX Runtime in a worker thread.
 *
 * Compiled sessions are cached by a caller-chosen signature (what the graph computes, not its
 * weight values), so one compiled graph serves every run, every layer's weights and every model
 * of the same shape. Weights are moved (transferred, not copied) into the worker once and fed as
 * graph inputs: ORT reads them in place (measured: feeding a 768x3072 weight costs ~0.004-0.16
 * ms), so each weight is held exactly once in the process. They cannot be shared with this
 * thread instead: onnxruntime-node rejects SharedArrayBuffer-backed tensors ("Invalid argument").
 */
import { Worker } from 'node:worker_threads';
import os from 'node:os';
import { toOnnx, GraphLike } from '../graph/onnx.js';
import { Tensor, TensorData } from '../tensor.js';
import type { DType } from '../graph/ir.js';

type WireTensor = { dtype: DType; data: TensorData; dims: number[] };

export interface ExecutorOptions {
  /** Intra-op threads; default: all cores (2 here). */
  threads?: number;
  /** ORT execution providers, e.g. ['cuda', 'cpu'] on a CUDA 12 machine (see README). */
  executionProviders?: string[];
  /** Compiled sessions kept at once (least recently used are released). */
  maxSessions?: number;
}

export interface WeightSet {
  readonly id: string;
  /** Shapes of the registered weights; their data now lives in the compute thread. */
  readonly shapes: Record<string, number[]>;
}

let nextWeightSet = 0;

/** Runs ONNX graphs with onnxruntime-node in a worker thread (so a server stays responsive), caching compiled sessions and holding each weight set once. */
export class Executor {
  private worker: Worker;
  private pending = new Map<number, { resolve: (v: any) => void; reject: (e: Error) => void }>();
  private nextId = 0;
  private compiled = new Map<string, Promise<void>>(); // insertion order = recency
  private maxSessions: number;
  /** Milliseconds ORT spent inside session.run, summed (for benchmarks). */
  runMs = 0;

  constructor(opts: ExecutorOptions = {}) {
    this.maxSessions = opts.maxSessions ?? 48;
    this.worker = new Worker(new URL('./ort-worker.mjs', import.meta.url), {
      workerData: {
        threads: opts.threads ?? os.availableParallelism(),
        // e.g. LANTERN_EXECUTION_PROVIDERS=cuda,cpu on a machine with CUDA 12 (see README).
        executionProviders: opts.executionProviders ?? process.env.LANTERN_EXECUTION_PROVIDERS?.split(',') ?? ['cpu'],
      },
    });
    this.worker.on('message', (m) => {
      const p = this.pending.get(m.id);
      if (!p) return;
      this.pending.delete(m.id);
      if (this.pending.size === 0) this.worker.unref();
      if (m.ok) p.resolve(m);
      else p.reject(new Error(`ONNX Runtime: ${m.error}`));
    });
    this.worker.on('error', (e) => {
      for (const p of this.pending.values()) p.reject(e);
      this.pending.clear();
    });
    // After the listeners: adding a 'message' listener refs the worker's port again, and an
    // executor that never ran anything would then keep the process alive.
    this.worker.unref();
  }

  private call(msg: Record<string, unknown>, transfer: ArrayBuffer[] = []): Promise<any> {
    const id = this.nextId++;
    // Keep the process alive only while work is in flight, so a CLI exits when it is done.
    this.worker.ref();
    return new Promise((resolve, reject) => {
      this.pending.set(id, { resolve, reject });
      this.worker.postMessage({ ...msg, id }, transfer);
    });
  }

  /**
   * Moves weights into the compute thread. The given tensors' buffers are transferred and become
   * empty here; use `readWeights` for a copy.
   */
  async registerWeights(tensors: Record<string, Tensor>): Promise<WeightSet> {
    const id = `w${nextWeightSet++}`;
    const wire: Record<string, WireTensor> = {};
    const shapes: Record<string, number[]> = {};
    const transfer = new Set<ArrayBuffer>();
    for (const [name, t] of Object.entries(tensors)) {
      wire[name] = { dtype: t.dtype, data: t.data, dims: t.shape };
      shapes[name] = t.shape;
      transfer.add(t.data.buffer as ArrayBuffer);
    }
    await this.call({ kind: 'weights', setId: id, tensors: wire }, [...transfer]);
    return { id, shapes };
  }

  /** Copies of registered weights. */
  async readWeights(set: WeightSet, names: string[]): Promise<Record<string, Tensor>> {
    const r = await this.call({ kind: 'readWeights', setId: set.id, names });
    const out: Record<string, Tensor> = {};
    for (const [name, t] of Object.entries(r.outputs as Record<string, WireTensor>)) out[name] = new Tensor(t.dtype, t.data, t.dims);
    return out;
  }

  /** Frees a weight set in the worker (e.g. after a model is no longer used). */
  async dropWeights(set: WeightSet): Promise<void> {
    await this.call({ kind: 'dropWeights', setId: set.id });
  }

  /**
   * Releases every compiled session, and with them the memory ORT's arenas grew to for their
   * largest batches (an arena never shrinks on its own); the next run of a graph compiles it again.
   */
  async releaseSessions(): Promise<void> {
    this.compiled.clear();
    await this.call({ kind: 'evictAll' });
  }

  /** Compiles `build()` under `signature` unless a session for it exists. */
  compile(signature: string, build: () => GraphLike): Promise<void> {
    let p = this.compiled.get(signature);
    if (p) {
      this.compiled.delete(signature);
      this.compiled.set(signature, p);
      return p;
    }
    p = this.call({ kind: 'compile', signature, onnx: toOnnx(build()) });
    this.compiled.set(signature, p);
    p.catch(() => this.compiled.delete(signature));
    while (this.compiled.size > this.maxSessions) {
      const oldest = this.compiled.keys().next().value as string;
      this.compiled.delete(oldest);
      void this.call({ kind: 'evict', signature: oldest });
    }
    return p;
  }

  /**
   * Runs the graph compiled under `signature`. `feeds` are copied to the worker unless their
   * memory is shared; outputs are transferred back without copying.
   */
  async run(
    signature: string,
    build: () => GraphLike,
    feeds: Record<string, Tensor>,
    opts: {
      weights?: WeightSet[];
      fetch?: string[];
      /** Outputs that replace registered weights in place (output name -> weight set and name; names the graph lacks are skipped); not returned. */
      update?: Record<string, { set: WeightSet; name: string }>;
    } = {},
  ): Promise<Record<string, Tensor>> {
    await this.compile(signature, build);
    const wire: Record<string, WireTensor> = {};
    for (const [name, t] of Object.entries(feeds)) wire[name] = { dtype: t.dtype, data: t.data, dims: t.shape };
    const update = Object.fromEntries(Object.entries(opts.update ?? {}).map(([o, { set, name }]) => [o, { setId: set.id, name }]));
    const r = await this.call({ kind: 'run', signature, feeds: wire, weightSets: (opts.weights ?? []).map((w) => w.id), fetch: opts.fetch, update });
    this.runMs += r.ms;
    const out: Record<string, Tensor> = {};
    for (const [name, t] of Object.entries(r.outputs as Record<string, WireTensor>)) out[name] = new Tensor(t.dtype, t.data, t.dims);
    return out;
  }

  /** Ends the worker thread and frees every session and weight. */
  async close(): Promise<void> {
    await this.worker.terminate();
  }
}

let shared: Executor | undefined;

/** The process-wide executor (one compute thread, so runs never oversubscribe the cores). */
export function defaultExecutor(): Executor {
  shared ??= new Executor();
  return shared;
}
