/**
 * The daemon side of the PKCS#11 module (docs/pkcs11-protocol.md): a Unix socket for the user's own
 * applications, served from the same card sessions as the WebSocket, so a TLS handshake and a web login
 * never interleave on the card. The token is read from the card once per insertion, when the card goes
 * in (pkcs11/tokens.ts), and its objects sent to each module once; only login, logout and signatures
 * reach the card afterwards.
 */
import { existsSync, lstatSync, unlinkSync, chmodSync } from 'node:fs';
import { createConnection, createServer, type Server, type Socket } from 'node:net';
import { CpsdError } from '../core/errors.js';
import type { CardCache } from '../cards/public-data.js';
import { interfaceOf, type CardEvent, type CardSessions } from '../cards/session.js';
import type { Logger } from '../daemon/log.js';
import { ProtocolError } from '../daemon/protocol.js';
import { VERSION } from '../daemon/methods.js';
import { ckrOf, Pkcs11Error } from './ckr.js';
import { CKR, CKF_SLOT } from './constants.js';
import { Tokens, type TokensOptions } from './tokens.js';
import type { PinRefusal } from '../daemon/pin-notice.js';
import { FrameReader, Fields, TAG, field, frame, u32, WireError, type Field } from './wire.js';
import { unixPeerUids } from './unix-peer.js';
import { prepareSocketDirectory } from './socket-path.js';
import { ModuleConnection } from './connection.js';

export const PROTOCOL_VERSION = 1;

export const OP = { HELLO: 1, SLOTS: 2, TOKEN: 3, LOGIN: 4, LOGOUT: 5, SIGN: 6 } as const;

export interface Pkcs11ServerOptions {
  sessions: CardSessions;
  cache: CardCache;
  log: Logger;
  socketPath: string;
  /** Who may connect (default: this process's uid, by the kernel's word). */
  peerUids?: (socket: Socket) => Promise<number[] | undefined>;
  /** How long TOKEN and SLOTS wait for a card's read (pkcs11/tokens.ts; tests shorten them). */
  waits?: TokensOptions;
  /** A PIN typed in an application's own prompt was refused by the card: tell the person (daemon/pin-notice.ts). */
  onPinRefused?: (refusal: PinRefusal) => void;
}

export class Pkcs11Server {
  readonly #o: Pkcs11ServerOptions;
  readonly #tokens: Tokens;
  readonly #connections = new Set<ModuleConnection>();
  readonly #sockets = new Set<Socket>();
  #server: Server | undefined;
  readonly #onEvent = (e: CardEvent): void => {
    if (e.type === 'card.removed') for (const c of this.#connections) c.forget(e.reader);
  };

  constructor(options: Pkcs11ServerOptions) {
    this.#o = options;
    this.#tokens = new Tokens(options.sessions, options.cache, { ...options.waits, log: options.log });
    options.sessions.on('event', this.#onEvent);
  }

  get socketPath(): string {
    return this.#o.socketPath;
  }

  async listen(): Promise<void> {
    const path = this.#o.socketPath;
    prepareSocketDirectory(path);
    // A socket left by a daemon that died: nobody answers on it, so it can go.
    if (existsSync(path)) {
      if (!lstatSync(path).isSocket()) throw new WireError(`${path} exists and is not a socket`);
      if (await answers(path)) throw new WireError(`another cpsd already serves ${path}`);
      unlinkSync(path);
    }
    const server = createServer({ pauseOnConnect: true }, (socket) => void this.#admit(socket));
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(path, () => {
        server.off('error', reject);
        resolve();
      });
    });
    chmodSync(path, 0o600);
    this.#server = server;
    this.#o.log.info('pkcs11-listening', { socket: path });
  }

  async close(): Promise<void> {
    this.#o.sessions.off('event', this.#onEvent);
    const server = this.#server;
    this.#server = undefined;
    for (const s of this.#sockets) s.destroy();
    // Logged-in applications end with the daemon: the cards they unlocked are reset.
    await Promise.all([...this.#connections].map((c) => c.end()));
    this.#tokens.close();
    if (server) await new Promise((r) => server.close(r));
  }

  async #admit(socket: Socket): Promise<void> {
    socket.on('error', () => undefined);
    const uids = await (this.#o.peerUids ?? unixPeerUids)(socket).catch(() => undefined);
    const me = process.getuid?.();
    if (!uids || uids.length === 0 || uids.some((u) => u !== me)) {
      this.#o.log.warn('pkcs11-peer-refused', { reason: uids ? 'another-user' : 'owner-unknown' });
      socket.destroy();
      return;
    }
    if (socket.destroyed) return;
    this.#serve(socket);
    socket.resume();
  }

  #serve(socket: Socket): void {
    this.#sockets.add(socket);
    const reader = new FrameReader();
    const connection = new ModuleConnection(this.#o.sessions, this.#tokens, this.#o.log, this.#o.onPinRefused);
    this.#connections.add(connection);
    let hello = false;
    // One request at a time per connection, answered in order.
    let chain: Promise<void> = Promise.resolve();
    const close = (): void => {
      if (!this.#sockets.delete(socket)) return;
      socket.destroy();
      this.#connections.delete(connection);
      void connection.end();
    };
    socket.on('close', close);
    socket.on('data', (chunk: Buffer) => {
      let bodies: Buffer[];
      try {
        bodies = reader.push(chunk);
      } catch (error) {
        this.#o.log.warn('pkcs11-bad-frame', { error });
        return close();
      }
      for (const body of bodies) {
        chain = chain.then(async () => {
          if (socket.destroyed) return;
          let request: Fields | undefined;
          let id = 0;
          try {
            request = Fields.of(body);
            id = request.needU32(TAG.ID);
            const op = request.needU32(TAG.OP);
            if (!hello && op !== OP.HELLO) throw new Pkcs11Error('PKCS11_NOT_INITIALIZED', 'HELLO first', true);
            this.#o.log.debug('pkcs11-request', { app: connection.app, op });
            const answer = await this.#run(connection, op, request);
            if (op === OP.HELLO) hello = true;
            socket.write(frame([field(TAG.ID, u32(id)), field(TAG.RV, u32(CKR.OK)), ...answer]));
          } catch (error) {
            const { rv, message } = ckrOf(error);
            if (!(error instanceof CpsdError)) this.#o.log.error('pkcs11-internal', { error });
            else this.#o.log.info('pkcs11-request-failed', { app: connection.app, op: request?.u32(TAG.OP) ?? null, code: error.code, rv });
            socket.write(frame([field(TAG.ID, u32(id)), field(TAG.RV, u32(rv)), field(TAG.MESSAGE, { utf8: message })]));
            // A frame that is no request, or a conversation that did not start with HELLO: nothing after it can be trusted.
            if (error instanceof WireError || (error instanceof Pkcs11Error && error.fatal)) {
              this.#o.log.warn('pkcs11-bad-request', { error });
              socket.end();
            }
          }
        });
      }
    });
  }

  async #run(c: ModuleConnection, op: number, r: Fields): Promise<Field[]> {
    switch (op) {
      case OP.HELLO: {
        const version = r.needU32(TAG.VERSION);
        if (version !== PROTOCOL_VERSION) throw new Pkcs11Error('PKCS11_VERSION', `protocol version ${version} is not spoken here (${PROTOCOL_VERSION} is)`, true);
        c.app = (r.utf8(TAG.APP) ?? '').slice(0, 64);
        this.#o.log.info('pkcs11-connected', { app: c.app });
        return [field(TAG.VERSION, u32(PROTOCOL_VERSION)), field(TAG.DAEMON, { utf8: VERSION })];
      }
      case OP.SLOTS:
        return await this.#slots();
      case OP.TOKEN: {
        const { reader, generation } = this.#target(r);
        const token = await this.#tokens.get(reader, generation, c.signal);
        return [this.#tokens.field(token, generation)];
      }
      case OP.LOGIN: {
        const { reader, generation } = this.#target(r);
        const pin = r.bytes(TAG.PIN);
        try {
          await c.login(reader, generation, r.needU32(TAG.USER_TYPE), pin, r.u32(TAG.HANDLE));
        } finally {
          pin?.fill(0); // the PIN's bytes as received: gone once the VERIFY was sent
        }
        return [];
      }
      case OP.LOGOUT: {
        const { reader, generation } = this.#target(r);
        await c.logout(reader, generation);
        return [];
      }
      case OP.SIGN: {
        const { reader, generation } = this.#target(r);
        const signature = await c.sign(reader, generation, {
          handle: r.needU32(TAG.HANDLE),
          mechanism: r.needU32(TAG.MECH_TYPE),
          data: r.bytes(TAG.DATA) ?? Buffer.alloc(0),
          pss: r.has(TAG.PSS_HASH) ? { hash: r.needU32(TAG.PSS_HASH), mgf: r.needU32(TAG.PSS_MGF), salt: r.needU32(TAG.PSS_SALT) } : undefined,
        });
        return [field(TAG.SIGNATURE, signature)];
      }
      default:
        throw new ProtocolError('METHOD_NOT_FOUND', `unknown operation ${op}`);
    }
  }

  #target(r: Fields): { reader: string; generation: number } {
    return { reader: r.needUtf8(TAG.READER), generation: r.needU32(TAG.GENERATION) };
  }

  /**
   * Readers and insertion state as the daemon knows them: no card is touched. A card whose token is
   * being read (it was just inserted) is waited for, at most SLOTS_WAIT_MS (8 s): an application sees the
   * token present once TOKEN can answer it whole (a read longer than that: present, and TOKEN waits for
   * the rest, TOKEN_WAIT_MS).
   */
  async #slots(): Promise<Field[]> {
    await Promise.all(this.#o.sessions.readers().map((r) => this.#tokens.settled(r.name)));
    return this.#o.sessions.readers().map((reader) => {
      // A token is a CPx card by contact: the contactless side of a card is not a login key (docs/pkcs11.md).
      const present = reader.cardPresent && interfaceOf(reader) === 'contact';
      return field(TAG.SLOT, [
        field(TAG.READER, { utf8: reader.name }),
        field(TAG.PRESENT, { u8: present ? 1 : 0 }),
        field(TAG.GENERATION, u32(this.#tokens.generation(reader.name))),
        field(TAG.SLOT_FLAGS, u32(CKF_SLOT.REMOVABLE_DEVICE | CKF_SLOT.HW_SLOT | (present ? CKF_SLOT.TOKEN_PRESENT : 0))),
      ]);
    });
  }
}

/** Whether something accepts connections on a Unix socket path. */
function answers(path: string): Promise<boolean> {
  return new Promise((resolve) => {
    const s = createConnection(path);
    s.once('connect', () => {
      s.destroy();
      resolve(true);
    });
    s.once('error', () => resolve(false));
  });
}
