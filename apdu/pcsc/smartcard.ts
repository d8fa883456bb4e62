import { createRequire } from 'node:module';
import {
  CardAbsentError,
  CardBusyError,
  CardResetError,
  PcscError,
  PcscUnavailableError,
  UnsupportedFeatureError,
  isServiceFailure,
  notConnected,
  pcscError,
  safely,
} from './errors.js';
import type {
  ConnectOptions,
  ContextListener,
  Disposition,
  PcscConnection,
  PcscContext,
  PcscContextFactory,
  Protocol,
  ShareMode,
} from './types.js';

// The slice of the `smartcard` native binding (N-API) that cpsd uses, declared here so that the addon
// loads lazily and unit tests can stand in for it.
export interface SmartcardReaderState {
  readonly name: string;
  readonly state: number;
  readonly atr: Buffer | null;
}
export interface SmartcardCard {
  readonly protocol: number;
  readonly connected: boolean;
  transmit(command: Buffer, options?: { maxRecvLength?: number }): Promise<Buffer>;
  control(code: number, data?: Buffer): Promise<Buffer>;
  /** Synchronous SCardDisconnect: blocks the event loop for as long as pcscd acts on the card. */
  disconnect(disposition?: number): void;
  reconnect(shareMode: number, protocols: number, initialization: number): Promise<number>;
}
export interface SmartcardReader {
  readonly name: string;
  connect(shareMode: number, protocols: number): Promise<SmartcardCard>;
}
export interface SmartcardNativeContext {
  /** Synchronous SCardListReaders (and a 0-timeout SCardGetStatusChange). */
  listReaders(): SmartcardReader[];
  /** SCardGetStatusChange on a libuv worker: null when cancelled, [] on timeout. */
  waitForChange(readers: { name: string; state: number }[], timeoutMs: number): Promise<SmartcardReaderState[] | null>;
  cancel(): void;
  close(): void;
}
export interface SmartcardModule {
  /** Synchronous SCardEstablishContext; throws "PC/SC service not running" without pcscd. */
  Context: new () => SmartcardNativeContext;
  SCARD_SHARE_EXCLUSIVE: number;
  SCARD_SHARE_SHARED: number;
  SCARD_SHARE_DIRECT: number;
  SCARD_PROTOCOL_T0: number;
  SCARD_PROTOCOL_T1: number;
  SCARD_PROTOCOL_RAW: number;
  SCARD_LEAVE_CARD: number;
  SCARD_RESET_CARD: number;
  SCARD_UNPOWER_CARD: number;
  SCARD_EJECT_CARD: number;
}

const PNP = '\\\\?PnP?\\Notification';
const STATE_CHANGED = 0x0002;
const STATE_UNKNOWN = 0x0004;
const DEFAULT_MAX_RESPONSE = 65538; // extended Le (65536) plus SW1 SW2
/** Bound on one SCardGetStatusChange, so a worker thread is never held for ever if a cancel is lost. */
const WAIT_MS = 2000;
/** Consecutive unexpected wait failures (not a dead service) before the context is declared dead. */
const MAX_WAIT_ERRORS = 5;

/**
 * The binding's errors are plain `Error`s whose message is its text for the PC/SC return code
 * (`GetPCSCErrorString` in its src/pcsc_errors.h); the code itself is lost. Mapped back here.
 */
export const SMARTCARD_MESSAGES: ReadonlyMap<string, number> = new Map([
  ['Operation cancelled', 0x80100002],
  ['Cannot dispose handle', 0x8010000e],
  ['Insufficient buffer', 0x80100008],
  ['Invalid ATR', 0x80100015],
  ['Invalid handle', 0x80100003],
  ['Invalid parameter', 0x80100004],
  ['Invalid target', 0x80100005],
  ['Invalid value', 0x80100011],
  ['Not enough memory', 0x80100006],
  ['PC/SC service not running', 0x8010001d],
  ['No smart card present', 0x8010000c],
  ['Reader not ready', 0x80100010],
  ['Transaction failed', 0x80100016],
  ['PCI struct too small', 0x80100019],
  ['Protocol mismatch', 0x8010000f],
  ['Reader unavailable', 0x80100017],
  ['PC/SC service stopped', 0x8010001e],
  ['Sharing violation', 0x8010000b],
  ['System cancelled operation', 0x80100012],
  ['Operation timed out', 0x8010000a],
  ['Unknown card type', 0x8010000d],
  ['Unknown reader', 0x80100009],
  ['No readers available', 0x8010002e],
  ['Communication error', 0x80100013],
  ['Internal error', 0x80100001],
  ['Card was removed', 0x80100069],
  ['Card was reset', 0x80100068],
  ['Card is unpowered', 0x80100067],
  ['Card is unresponsive', 0x80100066],
  ['Card is not supported', 0x80100065],
]);

/** Turns whatever the smartcard binding threw or rejected with into a typed error. */
export function smartcardError(error: unknown, operation: string): PcscError {
  if (error instanceof PcscError) return error;
  const message = error instanceof Error ? error.message : String(error);
  const code = SMARTCARD_MESSAGES.get(message);
  if (code !== undefined) return pcscError(code, operation, error);
  if (message === 'Card is not connected') return new PcscError(`${operation}: the connection is closed`, { operation, cause: error });
  if (message === 'Context is not valid') return new PcscUnavailableError(`${operation}: the PC/SC context is closed`, { operation, cause: error });
  if (message === 'Unknown PC/SC error' && operation === 'SCardControl') {
    // The binding names every code SCardControl returns on pcsc-lite but SCARD_E_UNSUPPORTED_FEATURE
    // (0x8010001F, what a driver without IFDHControl answers, e.g. vpcd): that is the one it hides.
    return new UnsupportedFeatureError(`${operation}: the reader driver does not support this control code (the binding gave no PC/SC code)`, {
      operation,
      cause: error,
    });
  }
  return new PcscError(`${operation}: ${message}`, { operation, cause: error });
}

let loaded: SmartcardModule | undefined;
function loadModule(): SmartcardModule {
  // Loaded lazily so that importing cpsd never requires the native addon (the simulator path does not).
  loaded ??= createRequire(import.meta.url)('smartcard') as SmartcardModule;
  return loaded;
}

/**
 * Context factory backed by the `smartcard` binding (N-API; pcsc-lite on Linux/macOS, WinSCard on
 * Windows). `load` stands in for the addon in unit tests.
 */
export function smartcardContextFactoryWith(load: () => SmartcardModule): PcscContextFactory {
  return (listener) => new SmartcardContext(load(), listener);
}

export const smartcardContextFactory: PcscContextFactory = smartcardContextFactoryWith(loadModule);

/**
 * One supervised context on the smartcard binding. pcsc-lite serialises the calls made on one context
 * (and on the card handles it opened) with one mutex, and several of the binding's calls are synchronous
 * on the main thread, so the context is split:
 * - one native context only waits for reader changes (SCardGetStatusChange on a libuv worker, the
 *   reader list read between two waits), and
 * - each connection gets a native context of its own, so that nothing a connection does can make the
 *   event loop wait for another connection's APDU or for the pending wait.
 * Readers' states (with pcsc-lite's event counter) go to the supervisor as pcsclite's 'status' events
 * do; a dead service (the wait or the reader list failing with a service error) is `failed`.
 */
class SmartcardContext implements PcscContext {
  readonly #module: SmartcardModule;
  readonly #listener: ContextListener;
  readonly #watch: SmartcardNativeContext;
  /** Last state of each known reader (CHANGED cleared), passed back to the next wait. */
  readonly #states = new Map<string, number>();
  #pnpState = 0;
  readonly #connections = new Map<string, SmartcardConnection>();
  /** Connects under way per reader: a second one is busy, as with pcsclite. */
  readonly #connecting = new Set<string>();
  /** Disconnects still in flight per reader: a new connect waits for them instead of failing busy. */
  readonly #releasing = new Map<string, Promise<void>>();
  #closed = false;

  constructor(module: SmartcardModule, listener: ContextListener) {
    this.#module = module;
    this.#listener = listener;
    try {
      this.#watch = new module.Context();
    } catch (error) {
      throw smartcardError(error, 'SCardEstablishContext');
    }
    // From the next turn, as pcsclite does: the supervisor announces service-up before any reader.
    setImmediate(() => void this.#run());
  }

  async #run(): Promise<void> {
    let errors = 0;
    try {
      this.#refreshReaders();
      while (!this.#closed) {
        const query = [...this.#states].map(([name, state]) => ({ name, state }));
        query.push({ name: PNP, state: this.#pnpState });
        let changes: SmartcardReaderState[] | null;
        try {
          changes = await this.#watch.waitForChange(query, WAIT_MS);
          errors = 0;
        } catch (error) {
          const typed = smartcardError(error, 'SCardGetStatusChange');
          if (isServiceFailure(typed) || ++errors >= MAX_WAIT_ERRORS) throw typed;
          // e.g. a reader that vanished between the list and the wait: list again, then wait again.
          await new Promise((resolve) => setTimeout(resolve, 100));
          if (!this.#closed) this.#refreshReaders();
          continue;
        }
        if (this.#closed) break;
        if (changes === null || changes.length === 0) continue; // cancelled, or nothing within WAIT_MS
        let relist = false;
        for (const change of changes) {
          if ((change.state & STATE_CHANGED) === 0) continue;
          const state = (change.state & ~STATE_CHANGED) >>> 0;
          if (change.name === PNP) {
            this.#pnpState = state;
            relist = true;
          } else if (!this.#states.has(change.name)) {
            continue;
          } else if ((state & STATE_UNKNOWN) !== 0) {
            relist = true; // the reader is gone: the list below says so
          } else {
            this.#states.set(change.name, state);
            this.#listener.readerState(change.name, state, change.atr ? new Uint8Array(change.atr) : new Uint8Array(0));
          }
        }
        if (relist) this.#refreshReaders();
      }
    } catch (error) {
      if (!this.#closed) this.#listener.failed(smartcardError(error, 'SCardGetStatusChange'));
    } finally {
      // No wait is pending on it any more: releasing it now cannot block on its mutex.
      safely(() => this.#watch.close());
    }
  }

  /** Only between two waits (the wait holds the watch context's mutex); throws when the service is dead. */
  #refreshReaders(): void {
    const names = new Set(this.#watch.listReaders().map((r) => r.name));
    for (const name of [...this.#states.keys()]) {
      if (names.has(name)) continue;
      this.#states.delete(name);
      this.#connections.get(name)?.markDead();
      this.#listener.readerRemoved(name);
    }
    for (const name of names) {
      if (this.#states.has(name)) continue;
      this.#states.set(name, 0); // SCARD_STATE_UNAWARE: the next wait returns its state at once
      this.#listener.readerAdded(name);
    }
  }

  async connect(readerName: string, options: ConnectOptions): Promise<PcscConnection> {
    await this.#releasing.get(readerName);
    if (this.#closed) throw new PcscUnavailableError('SCardConnect: the PC/SC context is closed', { operation: 'SCardConnect' });
    if (!this.#states.has(readerName)) throw pcscError(0x80100009, 'SCardConnect');
    // One connection per reader and per context, as with pcsclite (whose reader object holds one handle):
    // callers rely on a second connect being refused busy rather than sharing the card with themselves.
    if (this.#connections.get(readerName)?.alive || this.#connecting.has(readerName)) {
      throw new CardBusyError(`this process already holds a connection on ${readerName}`);
    }
    const m = this.#module;
    const share = { exclusive: m.SCARD_SHARE_EXCLUSIVE, shared: m.SCARD_SHARE_SHARED, direct: m.SCARD_SHARE_DIRECT }[options.share];
    const protocols = options.share === 'direct' ? [] : (options.protocols ?? ['T0', 'T1']);
    const mask = protocols.reduce((acc, p) => acc | { T0: m.SCARD_PROTOCOL_T0, T1: m.SCARD_PROTOCOL_T1, RAW: m.SCARD_PROTOCOL_RAW }[p], 0);
    this.#connecting.add(readerName);
    let native: SmartcardNativeContext | undefined;
    try {
      native = new m.Context();
      const reader = native.listReaders().find((r) => r.name === readerName);
      if (!reader) throw pcscError(0x80100009, 'SCardConnect');
      const card = await reader.connect(share, mask);
      const connection = new SmartcardConnection(m, native, card, readerName, options.share, mask, (done) => {
        if (this.#connections.get(readerName) === connection) this.#connections.delete(readerName);
        const pending = done.finally(() => {
          if (this.#releasing.get(readerName) === pending) this.#releasing.delete(readerName);
        });
        this.#releasing.set(readerName, pending);
      });
      native = undefined; // the connection owns it now
      this.#connections.set(readerName, connection);
      if (this.#closed) connection.markDead();
      return connection;
    } catch (error) {
      const context = native;
      if (context) safely(() => context.close());
      throw smartcardError(error, 'SCardConnect');
    } finally {
      this.#connecting.delete(readerName);
    }
  }

  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    for (const connection of this.#connections.values()) connection.markDead();
    // Ends the pending wait (it resolves null); the loop then releases the watch context. If pcscd is
    // gone the cancel fails, but so does the wait.
    safely(() => this.#watch.cancel());
  }
}

class SmartcardConnection implements PcscConnection {
  readonly reader: string;
  readonly protocol: Protocol | undefined;
  readonly #module: SmartcardModule;
  readonly #context: SmartcardNativeContext;
  readonly #card: SmartcardCard;
  readonly #share: number;
  readonly #protocols: number;
  readonly #release: (done: Promise<void>) => void;
  /** Native calls under way: the synchronous disconnect waits for them (same mutex). */
  readonly #inFlight = new Set<Promise<unknown>>();
  #alive = true;
  #disposed: Promise<void> | undefined;

  constructor(
    module: SmartcardModule,
    context: SmartcardNativeContext,
    card: SmartcardCard,
    reader: string,
    share: ShareMode,
    protocols: number,
    release: (done: Promise<void>) => void,
  ) {
    this.reader = reader;
    this.#module = module;
    this.#context = context;
    this.#card = card;
    this.#share = { exclusive: module.SCARD_SHARE_EXCLUSIVE, shared: module.SCARD_SHARE_SHARED, direct: module.SCARD_SHARE_DIRECT }[share];
    this.#protocols = protocols;
    this.#release = release;
    const p = card.protocol;
    this.protocol = p === module.SCARD_PROTOCOL_T0 ? 'T0' : p === module.SCARD_PROTOCOL_T1 ? 'T1' : p === module.SCARD_PROTOCOL_RAW ? 'RAW' : undefined;
  }

  get alive(): boolean {
    return this.#alive;
  }

  /** The reader or the context went away: the handle is unusable; release it quietly. */
  markDead(): void {
    if (!this.#alive) return;
    this.#alive = false;
    this.#release(this.#dispose('leave'));
  }

  #track<T>(operation: Promise<T>): Promise<T> {
    this.#inFlight.add(operation);
    const done = (): void => void this.#inFlight.delete(operation);
    operation.then(done, done);
    return operation;
  }

  async transmit(command: Uint8Array, options: { maxResponseLength?: number } = {}): Promise<Uint8Array> {
    if (!this.#alive) throw notConnected(this.reader, 'SCardTransmit');
    const maxRecvLength = options.maxResponseLength ?? DEFAULT_MAX_RESPONSE;
    try {
      const response = await this.#track(this.#card.transmit(Buffer.from(command), { maxRecvLength }));
      return new Uint8Array(response);
    } catch (error) {
      const typed = smartcardError(error, 'SCardTransmit');
      // The handle is worthless after a removal or a reset by someone else: release it now so that the
      // next connect on this reader succeeds.
      if (typed instanceof CardAbsentError || typed instanceof CardResetError) void this.disconnect('leave');
      throw typed;
    }
  }

  /** The binding's receive buffer for SCardControl is fixed at 256 bytes: `maxResponseLength` cannot raise it. */
  async control(controlCode: number, data: Uint8Array = new Uint8Array(0)): Promise<Uint8Array> {
    if (!this.#alive) throw notConnected(this.reader, 'SCardControl');
    try {
      return new Uint8Array(await this.#track(this.#card.control(controlCode, Buffer.from(data))));
    } catch (error) {
      throw smartcardError(error, 'SCardControl');
    }
  }

  disconnect(disposition: Disposition = 'leave'): Promise<void> {
    if (!this.#alive) return this.#disposed ?? Promise.resolve();
    this.#alive = false;
    const done = this.#dispose(disposition);
    this.#release(done);
    return done;
  }

  #dispose(disposition: Disposition): Promise<void> {
    this.#disposed ??= (async () => {
      const m = this.#module;
      await Promise.allSettled([...this.#inFlight]);
      let native = { leave: m.SCARD_LEAVE_CARD, reset: m.SCARD_RESET_CARD, unpower: m.SCARD_UNPOWER_CARD, eject: m.SCARD_EJECT_CARD }[disposition];
      if ((disposition === 'reset' || disposition === 'unpower') && this.#card.connected) {
        // The binding's SCardDisconnect runs on the main thread, and with RESET or UNPOWER pcscd answers
        // only once the reader has acted on the card. SCardReconnect does the same on a worker thread;
        // the disconnect after it then leaves the card as it is. If it fails (card gone, service dead),
        // the plain disconnect below reports nothing and costs nothing.
        try {
          await this.#card.reconnect(this.#share, this.#protocols, native);
          native = m.SCARD_LEAVE_CARD;
        } catch {
          // fall through with the disposition asked for
        }
      }
      // A failed disconnect (card already gone, service dead) still leaves nothing to release.
      safely(() => this.#card.disconnect(native));
      safely(() => this.#context.close());
    })();
    return this.#disposed;
  }
}
