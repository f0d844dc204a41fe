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
