/**
 * The PC/SC backend against the real stack: pcsclite → pcscd → vpcd → the test card in a child process.
 */
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { CardChannel } from '../../apdu/channel.js';
import { CommandApdu } from '../../apdu/command.js';
import { toHex } from '../../core/bytes.js';
import {
  CardAbsentError,
  CardBusyError,
  PcscService,
  PcscTransport,
  ReaderNotFoundError,
  UnsupportedFeatureError,
  scardCtlCode,
  type PcscConnection,
} from '../../apdu/pcsc/index.js';
import { TestCard } from '../../sim/test-card.js';
import { nextEvent } from '../helpers/events.js';
import { IccProcess } from '../helpers/icc.js';
import { VPCD_READER, ensurePcscd } from '../helpers/pcscd.js';

const run = promisify(execFile);
let service: PcscService;
let icc: IccProcess;
let open: PcscConnection | undefined;

async function insertAndConnect(): Promise<PcscConnection> {
  const inserted = nextEvent(service, 'card-inserted', (e) => e.reader === VPCD_READER);
  await icc.insert();
  await inserted;
  open = await service.connect(VPCD_READER, { share: 'shared', protocols: ['T0', 'T1'] });
  return open;
}

beforeAll(async () => {
  await ensurePcscd();
  service = new PcscService();
  await service.settled(5000);
  icc = new IccProcess();
});

afterEach(async () => {
  await open?.disconnect('leave');
  open = undefined;
  if (service.readers().find((r) => r.name === VPCD_READER)?.cardPresent) {
    const removed = nextEvent(service, 'card-removed', (e) => e.reader === VPCD_READER);
    await icc.remove();
    await removed;
  }
});

afterAll(async () => {
  icc?.close();
  await service?.close();
});

describe('PC/SC backend on pcscd + vpcd', () => {
  it('lists both vpcd slots, empty', () => {
    const readers = service.readers();
    expect(readers.map((r) => r.name)).toEqual(expect.arrayContaining(['Virtual PCD 00 00', 'Virtual PCD 00 01']));
    expect(readers.find((r) => r.name === VPCD_READER)).toMatchObject({ cardPresent: false, mute: false });
    expect(service.available).toBe(true);
  });

  it('reports card insertion with the ATR, then removal', async () => {
    const inserted = nextEvent(service, 'card-inserted', (e) => e.reader === VPCD_READER);
    await icc.insert();
    const event = await inserted;
    expect(toHex(event.atr)).toBe(toHex(TestCard.ATR));
    expect(service.readers().find((r) => r.name === VPCD_READER)?.cardPresent).toBe(true);

    const removed = nextEvent(service, 'card-removed', (e) => e.reader === VPCD_READER);
    await icc.remove();
    await removed;
    expect(service.readers().find((r) => r.name === VPCD_READER)?.cardPresent).toBe(false);
  });

  it('round-trips an APDU over T=0', async () => {
    const connection = await insertAndConnect();
    expect(connection.protocol).toBe('T0');
    const select = new CommandApdu({ cla: 0, ins: 0xa4, p1: 4, p2: 0x0c, data: TestCard.AID });
    expect(toHex(await connection.transmit(select.encode()))).toBe('9000');
    const unknown = new CommandApdu({ cla: 0, ins: 0xa4, p1: 4, p2: 0x0c, data: Uint8Array.of(1, 2, 3) });
    expect(toHex(await connection.transmit(unknown.encode()))).toBe('6A82');
  });

  it('reassembles a 600-byte answer from 61xx and GET RESPONSE rounds', async () => {
    const connection = await insertAndConnect();
    const before = await icc.stats();
    const channel = new CardChannel(new PcscTransport(connection));
    const challenge = Uint8Array.of(1, 2, 3, 4, 5);
    const response = await channel.transmit(new CommandApdu({ cla: 0, ins: 0x88, p1: 0x02, p2: 0x58, data: challenge, ne: 256 }));
    expect(response.sw).toBe(0x9000);
    expect(response.data.length).toBe(600);
    expect([...response.data.subarray(0, 6)]).toEqual([5, 4, 3, 2, 1, 5]);
    // 1 command + GET RESPONSE for 256 + 256 + 88 bytes, each seen by the card.
    expect((await icc.stats()).commands - before.commands).toBe(4);
  });

  it('re-sends with the Le the card asks for (6Cxx)', async () => {
    const connection = await insertAndConnect();
    const channel = new CardChannel(new PcscTransport(connection));
    const response = await channel.transmit(new CommandApdu({ cla: 0, ins: 0xca, p1: 1, p2: 0, ne: 256 }));
    expect(toHex(response.data)).toBe('CAFE');
    expect(response.sw).toBe(0x9000);
  });

  it('chains a 600-byte command and reads it back', async () => {
    const connection = await insertAndConnect();
    const channel = new CardChannel(new PcscTransport(connection));
    const data = Uint8Array.from({ length: 600 }, (_, i) => (i * 7) & 0xff);
    const put = await channel.transmit(new CommandApdu({ cla: 0, ins: 0xda, p1: 1, p2: 0, data }));
    expect(put.sw).toBe(0x9000);
    const get = await channel.transmit(new CommandApdu({ cla: 0, ins: 0xca, p1: 1, p2: 0, ne: 256 }));
    expect(toHex(get.data)).toBe(toHex(data));
  });

  it('lets OpenSC read the card while cpsd holds a shared connection', async () => {
    await insertAndConnect();
    const { stdout } = await run('opensc-tool', ['--reader', '0', '--atr']);
    expect(stdout.replace(/[:\s]/g, '').toUpperCase()).toContain(toHex(TestCard.ATR));
  });

  it('gives typed errors: removed card, unknown reader, empty reader, busy reader, no reader control', async () => {
    const connection = await insertAndConnect();
    await expect(service.connect(VPCD_READER, { share: 'shared' })).rejects.toBeInstanceOf(CardBusyError);
    await expect(connection.control(scardCtlCode(3400))).rejects.toBeInstanceOf(UnsupportedFeatureError);

    const removed = nextEvent(service, 'card-removed', (e) => e.reader === VPCD_READER);
    await icc.remove();
    await removed;
    const failure = await connection.transmit(Uint8Array.of(0, 0xa4, 4, 0x0c, 1, 1)).catch((e: unknown) => e);
    expect(failure).toBeInstanceOf(CardAbsentError);
    expect(failure).toMatchObject({ code: 'CARD_ABSENT', pcscCode: 0x80100069, pcscName: 'SCARD_W_REMOVED_CARD' });

    await expect(service.connect('No Such Reader', { share: 'shared' })).rejects.toBeInstanceOf(ReaderNotFoundError);
    await expect(service.connect(VPCD_READER, { share: 'shared' })).rejects.toMatchObject({ code: 'CARD_ABSENT' });
  });

  it('connects again after a disconnect that failed because the card was pulled', async () => {
    const connection = await insertAndConnect();
    const removed = nextEvent(service, 'card-removed', (e) => e.reader === VPCD_READER);
    await icc.remove();
    await removed;
    await connection.disconnect('reset'); // the card is gone: nothing to reset
    open = await insertAndConnect();
    expect(toHex(await open.transmit(new CommandApdu({ cla: 0, ins: 0xa4, p1: 4, p2: 0x0c, data: TestCard.AID }).encode()))).toBe('9000');
  });

  it('disconnects with each disposition and reconnects', async () => {
    for (const disposition of ['leave', 'reset', 'unpower'] as const) {
      const connection = open ?? (await insertAndConnect());
      await connection.disconnect(disposition);
      open = await service.connect(VPCD_READER, { share: 'exclusive', protocols: ['T0'] });
      expect(toHex(await open.transmit(new CommandApdu({ cla: 0, ins: 0xa4, p1: 4, p2: 0x0c, data: TestCard.AID }).encode()))).toBe('9000');
    }
  });
});
