/**
 * Soak: `cpsd serve` (bench/soak-daemon.ts, in its own process) under a flood of hostile frames sent from
 * this process, then left idle. Memory is the daemon's only (the flood's is not counted): RSS as the OS
 * sees it and the heap still referenced after a full collection, when cold, after ordinary traffic
 * (start), right after the flood and after the idle time. Two daemons side by side: started as the
 * service units start it (daemon/runtime.ts), and as a bare `node cpsd.js serve`.
 *
 *   npm run bench:soak          # BENCH_FRAMES=12000 BENCH_IDLE_SECONDS=90 to change
 */
import { fork } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import WebSocket from 'ws';
import { DAEMON_ENV, DAEMON_NODE_FLAGS } from '../daemon/runtime.js';
import type { MemoryProbe } from './soak-daemon.js';

const FRAMES = Number(process.env.BENCH_FRAMES ?? 12_000);
const IDLE_SECONDS = Number(process.env.BENCH_IDLE_SECONDS ?? 90);
const ORIGIN = 'https://app.example';
const mib = (n: number): string => (n < 0 ? '-' : (n / 1024 / 1024).toFixed(1));
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** Malformed, wrong, oversized, binary and valid frames. */
const JUNK: (string | Buffer)[] = [
  '{',
  '[]',
  'null',
  '{"jsonrpc":"2.0","id":1,"method":"nope"}',
  '{"jsonrpc":"2.0","id":2,"method":"hello","params":{"constructor":1}}',
  Buffer.alloc(512, 0xff),
  '{"jsonrpc":"2.0","id":3,"method":"card.identity","params":{}}',
  `{"jsonrpc":"2.0","id":4,"method":"hello","params":{"x":"${'y'.repeat(8000)}"}}`,
  'x'.repeat(20_000), // beyond maxMessageBytes: the daemon closes the connection (1009)
];

function freePort(): Promise<number> {
  return new Promise((resolve) => {
    const s = createServer().listen(0, '127.0.0.1', () => {
      const p = (s.address() as { port: number }).port;
      s.close(() => resolve(p));
    });
  });
}

/** One connection from a web page (even i) or a local application, until `done` says so. */
function connection(port: number, i: number, onOpen: (ws: WebSocket) => void): Promise<void> {
  const ws = new WebSocket(`ws://127.0.0.1:${port}`, i % 2 === 0 ? { origin: ORIGIN } : {});
  return new Promise<void>((resolve) => {
    ws.on('error', () => resolve());
    ws.on('close', () => resolve());
    ws.on('open', () => onOpen(ws));
  });
}

interface Run {
  label: string;
  frames: number;
  floodSeconds: number;
  logLines: number;
  probes: [string, MemoryProbe][];
}

async function soak(label: string, flags: readonly string[], env: Readonly<Record<string, string>>): Promise<Run> {
  const port = await freePort();
  const dir = mkdtempSync(join(tmpdir(), 'cpsd-soak-'));
  // The defaults but the port; logs at info as a daemon runs (read and thrown away by this process).
  writeFileSync(join(dir, 'config.json'), JSON.stringify({ port, allowedOrigins: [ORIGIN], pkcs11: false }));
  const daemon = fork(fileURLToPath(new URL('./soak-daemon.js', import.meta.url)), [join(dir, 'config.json')], {
    execArgv: ['--expose-gc', ...flags],
    stdio: ['ignore', 'ignore', 'pipe', 'ipc'],
    env: { ...process.env, ...env, XDG_RUNTIME_DIR: dir },
  });
  let logLines = 0;
  await new Promise<void>((resolve, reject) => {
    daemon.stderr?.on('data', (d: Buffer) => {
      logLines += d.toString().split('\n').length - 1;
      if (d.toString().includes(String(port))) resolve();
    });
    daemon.once('exit', () => reject(new Error('the daemon exited')));
  });
  const probe = (): Promise<MemoryProbe> =>
    new Promise((resolve) => {
      daemon.once('message', (m) => resolve(m as MemoryProbe));
      daemon.send('memory');
    });
  const probes: [string, MemoryProbe][] = [];
  await sleep(1000);
  probes.push(['cold', await probe()]);
  // Ordinary traffic first: the code that serves a connection is loaded and compiled before "start".
  for (let i = 0; i < 50; i++) {
    await connection(port, i, (ws) => {
      let answers = 0;
      ws.on('message', () => ++answers === 2 && ws.close());
      ws.send('{"jsonrpc":"2.0","id":1,"method":"hello"}');
      ws.send('{"jsonrpc":"2.0","id":2,"method":"card.status"}');
    });
  }
  await sleep(2000);
  probes.push(['start', await probe()]);
  let sent = 0;
  const t0 = Date.now();
  await Promise.all(
    Array.from({ length: 8 }, async (_, i) => {
      while (sent < FRAMES) {
        await connection(port, i, (ws) => {
          for (let k = 0; k < 25 && sent < FRAMES; k++, sent++) ws.send(JUNK[(i + k + sent) % JUNK.length] ?? '');
          setTimeout(() => ws.terminate(), 10);
        });
      }
    }),
  );
  const floodSeconds = (Date.now() - t0) / 1000;
  await sleep(1000);
  probes.push(['after flood', await probe()]);
  await sleep(IDLE_SECONDS * 1000);
  probes.push([`after ${IDLE_SECONDS} s idle`, await probe()]);
  daemon.kill('SIGTERM');
  return { label, frames: sent, floodSeconds, logLines, probes };
}

const runs = await Promise.all([
  soak(`as the service units start it: node ${DAEMON_NODE_FLAGS.join(' ')}, ${Object.entries(DAEMON_ENV).map(([k, v]) => `${k}=${v}`).join(' ')}`, DAEMON_NODE_FLAGS, DAEMON_ENV),
  soak('bare: node cpsd.js serve', [], {}),
]);
for (const run of runs) {
  console.log(`\ncpsd serve ${run.label}`);
  console.log(`${run.frames} hostile frames in ${run.floodSeconds.toFixed(1)} s from another process (8 clients reconnecting, web and local), ${run.logLines} log lines`);
  console.log('                     RSS MiB  heapUsed MiB  new space MiB  malloc heap MiB  RSS after GC MiB');
  for (const [name, m] of run.probes) {
    console.log(`${name.padEnd(19)}  ${mib(m.rss).padStart(7)}  ${mib(m.heapUsed).padStart(12)}  ${mib(m.newSpace).padStart(13)}  ${mib(m.mallocHeap).padStart(15)}  ${mib(m.rssAfterGc).padStart(16)}`);
  }
  const start = run.probes[1]?.[1];
  const idle = run.probes[3]?.[1];
  if (start && idle) {
    const rss = (idle.rss - start.rss) / start.rss;
    console.log(`idle vs start: RSS ${rss >= 0 ? '+' : ''}${(rss * 100).toFixed(1)} % (target: within 10 %: ${Math.abs(rss) <= 0.1 ? 'met' : 'NOT met'}), heapUsed ${mib(idle.heapUsed - start.heapUsed)} MiB`);
  }
}
