/**
 * Revocation, fail-closed: an answer that cannot be had or trusted is REVOCATION_UNKNOWN, never a pass.
 *
 * OCSP as Web eID's validator does it (github.com/web-eid/web-eid-authtoken-validation-java, OcspServiceProvider and its defaults): the responder from the AIA or a designated one, a
 * request nonce (switchable per URL), exactly one response for our CertID, signed by the CA itself, by a
 * responder the CA delegated (EKU OCSPSigning, issued by the CA) or by one the caller trusts; thisUpdate at
 * most 15 minutes ahead and not older than `maxAgeSeconds`, nextUpdate not past, 5 s timeout.
 * CRLs (RFC 5280 §6.3): given by the caller or fetched from the distribution point over http, matched
 * by issuer name and signature, scope (issuingDistributionPoint) and dates checked, serials compared per
 * issuer as integers, delta CRLs applied. Every answer is cached until its nextUpdate.
 */
import { createHash, randomBytes } from 'node:crypto';
import * as asn1js from 'asn1js';
import * as pkijs from 'pkijs';
import { TrustError, type OcspOptions, type RevocationCache, type RevocationStatus, type ValidationOptions } from './trust-types.js';
import { Memo, digest } from './memo.js';
import { OID, crlUrls, extendedKeyUsage, extension, keyUsage, ocspUrls, parseCertificate, type ParsedCertificate } from './x509.js';

const SKEW_MS = 15 * 60_000;
const DEFAULT_TIMEOUT_MS = 5000;
/** Web eID's default: an OCSP answer is fresh for 2 minutes after its thisUpdate (plus the skew). */
const DEFAULT_OCSP_MAX_AGE_S = 120;

export class MemoryRevocationCache implements RevocationCache {
  readonly #map = new Map<string, { value: Uint8Array; until: number }>();

  get(key: string): { value: Uint8Array; until: number } | undefined {
    const hit = this.#map.get(key);
    if (hit && hit.until < Date.now()) {
      this.#map.delete(key);
      return undefined;
    }
    return hit;
  }

  set(key: string, value: Uint8Array, until: number): void {
    if (this.#map.size > 10_000) this.#map.clear(); // bounded: a flood of distinct URLs cannot grow it
    this.#map.set(key, { value, until });
  }
}

/** Shared by every call that does not bring its own cache. */
export const defaultRevocationCache = new MemoryRevocationCache();

const unknown = (rule: string, message: string, p: ParsedCertificate, cause?: unknown): TrustError =>
  new TrustError('REVOCATION_UNKNOWN', rule, message, p.name, cause === undefined ? undefined : { cause });

async function download(url: string, init: RequestInit, options: ValidationOptions, timeoutMs: number): Promise<Uint8Array> {
  const get = options.fetch ?? fetch;
  const response = await get(url, { ...init, signal: AbortSignal.timeout(timeoutMs) });
  if (!response.ok) throw new Error(`HTTP ${response.status}`);
  return new Uint8Array(await response.arrayBuffer());
}

// ------------------------------------------------------------------ OCSP

function nonceWanted(ocsp: OcspOptions | undefined, url: string): boolean {
  const n = ocsp?.nonce ?? true;
  return typeof n === 'function' ? n(url) : n;
}

async function ocspRequest(p: ParsedCertificate, issuer: ParsedCertificate, nonce: Uint8Array | undefined): Promise<{ der: Uint8Array; certId: pkijs.CertID }> {
  const request = new pkijs.OCSPRequest();
  await request.createForCertificate(p.cert, { hashAlgorithm: 'SHA-1', issuerCertificate: issuer.cert });
  if (nonce) {
    request.tbsRequest.requestExtensions = [
      new pkijs.Extension({ extnID: OID.ocspNonce, critical: false, extnValue: new asn1js.OctetString({ valueHex: nonce }).toBER(false) }),
    ];
  }
  const certId = request.tbsRequest.requestList[0]?.reqCert as pkijs.CertID;
  return { der: new Uint8Array(request.toSchema(true).toBER(false)), certId };
}

function nonceOf(extensions: pkijs.Extension[] | undefined): Uint8Array | undefined {
  const ext = extensions?.find((e) => e.extnID === OID.ocspNonce);
  if (!ext) return undefined;
  const inner = asn1js.fromBER(ext.extnValue.valueBlock.valueHexView);
  // RFC 8954: the value is an OCTET STRING; some responders put the raw bytes.
  return inner.result instanceof asn1js.OctetString ? new Uint8Array(inner.result.valueBlock.valueHexView) : new Uint8Array(ext.extnValue.valueBlock.valueHexView);
}

const sameBytes = (a: Uint8Array | undefined, b: Uint8Array | undefined): boolean =>
  a !== undefined && b !== undefined && a.length === b.length && a.every((v, i) => v === b[i]);

/** Who may sign an OCSP answer about `p`: the CA, a delegated responder, or one the caller trusts. */
async function authorisedSigner(basic: pkijs.BasicOCSPResponse, issuer: ParsedCertificate, options: ValidationOptions, now: Date): Promise<pkijs.Certificate | undefined> {
  const engine = pkijs.getCrypto(true);
  const trusted = (options.ocsp?.responderCertificates ?? []).map((c) => parseCertificate(c).cert);
  const candidates = [issuer.cert, ...trusted, ...(basic.certs ?? [])];
  const responderId = basic.tbsResponseData.responderID as pkijs.RelativeDistinguishedNames | asn1js.OctetString;
  for (const candidate of candidates) {
    const byName = responderId instanceof pkijs.RelativeDistinguishedNames && responderId.isEqual(candidate.subject);
    const keyHash = createHash('sha1').update(candidate.subjectPublicKeyInfo.subjectPublicKey.valueBlock.valueHexView).digest();
    const byKey = responderId instanceof asn1js.OctetString && sameBytes(new Uint8Array(responderId.valueBlock.valueHexView), new Uint8Array(keyHash));
    if (!byName && !byKey) continue;
    const signed = await engine.verifyWithPublicKey(basic.tbsResponseData.tbsView as Uint8Array<ArrayBuffer>, basic.signature, candidate.subjectPublicKeyInfo, basic.signatureAlgorithm);
    if (!signed) continue;
    const isIssuer = candidate === issuer.cert;
    const isTrusted = trusted.includes(candidate);
    if (isIssuer || isTrusted) return candidate;
    // A delegated responder: issued by the CA itself, for OCSP signing, valid now (RFC 6960 §4.2.2.2).
    const delegated =
      candidate.issuer.isEqual(issuer.cert.subject) &&
      (extendedKeyUsage(candidate) ?? []).includes(OID.ocspSigning) &&
      candidate.notBefore.value <= now &&
      candidate.notAfter.value >= now &&
      (await candidate.verify(issuer.cert).catch(() => false));
    if (delegated) return candidate;
  }
  return undefined;
}

/** Checks `p` by OCSP; resolves with its status, or throws CERT_REVOKED / REVOCATION_UNKNOWN. */
export async function checkOcsp(p: ParsedCertificate, issuer: ParsedCertificate, options: ValidationOptions, now: Date, cache: RevocationCache): Promise<RevocationStatus> {
  const url = options.ocsp?.url ?? ocspUrls(p.cert)[0];
  if (!url) throw unknown('ocsp', 'the certificate names no OCSP responder', p);
  const cacheKey = `ocsp ${url} ${createHash('sha256').update(issuer.der).digest('hex')} ${p.cert.serialNumber.valueBlock.toString()}`;
  const maxAge = (options.ocsp?.maxAgeSeconds ?? DEFAULT_OCSP_MAX_AGE_S) * 1000;
  let der = cache.get(cacheKey)?.value;
  let nonce: Uint8Array | undefined;
  const fresh = der === undefined;
  const { der: requestDer, certId } = await ocspRequest(p, issuer, (nonce = nonceWanted(options.ocsp, url) ? new Uint8Array(randomBytes(32)) : undefined));
  if (!der) {
    try {
      der = await download(url, { method: 'POST', headers: { 'Content-Type': 'application/ocsp-request' }, body: Buffer.from(requestDer) }, options, options.ocsp?.timeoutMs ?? DEFAULT_TIMEOUT_MS);
    } catch (error) {
      throw unknown('ocsp', `the OCSP responder ${url} did not answer`, p, error);
    }
  }
  let basic: pkijs.BasicOCSPResponse;
  try {
    const response = pkijs.OCSPResponse.fromBER(new Uint8Array(der));
    if (response.responseStatus.valueBlock.valueDec !== 0) throw new Error(`responseStatus ${response.responseStatus.valueBlock.valueDec}`);
    if (response.responseBytes?.responseType !== OID.ocspBasic) throw new Error('not a basic OCSP response');
    basic = pkijs.BasicOCSPResponse.fromBER(new Uint8Array(response.responseBytes.response.valueBlock.valueHexView));
  } catch (error) {
    throw unknown('ocsp', 'the OCSP answer is not a valid successful response', p, error);
  }
  // The signer's authority depends on the trusted responders too: they are part of the memo key.
  const trustedIds = (options.ocsp?.responderCertificates ?? []).map((c) => parseCertificate(c).id).join(',');
  const signerKey = `${digest(der)} ${issuer.id} ${trustedIds}`;
  let window = signedOcsp.get(signerKey);
  if (!window) {
    const signer = await authorisedSigner(basic, issuer, options, now);
    if (signer) window = signedOcsp.set(signerKey, { from: signer.notBefore.value.getTime(), until: signer.notAfter.value.getTime() });
  }
  if (!window || now.getTime() < window.from || now.getTime() > window.until) {
    throw unknown('ocspSigner', 'the OCSP answer is not signed by the CA or a responder it authorised', p);
  }
  // A fresh answer must carry our nonce back (a cached one was checked when it came).
  if (fresh && nonce && !sameBytes(nonceOf(basic.tbsResponseData.responseExtensions), nonce)) {
    throw unknown('ocspNonce', 'the OCSP answer does not carry the request nonce (replay?)', p);
  }
  const responses = basic.tbsResponseData.responses;
  if (responses.length !== 1 || !responses[0]?.certID.isEqual(certId)) throw unknown('ocspCertId', 'the OCSP answer is not exactly one response for this certificate', p);
  const single = responses[0];
  const t = now.getTime();
  if (single.thisUpdate.getTime() > t + SKEW_MS) throw unknown('ocspThisUpdate', 'the OCSP answer is dated in the future', p);
  if (single.thisUpdate.getTime() < t - SKEW_MS - maxAge) throw unknown('ocspAge', 'the OCSP answer is too old', p);
  if (single.nextUpdate && single.nextUpdate.getTime() < t) throw unknown('ocspNextUpdate', 'the OCSP answer is past its nextUpdate', p);
  const status = single.certStatus as asn1js.BaseBlock;
  const tag = status.idBlock.tagNumber;
  if (status.idBlock.tagClass !== 3 || tag === 2) throw unknown('ocspStatus', 'the OCSP responder does not know this certificate', p);
  if (tag === 1) throw new TrustError('CERT_REVOKED', 'ocsp', 'the certificate is revoked (OCSP)', p.name);
  if (fresh) {
    // Kept no longer than it stays acceptable: its nextUpdate, and the age limit.
    const until = Math.min(single.nextUpdate?.getTime() ?? t + maxAge, single.thisUpdate.getTime() + SKEW_MS + maxAge);
    if (until > Date.now()) cache.set(cacheKey, der, until);
  }
  return { certificate: p.name, method: 'ocsp', thisUpdate: single.thisUpdate, ...(single.nextUpdate ? { nextUpdate: single.nextUpdate } : {}), source: url };
}

// ------------------------------------------------------------------ CRL

export interface ParsedCrl {
  der: Uint8Array;
  crl: pkijs.CertificateRevocationList;
  source: string;
  /** SHA-256 of the DER: the memo key. */
  id: string;
}

const parsedCrls = new Memo<ParsedCrl>(200);
/** CRL signatures that verified, by CRL and issuer: a CRL is checked once, not at every login. */
const signedCrls = new Memo<boolean>(2000);
/** OCSP answers whose signer was authorised, by answer and issuer: while the signer is valid (ms). */
const signedOcsp = new Memo<{ from: number; until: number }>(2000);

export function parseCrl(input: Uint8Array | string, source = 'given'): ParsedCrl {
  let der: Uint8Array;
  if (typeof input === 'string') {
    const b64 = /-----BEGIN X509 CRL-----([\s\S]+?)-----END X509 CRL-----/.exec(input)?.[1];
    if (!b64) throw new TrustError('CRL_INVALID', 'encoding', 'not a PEM CRL');
    der = new Uint8Array(Buffer.from(b64.replace(/\s+/g, ''), 'base64'));
  } else der = input;
  const key = `${digest(der)} ${source}`;
  const hit = parsedCrls.get(key);
  if (hit) return hit;
  try {
    return parsedCrls.set(key, { der, crl: pkijs.CertificateRevocationList.fromBER(new Uint8Array(der)), source, id: digest(der) });
  } catch (error) {
    throw new TrustError('CRL_INVALID', 'encoding', 'not a DER CRL', undefined, { cause: error });
  }
}

function crlNumber(crl: pkijs.CertificateRevocationList, oid: string): bigint | undefined {
  const value = extension(crl, oid)?.parsedValue as asn1js.Integer | undefined;
  return value ? value.toBigInt() : undefined;
}

/**
 * What depends only on the bytes of a CRL, a certificate and its issuer: whether the CRL covers it (issuer,
 * signature, scope), and its entry. Worked out once (a login checks the same card against the same CRL);
 * the CRL's dates are checked on every call.
 */
const covers = new Memo<boolean>(2000);
const entries = new Memo<'revoked' | 'removed' | 'none'>(2000);

/** The CRL covers `p`: same issuer, signed by the issuer's key, valid now, in scope. */
async function usable(c: ParsedCrl, p: ParsedCertificate, issuer: ParsedCertificate, now: Date): Promise<boolean> {
  const crl = c.crl;
  if (crl.thisUpdate.value.getTime() > now.getTime() + SKEW_MS) return false;
  if (!crl.nextUpdate || crl.nextUpdate.value.getTime() < now.getTime()) return false;
  const key = `${c.id} ${p.id} ${issuer.id}`;
  return covers.get(key) ?? covers.set(key, await coversOf(c, p, issuer));
}

async function coversOf(c: ParsedCrl, p: ParsedCertificate, issuer: ParsedCertificate): Promise<boolean> {
  const crl = c.crl;
  if (!crl.issuer.isEqual(p.cert.issuer)) return false;
  const usage = keyUsage(issuer.cert);
  if (usage && !usage.has('cRLSign')) return false;
  const signedKey = `${c.id} ${issuer.id}`;
  const signed = signedCrls.get(signedKey) ?? signedCrls.set(signedKey, await crl.verify({ issuerCertificate: issuer.cert }).catch(() => false));
  if (!signed) return false;
  const idp = extension(crl, OID.issuingDistributionPoint)?.parsedValue as pkijs.IssuingDistributionPoint | undefined;
  if (idp) {
    // Indirect CRLs and partitioned ones by reason are not supported: not in scope, so not used.
    if (idp.indirectCRL || idp.onlySomeReasons !== undefined) return false;
    const ca = p.cert.extensions?.some((e) => e.extnID === OID.basicConstraints && (e.parsedValue as pkijs.BasicConstraints).cA) ?? false;
    if ((idp.onlyContainsUserCerts && ca) || (idp.onlyContainsCACerts && !ca) || idp.onlyContainsAttributeCerts) return false;
  }
  return true;
}

/** Revoked unless a later delta CRL says removeFromCRL (reason 8). */
function listed(c: ParsedCrl, p: ParsedCertificate): 'revoked' | 'removed' | undefined {
  const key = `${c.id} ${p.id}`;
  const state = entries.get(key) ?? entries.set(key, entryOf(c.crl, p) ?? 'none');
  return state === 'none' ? undefined : state;
}

function entryOf(crl: pkijs.CertificateRevocationList, p: ParsedCertificate): 'revoked' | 'removed' | undefined {
  const serial = p.cert.serialNumber.toBigInt();
  for (const entry of crl.revokedCertificates ?? []) {
    if (entry.userCertificate.toBigInt() !== serial) continue;
    const reason = entry.crlEntryExtensions?.extensions.find((e) => e.extnID === '2.5.29.21')?.parsedValue as asn1js.Enumerated | undefined;
    return reason?.valueBlock.valueDec === 8 ? 'removed' : 'revoked';
  }
  return undefined;
}

async function fetchCrl(url: string, p: ParsedCertificate, options: ValidationOptions, cache: RevocationCache): Promise<ParsedCrl | undefined> {
  const hit = cache.get(`crl ${url}`);
  if (hit) return parseCrl(hit.value, url);
  try {
    const der = await download(url, { method: 'GET' }, options, options.crl?.timeoutMs ?? DEFAULT_TIMEOUT_MS);
    const parsed = parseCrl(der, url);
    const until = parsed.crl.nextUpdate?.value.getTime();
    if (until && until > Date.now()) cache.set(`crl ${url}`, der, until);
    return parsed;
  } catch {
    void p;
    return undefined; // one distribution point down: another, or REVOCATION_UNKNOWN
  }
}

/** Checks `p` against the CRLs given and those of its distribution points; throws when revoked or unknown. */
export async function checkCrl(p: ParsedCertificate, issuer: ParsedCertificate, given: readonly ParsedCrl[], options: ValidationOptions, now: Date, cache: RevocationCache): Promise<RevocationStatus> {
  const candidates = [...given];
  if (options.crl?.fetch ?? true) {
    for (const url of [...crlUrls(p.cert), ...crlUrls(p.cert, OID.freshestCrl)]) {
      const fetched = await fetchCrl(url, p, options, cache);
      if (fetched) candidates.push(fetched);
    }
  }
  const valid: ParsedCrl[] = [];
  for (const c of candidates) if (await usable(c, p, issuer, now)) valid.push(c);
  const complete = valid.filter((c) => !extension(c.crl, OID.deltaCrlIndicator));
  const base = complete.sort((a, b) => b.crl.thisUpdate.value.getTime() - a.crl.thisUpdate.value.getTime())[0];
  if (!base) throw unknown('crl', 'no valid, current CRL of the issuer covers this certificate', p);
  let state = listed(base, p);
  // Delta CRLs based on this CRL (or an earlier one) bring later revocations and removals.
  const baseNumber = crlNumber(base.crl, OID.crlNumber);
  for (const delta of valid.filter((c) => extension(c.crl, OID.deltaCrlIndicator))) {
    const basedOn = crlNumber(delta.crl, OID.deltaCrlIndicator);
    if (baseNumber === undefined || basedOn === undefined || basedOn > baseNumber) continue;
    const d = listed(delta, p);
    if (d) state = d === 'removed' ? undefined : 'revoked';
  }
  if (state === 'revoked') throw new TrustError('CERT_REVOKED', 'crl', 'the certificate is revoked (CRL)', p.name);
  return {
    certificate: p.name,
    method: 'crl',
    thisUpdate: base.crl.thisUpdate.value,
    ...(base.crl.nextUpdate ? { nextUpdate: base.crl.nextUpdate.value } : {}),
    source: base.source,
  };
}

/** The status of one certificate of the path, by the mode asked for. */
export async function checkRevocation(p: ParsedCertificate, issuer: ParsedCertificate, given: readonly ParsedCrl[], options: ValidationOptions, now: Date): Promise<RevocationStatus> {
  const mode = options.revocation ?? 'ocsp-then-crl';
  const cache = options.cache ?? defaultRevocationCache;
  if (mode === 'off') return { certificate: p.name, method: 'off' };
  if (mode === 'crl') return checkCrl(p, issuer, given, options, now, cache);
  try {
    return await checkOcsp(p, issuer, options, now, cache);
  } catch (error) {
    // A revoked answer is final; an OCSP that could not tell falls back to the CRLs when asked to.
    if (mode === 'ocsp' || !(error instanceof TrustError) || error.code !== 'REVOCATION_UNKNOWN') throw error;
    return checkCrl(p, issuer, given, options, now, cache);
  }
}
