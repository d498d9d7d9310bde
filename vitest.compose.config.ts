import { defineConfig } from 'vitest/config';

// `pnpm test:compose`: the images built and run by Docker Compose, tested from outside.
export default defineConfig({
  test: {
    name: 'compose',
    include: ['test/compose/**/*.test.ts'],
    testTimeout: 180_000,
    hookTimeout: 900_000,
    fileParallelism: false,
  },
});
