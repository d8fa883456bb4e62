/**
 * The relying party's cost of a login: `verify()` of a web-eid:1.0 token (signature, RFC 5280 path,
 * profile rules, revocation of every certificate of the path) and `validateCertificate()` alone, with
 * the revocation answers already at hand (the CRLs given, or OCSP answers in the cache), on one core.
 *
 *   npm run bench:verify            # BENCH_RUNS=3000 to change
 */
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { openCard } from '../cards/atr-table.js';
import { CpsCard } from '../cards/card.js';
import { Pin } from '../cards/pin.js';
import { signedData } from '../pkcs/token.js';
import { validateCertificate, verify, type VerifyOptions } from '../pkcs/verify.js';
import { fixtureCard, fixturesDir, loadMaterial } from '../sim/cps/fixtures.js';

const RUNS = Number(process.env.BENCH_RUNS ?? 3000);
const ORIGIN = 'https://app.example';
const nonce = Buffer.alloc(32, 3).toString('base64');
const pki = (f: string): Uint8Array => new Uint8Array(readFileSync(join(fixturesDir(), 'pki', f)));

function percentile(sorted: number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))] ?? NaN;
}

async function measure(name: string, run: () => Promise<unknown>): Promise<void> {
  for (let i = 0; i < 100; i++) await run(); // warm-up: JIT, caches
  const times: number[] = [];
  const start = performance.now();
  for (let i = 0; i < RUNS; i++) {
    const t = performance.now();
    await run();
    times.push(performance.now() - t);
  }
  const total = performance.now() - start;
  times.sort((a, b) => a - b);
  const f = (n: number): string => n.toFixed(3).padStart(8);
  console.log(`${name.padEnd(64)} p50 ${f(percentile(times, 50))} ms  p99 ${f(percentile(times, 99))} ms  ${String(Math.round((RUNS / total) * 1000)).padStart(6)} /s`);
}

async function main(): Promise<void> {
  const card = fixtureCard('doctor');
  const driver = openCard({ transmit: async (c) => card.transmit(c) }, card.atr);
  await driver.verifyPin(new Pin('1234'));
  const digest = createHash('sha256').update(signedData(ORIGIN, nonce)).digest();
  const signature = await driver.authenticate(CpsCard.digestInfo('sha256', digest));
  const leaf = loadMaterial('doctor').authCert;
  const token = {
    unverifiedCertificate: Buffer.from(leaf).toString('base64'),
    algorithm: 'RS256',
    signature: Buffer.from(signature).toString('base64'),
    format: 'web-eid:1.0',
    appVersion: 'bench',
  };
  const options: VerifyOptions = {
    origin: ORIGIN,
    nonce,
    trustAnchors: [pki('root.der')],
    intermediates: [pki('intermediate.der')],
    crls: [pki('fort-personnes.crl'), pki('racine.crl')],
    revocation: 'crl',
    crl: { fetch: false },
    now: new Date('2026-06-01T00:00:00Z'),
  };
  console.log(`verification of the doctor's token (RSA-2048, path of 3), ${RUNS} runs after 100 warm-up, node ${process.version}`);
  // A certificate seen for the first time pays the whole RFC 5280 path (pkijs, WebCrypto signatures).
  const cold: number[] = [];
  for (const name of ['nurse', 'pharmacist', 'cpe-staff', 'cpf-intern', 'doctor-16', 'doctor-gaps', 'updated']) {
    const t = performance.now();
    await validateCertificate(loadMaterial(name).authCert, options);
    cold.push(performance.now() - t);
  }
  cold.sort((a, b) => a - b);
  console.log(`${'validateCertificate, first time a certificate is seen (7 leaves)'.padEnd(64)} p50 ${percentile(cold, 50).toFixed(3).padStart(8)} ms  max ${(cold[cold.length - 1] ?? NaN).toFixed(3).padStart(8)} ms`);
  await measure('verify(token), CRLs given', () => verify(token, options));
  await measure('validateCertificate(leaf), CRLs given', () => validateCertificate(leaf, options));
  await measure('validateCertificate(leaf), revocation off (path and rules only)', () => validateCertificate(leaf, { ...options, revocation: 'off' }));
}

void main();
