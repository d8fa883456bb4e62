/**
 * `cpsd serve`: the loopback WebSocket API (docs/protocol.md) and the daemon's own PIN page.
 *
 * Security rules (docs/protocol.md, "Who may connect"; the attacks on localhost bridges they answer are in docs/security.md): listen on 127.0.0.1 and ::1 only; refuse any request whose Host
 * is not a loopback name with our port (DNS rebinding) and any upgrade whose Origin is not exactly on
 * the allow-list; the origin comes from the handshake, never from a message, and is bound into what the
 * card signs; a PIN never crosses a web origin's WebSocket: it is typed on the daemon's PIN page (or a
 * PIN pad), and only local applications without an Origin may send it in a request.
 *
 * This file listens and checks handshakes; methods.ts has the method table, pin-guard.ts the PIN flow,
 * pin-entry.ts and pin-page.ts the PIN window, limits.ts the limits, cards/session.ts the card queue.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { createServer as createTcpServer, type AddressInfo, type Server as TcpServer, type Socket } from 'node:net';
import { WebSocketServer, type WebSocket } from 'ws';
import { MemoryCardCache } from '../cards/public-data.js';
import { CardSessions, SessionClosedError, type CardBackend, type CardEvent } from '../cards/session.js';
import { CardTwins } from '../cards/twins.js';
import { checkAuthority, type AuthorityCheck } from './authority.js';
import type { DaemonConfig } from './config.js';
import { Limits, type Bucket } from './limits.js';
import type { Logger } from './log.js';
import { METHODS, isMethod, type MethodContext } from './methods.js';
import { PinGuard, type Caller } from './pin-guard.js';
import { PinEntries } from './pin-entry.js';
import { PinNotices, type PinRefusal } from './pin-notice.js';
import { currentUser, peerOwner, peerOwnerSource, type PeerOwnerSource } from './peer.js';
import { readPreamble, refuse, registerBehindProxy, unregisterBehindProxy } from './proxy.js';
import { ProtocolError, checkParams, parseRequest, toRpcError, type Request } from './protocol.js';

const RATE_LIMITED = new ProtocolError('RATE_LIMITED', 'too many requests');

/** What the refused peer reads: nothing about whose daemon this is. */
const NOT_YOURS = 'cpsd: this daemon serves only the applications of the user who runs it\n';

/** How a connection was admitted (docs/security.md, "Several users on one computer"). */
interface Admission {
  /** Through `cpsd proxy`: the Host then names the proxy's port (the configured `port`). */
  viaProxy: boolean;
}

interface Client extends Caller {
  socket: WebSocket;
  bucket: Bucket;
  /** Aborted when the socket closes: every queued or running operation of this client ends. */
  controller: AbortController;
  /** One PIN entry at a time per connection. */
  pinPending: boolean;
}

export class CpsdServer {
  readonly #config: DaemonConfig;
  readonly #sessions: CardSessions;
  readonly #log: Logger;
  readonly #http: Server[] = [];
  readonly #tcp: TcpServer[] = [];
  readonly #admitted = new WeakMap<Socket, Admission>();
  readonly #peers: PeerOwnerSource;
  readonly #user = currentUser();
  #registration: string | undefined;
  readonly #wss: WebSocketServer;
  readonly #clients = new Set<Client>();
  readonly #cache = new MemoryCardCache();
  readonly #limits: Limits;
  readonly #entries: PinEntries;
  readonly #notices = new PinNotices();
  readonly #guard: PinGuard;
  readonly #sso = new Map<string, { serial: string; until: number }>();
  readonly #twins: CardTwins;
  #port = 0;
  #pcscDown = false;

  /** `cards`: a backend (PC/SC or in process) or card sessions already made over one. */
  /** `peers`: who owns a client's socket (default: this OS's way, daemon/peer.ts). */
  constructor(config: DaemonConfig, cards: CardBackend | CardSessions, log: Logger, peers: PeerOwnerSource = peerOwnerSource()) {
    this.#config = config;
    this.#peers = peers;
    this.#sessions = cards instanceof CardSessions ? cards : new CardSessions(cards, { operationTimeoutMs: config.operationTimeoutMs });
    this.#twins = new CardTwins(this.#sessions);
    this.#log = log;
    this.#limits = new Limits(config);
    this.#wss = new WebSocketServer({ noServer: true, maxPayload: config.maxMessageBytes });
    this.#entries = new PinEntries({
      timeoutMs: config.pinTimeoutMs,
      // Behind the proxy the PIN page is reached through it, on the well-known port.
      baseUrl: () => `http://127.0.0.1:${config.behindProxy ? config.port : this.#port}`,
      ownOrigins: () =>
        [...new Set([this.#port, ...(config.behindProxy ? [config.port] : [])])].flatMap((p) => [`http://127.0.0.1:${p}`, `http://localhost:${p}`, `http://[::1]:${p}`]),
    });
    this.#guard = new PinGuard({
      sessions: this.#sessions,
      entries: this.#entries,
      cache: this.#cache,
      allowPinInRequest: config.allowPinInRequest,
      pinPadTimeoutMs: config.pinTimeoutMs,
    });
    this.#sessions.on('event', (e: CardEvent) => this.#broadcast(e));
  }

  get port(): number {
    return this.#port;
  }

  get sessions(): CardSessions {
    return this.#sessions;
  }

  /**
   * Keeps a wrong-PIN notice (daemon/pin-notice.ts) and returns its address on this server: the PKCS#11
   * path opens it, since the applications' own PIN prompts do not tell the tries left.
   */
  noticeUrl(refusal: PinRefusal): string {
    return `http://127.0.0.1:${this.#config.behindProxy ? this.#config.port : this.#port}${this.#notices.add(refusal)}`;
  }

  /** The PIN guard, for the link to cpsd-idp (daemon/idp-link.ts): its CIBA requests take the same PIN path. */
  get guard(): PinGuard {
    return this.#guard;
  }

  /** The cards' public data, shared with the PKCS#11 server. */
  get cache(): MemoryCardCache {
    return this.#cache;
  }

  /** Listens on 127.0.0.1 and, when the machine has IPv6, on ::1; never on another interface. */
  async listen(): Promise<void> {
    // Behind the proxy, `port` is the proxy's: this daemon takes any free port and registers it.
    const first = await this.#listenOn('127.0.0.1', this.#config.behindProxy ? 0 : this.#config.port);
    this.#port = first;
    try {
      await this.#listenOn('::1', first);
    } catch (error) {
      this.#log.warn('ipv6-loopback-unavailable', { error });
    }
    if (!this.#peers.supported) {
      this.#log.warn('peer-check-unsupported', { method: this.#peers.method, then: this.#config.peerCheckUnsupported });
    }
    if (this.#config.behindProxy) this.#registration = await registerBehindProxy(this.#port);
    this.#log.info('listening', { port: this.#port, origins: this.#config.allowedOrigins, ...(this.#config.behindProxy ? { behindProxy: this.#config.port } : {}) });
  }

  #listenOn(host: string, port: number): Promise<number> {
    const server = createServer((req, res) => this.#onHttp(req, res));
    // Every connection is admitted (its owner checked) before HTTP sees a byte of it: the WebSocket
    // upgrade, the PIN page and its POST alike.
    const tcp = createTcpServer({ pauseOnConnect: true }, (socket) => void this.#admit(socket, server));
    server.on('upgrade', (req, socket, head) => {
      const refusal = this.#checkUpgrade(req);
      if (refusal) {
        this.#log.warn('upgrade-refused', { reason: refusal.detail ?? refusal.reason, origin: req.headers.origin ?? null, host: req.headers.host ?? null });
        socket.end(`HTTP/1.1 ${refusal.status} ${refusal.reason}\r\nConnection: close\r\nContent-Length: 0\r\n\r\n`);
        return;
      }
      this.#wss.handleUpgrade(req, socket, head, (ws) => this.#onConnection(ws, req));
    });
    return new Promise((resolve, reject) => {
      tcp.once('error', reject);
      tcp.listen({ host, port, exclusive: true }, () => {
        tcp.off('error', reject);
        // The HTTP server is handed connections rather than listening itself: 'listening' starts its
        // connection tracking (closeAllConnections, the header and request timeouts).
        server.emit('listening');
        this.#http.push(server);
        this.#tcp.push(tcp);
        resolve((tcp.address() as AddressInfo).port);
      });
    });
  }

  // ------------------------------------------------------------ whose connection is it

  /** Hands the connection to HTTP if its process is of this daemon's user; else 403 and closed. */
  async #admit(socket: Socket, server: Server): Promise<void> {
    socket.on('error', () => undefined); // a peer gone while we look it up
    const admission = await this.#identify(socket).catch(() => undefined);
    if (socket.destroyed) return;
    if (!admission) {
      refuse(socket, 403, 'Forbidden', NOT_YOURS);
      return;
    }
    this.#admitted.set(socket, admission);
    server.emit('connection', socket);
    socket.resume();
  }

  async #identify(socket: Socket): Promise<Admission | undefined> {
    if (!this.#peers.supported) {
      if (this.#config.peerCheckUnsupported === 'allow') return { viaProxy: false };
      this.#log.warn('peer-refused', { reason: 'owner-check-unsupported' });
      return undefined;
    }
    const owner = await peerOwner(socket, this.#peers);
    if (!owner) {
      this.#log.warn('peer-refused', { reason: 'owner-unknown' });
      return undefined;
    }
    // The proxy runs as root and says, in a first line, whose connection it forwards (daemon/proxy.ts).
    // Only root's word counts: root could read this daemon's memory anyway.
    if (owner.uid === 0 && this.#config.behindProxy) {
      const said = await readPreamble(socket);
      if (said === 'none' && owner.user === this.#user) return { viaProxy: false };
      if (typeof said === 'number' && String(said) === this.#user) return { viaProxy: true };
      this.#log.warn('peer-refused', { reason: said === 'invalid' ? 'bad-proxy-preamble' : 'another-user' });
      return undefined;
    }
    if (owner.user === this.#user) return { viaProxy: false };
    // No uid, no name: the refused user's identity is none of this log's business.
    this.#log.warn('peer-refused', { reason: 'another-user' });
    return undefined;
  }

  /** Ends every pending PIN entry and operation, closes every connection; the card sessions stay open. */
  async close(): Promise<void> {
    if (this.#registration) await unregisterBehindProxy(this.#registration);
    this.#registration = undefined;
    const stopping = new SessionClosedError('the daemon is stopping');
    this.#entries.cancelAll(stopping);
    this.#notices.close();
    for (const c of this.#clients) {
      c.controller.abort(stopping);
      c.socket.terminate();
    }
    this.#wss.close();
    this.#twins.close();
    await Promise.all(
      this.#tcp.map(
        (tcp, i) =>
          new Promise((r) => {
            tcp.close(r);
            this.#http[i]?.closeAllConnections(); // PIN pages' event streams would keep it open
            this.#http[i]?.close(() => undefined); // its timers (it never listened itself: no error to see)
          }),
      ),
    );
  }

  // ------------------------------------------------------------ handshake checks

  /** daemon/authority.ts, for every request; an accepted absolute-form target is served by its path. */
  #authority(req: IncomingMessage): AuthorityCheck {
    // Through the proxy the browser wrote the proxy's port, which the proxy leaves as it is.
    const ports = this.#admitted.get(req.socket)?.viaProxy ? [this.#port, this.#config.port] : [this.#port];
    const check = checkAuthority(req, ports);
    if (check.ok) req.url = check.path;
    return check;
  }

  #checkUpgrade(req: IncomingMessage): { status: number; reason: string; detail?: string } | undefined {
    const authority = this.#authority(req);
    if (!authority.ok) return { status: authority.status, reason: authority.status === 400 ? 'Bad Request' : 'Misdirected Request', detail: authority.reason };
    const origin = req.headers.origin;
    if (origin !== undefined && !this.#config.allowedOrigins.includes(origin)) return { status: 403, reason: 'Forbidden' };
    // Only a look: the slot is taken once `ws` accepted the handshake (#onConnection). Taken here, a
    // handshake ws then refuses (a bad Sec-WebSocket-Protocol, version or key: 400) never gave it back.
    if (this.#limits.room(origin ?? null) === 'full') return { status: 503, reason: 'Service Unavailable' };
    return undefined;
  }

  // ------------------------------------------------------------ WebSocket

  #onConnection(socket: WebSocket, req: IncomingMessage): void {
    const origin = req.headers.origin ?? null;
    // ws completes an accepted handshake in the same tick as #checkUpgrade looked: the room is still
    // there. Should it not be, the connection is closed at once ("try again later"), its slot never taken.
    if (this.#limits.admit(origin) === 'full') {
      socket.close(1013, 'too many connections');
      return;
    }
    const controller = new AbortController();
    const client: Client = {
      socket,
      origin,
      signal: controller.signal,
      controller,
      bucket: this.#limits.connectionBucket(),
      pinPending: false,
      notify: (method, params) => this.#notify(client, method, params),
    };
    this.#clients.add(client);
    this.#log.info('connected', { origin });
    socket.on('message', (data, isBinary) => {
      // Every frame pays, valid or not: garbage cannot be sent faster than requests.
      const allowed = this.#limits.allow(client.bucket, origin);
      if (isBinary) return this.#reply(client, null, allowed ? new ProtocolError('INVALID_REQUEST', 'binary messages are not accepted') : RATE_LIMITED);
      void this.#onMessage(client, data.toString(), allowed);
    });
    socket.on('close', () => {
      this.#clients.delete(client);
      this.#limits.release(origin);
      // The page or app went away: its queued and running operations and its PIN entry end now.
      controller.abort(new ProtocolError('USER_CANCELLED', 'the connection closed'));
      this.#log.info('disconnected', { origin });
    });
    socket.on('error', (error) => this.#log.warn('socket-error', { error }));
  }

  async #onMessage(client: Client, text: string, allowed: boolean): Promise<void> {
    let request: Request;
    try {
      request = parseRequest(text);
    } catch (error) {
      return this.#reply(client, null, allowed ? error : RATE_LIMITED);
    }
    if (!allowed) return this.#reply(client, request.id, RATE_LIMITED);
    try {
      const result = await this.#dispatch(client, request);
      this.#reply(client, request.id, undefined, result);
    } catch (error) {
      this.#log.info('request-failed', { method: request.method, origin: client.origin, error });
      this.#reply(client, request.id, error);
    }
  }

  async #dispatch(client: Client, r: Request): Promise<unknown> {
    if (!isMethod(r.method)) throw new ProtocolError('METHOD_NOT_FOUND', `unknown method ${JSON.stringify(r.method.slice(0, 64))}`);
    const method = METHODS[r.method];
    checkParams(r.params, method.params);
    const ctx: MethodContext = {
      caller: client,
      requestId: r.id,
      params: r.params,
      sessions: this.#sessions,
      twins: this.#twins,
      guard: this.#guard,
      cache: this.#cache,
      config: this.#config,
      port: this.#port,
      log: this.#log,
      sso: this.#sso,
    };
    const needsPin = r.method === 'auth.authenticate' || r.method === 'sign.hash';
    if (!needsPin) return method.run(ctx);
    if (client.pinPending) throw new ProtocolError('BUSY', 'this connection already has an operation waiting for the PIN');
    client.pinPending = true;
    try {
      return await method.run(ctx);
    } finally {
      client.pinPending = false;
    }
  }

  #reply(client: Client, id: string | number | null, error?: unknown, result?: unknown): void {
    if (client.socket.readyState !== client.socket.OPEN) return;
    const message = error === undefined ? { jsonrpc: '2.0', id, result } : { jsonrpc: '2.0', id, error: toRpcError(error) };
    client.socket.send(JSON.stringify(message));
  }

  #notify(client: Client, method: string, params: unknown): void {
    if (client.socket.readyState === client.socket.OPEN) client.socket.send(JSON.stringify({ jsonrpc: '2.0', method, params }));
  }

  #broadcast(e: CardEvent): void {
    if (e.type === 'card.removed') {
      // Removing the card ends every SSO session and every pending PIN entry.
      this.#sso.clear();
      this.#entries.cancelAll(new ProtocolError('CARD_ABSENT', 'the card was removed'));
    }
    if (e.type === 'readers.changed') {
      // Say so once when the smart-card service goes away, and once when it is back.
      const down = this.#sessions.unavailable();
      if (down && !this.#pcscDown) this.#log.warn('pcsc-unavailable', { error: down });
      else if (!down && this.#pcscDown) this.#log.info('pcsc-available', { readers: e.readers.length });
      this.#pcscDown = down !== undefined;
    }
    const { type, ...params } = e;
    for (const c of this.#clients) this.#notify(c, type, params);
  }

  // ------------------------------------------------------------ the PIN page

  #onHttp(req: IncomingMessage, res: ServerResponse): void {
    const authority = this.#authority(req);
    if (!authority.ok) {
      res.writeHead(authority.status, { Connection: 'close' }).end();
      return;
    }
    if (this.#entries.handle(req, res)) return;
    if (this.#notices.handle(req, res)) return;
    res.writeHead(404, { 'Content-Type': 'text/plain', 'X-Content-Type-Options': 'nosniff' }).end('not found\n');
  }
}
