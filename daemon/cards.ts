/**
 * Where the daemon's cards come from: the real PC/SC stack, or the in-process virtual card (`--sim`).
 * Both give readers, insert/remove events and, per operation, a CpsCard over a fresh SHARED connection.
 */
import { EventEmitter } from 'node:events';
import { openCard } from '../cards/atr-table.js';
import type { CpsCard } from '../cards/card.js';
import type { ApduTransport } from '../apdu/channel.js';
import { toHex } from '../apdu/errors.js';
import { CardAbsentError, CardResetError, FEATURE, PcscService, PcscTransport, ReaderNotFoundError, readerFeatures, verifyOnPinPad } from '../apdu/pcsc/index.js';
import type { VirtualCpsCard } from '../sim/cps/card.js';

export interface ReaderView {
  name: string;
  cardPresent: boolean;
  atr: string | null;
}

export type CardEvent =
  | { type: 'readers.changed'; readers: ReaderView[] }
  | { type: 'card.inserted'; reader: string; atr: string }
  | { type: 'card.removed'; reader: string };

/** Sends the VERIFY template through the reader's PIN pad (the PIN never reaches the host). */
export type PinPad = (template: { header: readonly [number, number, number, number]; length: number }) => Promise<Uint8Array>;

export type CardJob<T> = (card: CpsCard, reader: string, pinPad: PinPad | undefined) => Promise<T>;

export interface CardSource {
  readers(): ReaderView[];
  /**
   * Runs `fn` with the card of `reader` (or the first reader holding a card); the card is released after.
   * `retryOnReset`: when another application resets the card during `fn`, reconnect and run it again
   * once (for jobs that read only: never for one that presented a PIN).
   */
  withCard<T>(reader: string | undefined, fn: CardJob<T>, after?: 'leave' | 'reset', options?: { retryOnReset?: boolean }): Promise<T>;
  on(event: 'event', listener: (e: CardEvent) => void): this;
  close(): Promise<void>;
}

function pick(readers: ReaderView[], name: string | undefined): ReaderView {
  const reader = name === undefined ? readers.find((r) => r.cardPresent) ?? readers[0] : readers.find((r) => r.name === name);
  if (!reader) throw new ReaderNotFoundError(name === undefined ? 'no smart-card reader' : `no reader named ${JSON.stringify(name)}`);
  if (!reader.cardPresent) throw new CardAbsentError(`no card in ${reader.name}`);
  return reader;
}

export class PcscCardSource extends EventEmitter implements CardSource {
  readonly #service: PcscService;
  readonly #unsubscribe: () => void;
  /** PC/SC part 10 features per reader name (read once: they belong to the reader, not the card). */
  readonly #features = new Map<string, Map<number, number>>();

  constructor(service = new PcscService()) {
    super();
    this.#service = service;
    this.#unsubscribe = service.subscribe((e) => {
      if (e.type === 'card-inserted') this.emit('event', { type: 'card.inserted', reader: e.reader, atr: toHex(e.atr) });
      else if (e.type === 'card-removed') this.emit('event', { type: 'card.removed', reader: e.reader });
      if (e.type === 'reader-added' || e.type === 'reader-removed' || e.type === 'service-down' || e.type === 'service-up') {
        this.emit('event', { type: 'readers.changed', readers: this.readers() });
      }
    });
  }

  settled(): Promise<void> {
    return this.#service.settled();
  }

  readers(): ReaderView[] {
    return this.#service.readers().map((r) => ({ name: r.name, cardPresent: r.cardPresent, atr: r.cardPresent ? toHex(r.atr) : null }));
  }

  async withCard<T>(name: string | undefined, fn: CardJob<T>, after: 'leave' | 'reset' = 'leave', options: { retryOnReset?: boolean } = {}): Promise<T> {
    try {
      return await this.#once(name, fn, after);
    } catch (error) {
      if (!(options.retryOnReset && error instanceof CardResetError)) throw error;
      return this.#once(name, fn, after);
    }
  }

  async #once<T>(name: string | undefined, fn: CardJob<T>, after: 'leave' | 'reset'): Promise<T> {
    const reader = pick(this.readers(), name);
    const info = this.#service.readers().find((r) => r.name === reader.name);
    const connection = await this.#service.connect(reader.name, { share: 'shared', protocols: ['T0', 'T1'] });
    try {
      let features = this.#features.get(reader.name);
      if (!features) {
        features = await readerFeatures(connection).catch(() => new Map<number, number>());
        this.#features.set(reader.name, features);
      }
      const known = features;
      const pinPad: PinPad | undefined = known.has(FEATURE.VERIFY_PIN_DIRECT) ? (v) => verifyOnPinPad(connection, known, v) : undefined;
      return await fn(openCard(new PcscTransport(connection), info?.atr ?? new Uint8Array(0)), reader.name, pinPad);
    } finally {
      await connection.disconnect(after);
    }
  }

  async close(): Promise<void> {
    this.#unsubscribe();
    await this.#service.close();
  }
}

/** The virtual card in process, in a reader named "cpsd virtual reader"; insert/remove for tests. */
export class SimCardSource extends EventEmitter implements CardSource {
  static readonly READER = 'cpsd virtual reader';
  #card: VirtualCpsCard | undefined;
  #busy: Promise<unknown> = Promise.resolve();
  /** A simulated PIN-pad reader: what the holder types on it (tests). */
  pinPadDigits: string | undefined;

  constructor(card?: VirtualCpsCard, options: { pinPadDigits?: string } = {}) {
    super();
    this.#card = card;
    this.pinPadDigits = options.pinPadDigits;
  }

  readers(): ReaderView[] {
    return [{ name: SimCardSource.READER, cardPresent: this.#card !== undefined, atr: this.#card ? toHex(this.#card.atr) : null }];
  }

  insert(card: VirtualCpsCard): void {
    this.#card = card;
    this.emit('event', { type: 'card.inserted', reader: SimCardSource.READER, atr: toHex(card.atr) });
  }

  remove(): void {
    if (!this.#card) return;
    this.#card = undefined;
    this.emit('event', { type: 'card.removed', reader: SimCardSource.READER });
  }

  get card(): VirtualCpsCard | undefined {
    return this.#card;
  }

  withCard<T>(name: string | undefined, fn: CardJob<T>, after: 'leave' | 'reset' = 'leave'): Promise<T> {
    const run = this.#busy.then(async () => {
      pick(this.readers(), name);
      const card = this.#card;
      if (!card) throw new CardAbsentError('no card');
      // A transport that fails like PC/SC once the card is pulled out mid-operation.
      const transport: ApduTransport = {
        transmit: async (apdu) => {
          if (this.#card !== card) throw new CardAbsentError('the card was removed');
          return card.transmit(apdu);
        },
      };
      const digits = this.pinPadDigits;
      // The reader puts the typed digits in place of the template's placeholder and sends the APDU.
      const pinPad: PinPad | undefined =
        digits === undefined
          ? undefined
          : async (v) => transport.transmit(Uint8Array.of(...v.header, v.length, ...new TextEncoder().encode(digits.slice(0, v.length).padEnd(v.length, '0'))));
      try {
        return await fn(openCard(transport, card.atr), SimCardSource.READER, pinPad);
      } finally {
        if (after === 'reset' && this.#card === card) card.reset();
      }
    });
    this.#busy = run.catch(() => undefined);
    return run;
  }

  async close(): Promise<void> {
    this.removeAllListeners();
  }
}
