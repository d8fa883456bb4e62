/**
 * The one certificate validator (exported by `cpsd/verify`; used by `verify()` and `cpsd certs --verify`).
 *
 * RFC 5280 §6 path validation by pkijs's CertificateChainValidationEngine (path building with signature
 * checks, validity of every certificate, name chaining, basicConstraints and keyCertSign, certificate
 * policies, name constraints), then what it leaves to the caller: pathLenConstraint, unknown critical
 * extensions anywhere, the signature-algorithm and key-size policy, the leaf's purpose and policy
 * (IGC-Santé), and revocation of every certificate of the path (revocation.ts). Each refusal is a
 * TrustError naming the certificate and the rule.
 */
import * as pkijs from 'pkijs';
import { certificateInfo, nationalIdentity } from './holder.js';
import { Memo } from './memo.js';
import { checkRevocation, parseCrl, type ParsedCrl } from './revocation.js';
import { TrustError, type Assurance, type CertificateInput, type RevocationStatus, type ValidatedHolder, type ValidationOptions, type ValidationResult } from './trust-types.js';
import {
  KNOWN_EXTENSIONS,
  OID,
  basicConstraints,
  extendedKeyUsage,
  isSelfIssued,
  keyUsage,
  parseCertificate,
  policies,
  publicKeyOf,
  signatureHash,
  type ParsedCertificate,
} from './x509.js';

/** ANS's IGC-Santé certificate policies arc (the test PKI's policies live under it, docs/integration.md). */
export const IGC_SANTE_POLICY_ARC = '1.2.250.1.213.1.';
/**
 * The contactless technical certificate's policy in the test PKI: its key signs without PIN. The real
 * IGC-Santé OID is not public (docs/integration.md says how to configure it).
 */
export const CONTACTLESS_POLICY = '1.2.250.1.213.1.7.2.1.1.1.9';

const matches = (oid: string, allowed: readonly string[]): boolean => allowed.some((a) => (a.endsWith('.') ? oid.startsWith(a) : oid === a));

function checkExtensions(p: ParsedCertificate): void {
  for (const e of p.cert.extensions ?? []) {
    if (e.critical && !KNOWN_EXTENSIONS.has(e.extnID)) {
      throw new TrustError('CERT_UNTRUSTED', 'unknownCriticalExtension', `unknown critical extension ${e.extnID}`, p.name);
    }
  }
}

/** MD5 and MD2 never; SHA-1 only when allowed; RSA at least minRsaBits; EC on P-256 and up. */
function checkAlgorithms(p: ParsedCertificate, options: ValidationOptions, selfSigned: boolean): void {
  if (!selfSigned) {
    const hash = signatureHash(p.cert.signatureAlgorithm);
    if (hash === 'MD5' || hash === 'MD2' || hash === 'unknown') throw new TrustError('CERT_ALGORITHM', 'signatureAlgorithm', `signature algorithm ${p.cert.signatureAlgorithm.algorithmId} is not accepted`, p.name);
    if (hash === 'SHA-1' && !options.allowSha1) throw new TrustError('CERT_ALGORITHM', 'signatureAlgorithm', 'SHA-1 signatures are not accepted', p.name);
  }
  const key = publicKeyOf(p);
  const minRsa = options.minRsaBits ?? 2048;
  if ((key.type === 'rsa' || key.type === 'rsa-pss') && (key.bits ?? 0) < minRsa) {
    throw new TrustError('CERT_ALGORITHM', 'keySize', `RSA key of ${key.bits ?? 0} bits (at least ${minRsa})`, p.name);
  }
  if (key.type === 'ec' && !['prime256v1', 'secp384r1', 'secp521r1'].includes(key.curve ?? '')) {
    throw new TrustError('CERT_ALGORITHM', 'keySize', `EC curve ${key.curve ?? '?'} is not accepted`, p.name);
  }
}

function checkValidity(p: ParsedCertificate, now: Date): void {
  if (p.cert.notBefore.value > now) throw new TrustError('CERT_NOT_YET_VALID', 'validity', `valid from ${p.cert.notBefore.value.toISOString()}`, p.name);
  if (p.cert.notAfter.value < now) throw new TrustError('CERT_EXPIRED', 'validity', `expired on ${p.cert.notAfter.value.toISOString()}`, p.name);
}

/**
 * An authentication certificate: digitalSignature without nonRepudiation, EKU clientAuth when present.
 * anyExtendedKeyUsage alone is not clientAuth: IGC-Santé authentication certificates name clientAuth, and
 * openssl's `-purpose sslclient` refuses "any" alone too.
 */
function checkPurpose(p: ParsedCertificate, options: ValidationOptions): void {
  if ((options.purpose ?? 'authentication') !== 'authentication') return;
  const usage = keyUsage(p.cert);
  if (!usage) throw new TrustError('CERT_WRONG_PURPOSE', 'keyUsage', 'the certificate has no keyUsage', p.name);
  if (!usage.has('digitalSignature') || usage.has('nonRepudiation')) {
    throw new TrustError('CERT_WRONG_PURPOSE', 'keyUsage', 'not an authentication certificate (keyUsage)', p.name);
  }
  const eku = extendedKeyUsage(p.cert);
  if (eku && !eku.includes(OID.clientAuth)) {
    throw new TrustError('CERT_WRONG_PURPOSE', 'extKeyUsage', 'not a client-authentication certificate (EKU)', p.name);
  }
}

function checkPolicy(p: ParsedCertificate, options: ValidationOptions): Assurance {
  const held = policies(p.cert);
  const contactless = held.includes(CONTACTLESS_POLICY);
  if (contactless && !options.allowContactless) {
    throw new TrustError('CERT_POLICY', 'contactless', 'the contactless technical certificate (no PIN) is not accepted', p.name);
  }
  const allowed = options.policies ?? [IGC_SANTE_POLICY_ARC];
  if (!held.some((oid) => matches(oid, allowed))) {
    throw new TrustError('CERT_POLICY', 'certificatePolicies', `no accepted certificate policy (has ${held.join(', ') || 'none'})`, p.name);
  }
  return contactless ? 'card' : 'card+pin';
}

/** The certificates a name-chain walk from the leaf meets: only to tell which one pkijs refused. */
function nameChain(leaf: ParsedCertificate, pool: readonly ParsedCertificate[]): ParsedCertificate[] {
  const out = [leaf];
  let current = leaf;
  for (let i = 0; i < 8 && !isSelfIssued(current.cert); i++) {
    const next = pool.find((c) => !out.includes(c) && c.cert.subject.isEqual(current.cert.issuer));
    if (!next) break;
    out.push(next);
    current = next;
  }
  return out;
}

/** Turns pkijs's refusal into our code, naming the certificate where the rule says which. */
function refusal(result: { resultCode?: number | undefined; resultMessage?: string | undefined }, leaf: ParsedCertificate, pool: readonly ParsedCertificate[], now: Date): TrustError {
  const chain = nameChain(leaf, pool);
  const message = result.resultMessage ?? 'no valid certificate path';
  switch (result.resultCode) {
    case 8:
      for (const c of chain) checkValidity(c, now);
      return new TrustError('CERT_EXPIRED', 'validity', message);
    case 3:
    case 4:
    case 6:
    case 7:
    case 14:
      for (const c of chain.slice(1)) checkExtensions(c);
      return new TrustError('CERT_UNTRUSTED', 'basicConstraints', message, chain.slice(1).find((c) => !basicConstraints(c.cert).ca || !keyUsage(c.cert)?.has('keyCertSign'))?.name);
    case 10:
      return new TrustError('CERT_UNTRUSTED', 'nameChaining', message);
    case 0:
    case 98:
    case 99:
      return new TrustError('CERT_POLICY', 'certificatePolicies', message, leaf.name);
    default:
      if (result.resultCode !== undefined && result.resultCode >= 20 && result.resultCode <= 50) return new TrustError('CERT_UNTRUSTED', 'nameConstraints', message, leaf.name);
      return new TrustError('CERT_UNTRUSTED', 'path', `the certificate does not chain to a trust anchor (${message})`, leaf.name);
  }
}

/** RFC 5280 §6.1.4 (l, m): CAs below a pathLenConstraint. `path` is leaf first. */
function checkPathLength(path: readonly ParsedCertificate[]): void {
  for (let i = 1; i < path.length; i++) {
    const ca = path[i] as ParsedCertificate;
    const limit = basicConstraints(ca.cert).pathLen;
    if (limit === undefined) continue;
    // Intermediate CAs between this one and the leaf, self-issued ones not counted.
    const below = path.slice(1, i).filter((c) => !isSelfIssued(c.cert)).length;
    if (below > limit) throw new TrustError('CERT_UNTRUSTED', 'pathLenConstraint', `pathLenConstraint ${limit} exceeded (${below} CA below)`, ca.name);
  }
}

const holders = new Memo<ValidatedHolder>(1000);

function holderOf(p: ParsedCertificate): ValidatedHolder {
  const hit = holders.get(p.id);
  if (hit) return structuredClone(hit); // callers may change what they get: the memo keeps its own
  const info = certificateInfo(p.der);
  return holders.set(p.id, {
    ...nationalIdentity(info.subject.CN ?? ''),
    surname: info.subject.SN ?? '',
    givenName: info.subject.GN ?? '',
    profession: info.subject.title ? { code: null, label: info.subject.title } : null,
    certificateSerial: info.serialNumber,
    notBefore: info.notBefore.toISOString(),
    notAfter: info.notAfter.toISOString(),
  });
}

/**
 * Paths that validated, by leaf, trust material and rule options: the signatures and rules of a path do
 * not change with time, so a known path only has its validity dates and revocation checked again.
 */
const validated = new Memo<{ path: ParsedCertificate[]; assurance: Assurance }>(1000);

function pathKey(leaf: ParsedCertificate, anchors: ParsedCertificate[], intermediates: ParsedCertificate[], o: ValidationOptions): string {
  const ids = (list: ParsedCertificate[]): string => list.map((c) => c.id).sort().join(',');
  return [leaf.id, ids(anchors), ids(intermediates), o.allowSha1 ?? false, o.minRsaBits ?? 2048, o.purpose ?? 'authentication', (o.policies ?? []).join(','), o.allowContactless ?? false].join('|');
}

async function revocationOf(path: readonly ParsedCertificate[], crls: readonly ParsedCrl[], options: ValidationOptions, now: Date): Promise<RevocationStatus[]> {
  const out: RevocationStatus[] = [];
  for (let i = 0; i < path.length - 1; i++) out.push(await checkRevocation(path[i] as ParsedCertificate, path[i + 1] as ParsedCertificate, crls, options, now));
  return out;
}

export async function validateCertificate(certificate: CertificateInput, options: ValidationOptions): Promise<ValidationResult> {
  const now = options.now ?? new Date();
  const leaf = parseCertificate(certificate);
  const anchors = options.trustAnchors.map(parseCertificate);
  const intermediates = (options.intermediates ?? []).map(parseCertificate);
  const crls: ParsedCrl[] = (options.crls ?? []).map((c) => parseCrl(c));
  const key = pathKey(leaf, anchors, intermediates, options);
  const known = validated.get(key);
  if (known) {
    for (const p of known.path.slice(0, -1)) checkValidity(p, now);
    checkValidity(known.path[known.path.length - 1] as ParsedCertificate, now);
    const revocation = await revocationOf(known.path, crls, options, now);
    return { path: known.path.map((p) => p.node), holder: holderOf(leaf), assurance: known.assurance, revocation };
  }

  // The leaf's own rules first: they give the most precise answer.
  checkExtensions(leaf);
  checkValidity(leaf, now);
  checkAlgorithms(leaf, options, false);
  checkPurpose(leaf, options);
  const assurance = checkPolicy(leaf, options);

  const engine = new pkijs.CertificateChainValidationEngine({
    trustedCerts: anchors.map((a) => a.cert),
    certs: [...intermediates.map((i) => i.cert), leaf.cert],
    checkDate: now,
  });
  let verdict: pkijs.CertificateChainValidationEngineVerifyResult;
  try {
    verdict = await engine.verify({ passedWhenNotRevValues: true });
  } catch (error) {
    // pkijs throws its refusals as plain objects (or errors) with a resultCode.
    const e = error as { resultCode?: number; resultMessage?: string; code?: number; message?: string };
    throw refusal({ resultCode: e.resultCode ?? e.code, resultMessage: e.resultMessage ?? e.message }, leaf, [...intermediates, ...anchors], now);
  }
  if (!verdict.result || !verdict.certificatePath) throw refusal(verdict, leaf, [...intermediates, ...anchors], now);

  const pool = [leaf, ...intermediates, ...anchors];
  const path = verdict.certificatePath.map((c) => pool.find((p) => p.cert === c) as ParsedCertificate);
  checkPathLength(path);
  for (const [i, p] of path.entries()) {
    if (i === 0) continue;
    checkExtensions(p);
    checkAlgorithms(p, options, i === path.length - 1 && isSelfIssued(p.cert));
  }

  const revocation = await revocationOf(path, crls, options, now);
  validated.set(key, { path, assurance });
  return { path: path.map((p) => p.node), holder: holderOf(leaf), assurance, revocation };
}

