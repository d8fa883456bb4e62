/**
 * One card session per reader: the single code path through which the daemon and the CLI reach a
 * card, over the real PC/SC stack or the in-process virtual card alike.
 *
 * - Jobs on a reader run one at a time, in order, with round-robin between owners (origins), so that
 *   one page cannot starve another; the queue is bounded.
 * - Every job can be cancelled by an AbortSignal (socket closed, PIN window closed, card removed,
 *   daemon stopping) and ends at its timeout; a cancelled job stops at the next APDU boundary.
 * - A job that failed half-way (cancelled, timed out, hung APDU, card error) leaves the card reset, so
 *   that no half-done sequence (MSE set, PIN verified) survives it, and the next job starts on a fresh
 *   connection.
 * - `exclusive` jobs (PIN verification and the operation it unlocks) hold the card so that no other PC/SC
 *   client can interleave a command (the `pcsclite` binding has no SCardBeginTransaction: an exclusive
 *   connection is the same guarantee, docs/driver.md).
 */
import { EventEmitter } from 'node:events';
import type { ApduTransport } from '../apdu/channel.js';
import { CpsdError } from '../core/errors.js';
import { fromHex } from '../core/bytes.js';
import { CardAbsentError, CardBusyError, CardResetError, ReaderNotFoundError } from '../apdu/pcsc/errors.js';
import { matchAtr, openCard } from './atr-table.js';
import { CardTimeoutError, UserCancelledError, type CpsCard } from './card.js';

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

/** One connection to the card of a reader, for one job. */
export interface CardLink {
  readonly atr: Uint8Array;
  readonly transport: ApduTransport;
  readonly pinPad: PinPad | undefined;
  close(disposition: 'leave' | 'reset'): Promise<void>;
}

/** Where links come from: the PC/SC service, or the virtual card in process. */
export interface CardBackend {
  readers(): ReaderView[];
  /** Why there is no reader at all, when the service itself is gone. */
  unavailable(): CpsdError | undefined;
  link(reader: string, options: { exclusive: boolean }): Promise<CardLink>;
  subscribe(listener: (event: CardEvent) => void): () => void;
  close(): Promise<void>;
}

export interface JobContext {
  reader: string;
  pinPad: PinPad | undefined;
  /** Aborted when the job must stop (its caller went away, the card was removed, the timeout). */
  signal: AbortSignal;
}

export type CardJob<T> = (card: CpsCard, context: JobContext) => Promise<T>;

export interface JobOptions {
  /** A reader name, or the first reader holding a card. */
  reader?: string | undefined;
  signal?: AbortSignal | undefined;
  /** What happens to the card after a job that succeeded; a failed job always resets it. */
  after?: 'leave' | 'reset';
  /** No other PC/SC client may send a command between this job's APDUs. */
  exclusive?: boolean;
  /** Read-only jobs run again once when another application resets the card under them. */
  retryOnReset?: boolean;
  /** Fairness key (the origin): jobs of different owners take turns. */
  owner?: string;
  /** Overrides the session's operation timeout for this job (a PIN-pad entry waits for the holder). */
  timeoutMs?: number;
  /**
   * A shared job that waits (as exclusive jobs do, `exclusiveWaitMs`) while another client holds the card
   * exclusively, instead of failing at once: a PKCS#11 token read, which pcscd may refuse for a moment after
   * a process died with the card in its transaction.
   */
  waitWhileHeld?: boolean;
}

export interface SessionOptions {
  /** Per job, from its start on the card. Default 30 s (the daemon's `operationTimeoutMs`). */
  operationTimeoutMs?: number;
  /** Jobs waiting per reader before BUSY. Default 128. */
  maxQueued?: number;
  /** Jobs waiting per owner and reader before BUSY. Default 64. */
  maxQueuedPerOwner?: number;
  /** How long an exclusive job retries while another application holds the card. Default 5 s. */
  exclusiveWaitMs?: number;
}

/** The reader's queue is full: the caller may try again later. */
export class QueueFullError extends CpsdError {
  readonly code = 'BUSY';
}

/** The session is closing (daemon stopping). */
export class SessionClosedError extends CpsdError {
  readonly code = 'USER_CANCELLED';
}

interface Pending {
  owner: string;
  start: () => void;
  abort: (reason: unknown) => void;
}

/** The reasons an AbortSignal carries are typed errors; anything else becomes USER_CANCELLED. */
function reasonOf(signal: AbortSignal): CpsdError {
  const reason: unknown = signal.reason;
  return reason instanceof CpsdError ? reason : new UserCancelledError('the operation was cancelled');
}

/** A promise that rejects with the signal's reason when it fires (never resolves). */
function rejection(signal: AbortSignal): Promise<never> {
  const p = new Promise<never>((_, reject) => {
    if (signal.aborted) reject(reasonOf(signal));
    else signal.addEventListener('abort', () => reject(reasonOf(signal)), { once: true });
  });
  p.catch(() => undefined);
  return p;
}

/** The queue and the current job of one reader. */
class ReaderQueue {
  readonly #waiting = new Map<string, Pending[]>();
  #lastOwner: string | undefined;
  #running = false;
  #count = 0;

  constructor(
    private readonly maxQueued: number,
    private readonly maxPerOwner: number,
  ) {}

  get idle(): boolean {
    return !this.#running && this.#count === 0;
  }

  /** Resolves when it is this job's turn; the returned function hands the reader to the next job. */
  turn(owner: string, signal: AbortSignal | undefined): Promise<() => void> {
    if (signal?.aborted) return Promise.reject(reasonOf(signal));
    const list = this.#waiting.get(owner) ?? [];
    if (this.#count >= this.maxQueued || list.length >= this.maxPerOwner) {
      return Promise.reject(new QueueFullError(`too many operations waiting for this reader (${this.#count})`));
    }
    return new Promise((resolve, reject) => {
      const onAbort = (): void => {
        const queue = this.#waiting.get(owner);
        const i = queue?.indexOf(pending) ?? -1;
        if (queue && i >= 0) {
          queue.splice(i, 1);
          if (queue.length === 0) this.#waiting.delete(owner);
          this.#count--;
        }
        reject(reasonOf(signal as AbortSignal));
      };
      const pending: Pending = {
        owner,
        start: () => {
          signal?.removeEventListener('abort', onAbort);
          resolve(() => this.#next());
        },
        abort: (reason) => {
          signal?.removeEventListener('abort', onAbort);
          reject(reason);
        },
      };
      signal?.addEventListener('abort', onAbort, { once: true });
      list.push(pending);
      this.#waiting.set(owner, list);
      this.#count++;
      if (!this.#running) this.#next();
    });
  }

  /** Abandons every waiting job (session closing). */
  drain(reason: CpsdError): void {
    for (const list of this.#waiting.values()) for (const p of list) p.abort(reason);
    this.#waiting.clear();
    this.#count = 0;
  }

  #next(): void {
    // Round-robin: the first owner in line other than the one just served, which goes to the back.
    const owners = [...this.#waiting.keys()];
    const owner = owners.find((o) => o !== this.#lastOwner) ?? owners[0];
    const list = owner === undefined ? undefined : this.#waiting.get(owner);
    if (owner === undefined || !list) {
      this.#running = false;
      return;
    }
    this.#lastOwner = owner;
    const pending = list.shift() as Pending;
    this.#waiting.delete(owner);
    if (list.length > 0) this.#waiting.set(owner, list);
    this.#count--;
    this.#running = true;
    pending.start();
  }
}

/** What the card in a reader is, from its ATR row: 'contact', 'contactless', or undefined (no CPx card). */
export function interfaceOf(reader: ReaderView): 'contact' | 'contactless' | undefined {
  return reader.cardPresent && reader.atr ? matchAtr(fromHex(reader.atr))?.kind?.interface : undefined;
}

/**
 * Without a reader name: the first reader holding a CPx card by contact (a dual-interface reader shows the
 * same card contactless too, and only the contact interface has the holder's keys), then any CPx card,
 * then any card, then the first reader; cards that another application holds exclusively come last.
 */
function defaultReader(readers: readonly ReaderView[], busy: ReadonlySet<string>): ReaderView | undefined {
  // A card another application holds exclusively is passed over while another CPx card is free.
  const free = (r: ReaderView): boolean => !busy.has(r.name);
  return (
    readers.find((r) => interfaceOf(r) === 'contact' && free(r)) ??
    readers.find((r) => interfaceOf(r) !== undefined && free(r)) ??
    readers.find((r) => interfaceOf(r) === 'contact') ??
    readers.find((r) => interfaceOf(r) !== undefined) ??
    readers.find((r) => r.cardPresent) ??
    readers[0]
  );
}

/** Internal: the connection was refused because another application holds the card (the cause). */
class HeldElsewhereError extends Error {
  readonly reader: string;
  override readonly cause: CardBusyError;

  constructor(reader: string, cause: CardBusyError) {
    super(cause.message);
    this.reader = reader;
    this.cause = cause;
  }
}

export class CardSessions extends EventEmitter {
  readonly #backend: CardBackend;
  readonly #timeoutMs: number;
  readonly #maxQueued: number;
  readonly #maxPerOwner: number;
  readonly #exclusiveWaitMs: number;
  readonly #queues = new Map<string, ReaderQueue>();
  /** Running jobs per reader: aborted when the card leaves or the session closes. */
  readonly #running = new Map<string, Set<AbortController>>();
  /** Readers where one of our jobs holds the card exclusively (their EXCLUSIVE state is ours). */
  readonly #ours = new Map<string, number>();
  readonly #unsubscribe: () => void;
  /** Readers whose card keeps its verified PIN for an application's login (count of holders). */
  readonly #verifiedHolds = new Map<string, number>();
  #closed = false;

  constructor(backend: CardBackend, options: SessionOptions = {}) {
    super();
    this.#backend = backend;
    this.#timeoutMs = options.operationTimeoutMs ?? 30_000;
    this.#maxQueued = options.maxQueued ?? 128;
    this.#maxPerOwner = options.maxQueuedPerOwner ?? 64;
    this.#exclusiveWaitMs = options.exclusiveWaitMs ?? 5000;
    this.#unsubscribe = backend.subscribe((event) => {
      if (event.type === 'card.removed') {
        for (const c of this.#running.get(event.reader) ?? []) c.abort(new CardAbsentError(`the card was removed from ${event.reader}`));
      }
      this.emit('event', event);
    });
  }

  readers(): ReaderView[] {
    return this.#backend.readers();
  }


  /** Why no card can be reached at all (the PC/SC service is gone), or undefined. */
  unavailable(): CpsdError | undefined {
    return this.#backend.unavailable();
  }

  /** Runs `job` on the card of a reader, in its turn; see JobOptions. */
  async run<T>(job: CardJob<T>, options: JobOptions = {}): Promise<T> {
    const busy = new Set<string>();
    let reset = false;
    for (;;) {
      try {
        return await this.#runOnce(job, options, busy);
      } catch (error) {
        if (options.retryOnReset && !reset && error instanceof CardResetError) {
          reset = true;
          continue;
        }
        // No reader named, and another application holds that card exclusively: the next CPx card, if any.
        if (!(error instanceof HeldElsewhereError)) throw error;
        if (options.reader !== undefined) throw error.cause;
        busy.add(error.reader);
        if (this.#pick(undefined, busy).name === error.reader) throw error.cause;
      }
    }
  }

  /**
   * Whether another application holds the card of `reader` exclusively now: a SHARED connection is
   * refused (no APDU is sent). PC/SC's EXCLUSIVE reader state is not announced by a status change, so it
   * is asked, not watched.
   */
  async heldElsewhere(reader: string): Promise<boolean> {
    if (this.#ours.has(reader)) return false;
    try {
      const link = await this.#backend.link(reader, { exclusive: false });
      await link.close('leave');
      return false;
    } catch (error) {
      return error instanceof CardBusyError;
    }
  }

  async #runOnce<T>(job: CardJob<T>, options: JobOptions, busy: ReadonlySet<string> = new Set()): Promise<T> {
    if (this.#closed) throw new SessionClosedError('the card session is closed');
    const reader = this.#pick(options.reader, busy).name;
    let queue = this.#queues.get(reader);
    if (!queue) {
      queue = new ReaderQueue(this.#maxQueued, this.#maxPerOwner);
      this.#queues.set(reader, queue);
    }
    const release = await queue.turn(options.owner ?? '', options.signal);
    const controller = new AbortController();
    const running = this.#running.get(reader) ?? new Set<AbortController>();
    this.#running.set(reader, running);
    running.add(controller);
    const onAbort = (): void => controller.abort(reasonOf(options.signal as AbortSignal));
    options.signal?.addEventListener('abort', onAbort, { once: true });
    if (options.signal?.aborted) onAbort();
    const timeoutMs = options.timeoutMs ?? this.#timeoutMs;
    const timer = setTimeout(() => controller.abort(new CardTimeoutError(`the card did not finish within ${timeoutMs} ms`)), timeoutMs);
    // The reader is handed on only once the card is really free again (a hung APDU back, the card
    // reset), but the caller is answered as soon as the job is cancelled or timed out.
    const work = (async () => {
      try {
        if (controller.signal.aborted) throw reasonOf(controller.signal);
        this.#pick(reader, busy); // the card may have left while the job waited for its turn
        return await this.#onLink(reader, job, options, controller.signal, timeoutMs);
      } finally {
        clearTimeout(timer);
        options.signal?.removeEventListener('abort', onAbort);
        running.delete(controller);
        release();
        if (queue.idle && running.size === 0 && this.#queues.get(reader) === queue) this.#queues.delete(reader);
      }
    })();
    return Promise.race([work, rejection(controller.signal)]);
  }

  async #onLink<T>(reader: string, job: CardJob<T>, options: JobOptions, signal: AbortSignal, timeoutMs: number): Promise<T> {
    const link = await this.#connect(reader, options.exclusive ?? false, options.waitWhileHeld ?? false, signal).catch((error: unknown) => {
      throw error instanceof CardBusyError ? new HeldElsewhereError(reader, error) : error;
    });
    if (options.exclusive) this.#ours.set(reader, (this.#ours.get(reader) ?? 0) + 1);
    let inFlight: Promise<unknown> | undefined;
    const aborted = rejection(signal);
    // Every APDU checks the signal first, and gives up waiting for the card when it fires.
    const transport: ApduTransport = {
      transmit: (apdu) => {
        if (signal.aborted) return Promise.reject(reasonOf(signal));
        const sent = link.transport.transmit(apdu);
        inFlight = sent.catch(() => undefined);
        return Promise.race([sent, aborted]);
      },
    };
    const pinPad: PinPad | undefined = link.pinPad
      ? (template) => {
          const typed = (link.pinPad as PinPad)(template);
          inFlight = typed.catch(() => undefined);
          return Promise.race([typed, aborted]);
        }
      : undefined;
    let ok = false;
    try {
      const card = openCard(transport, link.atr, { timeoutMs });
      const result = await Promise.race([job(card, { reader, pinPad, signal }), aborted]);
      ok = true;
      return result;
    } finally {
      // A command still at the card must end before the link can be reset and reused.
      if (inFlight) await inFlight;
      // A card an application holds a login on (PKCS#11) is not reset under it by another job that succeeded.
      const after = ok ? (options.after === 'reset' && this.#verifiedHolds.has(reader) ? 'leave' : (options.after ?? 'leave')) : 'reset';
      await link.close(after).catch(() => undefined);
      if (options.exclusive) {
        const n = (this.#ours.get(reader) ?? 1) - 1;
        if (n > 0) this.#ours.set(reader, n);
        else this.#ours.delete(reader);
      }
    }
  }

  /** Connects; an exclusive job waits (within its limits) while another application uses the card. */
  async #connect(reader: string, exclusive: boolean, wait: boolean, signal: AbortSignal): Promise<CardLink> {
    const until = Date.now() + this.#exclusiveWaitMs;
    for (;;) {
      try {
        return await this.#backend.link(reader, { exclusive });
      } catch (error) {
        if (!((exclusive || wait) && error instanceof CardBusyError) || Date.now() > until || signal.aborted) throw error;
        await new Promise((r) => setTimeout(r, 50));
      }
    }
  }

  /**
   * Keeps the card of `reader` verified for an application's login (PKCS#11 C_Login): jobs that succeed
   * leave it as it is instead of resetting it, so a web login in between does not log the application
   * out. A failed job still resets it. Returns the release, which says whether it was the last hold.
   */
  holdVerified(reader: string): () => boolean {
    this.#verifiedHolds.set(reader, (this.#verifiedHolds.get(reader) ?? 0) + 1);
    let released = false;
    return () => {
      if (released) return false;
      released = true;
      const n = (this.#verifiedHolds.get(reader) ?? 1) - 1;
      if (n > 0) this.#verifiedHolds.set(reader, n);
      else this.#verifiedHolds.delete(reader);
      return n <= 0;
    };
  }

  /** The reader a job with this reader name (or none) would run on; throws as run() would. */
  resolve(name: string | undefined): ReaderView {
    return this.#pick(name);
  }

  #pick(name: string | undefined, busy: ReadonlySet<string> = new Set()): ReaderView {
    const readers = this.#backend.readers();
    if (readers.length === 0) {
      const down = this.#backend.unavailable();
      if (down) throw down;
    }
    const reader = name === undefined ? defaultReader(readers, busy) : readers.find((r) => r.name === name);
    if (!reader) throw new ReaderNotFoundError(name === undefined ? 'no smart-card reader' : `no reader named ${JSON.stringify(name)}`);
    if (!reader.cardPresent) throw new CardAbsentError(`no card in ${reader.name}`);
    return reader;
  }

  /** Ends every waiting and running job, then closes the backend. */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    const reason = new SessionClosedError('the card session is closing');
    for (const q of this.#queues.values()) q.drain(reason);
    for (const set of this.#running.values()) for (const c of set) c.abort(reason);
    this.#unsubscribe();
    this.removeAllListeners();
    await this.#backend.close();
  }
}

