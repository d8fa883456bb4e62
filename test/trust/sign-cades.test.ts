/**
 * CAdES baseline B detached (.p7s) made with the in-process virtual card (CPS3 and CPS4 profiles), judged
 * by `openssl cms -verify` against the test IGC-Santé root, then by cpsd's verifier on the trust layer.
 */
import { spawnSync } from 'node:child_process';
import { createReadStream, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadProfile } from '../../sim/cps/fixtures.js';
import { finishCades, prepareCades, verifyCades, type CadesSigningState } from '../../sign/index.js';
import { TrustError } from '../../pkcs/trust-types.js';
import { INTERMEDIATE, PKI, ROOT_CA, virtualSigner } from '../helpers/sign.js';

let dir: string;
let rootPem: string;
const trust = { trustAnchors: [ROOT_CA], intermediates: [INTERMEDIATE], revocation: 'off' as const };

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'cpsd-cades-'));
  rootPem = join(dir, 'root.pem');
  spawnSync('openssl', ['x509', '-inform', 'der', '-in', join(PKI, 'root.der'), '-out', rootPem]);
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** `openssl cms -verify` of a detached signature: exit status and what it said. */
function opensslVerify(content: string, p7s: string, extra: string[] = []): { ok: boolean; output: string } {
  const r = spawnSync('openssl', ['cms', '-verify', '-binary', '-content', content, '-inform', 'DER', '-in', p7s, '-CAfile', rootPem, '-out', '/dev/null', ...extra], { encoding: 'utf8' });
  return { ok: r.status === 0, output: `${r.stdout}${r.stderr}` };
}

async function signFile(profile: string, content: Uint8Array, file: string, options: { authenticationKey?: boolean } = {}): Promise<Uint8Array> {
  const card = await virtualSigner(profile);
  writeFileSync(file, content);
  // The file is hashed as a stream, as a server does with a large one.
  const { hash, state } = await prepareCades(createReadStream(file), { signerCertificate: options.authenticationKey ? card.authCertificate : card.signCertificate, chain: [INTERMEDIATE] });
  const signature = options.authenticationKey ? await card.signWithAuthenticationKey(hash) : await card.sign(hash);
  const p7s = finishCades(JSON.parse(JSON.stringify(state)) as CadesSigningState, Buffer.from(signature).toString('base64url'));
  writeFileSync(`${file}.p7s`, p7s);
  return p7s;
}

describe.each([
  ['doctor', 'CPS3'],
  ['nurse', 'CPS4'],
])('CAdES B detached signed by the %s card (%s)', (profile, generation) => {
  const content = new TextEncoder().encode(`Compte rendu ${profile}\n${'x'.repeat(100_000)}\n`);
  let file: string;
  let p7s: Uint8Array;

  beforeAll(async () => {
    expect(loadProfile(profile).generation).toBe(generation);
    file = join(dir, `${profile}.txt`);
    p7s = await signFile(profile, content, file);
  });

  it('openssl cms -verify accepts it against the test IGC-Santé root', () => {
    const verdict = opensslVerify(file, `${file}.p7s`);
    expect(verdict.output).toContain('Verification successful');
    expect(verdict.ok).toBe(true);
  });

  it('openssl cms -verify rejects the file with one byte changed', () => {
    const changed = new Uint8Array(content);
    changed[10] = (changed[10] as number) ^ 0x20;
    writeFileSync(`${file}.changed`, changed);
    const verdict = opensslVerify(`${file}.changed`, `${file}.p7s`);
    expect(verdict.ok).toBe(false);
    expect(verdict.output).toMatch(/digest failure|verification failure/i);
  });

  it('openssl sees content-type, message-digest, signing-certificate-v2 and signing-time', () => {
    const printed = spawnSync('openssl', ['cms', '-cmsout', '-print', '-inform', 'DER', '-in', `${file}.p7s`], { encoding: 'utf8' }).stdout;
    for (const attribute of ['contentType', 'messageDigest', 'id-smime-aa-signingCertificateV2', 'signingTime']) expect(printed).toContain(`object: ${attribute}`);
    expect(printed).toContain('eContent: <ABSENT>');
  });

  it('cpsd verifies it on the trust layer, and refuses the changed file', async () => {
    const result = await verifyCades(p7s, content, trust);
    expect(result.holder.surname).toBe(loadProfile(profile).holder.lastName);
    expect(Math.abs((result.claimedSigningTime?.getTime() ?? 0) - Date.now())).toBeLessThan(120_000);
    await expect(verifyCades(p7s, new TextEncoder().encode('autre chose'), trust)).rejects.toMatchObject({ code: 'SIGNATURE_INVALID' });
    await expect(verifyCades(p7s, { sha256: new Uint8Array(32) }, trust)).rejects.toMatchObject({ code: 'SIGNATURE_INVALID' });
  });
});

describe('CAdES: the verifier refuses what is not a valid signature of a signing certificate', () => {
  const content = new TextEncoder().encode('Certificat médical\n');

  it('made with the authentication key: CERT_WRONG_PURPOSE (openssl checks the signature only)', async () => {
    const file = join(dir, 'auth.txt');
    const p7s = await signFile('doctor', content, file, { authenticationKey: true });
    expect(opensslVerify(file, `${file}.p7s`, ['-purpose', 'any']).ok).toBe(true);
    const error = await verifyCades(p7s, content, trust).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(TrustError);
    expect(error).toMatchObject({ code: 'CERT_WRONG_PURPOSE', rule: 'keyUsage' });
  });

  it('an expired signing certificate: CERT_EXPIRED, and openssl says so too', async () => {
    const file = join(dir, 'expired.txt');
    const p7s = await signFile('expired', content, file);
    await expect(verifyCades(p7s, content, trust)).rejects.toMatchObject({ code: 'CERT_EXPIRED' });
    const verdict = opensslVerify(file, `${file}.p7s`);
    expect(verdict.ok).toBe(false);
    expect(verdict.output).toContain('certificate has expired');
  });

  it('a revoked signing certificate: CERT_REVOKED, and openssl with the CRL says so too', async () => {
    const file = join(dir, 'revoked.txt');
    const p7s = await signFile('revoked', content, file);
    const crl = readFileSync(join(PKI, 'fort-personnes.crl'));
    await expect(verifyCades(p7s, content, { ...trust, revocation: 'crl', crls: [crl] })).rejects.toMatchObject({ code: 'CERT_REVOKED' });
    const crlPem = join(dir, 'fort-personnes.crl.pem');
    spawnSync('openssl', ['crl', '-inform', 'der', '-in', join(PKI, 'fort-personnes.crl'), '-out', crlPem]);
    // openssl cms reads CRLs from its CA file.
    const bundle = join(dir, 'root+crl.pem');
    writeFileSync(bundle, readFileSync(rootPem, 'utf8') + readFileSync(crlPem, 'utf8'));
    const verdict = opensslVerify(file, `${file}.p7s`, ['-crl_check', '-CAfile', bundle]);
    expect(verdict.ok).toBe(false);
    expect(verdict.output).toContain('certificate revoked');
  });

  it('not a CMS at all, or a CMS without signer: typed refusals', async () => {
    await expect(verifyCades(new Uint8Array([1, 2, 3]), content, trust)).rejects.toMatchObject({ code: 'SIGNATURE_INVALID' });
  });
});
