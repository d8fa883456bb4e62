/**
 * Per-APDU round trip through the real PC/SC stack: cpsd (each native binding: pcsclite, smartcard) →
 * pcscd → vpcd → the test card in a child process. Measured twice per binding: the card connecting to
 * 127.0.0.2 (where `scripts/start-pcscd.sh` sets the loopback `quickack` route) and to 127.0.0.1 (plain
 * loopback, where Debian's vpcd 3.3 stalls on delayed ACKs); then pcsc-lite's C client for reference.
 * Needs pcscd with a vpcd reader: `sudo bash scripts/start-pcscd.sh`.
 *
 *   npm run bench:pcsc                   # 2000 APDUs with quickack, 100 without, both bindings
 *   BENCH_APDUS=5000 npm run bench:pcsc
 *   BENCH_BINDINGS=smartcard npm run bench:pcsc
 */
import { execFileSync, fork } from 'node:child_process';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { PCSC_BINDINGS, PcscService, isPcscBindingName, type PcscBindingName, type PcscEvent } from '../apdu/pcsc/index.js';
import { TestCard } from '../sim/test-card.js';

const READER = 'Virtual PCD 00 00';
const FAST_COUNT = Number(process.env.BENCH_APDUS ?? 2000);
const SLOW_COUNT = Number(process.env.BENCH_SLOW_APDUS ?? 100);
const ICC = fileURLToPath(new URL('../sim/icc-process.js', import.meta.url));
const BINDINGS: PcscBindingName[] = (process.env.BENCH_BINDINGS ?? PCSC_BINDINGS.join(',')).split(',').filter(isPcscBindingName);
const SELECT = Uint8Array.from([0x00, 0xa4, 0x04, 0x0c, TestCard.AID.length, ...TestCard.AID]);

function waitEvent(service: PcscService, type: PcscEvent['type'], timeoutMs = 5000): Promise<void> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => (off(), reject(new Error(`no ${type} within ${timeoutMs} ms`))), timeoutMs);
    const off = service.subscribe((e) => {
      if (e.type === type && 'reader' in e && e.reader === READER) {
        clearTimeout(timer);
        off();
        resolve();
      }
    });
  });
}

function percentile(sorted: number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))] ?? NaN;
}

async function measure(service: PcscService, host: string, count: number, external?: () => number[]): Promise<number[]> {
  const child = fork(ICC, [], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
  const call = (message: object): Promise<void> =>
    new Promise((resolve, reject) => {
      child.once('message', (reply: { ok: boolean; error?: string }) => (reply.ok ? resolve() : reject(new Error(reply.error))));
      child.send({ id: 1, ...message });
    });
  try {
    const inserted = waitEvent(service, 'card-inserted');
    await call({ op: 'insert', host, port: 35963 });
    await inserted;
    if (external) {
      const result = external();
      const removed = waitEvent(service, 'card-removed');
      await call({ op: 'remove' });
      await removed;
      return result;
    }
    const connection = await service.connect(READER, { share: 'shared', protocols: ['T0', 'T1'] });
    for (let i = 0; i < 20; i++) await connection.transmit(SELECT); // warm-up
    const times: number[] = [];
    for (let i = 0; i < count; i++) {
      const start = process.hrtime.bigint();
      await connection.transmit(SELECT);
      times.push(Number(process.hrtime.bigint() - start) / 1000);
    }
    await connection.disconnect('leave');
    const removed = waitEvent(service, 'card-removed');
    await call({ op: 'remove' });
    await removed;
    return times.sort((a, b) => a - b);
  } finally {
    child.kill();
  }
}

/** Builds bench/c/select.c with the system compiler; undefined (and a note) if it cannot. */
function cBaseline(): ((count: number) => number[]) | undefined {
  const source = fileURLToPath(new URL('../../bench/c/select.c', import.meta.url));
  const binary = join(tmpdir(), 'cpsd-select-bench');
  try {
    let flags = ['-I/usr/include/PCSC', '-lpcsclite'];
    try {
      flags = execFileSync('pkg-config', ['--cflags', '--libs', 'libpcsclite']).toString().trim().split(/\s+/);
    } catch {
      // no pkg-config: Debian's paths above
    }
    execFileSync('cc', ['-O2', '-o', binary, source, ...flags]);
  } catch (error) {
    console.log(`(C baseline skipped: ${(error as Error).message.split('\n')[0] ?? ''})`);
    return undefined;
  }
  // [median, p90, p99] in µs
  return (count) => execFileSync(binary, [READER, String(count)]).toString().trim().split(' ').map(Number);
}

const rows: string[][] = [];
const fmt = (us: number): string => (us >= 1000 ? `${(us / 1000).toFixed(2)} ms` : `${us.toFixed(0)} µs`);
let fastest: number | undefined;
let last: PcscService | undefined;
for (const binding of BINDINGS) {
  const service = new PcscService({ binding });
  try {
    await service.settled(5000);
    if (!service.readers().some((r) => r.name === READER)) throw new Error(`no "${READER}": start pcscd with vpcd first`);
    for (const [label, host, count] of [
      ['127.0.0.2 (quickack route)', '127.0.0.2', FAST_COUNT],
      ['127.0.0.1 (plain loopback)', '127.0.0.1', SLOW_COUNT],
    ] as const) {
      const t = await measure(service, host, count);
      if (host === '127.0.0.2') fastest = Math.min(fastest ?? Infinity, percentile(t, 50));
      rows.push([binding, label, String(count), fmt(percentile(t, 50)), fmt(percentile(t, 90)), fmt(percentile(t, 99))]);
    }
  } finally {
    if (binding === BINDINGS.at(-1)) last = service;
    else await service.close();
  }
}
try {
  // The same round trip from C on libpcsclite: what pcscd + vpcd cost without Node and a binding.
  const c = cBaseline();
  if (c && last) {
    const t = await measure(last, '127.0.0.2', FAST_COUNT, () => c(FAST_COUNT));
    rows.push(['C libpcsclite client', '127.0.0.2', String(FAST_COUNT), `${(t[0] ?? NaN).toFixed(0)} µs`, `${(t[1] ?? NaN).toFixed(0)} µs`, `${(t[2] ?? NaN).toFixed(0)} µs`]);
    console.log(`ratio fastest binding / C (median): ${((fastest ?? NaN) / (t[0] ?? NaN)).toFixed(2)}`);
  }
  const header = ['client', 'card side connects to', 'APDUs', 'median', 'p90', 'p99'];
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]?.length ?? 0)));
  const line = (cells: string[]): string => cells.map((cell, i) => cell.padEnd(widths[i] ?? 0)).join('  ');
  console.log('SELECT round trip, cpsd → binding → pcscd → vpcd → test card (child process)');
  console.log(line(header));
  for (const r of rows) console.log(line(r));
} finally {
  await last?.close();
}
