/**
 * The authentication token, in the Web eID format `web-eid:1.0` (github.com/web-eid/web-eid-system-architecture-doc, "Authentication token format"), so that existing Web eID
 * validators can check it given IGC-Santé trust anchors: the card signs, with its authentication key,
 * H(origin) ‖ H(nonce) — both hashes of the UTF-8 strings, H being the algorithm's hash — and the origin
 * is the browser-enforced one from the WebSocket handshake.
 */
import { createHash } from 'node:crypto';
import { CpsdError } from '../core/errors.js';

export const TOKEN_FORMAT = 'web-eid:1.0';
export const NONCE_MIN_LENGTH = 44; // 256 bits in base64
export const NONCE_MAX_LENGTH = 128;
export const ORIGIN_MAX_LENGTH = 255;
export const TOKEN_MIN_LENGTH = 100;
export const TOKEN_MAX_LENGTH = 10_000;

export type TokenAlgorithm = 'RS256' | 'PS256';

export interface AuthToken {
  unverifiedCertificate: string;
  algorithm: TokenAlgorithm;
  signature: string;
  format: typeof TOKEN_FORMAT;
  appVersion: string;
}

export type TokenErrorCode = 'TOKEN_MALFORMED' | 'ORIGIN_INVALID' | 'NONCE_INVALID' | 'NONCE_EXPIRED' | 'SIGNATURE_INVALID';

export class TokenError extends CpsdError {
  readonly code: TokenErrorCode;

  constructor(code: TokenErrorCode, message: string) {
    super(message);
    this.code = code;
  }
}

/** Web eID's origin rule: https://host[:port] (or wss), no path, query, fragment; ≤ 255 characters. */
export function checkOrigin(origin: string, options: { allowHttpLocalhost?: boolean } = {}): string {
  let url: URL;
  try {
    url = new URL(origin);
  } catch {
    throw new TokenError('ORIGIN_INVALID', 'not an origin');
  }
  const local = url.hostname === 'localhost' || url.hostname === '127.0.0.1' || url.hostname === '[::1]';
  const scheme = url.protocol === 'https:' || url.protocol === 'wss:' || (options.allowHttpLocalhost === true && url.protocol === 'http:' && local);
  if (!scheme || url.origin !== origin || origin.length > ORIGIN_MAX_LENGTH) {
    throw new TokenError('ORIGIN_INVALID', 'the origin must be https://host[:port], at most 255 characters');
  }
  return origin;
}

export function checkNonce(nonce: string): string {
  if (nonce.length < NONCE_MIN_LENGTH || nonce.length > NONCE_MAX_LENGTH) {
    throw new TokenError('NONCE_INVALID', `the nonce must be ${NONCE_MIN_LENGTH} to ${NONCE_MAX_LENGTH} characters`);
  }
  return nonce;
}

/** The data the card signs: H(origin) ‖ H(nonce), SHA-256 for RS256/PS256. */
export function signedData(origin: string, nonce: string): Uint8Array {
  const h = (s: string): Buffer => createHash('sha256').update(s, 'utf8').digest();
  return new Uint8Array(Buffer.concat([h(origin), h(nonce)]));
}
