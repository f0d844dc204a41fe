/**
 * Reading Parquet files (users' datasets, tabular job shards) with hyparquet, in a worker thread
 * under a time limit. hyparquet can loop forever on a corrupt file (one changed byte in a nullable
 * column's levels was enough, found by fuzzing), synchronously, so no check on this thread could
 * stop it: the worker is terminated instead, and the file is refused as unreadable.
 */
import { Worker } from 'node:worker_threads';
import { LanternError } from './errors.js';
import { readRegularBytes } from './files.js';

/** How long parsing one file may take before it is taken for corrupt. */
const PARQUET_READ_MS = 60_000;
/** The largest Parquet file read whole (a Buffer's limit is 4 GiB). */
const MAX_PARQUET_BYTES = 2 ** 32 - 1;

/** The rows of the Parquet file `file` and its key-value metadata; a file that cannot be read (or not within the time limit) is a LanternError naming it. */
export function readParquet(file: string, opts: { timeoutMs?: number } = {}): Promise<{ rows: Record<string, unknown>[]; metadata: Record<string, string> }> {
  // Read here, where a FIFO or a device in the file's place is refused, and handed over whole.
  const bytes = readRegularBytes(file, MAX_PARQUET_BYTES, 'Parquet file');
  // A file's Buffer owns its memory unless it is small enough for Node's shared pool: then copy.
  const whole = bytes.byteOffset === 0 && bytes.byteLength === bytes.buffer.byteLength;
  const buffer = (whole ? bytes.buffer : Uint8Array.from(bytes).buffer) as ArrayBuffer;
  const worker = new Worker(new URL('./parquet-worker.mjs', import.meta.url), { workerData: { buffer }, transferList: [buffer] });
  const ms = opts.timeoutMs ?? PARQUET_READ_MS;
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      void worker.terminate();
      reject(new LanternError(`${file}: cannot read as Parquet (still reading after ${ms / 1000} s; the file is probably corrupt)`));
    }, ms);
    const done = () => { clearTimeout(timer); void worker.terminate(); };
    worker.once('message', (m: { ok: true; rows: Record<string, unknown>[]; metadata: Record<string, string> } | { ok: false; message: string }) => {
      done();
      if (m.ok) resolve({ rows: m.rows, metadata: m.metadata });
      else reject(new LanternError(`${file}: cannot read as Parquet (${m.message})`));
    });
    worker.once('error', (e) => { done(); reject(new LanternError(`${file}: cannot read as Parquet (${e.message})`)); });
  });
}
