/**
 * Card removal ends the IdP session. An application embeds the IdP's watch page in a hidden iframe
 * (`<iframe src="<issuer>/session/card-watch?client_id=…&origin=<its origin>" allow="local-network-access">`):
 * the page connects to the workstation's daemon with the SDK and, when a card is removed, asks the IdP
 * to end the session that a card login made (its grants and tokens revoked with it: the refresh token
 * stops working; every application of the session gets a logout token, idp/logout.ts), then tells the
 * application by postMessage({ type: 'cpsd-idp:card-removed' }) sent to the origin the application
 * declared, which must be one of that client's redirect_uri origins.
 *
 * Only sessions made with a card are ended (amr has "sc"); a federated (e-CPS) session has no card to pull.
 */
import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type Provider from 'oidc-provider';
import type { KoaContextWithOIDC } from 'oidc-provider';
import { esc } from './pages.js';

export interface CardWatchOptions {
  provider: Provider;
  origin: () => string;
  daemonPort: number;
  /** The cookie keys: the token is made with the first, accepted under any. */
  csrfKeys: readonly string[];
  /** Ends the session everywhere: its grants and tokens, the session, an audit line, the applications' logout tokens (idp/logout.ts). */
  endSession: (session: InstanceType<Provider['Session']>) => Promise<void>;
}

/** JSON for an inline script: no "</script>" can close it early. */
const inline = (value: unknown): string => JSON.stringify(value).replace(/</g, '\\u003c');

export function cardWatchRoutes(options: CardWatchOptions): (req: IncomingMessage, res: ServerResponse) => Promise<boolean> {
  const { provider } = options;
  const csrfOf = (sessionUid: string, key = options.csrfKeys[0] ?? ''): string => createHmac('sha256', key).update(`card-watch:${sessionUid}`).digest('base64url');
  // Session.get reads the session cookie from a context of oidc-provider's own making.
  const session = (req: IncomingMessage, res: ServerResponse) => provider.Session.get(provider.createContext(req, res) as unknown as KoaContextWithOIDC);

  return async (req, res) => {
    const url = new URL(req.url ?? '/', 'http://localhost');
    if (url.pathname === '/session/card-watch' && req.method === 'GET') {
      const client = await provider.Client.find(url.searchParams.get('client_id') ?? '');
      const origins = new Set((client?.redirectUris ?? []).map((u) => new URL(u).origin));
      const parent = url.searchParams.get('origin') ?? '';
      if (!client || !origins.has(parent)) {
        res.writeHead(400, { 'Content-Type': 'text/plain; charset=utf-8', 'Content-Security-Policy': "default-src 'none'; frame-ancestors 'none'" }).end('unknown client_id, or origin not among its redirect_uri origins');
        return true;
      }
      const current = await session(req, res);
      const watching = Boolean(current.accountId && current.amr?.includes('sc'));
      const nonce = randomBytes(16).toString('base64');
      res.writeHead(200, {
        'Content-Type': 'text/html; charset=utf-8',
        'Cache-Control': 'no-store',
        'X-Content-Type-Options': 'nosniff',
        'Referrer-Policy': 'no-referrer',
        'Content-Security-Policy': [
          "default-src 'none'",
          `script-src 'self' 'nonce-${nonce}'`,
          `connect-src 'self' ws://127.0.0.1:${options.daemonPort}`,
          // Only the client's own pages may embed it.
          `frame-ancestors ${[...origins].join(' ')}`,
          "base-uri 'none'",
          "form-action 'none'",
        ].join('; '),
      });
      res.end(`<!doctype html><html><head><meta charset="utf-8"><title>cpsd-idp</title></head><body><p id="watch" data-watching="${watching}">${esc(watching ? 'watching' : 'idle')}</p>
<script type="module" nonce="${nonce}">
import { connect } from '/cpsd.js';
const PARENT = ${inline(parent)};
const CSRF = ${inline(watching ? csrfOf(current.uid) : '')};
const tell = (type) => parent.postMessage({ type }, PARENT);
if (CSRF) {
  try {
    const client = await connect({ port: ${inline(options.daemonPort)} });
    client.on('card.removed', async () => {
      await fetch('/session/card-removed', { method: 'POST', credentials: 'same-origin', headers: { 'X-CSRF': CSRF } });
      tell('cpsd-idp:card-removed');
    });
    tell('cpsd-idp:card-watch');
  } catch {
    tell('cpsd-idp:card-watch-unavailable');
  }
} else {
  tell('cpsd-idp:card-watch-idle');   // no card session to watch (none, or a federated one)
}
</script></body></html>`);
      return true;
    }
    if (url.pathname === '/session/card-removed' && req.method === 'POST') {
      const current = await session(req, res);
      const given = Buffer.from(String(req.headers['x-csrf'] ?? ''));
      const good = Boolean(current.uid) && options.csrfKeys.some((key) => {
        const want = Buffer.from(csrfOf(current.uid, key));
        return given.length === want.length && timingSafeEqual(given, want);
      });
      if (req.headers.origin !== options.origin() || !good) {
        res.writeHead(403).end();
        return true;
      }
      if (current.accountId && current.amr?.includes('sc')) await options.endSession(current);
      res.writeHead(204, { 'Cache-Control': 'no-store' }).end();
      return true;
    }
    return false;
  };
}
