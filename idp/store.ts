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
 *
 * With `replication` (Redis Sentinel: a primary and its replicas), every write is followed on the same
 * connection by `WAIT <replicas> <timeoutMs>`, so that a request that wrote (the login that ends with the
 * code, the token request, a refresh) goes on only once a replica holds what it wrote: the replica that
 * Sentinel promotes when the primary dies. Docs: docs/idp.md, "Redis Sentinel".
 */
import type { Adapter, AdapterPayload } from 'oidc-provider';
import { CpsdError } from '../core/errors.js';
import type { RedisNonceClient } from '../pkcs/nonce-redis.js';
import type { RedisSettings } from './config.js';

/** Single-use records with a lifetime: an account's claims, a login nonce, an upstream transaction. */
export interface KeyValueStore {
  put(key: string, value: string, ttlSeconds: number): Promise<void>;
  get(key: string): Promise<string | undefined>;
  /** Gets and deletes in one step: of two instances taking the same key, one gets it. */
  take(key: string): Promise<string | undefined>;
  /** Puts and answers the value it replaced, in one step (one round trip). */
  swap(key: string, value: string, ttlSeconds: number): Promise<string | undefined>;
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

  async swap(key: string, value: string, ttlSeconds: number): Promise<string | undefined> {
    const previous = await this.get(key);
    await this.put(key, value, ttlSeconds);
    return previous;
  }
}

/**
 * The part of a node-redis v5 client the stores use (its `createClient()` satisfies it without a cast).
 * Function-typed properties, so the options are checked strictly against the client's own.
 */
export interface RedisStoreClient {
  /** With `GET: true` (`SET … GET`, Redis ≥ 6.2): the value replaced, or null. */
  set: (key: string, value: string, options: { expiration: { type: 'EX'; value: number }; GET?: true }) => Promise<string | null>;
  get: (key: string) => Promise<string | null>;
  mGet: (keys: string[]) => Promise<(string | null)[]>;
  getDel: (key: string) => Promise<string | null>;
  del: (keys: string[]) => Promise<number>;
  rPush: (key: string, element: string) => Promise<number>;
  lRange: (key: string, start: number, stop: number) => Promise<string[]>;
  expire: (key: string, seconds: number) => Promise<number>;
  /** `WAIT numreplicas timeout`: how many replicas acknowledged this connection's writes (with `replication` only). */
  wait?: (numberOfReplicas: number, timeout: number) => Promise<number>;
  /** `ROLE`: a primary's connected replicas (with `replication` only). */
  role?: () => Promise<unknown>;
}

/** Redis failed or did not answer in time: the request fails (a 500 page, a refused login), nothing is guessed. */
export class StoreError extends CpsdError {
  readonly code = 'STORE_UNAVAILABLE';
}

/**
 * A write that the replicas asked for did not acknowledge within `waitMs`, while the primary had them
 * connected: the request fails rather than answer for a record that a failover could lose.
 */
export class StoreReplicationError extends CpsdError {
  readonly code = 'STORE_NOT_REPLICATED';
}

/** What the writes wait for (Redis Sentinel). */
export interface RedisReplication {
  /** Replicas that must hold a write before the request goes on (`WAIT`); 0: no wait. */
  replicas: number;
  /** WAIT's timeout in ms: past it, with the replicas connected, the write fails (`STORE_NOT_REPLICATED`). */
  waitMs: number;
  /**
   * Told when the primary has fewer replicas connected than `replicas` (after a failover, until the old
   * primary comes back as a replica): writes then go on without waiting, and when it has them again.
   */
  onDegraded?: (degraded: boolean, connected: number) => void;
}

/** The number of replicas a `ROLE` answer of a primary lists (node-redis' parsed form or the raw array). */
function replicasOf(role: unknown): number {
  if (Array.isArray(role)) return role[0] === 'master' && Array.isArray(role[2]) ? role[2].length : 0;
  if (typeof role === 'object' && role !== null && 'replicas' in role && Array.isArray(role.replicas)) return role.replicas.length;
  return 0;
}

/**
 * What a login in progress writes and nothing completed needs: not waited for (a failover loses at most
 * that login, which fails and is started again). Every request that completes something (the code, the
 * tokens, a refresh, a logout) writes a waited record after them, and its WAIT covers them too.
 */
const UNWAITED_MODELS = new Set(['Interaction']);
const UNWAITED_KV = /^login-nonce:/;

/** Models whose records belong to a grant: revoking the grant (logout, replayed code) removes them all. */
const GRANTABLE = new Set(['AccessToken', 'AuthorizationCode', 'RefreshToken', 'DeviceCode', 'BackchannelAuthenticationRequest']);

/** Redis commands bounded in time: node-redis queues commands while it reconnects, so an outage would hang. */
/**
 * Per replication setting (the adapter and the key-value store of one instance share it): the primary has
 * fewer replicas than asked, so writes do not WAIT; ROLE is asked again at `recheckAt`.
 */
interface ReplicationState {
  degraded: boolean;
  recheckAt: number;
  /** The WAIT that the writes answered in this turn of the event loop will share, not sent yet. */
  nextWait?: Promise<number> | undefined;
}
const replicationState = new WeakMap<RedisReplication, ReplicationState>();

class Bounded {
  readonly #state: ReplicationState;

  constructor(
    readonly client: RedisStoreClient,
    readonly prefix: string,
    readonly timeoutMs: number,
    readonly replication?: RedisReplication,
  ) {
    const shared = replication ? replicationState.get(replication) : undefined;
    this.#state = shared ?? { degraded: false, recheckAt: 0 };
    if (replication && !shared) replicationState.set(replication, this.#state);
  }

  /**
   * A command that writes, then (with `replication`) WAIT on the same connection once all its writes were
   * answered (some are issued on a reply: the grant index's expiry, a revocation's DEL): Redis answers
   * WAIT once enough replicas acknowledged everything this connection wrote so far, which covers every
   * write before it in the replication stream (the other instances' too).
   */
  write<T>(what: string, command: (client: RedisStoreClient) => Promise<T>, waited = true): Promise<T> {
    const r = this.replication;
    if (!r || r.replicas <= 0 || !waited) return this.call(what, command);
    return this.call(what, async (c) => {
      if (!c.wait || !c.role) throw new StoreError('this Redis client has no wait()/role(): replication needs a node-redis client');
      if (this.#state.degraded && Date.now() >= this.#state.recheckAt) await this.#check(c, r);
      if (this.#state.degraded) return command(c);
      const value = await command(c);
      const acknowledged = await this.#wait(c, r);
      if (acknowledged >= r.replicas) return value;
      // Too few: a primary that has no such replicas any more (failover) goes on, noted; one that has them fails.
      await this.#check(c, r);
      if (!this.#state.degraded) throw new StoreReplicationError(`${what}: ${acknowledged} of ${r.replicas} replica(s) acknowledged the write within ${r.waitMs} ms`);
      return value;
    });
  }

  /**
   * One WAIT for every write answered in this turn of the event loop (several requests in flight write at
   * once): sent once they all are, it covers them all, and the replica is asked once instead of n times.
   */
  #wait(c: RedisStoreClient, r: RedisReplication): Promise<number> {
    this.#state.nextWait ??= new Promise<void>((resolve) => setImmediate(resolve)).then(() => {
      this.#state.nextWait = undefined;
      return c.wait?.(r.replicas, r.waitMs) ?? 0;
    });
    return this.#state.nextWait;
  }

  async #check(c: RedisStoreClient, r: RedisReplication): Promise<void> {
    const connected = replicasOf(await c.role?.());
    const degraded = connected < r.replicas;
    this.#state.recheckAt = Date.now() + 1000;
    if (degraded !== this.#state.degraded) r.onDegraded?.(degraded, connected);
    this.#state.degraded = degraded;
  }

  async call<T>(what: string, command: (client: RedisStoreClient) => Promise<T>): Promise<T> {
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new StoreError(`Redis did not answer (${what}) within ${this.timeoutMs} ms`)), this.timeoutMs);
    });
    try {
      return await Promise.race([command(this.client), timeout]);
    } catch (error) {
      if (error instanceof StoreError || error instanceof StoreReplicationError) throw error;
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
  /** Writes wait for this many replicas (Redis Sentinel); none by default. */
  replication?: RedisReplication;
}

/** TTL of a record without expiresIn (oidc-provider gives one for every model; this is a bound, not a default). */
const MAX_TTL = 14 * 24 * 3600;
const ttl = (expiresIn: number | undefined): number => Math.max(1, Math.min(MAX_TTL, Math.ceil(expiresIn ?? MAX_TTL)));

/** oidc-provider's adapter over Redis: `adapter: redisAdapterFactory(client)` in its configuration. */
export function redisAdapterFactory(client: RedisStoreClient, options: RedisStoreOptions = {}): (name: string) => Adapter {
  const redis = new Bounded(client, options.prefix ?? 'cpsd-idp:', options.timeoutMs ?? 2000, options.replication);
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
    await this.redis.write(`upsert ${this.name}`, async (c) => {
      // Issued together, without waiting for each reply: node-redis writes them in one go.
      const writes: Promise<unknown>[] = [c.set(key, JSON.stringify(payload), { expiration: { type: 'EX', value: seconds } })];
      if (payload.userCode) writes.push(c.set(`${prefix}userCode:${payload.userCode}`, id, { expiration: { type: 'EX', value: seconds } }));
      if (payload.uid) writes.push(c.set(`${prefix}uid:${payload.uid}`, id, { expiration: { type: 'EX', value: seconds } }));
      if (GRANTABLE.has(this.name) && payload.grantId) {
        const grant = `${prefix}grant:${payload.grantId}`;
        // The index lives as long as the longest of its records (a refresh token outlives the code):
        // its lifetime is set when the list is made (the first push), not at every record. A code is
        // its grant's first record (code flow): its lifetime is set with it, in the same write, rather
        // than on the push's reply (a round trip more for the login).
        if (this.name === 'AuthorizationCode') writes.push(c.rPush(grant, key), c.expire(grant, MAX_TTL));
        else writes.push(c.rPush(grant, key).then((length) => (length === 1 ? c.expire(grant, MAX_TTL) : undefined)));
      }
      await Promise.all(writes);
    }, !UNWAITED_MODELS.has(this.name));
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
    await this.redis.write(`consume ${this.name}`, (c) => c.set(`${key}:consumed`, String(Math.floor(Date.now() / 1000)), { expiration: { type: 'EX', value: MAX_TTL } }));
  }

  async destroy(id: string): Promise<void> {
    const key = this.#key(id);
    await this.redis.write(`destroy ${this.name}`, (c) => c.del([key, `${key}:consumed`]), !UNWAITED_MODELS.has(this.name));
  }

  async revokeByGrantId(grantId: string): Promise<void> {
    const grant = `${this.redis.prefix}grant:${grantId}`;
    await this.redis.write('revoke grant', async (c) => {
      const keys = await c.lRange(grant, 0, -1);
      await c.del([...keys, ...keys.map((k) => `${k}:consumed`), grant]);
    });
  }
}

export class RedisKeyValueStore implements KeyValueStore {
  readonly #redis: Bounded;

  constructor(client: RedisStoreClient, options: RedisStoreOptions = {}) {
    this.#redis = new Bounded(client, options.prefix ?? 'cpsd-idp:', options.timeoutMs ?? 2000, options.replication);
  }

  async put(key: string, value: string, ttlSeconds: number): Promise<void> {
    await this.#redis.write('put', (c) => c.set(`${this.#redis.prefix}kv:${key}`, value, { expiration: { type: 'EX', value: ttl(ttlSeconds) } }), !UNWAITED_KV.test(key));
  }

  async get(key: string): Promise<string | undefined> {
    return (await this.#redis.call('get', (c) => c.get(`${this.#redis.prefix}kv:${key}`))) ?? undefined;
  }

  async take(key: string): Promise<string | undefined> {
    return (await this.#redis.write('take', (c) => c.getDel(`${this.#redis.prefix}kv:${key}`), !UNWAITED_KV.test(key))) ?? undefined;
  }

  async swap(key: string, value: string, ttlSeconds: number): Promise<string | undefined> {
    const previous = await this.#redis.write('swap', (c) => c.set(`${this.#redis.prefix}kv:${key}`, value, { expiration: { type: 'EX', value: ttl(ttlSeconds) }, GET: true }), !UNWAITED_KV.test(key));
    return previous ?? undefined;
  }
}

/** A connected node-redis client for cpsd-idp: one Redis, or the primary that Redis Sentinel names. */
export type IdpRedisClient = RedisStoreClient & RedisNonceClient & { close(): Promise<unknown>; destroy(): unknown };

/** Where the state is, for the start-up line and the logs: the URL without its password, or the Sentinels. */
export function describeRedis(settings: RedisSettings): string {
  if (settings.sentinel) return `Redis Sentinel "${settings.sentinel.name}" (${settings.sentinel.nodes.map((n) => `${n.host.includes(':') ? `[${n.host}]` : n.host}:${n.port}`).join(', ')})`;
  return settings.url.replace(/\/\/[^@/]*@/, '//…@');
}

/** The writes' replication asked for by the settings (Sentinel form), degradations logged through `log`. */
export function replicationOf(settings: RedisSettings, log: (line: string) => void): RedisReplication | undefined {
  if (!settings.sentinel || settings.sentinel.replicas === 0) return undefined;
  const { replicas, waitMs } = settings.sentinel;
  return {
    replicas,
    waitMs,
    onDegraded: (degraded, connected) =>
      log(
        degraded
          ? `cpsd-idp: Redis: the primary has ${connected} replica(s) connected, ${replicas} wanted: writes go on without waiting for a replica until one is back`
          : `cpsd-idp: Redis: the primary has ${connected} replica(s) connected again: writes wait for ${replicas}`,
      ),
  };
}

/**
 * Connects within `timeoutMs` (node-redis retries a refused connection for ever: a bound, so that a wrong
 * address is an error, not a hang); connection trouble afterwards goes to `log` while node-redis reconnects.
 * Sentinel: one connection to the primary (WAIT must follow the writes on their own connection), none to
 * the replicas (every command goes to the primary), the primary found again after a failover.
 */
export async function connectRedis(settings: RedisSettings, log: (line: string) => void, timeoutMs = 5000): Promise<IdpRedisClient> {
  const { createClient, createSentinel } = await import('redis');
  const s = settings.sentinel;
  const client = s
    ? createSentinel({
        name: s.name,
        sentinelRootNodes: s.nodes,
        masterPoolSize: 1,
        replicaPoolSize: 0,
        passthroughClientErrorEvents: true,
        nodeClientOptions: { ...(s.username ? { username: s.username } : {}), ...(s.password ? { password: s.password } : {}), socket: { connectTimeout: 1000 } },
        sentinelClientOptions: { ...(s.sentinelUsername ? { username: s.sentinelUsername } : {}), ...(s.sentinelPassword ? { password: s.sentinelPassword } : {}), socket: { connectTimeout: 1000 } },
      })
    : createClient({ url: settings.url });
  // node-redis reports connection trouble as 'error' events (and reconnects); unhandled they would crash.
  client.on('error', (error: unknown) => log(`cpsd-idp: Redis: ${error instanceof Error ? error.message : String(error)}`));
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new StoreError(`Redis did not answer at ${describeRedis(settings)} within ${timeoutMs / 1000} s`)), timeoutMs);
  });
  try {
    await Promise.race([client.connect(), late]);
  } catch (error) {
    void Promise.resolve(client.destroy()).catch(() => undefined);
    throw error instanceof StoreError ? error : new StoreError(`cannot connect to Redis: ${error instanceof Error ? error.message : String(error)}`, { cause: error });
  } finally {
    clearTimeout(timer);
  }
  return client;
}
