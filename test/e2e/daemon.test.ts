/**
 * The same daemon against the real pcscd + vpcd virtual card, and `cpsd serve --sim` as a process.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createHash, verify, X509Certificate } from 'node:crypto';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PcscService } from '../../apdu/pcsc/index.js';
import { PcscBackend } from '../../cards/backends.js';
import { DEFAULTS } from '../../daemon/config.js';
import { Logger } from '../../daemon/log.js';
import { CpsdServer } from '../../daemon/server.js';
import { loadProfile } from '../../sim/cps/fixtures.js';
import { nextEvent } from '../helpers/events.js';
import { IccProcess } from '../helpers/icc.js';
import { VPCD_READER, ensurePcscd } from '../helpers/pcscd.js';
import { rpcClient, type RpcClient } from '../helpers/rpc.js';

const CLI = fileURLToPath(new URL('../../dist/cli/cpsd.js', import.meta.url));
const ORIGIN = 'https://app.example';
const nonce = Buffer.alloc(32, 3).toString('base64');

/** The daemon's JSON-RPC client of the tests, with the names of the notifications seen so far. */
async function client(port: number, origin?: string): Promise<RpcClient & { events: string[] }> {
  const rpc = await rpcClient(port, origin ?? null);
  return Object.defineProperty(rpc, 'events', { get: () => rpc.notifications.map((n) => n.method) }) as RpcClient & { events: string[] };
}

describe('daemon on the real PC/SC stack', () => {
  let service: PcscService;
  let icc: IccProcess;
  let server: CpsdServer;
  let source: PcscBackend;

  beforeAll(async () => {
    await ensurePcscd();
    service = new PcscService();
    await service.settled(5000);
    icc = new IccProcess();
    source = new PcscBackend();
    await source.settled();
    server = new CpsdServer({ ...DEFAULTS, port: 0, allowedOrigins: [ORIGIN] }, source, new Logger('warn', () => undefined));
    await server.listen();
  });

  afterAll(async () => {
    await server?.close();
    await source?.close();
    icc?.close();
    await service?.close();
  });

  it('identifies the card, authenticates a local app, and tells clients when the card goes', async () => {
    const inserted = nextEvent(service, 'card-inserted', (e) => e.reader === VPCD_READER);
    const rpc = await client(server.port);
    await icc.insert({ profile: 'pharmacist' });
    await inserted;
    // The daemon watches PC/SC with its own context: wait until it has seen the card too.
    for (let i = 0; i < 100 && !rpc.events.includes('card.inserted'); i++) await new Promise((r) => setTimeout(r, 20));
    const identity = (await rpc.call('card.identity', { reader: VPCD_READER })).result as Record<string, unknown>;
    expect(identity).toMatchObject({ nationalId: loadProfile('pharmacist').holder.idNat, surname: 'PHARMACH0007512' });
    const token = (await rpc.call('auth.authenticate', { reader: VPCD_READER, nonce, pin: '1234' })).result as Record<string, string>;
    const cert = new X509Certificate(Buffer.from(token.unverifiedCertificate ?? '', 'base64'));
    const signed = Buffer.concat([createHash('sha256').update('null').digest(), createHash('sha256').update(nonce).digest()]);
    expect(verify('sha256', signed, cert.publicKey, Buffer.from(token.signature ?? '', 'base64'))).toBe(true);
    // Another application resets the card while we read: a read-only job reconnects and runs again.
    let resets = 0;
    const serial = await server.sessions.run(
      async (card) => {
        if (resets++ === 0) {
          const other = await service.connect(VPCD_READER, { share: 'shared', protocols: ['T0', 'T1'] });
          await other.disconnect('reset');
        }
        return card.serial();
      },
      { reader: VPCD_READER, retryOnReset: true },
    );
    expect(serial).toBe(loadProfile('pharmacist').serial);
    expect(resets).toBe(2);
    const removed = nextEvent(service, 'card-removed', (e) => e.reader === VPCD_READER);
    await icc.remove();
    await removed;
    await new Promise((r) => setTimeout(r, 50));
    expect(rpc.events).toContain('card.removed');
    expect((await rpc.call('card.status', { reader: VPCD_READER })).error).toMatchObject({ data: { code: 'CARD_ABSENT' } });
    rpc.ws.close();
  });
});

describe('cpsd serve --sim', () => {
  let child: ChildProcess;
  const port = 24900 + Math.floor(Math.random() * 500);

  beforeAll(async () => {
    child = spawn(process.execPath, [CLI, 'serve', '--sim', 'doctor', '--port', String(port), '--allow-origin', ORIGIN], { stdio: ['ignore', 'ignore', 'pipe'] });
    await new Promise<void>((resolve, reject) => {
      child.stderr?.on('data', (d: Buffer) => d.toString().includes('listening') && resolve());
      child.once('exit', (code) => reject(new Error(`cpsd serve exited with ${String(code)}`)));
    });
  });

  afterAll(() => {
    child?.kill('SIGTERM');
  });

  it('is seen by cpsd doctor, which also reports a broken configuration', async () => {
    const home = mkdtempSync(join(tmpdir(), 'cpsd-doctor-'));
    mkdirSync(join(home, 'cpsd'));
    writeFileSync(join(home, 'cpsd', 'config.json'), JSON.stringify({ port }));
    const doctor = (): { id: string; status: string }[] =>
      (JSON.parse(spawnSync(process.execPath, [CLI, 'doctor', '--json'], { env: { ...process.env, XDG_CONFIG_HOME: home } }).stdout.toString()) as { checks: { id: string; status: string }[] }).checks;
    expect(doctor().find((c) => c.id === 'daemon')?.status).toBe('ok');
    writeFileSync(join(home, 'cpsd', 'config.json'), JSON.stringify({ port, allowedOrigins: ['http://insecure.example'] }));
    expect(doctor().find((c) => c.id === 'config')?.status).toBe('fail');
  });

  it('serves the virtual card without pcscd, and refuses an unknown origin', async () => {
    const rpc = await client(port, ORIGIN);
    expect((await rpc.call('hello')).result).toMatchObject({ protocol: 'cpsd/1', origin: ORIGIN });
    expect((await rpc.call('card.identity')).result).toMatchObject({ nationalId: '899700012349' });
    rpc.ws.close();
    await expect(client(port, 'https://evil.example')).rejects.toThrow(/403/);
  });

  it('on SIGTERM ends a pending PIN entry and exits within a second', async () => {
    const rpc = await client(port, ORIGIN);
    const pending = rpc.call('auth.authenticate', { nonce });
    for (let i = 0; i < 100 && !rpc.events.includes('pin.required'); i++) await new Promise((r) => setTimeout(r, 10));
    expect(rpc.events).toContain('pin.required');
    const exited = new Promise<number | null>((r) => child.once('exit', (code) => r(code)));
    const closed = new Promise<void>((r) => rpc.ws.once('close', () => r()));
    const sent = Date.now();
    child.kill('SIGTERM');
    expect(await exited).toBe(0);
    await closed;
    expect(Date.now() - sent).toBeLessThan(1000);
    void pending;
  });
});
