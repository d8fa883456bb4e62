/**
 * Server-side verification of a `web-eid:1.0` token from a CPx card (exported as `cpsd/verify`):
 *
 *   const holder = verify(token, { origin: 'https://app.example', nonce, trustAnchors: [root], intermediates: [ca], crls });
 *
 * The signed data is rebuilt from the server's own origin and the nonce it issued, so a valid signature
 * also proves the origin and the nonce. Every failure is a TokenError with a stable code.
 */
import { constants, verify as verifySignature, X509Certificate } from 'node:crypto';
import { revokedSerials } from './crl.js';
import { certificateInfo, nationalIdentity, type NationalIdKind } from './holder.js';
import { TOKEN_FORMAT, TOKEN_MAX_LENGTH, TOKEN_MIN_LENGTH, TokenError, checkNonce, checkOrigin, signedData, type AuthToken } from './token.js';

export interface VerifyOptions {
  /** The relying party's own origin (never taken from the token or the request). */
  origin: string;
  /** The nonce this server issued for this session (already taken out of its store). */
  nonce: string;
  /** Self-signed roots, DER or X509Certificate. */
  trustAnchors: readonly (Uint8Array | X509Certificate)[];
  /** Intermediate CAs (e.g. "AC IGC-SANTE FORT PERSONNES"). */
  intermediates?: readonly (Uint8Array | X509Certificate)[];
  /** DER CRLs, signed by a trusted certificate. */
  crls?: readonly Uint8Array[];
  now?: Date;
  /** Development only: accept http://localhost origins. */
  allowHttpLocalhost?: boolean;
}

export interface VerifiedHolder {
  nationalId: string;
  idKind: NationalIdKind;
  rpps: string | null;
  surname: string;
  givenName: string;
  profession: { code: null; label: string } | null;
  certificateSerial: string;
  notBefore: string;
  notAfter: string;
  /** The verified authentication certificate (base64 DER). */
  certificate: string;
}

const toCert = (c: Uint8Array | X509Certificate): X509Certificate => (c instanceof X509Certificate ? c : new X509Certificate(c));

function parseToken(token: unknown): AuthToken {
  let value = token;
  if (typeof token === 'string') {
    if (token.length < TOKEN_MIN_LENGTH || token.length > TOKEN_MAX_LENGTH) {
      throw new TokenError('TOKEN_MALFORMED', `a token is ${TOKEN_MIN_LENGTH} to ${TOKEN_MAX_LENGTH} characters`);
    }
    try {
      value = JSON.parse(token);
    } catch {
      throw new TokenError('TOKEN_MALFORMED', 'the token is not JSON');
    }
  } else if (JSON.stringify(token ?? null).length > TOKEN_MAX_LENGTH) {
    throw new TokenError('TOKEN_MALFORMED', `a token is at most ${TOKEN_MAX_LENGTH} characters`);
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) throw new TokenError('TOKEN_MALFORMED', 'the token is not an object');
  const t = value as Record<string, unknown>;
  for (const key of ['unverifiedCertificate', 'algorithm', 'signature', 'format'] as const) {
    if (typeof t[key] !== 'string' || (t[key] as string).length === 0) throw new TokenError('TOKEN_MALFORMED', `missing or empty "${key}"`);
  }
  if (!String(t.format).startsWith('web-eid:1')) throw new TokenError('TOKEN_MALFORMED', `unsupported format ${JSON.stringify(t.format)}`);
  if (t.algorithm !== 'RS256' && t.algorithm !== 'PS256') throw new TokenError('TOKEN_MALFORMED', `unsupported algorithm ${JSON.stringify(t.algorithm)}`);
  return {
    unverifiedCertificate: String(t.unverifiedCertificate),
    algorithm: t.algorithm,
    signature: String(t.signature),
    format: TOKEN_FORMAT,
    appVersion: typeof t.appVersion === 'string' ? t.appVersion : '',
  };
}

function base64(value: string, what: string): Buffer {
  if (!/^[A-Za-z0-9+/]+={0,2}$/.test(value)) throw new TokenError('TOKEN_MALFORMED', `${what} is not base64`);
  return Buffer.from(value, 'base64');
}

/** Builds the chain up to a trust anchor; throws CERT_UNTRUSTED when it cannot. */
function chain(cert: X509Certificate, anchors: X509Certificate[], intermediates: X509Certificate[]): X509Certificate[] {
  const path = [cert];
  let current = cert;
  for (let depth = 0; depth < 6; depth++) {
    const anchor = anchors.find((a) => current.checkIssued(a) && current.verify(a.publicKey));
    if (anchor) return [...path, anchor];
    const next = intermediates.find((i) => i !== current && current.checkIssued(i) && current.verify(i.publicKey) && i.ca);
    if (!next) break;
    path.push(next);
    current = next;
  }
  throw new TokenError('CERT_UNTRUSTED', 'the certificate does not chain to a trusted root');
}

export function verify(token: unknown, options: VerifyOptions): VerifiedHolder {
  const origin = checkOrigin(options.origin, { allowHttpLocalhost: options.allowHttpLocalhost ?? false });
  const nonce = checkNonce(options.nonce);
  const t = parseToken(token);
  const der = base64(t.unverifiedCertificate, 'unverifiedCertificate');
  let cert: X509Certificate;
  try {
    cert = new X509Certificate(der);
  } catch {
    throw new TokenError('TOKEN_MALFORMED', 'unverifiedCertificate is not an X.509 certificate');
  }
  const info = certificateInfo(new Uint8Array(der));
  const now = options.now ?? new Date();
  if (info.notBefore > now) throw new TokenError('CERT_NOT_YET_VALID', `the certificate is valid from ${info.notBefore.toISOString()}`);
  if (info.notAfter < now) throw new TokenError('CERT_EXPIRED', `the certificate expired on ${info.notAfter.toISOString()}`);
  // Purpose: client authentication (EKU clientAuth when an EKU is present) and a CPx auth certificate's
  // keyUsage (digitalSignature); a signature (non-repudiation) certificate is refused.
  const eku = cert.keyUsage;
  if (eku && eku.length > 0 && !eku.includes('1.3.6.1.5.5.7.3.2')) throw new TokenError('CERT_WRONG_PURPOSE', 'not a client-authentication certificate');
  if (info.keyUsage && (!info.keyUsage.has(0) || info.keyUsage.has(1))) {
    throw new TokenError('CERT_WRONG_PURPOSE', 'not an authentication certificate (keyUsage)');
  }
  const anchors = options.trustAnchors.map(toCert);
  const intermediates = (options.intermediates ?? []).map(toCert);
  const path = chain(cert, anchors, intermediates);
  for (const crl of options.crls ?? []) {
    let revoked: Set<string>;
    try {
      revoked = revokedSerials(crl, path.slice(1));
    } catch (error) {
      throw new TokenError('CRL_INVALID', (error as Error).message);
    }
    if (revoked.has(info.serialNumber)) throw new TokenError('CERT_REVOKED', 'the certificate is revoked');
  }
  const data = signedData(origin, nonce);
  const signature = base64(t.signature, 'signature');
  const key = t.algorithm === 'PS256' ? { key: cert.publicKey, padding: constants.RSA_PKCS1_PSS_PADDING, saltLength: 32 } : cert.publicKey;
  if (!verifySignature('sha256', data, key, signature)) {
    throw new TokenError('SIGNATURE_INVALID', 'the signature does not match this origin and nonce');
  }
  return {
    ...nationalIdentity(info.subject.CN ?? ''),
    surname: info.subject.SN ?? '',
    givenName: info.subject.GN ?? '',
    profession: info.subject.title ? { code: null, label: info.subject.title } : null,
    certificateSerial: info.serialNumber,
    notBefore: info.notBefore.toISOString(),
    notAfter: info.notAfter.toISOString(),
    certificate: der.toString('base64'),
  };
}

export { MemoryNonceStore, NONCE_TTL_MS, consumeNonce, issueNonce, type NonceStore } from './nonce.js';
export { TOKEN_FORMAT, TokenError, signedData, type AuthToken } from './token.js';
