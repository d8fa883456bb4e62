/**
 * cpsd-idp's Redis storage (idp/store.ts) against a real redis-server: oidc-provider's adapter contract
 * (upsert, find, consume, destroy, findByUid, revokeByGrantId), expiry by Redis itself, several clients
 * standing for several instances, and a typed failure (never a hang, never a guess) when Redis is gone.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { RedisKeyValueStore, redisAdapterFactory, type RedisStoreClient } from '../../idp/store.js';
import { connect, startRedis, stopRedis, type Client, type RedisProcess } from '../helpers/redis.js';

let redis: RedisProcess;
let one: Client;
let two: Client;

beforeAll(async () => {
  redis = await startRedis();
  [one, two] = [await connect(redis.port), await connect(redis.port)];
});

afterAll(async () => {
  for (const c of [one, two]) c?.destroy();
  if (redis) await stopRedis(redis);
});

const prefix = (): string => `t${Math.random().toString(36).slice(2)}:`;

describe('redisAdapterFactory (oidc-provider adapter)', () => {
  it('takes a node-redis v5 client as it is', () => {
    const client: RedisStoreClient = one;
    expect(typeof client.set).toBe('function');
  });

  it('finds on instance 2 what instance 1 upserted', async () => {
    const p = prefix();
    await redisAdapterFactory(one, { prefix: p })('Session').upsert('s1', { uid: 'u1', accountId: '899700012349' }, 60);
    expect(await redisAdapterFactory(two, { prefix: p })('Session').find('s1')).toEqual({ uid: 'u1', accountId: '899700012349' });
  });

  it('finds a session by its uid', async () => {
    const p = prefix();
    await redisAdapterFactory(one, { prefix: p })('Session').upsert('s2', { uid: 'u2' }, 60);
    expect(await redisAdapterFactory(two, { prefix: p })('Session').findByUid('u2')).toEqual({ uid: 'u2' });
  });

  it('answers undefined for an id it never stored', async () => {
    expect(await redisAdapterFactory(one, { prefix: prefix() })('AccessToken').find('nope')).toBeUndefined();
  });

  it('marks a consumed code for every instance, without touching its payload', async () => {
    const p = prefix();
    const adapter = redisAdapterFactory(one, { prefix: p })('AuthorizationCode');
    await adapter.upsert('c1', { grantId: 'g1', accountId: 'a' }, 60);
    await adapter.consume('c1');
    const found = await redisAdapterFactory(two, { prefix: p })('AuthorizationCode').find('c1');
    expect(found).toMatchObject({ grantId: 'g1', accountId: 'a' });
    expect(typeof found?.consumed).toBe('number');
    expect(JSON.parse((await one.get(`${p}AuthorizationCode:c1`)) ?? '{}')).not.toHaveProperty('consumed');
  });

  it('destroys a record', async () => {
    const adapter = redisAdapterFactory(one, { prefix: prefix() })('RefreshToken');
    await adapter.upsert('r1', { grantId: 'g' }, 60);
    await adapter.destroy('r1');
    expect(await adapter.find('r1')).toBeUndefined();
  });

  it('revokes every code and token of a grant, and only of that grant', async () => {
    const p = prefix();
    const make = redisAdapterFactory(one, { prefix: p });
    await make('AuthorizationCode').upsert('c', { grantId: 'g1' }, 60);
    await make('AccessToken').upsert('a', { grantId: 'g1' }, 60);
    await make('RefreshToken').upsert('r', { grantId: 'g1' }, 600);
    await make('RefreshToken').upsert('other', { grantId: 'g2' }, 600);
    await make('AccessToken').revokeByGrantId('g1');
    const find = redisAdapterFactory(two, { prefix: p });
    expect([await find('AuthorizationCode').find('c'), await find('AccessToken').find('a'), await find('RefreshToken').find('r')]).toEqual([undefined, undefined, undefined]);
    expect(await find('RefreshToken').find('other')).toEqual({ grantId: 'g2' });
  });

  it('lets Redis expire a record at its expiresIn', async () => {
    const p = prefix();
    await redisAdapterFactory(one, { prefix: p })('Interaction').upsert('i', { uid: 'i' }, 1);
    expect(await one.ttl(`${p}Interaction:i`)).toBe(1);
    await sleep(1100);
    expect(await redisAdapterFactory(two, { prefix: p })('Interaction').find('i')).toBeUndefined();
  });
});

describe('RedisKeyValueStore', () => {
  it('takes a record once across instances (GETDEL)', async () => {
    const p = prefix();
    await new RedisKeyValueStore(one, { prefix: p }).put('k', 'v', 60);
    const [a, b] = await Promise.all([new RedisKeyValueStore(one, { prefix: p }).take('k'), new RedisKeyValueStore(two, { prefix: p }).take('k')]);
    expect([a, b].filter((x) => x === 'v')).toHaveLength(1);
    expect([a, b].filter((x) => x === undefined)).toHaveLength(1);
  });

  it('swaps a record: the value it replaced, in one SET … GET, with the new lifetime', async () => {
    const p = prefix();
    const store = new RedisKeyValueStore(one, { prefix: p });
    expect(await store.swap('k', 'v1', 60)).toBeUndefined();
    expect(await new RedisKeyValueStore(two, { prefix: p }).swap('k', 'v2', 120)).toBe('v1');
    expect(await store.get('k')).toBe('v2');
    expect(await one.ttl(`${p}kv:k`)).toBeGreaterThan(60);
  });

  it('gets a record without taking it', async () => {
    const store = new RedisKeyValueStore(one, { prefix: prefix() });
    await store.put('k', 'v', 60);
    expect([await store.get('k'), await store.get('k')]).toEqual(['v', 'v']);
  });
});

describe('when Redis is gone', () => {
  it('fails with STORE_UNAVAILABLE within the time bound instead of hanging', async () => {
    const other = await startRedis();
    const client = await connect(other.port);
    await stopRedis(other);
    const started = Date.now();
    await expect(redisAdapterFactory(client, { timeoutMs: 300 })('Session').find('s')).rejects.toMatchObject({ name: 'StoreError', code: 'STORE_UNAVAILABLE' });
    await expect(new RedisKeyValueStore(client, { timeoutMs: 300 }).take('k')).rejects.toMatchObject({ code: 'STORE_UNAVAILABLE' });
    expect(Date.now() - started).toBeLessThan(2000);
    client.destroy();
  });
});

describe('with replication (WAIT after the writes)', () => {
  let primary: RedisProcess;
  let replica: RedisProcess;
  let client: Client;
  const waits = async (): Promise<number> => Number(/cmdstat_wait:calls=(\d+)/.exec(String(await client.sendCommand(['INFO', 'commandstats'])))?.[1] ?? 0);

  beforeAll(async () => {
    [primary, replica] = [await startRedis(), await startRedis()];
    client = await connect(primary.port);
    const r = await connect(replica.port);
    await r.sendCommand(['REPLICAOF', '127.0.0.1', String(primary.port)]);
    for (let i = 0; i < 250 && !/master_link_status:up/.test(String(await r.sendCommand(['INFO', 'replication']))); i++) await sleep(20);
    r.destroy();
  });

  afterAll(async () => {
    client?.destroy();
    for (const p of [replica, primary]) if (p) await stopRedis(p);
  });

  it('sends one WAIT for the writes answered together, none for a login in progress, and the replica has them', async () => {
    const p = prefix();
    const replication = { replicas: 1, waitMs: 500 };
    const make = redisAdapterFactory(client, { prefix: p, replication });
    const kv = new RedisKeyValueStore(client, { prefix: p, replication });
    const before = await waits();
    await Promise.all([make('Session').upsert('a', { uid: 'ua' }, 60), make('Grant').upsert('g', { accountId: '1' }, 60), kv.put('account:1', '{}', 60)]);
    expect(await waits()).toBe(before + 1);
    await make('Interaction').upsert('i', { uid: 'i' }, 60);
    await kv.put('login-nonce:i', 'n', 60);
    expect(await kv.take('login-nonce:i')).toBe('n');
    expect(await waits()).toBe(before + 1);
    // What a WAIT answered for is on the replica.
    const onReplica = await connect(replica.port);
    expect(await onReplica.get(`${p}Session:a`)).not.toBeNull();
    expect(await onReplica.get(`${p}kv:account:1`)).toBe('{}');
    onReplica.destroy();
  });

  it('goes on without waiting, said once, when the primary has fewer replicas than asked', async () => {
    const told: [boolean, number][] = [];
    const replication = { replicas: 2, waitMs: 100, onDegraded: (degraded: boolean, connected: number) => told.push([degraded, connected]) };
    const make = redisAdapterFactory(client, { prefix: prefix(), replication });
    await make('Session').upsert('s1', { uid: 'u1' }, 60);
    const started = Date.now();
    await Promise.all([make('Session').upsert('s2', { uid: 'u2' }, 60), make('Grant').upsert('g', {}, 60)]);
    // The first write found out (WAIT's 100 ms, then ROLE); the next ones do not wait.
    expect(Date.now() - started).toBeLessThan(90);
    expect(told).toEqual([[true, 1]]);
    expect(await make('Session').find('s2')).toEqual({ uid: 'u2' });
  });
});
