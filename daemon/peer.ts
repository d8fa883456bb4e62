/**
 * Who owns the other end of a loopback TCP connection (docs/security.md, "Several users on one computer").
 *
 * On a terminal server (RDS, Citrix, several X sessions) every user shares 127.0.0.1 and ::1: a browser of
 * user B reaches whatever listens there, user A's daemon included. The daemon therefore asks the kernel
 * which OS account owns the client's socket and serves only its own (or the proxy's word for it,
 * daemon/proxy.ts).
 *
 * - Linux: `/proc/net/tcp` and `/proc/net/tcp6` list every TCP socket of the network namespace with the
 *   uid that created it. The client's socket is the row whose local address is the peer's address and
 *   port and whose remote address is ours (the daemon's accepted socket is the mirror row, and is ours:
 *   never take it). The row must be ESTABLISHED with an inode: a socket its process already closed
 *   (FIN_WAIT2, TIME_WAIT) is a kernel mini-socket listed with uid 0, which must not pass for root.
 *   An IPv4 client may also sit in tcp6 as ::ffff:a.b.c.d (an AF_INET6 socket connected to a v4 address).
 * - Windows (not implemented): `GetExtendedTcpTable(AF_INET[6], TCP_TABLE_OWNER_PID_ALL)` gives the PID
 *   of the row with the same 4-tuple; `OpenProcess(PROCESS_QUERY_LIMITED_INFORMATION)` +
 *   `OpenProcessToken` + `GetTokenInformation(TokenUser)` its SID, `ProcessIdToSessionId` its WTS session.
 * - macOS (not implemented): no owner in a socket table; `proc_listpids` + `proc_pidinfo(PROC_PIDLISTFDS)` +
 *   `proc_pidfdinfo(PROC_PIDFDSOCKETINFO)` find the process whose socket has that 4-tuple (what `lsof -i`
 *   does), then `proc_pidinfo(PROC_PIDTBSDINFO)` its uid. `LOCAL_PEERPID`/`getpeereid` exist for Unix
 *   sockets only.
 *
 * Where there is no implementation, `supported` is false and the daemon does what `peerCheckUnsupported`
 * says (daemon/config.ts): serve (a single-user workstation) or refuse everything (a terminal server).
 */
import { open } from 'node:fs/promises';
import { isIPv4, isIPv6, type Socket } from 'node:net';
import { endianness } from 'node:os';

export interface PeerOwner {
  /** The OS account, compared for equality only: the uid in decimal on Linux (a SID would be on Windows). */
  readonly user: string;
  /** The POSIX uid. */
  readonly uid: number;
}

export interface Endpoint {
  readonly address: string;
  readonly port: number;
}

export interface PeerOwnerSource {
  /** False where this platform has no implementation: `owner` then always answers undefined. */
  readonly supported: boolean;
  /** What it reads (for logs and docs). */
  readonly method: string;
  /**
   * The owner of the ESTABLISHED socket whose local end is `local` and remote end is `remote`; undefined
   * if unknown. By default the socket must be one a process holds (has an inode); `acceptedOnly: false`
   * also takes a connection still waiting in a listener's queue.
   */
  socketOwner(local: Endpoint, remote: Endpoint, options?: { acceptedOnly?: boolean }): Promise<PeerOwner | undefined>;
}

/** The account of this process, as a PeerOwner's `user`. */
export function currentUser(): string {
  return String(process.getuid?.() ?? -1);
}

// ------------------------------------------------------------------ Linux: /proc/net/tcp{,6}

const LITTLE = endianness() === 'LE';

/** The 16 bytes of an IPv6 address (`::1`, `::ffff:127.0.0.1`, `fe80::1%lo`); undefined if not one. */
export function ipv6Bytes(address: string): Uint8Array | undefined {
  const a = address.replace(/%.*$/, '');
  if (!isIPv6(a)) return undefined;
  let words: number[];
  const [head = '', tail] = a.split('::') as [string, string | undefined];
  const part = (s: string): number[] => {
    if (s === '') return [];
    return s.split(':').flatMap((g) => {
      if (g.includes('.')) {
        const [b0 = 0, b1 = 0, b2 = 0, b3 = 0] = g.split('.').map(Number);
        return [(b0 << 8) | b1, (b2 << 8) | b3];
      }
      return [parseInt(g, 16)];
    });
  };
  const h = part(head);
  if (tail === undefined) words = h;
  else {
    const t = part(tail);
    words = [...h, ...new Array<number>(8 - h.length - t.length).fill(0), ...t];
  }
  const out = new Uint8Array(16);
  words.forEach((w, i) => {
    out[2 * i] = w >> 8;
    out[2 * i + 1] = w & 0xff;
  });
  return out;
}

/** 4 bytes in network order as the kernel prints them: `%08X` of the 32-bit word read in host order. */
function word(bytes: Uint8Array, at: number, little: boolean): string {
  const b = [bytes[at] ?? 0, bytes[at + 1] ?? 0, bytes[at + 2] ?? 0, bytes[at + 3] ?? 0];
  if (little) b.reverse();
  return b.map((x) => x.toString(16).padStart(2, '0')).join('').toUpperCase();
}

/**
 * An endpoint as written in /proc/net/tcp (`0100007F:5F35`) or tcp6 (32 hex digits); undefined when the
 * address cannot be in that table. An IPv4 address in tcp6 is written v4-mapped.
 */
export function procAddress(e: Endpoint, table: 'tcp' | 'tcp6', little = LITTLE): string | undefined {
  const port = e.port.toString(16).toUpperCase().padStart(4, '0');
  const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(e.address)?.[1];
  const v4 = isIPv4(e.address) ? e.address : mapped;
  if (table === 'tcp') {
    if (!v4) return undefined;
    return `${word(Uint8Array.from(v4.split('.').map(Number)), 0, little)}:${port}`;
  }
  const bytes = ipv6Bytes(v4 ? `::ffff:${v4}` : e.address);
  if (!bytes) return undefined;
  return `${[0, 4, 8, 12].map((i) => word(bytes, i, little)).join('')}:${port}`;
}

export interface TcpRow {
  local: string;
  remote: string;
  /** Kernel state: 0x01 ESTABLISHED, 0x0A LISTEN, 0x06 TIME_WAIT… */
  state: number;
  uid: number;
  inode: number;
}

/** One data line of /proc/net/tcp{,6}; undefined for the header or a malformed line. */
export function parseTcpRow(line: string): TcpRow | undefined {
  // sl local rem st tx:rx tr:when retrnsmt uid timeout inode …
  const f = line.trim().split(/\s+/);
  if (f.length < 10 || !/^\d+:$/.test(f[0] ?? '')) return undefined;
  const [, local = '', remote = '', st = '', , , , uid = '', , inode = ''] = f;
  if (!/^[0-9A-F]+:[0-9A-F]{4}$/.test(local) || !/^[0-9A-F]+:[0-9A-F]{4}$/.test(remote) || !/^\d+$/.test(uid) || !/^\d+$/.test(inode)) return undefined;
  return { local, remote, state: parseInt(st, 16), uid: Number(uid), inode: Number(inode) };
}

const ESTABLISHED = 0x01;

/**
 * The uid of the live socket whose local end is `local` and remote end `remote` in one table's text:
 * ESTABLISHED, with an inode (a closed socket's leftover is listed with uid 0 and inode 0).
 */
export function ownerInTable(text: string, local: string, remote: string, acceptedOnly = true): number | undefined {
  // The two addresses are adjacent on the line, separated by one space: a substring search finds the row
  // without splitting the whole table (it is read once per connection).
  const needle = ` ${local} ${remote} `;
  let at = text.indexOf(needle);
  while (at >= 0) {
    const start = text.lastIndexOf('\n', at) + 1;
    const end = text.indexOf('\n', at);
    const row = parseTcpRow(text.slice(start, end < 0 ? undefined : end));
    if (row && row.local === local && row.remote === remote && row.state === ESTABLISHED && (row.inode !== 0 || !acceptedOnly)) return row.uid;
    at = text.indexOf(needle, at + 1);
  }
  return undefined;
}

export class LinuxProcNetTcp implements PeerOwnerSource {
  readonly supported = true;
  readonly method = '/proc/net/tcp, /proc/net/tcp6';
  readonly #dir: string;

  /** `dir`: where tcp and tcp6 are (tests give a directory of copies). */
  constructor(dir = '/proc/net') {
    this.#dir = dir;
  }

  async socketOwner(local: Endpoint, remote: Endpoint, options: { acceptedOnly?: boolean } = {}): Promise<PeerOwner | undefined> {
    // IPv4 first (the common case: one read); tcp6 for ::1 and for v4-mapped clients.
    for (const table of ['tcp', 'tcp6'] as const) {
      const l = procAddress(local, table);
      const r = procAddress(remote, table);
      if (!l || !r) continue;
      const uid = await scanTable(`${this.#dir}/${table}`, l, r, options.acceptedOnly ?? true);
      if (uid !== undefined) return { user: String(uid), uid };
    }
    return undefined;
  }
}

const CHUNK = 256 * 1024;

/**
 * Reads a table in large chunks (the kernel writes it as it is read: fewer, larger reads cost less) and
 * stops at the row, which is on average half way down.
 */
async function scanTable(path: string, local: string, remote: string, acceptedOnly: boolean): Promise<number | undefined> {
  let fh;
  try {
    fh = await open(path, 'r');
  } catch {
    return undefined;
  }
  try {
    const buffer = Buffer.allocUnsafe(CHUNK);
    let carry = '';
    for (;;) {
      const { bytesRead } = await fh.read(buffer, 0, CHUNK, null);
      if (bytesRead === 0) return undefined;
      // Whole lines only: the last, partial one waits for the next chunk.
      const text = carry + buffer.toString('latin1', 0, bytesRead);
      const cut = text.lastIndexOf('\n') + 1;
      const uid = ownerInTable(text.slice(0, cut), local, remote, acceptedOnly);
      if (uid !== undefined) return uid;
      carry = text.slice(cut);
    }
  } finally {
    await fh.close();
  }
}

/** A platform without an implementation: never knows (the caller applies `peerCheckUnsupported`). */
export class UnsupportedPeerOwner implements PeerOwnerSource {
  readonly supported = false;
  readonly method: string;

  constructor(platform: string, wouldUse: string) {
    this.method = `unsupported on ${platform} (would use ${wouldUse})`;
  }

  socketOwner(): Promise<PeerOwner | undefined> {
    return Promise.resolve(undefined);
  }
}

export function peerOwnerSource(platform: NodeJS.Platform = process.platform): PeerOwnerSource {
  if (platform === 'linux') return new LinuxProcNetTcp();
  if (platform === 'win32') return new UnsupportedPeerOwner(platform, 'GetExtendedTcpTable TCP_TABLE_OWNER_PID_ALL → PID → token user / WTS session');
  if (platform === 'darwin') return new UnsupportedPeerOwner(platform, 'proc_pidfdinfo PROC_PIDFDSOCKETINFO → PID → uid');
  return new UnsupportedPeerOwner(platform, 'nothing known');
}

let defaultSource: PeerOwnerSource | undefined;

/** The owner of the process at the other end of an accepted (or connected) TCP socket on this machine. */
export function peerOwner(socket: Socket, source: PeerOwnerSource = (defaultSource ??= peerOwnerSource())): Promise<PeerOwner | undefined> {
  const { remoteAddress, remotePort, localAddress, localPort } = socket;
  if (!remoteAddress || !remotePort || !localAddress || !localPort) return Promise.resolve(undefined);
  // A socket connected to itself would find our own row: nobody else's.
  if (remoteAddress === localAddress && remotePort === localPort) return Promise.resolve(undefined);
  // The peer's socket: its local end is our remote end, and the other way round.
  return source.socketOwner({ address: remoteAddress, port: remotePort }, { address: localAddress, port: localPort });
}
