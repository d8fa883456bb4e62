import { defineConfig } from 'vitest/config';

// Three projects: pure unit tests and trust-layer tests run in parallel; tests that drive the machine's single pcscd
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
        // The trust layer judged by independent programs (openssl verify, openssl ocsp, redis-server),
        // each test file with its own temporary PKI, ports and processes: parallel like the unit tests.
        test: {
          name: 'trust',
          include: ['test/trust/**/*.test.ts'],
          testTimeout: 30_000,
          hookTimeout: 60_000,
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
