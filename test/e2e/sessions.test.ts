/**
 * Card sessions on the real PC/SC path (pcsclite → pcscd → vpcd → the virtual card in a child process):
 * many clients on one card, the PIN page never holding the card, a closed tab, a hung APDU, pcscd gone.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PcscBackend } from '../../cards/backends.js';
import { DEFAULTS } from '../../daemon/config.js';
import { Logger } from '../../daemon/log.js';
import { CpsdServer } from '../../daemon/server.js';
import { loadProfile } from '../../sim/cps/fixtures.js';
import { nextEvent } from '../helpers/events.js';
import { killPcscd, startAgain, VPCD_READER } from '../helpers/pcscd.js';
import { rpcClient } from '../helpers/rpc.js';
import { useVirtualReader } from '../helpers/virtual-reader.js';

const ORIGIN = 'https://app.example';
const nonce = Buffer.alloc(32, 9).toString('base64');
const SERIAL = loadProfile('doctor').serial;
const vr = useVirtualReader();
let backend: PcscBackend;
let server: CpsdServer;
const logs: string[] = [];

beforeAll(async () => {
  backend = new PcscBackend();
  await backend.settled();
  server = new CpsdServer(
    { ...DEFAULTS, port: 0, allowedOrigins: [ORIGIN], ratePerSecond: 1000, operationTimeoutMs: 1000 },
    backend,
    new Logger('info', (l) => void logs.push(l)),
  );
  await server.listen();
});

afterAll(async () => {
  await server?.close();
  await server?.sessions.close();
});

/** Inserts a card and waits until the daemon's own PC/SC context sees it (contexts race). */
async function insert(options: Parameters<typeof vr.insert>[0] = { profile: 'doctor' }): Promise<void> {
  await vr.insert(options);
  for (let i = 0; i < 100 && !backend.readers().some((r) => r.name === VPCD_READER && r.cardPresent); i++) await new Promise((r) => setTimeout(r, 20));
}

describe('card sessions through pcscd', () => {
  it('answers 50 concurrent clients on one card, none BUSY', async () => {
    await insert();
    const clients = await Promise.all(Array.from({ length: 50 }, (_, i) => rpcClient(server.port, i % 2 ? ORIGIN : null)));
    const answers = await Promise.all(clients.map((c) => c.call('card.status', { reader: VPCD_READER })));
    expect(answers.map((a) => a.error?.data.code ?? a.result?.serial)).toEqual(Array.from({ length: 50 }, () => SERIAL));
    await Promise.all(clients.map((c) => c.close()));
  }, 60_000);

  it('answers one client’s pipelined requests in the order they were sent', async () => {
    await insert();
    const rpc = await rpcClient(server.port);
    const answers = await Promise.all(Array.from({ length: 20 }, () => rpc.call('card.status', { reader: VPCD_READER })));
    expect(answers.every((a) => a.result?.serial === SERIAL)).toBe(true);
    expect(rpc.answered).toEqual(Array.from({ length: 20 }, (_, i) => i + 1));
    await rpc.close();
  });

  it('serves another tab while a PIN page is open', async () => {
    await insert();
    const tab = await rpcClient(server.port, ORIGIN);
    void tab.call('auth.authenticate', { nonce, reader: VPCD_READER });
    await tab.next('pin.required');
    const other = await rpcClient(server.port, ORIGIN);
    expect((await other.call('card.status', { reader: VPCD_READER })).result).toMatchObject({ serial: SERIAL });
    const local = await rpcClient(server.port);
    expect((await local.call('card.identity', { reader: VPCD_READER })).result).toMatchObject({ surname: 'MEDECIN-TEST' });
    await Promise.all([tab.close(), other.close(), local.close()]);
  });

  it('frees the card within a second when the tab closes during PIN entry', async () => {
    await insert();
    const tab = await rpcClient(server.port, ORIGIN);
    void tab.call('auth.authenticate', { nonce, reader: VPCD_READER });
    const url = String((await tab.next('pin.required')).url);
    await tab.close();
    const closed = Date.now();
    // A local application's authentication (PIN in the request: an exclusive job) goes through.
    const local = await rpcClient(server.port);
    const token = await local.call('auth.authenticate', { nonce, reader: VPCD_READER, pin: '1234' });
    expect(token.result?.format).toBe('web-eid:1.0');
    expect((await fetch(url)).status).toBe(404);
    expect(Date.now() - closed).toBeLessThan(1000);
    await local.close();
  });

  it('times out a hung APDU, then the next operation on the same session works', async () => {
    // The 3rd APDU of the first job hangs for 2.5 s; the daemon's operation timeout is 1 s.
    await insert({ profile: 'doctor', faults: { stallAt: { apdu: 3, ms: 2500 } } });
    const rpc = await rpcClient(server.port);
    const started = Date.now();
    const hung = await rpc.call('card.status', { reader: VPCD_READER });
    expect(hung.error?.data.code).toBe('TIMEOUT');
    expect(Date.now() - started).toBeLessThan(2000);
    const next = await rpc.call('card.status', { reader: VPCD_READER });
    expect(next.result).toMatchObject({ serial: SERIAL });
    await rpc.close();
  });

  it('says PCSC_UNAVAILABLE while pcscd is stopped, and works again once it is back', async () => {
    await insert();
    const rpc = await rpcClient(server.port);
    const down = nextEvent(backend.service, 'service-down', () => true, 10_000);
    await killPcscd();
    await down;
    expect((await rpc.call('card.status', { reader: VPCD_READER })).error?.data.code).toBe('PCSC_UNAVAILABLE');
    expect((await rpc.call('card.status')).error?.data.code).toBe('PCSC_UNAVAILABLE');
    expect(logs.filter((l) => l.includes('"event":"pcsc-unavailable"'))).toHaveLength(1);
    await vr.icc.remove();
    const up = nextEvent(vr.service, 'reader-added', (e) => e.reader === VPCD_READER, 10_000);
    await startAgain();
    await up;
    await vr.service.settled(5000);
    await backend.settled(5000);
    await insert();
    expect((await rpc.call('card.status', { reader: VPCD_READER })).result).toMatchObject({ serial: SERIAL });
    expect(logs.some((l) => l.includes('"event":"pcsc-available"'))).toBe(true);
    await rpc.close();
  }, 60_000);
});
