/**
 * Who owns a loopback connection's client socket, read from /proc/net/tcp{,6} (daemon/peer.ts).
 *
 * The tables below are real: copied from /proc/net/tcp and /proc/net/tcp6 of the development machine
 * (Linux 6.18, x86-64, little-endian) on 2026-12-01, the rows of one server listening on 127.0.0.1:33485
 * (0x82CD) and [::1]:33485 as root (uid 0), with three clients of a test user (uid 1001): an IPv4 one
 * (port 58854, 0xE5E6), an IPv6 one to ::1 (port 45910, 0xB356), an AF_INET6 socket connected to
 * ::ffff:127.0.0.1 (port 58870, 0xE5F6), and a connection root closed at once (TIME_WAIT, port 0xE5D6).
 * Only the trailing blanks of the lines were kept as they were.
 */
import { mkdtempSync, writeFileSync } from 'node:fs';
import type { Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { LinuxProcNetTcp, UnsupportedPeerOwner, ipv6Bytes, ownerInTable, parseTcpRow, peerOwner, peerOwnerSource, procAddress } from '../../daemon/peer.js';

const TCP = `  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode                                                     
   3: 0100007F:82CD 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 957258 1 00000000bc599fd8 100 0 0 10 0                    
  26: 0100007F:82CD 0100007F:E5F6 01 00000000:00000000 00:00000000 00000000     0        0 955315 1 00000000ad73875e 20 0 0 10 -1                    
 108: 0100007F:82CD 0100007F:E5E6 01 00000000:00000000 00:00000000 00000000     0        0 955311 1 00000000eb72ec4b 20 0 0 10 -1                    
 110: 0100007F:E5D6 0100007F:82CD 06 00000000:00000000 03:00001736 00000000     0        0 0 3 000000007d80c263                                      
 111: 0100007F:E5E6 0100007F:82CD 01 00000000:00000000 00:00000000 00000000  1001        0 955310 2 00000000156e79af 20 0 0 10 -1                    
`;

const TCP6 = `  sl  local_address                         remote_address                        st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode
   0: 00000000000000000000000001000000:82CD 00000000000000000000000000000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 957259 1 000000007b0d0726 100 0 0 10 0
   2: 00000000000000000000000001000000:B356 00000000000000000000000001000000:82CD 01 00000000:00000000 00:00000000 00000000  1001        0 955312 2 0000000023c3db92 20 0 0 10 -1
   3: 00000000000000000000000001000000:82CD 00000000000000000000000001000000:B356 01 00000000:00000000 00:00000000 00000000     0        0 955313 1 000000004fb2331c 20 0 0 10 -1
   4: 0000000000000000FFFF00000100007F:E5F6 0000000000000000FFFF00000100007F:82CD 01 00000000:00000000 00:00000000 00000000  1001        0 955314 2 0000000058574e7b 20 0 0 10 -1
`;

const SERVER = { address: '127.0.0.1', port: 33485 };
const SERVER6 = { address: '::1', port: 33485 };

function tables(): LinuxProcNetTcp {
  const dir = mkdtempSync(join(tmpdir(), 'cpsd-peer-'));
  writeFileSync(join(dir, 'tcp'), TCP);
  writeFileSync(join(dir, 'tcp6'), TCP6);
  return new LinuxProcNetTcp(dir);
}

describe('kernel addresses', () => {
  it('writes 127.0.0.1:33485 as the kernel does on a little-endian machine', () => {
    expect(procAddress(SERVER, 'tcp', true)).toBe('0100007F:82CD');
  });

  it('writes it in network order on a big-endian machine', () => {
    expect(procAddress(SERVER, 'tcp', false)).toBe('7F000001:82CD');
  });

  it('writes ::1 as the kernel does (four host-order words)', () => {
    expect(procAddress(SERVER6, 'tcp6', true)).toBe('00000000000000000000000001000000:82CD');
  });

  it('writes an IPv4 address in tcp6 v4-mapped, as the kernel lists an AF_INET6 client', () => {
    expect(procAddress({ address: '127.0.0.1', port: 58870 }, 'tcp6', true)).toBe('0000000000000000FFFF00000100007F:E5F6');
    expect(procAddress({ address: '::ffff:127.0.0.1', port: 58870 }, 'tcp6', true)).toBe('0000000000000000FFFF00000100007F:E5F6');
  });

  it('has no tcp form for an IPv6 address', () => {
    expect(procAddress(SERVER6, 'tcp', true)).toBeUndefined();
  });

  it('expands IPv6 addresses with ::, embedded IPv4 and a zone', () => {
    expect(Array.from(ipv6Bytes('fe80::1:2%lo') ?? [])).toEqual([0xfe, 0x80, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0, 2]);
    expect(Array.from(ipv6Bytes('::ffff:10.1.2.3') ?? []).slice(10)).toEqual([0xff, 0xff, 10, 1, 2, 3]);
    expect(ipv6Bytes('127.0.0.1')).toBeUndefined();
  });
});

describe('rows', () => {
  it('reads state, uid and inode of a real row', () => {
    const line = TCP.split('\n').find((l) => l.includes('0100007F:E5E6 0100007F:82CD')) ?? '';
    expect(parseTcpRow(line)).toEqual({ local: '0100007F:E5E6', remote: '0100007F:82CD', state: 1, uid: 1001, inode: 955310 });
  });

  it('skips the header line', () => {
    expect(parseTcpRow(TCP.split('\n')[0] ?? '')).toBeUndefined();
  });
});

describe('the owner of a client socket', () => {
  it('is the uid of the IPv4 client row (local = the client, remote = the server)', () => {
    expect(ownerInTable(TCP, '0100007F:E5E6', '0100007F:82CD')).toBe(1001);
  });

  it('is looked up from the peer\'s side of an accepted socket, never the daemon\'s own row (root)', async () => {
    // The daemon's accepted socket: local 127.0.0.1:33485, remote the client's port. Its own row says uid 0.
    const accepted = { localAddress: '127.0.0.1', localPort: 33485, remoteAddress: '127.0.0.1', remotePort: 58854 } as Socket;
    expect(await peerOwner(accepted, tables())).toEqual({ user: '1001', uid: 1001 });
  });

  it('is unknown for a closed client (TIME_WAIT is listed as uid 0 without an inode): never root', () => {
    expect(ownerInTable(TCP, '0100007F:E5D6', '0100007F:82CD')).toBeUndefined();
  });

  it('is unknown for a port nobody connects from', () => {
    expect(ownerInTable(TCP, '0100007F:E5E7', '0100007F:82CD')).toBeUndefined();
  });

  it('finds an IPv4 client in tcp', async () => {
    expect(await tables().socketOwner({ address: '127.0.0.1', port: 58854 }, SERVER)).toEqual({ user: '1001', uid: 1001 });
  });

  it('finds an IPv6 client of ::1 in tcp6', async () => {
    expect(await tables().socketOwner({ address: '::1', port: 45910 }, SERVER6)).toEqual({ user: '1001', uid: 1001 });
  });

  it('finds an AF_INET6 client of 127.0.0.1 in tcp6, v4-mapped, though the server sees 127.0.0.1', async () => {
    expect(await tables().socketOwner({ address: '127.0.0.1', port: 58870 }, SERVER)).toEqual({ user: '1001', uid: 1001 });
  });

  it('finds the same client when the server socket is dual-stack (::ffff:127.0.0.1 on both ends)', async () => {
    expect(await tables().socketOwner({ address: '::ffff:127.0.0.1', port: 58870 }, { address: '::ffff:127.0.0.1', port: 33485 })).toEqual({ user: '1001', uid: 1001 });
  });

  it('does not know a client to another port of the same address', async () => {
    expect(await tables().socketOwner({ address: '127.0.0.1', port: 58854 }, { address: '127.0.0.1', port: 33486 })).toBeUndefined();
  });
});

describe('platforms', () => {
  it('reads /proc on Linux', () => {
    expect(peerOwnerSource('linux').supported).toBe(true);
  });

  it('says so on Windows and macOS, and never knows an owner there', async () => {
    for (const p of ['win32', 'darwin'] as const) {
      const s = peerOwnerSource(p);
      expect([s.supported, s instanceof UnsupportedPeerOwner]).toEqual([false, true]);
      expect(await s.socketOwner({ address: '127.0.0.1', port: 1 }, SERVER)).toBeUndefined();
    }
  });
});
