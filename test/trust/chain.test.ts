/**
 * validateCertificate judged against openssl: hostile PKIs built with the openssl command line, each case
 * checked both ways (the validator's TrustError code, and `openssl verify -x509_strict -crl_check_all`
 * on the same files). CRLs are given by the caller (`revocation: 'crl'`, `crl.fetch: false`): no network.
 */
import { X509Certificate } from 'node:crypto';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import type { RevocationCache, ValidationOptions, ValidationResult } from '../../pkcs/trust-types.js';
import { validateCertificate } from '../../pkcs/validate.js';
import {
  OID,
  OpensslPki,
  caExtensions,
  freePort,
  leafExtensions,
  opensslText,
  opensslVerify,
  personSubject,
  type Cert,
  type Crl,
  type OracleVerdict,
  type VerifyOracleOptions,
} from '../helpers/openssl-pki.js';
import { refusal } from '../helpers/trust.js';
import { MemoryRevocationCache } from '../../pkcs/revocation.js';

const DAY = 86_400_000;
const NOW = new Date();
const UNKNOWN_CRITICAL = '1.3.6.1.4.1.99999.1.1 = critical,ASN1:NULL';

/** A revocation cache of its own per call, so that no answer leaks from one case into another. */
const freshCache = (): RevocationCache => new MemoryRevocationCache();

/** Every download the validator attempts (there must be none: CRLs are given, crl.fetch is false). */
const downloads: string[] = [];
const offline: typeof fetch = async (input) => {
  downloads.push(input instanceof Request ? input.url : String(input));
  throw new TypeError('no network in the chain tests');
};

let pki: OpensslPki;
// The PKI, built once in beforeAll (RSA keys are the slow part).
let root: Cert, inter: Cert, leaf: Cert;
let rootCrl: Crl, interCrl: Crl;
const c: Record<string, Cert> = {};
const crl: Record<string, Crl> = {};

async function validate(target: Cert | string | Uint8Array, o: Partial<ValidationOptions> = {}): Promise<ValidationResult> {
  return validateCertificate(typeof target === 'string' || target instanceof Uint8Array ? target : target.der, {
    trustAnchors: [root.der],
    intermediates: [inter.der],
    crls: [rootCrl.der, interCrl.der],
    now: NOW,
    revocation: 'crl',
    crl: { fetch: false },
    cache: freshCache(),
    fetch: offline,
    ...o,
  });
}


function oracle(target: Cert, files: { trusted?: Cert[]; untrusted?: Cert[]; crls?: Crl[] } = {}, o: Partial<VerifyOracleOptions> = {}): OracleVerdict {
  return opensslVerify(
    { leaf: target, trusted: files.trusted ?? [root], untrusted: files.untrusted ?? [inter], crls: files.crls ?? [rootCrl, interCrl] },
    { crlCheckAll: true, attime: NOW, ...o },
  );
}

function expectOpensslAccepts(verdict: OracleVerdict): void {
  expect(verdict.ok, verdict.output).toBe(true);
}

/** openssl refused, for the reason the case is about. */
function expectOpensslRefuses(verdict: OracleVerdict, reason: RegExp): void {
  expect(verdict.ok, verdict.output).toBe(false);
  expect(verdict.errors.join('\n')).toMatch(reason);
}

/** RDNs most specific first (RFC 4514 order), each a sorted list of TYPE=value; type aliases folded. */
function rdns(dn: string): string[][] {
  const alias: Record<string, string> = { GIVENNAME: 'GN', '2.5.4.42': 'GN', SURNAME: 'SN', '2.5.4.4': 'SN', '2.5.4.12': 'TITLE', COMMONNAME: 'CN', '2.5.4.3': 'CN' };
  return dn.split(/(?<!\\),/).map((rdn) =>
    rdn
      .split(/(?<!\\)\+/)
      .map((ava) => {
        const i = ava.indexOf('=');
        const type = ava.slice(0, i).toUpperCase();
        return `${alias[type] ?? type}=${ava.slice(i + 1)}`;
      })
      .sort(),
  );
}

const fingerprints = (certs: readonly (Cert | X509Certificate)[]): string[] =>
  certs.map((x) => (x instanceof X509Certificate ? x : new X509Certificate(x.der)).fingerprint256);

beforeAll(async () => {
  pki = OpensslPki.create('cpsd-chain-');
  // Nothing listens there: the CDPs are real-looking URLs that must never be fetched in this file.
  const dead = `http://127.0.0.1:${await freePort()}`;
  const k = await pki.makeKeys([
    'root', 'inter', 'leaf', 'revokedInter', 'expiredInter', 'futureInter', 'pathLen0', 'pathLenSub', 'constrained',
    'criticalInter', 'noCertSign', 'notCa', 'noCrlSign', 'otherRoot', 'otherInter', 'impostorRoot', 'impostorInter',
    { name: 'weak', bits: 1024 },
  ]);
  const key = (name: string) => k[name] as NonNullable<(typeof k)[string]>;
  const ca = (issuer: Cert | 'self', name: string, cn: string, o: NonNullable<Parameters<typeof caExtensions>[0]> & { notBefore?: Date; notAfter?: Date; sections?: string } = {}): Cert =>
    pki.issue(issuer, {
      name,
      subject: `/C=FR/O=IGC-SANTE TEST/OU=0002 187512751/CN=${cn}`,
      key: key(name),
      extensions: caExtensions({ crl: `${dead}/${name}-issuer.crl`, ...o }),
      ...(o.sections ? { sections: o.sections } : {}),
      ...(o.notBefore ? { notBefore: o.notBefore } : {}),
      ...(o.notAfter ? { notAfter: o.notAfter } : {}),
    });
  const person = (issuer: Cert, name: string, id: string, o: NonNullable<Parameters<typeof leafExtensions>[0]> & { md?: string; keyName?: string; highBit?: boolean; notBefore?: Date; notAfter?: Date; org?: string } = {}): Cert =>
    pki.issue(issuer, {
      name,
      subject: personSubject({ id, ...(o.org ? { org: o.org } : {}) }),
      key: key(o.keyName ?? 'leaf'),
      extensions: leafExtensions({ crl: `${dead}/${issuer.name}.crl`, ocsp: dead, ...o }),
      ...(o.md ? { md: o.md } : {}),
      ...(o.highBit !== undefined ? { highBit: o.highBit } : {}),
      ...(o.notBefore ? { notBefore: o.notBefore } : {}),
      ...(o.notAfter ? { notAfter: o.notAfter } : {}),
    });

  root = ca('self', 'root', 'TEST AC RACINE IGC-SANTE');
  inter = ca(root, 'inter', 'TEST AC IGC-SANTE FORT PERSONNES');
  leaf = person(inter, 'leaf', '899700012349', { highBit: false });
  c.revoked = person(inter, 'revoked', '899700099991', { highBit: true });
  c.expired = person(inter, 'expired', '899700099992', { notBefore: new Date(NOW.getTime() - 400 * DAY), notAfter: new Date(NOW.getTime() - DAY) });
  c.critical = person(inter, 'critical', '899700099993', { extra: UNKNOWN_CRITICAL });
  c.md5 = person(inter, 'md5', '899700099994', { md: 'md5' });
  c.sha1 = person(inter, 'sha1', '899700099995', { md: 'sha1' });
  c.weak = person(inter, 'weak', '899700099996', { keyName: 'weak' });
  c.noKeyUsage = person(inter, 'noKeyUsage', '899700099997', { keyUsage: null });
  c.nonRepudiation = person(inter, 'nonRepudiation', '899700099998', { keyUsage: 'critical,nonRepudiation' });
  c.email = person(inter, 'email', '899700099999', { extendedKeyUsage: 'emailProtection' });
  // IGC-Santé authentication certificates carry clientAuth: "any purpose" alone does not make one.
  c.anyEku = person(inter, 'anyEku', '899700099990', { extendedKeyUsage: 'anyExtendedKeyUsage' });
  c.otherPolicy = person(inter, 'otherPolicy', '899700088881', { policies: '1.2.3.4.5' });
  // One digit past ANS's arc: a prefix test without the trailing dot would let it in.
  c.arcLookalike = person(inter, 'arcLookalike', '899700088882', { policies: '1.2.250.1.213.10.1' });
  c.noPolicy = person(inter, 'noPolicy', '899700088883', { policies: null });
  c.contactless = person(inter, 'contactless', '899700012349', { policies: OID.contactlessPolicy, extendedKeyUsage: OID.clientAuth });
  c.bothPolicies = person(inter, 'bothPolicies', '899700088884', { policies: `${OID.authPolicy},${OID.contactlessPolicy}` });
  // A self-signed certificate that looks like a person's, chaining to nothing the relying party trusts.
  c.selfSigned = pki.issue('self', { name: 'selfSigned', subject: personSubject({ id: '899700077771' }), key: key('leaf'), extensions: leafExtensions() });

  c.revokedInter = ca(root, 'revokedInter', 'TEST AC REVOQUEE');
  c.underRevoked = person(c.revokedInter, 'underRevoked', '899700066661');
  c.expiredInter = ca(root, 'expiredInter', 'TEST AC EXPIREE', { notBefore: new Date(NOW.getTime() - 800 * DAY), notAfter: new Date(NOW.getTime() - 2 * DAY) });
  c.underExpired = person(c.expiredInter, 'underExpired', '899700066662');
  c.futureInter = ca(root, 'futureInter', 'TEST AC FUTURE', { notBefore: new Date(NOW.getTime() + 10 * DAY), notAfter: new Date(NOW.getTime() + 800 * DAY) });
  c.underFuture = person(c.futureInter, 'underFuture', '899700066663');
  // pathlen:0 on an intermediate, which then issues another CA: RFC 5280 §6.1.4 (l)/(m).
  c.pathLen0 = ca(root, 'pathLen0', 'TEST AC PATHLEN 0', { pathLen: 0 });
  c.pathLenSub = ca(c.pathLen0, 'pathLenSub', 'TEST AC SOUS PATHLEN 0');
  c.underPathLen = person(c.pathLenSub, 'underPathLen', '899700066664');
  c.directUnderPathLen0 = person(c.pathLen0, 'directUnderPathLen0', '899700066671');
  c.constrained = ca(root, 'constrained', 'TEST AC CONTRAINTE', {
    extra: 'nameConstraints = critical,permitted;dirName:nc_dn',
    sections: '[ nc_dn ]\nC = FR\nO = IGC-SANTE TEST',
  });
  c.insideConstraints = person(c.constrained, 'insideConstraints', '899700066665');
  c.outsideConstraints = person(c.constrained, 'outsideConstraints', '899700066666', { org: 'AUTRE ORGANISATION' });
  c.criticalInter = ca(root, 'criticalInter', 'TEST AC EXTENSION CRITIQUE', { extra: UNKNOWN_CRITICAL });
  c.underCritical = person(c.criticalInter, 'underCritical', '899700066667');
  c.noCertSign = ca(root, 'noCertSign', 'TEST AC SANS KEYCERTSIGN', { keyUsage: 'critical,digitalSignature,cRLSign' });
  c.underNoCertSign = person(c.noCertSign, 'underNoCertSign', '899700066668');
  c.notCa = ca(root, 'notCa', 'TEST AC CA FALSE', { basicConstraints: 'critical,CA:FALSE' });
  c.underNotCa = person(c.notCa, 'underNotCa', '899700066669');
  c.noCrlSign = ca(root, 'noCrlSign', 'TEST AC SANS CRLSIGN', { keyUsage: 'critical,keyCertSign' });
  c.underNoCrlSign = person(c.noCrlSign, 'underNoCrlSign', '899700066670');

  // Another PKI, and a look-alike of ours: same names as root and inter, other keys.
  c.otherRoot = pki.issue('self', { name: 'otherRoot', subject: '/C=FR/O=AUTRE PKI/CN=AUTRE RACINE', key: key('otherRoot'), extensions: caExtensions() });
  c.otherInter = pki.issue(c.otherRoot, { name: 'otherInter', subject: '/C=FR/O=AUTRE PKI/CN=AUTRE AC', key: key('otherInter'), extensions: caExtensions() });
  c.otherLeaf = person(c.otherInter, 'otherLeaf', '899700055551');
  c.impostorRoot = pki.issue('self', { name: 'impostorRoot', subject: root.subject, key: key('impostorRoot'), extensions: caExtensions() });
  c.impostorInter = pki.issue(c.impostorRoot, { name: 'impostorInter', subject: inter.subject, key: key('impostorInter'), extensions: caExtensions() });
  c.impostorLeaf = person(c.impostorInter, 'impostorLeaf', '899700055552');

  // CRLs. The root's clean CRL first, before the root's database gets revocations.
  rootCrl = pki.crl(root, { name: 'root' });
  pki.revoke(inter, c.revoked);
  interCrl = pki.crl(inter, { name: 'inter' });
  for (const name of ['revokedInter', 'expiredInter', 'futureInter', 'pathLen0', 'pathLenSub', 'constrained', 'criticalInter', 'noCertSign', 'notCa', 'noCrlSign', 'otherRoot', 'otherInter']) {
    crl[name] = pki.crl(c[name] as Cert, { name, ...(name === 'expiredInter' ? { lastUpdate: new Date(NOW.getTime() - 3 * DAY), nextUpdate: new Date(NOW.getTime() + 30 * DAY) } : {}) });
  }
  crl.criticalExtension = pki.crl(inter, { name: 'inter-critical', extensions: UNKNOWN_CRITICAL.replace('99999.1.1', '99999.2.1') });
  // Issuing distribution point scopes (RFC 5280 §5.2.5): an ARL (CA certificates only), and a user-only CRL.
  crl.caOnly = pki.crl(inter, { name: 'inter-ca-only', extensions: 'issuingDistributionPoint = critical,@idp', sections: `[ idp ]\nfullname = URI:${dead}/inter-arl.crl\nonlyCA = TRUE` });
  crl.userOnly = pki.crl(inter, { name: 'inter-user-only', extensions: 'issuingDistributionPoint = critical,@idp', sections: `[ idp ]\nfullname = URI:${dead}/inter.crl\nonlyuser = TRUE` });
  crl.stale = pki.crl(inter, { name: 'inter-stale', lastUpdate: new Date(NOW.getTime() - 10 * DAY), nextUpdate: new Date(NOW.getTime() - DAY) });
  crl.future = pki.crl(inter, { name: 'inter-future', lastUpdate: new Date(NOW.getTime() + DAY), nextUpdate: new Date(NOW.getTime() + 8 * DAY) });
  // A CRL with inter's name, signed by the look-alike's key, revoking nothing.
  crl.forged = pki.crl(c.impostorInter, { name: 'forged' });
  pki.revoke(root, c.revokedInter);
  crl.rootRevokingInter = pki.crl(root, { name: 'root-revoking-inter' });
  // The root revokes a certificate of its own whose serial is the leaf's: serials are unique per issuer only.
  c.twin = pki.issue(root, { name: 'twin', subject: '/C=FR/O=IGC-SANTE TEST/CN=TEST SERIE JUMELLE', key: key('leaf'), serial: leaf.serial, extensions: leafExtensions() });
  pki.revoke(root, c.twin);
  crl.rootTwin = pki.crl(root, { name: 'root-twin' });
});

afterAll(() => pki?.remove());

beforeEach(() => {
  downloads.length = 0;
});

describe('validateCertificate (CRLs given, no network)', () => {
  describe('a good chain', () => {
    it('is accepted by openssl and by the validator, path leaf → intermediate → anchor', async () => {
      expectOpensslAccepts(oracle(leaf));
      const result = await validate(leaf);
      expect(fingerprints(result.path)).toEqual(fingerprints([leaf, inter, root]));
    });

    it('gives assurance card+pin for the PIN-protected authentication policy', async () => {
      const result = await validate(leaf);
      expect(result.assurance).toBe('card+pin');
    });

    it('returns the holder from the leaf', async () => {
      const { holder } = await validate(leaf);
      expect(holder).toMatchObject({ nationalId: '899700012349', idKind: 'RPPS', rpps: '99700012349', surname: 'MEDECIN-TEST', givenName: 'JEANNE' });
      expect(holder.profession?.label).toBe('Médecin');
      expect(holder.certificateSerial.toUpperCase().replace(/^(00)+/, '')).toBe(leaf.serial);
      expect(new Date(holder.notAfter).getTime()).toBe(Math.floor(leaf.notAfter.getTime() / 1000) * 1000);
    });

    it('reports one CRL check per certificate but the anchor, from the given CRLs', async () => {
      const { revocation } = await validate(leaf);
      expect(revocation).toHaveLength(2);
      for (const r of revocation) expect(r).toMatchObject({ method: 'crl', source: 'given' });
      expect(revocation.map((r) => r.certificate).join('\n')).toMatch(/CN=899700012349/);
      expect(revocation.map((r) => r.certificate).join('\n')).toMatch(/CN=TEST AC IGC-SANTE FORT PERSONNES/);
    });

    it('never downloads anything with crl.fetch false and revocation crl', async () => {
      await validate(leaf);
      expect(downloads).toEqual([]);
    });

    it('takes PEM text and X509Certificate objects as well as DER', async () => {
      const result = await validate(leaf.pem, {
        trustAnchors: [new X509Certificate(root.der)],
        intermediates: [inter.pem],
        crls: [rootCrl.pem, interCrl.pem],
      });
      expect(fingerprints(result.path)).toEqual(fingerprints([leaf, inter, root]));
    });

    it('finds the path among unrelated intermediates given in any order', async () => {
      const result = await validate(leaf, { intermediates: [c.otherRoot as Cert, c.otherInter as Cert, c.criticalInter as Cert, inter].map((x) => x.der) });
      expect(fingerprints(result.path)).toEqual(fingerprints([leaf, inter, root]));
    });
  });

  describe('revocation by CRL', () => {
    it('refuses a leaf revoked by its issuer, its serial having the high bit set (CERT_REVOKED)', async () => {
      const revoked = c.revoked as Cert;
      // The DER INTEGER needs a leading 00: 17 octets for a 16-byte serial.
      expect(Number.parseInt(revoked.serial.slice(0, 2), 16)).toBeGreaterThanOrEqual(0x80);
      expectOpensslRefuses(oracle(revoked), /certificate revoked/);
      const error = await refusal(() => validate(revoked));
      expect(error.code).toBe('CERT_REVOKED');
      expect(error.certificate).toContain('CN=899700099991');
    });

    // The contract: "Subject DN of the certificate the rule failed on (RFC 4514 string)"; openssl's
    // -nameopt RFC2253 prints the same format (RFC 4514 obsoletes RFC 2253 without changing it).
    it('names the refused certificate by its RFC 4514 subject, most specific RDN first', async () => {
      const revoked = c.revoked as Cert;
      const expected = opensslText(['x509', '-in', revoked.pemPath, '-noout', '-subject', '-nameopt', 'RFC2253,-esc_msb']).trim().replace(/^subject=/, '');
      const error = await refusal(() => validate(revoked));
      expect(rdns(error.certificate ?? '')).toEqual(rdns(expected));
    });

    it('refuses a leaf under a revoked intermediate, naming the intermediate (CERT_REVOKED)', async () => {
      const files = { untrusted: [c.revokedInter as Cert], crls: [crl.rootRevokingInter as Crl, crl.revokedInter as Crl] };
      expectOpensslRefuses(oracle(c.underRevoked as Cert, files), /at 1 depth lookup: certificate revoked/);
      const error = await refusal(() => validate(c.underRevoked as Cert, { intermediates: [(c.revokedInter as Cert).der], crls: [(crl.rootRevokingInter as Crl).der, (crl.revokedInter as Crl).der] }));
      expect(error.code).toBe('CERT_REVOKED');
      expect(error.certificate).toContain('CN=TEST AC REVOQUEE');
    });

    // RFC 5280 §6.3.3 (a): a CRL past its nextUpdate is not used; with no other, the status is UNDETERMINED.
    // The CRL itself is genuine and well-formed, so this is REVOCATION_UNKNOWN, not CRL_INVALID.
    it('refuses when the issuer CRL is stale, nextUpdate in the past (REVOCATION_UNKNOWN)', async () => {
      expectOpensslRefuses(oracle(leaf, { crls: [rootCrl, crl.stale as Crl] }), /CRL has expired/);
      const error = await refusal(() => validate(leaf, { crls: [rootCrl.der, (crl.stale as Crl).der] }));
      expect(error.code).toBe('REVOCATION_UNKNOWN');
      expect(error.certificate).toContain('CN=899700012349');
    });

    // Same reasoning: a CRL that is not valid yet says nothing about now.
    it('refuses when the issuer CRL has thisUpdate in the future (REVOCATION_UNKNOWN)', async () => {
      expectOpensslRefuses(oracle(leaf, { crls: [rootCrl, crl.future as Crl] }), /CRL is not yet valid/);
      const error = await refusal(() => validate(leaf, { crls: [rootCrl.der, (crl.future as Crl).der] }));
      expect(error.code).toBe('REVOCATION_UNKNOWN');
    });

    it('refuses when only the root CRL is given, not the leaf issuer one (REVOCATION_UNKNOWN)', async () => {
      expectOpensslRefuses(oracle(leaf, { crls: [rootCrl] }), /at 0 depth lookup: unable to get certificate CRL/);
      const error = await refusal(() => validate(leaf, { crls: [rootCrl.der] }));
      expect(error.code).toBe('REVOCATION_UNKNOWN');
      expect(error.certificate).toContain('CN=899700012349');
    });

    it('refuses when only the leaf issuer CRL is given, not the root one (REVOCATION_UNKNOWN)', async () => {
      expectOpensslRefuses(oracle(leaf, { crls: [interCrl] }), /at 1 depth lookup: unable to get certificate CRL/);
      const error = await refusal(() => validate(leaf, { crls: [interCrl.der] }));
      expect(error.code).toBe('REVOCATION_UNKNOWN');
      expect(error.certificate).toContain('CN=TEST AC IGC-SANTE FORT PERSONNES');
    });

    it('accepts with an unrelated CRL given beside the right ones', async () => {
      const crls = [crl.otherInter as Crl, rootCrl, crl.otherRoot as Crl, interCrl];
      expectOpensslAccepts(oracle(leaf, { crls }));
      await expect(validate(leaf, { crls: crls.map((x) => x.der) })).resolves.toBeDefined();
    });

    it('accepts a leaf whose serial the root CRL lists: serials are per issuer', async () => {
      expect((c.twin as Cert).serial).toBe(leaf.serial);
      expectOpensslAccepts(oracle(leaf, { crls: [crl.rootTwin as Crl, interCrl] }));
      await expect(validate(leaf, { crls: [(crl.rootTwin as Crl).der, interCrl.der] })).resolves.toBeDefined();
    });

    // The contract names no code for a CRL that does not verify; REVOCATION_UNKNOWN (ignored, as unrelated
    // CRLs are) and CRL_INVALID (refused) both keep it from vouching for the leaf.
    it('does not take a CRL with the issuer name but another key as the issuer CRL', async () => {
      expectOpensslRefuses(oracle(leaf, { crls: [rootCrl, crl.forged as Crl] }), /CRL signature failure|unable to get certificate CRL/);
      const error = await refusal(() => validate(leaf, { crls: [rootCrl.der, (crl.forged as Crl).der] }));
      expect(['REVOCATION_UNKNOWN', 'CRL_INVALID']).toContain(error.code);
    });

    // RFC 5280 §6.3.3 (f): the CRL issuer must have cRLSign.
    it('does not take a CRL signed by an issuer without cRLSign', async () => {
      const files = { untrusted: [c.noCrlSign as Cert], crls: [rootCrl, crl.noCrlSign as Crl] };
      expectOpensslRefuses(oracle(c.underNoCrlSign as Cert, files), /key usage does not include CRL signing/);
      const error = await refusal(() => validate(c.underNoCrlSign as Cert, { intermediates: [(c.noCrlSign as Cert).der], crls: [rootCrl.der, (crl.noCrlSign as Crl).der] }));
      expect(['REVOCATION_UNKNOWN', 'CRL_INVALID']).toContain(error.code);
    });

    // RFC 5280 §5.2: a CRL with a critical extension the application does not process must not be used.
    it('does not use a CRL with an unknown critical extension', async () => {
      expectOpensslRefuses(oracle(leaf, { crls: [rootCrl, crl.criticalExtension as Crl] }), /unhandled critical CRL extension/);
      const error = await refusal(() => validate(leaf, { crls: [rootCrl.der, (crl.criticalExtension as Crl).der] }));
      expect(['REVOCATION_UNKNOWN', 'CRL_INVALID']).toContain(error.code);
    });

    // RFC 5280 §6.3.3 (b)(2)(ii): a CRL whose issuingDistributionPoint says onlyContainsCACerts does not
    // cover an end-entity certificate.
    it('does not take an ARL (onlyContainsCACerts) as the leaf CRL', async () => {
      expectOpensslRefuses(oracle(leaf, { crls: [rootCrl, crl.caOnly as Crl] }), /different CRL scope/);
      const error = await refusal(() => validate(leaf, { crls: [rootCrl.der, (crl.caOnly as Crl).der] }));
      expect(['REVOCATION_UNKNOWN', 'CRL_INVALID']).toContain(error.code);
    });

    it('accepts a CRL whose issuingDistributionPoint covers user certificates only', async () => {
      expectOpensslAccepts(oracle(leaf, { crls: [rootCrl, crl.userOnly as Crl] }));
      await expect(validate(leaf, { crls: [rootCrl.der, (crl.userOnly as Crl).der] })).resolves.toBeDefined();
    });
  });

  describe('validity periods', () => {
    it('refuses an expired intermediate, naming it (CERT_EXPIRED)', async () => {
      const files = { untrusted: [c.expiredInter as Cert], crls: [rootCrl, crl.expiredInter as Crl] };
      expectOpensslRefuses(oracle(c.underExpired as Cert, files), /at 1 depth lookup: certificate has expired/);
      const error = await refusal(() => validate(c.underExpired as Cert, { intermediates: [(c.expiredInter as Cert).der], crls: [rootCrl.der, (crl.expiredInter as Crl).der] }));
      expect(error.code).toBe('CERT_EXPIRED');
      expect(error.certificate).toContain('CN=TEST AC EXPIREE');
    });

    it('refuses a not-yet-valid intermediate, naming it (CERT_NOT_YET_VALID)', async () => {
      const files = { untrusted: [c.futureInter as Cert], crls: [rootCrl, crl.futureInter as Crl] };
      expectOpensslRefuses(oracle(c.underFuture as Cert, files), /at 1 depth lookup: certificate is not yet valid/);
      const error = await refusal(() => validate(c.underFuture as Cert, { intermediates: [(c.futureInter as Cert).der], crls: [rootCrl.der, (crl.futureInter as Crl).der] }));
      expect(error.code).toBe('CERT_NOT_YET_VALID');
      expect(error.certificate).toContain('CN=TEST AC FUTURE');
    });

    it('refuses an expired leaf (CERT_EXPIRED)', async () => {
      expectOpensslRefuses(oracle(c.expired as Cert), /at 0 depth lookup: certificate has expired/);
      const error = await refusal(() => validate(c.expired as Cert));
      expect(error.code).toBe('CERT_EXPIRED');
      expect(error.certificate).toContain('CN=899700099992');
    });
  });

  describe('CA constraints', () => {
    it('refuses a path longer than an intermediate pathLenConstraint allows (CERT_UNTRUSTED, pathLenConstraint)', async () => {
      const cas = [c.pathLen0 as Cert, c.pathLenSub as Cert];
      const crls = [rootCrl, crl.pathLen0 as Crl, crl.pathLenSub as Crl];
      expectOpensslRefuses(oracle(c.underPathLen as Cert, { untrusted: cas, crls }), /path length constraint exceeded/);
      const error = await refusal(() => validate(c.underPathLen as Cert, { intermediates: cas.map((x) => x.der), crls: crls.map((x) => x.der) }));
      expect(error).toMatchObject({ code: 'CERT_UNTRUSTED', rule: 'pathLenConstraint' });
    });

    it('accepts a leaf issued directly by a pathLenConstraint 0 intermediate', async () => {
      const files = { untrusted: [c.pathLen0 as Cert], crls: [rootCrl, crl.pathLen0 as Crl] };
      expectOpensslAccepts(oracle(c.directUnderPathLen0 as Cert, files));
      await expect(validate(c.directUnderPathLen0 as Cert, { intermediates: [(c.pathLen0 as Cert).der], crls: [rootCrl.der, (crl.pathLen0 as Crl).der] })).resolves.toBeDefined();
    });

    it('accepts a leaf inside the intermediate name constraints', async () => {
      const files = { untrusted: [c.constrained as Cert], crls: [rootCrl, crl.constrained as Crl] };
      expectOpensslAccepts(oracle(c.insideConstraints as Cert, files));
      await expect(validate(c.insideConstraints as Cert, { intermediates: [(c.constrained as Cert).der], crls: [rootCrl.der, (crl.constrained as Crl).der] })).resolves.toBeDefined();
    });

    it('refuses a leaf outside the intermediate name constraints (CERT_UNTRUSTED)', async () => {
      const files = { untrusted: [c.constrained as Cert], crls: [rootCrl, crl.constrained as Crl] };
      expectOpensslRefuses(oracle(c.outsideConstraints as Cert, files), /permitted subtree violation/);
      const error = await refusal(() => validate(c.outsideConstraints as Cert, { intermediates: [(c.constrained as Cert).der], crls: [rootCrl.der, (crl.constrained as Crl).der] }));
      expect(error.code).toBe('CERT_UNTRUSTED');
    });

    // RFC 5280 §6.1.4 (o) / §6.1.5 (f): a well-formed certificate with a critical extension the validator
    // does not process is a path failure, not a malformed certificate.
    it('refuses a leaf with an unknown critical extension (CERT_UNTRUSTED)', async () => {
      expectOpensslRefuses(oracle(c.critical as Cert), /unhandled critical extension/);
      const error = await refusal(() => validate(c.critical as Cert));
      expect(error.code).toBe('CERT_UNTRUSTED');
      expect(error.certificate).toContain('CN=899700099993');
    });

    it('refuses an intermediate with an unknown critical extension, naming it (CERT_UNTRUSTED)', async () => {
      const files = { untrusted: [c.criticalInter as Cert], crls: [rootCrl, crl.criticalInter as Crl] };
      expectOpensslRefuses(oracle(c.underCritical as Cert, files), /at 1 depth lookup: unhandled critical extension/);
      const error = await refusal(() => validate(c.underCritical as Cert, { intermediates: [(c.criticalInter as Cert).der], crls: [rootCrl.der, (crl.criticalInter as Crl).der] }));
      expect(error.code).toBe('CERT_UNTRUSTED');
      expect(error.certificate).toContain('CN=TEST AC EXTENSION CRITIQUE');
    });

    it('refuses a leaf issued by an intermediate without keyCertSign (CERT_UNTRUSTED)', async () => {
      const files = { untrusted: [c.noCertSign as Cert], crls: [rootCrl, crl.noCertSign as Crl] };
      expectOpensslRefuses(oracle(c.underNoCertSign as Cert, files), /key usage does not include certificate signing/);
      const error = await refusal(() => validate(c.underNoCertSign as Cert, { intermediates: [(c.noCertSign as Cert).der], crls: [rootCrl.der, (crl.noCertSign as Crl).der] }));
      expect(error.code).toBe('CERT_UNTRUSTED');
    });

    it('refuses a leaf issued by a CA:FALSE intermediate (CERT_UNTRUSTED)', async () => {
      const files = { untrusted: [c.notCa as Cert], crls: [rootCrl, crl.notCa as Crl] };
      expectOpensslRefuses(oracle(c.underNotCa as Cert, files), /invalid CA certificate/);
      const error = await refusal(() => validate(c.underNotCa as Cert, { intermediates: [(c.notCa as Cert).der], crls: [rootCrl.der, (crl.notCa as Crl).der] }));
      expect(error.code).toBe('CERT_UNTRUSTED');
    });
  });

  // openssl's -auth_level stands in for the algorithm policy: level 1 refuses MD5 and SHA-1 signatures
  // (under 80 bits), level 2 also RSA keys under 2048 bits (112 bits); level 0 accepts everything.
  describe('algorithms', () => {
    it('refuses an MD5-signed leaf (CERT_ALGORITHM)', async () => {
      expectOpensslRefuses(oracle(c.md5 as Cert, {}, { authLevel: 2 }), /digest algorithm too weak/);
      const error = await refusal(() => validate(c.md5 as Cert));
      expect(error.code).toBe('CERT_ALGORITHM');
    });

    it('refuses an MD5-signed leaf even with allowSha1 (CERT_ALGORITHM)', async () => {
      const error = await refusal(() => validate(c.md5 as Cert, { allowSha1: true }));
      expect(error.code).toBe('CERT_ALGORITHM');
    });

    it('refuses a SHA-1-signed leaf by default (CERT_ALGORITHM)', async () => {
      expectOpensslRefuses(oracle(c.sha1 as Cert, {}, { authLevel: 2 }), /digest algorithm too weak/);
      const error = await refusal(() => validate(c.sha1 as Cert));
      expect(error.code).toBe('CERT_ALGORITHM');
    });

    it('accepts a SHA-1-signed leaf with allowSha1', async () => {
      expectOpensslAccepts(oracle(c.sha1 as Cert, {}, { authLevel: 0 }));
      await expect(validate(c.sha1 as Cert, { allowSha1: true })).resolves.toBeDefined();
    });

    it('refuses an RSA-1024 leaf by default (CERT_ALGORITHM)', async () => {
      expectOpensslRefuses(oracle(c.weak as Cert, {}, { authLevel: 2 }), /key too weak/);
      const error = await refusal(() => validate(c.weak as Cert));
      expect(error.code).toBe('CERT_ALGORITHM');
    });

    it('accepts an RSA-1024 leaf with minRsaBits 1024', async () => {
      expectOpensslAccepts(oracle(c.weak as Cert, {}, { authLevel: 1 }));
      await expect(validate(c.weak as Cert, { minRsaBits: 1024 })).resolves.toBeDefined();
    });

    it('accepts the good chain under the algorithm policy openssl applies at level 2', () => {
      expectOpensslAccepts(oracle(leaf, {}, { authLevel: 2 }));
    });
  });

  // openssl -purpose sslclient: EKU clientAuth, keyUsage digitalSignature when keyUsage is present.
  // DER is one encoding: a certificate is exactly its Certificate SEQUENCE. Bytes after it (what a parser
  // that stops at the first object lets through) make the input something else than what was signed.
  describe('encoding', () => {
    it('refuses a leaf with bytes after its DER (CERT_MALFORMED); the same leaf without them is accepted', async () => {
      expectOpensslAccepts(oracle(leaf));
      await expect(validate(leaf)).resolves.toBeDefined();
      for (const tail of [[0x00], [0x00, 0x00], [0x05, 0x00], [0x30, 0x00]]) {
        const error = await refusal(() => validate(new Uint8Array([...leaf.der, ...tail])));
        expect(error.code, JSON.stringify(tail)).toBe('CERT_MALFORMED');
      }
    });

    it('refuses a trust anchor with bytes after its DER (CERT_MALFORMED)', async () => {
      const error = await refusal(() => validate(leaf, { trustAnchors: [new Uint8Array([...root.der, 0x00])] }));
      expect(error.code).toBe('CERT_MALFORMED');
    });
  });

  describe('purpose', () => {
    // RFC 5280 §4.2.1.3 lets a certificate without keyUsage be used for anything, and openssl accepts it;
    // the IGC-Santé profile always marks an authentication key digitalSignature, and the contract's
    // 'authentication' purpose asks for digitalSignature: a leaf that does not say so is refused.
    it('refuses a leaf without keyUsage (CERT_WRONG_PURPOSE), which openssl accepts', async () => {
      expectOpensslAccepts(oracle(c.noKeyUsage as Cert, {}, { purpose: 'sslclient' }));
      const error = await refusal(() => validate(c.noKeyUsage as Cert));
      expect(error.code).toBe('CERT_WRONG_PURPOSE');
    });

    it("accepts a leaf without keyUsage with purpose 'any'", async () => {
      await expect(validate(c.noKeyUsage as Cert, { purpose: 'any' })).resolves.toBeDefined();
    });

    it('refuses a nonRepudiation-only leaf, a signature certificate (CERT_WRONG_PURPOSE)', async () => {
      expectOpensslRefuses(oracle(c.nonRepudiation as Cert, {}, { purpose: 'sslclient' }), /unsuitable certificate purpose/);
      const error = await refusal(() => validate(c.nonRepudiation as Cert));
      expect(error.code).toBe('CERT_WRONG_PURPOSE');
    });

    it('refuses a leaf whose only EKU is emailProtection (CERT_WRONG_PURPOSE)', async () => {
      expectOpensslRefuses(oracle(c.email as Cert, {}, { purpose: 'sslclient' }), /unsuitable certificate purpose/);
      const error = await refusal(() => validate(c.email as Cert));
      expect(error.code).toBe('CERT_WRONG_PURPOSE');
    });

    it('refuses a leaf whose only EKU is anyExtendedKeyUsage (CERT_WRONG_PURPOSE), as openssl does', async () => {
      expectOpensslRefuses(oracle(c.anyEku as Cert, {}, { purpose: 'sslclient' }), /unsuitable certificate purpose/);
      const error = await refusal(() => validate(c.anyEku as Cert));
      expect(error.code).toBe('CERT_WRONG_PURPOSE');
    });

    it('accepts the good leaf for client authentication', () => {
      expectOpensslAccepts(oracle(leaf, {}, { purpose: 'sslclient' }));
    });
  });

  // openssl -policy <oid> -explicit_policy: the leaf must carry that policy (every CA carries anyPolicy).
  describe('policies', () => {
    it('refuses a leaf whose policy is outside the IGC-Santé arc (CERT_POLICY)', async () => {
      expectOpensslRefuses(oracle(c.otherPolicy as Cert, {}, { policy: OID.authPolicy }), /no explicit policy/);
      const error = await refusal(() => validate(c.otherPolicy as Cert));
      expect(error.code).toBe('CERT_POLICY');
    });

    it('refuses a policy that only looks like it is under the arc, 1.2.250.1.213.10.1 (CERT_POLICY)', async () => {
      const error = await refusal(() => validate(c.arcLookalike as Cert));
      expect(error.code).toBe('CERT_POLICY');
    });

    it('refuses a leaf without certificatePolicies (CERT_POLICY)', async () => {
      expectOpensslRefuses(oracle(c.noPolicy as Cert, {}, { policy: OID.authPolicy }), /no explicit policy/);
      const error = await refusal(() => validate(c.noPolicy as Cert));
      expect(error.code).toBe('CERT_POLICY');
    });

    it('refuses the good leaf when options.policies lists only another policy (CERT_POLICY)', async () => {
      expectOpensslRefuses(oracle(leaf, {}, { policy: '1.2.250.1.213.1.7.2.1.1.1.2' }), /no explicit policy/);
      const error = await refusal(() => validate(leaf, { policies: ['1.2.250.1.213.1.7.2.1.1.1.2'] }));
      expect(error.code).toBe('CERT_POLICY');
    });

    it('accepts the good leaf when options.policies lists its exact OID', async () => {
      expectOpensslAccepts(oracle(leaf, {}, { policy: OID.authPolicy }));
      await expect(validate(leaf, { policies: [OID.authPolicy] })).resolves.toBeDefined();
    });

    it('refuses the contactless technical certificate by default (CERT_POLICY)', async () => {
      const error = await refusal(() => validate(c.contactless as Cert));
      expect(error.code).toBe('CERT_POLICY');
    });

    it("accepts the contactless technical certificate with allowContactless, assurance 'card'", async () => {
      expectOpensslAccepts(oracle(c.contactless as Cert, {}, { policy: OID.contactlessPolicy }));
      const result = await validate(c.contactless as Cert, { allowContactless: true });
      expect(result.assurance).toBe('card');
    });

    it("keeps assurance 'card+pin' for the PIN certificate with allowContactless", async () => {
      const result = await validate(leaf, { allowContactless: true });
      expect(result.assurance).toBe('card+pin');
    });

    // The contract refuses the contactless policy unless allowed; a leaf that also carries the PIN policy
    // still says its key may sign without a PIN.
    it('refuses a leaf carrying both the PIN and the contactless policies by default (CERT_POLICY)', async () => {
      const error = await refusal(() => validate(c.bothPolicies as Cert));
      expect(error.code).toBe('CERT_POLICY');
    });

    it("gives assurance 'card' to a leaf carrying both policies with allowContactless", async () => {
      const result = await validate(c.bothPolicies as Cert, { allowContactless: true });
      expect(result.assurance).toBe('card');
    });
  });

  describe('trust anchors', () => {
    it('refuses a leaf of another PKI, its root handed in as an intermediate (CERT_UNTRUSTED)', async () => {
      const untrusted = [c.otherInter as Cert, c.otherRoot as Cert];
      const crls = [crl.otherRoot as Crl, crl.otherInter as Crl];
      expectOpensslRefuses(oracle(c.otherLeaf as Cert, { untrusted, crls }), /self-signed certificate in certificate chain/);
      const error = await refusal(() => validate(c.otherLeaf as Cert, { intermediates: untrusted.map((x) => x.der), crls: crls.map((x) => x.der) }));
      expect(error.code).toBe('CERT_UNTRUSTED');
    });

    it('refuses a chain through look-alikes of the root and the intermediate, same names, other keys (CERT_UNTRUSTED)', async () => {
      const untrusted = [inter, c.impostorInter as Cert, c.impostorRoot as Cert];
      expectOpensslRefuses(oracle(c.impostorLeaf as Cert, { untrusted }), /self-signed certificate in certificate chain/);
      const error = await refusal(() => validate(c.impostorLeaf as Cert, { intermediates: untrusted.map((x) => x.der) }));
      expect(error.code).toBe('CERT_UNTRUSTED');
    });

    it('refuses a self-signed leaf (CERT_UNTRUSTED)', async () => {
      expectOpensslRefuses(oracle(c.selfSigned as Cert, { untrusted: [] }), /at 0 depth lookup: self-signed certificate$/m);
      const error = await refusal(() => validate(c.selfSigned as Cert, { intermediates: [] }));
      expect(error.code).toBe('CERT_UNTRUSTED');
    });

    it('accepts a path ending at an anchor that is not self-signed (the intermediate), one revocation check', async () => {
      // openssl -crl_check_all would also want a CRL for the anchor, which RFC 5280 §6.1 never checks.
      expectOpensslAccepts(oracle(leaf, { trusted: [inter], untrusted: [], crls: [interCrl] }, { partialChain: true, crlCheckAll: false }));
      const result = await validate(leaf, { trustAnchors: [inter.der], intermediates: [], crls: [interCrl.der] });
      expect(fingerprints(result.path)).toEqual(fingerprints([leaf, inter]));
      expect(result.revocation).toHaveLength(1);
    });

    it('refuses the good leaf when the anchor is another root (CERT_UNTRUSTED)', async () => {
      expectOpensslRefuses(oracle(leaf, { trusted: [c.otherRoot as Cert] }), /unable to get local issuer certificate/);
      const error = await refusal(() => validate(leaf, { trustAnchors: [(c.otherRoot as Cert).der] }));
      expect(error.code).toBe('CERT_UNTRUSTED');
    });
  });
});
