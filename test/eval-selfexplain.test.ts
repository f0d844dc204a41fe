// Self-explanation faithfulness against a scripted model whose classifier is a known keyword rule,
// and the white-box comparison with Lantern's attribution on the bundled model.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { HttpBackend } from '../src/backends/http.js';
import { claimedWords, compareWithAttribution, readLabel, redactWords, selfExplain } from '../src/methods/evaluation/selfexplain.js';
import type { HookedTransformer } from '../src/models/hooked.js';
import { loadModel } from '../src/models/load.js';
import { BUNDLED_MODEL } from '../src/paths.js';
import { scriptedServer, type ScriptedServer } from './eval-helpers.js';

let srv: ScriptedServer;
let model: HookedTransformer;
beforeAll(async () => {
  // Classifies by keyword; explains itself truthfully except for texts containing "plot", where it names the wrong word and edits nothing.
  const label = (t: string) => (/\bgreat\b/.test(t) ? 'positive' : /\bawful\b/.test(t) ? 'negative' : 'unknown');
  srv = await scriptedServer((p) => {
    const text = /Text: ([\s\S]*?)\n\n/.exec(p)?.[1] ?? '';
    if (p.startsWith('Edit the following')) return text.includes('plot') ? text : text.includes('great') ? text.replace('great', 'awful') : text.replace('awful', 'great');
    if (p.includes('List the')) return text.includes('plot') ? 'the, plot' : 'great, awful';
    if (p.startsWith('Redact')) return text.replace(/\b(great|awful)\b/g, '[REDACTED]');
    return ` ${label(text)}`;
  });
  model = await loadModel(BUNDLED_MODEL);
});
afterAll(async () => {
  await srv?.close();
});

describe('self-explanation faithfulness', () => {
  it('tests counterfactual, attribution and redaction explanations against the model itself', async () => {
    const backend = new HttpBackend({ baseURL: srv.baseURL, model: 'scripted-judge', api: 'chat' });
    const r = await selfExplain(backend, [
      { id: 'a', text: 'a great movie with a warm heart' },
      { id: 'b', text: 'the plot was great' },
      { id: 'c', text: 'great movie' },
      { id: 'd', text: 'nothing to say here' },
    ], { topK: 2, randomTrials: 4 });
    const check = (id: string, kind: string) => r.items.find((i) => i.id === id)!.checks.find((c) => c.kind === kind)!;
    expect(check('a', 'counterfactual')).toMatchObject({ original: 'positive', wanted: 'negative', after: 'negative', faithful: true });
    expect(check('b', 'counterfactual')).toMatchObject({ after: 'positive', faithful: false });
    expect(check('a', 'attribution')).toMatchObject({ words: ['great'], applied: 'a [REDACTED] movie with a warm heart', after: 'unknown', faithful: true });
    expect(check('b', 'attribution')).toMatchObject({ words: ['the', 'plot'], after: 'positive', faithful: false });
    // Two words, two redacted at random: always both, so the answer always changes.
    expect(check('c', 'attribution').randomChangeRate).toBe(1);
    expect(check('b', 'redaction')).toMatchObject({ applied: 'the plot was [REDACTED]', faithful: true });
    expect(check('d', 'redaction').error).toMatch(/no label/);
    expect(r.rates.counterfactual).toEqual({ n: 3, faithful: 2, rate: 2 / 3 });
    expect(r.rates.attribution).toMatchObject({ n: 3, faithful: 2 });
    expect(r.rates.redaction).toEqual({ n: 3, faithful: 3, rate: 1 });
  });

  it('reads labels, claimed words and redactions', () => {
    expect(readLabel(' Negative, clearly.', ['positive', 'negative'])).toBe('negative');
    expect(readLabel('I cannot tell', ['positive', 'negative'])).toBeNull();
    expect(claimedWords('1. "Great"\n2. heart\n3. banana', 'a great movie with a warm heart', 3)).toEqual(['great', 'heart']);
    expect(redactWords('Great, great film.', ['great'])).toBe('[REDACTED] [REDACTED] film.');
  });
});

describe('claimed words against attribution (white-box)', () => {
  it('scores full overlap when the claim is the attribution top-k, none when it is the bottom', async () => {
    const text = 'the food was wonderful and the staff were kind';
    const first = await compareWithAttribution(model, text, ['food'], 'positive');
    const ranked = [...first.words].sort((a, b) => b.attribution - a.attribution).map((w) => w.word);
    expect(ranked.length).toBeGreaterThan(5);
    const top = await compareWithAttribution(model, text, ranked.slice(0, 2), 'positive');
    expect(top.topKOverlap).toBe(1);
    expect(top.rankCorrelation!).toBeGreaterThan(0);
    const bottom = await compareWithAttribution(model, text, ranked.slice(-2), 'positive');
    expect(bottom.topKOverlap).toBe(0);
    expect(bottom.rankCorrelation!).toBeLessThan(0);
    // The attributions do not depend on the claim.
    expect(bottom.words.map((w) => w.attribution)).toEqual(top.words.map((w) => w.attribution));
  });
});
