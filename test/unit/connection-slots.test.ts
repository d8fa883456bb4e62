/**
 * Connection slots are taken only for connections that exist: a handshake the WebSocket library refuses
 * after the daemon's own checks passed gives nothing away (issue #20.2).
 */
import { afterEach, describe, expect, it } from 'vitest';
import { InProcessBackend } from '../../cards/backends.js';
import { DEFAULTS, type DaemonConfig } from '../../daemon/config.js';
import { Logger } from '../../daemon/log.js';
import { CpsdServer } from '../../daemon/server.js';
import { fixtureCard } from '../../sim/cps/fixtures.js';
import { UPGRADE_HEADERS, rawRequest } from '../helpers/raw-http.js';
import { rpcClient } from '../helpers/rpc.js';

const ORIGIN = 'https://app.example';
let server: CpsdServer | undefined;

async function start(config: Partial<DaemonConfig> = {}): Promise<CpsdServer> {
  server = new CpsdServer({ ...DEFAULTS, port: 0, allowedOrigins: [ORIGIN], ...config }, new InProcessBackend(fixtureCard('doctor')), new Logger('error', () => undefined));
  await server.listen();
  return server;
}

afterEach(async () => {
  await server?.close();
  server = undefined;
});

/** Handshakes `ws` refuses with 400 after the daemon's Host, Origin and slot checks passed. */
const REFUSED_BY_WS: Readonly<Record<string, (h: readonly string[]) => string[]>> = {
  'an invalid Sec-WebSocket-Protocol': (h) => [...h, 'Sec-WebSocket-Protocol: a b'],
  'a duplicated Sec-WebSocket-Protocol': (h) => [...h, 'Sec-WebSocket-Protocol: chat, chat'],
  'Sec-WebSocket-Version: 7': (h) => h.map((l) => (l.startsWith('Sec-WebSocket-Version') ? 'Sec-WebSocket-Version: 7' : l)),
  'no Sec-WebSocket-Key': (h) => h.filter((l) => !l.startsWith('Sec-WebSocket-Key')),
};

async function refusedHandshakes(port: number, origin: string | null, n: number): Promise<number[]> {
  const kinds = Object.values(REFUSED_BY_WS);
  const statuses: number[] = [];
  for (let i = 0; i < n; i++) {
    const headers = [`Host: 127.0.0.1:${port}`, ...(origin ? [`Origin: ${origin}`] : []), ...(kinds[i % kinds.length] ?? ((h) => [...h]))(UPGRADE_HEADERS)];
    statuses.push(await rawRequest(port, 'GET / HTTP/1.1', headers));
  }
  return statuses;
}

describe('connection slots', () => {
  for (const [name, change] of Object.entries(REFUSED_BY_WS)) {
    it(`are not taken by a handshake with ${name}`, async () => {
      const s = await start({ maxConnections: 4, maxLocalConnections: 1 });
      const headers = change([`Host: 127.0.0.1:${s.port}`, `Origin: ${ORIGIN}`, ...UPGRADE_HEADERS]);
      for (let i = 0; i < 8; i++) expect(await rawRequest(s.port, 'GET / HTTP/1.1', headers)).toBe(400);
      const rpc = await rpcClient(s.port, ORIGIN);
      expect((await rpc.call('hello')).result).toMatchObject({ origin: ORIGIN });
      await rpc.close();
    });
  }

  it('stay free for the same origin after 60 refused handshakes', async () => {
    const s = await start();
    expect(new Set(await refusedHandshakes(s.port, ORIGIN, 60))).toEqual(new Set([400]));
    const rpc = await rpcClient(s.port, ORIGIN);
    expect((await rpc.call('hello')).result).toMatchObject({ origin: ORIGIN });
    await rpc.close();
  });

  it('stay free for local applications (cpsd doctor) after 60 refused handshakes without Origin', async () => {
    const s = await start();
    expect(new Set(await refusedHandshakes(s.port, null, 60))).toEqual(new Set([400]));
    const rpc = await rpcClient(s.port, null);
    expect((await rpc.call('daemon.config')).result).toMatchObject({ port: s.port });
    await rpc.close();
  });

  it('are given back when a connection closes', async () => {
    const s = await start({ maxLocalConnections: 1 });
    for (let i = 0; i < 5; i++) {
      const rpc = await rpcClient(s.port, null);
      expect((await rpc.call('hello')).result).toMatchObject({ origin: null });
      rpc.ws.terminate();
      await new Promise((r) => rpc.ws.once('close', r));
      await new Promise((r) => setTimeout(r, 20));
    }
  });

  it('still refuse a connection beyond the cap with 503', async () => {
    const s = await start({ maxLocalConnections: 1 });
    const first = await rpcClient(s.port, null);
    expect(await rawRequest(s.port, 'GET / HTTP/1.1', [`Host: 127.0.0.1:${s.port}`, ...UPGRADE_HEADERS])).toBe(503);
    await first.close();
  });
});
