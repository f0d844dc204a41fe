/** `lantern attribute --data`: attribution over a file of prompts, run as a job, with faithfulness averages. */
import path from 'node:path';
import { LanternError } from '../../errors.js';
import type { HookedTransformer } from '../../models/hooked.js';
import type { AttributionSettings, ScoreKind } from '../../methods/attribution/index.js';
import { attributionAnalysis, attributionJob, loadAttributionExamples, DatasetAttribution, MetricMean } from '../../methods/attribution/dataset.js';
import { defaultJobsDir, runAndMerge } from './job-options.js';

const DATA_ONLY: [string, string][] = [['promptColumn', '--prompt-column'], ['targetColumn', '--target-column'], ['foilColumn', '--foil-column'], ['jobsDir', '--jobs-dir'], ['shardSize', '--shard-size'], ['queue', '--queue']];
const PROMPT_ONLY: [string, string][] = [['target', '--target (use a target column)'], ['foil', '--foil (use a foil column)'], ['chat', '--chat'], ['html', '--html'], ['words', '--words']];

/** Rejects the flags that belong to the other mode: --data's with --text, and one prompt's with --data. */
export function checkDataFlags(opts: Record<string, unknown>): void {
  if (opts.data === undefined) {
    const given = DATA_ONLY.filter(([k]) => opts[k] !== undefined).map(([, f]) => f);
    if (given.length) throw new LanternError(`${given.join(', ')} ${given.length === 1 ? 'applies' : 'apply'} only with --data`);
    return;
  }
  const given = PROMPT_ONLY.filter(([k]) => opts[k] !== undefined && opts[k] !== false).map(([, f]) => f);
  if (given.length) throw new LanternError(`${given.join(', ')} ${given.length === 1 ? 'applies' : 'apply'} only with --text`);
  if (opts.json === undefined) throw new LanternError('--data needs --json <file> to save every example\'s result and the averages');
}

const fmt = (m: MetricMean) => (m.mean === null ? 'n/a' : `${m.mean.toFixed(4)} (${m.n} rows)`);

/** Attributes every prompt of --data as a job (in this process, or on --queue workers) and saves the merged result to --json. */
export async function attributeDataFile(opts: Record<string, any>, model: HookedTransformer, settings: AttributionSettings): Promise<DatasetAttribution> {
  const file = String(opts.data);
  const examples = await loadAttributionExamples(file, { promptColumn: opts.promptColumn, targetColumn: opts.targetColumn, foilColumn: opts.foilColumn });
  const dir = path.resolve(opts.jobsDir ?? defaultJobsDir());
  const job = await attributionJob(dir, model, examples, {
    method: opts.method, kind: opts.kind as ScoreKind, settings, seed: opts.seed, evaluate: Boolean(opts.eval), aopc: opts.aopc,
    special: Boolean(opts.special), dataset: path.basename(file), shardSize: opts.shardSize,
  });
  const result = await runAndMerge(opts, dir, job, attributionAnalysis, { model, examples }, { out: opts.json });
  console.log(`attributed ${result.dataset.examples} prompts with ${result.method}`);
  const f = result.faithfulness;
  if (f) {
    console.log(`faithfulness over ${f.rows} target rows: AOPC comprehensiveness ${fmt(f.aopcComprehensiveness)}, AOPC sufficiency ${fmt(f.aopcSufficiency)}, Kendall tau vs leave-one-out ${fmt(f.kendallTauLoo)}, deletion AUC ${fmt(f.deletionAucNormalized)}, insertion AUC ${fmt(f.insertionAucNormalized)}`);
  }
  console.log(`saved the results to ${opts.json}`);
  return result;
}
