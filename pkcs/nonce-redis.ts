/**
 * A NonceStore in Redis (≥ 6.2, for GETDEL), for a relying party with several servers: a nonce issued by
 * one server is good exactly once on any of them.
 *
 *   const client = await createClient({ url: 'redis://…' }).connect();   // node-redis v5, your dependency
 *   const nonces = new RedisNonceStore(client);
 *
 * cpsd/verify does not import `redis` (only cpsd-idp does): any client with the two methods of RedisNonceClient fits, node-redis
 * v5's `createClient()` as it is.
 */
import { CpsdError } from '../core/errors.js';
import type { NonceStore } from './nonce.js';

/**
 * The part of a Redis client the store uses; node-redis v5's client satisfies it without a cast.
 * Function-typed properties rather than methods, so that the options are checked strictly against the
 * client's own (methods' parameters are bivariant).
 */
export interface RedisNonceClient {
  /** `SET key value PX ms NX`: 'OK', or null when the key already exists. */
  set: (key: string, value: string, options: { expiration: { type: 'PX'; value: number }; condition: 'NX' }) => Promise<string | null>;
  /** `GETDEL key`: the value, or null when there is no such key (never issued, taken or expired). */
  getDel: (key: string) => Promise<string | null>;
}

export interface RedisNonceStoreOptions {
  /** Prepended to every nonce to make its key; default `cpsd:nonce:`. */
  prefix?: string;
  /**
   * Longest wait for Redis, in ms (default 2000). node-redis queues commands while it reconnects, so
   * without a bound a login would hang for as long as Redis is down.
   */
  timeoutMs?: number;
}

export type NonceStoreErrorCode = 'NONCE_STORE_UNAVAILABLE' | 'NONCE_STORE_CONFLICT';

/**
 * The store could not do its job: `NONCE_STORE_UNAVAILABLE` (Redis failed, did not answer in time, or
 * held something that is not an expiry) or `NONCE_STORE_CONFLICT` (`put` of a nonce already stored).
 * Either way the nonce is refused, never accepted; the client's error is the `cause`.
 */
export class NonceStoreError extends CpsdError {
  readonly code: NonceStoreErrorCode;

  constructor(code: NonceStoreErrorCode, message: string, options?: ErrorOptions) {
    super(message, options);
    this.code = code;
  }
}

export class RedisNonceStore implements NonceStore {
  readonly #client: RedisNonceClient;
  readonly #prefix: string;
  readonly #timeoutMs: number;

  constructor(client: RedisNonceClient, options: RedisNonceStoreOptions = {}) {
    const timeoutMs = options.timeoutMs ?? 2000;
    if (!Number.isFinite(timeoutMs) || timeoutMs <= 0) throw new RangeError(`timeoutMs must be a positive number, not ${timeoutMs}`);
    this.#client = client;
    this.#prefix = options.prefix ?? 'cpsd:nonce:';
    this.#timeoutMs = timeoutMs;
  }

  async put(nonce: string, expiresAt: number): Promise<void> {
    if (!Number.isFinite(expiresAt)) throw new RangeError(`expiresAt must be a finite epoch in ms, not ${expiresAt}`);
    // Redis drops the key at expiry, so a store shared by many servers needs no sweeping; at least
    // 1 ms because PX 0 is an error.
    const ttl = Math.max(1, Math.ceil(expiresAt - Date.now()));
    // NX: a put never rewrites (and so never prolongs) a nonce already waiting to be used.
    const reply = await this.#call('put', () =>
      this.#client.set(this.#prefix + nonce, String(expiresAt), { expiration: { type: 'PX', value: ttl }, condition: 'NX' }),
    );
    if (reply === null) throw new NonceStoreError('NONCE_STORE_CONFLICT', 'this nonce is already stored');
  }

  async take(nonce: string): Promise<number | undefined> {
    // A missing session nonce (undefined at run time) is unknown, not a key named "…undefined".
    if (typeof nonce !== 'string' || nonce === '') return undefined;
    // GETDEL is one atomic command: of many servers taking the same nonce at once, one gets the value.
    const value = await this.#call('take', () => this.#client.getDel(this.#prefix + nonce));
    if (value === null) return undefined;
    const expiresAt = Number(value);
    if (value === '' || !Number.isFinite(expiresAt)) {
      throw new NonceStoreError('NONCE_STORE_UNAVAILABLE', `the key ${this.#prefix}… holds something that is not an expiry`);
    }
    return expiresAt;
  }

  async #call<T>(operation: 'put' | 'take', command: () => Promise<T>): Promise<T> {
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(
        () => reject(new NonceStoreError('NONCE_STORE_UNAVAILABLE', `Redis did not answer the nonce ${operation} within ${this.#timeoutMs} ms`)),
        this.#timeoutMs,
      );
    });
    try {
      // A late reply after the timeout is dropped: for take, the nonce is then lost, which refuses it.
      return await Promise.race([command(), timeout]);
    } catch (error) {
      if (error instanceof NonceStoreError) throw error;
      throw new NonceStoreError('NONCE_STORE_UNAVAILABLE', `the nonce ${operation} failed in Redis: ${error instanceof Error ? error.message : String(error)}`, { cause: error });
    } finally {
      clearTimeout(timer);
    }
  }
}
