/**
 * The card profiles and the test PKI are consistent: ids, codes, chains, key pairs, validity, CRLs; and
 * openssl, an independent judge, verifies the chains and revocation and decodes every extension.
 */
import { spawnSync } from 'node:child_process';
import { createPrivateKey, createPublicKey, X509Certificate } from 'node:crypto';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { fixturesDir, loadMaterial, loadProfile, profileNames } from '../../sim/cps/fixtures.js';

const dir = fixturesDir();
const pkiPath = (f: string): string => join(dir, 'pki', f);
const root = new X509Certificate(readFileSync(pkiPath('root.der')));
const intermediate = new X509Certificate(readFileSync(pkiPath('intermediate.der')));
const serials = JSON.parse(readFileSync(pkiPath('serials.json'), 'utf8')) as Record<string, string[]>;
const CARD_CERTS = ['auth', 'sign', 'tech-auth'] as const;
/** openssl -attime: a date inside every non-expired card certificate's validity. */
const AT = String(Date.UTC(2026, 5, 1) / 1000);

function openssl(args: readonly string[]): { status: number | null; stdout: string; stderr: string } {
  const run = spawnSync('openssl', args, { encoding: 'utf8', timeout: 20_000 });
  if (run.error) throw run.error;
  return { status: run.status, stdout: run.stdout, stderr: run.stderr };
}

/** PEM copies made by openssl itself (its verify reads PEM), in one temporary directory per run. */
const tmp = mkdtempSync(join(tmpdir(), 'cpsd-fixtures-'));
function pem(kind: 'x509' | 'crl', file: string): string {
  const out = join(tmp, `${file.replace(/[/.]/g, '_')}.pem`);
  const run = openssl([kind, '-inform', 'DER', '-in', pkiPath(file), '-out', out]);
  if (run.status !== 0) throw new Error(`openssl ${kind} ${file}: ${run.stderr}`);
  return out;
}

function text(kind: 'x509' | 'crl', file: string, ...more: string[]): string {
  const run = openssl([kind, '-inform', 'DER', '-in', pkiPath(file), '-noout', '-text', ...more]);
  if (run.status !== 0) throw new Error(`openssl ${kind} -text ${file}: ${run.stderr}`);
  return run.stdout;
}

function luhn(digits: string): boolean {
  let sum = 0;
  [...digits].reverse().forEach((c, i) => {
    let d = Number(c);
    if (i % 2 === 1) d = d * 2 > 9 ? d * 2 - 9 : d * 2;
    sum += d;
  });
  return sum % 10 === 0;
}

describe('fixtures', () => {
  it('has a root and the FORT PERSONNES intermediate it issued', () => {
    expect(root.subject).toContain('CN=TEST AC RACINE IGC-SANTE FORT');
    expect(intermediate.subject).toContain('CN=TEST AC IGC-SANTE FORT PERSONNES');
    expect(intermediate.checkIssued(root)).toBe(true);
    expect(intermediate.verify(root.publicKey)).toBe(true);
    expect(intermediate.ca).toBe(true);
  });

  for (const name of profileNames()) {
    it(`profile ${name}: valid fields, certificates chained to the intermediate, keys matching`, () => {
      const p = loadProfile(name);
      expect(p.name).toBe(name);
      expect(p.pin).toMatch(/^\d{4}$/);
      expect(p.puk).toMatch(/^\d{8}$/);
      expect(p.serial).toMatch(/^[0-9A-F]{10}$/);
      if (p.holder.idNat.startsWith('8')) {
        expect(p.holder.idNat).toMatch(/^8\d{11}$/);
        expect(luhn(p.holder.idNat.slice(1))).toBe(true); // RPPS key
      }
      const indexes = p.situations.map((s) => s.index);
      expect(new Set(indexes).size).toBe(indexes.length);
      for (const i of indexes) expect(i >= 1 && i <= 16).toBe(true);

      const m = loadMaterial(name);
      for (const [der, key, usage] of [
        [m.authCert, m.authKey, 'clientAuth'],
        [m.signCert, m.signKey, undefined],
        [m.techCert, m.techKey, 'clientAuth'],
      ] as const) {
        const cert = new X509Certificate(der);
        expect(cert.checkIssued(intermediate)).toBe(true);
        expect(cert.verify(intermediate.publicKey)).toBe(true);
        expect(cert.publicKey.equals(createPublicKey(key))).toBe(true);
        // One multi-valued RDN: Node prints it as CN=…+SN=…+GN=… in some order, on one line.
        const rdn = cert.subject.split('\n').find((l) => l.includes(`CN=${p.holder.idNat}`)) ?? '';
        expect(rdn).toContain(`SN=${p.holder.lastName}`);
        expect(rdn).toContain(`GN=${p.holder.firstName}`);
        expect(cert.subject).toContain(`title=${p.holder.profession.label}`);
        if (usage) expect(cert.keyUsage).toContain('1.3.6.1.5.5.7.3.2');
        const years = p.pki?.expired ? 3 : p.generation === 'CPS4' ? 6 : 3;
        const from = new Date(cert.validFrom).getUTCFullYear();
        expect(new Date(cert.validTo).getUTCFullYear() - from).toBe(years);
        if (p.pki?.expired) expect(new Date(cert.validTo).getTime()).toBeLessThan(Date.now());
      }
    });
  }

  it('records in serials.json every card certificate serial: 16 random bytes, the high bit as it falls', () => {
    const all: string[] = [];
    for (const name of profileNames()) {
      const list = serials[name] ?? [];
      expect(list, name).toHaveLength(CARD_CERTS.length);
      CARD_CERTS.forEach((file, i) => {
        const serial = list[i] ?? '';
        expect(serial, `${name} ${file}`).toMatch(/^(?!00)[0-9a-f]{32}$/);
        // openssl prints the INTEGER's value: a high bit without DER's leading 00 would read as negative ("-…").
        const run = openssl(['x509', '-inform', 'DER', '-in', pkiPath(`cards/${name}/${file}.der`), '-noout', '-serial']);
        expect(run.stdout.trim(), `${name} ${file}`).toBe(`serial=${serial.toUpperCase()}`);
        all.push(serial);
      });
    }
    expect(new Set(all).size).toBe(all.length);
    // The high bit is not cleared to keep serials positive: both halves occur (a 2^-35 chance to fail by luck).
    const high = all.filter((s) => parseInt(s.slice(0, 2), 16) >= 0x80).length;
    expect(high).toBeGreaterThan(0);
    expect(high).toBeLessThan(all.length);
  });
});

/** The extension headers openssl prints (12 spaces in, "name:" or "name: critical"), in order. */
function extensionHeaders(out: string): string[] {
  const section = out.slice(out.indexOf('X509v3 extensions:'), out.indexOf('Signature Algorithm', out.indexOf('X509v3 extensions:')));
  return [...section.matchAll(/^ {12}(\S[^\n]*?): ?(critical)?$/gm)].map((m) => (m[2] ? `${m[1]} (critical)` : (m[1] ?? '')));
}

/** The key id openssl prints under `header`. */
function keyIdIn(out: string, header: 'X509v3 Subject Key Identifier' | 'X509v3 Authority Key Identifier'): string {
  const id = new RegExp(`${header}: ?\\n\\s+(?:keyid:)?([0-9A-F:]+)\\n`).exec(out)?.[1];
  if (!id) throw new Error(`no ${header}`);
  return id;
}

describe('test PKI, judged by openssl', () => {
  const rootPem = pem('x509', 'root.der');
  const interPem = pem('x509', 'intermediate.der');
  const crlFiles = ['-CRLfile', pem('crl', 'fort-personnes.crl'), '-CRLfile', pem('crl', 'racine.crl')];
  const bundle = join(tmp, 'cas.pem');
  writeFileSync(bundle, readFileSync(rootPem, 'utf8') + readFileSync(interPem, 'utf8'));
  const verify = (certPem: string, ...more: string[]) =>
    openssl(['verify', '-x509_strict', '-crl_check_all', '-CAfile', rootPem, '-untrusted', interPem, ...crlFiles, '-attime', AT, ...more, certPem]);
  const rootText = text('x509', 'root.der');
  const interText = text('x509', 'intermediate.der');
  const interSki = keyIdIn(interText, 'X509v3 Subject Key Identifier');

  it('chains every card certificate to the root with both CRLs: good ones OK, "revoked" revoked, "expired" expired', () => {
    for (const name of profileNames()) {
      const p = loadProfile(name);
      for (const file of CARD_CERTS) {
        const certPem = pem('x509', `cards/${name}/${file}.der`);
        const run = verify(certPem, ...(file === 'sign' ? [] : ['-purpose', 'sslclient']));
        const output = run.stdout + run.stderr;
        if (p.pki?.expired) expect(output, `${name} ${file}`).toMatch(/certificate has expired/);
        else if (p.pki?.revoked && file !== 'tech-auth') expect(output, `${name} ${file}`).toMatch(/certificate revoked/);
        else expect(run.stdout.trim(), `${name} ${file}: ${run.stderr}`).toBe(`${certPem}: OK`);
        expect(run.status === 0, `${name} ${file}`).toBe(!p.pki?.expired && !(p.pki?.revoked && file !== 'tech-auth'));
      }
    }
  });

  it('applies the delta CRL (-use_deltas): it revokes nothing more', () => {
    const delta = ['-use_deltas', '-CRLfile', pem('crl', 'fort-personnes-delta.crl')];
    const good = pem('x509', 'cards/doctor/auth.der');
    expect(verify(good, ...delta).stdout.trim()).toBe(`${good}: OK`);
    const revoked = verify(pem('x509', 'cards/revoked/auth.der'), ...delta);
    expect(revoked.status).not.toBe(0);
    expect(revoked.stdout + revoked.stderr).toMatch(/certificate revoked/);
  });

  it('has a self-signed root and the FORT PERSONNES intermediate (pathLen 0, keyCertSign + cRLSign)', () => {
    const self = openssl(['verify', '-x509_strict', '-CAfile', rootPem, rootPem]);
    expect(self.stdout.trim(), self.stderr).toBe(`${rootPem}: OK`);
    expect(extensionHeaders(rootText)).toEqual(['X509v3 Basic Constraints (critical)', 'X509v3 Key Usage (critical)', 'X509v3 Subject Key Identifier']);
    expect(rootText).toMatch(/X509v3 Basic Constraints: critical\n\s+CA:TRUE\n/);
    expect(rootText).toMatch(/X509v3 Key Usage: critical\n\s+Certificate Sign, CRL Sign\n/);
    expect(extensionHeaders(interText)).toEqual([
      'X509v3 Basic Constraints (critical)',
      'X509v3 Key Usage (critical)',
      'X509v3 Subject Key Identifier',
      'X509v3 Authority Key Identifier',
    ]);
    expect(interText).toMatch(/X509v3 Basic Constraints: critical\n\s+CA:TRUE, pathlen:0\n/);
    expect(interText).toMatch(/X509v3 Key Usage: critical\n\s+Certificate Sign, CRL Sign\n/);
    expect(keyIdIn(interText, 'X509v3 Authority Key Identifier')).toBe(keyIdIn(rootText, 'X509v3 Subject Key Identifier'));
  });

  it('has an OCSP responder delegated by the intermediate (OCSPSigning, ocsp-nocheck), with its key', () => {
    const responder = new X509Certificate(readFileSync(pkiPath('ocsp-responder.der')));
    expect(responder.checkIssued(intermediate)).toBe(true);
    expect(responder.publicKey.equals(createPublicKey(createPrivateKey(readFileSync(pkiPath('ocsp-responder.key.pem')))))).toBe(true);
    // nocheck: nobody asks for its status, so no CRL here.
    const responderPem = pem('x509', 'ocsp-responder.der');
    const run = openssl(['verify', '-x509_strict', '-purpose', 'ocsphelper', '-CAfile', rootPem, '-untrusted', interPem, '-attime', AT, responderPem]);
    expect(run.stdout.trim(), run.stderr).toBe(`${responderPem}: OK`);
    const out = text('x509', 'ocsp-responder.der');
    expect(extensionHeaders(out)).toEqual([
      'X509v3 Basic Constraints (critical)',
      'X509v3 Key Usage (critical)',
      'X509v3 Subject Key Identifier',
      'X509v3 Authority Key Identifier',
      'X509v3 Extended Key Usage',
      'OCSP No Check',
    ]);
    expect(out).toMatch(/X509v3 Basic Constraints: critical\n\s+CA:FALSE\n/);
    expect(out).toMatch(/X509v3 Key Usage: critical\n\s+Digital Signature\n/);
    expect(out).toMatch(/X509v3 Extended Key Usage: ?\n\s+OCSP Signing\n/);
    expect(keyIdIn(out, 'X509v3 Authority Key Identifier')).toBe(interSki);
  });

  for (const name of profileNames()) {
    it(`profile ${name}: every extension of the card certificates decoded`, () => {
      const p = loadProfile(name);
      for (const file of CARD_CERTS) {
        // ext_parse: an extension openssl has no name for (the ANS one) is shown as parsed ASN.1.
        const out = text('x509', `cards/${name}/${file}.der`, '-certopt', 'ext_parse');
        const has = (re: RegExp): void => expect(out, `${name} ${file}`).toMatch(re);
        expect(extensionHeaders(out), `${name} ${file}`).toEqual([
          'X509v3 Basic Constraints (critical)',
          'X509v3 Key Usage (critical)',
          'X509v3 Subject Key Identifier',
          'X509v3 Authority Key Identifier',
          ...(file === 'sign' ? [] : ['X509v3 Extended Key Usage']),
          'X509v3 Certificate Policies',
          ...(file === 'auth' ? ['X509v3 Subject Alternative Name'] : []),
          'X509v3 CRL Distribution Points',
          'X509v3 Freshest CRL',
          'Authority Information Access',
          '1.2.250.1.71.1.2.99',
        ]);
        expect(out).not.toMatch(/Negative|<Unable|Not Supported|unsupported/i);
        has(/X509v3 Basic Constraints: critical\n\s+CA:FALSE\n/);
        has(
          { auth: /Key Usage: critical\n\s+Digital Signature, Key Encipherment\n/, sign: /Key Usage: critical\n\s+Digital Signature, Non Repudiation\n/, 'tech-auth': /Key Usage: critical\n\s+Digital Signature\n/ }[file],
        );
        if (file === 'auth') has(/Extended Key Usage: ?\n\s+TLS Web Client Authentication, Microsoft Smartcard Login\n/);
        if (file === 'tech-auth') has(/Extended Key Usage: ?\n\s+TLS Web Client Authentication\n/);
        has(file === 'tech-auth' ? /Certificate Policies: ?\n\s+Policy: 1\.2\.250\.1\.213\.1\.7\.2\.1\.1\.1\.9\n/ : /Certificate Policies: ?\n\s+Policy: 1\.2\.250\.1\.213\.1\.7\.2\.1\.1\.1\.1\n/);
        if (file === 'auth') expect(out).toContain(`othername: UPN::${p.holder.idNat}@carte-cps.fr\n`);
        has(/CRL Distribution Points: ?\n\s+Full Name:\n\s+URI:http:\/\/igc-sante\.test\/crl\/fort-personnes\.crl\n\s+URI:ldap:\/\/ldap\.igc-sante\.test\/cn=TEST%20AC%20IGC-SANTE%20FORT%20PERSONNES,[^\n]*\n/);
        has(/Freshest CRL: ?\n\s+Full Name:\n\s+URI:http:\/\/igc-sante\.test\/crl\/fort-personnes-delta\.crl\n/);
        has(/Authority Information Access: ?\n\s+OCSP - URI:http:\/\/igc-sante\.test\/ocsp\n\s+CA Issuers - URI:http:\/\/igc-sante\.test\/ca\/fort-personnes\.cer\n/);
        expect(out).toMatch(new RegExp(`1\\.2\\.250\\.1\\.71\\.1\\.2\\.99: ?\\n.*prim: PRINTABLESTRING +:${p.serial}\\n`));
        expect(keyIdIn(out, 'X509v3 Authority Key Identifier'), `${name} ${file}`).toBe(interSki);
      }
    });
  }

  it('fort-personnes.crl: signed by the intermediate, numbered, scoped, revoking exactly the "revoked" profile\'s auth and sign', () => {
    const signed = openssl(['crl', '-inform', 'DER', '-in', pkiPath('fort-personnes.crl'), '-CAfile', bundle, '-noout']);
    expect(signed.stdout + signed.stderr).toContain('verify OK');
    const out = text('crl', 'fort-personnes.crl');
    expect(out).toMatch(/Version 2 \(0x1\)/);
    expect(out).toMatch(/Last Update: Jun +1 00:00:00 2025 GMT\n\s+Next Update: Jan +1 00:00:00 2044 GMT\n/);
    expect(out).toMatch(/X509v3 CRL Number: ?\n\s+1\n/);
    expect(keyIdIn(out, 'X509v3 Authority Key Identifier')).toBe(interSki);
    expect(out).toMatch(/X509v3 Issuing Distribution Point: critical\n\s+Full Name:\n\s+URI:http:\/\/igc-sante\.test\/crl\/fort-personnes\.crl\n\s+URI:ldap:[^\n]*?\s+Only User Certificates\n/);
    const listed = [...out.matchAll(/Serial Number: ([0-9A-F]+)\n/g)].map((m) => BigInt(`0x${m[1] ?? ''}`));
    const wanted = profileNames()
      .filter((n) => loadProfile(n).pki?.revoked)
      .flatMap((n) => (serials[n] ?? []).slice(0, 2).map((s) => BigInt(`0x${s}`)));
    expect(wanted.length).toBeGreaterThan(0);
    expect(listed.sort()).toEqual(wanted.sort());
    expect(out.match(/CRL Reason Code: ?\n\s+Key Compromise\n/g)).toHaveLength(wanted.length);
  });

  it('fort-personnes-delta.crl: a delta of that CRL (deltaCRLIndicator = its number), same scope, nothing new', () => {
    const signed = openssl(['crl', '-inform', 'DER', '-in', pkiPath('fort-personnes-delta.crl'), '-CAfile', bundle, '-noout']);
    expect(signed.stdout + signed.stderr).toContain('verify OK');
    const out = text('crl', 'fort-personnes-delta.crl');
    const base = text('crl', 'fort-personnes.crl');
    const number = (s: string): number => Number(/X509v3 CRL Number: ?\n\s+(\d+)\n/.exec(s)?.[1]);
    expect(out).toMatch(new RegExp(`X509v3 Delta CRL Indicator: critical\\n\\s+${number(base)}\\n`));
    expect(number(out)).toBeGreaterThan(number(base));
    expect(out).toMatch(/Last Update: Jun +1 00:00:00 2025 GMT\n\s+Next Update: Jan +1 00:00:00 2044 GMT\n/);
    const scope = (s: string): string | undefined => /X509v3 Issuing Distribution Point: critical\n[\s\S]*?Only User Certificates\n/.exec(s)?.[0];
    expect(scope(out)).toBeDefined();
    expect(scope(out)).toBe(scope(base));
    expect(out).toContain('No Revoked Certificates.');
  });

  it('racine.crl: the root\'s, signed by it, numbered, empty', () => {
    const signed = openssl(['crl', '-inform', 'DER', '-in', pkiPath('racine.crl'), '-CAfile', bundle, '-noout']);
    expect(signed.stdout + signed.stderr).toContain('verify OK');
    const out = text('crl', 'racine.crl');
    expect(out).toMatch(/Issuer: [^\n]*CN = TEST AC RACINE IGC-SANTE FORT\n/);
    expect(out).toMatch(/Last Update: Jun +1 00:00:00 2025 GMT\n\s+Next Update: Jan +1 00:00:00 2044 GMT\n/);
    expect(out).toMatch(/X509v3 CRL Number: ?\n\s+1\n/);
    expect(keyIdIn(out, 'X509v3 Authority Key Identifier')).toBe(keyIdIn(rootText, 'X509v3 Subject Key Identifier'));
    expect(out).toContain('No Revoked Certificates.');
  });
});
