/**
 * cpsd-idp's cost of a full card login over HTTP, driven as the login page's browser would drive it but
 * without one (node:http, redirects and cookie jar by hand): /auth → login page (its nonce in it) → the card signs →
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
 * With `--store sentinel`: a primary, one replica and three Sentinels (ports 41220–41224), the IdP
 * connected as the Sentinel form of its configuration connects it, every write followed by WAIT 1.
 *
 *   npm run bench:idp [-- --concurrency 8 --count 2000 --warmup 200 --store both|redis|memory|sentinel|all --flow login|ciba]
 */
import { spawn } from 'node:child_process';
import { generateKeyPairSync } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { Worker, isMainThread, parentPort, workerData } from 'node:worker_threads';
import { createClient } from 'redis';
import { WebSocket } from 'ws';
import type { TrustOptions } from '../idp/interaction.js';
import { jwkThumbprint, registrationNonce, requestNonce, type IdpToDevice } from '../pkcs/ciba-challenge.js';
import { fixtureCard } from '../sim/cps/fixtures.js';
import { CLIENT, cardToken, expectStatus, Jar, login, send, STEPS, type Step } from './idp-login.js';
import { startSentinelSet, stopSentinelSet } from './redis-sentinel.js';
import { startRedis, stopRedis } from './redis-server.js';
import { IDP_NODE_FLAGS } from '../idp/runtime.js';

/** CIBA (`--flow ciba`): a poll client, and one workstation's link (a WebSocket, as daemon/idp-link.ts) answering with the card. */
const CIBA_GRANT = 'urn:openid:params:grant-type:ciba';
const CIBA_CLIENT = { client_id: 'bench-ciba', client_name: 'bench', client_secret: 'bench-secret-0123456789abcdef0123456789', grant_types: [CIBA_GRANT], response_types: [], redirect_uris: [], backchannel_token_delivery_mode: 'poll' as const };
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
  expectStatus('backchannel', started, 200);
  const id = (JSON.parse(started.body) as { auth_req_id: string }).auth_req_id;
  steps.backchannel = (steps.backchannel ?? 0) + performance.now() - t;
  t = performance.now();
  let pending = 0;
  for (;;) {
    const got = await send(jar, `${issuer}/token`, form({ grant_type: CIBA_GRANT, auth_req_id: id }));
    if (got.status === 200) break;
    if (got.status !== 400 || !got.body.includes('authorization_pending')) expectStatus('token', got, 200);
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

type Store = 'redis' | 'memory' | 'sentinel';

async function runStore(store: Store, load: Omit<LoadParams, 'issuer'>): Promise<RunResult> {
  // Loaded here only: oidc-provider warns on import (Node 20), the parent and the load thread need none of it.
  const { PACKAGE_ROOT, startIdp } = await import('../idp/server.js');
  const { connectRedis, replicationOf } = await import('../idp/store.js');
  const server = store === 'redis' ? await startRedis() : undefined;
  const sentinels = store === 'sentinel' ? await startSentinelSet(41220) : undefined;
  const log = (line: string): void => void process.stderr.write(`bench: ${line}\n`);
  const settings = sentinels ? { prefix: 'cpsd-idp:', sentinel: { nodes: sentinels.nodes, name: sentinels.name, replicas: 1, waitMs: 500 } } : undefined;
  const plain = server ? createClient({ socket: { host: '127.0.0.1', port: server.port } }) : undefined;
  plain?.on('error', (e: unknown) => process.stderr.write(`bench: Redis: ${String(e)}\n`));
  await plain?.connect();
  const redis = plain ?? (settings ? await connectRedis(settings, log) : undefined);
  const replication = settings ? replicationOf(settings, log) : undefined;
  /** The servers whose CPU is counted: the primary (and its replica). */
  const pids = [server?.child.pid, sentinels?.primary.child.pid, sentinels?.replica.child.pid].filter((pid) => pid !== undefined);
  /** A client of the primary itself, for its command count. */
  const admin = plain ?? (sentinels ? createClient({ socket: { host: '127.0.0.1', port: sentinels.primary.port } }) : undefined);
  if (sentinels) await admin?.connect();
  let audits = 0;
  const idp = await startIdp({
    port: 0,
    clients: [{ ...CLIENT }, CIBA_CLIENT],
    ciba: load.flow === 'ciba',
    trust: simTrust(PACKAGE_ROOT),
    daemonPort: 1, // unused: the bench makes the tokens itself
    allowHttpLocalhost: true,
    loginsPerMinute: 1e9, // one client address for every login: the per-address limit would refuse them
    ...(redis ? { redis } : {}),
    ...(replication ? { redisReplication: replication } : {}),
    audit: () => void audits++,
  });
  try {
    const worker = new Worker(fileURLToPath(import.meta.url), { workerData: { ...load, issuer: idp.issuer } satisfies LoadParams });
    const cpu = (): { idp: number; process: number; redis: number; machine: number } => {
      const { user, system } = process.cpuUsage();
      return { idp: threadCpuMs(), process: (user + system) / 1000, redis: pids.reduce((sum, pid) => sum + cpuMs(`/proc/${pid}/stat`), 0), machine: machineCpuMs() };
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
    const stats = admin ? String(await admin.sendCommand(['INFO', 'commandstats'])) : '';
    const commands = [...stats.matchAll(/^cmdstat_(?!info\b|ping\b|client\b|hello\b)\w+:calls=(\d+)/gm)].reduce((n, m) => n + Number(m[1]), 0);
    return { ...result, store, idpCpuMs, helperCpuMs, redisCpuMs, otherCpuMs, rssMiB, audits, redisPerLogin: commands / (load.count + load.warmup) };
  } finally {
    await idp.close();
    await redis?.close();
    if (!plain) await admin?.close();
    if (server) await stopRedis(server);
    if (sentinels) await stopSentinelSet(sentinels);
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
    `${r.store.padEnd(8)}  ${((n / r.wallMs) * 1000).toFixed(0).padStart(5)} ${r.pendingPolls === undefined ? 'logins/s' : 'CIBA logins/s'}  IdP p50 ${percentile(idp, 50).toFixed(1)} ms  p99 ${percentile(idp, 99).toFixed(1)} ms  max ${(idp[n - 1] ?? NaN).toFixed(1)} ms  card mean ${mean(r.cardMs).toFixed(2)} ms  RSS ${r.rssMiB.toFixed(0)} MiB`,
    `        mean ms per step: ${steps}${r.pendingPolls === undefined ? '' : `; ${r.pendingPolls.toFixed(2)} authorization_pending answers per login`}`,
    `        CPU ms per login: IdP thread ${perLogin(r.idpCpuMs)}, Node helper threads ${perLogin(r.helperCpuMs)}, redis-server(s) ${perLogin(r.redisCpuMs)}, load+card thread ${perLogin(r.loadCpuMs)} (${(((r.idpCpuMs + r.helperCpuMs + r.redisCpuMs + r.loadCpuMs) / r.wallMs) * 100).toFixed(0)} % of one core; other processes ${((r.otherCpuMs / r.wallMs) * 100).toFixed(0)} %)${r.redisPerLogin ? `; ${r.redisPerLogin.toFixed(1)} Redis commands per login` : ''}`,
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
  const stores: Store[] = store === 'both' ? ['redis', 'memory'] : store === 'all' ? ['redis', 'sentinel', 'memory'] : store === 'redis' || store === 'memory' || store === 'sentinel' ? [store] : [];
  if (stores.length === 0) throw new Error(`--store: both, all, redis, memory or sentinel, not ${store}`);

  if (values.child) {
    process.stdout.write(`${JSON.stringify(await runStore(stores[0] ?? 'memory', load))}\n`);
    return;
  }
  if (load.flow === 'ciba') console.log(`cpsd-idp CIBA logins (poll; one workstation's link answering with the card): ${load.count} after ${load.warmup} warm-up, ${load.concurrency} in flight, node ${process.version}; IdP latency = backchannel + token polls minus the card`);
  else console.log(`cpsd-idp full card logins: ${load.count} after ${load.warmup} warm-up, ${load.concurrency} in flight, node ${process.version}; IdP latency = steps 1-7 minus the card`);
  for (const store of stores) {
    // A process per store: its RSS is its own, and nothing of one run warms the other. Started as the
    // IdP's service unit starts it (IDP_NODE_FLAGS), the load thread sharing its settings.
    const child = spawn(process.execPath, [...IDP_NODE_FLAGS, ...process.execArgv, fileURLToPath(import.meta.url), '--child', '--store', store, '--concurrency', String(load.concurrency), '--count', String(load.count), '--warmup', String(load.warmup), '--flow', load.flow], {
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
