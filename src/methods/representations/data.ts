/**
 * Labelled text for representation methods: examples (a text and a label) and contrast pairs (one
 * statement with opposite answers), read from JSONL, CSV or Parquet (Hugging Face datasets are
 * Parquet), or made by the built-in generators in src/data/statements.ts.
 */
import fs from 'node:fs';
import path from 'node:path';
import { createHash } from 'node:crypto';
import { csvParse } from 'd3-dsv';
import { readParquet } from '../../parquet.js';
import { LanternError, nearest } from '../../errors.js';
import { Rng } from '../../rng.js';

/** Which side of the train/test split an example falls on. */
export type Split = 'train' | 'test';

/** One labelled text: the input to activation harvesting and probe training. */
export interface LabelledExample {
  /** The text the model reads. */
  text: string;
  /** 0/1 for classes, any number for regression. */
  label: number;
  /** Where a generator or a file assigns it; otherwise `splitExamples` assigns one. */
  split?: Split;
}

/** The same statement answered both ways; `label` says which answer is right (1: the positive one). */
export interface ContrastPair {
  positive: string;
  negative: string;
  label: number;
  split?: Split;
}

/** Labelled examples with where they came from, as {@link loadLabelled} and the built-in generators return them. */
export interface LabelledDataset {
  /** Where it came from: a file path, or a generator and its source data. */
  name: string;
  /** The examples, in file or generator order. */
  examples: LabelledExample[];
  /** Class names by label, when the file's labels were strings. */
  labelNames?: string[];
}

/** Which columns of a data file {@link loadLabelled} reads. */
export interface ColumnOptions {
  /** The column holding the text (default 'text'). */
  textColumn?: string;
  /** The column holding the label (default 'label'): numbers, booleans, or class names. */
  labelColumn?: string;
  /** A column of 'train'/'test' values; without it, `splitExamples` splits at random. */
  splitColumn?: string;
}

type Row = Record<string, unknown>;

/** The rows of a .jsonl, .csv or .parquet file, as objects keyed by column. */
export async function readRows(file: string): Promise<Row[]> {
  if (!fs.existsSync(file)) throw new LanternError(`data file ${file} does not exist`);
  const ext = path.extname(file).toLowerCase();
  if (ext === '.jsonl' || ext === '.ndjson') {
    return fs.readFileSync(file, 'utf8').split('\n').flatMap((line, i) => {
      if (!line.trim()) return [];
      try {
        const row = JSON.parse(line);
        if (row === null || typeof row !== 'object' || Array.isArray(row)) throw new Error('not an object');
        return [row as Row];
      } catch (e) {
        throw new LanternError(`${file} line ${i + 1}: not a JSON object (${(e as Error).message})`);
      }
    });
  }
  if (ext === '.csv') return csvParse(fs.readFileSync(file, 'utf8')) as unknown as Row[];
  if (ext === '.parquet') return (await readParquet(file)).rows as Row[];
  throw new LanternError(`data file ${file}: unknown format '${ext}'; use .jsonl, .csv or .parquet`);
}

function requireColumn(rows: Row[], column: string, file: string, flag: string): void {
  if (rows.length === 0) throw new LanternError(`${file} has no rows`);
  if (Object.hasOwn(rows[0], column)) return;
  const columns = Object.keys(rows[0]);
  // Names are quoted as JSON: a column name (the user's or the file's) may hold a line break.
  throw new LanternError(`${file} has no column ${JSON.stringify(column)} (${flag}); columns nearest to it: ${nearest(column, columns).map((c) => JSON.stringify(c)).join(', ')}`);
}

/**
 * Labels as numbers: numbers stay, booleans and 'true'/'false' become 1/0, other strings become
 * class indices in sorted order (returned as `names`).
 */
function toLabels(values: unknown[], file: string, column: string): { labels: number[]; names?: string[] } {
  const bool = (v: unknown) => (typeof v === 'boolean' ? v : typeof v === 'string' && /^(true|false)$/i.test(v) ? v.toLowerCase() === 'true' : undefined);
  if (values.every((v) => bool(v) !== undefined)) return { labels: values.map((v) => (bool(v) ? 1 : 0)) };
  const numeric = values.map((v) => (typeof v === 'number' ? v : typeof v === 'bigint' ? Number(v) : typeof v === 'string' && v.trim() !== '' ? Number(v) : NaN));
  if (numeric.every(Number.isFinite)) return { labels: numeric };
  const bad = values.findIndex((v) => typeof v !== 'string' || v === '');
  if (bad >= 0) throw new LanternError(`${file}: row ${bad} has label ${JSON.stringify(values[bad])} in column ${JSON.stringify(column)}; labels must be numbers, booleans or class names`);
  const names = [...new Set(values as string[])].sort();
  const index = new Map(names.map((n, i) => [n, i]));
  return { labels: (values as string[]).map((v) => index.get(v)!), names };
}

/** Row i's text in `column`: a non-empty string, or an error naming the row. */
function textAt(r: Row, column: string, i: number, file: string): string {
  const text = Object.hasOwn(r, column) ? r[column] : undefined;
  if (typeof text !== 'string' || text === '') throw new LanternError(`${file}: row ${i} has no text in column ${JSON.stringify(column)}`);
  return text;
}

function toSplit(v: unknown, row: number, file: string): Split {
  if (v === 'train' || v === 'test') return v;
  throw new LanternError(`${file}: row ${row} has split ${JSON.stringify(v)}; use 'train' or 'test'`);
}

/** Labelled examples from a file, with chosen text and label columns (default 'text' and 'label'). */
export async function loadLabelled(file: string, opts: ColumnOptions = {}): Promise<LabelledDataset> {
  const textColumn = opts.textColumn ?? 'text';
  const labelColumn = opts.labelColumn ?? 'label';
  const rows = await readRows(file);
  requireColumn(rows, textColumn, file, '--text-column');
  requireColumn(rows, labelColumn, file, '--label-column');
  if (opts.splitColumn) requireColumn(rows, opts.splitColumn, file, '--split-column');
  const { labels, names } = toLabels(rows.map((r) => r[labelColumn]), file, labelColumn);
  const examples = rows.map((r, i): LabelledExample => {
    const text = textAt(r, textColumn, i, file);
    return { text, label: labels[i], ...(opts.splitColumn ? { split: toSplit(r[opts.splitColumn], i, file) } : {}) };
  });
  return { name: file, examples, ...(names ? { labelNames: names } : {}) };
}

/** Contrast pairs from a file: two text columns (the statement answered each way) and a label column. */
export async function loadContrastPairs(file: string, opts: { positiveColumn?: string; negativeColumn?: string; labelColumn?: string; splitColumn?: string } = {}): Promise<ContrastPair[]> {
  const pos = opts.positiveColumn ?? 'positive';
  const neg = opts.negativeColumn ?? 'negative';
  const labelColumn = opts.labelColumn ?? 'label';
  const rows = await readRows(file);
  for (const [c, flag] of [[pos, '--positive-column'], [neg, '--negative-column'], [labelColumn, '--label-column']]) requireColumn(rows, c, file, flag);
  if (opts.splitColumn) requireColumn(rows, opts.splitColumn, file, '--split-column');
  const { labels } = toLabels(rows.map((r) => r[labelColumn]), file, labelColumn);
  return rows.map((r, i) => ({
    positive: textAt(r, pos, i, file), negative: textAt(r, neg, i, file), label: labels[i],
    ...(opts.splitColumn ? { split: toSplit(r[opts.splitColumn], i, file) } : {}),
  }));
}

/** A short content hash of texts and labels, saved with activations and probes to tie them to their data. */
export function datasetHash(items: readonly (LabelledExample | ContrastPair)[]): string {
  const h = createHash('sha256');
  for (const it of items) h.update(JSON.stringify('text' in it ? [it.text, it.label] : [it.positive, it.negative, it.label]) + '\n');
  return h.digest('hex').slice(0, 16);
}

/** Fails unless the labels hold at least two classes (a probe needs both to separate). */
export function requireTwoClasses(labels: ArrayLike<number>, what = 'the labels'): void {
  const seen = new Set<number>();
  for (let i = 0; i < labels.length && seen.size < 2; i++) seen.add(labels[i]);
  if (seen.size < 2) throw new LanternError(`${what} hold a single class (${[...seen][0] ?? 'none'}); a probe needs examples of both classes`);
}

/** Examples with a split: the file's or generator's where given, else a seeded random `testFraction` held out. */
export function splitExamples<T extends { split?: Split }>(items: readonly T[], opts: { seed?: number; testFraction?: number } = {}): (T & { split: Split })[] {
  if (items.every((e) => e.split)) return items as (T & { split: Split })[];
  const f = opts.testFraction ?? 0.25;
  const rng = new Rng(opts.seed ?? 0);
  const order = items.map((_, i) => i);
  for (let i = order.length - 1; i > 0; i--) { const j = rng.int(i + 1); [order[i], order[j]] = [order[j], order[i]]; }
  const test = new Set(order.slice(0, Math.max(1, Math.round(items.length * f))));
  return items.map((e, i) => ({ ...e, split: e.split ?? (test.has(i) ? 'test' : 'train') }));
}
