/**
 * Server-side verification of a `web-eid:1.0` token from a CPx card (exported as `cpsd/verify`):
 *
 *   const holder = await verify(token, { origin: 'https://app.example', nonce, trustAnchors: [root], intermediates: [ca] });
 *
 * The signed data is rebuilt from the server's own origin and the nonce it issued, so a valid signature
 * also proves the origin and the nonce. The certificate goes through `validateCertificate` (validate.ts:
 * RFC 5280 path, IGC-Santé profile, revocation fail-closed). Every failure has a stable code: a
 * TokenError for the token, a TrustError for the certificate.
 */
import { constants, verify as verifySignature } from 'node:crypto';
import { TOKEN_FORMAT, TOKEN_MAX_LENGTH, TOKEN_MIN_LENGTH, TokenError, checkNonce, checkOrigin, signedData, type AuthToken } from './token.js';
import type { Assurance, ValidatedHolder, ValidationOptions } from './trust-types.js';
import { validateCertificate } from './validate.js';
import { parseCertificate, publicKeyOf } from './x509.js';

export interface VerifyOptions extends ValidationOptions {
  /** The relying party's own origin (never taken from the token or the request). */
  origin: string;
  /** The nonce this server issued for this session (already taken out of its store). */
  nonce: string;
  /** Development only: accept http://localhost origins. */
  allowHttpLocalhost?: boolean;
}

export interface VerifiedHolder extends ValidatedHolder {
  /** How the key was protected: 'card+pin', or 'card' for a contactless technical certificate. */
  assurance: Assurance;
  /** The verified authentication certificate (base64 DER). */
  certificate: string;
}

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

export async function verify(token: unknown, options: VerifyOptions): Promise<VerifiedHolder> {
  const origin = checkOrigin(options.origin, { allowHttpLocalhost: options.allowHttpLocalhost ?? false });
  const nonce = checkNonce(options.nonce);
  const t = parseToken(token);
  const der = base64(t.unverifiedCertificate, 'unverifiedCertificate');
  let leaf;
  try {
    leaf = parseCertificate(new Uint8Array(der));
  } catch {
    throw new TokenError('TOKEN_MALFORMED', 'unverifiedCertificate is not an X.509 certificate');
  }
  // RS256 and PS256 are RSA signatures: a certificate with another key type does not match the token.
  const key = publicKeyOf(leaf);
  if (key.type !== 'rsa') throw new TokenError('SIGNATURE_INVALID', `a ${t.algorithm} token needs an RSA key, the certificate has ${key.type}`);
  const signature = base64(t.signature, 'signature');
  const data = signedData(origin, nonce);
  const params = t.algorithm === 'PS256' ? { key: leaf.node.publicKey, padding: constants.RSA_PKCS1_PSS_PADDING, saltLength: 32 } : leaf.node.publicKey;
  // The cheap check first: a token for another origin or nonce goes no further (no OCSP request).
  if (!verifySignature('sha256', data, params, signature)) {
    throw new TokenError('SIGNATURE_INVALID', 'the signature does not match this origin and nonce');
  }
  const result = await validateCertificate(leaf.der, options);
  return { ...result.holder, assurance: result.assurance, certificate: der.toString('base64') };
}

export { MemoryNonceStore, NONCE_TTL_MS, consumeNonce, issueNonce, type NonceStore } from './nonce.js';
export { NonceStoreError, RedisNonceStore, type RedisNonceClient } from './nonce-redis.js';
export { TOKEN_FORMAT, TokenError, signedData, type AuthToken } from './token.js';
export { CONTACTLESS_POLICY, IGC_SANTE_POLICY_ARC, validateCertificate } from './validate.js';
export { MemoryRevocationCache } from './revocation.js';
export { TrustError, type Assurance, type CertificateInput, type RevocationCache, type RevocationMode, type TrustErrorCode, type ValidationOptions, type ValidationResult } from './trust-types.js';
