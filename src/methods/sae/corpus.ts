/** Token streams for SAE training and evaluation: the bundled Brown corpus, or any text, JSONL, CSV or Parquet file. */
import fs from 'node:fs';
import path from 'node:path';
import { createHash } from 'node:crypto';
import { LanternError, nearest } from '../../errors.js';
import type { HookedTransformer } from '../../models/hooked.js';
import { tokenizeSplits } from '../../data/brown.js';
import { readRows } from '../representations/data.js';

/** A corpus as token ids, with a hash of its text for saved results. */
export interface Corpus {
  name: string;
  tokens: Uint16Array | Uint32Array;
  hash: string;
}

/**
 * `brown` (the bundled corpus's training split; `brown:heldout` its held-out split), a .txt file,
 * or a .jsonl/.csv/.parquet file whose `textColumn` holds the texts (joined by the tokenizer's BOS token, where it has one).
 */
export async function loadCorpus(model: HookedTransformer, data: string, opts: { textColumn?: string } = {}): Promise<Corpus> {
  if (data === 'brown' || data === 'brown:heldout') {
    const splits = tokenizeSplits();
    const tokens = data === 'brown' ? splits.train : splits.heldout;
    return { name: data, tokens, hash: createHash('sha256').update(Buffer.from(tokens.buffer, tokens.byteOffset, tokens.byteLength)).digest('hex').slice(0, 16) };
  }
  if (!model.tokenizer) throw new LanternError(`the model has no tokenizer to read ${data} with`);
  let texts: string[];
  if (path.extname(data).toLowerCase() === '.txt') {
    if (!fs.existsSync(data)) throw new LanternError(`data file ${data} does not exist`);
    texts = [fs.readFileSync(data, 'utf8')];
  } else {
    const rows = await readRows(data);
    const column = opts.textColumn ?? 'text';
    if (rows.length === 0) throw new LanternError(`${data} has no rows`);
    if (!(column in rows[0])) throw new LanternError(`${data} has no column '${column}' (--text-column); nearest: ${nearest(column, Object.keys(rows[0])).join(', ')}`);
    texts = rows.map((r) => String(r[column] ?? ''));
  }
  const eot = model.tokenizer.bos?.id;
  const ids: number[] = [];
  for (const t of texts) {
    ids.push(...model.encode(t));
    if (eot !== undefined) ids.push(eot);
  }
  const tokens = model.cfg.dVocab <= 65536 ? Uint16Array.from(ids) : Uint32Array.from(ids);
  return { name: path.basename(data), tokens, hash: createHash('sha256').update(texts.join('\u0000')).digest('hex').slice(0, 16) };
}
