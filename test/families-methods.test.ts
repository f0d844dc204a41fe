// The method × family matrix: every method on a tiny random model of every family (grouped-query
// attention, sliding windows shorter than the prompts, soft-capping, partial rotary, parallel
// residual blocks), each checked by a property that fails when the method or the family's
// plumbing is wrong: batched runs equal separate ones, past keys and values equal recomputation,
// IG is complete, leave-one-out equals explicit masked runs, the lens's last layer is the model's
// output, patching a run with itself changes nothing and restoring every position restores it,
// and black-box scores through LanternBackend equal the model's own log-probs.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Tensor } from '../src/engine/tensor.js';
import type { HookedTransformer } from '../src/models/hooked.js';
import { loadModel } from '../src/models/load.js';
import { writeRandomModel } from '../src/models/random.js';
import { architectureFor, SUPPORTED_ARCHITECTURES } from '../src/models/architectures/index.js';
import { attribute, explainWithBackend, METHODS } from '../src/methods/attribution/index.js';
import { logitLens } from '../src/methods/lens/logit-lens.js';
import { collectResiduals, evaluateLens, trainTunedLens } from '../src/methods/lens/tuned-lens.js';
import { activationPatching } from '../src/methods/patching/activation.js';
import { attributionPatching } from '../src/methods/patching/attribution.js';
import { causalTrace } from '../src/methods/patching/causal-tracing.js';
import { LanternBackend } from '../src/backends/lantern.js';
import { EdgeRunner } from '../src/methods/circuits/graph.js';
import { prepare } from '../src/methods/circuits/data.js';
import { acdc, eap } from '../src/methods/circuits/discovery.js';
import { pathPatching } from '../src/methods/circuits/path-patching.js';
import { logSoftmaxAt } from '../src/models/predictions.js';
import { maxAbsDiff } from './helpers.js';

const FAMILIES = SUPPORTED_ARCHITECTURES.filter((a) => a !== 'gpt2');
const PROMPT = [464, 318, 257, 286, 262, 290, 11, 13, 284, 339];
const CORRUPT = [464, 318, 257, 286, 262, 291, 11, 13, 284, 339];

let tmp: string;
beforeAll(() => {
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'lantern-families-'));
});
afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));

const logprobAt = (logits: Tensor, V: number, row: number, token: number) => logSoftmaxAt(logits.f32.subarray(row * V, (row + 1) * V), token);

for (const arch of FAMILIES) {
  describe(`${arch}: every method on a tiny random model`, () => {
    let model: HookedTransformer;
    beforeAll(async () => {
      const dir = path.join(tmp, arch);
      writeRandomModel(dir, architectureFor(arch).presets.tiny, { seed: 5, matrixStd: 0.06 });
      model = await loadModel(dir);
    });
    afterAll(async () => model && (await model.executor.dropWeights(model.weights)));
    const V = () => model.cfg.dVocab;

    it('batches of prompts of different lengths equal unbatched runs; past keys and values and packed rows equal recomputation', async () => {
      const short = PROMPT.slice(0, 6);
      const batched = await model.runWithCache([PROMPT, short], ['blocks.1.hook_resid_post', 'blocks.1.attn.hook_pattern']);
      const alone = await model.runWithCache([short], ['blocks.1.hook_resid_post', 'blocks.1.attn.hook_pattern']);
      const row1 = Tensor.f32(batched.logits.f32.slice(PROMPT.length * V(), (PROMPT.length + short.length) * V()), alone.logits.shape);
      expect(maxAbsDiff(row1, alone.logits)).toBeLessThan(1e-4);
      expect(maxAbsDiff(batched.cache.prompt(1).get('blocks.1.hook_resid_post'), alone.cache.get('blocks.1.hook_resid_post'))).toBeLessThan(1e-4);
      // Continue the prompt's first 4 positions from their keys and values.
      const full = await model.run([PROMPT]);
      const { cache: kv } = await model.runWithCache([PROMPT], model.pastHooks);
      const cont = await model.runWithHooks([PROMPT.slice(4)], { past: model.pastKeyValues(kv, 4) });
      expect(maxAbsDiff(cont.logits, Tensor.f32(full.f32.slice(4 * V()), cont.logits.shape))).toBeLessThan(1e-4);
      // Two continuations packed into one row: from position 7 (3 tokens) and from 8 (2 tokens).
      const n = PROMPT.length;
      const packed = await model.runWithHooks([[...PROMPT.slice(7), ...PROMPT.slice(8)]], {
        past: model.pastKeyValues(kv, n), segments: [[{ start: 7, length: 3 }, { start: 8, length: 2 }]], logitPositions: [[2, 4]],
      });
      const last = Tensor.f32(full.f32.slice((n - 1) * V(), n * V()), [V()]);
      expect(maxAbsDiff(Tensor.f32(packed.logits.f32.slice(0, V()), [V()]), last)).toBeLessThan(1e-4);
      expect(maxAbsDiff(Tensor.f32(packed.logits.f32.slice(V(), 2 * V()), [V()]), last)).toBeLessThan(1e-4);
    });

    it('every attribution method runs; IG is complete; leave-one-out equals explicit masked runs', async () => {
      for (const method of METHODS) {
        const r = await attribute(model, {
          tokens: PROMPT, target: 7, method,
          settings: method.startsWith('layer-') ? { hook: 'blocks.1.hook_resid_pre' } : method === 'lime' || method === 'shap' || method === 'shapley' ? { samples: 40 } : {},
        });
        expect(r.scores[0].length, method).toBe(PROMPT.length);
        expect(r.scores[0].every(Number.isFinite), method).toBe(true);
      }
      // A token baseline: from the zero embedding, a model whose first op on it is a norm is scale
      // invariant along the path, and the integrand concentrates at its start.
      const ig = await attribute(model, { tokens: PROMPT, target: 7, method: 'ig', settings: { steps: 64, baseline: { token: 5 } } });
      const gap = ig.scores[0].reduce((a, b) => a + b, 0) - (ig.convergenceDelta?.[0] ?? NaN);
      expect(Math.abs(gap)).toBeGreaterThan(1e-3);
      expect(Math.abs(ig.convergenceDelta![0])).toBeLessThan(1e-3 * Math.abs(gap));
      // Occlusion with a zero embedding at position i = log p(x) − log p(x with embedding i zeroed).
      const loo = await attribute(model, { tokens: PROMPT, target: 7, method: 'occlusion', evaluate: true });
      const base = logprobAt(await model.run([PROMPT]), V(), PROMPT.length - 1, 7);
      for (const i of [0, 4, PROMPT.length - 1]) {
        const hit = await model.runWithHooks([PROMPT], { interventions: [{ hook: 'hook_embed', op: 'zero', positions: [i] }] });
        expect(loo.scores[0][i]).toBeCloseTo(base - logprobAt(hit.logits, V(), PROMPT.length - 1, 7), 4);
      }
      expect(loo.faithfulness!.rows[0].kendallTauLoo!).toBeCloseTo(1, 6); // leave-one-out ranks itself perfectly
    });

    it("the logit lens's last layer is the model's own output; a tuned lens lowers the KL it was trained on", async () => {
      const lens = await logitLens(model, PROMPT, { topK: 3, target: 7 });
      const logits = await model.run([PROMPT]);
      const last = lens.cells[lens.cells.length - 1];
      for (let p = 0; p < PROMPT.length; p++) expect(last[p].target!.logprob).toBeCloseTo(logprobAt(logits, V(), p, 7), 4);
      const tokens = Uint16Array.from({ length: 600 }, (_, i) => (i * 7919) % 1000);
      const res = await collectResiduals(model, tokens, { seq: 32 });
      const tuned = await trainTunedLens(model, res, { steps: 40, lr: 3e-3 });
      const ev = await evaluateLens(model, tuned, res);
      expect(ev.tunedLens.kl[0]).toBeLessThan(ev.logitLens.kl[0]);
      expect(ev.logitLens.kl[ev.layers.length - 1]).toBeCloseTo(0, 5);
    });

    it('activation patching: a run patched with itself changes nothing, restoring the differing position restores the clean run', async () => {
      const L = model.cfg.nLayers;
      const hooks = Array.from({ length: L }, (_, l) => [`blocks.${l}.attn.hook_z`, `blocks.${l}.attn.hook_v`, `blocks.${l}.hook_mlp_out`]).flat();
      const { logits, cache } = await model.runWithCache([PROMPT], hooks);
      const patched = await model.runWithHooks([PROMPT], { interventions: hooks.map((hook) => ({ hook, op: 'replace' as const, value: cache.get(hook) })) });
      expect(maxAbsDiff(patched.logits, logits)).toBeLessThan(1e-5);
      const r = await activationPatching(model, { clean: PROMPT, corrupt: CORRUPT, answer: 7, wrong: 9, sweep: 'resid' });
      // Patching resid_pre of layer 0 at the one differing position restores the clean metric exactly.
      expect(r.values[0 * PROMPT.length + 5]).toBeCloseTo(r.clean, 4);
      expect(r.shape).toEqual([L, PROMPT.length]);
      // Integrated attribution patching moves only position 5's embedding on its path, so at
      // resid_pre of layer 0, position 5, its estimate is that patch's exact effect (completeness).
      const attr = await attributionPatching(model, { clean: PROMPT, corrupt: CORRUPT, answer: 7, wrong: 9, sweep: 'resid', igSteps: 32 });
      expect(Math.abs(attr.values[5] - r.values[5])).toBeLessThan(0.02 * Math.abs(r.clean - r.corrupt) + 1e-3);
    });

    it('causal tracing: restoring the last position after the last block restores the clean probability; positions before the subject never change', async () => {
      const t = await causalTrace(model, { prompt: PROMPT, answer: 7, subject: [3], samples: 3, kinds: ['resid'] });
      const resid = t.effects.resid!;
      const L = model.cfg.nLayers;
      expect(t.clean).toBeCloseTo(Math.exp(logprobAt(await model.run([PROMPT]), V(), PROMPT.length - 1, 7)), 5);
      expect(Math.abs(t.clean - t.corrupt)).toBeGreaterThan(1e-7);
      expect(resid.indirect[L - 1][PROMPT.length - 1]).toBeCloseTo(t.clean - t.corrupt, 6);
      for (let l = 0; l < L; l++) for (const p of [0, 1, 2]) expect(resid.indirect[l][p]).toBeCloseTo(0, 7);
    });

    it('circuits: the edge graph is the model with no edge patched and the corrupted run with all; EAP equals finite differences; ACDC and path patching run', async () => {
      const examples = [{ clean: PROMPT, corrupt: CORRUPT, targets: [{ pos: PROMPT.length - 1, answer: 7, wrong: 9 }, { pos: 6, answer: 3, wrong: 4 }] }];
      const runner = new EdgeRunner(model);
      const data = await prepare(runner, examples, 'logit-diff');
      const diff = (logits: Tensor, t: { pos: number; answer: number; wrong: number }) => logits.f32[t.pos * V() + t.answer] - logits.f32[t.pos * V() + t.wrong];
      const clean = await model.run([PROMPT]);
      const corrupt = await model.run([CORRUPT]);
      const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;
      expect(data.clean).toBeCloseTo(mean(examples[0].targets.map((t) => diff(clean, t))), 4);
      expect(data.corrupt).toBeCloseTo(mean(examples[0].targets.map((t) => diff(corrupt, t))), 4);
      const { space } = runner;
      const metricWith = async (mask: Float32Array) => {
        const out = await runner.run([{ tokens: PROMPT, mask, ref: data.corruptActs[0], targets: examples[0].targets }], data.seq, { senders: false, grad: null });
        return mean(Array.from(out.logitDiff));
      };
      const all = new Float32Array(space.R * space.S);
      for (const [sd, r] of space.edges()) all[r * space.S + sd] = 1;
      expect(await metricWith(all)).toBeCloseTo(data.corrupt, 4);
      const c = await eap(model, { examples, metric: 'logit-diff', threshold: 0, igSteps: 0 });
      const senderOf = space.headSenders ? 'L0H1' : 'A0';
      let largest = 0;
      for (const name of ['input->L0H0.q', `${senderOf}->L1H0.k`, `${senderOf}->L1H3.v`, 'MLP0->logits', 'input->MLP1']) {
        const [sd, r] = name.split('->');
        const eps = 1e-2;
        const mask = new Float32Array(space.R * space.S);
        mask[space.receiver(r) * space.S + space.sender(sd)] = eps;
        const plus = await metricWith(mask);
        mask[space.receiver(r) * space.S + space.sender(sd)] = -eps;
        const minus = await metricWith(mask);
        const fd = -((plus - minus) / (2 * eps)) / (data.clean - data.corrupt);
        expect(Math.abs(c.scores[name] - fd), name).toBeLessThan(5e-3 * Math.max(1, Math.abs(fd)));
        largest = Math.max(largest, Math.abs(fd));
      }
      expect(largest).toBeGreaterThan(0.05); // the checked edges matter
      const a = await acdc(model, { examples, metric: 'logit-diff', threshold: 0.05 });
      expect(a.totalEdges).toBe(space.edges().length);
      expect(a.edges.every((e) => Number.isFinite(e.score))).toBe(true);
      const pp = await pathPatching(model, [[senderOf, 'logits']], { examples, metric: 'logit-diff' });
      expect(Number.isFinite(pp.paths[0].value)).toBe(true);
    });

    it("LanternBackend's scores are the model's own log-probs; black-box leave-one-out equals white-box", async () => {
      const backend = new LanternBackend(model);
      const s = await backend.scoreContinuation(PROMPT.slice(0, 6), [PROMPT[6], PROMPT[7]]);
      const logits = await model.run([PROMPT.slice(0, 8)]);
      expect(s.logprobs[0]).toBeCloseTo(logprobAt(logits, V(), 5, PROMPT[6]), 4);
      expect(s.logprobs[1]).toBeCloseTo(logprobAt(logits, V(), 6, PROMPT[7]), 4);
      const mask = { token: 5 };
      const white = await attribute(model, { tokens: PROMPT, target: 7, method: 'occlusion', settings: { mask } });
      const black = await explainWithBackend(backend, { prompt: PROMPT, target: [7], method: 'occlusion', mask });
      black.scores[0].forEach((x, i) => expect(x).toBeCloseTo(white.scores[0][i], 4));
    });
  });
}
