/**
 * Server-side verification of a `web-eid:1.0` token from a CPx card (exported as `cpsd/verify`):
 *
 *   const holder = await verify(token, { origin: 'https://app.example', nonce, trustAnchors: [root], intermediates: [ca] });
 *
 * The signed data is rebuilt from the server's own origin and the nonce it issued, so a valid signature
 * also proves the origin and the nonce. The certificate goes through `validateCertificate` (validate.ts:
 * RFC 5280 path, IGC-Santé profile, revocation fail-closed). Every failure has a stable code: a
 * TokenError for the token, a TrustError for the certificate.
 *
 * A token made by a local application (a program on the workstation, no browser: the daemon binds it to
 * the origin "null") verifies only when the caller says so, `{ localApplication: true }` instead of
 * `origin`: a web login never accepts one, a local-application login accepts nothing else.
 */
import { constants, verify as verifySignature } from 'node:crypto';
import { TOKEN_FORMAT, TOKEN_MAX_LENGTH, TOKEN_MIN_LENGTH, TokenError, checkNonce, checkOrigin, signedData, type AuthToken } from './token.js';
import type { Assurance, ValidatedHolder, ValidationOptions } from './trust-types.js';
import { validateCertificate } from './validate.js';
import { parseCertificate, publicKeyOf } from './x509.js';

/** The origin the daemon binds a local application's token to (its connection has no Origin header). */
export const LOCAL_APPLICATION_ORIGIN = 'null';

interface CommonVerifyOptions extends ValidationOptions {
  /** The nonce this server issued for this login (already taken out of its store). */
  nonce: string;
}

/** A token made by a web page: bound to the relying party's origin. */
export interface WebVerifyOptions extends CommonVerifyOptions {
  /** The relying party's own origin, https://host[:port] (never taken from the token or the request). */
  origin: string;
  /** Development only: accept http://localhost, http://127.0.0.1 and http://[::1] origins. */
  allowHttpLocalhost?: boolean;
  localApplication?: false;
}

/**
 * A token made by a local application (no browser): bound to the origin "null". Only for the endpoint of
 * your desktop application; a web page can never get such a token (the daemon refuses `Origin: null`).
 */
export interface LocalApplicationVerifyOptions extends CommonVerifyOptions {
  /** Exactly `true`: accept only a token bound to "null". */
  localApplication: true;
  origin?: never;
  allowHttpLocalhost?: never;
}

export type VerifyOptions = WebVerifyOptions | LocalApplicationVerifyOptions;

export interface VerifiedHolder extends ValidatedHolder {
  /** How the key was protected: 'card+pin', or 'card' for a contactless technical certificate. */
  assurance: Assurance;
  /** The verified authentication certificate (base64 DER). */
  certificate: string;
  /** The origin the signature was checked for: yours, or "null" for a local application's token. */
  origin: string;
}

/** The origin to rebuild the signed data with: the caller's own choice, never a value from the token. */
function expectedOrigin(options: VerifyOptions): string {
  const o = options as { origin?: unknown; localApplication?: unknown; allowHttpLocalhost?: unknown };
  if (o.localApplication === true) {
    if (o.origin !== undefined || o.allowHttpLocalhost === true) {
      throw new TokenError('ORIGIN_INVALID', 'localApplication takes no origin: a local application\'s token is bound to "null"');
    }
    return LOCAL_APPLICATION_ORIGIN;
  }
  if (o.localApplication !== undefined && o.localApplication !== false) {
    throw new TokenError('ORIGIN_INVALID', 'localApplication is true or false');
  }
  if (typeof o.origin !== 'string') throw new TokenError('ORIGIN_INVALID', 'origin (your own) is required, or localApplication: true');
  // "null" is not an origin checkOrigin accepts: a local application's token needs localApplication.
  return checkOrigin(o.origin, { allowHttpLocalhost: o.allowHttpLocalhost === true });
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
  const origin = expectedOrigin(options);
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
    throw new TokenError('SIGNATURE_INVALID', `the signature does not match ${origin === LOCAL_APPLICATION_ORIGIN ? 'a local application (origin "null")' : 'this origin'} and nonce`);
  }
  const result = await validateCertificate(leaf.der, options);
  return { ...result.holder, assurance: result.assurance, certificate: der.toString('base64'), origin };
}

export { MemoryNonceStore, NONCE_TTL_MS, consumeNonce, issueNonce, type NonceStore } from './nonce.js';
export { NonceStoreError, RedisNonceStore, type RedisNonceClient } from './nonce-redis.js';
export { TOKEN_FORMAT, TokenError, signedData, type AuthToken } from './token.js';
export { CONTACTLESS_POLICY, IGC_SANTE_POLICY_ARC, validateCertificate } from './validate.js';
export { MemoryRevocationCache } from './revocation.js';
export { TrustError, type Assurance, type CertificateInput, type RevocationCache, type RevocationMode, type TrustErrorCode, type ValidationOptions, type ValidationResult } from './trust-types.js';
