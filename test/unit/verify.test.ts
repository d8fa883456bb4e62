/** The web-eid:1.0 token from the virtual card, checked by the server-side verifier and by openssl. */
import { execFileSync } from 'node:child_process';
import { createHash, X509Certificate } from 'node:crypto';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { Pin } from '../../cards/pin.js';
import { openCard } from '../../cards/atr-table.js';
import { CpsCard } from '../../cards/card.js';
import { MemoryNonceStore, consumeNonce, issueNonce, verify, type AuthToken } from '../../pkcs/verify.js';
import { signedData } from '../../pkcs/token.js';
import { fixtureCard, fixturesDir, loadMaterial } from '../../sim/cps/fixtures.js';

const ORIGIN = 'https://app.example';
const pki = (f: string): Uint8Array => new Uint8Array(readFileSync(join(fixturesDir(), 'pki', f)));
const crls = [pki('fort-personnes.crl'), pki('racine.crl')];
// The test PKI's CRL, given (its distribution point is not on this network).
const trust = { trustAnchors: [pki('root.der')], intermediates: [pki('intermediate.der')], crls, revocation: 'crl', crl: { fetch: false } } as const;
const NOW = new Date('2026-06-01T00:00:00Z');

async function token(profile: string, origin: string, nonce: string, which: 'auth' | 'sign' | 'contactless' = 'auth'): Promise<AuthToken> {
  const card = fixtureCard(profile, which === 'contactless' ? { personality: 'cps3-cl' } : {});
  const driver = openCard({ transmit: async (c) => card.transmit(c) }, card.atr);
  if (which !== 'contactless') await driver.verifyPin(new Pin('1234'));
  const digest = createHash('sha256').update(signedData(origin, nonce)).digest();
  const signature =
    which === 'sign' ? await driver.sign('sha256', { digest }) : await driver.authenticate(CpsCard.digestInfo('sha256', digest));
  const material = loadMaterial(profile);
  const cert = which === 'auth' ? material.authCert : which === 'sign' ? material.signCert : material.techCert;
  return {
    unverifiedCertificate: Buffer.from(cert).toString('base64'),
    algorithm: 'RS256',
    signature: Buffer.from(signature).toString('base64'),
    format: 'web-eid:1.0',
    appVersion: 'https://github.com/cpsd/cpsd/releases/tag/v0.1.0',
  };
}

describe('token verifier', () => {
  it('returns the holder for a good token, and refuses it for another origin or nonce', async () => {
    const store = new MemoryNonceStore();
    const nonce = await issueNonce(store);
    expect(nonce).toHaveLength(44);
    const t = await token('doctor', ORIGIN, nonce);
    const holder = await verify(JSON.stringify(t), { origin: ORIGIN, nonce: await consumeNonce(store, nonce), ...trust, now: NOW });
    expect(holder).toMatchObject({ nationalId: '899700012349', idKind: 'RPPS', rpps: '99700012349', surname: 'MEDECIN-TEST', givenName: 'JEANNE', profession: { label: 'Médecin' } });
    await expect(verify(t, { origin: 'https://evil.example', nonce, ...trust, now: NOW })).rejects.toMatchObject({ code: 'SIGNATURE_INVALID' });
    const other = Buffer.alloc(32, 1).toString('base64');
    await expect(verify(t, { origin: ORIGIN, nonce: other, ...trust, now: NOW })).rejects.toMatchObject({ code: 'SIGNATURE_INVALID' });
    // Replay: the nonce was used once already.
    await expect(consumeNonce(store, nonce)).rejects.toMatchObject({ code: 'NONCE_INVALID' });
  });

  it('refuses expired nonces', async () => {
    const store = new MemoryNonceStore();
    const nonce = await issueNonce(store, 10);
    await expect(consumeNonce(store, nonce, Date.now() + 1000)).rejects.toMatchObject({ code: 'NONCE_EXPIRED' });
  });

  it('refuses expired, revoked, untrusted and wrong-purpose certificates', async () => {
    const nonce = Buffer.alloc(32, 9).toString('base64');
    const good = await token('doctor', ORIGIN, nonce);
    const expired = await token('expired', ORIGIN, nonce);
    await expect(verify(expired, { origin: ORIGIN, nonce, ...trust, now: NOW })).rejects.toMatchObject({ code: 'CERT_EXPIRED' });
    const revoked = await token('revoked', ORIGIN, nonce);
    await expect(verify(revoked, { origin: ORIGIN, nonce, ...trust, now: NOW })).rejects.toMatchObject({ code: 'CERT_REVOKED' });
    // Fail-closed: no CRL at all is REVOCATION_UNKNOWN, not a pass; only "off", when said, skips it.
    await expect(verify(revoked, { origin: ORIGIN, nonce, ...trust, crls: [], now: NOW })).rejects.toMatchObject({ code: 'REVOCATION_UNKNOWN' });
    // The leaf's CRL alone is not enough: the intermediate's status is unknown without the root's.
    await expect(verify(good, { origin: ORIGIN, nonce, ...trust, crls: [pki('fort-personnes.crl')], now: NOW })).rejects.toMatchObject({ code: 'REVOCATION_UNKNOWN' });
    expect((await verify(revoked, { origin: ORIGIN, nonce, ...trust, revocation: 'off', now: NOW })).surname).toBe('MEDECIN-TEST');
    expect((await verify(good, { origin: ORIGIN, nonce, ...trust, now: NOW })).nationalId).toBe('899700012349');
    // Trusting the intermediate itself (as Web eID validators do) is enough; an unrelated anchor is not.
    expect((await verify(good, { origin: ORIGIN, nonce, ...trust, trustAnchors: [pki('intermediate.der')], intermediates: [], now: NOW })).surname).toBe('MEDECIN-TEST');
    await expect(verify(good, { origin: ORIGIN, nonce, ...trust, trustAnchors: [loadMaterial('nurse').authCert], intermediates: [], now: NOW })).rejects.toMatchObject({ code: 'CERT_UNTRUSTED' });
    await expect(verify(good, { origin: ORIGIN, nonce, ...trust, intermediates: [], now: NOW })).rejects.toMatchObject({ code: 'CERT_UNTRUSTED' });
    const signing = await token('doctor', ORIGIN, nonce, 'sign');
    await expect(verify(signing, { origin: ORIGIN, nonce, ...trust, now: NOW })).rejects.toMatchObject({ code: 'CERT_WRONG_PURPOSE' });
    await expect(verify(good, { origin: ORIGIN, nonce, ...trust, now: new Date('2024-06-01') })).rejects.toMatchObject({ code: 'CERT_NOT_YET_VALID' });
  });

  it('refuses the contactless technical certificate (no PIN) by default, and says card-only assurance when allowed', async () => {
    const nonce = Buffer.alloc(32, 4).toString('base64');
    const t = await token('doctor', ORIGIN, nonce, 'contactless');
    await expect(verify(t, { origin: ORIGIN, nonce, ...trust, now: NOW })).rejects.toMatchObject({ code: 'CERT_POLICY', rule: 'contactless' });
    expect(await verify(t, { origin: ORIGIN, nonce, ...trust, allowContactless: true, now: NOW })).toMatchObject({ assurance: 'card', surname: 'MEDECIN-TEST' });
    expect(await verify(await token('doctor', ORIGIN, nonce), { origin: ORIGIN, nonce, ...trust, now: NOW })).toMatchObject({ assurance: 'card+pin' });
  });

  it('refuses a token whose algorithm does not match the key (an EC key labelled RS256 or PS256)', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'cpsd-ec-'));
    // openssl makes the EC certificate and its ECDSA signature: not our own encoder.
    execFileSync('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', join(dir, 'k.pem'), '-out', join(dir, 'c.der'), '-outform', 'DER', '-subj', '/CN=899700012349', '-days', '30'], { stdio: 'pipe' });
    const nonce = Buffer.alloc(32, 6).toString('base64');
    writeFileSync(join(dir, 'data'), signedData(ORIGIN, nonce));
    const signature = execFileSync('openssl', ['dgst', '-sha256', '-sign', join(dir, 'k.pem'), join(dir, 'data')]);
    for (const algorithm of ['RS256', 'PS256'] as const) {
      const t = { ...(await token('doctor', ORIGIN, nonce)), algorithm, unverifiedCertificate: readFileSync(join(dir, 'c.der')).toString('base64'), signature: signature.toString('base64') };
      await expect(verify(t, { origin: ORIGIN, nonce, ...trust, now: new Date() })).rejects.toMatchObject({ code: 'SIGNATURE_INVALID' });
    }
  });

  it('refuses malformed tokens and bad origins or nonces with typed errors', async () => {
    const nonce = Buffer.alloc(32, 2).toString('base64');
    const good = await token('doctor', ORIGIN, nonce);
    const cases: [unknown, string][] = [
      ['{}', 'TOKEN_MALFORMED'],
      ['x'.repeat(200), 'TOKEN_MALFORMED'],
      ['x'.repeat(10_001), 'TOKEN_MALFORMED'],
      [{ ...good, format: 'jwt' }, 'TOKEN_MALFORMED'],
      [{ ...good, algorithm: 'none' }, 'TOKEN_MALFORMED'],
      [{ ...good, signature: '***' }, 'TOKEN_MALFORMED'],
      [{ ...good, unverifiedCertificate: 'AAAA' }, 'TOKEN_MALFORMED'],
      [{ ...good, signature: Buffer.alloc(256).toString('base64') }, 'SIGNATURE_INVALID'],
    ];
    for (const [t, code] of cases) await expect(verify(t, { origin: ORIGIN, nonce, ...trust, now: NOW }), code).rejects.toMatchObject({ code });
    await expect(verify(good, { origin: 'http://app.example', nonce, ...trust, now: NOW })).rejects.toMatchObject({ code: 'ORIGIN_INVALID' });
    await expect(verify(good, { origin: `${ORIGIN}/path`, nonce, ...trust, now: NOW })).rejects.toMatchObject({ code: 'ORIGIN_INVALID' });
    await expect(verify(good, { origin: ORIGIN, nonce: 'short', ...trust, now: NOW })).rejects.toMatchObject({ code: 'NONCE_INVALID' });
  });

  it('is verified independently by openssl over the reconstructed data', async () => {
    const nonce = Buffer.alloc(32, 5).toString('base64');
    const t = await token('doctor', ORIGIN, nonce);
    const dir = mkdtempSync(join(tmpdir(), 'cpsd-openssl-'));
    writeFileSync(join(dir, 'data'), signedData(ORIGIN, nonce));
    writeFileSync(join(dir, 'sig'), Buffer.from(t.signature, 'base64'));
    writeFileSync(join(dir, 'pub.pem'), new X509Certificate(Buffer.from(t.unverifiedCertificate, 'base64')).publicKey.export({ type: 'spki', format: 'pem' }));
    const out = execFileSync('openssl', ['dgst', '-sha256', '-verify', join(dir, 'pub.pem'), '-signature', join(dir, 'sig'), join(dir, 'data')]).toString();
    expect(out.trim()).toBe('Verified OK');
    writeFileSync(join(dir, 'data'), signedData('https://evil.example', nonce));
    expect(() => execFileSync('openssl', ['dgst', '-sha256', '-verify', join(dir, 'pub.pem'), '-signature', join(dir, 'sig'), join(dir, 'data')], { stdio: 'pipe' })).toThrow();
  });
});
