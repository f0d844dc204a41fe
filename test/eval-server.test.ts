// The Workbench's evaluation API without a browser: arena over posted battles equals the library's,
// and bad requests get one clear message.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildServer, type LanternServer } from '../src/interfaces/server/app.js';
import { arena } from '../src/methods/evaluation/arena.js';
import { loadBattles, SAMPLE_DATA } from '../src/methods/evaluation/data.js';
import type { Battle } from '../src/methods/evaluation/judge.js';

let tmp: string;
let app: LanternServer;
beforeAll(async () => {
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'lantern-eval-api-'));
  app = await buildServer({ dataDir: tmp, allowHub: false });
});
afterAll(async () => {
  await app?.close();
  fs.rmSync(tmp, { recursive: true, force: true });
});

describe('evaluation API', () => {
  it('ranks posted battles as the library does', async () => {
    const battles = await loadBattles(path.join(SAMPLE_DATA, 'battles.jsonl'));
    const r = await app.inject({ method: 'POST', url: '/api/evaluation/arena', payload: { battles, bootstrap: 20, seed: 2 } });
    expect(r.statusCode).toBe(200);
    expect(r.json()).toEqual(JSON.parse(JSON.stringify(arena(battles, { bootstrap: 20, seed: 2 }))));
    expect((await app.inject({ method: 'GET', url: '/api/evaluation/runs' })).json()).toEqual({ runs: [] });
  });

  it('answers bad requests with one message', async () => {
    const bad = await app.inject({ method: 'POST', url: '/api/evaluation/arena', payload: { battles: [{ model_a: 'x', model_b: 'y', winner: 'model_a' }] } });
    expect(bad.statusCode).toBe(400);
    expect(bad.json().error).toMatch(/'x' never lost or tied/);
    const missing = await app.inject({ method: 'GET', url: '/api/evaluation/runs/nope/items' });
    expect(missing.statusCode).toBe(404);
    expect(missing.json().error).toBe('no evaluation run nope');
  });

  it('refuses a leaderboard that would hold the server for minutes, and takes the same battles with fewer resamples', async () => {
    // 200,000 battles × 2,000 resamples is 4e8 battle fits (minutes on the server's one thread).
    const many: Battle[] = Array.from({ length: 200_000 }, (_, i) => ({ model_a: 'a', model_b: 'b', winner: i % 3 === 0 ? 'model_a' : i % 3 === 1 ? 'model_b' : 'tie' }));
    const big = await app.inject({ method: 'POST', url: '/api/evaluation/arena', payload: { battles: many, bootstrap: 2000 } });
    expect(big.statusCode, big.body).toBe(400);
    expect(big.json().error).toBe('200000 battles × 2000 bootstrap resamples is more than this server computes in one request (20 million battle fits): ask for at most 100 resamples, or run `lantern arena` from the command line');
    const ok = await app.inject({ method: 'POST', url: '/api/evaluation/arena', payload: { battles: many.slice(0, 2000), bootstrap: 100, seed: 1 } });
    expect(ok.statusCode, ok.body).toBe(200);
    expect(ok.json()).toEqual(JSON.parse(JSON.stringify(arena(many.slice(0, 2000), { bootstrap: 100, seed: 1 }))));
  });
});
