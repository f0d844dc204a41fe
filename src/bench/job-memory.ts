/**
 * `npm run bench -- --job-memory` (or `node --expose-gc --import tsx src/bench/job-memory.ts`): the Workbench's resident memory before a long job, at its
 * peak, and after the job is cancelled, in one server process. A cancelled or finished job must
 * give its memory back: the ORT arenas its batches grew and the JavaScript it held.
 *
 * Run in a child process of its own so that nothing else's memory is counted.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { buildServer } from '../interfaces/server/app.js';

const mib = (b: number) => Math.round(b / 2 ** 20);

async function settle(): Promise<void> {
  for (let i = 0; i < 3; i++) {
    (globalThis as { gc?: () => void }).gc?.();
    await new Promise((r) => setTimeout(r, 300));
  }
}

export async function jobMemory(): Promise<{ before: number; peak: number; after: number; afterSecond: number }> {
  const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'lantern-job-memory-'));
  const app = await buildServer({ dataDir, webDir: path.join(dataDir, 'none') });
  const post = async (url: string, body?: unknown) => app.inject({ method: 'POST', url, payload: body as object, headers: { host: 'localhost' } });
  try {
    // Load the model and compile the graphs first: those stay, and are not the job's.
    await post('/api/forward', { text: 'the '.repeat(250) });
    await post('/api/attribution', { text: 'the cat sat', method: 'lime', samples: 8 });
    await settle();
    const before = process.memoryUsage().rss;
    let peak = before;
    const cancelOne = async () => {
      const r = await post('/api/attribution?async=true', { text: 'the '.repeat(250), method: 'lime', samples: 2000, batchSize: 64 });
      const id = (r.json() as { id: string }).id;
      const started = Date.now();
      // Until it has run a while: its batches at full size.
      while (Date.now() - started < 8000) {
        await new Promise((res) => setTimeout(res, 250));
        peak = Math.max(peak, process.memoryUsage().rss);
      }
      await post(`/api/jobs/${id}/cancel`);
      const { queue } = app.lantern;
      await queue.get(id)?.done.catch(() => {});
      await settle();
      return process.memoryUsage().rss;
    };
    const after = await cancelOne();
    const afterSecond = await cancelOne();
    return { before, peak, after, afterSecond };
  } finally {
    await app.close();
    fs.rmSync(dataDir, { recursive: true, force: true });
  }
}

export function describeJobMemory(r: { before: number; peak: number; after: number; afterSecond: number }): string {
  return `Workbench RSS around a cancelled LIME job (2000 samples, 250 tokens, batch 64): before ${mib(r.before)} MiB, peak ${mib(r.peak)} MiB, after cancel ${mib(r.after)} MiB, after a second one ${mib(r.afterSecond)} MiB`;
}

if (process.argv[1] && /job-memory\.(ts|js)$/.test(process.argv[1])) {
  console.log(describeJobMemory(await jobMemory()));
  process.exit(0);
}
