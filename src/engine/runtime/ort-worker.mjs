// The compute thread: holds compiled ONNX Runtime sessions and registered weights, runs graphs.
// Plain JavaScript so it loads the same way under tsc output, tsx and vitest.
// session.run blocks its thread; living here keeps the caller's event loop (a server, a UI) free.
import { parentPort, workerData } from 'node:worker_threads';
import ort from 'onnxruntime-node';

const sessions = new Map(); // signature -> InferenceSession
const weightSets = new Map(); // id -> { name: ort.Tensor }
const options = {
  intraOpNumThreads: workerData.threads,
  interOpNumThreads: 1,
  graphOptimizationLevel: 'all',
  executionProviders: workerData.executionProviders,
  ...(process.env.LANTERN_ORT_NO_ARENA ? { enableCpuMemArena: false } : {}),
  ...(process.env.LANTERN_ORT_NO_PATTERN ? { enableMemPattern: false } : {}),
  // e.g. LANTERN_ORT_PROFILE=/tmp/ort: a per-node timing profile of each session (JSON, written when it is released).
  ...(process.env.LANTERN_ORT_PROFILE ? { enableProfiling: true, profileFilePrefix: process.env.LANTERN_ORT_PROFILE } : {}),
};

const toOrt = (t) => new ort.Tensor(t.dtype, t.data, t.dims);

async function handle(msg) {
  switch (msg.kind) {
    case 'compile': {
      if (!sessions.has(msg.signature)) sessions.set(msg.signature, await ort.InferenceSession.create(msg.onnx, options));
      return {};
    }
    case 'evict': {
      const s = sessions.get(msg.signature);
      sessions.delete(msg.signature);
      if (s) await s.release();
      return {};
    }
    case 'evictAll': {
      const all = [...sessions.values()];
      sessions.clear();
      for (const s of all) await s.release();
      return {};
    }
    case 'weights': {
      const set = {};
      for (const [name, t] of Object.entries(msg.tensors)) set[name] = toOrt(t);
      weightSets.set(msg.setId, set);
      return {};
    }
    case 'readWeights': {
      const set = weightSets.get(msg.setId);
      const outputs = {};
      for (const name of msg.names) {
        const t = set?.[name];
        if (!t) throw new Error(`no weight named ${name}`);
        outputs[name] = { dtype: t.type, data: t.data.slice(), dims: Array.from(t.dims) };
      }
      return { outputs, transfer: Object.values(outputs).map((t) => t.data.buffer) };
    }
    case 'dropWeights': {
      weightSets.delete(msg.setId);
      return {};
    }
    case 'run': {
      const session = sessions.get(msg.signature);
      if (!session) throw new Error(`no compiled session for ${msg.signature}`);
      const feeds = {};
      const wanted = new Set(session.inputNames);
      for (const id of msg.weightSets) {
        for (const [name, t] of Object.entries(weightSets.get(id))) if (wanted.has(name)) feeds[name] = t;
      }
      for (const [name, t] of Object.entries(msg.feeds)) if (wanted.has(name)) feeds[name] = toOrt(t);
      const missing = session.inputNames.filter((n) => !(n in feeds));
      if (missing.length) throw new Error(`graph inputs not fed: ${missing.join(', ')}`);
      const t0 = performance.now();
      const out = await session.run(feeds, msg.fetch ?? session.outputNames);
      const ms = performance.now() - t0;
      // Outputs that replace registered weights (a training step's new parameters and optimizer
      // state, generation's keys and values) stay in this thread; only the rest travel back. A
      // piece of a graph split at callbacks has only some of them.
      for (const [output, { setId, name }] of Object.entries(msg.update ?? {})) {
        if (!(output in out)) continue;
        weightSets.get(setId)[name] = out[output];
        delete out[output];
      }
      const outputs = {};
      const transfer = [];
      for (const [name, t] of Object.entries(out)) {
        outputs[name] = { dtype: t.type, data: t.data, dims: Array.from(t.dims) };
        if (!(t.data.buffer instanceof SharedArrayBuffer)) transfer.push(t.data.buffer);
      }
      return { outputs, ms, transfer };
    }
    default:
      throw new Error(`unknown message ${msg.kind}`);
  }
}

parentPort.on('message', async (msg) => {
  try {
    const { transfer, ...result } = await handle(msg);
    parentPort.postMessage({ id: msg.id, ok: true, ...result }, transfer ?? []);
  } catch (e) {
    parentPort.postMessage({ id: msg.id, ok: false, error: String(e?.message ?? e) });
  }
});
