/**
 * Activation harvesting: run labelled texts through a model in batches, keep chosen hooks at chosen
 * positions, and stream them to safetensors shards, so a dataset larger than memory works. The
 * library form is an async iterator of batches; `harvestToFile` writes the shards.
 */
import fs from 'node:fs';
import path from 'node:path';
import { LanternError } from '../../errors.js';
import type { HookedTransformer } from '../../models/hooked.js';
import { readFloat32, readInt32, readSafetensorsHeader, writeSafetensors, SafetensorsHeader, WritableTensor } from '../../models/safetensors.js';
import { datasetHash, LabelledExample } from './data.js';

/** Which positions of each prompt to keep: the last token, the mean over tokens, every token, one index (negative: from the end), or the last occurrence of a token. */
export type Positions = 'last' | 'mean' | 'all' | number | { token: string };

/** Options for {@link activationBatches}: which hooks and positions to keep, and the batch size. */
export interface HarvestOptions {
  /** Hook names to keep (shaped [batch, pos, …], e.g. blocks.0.hook_resid_post). */
  hooks: string[];
  /** Which positions of each prompt to keep (default 'last'). */
  positions?: Positions;
  /** Prompts per forward (default 32). */
  batchSize?: number;
  /** Called after each batch with the prompts done so far and the total. */
  progress?: (done: number, total: number) => void;
  /** The index of the first text in the whole dataset, when harvesting a part of it (a job's shard): rows and messages name examples by it. Default 0. */
  firstExample?: number;
}

/** One batch of harvested activations, as {@link activationBatches} yields it: a row per kept position (or per prompt). */
export interface ActivationBatch {
  /** Rows of this batch: prompts, or tokens with positions 'all'. */
  rows: number;
  /** [rows, width] per hook, row-major. */
  acts: Record<string, Float32Array>;
  /** The prompt index of each row. */
  example: Int32Array;
  /** The token position of each row (-1 for 'mean'). */
  position: Int32Array;
}

/** Parses a --positions value: last, mean, all, an integer, or anything else as a token. */
export function parsePositions(s: string): Positions {
  if (s === 'last' || s === 'mean' || s === 'all') return s;
  if (/^-?\d+$/.test(s)) return Number(s);
  return { token: s };
}

/** A {@link Positions} value as text ('last', 'mean', 'all', an index, or `token:<text>`), as saved in activation files. */
export function positionsLabel(p: Positions): string {
  return typeof p === 'object' ? `token:${p.token}` : String(p);
}

/** Values per row at `hook`: its size past [batch, pos]; refuses hooks whose second axis is not the position. */
export function hookWidth(model: HookedTransformer, hook: string): number {
  model.checkHook(hook);
  const shape = model.hookShapes.get(hook)!;
  // 'seq': the symbolic position axis of hook shapes.
  if (shape[1] !== 'seq') {
    throw new LanternError(`hook '${hook}' has no position axis after the batch (shape [${shape.join(', ')}]); activations per position come from hooks shaped [batch, pos, ...] such as blocks.0.hook_resid_post`);
  }
  return shape.slice(2).reduce((p: number, d) => p * Number(d), 1);
}

function resolvePositions(model: HookedTransformer, rows: number[][], positions: Positions, texts: readonly string[], first: number): number[][] {
  if (positions === 'all' || positions === 'mean') return rows.map((r) => r.map((_, i) => i));
  if (positions === 'last') return rows.map((r) => [r.length - 1]);
  if (typeof positions === 'number') {
    return rows.map((r, b) => {
      const p = positions < 0 ? r.length + positions : positions;
      if (p < 0 || p >= r.length) throw new LanternError(`position ${positions} is outside prompt ${first + b} (${r.length} tokens): ${JSON.stringify(texts[b])}`);
      return [p];
    });
  }
  const ids = model.encode(positions.token);
  if (ids.length !== 1) throw new LanternError(`--positions token ${JSON.stringify(positions.token)} is ${ids.length} tokens; give one token (e.g. with its leading space)`);
  return rows.map((r, b) => {
    const p = r.lastIndexOf(ids[0]);
    if (p < 0) throw new LanternError(`prompt ${first + b} has no token ${JSON.stringify(positions.token)}: ${JSON.stringify(texts[b])}`);
    return [p];
  });
}

/**
 * Activations of `texts` at `opts.hooks`, one batch of prompts at a time. Logits are computed at
 * a single position only: nobody reads them here, and the unembedding is a large share of a
 * small model's forward.
 */
export async function* activationBatches(model: HookedTransformer, texts: readonly (string | number[])[], opts: HarvestOptions): AsyncGenerator<ActivationBatch> {
  const positions = opts.positions ?? 'last';
  const batchSize = opts.batchSize ?? 32;
  if (!Number.isInteger(batchSize) || batchSize < 1) throw new LanternError(`batch size must be a positive integer, got ${batchSize}`);
  if (opts.hooks.length === 0) throw new LanternError('give at least one hook');
  const widths = opts.hooks.map((h) => hookWidth(model, h));
  const tokens = texts.map((t) => (typeof t === 'string' ? model.toTokens(t) : t));
  const first = opts.firstExample ?? 0;
  const at = resolvePositions(model, tokens, positions, texts.map(String), first);
  for (let start = 0; start < texts.length; start += batchSize) {
    const rows = tokens.slice(start, start + batchSize);
    const { cache, batch } = await model.runWithHooks(rows, { cache: opts.hooks, logitPositions: [0] });
    const picks = at.slice(start, start + rows.length);
    const n = positions === 'mean' ? rows.length : picks.reduce((s, p) => s + p.length, 0);
    const example = new Int32Array(n);
    const position = new Int32Array(n);
    let k = 0;
    picks.forEach((ps, b) => {
      for (const p of positions === 'mean' ? [-1] : ps) { example[k] = first + start + b; position[k++] = p; }
    });
    const acts: Record<string, Float32Array> = {};
    opts.hooks.forEach((hook, h) => {
      const w = widths[h];
      const src = cache.get(hook).f32;
      const out = new Float32Array(n * w);
      let r = 0;
      picks.forEach((ps, b) => {
        const base = b * batch.seq * w;
        if (positions === 'mean') {
          const dst = out.subarray(r * w, (r + 1) * w);
          for (const p of ps) for (let j = 0; j < w; j++) dst[j] += src[base + p * w + j];
          for (let j = 0; j < w; j++) dst[j] /= ps.length;
          r++;
        } else {
          for (const p of ps) out.set(src.subarray(base + p * w, base + (p + 1) * w), (r++) * w);
        }
      });
      acts[hook] = out;
    });
    yield { rows: n, acts, example, position };
    opts.progress?.(Math.min(start + batchSize, texts.length), texts.length);
  }
}

// -------------------------------------------------------------------------------------------------
// Files: one safetensors file, or shards `<stem>-00001-of-00004.safetensors` listed in `<out>.index.json`

/** Options for {@link harvestToFile}: those of {@link HarvestOptions}, plus the output file and its shards. */
export interface HarvestFileOptions extends HarvestOptions {
  /** The output .safetensors path; with several shards, `<out>.index.json` lists them. */
  out: string;
  /** Rows per shard (default: as many as fit in 256 MiB). */
  shardRows?: number;
  /** Saved with the activations. */
  dataset?: string;
  /** The seed that drew the dataset and its split (harvesting itself draws nothing), saved so the file can be reproduced. */
  seed?: number;
  /** The examples' prompts as token ids, when they are already tokenized (or the model has no tokenizer). */
  tokens?: number[][];
}

/** What an activations file holds, saved in its metadata (and in the index of a sharded one). */
export interface ActivationsMeta {
  /** Always 'lantern-activations'. */
  format: 'lantern-activations';
  /** The model's source (folder or Hub id). */
  model: string;
  /** The model's residual stream width. */
  dModel: number;
  /** The hooks harvested. */
  hooks: string[];
  /** Values per row at each hook, in the order of `hooks`. */
  widths: number[];
  /** The positions kept, as {@link positionsLabel} writes them. */
  positions: string;
  /** The dataset's name, as given when harvesting ('' if none). */
  dataset: string;
  /** A content hash of the examples' texts and labels, to tie probes to the data they were trained on. */
  datasetHash: string;
  /** Rows in all shards together. */
  rows: number;
  /** Examples (prompts) harvested. */
  examples: number;
  /** Contrast pairs: rows of example i are its positive (side 1) and negative (side 0) answers. */
  contrast: boolean;
  /** The seed that drew the dataset and its split, when one was given. */
  seed?: number;
}

/** The shard files of an activations output, first to last. */
export function activationFiles(out: string): string[] {
  const index = `${out}.index.json`;
  if (fs.existsSync(index)) {
    const { shards } = JSON.parse(fs.readFileSync(index, 'utf8')) as { shards: string[] };
    return shards.map((s) => path.join(path.dirname(out), s));
  }
  if (!fs.existsSync(out)) throw new LanternError(`activations file ${out} does not exist (make one with lantern activations)`);
  return [out];
}

function shardName(out: string, k: number, n: number): string {
  const stem = out.replace(/\.safetensors$/, '');
  return `${stem}-${String(k + 1).padStart(5, '0')}-of-${String(n).padStart(5, '0')}.safetensors`;
}

/** An example as harvesting takes it: a labelled text, and for contrast pairs its side and pair. */
export type HarvestExample = LabelledExample & { side?: number; pair?: number };

/** The metadata an activations file saves for `examples` harvested with `opts`, holding `rows` rows. */
export function activationsMeta(model: HookedTransformer, examples: readonly HarvestExample[], opts: Pick<HarvestFileOptions, 'hooks' | 'positions' | 'dataset' | 'seed'>, rows: number): ActivationsMeta {
  return {
    format: 'lantern-activations', model: model.source, dModel: model.cfg.dModel, hooks: opts.hooks, widths: opts.hooks.map((h) => hookWidth(model, h)),
    positions: positionsLabel(opts.positions ?? 'last'), dataset: opts.dataset ?? '', datasetHash: datasetHash(examples), rows, examples: examples.length,
    contrast: examples.some((e) => e.side !== undefined), ...(opts.seed !== undefined ? { seed: opts.seed } : {}),
  };
}

/** Rows per output file by default: as many as fit in 256 MiB. */
export function defaultShardRows(widths: number[]): number {
  return Math.max(1, Math.floor((256 << 20) / (4 * widths.reduce((a, b) => a + b, 0))));
}

/**
 * Harvests `examples` (or contrast pairs, given as examples with a `side`) to `opts.out`, holding
 * at most one shard of rows in memory. Returns what was saved.
 */
export async function harvestToFile(model: HookedTransformer, examples: readonly HarvestExample[], opts: HarvestFileOptions): Promise<ActivationsMeta> {
  const positions = opts.positions ?? 'last';
  const texts = opts.tokens ?? examples.map((e) => e.text);
  if (texts.length !== examples.length) throw new LanternError(`${texts.length} token rows for ${examples.length} examples`);
  const totalRows = positions === 'all' ? texts.reduce((s, t) => s + (typeof t === 'string' ? model.toTokens(t) : t).length, 0) : texts.length;
  const meta = activationsMeta(model, examples, opts, totalRows);
  return writeActivations(opts.out, examples, meta, activationBatches(model, texts, opts), opts.shardRows);
}

/**
 * Writes the rows of `batches` (which must hold `meta.rows` rows, in example order) to `out`,
 * as one file or as shards of `shardRows` rows listed in `<out>.index.json`, with each row's
 * label and split from `examples`. Holds at most one shard of rows in memory.
 */
export async function writeActivations(out: string, examples: readonly HarvestExample[], meta: ActivationsMeta, batches: AsyncIterable<ActivationBatch>, shardRows = defaultShardRows(meta.widths)): Promise<ActivationsMeta> {
  const { hooks, widths, contrast } = meta;
  const nShards = Math.max(1, Math.ceil(meta.rows / shardRows));
  const shards: string[] = [];
  let pending: ActivationBatch[] = [];
  let pendingRows = 0;
  const flush = (rows: number) => {
    const take = concatRows(pending, rows, hooks, widths);
    pending = take.rest ? [take.rest] : [];
    pendingRows -= rows;
    const file = nShards === 1 ? out : shardName(out, shards.length, nShards);
    const ex = take.batch.example;
    const tensors: Record<string, WritableTensor> = {
      example: { dtype: 'I32', shape: [rows], data: ex },
      position: { dtype: 'I32', shape: [rows], data: take.batch.position },
      label: { dtype: 'F32', shape: [rows], data: Float32Array.from(ex, (i) => examples[i].label) },
      split: { dtype: 'I32', shape: [rows], data: Int32Array.from(ex, (i) => (examples[i].split === 'test' ? 1 : examples[i].split === 'train' ? 0 : -1)) },
    };
    if (contrast) {
      tensors.side = { dtype: 'I32', shape: [rows], data: Int32Array.from(ex, (i) => examples[i].side ?? 0) };
      tensors.pair = { dtype: 'I32', shape: [rows], data: Int32Array.from(ex, (i) => examples[i].pair ?? i) };
    }
    hooks.forEach((h, j) => (tensors[`acts.${h}`] = { dtype: 'F32', shape: [rows, widths[j]], data: take.batch.acts[h] }));
    writeSafetensors(file, tensors, { lantern: JSON.stringify(meta) });
    shards.push(path.basename(file));
  };
  let seen = 0;
  for await (const batch of batches) {
    pending.push(batch);
    pendingRows += batch.rows;
    seen += batch.rows;
    while (pendingRows >= shardRows && shards.length < nShards - 1) flush(shardRows);
  }
  if (seen !== meta.rows) throw new LanternError(`the activations hold ${seen} rows, not the ${meta.rows} expected`);
  flush(pendingRows);
  if (nShards > 1) fs.writeFileSync(`${out}.index.json`, JSON.stringify({ ...meta, shards }, null, 2) + '\n');
  return meta;
}

/** The first `rows` rows of `batches` as one batch, and what is left of the last one. */
function concatRows(batches: ActivationBatch[], rows: number, hooks: string[], widths: number[]): { batch: ActivationBatch; rest?: ActivationBatch } {
  const out: ActivationBatch = { rows, acts: Object.fromEntries(hooks.map((h, j) => [h, new Float32Array(rows * widths[j])])), example: new Int32Array(rows), position: new Int32Array(rows) };
  let r = 0;
  let rest: ActivationBatch | undefined;
  for (const b of batches) {
    const take = Math.min(b.rows, rows - r);
    out.example.set(b.example.subarray(0, take), r);
    out.position.set(b.position.subarray(0, take), r);
    hooks.forEach((h, j) => out.acts[h].set(b.acts[h].subarray(0, take * widths[j]), r * widths[j]));
    r += take;
    if (take < b.rows) {
      rest = {
        rows: b.rows - take, example: b.example.slice(take), position: b.position.slice(take),
        acts: Object.fromEntries(hooks.map((h, j) => [h, b.acts[h].slice(take * widths[j])])),
      };
    }
  }
  return { batch: out, rest };
}

/** One hook's activations from a harvest, all shards, with each row's labels. */
export interface HookActivations {
  meta: ActivationsMeta;
  hook: string;
  x: Float32Array;
  rows: number;
  width: number;
  label: Float32Array;
  example: Int32Array;
  /** 0 train, 1 test, -1 unassigned. */
  split: Int32Array;
  side?: Int32Array;
}

function metaOf(header: SafetensorsHeader): ActivationsMeta {
  const raw = header.metadata.lantern;
  if (!raw) throw new LanternError(`${header.path} is not a Lantern activations file (no 'lantern' metadata); make one with lantern activations`);
  return JSON.parse(raw) as ActivationsMeta;
}

/** Reads the metadata of an activations output (a single file, or the first shard of a sharded one) without its tensors. */
export function readActivationsMeta(out: string): ActivationsMeta {
  return metaOf(readSafetensorsHeader(activationFiles(out)[0]));
}

/** Reads one hook's rows from every shard of `out`. */
export function readActivations(out: string, hook?: string): HookActivations {
  const files = activationFiles(out);
  const headers = files.map(readSafetensorsHeader);
  const meta = metaOf(headers[0]);
  const name = hook ?? meta.hooks[0];
  const j = meta.hooks.indexOf(name);
  if (j < 0) throw new LanternError(`${out} has no activations at hook '${name}'; it holds ${meta.hooks.join(', ')}`);
  const width = meta.widths[j];
  const x = new Float32Array(meta.rows * width);
  const label = new Float32Array(meta.rows);
  const example = new Int32Array(meta.rows);
  const split = new Int32Array(meta.rows);
  const side = meta.contrast ? new Int32Array(meta.rows) : undefined;
  let r = 0;
  for (const h of headers) {
    const n = h.tensors.get('example')!.shape[0];
    x.set(readFloat32(h, `acts.${name}`), r * width);
    label.set(readFloat32(h, 'label'), r);
    example.set(readInt32(h, 'example'), r);
    split.set(readInt32(h, 'split'), r);
    side?.set(readInt32(h, 'side'), r);
    r += n;
  }
  return { meta, hook: name, x, rows: meta.rows, width, label, example, split, side };
}
