/**
 * PIN entries waiting for a person on the daemon's PIN page. No card is held while someone types: the
 * daemon reads what the page shows first, waits for the PIN here, then runs PIN verification and the
 * operation as one exclusive job, and reports the outcome to the page.
 *
 * An entry ends by: the PIN posted (then its outcome is shown), Cancel, the window closed (its event
 * stream drops), the timeout, or its AbortSignal (socket closed, card removed, daemon stopping).
 */
import { randomBytes } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { Pin } from '../cards/pin.js';
import type { PinRule } from '../cards/pin.js';
import { ProtocolError, toRpcError } from './protocol.js';
import { outcomeText, pickLang, pinPage, type Lang, type PinPageView } from './pin-page.js';

export interface PinRequest {
  origin: string | null;
  purpose: 'authentication' | 'signature';
  holder: string;
  triesLeft: number;
  rule: PinRule;
  /** What the certificate of the key used is for (keyUsage): the page names it. */
  certificate: PinPageView['certificate'];
  signature?: PinPageView['signature'];
  ciba?: PinPageView['ciba'];
  signal: AbortSignal;
  /** Tells the requesting client where the PIN page is (the `pin.required` notification). */
  announce: (url: string) => void;
}

export interface PinAnswer {
  pin: Pin;
  /** The holder ticked "use my last try" on the page. */
  consent: boolean;
  /** Tells the page how the operation ended: the page shows it, then closes itself. */
  settle(error?: unknown): void;
}

interface Entry {
  view: PinPageView;
  state: 'waiting' | 'submitted';
  /** Open event streams of the window(s) showing this entry. */
  streams: Set<ServerResponse>;
  closedTimer: NodeJS.Timeout | undefined;
  resolve: (answer: PinAnswer) => void;
  reject: (error: unknown) => void;
}

/** A window closed, or reloading: reloading reconnects its stream within this grace. */
const CLOSED_GRACE_MS = 400;

const SECURITY_HEADERS = {
  'X-Frame-Options': 'DENY',
  'X-Content-Type-Options': 'nosniff',
  // same-origin, not no-referrer: with no-referrer Chrome sends "Origin: null" on the post.
  'Referrer-Policy': 'same-origin',
  'Cache-Control': 'no-store',
} as const;

function csp(nonce: string): string {
  return `default-src 'none'; style-src 'unsafe-inline'; script-src 'nonce-${nonce}'; connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'`;
}

export class PinEntries {
  readonly #entries = new Map<string, Entry>();
  readonly #timeoutMs: number;
  readonly #ownOrigins: () => string[];
  readonly #baseUrl: () => string;

  constructor(options: { timeoutMs: number; baseUrl: () => string; ownOrigins: () => string[] }) {
    this.#timeoutMs = options.timeoutMs;
    this.#baseUrl = options.baseUrl;
    this.#ownOrigins = options.ownOrigins;
  }

  get size(): number {
    return this.#entries.size;
  }

  /** Opens a PIN entry and waits for the person. */
  ask(request: PinRequest): Promise<PinAnswer> {
    if (request.signal.aborted) return Promise.reject(request.signal.reason);
    const id = randomBytes(16).toString('hex');
    return new Promise<PinAnswer>((resolve, reject) => {
      // Every way out goes through `release`: the timer and the signal's listener would otherwise keep
      // the ended entry (and its request) alive, and the timer the process, until the timeout.
      const release = (): void => {
        clearTimeout(timer);
        request.signal.removeEventListener('abort', onAbort);
      };
      const end = (error: unknown): void => {
        release();
        if (!this.#entries.has(id)) return;
        this.#finish(id, entry, error);
        reject(error);
      };
      const timer = setTimeout(() => end(new ProtocolError('TIMEOUT', 'no PIN was entered in time')), this.#timeoutMs);
      const onAbort = (): void => end(request.signal.reason);
      request.signal.addEventListener('abort', onAbort, { once: true });
      const entry: Entry = {
        view: {
          id,
          csrf: randomBytes(16).toString('hex'),
          scriptNonce: '',
          origin: request.origin,
          purpose: request.purpose,
          holder: request.holder,
          triesLeft: request.triesLeft,
          rule: request.rule,
          certificate: request.certificate,
          signature: request.signature,
          ciba: request.ciba,
        },
        state: 'waiting',
        streams: new Set(),
        closedTimer: undefined,
        resolve: (answer) => {
          release();
          resolve(answer);
        },
        reject: end,
      };
      this.#entries.set(id, entry);
      request.announce(`${this.#baseUrl()}/pin/${id}`);
    });
  }

  /** Ends every entry (daemon stopping). */
  cancelAll(error: unknown): void {
    for (const entry of [...this.#entries.values()]) entry.reject(error);
  }

  /** Ends an entry: tells its window (if any is open) and forgets it. */
  #finish(id: string, entry: Entry, error: unknown, lang: Lang = 'fr'): void {
    this.#entries.delete(id);
    clearTimeout(entry.closedTimer);
    const code = error === undefined ? 'ok' : toRpcError(error).data.code;
    for (const stream of entry.streams) {
      stream.end(`event: end\ndata: ${JSON.stringify({ code, message: outcomeText(lang, code) })}\n\n`);
    }
    entry.streams.clear();
  }

  /** Serves /pin/… requests; false when the path is not ours. Host was checked by the caller. */
  handle(req: IncomingMessage, res: ServerResponse): boolean {
    const match = /^\/pin\/([0-9a-f]{32})(\/alive)?$/.exec(req.url ?? '');
    if (!match) return false;
    const entry = match[1] ? this.#entries.get(match[1]) : undefined;
    const id = match[1] as string;
    if (!entry) {
      res.writeHead(404, { ...SECURITY_HEADERS, 'Content-Type': 'text/plain' }).end('not found\n');
      return true;
    }
    const lang = pickLang(req.headers['accept-language']);
    if (match[2]) {
      if (req.method !== 'GET') return void res.writeHead(405, SECURITY_HEADERS).end(), true;
      this.#alive(entry, res);
      return true;
    }
    if (req.method === 'GET') {
      const nonce = randomBytes(16).toString('base64');
      res
        .writeHead(200, { ...SECURITY_HEADERS, 'Content-Security-Policy': csp(nonce), 'Content-Type': 'text/html; charset=utf-8' })
        .end(pinPage({ ...entry.view, scriptNonce: nonce }, lang));
      return true;
    }
    if (req.method !== 'POST') return void res.writeHead(405, SECURITY_HEADERS).end(), true;
    // CSRF: only the page itself (same origin, one-time token) may post the PIN.
    if (req.headers.origin !== undefined && !this.#ownOrigins().includes(req.headers.origin)) {
      return void res.writeHead(403, SECURITY_HEADERS).end(), true;
    }
    let body = '';
    req.on('data', (chunk: Buffer) => {
      body += chunk.toString('utf8');
      if (body.length > 1024) req.destroy();
    });
    req.on('end', () => this.#posted(id, entry, new URLSearchParams(body), lang, res));
    return true;
  }

  #alive(entry: Entry, res: ServerResponse): void {
    res.writeHead(200, { ...SECURITY_HEADERS, 'Content-Type': 'text/event-stream' });
    res.write(': open\n\n');
    clearTimeout(entry.closedTimer);
    entry.streams.add(res);
    const ping = setInterval(() => res.write(': ping\n\n'), 15_000);
    res.on('close', () => {
      clearInterval(ping);
      entry.streams.delete(res);
      // The window went away before a PIN was posted: the holder closed it.
      if (entry.state === 'waiting' && entry.streams.size === 0) {
        entry.closedTimer = setTimeout(() => entry.reject(new ProtocolError('USER_CANCELLED', 'the PIN window was closed')), CLOSED_GRACE_MS);
      }
    });
  }

  #posted(id: string, entry: Entry, form: URLSearchParams, lang: Lang, res: ServerResponse): void {
    const json = (status: number, value: Record<string, unknown>): void => {
      res.writeHead(status, { ...SECURITY_HEADERS, 'Content-Type': 'application/json' }).end(JSON.stringify(value));
    };
    if (form.get('csrf') !== entry.view.csrf || this.#entries.get(id) !== entry || entry.state !== 'waiting') {
      return json(403, { done: true, message: outcomeText(lang, 'other') });
    }
    if (form.get('cancel') !== null) {
      entry.reject(new ProtocolError('USER_CANCELLED', 'the user cancelled the PIN entry'));
      return json(200, { done: true, code: 'USER_CANCELLED', message: outcomeText(lang, 'USER_CANCELLED') });
    }
    const consent = form.get('consent') === '1';
    if (entry.view.triesLeft === 1 && !consent) {
      return json(400, { done: false, code: 'PIN_LAST_TRY', message: outcomeText(lang, 'PIN_LAST_TRY') });
    }
    entry.state = 'submitted';
    clearTimeout(entry.closedTimer);
    entry.resolve({
      pin: new Pin(form.get('pin') ?? ''),
      consent,
      settle: (error) => {
        this.#finish(id, entry, error, lang);
        const code = error === undefined ? 'ok' : toRpcError(error).data.code;
        const triesLeft = error === undefined ? undefined : toRpcError(error).data.triesLeft;
        json(200, { done: true, code, message: outcomeText(lang, code, typeof triesLeft === 'number' ? triesLeft : undefined) });
      },
    });
  }
}
