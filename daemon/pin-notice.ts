/**
 * The notice the daemon shows when an application's own PIN prompt (a browser's, through the PKCS#11
 * module) got a wrong PIN: those prompts only ask again, without the tries left, and the next wrong PIN
 * may block the card. The notice names the application, the card and the tries left (at one left: cpsd
 * no longer presents an application's PIN, and how to use the last try; at none: the card is blocked). It is a page of the daemon's own
 * loopback server, opened with `pinWindowCommand`; it holds no secret and has no script.
 */
import { randomBytes } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { escapeHtml, pickLang, triesText, type Lang } from './pin-page.js';

/** What a refused PIN tells the person. */
export interface PinRefusal {
  /** The application that asked (its name as the module reported it; empty when unknown). */
  app: string;
  /** The card as the token names it (card type and holder). */
  card: string;
  triesLeft: number;
  blocked: boolean;
}

/** How long a notice's page stays available after it was announced. */
export const NOTICE_TTL_MS = 5 * 60_000;
/** Notices kept at most (the oldest goes first): a runaway application cannot grow the daemon. */
const MAX_NOTICES = 16;

const TEXT = {
  fr: {
    title: 'Code porteur erroné',
    app: (app: string) => (app ? `L’application <strong>${app}</strong> a présenté un code porteur erroné` : 'Une application de ce poste a présenté un code porteur erroné'),
    card: 'à la carte',
    left: (tries: string) => `Il reste <strong id="tries">${tries}</strong>.`,
    last: 'Un code faux de plus bloquerait la carte : cpsd ne présente donc plus à la carte un code saisi dans une application. Pour utiliser ce dernier essai, vérifiez votre code avec cpsd lui-même : <code>cpsd pin verify --allow-last-try</code>.',
    blocked: 'La carte est <strong id="tries">bloquée</strong>. Son code de déblocage (PUK) permet de la débloquer : voyez votre service informatique.',
  },
  en: {
    title: 'Wrong PIN',
    app: (app: string) => (app ? `The application <strong>${app}</strong> presented a wrong PIN` : 'An application on this computer presented a wrong PIN'),
    card: 'to the card',
    left: (tries: string) => `<strong id="tries">${tries}</strong>.`,
    last: 'One more wrong PIN would block the card: cpsd therefore no longer presents a PIN typed in an application. To use this last try, verify your PIN with cpsd itself: <code>cpsd pin verify --allow-last-try</code>.',
    blocked: 'The card is <strong id="tries">blocked</strong>. Its unblocking code (PUK) can unblock it: ask your IT department.',
  },
} as const;

const TRIES_EN = (n: number): string => `${n} ${n === 1 ? 'try' : 'tries'} left`;

export function noticePage(refusal: PinRefusal, lang: Lang): string {
  const t = TEXT[lang];
  const tries = lang === 'fr' ? triesText(lang, refusal.triesLeft) : TRIES_EN(refusal.triesLeft);
  const state = refusal.blocked || refusal.triesLeft === 0 ? 'blocked' : refusal.triesLeft === 1 ? 'last' : 'left';
  const body =
    state === 'blocked'
      ? `<p class="warn">${t.blocked}</p>`
      : `<p>${t.left(escapeHtml(tries))}</p>${state === 'last' ? `<p class="warn" id="last-try">${t.last}</p>` : ''}`;
  return `<!doctype html>
<html lang="${lang}"><head><meta charset="utf-8"><title>cpsd — ${escapeHtml(t.title)}</title>
<style>body{font:16px system-ui;margin:1.5em;max-width:30em}.warn{color:#a40000;font-weight:600}</style></head>
<body><h1>${escapeHtml(t.title)}</h1>
<p id="notice" data-state="${state}" data-tries="${refusal.triesLeft}">${t.app(escapeHtml(refusal.app))} ${t.card} <strong id="card">${escapeHtml(refusal.card)}</strong>.</p>
${body}
</body></html>`;
}

const HEADERS = {
  'Content-Type': 'text/html; charset=utf-8',
  'Content-Security-Policy': "default-src 'none'; style-src 'unsafe-inline'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'",
  'X-Frame-Options': 'DENY',
  'X-Content-Type-Options': 'nosniff',
  'Referrer-Policy': 'no-referrer',
  'Cache-Control': 'no-store',
} as const;

export class PinNotices {
  readonly #notices = new Map<string, { refusal: PinRefusal; timer: NodeJS.Timeout }>();

  /** Keeps the notice for NOTICE_TTL_MS; returns its path on the daemon's server (an unguessable id). */
  add(refusal: PinRefusal): string {
    const id = randomBytes(16).toString('hex');
    if (this.#notices.size >= MAX_NOTICES) {
      const [oldest] = this.#notices.keys();
      if (oldest !== undefined) this.#drop(oldest);
    }
    const timer = setTimeout(() => this.#drop(id), NOTICE_TTL_MS);
    timer.unref();
    this.#notices.set(id, { refusal: { ...refusal }, timer });
    return `/notice/${id}`;
  }

  get size(): number {
    return this.#notices.size;
  }

  /** Serves /notice/… (GET only); false when the path is not ours. Host was checked by the caller. */
  handle(req: IncomingMessage, res: ServerResponse): boolean {
    const match = /^\/notice\/([0-9a-f]{32})$/.exec(req.url ?? '');
    if (!match) return false;
    const notice = this.#notices.get(match[1] as string);
    if (req.method !== 'GET') return void res.writeHead(405, { Allow: 'GET', 'Cache-Control': 'no-store' }).end(), true;
    if (!notice) return void res.writeHead(404, { 'Content-Type': 'text/plain', 'X-Content-Type-Options': 'nosniff' }).end('not found\n'), true;
    res.writeHead(200, HEADERS).end(noticePage(notice.refusal, pickLang(req.headers['accept-language'])));
    return true;
  }

  close(): void {
    for (const id of [...this.#notices.keys()]) this.#drop(id);
  }

  #drop(id: string): void {
    const notice = this.#notices.get(id);
    if (!notice) return;
    clearTimeout(notice.timer);
    this.#notices.delete(id);
  }
}
