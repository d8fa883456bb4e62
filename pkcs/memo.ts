/**
 * Bounded memos for the trust layer: what depends only on bytes (a parsed certificate, a signature that
 * verified, a path that validated) is worked out once; what depends on time is checked on every call.
 */
import { createHash } from 'node:crypto';

export const digest = (bytes: Uint8Array): string => createHash('sha256').update(bytes).digest('base64');

export class Memo<V> {
  readonly #map = new Map<string, V>();

  constructor(private readonly max = 2000) {}

  get(key: string): V | undefined {
    return this.#map.get(key);
  }

  set(key: string, value: V): V {
    // Oldest first out: a flood of distinct certificates cannot grow it without bound.
    if (this.#map.size >= this.max) this.#map.delete(this.#map.keys().next().value as string);
    this.#map.set(key, value);
    return value;
  }
}
