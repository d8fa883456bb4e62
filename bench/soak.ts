/**
 * Soak: the daemon under hostile and ordinary traffic for a while, heap and RSS sampled every second.
 * Flat memory after the first seconds is the expected shape.
 *
 *   npm run bench:soak              # BENCH_SECONDS=30 by default
 */
import WebSocket from 'ws';
import { InProcessBackend } from '../cards/backends.js';
import { DEFAULTS } from '../daemon/config.js';
import { Logger } from '../daemon/log.js';
import { CpsdServer } from '../daemon/server.js';
import { fixtureCard } from '../sim/cps/fixtures.js';

const SECONDS = Number(process.env.BENCH_SECONDS ?? 30);
const mib = (n: number): string => (n / 1024 / 1024).toFixed(1);

const server = new CpsdServer({ ...DEFAULTS, port: 0, ratePerSecond: 100_000, maxConnections: 500 }, new InProcessBackend(fixtureCard('doctor')), new Logger('error', () => undefined));
await server.listen();
const url = `ws://127.0.0.1:${server.port}`;
const junk = ['{', '[]', 'null', '{"jsonrpc":"2.0","id":1,"method":"nope"}', 'x'.repeat(20_000), '{"jsonrpc":"2.0","id":2,"method":"card.identity","params":{}}'];
let sent = 0;
let stop = false;

async function worker(i: number): Promise<void> {
  while (!stop) {
    const ws = new WebSocket(url);
    await new Promise<void>((resolve) => {
      ws.on('error', () => resolve());
      ws.on('close', () => resolve());
      ws.on('open', () => {
        for (let k = 0; k < 20; k++) {
          ws.send(junk[(i + k) % junk.length] ?? '');
          sent++;
        }
        setTimeout(() => ws.terminate(), 20);
      });
    });
  }
}

const workers = Array.from({ length: 8 }, (_, i) => worker(i));
const samples: [number, number, number][] = [];
for (let s = 0; s <= SECONDS; s++) {
  global.gc?.();
  const m = process.memoryUsage();
  samples.push([s, m.heapUsed, m.rss]);
  await new Promise((r) => setTimeout(r, 1000));
}
stop = true;
await Promise.all(workers);
await server.close();
console.log(`soak: ${SECONDS} s, 8 clients reconnecting in a loop, ${sent} messages (malformed, unknown, oversized, valid)`);
console.log('second  heap MiB  RSS MiB');
for (const [s, heap, rss] of samples.filter((_, i) => i % 5 === 0 || i === samples.length - 1)) console.log(`${String(s).padStart(6)}  ${mib(heap).padStart(8)}  ${mib(rss).padStart(7)}`);
const tail = samples.slice(Math.floor(samples.length / 3));
const heaps = tail.map((x) => x[1]);
console.log(`heap after warm-up: min ${mib(Math.min(...heaps))} MiB, max ${mib(Math.max(...heaps))} MiB`);
