// Every family against the independent float64 PyTorch reference (scripts/reference/
// families_reference.py, fixtures/families/ from scripts/make-fixtures.ts): logits, every hook
// activation and an embedding gradient, on each family's tiny random model (grouped-query
// attention, sliding windows shorter than the prompt, soft-capping, partial rotary, ...).
import { describe, it, expect, afterAll } from 'vitest';
import path from 'node:path';
import { readSafetensorsHeader, readFloat32 } from '../src/models/safetensors.js';
import { Tensor } from '../src/engine/tensor.js';
import { objectives, HookedTransformer } from '../src/models/hooked.js';
import { architectureFor } from '../src/models/architectures/index.js';
import { FAMILY_FIXTURES, FULL_SIZE_FIXTURES } from './fixtures.js';
import { OPTIONAL_HOOKS } from '../src/models/forward.js';
import { seededModel, relError, worstAgreement } from './helpers.js';

const TOL = 1e-4;

for (const f of FAMILY_FIXTURES) {
  describe(`${f.arch} (tiny, seed ${f.seed}) vs float64 PyTorch reference`, () => {
    const header = readSafetensorsHeader(path.join(__dirname, '..', 'fixtures', f.file));
    const ref = (name: string) => Tensor.f32(readFloat32(header, name), header.tensors.get(name)!.shape);
    let model: HookedTransformer;
    afterAll(async () => model && (await model.executor.dropWeights(model.weights)));

    it('logits and every hook agree to 1e-4 (relative, per-tensor max)', async () => {
      model = await seededModel(architectureFor(f.arch).presets.tiny, f.seed, { matrixStd: f.matrixStd });
      const { logits, cache } = await model.runWithCache([[...f.tokens]]);
      const hooks = [...header.tensors.keys()].filter((n) => n.includes('hook_'));
      // The reference records exactly the hooks the model has (but the optional per-head result).
      expect(hooks.sort()).toEqual(model.hookNames.filter((n) => !OPTIONAL_HOOKS.test(n)).sort());
      const [name, err] = worstAgreement([['logits', logits, ref('logits')], ...hooks.map((n) => [n, cache.get(n), ref(n)] as [string, Tensor, Tensor])]);
      expect(err, `worst: ${name}`).toBeLessThan(TOL);
    });

    it('gradient of a log-prob wrt the residual stream entering block 0 agrees to 1e-4', async () => {
      const r = await model.gradients([[...f.tokens]], objectives.logprob(f.grad.pos, f.grad.token), { wrt: ['blocks.0.hook_resid_pre'] });
      expect(relError(r.grads['blocks.0.hook_resid_pre'], ref('grad_resid_pre0'))).toBeLessThan(TOL);
    });
  });
}

for (const f of FULL_SIZE_FIXTURES) {
  describe(`${f.preset} shape (${f.layers} layers, seed ${f.seed}) vs float64 PyTorch reference`, () => {
    it('the last position\'s logits and every hook agree to 1e-4', async () => {
      const header = readSafetensorsHeader(path.join(__dirname, '..', 'fixtures', f.file));
      const ref = (name: string) => Tensor.f32(readFloat32(header, name), header.tensors.get(name)!.shape);
      const cfg = { ...architectureFor(f.arch).presets[f.preset], nLayers: f.layers };
      const model = await seededModel(cfg, f.seed);
      try {
        const { logits, cache } = await model.runWithCache([[...f.tokens]]);
        const V = cfg.dVocab;
        const hooks = [...header.tensors.keys()].filter((n) => n.includes('hook_'));
        expect(hooks.length).toBeGreaterThan(40); // the first and last layers' hooks and every resid_post
        const last = Tensor.f32(logits.f32.slice(logits.size - V), [V]);
        const [name, err] = worstAgreement([['logits_last', last, ref('logits_last')], ...hooks.map((n) => [n, cache.get(n), ref(n)] as [string, Tensor, Tensor])]);
        expect(err, `worst: ${name}`).toBeLessThan(TOL);
      } finally {
        await model.executor.dropWeights(model.weights);
      }
    });
  });
}
