/**
 * `cpsd idp`: cpsd-idp, the OpenID Connect provider whose login is the CPS card (idp/, docs/idp.md).
 * With `--sim <profile>`: an in-process daemon over the virtual card on its own port, the test IGC-Santé
 * PKI as trust material, fresh signing keys and one demo client `demo` (its secret printed: test data).
 */
import { randomBytes } from 'node:crypto';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { ClientMetadata } from 'oidc-provider';
import { InProcessBackend } from '../../cards/backends.js';
import { ConfigError, DEFAULTS, DEFAULT_PORT } from '../../daemon/config.js';
import { Logger } from '../../daemon/log.js';
import { CpsdServer } from '../../daemon/server.js';
import type { TrustOptions } from '../../idp/interaction.js';
import { PACKAGE_ROOT, startIdp } from '../../idp/server.js';
import { fixtureCard } from '../../sim/cps/fixtures.js';
import { ExitCode } from '../exit-codes.js';
import { t } from '../i18n.js';

export interface IdpCommandOptions {
  port: number;
  sim?: string;
  daemonPort?: number;
  clients?: string;
  trustDir?: string;
  issuer?: string;
  demoRedirectUri?: string;
}

const der = (path: string): Uint8Array => new Uint8Array(readFileSync(path));

/** anchors/, intermediates/, crls/ of a folder, as docs/integration.md lays it out. */
function trustFromDir(dir: string): TrustOptions {
  const files = (sub: string): Uint8Array[] => readdirSync(join(dir, sub)).map((name) => der(join(dir, sub, name)));
  return { trustAnchors: files('anchors'), intermediates: files('intermediates'), crls: files('crls') };
}

/** The test PKI of this package (fixtures/pki): TEST keys, for --sim only. Its CRLs are given (no network). */
function simTrust(): TrustOptions {
  const pki = join(PACKAGE_ROOT, 'fixtures', 'pki');
  return {
    trustAnchors: [der(join(pki, 'root.der'))],
    intermediates: [der(join(pki, 'intermediate.der'))],
    crls: [der(join(pki, 'fort-personnes.crl')), der(join(pki, 'racine.crl'))],
    revocation: 'crl',
    crl: { fetch: false },
  };
}

export async function idp(options: IdpCommandOptions): Promise<number> {
  const issuer = options.issuer ?? `http://localhost:${options.port}`;
  const origin = new URL(issuer).origin;
  const local = new URL(issuer).protocol === 'http:';
  let clients: ClientMetadata[] = [];
  if (options.clients) clients = JSON.parse(readFileSync(options.clients, 'utf8')) as ClientMetadata[];
  let daemon: CpsdServer | undefined;
  let trust: TrustOptions;
  let demo: ClientMetadata | undefined;
  if (options.sim) {
    const backend = new InProcessBackend(fixtureCard(options.sim));
    daemon = new CpsdServer({ ...DEFAULTS, port: options.daemonPort ?? 0, allowHttpLocalhost: true, allowedOrigins: [origin] }, backend, new Logger('warn'));
    await daemon.listen();
    trust = simTrust();
    demo = {
      client_id: 'demo',
      client_secret: randomBytes(24).toString('base64url'),
      redirect_uris: [options.demoRedirectUri ?? 'http://localhost:3000/callback'],
      post_logout_redirect_uris: [new URL('/', options.demoRedirectUri ?? 'http://localhost:3000/').href],
      grant_types: ['authorization_code', 'refresh_token'],
      response_types: ['code'],
      token_endpoint_auth_method: 'client_secret_basic',
    };
    clients = [...clients, demo];
  } else {
    if (!options.trustDir) throw new ConfigError(t('idp.needsTrust'));
    trust = trustFromDir(options.trustDir);
  }
  if (clients.length === 0) throw new ConfigError(t('idp.noClients'));
  const daemonPort = daemon?.port ?? options.daemonPort ?? DEFAULT_PORT;
  const running = await startIdp({ port: options.port, issuer, clients, trust, daemonPort, allowHttpLocalhost: local });
  process.stdout.write(`${t('idp.listening', { issuer: running.issuer, discovery: `${running.issuer}/.well-known/openid-configuration` })}\n`);
  if (daemon) process.stdout.write(`${t('idp.simDaemon', { port: daemon.port, profile: options.sim ?? '' })}\n`);
  if (demo) {
    process.stdout.write(`${t('idp.demoClient', { id: demo.client_id, secret: String(demo.client_secret), redirect: demo.redirect_uris?.join(', ') ?? '' })}\n`);
  }
  await new Promise<void>((resolve) => {
    process.once('SIGINT', resolve);
    process.once('SIGTERM', resolve);
  });
  const deadline = setTimeout(() => process.exit(ExitCode.OK), 1000);
  await running.close();
  if (daemon) {
    await daemon.close();
    await daemon.sessions.close();
  }
  clearTimeout(deadline);
  return ExitCode.OK;
}
