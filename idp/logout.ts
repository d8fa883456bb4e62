/**
 * Logout everywhere: OpenID Connect Back-Channel Logout 1.0 (https://openid.net/specs/openid-connect-backchannel-1_0.html).
 * Whatever ends the holder's IdP session sends a logout token (a JWT signed like the id_tokens, `typ`
 * logout+jwt, with `iss`, `aud`, `iat`, `exp`, `jti`, `events`, `sub` and the `sid` of that application's
 * id_tokens, never a `nonce`) to every application of the session registered with a `backchannel_logout_uri`:
 *
 * - RP-initiated logout at one application and logout at the IdP (oidc-provider's end_session, whose
 *   sends go through `Client.prototype.backchannelLogout`, replaced here);
 * - card removal seen by the card watch (idp/card-watch.ts calls `endSession`);
 * - session expiry: every instance that saves a session keeps a record of its applications in the store
 *   and a timer at its expiry; the first instance whose timer fires takes the record and sends.
 *
 * Deliveries run in parallel, each bounded in time; a failure is an audit line (`logout.failed`, the
 * application and the national id, nothing else) and never stops the logout of the others. The URIs come
 * from IT's configuration only, so they may be on the hospital's private network (oidc-provider's own
 * sender refuses private and loopback addresses).
 */
import { AsyncResource } from 'node:async_hooks';
import { randomBytes } from 'node:crypto';
import type { IncomingMessage } from 'node:http';
import type Provider from 'oidc-provider';
import type { Client, KoaContextWithOIDC } from 'oidc-provider';
import { CpsdError } from '../core/errors.js';
import { t } from '../core/i18n.js';
import { esc, htmlPage, pageLang, STATIC_CSP, STYLE_SRC, text } from './pages.js';
import type { KeyValueStore } from './store.js';

export const BACKCHANNEL_LOGOUT_EVENT = 'http://schemas.openid.net/event/backchannel-logout';

/** How long one application may take to answer a logout token (default). */
export const DELIVERY_TIMEOUT_MS = 5000;

/** An application did not take a logout token: unreachable, too slow, or an answer other than 200/204. */
export class LogoutDeliveryError extends CpsdError {
  readonly code = 'LOGOUT_DELIVERY_FAILED';
}

/** What ended the session: the card left the reader, an application asked, the holder at the IdP, the session's lifetime. */
export type LogoutReason = 'card.removed' | 'rp' | 'idp' | 'session.expired';

/** The audit records of logouts: the national id and the application's client_id, no other personal data. */
export type LogoutAuditEvent =
  | { event: 'logout'; reason: LogoutReason; sub: string; client?: string }
  | { event: 'logout.delivered'; client: string; sub: string }
  | { event: 'logout.failed'; client: string; sub: string; code: 'LOGOUT_DELIVERY_FAILED'; reason: string };

type Json = Record<string, unknown>;

/**
 * Checks the back-channel logout members of one client's metadata (`at` names it, e.g. `clients[0]`):
 * `backchannel_logout_uri` an absolute https:// URL (http:// only on localhost) without fragment or
 * credentials; `backchannel_logout_session_required` true or false, and only with a URI. `fail` throws
 * the caller's ConfigError (naming the file when there is one).
 */
export function checkLogoutMetadata(client: Json, at: string, fail: (key: string, why: string) => never): void {
  const uri = client.backchannel_logout_uri;
  const required = client.backchannel_logout_session_required;
  if (uri !== undefined) {
    const key = `${at}.backchannel_logout_uri`;
    if (typeof uri !== 'string' || uri === '') fail(key, 'must be a URL (a non-empty string)');
    let url: URL | undefined;
    try {
      url = new URL(uri as string);
    } catch {
      fail(key, 'must be an absolute URL');
    }
    const { protocol, hostname, username, password, hash } = url as URL;
    const local = hostname === 'localhost' || hostname === '127.0.0.1' || hostname === '[::1]';
    if (protocol !== 'https:' && !(protocol === 'http:' && local)) fail(key, 'must be https:// (http:// only on localhost)');
    if (hash || (uri as string).includes('#')) fail(key, 'must not have a fragment');
    if (username || password) fail(key, 'must not carry a user name or password');
  }
  if (required !== undefined) {
    const key = `${at}.backchannel_logout_session_required`;
    if (typeof required !== 'boolean') fail(key, 'must be true or false');
    if (uri === undefined) fail(key, 'has no meaning without backchannel_logout_uri');
  }
}

/** The record kept per session for its expiry: who, until when, and each application's sid and grant. */
interface SessionRecord {
  sub: string;
  exp: number;
  clients: Record<string, { sid?: string; grantId?: string }>;
}

type Session = InstanceType<Provider['Session']>;

export interface BackchannelLogoutOptions {
  provider: Provider;
  /** Where the sessions' expiry records live (memory, or Redis shared by the instances). */
  store: KeyValueStore;
  audit: (event: LogoutAuditEvent) => void;
  /** How long one application may take to answer (default DELIVERY_TIMEOUT_MS). */
  deliveryTimeoutMs?: number;
  /** Failures of the machinery itself (the store), for the operator: stderr by default. */
  log?: (line: string) => void;
}

const now = (): number => Math.floor(Date.now() / 1000);
/** Timers beyond this are capped (setTimeout's limit is about 24.8 days); they then look again. */
const MAX_TIMER_MS = 2 ** 31 - 1;
/** How long a session's record outlives the session: time for an instance's timer to find it. */
const RECORD_GRACE_SECONDS = 3600;

/** Why a delivery failed, in a few words for the audit line (no URL, no token). */
function failureReason(error: unknown): string {
  if (error instanceof LogoutDeliveryError) return error.message;
  if (error instanceof Error && (error.name === 'TimeoutError' || error.name === 'AbortError')) return 'no answer in time';
  // fetch's "fetch failed" says nothing: the socket's code is in its cause (in an AggregateError when
  // the name had several addresses, e.g. localhost's ::1 and 127.0.0.1).
  const cause = error instanceof Error ? (error.cause as { code?: unknown; errors?: { code?: unknown }[] } | undefined) : undefined;
  const code = cause?.code ?? cause?.errors?.find((e) => typeof e.code === 'string')?.code;
  if (typeof code === 'string') return `network: ${code}`;
  if (cause instanceof Error) return `network: ${cause.message}`;
  return error instanceof Error ? error.message : String(error);
}

export class BackchannelLogout {
  readonly #options: BackchannelLogoutOptions;
  readonly #timers = new Map<string, NodeJS.Timeout>();
  /**
   * setTimeout outside the request's async context: a timer made during a request keeps oidc-provider's
   * AsyncLocalStorage store (the whole Koa context: request, response, interaction, session, about 14 kB)
   * alive until it fires, 12 hours for a session's expiry. Bound here, when no request is running.
   */
  readonly #setTimer = AsyncResource.bind((fn: () => void, ms: number): NodeJS.Timeout => setTimeout(fn, ms));
  #closed = false;

  constructor(options: BackchannelLogoutOptions) {
    this.#options = options;
    const { provider } = options;
    const deliver = (client: Client, sub: string, sid: string | undefined): Promise<void> => this.deliver(client, sub, sid);
    // oidc-provider's end_session sends through this method; ours signs the same token and audits.
    (provider.Client.prototype as unknown as { backchannelLogout: (sub: string, sid: string | undefined) => Promise<void> }).backchannelLogout = function (this: Client, sub, sid) {
      return deliver(this, sub, sid);
    };
    provider.on('session.saved', (session) => this.#background(this.#track(session)));
    provider.on('session.destroyed', (session) => this.#background(this.#forget(session.uid)));
    provider.on('end_session.success', (ctx) => {
      const { session, params, client } = ctx.oidc;
      if (!params?.logout || !session?.accountId) return;
      options.audit({ event: 'logout', reason: client ? 'rp' : 'idp', sub: session.accountId, ...(client ? { client: client.clientId } : {}) });
    });
  }

  /** Stops the expiry timers of this instance (the records stay for the others). */
  close(): void {
    this.#closed = true;
    for (const timer of this.#timers.values()) clearTimeout(timer);
    this.#timers.clear();
  }

  /**
   * Signs a logout token for `client` and POSTs it to its backchannel_logout_uri; audits the outcome.
   * Throws LogoutDeliveryError (or the network's error) when the application did not take it.
   */
  async deliver(client: Client, sub: string, sid: string | undefined): Promise<void> {
    const { provider, audit } = this.#options;
    const uri = client.backchannelLogoutUri;
    if (!uri) return;
    try {
      const token = new provider.IdToken({ sub }, { client });
      // Only `sub` of the account's claims; the rest is the logout token's own.
      (token as unknown as { mask: Json }).mask = { sub: null };
      token.set('events', { [BACKCHANNEL_LOGOUT_EVENT]: {} });
      token.set('jti', randomBytes(16).toString('base64url'));
      // Always the sid of this application's id_tokens (they all carry one): the application ends that session only.
      if (sid) token.set('sid', sid);
      const response = await fetch(uri, {
        method: 'POST',
        redirect: 'manual',
        headers: { 'Content-Type': 'application/x-www-form-urlencoded', 'Cache-Control': 'no-store' },
        body: new URLSearchParams({ logout_token: await token.issue({ use: 'logout' }) }),
        signal: AbortSignal.timeout(this.#options.deliveryTimeoutMs ?? DELIVERY_TIMEOUT_MS),
      });
      await response.body?.cancel();
      if (response.status !== 200 && response.status !== 204) throw new LogoutDeliveryError(`HTTP ${response.status}`);
      audit({ event: 'logout.delivered', client: client.clientId, sub });
    } catch (error) {
      const reason = failureReason(error);
      audit({ event: 'logout.failed', client: client.clientId, sub, code: 'LOGOUT_DELIVERY_FAILED', reason });
      this.#log(t('idp.logout.deliveryFailed', { client: client.clientId, reason }));
      throw error instanceof LogoutDeliveryError ? error : new LogoutDeliveryError(reason, { cause: error });
    }
  }

  /**
   * Ends a session outside oidc-provider's end_session (card removal): every grant revoked with its
   * codes and tokens, the session destroyed, an audit line, then a logout token to each application,
   * all in parallel; a failed delivery is audited and does not stop the others.
   */
  async endSession(session: Session, reason: LogoutReason): Promise<void> {
    const sub = session.accountId;
    if (!sub) return;
    const clients = Object.fromEntries(Object.entries(session.authorizations ?? {}).map(([id, a]) => [id, { ...(a.sid ? { sid: a.sid } : {}), ...(a.grantId ? { grantId: a.grantId } : {}) }]));
    await this.#revoke(clients);
    await session.destroy();
    this.#options.audit({ event: 'logout', reason, sub });
    await this.#notify(sub, clients);
  }

  async #revoke(clients: SessionRecord['clients']): Promise<void> {
    const { provider } = this.#options;
    // As oidc-provider's own logout does: every grant of the session with its codes and tokens.
    for (const { grantId } of Object.values(clients)) {
      if (!grantId) continue;
      await Promise.all([provider.AccessToken.revokeByGrantId(grantId), provider.RefreshToken.revokeByGrantId(grantId), provider.AuthorizationCode.revokeByGrantId(grantId)]);
      await (await provider.Grant.find(grantId))?.destroy();
    }
  }

  async #notify(sub: string, clients: SessionRecord['clients']): Promise<void> {
    const { provider } = this.#options;
    await Promise.all(
      Object.entries(clients).map(async ([clientId, { sid }]) => {
        const client = await provider.Client.find(clientId).catch(() => undefined);
        if (client?.backchannelLogoutUri) await this.deliver(client, sub, sid).catch(() => undefined);
      }),
    );
  }

  #background(work: Promise<unknown>): void {
    work.catch((error: unknown) => this.#log(`back-channel logout: ${error instanceof Error ? error.message : String(error)}`));
  }

  #log(line: string): void {
    (this.#options.log ?? ((l: string) => process.stderr.write(`${l}\n`)))(`cpsd-idp: ${line}`);
  }

  /** A session with an account and applications: its record and this instance's timer, at its (new) expiry. */
  async #track(session: Session): Promise<void> {
    const sub = session.accountId;
    const entries = Object.entries(session.authorizations ?? {});
    if (!sub || entries.length === 0 || typeof session.exp !== 'number') return;
    const record: SessionRecord = {
      sub,
      exp: session.exp,
      clients: Object.fromEntries(entries.map(([id, a]) => [id, { ...(a.sid ? { sid: a.sid } : {}), ...(a.grantId ? { grantId: a.grantId } : {}) }])),
    };
    await this.#options.store.put(`logout:${session.uid}`, JSON.stringify(record), Math.max(1, session.exp - now()) + RECORD_GRACE_SECONDS);
    this.#schedule(session.uid, session.exp);
  }

  /** An explicit logout (end_session, card removal) has sent the tokens: no expiry logout after it. */
  async #forget(uid: string): Promise<void> {
    clearTimeout(this.#timers.get(uid));
    this.#timers.delete(uid);
    await this.#options.store.take(`logout:${uid}`);
  }

  #schedule(uid: string, exp: number): void {
    if (this.#closed) return;
    clearTimeout(this.#timers.get(uid));
    const timer = this.#setTimer(() => {
      this.#timers.delete(uid);
      this.#background(this.#expired(uid));
    }, Math.min(MAX_TIMER_MS, Math.max(0, (exp - now()) * 1000 + 1000)));
    timer.unref();
    this.#timers.set(uid, timer);
  }

  /** The timer of a session's expiry: unless another instance prolonged it or sent already, this one sends. */
  async #expired(uid: string): Promise<void> {
    const key = `logout:${uid}`;
    const seen = await this.#options.store.get(key);
    if (seen === undefined) return;
    const { exp } = JSON.parse(seen) as SessionRecord;
    if (exp > now()) return this.#schedule(uid, exp);
    // Of several instances whose timers fire, one takes the record.
    const taken = await this.#options.store.take(key);
    if (taken === undefined) return;
    const record = JSON.parse(taken) as SessionRecord;
    await this.#revoke(record.clients);
    this.#options.audit({ event: 'logout', reason: 'session.expired', sub: record.sub });
    await this.#notify(record.sub, record.clients);
  }
}

/**
 * oidc-provider's RP-initiated logout page. An application that proves itself with `id_token_hint` (an
 * id_token of this holder's current session for that application: same `sub`, same `sid`) is not asked
 * to confirm: the page submits the logout form at once (logout=yes: the whole session, every
 * application told). Otherwise (no hint, a stale one, logout at the IdP itself) the holder confirms.
 */
export function logoutSource(ctx: KoaContextWithOIDC, form: string): void {
  const req = ctx.req as IncomingMessage;
  const lang = pageLang(undefined, req);
  const hint = ctx.oidc.entities.IdTokenHint?.payload;
  const { client, session } = ctx.oidc;
  const proven =
    hint !== undefined && client !== undefined && session?.accountId !== undefined && hint.sub === session.accountId && typeof hint.sid === 'string' && hint.sid === session.authorizations?.[client.clientId]?.sid;
  if (proven) {
    const nonce = randomBytes(16).toString('base64');
    ctx.set('Content-Security-Policy', `default-src 'none'; style-src ${STYLE_SRC}; script-src 'nonce-${nonce}'; frame-ancestors 'none'; base-uri 'none'`);
    const auto = form.replace('</form>', '<input type="hidden" name="logout" value="yes"/></form>');
    ctx.body = htmlPage(
      lang,
      text(lang, 'idp.logout.title'),
      `<p id="logging-out">${esc(text(lang, 'idp.logout.auto'))}</p>${auto}<noscript><button type="submit" form="op.logoutForm">${esc(text(lang, 'idp.logout.yes'))}</button></noscript>` +
        `<script nonce="${nonce}">document.getElementById('op.logoutForm').submit();</script>`,
    );
    return;
  }
  ctx.set('Content-Security-Policy', STATIC_CSP);
  ctx.body = htmlPage(
    lang,
    text(lang, 'idp.logout.title'),
    `<h1>${esc(text(lang, 'idp.logout.question'))}</h1>${form}<button id="logout-yes" type="submit" form="op.logoutForm" value="yes" name="logout">${esc(text(lang, 'idp.logout.yes'))}</button> <button id="logout-no" type="submit" form="op.logoutForm">${esc(text(lang, 'idp.logout.no'))}</button>`,
  );
}
