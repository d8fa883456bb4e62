/**
 * RedisNonceStore against a real redis-server (Debian package) on a random loopback port, without
 * persistence, driven through node-redis v5 clients: several clients stand for several servers.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { RedisNonceStore, consumeNonce, issueNonce, type RedisNonceClient } from '../../pkcs/verify.js';
import { connect, startRedis, stopRedis, type Client, type RedisProcess } from '../helpers/redis.js';

let redis: RedisProcess;
const clients: Client[] = [];
const extra: RedisProcess[] = [];

beforeAll(async () => {
  redis = await startRedis();
  for (let i = 0; i < 4; i++) clients.push(await connect(redis.port));
});

afterAll(async () => {
  for (const c of clients) c.destroy();
  await Promise.all([redis, ...extra].filter(Boolean).map(stopRedis));
});

const admin = (): Client => clients[0] as Client;

describe('RedisNonceStore', () => {
  it('takes the node-redis v5 client as it is', () => {
    // Type-level check: a real createClient() client is a RedisNonceClient without a cast.
    const asStore: RedisNonceClient = admin();
    expect(typeof asStore.getDel).toBe('function');
  });

  it('consumes an issued nonce once', async () => {
    const store = new RedisNonceStore(admin());
    const nonce = await issueNonce(store);
    expect(nonce).toHaveLength(44);
    await expect(consumeNonce(store, nonce)).resolves.toBe(nonce);
  });

  it('refuses a second consume with NONCE_INVALID', async () => {
    const store = new RedisNonceStore(admin());
    const nonce = await issueNonce(store);
    await consumeNonce(store, nonce);
    await expect(consumeNonce(store, nonce)).rejects.toMatchObject({ code: 'NONCE_INVALID' });
  });

  it('refuses a nonce it never issued with NONCE_INVALID', async () => {
    const store = new RedisNonceStore(admin());
    await expect(consumeNonce(store, Buffer.alloc(32, 7).toString('base64'))).rejects.toMatchObject({ code: 'NONCE_INVALID' });
  });

  it('stores the expiry as the value and gives it back from take', async () => {
    const store = new RedisNonceStore(admin());
    const expiresAt = Date.now() + 60_000;
    await store.put('value-check', expiresAt);
    expect(await admin().get('cpsd:nonce:value-check')).toBe(String(expiresAt));
    expect(await store.take('value-check')).toBe(expiresAt);
    expect(await admin().exists('cpsd:nonce:value-check')).toBe(0);
  });

  it('lets exactly one of 100 concurrent consumes from 4 servers through', async () => {
    const servers = clients.map((c) => new RedisNonceStore(c));
    const nonce = await issueNonce(servers[0] as RedisNonceStore);
    const results = await Promise.allSettled(Array.from({ length: 100 }, (_, i) => consumeNonce(servers[i % 4] as RedisNonceStore, nonce)));
    const won = results.filter((r) => r.status === 'fulfilled');
    const lost = results.filter((r): r is PromiseRejectedResult => r.status === 'rejected');
    expect(won).toHaveLength(1);
    expect(lost).toHaveLength(99);
    for (const r of lost) expect(r.reason).toMatchObject({ code: 'NONCE_INVALID' });
  });

  it('lets Redis expire the key at the nonce expiry, after which it is NONCE_INVALID', async () => {
    const store = new RedisNonceStore(admin());
    const nonce = await issueNonce(store, 300);
    const pttl = await admin().pTTL(`cpsd:nonce:${nonce}`);
    expect(pttl).toBeGreaterThan(0);
    expect(pttl).toBeLessThanOrEqual(300);
    await sleep(400);
    expect(await admin().pTTL(`cpsd:nonce:${nonce}`)).toBe(-2); // no such key
    await expect(consumeNonce(store, nonce)).rejects.toMatchObject({ code: 'NONCE_INVALID' });
  });

  it('gives an already past expiry a 1 ms TTL rather than no TTL', async () => {
    const store = new RedisNonceStore(admin());
    await store.put('past', Date.now() - 1000);
    await sleep(20);
    expect(await admin().exists('cpsd:nonce:past')).toBe(0);
  });

  it('keys nonces under cpsd:nonce: by default and under the prefix given', async () => {
    const byDefault = await issueNonce(new RedisNonceStore(admin()));
    expect(await admin().exists(`cpsd:nonce:${byDefault}`)).toBe(1);
    const prefixed = await issueNonce(new RedisNonceStore(admin(), { prefix: 'app1:nonce:' }));
    expect(await admin().exists(`app1:nonce:${prefixed}`)).toBe(1);
    expect(await admin().exists(`cpsd:nonce:${prefixed}`)).toBe(0);
  });

  it('keeps stores with different prefixes apart', async () => {
    const a = new RedisNonceStore(clients[1] as Client, { prefix: 'app-a:' });
    const b = new RedisNonceStore(clients[2] as Client, { prefix: 'app-b:' });
    const nonce = await issueNonce(a);
    await expect(consumeNonce(b, nonce)).rejects.toMatchObject({ code: 'NONCE_INVALID' });
    await expect(consumeNonce(a, nonce)).resolves.toBe(nonce);
  });

  it('refuses to put a nonce already waiting, leaving its expiry as it was', async () => {
    const store = new RedisNonceStore(admin());
    const expiresAt = Date.now() + 60_000;
    await store.put('twice', expiresAt);
    await expect(store.put('twice', expiresAt + 60_000)).rejects.toMatchObject({ code: 'NONCE_STORE_CONFLICT' });
    expect(await store.take('twice')).toBe(expiresAt);
  });

  it('throws NONCE_STORE_UNAVAILABLE, not a pass, when Redis is down', async () => {
    const down = await startRedis();
    extra.push(down);
    const client = await connect(down.port);
    try {
      const store = new RedisNonceStore(client, { timeoutMs: 500 });
      const nonce = await issueNonce(store);
      await stopRedis(down);
      const started = Date.now();
      const error: unknown = await consumeNonce(store, nonce).catch((e: unknown) => e);
      expect(error).toMatchObject({ name: 'NonceStoreError', code: 'NONCE_STORE_UNAVAILABLE' });
      expect(Date.now() - started).toBeLessThan(1000);
      await expect(issueNonce(store)).rejects.toMatchObject({ code: 'NONCE_STORE_UNAVAILABLE' });
    } finally {
      client.destroy();
    }
  });

  it('throws NONCE_STORE_UNAVAILABLE when the client is closed', async () => {
    const client = await connect(redis.port);
    client.destroy();
    const store = new RedisNonceStore(client);
    await expect(issueNonce(store)).rejects.toMatchObject({ code: 'NONCE_STORE_UNAVAILABLE' });
    await expect(consumeNonce(store, Buffer.alloc(32, 1).toString('base64'))).rejects.toMatchObject({ code: 'NONCE_STORE_UNAVAILABLE' });
  });

  it('throws NONCE_STORE_UNAVAILABLE for a key that does not hold an expiry', async () => {
    await admin().set('cpsd:nonce:garbage', 'not a number');
    await expect(new RedisNonceStore(admin()).take('garbage')).rejects.toMatchObject({ code: 'NONCE_STORE_UNAVAILABLE' });
  });
});
