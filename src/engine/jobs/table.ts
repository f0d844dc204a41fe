/**
 * Shards that are tables (a row per judgment, say) are Parquet files, written with hyparquet-writer
 * and read with hyparquet, so any Parquet reader (pandas, DuckDB, Arrow) can open a job's shards.
 *
 * A column whose values are all strings, all numbers or all booleans (nulls allowed) is stored as
 * that Parquet type. Any other column (objects, arrays, mixed types, or a field some rows lack) is
 * stored as the JSON text of each value, with an absent field as a null cell; such columns are
 * named in the file's metadata, so reading gives back what JSON would: the same values, and absent
 * fields absent.
 */
import fs from 'node:fs';
import { parquetWriteBuffer } from 'hyparquet-writer';
import type { ColumnSource } from 'hyparquet-writer';
import { LanternError } from '../../errors.js';
import { readParquet } from '../../parquet.js';

const JSON_COLUMNS = 'lantern.json-columns';
const META = 'lantern.meta';

type Cell = string | number | boolean | null;

function columnOf(name: string, values: unknown[]): { column: ColumnSource; json: boolean } {
  for (const [type, js] of [['STRING', 'string'], ['DOUBLE', 'number'], ['BOOLEAN', 'boolean']] as const) {
    if (values.every((v) => v === null || typeof v === js)) return { column: { name, data: values as Cell[], type, nullable: true }, json: false };
  }
  return { column: { name, data: values.map((v) => (v === undefined ? null : JSON.stringify(v))), type: 'STRING', nullable: true }, json: true };
}

/** Writes `rows` to `file` as a Parquet table, with `meta` (any JSON) in its key-value metadata. */
export function writeTable(file: string, rows: readonly Record<string, unknown>[], meta: unknown = null): void {
  const names: string[] = [];
  const seen = new Set<string>();
  for (const r of rows) for (const k of Object.keys(r)) if (!seen.has(k)) { seen.add(k); names.push(k); }
  const columns = names.map((n) => columnOf(n, rows.map((r) => r[n])));
  const buffer = parquetWriteBuffer({
    columnData: columns.map((c) => c.column),
    kvMetadata: [{ key: JSON_COLUMNS, value: JSON.stringify(columns.filter((c) => c.json).map((c) => c.column.name)) }, { key: META, value: JSON.stringify(meta) }],
  });
  fs.writeFileSync(file, new Uint8Array(buffer));
}

/** Reads a table {@link writeTable} wrote: its rows and its metadata. */
export async function readTable<R = Record<string, unknown>, M = unknown>(file: string): Promise<{ rows: R[]; meta: M }> {
  const { rows, metadata } = await readParquet(file);
  try {
    const json = new Set(JSON.parse(metadata[JSON_COLUMNS] ?? '[]') as string[]);
    for (const r of rows) {
      for (const k of json) {
        if (r[k] === null) delete r[k];
        else r[k] = JSON.parse(r[k] as string);
      }
    }
    return { rows: rows as R[], meta: JSON.parse(metadata[META] ?? 'null') as M };
  } catch (e) {
    throw new LanternError(`${file} is not a table Lantern wrote: ${(e as Error).message}`);
  }
}
