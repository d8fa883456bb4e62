/**
 * Where cpsd-idp keeps its state: oidc-provider's models (sessions, interactions, grants, codes, tokens)
 * through an adapter, and its own small records (the accounts logged in, the interaction's login nonce,
 * the upstream transactions) through `KeyValueStore`. In memory for one instance; in Redis so that
 * several instances behind a load balancer act as one (a login on one, refresh and UserInfo on another).
 *
 * The Redis layout (prefix `cpsd-idp:` by default), one string key per record, expiring with it:
 *   <Model>:<id>             the payload (JSON)          <Model>:<id>:consumed   when it was consumed
 *   grant:<grantId>          list of the keys of its codes and tokens (revoked together)
 *   uid:<uid>                a Session's id by its uid   userCode:<code>         a DeviceCode's id
 *   kv:<key>                 KeyValueStore records
 */
import type { Adapter, AdapterPayload } from 'oidc-provider';
import { CpsdError } from '../core/errors.js';

/** Single-use records with a lifetime: an account's claims, a login nonce, an upstream transaction. */
export interface KeyValueStore {
  put(key: string, value: string, ttlSeconds: number): Promise<void>;
  get(key: string): Promise<string | undefined>;
  /** Gets and deletes in one step: of two instances taking the same key, one gets it. */
  take(key: string): Promise<string | undefined>;
}

export class MemoryKeyValueStore implements KeyValueStore {
  readonly #map = new Map<string, { value: string; expiresAt: number }>();

  put(key: string, value: string, ttlSeconds: number): Promise<void> {
    this.#map.set(key, { value, expiresAt: Date.now() + ttlSeconds * 1000 });
    // Forget expired ones as we go so the map cannot grow without bound.
    if (this.#map.size > 10_000) for (const [k, v] of this.#map) if (v.expiresAt < Date.now()) this.#map.delete(k);
    return Promise.resolve();
  }

  get(key: string): Promise<string | undefined> {
    const entry = this.#map.get(key);
    if (entry && entry.expiresAt < Date.now()) this.#map.delete(key);
    return Promise.resolve(entry && entry.expiresAt >= Date.now() ? entry.value : undefined);
  }

  async take(key: string): Promise<string | undefined> {
    const value = await this.get(key);
    this.#map.delete(key);
    return value;
  }
}

/**
 * The part of a node-redis v5 client the stores use (its `createClient()` satisfies it without a cast).
 * Function-typed properties, so the options are checked strictly against the client's own.
 */
export interface RedisStoreClient {
  set: (key: string, value: string, options: { expiration: { type: 'EX'; value: number } }) => Promise<string | null>;
  get: (key: string) => Promise<string | null>;
  mGet: (keys: string[]) => Promise<(string | null)[]>;
  getDel: (key: string) => Promise<string | null>;
  del: (keys: string[]) => Promise<number>;
  rPush: (key: string, element: string) => Promise<number>;
  lRange: (key: string, start: number, stop: number) => Promise<string[]>;
  expire: (key: string, seconds: number) => Promise<number>;
}

/** Redis failed or did not answer in time: the request fails (a 500 page, a refused login), nothing is guessed. */
export class StoreError extends CpsdError {
  readonly code = 'STORE_UNAVAILABLE';
}

/** Models whose records belong to a grant: revoking the grant (logout, replayed code) removes them all. */
const GRANTABLE = new Set(['AccessToken', 'AuthorizationCode', 'RefreshToken', 'DeviceCode', 'BackchannelAuthenticationRequest']);

/** Redis commands bounded in time: node-redis queues commands while it reconnects, so an outage would hang. */
class Bounded {
  constructor(
    readonly client: RedisStoreClient,
    readonly prefix: string,
    readonly timeoutMs: number,
  ) {}

  async call<T>(what: string, command: (client: RedisStoreClient) => Promise<T>): Promise<T> {
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new StoreError(`Redis did not answer (${what}) within ${this.timeoutMs} ms`)), this.timeoutMs);
    });
    try {
      return await Promise.race([command(this.client), timeout]);
    } catch (error) {
      if (error instanceof StoreError) throw error;
      throw new StoreError(`Redis failed (${what}): ${error instanceof Error ? error.message : String(error)}`, { cause: error });
    } finally {
      clearTimeout(timer);
    }
  }
}

export interface RedisStoreOptions {
  /** Prepended to every key; default `cpsd-idp:`. */
  prefix?: string;
  /** Longest wait for one Redis command, in ms (default 2000). */
  timeoutMs?: number;
}

/** TTL of a record without expiresIn (oidc-provider gives one for every model; this is a bound, not a default). */
const MAX_TTL = 14 * 24 * 3600;
const ttl = (expiresIn: number | undefined): number => Math.max(1, Math.min(MAX_TTL, Math.ceil(expiresIn ?? MAX_TTL)));

/** oidc-provider's adapter over Redis: `adapter: redisAdapterFactory(client)` in its configuration. */
export function redisAdapterFactory(client: RedisStoreClient, options: RedisStoreOptions = {}): (name: string) => Adapter {
  const redis = new Bounded(client, options.prefix ?? 'cpsd-idp:', options.timeoutMs ?? 2000);
  return (name) => new RedisAdapter(name, redis);
}

class RedisAdapter implements Adapter {
  constructor(
    readonly name: string,
    readonly redis: Bounded,
  ) {}

  #key(id: string): string {
    return `${this.redis.prefix}${this.name}:${id}`;
  }

  async upsert(id: string, payload: AdapterPayload, expiresIn: number): Promise<void> {
    const key = this.#key(id);
    const seconds = ttl(expiresIn);
    const { prefix } = this.redis;
    await this.redis.call(`upsert ${this.name}`, async (c) => {
      // Issued together, without waiting for each reply: node-redis writes them in one go.
      const writes: Promise<unknown>[] = [c.set(key, JSON.stringify(payload), { expiration: { type: 'EX', value: seconds } })];
      if (payload.userCode) writes.push(c.set(`${prefix}userCode:${payload.userCode}`, id, { expiration: { type: 'EX', value: seconds } }));
      if (payload.uid) writes.push(c.set(`${prefix}uid:${payload.uid}`, id, { expiration: { type: 'EX', value: seconds } }));
      if (GRANTABLE.has(this.name) && payload.grantId) {
        const grant = `${prefix}grant:${payload.grantId}`;
        // The index lives as long as the longest of its records (a refresh token outlives the code):
        // its lifetime is set when the list is made (the first push), not at every record.
        writes.push(c.rPush(grant, key).then((length) => (length === 1 ? c.expire(grant, MAX_TTL) : undefined)));
      }
      await Promise.all(writes);
    });
  }

  async find(id: string): Promise<AdapterPayload | undefined> {
    const key = this.#key(id);
    const [payload, consumed] = await this.redis.call(`find ${this.name}`, (c) => c.mGet([key, `${key}:consumed`]));
    if (!payload) return undefined;
    const parsed = JSON.parse(payload) as AdapterPayload;
    return consumed ? { ...parsed, consumed: Number(consumed) } : parsed;
  }

  async #findBy(index: 'uid' | 'userCode', value: string): Promise<AdapterPayload | undefined> {
    const id = await this.redis.call(`find ${this.name} by ${index}`, (c) => c.get(`${this.redis.prefix}${index}:${value}`));
    return id ? this.find(id) : undefined;
  }

  findByUid(uid: string): Promise<AdapterPayload | undefined> {
    return this.#findBy('uid', uid);
  }

  findByUserCode(userCode: string): Promise<AdapterPayload | undefined> {
    return this.#findBy('userCode', userCode);
  }

  async consume(id: string): Promise<void> {
    const key = this.#key(id);
    // A separate key beside the payload, so the payload is never rewritten (nor its lifetime prolonged).
    await this.redis.call(`consume ${this.name}`, (c) => c.set(`${key}:consumed`, String(Math.floor(Date.now() / 1000)), { expiration: { type: 'EX', value: MAX_TTL } }));
  }

  async destroy(id: string): Promise<void> {
    const key = this.#key(id);
    await this.redis.call(`destroy ${this.name}`, (c) => c.del([key, `${key}:consumed`]));
  }

  async revokeByGrantId(grantId: string): Promise<void> {
    const grant = `${this.redis.prefix}grant:${grantId}`;
    await this.redis.call('revoke grant', async (c) => {
      const keys = await c.lRange(grant, 0, -1);
      await c.del([...keys, ...keys.map((k) => `${k}:consumed`), grant]);
    });
  }
}

export class RedisKeyValueStore implements KeyValueStore {
  readonly #redis: Bounded;

  constructor(client: RedisStoreClient, options: RedisStoreOptions = {}) {
    this.#redis = new Bounded(client, options.prefix ?? 'cpsd-idp:', options.timeoutMs ?? 2000);
  }

  async put(key: string, value: string, ttlSeconds: number): Promise<void> {
    await this.#redis.call('put', (c) => c.set(`${this.#redis.prefix}kv:${key}`, value, { expiration: { type: 'EX', value: ttl(ttlSeconds) } }));
  }

  async get(key: string): Promise<string | undefined> {
    return (await this.#redis.call('get', (c) => c.get(`${this.#redis.prefix}kv:${key}`))) ?? undefined;
  }

  async take(key: string): Promise<string | undefined> {
    return (await this.#redis.call('take', (c) => c.getDel(`${this.#redis.prefix}kv:${key}`))) ?? undefined;
  }
}
