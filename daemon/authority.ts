/**
 * Whose name a request was sent to: the one rule for every request the daemon serves, the WebSocket
 * upgrade, the PIN page and its POST, directly or through `cpsd proxy` (which forwards bytes untouched).
 *
 * RFC 9112 §3.2: exactly one Host header, else 400. §3.2.2: a request in absolute form
 * (`GET http://host:port/path`) names its authority in the target; that authority is the one checked,
 * and it must agree with Host (a disagreement is a 400: two names for one request is an ambiguity a
 * proxy or a cache may resolve the other way). The authority must then be a loopback name with one of
 * the daemon's ports (DNS rebinding), else 421.
 */
import type { IncomingMessage } from 'node:http';

export type AuthorityCheck = { ok: true; path: string } | { ok: false; status: 400 | 421; reason: string };

/** The checked request's path (origin form) once the authority is one of `ports` on loopback. */
export function checkAuthority(req: IncomingMessage, ports: readonly number[]): AuthorityCheck {
  // Node keeps the first of several Host headers in req.headers: only rawHeaders shows them all.
  const hosts: string[] = [];
  for (let i = 0; i < req.rawHeaders.length; i += 2) if (req.rawHeaders[i]?.toLowerCase() === 'host') hosts.push(req.rawHeaders[i + 1] ?? '');
  if (hosts.length !== 1) return { ok: false, status: 400, reason: hosts.length === 0 ? 'no Host' : 'several Host headers' };
  const host = hosts[0] ?? '';
  const target = req.url ?? '';
  let authority = host;
  let path = target;
  if (!target.startsWith('/')) {
    // Absolute form only (authority form is CONNECT's, asterisk form OPTIONS': neither is served here).
    let url: URL;
    try {
      url = new URL(target);
    } catch {
      return { ok: false, status: 400, reason: 'bad request target' };
    }
    if ((url.protocol !== 'http:' && url.protocol !== 'ws:') || url.username || url.password || !/^[a-z]+:\/\/[^/?#]+/i.test(target)) {
      return { ok: false, status: 400, reason: 'bad request target' };
    }
    // The authority as written (URL would drop a default port and lower-case the name).
    authority = /^[a-z]+:\/\/([^/?#]+)/i.exec(target)?.[1] ?? '';
    if (authority !== host) return { ok: false, status: 400, reason: 'request target and Host disagree' };
    path = `${url.pathname}${url.search}`;
  }
  if (!ports.some((p) => authority === `127.0.0.1:${p}` || authority === `[::1]:${p}` || authority === `localhost:${p}`)) {
    return { ok: false, status: 421, reason: 'Misdirected Request' };
  }
  return { ok: true, path };
}
