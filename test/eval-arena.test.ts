// Arena rankings: against an independent NumPy computation of Chatbot Arena's fit on fixed
// battles (scripts/reference/arena_reference.py), and recovering known strengths from simulated battles.
import fs from 'node:fs';
import { describe, expect, it } from 'vitest';
import { arena, battlesFromRows, bradleyTerry, onlineElo } from '../src/methods/evaluation/arena.js';
import type { Battle } from '../src/methods/evaluation/judge.js';
import { readRows } from '../src/methods/representations/data.js';
import { Rng } from '../src/rng.js';

const reference = JSON.parse(fs.readFileSync('fixtures/arena/reference.json', 'utf8')) as {
  bradleyTerry: Record<string, number>; onlineElo: Record<string, number>; models: string[]; winRate: (number | null)[][]; expected: number[][];
};

describe('arena against the NumPy reference', () => {
  it('matches Bradley–Terry, online Elo, win fractions and expected win rates to 1e-6', async () => {
    const battles = battlesFromRows(await readRows('fixtures/arena/battles.jsonl'));
    expect(battles.filter((b) => b.winner.startsWith('tie')).length).toBeGreaterThan(30);
    const bt = bradleyTerry(battles);
    for (const [m, r] of Object.entries(reference.bradleyTerry)) expect(Math.abs(bt[m] - r)).toBeLessThan(1e-6);
    const elo = onlineElo(battles);
    for (const [m, r] of Object.entries(reference.onlineElo)) expect(Math.abs(elo[m] - r)).toBeLessThan(1e-6);
    const rep = arena(battles, { bootstrap: 20 });
    expect(rep.models).toEqual(reference.models);
    rep.winRate.forEach((row, i) => row.forEach((v, j) => {
      const want = reference.winRate[i][j];
      if (want === null) expect(v).toBeNull();
      else expect(Math.abs(v! - want)).toBeLessThan(1e-6);
    }));
    rep.expected.forEach((row, i) => row.forEach((v, j) => expect(Math.abs(v - reference.expected[i][j])).toBeLessThan(1e-6)));
    for (const e of rep.leaderboard) {
      expect(e.lower).toBeLessThanOrEqual(e.rating + 1e-9);
      expect(e.upper).toBeGreaterThanOrEqual(e.rating - 1e-9);
      expect(e.wins + e.losses + e.ties).toBe(e.battles);
    }
  });

  it('names bad battles and unbounded ratings', () => {
    expect(() => arena([{ model_a: 'x', model_b: 'y', winner: 'draw' as Battle['winner'] }])).toThrow(/battle 1: winner "draw" is not one of model_a, model_b, tie/);
    expect(() => arena([{ model_a: 'x', model_b: 'x', winner: 'tie' }])).toThrow(/against itself/);
    expect(() => bradleyTerry([{ model_a: 'x', model_b: 'y', winner: 'model_a' }, { model_a: 'x', model_b: 'y', winner: 'model_a' }])).toThrow(/'x' never lost or tied/);
    expect(() => battlesFromRows([{ a: 1 }], 'b.jsonl')).toThrow(/b.jsonl has no column 'model_a'/);
    // One virtual tie between x and y: x has 2 + 0.5 wins against 0.5, so exp(θx − θy) = 5 and R_x − R_y = 400·log10(5).
    const r = bradleyTerry([{ model_a: 'x', model_b: 'y', winner: 'model_a' }, { model_a: 'x', model_b: 'y', winner: 'model_a' }], { pseudoTies: 1 });
    expect(r.x - r.y).toBeCloseTo(400 * Math.log10(5), 9);
    expect(r.x + r.y).toBeCloseTo(2000, 9);
  });
});

/** Battles between models of known ratings, ties 10% of the time. */
function simulate(ratings: number[], n: number, seed: number): Battle[] {
  const rng = new Rng(seed);
  const out: Battle[] = [];
  for (let t = 0; t < n; t++) {
    const a = rng.int(ratings.length);
    let b = rng.int(ratings.length - 1);
    if (b >= a) b++;
    const p = 1 / (1 + 10 ** ((ratings[b] - ratings[a]) / 400));
    const winner = rng.next() < 0.1 ? 'tie' : rng.next() < p ? 'model_a' : 'model_b';
    out.push({ model_a: `m${a}`, model_b: `m${b}`, winner });
  }
  return out;
}

describe('arena on simulated battles', () => {
  it('recovers the true ranking within the 95% intervals in at least 90% of seeds, and Elo agrees with Bradley–Terry', () => {
    const truth = [1150, 1080, 1000, 960, 880];
    const seeds = 20;
    let covered = 0;
    let eloAgrees = 0;
    for (let seed = 1; seed <= seeds; seed++) {
      const rep = arena(simulate(truth, 1500, seed), { bootstrap: 60, seed });
      // Model i's true rank is i + 1; its interval-based ranks run from 1 + (models surely above) to n − (models surely below).
      const ok = rep.leaderboard.every((e) => {
        const i = Number(e.model.slice(1));
        const below = rep.leaderboard.filter((o) => o.upper < e.lower).length;
        return e.rank <= i + 1 && i + 1 <= truth.length - below;
      });
      if (ok) covered++;
      const byElo = [...rep.leaderboard].sort((a, b) => b.elo - a.elo).map((e) => e.model);
      if (byElo.join() === rep.models.join()) eloAgrees++;
    }
    expect(covered / seeds).toBeGreaterThanOrEqual(0.9);
    expect(eloAgrees / seeds).toBeGreaterThanOrEqual(0.9);
  });
});
