// Logits, every hook activation and an embedding gradient against an independent float64
// PyTorch implementation (fixtures/ from scripts/make-fixtures.ts), on a tiny random GPT-2 and
// on a random model of the full GPT-2-small shape (124M parameters).
import { describe, it, expect, afterAll } from 'vitest';
import path from 'node:path';
import { readSafetensorsHeader, readFloat32 } from '../src/models/safetensors.js';
import { Tensor } from '../src/engine/tensor.js';
import { objectives, HookedTransformer } from '../src/models/hooked.js';
import { TINY_GPT2, GPT2_SMALL } from '../src/models/random.js';
import { FIXTURES } from './fixtures.js';
import { OPTIONAL_HOOKS } from '../src/models/forward.js';
import { seededModel, relError, worstAgreement } from './helpers.js';

const TOL = 1e-4;

for (const f of FIXTURES) {
  describe(`${f.preset} (seed ${f.seed}) vs float64 PyTorch reference`, () => {
    const header = readSafetensorsHeader(path.join(__dirname, '..', 'fixtures', f.file));
    const ref = (name: string) => Tensor.f32(readFloat32(header, name), header.tensors.get(name)!.shape);
    let model: HookedTransformer;
    afterAll(async () => model && (await model.executor.dropWeights(model.weights)));

    it('logits and every hook agree to 1e-4 (relative, per-tensor max)', async () => {
      model = await seededModel(f.preset === 'tiny' ? TINY_GPT2 : GPT2_SMALL, f.seed);
      const { logits, cache } = await model.runWithCache([[...f.tokens]]);
      const hooks = [...header.tensors.keys()].filter((n) => n.includes('hook_'));
      // Every hook the model has (except the optional per-head result) is in the fixture.
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
