/**
 * cpsd-idp on two instances sharing one real redis-server, behind a load balancer (a TCP relay here,
 * switched by the test), each started as production starts it: `cpsd idp --config <file>` with the same
 * keys (made by `cpsd idp --rotate-keys`), cookie keys, clients and Redis. The workstation's daemon is a
 * separate `cpsd serve --sim doctor`. The holder logs in through instance 1 in Chromium; refresh and
 * UserInfo go through instance 2; instance 1 is killed mid-session and nothing is lost.
 */
import { createPublicKey, verify as verifySignature, type JsonWebKey as JWK } from 'node:crypto';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { connect as tcpConnect, createServer as createTcpServer, type Server as TcpServer, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import * as oidc from 'openid-client';
import type { Browser, BrowserContext } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { launchChromium } from '../helpers/browser.js';
import { freePort, run, type Run } from '../helpers/doc-app.js';
import { ROOT } from '../helpers/doc-blocks.js';
import { cardLogin, makeTrustDir, startRp, type RelyingParty, type Tokens } from '../helpers/idp-rp.js';
import { connect, startRedis, stopRedis, type Client, type RedisProcess } from '../helpers/redis.js';

const OUTPUT = join(ROOT, 'test-output');
const CLI = 'dist/cli/cpsd.js';
const HOLDER = { sub: '899700012349', SubjectNameID: '899700012349', given_name: 'JEANNE', family_name: 'MEDECIN-TEST' };

let dir: string;
let redis: RedisProcess;
let admin: Client;
let daemon: Run;
const instances: Run[] = [];
let lb: TcpServer;
/** Which instance the load balancer sends new connections to (0 or 1). */
let target = 0;
const sockets = new Set<Socket>();
let issuer: string;
let rp: RelyingParty;
let browser: Browser;
let ports: number[];
/** The holder's browser after the first login (its IdP session cookie). */
let holder: BrowserContext | undefined;

function startInstance(i: number): Run {
  const child = run(ROOT, [CLI, '--lang', 'en', 'idp', '--config', join(dir, `idp-${i + 1}.json`)], {});
  instances[i] = child;
  return child;
}

/** Cuts every connection through the balancer (keep-alive ones would stick to an instance). */
async function dropConnections(): Promise<void> {
  for (const s of sockets) s.destroy();
  sockets.clear();
  // Let the clients' pools see the sockets close before the next request.
  await sleep(200);
}

beforeAll(async () => {
  mkdirSync(OUTPUT, { recursive: true });
  dir = mkdtempSync(join(tmpdir(), 'cpsd-idp-cluster-'));
  redis = await startRedis();
  admin = await connect(redis.port);
  const [lbPort, daemonPort, rpPort, p1, p2] = await Promise.all([freePort(), freePort(), freePort(), freePort(), freePort()]);
  ports = [p1, p2];
  issuer = `http://localhost:${lbPort}`;

  // The load balancer: new connections go to the instance of the moment, or to the other one when it
  // refuses the connection (a dead instance), as a balancer's health check would.
  lb = createTcpServer((client) => {
    sockets.add(client);
    client.pause();
    const relay = (first: boolean, port: number): void => {
      const upstream = tcpConnect(port, '127.0.0.1');
      sockets.add(upstream);
      const close = (): void => {
        client.destroy();
        upstream.destroy();
        sockets.delete(client);
        sockets.delete(upstream);
      };
      upstream.once('error', () => {
        sockets.delete(upstream);
        if (first && !upstream.remotePort) relay(false, ports[1 - target] ?? 0);
        else close();
      });
      upstream.once('connect', () => {
        client.pipe(upstream).pipe(client);
        client.resume();
        upstream.on('close', close);
      });
    };
    client.on('error', () => client.destroy()).on('close', () => sockets.delete(client));
    relay(true, ports[target] ?? 0);
  });
  await new Promise<void>((resolve) => lb.listen(lbPort, '127.0.0.1', resolve));

  // Its CRLs given, none fetched.
  makeTrustDir(dir);

  const rotated = run(ROOT, [CLI, '--lang', 'en', 'idp', '--rotate-keys', join(dir, 'jwks.json')], {});
  expect(await rotated.exited).toBe(0);
  const secret = 'cluster-test-secret-0123456789abcdef';
  const clients = [{ client_id: 'ehr', client_secret: secret, redirect_uris: [`http://localhost:${rpPort}/callback`], post_logout_redirect_uris: [`http://localhost:${rpPort}/`], grant_types: ['authorization_code', 'refresh_token'] }];
  writeFileSync(join(dir, 'clients.json'), JSON.stringify(clients));
  writeFileSync(join(dir, 'cookie-keys.json'), JSON.stringify(['cluster-cookie-key-0123456789abcdef0123']));
  for (const [i, port] of ports.entries()) {
    const config = {
      issuer,
      listen: { host: '127.0.0.1', port },
      daemonPort,
      clients: 'clients.json',
      keys: 'jwks.json',
      cookieKeys: 'cookie-keys.json',
      redis: { url: `redis://127.0.0.1:${redis.port}`, prefix: 'cluster:' },
      trust: { dir: 'trust', revocation: 'crl', fetchCrls: false },
      audit: `audit-${i + 1}.log`,
    };
    writeFileSync(join(dir, `idp-${i + 1}.json`), JSON.stringify(config, null, 2));
  }
  daemon = run(ROOT, [CLI, '--lang', 'en', 'serve', '--sim', 'doctor', '--port', String(daemonPort), '--allow-origin', issuer, '--allow-http-localhost'], {});
  // The daemon logs to stderr (JSON lines).
  for (let i = 0; i < 150 && !daemon.stderr().includes('"event":"listening"'); i++) await sleep(100);
  await Promise.all([startInstance(0).waitFor('sessions in redis://'), startInstance(1).waitFor('sessions in redis://')]);
  rp = await startRp(rpPort, issuer, 'ehr', secret);
  browser = await launchChromium();
}, 90_000);

afterAll(async () => {
  await holder?.close();
  await browser?.close();
  await rp?.close();
  await dropConnections();
  await new Promise((resolve) => (lb ? lb.close(resolve) : resolve(undefined)));
  for (const child of [...instances, daemon].filter(Boolean)) {
    child.child.kill('SIGTERM');
    await child.exited;
  }
  // Redis is already down (the last test): quit would wait for a reconnection that never comes.
  admin?.destroy();
  if (redis) await stopRedis(redis);
  if (dir) rmSync(dir, { recursive: true, force: true });
});

describe('two cpsd-idp instances sharing Redis', () => {
  let tokens: Tokens;

  it('publishes the same keys on both instances (the JWKS of the shared key file)', async () => {
    const jwks = await Promise.all(ports.map(async (p) => (await (await fetch(`http://127.0.0.1:${p}/jwks`)).json()) as { keys: { kid: string }[] }));
    const kid = (JSON.parse(readFileSync(join(dir, 'jwks.json'), 'utf8')) as { keys: { kid: string }[] }).keys[0]?.kid;
    expect(jwks[0]?.keys.map((k) => k.kid)).toEqual([kid]);
    expect(jwks[1]).toEqual(jwks[0]);
  });

  it('logs in through instance 1: the RP gets the holder’s id_token, and the session is in Redis', async () => {
    target = 0;
    const { context, page } = await cardLogin(browser, rp, issuer, '1234', OUTPUT, 'cluster');
    holder = context;
    await page.waitForURL(new RegExp(`^${rp.origin}/callback`), { timeout: 20_000 });
    const state = new URL(page.url()).searchParams.get('state') ?? '';
    tokens = rp.results.get(state) as Tokens;
    expect(tokens.claims()).toMatchObject({ ...HOLDER, iss: issuer, aud: 'ehr', acr: 'eidas1', amr: ['sc', 'pin'] });
    await page.close();
    const keys = await admin.keys('cluster:*');
    expect(keys.some((k) => k.startsWith('cluster:Session:'))).toBe(true);
    expect(keys.some((k) => k.startsWith('cluster:RefreshToken:'))).toBe(true);
    expect(keys).toContain(`cluster:kv:account:${HOLDER.sub}`);
  }, 60_000);

  it('wrote one audit line on instance 1: national id, application, assurance, nothing else personal', () => {
    const lines = readFileSync(join(dir, 'audit-1.log'), 'utf8').trim().split('\n').map((l) => JSON.parse(l) as Record<string, unknown>);
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatchObject({ event: 'login', method: 'card', sub: HOLDER.sub, client: 'ehr', acr: 'eidas1', amr: ['sc', 'pin'] });
    expect(Object.keys(lines[0] ?? {}).sort()).toEqual(['acr', 'amr', 'client', 'event', 'method', 'sub', 'time']);
    expect(JSON.stringify(lines)).not.toContain(HOLDER.family_name);
  });

  it('refreshes and answers UserInfo through instance 2', async () => {
    target = 1;
    await dropConnections();
    const refreshed = await oidc.refreshTokenGrant(rp.config, tokens.refresh_token ?? '');
    expect(refreshed.claims()).toMatchObject({ sub: HOLDER.sub, acr: 'eidas1' });
    expect(await oidc.fetchUserInfo(rp.config, refreshed.access_token, HOLDER.sub)).toMatchObject(HOLDER);
    tokens = refreshed;
  });

  it('loses nothing when instance 1 is killed mid-session: refresh and UserInfo go on through instance 2', async () => {
    target = 0;
    instances[0]?.child.kill('SIGKILL');
    await instances[0]?.exited;
    await dropConnections();
    const refreshed = await oidc.refreshTokenGrant(rp.config, tokens.refresh_token ?? '');
    expect(await oidc.fetchUserInfo(rp.config, refreshed.access_token, HOLDER.sub)).toMatchObject(HOLDER);
    tokens = refreshed;
  });

  it('keeps the browser’s IdP session made by instance 1: a new login through instance 2 needs no card', async () => {
    const context = holder;
    expect(context).toBeDefined();
    const page = await context?.newPage();
    /** Login pages served (status 200 on /interaction/): none is wanted. */
    const loginPages: string[] = [];
    page?.on('response', (r) => {
      if (r.url().includes('/interaction/') && r.status() === 200) loginPages.push(r.url());
    });
    await page?.goto(`${rp.origin}/login`);
    await page?.waitForURL(new RegExp(`^${rp.origin}/callback`), { timeout: 20_000 });
    expect(await page?.textContent('#rp')).toBe('RP: connecté JEANNE MEDECIN-TEST');
    // oidc-provider passes through its consent interaction (granted without a page, a redirect); no login page.
    expect(loginPages).toEqual([]);
  }, 60_000);

  it('rotates the signing key: the restarted instance signs with the new key and still publishes the old one', async () => {
    const file = join(dir, 'jwks.json');
    const before = (JSON.parse(readFileSync(file, 'utf8')) as { keys: { kid: string }[] }).keys.map((k) => k.kid);
    const rotated = run(ROOT, [CLI, '--lang', 'en', 'idp', '--rotate-keys', file], {});
    expect(await rotated.exited).toBe(0);
    const after = (JSON.parse(readFileSync(file, 'utf8')) as { keys: { kid: string }[] }).keys.map((k) => k.kid);
    expect(after.slice(1)).toEqual(before);
    // Instance 1 (killed above) comes back with the new file, as an operator restarts them one by one.
    await startInstance(0).waitFor('sessions in redis://');
    target = 0;
    await dropConnections();
    const jwks = (await (await fetch(`${issuer}/jwks`)).json()) as { keys: (JWK & { kid: string })[] };
    expect(jwks.keys.map((k) => k.kid)).toEqual(after);
    const refreshed = await oidc.refreshTokenGrant(rp.config, tokens.refresh_token ?? '');
    const kidOf = (jwt: string): string => (JSON.parse(Buffer.from(jwt.split('.')[0] ?? '', 'base64url').toString()) as { kid: string }).kid;
    expect(kidOf(refreshed.id_token ?? '')).toBe(after[0]);
    // An id_token signed before the rotation still verifies against the published JWKS.
    const old = tokens.id_token ?? '';
    const [header, payload, signature] = old.split('.');
    const key = jwks.keys.find((k) => k.kid === kidOf(old));
    expect(key?.kid).toBe(before[0]);
    expect(verifySignature('sha256', Buffer.from(`${header}.${payload}`), createPublicKey({ key: key ?? {}, format: 'jwk' }), Buffer.from(signature ?? '', 'base64url'))).toBe(true);
    tokens = refreshed;
  }, 30_000);

  it('does not start, with a clear error, when Redis cannot be reached', async () => {
    const config = JSON.parse(readFileSync(join(dir, 'idp-2.json'), 'utf8')) as Record<string, unknown>;
    writeFileSync(join(dir, 'idp-no-redis.json'), JSON.stringify({ ...config, listen: { port: await freePort() }, redis: `redis://127.0.0.1:${await freePort()}` }));
    const child = run(ROOT, [CLI, '--lang', 'en', 'idp', '--config', join(dir, 'idp-no-redis.json')], {});
    expect(await child.exited).toBe(1);
    expect(child.stderr()).toMatch(/Redis/);
    expect(child.stdout()).not.toContain('listening');
  }, 20_000);

  it('answers a clear error page, not a hang, when Redis is gone', async () => {
    await stopRedis(redis);
    await dropConnections();
    const res = await fetch(`http://127.0.0.1:${ports[1]}/auth?client_id=ehr&response_type=code&scope=openid&redirect_uri=${encodeURIComponent(`${rp.origin}/callback`)}&code_challenge=E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM&code_challenge_method=S256`, { headers: { 'Accept-Language': 'en' }, signal: AbortSignal.timeout(10_000) });
    expect(res.status).toBe(500);
    expect(await res.text()).toContain('server_error');
  }, 20_000);
});
