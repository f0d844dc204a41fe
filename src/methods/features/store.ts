/**
 * Dashboards on disk, laid out so a viewer opens them at once whatever their number: a folder with
 * `index.json` (what was built from what, one short summary per feature, and the byte range of
 * each feature's line) and `features.jsonl` (one dashboard per line, read by its byte range).
 * Explanations live in `explanations.json` beside them, so explaining never rewrites dashboards.
 */
import fs from 'node:fs';
import path from 'node:path';
import { LanternError } from '../../errors.js';
import type { DashboardSet, FeatureDashboard } from './dashboards.js';

/** Identifies a dashboard folder's index. */
export const DASHBOARD_FORMAT = 'lantern-feature-dashboards';

/** What a feature list shows without opening the feature: enough to browse and search. */
export interface FeatureSummary {
  index: number;
  max: number;
  density: number;
  /** The tokens at its top activations, most frequent first (at most 5). */
  topTokens: string[];
  explanation?: string;
  score?: number;
}

/** A dashboard folder's index.json. */
export interface DashboardIndex extends Omit<DashboardSet, 'features' | 'random'> {
  format: typeof DASHBOARD_FORMAT;
  version: 1;
  /** Random contexts' tokens (their activations are in each feature's line). */
  random: { ids: number[][]; tokens: string[][]; offsets: number[] };
  features: FeatureSummary[];
  /** Byte offset and length of each feature's line in features.jsonl. */
  ranges: [number, number][];
}

/** A stored dashboard: the feature's own plus its activations on the shared random contexts. */
export interface StoredDashboard extends FeatureDashboard {
  randomActivations: number[][];
}

/** Explanations by feature index, as `explanations.json` holds them. */
export type ExplanationMap = Record<string, { text: string; score?: number; method?: string }>;

function summary(f: FeatureDashboard): FeatureSummary {
  const tally = new Map<string, number>();
  for (const c of f.top) { const t = c.tokens[c.at]; tally.set(t, (tally.get(t) ?? 0) + 1); }
  const topTokens = [...tally.entries()].sort((a, b) => b[1] - a[1]).slice(0, 5).map(([t]) => t);
  return { index: f.index, max: f.max, density: f.density, topTokens, ...(f.explanation ? { explanation: f.explanation.text, score: f.explanation.score } : {}) };
}

/** Writes a dashboard set to `folder` (created if needed): index.json and features.jsonl. */
export function writeDashboards(set: DashboardSet, folder: string): void {
  fs.mkdirSync(folder, { recursive: true });
  const file = path.join(folder, 'features.jsonl');
  const fd = fs.openSync(file, 'w');
  const ranges: [number, number][] = [];
  let at = 0;
  try {
    set.features.forEach((f, i) => {
      const line = Buffer.from(JSON.stringify({ ...f, randomActivations: set.random.activations[i] } satisfies StoredDashboard) + '\n');
      fs.writeSync(fd, line);
      ranges.push([at, line.length - 1]);
      at += line.length;
    });
  } finally {
    fs.closeSync(fd);
  }
  const { features, random, ...meta } = set;
  const index: DashboardIndex = {
    format: DASHBOARD_FORMAT, version: 1, ...meta, random: { ids: random.ids, tokens: random.tokens, offsets: random.offsets },
    features: features.map(summary), ranges,
  };
  fs.writeFileSync(path.join(folder, 'index.json'), JSON.stringify(index));
}

/** Reads a dashboard folder's index (with the explanations merged into the summaries). */
export function readDashboardIndex(folder: string): DashboardIndex {
  const file = path.join(folder, 'index.json');
  if (!fs.existsSync(file)) throw new LanternError(`${folder} is not a dashboard folder (no index.json); build one with 'lantern features dashboards'`);
  let index: DashboardIndex;
  try {
    index = JSON.parse(fs.readFileSync(file, 'utf8')) as DashboardIndex;
  } catch (e) {
    throw new LanternError(`${file} is not valid JSON: ${(e as Error).message}`);
  }
  if (index.format !== DASHBOARD_FORMAT) throw new LanternError(`${file} is not a Lantern dashboard index (format '${String(index.format)}')`);
  const ex = readExplanations(folder);
  for (const [k, e] of Object.entries(ex)) {
    const s = index.features[Number(k)];
    if (s) { s.explanation = e.text; s.score = e.score; }
  }
  return index;
}

/** Reads one feature's dashboard by its byte range (the rest of features.jsonl is never read). */
export function readDashboard(folder: string, feature: number, index = readDashboardIndex(folder)): StoredDashboard {
  const range = index.ranges[feature];
  if (!Number.isInteger(feature) || !range) throw new LanternError(`feature ${feature} outside [0, ${index.size}) of ${folder}`);
  const fd = fs.openSync(path.join(folder, 'features.jsonl'), 'r');
  try {
    const buf = Buffer.alloc(range[1]);
    fs.readSync(fd, buf, 0, range[1], range[0]);
    const d = JSON.parse(buf.toString('utf8')) as StoredDashboard;
    const e = readExplanations(folder)[String(feature)];
    return e ? { ...d, explanation: e } : d;
  } finally {
    fs.closeSync(fd);
  }
}

/** The explanations stored beside a dashboard folder's index (empty when none were made). */
export function readExplanations(folder: string): ExplanationMap {
  const file = path.join(folder, 'explanations.json');
  if (!fs.existsSync(file)) return {};
  try {
    return JSON.parse(fs.readFileSync(file, 'utf8')) as ExplanationMap;
  } catch (e) {
    throw new LanternError(`${file} is not valid JSON: ${(e as Error).message}`);
  }
}

/** Adds (or replaces) explanations in a dashboard folder. */
export function writeExplanations(folder: string, add: ExplanationMap): void {
  const all = { ...readExplanations(folder), ...add };
  fs.writeFileSync(path.join(folder, 'explanations.json'), JSON.stringify(all, null, 1));
}
