/**
 * Black-box attribution against a local OpenAI-compatible server (Lantern's own plugin serving the
 * bundled model on an ephemeral port, in this process): word leave-one-out over a 50-word prompt
 * with its faithfulness check (`lantern attribute --backend … --eval`, which asks the
 * leave-one-out prompts again), through HttpBackend
 *   sequential:  concurrency 1, no cache
 *   fast:        concurrency 4, query cache
 * bar: sequential / fast >= 2. Concurrency alone (4, no cache) is reported beside it, so the two
 * sources of the speed-up can be told apart. Both runs must give identical scores.
 *
 * Standalone: `node dist/bench/backends.js` (also run by `npm run bench`).
 */
import { fileURLToPath } from 'node:url';
import { HttpBackend } from '../backends/http.js';
import { serveOpenAI } from '../interfaces/server/openai-compat.js';
import { explainWithBackend } from '../methods/attribution/agnostic.js';
import { loadModel } from '../models/load.js';
import { BUNDLED_MODEL } from '../paths.js';

export type Report = (name: string, value: number, op: '>=' | '<=', bar: number, detail: string) => void;

// 50 words of plain prose (the model's training domain).
const PROMPT = 'The committee met on Tuesday morning to discuss the new plan for the city schools. Several members said that ' +
  'the old buildings were too small for the growing number of children, and that the board should ask the voters for ' +
  'more money for new rooms before the end of the';

export async function backendBench(report: Report): Promise<void> {
  const model = await loadModel(BUNDLED_MODEL);
  const srv = await serveOpenAI(model, { id: 'lantern-demo' });
  try {
    const words = PROMPT.split(/\s+/).length;
    const run = async (concurrency: number, cache: boolean) => {
      const b = new HttpBackend({ baseURL: srv.baseURL, model: 'lantern-demo', concurrency, cache });
      const t0 = performance.now();
      const r = await explainWithBackend(b, { prompt: PROMPT, target: ' year', method: 'occlusion', granularity: 'word', evaluate: true });
      return { ms: performance.now() - t0, r, usage: b.usage() };
    };
    // Warm-up: compiled sessions, JIT.
    await new HttpBackend({ baseURL: srv.baseURL, model: 'lantern-demo' }).scoreContinuation(PROMPT, ' year');
    // Interleaved, best of two each: background load hits every variant alike.
    const best = { seq: Infinity, conc: Infinity, fast: Infinity };
    let last: Record<keyof typeof best, Awaited<ReturnType<typeof run>>> | undefined;
    for (let round = 0; round < 2; round++) {
      const seq = await run(1, false);
      const conc = await run(4, false);
      const fast = await run(4, true);
      best.seq = Math.min(best.seq, seq.ms);
      best.conc = Math.min(best.conc, conc.ms);
      best.fast = Math.min(best.fast, fast.ms);
      last = { seq, conc, fast };
    }
    const { seq, conc, fast } = last!;
    if (JSON.stringify(seq.r.scores) !== JSON.stringify(fast.r.scores) || JSON.stringify(seq.r.faithfulness) !== JSON.stringify(fast.r.faithfulness)) {
      throw new Error('the sequential and the concurrent + cached runs gave different results');
    }
    if (seq.r.tokenStrings.length !== words) throw new Error(`expected ${words} word features, got ${seq.r.tokenStrings.length}`);
    report(`HTTP word LOO+eval (${words} words) sequential / conc. 4 + cache`, best.seq / best.fast, '>=', 2,
      `sequential ${best.seq.toFixed(0)} ms (${seq.usage.requests} requests); concurrency 4 + cache ${best.fast.toFixed(0)} ms (${fast.usage.requests} requests, ${fast.usage.cachedRequests} from the cache)`);
    console.log(`${''.padEnd(44)} concurrency 4 alone, no cache: ${(best.seq / best.conc).toFixed(3)}x (${best.conc.toFixed(0)} ms, ${conc.usage.requests} requests)`);
  } finally {
    await srv.close();
  }
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  const report: Report = (name, value, op, bar, detail) => console.log(`${name.padEnd(44)} ${value.toFixed(3).padStart(8)}  (bar ${op} ${bar}) ${(op === '>=' ? value >= bar : value <= bar) ? 'met' : 'MISSED'}  ${detail}`);
  await backendBench(report);
  process.exit(0);
}
