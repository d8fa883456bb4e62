/**
 * Demo relying party: "Se connecter avec ma carte CPS". Issues a nonce per browser session, verifies the
 * web-eid:1.0 token with cpsd/verify against the test IGC-Santé PKI (and its CRL), and shows the holder.
 * Then "Signer un document", as an editor does it with cpsd/sign: the server makes a one-page consultation
 * report naming the holder (pdf-lib), prepares it with the card's signing certificate (`preparePdf`), the
 * page has the card sign the hash (`signDocument`: PIN in the daemon's window, which shows the document and
 * the certificate used), the server finishes (`finishPdf`), verifies (`verifyPdf`) and offers the signed
 * PDF. State in memory, bounded: at most MAX_SESSIONS sessions (the oldest forgotten), each holding one
 * document, one signature under way and the last signed copy.
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
import { DocumentSignatureError, finishPdf, preparePdf, verifyPdf, type PdfSigningState } from '../../sign/index.js';
import { PDFDocument, StandardFonts, rgb } from 'pdf-lib';

/** The repository root, from the sources (examples/demo) or the build (dist/examples/demo). */
const ROOT = ['../../', '../../../'].map((up) => fileURLToPath(new URL(up, import.meta.url))).find((d) => existsSync(`${d}fixtures/pki`)) ?? '';
const file = (p: string): Buffer => readFileSync(`${ROOT}${p}`);

interface Session {
  nonce?: string;
  holder?: VerifiedHolder;
  /** The document to sign, made for the holder at login. */
  document?: Uint8Array;
  /** The signature under way (between prepare and finish). */
  signing?: PdfSigningState;
  /** The last signed copy, and what the verifier said of it. */
  signed?: { pdf: Uint8Array; result: SignatureResult };
}

/** What the page shows of a signed document: the verifier's answer. */
export interface SignatureResult {
  signer: string;
  nationalId: string;
  /** ISO time the signer claims (/M). */
  signedAt: string | null;
  valid: true;
  coversWholeDocument: boolean;
  url: string;
}

/** Sessions kept at most (a demo: the oldest are forgotten, a few tens of kB each at most). */
export const MAX_SESSIONS = 500;
export const DOCUMENT_NAME = 'compte-rendu-consultation.pdf';
export const SIGNED_NAME = 'compte-rendu-consultation-signe.pdf';

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
  signHeading: 'demo.sign.heading',
  signDocument: 'demo.sign.document',
  sign: 'demo.sign.button',
  signing: 'demo.sign.signing',
  signed: 'demo.sign.done',
  signer: 'demo.sign.signer',
  signedAt: 'demo.sign.time',
  check: 'demo.sign.check',
  valid: 'demo.sign.valid',
  download: 'demo.sign.download',
  signOther: 'demo.sign.error.other',
} as const satisfies Readonly<Record<string, MessageKey>>;

/** What signing says differently from the login (the rest: DEMO_ERRORS), and the server's refusals. */
export const DEMO_SIGN_ERRORS = {
  USER_CANCELLED: 'demo.sign.error.USER_CANCELLED',
  CONTACTLESS_NOT_ALLOWED: 'demo.sign.error.CONTACTLESS_NOT_ALLOWED',
  SERVER_REFUSED: 'demo.sign.error.SERVER_REFUSED',
  OTHER_HOLDER: 'demo.sign.error.OTHER_HOLDER',
  SIGNING_STATE_INVALID: 'demo.sign.error.SIGNING_STATE_INVALID',
  CERT_EXPIRED: 'demo.sign.error.CERT_EXPIRED',
  CERT_REVOKED: 'demo.sign.error.CERT_REVOKED',
} as const satisfies Readonly<Record<string, MessageKey>>;

/** Latin-1 only: what the standard PDF fonts (WinAnsi) can write. */
const latin1 = (s: string): string => s.normalize('NFC').replace(/[^\x20-\x7e\xa0-\xff]/g, '?');

/** The demo document: a one-page consultation report naming the holder (fictitious patient, no medical value). */
export async function demoDocument(holder: VerifiedHolder, now: Date): Promise<Uint8Array> {
  const doc = await PDFDocument.create();
  doc.setTitle('Compte rendu de consultation');
  doc.setAuthor(latin1(`${holder.givenName} ${holder.surname}`));
  doc.setProducer('cpsd demo');
  doc.setCreationDate(now);
  doc.setModificationDate(now);
  const regular = await doc.embedFont(StandardFonts.Helvetica);
  const bold = await doc.embedFont(StandardFonts.HelveticaBold);
  const page = doc.addPage([595, 842]);
  let y = 770;
  const line = (text: string, options: { bold?: boolean; size?: number; gap?: number } = {}): void => {
    page.drawText(latin1(text), { x: 60, y, size: options.size ?? 11, font: options.bold ? bold : regular, color: rgb(0.1, 0.1, 0.1) });
    y -= options.gap ?? 18;
  };
  const date = new Intl.DateTimeFormat('fr-FR', { dateStyle: 'long', timeZone: 'Europe/Paris' }).format(now);
  line('Compte rendu de consultation', { bold: true, size: 18, gap: 34 });
  line(`Praticien : ${holder.givenName} ${holder.surname}${holder.profession ? ` (${holder.profession.label})` : ''}`);
  line(`Identifiant national : ${holder.nationalId}${holder.rpps ? ` (RPPS ${holder.rpps})` : ''}`);
  line(`Date : ${date}`, { gap: 30 });
  line('Patiente : Mme Marie EXEMPLE (patiente fictive)', { gap: 30 });
  line('Motif : consultation de suivi.', { gap: 22 });
  line('Examen clinique sans particularité. Pas de modification du traitement.');
  line('Prochain rendez-vous dans six mois.', { gap: 48 });
  line('Document de démonstration produit par cpsd (examples/demo), sans valeur médicale.', { size: 9 });
  line('Signé avec la carte CPS du praticien : signature PAdES (cpsd/sign).', { size: 9 });
  // Classic cross-reference table: the placeholder's incremental update extends it as it is.
  return doc.save({ useObjectStreams: false });
}

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
<style>body{font:16px system-ui;margin:2em;max-width:40em} button{font-size:1.1em;padding:.4em 1em} .err{color:#b00} .ok{color:#060} dt{font-weight:bold} h2{font-size:1.2em;margin-top:1.6em;border-top:1px solid #ccc;padding-top:1em}</style></head>
<body><h1>${esc(page.heading)}</h1>
<div id="out"></div>
<script type="module">
import { authenticate, signDocument } from '/cpsd.js';
const LANG = ${inline(l)};
const TEXT = ${inline(page)};
const ERRORS = ${inline(texts(DEMO_ERRORS, l))};
const SIGN_ERRORS = { ...ERRORS, ...${inline(texts(DEMO_SIGN_ERRORS, l))} };
const plural = new Intl.PluralRules(LANG);
// A message of the catalogue: a plural { one, other } takes its form from count; {count} is filled in.
const say = (text, count) => (typeof text === 'string' ? text : text[plural.select(count) === 'one' ? 'one' : 'other']).replace('{count}', String(count));
const out = document.getElementById('out');
const show = (html) => (out.innerHTML = html);
const esc = (s) => String(s ?? '').replace(/[&<>"']/g, (c) => '&#' + c.charCodeAt(0) + ';');
// A wrong PIN that used the last try blocked the card: say so, not "0 tries left".
const codeOf = (e) => (e.code === 'PIN_INCORRECT' && e.triesLeft === 0 ? 'PIN_BLOCKED' : e.code);
async function refresh() {
  const me = await (await fetch('/api/me')).json();
  if (me.holder) {
    const h = me.holder;
    show('<p id="welcome">' + esc(TEXT.connected) + ' <strong>' + esc(h.givenName) + ' ' + esc(h.surname) + '</strong></p>' +
      '<dl><dt>' + esc(TEXT.nationalId) + '</dt><dd id="idnat">' + esc(h.nationalId) + '</dd><dt>RPPS</dt><dd id="rpps">' + esc(h.rpps ?? '—') + '</dd>' +
      '<dt>' + esc(TEXT.profession) + '</dt><dd id="profession">' + esc(h.profession?.label ?? '—') + '</dd><dt>' + esc(TEXT.idKind) + '</dt><dd>' + esc(h.idKind) + '</dd></dl>' +
      '<button id="logout">' + esc(TEXT.logout) + '</button>' + signing(me));
    document.getElementById('logout').onclick = async () => { await fetch('/api/logout', { method: 'POST', headers: { 'X-CSRF': me.csrf } }); refresh(); };
    if (me.document) document.getElementById('sign').onclick = () => sign(me);
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
    status.dataset.code = codeOf(e) ?? 'ERROR';
    const text = e.code === 'PIN_INCORRECT' && typeof e.triesLeft !== 'number' ? TEXT.wrongPin : ERRORS[codeOf(e)];
    // An unknown code (a newer cpsd): the generic message, with the SDK's own text for support.
    status.textContent = text ? say(text, e.triesLeft) : TEXT.other + (e.message ? ' (' + e.message + ')' : '');
  }
}
// The signing part of the holder's page: the document, the button, the last signature and what the verifier said.
function signing(me) {
  if (!me.document) return '';
  const d = me.document;
  let html = '<h2>' + esc(TEXT.signHeading) + '</h2><p>' + esc(TEXT.signDocument) + ' <a id="document" href="' + esc(d.url) + '" target="_blank">' + esc(d.name) + '</a></p>' +
    '<button id="sign">' + esc(TEXT.sign) + '</button><p id="sign-status" role="status"></p>';
  const r = me.signature;
  if (r) {
    const at = r.signedAt ? new Intl.DateTimeFormat(LANG, { dateStyle: 'long', timeStyle: 'medium' }).format(new Date(r.signedAt)) : '—';
    html += '<div id="signed"><p class="ok">' + esc(TEXT.signed) + '</p><dl><dt>' + esc(TEXT.signer) + '</dt><dd id="signer">' + esc(r.signer) + ' (' + esc(r.nationalId) + ')</dd>' +
      '<dt>' + esc(TEXT.signedAt) + '</dt><dd id="signed-at">' + esc(at) + '</dd><dt>' + esc(TEXT.check) + '</dt><dd id="validity" data-valid="' + esc(r.valid) + '">' + esc(TEXT.valid) + '</dd></dl>' +
      '<p><a id="download" href="' + esc(r.url) + '" download="' + esc(r.name) + '">' + esc(TEXT.download) + '</a></p></div>';
  }
  return html;
}
async function sign(me) {
  const status = document.getElementById('sign-status');
  const button = document.getElementById('sign');
  button.disabled = true; // one signature at a time
  status.className = '';
  delete status.dataset.code;
  status.textContent = TEXT.signing;
  const post = async (url, body) => {
    const res = await fetch(url, { method: 'POST', headers: { 'Content-Type': 'application/json', 'X-CSRF': me.csrf }, body: JSON.stringify(body) });
    const answer = await res.json();
    if (!res.ok) throw Object.assign(new Error(answer.error), { code: answer.error in SIGN_ERRORS ? answer.error : 'SERVER_REFUSED', serverCode: answer.error });
    return answer;
  };
  try {
    // From the click: the PIN window opens at once; the card's signing certificate goes to the server,
    // which prepares the PDF and answers the hash the card signs.
    const { signature } = await signDocument({
      port: ${daemonPort},
      document: { name: me.document.name, type: 'application/pdf', size: me.document.size },
      hash: async (signerCertificate) => (await post('/api/sign/prepare', { signerCertificate })).hash,
    });
    await post('/api/sign/finish', { signature });
    await refresh();
  } catch (e) {
    status.className = 'err';
    status.dataset.code = e.serverCode ?? codeOf(e) ?? 'ERROR';
    const text = e.code === 'PIN_INCORRECT' && typeof e.triesLeft !== 'number' ? TEXT.wrongPin : SIGN_ERRORS[codeOf(e)];
    status.textContent = text ? say(text, e.triesLeft) + (e.code === 'SERVER_REFUSED' && e.serverCode ? ' (' + e.serverCode + ')' : '')
      : TEXT.signOther + (e.message ? ' (' + e.message + ')' : '');
  } finally {
    button.disabled = false;
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
    if (id && existing) {
      // Most recently used last: the oldest is the first forgotten.
      sessions.delete(id);
      sessions.set(id, existing);
      return existing;
    }
    const fresh = randomBytes(16).toString('hex');
    const s = { csrf: randomBytes(16).toString('hex') };
    sessions.set(fresh, s);
    for (const oldest of sessions.keys()) {
      if (sessions.size <= MAX_SESSIONS) break;
      sessions.delete(oldest);
    }
    res.setHeader('Set-Cookie', `demo=${fresh}; HttpOnly; SameSite=Strict; Path=/`);
    return s;
  };
  const json = (res: ServerResponse, status: number, body: unknown): void => {
    res.writeHead(status, { 'Content-Type': 'application/json', 'Cache-Control': 'no-store' }).end(JSON.stringify(body));
  };
  const pdf = (res: ServerResponse, bytes: Uint8Array, disposition: 'inline' | 'attachment', name: string): void => {
    res.writeHead(200, { 'Content-Type': 'application/pdf', 'Content-Disposition': `${disposition}; filename="${name}"`, 'Cache-Control': 'no-store', 'X-Content-Type-Options': 'nosniff' }).end(bytes);
  };
  /** A refusal of cpsd/sign or of the trust layer by its code; anything else is the request's fault. */
  const refused = (res: ServerResponse, error: unknown): void =>
    json(res, 422, { error: error instanceof DocumentSignatureError || error instanceof TrustError ? error.code : 'BAD_REQUEST' });
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
      if (req.method === 'GET' && url === '/api/me') {
        const document = s.document ? { name: DOCUMENT_NAME, size: s.document.length, url: `/documents/${DOCUMENT_NAME}` } : null;
        return json(res, 200, { holder: s.holder ?? null, csrf: s.csrf, document, signature: s.signed ? { ...s.signed.result, name: SIGNED_NAME } : null });
      }
      // The holder's document (to read before signing), and the signed copy (to download).
      if (req.method === 'GET' && url === `/documents/${DOCUMENT_NAME}` && s.document) return pdf(res, s.document, 'inline', DOCUMENT_NAME);
      if (req.method === 'GET' && url === `/documents/${SIGNED_NAME}` && s.signed) return pdf(res, s.signed.pdf, 'attachment', SIGNED_NAME);
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
          const now = options.now?.() ?? new Date();
          s.holder = await verify(token, { origin, nonce, ...trust, allowHttpLocalhost: true, now });
          s.document = await demoDocument(s.holder, now);
          delete s.signing;
          delete s.signed;
          return json(res, 200, { holder: s.holder });
        } catch (error) {
          return json(res, 401, { error: error instanceof TokenError || error instanceof TrustError ? error.code : 'BAD_REQUEST' });
        }
      }
      if (req.method === 'POST' && url === '/api/logout') {
        delete s.holder;
        delete s.document;
        delete s.signing;
        delete s.signed;
        return json(res, 200, { ok: true });
      }
      // Step 1 of the signature: the card's signing certificate in; the hash the card signs out, the state kept here.
      if (req.method === 'POST' && url === '/api/sign/prepare') {
        if (!s.holder || !s.document) return json(res, 401, { error: 'NOT_LOGGED_IN' });
        try {
          const { signerCertificate } = JSON.parse(await readBody(req)) as { signerCertificate?: unknown };
          const { hashBase64url, state } = await preparePdf(s.document, {
            signerCertificate: String(signerCertificate),
            chain: trust.intermediates,
            name: `${s.holder.givenName} ${s.holder.surname}`,
            reason: 'Compte rendu de consultation',
            location: 'Démo cpsd',
            signingTime: options.now?.() ?? new Date(),
          });
          s.signing = state;
          return json(res, 200, { hash: hashBase64url });
        } catch (error) {
          return refused(res, error);
        }
      }
      // Step 2: the card's signature in; finish, verify on the trust layer, keep the signed copy.
      if (req.method === 'POST' && url === '/api/sign/finish') {
        const signing = s.signing;
        delete s.signing;
        if (!s.holder || !s.document || !signing) return json(res, 409, { error: 'NOT_PREPARED' });
        try {
          const { signature } = JSON.parse(await readBody(req)) as { signature?: unknown };
          const signed = finishPdf(signing, String(signature), s.document);
          const mine = (await verifyPdf(signed, { ...trust, now: options.now?.() ?? new Date() })).at(-1);
          if (!mine) return json(res, 422, { error: 'DOCUMENT_NOT_SIGNED' });
          // The document names the logged-in holder: another card's signature is refused.
          if (mine.holder.nationalId !== s.holder.nationalId) return json(res, 422, { error: 'OTHER_HOLDER' });
          const result: SignatureResult = {
            signer: `${mine.holder.givenName} ${mine.holder.surname}`,
            nationalId: mine.holder.nationalId,
            signedAt: mine.claimedSigningTime?.toISOString() ?? null,
            valid: true,
            coversWholeDocument: mine.coversWholeDocument,
            url: `/documents/${SIGNED_NAME}`,
          };
          s.signed = { pdf: signed, result };
          return json(res, 200, result);
        } catch (error) {
          return refused(res, error);
        }
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
