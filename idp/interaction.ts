/**
 * The login step of cpsd-idp: oidc-provider sends the browser to /interaction/<uid>; this page (strict
 * CSP: only its own nonce'd module script and the SDK served at /cpsd.js) gets a single-use nonce bound
 * to the interaction, calls `authenticate` of the browser SDK (the PIN is typed on the daemon's PIN page:
 * this page never sees it) and POSTs the web-eid:1.0 token. The server verifies it with cpsd/verify for
 * the IdP's own origin and ends the login with the national id as account id, acr eidas1, amr sc+pin.
 * Consent is implicit for the configured clients (first-party): the grant is made here without a page.
 * Every POST: same Origin, the interaction's cookie (oidc-provider's) and the page's CSRF token.
 */
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type Provider from 'oidc-provider';
import { MESSAGES, type MessageKey, type Text } from '../cli/messages.js';
import { MemoryNonceStore, TokenError, TrustError, consumeNonce, issueNonce, verify, type NonceStore, type VerifyOptions } from '../pkcs/verify.js';
import { ACR_CARD_PIN, AMR_CARD_PIN, holderClaims } from './claims.js';
import type { AccountStore } from './provider.js';

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
  nonces?: NonceStore;
  /** The browser SDK (client/cpsd.js). */
  sdk: Buffer;
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

const fr = (key: MessageKey): Text => MESSAGES[key].fr;
const esc = (s: string): string => s.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
/** JSON for an inline script: no "</script>" can close it early. */
const inline = (value: unknown): string => JSON.stringify(value).replace(/</g, '\\u003c');
const plain = (t: Text): string => (typeof t === 'string' ? t : t.other);

interface Pending {
  csrf: string;
  nonce?: string;
}

function page(uid: string, clientId: string, csrf: string, daemonPort: number, scriptNonce: string): string {
  const text = Object.fromEntries(Object.entries<MessageKey>(PAGE_TEXTS).map(([k, key]) => [k, fr(key)]));
  const errors = Object.fromEntries(SDK_ERRORS.map((code) => [code, fr(`demo.error.${code}` as MessageKey)]));
  return `<!doctype html>
<html lang="fr"><head><meta charset="utf-8"><title>${esc(plain(fr('idp.page.title')))}</title>
<style nonce="${scriptNonce}">body{font:16px system-ui;margin:2em;max-width:40em} button{font-size:1.1em;padding:.4em 1em} .err{color:#b00}</style></head>
<body><h1>${esc(plain(fr('idp.page.heading')))}</h1>
<p>${esc(plain(fr('idp.page.client')).replace('{client}', clientId))}</p>
<button id="login" type="button">${esc(plain(fr('idp.page.login')))}</button>
<p id="status" role="status"></p>
<script type="module" nonce="${scriptNonce}">
import { authenticate } from '/cpsd.js';
const UID = ${inline(uid)};
const CSRF = ${inline(csrf)};
const PORT = ${inline(daemonPort)};
const TEXT = ${inline(text)};
const ERRORS = ${inline(errors)};
const plural = new Intl.PluralRules('fr');
const say = (t, count) => (typeof t === 'string' ? t : t[plural.select(count) === 'one' ? 'one' : 'other']).replace('{count}', String(count));
const status = document.getElementById('status');
const post = (path, body) => fetch('/interaction/' + UID + path, { method: 'POST', credentials: 'same-origin', headers: { 'Content-Type': 'application/json', 'X-CSRF': CSRF }, body: JSON.stringify(body ?? {}) });
document.getElementById('login').onclick = async () => {
  status.className = '';
  status.textContent = TEXT.reading;
  try {
    const issued = await post('/nonce');
    if (!issued.ok) throw Object.assign(new Error('nonce'), { code: issued.status === 404 ? 'EXPIRED' : 'SERVER_REFUSED' });
    const { nonce } = await issued.json();
    const token = await authenticate(nonce, { port: PORT });   // opens the daemon's PIN window from this click
    const res = await post('/login', { token });
    const answer = await res.json();
    if (!res.ok) throw Object.assign(new Error(answer.error), { code: res.status === 404 ? 'EXPIRED' : 'SERVER_REFUSED', detail: answer.error });
    status.textContent = TEXT.redirecting;
    location.assign(answer.redirect);
  } catch (e) {
    status.className = 'err';
    status.dataset.code = e.code ?? 'ERROR';
    status.textContent = e.code === 'PIN_INCORRECT'
      ? (typeof e.triesLeft === 'number' ? say(TEXT.wrongPin, e.triesLeft) : say(TEXT.wrongPinUnknown))
      : e.code === 'SERVER_REFUSED' ? TEXT.refused.replace('{code}', e.detail ?? '')
      : e.code === 'EXPIRED' ? TEXT.expired
      : ERRORS[e.code] ? say(ERRORS[e.code], e.triesLeft) : TEXT.other + (e.message ? ' (' + e.message + ')' : '');
  }
};
</script></body></html>`;
}

function readBody(req: IncomingMessage, limit = 20_000): Promise<string> {
  return new Promise((resolve, reject) => {
    let body = '';
    req.on('data', (c: Buffer) => {
      body += c.toString();
      if (body.length > limit) {
        reject(new Error('too large'));
        req.destroy();
      }
    });
    req.on('end', () => resolve(body));
    req.on('error', reject);
  });
}

const json = (res: ServerResponse, status: number, body: unknown): void => {
  res.writeHead(status, { 'Content-Type': 'application/json', 'Cache-Control': 'no-store' }).end(JSON.stringify(body));
};

/** The interaction routes and /cpsd.js; answers false for any other request (oidc-provider's). */
export function interactionRoutes(options: InteractionOptions): (req: IncomingMessage, res: ServerResponse) => Promise<boolean> {
  const { provider } = options;
  const nonces = options.nonces ?? new MemoryNonceStore();
  const pending = new Map<string, Pending>();

  /** The interaction of the browser's cookie, if it is the one of the URL. */
  const details = async (req: IncomingMessage, res: ServerResponse, uid: string): Promise<Awaited<ReturnType<Provider['interactionDetails']>> | undefined> => {
    try {
      const found = await provider.interactionDetails(req, res);
      return found.uid === uid ? found : undefined;
    } catch {
      return undefined;
    }
  };

  return async (req, res) => {
    const url = new URL(req.url ?? '/', 'http://localhost');
    if (req.method === 'GET' && url.pathname === '/cpsd.js') {
      res.writeHead(200, { 'Content-Type': 'text/javascript; charset=utf-8', 'Cache-Control': 'no-cache', 'X-Content-Type-Options': 'nosniff' }).end(options.sdk);
      return true;
    }
    const match = /^\/interaction\/([A-Za-z0-9_-]{1,64})(\/nonce|\/login)?$/.exec(url.pathname);
    if (!match) return false;
    const uid = match[1] ?? '';
    const action = match[2];

    if (req.method === 'GET' && !action) {
      const interaction = await details(req, res, uid);
      if (!interaction) {
        res.writeHead(400, { 'Content-Type': 'text/plain; charset=utf-8' }).end(plain(fr('idp.page.expired')));
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
      const csrf = randomBytes(16).toString('hex');
      pending.set(uid, { csrf });
      setTimeout(() => pending.delete(uid), 10 * 60_000).unref();
      const scriptNonce = randomBytes(16).toString('base64');
      res.writeHead(200, {
        'Content-Type': 'text/html; charset=utf-8',
        'Cache-Control': 'no-store',
        'X-Content-Type-Options': 'nosniff',
        'Referrer-Policy': 'no-referrer',
        'Content-Security-Policy': [
          "default-src 'none'",
          `script-src 'self' 'nonce-${scriptNonce}'`,
          `style-src 'nonce-${scriptNonce}'`,
          `connect-src 'self' ws://127.0.0.1:${options.daemonPort} http://127.0.0.1:${options.daemonPort}`,
          "img-src 'self'",
          "form-action 'self'",
          "frame-ancestors 'none'",
          "base-uri 'none'",
        ].join('; '),
      });
      res.end(page(uid, String(interaction.params.client_id ?? ''), csrf, options.daemonPort, scriptNonce));
      return true;
    }

    if (req.method !== 'POST' || !action) {
      res.writeHead(405).end();
      return true;
    }
    const state = pending.get(uid);
    if (req.headers.origin !== options.origin() || !state || req.headers['x-csrf'] !== state.csrf) {
      json(res, 403, { error: 'CSRF' });
      return true;
    }
    const interaction = await details(req, res, uid);
    if (!interaction || interaction.prompt.name !== 'login') {
      json(res, 404, { error: 'INTERACTION_EXPIRED' });
      return true;
    }
    if (action === '/nonce') {
      // One nonce per interaction at a time: a new one replaces the last.
      state.nonce = await issueNonce(nonces);
      json(res, 200, { nonce: state.nonce });
      return true;
    }
    // /login
    const issued = state.nonce ?? '';
    delete state.nonce;
    try {
      const { token } = JSON.parse(await readBody(req)) as { token?: unknown };
      const nonce = await consumeNonce(nonces, issued);
      const holder = await verify(token, { ...options.trust, origin: options.origin(), nonce, allowHttpLocalhost: options.allowHttpLocalhost === true });
      if (holder.assurance !== 'card+pin') throw new TrustError('CERT_POLICY', 'contactless', 'a card + PIN login is required');
      const claims = holderClaims(holder);
      options.accounts.set(claims);
      const redirect = await provider.interactionResult(req, res, { login: { accountId: claims.sub, acr: ACR_CARD_PIN, amr: [...AMR_CARD_PIN] } });
      pending.delete(uid);
      json(res, 200, { redirect });
    } catch (error) {
      json(res, 401, { error: error instanceof TokenError || error instanceof TrustError ? error.code : 'BAD_REQUEST' });
    }
    return true;
  };
}

/** The SDK file of this package. */
export function sdkFile(root: string): Buffer {
  return readFileSync(`${root}client/cpsd.js`);
}
