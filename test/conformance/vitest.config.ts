import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['cases/**/*.test.ts'],
    globalSetup: ['./src/global-setup.ts'],
    testTimeout: 30_000,
    hookTimeout: 60_000,
  },
});
