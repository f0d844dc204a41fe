/**
 * Saved black-box explanations: one JSON document per run with everything needed to trust or
 * redo it (backend id, method, settings, seed, embedder/scorer/infiller ids, calls used), and a
 * terminal rendering of each kind.
 */
import fs from 'node:fs';
import { LanternError } from '../../errors.js';
import type { CellResult } from './cell.js';
import type { SmileResult } from './smile.js';

/** The `format` field of black-box result JSON files. */
export const BLACKBOX_FORMAT = 'lantern-blackbox';
/** The version of the black-box JSON format. */
export const BLACKBOX_VERSION = 1;

/** A SMILE or CELL result. */
export type BlackboxResult = SmileResult | CellResult;

/** The JSON form of a black-box result. */
export function blackboxToJSON(r: BlackboxResult): object {
  return { format: BLACKBOX_FORMAT, version: BLACKBOX_VERSION, ...r };
}

/** Writes a black-box result as JSON. */
export function saveBlackboxResult(file: string, r: BlackboxResult): void {
  fs.writeFileSync(file, JSON.stringify(blackboxToJSON(r), null, 2) + '\n');
}

const REQUIRED: Record<BlackboxResult['method'], string[]> = {
  smile: ['backend', 'embedder', 'settings', 'seed', 'prompt', 'response', 'words', 'importances', 'r2', 'samples', 'calls'],
  cell: ['backend', 'scorer', 'infiller', 'settings', 'seed', 'prompt', 'response', 'editedPrompt', 'editedResponse', 'edits', 'score', 'found', 'calls'],
  mcell: ['backend', 'scorer', 'infiller', 'settings', 'seed', 'prompt', 'response', 'editedPrompt', 'editedResponse', 'edits', 'score', 'found', 'calls'],
};

/** Checks parsed JSON as a black-box result, naming the first thing wrong. */
export function parseBlackboxResult(json: unknown, source = 'black-box result JSON'): BlackboxResult {
  const o = json as Record<string, unknown> | null;
  if (!o || typeof o !== 'object' || o.format !== BLACKBOX_FORMAT) throw new LanternError(`${source} is not a Lantern black-box result (format '${BLACKBOX_FORMAT}')`);
  if (o.version !== BLACKBOX_VERSION) throw new LanternError(`${source} has version ${String(o.version)}; this Lantern reads version ${BLACKBOX_VERSION}`);
  const method = o.method as BlackboxResult['method'];
  if (!(method in REQUIRED)) throw new LanternError(`${source} has unknown method '${String(o.method)}'`);
  const missing = REQUIRED[method].filter((k) => !(k in o));
  if (missing.length) throw new LanternError(`${source} lacks ${missing.join(', ')}`);
  const { format: _f, version: _v, ...rest } = o;
  return rest as unknown as BlackboxResult;
}

/** Reads a black-box JSON file, checking it. */
export function loadBlackboxResult(file: string): BlackboxResult {
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch (e) {
    throw new LanternError(`cannot read ${file}: ${(e as Error).message}`);
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (e) {
    throw new LanternError(`${file} is not valid JSON: ${(e as Error).message}`);
  }
  return parseBlackboxResult(json, file);
}

const q = (s: string) => JSON.stringify(s);

function fmt(x: number): string {
  return Number.isFinite(x) ? (x >= 0 ? ' ' : '') + x.toFixed(4) : String(x);
}

function renderSmile(r: SmileResult, color: boolean): string {
  const lines = [
    `SMILE on ${r.backend} (distances: W1 over ${r.embedder}; ${r.samples.length - 1} perturbations + the prompt, seed ${r.seed})`,
    `prompt:   ${q(r.prompt)}`,
    `response: ${q(r.response)}`,
    `surrogate weighted R² = ${r.r2.toFixed(4)}, intercept ${r.intercept.toFixed(4)}`,
    ...(r.samples.every((s) => s.outputDistance === r.samples[0].outputDistance)
      ? ['(every perturbed prompt gave a response equally far from the original: no word moved the output, so every importance is 0)']
      : []),
    '',
    'word importances (how much keeping the word keeps the response; sorted by |importance|):',
  ];
  const max = Math.max(1e-12, ...r.importances.map(Math.abs));
  const width = Math.max(...r.words.map((w) => w.length));
  const order = r.importances.map((_, i) => i).sort((a, b) => Math.abs(r.importances[b]) - Math.abs(r.importances[a]));
  for (const i of order) {
    const v = r.importances[i];
    const bar = '█'.repeat(Math.round((20 * Math.abs(v)) / max));
    const paint = color ? (v >= 0 ? `\x1b[31m${bar}\x1b[0m` : `\x1b[34m${bar}\x1b[0m`) : bar;
    lines.push(`  ${String(i).padStart(3)}  ${r.words[i].padEnd(width)}  ${fmt(v)}  ${v >= 0 ? '+' : '-'}${paint}`);
  }
  return lines.join('\n');
}

function renderCell(r: CellResult, color: boolean): string {
  const name = r.method === 'cell' ? 'CELL' : 'm-CELL';
  const marked = r.chunks.map((c, i) => {
    const e = r.edits.find((x) => x.position === i);
    if (!e) return c;
    const t = `[${e.from} → ${e.to || '∅'}]`;
    return color ? `\x1b[1;33m${t}\x1b[0m` : t;
  });
  return [
    `${name} on ${r.backend} (scorer ${r.scorer}; infiller ${r.infiller}; seed ${r.seed})`,
    `prompt:          ${q(r.prompt)}`,
    `response:        ${q(r.response)}`,
    `edited prompt:   ${q(r.editedPrompt)}`,
    `edited response: ${q(r.editedResponse)}`,
    `edits (${r.edits.length}): ${marked.join(' ')}`,
    `score ${r.score.toFixed(4)} (|score| ${r.found ? '>' : '≤'} ε = ${r.settings.epsilon}): ${r.found ? 'contrast found' : 'no contrast found; best edit shown'} — stopped: ${r.stopReason}`,
    `calls: ${r.calls.model}/${r.calls.budget} model (original included), ${r.calls.infiller} infiller, ${r.calls.judge} judge; ${r.candidates} edited prompts scored`,
  ].join('\n');
}

/** A black-box result as terminal text. */
export function renderBlackbox(r: BlackboxResult, opts: { color?: boolean } = {}): string {
  return r.method === 'smile' ? renderSmile(r, opts.color ?? false) : renderCell(r, opts.color ?? false);
}
