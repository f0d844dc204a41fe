// A second, independent implementation for the families llama.cpp has: each tiny random model
// exported to GGUF (F32) and run by llama.cpp through node-llama-cpp gives next-token logits
// within 5e-3 of Lantern's over the whole vocabulary (llama.cpp's arithmetic differs slightly,
// as for GPT-2). Llama's export permutes q and k rows into llama.cpp's interleaved rotary order
// and carries Llama 3 scaling as rope_freqs: a mistake in either shows here.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { exportGguf } from '../src/backends/gguf-export.js';
import { GgufBackend } from '../src/backends/gguf.js';
import { openBackend } from '../src/backends/index.js';
import { loadModel } from '../src/models/load.js';
import { writeRandomModel } from '../src/models/random.js';
import { architectureFor } from '../src/models/architectures/index.js';

let tmp: string;
beforeAll(() => (tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'lantern-families-gguf-'))));
afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));

const PROMPT = [464, 318, 257, 286, 262, 290, 11, 13, 284, 339, 464, 318];

// GPT-NeoX with the tanh GELU (llama.cpp's); Pythia's exact GELU differs from it by up to ~1e-3.
const MODELS = {
  llama: architectureFor('llama').presets.tiny,
  qwen2: architectureFor('qwen2').presets.tiny,
  qwen3: architectureFor('qwen3').presets.tiny,
  gemma: architectureFor('gemma').presets.tiny,
  gpt_neox: { ...architectureFor('gpt_neox').presets.tiny, act: 'gelu_new' as const },
  // Sandwich norms, soft-capping 50/30, a window of 4 on layer 0 under a 12-token prompt; llama.cpp
  // scales queries by 1/sqrt(head_dim), so query_pre_attn_scalar is head_dim here.
  gemma2: { ...architectureFor('gemma2').presets.tiny, attnScale: 16 ** -0.5 },
};

for (const [arch, cfg] of Object.entries(MODELS)) {
  describe(`${arch} as GGUF in llama.cpp`, () => {
    it("gives next-token logits within 5e-3 of Lantern's over the whole vocabulary", async () => {
      const dir = path.join(tmp, arch);
      writeRandomModel(dir, cfg, { seed: 9, matrixStd: 0.06 });
      const file = path.join(tmp, `${arch}.gguf`);
      exportGguf(dir, file, { dtype: 'f32' });
      const model = await loadModel(dir);
      const gguf = (await openBackend(`gguf:${file}`, { threads: 1 })) as GgufBackend;
      try {
        const logits = await model.run([PROMPT]);
        const V = model.cfg.dVocab;
        let worst = 0;
        let range = 0;
        for (const n of [1, 5, PROMPT.length]) {
          const mine = logits.f32.subarray((n - 1) * V, n * V);
          const theirs = await gguf.nextTokenLogits(PROMPT.slice(0, n));
          expect(theirs.length).toBe(V);
          for (let i = 0; i < V; i++) {
            worst = Math.max(worst, Math.abs(mine[i] - theirs[i]));
            range = Math.max(range, Math.abs(mine[i]));
          }
        }
        expect(range).toBeGreaterThan(0.1);
        expect(worst).toBeLessThan(5e-3);
      } finally {
        await gguf.close();
        await model.executor.dropWeights(model.weights);
      }
    }, 120_000);
  });
}
