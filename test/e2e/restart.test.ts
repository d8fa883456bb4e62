/**
 * pcscd killed and restarted under a live backend: no crash, the service goes down and comes back,
 * readers and cards are seen again and APDUs work again. Repeated to catch leaks of stale state.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CommandApdu } from '../../apdu/command.js';
import { toHex } from '../../core/bytes.js';
import { PcscError, PcscService, type PcscEvent } from '../../apdu/pcsc/index.js';
import { TestCard } from '../../sim/test-card.js';
import { nextEvent } from '../helpers/events.js';
import { IccProcess } from '../helpers/icc.js';
import { VPCD_READER, ensurePcscd, killPcscd, startAgain } from '../helpers/pcscd.js';

const RESTARTS = Number(process.env.CPSD_RESTARTS ?? 2);
const select = new CommandApdu({ cla: 0, ins: 0xa4, p1: 4, p2: 0x0c, data: TestCard.AID }).encode();
let service: PcscService;
let icc: IccProcess;
const events: PcscEvent['type'][] = [];

beforeAll(async () => {
  await ensurePcscd();
  service = new PcscService({ initialRetryMs: 50, maxRetryMs: 500 });
  service.subscribe((e) => events.push(e.type));
  await service.settled(5000);
  icc = new IccProcess();
});

afterAll(async () => {
  icc?.close();
  await service?.close();
  await ensurePcscd(); // leave the machine with a pcscd, as found
});

describe('pcscd restart', () => {
  it(`recovers from ${RESTARTS} kills of pcscd in the middle of card use`, async () => {
    for (let round = 0; round < RESTARTS; round++) {
      const inserted = nextEvent(service, 'card-inserted', (e) => e.reader === VPCD_READER);
      await icc.insert();
      await inserted;
      const connection = await service.connect(VPCD_READER, { share: 'shared' });
      expect(toHex(await connection.transmit(select))).toBe('9000');

      events.length = 0;
      const down = nextEvent(service, 'service-down');
      await killPcscd();
      const { error } = await down;
      expect(error).toBeInstanceOf(PcscError);
      expect(service.available).toBe(false);
      expect(service.readers()).toEqual([]);
      expect(events).toEqual(expect.arrayContaining(['card-removed', 'reader-removed', 'service-down']));
      // The old handle fails with a typed error, never a crash.
      await expect(connection.transmit(select)).rejects.toBeInstanceOf(PcscError);
      await expect(service.connect(VPCD_READER, { share: 'shared' })).rejects.toMatchObject({ code: 'PCSC_UNAVAILABLE' });
      await connection.disconnect();
      await icc.remove(); // vpcd died with pcscd: the card's link is gone too

      const up = nextEvent(service, 'service-up', () => true, 10_000);
      const readerBack = nextEvent(service, 'reader-added', (e) => e.reader === VPCD_READER, 10_000);
      await startAgain();
      await up;
      await readerBack;
      await service.settled(5000);
      expect(service.readers().map((r) => r.name)).toContain(VPCD_READER);

      const again = nextEvent(service, 'card-inserted', (e) => e.reader === VPCD_READER);
      await icc.insert();
      await again;
      const fresh = await service.connect(VPCD_READER, { share: 'shared' });
      expect(toHex(await fresh.transmit(select))).toBe('9000');
      await fresh.disconnect();
      const removed = nextEvent(service, 'card-removed', (e) => e.reader === VPCD_READER);
      await icc.remove();
      await removed;
    }
  });
});
