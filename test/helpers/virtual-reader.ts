/**
 * One virtual reader for a test file: pcscd found or started, a PcscService watching it, the card in a
 * child process, and the card removed after each test that inserted one.
 */
import { afterAll, afterEach, beforeAll } from 'vitest';
import { PcscService } from '../../apdu/pcsc/index.js';
import { nextEvent } from './events.js';
import { IccProcess } from './icc.js';
import { VPCD_READER, ensurePcscd } from './pcscd.js';

export interface VirtualReader {
  readonly service: PcscService;
  readonly icc: IccProcess;
  /** Inserts the virtual CPS card of a profile (or the T=0 test card without one) and waits for pcscd to see it. */
  insert(options?: Parameters<IccProcess['insert']>[0]): Promise<void>;
  /** Removes the card and waits for pcscd to see it gone. */
  remove(): Promise<void>;
}

export function useVirtualReader(): VirtualReader {
  let service: PcscService | undefined;
  let icc: IccProcess | undefined;
  let inserted = false;
  const reader: VirtualReader = {
    get service(): PcscService {
      if (!service) throw new Error('useVirtualReader: not started');
      return service;
    },
    get icc(): IccProcess {
      if (!icc) throw new Error('useVirtualReader: not started');
      return icc;
    },
    async insert(options = {}) {
      const event = nextEvent(reader.service, 'card-inserted', (e) => e.reader === VPCD_READER);
      await reader.icc.insert(options);
      await event;
      inserted = true;
    },
    async remove() {
      if (!inserted) return;
      const removed = nextEvent(reader.service, 'card-removed', (e) => e.reader === VPCD_READER);
      await reader.icc.remove();
      await removed;
      inserted = false;
    },
  };
  beforeAll(async () => {
    await ensurePcscd();
    service = new PcscService();
    await service.settled(5000);
    icc = new IccProcess();
  });
  afterEach(() => reader.remove());
  afterAll(async () => {
    icc?.close();
    await service?.close();
  });
  return reader;
}
