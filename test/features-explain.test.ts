// Automated explanation on the planted n-gram model's neuron 5, which by construction fires on
// the token "h" and nowhere else (activation gelu(4) ≈ 4.0003, else ≈ -7e-5). A scripted
// OpenAI-compatible server plays the explainer and a competent simulator. Bars: the explanation
// naming "h" scores >= 0.95, a wrong one (naming "Q") <= 0.2; then end to end through Lantern's
// own /v1 server, whose numbers must equal the same model in-process.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { HookedTransformer } from '../src/models/hooked.js';
import { loadPlanted, makePlanted, ngramPrompts, NGRAM } from '../src/models/planted/index.js';
import { loadModel } from '../src/models/load.js';
import { BUNDLED_MODEL } from '../src/paths.js';
import { HttpBackend, LanternBackend, openBackend } from '../src/backends/index.js';
import { serveOpenAI } from '../src/interfaces/server/openai-compat.js';
import {
  buildDashboards, DashboardSet, explainDashboard, expectedValue, neuronSource, parseGeneratedNumbers, sascDashboard, simulateActivations, FeatureSource,
} from '../src/methods/features/index.js';
import { scriptedServer, ScriptedServer } from './features-scripted.js';

const H = NGRAM.currentHDistractorNeuron;
let tmp: string;
let model: HookedTransformer;
let source: FeatureSource;
let set: DashboardSet;
beforeAll(async () => {
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'lantern-explain-'));
  await makePlanted('ngram-neuron', path.join(tmp, 'ngram'), { measure: false });
  model = (await loadPlanted(path.join(tmp, 'ngram'))).model;
  source = await neuronSource(model, 'blocks.0.mlp.hook_post');
  set = await buildDashboards(model, source, ngramPrompts(60, { seed: 5 }).flatMap((p) => p.tokens), { seq: 32, topK: 10, randomContexts: 8, seed: 1 });
});
afterAll(async () => {
  await model.executor.dropWeights(model.weights);
  fs.rmSync(tmp, { recursive: true, force: true });
});

const dashboard = (f: number) => ({ ...set.features[f], randomActivations: set.random.activations[f] });
/** The scripted explainer names the token with the highest mean scaled activation, or always `fixed`. */
const namer = (fixed?: string) => (records: [string, number][][]) => {
  const by = new Map<string, number[]>();
  for (const r of records) for (const [t, v] of r) by.set(t, [...(by.get(t) ?? []), v]);
  const best = [...by.entries()].sort((a, b) => b[1].reduce((x, y) => x + y) / b[1].length - a[1].reduce((x, y) => x + y) / a[1].length)[0][0];
  return `the token "${fixed ?? best}".`;
};

describe('explain → simulate → score (scripted server)', () => {
  let right: ScriptedServer;
  let wrong: ScriptedServer;
  beforeAll(async () => {
    right = await scriptedServer({ explain: namer(), summarize: (_n, seed) => (seed === 0 ? 'the letter "Q"' : 'the letter "h"') });
    wrong = await scriptedServer({ explain: namer('Q') });
  });
  afterAll(async () => { await right.close(); await wrong.close(); });

  it('scores an explanation naming the planted token >= 0.95, with detection and fuzzing 1', async () => {
    const backend = await openBackend(right.url);
    const r = await explainDashboard(backend, dashboard(H), set.random, { detection: true, fuzzing: true });
    expect(r.explanation).toBe('the token "h".');
    expect(r.simulator).toBe('logprobs');
    expect(r.score).toBeGreaterThanOrEqual(0.95);
    expect(r.detection).toBe(1);
    expect(r.fuzzing).toBe(1);
    // The scored activations are the neuron's, as planted: ~4 on "h", ~0 elsewhere.
    for (const s of r.scored) s.tokens.forEach((t, i) => expect(s.activations[i]).toBeCloseTo(t === 'h' ? 4.0003 : 0, 3));
    expect(r.scored.filter((s) => s.kind === 'random').length).toBe(set.random.tokens.length);
    // The explainer saw only even-ranked top contexts: the scored top contexts are the odd ones.
    expect(r.scored.filter((s) => s.kind === 'top').map((s) => s.activations)).toEqual(set.features[H].top.filter((_, i) => i % 2).map((c) => c.activations));
    // All at once: one simulator request per scored context.
    expect(right.requests.filter((q) => q.body.echo && q.body.max_tokens === 0 && String(q.body.prompt).includes('predict')).length).toBe(r.scored.length);
  });

  it('scores a wrong explanation <= 0.2', async () => {
    const r = await explainDashboard(await openBackend(wrong.url), dashboard(H), set.random, { detection: true });
    expect(r.explanation).toBe('the token "Q".');
    expect(r.score).toBeLessThanOrEqual(0.2);
    expect(r.detection!).toBeLessThan(0.8);
  });

  it('generated-numbers simulator, for backends without log-probs, gives the same verdicts', async () => {
    const noEcho = await scriptedServer({ explain: namer(), noEcho: true });
    try {
      const r = await explainDashboard(new HttpBackend({ baseURL: noEcho.url, model: 'scripted' }), dashboard(H), set.random, { simulator: 'generate' });
      expect(r.simulator).toBe('generate');
      expect(r.score).toBeGreaterThanOrEqual(0.95);
      expect(noEcho.requests.some((q) => q.body.echo)).toBe(false);
    } finally {
      await noEcho.close();
    }
    expect(parseGeneratedNumbers('a\t3\nb\tx\nc\t12\n', 4)).toEqual([3, 0, 10, 0]);
    // E[n] over the digits present, renormalised: (0.2·2 + 0.6·5) / 0.8.
    expect(expectedValue({ '2': Math.log(0.2), ' 5': Math.log(0.6), unknown: Math.log(0.2) })).toBeCloseTo((0.2 * 2 + 0.6 * 5) / 0.8, 10);
  });

  it('SASC picks the candidate whose synthesised texts excite the neuron', async () => {
    const r = await sascDashboard(await openBackend(right.url), model, source, dashboard(H), set.random, { candidates: 2 });
    expect(r.candidates.map((c) => c.explanation).sort()).toEqual(['the letter "Q"', 'the letter "h"']);
    expect(r.explanation).toBe('the letter "h"');
    // Texts containing "h" drive the neuron to its planted 4.0003; the baseline is the random contexts' maxima.
    const best = r.candidates[0];
    for (const v of best.responses) expect(v).toBeCloseTo(4.0003, 3);
    const base = set.random.activations[H].map((a) => Math.max(...a));
    const mean = base.reduce((a, b) => a + b) / base.length;
    const std = Math.sqrt(base.reduce((a, b) => a + (b - mean) ** 2, 0) / base.length);
    expect(r.baselineMean).toBeCloseTo(mean, 3);
    expect(r.baselineStd).toBeCloseTo(std, 3);
    expect(r.score).toBeCloseTo((4.0003 - mean) / std, 2);
    expect(r.score).toBeGreaterThan(0);
    expect(r.candidates[1].score).toBeLessThan(0);
  });
});

describe('end to end with Lantern\'s own /v1 server', () => {
  it('simulates the same numbers over HTTP as in-process, and explains with the same text', async () => {
    const bundled = await loadModel(BUNDLED_MODEL);
    const server = await serveOpenAI(bundled);
    try {
      const http = await openBackend(server.baseURL);
      const local = new LanternBackend(bundled);
      const small = await buildDashboards(model, source, ngramPrompts(20, { seed: 7 }).flatMap((p) => p.tokens), { seq: 32, topK: 4, contextBefore: 5, contextAfter: 2, randomContexts: 2 });
      const d = { ...small.features[H], randomActivations: small.random.activations[H] };
      const viaHttp = await explainDashboard(http, d, small.random, { maxTokens: 12 });
      const inProcess = await explainDashboard(local, d, small.random, { maxTokens: 12 });
      expect(viaHttp.simulator).toBe('logprobs');
      expect(viaHttp.explanation).toBe(inProcess.explanation);
      viaHttp.scored.forEach((s, i) => s.simulated.forEach((v, t) => expect(v).toBeCloseTo(inProcess.scored[i].simulated[t], 4)));
      expect(Math.abs(viaHttp.score)).toBeLessThanOrEqual(1);
      const sim = await simulateActivations(http, 'the letter h', [{ tokens: ['a', 'h'] }]);
      expect(sim[0].every((v) => v >= 0 && v <= 10)).toBe(true);
    } finally {
      await server.close();
    }
  }, 120_000);
});
