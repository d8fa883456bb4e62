/**
 * cpsd-idp's HTTP server: one node:http server, the interaction routes (idp/interaction.ts) first, then
 * oidc-provider's own callback for everything else (discovery, /auth, /token, /me, /jwks, /session/end…).
 * State lives in the store (memory, or Redis shared by every instance); the instance itself holds none
 * that a login needs, so any instance behind the load balancer can serve any request.
 */
import { randomBytes } from 'node:crypto';
import { createServer, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { ClientMetadata, JWK } from 'oidc-provider';
import type { RedisNonceClient } from '../pkcs/verify.js';
import { cardWatchRoutes } from './card-watch.js';
import { BackchannelLogout, checkLogoutMetadata } from './logout.js';
import { interactionRoutes, sdkFile, type AuditEvent, type TrustOptions, type UpstreamRoute } from './interaction.js';
import { RateLimiter } from './limits.js';
import { PACKAGE_ROOT } from './paths.js';

export { PACKAGE_ROOT };
import { ConfigError } from '../daemon/config.js';
import { errorPage, pageLang, STATIC_CSP } from './pages.js';
import { AccountStore, createProvider, type ProviderOptions } from './provider.js';
import { Ciba } from './ciba.js';
import { MESSAGES } from '../core/messages.js';
import { CIBA_MESSAGES } from './ciba.js';
import { MemoryKeyValueStore, RedisKeyValueStore, redisAdapterFactory, type KeyValueStore, type RedisReplication, type RedisStoreClient } from './store.js';


export interface IdpOptions {
  /** TCP port (0: any free one). */
  port: number;
  /** Address to listen on; 127.0.0.1 by default (a reverse proxy in front). */
  host?: string;
  /** The issuer; http://localhost:<port> by default (development, with allowHttpLocalhost). */
  issuer?: string;
  clients: ClientMetadata[];
  trust: TrustOptions;
  daemonPort: number;
  allowHttpLocalhost?: boolean;
  jwks?: { keys: JWK[] };
  cookieKeys?: string[];
  /** A connected node-redis v5 client: sessions, grants, codes, tokens, nonces and accounts in Redis. */
  redis?: RedisStoreClient & RedisNonceClient;
  /** Prefix of every Redis key (default `cpsd-idp:`): several IdPs can share one Redis. */
  redisPrefix?: string;
  /** Writes wait for replicas (Redis Sentinel: `WAIT` after each write); none by default. */
  redisReplication?: RedisReplication;
  /** Behind a reverse proxy: believe its X-Forwarded-For/-Proto/-Host (oidc-provider's `proxy`). */
  behindProxy?: boolean;
  /** Login attempts (a card challenge or an upstream start) per client address and minute (default 30). */
  loginsPerMinute?: number;
  upstream?: UpstreamRoute;
  /** Contactless logins (acr http://eidas.europa.eu/LoA/low, amr ["sc"]) for the applications that ask for them. */
  allowContactless?: boolean;
  /** Where audit lines go (default: JSON lines on stderr). */
  audit?: (line: string) => void;
  /** The IdP session's lifetime in seconds (default 12 h; tests shorten it). */
  sessionSeconds?: number;
  /** How long one application may take to answer a logout token, in ms (default 5000). */
  logoutTimeoutMs?: number;
  /** CIBA (poll and ping) through the workstations' daemons (idp/ciba.ts, docs/idp.md "CIBA"). */
  ciba?: boolean;
  /** oidc-provider's outgoing requests (CIBA pings); tests give one that trusts their own CA. */
  fetch?: ProviderOptions['fetch'];
}

export interface RunningIdp {
  server: Server;
  port: number;
  issuer: string;
  close(): Promise<void>;
}

/**
 * Behind the proxy, the right-most X-Forwarded-For address: the one the hospital's proxy appended (its
 * client's); those before it came from the client and could be anything. Else the socket's.
 */
function clientAddress(behindProxy: boolean): (req: IncomingMessage) => string {
  return (req) => {
    const forwarded = behindProxy ? String(req.headers['x-forwarded-for'] ?? '').split(',').at(-1)?.trim() : '';
    return forwarded || req.socket.remoteAddress || '';
  };
}

export function startIdp(options: IdpOptions): Promise<RunningIdp> {
  // The back-channel logout settings of every client, whichever way they came (file, --clients, code).
  for (const [i, client] of options.clients.entries()) {
    checkLogoutMetadata(client, `clients[${i}]`, (key, why) => {
      throw new ConfigError(`client ${JSON.stringify(client.client_id)}: "${key}" ${why}`);
    });
  }
  let issuer = options.issuer ?? '';
  const prefix = options.redisPrefix ?? 'cpsd-idp:';
  const replication = options.redisReplication ? { replication: options.redisReplication } : {};
  const store: KeyValueStore = options.redis ? new RedisKeyValueStore(options.redis, { prefix, ...replication }) : new MemoryKeyValueStore();
  const accounts = new AccountStore(store);
  const cookieKeys = options.cookieKeys ?? [randomBytes(32).toString('hex')];
  const audit = options.audit ?? ((line: string) => process.stderr.write(`${line}\n`));
  const server = createServer();
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port, options.host ?? '127.0.0.1', () => {
      const port = (server.address() as AddressInfo).port;
      if (!issuer) issuer = `http://localhost:${port}`;
      const origin = new URL(issuer).origin;
      const auditEvent = (event: AuditEvent): void => audit(JSON.stringify({ time: new Date().toISOString(), ...event }));
      // The CIBA feature goes into the provider's configuration, and needs the provider: set just below.
      const made: { provider?: ReturnType<typeof createProvider> } = {};
      const ciba = options.ciba
        ? new Ciba({
            provider: () => made.provider as ReturnType<typeof createProvider>,
            accounts,
            store,
            trust: options.trust,
            origin: () => origin,
            allowHttpLocalhost: options.allowHttpLocalhost === true,
            audit: auditEvent,
            describe: (code) => MESSAGES[CIBA_MESSAGES[code]].en,
          })
        : undefined;
      const provider = createProvider({
        issuer,
        clients: options.clients,
        accounts,
        cookieKeys,
        ...(options.jwks ? { jwks: options.jwks } : {}),
        ...(options.redis ? { adapter: redisAdapterFactory(options.redis, { prefix, ...replication }) } : {}),
        allowContactless: options.allowContactless === true,
        ...(options.sessionSeconds ? { sessionSeconds: options.sessionSeconds } : {}),
        ...(ciba ? { ciba: ciba.feature() } : {}),
        ...(options.fetch ? { fetch: options.fetch } : {}),
      });
      made.provider = provider;
      if (ciba) server.on('upgrade', (req, socket, head) => ciba.upgrade(req, socket, head) || socket.destroy());
      provider.proxy = options.behindProxy === true;
      const logout = new BackchannelLogout({ provider, store, audit: auditEvent, ...(options.logoutTimeoutMs ? { deliveryTimeoutMs: options.logoutTimeoutMs } : {}) });
      const watch = cardWatchRoutes({ provider, origin: () => origin, daemonPort: options.daemonPort, csrfKeys: cookieKeys, endSession: (session) => logout.endSession(session, 'card.removed') });
      const interactions = interactionRoutes({
        provider,
        accounts,
        store,
        csrfKeys: cookieKeys,
        trust: options.trust,
        daemonPort: options.daemonPort,
        origin: () => origin,
        allowHttpLocalhost: options.allowHttpLocalhost === true,
        sdk: sdkFile(PACKAGE_ROOT),
        limiter: new RateLimiter(options.loginsPerMinute ?? 30),
        clientAddress: clientAddress(options.behindProxy === true),
        audit: auditEvent,
        ...(options.upstream ? { upstream: options.upstream } : {}),
        allowContactless: options.allowContactless === true,
      });
      const oidc = provider.callback();
      server.on('request', (req, res) => {
        interactions(req, res)
          .then(async (handled) => handled || watch(req, res))
          .then((handled) => {
            if (!handled) void oidc(req, res);
          })
          .catch((error: unknown) => {
            // The store (Redis) or the provider failed: a page that says so, the detail in the log only.
            process.stderr.write(`cpsd-idp: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`);
            if (res.headersSent) return void res.end();
            res.writeHead(500, { 'Content-Type': 'text/html; charset=utf-8', 'Content-Security-Policy': STATIC_CSP, 'Cache-Control': 'no-store' });
            res.end(errorPage(pageLang(undefined, req), 'server_error', undefined));
          });
      });
      resolve({
        server,
        port,
        issuer,
        close: () =>
          new Promise<void>((done) => {
            logout.close();
            ciba?.close();
            server.closeAllConnections();
            server.close(() => done());
          }),
      });
    });
  });
}
