/**
 * The daemon's link to cpsd-idp for CIBA (docs/idp.md "CIBA", docs/protocol.md "Link to cpsd-idp"): a
 * WebSocket that the daemon opens to the IdP (wss://<idp>/ciba/device; the workstation listens on
 * nothing new), through which the IdP sends the CIBA requests of the holder whose card is here.
 *
 * - Registration: when a card is in the reader, the daemon makes a device key (P-256, in memory only) and
 *   asks the person, in its PIN window, to register this workstation; the card signs the IdP's challenge
 *   and the key's thumbprint. Cancelled: not asked again until the card is inserted again. On a new
 *   connection (network, IdP restart) the device key resumes the registration without the card.
 *   Card removed: the registration ends (unregister) and the key is forgotten.
 * - A request: the PIN window names the application and shows the binding message; with the PIN typed by
 *   the person, the card signs the challenge binding the auth_req_id, the client and the binding message
 *   (pkcs/ciba-challenge.ts), and the token goes back on the link. Cancel, window closed, no PIN in time,
 *   card removed, request expired: the daemon's error code goes back instead.
 *
 * Same PIN guard as the browser: the PIN only comes from the person, never kept after the VERIFY, never
 * logged; no try is spent unless the person typed a PIN.
 */
import { createHash, generateKeyPairSync, sign as signData, type KeyObject } from 'node:crypto';
import { WebSocket } from 'ws';
import { CpsCard } from '../cards/card.js';
import type { CardEvent, CardSessions } from '../cards/session.js';
import { jwkThumbprint, registrationNonce, requestNonce, resumeData, DEVICE_LINK_PATH, type DeviceToIdp, type IdpToDevice } from '../pkcs/ciba-challenge.js';
import { TOKEN_FORMAT, signedData, type AuthToken } from '../pkcs/token.js';
import type { Logger } from './log.js';
import { VERSION } from './methods.js';
import type { Caller, PinGuard } from './pin-guard.js';
import { ProtocolError, toRpcError } from './protocol.js';

export interface IdpLinkOptions {
  /** The IdP's origin (its issuer), https:// (http://localhost only in development). */
  idp: string;
  guard: PinGuard;
  sessions: CardSessions;
  log: Logger;
  /** Shows the daemon's PIN window (`cpsd serve`: the configured command, xdg-open by default). */
  openWindow: (url: string) => void;
  /** First reconnection delay (doubles up to 30 s). */
  retryMs?: number;
}

interface Device {
  key: KeyObject;
  jwk: Record<string, unknown>;
  thumbprint: string;
  /** Set once the IdP accepted the registration; kept across connections (what `resume` names). */
  sub: string | undefined;
  serial: string;
}

const APP_VERSION = `https://github.com/cpsd/cpsd/releases/tag/v${VERSION}`;

export class IdpLink {
  readonly #o: IdpLinkOptions;
  #socket: WebSocket | undefined;
  #challenge = '';
  #device: Device | undefined;
  /** The card serial whose registration the person declined: not asked again until it is inserted again. */
  #declined: string | undefined;
  #registering = false;
  /** A resume was sent on this connection and not yet answered. */
  #resuming = false;
  #closed = false;
  #retry: NodeJS.Timeout | undefined;
  #delay: number;
  /** Aborted on close and card removal: the PIN entries of the link end. */
  #controller = new AbortController();
  readonly #onCard = (e: CardEvent): void => this.#cardEvent(e);
  /** Resolved at each 'registered' (tests, `cpsd serve` logs). */
  readonly registered: { sub: string | undefined } = { sub: undefined };

  constructor(options: IdpLinkOptions) {
    this.#o = options;
    this.#delay = options.retryMs ?? 1000;
  }

  get url(): string {
    const u = new URL(DEVICE_LINK_PATH, this.#o.idp);
    u.protocol = u.protocol === 'https:' ? 'wss:' : 'ws:';
    return u.href;
  }

  start(): void {
    this.#o.sessions.on('event', this.#onCard);
    this.#connect();
  }

  close(): void {
    this.#closed = true;
    clearTimeout(this.#retry);
    this.#o.sessions.off('event', this.#onCard);
    this.#controller.abort(new ProtocolError('USER_CANCELLED', 'the daemon is stopping'));
    this.#socket?.terminate();
  }

  #connect(): void {
    if (this.#closed) return;
    const socket = new WebSocket(this.url, { maxPayload: 64 * 1024, handshakeTimeout: 10_000 });
    this.#socket = socket;
    socket.on('open', () => {
      this.#delay = this.#o.retryMs ?? 1000;
      this.#o.log.info('idp-link-open', { idp: this.#o.idp });
    });
    socket.on('message', (data) => {
      let message: IdpToDevice;
      try {
        message = JSON.parse(data.toString()) as IdpToDevice;
      } catch {
        return;
      }
      void this.#onMessage(message).catch((error: unknown) => this.#o.log.warn('idp-link-error', { error }));
    });
    socket.on('error', (error) => this.#o.log.warn('idp-link-unavailable', { idp: this.#o.idp, error }));
    socket.on('close', () => {
      this.#resuming = false;
      this.registered.sub = undefined;
      if (this.#closed) return;
      this.#retry = setTimeout(() => this.#connect(), this.#delay);
      this.#delay = Math.min(this.#delay * 2, 30_000);
    });
  }

  #send(message: DeviceToIdp): void {
    if (this.#socket?.readyState === WebSocket.OPEN) this.#socket.send(JSON.stringify(message));
  }

  /** The link's caller for the PIN guard: the IdP's origin; a PIN window opened by the daemon itself. */
  #caller(signal: AbortSignal): Caller {
    return {
      origin: this.#o.idp,
      signal,
      notify: (method, params) => {
        if (method === 'pin.required' && typeof params.url === 'string') this.#o.openWindow(params.url);
      },
    };
  }

  async #onMessage(message: IdpToDevice): Promise<void> {
    switch (message.type) {
      case 'hello':
        this.#challenge = message.challenge;
        // A device the IdP accepted before resumes with its key; one it never answered registers again.
        if (this.#device?.sub) return this.#resume(this.#device);
        this.#device = undefined;
        return this.#register();
      case 'registered':
        this.#resuming = false;
        if (this.#device) this.#device.sub = message.sub;
        this.registered.sub = message.sub;
        this.#o.log.info('idp-link-registered', { idp: this.#o.idp });
        return;
      case 'refused':
        this.#o.log.warn('idp-link-refused', { code: message.code, message: message.message });
        // A resume refused (registration expired, IdP's store reset): the card registers again.
        if (this.#resuming) {
          this.#resuming = false;
          this.#device = undefined;
          return this.#register();
        }
        // A registration refused, or replaced by a newer one elsewhere: this card registers again only
        // when it is inserted again.
        if (!this.#registering) {
          this.#device = undefined;
          this.registered.sub = undefined;
        }
        return;
      case 'request':
        return this.#request(message);
      default:
        return;
    }
  }

  #resume(device: Device): void {
    const signature = signData('sha256', resumeData(this.#o.idp, this.#challenge), { key: device.key, dsaEncoding: 'ieee-p1363' }).toString('base64url');
    this.#resuming = true;
    this.#send({ type: 'resume', sub: device.sub ?? '', deviceKey: device.jwk, signature });
  }

  /** Registers the card in the reader, if any, with the person's PIN. */
  async #register(): Promise<void> {
    if (this.#registering || this.#closed || this.#socket?.readyState !== WebSocket.OPEN) return;
    this.#registering = true;
    const signal = this.#controller.signal;
    try {
      const caller = this.#caller(signal);
      const look = await this.#o.guard.look(caller, undefined).catch(() => undefined);
      if (!look || look.contactless || look.blocked || look.data.serial === this.#declined) return;
      const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
      const exported = publicKey.export({ format: 'jwk' });
      const jwk = { kty: exported.kty, crv: exported.crv, x: exported.x, y: exported.y };
      const thumbprint = jwkThumbprint(jwk);
      const challenge = this.#challenge;
      const token = await this.#o.guard.withPin(
        caller,
        {
          requestId: 'ciba-register',
          reader: undefined,
          purpose: 'authentication',
          pin: undefined,
          after: 'reset',
          ciba: { application: 'cpsd-idp', bindingMessage: undefined, register: true },
          run: (card, data) => this.#sign(card, data.authCertificate, registrationNonce(challenge, thumbprint)),
        },
        look,
      );
      this.#device = { key: privateKey, jwk, thumbprint, sub: undefined, serial: look.data.serial };
      this.#send({ type: 'register', token, deviceKey: jwk });
    } catch (error) {
      const code = toRpcError(error).data.code;
      this.#o.log.info('idp-link-not-registered', { code });
      // Cancelled, or the window closed: the person said no for this card insertion.
      if (code === 'USER_CANCELLED' || code === 'TIMEOUT') this.#declined = (await this.#o.guard.look(this.#caller(signal), undefined).catch(() => undefined))?.data.serial;
    } finally {
      this.#registering = false;
    }
  }

  async #sign(card: CpsCard, certificate: Uint8Array | undefined, nonce: string): Promise<AuthToken> {
    if (!certificate) throw new ProtocolError('CARD_ERROR', 'the card holds no authentication certificate');
    const digest = createHash('sha256').update(signedData(this.#o.idp, nonce)).digest();
    const signature = await card.authenticate(CpsCard.digestInfo('sha256', digest));
    return { unverifiedCertificate: Buffer.from(certificate).toString('base64'), algorithm: 'RS256', signature: Buffer.from(signature).toString('base64'), format: TOKEN_FORMAT, appVersion: APP_VERSION };
  }

  async #request(message: Extract<IdpToDevice, { type: 'request' }>): Promise<void> {
    const device = this.#device;
    const id = String(message.id);
    if (!device?.sub || this.registered.sub === undefined) return this.#send({ type: 'result', id, error: 'CARD_ABSENT' });
    // The request's own lifetime bounds the PIN window; the daemon's stop and the card's removal too.
    const controller = new AbortController();
    // A second after the IdP's own expiry (whole seconds there): the client then gets expired_token.
    const expiry = setTimeout(() => controller.abort(new ProtocolError('TIMEOUT', 'the request expired')), Math.max(0, message.expiresAt + 1000 - Date.now()));
    const stop = (): void => controller.abort(this.#controller.signal.reason);
    this.#controller.signal.addEventListener('abort', stop, { once: true });
    try {
      const clientId = String(message.client.id);
      const bindingMessage = typeof message.bindingMessage === 'string' ? message.bindingMessage : undefined;
      const token = await this.#o.guard.withPin(this.#caller(controller.signal), {
        requestId: id,
        reader: undefined,
        purpose: 'authentication',
        pin: undefined,
        after: 'reset',
        ciba: { application: String(message.client.name), bindingMessage },
        run: async (card, data) => {
          // The card that registered, and no other, answers.
          if (data.serial !== device.serial) throw new ProtocolError('CARD_ABSENT', 'another card is in the reader');
          return this.#sign(card, data.authCertificate, requestNonce(id, clientId, bindingMessage));
        },
      });
      this.#send({ type: 'result', id, token });
      this.#o.log.audit({ operation: 'ciba', origin: this.#o.idp, serial: device.serial, outcome: 'ok' });
    } catch (error) {
      const code = toRpcError(error).data.code;
      this.#send({ type: 'result', id, error: code });
      this.#o.log.audit({ operation: 'ciba', origin: this.#o.idp, serial: device.serial, outcome: code });
    } finally {
      clearTimeout(expiry);
      this.#controller.signal.removeEventListener('abort', stop);
    }
  }

  #cardEvent(e: CardEvent): void {
    if (e.type === 'card.removed') {
      // The registration ends with the card: unregister and forget the device key.
      if (this.#device) this.#send({ type: 'unregister' });
      this.#device = undefined;
      this.registered.sub = undefined;
      this.#declined = undefined;
      this.#controller.abort(new ProtocolError('CARD_ABSENT', 'the card was removed'));
      this.#controller = new AbortController();
    }
    if (e.type === 'card.inserted' && !this.#device) void this.#register();
  }
}
