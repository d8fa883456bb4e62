/** The supervisor against a scripted fake binding: every transition without pcscd. */
import { afterEach, describe, expect, it, vi } from 'vitest';
import { CardAbsentError, PcscUnavailableError, ReaderNotFoundError, pcscError } from '../../apdu/pcsc/errors.js';
import { PcscService } from '../../apdu/pcsc/service.js';
import type { ContextListener, PcscConnection, PcscContext, PcscEvent } from '../../apdu/pcsc/types.js';

const PRESENT = 0x20;
const EMPTY = 0x10;
const ATR = Uint8Array.of(0x3b, 0x02, 0x41, 0x42);

class FakeWorld {
  serviceUp = true;
  contexts: { listener: ContextListener; closed: boolean }[] = [];
  connectImpl: (reader: string) => Promise<PcscConnection> = () => Promise.reject(pcscError(0x8010000c));

  factory = (listener: ContextListener): PcscContext => {
    if (!this.serviceUp) throw new Error('SCardEstablishContext error: Service not available.(0x8010001d)');
    const record = { listener, closed: false };
    this.contexts.push(record);
    return {
      connect: (reader) => this.connectImpl(reader),
      close: () => {
        record.closed = true;
      },
    };
  };

  get current(): ContextListener {
    const last = this.contexts.at(-1);
    if (!last) throw new Error('no context');
    return last.listener;
  }
}

function record(service: PcscService): PcscEvent[] {
  const events: PcscEvent[] = [];
  service.subscribe((e) => events.push(e));
  return events;
}

const services: PcscService[] = [];
function make(world: FakeWorld): PcscService {
  const s = new PcscService({ factory: world.factory, initialRetryMs: 10, maxRetryMs: 40 });
  services.push(s);
  return s;
}

afterEach(async () => {
  vi.useRealTimers();
  for (const s of services.splice(0)) await s.close();
});

describe('PcscService', () => {
  it('turns reader states into reader and card events', () => {
    const world = new FakeWorld();
    const service = make(world);
    const events = record(service);
    world.current.readerAdded('R1');
    expect(service.readers()).toEqual([]); // not known until its first state
    world.current.readerState('R1', EMPTY, new Uint8Array(0));
    expect(service.readers()).toMatchObject([{ name: 'R1', cardPresent: false }]);
    world.current.readerState('R1', PRESENT | (1 << 16), ATR);
    world.current.readerState('R1', PRESENT | 0x100 | (1 << 16), ATR); // in use: no new card event
    world.current.readerState('R1', EMPTY | (2 << 16), new Uint8Array(0));
    world.current.readerRemoved('R1');
    expect(events.map((e) => e.type)).toEqual(['reader-added', 'card-inserted', 'card-removed', 'reader-removed']);
    const inserted = events[1];
    expect(inserted?.type === 'card-inserted' && [...inserted.atr]).toEqual([...ATR]);
  });

  it('reveals a removal and re-insertion that the binding folded into one state', () => {
    const world = new FakeWorld();
    const service = make(world);
    const events = record(service);
    world.current.readerAdded('R1');
    world.current.readerState('R1', PRESENT | (1 << 16), ATR);
    world.current.readerState('R1', PRESENT | (3 << 16), ATR); // counter jumped by 2: out and in again
    expect(events.map((e) => e.type)).toEqual(['reader-added', 'card-inserted', 'card-removed', 'card-inserted']);
  });

  it('reports a mute card as present with no ATR', () => {
    const world = new FakeWorld();
    const service = make(world);
    const events = record(service);
    world.current.readerAdded('R1');
    world.current.readerState('R1', PRESENT | 0x200, Uint8Array.of(1));
    expect(events.at(-1)).toMatchObject({ type: 'card-inserted', mute: true, atr: new Uint8Array(0) });
  });

  it('drops everything when the service dies and re-creates the context when it is back', async () => {
    const world = new FakeWorld();
    const service = make(world);
    const events = record(service);
    world.current.readerAdded('R1');
    world.current.readerState('R1', PRESENT, ATR);
    const dead = world.current;
    world.serviceUp = false;
    dead.failed(pcscError(0x80100013, 'SCardGetStatusChange'));
    expect(service.available).toBe(false);
    expect(service.readers()).toEqual([]);
    expect(world.contexts[0]?.closed).toBe(true);
    expect(events.map((e) => e.type)).toEqual(['reader-added', 'card-inserted', 'card-removed', 'reader-removed', 'service-down']);
    expect(service.lastError).toBeInstanceOf(PcscUnavailableError);
    await expect(service.connect('R1', { share: 'shared' })).rejects.toBeInstanceOf(PcscUnavailableError);

    // Late events from the dead context are ignored.
    dead.readerAdded('R1');
    expect(service.readers()).toEqual([]);

    await new Promise((r) => setTimeout(r, 60)); // a few failed retries: still only one service-down
    expect(events.filter((e) => e.type === 'service-down')).toHaveLength(1);
    world.serviceUp = true;
    await vi.waitFor(() => expect(service.available).toBe(true), { timeout: 500 });
    expect(events.at(-1)).toEqual({ type: 'service-up' });
    world.current.readerAdded('R1');
    world.current.readerState('R1', EMPTY, new Uint8Array(0));
    await service.settled(500, 10);
    expect(service.readers().map((r) => r.name)).toEqual(['R1']);
  });

  it('starts down when the service is absent and backs off up to the maximum', async () => {
    vi.useFakeTimers();
    const world = new FakeWorld();
    world.serviceUp = false;
    let attempts = 0;
    const counting = (l: ContextListener): PcscContext => {
      attempts++;
      return world.factory(l);
    };
    const service = new PcscService({ factory: counting, initialRetryMs: 10, maxRetryMs: 40 });
    services.push(service);
    expect(service.available).toBe(false);
    expect(attempts).toBe(1);
    await vi.advanceTimersByTimeAsync(10); // retry after 10
    await vi.advanceTimersByTimeAsync(20); // then 20
    await vi.advanceTimersByTimeAsync(40); // then capped at 40
    await vi.advanceTimersByTimeAsync(40);
    expect(attempts).toBe(5);
    await service.close();
    await vi.advanceTimersByTimeAsync(1000);
    expect(attempts).toBe(5); // closed: no more retries
  });

  it('rejects connections to unknown readers and passes card errors through typed', async () => {
    const world = new FakeWorld();
    const service = make(world);
    world.current.readerAdded('R1');
    world.current.readerState('R1', EMPTY, new Uint8Array(0));
    await expect(service.connect('R2', { share: 'shared' })).rejects.toBeInstanceOf(ReaderNotFoundError);
    await expect(service.connect('R1', { share: 'shared' })).rejects.toBeInstanceOf(CardAbsentError);
  });

  it('treats a connect that finds the service gone as a service failure', async () => {
    const world = new FakeWorld();
    const service = make(world);
    world.current.readerAdded('R1');
    world.connectImpl = () => Promise.reject(new Error('SCardConnect error: Service was stopped.(0x8010001e)'));
    await expect(service.connect('R1', { share: 'shared' })).rejects.toBeInstanceOf(PcscUnavailableError);
    expect(service.available).toBe(false);
  });

  it('keeps notifying other listeners when one throws', () => {
    const world = new FakeWorld();
    const service = make(world);
    service.subscribe(() => {
      throw new Error('listener bug');
    });
    const events = record(service);
    world.current.readerAdded('R1');
    expect(events).toHaveLength(1);
  });

  it('settled() rejects with the service error when PC/SC never comes up', async () => {
    const world = new FakeWorld();
    world.serviceUp = false;
    const service = make(world);
    await expect(service.settled(50)).rejects.toBeInstanceOf(PcscUnavailableError);
  });
});
