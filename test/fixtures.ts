/** The reference fixtures: which seeded random model and prompt each was computed from. */
export const FIXTURES = [
  { file: 'gpt2-tiny-seed7.safetensors', preset: 'tiny', seed: 7, tokens: [464, 318, 257, 286, 262, 290, 11, 13, 284, 339, 464, 318], grad: { pos: 11, token: 257 } },
  { file: 'gpt2-small-seed3.safetensors', preset: 'gpt2-small', seed: 3, tokens: [464, 3139, 286, 4881, 318], grad: { pos: 4, token: 6342 } },
] as const;
