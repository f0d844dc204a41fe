// `lantern neurons` as a job over corpus rows, on the planted n-gram model: the merged statistics
// equal the direct run with the same blocks bit for bit, and the single-pass run up to rounding with
// the same labels; re-running skips finished shards; the CLI resumes.
import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { HookedTransformer } from '../src/models/hooked.js';
import { loadPlanted, makePlanted, ngramPrompts } from '../src/models/planted/index.js';
import { corpusRows, neuronsAnalysis, neuronsJob, neuronStats } from '../src/methods/neurons/index.js';
import { shardFile } from '../src/engine/jobs/store.js';
import { runJobLocally, shardFiles } from '../src/engine/jobs/run.js';
import { runLantern } from './helpers.js';

let tmp: string;
let folder: string;
let model: HookedTransformer;
beforeAll(async () => {
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'lantern-neurons-jobs-'));
  folder = path.join(tmp, 'ngram');
  await makePlanted('ngram-neuron', folder, { measure: false });
  model = (await loadPlanted(folder)).model;
});
afterAll(async () => {
  await model.executor.dropWeights(model.weights);
  fs.rmSync(tmp, { recursive: true, force: true });
});

// A corpus whose last row is a single token: the job keeps it (it counts in the totals) though no row holds it.
const corpus = ngramPrompts(150, { seed: 21 }).flatMap((p) => p.tokens);
const tokens = corpus.slice(0, 32 * Math.floor(corpus.length / 32) + 1);

async function viaJob(dir: string, shardRows: number) {
  const job = await neuronsJob(dir, model, tokens, { seq: 32, shardRows, corpus: 'planted' });
  const ctx = { model, tokens };
  const summary = await runJobLocally(dir, job, neuronsAnalysis, ctx, { concurrency: 2 });
  return { job, summary, stats: await neuronsAnalysis.merge(ctx, job, shardFiles(dir, job), {}) };
}

describe('neuron statistics as a job', () => {
  it('equals the direct run with the same blocks bit for bit, and the single pass up to rounding', async () => {
    expect(corpusRows(tokens, 32).at(-1)!.length).toBe(32);
    const { job, summary, stats } = await viaJob(path.join(tmp, 'jobs'), 5);
    const rows = corpusRows(tokens, 32).length;
    expect(job.shards.length).toBe(Math.ceil(rows / 5));
    expect(summary.computed.length).toBe(job.shards.length);
    const direct = await neuronStats(model, tokens, { seq: 32, blockRows: 5 });
    expect(JSON.stringify(stats)).toBe(JSON.stringify(direct));

    const single = await neuronStats(model, tokens, { seq: 32 });
    expect(stats.tokens).toBe(tokens.length);
    expect(stats.counts).toEqual(single.counts);
    expect(stats.neurons.map((n) => n.label)).toEqual(single.neurons.map((n) => n.label));
    for (const [i, n] of stats.neurons.entries()) {
      const s = single.neurons[i];
      expect(n.max).toBe(s.max);
      expect(n.fireRate).toBe(s.fireRate);
      expect(n.mean).toBeCloseTo(s.mean, 12);
      expect(n.positionVariance).toBeCloseTo(s.positionVariance, 9);
      expect(n.top.map((e) => e.activation)).toEqual(s.top.map((e) => e.activation));
    }
    expect(stats.neurons.find((n) => n.layer === 0 && n.neuron === 13)).toMatchObject({ label: 'n-gram' });
  }, 120_000);

  it('re-running skips finished shards and recomputes one whose file no longer matches its hash', async () => {
    const dir = path.join(tmp, 'resume');
    const first = await viaJob(dir, 8);
    const again = await viaJob(dir, 8);
    expect(again.summary.computed).toEqual([]);
    expect(again.summary.skipped.length).toBe(first.job.shards.length);
    fs.appendFileSync(shardFile(dir, first.job, 1), ' ');
    const third = await viaJob(dir, 8);
    expect(third.summary.computed).toEqual([1]);
    expect(JSON.stringify(third.stats)).toBe(JSON.stringify(first.stats));
  }, 120_000);

  it('the CLI runs as a job and resumes', async () => {
    const file = path.join(tmp, 'corpus.txt');
    fs.writeFileSync(file, corpus.join(' '));
    const args = ['neurons', '--model', folder, '--tokens', file, '--seq', '32', '--shard-size', '4', '--jobs-dir', path.join(tmp, 'cli-jobs'), '--json', path.join(tmp, 'n.json')];
    let r = await runLantern(args, tmp);
    expect(r.stderr).toBe('');
    const m = /job neurons-[0-9a-f]{16}: (\d+) shards computed, 0 already done/.exec(r.stdout);
    expect(m).not.toBeNull();
    const saved = fs.readFileSync(path.join(tmp, 'n.json'), 'utf8');
    r = await runLantern(args, tmp);
    expect(r.stdout).toContain(`0 shards computed, ${m![1]} already done`);
    expect(fs.readFileSync(path.join(tmp, 'n.json'), 'utf8')).toBe(saved);
  }, 120_000);
});
