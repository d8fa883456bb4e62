/**
 * idp/logout.ts in process, against plain node:http servers as applications: the logout token's
 * contents, the failures an application can cause (no answer in time, connection refused, an error
 * status) audited with LOGOUT_DELIVERY_FAILED, and the deliveries of one logout run in parallel so that
 * a slow application holds up nobody. The browser flows are test/e2e/idp-logout.test.ts.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import type Provider from 'oidc-provider';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BackchannelLogout, LogoutDeliveryError, type LogoutAuditEvent } from '../../idp/logout.js';
import { AccountStore, createProvider } from '../../idp/provider.js';
import { MemoryKeyValueStore } from '../../idp/store.js';

const SUB = '899700012349';
const TIMEOUT_MS = 500;

interface App {
  url: string;
  /** The logout tokens it received, decoded (header and claims), with when they arrived. */
  received: { header: Record<string, unknown>; claims: Record<string, unknown>; at: number }[];
  server: Server;
}

const decode = (part: string): Record<string, unknown> => JSON.parse(Buffer.from(part, 'base64url').toString('utf8')) as Record<string, unknown>;

/** An application's back-channel endpoint: `answer` decides what it does with the request. */
async function app(answer: (req: IncomingMessage, res: ServerResponse) => void): Promise<App> {
  const received: App['received'] = [];
  const server = createServer((req, res) => {
    let body = '';
    req.on('data', (c: Buffer) => (body += c.toString()));
    req.on('end', () => {
      const [head = '', claims = ''] = (new URLSearchParams(body).get('logout_token') ?? '').split('.');
      received.push({ header: decode(head), claims: decode(claims), at: Date.now() });
      answer(req, res);
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return { url: `http://localhost:${(server.address() as AddressInfo).port}/backchannel`, received, server };
}

let ok: App;
let slow: App;
let failing: App;
let provider: Provider;
let logout: BackchannelLogout;
const audit: LogoutAuditEvent[] = [];
const logged: string[] = [];

/** A port nobody listens on: one the system gave, then closed. */
async function closedPort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  await new Promise((resolve) => server.close(resolve));
  return port;
}

beforeAll(async () => {
  ok = await app((_req, res) => res.writeHead(200).end());
  slow = await app(() => undefined); // never answers
  failing = await app((_req, res) => res.writeHead(500).end());
  const client = (id: string, uri: string) => ({ client_id: id, client_secret: `${id}-secret-0123456789abcdef0123`, redirect_uris: [`https://${id}.hopital.example/cb`], backchannel_logout_uri: uri });
  provider = createProvider({
    issuer: 'http://localhost:9999',
    clients: [client('ok', ok.url), client('slow', slow.url), client('failing', failing.url), client('gone', `http://localhost:${await closedPort()}/backchannel`)],
    accounts: new AccountStore(new MemoryKeyValueStore()),
  });
  logout = new BackchannelLogout({ provider, store: new MemoryKeyValueStore(), audit: (e) => audit.push(e), deliveryTimeoutMs: TIMEOUT_MS, log: (l) => logged.push(l) });
});

afterAll(() => {
  logout.close();
  for (const a of [ok, slow, failing]) a.server.closeAllConnections();
  for (const a of [ok, slow, failing]) a.server.close();
});

const find = async (id: string) => {
  const client = await provider.Client.find(id);
  if (!client) throw new Error(`no client ${id}`);
  return client;
};

describe('back-channel logout delivery', () => {
  it('POSTs a logout token: typ logout+jwt, iss, aud, iat, exp, jti, the event, sub and sid, no nonce', async () => {
    await logout.deliver(await find('ok'), SUB, 'sid-1');
    const { header, claims } = ok.received.at(-1) ?? { header: {} as Record<string, unknown>, claims: {} as Record<string, unknown> };
    expect(header).toMatchObject({ alg: 'RS256', typ: 'logout+jwt' });
    expect(claims).toMatchObject({ iss: 'http://localhost:9999', aud: 'ok', sub: SUB, sid: 'sid-1', events: { 'http://schemas.openid.net/event/backchannel-logout': {} } });
    expect(typeof claims.jti).toBe('string');
    expect(Number(claims.exp) - Number(claims.iat)).toBe(120);
    expect(claims).not.toHaveProperty('nonce');
    expect(audit.at(-1)).toEqual({ event: 'logout.delivered', client: 'ok', sub: SUB });
  });

  it('gives a new jti to every token', async () => {
    await logout.deliver(await find('ok'), SUB, 'sid-1');
    await logout.deliver(await find('ok'), SUB, 'sid-1');
    const jtis = ok.received.slice(-2).map((r) => r.claims.jti);
    expect(new Set(jtis).size).toBe(2);
  });

  it('gives up on an application that does not answer in time, with LOGOUT_DELIVERY_FAILED', async () => {
    const started = Date.now();
    await expect(logout.deliver(await find('slow'), SUB, 'sid-2')).rejects.toBeInstanceOf(LogoutDeliveryError);
    expect(Date.now() - started).toBeLessThan(TIMEOUT_MS + 1000);
    expect(audit.at(-1)).toEqual({ event: 'logout.failed', client: 'slow', sub: SUB, code: 'LOGOUT_DELIVERY_FAILED', reason: 'no answer in time' });
  });

  it('audits an error status as the reason', async () => {
    await expect(logout.deliver(await find('failing'), SUB, 'sid-3')).rejects.toMatchObject({ code: 'LOGOUT_DELIVERY_FAILED' });
    expect(audit.at(-1)).toMatchObject({ event: 'logout.failed', client: 'failing', reason: 'HTTP 500' });
  });

  it('audits an application that cannot be reached, and says so on the log', async () => {
    await expect(logout.deliver(await find('gone'), SUB, 'sid-4')).rejects.toMatchObject({ code: 'LOGOUT_DELIVERY_FAILED' });
    expect(audit.at(-1)).toMatchObject({ event: 'logout.failed', client: 'gone', reason: 'network: ECONNREFUSED' });
    expect(logged.at(-1)).toContain('gone');
  });

  it('ends a session by telling every application at once: a slow one holds up neither the others nor the end', async () => {
    const session = new provider.Session();
    session.accountId = SUB;
    session.authorizations = { slow: { sid: 'sid-slow' }, gone: { sid: 'sid-gone' }, failing: { sid: 'sid-failing' }, ok: { sid: 'sid-ok' } };
    await session.save(60);
    const started = Date.now();
    await logout.endSession(session, 'card.removed');
    const took = Date.now() - started;
    // In parallel: about one timeout in all, not one per application in turn.
    expect(took).toBeLessThan(TIMEOUT_MS * 2);
    const okAt = ok.received.find((r) => r.claims.sid === 'sid-ok')?.at ?? Infinity;
    expect(okAt - started).toBeLessThan(TIMEOUT_MS);
    expect(await provider.Session.find(session.jti)).toBeUndefined();
    expect(audit).toContainEqual({ event: 'logout', reason: 'card.removed', sub: SUB });
  });
});
