/**
 * One Host rule for every form of request (RFC 9112 §3.2, §3.2.2), on the WebSocket upgrade and the PIN
 * page alike (issue #20.4). Requests are written byte for byte: no client library sends these.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { InProcessBackend } from '../../cards/backends.js';
import { DEFAULTS } from '../../daemon/config.js';
import { Logger } from '../../daemon/log.js';
import { CpsdServer } from '../../daemon/server.js';
import { fixtureCard } from '../../sim/cps/fixtures.js';
import { UPGRADE_HEADERS, rawRequest } from '../helpers/raw-http.js';
import { rpcClient } from '../helpers/rpc.js';

const ORIGIN = 'https://app.example';
let server: CpsdServer | undefined;

async function start(): Promise<number> {
  server = new CpsdServer({ ...DEFAULTS, port: 0, allowedOrigins: [ORIGIN] }, new InProcessBackend(fixtureCard('doctor')), new Logger('error', () => undefined));
  await server.listen();
  return server.port;
}

afterEach(async () => {
  await server?.close();
  server = undefined;
});

const upgrade = (port: number, line: string, hosts: string[]): Promise<number> =>
  rawRequest(port, line, [...hosts.map((h) => `Host: ${h}`), `Origin: ${ORIGIN}`, ...UPGRADE_HEADERS]);

/** The URL of an open PIN window (a web page asked for a login). */
async function pinPath(port: number): Promise<string> {
  const rpc = await rpcClient(port, ORIGIN);
  void rpc.call('auth.authenticate', { nonce: Buffer.alloc(32, 7).toString('base64') });
  return new URL(String((await rpc.next('pin.required')).url)).pathname;
}

describe('the WebSocket upgrade', () => {
  it('is served with one loopback Host (the control)', async () => {
    const port = await start();
    expect(await upgrade(port, 'GET / HTTP/1.1', [`127.0.0.1:${port}`])).toBe(101);
  });

  it('refuses two Host headers, the first on loopback, with 400', async () => {
    const port = await start();
    expect(await upgrade(port, 'GET / HTTP/1.1', [`127.0.0.1:${port}`, `evil.example:${port}`])).toBe(400);
  });

  it('refuses two identical loopback Host headers with 400', async () => {
    const port = await start();
    expect(await upgrade(port, 'GET / HTTP/1.1', [`127.0.0.1:${port}`, `127.0.0.1:${port}`])).toBe(400);
  });

  it('refuses an absolute-form target on another host, Host on loopback', async () => {
    const port = await start();
    expect(await upgrade(port, `GET http://evil.example:${port}/ HTTP/1.1`, [`127.0.0.1:${port}`])).toBe(400);
  });

  it('refuses an absolute-form target on another host, Host the same', async () => {
    const port = await start();
    expect(await upgrade(port, `GET http://evil.example:${port}/ HTTP/1.1`, [`evil.example:${port}`])).toBe(421);
  });

  it('serves an absolute-form target on loopback that agrees with Host', async () => {
    const port = await start();
    expect(await upgrade(port, `GET http://127.0.0.1:${port}/ HTTP/1.1`, [`127.0.0.1:${port}`])).toBe(101);
  });
});

describe('the PIN page', () => {
  it('is served with one loopback Host (the control)', async () => {
    const port = await start();
    expect(await rawRequest(port, `GET ${await pinPath(port)} HTTP/1.1`, [`Host: 127.0.0.1:${port}`, 'Connection: close'])).toBe(200);
  });

  it('refuses two Host headers, the first on loopback, with 400', async () => {
    const port = await start();
    expect(await rawRequest(port, `GET ${await pinPath(port)} HTTP/1.1`, [`Host: 127.0.0.1:${port}`, `Host: evil.example:${port}`, 'Connection: close'])).toBe(400);
  });

  it('refuses an absolute-form target on another host, Host on loopback', async () => {
    const port = await start();
    expect(await rawRequest(port, `GET http://evil.example:${port}${await pinPath(port)} HTTP/1.1`, [`Host: 127.0.0.1:${port}`, 'Connection: close'])).toBe(400);
  });

  it('serves an absolute-form target on loopback that agrees with Host', async () => {
    const port = await start();
    expect(await rawRequest(port, `GET http://127.0.0.1:${port}${await pinPath(port)} HTTP/1.1`, [`Host: 127.0.0.1:${port}`, 'Connection: close'])).toBe(200);
  });
});
