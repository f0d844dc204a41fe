// Circuit jobs report determinate progress: ACDC counts edges tried and EAP its rows, so the bar
// rises from the first edge to the last instead of sitting indeterminate.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildServer, LanternServer } from '../src/interfaces/server/app.js';

let tmp: string;
let app: LanternServer;
let base: string;

beforeAll(async () => {
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'lantern-circuit-progress-'));
  app = await buildServer({ dataDir: path.join(tmp, 'data'), allowHub: false });
  base = await app.listen({ port: 0, host: '127.0.0.1' });
}, 60_000);

afterAll(async () => {
  await app?.close();
  fs.rmSync(tmp, { recursive: true, force: true });
});

async function progressOf(body: object): Promise<{ fractions: (number | null)[]; result: any }> {
  const res = await fetch(`${base}/api/circuit?async=true`, { method: 'POST', headers: { 'content-type': 'application/json', host: 'localhost' }, body: JSON.stringify(body) });
  const start = await res.json();
  expect(res.status, JSON.stringify(start)).toBe(202);
  const text = await (await fetch(base + start.events)).text();
  const evs = text.split('\n\n').filter((b) => b.includes('data: ')).map((b) => JSON.parse(b.slice(b.indexOf('data: ') + 6)));
  expect(evs.at(-1)).toMatchObject({ type: 'done' });
  const run = await (await fetch(`${base}/api/runs/${start.id}`)).json();
  return { fractions: evs.filter((e) => e.type === 'progress' && e.stage === 'computing' && e.runs > 0).map((e) => e.fraction), result: run.result };
}

describe('circuit job progress', () => {
  for (const method of ['acdc', 'eap'] as const) {
    it(`${method}: every computing event after the first model run has a fraction, rising to the end of the work`, async () => {
      const { fractions, result } = await progressOf({ model: 'planted:induction', task: 'induction', method, n: method === 'eap' ? 8 : 2, ...(method === 'eap' ? { igSteps: 4 } : {}) });
      expect(result.edges.length).toBeGreaterThan(0);
      // The first graph runs (clean and corrupted caches) come before any edge is counted.
      const counted = fractions.slice(fractions.findIndex((f) => f !== null));
      expect(counted.length).toBeGreaterThan(1);
      expect(counted.every((f) => f !== null)).toBe(true);
      expect([...counted].sort((a, b) => a! - b!)).toEqual(counted);
      expect(counted.at(-1)).toBe(0.99); // all counted, shown below 1 until saved
      expect(counted[0]!).toBeLessThan(0.5);
    }, 120_000);
  }
});
