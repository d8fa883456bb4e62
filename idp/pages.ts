/**
 * The HTML around cpsd-idp's pages (login, error, logout): French or English from `ui_locales`, then
 * Accept-Language (French when neither says: the holders are French health professionals), texts from
 * the CLI's catalogue, no inline script or style without the page's nonce, no outside resource.
 */
import { createHash } from 'node:crypto';
import type { IncomingMessage } from 'node:http';
import { MESSAGES, type MessageKey, type Text } from '../core/messages.js';
import { own } from '../core/own.js';

export type PageLang = 'fr' | 'en';

const STYLE = 'body{font:16px system-ui;margin:2em;max-width:40em} button{font-size:1.1em;padding:.4em 1em} .err{color:#b00} code{font-size:.9em}';

/** The style's CSP source: every page has this one style and no other. */
export const STYLE_SRC = `'sha256-${createHash('sha256').update(STYLE).digest('base64')}'`;

/**
 * The CSP of a page without script: its one style by hash, nothing else. No form-action: the logout
 * form's POST is answered by a redirect to the application, which form-action would block (Chromium
 * applies it to the redirect too).
 */
export const STATIC_CSP = `default-src 'none'; style-src ${STYLE_SRC}; frame-ancestors 'none'; base-uri 'none'`;

export const esc = (s: string): string => s.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
export const plain = (t: Text): string => (typeof t === 'string' ? t : t.other);
export const text = (lang: PageLang, key: MessageKey, values: Readonly<Record<string, string>> = {}): string =>
  plain(MESSAGES[key][lang]).replace(/\{(\w+)\}/g, (whole, name: string) => own(values, name) ?? whole);

/** `ui_locales` (OIDC: space-separated, by preference) first, then the browser's languages. */
export function pageLang(uiLocales: unknown, req: IncomingMessage | undefined): PageLang {
  const asked = [
    ...(typeof uiLocales === 'string' ? uiLocales.split(' ') : []),
    ...String(req?.headers['accept-language'] ?? '')
      .split(',')
      .map((part) => part.split(';')[0]?.trim() ?? ''),
  ];
  for (const tag of asked) {
    const primary = tag.toLowerCase().split('-')[0];
    if (primary === 'fr' || primary === 'en') return primary;
  }
  return 'fr';
}

/** A page under STATIC_CSP (the login page adds its nonce'd script to the same CSP). */
export function htmlPage(lang: PageLang, title: string, body: string): string {
  return `<!doctype html><html lang="${lang}"><head><meta charset="utf-8"><title>${esc(title)}</title><style>${STYLE}</style></head><body>${body}</body></html>`;
}

/** oidc-provider's error codes that have their own explanation; any other gets the general one. */
const ERROR_TEXTS: Readonly<Record<string, MessageKey>> = {
  invalid_client: 'idp.error.invalid_client',
  invalid_redirect_uri: 'idp.error.invalid_redirect_uri',
  invalid_request: 'idp.error.invalid_request',
  invalid_grant: 'idp.error.invalid_grant',
  access_denied: 'idp.error.access_denied',
  login_required: 'idp.error.login_required',
  unauthorized_client: 'idp.error.unauthorized_client',
  rate_limited: 'idp.error.rate_limited',
  server_error: 'idp.error.server_error',
  interaction_expired: 'idp.page.expired',
  UPSTREAM_REFUSED: 'idp.error.upstream_refused',
  UPSTREAM_STATE: 'idp.error.upstream_state',
  UPSTREAM_INVALID: 'idp.error.upstream_failed',
  UPSTREAM_CLAIMS: 'idp.error.upstream_failed',
  UPSTREAM_UNAVAILABLE: 'idp.error.upstream_unavailable',
};

/**
 * The page of a refused request: what happened in words, the OAuth error code for the help desk, and
 * never a link to a redirect_uri that failed to validate (the request could be an open-redirect attempt).
 */
export function errorPage(lang: PageLang, code: string, detail: string | undefined): string {
  const key = own(ERROR_TEXTS, code) ?? 'idp.error.other';
  return htmlPage(
    lang,
    text(lang, 'idp.error.title'),
    `<h1>${esc(text(lang, 'idp.error.title'))}</h1><p id="error" class="err" data-code="${esc(code)}">${esc(text(lang, key))}</p>` +
      `<p>${esc(text(lang, 'idp.error.code'))} <code id="error-code">${esc(code)}</code>${detail ? ` — <span id="error-detail">${esc(detail)}</span>` : ''}</p>` +
      `<p>${esc(text(lang, 'idp.error.help'))}</p>`,
  );
}
