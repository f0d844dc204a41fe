/**
 * The feature-dashboard bars (`npm run bench -- --features`), each measured in this run:
 *   - dashboards of every MLP neuron of the bundled model's layer 2 (1024 features) over 200k Brown
 *     tokens / the same batches' forwards plus encodes alone, <= 1.5
 *   - peak RSS while building them over 1M tokens / over 200k tokens, <= 1.25 (each in a fresh
 *     process; bounded: the top-k buffers and reservoirs, not the corpus, set the memory)
 */
import { execFileSync } from 'node:child_process';
import { loadModel } from '../models/load.js';
import { BUNDLED_MODEL } from '../paths.js';
import { tokenizeSplits } from '../data/brown.js';
import { corpusRows } from '../methods/neurons/stats.js';
import { buildDashboards } from '../methods/features/dashboards.js';
import { neuronSource } from '../methods/features/source.js';

type Report = (name: string, value: number, op: '>=' | '<=', bar: number, detail: string) => void;

const HOOK = 'blocks.2.mlp.hook_post';
const SEQ = 128;
const BATCH = 8;

export async function featuresBench(report: Report, self: string, tokens = 200_000): Promise<void> {
  const model = await loadModel(BUNDLED_MODEL);
  const source = await neuronSource(model, HOOK);
  const corpus = tokenizeSplits().train.subarray(0, tokens);
  const rows = corpusRows(corpus, SEQ);
  const forwardsAndEncodes = async () => {
    for (let r0 = 0; r0 < rows.length; r0 += BATCH) {
      const ids = rows.slice(r0, r0 + BATCH).map(({ start, length }) => Array.from(corpus.subarray(start, start + length)));
      const { cache, batch } = await model.runWithHooks(ids, { cache: [HOOK], logitPositions: [0] });
      source.encode(cache.get(HOOK).f32, ids.length * batch.seq);
    }
  };
  const dashboards = () => buildDashboards(model, source, corpus, { seq: SEQ, batchSize: BATCH });
  // Warm: compile the graphs once for both.
  await buildDashboards(model, source, corpus.subarray(0, SEQ * BATCH), { seq: SEQ, batchSize: BATCH });
  let t0 = performance.now();
  await forwardsAndEncodes();
  const base = performance.now() - t0;
  t0 = performance.now();
  await dashboards();
  const dash = performance.now() - t0;
  report('features: dashboards / forwards + encodes', dash / base, '<=', 1.5,
    `${source.size} neurons at ${HOOK} of the bundled model, ${tokens} Brown tokens: dashboards ${(dash / 1000).toFixed(1)} s, forwards + encodes ${(base / 1000).toFixed(1)} s`);
  await model.executor.dropWeights(model.weights);

  const child = (n: number) => JSON.parse(execFileSync(process.execPath, [self, '--features-memory', String(n)], { encoding: 'utf8', maxBuffer: 1 << 24 }).trim().split('\n').pop()!);
  const small = child(200_000);
  const large = child(1_000_000);
  report('features: peak RSS 1M tokens / 200k tokens', large.peak / small.peak, '<=', 1.25,
    `dashboards of ${source.size} neurons: 200k tokens peak RSS ${(small.peak / 2 ** 20).toFixed(0)} MiB (${(small.ms / 1000).toFixed(1)} s), 1M tokens ${(large.peak / 2 ** 20).toFixed(0)} MiB (${(large.ms / 1000).toFixed(1)} s)`);
}

/**
 * In a fresh process: dashboards of every neuron at HOOK over `n` Brown tokens; prints the peak
 * RSS (sampled every batch) and the time, and on stderr the peak so far after every 100k tokens.
 */
export async function featuresMemoryChild(n: number): Promise<void> {
  const model = await loadModel(BUNDLED_MODEL);
  const source = await neuronSource(model, HOOK);
  const corpus = tokenizeSplits().train.subarray(0, n);
  let peak = process.memoryUsage().rss;
  let next = 100_000;
  const t0 = performance.now();
  await buildDashboards(model, source, corpus, {
    seq: SEQ, batchSize: BATCH,
    progress: (done) => {
      peak = Math.max(peak, process.memoryUsage().rss);
      if (done >= next) {
        process.stderr.write(`${done} tokens: peak RSS ${(peak / 2 ** 20).toFixed(0)} MiB after ${((performance.now() - t0) / 1000).toFixed(0)} s\n`);
        next += 100_000;
      }
    },
  });
  const ms = performance.now() - t0;
  peak = Math.max(peak, process.memoryUsage().rss);
  console.log(JSON.stringify({ peak, ms, tokens: corpus.length }));
  process.exit(0);
}
