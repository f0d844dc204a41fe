// The evaluation commands as a user runs them: `lantern judge pairwise` against a scripted judge
// with a planted position bias on the sample data, its battles ranked by `lantern arena`, a
// stored run re-run without a request, and bad input as one error line.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { arena } from '../src/methods/evaluation/arena.js';
import { LanternBackend } from '../src/backends/lantern.js';
import { pride } from '../src/methods/evaluation/mcq.js';
import { loadModel } from '../src/models/load.js';
import { BUNDLED_MODEL } from '../src/paths.js';
import { loadBattles, loadMcq } from '../src/methods/evaluation/data.js';
import { EvalStore } from '../src/methods/evaluation/store.js';
import { expectOneLineError, runLantern } from './helpers.js';
import { pairOf, scriptedServer, type ScriptedServer } from './eval-helpers.js';

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'lantern-eval-'));
const lantern = (...args: string[]) => runLantern(args, tmp);
let srv: ScriptedServer;
// The judge prefers the answer without the sample's known mistakes; when neither has one it picks the first shown.
const WRONG = /Around 90 degrees|Yes, 91 is prime|^Sydney\.$|180 km\/h|Eat oats|It shines/m;
beforeAll(async () => {
  srv = await scriptedServer((p, body) => {
    if (p.includes('[Completion]')) return /Bronte/.test(p) ? 'Wrong author and year.\n[[YES]]' : Number(body.seed) === 1 ? 'Unsure.\n[[YES]]' : 'Checks out.\n[[NO]]';
    const { a, b } = pairOf(p);
    const wa = WRONG.test(a);
    const wb = WRONG.test(b);
    return wa === wb ? 'Both similar. [[A]]' : wa ? 'B is correct. [[B]]' : 'A is correct. [[A]]';
  });
});
afterAll(async () => {
  await srv?.close();
  fs.rmSync(tmp, { recursive: true, force: true });
});

describe('lantern judge and arena', () => {
  it('judges pairwise with swapped positions, stores the run, writes battles that arena ranks', async () => {
    const store = path.join(tmp, 'eval.sqlite');
    const battles = path.join(tmp, 'battles.jsonl');
    const report = path.join(tmp, 'pairwise.json');
    const args = ['judge', 'pairwise', '--questions', 'data/evaluation/questions.jsonl', '--answers', 'data/evaluation/answers.jsonl',
      '--judge', srv.baseURL, '--api', 'chat', '--store', store, '--run-id', 'r1', '--battles', battles, '--json', report, '--prices', '1,2'];
    const r = await lantern(...args);
    expect(r.code, r.stderr).toBe(0);
    // 6 questions × 3 pairs × 2 orders. careful vs wordy: neither has a mistake → the first shown wins → 6 flips, all to the first position.
    expect(r.stdout).toContain('position consistency: 0.667 (12 of 18 comparisons survive the swap)');
    expect(r.stdout).toContain('position preference: of 6 flips, 6 favour the first answer, 0 the second');
    expect(r.stdout).toMatch(/requests: 36 sent, 0 from the store, 0 failed; tokens: \d+ prompt \+ \d+ completion; cost \d+\.\d{4}/);
    expect(r.stderr).toMatch(/judge pairwise \[#+\] 36\/36/);
    const saved = JSON.parse(fs.readFileSync(report, 'utf8'));
    expect(saved.models).toEqual([
      { model: 'careful', wins: 6, losses: 0, ties: 6 },
      { model: 'wordy', wins: 6, losses: 0, ties: 6 },
      { model: 'sloppy', wins: 0, losses: 12, ties: 0 },
    ]);
    const db = new EvalStore(store);
    const verdicts = db.verdicts('r1');
    expect(verdicts.filter((v) => v.meta?.kind === 'pairwise').length).toBe(36);
    expect(verdicts.filter((v) => v.meta?.positionFlip).length).toBe(6);
    db.close();
    // Re-running the finished evaluation sends nothing.
    const sent = srv.prompts.length;
    const again = await lantern(...args);
    expect(again.code, again.stderr).toBe(0);
    expect(srv.prompts.length).toBe(sent);
    expect(again.stdout).toContain('requests: 0 sent, 36 from the store');
    // The battles rank as the library ranks them.
    // 'sloppy' never won: without virtual ties its rating is unbounded, and arena says so.
    expectOneLineError(await lantern('arena', battles), /'sloppy' never won or tied.*--pseudo-ties/);
    const a = await lantern('arena', battles, '--bootstrap', '30', '--pseudo-ties', '1', '--json', path.join(tmp, 'arena.json'));
    expect(a.code, a.stderr).toBe(0);
    const lib = arena(await loadBattles(battles), { bootstrap: 30, pseudoTies: 1 });
    const cli = JSON.parse(fs.readFileSync(path.join(tmp, 'arena.json'), 'utf8'));
    expect(cli.leaderboard).toEqual(JSON.parse(JSON.stringify(lib.leaderboard)));
    expect(cli.models.at(-1)).toBe('sloppy');
    expect(a.stdout).toMatch(/^rank {2}model/);
  });

  it('chainpoll scores each completion from the polls; mcq saves what the library computes', async () => {
    const c = await lantern('chainpoll', 'data/evaluation/completions.jsonl', '--judge', srv.baseURL, '--api', 'chat', '--polls', '4', '--quiet');
    expect(c.code, c.stderr).toBe(0);
    // c2 names the wrong author: 4 of 4 polls say yes; c1 and c3: only the poll with seed 1 does.
    expect(c.stdout).toMatch(/^c1 +0\.25 /m);
    expect(c.stdout).toMatch(/^c2 +1\.00 +Wrong author and year\./m);
    expect(c.stdout).toContain('mean hallucination score 0.500');
    const out = path.join(tmp, 'mcq.json');
    const [m, model] = await Promise.all([lantern('mcq', 'data/evaluation/mcq.jsonl', '--estimation-size', '2', '--seed', '3', '--json', out, '--quiet'), loadModel(BUNDLED_MODEL)]);
    expect(m.code, m.stderr).toBe(0);
    expect(m.stdout).toMatch(/^prior over option IDs: A 0\.\d{3}, B/m);
    const lib = await pride(new LanternBackend(model), await loadMcq('data/evaluation/mcq.jsonl'), { estimationSize: 2, seed: 3 });
    const saved = JSON.parse(fs.readFileSync(out, 'utf8'));
    expect(saved.estimation).toEqual(lib.estimation);
    saved.prior.forEach((p: number, i: number) => expect(p).toBeCloseTo(lib.prior[i], 12));
    expect(saved.after).toEqual(lib.after);
  });

  it('bad input is one error line', async () => {
    expectOneLineError(await lantern('judge', 'pairwse', '--questions', 'a', '--answers', 'b'), /unknown judge mode 'pairwse'/);
    expectOneLineError(await lantern('judge', 'single', '--questions', 'data/evaluation/questions.jsonl', '--answers', 'data/evaluation/answers.jsonl', '--template', 'singel'),
      /no judge template 'singel'.*nearest: single/);
  });
});
