/**
 * `cpsd serve`: the loopback WebSocket API (docs/protocol.md) and the daemon's own PIN page.
 *
 * Security rules (anchors.md §13, §15): listen on 127.0.0.1 and ::1 only; refuse any request whose Host
 * is not a loopback name with our port (DNS rebinding) and any upgrade whose Origin is not exactly on
 * the allow-list; the origin comes from the handshake, never from a message, and is bound into what the
 * card signs; a PIN never crosses a web origin's WebSocket: it is typed on the daemon's PIN page (or a
 * PIN pad), and only local applications without an Origin may send it in a request.
 */
import { createHash, randomBytes } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { WebSocketServer, type WebSocket } from 'ws';
import { CpsCard } from '../cards/card.js';
import { MemoryCardCache, readPublicData } from '../cards/public-data.js';
import { holderIdentity } from '../pkcs/holder.js';
import { TOKEN_FORMAT, signedData, type AuthToken } from '../pkcs/token.js';
import type { CardEvent, CardSource, PinPad } from './cards.js';
import type { DaemonConfig } from './config.js';
import type { Logger } from './log.js';
import { PROTOCOL, ProtocolError, checkParams, parseRequest, toRpcError, type Request } from './protocol.js';

const VERSION = '0.1.0';
const APP_VERSION = `https://github.com/cpsd/cpsd/releases/tag/v${VERSION}`;

interface Client {
  socket: WebSocket;
  /** From the handshake's Origin header; null for local applications. */
  origin: string | null;
  tokens: number;
  last: number;
}

interface PendingPin {
  id: string;
  csrf: string;
  origin: string | null;
  holder: string;
  triesLeft: number;
  resolve: (pin: string) => void;
  reject: (error: Error) => void;
  timer: NodeJS.Timeout;
}

const b64 = (bytes: Uint8Array): string => Buffer.from(bytes).toString('base64');
/** Jobs that only read may run again after another application reset the card (SHARED access). */
const READ_ONLY = { retryOnReset: true } as const;

export class CpsdServer {
  readonly #config: DaemonConfig;
  readonly #cards: CardSource;
  readonly #log: Logger;
  readonly #http: Server[] = [];
  readonly #wss: WebSocketServer;
  readonly #clients = new Set<Client>();
  readonly #pending = new Map<string, PendingPin>();
  readonly #cache = new MemoryCardCache();
  readonly #originBuckets = new Map<string, { tokens: number; last: number }>();
  /** SSO windows configured by IT: origin → card serial and expiry of the verified state it may reuse. */
  readonly #sessions = new Map<string, { serial: string; until: number }>();
  #port = 0;

  constructor(config: DaemonConfig, cards: CardSource, log: Logger) {
    this.#config = config;
    this.#cards = cards;
    this.#log = log;
    this.#wss = new WebSocketServer({ noServer: true, maxPayload: config.maxMessageBytes });
    cards.on('event', (e) => this.#broadcast(e));
  }

  get port(): number {
    return this.#port;
  }

  /** Listens on 127.0.0.1 and, when the machine has IPv6, on ::1; never on another interface. */
  async listen(): Promise<void> {
    const first = await this.#listenOn('127.0.0.1', this.#config.port);
    this.#port = first;
    try {
      await this.#listenOn('::1', first);
    } catch (error) {
      this.#log.warn('ipv6-loopback-unavailable', { error });
    }
    this.#log.info('listening', { port: this.#port, origins: this.#config.allowedOrigins });
  }

  #listenOn(host: string, port: number): Promise<number> {
    const server = createServer((req, res) => this.#onHttp(req, res));
    server.on('upgrade', (req, socket, head) => {
      const refusal = this.#checkUpgrade(req);
      if (refusal) {
        this.#log.warn('upgrade-refused', { reason: refusal.reason, origin: req.headers.origin ?? null, host: req.headers.host ?? null });
        socket.end(`HTTP/1.1 ${refusal.status} ${refusal.reason}\r\nConnection: close\r\nContent-Length: 0\r\n\r\n`);
        return;
      }
      this.#wss.handleUpgrade(req, socket, head, (ws) => this.#onConnection(ws, req));
    });
    return new Promise((resolve, reject) => {
      server.once('error', reject);
      server.listen({ host, port, exclusive: true }, () => {
        server.off('error', reject);
        this.#http.push(server);
        resolve((server.address() as AddressInfo).port);
      });
    });
  }

  async close(): Promise<void> {
    for (const p of this.#pending.values()) {
      clearTimeout(p.timer);
      p.reject(new ProtocolError('USER_CANCELLED', 'the daemon is stopping'));
    }
    for (const c of this.#clients) c.socket.terminate();
    this.#wss.close();
    await Promise.all(this.#http.map((s) => new Promise((r) => s.close(r))));
  }

  // ------------------------------------------------------------ handshake checks

  #hostAllowed(host: string | undefined): boolean {
    if (!host) return false;
    const p = this.#port;
    return host === `127.0.0.1:${p}` || host === `[::1]:${p}` || host === `localhost:${p}`;
  }

  #checkUpgrade(req: IncomingMessage): { status: number; reason: string } | undefined {
    if (!this.#hostAllowed(req.headers.host)) return { status: 421, reason: 'Misdirected Request' };
    const origin = req.headers.origin;
    if (origin !== undefined && !this.#config.allowedOrigins.includes(origin)) return { status: 403, reason: 'Forbidden' };
    if (this.#clients.size >= this.#config.maxConnections) return { status: 503, reason: 'Service Unavailable' };
    return undefined;
  }

  // ------------------------------------------------------------ WebSocket

  #onConnection(socket: WebSocket, req: IncomingMessage): void {
    const client: Client = { socket, origin: req.headers.origin ?? null, tokens: this.#config.ratePerSecond, last: Date.now() };
    this.#clients.add(client);
    this.#log.info('connected', { origin: client.origin });
    socket.on('message', (data, isBinary) => {
      if (isBinary) return this.#reply(client, null, new ProtocolError('INVALID_REQUEST', 'binary messages are not accepted'));
      void this.#onMessage(client, data.toString());
    });
    socket.on('close', () => {
      this.#clients.delete(client);
      this.#log.info('disconnected', { origin: client.origin });
    });
    socket.on('error', (error) => this.#log.warn('socket-error', { error }));
  }

  #rateLimited(client: Client): boolean {
    const now = Date.now();
    const refill = (b: { tokens: number; last: number }, rate: number): boolean => {
      b.tokens = Math.min(rate, b.tokens + ((now - b.last) / 1000) * rate);
      b.last = now;
      if (b.tokens < 1) return false;
      b.tokens -= 1;
      return true;
    };
    if (!refill(client, this.#config.ratePerSecond)) return true;
    if (client.origin) {
      const rate = this.#config.ratePerSecond * 4;
      const bucket = this.#originBuckets.get(client.origin) ?? { tokens: rate, last: now };
      this.#originBuckets.set(client.origin, bucket);
      if (!refill(bucket, rate)) return true;
    }
    return false;
  }

  async #onMessage(client: Client, text: string): Promise<void> {
    let request: Request;
    try {
      request = parseRequest(text);
    } catch (error) {
      return this.#reply(client, null, error);
    }
    if (this.#rateLimited(client)) return this.#reply(client, request.id, new ProtocolError('RATE_LIMITED', 'too many requests'));
    try {
      const result = await this.#dispatch(client, request);
      this.#reply(client, request.id, undefined, result);
    } catch (error) {
      this.#log.info('request-failed', { method: request.method, origin: client.origin, error });
      this.#reply(client, request.id, error);
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
      // Removing the card ends every session and every pending PIN entry.
      this.#sessions.clear();
      for (const p of this.#pending.values()) p.reject(new ProtocolError('CARD_ABSENT', 'the card was removed'));
    }
    const { type, ...params } = e;
    for (const c of this.#clients) this.#notify(c, type, params);
  }

  async #dispatch(client: Client, r: Request): Promise<unknown> {
    const reader = (): string | undefined => r.params.reader as string | undefined;
    switch (r.method) {
      case 'hello':
        checkParams(r.params, {});
        return {
          protocol: PROTOCOL,
          version: VERSION,
          origin: client.origin,
          methods: ['hello', 'readers.list', 'card.status', 'card.identity', 'card.certificates', 'auth.authenticate', 'sign.hash', 'session.logout'],
          notifications: ['readers.changed', 'card.inserted', 'card.removed', 'pin.required'],
          pinEntry: client.origin === null && this.#config.allowPinInRequest ? ['page', 'request'] : ['page'],
        };
      case 'readers.list':
        checkParams(r.params, {});
        return { readers: this.#cards.readers() };
      case 'card.status':
        checkParams(r.params, { reader: 'reader?' });
        return this.#cards.withCard(reader(), async (card, name) => {
          const data = await readPublicData(card, this.#cache);
          const pin = await card.pinStatus();
          return {
            reader: name,
            atr: Buffer.from(card.atr).toString('hex').toUpperCase(),
            generation: card.kind.generation,
            interface: card.kind.interface,
            serial: data.serial,
            pin: { triesLeft: pin.triesLeft, max: pin.max, blocked: pin.blocked },
          };
        }, 'leave', READ_ONLY);
      case 'card.identity':
        checkParams(r.params, { reader: 'reader?' });
        return this.#cards.withCard(reader(), async (card) => this.#identity(card), 'leave', READ_ONLY);
      case 'card.certificates':
        checkParams(r.params, { reader: 'reader?' });
        return this.#cards.withCard(reader(), async (card) => {
          const data = await readPublicData(card, this.#cache);
          return {
            authentication: data.authCertificate ? b64(data.authCertificate) : null,
            signing: data.signCertificate ? b64(data.signCertificate) : null,
          };
        }, 'leave', READ_ONLY);
      case 'auth.authenticate':
        checkParams(r.params, { nonce: 'nonce', reader: 'reader?', pin: 'pin?' });
        return this.#authenticate(client, r);
      case 'sign.hash':
        checkParams(r.params, { hash: 'base64url', hashAlgorithm: 'hashAlgorithm', reader: 'reader?', pin: 'pin?' });
        return this.#signHash(client, r);
      case 'session.logout':
        checkParams(r.params, { reader: 'reader?' });
        if (client.origin) this.#sessions.delete(client.origin);
        await this.#cards.withCard(reader(), async (card) => card.logout().catch(() => undefined), 'reset');
        return { ok: true };
      default:
        throw new ProtocolError('METHOD_NOT_FOUND', `unknown method ${JSON.stringify(r.method.slice(0, 64))}`);
    }
  }

  async #identity(card: CpsCard): Promise<Record<string, unknown>> {
    const data = await readPublicData(card, this.#cache);
    const certificate = data.authCertificate ?? data.signCertificate;
    if (!certificate) throw new ProtocolError('CARD_ERROR', 'the card holds no certificate');
    return { ...holderIdentity({ certificate, serial: data.serial, data: data.data }) };
  }

  /** Gets the PIN for one operation: from a local app's request, or from the user on the PIN page. */
  async #pin(client: Client, r: Request, card: CpsCard, purpose: string): Promise<string> {
    const inRequest = r.params.pin as string | undefined;
    if (inRequest !== undefined) {
      if (client.origin !== null) throw new ProtocolError('PIN_NOT_ALLOWED', 'a web page never sends the PIN: it is typed on the PIN page');
      if (!this.#config.allowPinInRequest) throw new ProtocolError('PIN_NOT_ALLOWED', 'PIN in requests is disabled by configuration');
      return inRequest;
    }
    const status = await card.pinStatus();
    if (status.blocked) throw new ProtocolError('PIN_BLOCKED', 'the PIN is blocked', { triesLeft: 0 });
    const identity = await this.#identity(card);
    const id = randomBytes(16).toString('hex');
    const csrf = randomBytes(16).toString('hex');
    const holder = `${String(identity.givenName)} ${String(identity.surname)}`;
    return new Promise<string>((resolve, reject) => {
      const done = (): void => {
        clearTimeout(pending.timer);
        this.#pending.delete(id);
      };
      const pending: PendingPin = {
        id,
        csrf,
        origin: client.origin,
        holder,
        triesLeft: status.triesLeft,
        resolve: (pin) => (done(), resolve(pin)),
        reject: (error) => (done(), reject(error)),
        timer: setTimeout(() => pending.reject(new ProtocolError('TIMEOUT', 'no PIN was entered in time')), this.#config.pinTimeoutMs),
      };
      this.#pending.set(id, pending);
      this.#notify(client, 'pin.required', {
        requestId: r.id,
        url: `http://127.0.0.1:${this.#port}/pin/${id}`,
        purpose,
        triesLeft: status.triesLeft,
      });
    });
  }

  /**
   * Verifies the PIN for this operation: typed on the reader's PIN pad when it has one (never seen by
   * the host), else from a local app's request or the daemon's PIN page, held for redaction meanwhile.
   */
  async #verifyPin(client: Client, r: Request, card: CpsCard, purpose: string, pinPad: PinPad | undefined): Promise<void> {
    if (pinPad && r.params.pin === undefined) {
      const status = await card.pinStatus();
      if (status.blocked) throw new ProtocolError('PIN_BLOCKED', 'the PIN is blocked', { triesLeft: 0 });
      this.#notify(client, 'pin.required', { requestId: r.id, pinPad: true, purpose, triesLeft: status.triesLeft });
      await card.verifyPinOnReader(pinPad);
      return;
    }
    const pin = await this.#pin(client, r, card, purpose);
    const release = this.#log.holdSecret(pin);
    try {
      await card.verifyPin(pin);
    } finally {
      release();
    }
  }

  /** Runs a card operation with its PIN, writing the audit line (origin, card serial, outcome) either way. */
  async #audited<T>(operation: string, client: Client, run: (setSerial: (s: string) => void) => Promise<T>): Promise<T> {
    let serial: string | null = null;
    try {
      const result = await run((s) => (serial = s));
      this.#log.audit({ operation, origin: client.origin, serial, outcome: 'ok' });
      return result;
    } catch (error) {
      this.#log.audit({ operation, origin: client.origin, serial, outcome: toRpcError(error).data.code });
      throw error;
    }
  }

  async #authenticate(client: Client, r: Request): Promise<unknown> {
    const nonce = r.params.nonce as string;
    const origin = client.origin ?? 'null';
    return this.#audited('authenticate', client, (setSerial) =>
      this.#cards.withCard(
        r.params.reader as string | undefined,
        async (card, _reader, pinPad) => {
          const data = await readPublicData(card, this.#cache);
          setSerial(data.serial);
          const session = client.origin ? this.#sessions.get(client.origin) : undefined;
          const reuse = session !== undefined && session.serial === data.serial && session.until > Date.now() && (await card.pinStatus()).verified;
          if (!reuse) {
            await this.#verifyPin(client, r, card, 'authentication', pinPad);
            const sso = this.#ssoFor(client.origin);
            if (client.origin && sso > 0) this.#sessions.set(client.origin, { serial: data.serial, until: Date.now() + sso * 1000 });
          }
          // Web eID: the card signs H(origin) ‖ H(nonce), the origin being the browser-enforced one.
          const signed = signedData(origin, nonce);
          const signature = await card.authenticate(CpsCard.digestInfo('sha256', createHash('sha256').update(signed).digest()));
          const token: AuthToken = {
            unverifiedCertificate: b64(data.authCertificate ?? new Uint8Array(0)),
            algorithm: 'RS256',
            signature: b64(signature),
            format: TOKEN_FORMAT,
            appVersion: APP_VERSION,
          };
          return token;
        },
        this.#ssoFor(client.origin) > 0 ? 'leave' : 'reset',
      ),
    );
  }

  #ssoFor(origin: string | null): number {
    return origin ? (this.#config.ssoSeconds[origin] ?? 0) : 0;
  }

  async #signHash(client: Client, r: Request): Promise<unknown> {
    const hash = Buffer.from(r.params.hash as string, 'base64url');
    const alg = r.params.hashAlgorithm === 'SHA-1' ? 'sha1' : 'sha256';
    if (hash.length !== (alg === 'sha1' ? 20 : 32)) throw new ProtocolError('INVALID_REQUEST', `a ${String(r.params.hashAlgorithm)} hash is ${alg === 'sha1' ? 20 : 32} bytes`);
    // The signing key always needs its own PIN entry, and the card is reset afterwards.
    return this.#audited('sign', client, (setSerial) =>
      this.#cards.withCard(
        r.params.reader as string | undefined,
        async (card, _reader, pinPad) => {
          const data = await readPublicData(card, this.#cache);
          setSerial(data.serial);
          await this.#verifyPin(client, r, card, 'signature', pinPad);
          const signature = await card.sign(alg, { digest: hash });
          return { signature: b64(signature), certificate: data.signCertificate ? b64(data.signCertificate) : null };
        },
        'reset',
      ),
    );
  }

  // ------------------------------------------------------------ the PIN page

  #onHttp(req: IncomingMessage, res: ServerResponse): void {
    const security = {
      'Content-Security-Policy': "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
      'X-Frame-Options': 'DENY',
      'X-Content-Type-Options': 'nosniff',
      // same-origin, not no-referrer: with no-referrer Chrome sends "Origin: null" on the form post.
      'Referrer-Policy': 'same-origin',
      'Cache-Control': 'no-store',
    };
    if (!this.#hostAllowed(req.headers.host)) {
      res.writeHead(421, security).end();
      return;
    }
    const match = /^\/pin\/([0-9a-f]{32})$/.exec(req.url ?? '');
    const pending = match?.[1] ? this.#pending.get(match[1]) : undefined;
    if (!pending) {
      res.writeHead(404, { ...security, 'Content-Type': 'text/plain' }).end('not found\n');
      return;
    }
    if (req.method === 'GET') {
      res.writeHead(200, { ...security, 'Content-Type': 'text/html; charset=utf-8' }).end(pinPage(pending));
      return;
    }
    if (req.method !== 'POST') {
      res.writeHead(405, security).end();
      return;
    }
    // CSRF: only the page itself (same origin, one-time token) may post the PIN.
    const ownOrigins = [`http://127.0.0.1:${this.#port}`, `http://localhost:${this.#port}`, `http://[::1]:${this.#port}`];
    if (req.headers.origin !== undefined && !ownOrigins.includes(req.headers.origin)) {
      res.writeHead(403, security).end();
      return;
    }
    let body = '';
    req.on('data', (chunk: Buffer) => {
      body += chunk.toString('utf8');
      if (body.length > 1024) req.destroy();
    });
    req.on('end', () => {
      const form = new URLSearchParams(body);
      if (form.get('csrf') !== pending.csrf) {
        res.writeHead(403, security).end();
        return;
      }
      if (form.get('cancel') !== null) pending.reject(new ProtocolError('USER_CANCELLED', 'the user cancelled the PIN entry'));
      else {
        const pin = form.get('pin') ?? '';
        const release = this.#log.holdSecret(pin);
        setTimeout(release, 5000);
        pending.resolve(pin);
      }
      res.writeHead(200, { ...security, 'Content-Type': 'text/html; charset=utf-8' }).end('<!doctype html><title>cpsd</title><p>OK. You can close this window.</p>');
    });
  }
}

function escapeHtml(s: string): string {
  return s.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

function pinPage(p: PendingPin): string {
  const who = escapeHtml(p.origin ?? 'a local application');
  return `<!doctype html>
<html lang="fr"><head><meta charset="utf-8"><title>cpsd — code porteur</title>
<style>body{font:16px system-ui;margin:2em;max-width:28em}input{font-size:1.4em;width:6em;letter-spacing:.3em}</style></head>
<body><h1>Code porteur de votre carte CPS</h1>
<p><strong>${who}</strong> demande une authentification par carte CPS.</p>
<p>Carte de <strong>${escapeHtml(p.holder)}</strong> — ${p.triesLeft} essai(s) restant(s).</p>
<form method="post" autocomplete="off">
<input type="hidden" name="csrf" value="${p.csrf}">
<label>Code porteur <input name="pin" type="password" inputmode="numeric" pattern="[0-9]{4}" maxlength="4" required autofocus></label>
<button type="submit">Valider</button> <button type="submit" name="cancel" value="1" formnovalidate>Annuler</button>
</form></body></html>`;
}
