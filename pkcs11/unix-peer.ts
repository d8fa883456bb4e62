/**
 * Who is at the other end of an accepted Unix socket. Node exposes no SO_PEERCRED, so on Linux the
 * kernel is asked through `ss` (iproute2, sock_diag): our socket's inode gives the peer's inode, and
 * the peer's row names the processes holding it. An unprivileged `ss` only names processes of its own
 * user, so an unnamed peer is refused; each named process's uid must be ours (root's daemon sees all).
 */
import { execFile } from 'node:child_process';
import { readlink, stat } from 'node:fs/promises';
import type { Socket } from 'node:net';

/** The uid(s) of the processes holding the peer end, or undefined when it cannot be told. */
export async function unixPeerUids(socket: Socket): Promise<number[] | undefined> {
  if (process.platform !== 'linux') return undefined;
  const fd = (socket as unknown as { _handle?: { fd?: number } })._handle?.fd;
  if (typeof fd !== 'number' || fd < 0) return undefined;
  const link = await readlink(`/proc/self/fd/${fd}`).catch(() => '');
  const ours = /^socket:\[(\d+)\]$/.exec(link)?.[1];
  if (!ours) return undefined;
  const table = await new Promise<string>((resolve) => {
    execFile('ss', ['-xpnH'], { timeout: 5000, maxBuffer: 16 * 1024 * 1024 }, (error, stdout) => resolve(error ? '' : stdout));
  });
  const rows = table.split('\n').map(parseRow).filter((r): r is Row => r !== undefined);
  const peer = rows.find((r) => r.inode === ours)?.peer;
  const pids = peer ? rows.filter((r) => r.inode === peer).flatMap((r) => r.pids) : [];
  if (pids.length === 0) return undefined;
  const uids = await Promise.all(pids.map((pid) => stat(`/proc/${pid}`).then((s) => s.uid, () => undefined)));
  return uids.every((u): u is number => u !== undefined) ? uids : undefined;
}

interface Row {
  inode: string;
  peer: string;
  pids: number[];
}

/** `u_str ESTAB 0 0 /run/user/1000/cpsd/pkcs11.sock 4242 * 4243 users:(("node",pid=7,fd=20))` */
export function parseRow(line: string): Row | undefined {
  const m = /^\S+\s+\S+\s+\d+\s+\d+\s+\S+\s+(\d+)\s+\S+\s+(\d+)(.*)$/.exec(line.trim());
  if (!m) return undefined;
  const pids = [...(m[3] ?? '').matchAll(/pid=(\d+)/g)].map((p) => Number(p[1]));
  return { inode: m[1] as string, peer: m[2] as string, pids };
}
