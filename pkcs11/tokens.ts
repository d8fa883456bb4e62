/**
 * One token per card insertion: a generation number per reader that changes whenever its card does,
 * and the token built from the card once per generation (public data from the cache when the card was
 * seen before: EF.SN.ICC and EF_ACTUA only).
 *
 * The token is read when the card is inserted (and for a card already there when the daemon starts),
 * not when an application first asks: an application that loads the module the moment the card goes in
 * waits for that one read and gets the complete token (docs/pkcs11.md, "A card just inserted"). The read
 * belongs to the card, not to the application that asked: an application that goes away does not cancel
 * it for the others; only the card leaving (or the daemon stopping) does.
 */
import type { CardCache } from '../cards/public-data.js';
import { readPublicData } from '../cards/public-data.js';
import { CardAbsentError } from '../apdu/pcsc/errors.js';
import { CardTimeoutError, UserCancelledError } from '../cards/card.js';
import { CpsdError } from '../core/errors.js';
import type { Logger } from '../daemon/log.js';
import { interfaceOf, type CardEvent, type CardSessions } from '../cards/session.js';
import { Pkcs11Error } from './ckr.js';
import { buildToken, tokenField, type Token } from './token.js';
import type { Field } from './wire.js';

/**
 * How long a TOKEN request waits for the card's read before a typed error (CARD_TIMEOUT:
 * CKR_DEVICE_ERROR); the read goes on, and the next TOKEN gets it. Below the module's own limit for
 * TOKEN (pkcs11/module/conn.h, TIMEOUT_TOKEN_MS), so that the module always gets an answer.
 */
export const TOKEN_WAIT_MS = 20_000;

/**
 * How long SLOTS waits for the read of a card just inserted, so that a slot shows its token present
 * once the token is complete. Below the module's limit for SLOTS (TIMEOUT_OTHER_MS, 10 s); a read still
 * going after it: the slot shows the token present and TOKEN waits for the rest (TOKEN_WAIT_MS).
 */
export const SLOTS_WAIT_MS = 8_000;

export interface TokensOptions {
  /** TOKEN_WAIT_MS unless given (tests). */
  tokenWaitMs?: number | undefined;
  /** SLOTS_WAIT_MS unless given (tests). */
  slotsWaitMs?: number | undefined;
  /** Where each read of a token is told (`pkcs11-token-read`, `pkcs11-token-read-failed`). */
  log?: Logger | undefined;
}

interface Read {
  generation: number;
  token: Promise<Token>;
  settled: boolean;
  controller: AbortController;
}

export class Tokens {
  readonly #sessions: CardSessions;
  readonly #cache: CardCache;
  readonly #tokenWaitMs: number;
  readonly #log: Logger | undefined;
  /** How long SLOTS waits for the read of a card just inserted. */
  readonly slotsWaitMs: number;
  #counter = 0;
  #closed = false;
  readonly #generations = new Map<string, number>();
  readonly #reads = new Map<string, Read>();
  readonly #onEvent = (e: CardEvent): void => {
    if (e.type === 'card.inserted' || e.type === 'card.removed') this.#bump(e.reader);
    if (e.type === 'card.inserted') this.#prefetch(e.reader);
    if (e.type === 'readers.changed') {
      for (const name of this.#generations.keys()) if (!e.readers.some((r) => r.name === name)) this.#bump(name);
    }
  };

  constructor(sessions: CardSessions, cache: CardCache, options: TokensOptions = {}) {
    this.#sessions = sessions;
    this.#cache = cache;
    this.#tokenWaitMs = options.tokenWaitMs ?? TOKEN_WAIT_MS;
    this.slotsWaitMs = options.slotsWaitMs ?? SLOTS_WAIT_MS;
    this.#log = options.log;
    sessions.on('event', this.#onEvent);
    // Cards already in their reader when the daemon starts are read now, as if just inserted.
    for (const reader of sessions.readers()) this.#prefetch(reader.name);
  }

  close(): void {
    this.#closed = true;
    this.#sessions.off('event', this.#onEvent);
    for (const read of this.#reads.values()) read.controller.abort(new UserCancelledError('the daemon is stopping'));
    this.#reads.clear();
  }

  #bump(reader: string): void {
    this.#generations.set(reader, ++this.#counter);
    this.#reads.get(reader)?.controller.abort(new CardAbsentError(`the card in ${reader} changed`));
    this.#reads.delete(reader);
  }

  /** The token of a CPx card by contact just seen in `reader`, read now (errors wait for TOKEN to tell them). */
  #prefetch(reader: string): void {
    if (this.#closed || !this.#tokenCard(reader)) return;
    this.#read(reader, this.generation(reader)).token.catch(() => undefined);
  }

  /** Whether the reader holds a card that is a token: a CPx card by contact (docs/pkcs11.md). */
  #tokenCard(reader: string): boolean {
    const view = this.#sessions.readers().find((r) => r.name === reader);
    return view !== undefined && view.cardPresent && interfaceOf(view) === 'contact';
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

  /**
   * Waits (at most `timeoutMs`) while the token of the reader's current card is being read, so that
   * SLOTS announces a token once it can be served whole. Never starts a read, never fails.
   */
  async settled(reader: string, timeoutMs = this.slotsWaitMs): Promise<void> {
    const read = this.#reads.get(reader);
    if (!read || read.settled || read.generation !== this.#generations.get(reader)) return;
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([
      read.token.then(() => undefined, () => undefined),
      new Promise<void>((resolve) => (timer = setTimeout(resolve, timeoutMs))),
    ]);
    clearTimeout(timer);
  }

  /**
   * The token of the card of that generation, read once: the caller waits for the card's read (at most
   * TOKEN_WAIT_MS, then CARD_TIMEOUT while the read goes on), and its `signal` ends only its own wait.
   */
  async get(reader: string, generation: number, signal?: AbortSignal): Promise<Token> {
    this.check(reader, generation);
    // A token is a CPx card by contact (docs/pkcs11.md): anything else is no token at all.
    if (!this.#tokenCard(reader)) throw new Pkcs11Error('NO_TOKEN', `no CPS card by contact in ${reader}`);
    const read = this.#read(reader, generation);
    if (read.settled) return read.token;
    let timer: NodeJS.Timeout | undefined;
    let onAbort: (() => void) | undefined;
    try {
      return await Promise.race([
        read.token,
        new Promise<never>((_, reject) => {
          const ms = this.#tokenWaitMs;
          timer = setTimeout(() => reject(new CardTimeoutError(`the card in ${reader} was not read within ${ms} ms (the read goes on)`)), ms);
          if (!signal) return;
          onAbort = () => reject(signal.reason instanceof Error ? signal.reason : new UserCancelledError('the request was cancelled'));
          if (signal.aborted) onAbort();
          else signal.addEventListener('abort', onAbort, { once: true });
        }),
      ]);
    } finally {
      clearTimeout(timer);
      if (onAbort) signal?.removeEventListener('abort', onAbort);
    }
  }

  /** The read of the card of that generation: the one under way or done, else a new one. */
  #read(reader: string, generation: number): Read {
    const known = this.#reads.get(reader);
    if (known && known.generation === generation) return known;
    const controller = new AbortController();
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
      { reader, signal: controller.signal, retryOnReset: true, owner: 'pkcs11', waitWhileHeld: true },
    );
    const read: Read = { generation, token, settled: false, controller };
    this.#reads.set(reader, read);
    const started = Date.now();
    token.then(
      () => {
        read.settled = true;
        this.#log?.info('pkcs11-token-read', { reader, ms: Date.now() - started });
      },
      (error: unknown) => {
        read.settled = true;
        this.#log?.info('pkcs11-token-read-failed', { reader, ms: Date.now() - started, code: error instanceof CpsdError ? error.code : 'INTERNAL' });
        // A failed read is not remembered: the next TOKEN reads the card again.
        if (this.#reads.get(reader) === read) this.#reads.delete(reader);
      },
    );
    return read;
  }

  /** The PIN counter as a VERIFY just told it. */
  setTries(reader: string, generation: number, triesLeft: number, blocked: boolean): void {
    const known = this.#reads.get(reader);
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
