/**
 * The login step of cpsd-idp: oidc-provider sends the browser to /interaction/<uid>; this page (strict
 * CSP: only its own nonce'd module script and the SDK served at /cpsd.js) comes with a single-use nonce
 * bound to the interaction (a later attempt asks /nonce for another), calls `authenticate` of the browser
 * SDK (the PIN is typed on the daemon's PIN page: this page never sees it) and POSTs the web-eid:1.0 token. The server verifies it with cpsd/verify for
 * the IdP's own origin and ends the login with the national id as account id, acr eidas1, amr sc+pin.
 * Consent is implicit for the configured clients (first-party): the grant is made here without a page.
 * Every POST: same Origin, the interaction's cookie (oidc-provider's) and the page's CSRF token.
 */
import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import { readFileSync } from 'node:fs';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type Provider from 'oidc-provider';
import { MESSAGES, type MessageKey, type Text } from '../core/messages.js';
import { NONCE_TTL_MS, TokenError, TrustError, verify, type VerifyOptions } from '../pkcs/verify.js';
import type { HolderIdentity, PracticeSituation, StructureIdKind } from '../pkcs/holder.js';
import { ACR_CARD_PIN, ACR_CONTACTLESS, AMR_CARD_PIN, AMR_CONTACTLESS, CardDataMismatchError, holderClaims, holderClaimsWithSituations, type HolderClaims } from './claims.js';
import type { RateLimiter } from './limits.js';
import { errorPage, esc, pageLang, plain, STATIC_CSP, STYLE_SRC, type PageLang } from './pages.js';
import type { LogoutAuditEvent } from './logout.js';
import type { AccountStore } from './provider.js';
import type { KeyValueStore } from './store.js';
import { UpstreamError, type Upstream, type UpstreamLogin } from './upstream.js';

/** The trust material and revocation settings of verify(), without origin and nonce (the IdP's own). */
export type TrustOptions = Omit<Extract<VerifyOptions, { origin: string }>, 'origin' | 'nonce' | 'allowHttpLocalhost'>;

export interface InteractionOptions {
  provider: Provider;
  accounts: AccountStore;
  trust: TrustOptions;
  /** The daemon's port on the workstation (24821 by default). */
  daemonPort: number;
  /** The IdP's origin: the one the card signs for, and the only one the POSTs may come from. */
  origin: () => string;
  allowHttpLocalhost?: boolean;
  /**
   * Shared records (the page may be served by one instance, the POST reach another): the interaction's
   * current challenge nonce, the accounts.
   */
  store: KeyValueStore;
  /**
   * Keys of the pages' CSRF tokens (HMAC of the interaction's uid), the cookie keys: the same on every
   * instance. Made with the first, accepted under any, so a rolling key rotation refuses nobody.
   */
  csrfKeys: readonly string[];
  /** The browser SDK (client/cpsd.js). */
  sdk: Buffer;
  /** Login attempts per client address. */
  limiter: RateLimiter;
  /** The client's address (the socket's, or the reverse proxy's X-Forwarded-For when configured). */
  clientAddress: (req: IncomingMessage) => string;
  /** One line per login and per refused login. */
  audit: (event: AuditEvent) => void;
  /** Contactless logins enabled by IT (the application must also ask for ACR_CONTACTLESS). */
  allowContactless?: boolean;
  /** Delegation to an upstream OIDC provider (Pro Santé Connect for e-CPS), when configured. */
  upstream?: UpstreamRoute;
}

/** The audit record of a login: who (national id only), which application, which assurance. No other personal data. */
export type AuditEvent =
  | { event: 'login'; method: 'card' | 'upstream' | 'ciba'; sub: string; client: string; acr: string; amr: string[] }
  | { event: 'login.refused'; method: 'card' | 'upstream' | 'ciba'; client: string; code: string }
  /** A workstation registered as the holder's CIBA device (idp/ciba.ts), or a registration refused. */
  | { event: 'ciba.registered'; sub: string }
  | { event: 'ciba.registration.refused'; code: string }
  /** A login that failed on the holder's side (wrong PIN, blocked card, cancelled…), as the login page reports it: unverified. */
  | { event: 'login.failed'; method: 'card'; client: string; code: string; reportedBy: 'page'; triesLeft?: number }
  | LogoutAuditEvent;

/** The federation (idp/upstream.ts) and the path of its callback on this IdP (its redirect_uri's). */
export interface UpstreamRoute {
  upstream: Pick<Upstream, 'label' | 'begin' | 'complete'>;
  callbackPath: string;
}
/** The page's texts (French: the holders are French health professionals), from the CLI's catalogue. */
const PAGE_TEXTS = {
  title: 'idp.page.title',
  heading: 'idp.page.heading',
  client: 'idp.page.client',
  login: 'idp.page.login',
  reading: 'idp.page.reading',
  redirecting: 'idp.page.redirecting',
  wrongPin: 'idp.page.wrongPin',
  wrongPinUnknown: 'demo.error.PIN_INCORRECT.unknownTries',
  other: 'demo.error.other',
  refused: 'idp.page.refused',
  expired: 'idp.page.expired',
} as const satisfies Readonly<Record<string, MessageKey>>;

/** The SDK's error codes and their French texts, the demo's (one catalogue). */
const SDK_ERRORS = [
  'DAEMON_UNREACHABLE', 'LOCAL_NETWORK_DENIED', 'ORIGIN_NOT_ALLOWED', 'USER_CANCELLED', 'PIN_BLOCKED', 'PIN_LAST_TRY', 'PIN_FORMAT',
  'PIN_NOT_ALLOWED', 'CONTACTLESS_NOT_ALLOWED', 'CARD_ABSENT', 'CARD_UNSUPPORTED', 'CARD_ERROR', 'READER_NOT_FOUND', 'PCSC_UNAVAILABLE',
  'TIMEOUT', 'BUSY', 'RATE_LIMITED',
] as const;

/** The SDK's codes the login page may report for the audit (anything else is logged as OTHER). */
const PAGE_OUTCOMES: readonly string[] = [...SDK_ERRORS, 'PIN_INCORRECT'];

/** The verifier's refusals that the holder can act on, in words; any other is shown by its code. */
const SERVER_ERRORS = {
  CERT_REVOKED: 'idp.page.CERT_REVOKED',
  CERT_EXPIRED: 'idp.page.CERT_EXPIRED',
  CERT_UNTRUSTED: 'idp.page.CERT_UNTRUSTED',
  REVOCATION_UNKNOWN: 'idp.page.REVOCATION_UNKNOWN',
  CERT_POLICY: 'idp.page.CERT_POLICY',
  RATE_LIMITED: 'idp.error.rate_limited',
  UPSTREAM_UNAVAILABLE: 'idp.error.upstream_unavailable',
} as const satisfies Readonly<Record<string, MessageKey>>;

const say = (lang: PageLang, key: MessageKey): Text => MESSAGES[key][lang];
/** JSON for an inline script: no "</script>" can close it early. */
const inline = (value: unknown): string => JSON.stringify(value).replace(/</g, '\\u003c');

/** The page's texts as the script's constants, per language: the same for every login, rendered once. */
const pageTexts = new Map<PageLang, string>();
function textsOf(lang: PageLang): string {
  const known = pageTexts.get(lang);
  if (known !== undefined) return known;
  const text = Object.fromEntries(Object.entries<MessageKey>(PAGE_TEXTS).map(([k, key]) => [k, say(lang, key)]));
  const errors = Object.fromEntries(SDK_ERRORS.map((code) => [code, say(lang, `demo.error.${code}` as MessageKey)]));
  const server = Object.fromEntries(Object.entries<MessageKey>(SERVER_ERRORS).map(([code, key]) => [code, say(lang, key)]));
  const rendered = `const TEXT = ${inline(text)};
const ERRORS = ${inline(errors)};
const SERVER = ${inline(server)};`;
  pageTexts.set(lang, rendered);
  return rendered;
}

/** The page's first challenge: the nonce and how long the page may use it (its lifetime, less a margin for the card and the POST). */
interface PageNonce {
  nonce: string;
  usableMs: number;
}
const NONCE_MARGIN_MS = 30_000;

function page(lang: PageLang, uid: string, clientId: string, csrf: string, daemonPort: number, scriptNonce: string, upstream: string | undefined, challenge: PageNonce | undefined): string {
  const other = upstream
    ? `<p>${esc(plain(say(lang, 'idp.page.orUpstream')))}</p><button id="upstream" type="button">${esc(upstream)}</button>`
    : '';
  return `<!doctype html>
<html lang="${lang}"><head><meta charset="utf-8"><title>${esc(plain(say(lang, 'idp.page.title')))}</title>
<style nonce="${scriptNonce}">body{font:16px system-ui;margin:2em;max-width:40em} button{font-size:1.1em;padding:.4em 1em} .err{color:#b00}</style></head>
<body><h1>${esc(plain(say(lang, 'idp.page.heading')))}</h1>
<p>${esc(plain(say(lang, 'idp.page.client')).replace('{client}', clientId))}</p>
<button id="login" type="button">${esc(plain(say(lang, 'idp.page.login')))}</button>
${other}
<p id="status" role="status"></p>
<script type="module" nonce="${scriptNonce}">
import { authenticate } from '/cpsd.js';
const UID = ${inline(uid)};
const CSRF = ${inline(csrf)};
const PORT = ${inline(daemonPort)};
// The first challenge comes with the page (single use, a few minutes): the click needs no round trip
// before the PIN window opens. A later click (after a wrong PIN, a cancel) or a late one asks /nonce.
let NONCE = ${inline(challenge?.nonce ?? null)};
const NONCE_UNTIL = performance.now() + ${inline(challenge?.usableMs ?? 0)};
${textsOf(lang)}
const plural = new Intl.PluralRules(${inline(lang)});
const say = (t, count) => (typeof t === 'string' ? t : t[plural.select(count) === 'one' ? 'one' : 'other']).replace('{count}', String(count));
const status = document.getElementById('status');
const post = (path, body) => fetch('/interaction/' + UID + path, { method: 'POST', credentials: 'same-origin', headers: { 'Content-Type': 'application/json', 'X-CSRF': CSRF }, body: JSON.stringify(body ?? {}) });
const refused = async (res) => {
  const answer = await res.json().catch(() => ({}));
  return Object.assign(new Error(answer.error), { code: res.status === 404 ? 'EXPIRED' : 'SERVER_REFUSED', detail: answer.error ?? ('HTTP ' + res.status) });
};
const show = (e) => {
  status.className = 'err';
  status.dataset.code = e.code === 'SERVER_REFUSED' ? (e.detail ?? e.code) : (e.code ?? 'ERROR');
  status.textContent = e.code === 'PIN_INCORRECT'
    ? (typeof e.triesLeft === 'number' ? say(TEXT.wrongPin, e.triesLeft) : say(TEXT.wrongPinUnknown))
    : e.code === 'SERVER_REFUSED' ? (SERVER[e.detail] ? say(SERVER[e.detail]) : TEXT.refused.replace('{code}', e.detail ?? ''))
    : e.code === 'EXPIRED' ? TEXT.expired
    : ERRORS[e.code] ? say(ERRORS[e.code], e.triesLeft) : TEXT.other + (e.message ? ' (' + e.message + ')' : '');
};
document.getElementById('login').onclick = async () => {
  status.className = '';
  status.textContent = TEXT.reading;
  try {
    let nonce = NONCE !== null && performance.now() < NONCE_UNTIL ? NONCE : null;
    NONCE = null;
    if (nonce === null) {
      const issued = await post('/nonce');
      if (!issued.ok) throw await refused(issued);
      ({ nonce } = await issued.json());
    }
    // Opens the daemon's PIN window from this click; the practice situations come with the token (read with the PIN).
    const { token, identity, situations } = await authenticate(nonce, { port: PORT, situations: true });
    const res = await post('/login', { token, identity, situations });
    if (!res.ok) throw await refused(res);
    status.textContent = TEXT.redirecting;
    location.assign((await res.json()).redirect);
  } catch (e) {
    show(e);
    // What happened at the card (wrong PIN, blocked card, cancelled…), for the IdP's audit: the code only.
    if (e.code !== 'SERVER_REFUSED' && e.code !== 'EXPIRED') post('/outcome', { code: e.code, triesLeft: e.triesLeft }).catch(() => undefined);
  }
};
const upstream = document.getElementById('upstream');
if (upstream) upstream.onclick = async () => {
  try {
    const res = await post('/upstream');
    if (!res.ok) throw await refused(res);
    location.assign((await res.json()).redirect);
  } catch (e) {
    show(e);
  }
};
</script></body></html>`;
}

/** The login's body (a token and the card data: a few kB); beyond `limit` a typed refusal, the rest drained unread. */
function readBody(req: IncomingMessage, limit = 20_000): Promise<string> {
  return new Promise((resolve, reject) => {
    let body = '';
    let over = false;
    req.on('data', (c: Buffer) => {
      if (over) return;
      body += c.toString();
      if (body.length > limit) {
        over = true;
        body = '';
        reject(new TokenError('TOKEN_MALFORMED', `the login body is over ${limit} bytes`));
      }
    });
    req.on('end', () => resolve(body));
    req.on('error', reject);
  });
}

const json = (res: ServerResponse, status: number, body: unknown): void => {
  res.writeHead(status, { 'Content-Type': 'application/json', 'Cache-Control': 'no-store' }).end(JSON.stringify(body));
};

const html = (res: ServerResponse, status: number, body: string, csp = STATIC_CSP): void => {
  res.writeHead(status, { 'Content-Type': 'text/html; charset=utf-8', 'Cache-Control': 'no-store', 'X-Content-Type-Options': 'nosniff', 'Referrer-Policy': 'no-referrer', 'Content-Security-Policy': csp }).end(body);
};

type Interaction = Awaited<ReturnType<Provider['interactionDetails']>>;

/**
 * The interaction's current challenge nonce and its expiry, `<epoch ms> <nonce>`: one record, bound to the
 * interaction, taken (GETDEL) by the login that uses it, so single use; a new nonce replaces the last.
 */
const NONCE_KEY = (uid: string): string => `login-nonce:${uid}`;

/** The nonce of a record taken from the store: NONCE_INVALID if there was none (never issued, used), NONCE_EXPIRED past its time. */
function issuedNonce(record: string | undefined, now = Date.now()): string {
  const space = record?.indexOf(' ') ?? -1;
  const expiresAt = Number(record?.slice(0, space));
  if (record === undefined || space <= 0 || !Number.isSafeInteger(expiresAt)) throw new TokenError('NONCE_INVALID', 'unknown or already used nonce');
  if (expiresAt < now) throw new TokenError('NONCE_EXPIRED', 'the nonce expired');
  return record.slice(space + 1);
}

type CardIdentity = Pick<HolderIdentity, 'nationalId' | 'profession' | 'specialty'>;
const KINDS: readonly StructureIdKind[] = ['ADELI_CABINET', 'FINESS', 'SIREN', 'SIRET', 'RPPS_CABINET', 'FINESS_EJ', 'UNKNOWN'];
const short = (v: unknown): v is string => typeof v === 'string' && v.length <= 200;
const isRecord = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

/**
 * The card data the page forwards from the daemon with the token (auth.authenticate, situations: true):
 * read by the workstation, not signed by the card, so only shape-checked here; the national id must be
 * the verified certificate's (holderClaimsWithSituations). Undefined when the page sent none.
 */
function cardData(body: Record<string, unknown>): { identity: CardIdentity; situations: PracticeSituation[] } | undefined {
  const { identity, situations } = body;
  if (identity === undefined) return undefined;
  const bad = (): never => {
    throw new TokenError('TOKEN_MALFORMED', 'the card data sent with the token is not what the daemon gives');
  };
  if (!isRecord(identity) || !short(identity.nationalId)) return bad();
  const { profession, specialty } = identity;
  if (profession !== null && !(isRecord(profession) && short(profession.label) && (profession.code === null || short(profession.code)))) return bad();
  if (specialty !== null && !short(specialty)) return bad();
  // null: the daemon could not read them (situationsError); the login goes on without.
  const list = situations === null ? [] : Array.isArray(situations) && situations.length <= 16 ? situations : bad();
  return {
    identity: { nationalId: identity.nationalId, profession: profession === null ? null : { code: (profession as { code: string | null }).code, label: (profession as { label: string }).label }, specialty },
    situations: list.map((x: unknown) =>
      isRecord(x) && Number.isInteger(x.index) && short(x.structureName) && short(x.structureId) && short(x.sector) && KINDS.includes(x.structureIdKind as StructureIdKind)
        ? { index: x.index as number, structureName: x.structureName, structureId: x.structureId, structureIdKind: x.structureIdKind as StructureIdKind, sector: x.sector }
        : bad(),
    ),
  };
}

/** The interaction routes and /cpsd.js; answers false for any other request (oidc-provider's). */
export function interactionRoutes(options: InteractionOptions): (req: IncomingMessage, res: ServerResponse) => Promise<boolean> {
  const { provider, store } = options;
  // Stateless, so any instance checks what another issued: HMAC of the uid under the shared key.
  const csrfOf = (uid: string, key = options.csrfKeys[0] ?? ''): string => createHmac('sha256', key).update(`csrf:${uid}`).digest('base64url');
  const csrfOk = (uid: string, given: unknown): boolean =>
    typeof given === 'string' &&
    options.csrfKeys.some((key) => {
      const want = Buffer.from(csrfOf(uid, key));
      return given.length === want.length && timingSafeEqual(Buffer.from(given), want);
    });

  /** A challenge for the interaction's login; one per interaction at a time: a new one replaces the last. */
  const issueNonce = async (uid: string): Promise<PageNonce> => {
    const nonce = randomBytes(32).toString('base64');
    await store.put(NONCE_KEY(uid), `${Date.now() + NONCE_TTL_MS} ${nonce}`, NONCE_TTL_MS / 1000);
    return { nonce, usableMs: NONCE_TTL_MS - NONCE_MARGIN_MS };
  };

  /** The interaction of the browser's cookie, if it is the one of the URL. */
  const details = async (req: IncomingMessage, res: ServerResponse, uid: string): Promise<Interaction | undefined> => {
    try {
      const found = await provider.interactionDetails(req, res);
      return found.uid === uid ? found : undefined;
    } catch {
      return undefined;
    }
  };

  /** Ends the login: the account for the other instances, the audit line, oidc-provider's redirect. */
  const finish = async (interaction: Interaction, method: 'card' | 'upstream', claims: HolderClaims, acr: string, amr: string[]): Promise<string> => {
    const client = String(interaction.params.client_id ?? '');
    // The configured clients are first-party: what they ask is granted with the login, which spares the
    // consent round trip (two requests, a third of the store's writes: npm run bench:idp).
    const grant = new provider.Grant({ accountId: claims.sub, clientId: client });
    if (typeof interaction.params.scope === 'string') grant.addOIDCScope(interaction.params.scope);
    // The grant's id made here (as oidc-provider makes it: 256 random bits) so that the account, the grant
    // and the interaction's result are written together, one round trip to the store; the result is saved
    // on the interaction already read, as oidc-provider's interactionResult() would after reading it again.
    grant.jti = randomBytes(32).toString('base64url');
    interaction.result = { ...interaction.lastSubmission, login: { accountId: claims.sub, acr, amr }, consent: { grantId: grant.jti } };
    await Promise.all([options.accounts.set(claims), grant.save(), interaction.save(interaction.exp - Math.floor(Date.now() / 1000))]);
    const redirect = interaction.returnTo;
    options.audit({ event: 'login', method, sub: claims.sub, client, acr, amr });
    return redirect;
  };

  return async (req, res) => {
    const url = new URL(req.url ?? '/', 'http://localhost');
    if (req.method === 'GET' && url.pathname === '/cpsd.js') {
      res.writeHead(200, { 'Content-Type': 'text/javascript; charset=utf-8', 'Cache-Control': 'no-cache', 'X-Content-Type-Options': 'nosniff' }).end(options.sdk);
      return true;
    }
    if (req.method === 'GET' && options.upstream && url.pathname === options.upstream.callbackPath) {
      await upstreamCallback(req, res, url);
      return true;
    }
    const match = /^\/interaction\/([A-Za-z0-9_-]{1,64})(\/nonce|\/login|\/outcome|\/upstream|\/upstream\/done)?$/.exec(url.pathname);
    if (!match) return false;
    const uid = match[1] ?? '';
    const action = match[2];

    if (req.method === 'GET' && action === '/upstream/done' && options.upstream) {
      await upstreamDone(req, res, uid, url);
      return true;
    }
    if (req.method === 'GET' && !action) {
      const interaction = await details(req, res, uid);
      const lang = pageLang(interaction?.params.ui_locales, req);
      if (!interaction) {
        html(res, 400, errorPage(lang, 'interaction_expired', undefined));
        return true;
      }
      if (interaction.prompt.name === 'consent') {
        // The configured clients are first-party: what they ask is granted, without a consent page.
        const { details: missing } = interaction.prompt;
        const accountId = interaction.session?.accountId ?? '';
        const grant = interaction.grantId
          ? ((await provider.Grant.find(interaction.grantId)) ?? new provider.Grant({ accountId, clientId: String(interaction.params.client_id) }))
          : new provider.Grant({ accountId, clientId: String(interaction.params.client_id) });
        const scope = missing.missingOIDCScope as string[] | undefined;
        const claims = missing.missingOIDCClaims as string[] | undefined;
        const resources = missing.missingResourceScopes as Record<string, string[]> | undefined;
        if (scope) grant.addOIDCScope(scope.join(' '));
        if (claims) grant.addOIDCClaims(claims);
        for (const [indicator, scopes] of Object.entries(resources ?? {})) grant.addResourceScope(indicator, scopes.join(' '));
        const grantId = await grant.save();
        await provider.interactionFinished(req, res, { consent: interaction.grantId ? {} : { grantId } }, { mergeWithLastSubmission: true });
        return true;
      }
      const scriptNonce = randomBytes(16).toString('base64');
      const csp = [
        "default-src 'none'",
        `script-src 'self' 'nonce-${scriptNonce}'`,
        `style-src 'nonce-${scriptNonce}' ${STYLE_SRC}`,
        `connect-src 'self' ws://127.0.0.1:${options.daemonPort} http://127.0.0.1:${options.daemonPort}`,
        "img-src 'self'",
        "form-action 'self'",
        "frame-ancestors 'none'",
        "base-uri 'none'",
      ].join('; ');
      // The page's challenge counts as a login attempt, as /nonce does; past the limit the page comes
      // without one and the click's /nonce gets the refusal (429) to show.
      const challenge = options.limiter.allow(options.clientAddress(req)) ? await issueNonce(uid) : undefined;
      html(res, 200, page(lang, uid, String(interaction.params.client_id ?? ''), csrfOf(uid), options.daemonPort, scriptNonce, options.upstream?.upstream.label, challenge), csp);
      return true;
    }

    if (req.method !== 'POST' || !action) {
      res.writeHead(405).end();
      return true;
    }
    if (req.headers.origin !== options.origin() || !csrfOk(uid, req.headers['x-csrf'])) {
      json(res, 403, { error: 'CSRF' });
      return true;
    }
    // A login attempt starts with a challenge (or an upstream start): those are counted, once each.
    if (action !== '/login' && action !== '/outcome' && !options.limiter.allow(options.clientAddress(req))) {
      json(res, 429, { error: 'RATE_LIMITED' });
      return true;
    }
    // The login's nonce is taken (single use) while the interaction is read: one round trip to the store.
    const [interaction, issued] = await Promise.all([details(req, res, uid), action === '/login' ? store.take(NONCE_KEY(uid)) : undefined]);
    if (!interaction || interaction.prompt.name !== 'login') {
      json(res, 404, { error: 'INTERACTION_EXPIRED' });
      return true;
    }
    const client = String(interaction.params.client_id ?? '');
    if (action === '/nonce') {
      json(res, 200, { nonce: (await issueNonce(uid)).nonce });
      return true;
    }
    if (action === '/outcome') {
      // The page's word only (the IdP never sees the PIN step): a code from the SDK's list, else OTHER.
      const body = await readBody(req, 1000).then((b) => JSON.parse(b) as unknown).catch(() => undefined);
      const said = isRecord(body) ? body : {};
      const code = PAGE_OUTCOMES.includes(String(said.code)) ? String(said.code) : 'OTHER';
      const tries = said.triesLeft;
      const triesLeft = Number.isInteger(tries) && (tries as number) >= 0 && (tries as number) <= 15 ? (tries as number) : undefined;
      options.audit({ event: 'login.failed', method: 'card', client, code, reportedBy: 'page', ...(triesLeft === undefined ? {} : { triesLeft }) });
      res.writeHead(204).end();
      return true;
    }
    if (action === '/upstream') {
      if (!options.upstream) {
        json(res, 404, { error: 'NO_UPSTREAM' });
        return true;
      }
      try {
        json(res, 200, { redirect: (await options.upstream.upstream.begin(uid)).href });
      } catch (error) {
        // The upstream unreachable: this login fails, and says so; the card login still works.
        if (!(error instanceof UpstreamError)) throw error;
        options.audit({ event: 'login.refused', method: 'upstream', client, code: error.code });
        json(res, 502, { error: error.code });
      }
      return true;
    }
    // /login
    try {
      const body = JSON.parse(await readBody(req)) as unknown;
      if (!isRecord(body)) throw new TokenError('TOKEN_MALFORMED', 'the login body is not a JSON object');
      const nonce = issuedNonce(issued);
      const holder = await verify(body.token, { ...options.trust, origin: options.origin(), nonce, allowHttpLocalhost: options.allowHttpLocalhost === true, allowContactless: options.allowContactless === true });
      // Contactless (no PIN): only when IT enabled it and the application asked for its lower acr.
      const asked = String(interaction.params.acr_values ?? '').split(' ');
      const contactless = holder.assurance === 'card';
      if (contactless && !(options.allowContactless === true && asked.includes(ACR_CONTACTLESS))) {
        throw new TrustError('CERT_POLICY', 'contactless', 'a card + PIN login is required');
      }
      const card = contactless ? undefined : cardData(body);
      const claims = card ? holderClaimsWithSituations(holder, card.identity, card.situations) : holderClaims(holder);
      const [acr, amr] = contactless ? [ACR_CONTACTLESS, [...AMR_CONTACTLESS]] : [ACR_CARD_PIN, [...AMR_CARD_PIN]];
      json(res, 200, { redirect: await finish(interaction, 'card', claims, acr, amr) });
    } catch (error) {
      const code = error instanceof TokenError || error instanceof TrustError || error instanceof CardDataMismatchError ? error.code : error instanceof SyntaxError ? 'BAD_REQUEST' : undefined;
      if (code === undefined) throw error; // the store or the provider failed: a 500, not a refusal
      options.audit({ event: 'login.refused', method: 'card', client, code });
      json(res, 401, { error: code });
    }
    return true;
  };

  /**
   * The upstream's redirect back: its code is exchanged here, but oidc-provider's interaction cookie is
   * scoped to /interaction/<uid>, so the result waits in the store (single use, 5 minutes) for the
   * browser at /interaction/<uid>/upstream/done, where the cookie proves it is the same interaction.
   */
  async function upstreamCallback(req: IncomingMessage, res: ServerResponse, url: URL): Promise<void> {
    const upstream = options.upstream?.upstream;
    if (!upstream) return;
    let done: UpstreamLogin;
    try {
      done = await upstream.complete(new URL(url.pathname + url.search, options.origin()));
    } catch (error) {
      if (!(error instanceof UpstreamError)) throw error;
      // The application of the interaction the failed login belonged to, when the transaction told which.
      const interaction = error.interactionUid ? await provider.Interaction.find(error.interactionUid) : undefined;
      options.audit({ event: 'login.refused', method: 'upstream', client: String(interaction?.params.client_id ?? ''), code: error.code });
      html(res, 401, errorPage(pageLang(undefined, req), error.code, error.upstreamError));
      return;
    }
    const key = randomBytes(24).toString('base64url');
    await store.put(`upstream-done:${key}`, JSON.stringify(done), 300);
    res.writeHead(303, { Location: `/interaction/${encodeURIComponent(done.interactionUid)}/upstream/done?key=${key}`, 'Cache-Control': 'no-store' }).end();
  }

  async function upstreamDone(req: IncomingMessage, res: ServerResponse, uid: string, url: URL): Promise<void> {
    const lang = pageLang(undefined, req);
    const saved = await store.take(`upstream-done:${url.searchParams.get('key') ?? ''}`);
    const done = saved === undefined ? undefined : (JSON.parse(saved) as UpstreamLogin);
    const interaction = done?.interactionUid === uid ? await details(req, res, uid) : undefined;
    if (!done || !interaction || interaction.prompt.name !== 'login') {
      html(res, 400, errorPage(lang, 'interaction_expired', undefined));
      return;
    }
    const redirect = await finish(interaction, 'upstream', done.claims, done.acr, done.amr);
    res.writeHead(303, { Location: redirect, 'Cache-Control': 'no-store' }).end();
  }
}

/** The SDK file of this package. */
export function sdkFile(root: string): Buffer {
  return readFileSync(`${root}client/cpsd.js`);
}
