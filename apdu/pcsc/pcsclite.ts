import type { EventEmitter } from 'node:events';
import { createRequire } from 'node:module';
import { CardAbsentError, CardBusyError, CardResetError, notConnected, pcscError, safely, toPcscError } from './errors.js';
import type {
  ConnectOptions,
  ContextListener,
  Disposition,
  PcscConnection,
  PcscContext,
  PcscContextFactory,
  Protocol,
} from './types.js';

// The slice of the `pcsclite` native binding that cpsd uses; its own typings are mostly `any`.
type Callback<T> = (error: unknown, value: T) => void;
interface BindingReader extends EventEmitter {
  readonly name: string;
  connected: boolean;
  connect(options: { share_mode: number; protocol: number }, cb: Callback<number>): void;
  disconnect(disposition: number, cb: (error: unknown) => void): void;
  transmit(data: Buffer, maxLength: number, protocol: number, cb: Callback<Buffer>): void;
  control(data: Buffer, code: number, maxLength: number, cb: Callback<Buffer>): void;
  close(): void;
}
interface BindingContext extends EventEmitter {
  close(): void;
}
type Binding = () => BindingContext;

const SHARE = { exclusive: 1, shared: 2, direct: 3 } as const;
const PROTOCOL = { T0: 1, T1: 2, RAW: 4 } as const;
const DISPOSITION = { leave: 0, reset: 1, unpower: 2, eject: 3 } as const;
const DEFAULT_MAX_RESPONSE = 65538; // extended Le (65536) plus SW1 SW2

let binding: Binding | undefined;
function loadBinding(): Binding {
  // Loaded lazily so that importing cpsd never requires the native addon (the simulator path does not).
  binding ??= createRequire(import.meta.url)('pcsclite') as Binding;
  return binding;
}

function protocolName(value: number): Protocol | undefined {
  if (value === PROTOCOL.T0) return 'T0';
  if (value === PROTOCOL.T1) return 'T1';
  if (value === PROTOCOL.RAW) return 'RAW';
  return undefined;
}

/** Context factory backed by the `pcsclite` binding (pcsc-lite on Linux/macOS, WinSCard on Windows). */
export const pcscliteContextFactory: PcscContextFactory = (listener) => new PcscliteContext(listener);

class PcscliteContext implements PcscContext {
  readonly #context: BindingContext;
  readonly #readers = new Map<string, BindingReader>();
  readonly #connections = new Map<string, PcscliteConnection>();
  /** Disconnects still in flight per reader: a new connect waits for them instead of failing busy. */
  readonly #releasing = new Map<string, Promise<void>>();
  #closed = false;

  constructor(listener: ContextListener) {
    const create = loadBinding();
    try {
      this.#context = create();
    } catch (error) {
      throw toPcscError(error, 'SCardEstablishContext');
    }
    // Every binding object gets an 'error' listener: an unhandled 'error' event would kill the process.
    // The binding calls these listeners while it holds the reader's native mutex, and reader.close()
    // takes that same mutex: closing from inside a listener deadlocks the event loop. So every
    // notification is delivered on a later turn (setImmediate keeps their order).
    this.#context.on('error', (error: unknown) => {
      this.#deliver(() => listener.failed(toPcscError(error, 'SCardGetStatusChange')));
    });
    this.#context.on('reader', (reader: BindingReader) => {
      const name = reader.name;
      this.#readers.set(name, reader);
      reader.on('error', (error: unknown) => {
        this.#deliver(() => listener.failed(toPcscError(error, 'SCardGetStatusChange')));
      });
      reader.on('status', (status: { state: number; atr?: Buffer }) => {
        const atr = status.atr ? new Uint8Array(status.atr) : new Uint8Array(0);
        this.#deliver(() => listener.readerState(name, status.state, atr));
      });
      reader.on('end', () => {
        this.#deliver(() => {
          if (this.#readers.get(name) === reader) this.#readers.delete(name);
          this.#connections.get(name)?.markDead();
          listener.readerRemoved(name);
        });
      });
      this.#deliver(() => listener.readerAdded(name));
    });
  }

  #deliver(notify: () => void): void {
    setImmediate(() => {
      if (!this.#closed) notify();
    });
  }

  async connect(readerName: string, options: ConnectOptions): Promise<PcscConnection> {
    await this.#releasing.get(readerName);
    const reader = this.#readers.get(readerName);
    if (!reader) throw pcscError(0x80100009, 'SCardConnect');
    const existing = this.#connections.get(readerName);
    // The binding holds one card handle per reader object: a second connect would replace the first.
    if (existing?.alive || reader.connected) {
      throw new CardBusyError(`this process already holds a connection on ${readerName}`);
    }
    const protocols = options.share === 'direct' ? [] : (options.protocols ?? ['T0', 'T1']);
    const mask = protocols.reduce((m, p) => m | PROTOCOL[p], 0);
    return new Promise((resolve, reject) => {
      reader.connect({ share_mode: SHARE[options.share], protocol: mask }, (error, protocol) => {
        if (error) return reject(toPcscError(error, 'SCardConnect'));
        const connection = new PcscliteConnection(reader, protocolName(protocol), (done) => {
          if (this.#connections.get(readerName) === connection) this.#connections.delete(readerName);
          const pending = done.finally(() => {
            if (this.#releasing.get(readerName) === pending) this.#releasing.delete(readerName);
          });
          this.#releasing.set(readerName, pending);
        });
        this.#connections.set(readerName, connection);
        resolve(connection);
      });
    });
  }

  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    for (const connection of this.#connections.values()) connection.markDead();
    const readers = [...this.#readers.values()];
    // Never from the current turn: the binding runs pending promise jobs (Nan::MakeCallback drains the
    // microtask queue) while it holds a reader's mutex in its status callback, and reader.close() takes
    // that same mutex, so a close() reached from an await could deadlock the event loop for good
    // (gdb: main thread in CardReader::Close → uv_mutex_lock, the mutex owned by the main thread).
    setImmediate(() => {
      for (const reader of readers) safely(() => reader.close());
      // The binding emits 'error' ("Command cancelled") while closing; the listeners above stay attached.
      safely(() => this.#context.close());
    });
  }
}

class PcscliteConnection implements PcscConnection {
  readonly reader: string;
  readonly protocol: Protocol | undefined;
  readonly #binding: BindingReader;
  readonly #protocolValue: number;
  readonly #release: (done: Promise<void>) => void;
  #alive = true;

  constructor(reader: BindingReader, protocol: Protocol | undefined, release: (done: Promise<void>) => void) {
    this.reader = reader.name;
    this.protocol = protocol;
    this.#binding = reader;
    this.#protocolValue = protocol ? PROTOCOL[protocol] : 0;
    this.#release = release;
  }

  get alive(): boolean {
    return this.#alive;
  }

  /** The reader or the context went away: the native handle is unusable. */
  markDead(): void {
    this.#alive = false;
    this.#release(Promise.resolve());
  }

  transmit(command: Uint8Array, options: { maxResponseLength?: number } = {}): Promise<Uint8Array> {
    if (!this.#alive) return Promise.reject(notConnected(this.reader, 'SCardTransmit'));
    const max = options.maxResponseLength ?? DEFAULT_MAX_RESPONSE;
    return new Promise((resolve, reject) => {
      this.#binding.transmit(Buffer.from(command), max, this.#protocolValue, (error, response) => {
        if (error) {
          const typed = toPcscError(error, 'SCardTransmit');
          // The handle is worthless after a removal or a reset by someone else: release it now so
          // that the next connect on this reader succeeds.
          if (typed instanceof CardAbsentError || typed instanceof CardResetError) void this.disconnect('leave');
          return reject(typed);
        }
        resolve(new Uint8Array(response));
      });
    });
  }

  control(controlCode: number, data: Uint8Array = new Uint8Array(0), maxResponseLength = 4096): Promise<Uint8Array> {
    if (!this.#alive) return Promise.reject(notConnected(this.reader, 'SCardControl'));
    return new Promise((resolve, reject) => {
      this.#binding.control(Buffer.from(data), controlCode, maxResponseLength, (error, response) => {
        if (error) return reject(toPcscError(error, 'SCardControl'));
        resolve(new Uint8Array(response));
      });
    });
  }

  disconnect(disposition: Disposition = 'leave'): Promise<void> {
    if (!this.#alive) return Promise.resolve();
    this.#alive = false;
    const done = new Promise<void>((resolve) => {
      // A failed disconnect (card already gone, service dead) still leaves nothing to release.
      this.#binding.disconnect(DISPOSITION[disposition], () => resolve());
    });
    this.#release(done);
    return done;
  }
}
