/**
 * cpsd-idp's HTTP server: one node:http server, the interaction routes (idp/interaction.ts) first, then
 * oidc-provider's own callback for everything else (discovery, /auth, /token, /me, /jwks, /session/end…).
 */
import { existsSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { fileURLToPath } from 'node:url';
import type { ClientMetadata, JWK } from 'oidc-provider';
import { interactionRoutes, sdkFile, type TrustOptions } from './interaction.js';
import { AccountStore, createProvider } from './provider.js';

/** The repository root, from the sources (idp/) or the build (dist/idp/). */
export const PACKAGE_ROOT = ['../', '../../'].map((up) => fileURLToPath(new URL(up, import.meta.url))).find((d) => existsSync(`${d}client/cpsd.js`)) ?? '';

export interface IdpOptions {
  /** TCP port on 127.0.0.1 (0: any free one). */
  port: number;
  host?: string;
  /** The issuer; http://localhost:<port> by default (development, with allowHttpLocalhost). */
  issuer?: string;
  clients: ClientMetadata[];
  trust: TrustOptions;
  daemonPort: number;
  allowHttpLocalhost?: boolean;
  jwks?: { keys: JWK[] };
  cookieKeys?: string[];
}

export interface RunningIdp {
  server: Server;
  port: number;
  issuer: string;
  close(): Promise<void>;
}

export function startIdp(options: IdpOptions): Promise<RunningIdp> {
  let issuer = options.issuer ?? '';
  const accounts = new AccountStore();
  const server = createServer();
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port, options.host ?? '127.0.0.1', () => {
      const port = (server.address() as AddressInfo).port;
      if (!issuer) issuer = `http://localhost:${port}`;
      const provider = createProvider({
        issuer,
        clients: options.clients,
        accounts,
        ...(options.jwks ? { jwks: options.jwks } : {}),
        ...(options.cookieKeys ? { cookieKeys: options.cookieKeys } : {}),
      });
      const origin = new URL(issuer).origin;
      const routes = interactionRoutes({
        provider,
        accounts,
        trust: options.trust,
        daemonPort: options.daemonPort,
        origin: () => origin,
        allowHttpLocalhost: options.allowHttpLocalhost === true,
        sdk: sdkFile(PACKAGE_ROOT),
      });
      const oidc = provider.callback();
      server.on('request', (req, res) => {
        routes(req, res)
          .then((handled) => {
            if (!handled) void oidc(req, res);
          })
          .catch((error: unknown) => {
            process.stderr.write(`cpsd-idp: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`);
            if (!res.headersSent) res.writeHead(500, { 'Content-Type': 'text/plain' });
            res.end();
          });
      });
      resolve({
        server,
        port,
        issuer,
        close: () =>
          new Promise<void>((done) => {
            server.closeAllConnections();
            server.close(() => done());
          }),
      });
    });
  });
}
