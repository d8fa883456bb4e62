/**
 * CIBA through the workstation's daemon (docs/idp.md, "CIBA"): what the card signs, computed the same way
 * by the daemon (daemon/idp-link.ts, from what its PIN window shows) and by cpsd-idp (idp/ciba.ts, from
 * its own records). Both are the `nonce` of a web-eid:1.0 token for the IdP's origin, so `cpsd/verify`
 * checks them as it checks a browser login: H(origin) ‖ H(nonce), certificate chain, revocation.
 *
 * Each value is a SHA-256 in hex (64 characters, a valid token nonce) over a domain-separated text, so a
 * signature made for one purpose is never valid for another: a browser login's nonce is a random one the
 * IdP issued and stored, never one of these digests.
 */
import { createHash } from 'node:crypto';

const digest = (parts: readonly string[]): string => createHash('sha256').update(JSON.stringify(parts), 'utf8').digest('hex');

/**
 * Registration of a workstation as the holder's authentication device: the IdP's fresh challenge (sent
 * on this connection) and the thumbprint of the device key the daemon made for this card insertion.
 */
export function registrationNonce(challenge: string, deviceKeyThumbprint: string): string {
  return digest(['cpsd-ciba-register-v1', challenge, deviceKeyThumbprint]);
}

/** One CIBA request: its auth_req_id, the client that asked and the binding message the person saw. */
export function requestNonce(authReqId: string, clientId: string, bindingMessage: string | undefined): string {
  return digest(['cpsd-ciba-request-v1', authReqId, clientId, bindingMessage ?? '']);
}

/** What the device key signs to resume a registration on a new connection (no card, no PIN). */
export function resumeData(origin: string, challenge: string): Buffer {
  return Buffer.from(JSON.stringify(['cpsd-ciba-resume-v1', origin, challenge]), 'utf8');
}

/** RFC 7638 thumbprint of a P-256 public JWK. */
export function jwkThumbprint(jwk: { kty?: unknown; crv?: unknown; x?: unknown; y?: unknown }): string {
  if (jwk.kty !== 'EC' || jwk.crv !== 'P-256' || typeof jwk.x !== 'string' || typeof jwk.y !== 'string') throw new TypeError('not a P-256 public JWK');
  return createHash('sha256').update(JSON.stringify({ crv: jwk.crv, kty: jwk.kty, x: jwk.x, y: jwk.y })).digest('base64url');
}

/** Messages on the device link (the daemon opens it: wss://<idp>/ciba/device). */
export type IdpToDevice =
  | { type: 'hello'; challenge: string }
  | { type: 'registered'; sub: string; expiresIn: number }
  | { type: 'refused'; code: string; message: string }
  | { type: 'request'; id: string; client: { id: string; name: string }; bindingMessage?: string; scope: string; expiresAt: number };

export type DeviceToIdp =
  | { type: 'register'; token: unknown; deviceKey: Record<string, unknown> }
  | { type: 'resume'; sub: string; deviceKey: Record<string, unknown>; signature: string }
  | { type: 'unregister' }
  | { type: 'result'; id: string; token: unknown }
  | { type: 'result'; id: string; error: string };

/** The path of the device link on the IdP. */
export const DEVICE_LINK_PATH = '/ciba/device';
