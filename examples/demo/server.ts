/**
 * Demo relying party: "Se connecter avec ma carte CPS". Issues a nonce per browser session, verifies the
 * web-eid:1.0 token with cpsd/verify against the test IGC-Santé PKI (and its CRL), and shows the holder.
 * The page is in French, in English with `/?lang=en`; its texts are in the message catalogue (core/messages.ts),
 * one message for every error code the SDK can give.
 *
 *   node dist/examples/demo/server.js [--port 8080] [--daemon-port 24821]
 */
import { randomBytes } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { fileURLToPath } from 'node:url';
import { MESSAGES, type MessageKey, type Text } from '../../core/messages.js';
import type { Lang } from '../../core/i18n.js';
import { MemoryNonceStore, TokenError, TrustError, consumeNonce, issueNonce, verify, type VerifiedHolder } from '../../pkcs/verify.js';

/** The repository root, from the sources (examples/demo) or the build (dist/examples/demo). */
const ROOT = ['../../', '../../../'].map((up) => fileURLToPath(new URL(up, import.meta.url))).find((d) => existsSync(`${d}fixtures/pki`)) ?? '';
const file = (p: string): Buffer => readFileSync(`${ROOT}${p}`);

interface Session {
  nonce?: string;
  holder?: VerifiedHolder;
}

export interface DemoOptions {
  port?: number;
  daemonPort?: number;
  now?: () => Date;
}

/** The page's texts: one per error code the SDK can give (client/cpsd.d.ts CpsdErrorCode), and its own. */
export const DEMO_ERRORS = {
  DAEMON_UNREACHABLE: 'demo.error.DAEMON_UNREACHABLE',
  LOCAL_NETWORK_DENIED: 'demo.error.LOCAL_NETWORK_DENIED',
  ORIGIN_NOT_ALLOWED: 'demo.error.ORIGIN_NOT_ALLOWED',
  USER_CANCELLED: 'demo.error.USER_CANCELLED',
  PIN_BLOCKED: 'demo.error.PIN_BLOCKED',
  PIN_INCORRECT: 'demo.error.PIN_INCORRECT',
  PIN_LAST_TRY: 'demo.error.PIN_LAST_TRY',
  PIN_FORMAT: 'demo.error.PIN_FORMAT',
  PIN_NOT_ALLOWED: 'demo.error.PIN_NOT_ALLOWED',
  CONTACTLESS_NOT_ALLOWED: 'demo.error.CONTACTLESS_NOT_ALLOWED',
  CARD_ABSENT: 'demo.error.CARD_ABSENT',
  CARD_UNSUPPORTED: 'demo.error.CARD_UNSUPPORTED',
  CARD_ERROR: 'demo.error.CARD_ERROR',
  READER_NOT_FOUND: 'demo.error.READER_NOT_FOUND',
  PCSC_UNAVAILABLE: 'demo.error.PCSC_UNAVAILABLE',
  TIMEOUT: 'demo.error.TIMEOUT',
  BUSY: 'demo.error.BUSY',
  RATE_LIMITED: 'demo.error.RATE_LIMITED',
  INVALID_REQUEST: 'demo.error.INVALID_REQUEST',
  METHOD_NOT_FOUND: 'demo.error.METHOD_NOT_FOUND',
  INTERNAL: 'demo.error.INTERNAL',
  SERVER_REFUSED: 'demo.error.SERVER_REFUSED',
} as const satisfies Readonly<Record<string, MessageKey>>;

const DEMO_TEXTS = {
  title: 'demo.title',
  heading: 'demo.heading',
  login: 'demo.login',
  logout: 'demo.logout',
  reading: 'demo.reading',
  connected: 'demo.connected',
  nationalId: 'demo.nationalId',
  profession: 'demo.profession',
  idKind: 'demo.idKind',
  other: 'demo.error.other',
  wrongPin: 'demo.error.PIN_INCORRECT.unknownTries',
} as const satisfies Readonly<Record<string, MessageKey>>;

/** The demo's language: `?lang=fr|en`, French otherwise (a French relying party's page). */
export function demoLang(url: string): Lang {
  return new URL(url, 'http://localhost').searchParams.get('lang') === 'en' ? 'en' : 'fr';
}

const texts = <K extends string>(table: Readonly<Record<K, MessageKey>>, l: Lang): Record<K, Text> =>
  Object.fromEntries(Object.entries<MessageKey>(table).map(([k, key]) => [k, MESSAGES[key][l]])) as Record<K, Text>;

/** JSON for an inline script: no "</script>" can close it early. */
const inline = (value: unknown): string => JSON.stringify(value).replace(/</g, '\\u003c');

const PAGE = (daemonPort: number, l: Lang): string => {
  const page = texts(DEMO_TEXTS, l);
  const esc = (s: Text): string => String(s).replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
  return `<!doctype html>
<html lang="${l}"><head><meta charset="utf-8"><title>${esc(page.title)}</title>
<style>body{font:16px system-ui;margin:2em;max-width:40em} button{font-size:1.1em;padding:.4em 1em} .err{color:#b00} dt{font-weight:bold}</style></head>
<body><h1>${esc(page.heading)}</h1>
<div id="out"></div>
<script type="module">
import { authenticate, connect } from '/cpsd.js';
const LANG = ${inline(l)};
const TEXT = ${inline(page)};
const ERRORS = ${inline(texts(DEMO_ERRORS, l))};
const plural = new Intl.PluralRules(LANG);
// A message of the catalogue: a plural { one, other } takes its form from count; {count} is filled in.
const say = (text, count) => (typeof text === 'string' ? text : text[plural.select(count) === 'one' ? 'one' : 'other']).replace('{count}', String(count));
const out = document.getElementById('out');
const show = (html) => (out.innerHTML = html);
const esc = (s) => String(s ?? '').replace(/[&<>"']/g, (c) => '&#' + c.charCodeAt(0) + ';');
async function refresh() {
  const me = await (await fetch('/api/me')).json();
  if (me.holder) {
    const h = me.holder;
    show('<p id="welcome">' + esc(TEXT.connected) + ' <strong>' + esc(h.givenName) + ' ' + esc(h.surname) + '</strong></p>' +
      '<dl><dt>' + esc(TEXT.nationalId) + '</dt><dd id="idnat">' + esc(h.nationalId) + '</dd><dt>RPPS</dt><dd id="rpps">' + esc(h.rpps ?? '—') + '</dd>' +
      '<dt>' + esc(TEXT.profession) + '</dt><dd id="profession">' + esc(h.profession?.label ?? '—') + '</dd><dt>' + esc(TEXT.idKind) + '</dt><dd>' + esc(h.idKind) + '</dd></dl>' +
      '<button id="logout">' + esc(TEXT.logout) + '</button>');
    document.getElementById('logout').onclick = async () => { await fetch('/api/logout', { method: 'POST', headers: { 'X-CSRF': me.csrf } }); refresh(); };
  } else {
    show('<button id="login">' + esc(TEXT.login) + '</button><p id="status"></p>');
    document.getElementById('login').onclick = () => login(me.csrf);
  }
}
async function login(csrf) {
  const status = document.getElementById('status');
  status.textContent = TEXT.reading;
  try {
    const { nonce } = await (await fetch('/api/nonce', { method: 'POST', headers: { 'X-CSRF': csrf } })).json();
    const token = await authenticate(nonce, { port: ${daemonPort} });
    const res = await fetch('/api/login', { method: 'POST', headers: { 'Content-Type': 'application/json', 'X-CSRF': csrf }, body: JSON.stringify({ token }) });
    if (!res.ok) throw Object.assign(new Error((await res.json()).error), { code: 'SERVER_REFUSED' });
    refresh();
  } catch (e) {
    status.className = 'err';
    status.id = 'error';
    status.dataset.code = e.code ?? 'ERROR';
    const text = e.code === 'PIN_INCORRECT' && typeof e.triesLeft !== 'number' ? TEXT.wrongPin : ERRORS[e.code];
    // An unknown code (a newer cpsd): the generic message, with the SDK's own text for support.
    status.textContent = text ? say(text, e.triesLeft) : TEXT.other + (e.message ? ' (' + e.message + ')' : '');
  }
}
refresh();
</script></body></html>`;
};

export function startDemo(options: DemoOptions = {}): Promise<{ server: Server; port: number; origin: string }> {
  const store = new MemoryNonceStore();
  const sessions = new Map<string, Session & { csrf: string }>();
  const trust = {
    trustAnchors: [new Uint8Array(file('fixtures/pki/root.der'))],
    intermediates: [new Uint8Array(file('fixtures/pki/intermediate.der'))],
    // The test PKI's CRLs, given: its distribution points are not on any network.
    crls: [new Uint8Array(file('fixtures/pki/fort-personnes.crl')), new Uint8Array(file('fixtures/pki/racine.crl'))],
    revocation: 'crl',
    crl: { fetch: false },
  } as const;
  let origin = '';

  const session = (req: IncomingMessage, res: ServerResponse): Session & { csrf: string } => {
    const id = /(?:^|;\s*)demo=([0-9a-f]{32})/.exec(req.headers.cookie ?? '')?.[1];
    const existing = id ? sessions.get(id) : undefined;
    if (existing) return existing;
    const fresh = randomBytes(16).toString('hex');
    const s = { csrf: randomBytes(16).toString('hex') };
    sessions.set(fresh, s);
    res.setHeader('Set-Cookie', `demo=${fresh}; HttpOnly; SameSite=Strict; Path=/`);
    return s;
  };
  const json = (res: ServerResponse, status: number, body: unknown): void => {
    res.writeHead(status, { 'Content-Type': 'application/json', 'Cache-Control': 'no-store' }).end(JSON.stringify(body));
  };
  const readBody = (req: IncomingMessage): Promise<string> =>
    new Promise((resolve, reject) => {
      let body = '';
      req.on('data', (c: Buffer) => {
        body += c.toString();
        if (body.length > 20_000) reject(new Error('too large'));
      });
      req.on('end', () => resolve(body));
    });

  const server = createServer((req, res) => {
    void (async () => {
      const s = session(req, res);
      const url = req.url ?? '/';
      if (req.method === 'GET' && new URL(url, 'http://localhost').pathname === '/') {
        res.writeHead(200, { 'Content-Type': 'text/html; charset=utf-8', 'Content-Security-Policy': "default-src 'self'; script-src 'self' 'unsafe-inline'; connect-src 'self' ws://127.0.0.1:* http://127.0.0.1:*; style-src 'unsafe-inline'" });
        res.end(PAGE(options.daemonPort ?? 24821, demoLang(url)));
        return;
      }
      if (req.method === 'GET' && url === '/cpsd.js') {
        res.writeHead(200, { 'Content-Type': 'text/javascript; charset=utf-8' }).end(file('client/cpsd.js'));
        return;
      }
      if (req.method === 'GET' && url === '/api/me') return json(res, 200, { holder: s.holder ?? null, csrf: s.csrf });
      // Every POST: same origin and the session's CSRF token.
      if (req.method === 'POST' && (req.headers.origin !== origin || req.headers['x-csrf'] !== s.csrf)) return json(res, 403, { error: 'CSRF' });
      if (req.method === 'POST' && url === '/api/nonce') {
        s.nonce = await issueNonce(store);
        return json(res, 200, { nonce: s.nonce });
      }
      if (req.method === 'POST' && url === '/api/login') {
        try {
          const { token } = JSON.parse(await readBody(req)) as { token: unknown };
          const nonce = s.nonce ?? '';
          delete s.nonce;
          // The nonce comes from this session's server-side state, and is good once.
          await consumeNonce(store, nonce);
          s.holder = await verify(token, { origin, nonce, ...trust, allowHttpLocalhost: true, now: options.now?.() ?? new Date() });
          return json(res, 200, { holder: s.holder });
        } catch (error) {
          return json(res, 401, { error: error instanceof TokenError || error instanceof TrustError ? error.code : 'BAD_REQUEST' });
        }
      }
      if (req.method === 'POST' && url === '/api/logout') {
        delete s.holder;
        return json(res, 200, { ok: true });
      }
      res.writeHead(404).end();
    })();
  });
  return new Promise((resolve) => {
    server.listen(options.port ?? 8080, '127.0.0.1', () => {
      const port = (server.address() as AddressInfo).port;
      origin = `http://localhost:${port}`;
      resolve({ server, port, origin });
    });
  });
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  const arg = (name: string): number | undefined => {
    const i = process.argv.indexOf(name);
    return i > 0 ? Number(process.argv[i + 1]) : undefined;
  };
  const { origin } = await startDemo({ port: arg('--port') ?? 8080, daemonPort: arg('--daemon-port') ?? 24821 });
  process.stderr.write(`demo relying party on ${origin}\n`);
}
