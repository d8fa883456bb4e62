/**
 * A terminal server (several users at once, one loopback interface), with real OS users (as root; no
 * pcscd): two users, each with their own daemon run as them (`behindProxy`, virtual cards `doctor` and
 * `nurse`), `cpsd proxy` as root on a test port, and clients run as each user with runuser. A third user
 * has no daemon. The users are created here and always removed in afterAll.
 */
import type { ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { chmodSync, chownSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CLIENT_SCRIPT, createUser, removeUser, runAs, spawnAs, stop, traversable, type OsUser } from '../helpers/os-users.js';

/** Where the run's transcript goes (test-output/, next to the browsers' screenshots). */
const OUTPUT = fileURLToPath(new URL('../../test-output/', import.meta.url));

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const CLI = join(ROOT, 'dist/cli/cpsd.js');
const ORIGIN = 'https://app.example';
const isRoot = process.getuid?.() === 0 && process.platform === 'linux';

interface Daemon {
  user: OsUser;
  child: ChildProcess;
  port: number;
  log: string[];
}

const tag = `${process.pid.toString(36)}${randomBytes(2).toString('hex')}`;
const names = { a: `cpsdts${tag}a`, b: `cpsdts${tag}b`, c: `cpsdts${tag}c` };
let dir = '';
let runtime = '';
let client = '';
let proxyPort = 0;
let proxy: ChildProcess | undefined;
const proxyLog: string[] = [];
const users: Partial<Record<'a' | 'b' | 'c', OsUser>> = {};
const daemons: Partial<Record<'a' | 'b', Daemon>> = {};

function user(k: 'a' | 'b' | 'c'): OsUser {
  const u = users[k];
  if (!u) throw new Error(`user ${k} was not created`);
  return u;
}

function daemon(k: 'a' | 'b'): Daemon {
  const d = daemons[k];
  if (!d) throw new Error(`the daemon of ${k} did not start`);
  return d;
}

function freePort(): Promise<number> {
  return new Promise((resolve) => {
    const s = createServer().listen(0, '127.0.0.1', () => {
      const { port } = s.address() as AddressInfo;
      s.close(() => resolve(port));
    });
  });
}

/** Collects stderr lines; resolves with the first match of `pattern`. */
function watch(child: ChildProcess, log: string[], pattern: RegExp): Promise<RegExpExecArray> {
  return new Promise((resolve, reject) => {
    let buffer = '';
    const timer = setTimeout(() => reject(new Error(`no ${pattern} in:\n${log.join('\n')}`)), 15_000);
    child.stderr?.on('data', (d: Buffer) => {
      buffer += d.toString();
      const lines = buffer.split('\n');
      buffer = lines.pop() ?? '';
      for (const line of lines) {
        log.push(line);
        const m = pattern.exec(line);
        if (m) {
          clearTimeout(timer);
          resolve(m);
        }
      }
    });
    child.once('exit', (code) => reject(new Error(`exited ${code}:\n${log.join('\n')}`)));
  });
}

/** The user's runtime directory, as pam_systemd makes /run/user/<uid>: theirs, 0700. */
function runtimeDir(user: OsUser): string {
  const d = join(runtime, String(user.uid));
  mkdirSync(d, { mode: 0o700 });
  chownSync(d, user.uid, user.uid);
  return d;
}

async function startDaemon(user: OsUser, profile: string): Promise<Daemon> {
  const child = spawnAs(user, ['node', CLI, '--lang', 'en', 'serve', '--sim', profile, '--config', join(dir, 'config.json')], { XDG_RUNTIME_DIR: runtimeDir(user) }, ROOT);
  const log: string[] = [];
  const m = await watch(child, log, /cpsd listening on ws:\/\/127\.0\.0\.1:(\d+)/);
  return { user, child, port: Number(m[1]), log };
}

interface Outcome {
  status?: number;
  body?: string;
  error?: string;
  url?: string;
  answers?: { result?: Record<string, unknown>; error?: { data: { code: string } } }[];
}

/** What each user asked and got, for test-output/terminal-server.txt (the run's transcript). */
const transcript: string[] = [];

/** The client, run as `user`. */
async function as(user: OsUser | 'root', spec: unknown): Promise<Outcome> {
  const out = await runAs(user, ['env', `CPSD_ROOT=${ROOT}`, 'node', client, JSON.stringify(spec)]);
  const outcome = JSON.parse(out.trim().split('\n')[0] ?? '{}') as Outcome;
  const got = outcome.answers?.map((a) => a.error?.data.code ?? String(a.result?.surname ?? a.result?.serial ?? 'ok')).join(', ') ?? `HTTP ${outcome.status ?? outcome.error ?? '?'}`;
  transcript.push(`${user === 'root' ? 'root' : `${user.name} (uid ${user.uid})`}  ${JSON.stringify(spec)}\n    → ${got}`);
  return outcome;
}

const identity = (user: OsUser, port = proxyPort): Promise<Outcome> => as(user, { rpc: { port, calls: [{ method: 'card.identity' }, { method: 'card.status' }] } });

describe.runIf(isRoot)('a terminal server: one daemon per user behind cpsd proxy', () => {
  let untraversable: (() => void) | undefined;

  beforeAll(async () => {
    untraversable = traversable(ROOT); // the users run this checkout's dist/ and node_modules/
    dir = mkdtempSync(join(tmpdir(), 'cpsd-ts-'));
    chmodSync(dir, 0o755);
    runtime = join(dir, 'run-user');
    mkdirSync(runtime, { mode: 0o755 });
    client = join(dir, 'client.mjs');
    writeFileSync(client, CLIENT_SCRIPT, { mode: 0o644 });
    proxyPort = await freePort();
    writeFileSync(join(dir, 'config.json'), JSON.stringify({ port: proxyPort, behindProxy: true, allowedOrigins: [ORIGIN] }), { mode: 0o644 });
    users.a = createUser(names.a);
    users.b = createUser(names.b);
    users.c = createUser(names.c);
    runtimeDir(users.c); // C has a runtime directory, but no daemon
    daemons.a = await startDaemon(users.a, 'doctor');
    daemons.b = await startDaemon(users.b, 'nurse');
    proxy = spawnAs('root', ['node', CLI, '--lang', 'en', 'proxy', '--port', String(proxyPort), '--runtime-root', runtime, '--config', join(dir, 'config.json')], {}, ROOT);
    await watch(proxy, proxyLog, /cpsd proxy listening/);
  }, 60_000);

  afterAll(async () => {
    mkdirSync(OUTPUT, { recursive: true });
    writeFileSync(join(OUTPUT, 'terminal-server.txt'), `cpsd proxy on 127.0.0.1:${proxyPort}; ${names.a}: doctor card, ${names.b}: nurse card, ${names.c}: no daemon\n\n${transcript.join('\n')}\n`);
    await Promise.all([proxy, daemons.a?.child, daemons.b?.child].map((c) => (c ? stop(c) : undefined)));
    untraversable?.();
    const left = Object.values(names).filter((n) => !removeUser(n));
    if (dir) rmSync(dir, { recursive: true, force: true });
    expect(left).toEqual([]);
  }, 30_000);

  it('gives user A, through the proxy, the holder of A\'s card', async () => {
    const r = await identity(user('a'));
    expect(r.answers?.[0]?.result?.surname).toBe('MEDECIN-TEST');
  });

  it('gives user B, through the proxy, the holder of B\'s card', async () => {
    const r = await identity(user('b'));
    const a = await identity(user('a'));
    expect(r.answers?.[0]?.result?.surname).toBeTypeOf('string');
    expect(r.answers?.[0]?.result?.surname).not.toBe(a.answers?.[0]?.result?.surname);
    expect(r.answers?.[1]?.result?.serial).toBe('9921384503'); // fixtures/profiles/nurse.json
  });

  it('shows nothing of A\'s card (national id, surname, serial) in B\'s answers or B\'s daemon log', async () => {
    const a = (await identity(user('a'))).answers?.[0]?.result ?? {};
    const secrets = [a.nationalId, a.surname, a.serial].map(String);
    expect(secrets.every((s) => s.length > 3 && s !== 'undefined')).toBe(true);
    const b = JSON.stringify(await identity(user('b'))) + JSON.stringify(await identity(user('b'), daemon('a').port));
    const seen = secrets.filter((s) => b.includes(s) || daemon('b').log.join('\n').includes(s));
    expect(seen).toEqual([]);
  });

  it('refuses user B connecting straight to A\'s daemon with HTTP 403 before the upgrade', async () => {
    const r = await identity(user('b'), daemon('a').port);
    expect([r.status, r.answers]).toEqual([403, undefined]);
  });

  it('refuses user B\'s plain HTTP (the PIN page) on A\'s daemon with 403 too', async () => {
    const r = await as(user('b'), { raw: { port: daemon('a').port, path: '/pin/x' } });
    expect(r.status).toBe(403);
  });

  it('logs the refusal in A\'s daemon without naming B', async () => {
    await identity(user('b'), daemon('a').port);
    const lines = daemon('a').log.filter((l) => l.includes('peer-refused'));
    expect(lines.length).toBeGreaterThan(0);
    expect(lines.filter((l) => l.includes(names.b) || l.includes(`${user('b').uid}`))).toEqual([]);
  });

  it('does not believe a proxy line that user B writes to A\'s daemon', async () => {
    const r = await as(user('b'), { raw: { port: daemon('a').port, upgrade: true, preamble: `CPSD-PEER uid=${user('a').uid}\r\n` } });
    expect(r.status).toBe(403);
  });

  it('does not serve root connecting straight to A\'s daemon without the proxy line', async () => {
    const r = await as('root', { raw: { port: daemon('a').port, upgrade: true } });
    expect(r.status).toBe(403);
  });

  it('serves user A\'s own application connecting straight to A\'s daemon', async () => {
    const r = await identity(user('a'), daemon('a').port);
    expect(r.answers?.[0]?.result?.surname).toBe('MEDECIN-TEST');
  });

  it('tells a third user without a daemon so, through the proxy (503)', async () => {
    const r = await identity(user('c'));
    expect([r.status, r.body]).toEqual([503, expect.stringContaining('no cpsd daemon is running for your user')]);
  });

  it('does not follow a registration that points at another user\'s daemon', async () => {
    // C registers B's port as its own: the proxy finds the socket that accepts is not C's, and stops.
    const reg = join(runtime, String(user('c').uid), 'cpsd');
    await runAs(user('c'), ['sh', '-c', `mkdir -p ${reg} && echo '{"port":${daemon('b').port}}' > ${reg}/port`]);
    try {
      const r = await identity(user('c'));
      expect(r.status).toBe(503);
    } finally {
      rmSync(reg, { recursive: true, force: true });
    }
  });

  it('keeps the Origin check in the user\'s daemon: a page not allowed gets 403 through the proxy', async () => {
    const r = await as(user('a'), { rpc: { port: proxyPort, origin: 'https://evil.example', calls: [] } });
    expect(r.status).toBe(403);
    expect(daemon('a').log.some((l) => l.includes('upgrade-refused') && l.includes('https://evil.example'))).toBe(true);
  });

  it('keeps the Host check in the user\'s daemon: another name gets 421 through the proxy', async () => {
    const r = await as(user('a'), { raw: { port: proxyPort, upgrade: true, hostHeader: `rebind.example:${proxyPort}` } });
    expect(r.status).toBe(421);
  });

  it('serves A\'s PIN page through the proxy to A, and B reaches only B\'s daemon with it', async () => {
    const page = spawnAs(user('a'), ['env', `CPSD_ROOT=${ROOT}`, 'node', client, JSON.stringify({ pin: { port: proxyPort, origin: ORIGIN, nonce: randomBytes(32).toString('base64') } })]);
    try {
      const url = await new Promise<string>((resolve, reject) => {
        page.stdout?.on('data', (d: Buffer) => {
          const o = JSON.parse(d.toString().trim().split('\n')[0] ?? '{}') as Outcome;
          if (o.url) resolve(o.url);
          else reject(new Error(d.toString()));
        });
      });
      const { pathname, port } = new URL(url);
      expect(Number(port)).toBe(proxyPort);
      const [mine, theirs, direct] = [
        await as(user('a'), { raw: { port: proxyPort, path: pathname } }),
        await as(user('b'), { raw: { port: proxyPort, path: pathname } }),
        await as(user('b'), { raw: { port: daemon('a').port, path: pathname } }),
      ];
      expect([mine.status, theirs.status, direct.status]).toEqual([200, 404, 403]);
    } finally {
      page.stdin?.end();
      await stop(page);
    }
  });
});

describe.skipIf(isRoot)('a terminal server (needs root on Linux)', () => {
  it.skip('creates OS users: run this file as root', () => undefined);
});
