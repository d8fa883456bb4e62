/**
 * cpsd-idp across a Redis Sentinel failover: a primary, one replica and three Sentinels (Debian's
 * redis-server and redis-sentinel, ports 41200–41204), two IdP instances (41206, 41207) configured by the
 * Sentinel form of `redis` (readIdpConfig → connectRedis → startIdp, as `cpsd idp --config` does) behind
 * one issuer. First, with the replica stopped (SIGSTOP: it acknowledges nothing), a write fails with
 * STORE_NOT_REPLICATED and no login completes: what a completed login wrote is always on the replica too
 * (without the WAIT after each write, they would complete). Then full card logins (the in-process virtual
 * card, as `npm run bench:idp` makes them) run 4 at a time, each request of a login to the other instance
 * than the one before, and the primary is killed mid-run: Sentinel promotes the replica. Every login that
 * completed, before or after, must still be usable on either instance: its code exchanged, its refresh
 * token refreshed, UserInfo answered; and the failing window is printed. No pcscd, no vpcd: the card
 * signs in process.
 */
import { mkdirSync, mkdtempSync, copyFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CLIENT, login, noSteps, type LoginResult } from '../../bench/idp-login.js';
import { primaryPort, startSentinelSet, stopSentinelSet, type SentinelSet } from '../../bench/redis-sentinel.js';
import { readIdpConfig } from '../../idp/config.js';
import { generatedJwks } from '../../idp/keys.js';
import { startIdp, type RunningIdp } from '../../idp/server.js';
import { connectRedis, redisAdapterFactory, replicationOf, type IdpRedisClient } from '../../idp/store.js';
import { fixtureCard } from '../../sim/cps/fixtures.js';

const BASE = 41200;
const ISSUER = 'http://localhost:41205';
const PORTS = [41206, 41207];
const SUB = '899700012349';
const ROOT = new URL('../../', import.meta.url).pathname;

let dir: string;
let set: SentinelSet | undefined;
const clients: IdpRedisClient[] = [];
const idps: RunningIdp[] = [];
const logs: string[] = [];

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'cpsd-idp-failover-'));
  set = await startSentinelSet(BASE, { downAfterMs: 1000 });
  for (const sub of ['anchors', 'intermediates', 'crls']) mkdirSync(join(dir, 'trust', sub), { recursive: true });
  const pki = join(ROOT, 'fixtures', 'pki');
  copyFileSync(join(pki, 'root.der'), join(dir, 'trust', 'anchors', 'root.der'));
  copyFileSync(join(pki, 'intermediate.der'), join(dir, 'trust', 'intermediates', 'intermediate.der'));
  copyFileSync(join(pki, 'fort-personnes.crl'), join(dir, 'trust', 'crls', 'fort-personnes.crl'));
  copyFileSync(join(pki, 'racine.crl'), join(dir, 'trust', 'crls', 'racine.crl'));
  writeFileSync(join(dir, 'jwks.json'), JSON.stringify(generatedJwks()));
  const file = join(dir, 'idp.json');
  writeFileSync(
    file,
    JSON.stringify({
      issuer: ISSUER,
      clients: [CLIENT],
      keys: 'jwks.json',
      cookieKeys: ['failover-cookie-key-0123456789abcdef0123'],
      redis: { sentinels: set.nodes.map((n) => `${n.host}:${n.port}`), name: set.name, prefix: 'failover:', replicas: 1, waitMs: 500 },
      trust: { dir: 'trust', revocation: 'crl', fetchCrls: false },
      loginsPerMinute: 1_000_000,
    }),
  );
  const config = readIdpConfig(file);
  if (!config.redis?.sentinel) throw new Error('the Sentinel form was not read');
  for (const port of PORTS) {
    const redis = await connectRedis(config.redis, (line) => logs.push(`${Math.round(performance.now())} ${port}: ${line}`));
    clients.push(redis);
    const replication = replicationOf(config.redis, (line) => logs.push(`${Math.round(performance.now())} ${port}: ${line}`));
    idps.push(
      await startIdp({
        port,
        issuer: config.issuer,
        clients: config.clients,
        trust: config.trust,
        daemonPort: 1, // unused: the test's card signs the tokens itself
        allowHttpLocalhost: true,
        jwks: config.jwks,
        cookieKeys: config.cookieKeys,
        loginsPerMinute: config.loginsPerMinute,
        redis,
        redisPrefix: config.redis.prefix,
        ...(replication ? { redisReplication: replication } : {}),
        audit: () => {},
      }),
    );
  }
}, 60_000);

afterAll(async () => {
  for (const idp of idps) await idp.close();
  for (const c of clients) await Promise.resolve(c.destroy()).catch(() => undefined);
  if (set) {
    set.replica.child.kill('SIGCONT');
    await stopSentinelSet(set);
  }
  if (dir) rmSync(dir, { recursive: true, force: true });
});

/** The instance's own address for a URL of the issuer. */
const at = (url: string, instance: number): string => url.replace(ISSUER, `http://127.0.0.1:${PORTS[instance % 2] ?? 0}`);
const basic = `Basic ${Buffer.from(`${CLIENT.client_id}:${CLIENT.client_secret}`).toString('base64')}`;

async function token(instance: number, body: Record<string, string>): Promise<{ status: number; json: Record<string, unknown> }> {
  const res = await fetch(at(`${ISSUER}/token`, instance), {
    method: 'POST',
    headers: { Authorization: basic, 'Content-Type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams(body).toString(),
    signal: AbortSignal.timeout(10_000),
  });
  return { status: res.status, json: (await res.json()) as Record<string, unknown> };
}

async function userInfo(instance: number, accessToken: string): Promise<{ status: number; json: Record<string, unknown> }> {
  const res = await fetch(at(`${ISSUER}/me`, instance), { headers: { Authorization: `Bearer ${accessToken}` }, signal: AbortSignal.timeout(10_000) });
  return { status: res.status, json: (await res.json()) as Record<string, unknown> };
}

interface Completed extends LoginResult {
  /** ms since the run started, when the client got its code (and its tokens, for every other login). */
  at: number;
  index: number;
}

describe('two cpsd-idp instances on Redis Sentinel: a write no replica holds does not complete a login', () => {
  it('fails a write with STORE_NOT_REPLICATED, and every login, while the replica acknowledges nothing', async () => {
    if (!set) throw new Error('no Sentinel set');
    const card = fixtureCard('doctor');
    // Working first, so that what fails below fails for the replica only.
    await login(ISSUER, card, noSteps(), CLIENT, { route: (url) => at(url, 0) });
    set.replica.child.kill('SIGSTOP');
    try {
      const adapter = redisAdapterFactory(clients[0] as IdpRedisClient, { prefix: 'failover-direct:', replication: { replicas: 1, waitMs: 200 } })('Session');
      await expect(adapter.upsert('s1', { uid: 'u1' }, 60)).rejects.toMatchObject({ name: 'StoreReplicationError', code: 'STORE_NOT_REPLICATED' });
      const outcomes = await Promise.allSettled([0, 1].map((i) => login(ISSUER, card, noSteps(), CLIENT, { route: (url) => at(url, i) })));
      expect(outcomes.map((o) => (o.status === 'rejected' ? String(o.reason).slice(0, 60) : 'completed'))).toEqual([expect.stringMatching(/HTTP 500/), expect.stringMatching(/HTTP 500/)]);
    } finally {
      set.replica.child.kill('SIGCONT');
    }
    await login(ISSUER, card, noSteps(), CLIENT, { route: (url) => at(url, 1) });
  }, 30_000);
});

describe('two cpsd-idp instances on Redis Sentinel, the primary killed mid-run', () => {
  const completed: Completed[] = [];
  const failed: { at: number; error: string }[] = [];
  let killedAt = 0;

  it('runs logins through the failover; both instances serve again, on the promoted replica', async () => {
    if (!set) throw new Error('no Sentinel set');
    const before = await primaryPort(set);
    expect(before).toBe(BASE);
    const start = performance.now();
    const now = (): number => performance.now() - start;
    let started = 0;
    let stop = false;
    const worker = async (): Promise<void> => {
      const card = fixtureCard('doctor');
      while (!stop) {
        const index = started++;
        let hop = index;
        try {
          // Each request to the other instance than the one before: a login completed needs both.
          const result = await login(ISSUER, card, noSteps(), CLIENT, { route: (url) => at(url, hop++), exchange: index % 2 === 0 });
          completed.push({ ...result, at: now(), index });
        } catch (error) {
          failed.push({ at: now(), error: error instanceof Error ? error.message.slice(0, 200) : String(error) });
          await sleep(20);
        }
      }
    };
    const workers = Array.from({ length: 4 }, worker);
    const killed = (async (): Promise<void> => {
      while (completed.length < 16 && now() < 15_000) await sleep(10);
      set.primary.child.kill('SIGKILL');
      killedAt = now();
    })();
    try {
      await killed;
      // Until 16 logins completed after the first one that completed after the kill, at most 20 s.
      while (now() < 20_000) {
        const after = completed.filter((c) => c.at > killedAt);
        if (after.length >= 16 && (after[15]?.at ?? Infinity) <= now()) break;
        await sleep(20);
      }
    } finally {
      stop = true;
      await Promise.all(workers);
    }
    const before_ = completed.filter((c) => c.at <= killedAt);
    const after = completed.filter((c) => c.at > killedAt);
    const failures = failed.filter((f) => f.at > killedAt - 200);
    const firstAfter = after[0]?.at ?? NaN;
    const lastFailure = failures.at(-1)?.at ?? killedAt;
    console.log(
      `idp-failover: ${before_.length} logins completed before the kill, ${after.length} after, ${failed.length} failed; ` +
        `failing window: from the kill to ${(lastFailure - killedAt).toFixed(0)} ms after it (last failed login), ` +
        `first login completed after the kill at +${(firstAfter - killedAt).toFixed(0)} ms; primary now on port ${await primaryPort(set)}`,
    );
    for (const f of failed) console.log(`  failed at +${(f.at - killedAt).toFixed(0)} ms: ${f.error}`);
    for (const line of logs) console.log(`  ${line}`);
    expect(await primaryPort(set)).toBe(BASE + 1);
    expect(before_.length).toBeGreaterThanOrEqual(16);
    expect(after.length).toBeGreaterThanOrEqual(16);
    // No failure before the kill; after it, failures only during the failover (well under 10 s).
    expect(failed.filter((f) => f.at < killedAt - 200)).toEqual([]);
    expect(lastFailure - killedAt).toBeLessThan(10_000);
  }, 60_000);

  it('keeps every completed login usable on either instance: code exchange, refresh, UserInfo', async () => {
    expect(completed.length).toBeGreaterThanOrEqual(32);
    const lost: string[] = [];
    await Promise.all(
      completed.map(async (c) => {
        const when = `login #${c.index} completed at ${(c.at - killedAt).toFixed(0)} ms from the kill`;
        let tokens = c.tokens;
        if (!tokens) {
          const exchanged = await token(c.index, { grant_type: 'authorization_code', code: c.code, redirect_uri: CLIENT.redirect_uris[0] ?? '', code_verifier: c.verifier });
          if (exchanged.status !== 200) return void lost.push(`${when}: code exchange HTTP ${exchanged.status} ${JSON.stringify(exchanged.json)}`);
          tokens = exchanged.json;
        }
        const refreshed = await token(c.index + 1, { grant_type: 'refresh_token', refresh_token: String(tokens.refresh_token) });
        if (refreshed.status !== 200) return void lost.push(`${when}: refresh HTTP ${refreshed.status} ${JSON.stringify(refreshed.json)}`);
        // The refresh retired the first access token (one current access token per grant): the new one, on both.
        for (const instance of [0, 1]) {
          const info = await userInfo(instance, String(refreshed.json.access_token));
          if (info.status !== 200 || info.json.sub !== SUB) lost.push(`${when}: UserInfo on instance ${instance + 1} HTTP ${info.status} ${JSON.stringify(info.json)}`);
        }
      }),
    );
    expect(lost).toEqual([]);
  }, 30_000);
});
