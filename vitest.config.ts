import { defineConfig } from 'vitest/config';

// Four projects: pure unit tests and trust-layer tests run in parallel; tests that drive the machine's single pcscd
// (and may kill and restart it) run one file at a time, on the default PC/SC binding, then those that touch
// PC/SC run again on the other binding.
// The end-to-end files that touch PC/SC through cpsd's own PcscService (opensc.test.ts is OpenSC's).
const PCSC_FILES = ['pcsc', 'binding', 'restart', 'daemon-restart', 'sessions', 'cli', 'field', 'readers', 'daemon'].map((f) => `test/e2e/${f}.test.ts`);

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
      {
        // The end-to-end files that drive PC/SC (cards, pulls, pcscd restarts, the CLI and the daemon on a
        // reader) once more on the other native binding (apdu/pcsc/binding.ts; the default is 'pcsclite').
        // After every other project (groupOrder 1): the machine's one pcscd is never shared by two files.
        test: {
          name: 'pcsc-smartcard',
          include: PCSC_FILES,
          env: { CPSD_PCSC_BINDING: 'smartcard' },
          fileParallelism: false,
          testTimeout: 30_000,
          hookTimeout: 30_000,
          sequence: { groupOrder: 1 },
        },
      },
      {
        // OpenSC's pkcs11-tool suites once more against the PKCS#11 module built with AddressSanitizer + UBSan
        // (test/helpers/pkcs11-daemon.ts): a report fails the test. Last, alone on the machine's pcscd.
        test: {
          name: 'pkcs11-asan',
          include: ['test/e2e/pkcs11-tool.test.ts'],
          env: { CPSD_PKCS11_ASAN: '1' },
          fileParallelism: false,
          testTimeout: 30_000,
          hookTimeout: 30_000,
          sequence: { groupOrder: 2 },
        },
      },
    ],
  },
});
