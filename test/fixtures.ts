/** The reference fixtures: which seeded random model and prompt each was computed from. */
export const FIXTURES = [
  { file: 'gpt2-tiny-seed7.safetensors', preset: 'tiny', seed: 7, tokens: [464, 318, 257, 286, 262, 290, 11, 13, 284, 339, 464, 318], grad: { pos: 11, token: 257 } },
  { file: 'gpt2-small-seed3.safetensors', preset: 'gpt2-small', seed: 3, tokens: [464, 3139, 286, 4881, 318], grad: { pos: 4, token: 6342 } },
] as const;

/**
 * One tiny random model per family (its `tiny` preset: grouped-query attention where the family
 * has it, windows shorter than the prompt), with matrices at std 0.15 so attention is sharp
 * enough for rotary, window and soft-capping errors to show.
 */
export const FAMILY_FIXTURES = ['llama', 'mistral', 'qwen2', 'qwen3', 'gemma', 'gemma2', 'gemma3_text', 'gpt_neox', 'phi3'].map((arch, i) => ({
  arch,
  file: `families/${arch}-tiny.safetensors`,
  seed: 11 + i,
  matrixStd: 0.15,
  tokens: [464, 318, 257, 286, 262, 290, 11, 13, 284, 339, 464, 318],
  grad: { pos: 11, token: 257 },
}));

/**
 * Full-size shapes: Llama 3.2 1B's width (2048, 32 heads, 8 kv heads, vocab 128256, llama3 rotary
 * scaling) and Gemma 2 2B's (2304, head_dim 256, vocab 256000, soft-capping) cut to 2 layers, and
 * the whole of Pythia-160m. To keep the files small, only the last
 * position's logits are kept, with every hook of the first and last layers and each layer's resid_post.
 */
export const FULL_SIZE_FIXTURES = [
  { arch: 'llama', preset: 'llama-3.2-1b', layers: 2, file: 'families/llama-3.2-1b-width-2-layers.safetensors', seed: 21, tokens: [464, 318, 257, 286, 262, 290] },
  { arch: 'gpt_neox', preset: 'pythia-160m', layers: 12, file: 'families/pythia-160m.safetensors', seed: 22, tokens: [464, 318, 257, 286, 262, 290] },
  { arch: 'gemma2', preset: 'gemma-2-2b', layers: 2, file: 'families/gemma-2-2b-width-2-layers.safetensors', seed: 23, tokens: [464, 318, 257, 286, 262, 290] },
];
