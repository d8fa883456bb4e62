/**
 * Challenge nonces for the relying party: 32 random bytes (base64, 44 characters), single use, 5-minute
 * lifetime. The store is an interface so that several servers can share one (Redis, a database…).
 */
import { randomBytes } from 'node:crypto';
import { TokenError } from './token.js';

export interface NonceStore {
  /** Remembers a nonce until `expiresAt` (epoch ms). */
  put(nonce: string, expiresAt: number): Promise<void> | void;
  /** Removes and returns the nonce's expiry, or undefined if unknown: a nonce is good once. */
  take(nonce: string): Promise<number | undefined> | number | undefined;
}

export class MemoryNonceStore implements NonceStore {
  readonly #map = new Map<string, number>();
  put(nonce: string, expiresAt: number): void {
    this.#map.set(nonce, expiresAt);
    // Forget expired ones as we go so the map cannot grow without bound.
    if (this.#map.size > 10_000) for (const [n, t] of this.#map) if (t < Date.now()) this.#map.delete(n);
  }
  take(nonce: string): number | undefined {
    const t = this.#map.get(nonce);
    this.#map.delete(nonce);
    return t;
  }
}

export const NONCE_TTL_MS = 5 * 60_000;

export async function issueNonce(store: NonceStore, ttlMs = NONCE_TTL_MS): Promise<string> {
  const nonce = randomBytes(32).toString('base64');
  await store.put(nonce, Date.now() + ttlMs);
  return nonce;
}

/** Takes a nonce out of the store: throws NONCE_INVALID if unknown, already used or expired. */
export async function consumeNonce(store: NonceStore, nonce: string, now = Date.now()): Promise<string> {
  const expiresAt = await store.take(nonce);
  if (expiresAt === undefined) throw new TokenError('NONCE_INVALID', 'unknown or already used nonce');
  if (expiresAt < now) throw new TokenError('NONCE_EXPIRED', 'the nonce expired');
  return nonce;
}
