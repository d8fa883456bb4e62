/**
 * Redis Sentinel on loopback for the failover test and `npm run bench:idp -- --store sentinel`: a primary,
 * one replica and three Sentinels (Debian's redis-server and redis-sentinel), on fixed ports from `base`
 * (primary base, replica base+1, Sentinels base+2…base+4), without persistence. Ready once every Sentinel
 * sees the replica and the other two (`SENTINEL CKQUORUM`).
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { createClient } from 'redis';
import { ping, stopRedis, type RedisProcess } from './redis-server.js';

export interface SentinelSet {
  /** The primary's name in the Sentinels' configuration. */
  name: string;
  primary: RedisProcess;
  replica: RedisProcess;
  sentinels: RedisProcess[];
  /** The Sentinels' addresses, as the IdP's configuration lists them. */
  nodes: { host: string; port: number }[];
}

export interface SentinelOptions {
  /** Sentinel's `down-after-milliseconds`: how long the primary must not answer before a failover (default 1000). */
  downAfterMs?: number;
}

/**
 * Starts it, again after a moment if its port is held: the ports are fixed (41200–41299) and a client's
 * connection elsewhere on the machine may be using one of them as its own local (ephemeral) port.
 */
async function spawnRedis(command: string, port: number, args: string[], configText?: string): Promise<RedisProcess> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await spawnOnce(command, port, args, configText);
    } catch (error) {
      if (attempt === 5 || !String(error).includes('Address already in use')) throw error;
      await sleep(1000);
    }
  }
}

async function spawnOnce(command: string, port: number, args: string[], configText?: string): Promise<RedisProcess> {
  const dir = mkdtempSync(join(tmpdir(), 'cpsd-sentinel-'));
  const config = join(dir, 'redis.conf');
  // A Sentinel rewrites its configuration file: it must be its own, writable.
  if (configText !== undefined) writeFileSync(config, configText);
  const child = spawn(command, [...(configText === undefined ? [] : [config]), ...args], { stdio: ['ignore', 'pipe', 'pipe'], cwd: dir });
  let stderr = '';
  let exited = false;
  child.once('exit', () => (exited = true));
  // Redis logs to stdout: kept (the last few KB) to say why it did not start.
  const keep = (d: Buffer): void => void (stderr = (stderr + d.toString()).slice(-4000));
  child.stdout?.on('data', keep);
  child.stderr?.on('data', keep);
  // Generous: on a loaded machine a Sentinel takes seconds to start.
  const deadline = Date.now() + 15_000;
  while (!exited && Date.now() < deadline) {
    if (await ping(port)) return { port, child, dir };
    await sleep(50);
  }
  await stopRedis({ port, child, dir });
  throw new Error(`${command} did not answer PING on 127.0.0.1:${port} (is the port taken?): ${stderr.trim()}`);
}

/** One connection per server while the set starts (polling with a new one each time would use up local ports). */
const askers = new Map<number, ReturnType<typeof createClient>>();

async function ask<T>(port: number, args: string[]): Promise<T> {
  let client = askers.get(port);
  if (!client?.isReady) {
    client?.destroy();
    client = createClient({ socket: { host: '127.0.0.1', port, connectTimeout: 1000, reconnectStrategy: false } });
    client.on('error', () => {});
    askers.set(port, client);
    await client.connect();
  }
  return (await client.sendCommand(args)) as T;
}

function closeAskers(): void {
  for (const client of askers.values()) client.destroy();
  askers.clear();
}

export async function startSentinelSet(base: number, options: SentinelOptions = {}): Promise<SentinelSet> {
  const name = 'cpsd';
  const started: RedisProcess[] = [];
  try {
    const plain = ['--bind', '127.0.0.1', '--save', '', '--appendonly', 'no'];
    const primary = await spawnRedis('/usr/bin/redis-server', base, ['--port', String(base), ...plain]);
    started.push(primary);
    const replica = await spawnRedis('/usr/bin/redis-server', base + 1, ['--port', String(base + 1), ...plain, '--replicaof', '127.0.0.1', String(base)]);
    started.push(replica);
    for (let i = 0; ; i++) {
      if (/master_link_status:up/.test(await ask<string>(base + 1, ['INFO', 'replication']))) break;
      if (i === 250) throw new Error('the replica did not sync with the primary within 5 s');
      await sleep(20);
    }
    const sentinels: RedisProcess[] = [];
    for (let i = 0; i < 3; i++) {
      const port = base + 2 + i;
      const text = [
        `port ${port}`,
        'bind 127.0.0.1',
        `sentinel monitor ${name} 127.0.0.1 ${base} 2`,
        `sentinel down-after-milliseconds ${name} ${options.downAfterMs ?? 1000}`,
        `sentinel failover-timeout ${name} 10000`,
        `sentinel parallel-syncs ${name} 1`,
        '',
      ].join('\n');
      const sentinel = await spawnRedis('/usr/bin/redis-sentinel', port, [], text);
      started.push(sentinel);
      sentinels.push(sentinel);
    }
    // Sentinels find each other through the primary's hello channel (every 2 s) and the replica through its INFO.
    for (let i = 0; ; i++) {
      const ready = await Promise.all(
        sentinels.map(async (s) => {
          const quorum = await ask<string>(s.port, ['SENTINEL', 'CKQUORUM', name]).catch(() => '');
          const replicas = await ask<unknown[]>(s.port, ['SENTINEL', 'REPLICAS', name]).catch(() => []);
          return String(quorum).startsWith('OK 3 usable') && replicas.length === 1;
        }),
      );
      if (ready.every(Boolean)) break;
      if (i === 150) throw new Error('the Sentinels did not see each other and the replica within 15 s');
      await sleep(100);
    }
    return { name, primary, replica, sentinels, nodes: sentinels.map((s) => ({ host: '127.0.0.1', port: s.port })) };
  } catch (error) {
    await Promise.all(started.map((p) => stopRedis(p)));
    throw error;
  } finally {
    closeAskers();
  }
}

/** The address the Sentinels give for the primary now. */
export async function primaryPort(set: SentinelSet, sentinel = 0): Promise<number> {
  try {
    const [, port] = await ask<[string, string]>(set.sentinels[sentinel]?.port ?? 0, ['SENTINEL', 'GET-MASTER-ADDR-BY-NAME', set.name]);
    return Number(port);
  } finally {
    closeAskers();
  }
}

export async function stopSentinelSet(set: SentinelSet): Promise<void> {
  await Promise.all([...set.sentinels, set.primary, set.replica].map((p) => stopRedis(p)));
}
