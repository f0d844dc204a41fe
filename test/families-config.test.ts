// config.json of every family: the transformers 4.x and v5 (rope_parameters) layouts parse to the
// same model; what Lantern does not implement is a one-line error naming the field; Gemma 2's
// sliding layers come in Hugging Face's order (local first); weights must match the config; head
// interventions on k and v address key/value heads; the memory check runs before any weight is read.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseConfig, toHfConfig } from '../src/models/config.js';
import { architectureFor, SUPPORTED_ARCHITECTURES } from '../src/models/architectures/index.js';
import { writeRandomModel } from '../src/models/random.js';
import { loadWeights } from '../src/models/weights.js';
import { readConfig } from '../src/models/config.js';
import { loadModel } from '../src/models/load.js';
import { inverseFrequencies } from '../src/models/components/rotary.js';
import { Tensor } from '../src/engine/tensor.js';

let tmp: string;
beforeAll(() => (tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'lantern-config-'))));
afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));

const llama32 = {
  model_type: 'llama', hidden_size: 2048, num_attention_heads: 32, num_key_value_heads: 8, num_hidden_layers: 16, intermediate_size: 8192,
  max_position_embeddings: 131072, vocab_size: 128256, rms_norm_eps: 1e-5, hidden_act: 'silu', tie_word_embeddings: true, head_dim: 64,
  rope_theta: 500000, rope_scaling: { rope_type: 'llama3', factor: 32, low_freq_factor: 1, high_freq_factor: 4, original_max_position_embeddings: 8192 },
};

describe('config.json', () => {
  it('every preset survives toHfConfig -> parseConfig unchanged', () => {
    for (const arch of SUPPORTED_ARCHITECTURES) {
      for (const [name, cfg] of Object.entries(architectureFor(arch).presets)) {
        expect(parseConfig(JSON.parse(JSON.stringify(toHfConfig(cfg)))), `${arch} ${name}`).toEqual(cfg);
      }
    }
  });

  it("Llama 3.2's published config; the v5 rope_parameters layout gives the same model", () => {
    const a = parseConfig(llama32);
    expect(a).toEqual(architectureFor('llama').presets['llama-3.2-1b']);
    const { rope_theta, rope_scaling, ...rest } = llama32;
    const v5 = parseConfig({ ...rest, rope_parameters: { ...rope_scaling, rope_theta } });
    expect(v5).toEqual(a);
    // NeoX: rotary_pct / rotary_emb_base, or rope_parameters' partial_rotary_factor / rope_theta.
    const neox = { model_type: 'gpt_neox', hidden_size: 768, num_attention_heads: 12, num_hidden_layers: 12, intermediate_size: 3072, vocab_size: 50304, max_position_embeddings: 2048 };
    const old = parseConfig({ ...neox, rotary_pct: 0.25, rotary_emb_base: 10000 });
    expect(old.rope).toEqual({ dims: 16, base: 10000 });
    expect(parseConfig({ ...neox, rope_parameters: { rope_type: 'default', rope_theta: 10000, partial_rotary_factor: 0.25 } })).toEqual(old);
    expect(old).toEqual(architectureFor('gpt_neox').presets['pythia-160m']);
  });

  it('llama3 rotary scaling: long wavelengths slowed by the factor, short ones kept, the band between blended (HF modeling_rope_utils)', () => {
    const inv = inverseFrequencies({ dims: 64, base: 500000, scaling: { type: 'llama3', factor: 32, lowFreqFactor: 1, highFreqFactor: 4, originalContext: 8192 } });
    const plain = inverseFrequencies({ dims: 64, base: 500000 });
    expect(inv[0]).toBe(plain[0]); // wavelength 2π < 8192/4
    expect(inv[31]).toBeCloseTo(plain[31] / 32, 15); // wavelength > 8192
    // The first frequency in the band: smooth = (8192 / wavelen - 1) / 3.
    const i = plain.findIndex((f) => 2 * Math.PI / f >= 8192 / 4);
    const smooth = (8192 / (2 * Math.PI / plain[i]) - 1) / 3;
    expect(inv[i]).toBeCloseTo((1 - smooth) * plain[i] / 32 + smooth * plain[i], 15);
  });

  it('what Lantern does not implement is a one-line error naming the field', () => {
    const bad: [object, RegExp][] = [
      [{ ...llama32, rope_scaling: { rope_type: 'yarn', factor: 4 } }, /rope_scaling type 'yarn' is not implemented \(Lantern implements default, linear and llama3 rotary scaling\)$/],
      [{ ...llama32, rope_scaling: { type: 'dynamic', factor: 2 } }, /rope_scaling type 'dynamic' is not implemented/],
      [{ ...llama32, model_type: 'mistral', num_local_experts: 8 }, /num_local_experts=8 is not supported \(mixture-of-experts layers\)$/],
      [{ ...llama32, model_type: 'qwen2', use_sliding_window: true }, /use_sliding_window=true is not supported/],
      [{ ...llama32, num_attention_heads: 30 }, /num_attention_heads=30 is not a multiple of num_key_value_heads=8$/],
      [{ ...llama32, hidden_size: undefined }, /'hidden_size' is missing; a Llama config\.json needs it$/],
      [{ ...llama32, num_hidden_layers: 1e9 }, /'num_hidden_layers' is 1000000000, more than 4096; no model Lantern loads has that many$/],
      [{ ...llama32, vocab_size: 1e15 }, /'vocab_size' is 1000000000000000, more than 16777216/],
      [{ ...llama32, rope_scaling: { rope_type: 'llama3', factor: 'eight' } }, /rope_scaling\.factor must be a positive number, got "eight"$/],
      [{ ...llama32, model_type: 'gemma2', layer_types: ['sliding_attention'] }, /layer_types must list one kind per layer \(16\)$/],
    ];
    for (const [raw, re] of bad) expect(() => parseConfig(raw as Record<string, unknown>)).toThrow(re);
  });

  it("Gemma 2's sliding layers are local first (0, 2, 4, ...); Gemma 3's every layer but each sixth", () => {
    const base = { hidden_size: 64, num_attention_heads: 4, num_key_value_heads: 2, head_dim: 16, num_hidden_layers: 12, intermediate_size: 128, vocab_size: 1000 };
    expect(parseConfig({ ...base, model_type: 'gemma2' }).slidingLayers).toEqual([0, 2, 4, 6, 8, 10]);
    expect(parseConfig({ ...base, model_type: 'gemma3_text' }).slidingLayers).toEqual([0, 1, 2, 3, 4, 6, 7, 8, 9, 10]);
    const g2 = parseConfig({ ...base, model_type: 'gemma2' });
    expect([g2.attnSoftcap, g2.finalSoftcap, g2.attnScale]).toEqual([50, 30, 256 ** -0.5]); // Hugging Face's defaults
    expect(parseConfig({ ...base, model_type: 'gemma2', attn_logit_softcapping: null }).attnSoftcap).toBeUndefined();
  });
});

describe('weights against the config', () => {
  it('a config claiming fewer layers than the weights hold, or fused shapes that do not add up, are one-line errors', () => {
    const dir = path.join(tmp, 'qwen2');
    writeRandomModel(dir, architectureFor('qwen2').presets.tiny, { seed: 1 });
    const file = path.join(dir, 'config.json');
    const raw = JSON.parse(fs.readFileSync(file, 'utf8'));
    fs.writeFileSync(file, JSON.stringify({ ...raw, num_hidden_layers: 1 }));
    expect(() => loadWeights(dir, readConfig(dir))).toThrow(/the weights hold 2 layers, but config\.json says 1; fix the layer count in config\.json$/);
    fs.writeFileSync(file, JSON.stringify({ ...raw, num_key_value_heads: 4 }));
    expect(() => loadWeights(dir, readConfig(dir))).toThrow(/tensor 'model\.layers\.0\.self_attn\.k_proj\.weight' has shape \[32,64\], but config\.json implies \[64,64\] \(for blocks\.0\.attn\.W_QKV\)$/);
    fs.writeFileSync(file, JSON.stringify(raw));
    expect(() => loadWeights(dir, readConfig(dir), { memoryLimit: 1000 })).toThrow(/the model needs 0\.00 GiB for its float32 weights, more than the 0\.00 GiB this machine \(or its cgroup\) has$/);
  });

  it('BF16 weights stream into the fused float32 weights exactly', async () => {
    const cfg = architectureFor('phi3').presets.tiny;
    const a = path.join(tmp, 'phi3-f32');
    const b = path.join(tmp, 'phi3-bf16');
    writeRandomModel(a, cfg, { seed: 4 });
    writeRandomModel(b, cfg, { seed: 4, dtype: 'BF16' });
    const wa = loadWeights(a, cfg);
    const wb = loadWeights(b, cfg);
    for (const name of Object.keys(wa)) {
      const x = wa[name].f32;
      const y = wb[name].f32;
      // bf16 keeps the top 16 bits of each float32 (round to nearest even): within 2^-8 relative.
      for (let i = 0; i < x.length; i += 97) expect(Math.abs(x[i] - y[i])).toBeLessThanOrEqual(Math.abs(x[i]) * 2 ** -8);
    }
  });
});

describe('head interventions under grouped-query attention', () => {
  it('q, z and patterns address query heads; k and v key/value heads, and a wrong head names the range', async () => {
    const dir = path.join(tmp, 'llama');
    writeRandomModel(dir, architectureFor('llama').presets.tiny, { seed: 1 });
    const model = await loadModel(dir);
    try {
      const tokens = [5, 6, 7, 8];
      expect(model.hookShapes.get('blocks.0.attn.hook_k')).toEqual(['batch', 'seq', 2, 16]);
      expect(model.hookShapes.get('blocks.0.attn.hook_q')).toEqual(['batch', 'seq', 4, 16]);
      await expect(model.runWithHooks([tokens], { interventions: [{ hook: 'blocks.0.attn.hook_v', op: 'zero', heads: [2] }] }))
        .rejects.toThrow(/intervention 0 \(zero at blocks\.0\.attn\.hook_v\): head 2 outside \[0, 2\) \(this hook has the model's 2 key\/value heads\)$/);
      // Zeroing kv head 1's values equals zeroing the values of query heads 2 and 3 (which read it) in z.
      const { cache } = await model.runWithCache([tokens], ['blocks.0.attn.hook_z']);
      const z = cache.get('blocks.0.attn.hook_z');
      const r = await model.runWithHooks([tokens], { interventions: [{ hook: 'blocks.0.attn.hook_v', op: 'zero', heads: [1] }], cache: ['blocks.0.attn.hook_z'] });
      const z2 = r.cache.get('blocks.0.attn.hook_z');
      const [, T, H, dh] = z.shape;
      for (let t = 0; t < T; t++) for (let h = 0; h < H; h++) for (let d = 0; d < dh; d++) {
        const i = (t * H + h) * dh + d;
        if (h >= 2) expect(z2.f32[i]).toBe(0);
        else expect(z2.f32[i]).toBe(z.f32[i]);
      }
      expect(z instanceof Tensor).toBe(true);
    } finally {
      await model.executor.dropWeights(model.weights);
    }
  });
});
