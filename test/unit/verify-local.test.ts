/**
 * Tokens made by a local application (no browser, so no Origin header: the daemon binds them to the origin
 * "null"): verified only with `localApplication: true`, which accepts nothing else. The token is signed by
 * the virtual card as the daemon does (H(origin) ‖ H(nonce)).
 */
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { openCard } from '../../cards/atr-table.js';
import { CpsCard } from '../../cards/card.js';
import { Pin } from '../../cards/pin.js';
import { signedData } from '../../pkcs/token.js';
import { LOCAL_APPLICATION_ORIGIN, verify, type AuthToken, type VerifyOptions } from '../../pkcs/verify.js';
import { fixtureCard, fixturesDir, loadMaterial } from '../../sim/cps/fixtures.js';

const WEB = 'https://app.example';
const NONCE = Buffer.alloc(32, 5).toString('base64');
const NOW = new Date('2026-06-01T00:00:00Z');
const pki = (f: string): Uint8Array => new Uint8Array(readFileSync(join(fixturesDir(), 'pki', f)));
const trust = {
  trustAnchors: [pki('root.der')],
  intermediates: [pki('intermediate.der')],
  crls: [pki('fort-personnes.crl'), pki('racine.crl')],
  revocation: 'crl',
  crl: { fetch: false },
  now: NOW,
} as const;

/** What the daemon answers auth.authenticate with, for a connection whose origin is `origin`. */
async function token(origin: string, profile = 'doctor'): Promise<AuthToken> {
  const card = fixtureCard(profile);
  const driver = openCard({ transmit: async (c) => card.transmit(c) }, card.atr);
  await driver.verifyPin(new Pin('1234'));
  const digest = createHash('sha256').update(signedData(origin, NONCE)).digest();
  const signature = await driver.authenticate(CpsCard.digestInfo('sha256', digest));
  return {
    unverifiedCertificate: Buffer.from(loadMaterial(profile).authCert).toString('base64'),
    algorithm: 'RS256',
    signature: Buffer.from(signature).toString('base64'),
    format: 'web-eid:1.0',
    appVersion: 'https://github.com/cpsd/cpsd/releases/tag/v0.1.0',
  };
}

/** Options a JavaScript caller (or a loose config) might pass, outside what the types allow. */
const untyped = (options: Record<string, unknown>): VerifyOptions => ({ nonce: NONCE, ...trust, ...options }) as unknown as VerifyOptions;

describe('local-application tokens (origin "null")', () => {
  it('are accepted with localApplication: true, the holder saying origin "null"', async () => {
    const holder = await verify(await token(LOCAL_APPLICATION_ORIGIN), { localApplication: true, nonce: NONCE, ...trust });
    expect(holder).toMatchObject({ nationalId: '899700012349', surname: 'MEDECIN-TEST', givenName: 'JEANNE', assurance: 'card+pin', origin: 'null' });
  });

  it('are refused by default: "null" as the origin is ORIGIN_INVALID', async () => {
    await expect(verify(await token('null'), { origin: 'null', nonce: NONCE, ...trust })).rejects.toMatchObject({ code: 'ORIGIN_INVALID' });
  });

  it('are refused for a web origin: the signature is over H("null"), not H(origin)', async () => {
    await expect(verify(await token('null'), { origin: WEB, nonce: NONCE, ...trust })).rejects.toMatchObject({ code: 'SIGNATURE_INVALID' });
  });

  it('are refused with localApplication: false, which is the web rule', async () => {
    await expect(verify(await token('null'), { origin: 'null', localApplication: false, nonce: NONCE, ...trust })).rejects.toMatchObject({ code: 'ORIGIN_INVALID' });
  });

  it('refuses a web page’s token under localApplication: true', async () => {
    await expect(verify(await token(WEB), { localApplication: true, nonce: NONCE, ...trust })).rejects.toMatchObject({ code: 'SIGNATURE_INVALID' });
  });

  it('refuses a local token with another nonce', async () => {
    const other = Buffer.alloc(32, 6).toString('base64');
    await expect(verify(await token('null'), { localApplication: true, nonce: other, ...trust })).rejects.toMatchObject({ code: 'SIGNATURE_INVALID' });
  });

  it('refuses localApplication together with an origin (which one would it be?)', async () => {
    await expect(verify(await token('null'), untyped({ localApplication: true, origin: 'null' }))).rejects.toMatchObject({ code: 'ORIGIN_INVALID' });
    await expect(verify(await token(WEB), untyped({ localApplication: true, origin: WEB }))).rejects.toMatchObject({ code: 'ORIGIN_INVALID' });
  });

  it('refuses localApplication with allowHttpLocalhost: true', async () => {
    await expect(verify(await token('null'), untyped({ localApplication: true, allowHttpLocalhost: true }))).rejects.toMatchObject({ code: 'ORIGIN_INVALID' });
  });

  it('takes only the boolean true: a truthy string is refused', async () => {
    await expect(verify(await token('null'), untyped({ localApplication: 'true' }))).rejects.toMatchObject({ code: 'ORIGIN_INVALID' });
    await expect(verify(await token('null'), untyped({ localApplication: 1, origin: WEB }))).rejects.toMatchObject({ code: 'ORIGIN_INVALID' });
  });

  it('refuses options with neither an origin nor localApplication', async () => {
    await expect(verify(await token('null'), untyped({}))).rejects.toMatchObject({ code: 'ORIGIN_INVALID' });
  });

  it('never takes the origin from the token: an "origin" member in it changes nothing', async () => {
    const forged = { ...(await token('null')), origin: WEB };
    await expect(verify(forged, { origin: WEB, nonce: NONCE, ...trust })).rejects.toMatchObject({ code: 'SIGNATURE_INVALID' });
    expect((await verify(forged, { localApplication: true, nonce: NONCE, ...trust })).origin).toBe('null');
  });

  it('still goes through the certificate checks: a revoked card is CERT_REVOKED', async () => {
    await expect(verify(await token('null', 'revoked'), { localApplication: true, nonce: NONCE, ...trust })).rejects.toMatchObject({ code: 'CERT_REVOKED' });
  });

  it('leaves web tokens as they were, the holder saying the origin checked', async () => {
    expect((await verify(await token(WEB), { origin: WEB, nonce: NONCE, ...trust })).origin).toBe(WEB);
  });
});
