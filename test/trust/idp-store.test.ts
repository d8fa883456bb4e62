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
