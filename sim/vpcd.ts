import { EventEmitter } from 'node:events';
import { connect, type Socket } from 'node:net';
import { CpsdError } from '../core/errors.js';

/**
 * A card as vpcd sees it: an ATR and a function from command APDU bytes to response APDU bytes.
 * `reset` and `powerOff` let a stateful card drop its security state as a real one does.
 */
export interface VirtualCard {
  readonly atr: Uint8Array;
  transmit(command: Uint8Array): Uint8Array | Promise<Uint8Array>;
  reset?(): void;
  powerOff?(): void;
}

export interface VpcdOptions {
  /**
   * vpcd's address. Default 127.0.0.1. On Linux CI, 127.0.0.2 with the `quickack` route avoids the
   * 40 ms delayed-ACK stall that Debian's vpcd 3.3 causes on every message (see docs/testing.md).
   */
  host?: string;
  /** vpcd slot port: 35963 for "Virtual PCD 00 00", 35964 for "… 00 01". */
  port?: number;
  /** Give up connecting after this long. Default 3000 ms. */
  connectTimeoutMs?: number;
}

/** vpcd is not listening (pcscd not running, or no vpcd reader configured), or the link broke. */
export class VpcdError extends CpsdError {
  readonly code = 'VPCD_UNAVAILABLE';
}

const CONTROL = { POWER_OFF: 0x00, POWER_ON: 0x01, RESET: 0x02, GET_ATR: 0x04 } as const;
/** "No precise diagnosis": what the virtual card answers when its own code fails. */
const SW_NO_DIAGNOSIS = Uint8Array.of(0x6f, 0x00);

export interface VpcdStats {
  apdus: number;
  bytesToCard: number;
  bytesFromCard: number;
}

/**
 * Plugs a virtual card into vsmartcard's vpcd driver inside pcscd. vpcd listens; the card connects.
 * Connecting inserts the card in the reader, closing the socket removes it.
 * Wire format, both ways: a 2-byte big-endian length, then the payload. A 1-byte payload from vpcd is a
 * control (power off/on, reset: no answer; get ATR: answer the ATR); anything longer is a command APDU.
 *
 * Events: `control` (name), `apdu` (command, response), `card-error` (error thrown by the card),
 * `removed` (socket closed, by us or by vpcd).
 */
export class VpcdConnector extends EventEmitter {
  readonly card: VirtualCard;
  readonly stats: VpcdStats = { apdus: 0, bytesToCard: 0, bytesFromCard: 0 };
  readonly #socket: Socket;
  #buffer: Buffer = Buffer.alloc(0);
  /** Serialises answers: an async card response must go out before the answer to the next message. */
  #pending: Promise<void> = Promise.resolve();
  #busy = 0;
  #removed: Promise<void>;

  private constructor(card: VirtualCard, socket: Socket) {
    super();
    this.card = card;
    this.#socket = socket;
    this.#removed = new Promise((resolve) => socket.once('close', () => resolve()));
    socket.on('data', (chunk) => this.#onData(chunk));
    socket.on('error', () => {
      // 'close' follows; a broken link is a removal, not a crash.
    });
    socket.once('close', () => this.emit('removed'));
  }

  /** Connects to vpcd, which pcscd then reports as a card insertion in that slot. */
  static insert(card: VirtualCard, options: VpcdOptions = {}): Promise<VpcdConnector> {
    const host = options.host ?? '127.0.0.1';
    const port = options.port ?? 35963;
    return new Promise((resolve, reject) => {
      const socket = connect({ host, port, noDelay: true });
      const timer = setTimeout(() => {
        socket.destroy();
        reject(new VpcdError(`vpcd at ${host}:${port} did not accept the connection in time`));
      }, options.connectTimeoutMs ?? 3000);
      socket.once('error', (error) => {
        clearTimeout(timer);
        reject(new VpcdError(`cannot reach vpcd at ${host}:${port} (is pcscd running with a vpcd reader?)`, { cause: error }));
      });
      socket.once('connect', () => {
        clearTimeout(timer);
        socket.removeAllListeners('error');
        resolve(new VpcdConnector(card, socket));
      });
    });
  }

  get inserted(): boolean {
    return !this.#socket.destroyed;
  }

  /** Closes the link, which pcscd reports as a card removal. Resolves once the socket is closed. */
  remove(): Promise<void> {
    this.#socket.end();
    // vpcd may not close its side until it next polls; do not wait for it.
    setTimeout(() => this.#socket.destroy(), 100).unref();
    return this.#removed;
  }

  #onData(chunk: Buffer): void {
    this.#buffer = this.#buffer.length === 0 ? chunk : Buffer.concat([this.#buffer, chunk]);
    while (this.#buffer.length >= 2) {
      const length = this.#buffer.readUInt16BE(0);
      if (this.#buffer.length < 2 + length) break;
      const message = new Uint8Array(this.#buffer.subarray(2, 2 + length));
      this.#buffer = this.#buffer.subarray(2 + length);
      this.#onMessage(message);
    }
  }

  #onMessage(message: Uint8Array): void {
    if (message.length === 0) return; // legal framing, carries nothing
    if (message.length === 1) {
      this.#onControl(message[0] ?? -1);
      return;
    }
    this.stats.apdus++;
    this.stats.bytesToCard += message.length;
    // Synchronous cards are answered at once; asynchronous ones are queued in arrival order.
    if (this.#busy === 0) {
      let result: Uint8Array | Promise<Uint8Array>;
      try {
        result = this.card.transmit(message);
      } catch (error) {
        result = this.#cardFailed(error);
      }
      if (!(result instanceof Promise)) {
        this.#answer(message, result);
        return;
      }
      this.#queue(async () => this.#answer(message, await result.catch((e: unknown) => this.#cardFailed(e))));
      return;
    }
    this.#queue(async () => {
      const response = await Promise.resolve()
        .then(() => this.card.transmit(message))
        .catch((e: unknown) => this.#cardFailed(e));
      this.#answer(message, response);
    });
  }

  #onControl(code: number): void {
    const run = (): void => {
      switch (code) {
        case CONTROL.GET_ATR:
          this.#send(this.card.atr);
          break;
        case CONTROL.RESET:
          this.card.reset?.();
          break;
        case CONTROL.POWER_OFF:
          this.card.powerOff?.();
          break;
        case CONTROL.POWER_ON:
          this.card.reset?.();
          break;
        default:
          return; // unknown control byte: vpcd expects no answer
      }
      this.emit('control', code);
    };
    if (this.#busy === 0) run();
    else this.#queue(async () => run());
  }

  #queue(task: () => Promise<void>): void {
    this.#busy++;
    this.#pending = this.#pending.then(task).finally(() => {
      this.#busy--;
    });
  }

  #cardFailed(error: unknown): Uint8Array {
    this.emit('card-error', error);
    return SW_NO_DIAGNOSIS;
  }

  #answer(command: Uint8Array, response: Uint8Array): void {
    // A response that cannot be framed is a card bug; answer "no precise diagnosis" instead.
    const framed = response.length >= 2 && response.length <= 0xffff ? response : SW_NO_DIAGNOSIS;
    this.stats.bytesFromCard += framed.length;
    this.#send(framed);
    this.emit('apdu', command, framed);
  }

  #send(payload: Uint8Array): void {
    if (this.#socket.destroyed) return;
    const frame = Buffer.allocUnsafe(2 + payload.length);
    frame.writeUInt16BE(payload.length, 0);
    frame.set(payload, 2);
    this.#socket.write(frame); // one write per message: no split header for Nagle to hold back
  }
}
