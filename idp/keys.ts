/** Signing keys of cpsd-idp (private JWKs), without loading oidc-provider (which warns on Node 20 when imported). */
import { generateKeyPairSync, randomBytes } from 'node:crypto';
import type { JWK } from 'oidc-provider';

/** A fresh RS256 signing key (private JWK) with a random kid. */
export function newSigningKey(): JWK {
  const { privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
  return { ...(privateKey.export({ format: 'jwk' }) as JWK), alg: 'RS256', use: 'sig', kid: randomBytes(8).toString('hex') };
}

/** Signing keys for --sim and tests: one fresh key, lost at exit. */
export function generatedJwks(): { keys: JWK[] } {
  return { keys: [newSigningKey()] };
}
