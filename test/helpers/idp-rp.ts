/**
 * An independent relying party for the cpsd-idp tests, built with openid-client: /login sends the browser
 * to the IdP with PKCE (S256), state and acr_values=eidas1; /callback exchanges the code, opens the RP's
 * own session (a cookie) and shows who logged in (or the error); /protected is a page that needs that
 * session (else: to /login, i.e. the IdP); /logout ends it and sends the browser to the IdP's end_session
 * with id_token_hint (or client_id only, with ?hint=0); /backchannel-logout takes the IdP's logout tokens
 * (OpenID Connect Back-Channel Logout 1.0, §2.6: checked, then the sessions they name ended); / is its
 * logged-out home. And the holder's steps in Chromium: the IdP's login page, the button, the PIN on the
 * daemon's PIN page.
 */
import { createPublicKey, verify as verifySignature, type JsonWebKey } from 'node:crypto';
import { copyFileSync, mkdirSync, readFileSync } from 'node:fs';
import { createServer, type IncomingMessage, type Server } from 'node:http';
import { join } from 'node:path';
import type { ClientMetadata } from 'oidc-provider';
import * as oidc from 'openid-client';
import type { Browser, BrowserContext, Page } from 'playwright-core';
import { InProcessBackend } from '../../cards/backends.js';
import { DEFAULTS, type DaemonConfig } from '../../daemon/config.js';
import { Logger } from '../../daemon/log.js';
import { CpsdServer } from '../../daemon/server.js';
import { startIdp, type IdpOptions, type RunningIdp } from '../../idp/server.js';
import type { fixtureCard } from '../../sim/cps/fixtures.js';
import { freePort } from './doc-app.js';
import { ROOT } from './doc-blocks.js';

export type Tokens = oidc.TokenEndpointResponse & oidc.TokenEndpointResponseHelpers;

export interface RelyingParty {
  origin: string;
  config: oidc.Configuration;
  /** What the callback got, by state. */
  results: Map<string, Tokens>;
  /** The callback URLs it was called with, by state (to replay a code). */
  callbacks: Map<string, URL>;
  verifiers: Map<string, string>;
  /** The RP's own sessions (cookie rp_session_<port>), by id. */
  sessions: Map<string, RpSession>;
  /** The logout tokens it accepted (their claims), in order. */
  logouts: Record<string, unknown>[];
  /** Why it refused the logout tokens it refused. */
  refusals: string[];
  close(): Promise<void>;
}

export interface RpSession {
  sub: string;
  sid: string;
  idToken: string;
  name: string;
}

const BACKCHANNEL_LOGOUT_EVENT = 'http://schemas.openid.net/event/backchannel-logout';

/** A request's body, as text (the logout token's form is small). */
function body(req: IncomingMessage): Promise<string> {
  return new Promise((resolve, reject) => {
    let text = '';
    req.setEncoding('utf8');
    req.on('data', (chunk: string) => {
      text += chunk;
      if (text.length > 64 * 1024) req.destroy(new Error('body too large'));
    });
    req.on('end', () => resolve(text));
    req.on('error', reject);
  });
}

/** The cookie `name` of a request. */
const cookie = (req: IncomingMessage, name: string): string | undefined =>
  String(req.headers.cookie ?? '')
    .split(';')
    .map((c) => c.trim().split('='))
    .find(([k]) => k === name)?.[1];

/**
 * Validates a logout token as OpenID Connect Back-Channel Logout 1.0 §2.6 says: a JWS signed with one of
 * the IdP's keys (by `kid`, in its jwks_uri) with the id_tokens' algorithm (RS256; never `none`), `typ`
 * logout+jwt when present; `iss` the issuer, `aud` this client; `iat` recent; `exp` not past when present;
 * `jti` never seen before; `events` with the back-channel logout member (an object); `sub` or `sid`; no
 * `nonce`. Returns the claims, or throws saying which rule failed.
 */
export async function validateLogoutToken(config: oidc.Configuration, token: string, seen: Set<string>): Promise<Record<string, unknown>> {
  const server = config.serverMetadata();
  const [head = '', claims = '', signature = '', ...rest] = token.split('.');
  if (!head || !claims || !signature || rest.length > 0) throw new Error('not a signed JWT');
  const decode = (part: string): Record<string, unknown> => JSON.parse(Buffer.from(part, 'base64url').toString('utf8')) as Record<string, unknown>;
  const header = decode(head);
  const alg = config.clientMetadata().id_token_signed_response_alg ?? 'RS256';
  if (header.alg !== alg) throw new Error(`alg ${String(header.alg)}, expected ${alg}`);
  if (header.typ !== undefined && header.typ !== 'logout+jwt') throw new Error(`typ ${String(header.typ)}`);
  const jwks = (await (await fetch(server.jwks_uri ?? '')).json()) as { keys: (JsonWebKey & { kid?: string })[] };
  const jwk = jwks.keys.find((k) => k.kid === header.kid);
  if (!jwk) throw new Error(`no key ${String(header.kid)} in the IdP's JWKS`);
  if (!verifySignature('RSA-SHA256', Buffer.from(`${head}.${claims}`), createPublicKey({ key: jwk, format: 'jwk' }), Buffer.from(signature, 'base64url'))) throw new Error('bad signature');
  const payload = decode(claims);
  const now = Math.floor(Date.now() / 1000);
  if (payload.iss !== server.issuer) throw new Error(`iss ${String(payload.iss)}`);
  const aud = Array.isArray(payload.aud) ? payload.aud : [payload.aud];
  if (!aud.includes(config.clientMetadata().client_id)) throw new Error(`aud ${String(payload.aud)}`);
  if (typeof payload.iat !== 'number' || Math.abs(now - payload.iat) > 300) throw new Error(`iat ${String(payload.iat)}`);
  if (payload.exp !== undefined && (typeof payload.exp !== 'number' || payload.exp <= now)) throw new Error(`exp ${String(payload.exp)}`);
  if (typeof payload.jti !== 'string' || payload.jti === '') throw new Error('no jti');
  if (seen.has(payload.jti)) throw new Error('jti replayed');
  const events = payload.events as Record<string, unknown> | undefined;
  const event = events?.[BACKCHANNEL_LOGOUT_EVENT];
  if (typeof event !== 'object' || event === null || Array.isArray(event)) throw new Error('no back-channel logout event');
  if (typeof payload.sub !== 'string' && typeof payload.sid !== 'string') throw new Error('neither sub nor sid');
  if ('nonce' in payload) throw new Error('a nonce');
  seen.add(payload.jti);
  return payload;
}

export async function startRp(port: number, issuer: string, clientId: string, secret: string, scope = 'openid profile scope_all'): Promise<RelyingParty> {
  const origin = `http://localhost:${port}`;
  const redirectUri = `${origin}/callback`;
  const config = await oidc.discovery(new URL(issuer), clientId, secret, undefined, { execute: [oidc.allowInsecureRequests] });
  const results = new Map<string, Tokens>();
  const callbacks = new Map<string, URL>();
  const verifiers = new Map<string, string>();
  const sessions = new Map<string, RpSession>();
  const logouts: Record<string, unknown>[] = [];
  const refusals: string[] = [];
  const seen = new Set<string>();
  // Cookies do not tell ports apart: one name per RP, as two applications on one host would have.
  const sessionCookie = `rp_session_${port}`;
  const server: Server = createServer((req, res) => {
    void (async () => {
      const url = new URL(req.url ?? '/', origin);
      const session = sessions.get(cookie(req, sessionCookie) ?? '');
      if (url.pathname === '/backchannel-logout' && req.method === 'POST') {
        try {
          const token = new URLSearchParams(await body(req)).get('logout_token') ?? '';
          const claims = await validateLogoutToken(config, token, seen);
          logouts.push(claims);
          // The sessions it names: that sid (of that sub), or every session of the sub when no sid.
          for (const [id, s] of sessions) if ((claims.sid === undefined || s.sid === claims.sid) && (claims.sub === undefined || s.sub === claims.sub)) sessions.delete(id);
          res.writeHead(200, { 'Cache-Control': 'no-store' }).end();
        } catch (error) {
          refusals.push(error instanceof Error ? error.message : String(error));
          res.writeHead(400, { 'Content-Type': 'application/json', 'Cache-Control': 'no-store' }).end('{"error":"invalid_request"}');
        }
        return;
      }
      if (url.pathname === '/protected') {
        if (!session) return void res.writeHead(302, { Location: '/login' }).end();
        res.writeHead(200, { 'Content-Type': 'text/html; charset=utf-8', 'Cache-Control': 'no-store' }).end(`<!doctype html><title>RP</title><p id="protected">RP (openid-client) : page protégée — ${session.name}</p>`);
        return;
      }
      if (url.pathname === '/logout') {
        if (session) sessions.delete(cookie(req, sessionCookie) ?? '');
        const withHint = url.searchParams.get('hint') !== '0' && session;
        const end = oidc.buildEndSessionUrl(config, { post_logout_redirect_uri: `${origin}/`, ...(withHint ? { id_token_hint: session.idToken } : { client_id: clientId }) });
        res.writeHead(302, { Location: end.href, 'Set-Cookie': `${sessionCookie}=; Path=/; Max-Age=0` }).end();
        return;
      }
      if (url.pathname === '/login') {
        const verifier = oidc.randomPKCECodeVerifier();
        const state = oidc.randomState();
        verifiers.set(state, verifier);
        const target = oidc.buildAuthorizationUrl(config, {
          redirect_uri: redirectUri,
          scope,
          code_challenge: await oidc.calculatePKCECodeChallenge(verifier),
          code_challenge_method: 'S256',
          state,
          acr_values: 'eidas1',
          ...Object.fromEntries(url.searchParams),
        });
        // An empty parameter on /login (e.g. ?acr_values=) leaves it out of the request.
        for (const [k, v] of url.searchParams) if (v === '') target.searchParams.delete(k);
        res.writeHead(302, { Location: target.href }).end();
        return;
      }
      if (url.pathname === '/callback') {
        const state = url.searchParams.get('state') ?? '';
        callbacks.set(state, url);
        try {
          const tokens = await oidc.authorizationCodeGrant(config, url, { pkceCodeVerifier: verifiers.get(state) ?? '', expectedState: state });
          results.set(state, tokens);
          const claims = tokens.claims();
          const id = oidc.randomState();
          sessions.set(id, { sub: String(claims?.sub), sid: String(claims?.sid), idToken: tokens.id_token ?? '', name: `${String(claims?.given_name)} ${String(claims?.family_name)}` });
          res.writeHead(200, { 'Content-Type': 'text/html; charset=utf-8', 'Set-Cookie': `${sessionCookie}=${id}; Path=/; HttpOnly; SameSite=Lax` }).end(`<!doctype html><p id="rp">RP: connecté ${tokens.claims()?.given_name} ${tokens.claims()?.family_name}</p>`);
        } catch (error) {
          const known = error instanceof oidc.ResponseBodyError || error instanceof oidc.AuthorizationResponseError;
          const code = known ? error.error : 'error';
          const said = known ? `${error.error}: ${error.error_description ?? ''}` : String(error);
          res.writeHead(500, { 'Content-Type': 'text/html; charset=utf-8' }).end(`<!doctype html><p id="rp-error" data-code="${code}">RP: connexion refusée par le fournisseur (${said.replace(/[<&"]/g, '')})</p>`);
        }
        return;
      }
      if (url.pathname === '/app') {
        // An application page that embeds the IdP's card watch and keeps what it says in window.messages.
        const watch = `${issuer}/session/card-watch?client_id=${encodeURIComponent(clientId)}&origin=${encodeURIComponent(origin)}`;
        res.writeHead(200, { 'Content-Type': 'text/html; charset=utf-8' }).end(
          `<!doctype html><p id="app">RP app</p><script>window.messages = []; addEventListener('message', (e) => { if (e.origin === ${JSON.stringify(new URL(issuer).origin)}) window.messages.push(e.data.type); });</script>` +
            `<iframe id="watch" hidden src="${watch}" allow="local-network-access"></iframe>`,
        );
        return;
      }
      if (url.pathname === '/') {
        res.writeHead(200, { 'Content-Type': 'text/html; charset=utf-8' }).end('<!doctype html><p id="rp-home">RP: déconnecté</p>');
        return;
      }
      res.writeHead(404).end();
    })();
  });
  await new Promise<void>((resolve) => server.listen(port, '127.0.0.1', resolve));
  return {
    origin,
    config,
    results,
    callbacks,
    verifiers,
    sessions,
    logouts,
    refusals,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

/** Runs `run` on a page of a fresh browser context in `locale` (French by default), closed afterwards. */
export async function inPage<T>(browser: Browser, run: (page: Page) => Promise<T>, locale = 'fr-FR'): Promise<T> {
  const context = await browser.newContext({ locale });
  try {
    return await run(await context.newPage());
  } finally {
    await context.close();
  }
}

/**
 * From the RP's /login to the IdP's login page (French browser); clicks the card button and types `pin`
 * on the daemon's PIN page. Screenshots `idp-<shots>-login.png` and `-pin.png` in `output`.
 */
export async function cardLogin(browser: Browser, rp: RelyingParty, issuer: string, pin: string, output: string, shots: string, context?: BrowserContext, query = ''): Promise<{ context: BrowserContext; page: Page }> {
  const ctx = context ?? (await browser.newContext({ locale: 'fr-FR' }));
  const page = await ctx.newPage();
  await page.goto(`${rp.origin}/login${query}`);
  await page.waitForURL(new RegExp(`^${issuer}/interaction/`));
  await page.screenshot({ path: join(output, `idp-${shots}-login.png`) });
  const popup = ctx.waitForEvent('page');
  await page.getByRole('button', { name: 'Se connecter avec ma carte CPS' }).click();
  const pinPage = await popup;
  await pinPage.waitForURL(/\/pin\/[0-9a-f]{32}$/);
  await pinPage.fill('input[name=pin]', pin);
  await pinPage.screenshot({ path: join(output, `idp-${shots}-pin.png`) });
  await pinPage.click('button[type=submit]:not([name])');
  return { context: ctx, page };
}

/** Trust material as an IT team lays it out (anchors/, intermediates/, crls/), from the test PKI, in `dir`/trust. */
export function makeTrustDir(dir: string): string {
  const pki = join(ROOT, 'fixtures', 'pki');
  const trust = join(dir, 'trust');
  for (const sub of ['anchors', 'intermediates', 'crls']) mkdirSync(join(trust, sub), { recursive: true });
  copyFileSync(join(pki, 'root.der'), join(trust, 'anchors', 'root.der'));
  copyFileSync(join(pki, 'intermediate.der'), join(trust, 'intermediates', 'intermediate.der'));
  copyFileSync(join(pki, 'fort-personnes.crl'), join(trust, 'crls', 'fort-personnes.crl'));
  copyFileSync(join(pki, 'racine.crl'), join(trust, 'crls', 'racine.crl'));
  return trust;
}

export interface InProcessIdp {
  backend: InProcessBackend;
  daemon: CpsdServer;
  idp: RunningIdp;
  rp: RelyingParty;
  audit: string[];
  close(): Promise<void>;
}

/**
 * The daemon over an InProcessBackend (whose card a test can pull), cpsd-idp and the RP, all in this
 * process; one confidential client `ehr` with refresh; the test PKI as trust material (CRLs given).
 */
export async function startInProcessIdp(
  card: ReturnType<typeof fixtureCard>,
  options: {
    daemon?: (issuer: string) => Partial<DaemonConfig>;
    idp?: Partial<IdpOptions>;
    scope?: string;
    /** More metadata of the client `ehr`, from the RP's origin (e.g. its backchannel_logout_uri). */
    ehr?: (rpOrigin: string) => Partial<ClientMetadata>;
    /** Other clients, beside `ehr`. */
    clients?: ClientMetadata[];
  } = {},
): Promise<InProcessIdp> {
  const der = (name: string): Uint8Array => new Uint8Array(readFileSync(join(ROOT, 'fixtures', 'pki', name)));
  const [idpPort, rpPort] = [await freePort(), await freePort()];
  const issuer = `http://localhost:${idpPort}`;
  const backend = new InProcessBackend(card);
  const daemon = new CpsdServer({ ...DEFAULTS, port: 0, allowHttpLocalhost: true, allowedOrigins: [issuer], ...options.daemon?.(issuer) }, backend, new Logger('warn'));
  await daemon.listen();
  const secret = 'in-process-secret-0123456789abcdef';
  const audit: string[] = [];
  const idp = await startIdp({
    port: idpPort,
    clients: [
      { client_id: 'ehr', client_secret: secret, redirect_uris: [`http://localhost:${rpPort}/callback`], grant_types: ['authorization_code', 'refresh_token'], ...options.ehr?.(`http://localhost:${rpPort}`) },
      ...(options.clients ?? []),
    ],
    trust: { trustAnchors: [der('root.der')], intermediates: [der('intermediate.der')], crls: [der('fort-personnes.crl'), der('racine.crl')], revocation: 'crl', crl: { fetch: false } },
    daemonPort: daemon.port,
    allowHttpLocalhost: true,
    audit: (line) => audit.push(line),
    ...options.idp,
  });
  const rp = await startRp(rpPort, issuer, 'ehr', secret, options.scope);
  return {
    backend,
    daemon,
    idp,
    rp,
    audit,
    close: async () => {
      await rp.close();
      await idp.close();
      await daemon.close();
      await daemon.sessions.close();
    },
  };
}
