/**
 * validateCertificate against real revocation services on loopback: `openssl ocsp` responders (one per
 * signing certificate) behind a small router that the certificates' AIA points to, and a node:http
 * server at the CRL distribution points. openssl's own OCSP client judges the same responders.
 */
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import type { RevocationCache, ValidationOptions, ValidationResult } from '../../pkcs/trust-types.js';
import { validateCertificate } from '../../pkcs/validate.js';
import {
  OpensslPki,
  caExtensions,
  freePort,
  leafExtensions,
  opensslOcspQuery,
  opensslVerify,
  personSubject,
  responderExtensions,
  startBlackhole,
  startFileServer,
  startOcspResponder,
  startOcspRouter,
  type Cert,
  type Crl,
  type HttpStub,
  type OcspRouter,
  type OcspVerdict,
  type Responder,
} from '../helpers/openssl-pki.js';
import { refusal } from '../helpers/trust.js';
import { MemoryRevocationCache } from '../../pkcs/revocation.js';

const HOUR = 3_600_000;

/** A revocation cache of its own per call, so that no answer leaks from one case into another. */
const freshCache = (): RevocationCache => new MemoryRevocationCache();

let pki: OpensslPki;
let root: Cert, inter: Cert;
const c: Record<string, Cert> = {};
let rootCrl: Crl, interCrl: Crl;
let router: OcspRouter;
let crlServer: HttpStub;
const crlFiles = new Map<string, Uint8Array>();
let blackhole: { url: string; close(): Promise<void> };
const responders: Record<string, Responder> = {};
let deadUrl: string;

function validate(target: Cert, o: Partial<ValidationOptions> = {}): Promise<ValidationResult> {
  return validateCertificate(target.der, {
    trustAnchors: [root.der],
    intermediates: [inter.der],
    revocation: 'ocsp',
    cache: freshCache(),
    ...o,
  });
}


/** openssl's OCSP client on the same responder: what the validator must agree with. */
function opensslSays(target: Cert, responder: Responder): Promise<OcspVerdict> {
  return opensslOcspQuery({ cert: target, issuer: inter, url: responder.url, trusted: [root], untrusted: [inter] });
}

/** openssl's client did not accept the answer, for the reason the case is about. */
function expectOpensslOcspRefuses(verdict: OcspVerdict, reason: RegExp): void {
  expect(verdict.verified, verdict.output).toBe(false);
  expect(verdict.output).toMatch(reason);
}

const leafRequests = (): OcspRouter['log'] => router.log.filter((e) => e.issuer === 'inter');

beforeAll(async () => {
  pki = OpensslPki.create('cpsd-ocsp-');
  // The URLs go into the certificates, so the servers exist before anything is issued.
  router = await startOcspRouter();
  crlServer = await startFileServer(crlFiles);
  blackhole = await startBlackhole();
  deadUrl = `http://127.0.0.1:${await freePort()}`; // nothing listens: connection refused
  const k = await pki.makeKeys(['root', 'inter', 'leaf', 'rootOcsp', 'interOcsp', 'noEku', 'otherRoot', 'otherOcsp']);
  const key = (name: string) => k[name] as NonNullable<(typeof k)[string]>;

  root = pki.issue('self', { name: 'root', subject: '/C=FR/O=IGC-SANTE TEST/CN=TEST AC RACINE IGC-SANTE', key: key('root'), extensions: caExtensions() });
  inter = pki.issue(root, {
    name: 'inter',
    subject: '/C=FR/O=IGC-SANTE TEST/CN=TEST AC IGC-SANTE FORT PERSONNES',
    key: key('inter'),
    extensions: caExtensions({ crl: `${crlServer.url}/root.crl`, ocsp: router.url }),
  });
  const person = (name: string, id: string, o: { ocsp?: string; crl?: string; highBit?: boolean; record?: boolean } = {}): Cert =>
    pki.issue(inter, {
      name,
      subject: personSubject({ id }),
      key: key('leaf'),
      extensions: leafExtensions({ ocsp: o.ocsp ?? router.url, crl: o.crl ?? `${crlServer.url}/inter.crl` }),
      ...(o.highBit !== undefined ? { highBit: o.highBit } : {}),
      ...(o.record !== undefined ? { record: o.record } : {}),
    });
  c.good = person('good', '899700012349');
  c.revoked = person('revoked', '899700011111', { highBit: true });
  c.unknown = person('unknown', '899700022222', { record: false });
  c.deadAia = person('deadAia', '899700033333', { ocsp: deadUrl });
  c.allDead = person('allDead', '899700044444', { ocsp: deadUrl, crl: `${deadUrl}/inter.crl` });
  c.revokedAfterCrl = person('revokedAfterCrl', '899700055555');
  c.missingCrl = person('missingCrl', '899700066666', { crl: `${crlServer.url}/missing.crl` });

  c.rootOcsp = pki.issue(root, { name: 'rootOcsp', subject: '/C=FR/O=IGC-SANTE TEST/CN=TEST OCSP RACINE', key: key('rootOcsp'), extensions: responderExtensions() });
  c.interOcsp = pki.issue(inter, { name: 'interOcsp', subject: '/C=FR/O=IGC-SANTE TEST/CN=TEST OCSP FORT PERSONNES', key: key('interOcsp'), extensions: responderExtensions() });
  c.noEku = pki.issue(inter, { name: 'noEku', subject: '/C=FR/O=IGC-SANTE TEST/CN=TEST SANS OCSPSIGNING', key: key('noEku'), extensions: responderExtensions({ extendedKeyUsage: 'clientAuth' }) });
  c.otherRoot = pki.issue('self', { name: 'otherRoot', subject: '/C=FR/O=AUTRE PKI/CN=AUTRE RACINE', key: key('otherRoot'), extensions: caExtensions() });
  c.otherOcsp = pki.issue(c.otherRoot, { name: 'otherOcsp', subject: '/C=FR/O=AUTRE PKI/CN=AUTRE OCSP', key: key('otherOcsp'), extensions: responderExtensions() });

  pki.revoke(inter, c.revoked);
  rootCrl = pki.crl(root, { name: 'root' });
  interCrl = pki.crl(inter, { name: 'inter' });
  // Revoked after the published CRL: only OCSP knows.
  pki.revoke(inter, c.revokedAfterCrl);
  crlFiles.set('/root.crl', rootCrl.der);
  crlFiles.set('/inter.crl', interCrl.der);

  const rootIndex = pki.database(root).index;
  const interIndex = pki.database(inter).index;
  const [rootResp, good, noEku, otherCa, byRootResponder, byCa] = await Promise.all([
    startOcspResponder({ index: rootIndex, ca: root, signer: c.rootOcsp, ndays: 7 }),
    startOcspResponder({ index: interIndex, ca: inter, signer: c.interOcsp, nmin: 60 }),
    startOcspResponder({ index: interIndex, ca: inter, signer: c.noEku, nmin: 60 }),
    startOcspResponder({ index: interIndex, ca: inter, signer: c.otherOcsp, nmin: 60 }),
    // RFC 6960 §4.2.2.2: a delegated responder is authorised only by the CA that issued the certificate.
    startOcspResponder({ index: interIndex, ca: inter, signer: c.rootOcsp, nmin: 60 }),
    startOcspResponder({ index: interIndex, ca: inter, signer: inter, nmin: 60 }),
  ]);
  Object.assign(responders, { root: rootResp, good, noEku, otherCa, byRootResponder, byCa });
});

afterAll(async () => {
  await Promise.all(Object.values(responders).map((r) => r.stop()));
  await Promise.all([router?.close(), crlServer?.close(), blackhole?.close()]);
  pki?.remove();
});

beforeEach(() => {
  router.route(root, (responders.root as Responder).url);
  router.route(inter, (responders.good as Responder).url);
  router.tamperNonce = false;
  router.log.length = 0;
  crlServer.requests.length = 0;
});

describe('validateCertificate with OCSP (openssl ocsp responders)', () => {
  it('accepts a good certificate, both statuses from OCSP at the AIA URLs', async () => {
    const oracle = await opensslSays(c.good as Cert, responders.good as Responder);
    expect(oracle, oracle.output).toMatchObject({ status: 'good', verified: true });
    const result = await validate(c.good as Cert);
    expect(result.revocation).toHaveLength(2);
    for (const r of result.revocation) expect(r.method).toBe('ocsp');
    expect(result.revocation.map((r) => r.source)).toEqual(expect.arrayContaining([expect.stringContaining(router.url)]));
  });

  it('sends a nonce by default', async () => {
    await validate(c.good as Cert);
    expect(leafRequests().length).toBeGreaterThan(0);
    expect(leafRequests().every((e) => e.nonce)).toBe(true);
  });

  it('sends no nonce with ocsp.nonce false, and accepts the answer', async () => {
    await validate(c.good as Cert, { ocsp: { nonce: false } });
    expect(leafRequests().length).toBeGreaterThan(0);
    expect(leafRequests().some((e) => e.nonce)).toBe(false);
  });

  it('refuses a certificate the responder says is revoked (CERT_REVOKED)', async () => {
    expect(await opensslSays(c.revoked as Cert, responders.good as Responder)).toMatchObject({ status: 'revoked', verified: true });
    const error = await refusal(() => validate(c.revoked as Cert));
    expect(error.code).toBe('CERT_REVOKED');
    expect(error.certificate).toContain('CN=899700011111');
  });

  it('refuses a certificate the responder does not know (REVOCATION_UNKNOWN)', async () => {
    expect(await opensslSays(c.unknown as Cert, responders.good as Responder)).toMatchObject({ status: 'unknown', verified: true });
    const error = await refusal(() => validate(c.unknown as Cert));
    expect(error.code).toBe('REVOCATION_UNKNOWN');
    expect(error.certificate).toContain('CN=899700022222');
  });

  it('refuses at once when the responder is down, connection refused (REVOCATION_UNKNOWN)', async () => {
    const started = Date.now();
    const error = await refusal(() => validate(c.deadAia as Cert, { ocsp: { timeoutMs: 500 } }));
    expect(error.code).toBe('REVOCATION_UNKNOWN');
    expect(error.certificate).toContain('CN=899700033333');
    expect(Date.now() - started).toBeLessThan(2000);
  });

  it('gives up after ocsp.timeoutMs when the responder never answers (REVOCATION_UNKNOWN)', async () => {
    const started = Date.now();
    const error = await refusal(() => validate(c.good as Cert, { ocsp: { url: blackhole.url, timeoutMs: 300 } }));
    expect(error.code).toBe('REVOCATION_UNKNOWN');
    expect(Date.now() - started).toBeLessThan(2500);
  });

  // The leaf's answer has nextUpdate = now + 60 min; the root's 7 days. Two hours later, with a generous
  // maxAgeSeconds, only the leaf's answer is stale.
  it('refuses an answer past its nextUpdate (REVOCATION_UNKNOWN)', async () => {
    const error = await refusal(() => validate(c.good as Cert, { now: new Date(Date.now() + 2 * HOUR), ocsp: { maxAgeSeconds: 3 * 86_400 } }));
    expect(error.code).toBe('REVOCATION_UNKNOWN');
    expect(error.certificate).toContain('CN=899700012349');
  });

  it('refuses an answer older than ocsp.maxAgeSeconds (REVOCATION_UNKNOWN)', async () => {
    // 30 minutes old, more than 60 s plus the 15-minute skew, still before nextUpdate.
    const error = await refusal(() => validate(c.good as Cert, { now: new Date(Date.now() + 30 * 60_000), ocsp: { maxAgeSeconds: 60 } }));
    expect(error.code).toBe('REVOCATION_UNKNOWN');
  });

  it('accepts an answer signed by the issuing CA itself', async () => {
    router.route(inter, (responders.byCa as Responder).url);
    expect(await opensslSays(c.good as Cert, responders.byCa as Responder)).toMatchObject({ status: 'good', verified: true });
    await expect(validate(c.good as Cert)).resolves.toBeDefined();
  });

  it('refuses an answer signed by a certificate of the CA without the OCSPSigning EKU (REVOCATION_UNKNOWN)', async () => {
    router.route(inter, (responders.noEku as Responder).url);
    expectOpensslOcspRefuses(await opensslSays(c.good as Cert, responders.noEku as Responder), /missing ocspsigning usage/);
    const error = await refusal(() => validate(c.good as Cert));
    expect(error.code).toBe('REVOCATION_UNKNOWN');
  });

  it('refuses a revoked answer signed by a certificate without the OCSPSigning EKU too (REVOCATION_UNKNOWN)', async () => {
    router.route(inter, (responders.noEku as Responder).url);
    const error = await refusal(() => validate(c.revoked as Cert));
    expect(error.code).toBe('REVOCATION_UNKNOWN');
  });

  it('refuses an answer signed by an OCSP responder of another CA (REVOCATION_UNKNOWN)', async () => {
    router.route(inter, (responders.otherCa as Responder).url);
    expectOpensslOcspRefuses(await opensslSays(c.good as Cert, responders.otherCa as Responder), /unable to get local issuer certificate/);
    const error = await refusal(() => validate(c.good as Cert));
    expect(error.code).toBe('REVOCATION_UNKNOWN');
  });

  it("refuses an answer signed by the root's delegated responder about the intermediate's certificate (REVOCATION_UNKNOWN)", async () => {
    router.route(inter, (responders.byRootResponder as Responder).url);
    expectOpensslOcspRefuses(await opensslSays(c.good as Cert, responders.byRootResponder as Responder), /root ca not trusted/);
    const error = await refusal(() => validate(c.good as Cert));
    expect(error.code).toBe('REVOCATION_UNKNOWN');
  });

  it('accepts an answer signed by a responder certificate given in ocsp.responderCertificates', async () => {
    router.route(inter, (responders.otherCa as Responder).url);
    await expect(validate(c.good as Cert, { ocsp: { responderCertificates: [(c.otherOcsp as Cert).der] } })).resolves.toBeDefined();
  });

  it('refuses an answer to another nonce (REVOCATION_UNKNOWN)', async () => {
    router.tamperNonce = true;
    const oracle = await opensslOcspQuery({ cert: c.good as Cert, issuer: inter, url: router.url, trusted: [root], untrusted: [inter] });
    expect(oracle.output).toMatch(/nonce verify error/i);
    router.log.length = 0;
    const error = await refusal(() => validate(c.good as Cert));
    expect(leafRequests().length).toBeGreaterThan(0);
    expect(leafRequests().every((e) => e.tampered)).toBe(true);
    expect(error.code).toBe('REVOCATION_UNKNOWN');
  });

  it('asks the designated responder of ocsp.url instead of the AIA', async () => {
    const result = await validate(c.deadAia as Cert, { ocsp: { url: `${router.url}/designated` } });
    expect(result.revocation.find((r) => r.certificate.includes('CN=899700033333'))).toMatchObject({ method: 'ocsp' });
    expect(leafRequests().length).toBeGreaterThan(0);
    expect(leafRequests().every((e) => e.path.startsWith('/designated'))).toBe(true);
  });

  it('keeps answers in the shared cache: a second validation asks the responder nothing more about the leaf', async () => {
    const cache = freshCache();
    await validate(c.good as Cert, { cache });
    const asked = leafRequests().length;
    await validate(c.good as Cert, { cache });
    expect(asked).toBeGreaterThan(0);
    expect(leafRequests().length).toBe(asked);
  });
});

describe("validateCertificate with 'ocsp-then-crl'", () => {
  it('falls back to the CRL at the CDP when the responder is down, and accepts', async () => {
    const result = await validate(c.deadAia as Cert, { revocation: 'ocsp-then-crl', ocsp: { timeoutMs: 500 } });
    const status = result.revocation.find((r) => r.certificate.includes('CN=899700033333'));
    expect(status).toMatchObject({ method: 'crl', source: `${crlServer.url}/inter.crl` });
    expect(crlServer.requests).toContain('/inter.crl');
  });

  it('refuses when both the responder and the CDP are down (REVOCATION_UNKNOWN)', async () => {
    const error = await refusal(() => validate(c.allDead as Cert, { revocation: 'ocsp-then-crl', ocsp: { timeoutMs: 500 }, crl: { timeoutMs: 500 } }));
    expect(error.code).toBe('REVOCATION_UNKNOWN');
    expect(error.certificate).toContain('CN=899700044444');
  });

  it('does not fall back to an older CRL when the responder says revoked (CERT_REVOKED)', async () => {
    const error = await refusal(() => validate(c.revokedAfterCrl as Cert, { revocation: 'ocsp-then-crl' }));
    expect(error.code).toBe('CERT_REVOKED');
  });
});

describe("validateCertificate with 'crl', downloading from the CDPs", () => {
  it('accepts the good certificate with CRLs fetched from its and its issuer CDP, as openssl does with them', async () => {
    expect(opensslVerify({ leaf: c.good as Cert, trusted: [root], untrusted: [inter], crls: [rootCrl, interCrl] }, { attime: new Date() }).ok).toBe(true);
    const result = await validate(c.good as Cert, { revocation: 'crl' });
    expect(result.revocation.map((r) => [r.method, r.source])).toEqual(
      expect.arrayContaining([
        ['crl', `${crlServer.url}/inter.crl`],
        ['crl', `${crlServer.url}/root.crl`],
      ]),
    );
    expect(router.log).toEqual([]);
  });

  it('refuses a certificate the downloaded CRL lists (CERT_REVOKED)', async () => {
    expect(opensslVerify({ leaf: c.revoked as Cert, trusted: [root], untrusted: [inter], crls: [rootCrl, interCrl] }, { attime: new Date() }).ok).toBe(false);
    const error = await refusal(() => validate(c.revoked as Cert, { revocation: 'crl' }));
    expect(error.code).toBe('CERT_REVOKED');
  });

  it('refuses when the CDP answers 404 (REVOCATION_UNKNOWN)', async () => {
    const error = await refusal(() => validate(c.missingCrl as Cert, { revocation: 'crl' }));
    expect(crlServer.requests).toContain('/missing.crl');
    expect(error.code).toBe('REVOCATION_UNKNOWN');
    expect(error.certificate).toContain('CN=899700066666');
  });

  it('downloads nothing with crl.fetch false and no CRL given (REVOCATION_UNKNOWN)', async () => {
    const error = await refusal(() => validate(c.good as Cert, { revocation: 'crl', crl: { fetch: false } }));
    expect(error.code).toBe('REVOCATION_UNKNOWN');
    expect(crlServer.requests).toEqual([]);
  });
});
