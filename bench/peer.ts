/**
 * Cost of knowing who is connecting (daemon/peer.ts): the /proc/net/tcp lookup alone, per connection,
 * with a small and with a large socket table; and 1,000 WebSocket handshakes to the daemon with the
 * check and without it (the "unsupported platform, allow" path), the difference being what a
 * connection pays. Linux only.
 *
 *   npm run bench:peer            # BENCH_CONNECTIONS=1000 BENCH_IDLE=2000 to change
 */
import { readFileSync } from 'node:fs';
import { connect, createServer, type AddressInfo, type Socket } from 'node:net';
import { InProcessBackend } from '../cards/backends.js';
import { connectDaemon } from '../daemon/client.js';
import { DEFAULTS } from '../daemon/config.js';
import { Logger } from '../daemon/log.js';
import { LinuxProcNetTcp, UnsupportedPeerOwner, peerOwner, type PeerOwnerSource } from '../daemon/peer.js';
import { CpsdServer } from '../daemon/server.js';
import { fixtureCard } from '../sim/cps/fixtures.js';

const CONNECTIONS = Number(process.env.BENCH_CONNECTIONS ?? 1000);
const IDLE = Number(process.env.BENCH_IDLE ?? 2000);

const ms = (ns: bigint): number => Number(ns) / 1e6;
function stats(times: number[]): string {
  const s = [...times].sort((a, b) => a - b);
  const p = (q: number): number => s[Math.min(s.length - 1, Math.floor(q * s.length))] ?? NaN;
  const mean = s.reduce((a, b) => a + b, 0) / s.length;
  return `mean ${(mean * 1000).toFixed(0)} µs, p50 ${(p(0.5) * 1000).toFixed(0)} µs, p99 ${(p(0.99) * 1000).toFixed(0)} µs, max ${(p(1) * 1000).toFixed(0)} µs`;
}
const tableRows = (): number => ['/proc/net/tcp', '/proc/net/tcp6'].reduce((n, f) => n + readFileSync(f, 'latin1').split('\n').length - 2, 0);
const tableBytes = (): number => ['/proc/net/tcp', '/proc/net/tcp6'].reduce((n, f) => n + readFileSync(f, 'latin1').length, 0);

/** `CONNECTIONS` connections one after the other; the lookup timed on each accepted socket. */
async function lookups(source: PeerOwnerSource): Promise<{ times: number[]; found: number }> {
  const times: number[] = [];
  let found = 0;
  const server = createServer((socket) => {
    const t = process.hrtime.bigint();
    void peerOwner(socket, source).then((owner) => {
      times.push(ms(process.hrtime.bigint() - t));
      if (owner?.uid === process.getuid?.()) found++;
      socket.end();
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const { port } = server.address() as AddressInfo;
  for (let i = 0; i < CONNECTIONS; i++) {
    await new Promise<void>((resolve) => {
      const c = connect(port, '127.0.0.1');
      c.on('data', () => undefined);
      c.once('close', () => resolve());
    });
  }
  await new Promise((r) => server.close(r));
  return { times, found };
}

/** Idle connections that make the kernel's table longer (each adds two rows). */
async function idle(count: number): Promise<() => Promise<void>> {
  const held: Socket[] = [];
  const server = createServer((s) => held.push(s));
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const { port } = server.address() as AddressInfo;
  for (let i = 0; i < count; i++) await new Promise<void>((r) => held.push(connect(port, '127.0.0.1', r)));
  return async () => {
    for (const s of held) s.destroy();
    await new Promise((r) => server.close(r));
  };
}

/** Handshakes to two daemons, one checking and one not, taking turns (the same table for both). */
async function handshakes(): Promise<{ without: number[]; withCheck: number[] }> {
  const make = async (peers: PeerOwnerSource): Promise<CpsdServer> => {
    const server = new CpsdServer({ ...DEFAULTS, port: 0, maxLocalConnections: 10_000 }, new InProcessBackend(fixtureCard('doctor')), new Logger('error', () => undefined), peers);
    await server.listen();
    for (let i = 0; i < 50; i++) await (await connectDaemon(server.port)).close();
    return server;
  };
  const plain = await make(new UnsupportedPeerOwner('bench', 'no check'));
  const checking = await make(new LinuxProcNetTcp());
  const without: number[] = [];
  const withCheck: number[] = [];
  for (let i = 0; i < 2 * CONNECTIONS; i++) {
    const [server, times] = i % 2 === 0 ? [plain, without] : [checking, withCheck];
    const t = process.hrtime.bigint();
    const rpc = await connectDaemon(server.port);
    times.push(ms(process.hrtime.bigint() - t));
    await rpc.close();
  }
  for (const s of [plain, checking]) {
    await s.close();
    await s.sessions.close();
  }
  return { without, withCheck };
}

if (process.platform !== 'linux') {
  process.stdout.write('bench:peer reads /proc/net/tcp: Linux only\n');
  process.exit(0);
}
const proc = new LinuxProcNetTcp();
process.stdout.write(`peer lookup (/proc/net/tcp{,6}), ${CONNECTIONS} connections one after the other\n`);
const small = await lookups(proc);
process.stdout.write(`  table of ${tableRows()} rows (${(tableBytes() / 1024).toFixed(0)} KiB): ${stats(small.times)}; owner found ${small.found}/${CONNECTIONS}\n`);
const release = await idle(IDLE);
const rows = tableRows();
const kib = tableBytes() / 1024;
const big = await lookups(proc);
process.stdout.write(`  table of ${rows} rows (${kib.toFixed(0)} KiB, ${IDLE} idle connections held): ${stats(big.times)}; owner found ${big.found}/${CONNECTIONS}\n`);
await release();
process.stdout.write(`WebSocket handshake to the daemon (connect until open), ${CONNECTIONS} connections to each of two daemons, taking turns\n`);
const before = tableRows();
const { without, withCheck } = await handshakes();
process.stdout.write(`  table of ${before} rows at the start, ${tableRows()} at the end (closed connections stay listed 60 s, TIME_WAIT)\n`);
process.stdout.write(`  without the owner check: ${stats(without)}\n  with the owner check:    ${stats(withCheck)}\n`);
const mean = (a: number[]): number => a.reduce((x, y) => x + y, 0) / a.length;
process.stdout.write(`  cost of the check: ${((mean(withCheck) - mean(without)) * 1000).toFixed(0)} µs per connection (mean)\n`);
