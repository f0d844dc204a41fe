/**
 * The head and neuron bars (`npm run bench -- --heads`), each a ratio measured in this run:
 *   - every pattern detector over every head of a random GPT-2-small-shaped model, 100 sequences of
 *     128 tokens / the plain forwards of the same batches, <= 1.3 (both unembed one position, as
 *     the detectors read no logits; the patterns of all 144 heads are cached once per batch and
 *     scored in one pass, never recomputed per head)
 *   - the neuron statistics of every MLP neuron of the bundled model over 200k Brown tokens in one
 *     pass: peak retained memory (heap + array buffers above the start, after a GC) / the same
 *     over 50k tokens, <= 1.25 (bounded: nothing grows with the corpus); its time is printed
 */
import { execFileSync } from 'node:child_process';
import { GPT2_SMALL } from '../models/random.js';
import { loadModel } from '../models/load.js';
import { BUNDLED_MODEL } from '../paths.js';
import { tokenizeSplits } from '../data/brown.js';
import { patternScores, repeatedRandomSequences } from '../methods/heads/detectors.js';
import { neuronStats } from '../methods/neurons/stats.js';
import { randomModel } from './common.js';

type Report = (name: string, value: number, op: '>=' | '<=', bar: number, detail: string) => void;

export async function headsBench(report: Report, self: string): Promise<void> {
  const model = await randomModel(GPT2_SMALL);
  const seqs = repeatedRandomSequences(model, { n: 100, half: 64, seed: 0 });
  const batchSize = 8;
  const forwards = async () => {
    for (let i = 0; i < seqs.tokens.length; i += batchSize) await model.runWithHooks(seqs.tokens.slice(i, i + batchSize), { logitPositions: [0] });
  };
  const detect = () => patternScores(model, seqs.tokens, { batchSize, repeat: seqs });
  await forwards();
  await detect();
  let fwd = Infinity;
  let det = Infinity;
  for (let round = 0; round < 2; round++) {
    let t0 = performance.now();
    await forwards();
    fwd = Math.min(fwd, performance.now() - t0);
    t0 = performance.now();
    await detect();
    det = Math.min(det, performance.now() - t0);
  }
  report('heads: 3 detectors x 144 heads / forwards', det / fwd, '<=', 1.3,
    `100 x 128 tokens, batch ${batchSize}: detectors ${(det / 1000).toFixed(1)} s, forwards ${(fwd / 1000).toFixed(1)} s`);
  await model.executor.dropWeights(model.weights);

  const child = (tokens: number) => JSON.parse(execFileSync(process.execPath, ['--expose-gc', self, '--neuron-memory', String(tokens)], { encoding: 'utf8' }).trim().split('\n').pop()!);
  const small = child(50_000);
  const large = child(200_000);
  report('neurons: memory 200k tokens / 50k tokens', large.peak / small.peak, '<=', 1.25,
    `all ${large.neurons} MLP neurons of the bundled model, one pass: 200k tokens in ${(large.ms / 1000).toFixed(1)} s (peak ${(large.peak / 2 ** 20).toFixed(1)} MiB above the start), 50k in ${(small.ms / 1000).toFixed(1)} s (${(small.peak / 2 ** 20).toFixed(1)} MiB)`);
}

/** In a fresh process with --expose-gc: neuron statistics over `n` Brown tokens; prints the peak retained memory and the time. */
export async function neuronMemoryChild(n: number): Promise<void> {
  const gc = (globalThis as { gc?: () => void }).gc!;
  const model = await loadModel(BUNDLED_MODEL);
  const { train } = tokenizeSplits();
  const tokens = train.subarray(0, n);
  gc();
  const used = () => { const m = process.memoryUsage(); return m.heapUsed + m.arrayBuffers; };
  const base = used();
  let peak = 0;
  let batches = 0;
  const t0 = performance.now();
  const stats = await neuronStats(model, tokens, {
    seq: 128, batchSize: 8,
    progress: () => {
      if (++batches % 25 === 0) { gc(); peak = Math.max(peak, used() - base); }
    },
  });
  const ms = performance.now() - t0;
  gc();
  peak = Math.max(peak, used() - base);
  console.log(JSON.stringify({ peak, ms, neurons: stats.neurons.length }));
}

