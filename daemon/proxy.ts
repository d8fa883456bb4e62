/**
 * `cpsd proxy`: several users on one computer (terminal server), one well-known port
 * (docs/security.md, "Several users on one computer"; docs/install.md).
 *
 * The proxy (root) holds 127.0.0.1 and ::1 on `port` (24821). Each user's daemon (`behindProxy`) listens
 * on a free loopback port and writes it to `$XDG_RUNTIME_DIR/cpsd/port`, i.e. `/run/user/<uid>/cpsd/port`:
 * a directory only that user (and root) can write, so nobody can register for someone else. For each
 * connection the proxy:
 *
 * 1. asks the kernel which uid owns the client's socket (daemon/peer.ts), never the client;
 * 2. reads that uid's registration, checking that the directories and the file belong to that uid and are
 *    not links (a user owns their runtime directory and could point a link anywhere);
 * 3. connects to that port and checks that the socket which accepted it belongs to that uid too (if the
 *    user's daemon died and someone else took its port, the connection goes nowhere);
 * 4. writes one line, `CPSD-PEER uid=<uid>\r\n`, then copies bytes both ways, untouched: Host, Origin and
 *    everything else reach the user's daemon as the browser sent them, and the daemon checks them.
 *
 * The daemon believes that line only from a connection whose socket belongs to root (server.ts), and only
 * if the uid is its own; from anyone else, a first line is just a bad request, and the peer is judged by
 * its own socket. The route is chosen once per connection, from the kernel's answer, before any byte of
 * the client is read: nothing the client sends can change where its bytes go.
 */
import { constants } from 'node:fs';
import { lstat, mkdir, open, readFile, rename, unlink, writeFile } from 'node:fs/promises';
import { connect, createServer, type AddressInfo, type Server, type Socket } from 'node:net';
import { join } from 'node:path';
import { ConfigError } from './config.js';
import type { Logger } from './log.js';
import { peerOwner, peerOwnerSource, type PeerOwnerSource } from './peer.js';

export const PREAMBLE = 'CPSD-PEER uid=';
const MAX_PREAMBLE = 32;

export const DEFAULT_RUNTIME_ROOT = '/run/user';

const NO_DAEMON = 'cpsd: no cpsd daemon is running for your user account on this computer: start it (systemctl --user start cpsd, or cpsd serve)\n';
const UNKNOWN_OWNER = 'cpsd: the user of this connection could not be determined: refused\n';

/**
 * The first line of a connection from root: the uid the proxy vouches for, `none` (no such line: plain
 * HTTP from root itself) or `invalid`. What follows the line is put back for HTTP to read.
 */
export function readPreamble(socket: Socket, timeoutMs = 2000): Promise<number | 'none' | 'invalid'> {
  return new Promise((resolve) => {
    let seen = Buffer.alloc(0);
    const finish = (verdict: number | 'none' | 'invalid', rest: Buffer): void => {
      clearTimeout(timer);
      socket.off('data', onData);
      socket.off('end', onEnd);
      socket.pause();
      if (rest.length > 0) socket.unshift(rest);
      resolve(verdict);
    };
    const onData = (chunk: Buffer): void => {
      seen = Buffer.concat([seen, chunk]);
      const head = seen.subarray(0, PREAMBLE.length).toString('latin1');
      if (head !== PREAMBLE.slice(0, head.length)) return finish('none', seen);
      const nl = seen.indexOf(0x0a);
      if (nl < 0) {
        if (seen.length > MAX_PREAMBLE) finish('invalid', seen);
        return;
      }
      const m = /^CPSD-PEER uid=(\d{1,10})\r\n$/.exec(seen.subarray(0, nl + 1).toString('latin1'));
      finish(m ? Number(m[1]) : 'invalid', seen.subarray(nl + 1));
    };
    const onEnd = (): void => finish('invalid', seen);
    const timer = setTimeout(() => finish('invalid', seen), timeoutMs);
    socket.on('data', onData);
    socket.once('end', onEnd);
    socket.resume();
  });
}

// ------------------------------------------------------------------ registration (the user's daemon)

/** Writes this daemon's port where the proxy looks for it; returns the file (removed by `unregister`). */
export async function registerBehindProxy(port: number, env: NodeJS.ProcessEnv = process.env): Promise<string> {
  const runtime = env.XDG_RUNTIME_DIR;
  if (!runtime) {
    throw new ConfigError('behindProxy: XDG_RUNTIME_DIR is not set (the per-user runtime directory, /run/user/<uid>, where cpsd proxy finds this daemon)');
  }
  const dir = join(runtime, 'cpsd');
  await mkdir(dir, { recursive: true, mode: 0o700 });
  const file = join(dir, 'port');
  const tmp = `${file}.${process.pid}`;
  await writeFile(tmp, `${JSON.stringify({ port, pid: process.pid })}\n`, { mode: 0o600 });
  await rename(tmp, file);
  return file;
}

/** Removes the registration if it is still this process's (a newer daemon may have replaced it). */
export async function unregisterBehindProxy(file: string): Promise<void> {
  try {
    const r = JSON.parse(await readFile(file, 'utf8')) as { pid?: unknown };
    if (r.pid === process.pid) await unlink(file);
  } catch {
    // gone already
  }
}

/** A directory that `uid` owns and nobody else may write; not a link. */
async function ownedDir(path: string, uid: number): Promise<boolean> {
  const st = await lstat(path);
  return st.isDirectory() && st.uid === uid && (st.mode & 0o022) === 0;
}

/**
 * The port `uid`'s daemon registered under `runtimeRoot/<uid>/cpsd/port`, if everything on the way is
 * theirs (the root directory root's); undefined otherwise.
 */
export async function registeredPort(uid: number, runtimeRoot = DEFAULT_RUNTIME_ROOT): Promise<number | undefined> {
  try {
    if (!(await ownedDir(runtimeRoot, 0))) return undefined;
    const home = join(runtimeRoot, String(uid));
    const dir = join(home, 'cpsd');
    if (!(await ownedDir(home, uid)) || !(await ownedDir(dir, uid))) return undefined;
    // O_NOFOLLOW: not a link; O_NONBLOCK: a FIFO put there would not block the proxy.
    const fh = await open(join(dir, 'port'), constants.O_RDONLY | constants.O_NOFOLLOW | constants.O_NONBLOCK);
    try {
      const st = await fh.stat();
      if (!st.isFile() || st.uid !== uid || st.size > 256) return undefined;
      const r = JSON.parse(await fh.readFile('utf8')) as { port?: unknown };
      return typeof r.port === 'number' && Number.isInteger(r.port) && r.port > 0 && r.port < 65536 ? r.port : undefined;
    } finally {
      await fh.close();
    }
  } catch {
    return undefined;
  }
}

// ------------------------------------------------------------------ the proxy

export interface ProxyOptions {
  /** The well-known port (the configuration's `port`, 24821). */
  port: number;
  /** Where the users' runtime directories are (default /run/user). */
  runtimeRoot?: string;
  log: Logger;
  peers?: PeerOwnerSource;
  /** Connections at once, all users together. */
  maxConnections?: number;
}

export class CpsdProxy {
  readonly #options: ProxyOptions;
  readonly #peers: PeerOwnerSource;
  readonly #servers: Server[] = [];
  readonly #sockets = new Set<Socket>();
  #port = 0;

  constructor(options: ProxyOptions) {
    this.#options = options;
    this.#peers = options.peers ?? peerOwnerSource();
  }

  get port(): number {
    return this.#port;
  }

  async listen(): Promise<void> {
    if (!this.#peers.supported) throw new ConfigError(`cpsd proxy cannot tell the owner of a connection here: ${this.#peers.method}`);
    this.#port = await this.#listenOn('127.0.0.1', this.#options.port);
    try {
      await this.#listenOn('::1', this.#port);
    } catch (error) {
      this.#options.log.warn('ipv6-loopback-unavailable', { error });
    }
    this.#options.log.info('proxy-listening', { port: this.#port, runtimeRoot: this.#options.runtimeRoot ?? DEFAULT_RUNTIME_ROOT });
  }

  #listenOn(host: string, port: number): Promise<number> {
    const server = createServer({ pauseOnConnect: true }, (socket) => void this.#forward(socket));
    server.maxConnections = this.#options.maxConnections ?? 1024;
    return new Promise((resolve, reject) => {
      server.once('error', reject);
      server.listen({ host, port, exclusive: true }, () => {
        server.off('error', reject);
        this.#servers.push(server);
        resolve((server.address() as AddressInfo).port);
      });
    });
  }

  async close(): Promise<void> {
    for (const s of this.#sockets) s.destroy();
    await Promise.all(this.#servers.map((s) => new Promise((r) => s.close(r))));
  }

  #track(socket: Socket): void {
    this.#sockets.add(socket);
    socket.once('close', () => this.#sockets.delete(socket));
  }

  async #forward(client: Socket): Promise<void> {
    const log = this.#options.log;
    client.on('error', () => undefined);
    this.#track(client);
    const owner = await peerOwner(client, this.#peers).catch(() => undefined);
    if (client.destroyed) return;
    if (!owner) {
      log.warn('proxy-refused', { reason: 'owner-unknown' });
      return refuse(client, 403, 'Forbidden', UNKNOWN_OWNER);
    }
    const port = await registeredPort(owner.uid, this.#options.runtimeRoot);
    if (port === undefined) {
      log.warn('proxy-refused', { reason: 'no-daemon', uid: owner.uid });
      return refuse(client, 503, 'Service Unavailable', NO_DAEMON);
    }
    const upstream = await this.#connect(port, owner.uid);
    if (!upstream || client.destroyed) {
      upstream?.destroy();
      log.warn('proxy-refused', { reason: 'daemon-unreachable', uid: owner.uid, port });
      return refuse(client, 503, 'Service Unavailable', NO_DAEMON);
    }
    log.debug('proxy-forward', { uid: owner.uid, port });
    upstream.write(`${PREAMBLE}${owner.uid}\r\n`);
    client.pipe(upstream);
    upstream.pipe(client);
    client.once('close', () => upstream.destroy());
    upstream.once('close', () => client.destroy());
    client.resume();
  }

  /** A connection to `port` accepted by a socket of `uid`; undefined if none (or someone else's). */
  async #connect(port: number, uid: number): Promise<Socket | undefined> {
    const upstream = connect({ host: '127.0.0.1', port });
    upstream.on('error', () => undefined);
    this.#track(upstream);
    const ok = await new Promise<boolean>((resolve) => {
      upstream.once('connect', () => resolve(true));
      upstream.once('error', () => resolve(false));
      setTimeout(() => resolve(false), 2000).unref();
    });
    if (!ok || !upstream.localPort || !upstream.remotePort) {
      upstream.destroy();
      return undefined;
    }
    // The daemon's side of this connection, as the kernel lists it: local = the daemon's port.
    const daemonSide = { address: '127.0.0.1', port };
    const ourSide = { address: '127.0.0.1', port: upstream.localPort };
    // On older kernels a connection not yet accept()ed is listed as root's: give the daemon a moment.
    for (let i = 0; i < 20; i++) {
      const owner = await this.#peers.socketOwner(daemonSide, ourSide, { acceptedOnly: false });
      if (owner?.uid === uid) return upstream;
      if (owner && owner.uid !== 0) break;
      await new Promise((r) => setTimeout(r, 10));
    }
    upstream.destroy();
    return undefined;
  }
}

/**
 * An HTTP refusal on a connection HTTP never saw: written once the request has arrived (so that the
 * client reads it rather than a reset), then the rest is drained until the client closes or 2 s pass.
 */
export function refuse(socket: Socket, status: number, reason: string, body: string): void {
  const answer = `HTTP/1.1 ${status} ${reason}\r\nContent-Type: text/plain; charset=utf-8\r\nX-Content-Type-Options: nosniff\r\nConnection: close\r\nContent-Length: ${Buffer.byteLength(body)}\r\n\r\n${body}`;
  const timer = setTimeout(() => socket.destroy(), 2000);
  timer.unref();
  socket.once('close', () => clearTimeout(timer));
  socket.once('data', () => socket.end(answer));
  socket.on('data', () => undefined);
  socket.resume();
}
