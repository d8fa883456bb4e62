/**
 * Several readers and cards through pcscd + vpcd's two slots: the daemon picks the CPS card, passes over
 * a card that is not one and a card another application holds exclusively, and a caller chooses with
 * `reader` when two CPS cards are present; `readers.list` says which readers hold a supported card.
 */
import { readFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { PcscConnection } from '../../apdu/pcsc/index.js';
import { PcscBackend } from '../../cards/backends.js';
import { DEFAULTS } from '../../daemon/config.js';
import { Logger } from '../../daemon/log.js';
import { CpsdServer } from '../../daemon/server.js';
import { loadProfile } from '../../sim/cps/fixtures.js';
import { launchChromium } from '../helpers/browser.js';
import { IccProcess } from '../helpers/icc.js';
import { VPCD_READER } from '../helpers/pcscd.js';
import { rpcClient, type RpcClient } from '../helpers/rpc.js';
import { useVirtualReader } from '../helpers/virtual-reader.js';

const SECOND_READER = 'Virtual PCD 00 01';
const SECOND_PORT = 35964;
const vr = useVirtualReader();
let second: IccProcess;
let backend: PcscBackend;
let server: CpsdServer;
let rpc: RpcClient;
let page: { origin: string; server: Server };

/** A page origin serving the SDK, as a relying party would. */
async function pageServer(): Promise<{ origin: string; server: Server }> {
  const sdk = readFileSync(new URL('../../client/cpsd.js', import.meta.url));
  const http = createServer((req, res) => {
    if (req.url === '/cpsd.js') res.writeHead(200, { 'Content-Type': 'text/javascript' }).end(sdk);
    else res.writeHead(200, { 'Content-Type': 'text/html' }).end('<!doctype html><title>rp</title>');
  });
  await new Promise<void>((r) => http.listen(0, '127.0.0.1', r));
  return { origin: `http://localhost:${(http.address() as AddressInfo).port}`, server: http };
}

beforeAll(async () => {
  second = new IccProcess();
  backend = new PcscBackend();
  await backend.settled();
  page = await pageServer();
  server = new CpsdServer(
    { ...DEFAULTS, port: 0, ratePerSecond: 1000, allowHttpLocalhost: true, allowedOrigins: [page.origin] },
    backend,
    new Logger('error', () => undefined),
  );
  await server.listen();
  rpc = await rpcClient(server.port);
});

afterAll(async () => {
  await second.remove().catch(() => undefined);
  second.close();
  await rpc?.close();
  await server?.close();
  await server?.sessions.close();
  page?.server.close();
});

async function until(check: () => boolean, what: string): Promise<void> {
  for (let i = 0; i < 150; i++) {
    if (check()) return;
    await new Promise((r) => setTimeout(r, 20));
  }
  throw new Error(`timed out waiting for ${what}`);
}

const present = (reader: string, yes = true) => () => backend.readers().some((r) => r.name === reader && r.cardPresent === yes);

/** Slot 0 through the shared helper (removed after each test), slot 1 by hand. */
async function cards(first: Parameters<typeof vr.insert>[0], other: Parameters<IccProcess['insert']>[0]): Promise<void> {
  await vr.insert(first);
  await second.insert({ port: SECOND_PORT, ...other });
  await until(() => present(VPCD_READER)() && present(SECOND_READER)(), 'both cards');
}

async function removeSecond(): Promise<void> {
  await second.remove();
  await until(present(SECOND_READER, false), 'the second card to leave');
}

const readers = async (): Promise<Record<string, unknown>[]> => ((await rpc.call('readers.list')).result?.readers ?? []) as Record<string, unknown>[];

describe('several readers and cards', () => {
  it('a non-CPS card in the first reader: readers.list says so, and the daemon uses the CPS card of the second', async () => {
    await cards({}, { profile: 'doctor' }); // slot 0: the small T=0 test card
    const list = await readers();
    expect(list.find((r) => r.name === VPCD_READER)).toMatchObject({ cardPresent: true, supported: false, interface: null });
    expect(list.find((r) => r.name === SECOND_READER)).toMatchObject({ supported: true, interface: 'contact', busy: false });
    expect((await rpc.call('card.status')).result).toMatchObject({ reader: SECOND_READER, serial: loadProfile('doctor').serial });
    expect((await rpc.call('card.identity')).result).toMatchObject({ surname: 'MEDECIN-TEST' });
    await removeSecond();
  });

  it('two CPS cards: both supported, the first by default, either by name', async () => {
    await cards({ profile: 'nurse' }, { profile: 'doctor' });
    const list = await readers();
    expect(list.filter((r) => r.supported).map((r) => r.name)).toEqual([VPCD_READER, SECOND_READER]);
    expect(list.every((r) => (r.sameCardAs as string[]).length === 0)).toBe(true); // two cards, not one seen twice
    expect((await rpc.call('card.identity')).result).toMatchObject({ nationalId: loadProfile('nurse').holder.idNat });
    expect((await rpc.call('card.identity', { reader: SECOND_READER })).result).toMatchObject({ nationalId: loadProfile('doctor').holder.idNat });
    expect((await rpc.call('card.identity', { reader: VPCD_READER })).result).toMatchObject({ nationalId: loadProfile('nurse').holder.idNat });
    await removeSecond();
  });

  it('a CPS card another application holds exclusively is passed over, and said busy, until it lets go', async () => {
    await cards({ profile: 'nurse' }, { profile: 'doctor' });
    let held: PcscConnection | undefined = await vr.service.connect(VPCD_READER, { share: 'exclusive', protocols: ['T0', 'T1'] });
    try {
      expect((await readers()).find((r) => r.name === VPCD_READER)).toMatchObject({ supported: true, busy: true });
      expect((await rpc.call('card.status')).result).toMatchObject({ reader: SECOND_READER });
      await held.disconnect('leave');
      held = undefined;
      expect((await readers()).find((r) => r.name === VPCD_READER)).toMatchObject({ busy: false });
      expect((await rpc.call('card.status')).result).toMatchObject({ reader: VPCD_READER });
    } finally {
      await held?.disconnect('leave');
      await removeSecond();
    }
  });

  it('the browser SDK lists the readers and sends the reader the page chose', async () => {
    await cards({ profile: 'nurse' }, { profile: 'doctor' });
    const browser = await launchChromium();
    try {
      const tab = await browser.newPage();
      await tab.goto(page.origin);
      // As a page's own script (a string: the test's transform must not touch its dynamic import).
      const seen = (await tab.evaluate(`(async () => {
        const sdk = await import('/cpsd.js');
        const client = await sdk.connect({ port: ${server.port} });
        const readers = await client.readers();
        // A reader that is not there: the daemon's answer proves the choice reached it (no PIN asked).
        const refused = await client.authenticate('${'A'.repeat(43)}=', { reader: 'no such reader' }).then(() => 'ok', (e) => e.code);
        client.close();
        return { readers: readers.filter((r) => r.supported).map((r) => r.name), refused };
      })()`)) as { readers: string[]; refused: string };
      expect(seen).toEqual({ readers: [VPCD_READER, SECOND_READER], refused: 'READER_NOT_FOUND' });
    } finally {
      await browser.close();
      await removeSecond();
    }
  });
});
