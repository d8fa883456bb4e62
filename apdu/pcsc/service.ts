import type { PcscError } from './errors.js';
import { PcscUnavailableError, ReaderNotFoundError, toPcscError } from './errors.js';
import { bindingFromEnvironment, contextFactoryFor, DEFAULT_PCSC_BINDING, type PcscBindingName } from './binding.js';
import {
  ReaderStateFlags,
  type ConnectOptions,
  type ContextListener,
  type PcscBackend,
  type PcscConnection,
  type PcscContext,
  type PcscContextFactory,
  type PcscEvent,
  type ReaderInfo,
} from './types.js';

export interface PcscServiceOptions {
  /** Where contexts come from; overrides `binding`. Unit tests pass a fake. */
  factory?: PcscContextFactory;
  /**
   * The native binding (binding.ts); without it `CPSD_PCSC_BINDING`, else the default. The CLI passes
   * the `pcscBinding` setting (daemon/config.ts, where `CPSD_PCSC_BINDING` overrides the files).
   */
  binding?: PcscBindingName;
  /** First delay before re-creating a dead context, doubled up to `maxRetryMs`. */
  initialRetryMs?: number;
  maxRetryMs?: number;
}

interface ReaderRecord {
  info: ReaderInfo;
  /** pcsc-lite's per-reader card event counter (bits 16-31 of the state); -1 before the first state. */
  events: number;
  /** True once the first state of this reader arrived. */
  known: boolean;
}

/**
 * The supervised PC/SC service: owns one binding context at a time, turns the binding's reader
 * states into reader/card events, and when the service dies (pcscd stopped or restarted) drops every
 * reader, throws the context away and re-creates it with backoff until the service is back.
 * It never lets a binding error escape as an exception or an unhandled 'error' event.
 */
export class PcscService implements PcscBackend {
  readonly #factory: PcscContextFactory;
  readonly #binding: PcscBindingName | undefined;
  readonly #initialRetry: number;
  readonly #maxRetry: number;
  readonly #listeners = new Set<(event: PcscEvent) => void>();
  /** Internal observers of any change (for `settled()`), apart from the public events. */
  readonly #waiters = new Set<() => void>();
  readonly #readers = new Map<string, ReaderRecord>();
  #context: PcscContext | undefined;
  #generation = 0;
  #retryDelay: number;
  #retryTimer: NodeJS.Timeout | undefined;
  #up = false;
  /** Whether `service-down` was announced for the current outage (announce each outage once). */
  #downAnnounced = false;
  #lastError: PcscError | undefined;
  #closed = false;

  constructor(options: PcscServiceOptions = {}) {
    if (options.factory) {
      this.#factory = options.factory;
    } else {
      this.#binding = options.binding ?? bindingFromEnvironment() ?? DEFAULT_PCSC_BINDING;
      this.#factory = contextFactoryFor(this.#binding);
    }
    this.#initialRetry = options.initialRetryMs ?? 100;
    this.#maxRetry = options.maxRetryMs ?? 2000;
    this.#retryDelay = this.#initialRetry;
    this.#start();
  }

  get available(): boolean {
    return this.#up;
  }

  /** The native binding in use; undefined with a custom `factory`. */
  get binding(): PcscBindingName | undefined {
    return this.#binding;
  }

  /** Why the service is unavailable, when it is. */
  get lastError(): PcscError | undefined {
    return this.#up ? undefined : this.#lastError;
  }

  readers(): ReaderInfo[] {
    return [...this.#readers.values()].filter((r) => r.known).map((r) => r.info);
  }

  subscribe(listener: (event: PcscEvent) => void): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }

  async connect(reader: string, options: ConnectOptions): Promise<PcscConnection> {
    if (this.#closed) throw new PcscUnavailableError('the PC/SC service object is closed');
    const context = this.#context;
    if (!this.#up || !context) {
      throw this.#lastError ?? new PcscUnavailableError('the PC/SC service is not available');
    }
    if (!this.#readers.has(reader)) {
      throw new ReaderNotFoundError(`no reader named ${JSON.stringify(reader)}`, { pcscCode: 0x80100009 });
    }
    try {
      return await context.connect(reader, options);
    } catch (error) {
      const typed = toPcscError(error, 'SCardConnect');
      if (typed instanceof PcscUnavailableError) this.#fail(this.#generation, typed);
      throw typed;
    }
  }

  /**
   * Resolves once the service is up and every reader announced so far has reported its first state,
   * with no new reader for `quietMs`; rejects with the last PC/SC error after `timeoutMs`.
   * This is what a one-shot caller (the CLI) waits for before reading `readers()`.
   */
  settled(timeoutMs = 3000, quietMs = 150): Promise<void> {
    return new Promise((resolve, reject) => {
      let quiet: NodeJS.Timeout | undefined;
      const check = (): void => {
        clearTimeout(quiet);
        if (!this.#up || [...this.#readers.values()].some((r) => !r.known)) return;
        quiet = setTimeout(done, quietMs);
      };
      const done = (): void => {
        cleanup();
        resolve();
      };
      const timer = setTimeout(() => {
        cleanup();
        reject(this.#lastError ?? new PcscUnavailableError(`PC/SC did not settle within ${timeoutMs} ms`));
      }, timeoutMs);
      this.#waiters.add(check);
      const cleanup = (): void => {
        clearTimeout(timer);
        clearTimeout(quiet);
        this.#waiters.delete(check);
      };
      check();
    });
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    clearTimeout(this.#retryTimer);
    this.#generation++;
    this.#context?.close();
    this.#context = undefined;
    this.#up = false;
    this.#readers.clear();
    this.#listeners.clear();
  }

  #emit(event: PcscEvent): void {
    for (const listener of [...this.#listeners]) {
      try {
        listener(event);
      } catch {
        // A faulty listener must not break the supervision of the others.
      }
    }
    this.#notifyWaiters();
  }

  #notifyWaiters(): void {
    for (const waiter of [...this.#waiters]) waiter();
  }

  #start(): void {
    if (this.#closed) return;
    const generation = ++this.#generation;
    // Events from an older context (closing, or dying late) are ignored.
    const current = (): boolean => generation === this.#generation && !this.#closed;
    const listener: ContextListener = {
      readerAdded: (reader) => {
        if (current()) this.#readerAdded(reader);
      },
      readerRemoved: (reader) => {
        if (current()) this.#readerRemoved(reader);
      },
      readerState: (reader, flags, atr) => {
        if (current()) this.#readerState(reader, flags, atr);
      },
      failed: (error) => this.#fail(generation, error),
    };
    try {
      this.#context = this.#factory(listener);
    } catch (error) {
      this.#context = undefined;
      this.#fail(generation, toPcscError(error, 'SCardEstablishContext'));
      return;
    }
    this.#up = true;
    this.#downAnnounced = false;
    this.#retryDelay = this.#initialRetry;
    this.#lastError = undefined;
    this.#emit({ type: 'service-up' });
  }

  #fail(generation: number, error: PcscError): void {
    if (generation !== this.#generation || this.#closed) return;
    this.#generation++; // invalidate the dead context's late events
    const context = this.#context;
    this.#context = undefined;
    context?.close();
    this.#lastError = error;
    const wasUp = this.#up;
    this.#up = false;
    for (const name of [...this.#readers.keys()]) this.#readerRemoved(name);
    if (wasUp || !this.#downAnnounced) {
      this.#downAnnounced = true;
      this.#emit({ type: 'service-down', error });
    }
    clearTimeout(this.#retryTimer);
    this.#retryTimer = setTimeout(() => this.#start(), this.#retryDelay);
    this.#retryTimer.unref();
    this.#retryDelay = Math.min(this.#retryDelay * 2, this.#maxRetry);
  }

  #readerAdded(name: string): void {
    if (this.#readers.has(name)) return;
    this.#readers.set(name, {
      info: { name, cardPresent: false, atr: new Uint8Array(0), mute: false, inUse: false, exclusive: false },
      events: -1,
      known: false,
    });
    this.#emit({ type: 'reader-added', reader: name });
  }

  #readerRemoved(name: string): void {
    const record = this.#readers.get(name);
    if (!record) return;
    if (record.info.cardPresent) this.#emit({ type: 'card-removed', reader: name });
    this.#readers.delete(name);
    this.#emit({ type: 'reader-removed', reader: name });
  }

  #readerState(name: string, flags: number, atr: Uint8Array): void {
    const record = this.#readers.get(name);
    if (!record) return;
    const present = (flags & ReaderStateFlags.PRESENT) !== 0;
    const mute = present && (flags & ReaderStateFlags.MUTE) !== 0;
    const events = flags >>> 16;
    const before = record.info;
    const firstState = !record.known;
    record.known = true;
    record.info = {
      name,
      cardPresent: present,
      atr: present && !mute ? atr : new Uint8Array(0),
      mute,
      inUse: (flags & ReaderStateFlags.INUSE) !== 0,
      exclusive: (flags & ReaderStateFlags.EXCLUSIVE) !== 0,
    };
    // The binding reports only the latest state, so a quick remove + insert can arrive as
    // "present, then present": pcsc-lite's event counter moving by 2 or more reveals it.
    const missed = record.events >= 0 && ((events - record.events) & 0xffff) >= 2;
    record.events = events;
    if (before.cardPresent && (!present || missed || !sameBytes(before.atr, record.info.atr))) {
      this.#emit({ type: 'card-removed', reader: name });
    }
    if (present && (!before.cardPresent || missed || !sameBytes(before.atr, record.info.atr))) {
      this.#emit({ type: 'card-inserted', reader: name, atr: record.info.atr, mute });
    }
    if (firstState) this.#notifyWaiters();
  }
}

function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  return a.length === b.length && a.every((v, i) => v === b[i]);
}
