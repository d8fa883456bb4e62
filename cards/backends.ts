/**
 * The two places cards come from, behind one CardBackend: the PC/SC service (pcscd, WinSCard) and a
 * virtual card in process (`cpsd serve --sim`, tests). The card session (session.ts) runs the same code
 * over both.
 */
import type { ApduTransport } from '../apdu/channel.js';
import { toHex } from '../core/bytes.js';
import { CardAbsentError, PcscUnavailableError } from '../apdu/pcsc/errors.js';
import { FEATURE, readerFeatures, verifyOnPinPad } from '../apdu/pcsc/pinpad.js';
import { PcscService } from '../apdu/pcsc/service.js';
import { PcscTransport } from '../apdu/pcsc/transport.js';
import type { CardBackend, CardEvent, CardLink, PinPad, ReaderView } from './session.js';

export class PcscBackend implements CardBackend {
  readonly #service: PcscService;
  /** PC/SC part 10 features per reader name (read once: they belong to the reader, not the card). */
  readonly #features = new Map<string, Map<number, number>>();

  constructor(service = new PcscService()) {
    this.#service = service;
  }

  get service(): PcscService {
    return this.#service;
  }

  settled(timeoutMs?: number): Promise<void> {
    return this.#service.settled(timeoutMs);
  }

  readers(): ReaderView[] {
    return this.#service.readers().map((r) => ({ name: r.name, cardPresent: r.cardPresent, atr: r.cardPresent ? toHex(r.atr) : null }));
  }

  unavailable(): PcscUnavailableError | undefined {
    if (this.#service.available) return undefined;
    const error = this.#service.lastError;
    return error instanceof PcscUnavailableError ? error : new PcscUnavailableError('the PC/SC service is not available', { cause: error });
  }

  subscribe(listener: (event: CardEvent) => void): () => void {
    return this.#service.subscribe((e) => {
      if (e.type === 'card-inserted') listener({ type: 'card.inserted', reader: e.reader, atr: toHex(e.atr) });
      else if (e.type === 'card-removed') listener({ type: 'card.removed', reader: e.reader });
      if (e.type === 'reader-added' || e.type === 'reader-removed' || e.type === 'service-down' || e.type === 'service-up') {
        listener({ type: 'readers.changed', readers: this.readers() });
      }
    });
  }

  async link(reader: string, options: { exclusive: boolean }): Promise<CardLink> {
    const info = this.#service.readers().find((r) => r.name === reader);
    const connection = await this.#service.connect(reader, { share: options.exclusive ? 'exclusive' : 'shared', protocols: ['T0', 'T1'] });
    let features = this.#features.get(reader);
    if (!features) {
      features = await readerFeatures(connection).catch(() => new Map<number, number>());
      this.#features.set(reader, features);
    }
    const known = features;
    const pinPad: PinPad | undefined = known.has(FEATURE.VERIFY_PIN_DIRECT) ? (v) => verifyOnPinPad(connection, known, v) : undefined;
    return {
      atr: info?.atr ?? new Uint8Array(0),
      transport: new PcscTransport(connection),
      pinPad,
      close: (disposition) => connection.disconnect(disposition),
    };
  }

  close(): Promise<void> {
    return this.#service.close();
  }
}

/** What the in-process backend needs of a virtual card (sim/: VirtualCpsCard, FaultyCard). */
export interface InProcessCard {
  readonly atr: Uint8Array;
  transmit(apdu: Uint8Array): Promise<Uint8Array> | Uint8Array;
  reset?(): void;
}

/** A virtual card in a reader named "cpsd virtual reader"; insert() and remove() for tests. */
export class InProcessBackend<C extends InProcessCard = InProcessCard> implements CardBackend {
  static readonly READER = 'cpsd virtual reader';
  readonly #listeners = new Set<(event: CardEvent) => void>();
  #card: C | undefined;
  /** A simulated PIN-pad reader: what the holder types on it (tests); 'cancel' or 'timeout' as a pad says them. */
  pinPadDigits: string | undefined;

  constructor(card?: C, options: { pinPadDigits?: string } = {}) {
    this.#card = card;
    this.pinPadDigits = options.pinPadDigits;
  }

  get card(): C | undefined {
    return this.#card;
  }

  readers(): ReaderView[] {
    return [{ name: InProcessBackend.READER, cardPresent: this.#card !== undefined, atr: this.#card ? toHex(this.#card.atr) : null }];
  }

  unavailable(): undefined {
    return undefined;
  }

  insert(card: C): void {
    this.#card = card;
    this.#emit({ type: 'card.inserted', reader: InProcessBackend.READER, atr: toHex(card.atr) });
  }

  remove(): void {
    if (!this.#card) return;
    this.#card = undefined;
    this.#emit({ type: 'card.removed', reader: InProcessBackend.READER });
  }

  subscribe(listener: (event: CardEvent) => void): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }

  #emit(event: CardEvent): void {
    for (const l of [...this.#listeners]) l(event);
  }

  async link(): Promise<CardLink> {
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
    // The reader puts the typed digits in place of the template's placeholder and sends the APDU;
    // a holder who presses Cancel, or types nothing, gets the reader's own status word.
    const pinPad: PinPad | undefined =
      digits === undefined
        ? undefined
        : async (v) => {
            if (digits === 'cancel') return Uint8Array.of(0x64, 0x01);
            if (digits === 'timeout') return Uint8Array.of(0x64, 0x00);
            return transport.transmit(Uint8Array.of(...v.header, v.length, ...new TextEncoder().encode(digits.slice(0, v.length).padEnd(v.length, '0'))));
          };
    return {
      atr: card.atr,
      transport,
      pinPad,
      close: async (disposition) => {
        if (disposition === 'reset' && this.#card === card) card.reset?.();
      },
    };
  }

  async close(): Promise<void> {
    this.#listeners.clear();
  }
}
