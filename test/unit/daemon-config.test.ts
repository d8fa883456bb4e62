/** `daemon.config`: the running daemon's effective configuration, for local applications only. */
import { afterEach, describe, expect, it } from 'vitest';
import { InProcessBackend } from '../../cards/backends.js';
import { DEFAULTS, type DaemonConfig } from '../../daemon/config.js';
import { Logger } from '../../daemon/log.js';
import { CpsdServer } from '../../daemon/server.js';
import { fixtureCard } from '../../sim/cps/fixtures.js';
import { rpcClient, type RpcClient } from '../helpers/rpc.js';

const ORIGIN = 'https://app.example';
let server: CpsdServer | undefined;
const clients: RpcClient[] = [];

async function start(config: Partial<DaemonConfig> = {}): Promise<CpsdServer> {
  server = new CpsdServer({ ...DEFAULTS, port: 0, allowedOrigins: [ORIGIN], ...config }, new InProcessBackend(fixtureCard('doctor')), new Logger('error', () => undefined));
  await server.listen();
  return server;
}

async function connect(origin: string | null): Promise<RpcClient> {
  const rpc = await rpcClient(server?.port ?? 0, origin);
  clients.push(rpc);
  return rpc;
}

afterEach(async () => {
  await Promise.all(clients.splice(0).map((c) => c.close()));
  await server?.close();
  server = undefined;
});

describe('daemon.config', () => {
  it('gives a local application (no Origin) the allowed origins', async () => {
    await start({ allowedOrigins: [ORIGIN, 'https://dpi.example'] });
    const answer = await (await connect(null)).call('daemon.config');
    expect(answer.result?.allowedOrigins).toEqual([ORIGIN, 'https://dpi.example']);
  });

  it('gives the contactless origins and the limits as configured', async () => {
    await start({ contactlessOrigins: [ORIGIN], maxConnections: 7, ratePerSecond: 5 });
    const answer = await (await connect(null)).call('daemon.config');
    expect(answer.result).toMatchObject({ contactlessOrigins: [ORIGIN], limits: { maxConnections: 7, ratePerSecond: 5 } });
  });

  it('answers with exactly the documented fields (nothing else leaks)', async () => {
    await start();
    const answer = await (await connect(null)).call('daemon.config');
    expect(Object.keys(answer.result ?? {}).sort()).toEqual(['allowHttpLocalhost', 'allowPinInRequest', 'allowedOrigins', 'behindProxy', 'contactlessOrigins', 'limits', 'logLevel', 'pcscBinding', 'peerCheckUnsupported', 'port', 'ssoSeconds']);
  });

  it('refuses a web page, even an allowed origin, with ORIGIN_NOT_ALLOWED', async () => {
    await start();
    const answer = await (await connect(ORIGIN)).call('daemon.config');
    expect([answer.result, answer.error?.data.code]).toEqual([undefined, 'ORIGIN_NOT_ALLOWED']);
  });

  it('is listed by hello', async () => {
    await start();
    const hello = await (await connect(null)).call('hello');
    expect(hello.result?.methods).toContain('daemon.config');
  });
});
