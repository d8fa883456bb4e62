/** The smartcard binding's adapter (apdu/pcsc/smartcard.ts) against a scripted fake addon, and the binding setting. */
import { afterEach, describe, expect, it } from 'vitest';
import { bindingFromEnvironment, contextFactoryFor, isPcscBindingName } from '../../apdu/pcsc/binding.js';
import { CardAbsentError, CardBusyError, PcscError, PcscUnavailableError, ReaderNotFoundError, UnsupportedFeatureError } from '../../apdu/pcsc/errors.js';
import { pcscliteContextFactory } from '../../apdu/pcsc/pcsclite.js';
import { PcscService } from '../../apdu/pcsc/service.js';
import {
  smartcardContextFactory,
  smartcardContextFactoryWith,
  smartcardError,
  type SmartcardCard,
  type SmartcardModule,
  type SmartcardNativeContext,
  type SmartcardReaderState,
} from '../../apdu/pcsc/smartcard.js';
import type { PcscEvent } from '../../apdu/pcsc/types.js';
import { ConfigError, loadConfig, pcscBindingSetting, validateConfig } from '../../daemon/config.js';

const PNP = '\\\\?PnP?\\Notification';
const CHANGED = 0x2;
const EMPTY = 0x10;
const PRESENT = 0x20;
const ATR = Buffer.from([0x3b, 0x02, 0x41, 0x42]);

/** A pcscd in memory: readers with states; each wait resolves when the test says what changed. */
class FakeAddon {
  up = true;
  readers = new Map<string, { state: number; atr: Buffer | null }>();
  contexts: FakeContext[] = [];
  cards: FakeCard[] = [];
  waits: { resolve: (v: SmartcardReaderState[] | null) => void; reject: (e: Error) => void; query: { name: string; state: number }[] }[] = [];
  transmitImpl: (command: Buffer) => Promise<Buffer> = async () => Buffer.from([0x90, 0x00]);
  controlImpl: () => Promise<Buffer> = () => Promise.reject(new Error('Unknown PC/SC error'));

  module(): SmartcardModule {
    const open = (): SmartcardNativeContext => {
      if (!this.up) throw new Error('PC/SC service not running');
      const context = new FakeContext(this);
      this.contexts.push(context);
      return context;
    };
    return {
      // A constructor that returns another object: what `new Context()` gives is that object.
      Context: function Context() {
        return open();
      } as unknown as new () => SmartcardNativeContext,
      SCARD_SHARE_EXCLUSIVE: 1,
      SCARD_SHARE_SHARED: 2,
      SCARD_SHARE_DIRECT: 3,
      SCARD_PROTOCOL_T0: 1,
      SCARD_PROTOCOL_T1: 2,
      SCARD_PROTOCOL_RAW: 4,
      SCARD_LEAVE_CARD: 0,
      SCARD_RESET_CARD: 1,
      SCARD_UNPOWER_CARD: 2,
      SCARD_EJECT_CARD: 3,
    };
  }

  /** Answers the pending wait: the readers whose state differs from what the wait was told. */
  settle(): void {
    const wait = this.waits.shift();
    if (!wait) throw new Error('no wait pending');
    wait.resolve(
      wait.query.map(({ name, state }) => {
        if (name === PNP) {
          // pcsc-lite keeps the reader count in the upper half of the PnP entry's state
          const count = this.readers.size << 16;
          return { name, state: (state & 0xffff0000) === count ? state : count | CHANGED, atr: null };
        }
        const r = this.readers.get(name);
        if (!r) return { name, state: 0x4 | CHANGED, atr: null };
        return { name, state: r.state === state ? r.state : r.state | CHANGED, atr: r.atr };
      }),
    );
  }

  /** pcscd dies: every pending wait fails the way the binding says it. */
  die(): void {
    this.up = false;
    for (const w of this.waits.splice(0)) w.reject(new Error('PC/SC service not running'));
  }
}

class FakeContext implements SmartcardNativeContext {
  closed = false;
  cancelled = 0;
  constructor(readonly addon: FakeAddon) {}
  listReaders(): ReturnType<SmartcardNativeContext['listReaders']> {
    if (!this.addon.up) throw new Error('PC/SC service not running');
    return [...this.addon.readers.keys()].map((name) => ({
      name,
      connect: async (share: number, protocols: number): Promise<SmartcardCard> => {
        const r = this.addon.readers.get(name);
        if (!r || !(r.state & PRESENT)) throw new Error('No smart card present');
        const card = new FakeCard(this.addon, share, protocols & 1 ? 1 : 2);
        this.addon.cards.push(card);
        return card;
      },
    }));
  }
  waitForChange(query: { name: string; state: number }[]): Promise<SmartcardReaderState[] | null> {
    if (!this.addon.up) return Promise.reject(new Error('PC/SC service not running'));
    return new Promise((resolve, reject) => this.addon.waits.push({ resolve, reject, query }));
  }
  cancel(): void {
    this.cancelled++;
    const mine = this.addon.waits.splice(0);
    for (const w of mine) w.resolve(null);
  }
  close(): void {
    this.closed = true;
  }
}

class FakeCard implements SmartcardCard {
  connected = true;
  disconnects: number[] = [];
  reconnects: number[] = [];
  constructor(
    readonly addon: FakeAddon,
    readonly share: number,
    readonly protocol: number,
  ) {}
  transmit(command: Buffer): Promise<Buffer> {
    return this.addon.transmitImpl(command);
  }
  control(): Promise<Buffer> {
    return this.addon.controlImpl();
  }
  disconnect(disposition = 0): void {
    this.disconnects.push(disposition);
    this.connected = false;
  }
  async reconnect(_share: number, _protocols: number, initialization: number): Promise<number> {
    this.reconnects.push(initialization);
    return this.protocol;
  }
}

const turn = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

const services: PcscService[] = [];
function start(addon: FakeAddon): { service: PcscService; events: PcscEvent[] } {
  const service = new PcscService({ factory: smartcardContextFactoryWith(() => addon.module()), initialRetryMs: 10, maxRetryMs: 20 });
  services.push(service);
  const events: PcscEvent[] = [];
  service.subscribe((e) => events.push(e));
  return { service, events };
}

afterEach(async () => {
  for (const s of services.splice(0)) await s.close();
  delete process.env.CPSD_PCSC_BINDING;
});

describe('smartcard adapter', () => {
  it('maps the binding’s messages back to PC/SC codes and typed errors', () => {
    expect(smartcardError(new Error('Card was removed'), 'SCardTransmit')).toMatchObject({ code: 'CARD_ABSENT', pcscCode: 0x80100069, pcscName: 'SCARD_W_REMOVED_CARD', operation: 'SCardTransmit' });
    expect(smartcardError(new Error('PC/SC service not running'), 'SCardEstablishContext')).toBeInstanceOf(PcscUnavailableError);
    expect(smartcardError(new Error('Communication error'), 'SCardGetStatusChange')).toMatchObject({ code: 'PCSC_UNAVAILABLE', pcscCode: 0x80100013 });
    expect(smartcardError(new Error('Sharing violation'), 'SCardConnect')).toBeInstanceOf(CardBusyError);
    expect(smartcardError(new Error('Protocol mismatch'), 'SCardConnect')).toMatchObject({ code: 'PROTOCOL_MISMATCH', pcscCode: 0x8010000f });
    expect(smartcardError(new Error('Card was reset'), 'SCardTransmit')).toMatchObject({ code: 'CARD_RESET' });
    expect(smartcardError(new Error('Transaction failed'), 'SCardTransmit')).toMatchObject({ pcscName: 'SCARD_E_NOT_TRANSACTED' });
    // SCardControl's one unnamed code on pcsc-lite is SCARD_E_UNSUPPORTED_FEATURE; elsewhere it stays opaque.
    expect(smartcardError(new Error('Unknown PC/SC error'), 'SCardControl')).toBeInstanceOf(UnsupportedFeatureError);
    const opaque = smartcardError(new Error('Unknown PC/SC error'), 'SCardTransmit');
    expect(opaque.constructor).toBe(PcscError);
    expect(opaque.pcscCode).toBeUndefined();
  });

  it('turns waits into reader and card events, keeping pcsc-lite’s event counter', async () => {
    const addon = new FakeAddon();
    addon.readers.set('R1', { state: EMPTY | (1 << 16), atr: null });
    const { service, events } = start(addon);
    await turn();
    addon.settle(); // first states (and the PnP entry)
    await turn();
    expect(service.readers()).toMatchObject([{ name: 'R1', cardPresent: false }]);
    addon.readers.set('R1', { state: PRESENT | (2 << 16), atr: ATR });
    addon.settle();
    await turn();
    addon.readers.set('R1', { state: PRESENT | (4 << 16), atr: ATR }); // out and in again between two waits
    addon.settle();
    await turn();
    expect(events.map((e) => e.type)).toEqual(['reader-added', 'card-inserted', 'card-removed', 'card-inserted']);
    // The state it was told last goes back into the next wait, so no change is lost between two.
    expect(addon.waits[0]?.query).toEqual([
      { name: 'R1', state: PRESENT | (4 << 16) },
      { name: PNP, state: 1 << 16 },
    ]);
  });

  it('connects on a native context of its own, refuses a second connection busy, and disposes of cards off the main thread', async () => {
    const addon = new FakeAddon();
    addon.readers.set('R1', { state: PRESENT | (1 << 16), atr: ATR });
    const { service } = start(addon);
    await turn();
    addon.settle();
    await turn();
    const connection = await service.connect('R1', { share: 'exclusive', protocols: ['T0'] });
    expect(connection.protocol).toBe('T0');
    expect(addon.contexts).toHaveLength(2); // the watcher's and this connection's
    await expect(service.connect('R1', { share: 'shared' })).rejects.toBeInstanceOf(CardBusyError);
    await expect(service.connect('R2', { share: 'shared' })).rejects.toBeInstanceOf(ReaderNotFoundError);
    expect([...(await connection.transmit(Uint8Array.of(0, 0xa4, 4, 0)))]).toEqual([0x90, 0x00]);
    await expect(connection.control(0x42000000 + 3400)).rejects.toBeInstanceOf(UnsupportedFeatureError);
    await connection.disconnect('reset');
    const card = addon.cards[0];
    expect(card?.share).toBe(1);
    expect(card?.reconnects).toEqual([1]); // SCARD_RESET_CARD through the asynchronous SCardReconnect
    expect(card?.disconnects).toEqual([0]); // then SCARD_LEAVE_CARD: nothing left for the synchronous call to wait for
    expect(addon.contexts[1]?.closed).toBe(true);
    const again = await service.connect('R1', { share: 'shared' });
    await again.disconnect('eject');
    expect(addon.cards[1]?.disconnects).toEqual([3]);
  });

  it('releases the handle on a removed card so that the next connect works', async () => {
    const addon = new FakeAddon();
    addon.readers.set('R1', { state: PRESENT | (1 << 16), atr: ATR });
    const { service } = start(addon);
    await turn();
    addon.settle();
    await turn();
    const connection = await service.connect('R1', { share: 'shared' });
    addon.transmitImpl = () => Promise.reject(new Error('Card was removed'));
    await expect(connection.transmit(Uint8Array.of(0, 0xb0, 0, 0, 0))).rejects.toBeInstanceOf(CardAbsentError);
    await turn();
    addon.transmitImpl = async () => Buffer.from([0x90, 0x00]);
    const again = await service.connect('R1', { share: 'shared' });
    expect([...(await again.transmit(Uint8Array.of(0, 0xb0, 0, 0, 0)))]).toEqual([0x90, 0x00]);
  });

  it('reports a dead service, drops its readers and connections, and comes back with a new context', async () => {
    const addon = new FakeAddon();
    addon.readers.set('R1', { state: PRESENT | (1 << 16), atr: ATR });
    const { service, events } = start(addon);
    await turn();
    addon.settle();
    await turn();
    const connection = await service.connect('R1', { share: 'shared' });
    addon.die();
    await turn();
    await turn();
    expect(service.available).toBe(false);
    expect(events.map((e) => e.type)).toEqual(['reader-added', 'card-inserted', 'card-removed', 'reader-removed', 'service-down']);
    const down = events.at(-1);
    expect(down?.type === 'service-down' && down.error).toBeInstanceOf(PcscUnavailableError);
    await expect(connection.transmit(Uint8Array.of(0))).rejects.toBeInstanceOf(PcscError);
    await connection.disconnect();
    await new Promise((resolve) => setTimeout(resolve, 30)); // a retry while pcscd is still down
    addon.up = true;
    await new Promise((resolve) => setTimeout(resolve, 60));
    await turn();
    addon.settle();
    await turn();
    expect(service.available).toBe(true);
    expect(service.readers().map((r) => r.name)).toEqual(['R1']);
  });

  it('cancels its wait and closes every native context on close', async () => {
    const addon = new FakeAddon();
    addon.readers.set('R1', { state: PRESENT | (1 << 16), atr: ATR });
    const { service } = start(addon);
    await turn();
    addon.settle();
    await turn();
    await service.connect('R1', { share: 'shared' });
    await service.close();
    await turn();
    await turn();
    expect(addon.contexts.map((c) => c.closed)).toEqual([true, true]);
    expect(addon.contexts[0]?.cancelled).toBe(1);
    expect(addon.waits).toHaveLength(0);
  });
});

describe('binding setting', () => {
  it('knows both bindings and gives each its factory', () => {
    expect(isPcscBindingName('pcsclite')).toBe(true);
    expect(isPcscBindingName('smartcard')).toBe(true);
    expect(isPcscBindingName('pokusew')).toBe(false);
    expect(contextFactoryFor('smartcard')).toBe(smartcardContextFactory);
    expect(contextFactoryFor('pcsclite')).toBe(pcscliteContextFactory);
  });

  it('is validated in the configuration, and CPSD_PCSC_BINDING overrides the files', () => {
    expect(validateConfig({ pcscBinding: 'smartcard' }, 'f')).toEqual({ pcscBinding: 'smartcard' });
    expect(() => validateConfig({ pcscBinding: 'libusb' }, 'f')).toThrow(ConfigError);
    expect(() => validateConfig({ pcscBinding: 'libusb' }, 'f')).toThrow(/"pcscBinding" must be pcsclite or smartcard/);
    expect(loadConfig([]).pcscBinding).toBe('pcsclite');
    process.env.CPSD_PCSC_BINDING = 'smartcard';
    expect(loadConfig([]).pcscBinding).toBe('smartcard');
    expect(pcscBindingSetting([])).toBe('smartcard');
    expect(bindingFromEnvironment()).toBe('smartcard');
    process.env.CPSD_PCSC_BINDING = 'nope';
    expect(() => loadConfig([])).toThrow(/CPSD_PCSC_BINDING: "pcscBinding" must be/);
    expect(() => pcscBindingSetting([])).toThrow(ConfigError);
    expect(() => new PcscService()).toThrow(/CPSD_PCSC_BINDING must be pcsclite or smartcard/);
  });

  it('tells which binding a service runs on', async () => {
    process.env.CPSD_PCSC_BINDING = 'smartcard';
    const fake = new FakeAddon();
    const custom = new PcscService({ factory: smartcardContextFactoryWith(() => fake.module()) });
    services.push(custom);
    expect(custom.binding).toBeUndefined();
  });
});
