import { defineConfig } from 'vitest/config';

// Two projects: pure unit tests run in parallel; tests that drive the machine's single pcscd
// (and may kill and restart it) run one file at a time.
export default defineConfig({
  test: {
    projects: [
      {
        test: {
          name: 'unit',
          include: ['test/unit/**/*.test.ts'],
        },
      },
      {
        test: {
          name: 'pcsc',
          include: ['test/e2e/**/*.test.ts'],
          fileParallelism: false,
          testTimeout: 30_000,
          hookTimeout: 30_000,
        },
      },
    ],
  },
});
