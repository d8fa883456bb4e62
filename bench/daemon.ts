/**
 * Daemon overhead with the in-process, zero-latency virtual card: request → response latency for
 * card.identity and auth.authenticate (local application, PIN in the request), requests per second with
 * concurrent clients, and resident memory with 1,000 idle connections.
 *
 *   npm run bench:daemon            # BENCH_REQUESTS=2000 BENCH_CLIENTS=8 BENCH_IDLE=1000 to change
 */
import { InProcessBackend } from '../cards/backends.js';
import { connectDaemon, type RpcClient } from '../daemon/client.js';
import { DEFAULTS } from '../daemon/config.js';
import { Logger } from '../daemon/log.js';
import { CpsdServer } from '../daemon/server.js';
import { fixtureCard } from '../sim/cps/fixtures.js';

const REQUESTS = Number(process.env.BENCH_REQUESTS ?? 2000);
const CLIENTS = Number(process.env.BENCH_CLIENTS ?? 8);
const IDLE = Number(process.env.BENCH_IDLE ?? 1000);
const nonce = Buffer.alloc(32, 1).toString('base64');

function percentile(sorted: number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))] ?? NaN;
}

const client = (port: number): Promise<RpcClient> => connectDaemon(port);

async function latency(rpc: RpcClient, method: string, params: Record<string, unknown>, count: number): Promise<number[]> {
  for (let i = 0; i < 20; i++) await rpc.call(method, params);
  const times: number[] = [];
  for (let i = 0; i < count; i++) {
    const t = process.hrtime.bigint();
    const m = await rpc.call(method, params);
    if (m.error) throw new Error(JSON.stringify(m.error));
    times.push(Number(process.hrtime.bigint() - t) / 1e6);
  }
  return times.sort((a, b) => a - b);
}

async function main(): Promise<void> {
  const sim = new InProcessBackend(fixtureCard('doctor'));
  const server = new CpsdServer(
    { ...DEFAULTS, port: 0, maxConnections: IDLE + 100, ratePerSecond: 1_000_000 },
    sim,
    new Logger('error', () => undefined),
  );
  await server.listen();
  const rpc = await client(server.port);
  const rows: string[][] = [];
  for (const [method, params, n] of [
    ['card.identity', {}, REQUESTS],
    ['auth.authenticate', { nonce, pin: '1234' }, Math.max(50, REQUESTS / 10)],
  ] as const) {
    const t = await latency(rpc, method, params, n);
    rows.push([method, String(n), percentile(t, 50).toFixed(2), percentile(t, 99).toFixed(2)]);
  }
  // Throughput: CLIENTS clients in parallel, card.identity (served from the cache after the first read).
  const clients = await Promise.all(Array.from({ length: CLIENTS }, () => client(server.port)));
  const start = process.hrtime.bigint();
  await Promise.all(clients.map(async (c) => {
    for (let i = 0; i < REQUESTS / CLIENTS; i++) await c.call('card.identity', {});
  }));
  const seconds = Number(process.hrtime.bigint() - start) / 1e9;
  await Promise.all(clients.map((c) => c.close()));
  // Memory: IDLE idle connections (server and clients share this process: the figure is an upper bound).
  global.gc?.();
  const rss0 = process.memoryUsage().rss;
  const idle = [];
  for (let i = 0; i < IDLE; i++) idle.push(await client(server.port));
  await new Promise((r) => setTimeout(r, 500));
  global.gc?.();
  const rss1 = process.memoryUsage().rss;
  console.log('cpsd daemon overhead, in-process virtual card (zero card latency), one Node process');
  console.log(`${'method'.padEnd(20)}${'requests'.padStart(9)}${'p50 ms'.padStart(9)}${'p99 ms'.padStart(9)}`);
  for (const r of rows) console.log(`${(r[0] ?? '').padEnd(20)}${(r[1] ?? '').padStart(9)}${(r[2] ?? '').padStart(9)}${(r[3] ?? '').padStart(9)}`);
  console.log(`card.identity throughput, ${CLIENTS} clients: ${Math.round(REQUESTS / seconds)} requests/s`);
  console.log(`${IDLE} idle connections: +${((rss1 - rss0) / 1024 / 1024).toFixed(1)} MiB RSS (clients included), total RSS ${(rss1 / 1024 / 1024).toFixed(0)} MiB`);
  idle.forEach((c) => c.ws.terminate());
  await rpc.close();
  await server.close();
}

await main();
