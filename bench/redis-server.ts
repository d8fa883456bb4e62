/**
 * A real redis-server (Debian package) on a random loopback port, without persistence: for the tests of
 * the stores that several servers share and for `npm run bench:idp`. Ready when it answers a raw PING.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer, createConnection } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';

const REDIS_SERVER = '/usr/bin/redis-server';

export interface RedisProcess {
  port: number;
  child: ChildProcess;
  dir: string;
}

async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve, reject) => server.once('error', reject).listen(0, '127.0.0.1', resolve));
  const address = server.address();
  await new Promise<void>((resolve) => server.close(() => resolve()));
  if (address === null || typeof address === 'string') throw new Error('no port');
  return address.port;
}

/** One raw PING, so readiness does not depend on the client under test. */
export function ping(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = createConnection({ host: '127.0.0.1', port });
    let reply = '';
    const done = (ok: boolean): void => {
      socket.destroy();
      resolve(ok);
    };
    socket.setTimeout(500, () => done(false));
    socket.once('error', () => done(false));
    socket.once('connect', () => socket.write('PING\r\n'));
    socket.on('data', (d) => {
      reply += d.toString();
      if (reply.includes('\r\n')) done(reply.startsWith('+PONG'));
    });
  });
}

export async function startRedis(): Promise<RedisProcess> {
  // A port taken between freePort() and redis' bind makes it exit: try another.
  for (let attempt = 0; ; attempt++) {
    const port = await freePort();
    const dir = mkdtempSync(join(tmpdir(), 'cpsd-redis-'));
    const child = spawn(REDIS_SERVER, ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--dir', dir], {
      stdio: ['ignore', 'ignore', 'pipe'],
    });
    let exited = false;
    let stderr = '';
    child.once('exit', () => (exited = true));
    child.once('error', (e) => {
      exited = true;
      stderr += e.message;
    });
    child.stderr?.on('data', (d: Buffer) => (stderr += d.toString()));
    const deadline = Date.now() + 5000;
    while (!exited && Date.now() < deadline && !(await ping(port))) await sleep(20);
    if (!exited && Date.now() < deadline) return { port, child, dir };
    await stopRedis({ port, child, dir });
    if (attempt === 2) throw new Error(`redis-server did not answer PING on 127.0.0.1:${port}: ${stderr.trim()}`);
  }
}

/** SIGTERM, then SIGKILL after 2 s; resolves once the process is gone (or after 5 s in all). */
export async function stopRedis(redis: RedisProcess): Promise<void> {
  const { child } = redis;
  if (child.exitCode === null && child.signalCode === null) {
    const gone = new Promise<void>((resolve) => child.once('exit', () => resolve()));
    child.kill('SIGTERM');
    if ((await Promise.race([gone.then(() => true), sleep(2000, false)])) === false) {
      child.kill('SIGKILL');
      await Promise.race([gone, sleep(3000)]);
    }
  }
  rmSync(redis.dir, { recursive: true, force: true });
}

