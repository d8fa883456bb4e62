/**
 * cpsd-idp's cost of a full card login over HTTP, driven as the login page's browser would drive it but
 * without one (fetch, redirects and cookie jar by hand): /auth → login page → nonce → the card signs →
 * login → resume (through the implicit consent interaction) → code → /token. Once with Redis (a
 * redis-server started here), once with the in-memory store, each in its own child process so that RSS
 * and the JIT are the run's own.
 *
 * Threads: the IdP runs on the child's main thread (Node serves it on one core), the load generator and
 * the in-process virtual card in a worker thread, so the card's RSA signature and the client's HTTP work
 * do not run on the IdP's event loop (they still share the machine's cores). The card step is timed per
 * login and subtracted: nonces are single use, so signatures cannot be made ahead. CPU is counted per
 * thread (/proc), and so is what other processes of the machine ran meanwhile: on a shared machine the
 * CPU per login is the steadier figure.
 *
 *   npm run bench:idp [-- --concurrency 8 --count 2000 --warmup 200 --store both|redis|memory]
 */
import { spawn } from 'node:child_process';
import { createHash, generateKeyPairSync, randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { Worker, isMainThread, parentPort, workerData } from 'node:worker_threads';
import { createClient } from 'redis';
import { WebSocket } from 'ws';
import { openCard } from '../cards/atr-table.js';
import { CpsCard } from '../cards/card.js';
import { Pin } from '../cards/pin.js';
import type { TrustOptions } from '../idp/interaction.js';
import { jwkThumbprint, registrationNonce, requestNonce, type IdpToDevice } from '../pkcs/ciba-challenge.js';
import { signedData } from '../pkcs/token.js';
import type { VirtualCpsCard } from '../sim/cps/card.js';
import { fixtureCard, loadMaterial } from '../sim/cps/fixtures.js';
import { startRedis, stopRedis } from './redis-server.js';

const CLIENT = { client_id: 'bench', client_secret: 'bench-secret-0123456789abcdef0123456789', redirect_uris: ['http://localhost:1/cb'], grant_types: ['authorization_code', 'refresh_token'] };
const STEPS = ['auth', 'page', 'nonce', 'card', 'login', 'resume', 'token'] as const;
type Step = (typeof STEPS)[number];
/** CIBA (`--flow ciba`): a poll client, and one workstation's link (a WebSocket, as daemon/idp-link.ts) answering with the card. */
const CIBA_GRANT = 'urn:openid:params:grant-type:ciba';
const CIBA_CLIENT = { client_id: 'bench-ciba', client_name: 'bench', client_secret: 'bench-secret-0123456789abcdef0123456789', grant_types: [CIBA_GRANT], response_types: [], redirect_uris: [], backchannel_token_delivery_mode: 'poll' };
const CIBA_STEPS = ['backchannel', 'card', 'token'] as const;
const SUB = '899700012349';

interface LoadParams {
  issuer: string;
  concurrency: number;
  count: number;
  warmup: number;
  flow: 'login' | 'ciba';
}

interface LoadResult {
  wallMs: number;
  /** Per login: steps 1–7 minus the card. */
  idpMs: number[];
  cardMs: number[];
  /** Sum over the measured logins, per step (STEPS, or CIBA_STEPS). */
  stepMs: Record<string, number>;
  /** CIBA: token requests answered authorization_pending, per login. */
  pendingPolls?: number;
  /** CPU of the load thread (HTTP client and card) over the measured logins. */
  loadCpuMs: number;
}

interface RunResult extends LoadResult {
  store: string;
  /** CPU over the measured logins: the IdP's thread, the rest of the process but the load thread (libuv pool: WebCrypto; GC), redis-server. */
  idpCpuMs: number;
  helperCpuMs: number;
  redisCpuMs: number;
  /** CPU of every other process of the machine meanwhile (a shared machine: a build or tests beside). */
  otherCpuMs: number;
  rssMiB: number;
  audits: number;
  redisPerLogin: number;
}

/** utime + stime of /proc/<stat file>, in ms (clock ticks of 10 ms: USER_HZ is 100 on Linux). */
function cpuMs(stat: string): number {
  try {
    const fields = readFileSync(stat, 'utf8').split(') ')[1]?.split(' ') ?? [];
    return (Number(fields[11]) + Number(fields[12])) * 10;
  } catch {
    return NaN; // not Linux
  }
}
/** The calling thread's CPU: Node 20 has no per-thread process.cpuUsage. */
const threadCpuMs = (): number => cpuMs('/proc/thread-self/stat');
/** CPU of the whole machine (every core, every process), in ms: what others ran beside the bench shows. */
function machineCpuMs(): number {
  const [, user, nice, system, , , irq, softirq, steal] = readFileSync('/proc/stat', 'utf8').split('\n')[0]?.trim().split(/\s+/).map(Number) ?? [];
  return ((user ?? 0) + (nice ?? 0) + (system ?? 0) + (irq ?? 0) + (softirq ?? 0) + (steal ?? 0)) * 10;
}

// ---------------------------------------------------------------- load generator (worker thread)

/** The cookies of one user agent; path-scoped as RFC 6265 says, expired ones (oidc-provider's clearing) dropped. */
class Jar {
  readonly #cookies = new Map<string, { name: string; value: string; path: string }>();

  take(res: Response): void {
    for (const line of res.headers.getSetCookie()) {
      const [pair = '', ...attributes] = line.split(';');
      const eq = pair.indexOf('=');
      const name = pair.slice(0, eq).trim();
      const value = pair.slice(eq + 1).trim();
      let path = '/';
      let gone = false;
      for (const attribute of attributes) {
        const [k = '', v = ''] = attribute.split('=').map((s) => s.trim());
        const key = k.toLowerCase();
        if (key === 'path' && v.startsWith('/')) path = v;
        else if (key === 'expires' && Date.parse(v) <= Date.now()) gone = true;
        else if (key === 'max-age' && Number(v) <= 0) gone = true;
      }
      if (gone) this.#cookies.delete(`${name};${path}`);
      else this.#cookies.set(`${name};${path}`, { name, value, path });
    }
  }

  header(path: string): string {
    const match = (p: string): boolean => path === p || (path.startsWith(p) && (p.endsWith('/') || path[p.length] === '/'));
    return [...this.#cookies.values()].filter((c) => match(c.path)).map((c) => `${c.name}=${c.value}`).join('; ');
  }
}

async function send(jar: Jar, url: string, init: { method?: string; headers?: Record<string, string>; body?: string } = {}): Promise<{ status: number; location: string; body: string }> {
  const cookie = jar.header(new URL(url).pathname);
  const res = await fetch(url, { ...init, redirect: 'manual', headers: { ...init.headers, ...(cookie ? { Cookie: cookie } : {}) } });
  jar.take(res);
  // Always read the body: the keep-alive connection goes back to the pool only then.
  const body = await res.text();
  return { status: res.status, location: res.headers.get('location') ?? '', body };
}

function expect(what: string, got: { status: number; body: string }, status: number): void {
  if (got.status !== status) throw new Error(`${what}: HTTP ${got.status} (expected ${status}): ${got.body.slice(0, 300)}`);
}

/**
 * The holder's card as test/helpers/demo-tokens.ts uses it (open, PIN, INTERNAL AUTHENTICATE), but one
 * virtual card per workstation in flight, made once: making one parses its three PEM keys (about 1.5 ms,
 * that would crowd the load thread), which a card in a reader does not do per login.
 */
const AUTH_CERT = Buffer.from(loadMaterial('doctor').authCert).toString('base64');
async function cardToken(card: VirtualCpsCard, origin: string, nonce: string): Promise<object> {
  const driver = openCard({ transmit: async (c) => card.transmit(c) }, card.atr);
  await driver.verifyPin(new Pin('1234'));
  const signature = await driver.authenticate(CpsCard.digestInfo('sha256', createHash('sha256').update(signedData(origin, nonce)).digest()));
  return { unverifiedCertificate: AUTH_CERT, algorithm: 'RS256', signature: Buffer.from(signature).toString('base64'), format: 'web-eid:1.0', appVersion: 'bench' };
}

/** One login from a fresh user agent; the time of each step in `steps`. */
async function login(issuer: string, card: VirtualCpsCard, steps: Record<Step, number>): Promise<void> {
  const origin = new URL(issuer).origin;
  const jar = new Jar();
  const redirectUri = CLIENT.redirect_uris[0] ?? '';
  const verifier = randomBytes(32).toString('base64url');
  const state = randomBytes(12).toString('base64url');
  let t = performance.now();
  const lap = (step: Step): void => {
    const now = performance.now();
    steps[step] += now - t;
    t = now;
  };

  const query = new URLSearchParams({
    client_id: CLIENT.client_id,
    response_type: 'code',
    scope: 'openid profile scope_all',
    redirect_uri: redirectUri,
    state,
    code_challenge: createHash('sha256').update(verifier).digest('base64url'),
    code_challenge_method: 'S256',
  });
  const auth = await send(jar, `${issuer}/auth?${query}`);
  expect('/auth', auth, 303);
  const interaction = new URL(auth.location, issuer).href;
  lap('auth');

  const page = await send(jar, interaction);
  expect('login page', page, 200);
  const csrf = /const CSRF = ("[^"]*");/.exec(page.body)?.[1];
  if (!csrf) throw new Error('login page: no CSRF token');
  const headers = { Origin: origin, 'X-CSRF': JSON.parse(csrf) as string, 'Content-Type': 'application/json' };
  lap('page');

  const issued = await send(jar, `${interaction}/nonce`, { method: 'POST', headers, body: '{}' });
  expect('nonce', issued, 200);
  const { nonce } = JSON.parse(issued.body) as { nonce: string };
  lap('nonce');

  const token = await cardToken(card, origin, nonce);
  lap('card');

  const done = await send(jar, `${interaction}/login`, { method: 'POST', headers, body: JSON.stringify({ token }) });
  expect('login', done, 200);
  let next = new URL((JSON.parse(done.body) as { redirect: string }).redirect, issuer).href;
  lap('login');

  // /auth/<uid> → consent interaction (granted without a page, 303 itself) → /auth/<uid2> → redirect_uri.
  for (let hops = 0; !next.startsWith(redirectUri); hops++) {
    if (hops === 6) throw new Error(`resume: no redirect to the client after 6 hops (at ${next})`);
    const hop = await send(jar, next);
    if (hop.status !== 303 && hop.status !== 302) throw new Error(`resume ${next}: HTTP ${hop.status}: ${hop.body.slice(0, 300)}`);
    next = new URL(hop.location, next).href;
  }
  const back = new URL(next).searchParams;
  const code = back.get('code');
  if (!code || back.get('state') !== state) throw new Error(`resume: bad answer to the client: ${next}`);
  lap('resume');

  const basic = Buffer.from(`${encodeURIComponent(CLIENT.client_id)}:${encodeURIComponent(CLIENT.client_secret)}`).toString('base64');
  const tokens = await send(jar, `${issuer}/token`, {
    method: 'POST',
    headers: { Authorization: `Basic ${basic}`, 'Content-Type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams({ grant_type: 'authorization_code', code, redirect_uri: redirectUri, code_verifier: verifier }).toString(),
  });
  expect('/token', tokens, 200);
  const got = JSON.parse(tokens.body) as Record<string, unknown>;
  if (!got.id_token || !got.access_token || !got.refresh_token) throw new Error(`/token: missing tokens: ${Object.keys(got).join(', ')}`);
  lap('token');
}

/** `count` logins, `concurrency` at a time; per-login IdP time (card excluded) and card time. */
async function loginRun(params: LoadParams, count: number): Promise<Omit<LoadResult, 'loadCpuMs'>> {
  const idpMs: number[] = [];
  const cardMs: number[] = [];
  const stepMs = Object.fromEntries(STEPS.map((s) => [s, 0])) as Record<Step, number>;
  let started = 0;
  const start = performance.now();
  await Promise.all(
    Array.from({ length: params.concurrency }, async () => {
      const card = fixtureCard('doctor');
      while (started < count) {
        started++;
        const steps = Object.fromEntries(STEPS.map((s) => [s, 0])) as Record<Step, number>;
        await login(params.issuer, card, steps);
        for (const s of STEPS) stepMs[s] += steps[s];
        cardMs.push(steps.card);
        idpMs.push(STEPS.reduce((sum, s) => sum + (s === 'card' ? 0 : steps[s]), 0));
      }
    }),
  );
  return { wallMs: performance.now() - start, idpMs, cardMs, stepMs };
}

/**
 * The workstation's end of CIBA, as daemon/idp-link.ts does it (the PIN typed at once): registers the card
 * with a device key, then answers each request with the card's token over its challenge. The card time of
 * each request is kept for its client to subtract.
 */
async function cibaDevice(issuer: string): Promise<{ cardMs: Map<string, number>; close: () => void }> {
  const origin = new URL(issuer).origin;
  const card = fixtureCard('doctor');
  const cardMs = new Map<string, number>();
  const socket = new WebSocket(`${issuer.replace(/^http/, 'ws')}/ciba/device`);
  const exported = generateKeyPairSync('ec', { namedCurve: 'P-256' }).publicKey.export({ format: 'jwk' });
  const jwk = { kty: exported.kty, crv: exported.crv, x: exported.x, y: exported.y };
  await new Promise<void>((resolve, reject) => {
    socket.on('error', reject);
    socket.on('message', (data) => {
      const m = JSON.parse(data.toString()) as IdpToDevice;
      if (m.type === 'hello') void cardToken(card, origin, registrationNonce(m.challenge, jwkThumbprint(jwk))).then((token) => socket.send(JSON.stringify({ type: 'register', token, deviceKey: jwk })));
      else if (m.type === 'registered') resolve();
      else if (m.type === 'refused') reject(new Error(`registration refused: ${m.message}`));
      else if (m.type === 'request') {
        const t0 = performance.now();
        void cardToken(card, origin, requestNonce(m.id, m.client.id, m.bindingMessage)).then((token) => {
          cardMs.set(m.id, performance.now() - t0);
          socket.send(JSON.stringify({ type: 'result', id: m.id, token }));
        });
      }
    });
  });
  return { cardMs, close: () => socket.close() };
}

/** One CIBA login: the backchannel request, the workstation's card, the token endpoint polled until the tokens come. */
async function cibaLogin(issuer: string, device: { cardMs: Map<string, number> }, steps: Record<string, number>): Promise<number> {
  const basic = `Basic ${Buffer.from(`${CIBA_CLIENT.client_id}:${CIBA_CLIENT.client_secret}`).toString('base64')}`;
  const form = (body: Record<string, string>): { method: string; headers: Record<string, string>; body: string } => ({
    method: 'POST',
    headers: { Authorization: basic, 'Content-Type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams(body).toString(),
  });
  const jar = new Jar();
  let t = performance.now();
  const started = await send(jar, `${issuer}/backchannel`, form({ scope: 'openid profile scope_all', login_hint: SUB, binding_message: 'BENCH 1' }));
  expect('backchannel', started, 200);
  const id = (JSON.parse(started.body) as { auth_req_id: string }).auth_req_id;
  steps.backchannel = (steps.backchannel ?? 0) + performance.now() - t;
  t = performance.now();
  let pending = 0;
  for (;;) {
    const got = await send(jar, `${issuer}/token`, form({ grant_type: CIBA_GRANT, auth_req_id: id }));
    if (got.status === 200) break;
    if (got.status !== 400 || !got.body.includes('authorization_pending')) expect('token', got, 200);
    pending++;
    await new Promise((r) => setTimeout(r, 2));
  }
  const card = device.cardMs.get(id) ?? 0;
  device.cardMs.delete(id);
  steps.card = (steps.card ?? 0) + card;
  steps.token = (steps.token ?? 0) + performance.now() - t - card;
  return pending;
}

async function cibaRun(params: LoadParams, count: number, device: { cardMs: Map<string, number> }): Promise<Omit<LoadResult, 'loadCpuMs'>> {
  const idpMs: number[] = [];
  const cardMs: number[] = [];
  const stepMs: Record<string, number> = Object.fromEntries(CIBA_STEPS.map((s) => [s, 0]));
  let started = 0;
  let pendingPolls = 0;
  const start = performance.now();
  await Promise.all(
    Array.from({ length: params.concurrency }, async () => {
      while (started < count) {
        started++;
        const steps: Record<string, number> = {};
        pendingPolls += await cibaLogin(params.issuer, device, steps);
        for (const s of CIBA_STEPS) stepMs[s] = (stepMs[s] ?? 0) + (steps[s] ?? 0);
        cardMs.push(steps.card ?? 0);
        idpMs.push((steps.backchannel ?? 0) + (steps.token ?? 0));
      }
    }),
  );
  return { wallMs: performance.now() - start, idpMs, cardMs, stepMs, pendingPolls: pendingPolls / count };
}

async function loadWorker(params: LoadParams): Promise<void> {
  const device = params.flow === 'ciba' ? await cibaDevice(params.issuer) : undefined;
  const run = (n: number): Promise<Omit<LoadResult, 'loadCpuMs'>> => (device ? cibaRun(params, n, device) : loginRun(params, n));
  await run(params.warmup); // JIT, connection pool, caches of verify()
  parentPort?.postMessage({ type: 'measuring' });
  const cpu = threadCpuMs();
  const result = await run(params.count);
  device?.close();
  parentPort?.postMessage({ type: 'done', result: { ...result, loadCpuMs: threadCpuMs() - cpu } satisfies LoadResult });
}

// ---------------------------------------------------------------- one store (child process)

/** The test PKI as `cpsd idp --sim` trusts it (cli/commands/idp.ts simTrust): CRLs given, none fetched. */
function simTrust(root: string): TrustOptions {
  const der = (f: string): Uint8Array => new Uint8Array(readFileSync(join(root, 'fixtures', 'pki', f)));
  return {
    trustAnchors: [der('root.der')],
    intermediates: [der('intermediate.der')],
    crls: [der('fort-personnes.crl'), der('racine.crl')],
    revocation: 'crl',
    crl: { fetch: false },
  };
}

async function runStore(store: 'redis' | 'memory', load: Omit<LoadParams, 'issuer'>): Promise<RunResult> {
  // Loaded here only: oidc-provider warns on import (Node 20), the parent and the load thread need none of it.
  const { PACKAGE_ROOT, startIdp } = await import('../idp/server.js');
  const server = store === 'redis' ? await startRedis() : undefined;
  const redis = server ? createClient({ socket: { host: '127.0.0.1', port: server.port } }) : undefined;
  redis?.on('error', (e: unknown) => process.stderr.write(`bench: Redis: ${String(e)}\n`));
  await redis?.connect();
  let audits = 0;
  const idp = await startIdp({
    port: 0,
    clients: [CLIENT, CIBA_CLIENT],
    ciba: load.flow === 'ciba',
    trust: simTrust(PACKAGE_ROOT),
    daemonPort: 1, // unused: the bench makes the tokens itself
    allowHttpLocalhost: true,
    loginsPerMinute: 1e9, // one client address for every login: the per-address limit would refuse them
    ...(redis ? { redis } : {}),
    audit: () => void audits++,
  });
  try {
    const worker = new Worker(fileURLToPath(import.meta.url), { workerData: { ...load, issuer: idp.issuer } satisfies LoadParams });
    const cpu = (): { idp: number; process: number; redis: number; machine: number } => {
      const { user, system } = process.cpuUsage();
      return { idp: threadCpuMs(), process: (user + system) / 1000, redis: server ? cpuMs(`/proc/${server.child.pid}/stat`) : 0, machine: machineCpuMs() };
    };
    let before = cpu();
    const result = await new Promise<LoadResult>((resolve, reject) => {
      worker.on('message', (m: { type: 'measuring' } | { type: 'done'; result: LoadResult }) => {
        if (m.type === 'measuring') before = cpu();
        else resolve(m.result);
      });
      worker.once('error', reject);
      worker.once('exit', (code) => reject(new Error(`load worker exited (${code})`)));
    });
    const after = cpu();
    const idpCpuMs = after.idp - before.idp;
    const helperCpuMs = after.process - before.process - idpCpuMs - result.loadCpuMs;
    const redisCpuMs = after.redis - before.redis;
    const otherCpuMs = Math.max(0, after.machine - before.machine - (after.process - before.process) - redisCpuMs);
    const rssMiB = process.memoryUsage().rss / 2 ** 20;
    await worker.terminate();
    // Commands per login, from the server's own count (warm-up included, hence the division by every login).
    const stats = redis ? String(await redis.sendCommand(['INFO', 'commandstats'])) : '';
    const commands = [...stats.matchAll(/^cmdstat_(?!info\b|ping\b|client\b|hello\b)\w+:calls=(\d+)/gm)].reduce((n, m) => n + Number(m[1]), 0);
    return { ...result, store, idpCpuMs, helperCpuMs, redisCpuMs, otherCpuMs, rssMiB, audits, redisPerLogin: commands / (load.count + load.warmup) };
  } finally {
    await idp.close();
    await redis?.quit();
    if (server) await stopRedis(server);
  }
}

// ---------------------------------------------------------------- parent: both stores, the figures

const percentile = (sorted: number[], p: number): number => sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))] ?? NaN;
const mean = (xs: number[]): number => xs.reduce((a, b) => a + b, 0) / xs.length;

function report(r: RunResult): string {
  const idp = [...r.idpMs].sort((a, b) => a - b);
  const n = r.idpMs.length;
  const steps = Object.keys(r.stepMs).filter((s) => s !== 'card').map((s) => `${s} ${((r.stepMs[s] ?? 0) / n).toFixed(2)}`).join(', ');
  const perLogin = (ms: number): string => (ms / n).toFixed(2);
  return [
    `${r.store.padEnd(6)}  ${((n / r.wallMs) * 1000).toFixed(0).padStart(5)} ${r.pendingPolls === undefined ? 'logins/s' : 'CIBA logins/s'}  IdP p50 ${percentile(idp, 50).toFixed(1)} ms  p99 ${percentile(idp, 99).toFixed(1)} ms  max ${(idp[n - 1] ?? NaN).toFixed(1)} ms  card mean ${mean(r.cardMs).toFixed(2)} ms  RSS ${r.rssMiB.toFixed(0)} MiB`,
    `        mean ms per step: ${steps}${r.pendingPolls === undefined ? '' : `; ${r.pendingPolls.toFixed(2)} authorization_pending answers per login`}`,
    `        CPU ms per login: IdP thread ${perLogin(r.idpCpuMs)}, Node helper threads ${perLogin(r.helperCpuMs)}, redis-server ${perLogin(r.redisCpuMs)}, load+card thread ${perLogin(r.loadCpuMs)} (${(((r.idpCpuMs + r.helperCpuMs + r.redisCpuMs + r.loadCpuMs) / r.wallMs) * 100).toFixed(0)} % of one core; other processes ${((r.otherCpuMs / r.wallMs) * 100).toFixed(0)} %)${r.redisPerLogin ? `; ${r.redisPerLogin.toFixed(1)} Redis commands per login` : ''}`,
  ].join('\n');
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      concurrency: { type: 'string', default: '8' },
      count: { type: 'string', default: '2000' },
      warmup: { type: 'string', default: '200' },
      store: { type: 'string', default: 'both' },
      flow: { type: 'string', default: 'login' },
      child: { type: 'boolean', default: false },
    },
  });
  if (values.flow !== 'login' && values.flow !== 'ciba') throw new Error(`--flow: login or ciba, not ${values.flow}`);
  const load = { concurrency: Number(values.concurrency), count: Number(values.count), warmup: Number(values.warmup), flow: values.flow as LoadParams['flow'] };
  if (!(load.concurrency >= 1 && load.count >= 1 && load.warmup >= 0)) throw new Error('--concurrency and --count must be ≥ 1, --warmup ≥ 0');
  const store = values.store;
  const stores: ('redis' | 'memory')[] = store === 'both' ? ['redis', 'memory'] : store === 'redis' || store === 'memory' ? [store] : [];
  if (stores.length === 0) throw new Error(`--store: both, redis or memory, not ${store}`);

  if (values.child) {
    process.stdout.write(`${JSON.stringify(await runStore(stores[0] ?? 'memory', load))}\n`);
    return;
  }
  if (load.flow === 'ciba') console.log(`cpsd-idp CIBA logins (poll; one workstation's link answering with the card): ${load.count} after ${load.warmup} warm-up, ${load.concurrency} in flight, node ${process.version}; IdP latency = backchannel + token polls minus the card`);
  else console.log(`cpsd-idp full card logins: ${load.count} after ${load.warmup} warm-up, ${load.concurrency} in flight, node ${process.version}; IdP latency = steps 1-7 minus the card`);
  for (const store of stores) {
    // A process per store: its RSS is its own, and nothing of one run warms the other.
    const child = spawn(process.execPath, [...process.execArgv, fileURLToPath(import.meta.url), '--child', '--store', store, '--concurrency', String(load.concurrency), '--count', String(load.count), '--warmup', String(load.warmup), '--flow', load.flow], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    let err = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr.on('data', (d: Buffer) => (err += d.toString()));
    const code = await new Promise<number | null>((resolve) => child.once('exit', resolve));
    // oidc-provider's start-up warnings (Node 20 runtime, its in-memory adapter) are expected here.
    process.stderr.write(err.split('\n').filter((line) => line && !line.startsWith('oidc-provider WARNING:')).map((line) => `${line}\n`).join(''));
    if (code !== 0) throw new Error(`the ${store} run failed (exit ${code})`);
    console.log(report(JSON.parse(out) as RunResult));
  }
}

if (isMainThread) {
  main().catch((error: unknown) => {
    console.error(error instanceof Error ? (error.stack ?? error.message) : error);
    process.exit(1);
  });
} else {
  void loadWorker(workerData as LoadParams);
}
