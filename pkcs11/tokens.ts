/**
 * One token per card insertion: a generation number per reader that changes whenever its card does,
 * and the token built from the card once per generation (public data from the cache when the card was
 * seen before: EF.SN.ICC and EF_ACTUA only).
 */
import type { CardCache } from '../cards/public-data.js';
import { readPublicData } from '../cards/public-data.js';
import { CardAbsentError } from '../apdu/pcsc/errors.js';
import { interfaceOf, type CardEvent, type CardSessions } from '../cards/session.js';
import { Pkcs11Error } from './ckr.js';
import { buildToken, tokenField, type Token } from './token.js';
import type { Field } from './wire.js';

export class Tokens {
  readonly #sessions: CardSessions;
  readonly #cache: CardCache;
  #counter = 0;
  readonly #generations = new Map<string, number>();
  readonly #tokens = new Map<string, { generation: number; token: Promise<Token> }>();
  readonly #onEvent = (e: CardEvent): void => {
    if (e.type === 'card.inserted' || e.type === 'card.removed') this.#bump(e.reader);
    if (e.type === 'readers.changed') {
      for (const name of this.#generations.keys()) if (!e.readers.some((r) => r.name === name)) this.#bump(name);
    }
  };

  constructor(sessions: CardSessions, cache: CardCache) {
    this.#sessions = sessions;
    this.#cache = cache;
    sessions.on('event', this.#onEvent);
  }

  close(): void {
    this.#sessions.off('event', this.#onEvent);
  }

  #bump(reader: string): void {
    this.#generations.set(reader, ++this.#counter);
    this.#tokens.delete(reader);
  }

  /** The reader's current generation (a reader first seen gets one). */
  generation(reader: string): number {
    let g = this.#generations.get(reader);
    if (g === undefined) {
      g = ++this.#counter;
      this.#generations.set(reader, g);
    }
    return g;
  }

  /** Throws CARD_ABSENT (CKR_DEVICE_REMOVED) when the card of that generation is gone. */
  check(reader: string, generation: number): void {
    if (this.#generations.get(reader) !== generation) throw new CardAbsentError(`the card in ${reader} changed`);
  }

  /** The token of the card of that generation, read once. */
  get(reader: string, generation: number, signal?: AbortSignal): Promise<Token> {
    this.check(reader, generation);
    const view = this.#sessions.readers().find((r) => r.name === reader);
    // A token is a CPx card by contact (docs/pkcs11.md): anything else is no token at all.
    if (!view?.cardPresent || interfaceOf(view) !== 'contact') throw new Pkcs11Error('NO_TOKEN', `no CPS card by contact in ${reader}`);
    const known = this.#tokens.get(reader);
    if (known && known.generation === generation) return known.token;
    const token = this.#sessions.run(
      async (card, context) => {
        const data = await readPublicData(card, this.#cache, { signCertificate: true });
        const status = await card.pinStatus();
        return buildToken({
          generation: card.kind.generation,
          data,
          objects: await card.objects(),
          rule: card.pinRule(),
          pinPad: context.pinPad !== undefined,
          status,
        });
      },
      { reader, signal, retryOnReset: true, owner: 'pkcs11', waitWhileHeld: true },
    );
    this.#tokens.set(reader, { generation, token });
    // A failed read is not remembered: the next TOKEN reads the card again.
    token.catch(() => {
      if (this.#tokens.get(reader)?.token === token) this.#tokens.delete(reader);
    });
    return token;
  }

  /** The PIN counter as a VERIFY just told it. */
  setTries(reader: string, generation: number, triesLeft: number, blocked: boolean): void {
    const known = this.#tokens.get(reader);
    if (!known || known.generation !== generation) return;
    void known.token.then((t) => {
      t.triesLeft = triesLeft;
      t.blocked = blocked;
    }, () => undefined);
  }

  field(token: Token, generation: number): Field {
    return tokenField(token, generation);
  }
}
