/**
 * CIBA (OpenID Connect Client-Initiated Backchannel Authentication, poll and ping) in cpsd-idp: an
 * application without a browser on the workstation asks the IdP to authenticate a health professional by
 * national id (`login_hint`) with a `binding_message`; the request goes to the cpsd daemon of the
 * workstation where that holder's card is, over a link the daemon opened (WebSocket at /ciba/device: no
 * inbound port on the workstation). The daemon's PIN window names the application and shows the binding
 * message; the card signs a challenge binding the auth_req_id, the client and the binding message, which
 * this file verifies with `cpsd/verify` like a browser login, then completes the request with
 * `provider.backchannelResult` (oidc-provider does the rest: the token endpoint, polling, pings).
 *
 * Registration (docs/idp.md, "CIBA"): at card insertion the daemon makes a device key (P-256) and the card
 * signs, with the PIN, this connection's challenge and the key's thumbprint. That proves the holder, with
 * card and PIN, put this device in charge of their requests until the card leaves or 12 h pass; the
 * device key then resumes the registration on a new connection without the card. A false registration
 * (without the card and PIN) is impossible; one made with a stolen card and PIN lets its maker see
 * (application, binding message) and refuse that holder's requests, never complete one: each completion
 * is a new card signature over that request, with the PIN.
 *
 * Several instances: the registrations and the "online" marks are in the shared store; a request for a
 * holder whose link is on another instance waits in the store, and each instance looks every second for
 * the holders linked to it.
 */
import { createPublicKey, randomBytes, verify as verifySignature } from 'node:crypto';
import type { IncomingMessage } from 'node:http';
import type { Duplex } from 'node:stream';
import { errors, type CIBAConfiguration, type KoaContextWithOIDC, type default as Provider } from 'oidc-provider';
import { WebSocketServer, type WebSocket } from 'ws';
import { CpsdError } from '../core/errors.js';
import { DEVICE_LINK_PATH, jwkThumbprint, registrationNonce, requestNonce, resumeData, type DeviceToIdp, type IdpToDevice } from '../pkcs/ciba-challenge.js';
import { TokenError, TrustError, verify } from '../pkcs/verify.js';
import { ACR_CARD_PIN, AMR_CARD_PIN, holderClaims, type HolderClaims } from './claims.js';
import type { AuditEvent, TrustOptions } from './interaction.js';
import type { AccountStore } from './provider.js';
import type { KeyValueStore } from './store.js';

/**
 * CIBA's refusals (core/errors.ts), each with the OAuth error the client receives:
 * CIBA_UNKNOWN_HOLDER       unknown_user_id at the backchannel endpoint: no holder with this national id
 *                           registered a workstation with this IdP (in the last 90 days);
 * CIBA_NO_WORKSTATION       access_denied at the backchannel endpoint: the holder is known, but no
 *                           workstation with their card is linked right now;
 * CIBA_REFUSED              access_denied at the token endpoint: the person cancelled or closed the PIN window,
 *                           or typed no PIN in time;
 * CIBA_FAILED               access_denied at the token endpoint: the workstation could not complete (card
 *                           removed, PIN blocked or wrong, card error), or its signature did not verify;
 * CIBA_REGISTRATION_INVALID the device link: a registration whose proof does not verify (told to the daemon).
 */
export type CibaErrorCode = 'CIBA_UNKNOWN_HOLDER' | 'CIBA_NO_WORKSTATION' | 'CIBA_REFUSED' | 'CIBA_FAILED' | 'CIBA_REGISTRATION_INVALID';

export class CibaError extends CpsdError {
  readonly code: CibaErrorCode;
  /** The workstation's own code (the daemon protocol's: USER_CANCELLED, CARD_ABSENT, PIN_BLOCKED…), when it said one. */
  readonly workstationCode: string | undefined;

  constructor(code: CibaErrorCode, message: string, workstationCode?: string) {
    super(message);
    this.code = code;
    this.workstationCode = workstationCode;
  }
}

/** The texts of the refusals (core/messages.ts); the English one is the OAuth error_description (ASCII). */
export const CIBA_MESSAGES = {
  CIBA_UNKNOWN_HOLDER: 'idp.ciba.CIBA_UNKNOWN_HOLDER',
  CIBA_NO_WORKSTATION: 'idp.ciba.CIBA_NO_WORKSTATION',
  CIBA_REFUSED: 'idp.ciba.CIBA_REFUSED',
  CIBA_FAILED: 'idp.ciba.CIBA_FAILED',
  CIBA_REGISTRATION_INVALID: 'idp.ciba.CIBA_REGISTRATION_INVALID',
} as const satisfies Record<CibaErrorCode, string>;

/** The workstation's codes that mean "the person did not go on" (the rest: CIBA_FAILED). */
const REFUSALS: readonly string[] = ['USER_CANCELLED', 'TIMEOUT'];

/** How long a registration lasts without the card being inserted again: a working day. */
export const REGISTRATION_SECONDS = 12 * 3600;
/** How long a holder stays "known" (unknown_user_id otherwise) after their last registration. */
const KNOWN_SECONDS = 90 * 24 * 3600;
/** An instance marks its linked holders online for this long, again every ONLINE_REFRESH_MS. */
const ONLINE_SECONDS = 45;
const ONLINE_REFRESH_MS = 15_000;
/** A connection that registers nothing within this time is closed. */
const IDLE_UNREGISTERED_MS = 10 * 60_000;
/** The binding message: short, one line, printable; shown as it is in the PIN window. */
const BINDING_MESSAGE = /^[\p{L}\p{N} .,:;!?#+/_'()-]{1,32}$/u;

export interface CibaOptions {
  provider: () => Provider;
  accounts: AccountStore;
  store: KeyValueStore;
  trust: TrustOptions;
  origin: () => string;
  allowHttpLocalhost: boolean;
  audit: (event: AuditEvent) => void;
  /** Client-side messages, in English, for the error descriptions. */
  describe: (code: CibaErrorCode) => string;
}

interface Link {
  socket: WebSocket;
  challenge: string;
  sub: string | undefined;
  thumbprint: string | undefined;
  /**
   * The holder this link was last registered for: the daemon unregisters at card removal just before it
   * reports the removal's failure of a pending request, which must still reach that request.
   */
  former: string | undefined;
}

interface DeviceRecord {
  thumbprint: string;
  jwk: Record<string, unknown>;
  claims: HolderClaims;
}

/** The oidc-provider `features.ciba` settings and the device link, for one IdP instance. */
export class Ciba {
  readonly #o: CibaOptions;
  readonly #wss = new WebSocketServer({ noServer: true, maxPayload: 64 * 1024 });
  /** National id → this instance's registered links for it. */
  readonly #linked = new Map<string, Set<Link>>();
  readonly #timer: NodeJS.Timeout;

  constructor(options: CibaOptions) {
    this.#o = options;
    this.#timer = setInterval(() => void this.#tick().catch((error: unknown) => this.#warn(error)), 1000);
    this.#timer.unref();
  }

  /** oidc-provider's `features.ciba`. */
  feature(): CIBAConfiguration {
    return {
      enabled: true,
      deliveryModes: ['poll', 'ping'],
      processLoginHint: async (_ctx: KoaContextWithOIDC, loginHint: string) => {
        const sub = loginHint.trim();
        if ((await this.#o.store.get(`ciba-known:${sub}`)) === undefined) throw new errors.UnknownUserId(`CIBA_UNKNOWN_HOLDER: ${this.#o.describe('CIBA_UNKNOWN_HOLDER')}`);
        if ((await this.#o.store.get(`ciba-online:${sub}`)) === undefined) throw new errors.AccessDenied(`CIBA_NO_WORKSTATION: ${this.#o.describe('CIBA_NO_WORKSTATION')}`);
        return sub;
      },
      processLoginHintToken: () => {
        throw new errors.InvalidRequest('login_hint_token is not supported: send login_hint (the national id)');
      },
      validateBindingMessage: (_ctx: KoaContextWithOIDC, message?: string) => {
        // Required: it is what lets the person tell this request from another one.
        if (message === undefined || !BINDING_MESSAGE.test(message)) throw new errors.InvalidBindingMessage('binding_message is required: 1 to 32 letters, digits, spaces or .,:;!?#+/_\'()-');
      },
      validateRequestContext: () => undefined,
      verifyUserCode: (_ctx: KoaContextWithOIDC, _account: unknown, userCode?: string) => {
        if (userCode !== undefined) throw new errors.InvalidRequest('user_code is not supported');
      },
      triggerAuthenticationDevice: async (_ctx, request, account, client) => {
        const message: IdpToDevice = {
          type: 'request',
          id: String(request.jti),
          client: { id: client.clientId, name: String(client.clientName ?? client.clientId) },
          ...(typeof request.params?.binding_message === 'string' ? { bindingMessage: request.params.binding_message } : {}),
          scope: String(request.scope ?? ''),
          // `exp` is only in the stored payload: the lifetime in seconds from now (its `expiration`).
          expiresAt: Date.now() + (Number(request.expiration) || 60) * 1000,
        };
        if (!this.#deliver(account.accountId, message)) {
          // Linked to another instance: it takes it from the store within a second.
          await this.#o.store.put(`ciba-next:${account.accountId}`, JSON.stringify(message), Math.max(1, Math.ceil((message.expiresAt - Date.now()) / 1000)));
        }
      },
    } as CIBAConfiguration;
  }

  /** The WebSocket upgrade of /ciba/device; false for any other path. */
  upgrade(req: IncomingMessage, socket: Duplex, head: Buffer): boolean {
    if (new URL(req.url ?? '/', 'http://localhost').pathname !== DEVICE_LINK_PATH) return false;
    // Daemons send no Origin; a web page always does: the link is not for pages.
    if (req.headers.origin !== undefined) {
      socket.end('HTTP/1.1 403 Forbidden\r\nConnection: close\r\nContent-Length: 0\r\n\r\n');
      return true;
    }
    this.#wss.handleUpgrade(req, socket, head, (ws) => this.#open(ws));
    return true;
  }

  close(): void {
    clearInterval(this.#timer);
    for (const links of this.#linked.values()) for (const link of links) link.socket.terminate();
    for (const client of this.#wss.clients) client.terminate();
    this.#wss.close();
  }

  #warn(error: unknown): void {
    process.stderr.write(`cpsd-idp: ciba: ${error instanceof Error ? error.message : String(error)}\n`);
  }

  #send(link: Link, message: IdpToDevice): void {
    if (link.socket.readyState === link.socket.OPEN) link.socket.send(JSON.stringify(message));
  }

  #deliver(sub: string, message: IdpToDevice): boolean {
    const links = [...(this.#linked.get(sub) ?? [])];
    for (const link of links) this.#send(link, message);
    return links.length > 0;
  }

  /** Every second: requests waiting in the store for the holders linked here; every 15 s, their online marks. */
  #lastOnline = 0;
  async #tick(): Promise<void> {
    const refresh = Date.now() - this.#lastOnline > ONLINE_REFRESH_MS;
    if (refresh) this.#lastOnline = Date.now();
    for (const [sub, links] of [...this.#linked]) {
      if (refresh) {
        // A newer registration elsewhere (the card inserted in another workstation) supersedes these links.
        const saved = await this.#o.store.get(`ciba-device:${sub}`);
        const current = saved === undefined ? undefined : (JSON.parse(saved) as DeviceRecord).thumbprint;
        for (const link of [...links]) if (link.thumbprint !== current) await this.#supersede(link);
        if (!this.#linked.has(sub)) continue;
        await this.#o.store.put(`ciba-online:${sub}`, '1', ONLINE_SECONDS);
      }
      const waiting = await this.#o.store.take(`ciba-next:${sub}`);
      if (waiting !== undefined) this.#deliver(sub, JSON.parse(waiting) as IdpToDevice);
    }
  }

  #open(socket: WebSocket): void {
    const link: Link = { socket, challenge: randomBytes(32).toString('base64url'), sub: undefined, thumbprint: undefined, former: undefined };
    const idle = setTimeout(() => link.sub === undefined && socket.close(1008, 'no registration'), IDLE_UNREGISTERED_MS);
    socket.on('message', (data) => {
      let message: DeviceToIdp;
      try {
        message = JSON.parse(data.toString()) as DeviceToIdp;
      } catch {
        socket.close(1007, 'not JSON');
        return;
      }
      this.#onMessage(link, message).catch((error: unknown) => this.#warn(error));
    });
    socket.on('close', () => {
      clearTimeout(idle);
      void this.#unlink(link, false).catch((error: unknown) => this.#warn(error));
    });
    socket.on('error', () => undefined);
    this.#send(link, { type: 'hello', challenge: link.challenge });
  }

  async #link(link: Link, record: DeviceRecord): Promise<void> {
    const sub = record.claims.sub;
    await this.#unlink(link, false);
    link.sub = sub;
    link.former = sub;
    link.thumbprint = record.thumbprint;
    const links = this.#linked.get(sub) ?? new Set<Link>();
    links.add(link);
    this.#linked.set(sub, links);
    await this.#o.accounts.set(record.claims);
    await this.#o.store.put(`ciba-online:${sub}`, '1', ONLINE_SECONDS);
    this.#send(link, { type: 'registered', sub, expiresIn: REGISTRATION_SECONDS });
  }

  /** Forgets the link; `revoke`: the registration itself ends (the card left that workstation). */
  async #unlink(link: Link, revoke: boolean): Promise<void> {
    const sub = link.sub;
    if (sub === undefined) return;
    const links = this.#linked.get(sub);
    links?.delete(link);
    if (links?.size === 0) {
      this.#linked.delete(sub);
      await this.#o.store.take(`ciba-online:${sub}`);
    }
    if (revoke) {
      const record = await this.#o.store.take(`ciba-device:${sub}`);
      // Another workstation's newer registration stays.
      if (record !== undefined && (JSON.parse(record) as DeviceRecord).thumbprint !== link.thumbprint) await this.#o.store.put(`ciba-device:${sub}`, record, REGISTRATION_SECONDS);
    }
    link.sub = undefined;
    link.thumbprint = undefined;
  }

  /** A link whose registration another one replaced: told, unlinked, and no longer heard about its holder. */
  async #supersede(link: Link): Promise<void> {
    this.#refuse(link, 'CIBA_REGISTRATION_INVALID', 'another registration for this holder replaced this one');
    await this.#unlink(link, false);
    link.former = undefined;
  }

  async #onMessage(link: Link, message: DeviceToIdp): Promise<void> {
    switch (message.type) {
      case 'register':
        return this.#register(link, message.token, message.deviceKey);
      case 'resume':
        return this.#resume(link, message.sub, message.deviceKey, message.signature);
      case 'unregister':
        return this.#unlink(link, true);
      case 'result':
        return this.#result(link, message);
      default:
        link.socket.close(1008, 'unknown message');
    }
  }

  #refuse(link: Link, code: CibaErrorCode | string, message: string): void {
    this.#send(link, { type: 'refused', code, message });
  }

  async #register(link: Link, token: unknown, deviceKey: Record<string, unknown>): Promise<void> {
    let thumbprint: string;
    try {
      thumbprint = jwkThumbprint(deviceKey);
      createPublicKey({ key: deviceKey as never, format: 'jwk' });
    } catch {
      return this.#refuse(link, 'CIBA_REGISTRATION_INVALID', 'the device key is not a P-256 public JWK');
    }
    try {
      const holder = await verify(token, { ...this.#o.trust, origin: this.#o.origin(), nonce: registrationNonce(link.challenge, thumbprint), allowHttpLocalhost: this.#o.allowHttpLocalhost });
      if (holder.assurance !== 'card+pin') throw new TrustError('CERT_POLICY', 'contactless', 'a workstation registers with the card and its PIN');
      const claims = holderClaims(holder);
      const jwk = { kty: deviceKey.kty, crv: deviceKey.crv, x: deviceKey.x, y: deviceKey.y };
      await this.#o.store.put(`ciba-device:${claims.sub}`, JSON.stringify({ thumbprint, jwk, claims } satisfies DeviceRecord), REGISTRATION_SECONDS);
      await this.#o.store.put(`ciba-known:${claims.sub}`, '1', KNOWN_SECONDS);
      this.#o.audit({ event: 'ciba.registered', sub: claims.sub });
      // This registration takes the holder's requests: this instance's other links for them end now
      // (the other instances' at their next check, within 15 s).
      for (const other of [...(this.#linked.get(claims.sub) ?? [])]) if (other !== link) await this.#supersede(other);
      await this.#link(link, { thumbprint, jwk, claims });
    } catch (error) {
      if (!(error instanceof TokenError || error instanceof TrustError)) throw error;
      this.#o.audit({ event: 'ciba.registration.refused', code: error.code });
      this.#refuse(link, 'CIBA_REGISTRATION_INVALID', `${this.#o.describe('CIBA_REGISTRATION_INVALID')} (${error.code})`);
    }
  }

  async #resume(link: Link, sub: unknown, deviceKey: Record<string, unknown>, signature: unknown): Promise<void> {
    const saved = typeof sub === 'string' ? await this.#o.store.get(`ciba-device:${sub}`) : undefined;
    const record = saved === undefined ? undefined : (JSON.parse(saved) as DeviceRecord);
    let ok: boolean;
    try {
      ok =
        record !== undefined &&
        typeof signature === 'string' &&
        jwkThumbprint(deviceKey) === record.thumbprint &&
        verifySignature('sha256', resumeData(this.#o.origin(), link.challenge), { key: createPublicKey({ key: record.jwk as never, format: 'jwk' }), dsaEncoding: 'ieee-p1363' }, Buffer.from(signature, 'base64url'));
    } catch {
      ok = false;
    }
    // Not (or no longer) registered: the daemon registers again with the card.
    if (!ok || !record) return this.#refuse(link, 'CIBA_REGISTRATION_INVALID', 'no registration to resume');
    await this.#link(link, record);
  }

  async #result(link: Link, message: Extract<DeviceToIdp, { type: 'result' }>): Promise<void> {
    const provider = this.#o.provider();
    const request = typeof message.id === 'string' ? await provider.BackchannelAuthenticationRequest.find(message.id) : undefined;
    // Only a link registered for the request's holder answers it, once, before it expires (a success is
    // a card signature in any case: checked below).
    if (!request || request.accountId === undefined || request.accountId !== (link.sub ?? link.former) || request.grantId || request.error) return;
    const clientId = String(request.clientId);
    const fail = async (code: CibaErrorCode, workstationCode: string): Promise<void> => {
      this.#o.audit({ event: 'login.refused', method: 'ciba', client: clientId, code: workstationCode === '' ? code : `${code}:${workstationCode}` });
      const description = `${code}${workstationCode ? ` (${workstationCode})` : ''}: ${this.#o.describe(code)}`;
      // oidc-provider 9.13 keeps the description under this name (backchannelResult sets another one).
      request.errorDescription = description;
      await this.#complete(provider, request, new errors.AccessDenied(description));
    };
    if ('error' in message) {
      const said = /^[A-Z_]{1,40}$/.test(String(message.error)) ? String(message.error) : 'OTHER';
      return fail(REFUSALS.includes(said) ? 'CIBA_REFUSED' : 'CIBA_FAILED', said);
    }
    const bindingMessage = typeof request.params?.binding_message === 'string' ? request.params.binding_message : undefined;
    let claims: HolderClaims;
    try {
      const holder = await verify(message.token, { ...this.#o.trust, origin: this.#o.origin(), nonce: requestNonce(message.id, clientId, bindingMessage), allowHttpLocalhost: this.#o.allowHttpLocalhost });
      if (holder.assurance !== 'card+pin') throw new TrustError('CERT_POLICY', 'contactless', 'a CIBA login needs the card and its PIN');
      claims = holderClaims(holder);
      if (claims.sub !== request.accountId) throw new TokenError('SIGNATURE_INVALID', 'another card signed');
    } catch (error) {
      if (!(error instanceof TokenError || error instanceof TrustError)) throw error;
      return fail('CIBA_FAILED', error.code);
    }
    await this.#o.accounts.set(claims);
    const grant = new provider.Grant({ accountId: claims.sub, clientId });
    if (request.scope) grant.addOIDCScope(request.scope);
    await grant.save();
    await this.#complete(provider, request, grant, { acr: ACR_CARD_PIN, amr: [...AMR_CARD_PIN], authTime: Math.floor(Date.now() / 1000) });
    this.#o.audit({ event: 'login', method: 'ciba', sub: claims.sub, client: clientId, acr: ACR_CARD_PIN, amr: [...AMR_CARD_PIN] });
  }

  async #complete(provider: Provider, ...args: Parameters<Provider['backchannelResult']>): Promise<void> {
    try {
      await provider.backchannelResult(...args);
    } catch (error) {
      // Saved already; only the ping to the client failed: the client still gets its answer by polling.
      this.#warn(error);
    }
  }
}
