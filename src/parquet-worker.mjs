// Parses one Parquet file's bytes off the caller's thread (src/parquet.ts). Plain JavaScript so it loads the same way under
// tsc output, tsx and vitest (as the ONNX Runtime worker does).
import { parentPort, workerData } from 'node:worker_threads';
import { parquetMetadata, parquetReadObjects } from 'hyparquet';

try {
  const { buffer } = workerData;
  const metadata = Object.fromEntries((parquetMetadata(buffer).key_value_metadata ?? []).map(({ key, value }) => [key, value]));
  const rows = await parquetReadObjects({ file: buffer });
  parentPort.postMessage({ ok: true, rows, metadata });
} catch (e) {
  parentPort.postMessage({ ok: false, message: String(e?.message ?? e) });
}
