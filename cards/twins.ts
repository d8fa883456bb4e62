/**
 * One card seen through two readers: a dual-interface reader exposes the card in its contact slot under
 * one name and, through its antenna, under another (Cryptolib had to fix certificate propagation and key
 * mix-ups for such readers: docs/card-facts.md, addendum). Two readers show the same card when EF.SN.ICC gives
 * the same chip serial; the serial of each reader is read once per insertion (one or two APDUs) and only
 * when at least two readers hold a CPx card.
 */
import { CpsdError } from '../core/errors.js';
import type { CardEvent, CardSessions, ReaderView } from './session.js';
import { interfaceOf } from './session.js';

export interface ReaderPlacement {
  name: string;
  cardPresent: boolean;
  atr: string | null;
  /** The card is a CPx card cpsd supports. */
  supported: boolean;
  /** The interface of the CPx card in this reader; null without a CPx card. */
  interface: 'contact' | 'contactless' | null;
  /** Another application holds the card exclusively: cpsd cannot use it until it lets go. */
  busy: boolean;
  /** The other readers that show this same card (same chip serial), e.g. its contactless side. */
  sameCardAs: string[];
}

export class CardTwins {
  readonly #sessions: CardSessions;
  /** Serial per reader and ATR, until the card leaves that reader. */
  readonly #serials = new Map<string, { atr: string; serial: Promise<string | undefined> }>();
  readonly #onEvent = (event: CardEvent): void => {
    if (event.type === 'readers.changed') {
      for (const name of this.#serials.keys()) if (!event.readers.some((r) => r.name === name && r.cardPresent)) this.#serials.delete(name);
    } else {
      this.#serials.delete(event.reader);
    }
  };

  constructor(sessions: CardSessions) {
    this.#sessions = sessions;
    sessions.on('event', this.#onEvent);
  }

  close(): void {
    this.#sessions.off('event', this.#onEvent);
  }

  /** The chip serial of the card in `reader`; undefined when it cannot be read now (busy, not a CPx card…). */
  serialOf(reader: ReaderView, signal?: AbortSignal): Promise<string | undefined> {
    const known = this.#serials.get(reader.name);
    if (known && known.atr === reader.atr) return known.serial;
    const serial = this.#sessions.run((card) => card.serial(), { reader: reader.name, signal, retryOnReset: true }).catch((error: unknown) => {
      if (!(error instanceof CpsdError)) throw error;
      this.#serials.delete(reader.name); // try again next time
      return undefined;
    });
    this.#serials.set(reader.name, { atr: reader.atr ?? '', serial });
    return serial;
  }

  /**
   * The other readers that show the card of `reader` (its serial known). Call it outside a job on
   * `reader`: it asks the other readers, and two such calls holding one reader each would wait on each other.
   */
  async sameCardAs(reader: string, serial: string, signal?: AbortSignal): Promise<string[]> {
    const others = this.#sessions.readers().filter((r) => r.name !== reader && interfaceOf(r) !== undefined);
    const serials = await Promise.all(others.map((r) => this.serialOf(r, signal)));
    return others.filter((_, i) => serials[i] === serial).map((r) => r.name);
  }

  /** Every reader, with the interface of its CPx card and the other readers that show the same card. */
  async placements(signal?: AbortSignal): Promise<ReaderPlacement[]> {
    const readers = this.#sessions.readers();
    const cps = readers.filter((r) => interfaceOf(r) !== undefined);
    const serials = new Map<string, string | undefined>();
    const busy = new Map<string, boolean>();
    await Promise.all(cps.map(async (r) => busy.set(r.name, await this.#sessions.heldElsewhere(r.name))));
    const free = cps.filter((r) => !busy.get(r.name));
    if (free.length >= 2) await Promise.all(free.map(async (r) => serials.set(r.name, await this.serialOf(r, signal))));
    return readers.map((r) => {
      const serial = serials.get(r.name);
      return {
        name: r.name,
        cardPresent: r.cardPresent,
        atr: r.atr,
        supported: interfaceOf(r) !== undefined,
        interface: interfaceOf(r) ?? null,
        busy: busy.get(r.name) ?? false,
        sameCardAs: serial === undefined ? [] : cps.filter((o) => o.name !== r.name && serials.get(o.name) === serial).map((o) => o.name),
      };
    });
  }

  /**
   * The reader a PIN operation uses: the one asked for (or the default one), unless it shows a card
   * contactless that another reader shows by contact — then that one, since only the contact interface
   * has the holder's keys and PIN. Undefined stays undefined when no redirection applies.
   */
  async contactReader(reader: string | undefined, signal?: AbortSignal): Promise<string | undefined> {
    const readers = this.#sessions.readers();
    const chosen = reader === undefined ? this.#sessions.resolve(undefined) : readers.find((r) => r.name === reader);
    if (!chosen || interfaceOf(chosen) !== 'contactless') return reader;
    const serial = await this.serialOf(chosen, signal);
    if (serial === undefined) return reader;
    for (const other of readers) {
      if (other.name === chosen.name || interfaceOf(other) !== 'contact') continue;
      if ((await this.serialOf(other, signal)) === serial) return other.name;
    }
    return reader;
  }
}
