import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    testTimeout: 120_000,
    hookTimeout: 120_000,
    // Two cores: ORT already uses both, so test files run one at a time.
    fileParallelism: false,
    pool: 'forks',
  },
});
