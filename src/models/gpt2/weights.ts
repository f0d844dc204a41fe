/**
 * GPT-2 weights in Hugging Face naming <-> Lantern's graph names. HF's Conv1D stores weights as
 * [in, out], which is already the layout `x @ W` wants, so loading is a rename plus a dtype
 * conversion (F16/BF16 -> F32) — no transposes, no copies beyond the one read from disk.
 */
import { LanternError, nearest } from '../../errors.js';
import { Tensor } from '../../engine/tensor.js';
import type { ModelConfig } from '../config.js';
import { isFloatDType, openModelWeights, readFloat32 } from '../safetensors.js';
import { weightShapes } from './model.js';

/** Lantern weight name -> Hugging Face GPT-2 tensor name (without the optional `transformer.` prefix). */
export function hfName(name: string): string {
  const fixed: Record<string, string> = {
    'embed.W_E': 'wte.weight',
    'pos_embed.W_pos': 'wpe.weight',
    'ln_final.w': 'ln_f.weight',
    'ln_final.b': 'ln_f.bias',
    'unembed.W_U_T': 'lm_head.weight',
  };
  if (fixed[name]) return fixed[name];
  const m = /^blocks\.(\d+)\.(.+)$/.exec(name);
  if (!m) throw new Error(`no Hugging Face name for ${name}`);
  const inner: Record<string, string> = {
    'ln1.w': 'ln_1.weight', 'ln1.b': 'ln_1.bias', 'ln2.w': 'ln_2.weight', 'ln2.b': 'ln_2.bias',
    'attn.W_QKV': 'attn.c_attn.weight', 'attn.b_QKV': 'attn.c_attn.bias',
    'attn.W_O': 'attn.c_proj.weight', 'attn.b_O': 'attn.c_proj.bias',
    'mlp.W_in': 'mlp.c_fc.weight', 'mlp.b_in': 'mlp.c_fc.bias',
    'mlp.W_out': 'mlp.c_proj.weight', 'mlp.b_out': 'mlp.c_proj.bias',
  };
  return `h.${m[1]}.${inner[m[2]]}`;
}

/** Reads every weight the config needs from a Hugging Face GPT-2 folder, as float32. */
export function loadGpt2Weights(folder: string, cfg: ModelConfig): Record<string, Tensor> {
  const stored = openModelWeights(folder);
  const out: Record<string, Tensor> = {};
  for (const [name, shape] of Object.entries(weightShapes(cfg))) {
    const bare = hfName(name);
    const hf = stored.has(bare) ? bare : `transformer.${bare}`;
    const found = stored.get(hf);
    if (!found) {
      if (name === 'unembed.W_U_T') {
        throw new LanternError(
          `${folder}: config.json sets tie_word_embeddings: false, but the weights have no '${bare}' [${shape}] (the unembedding); ` +
            'add it, or set tie_word_embeddings: true to reuse the token embedding',
        );
      }
      const near = nearest(bare, stored.keys());
      throw new LanternError(
        `${folder}: weights have no tensor '${bare}' (needed for ${name}; is this a GPT-2 checkpoint?)` +
          (near.length ? `; nearest stored names: ${near.map((n) => `'${n}'`).join(', ')}` : '; the weights hold no tensors'),
      );
    }
    if (!isFloatDType(found.entry.dtype)) {
      throw new LanternError(
        `${found.header.path}: tensor '${hf}' is ${found.entry.dtype}; model weights must be floating point (F32, F16, BF16 or F64)`,
      );
    }
    if (found.entry.shape.join(',') !== shape.join(',')) {
      throw new LanternError(
        `${found.header.path}: tensor '${hf}' has shape [${found.entry.shape}], but config.json implies [${shape}]`,
      );
    }
    out[name] = Tensor.f32(readFloat32(found.header, hf), shape);
  }
  return out;
}
