/**
 * `cpsd idp`: cpsd-idp, the OpenID Connect provider whose login is the CPS card (idp/, docs/idp.md).
 * With `--sim <profile>`: an in-process daemon over the virtual card on its own port, the test IGC-Santé
 * PKI as trust material, fresh signing keys and one demo client `demo` (its secret printed: test data).
 */
import { randomBytes } from 'node:crypto';
import { appendFileSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { ClientMetadata } from 'oidc-provider';
import { InProcessBackend } from '../../cards/backends.js';
import { ConfigError, DEFAULTS, DEFAULT_PORT } from '../../daemon/config.js';
import { Logger } from '../../daemon/log.js';
import { CpsdServer } from '../../daemon/server.js';
import { readIdpConfig, rotateKeys } from '../../idp/config.js';
import type { TrustOptions, UpstreamRoute } from '../../idp/interaction.js';
import { LazyUpstream } from '../../idp/upstream.js';
import { connectRedis, describeRedis, MemoryKeyValueStore, RedisKeyValueStore, replicationOf } from '../../idp/store.js';
import { PACKAGE_ROOT } from '../../idp/paths.js';
import { fixtureCard } from '../../sim/cps/fixtures.js';
import { ExitCode } from '../exit-codes.js';
import { t } from '../../core/i18n.js';

export interface IdpCommandOptions {
  port: number;
  sim?: string;
  daemonPort?: number;
  clients?: string;
  trustDir?: string;
  issuer?: string;
  demoRedirectUri?: string;
  /** Production: the configuration file (idp/config.ts); the other options are then not taken. */
  config?: string;
  /** Sessions and grants in this Redis (with --sim; the configuration file has its own setting). */
  redis?: string;
  /** `--rotate-keys <jwks file>`: add a new signing key first, keep `keep` older ones, and exit. */
  rotateKeys?: string;
  keep?: number;
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

/** Connection trouble of Redis (node-redis reconnects meanwhile), replication degraded: on stderr. */
const logRedis = (line: string): void => void process.stderr.write(`${line}\n`);

async function waitForSignal(): Promise<void> {
  await new Promise<void>((resolve) => {
    process.once('SIGINT', resolve);
    process.once('SIGTERM', resolve);
  });
}

/** Audit lines appended to a file, one JSON object per line. */
const auditTo = (file: string) => (line: string): void => appendFileSync(file, `${line}\n`, { mode: 0o640 });

export async function idp(options: IdpCommandOptions): Promise<number> {
  if (options.rotateKeys) {
    const { kid, kept } = rotateKeys(options.rotateKeys, options.keep ?? 2);
    process.stdout.write(`${t('idp.rotated', { file: options.rotateKeys, kid, kept: kept.join(', ') || '-' })}\n`);
    return ExitCode.OK;
  }
  if (options.config) {
    // The file says it all: an option beside it would be silently ignored, so it is refused.
    const beside = (['sim', 'clients', 'trustDir', 'issuer', 'demoRedirectUri', 'daemonPort', 'redis'] as const).filter((o) => options[o] !== undefined);
    if (beside.length > 0) throw new ConfigError(t('idp.configAlone', { options: beside.map((o) => `--${o.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`)}`).join(', ') }));
    return fromConfig(options.config);
  }
  return simOrFlags(options);
}

async function fromConfig(file: string): Promise<number> {
  const config = readIdpConfig(file);
  const redis = config.redis ? await connectRedis(config.redis, logRedis) : undefined;
  const replication = config.redis ? replicationOf(config.redis, logRedis) : undefined;
  let upstream: UpstreamRoute | undefined;
  if (config.upstream) {
    const u = config.upstream;
    const store = redis && config.redis ? new RedisKeyValueStore(redis, { prefix: config.redis.prefix, ...(replication ? { replication } : {}) }) : new MemoryKeyValueStore();
    const found = new LazyUpstream(
      {
        issuer: u.issuer,
        clientId: u.clientId,
        clientSecret: u.clientSecret,
        redirectUri: u.redirectUri,
        label: u.label,
        ...(u.scope ? { scope: u.scope } : {}),
        ...(u.acrValues ? { acrValues: u.acrValues } : {}),
        ...(u.authorizationEndpoint ? { authorizationEndpoint: u.authorizationEndpoint } : {}),
        allowInsecureHttp: u.allowInsecureHttp === true,
      },
      store,
    );
    upstream = { upstream: found, callbackPath: new URL(u.redirectUri).pathname };
  }
  const { startIdp } = await import('../../idp/server.js');
  const running = await startIdp({
    port: config.port,
    host: config.host,
    issuer: config.issuer,
    clients: config.clients,
    trust: config.trust,
    daemonPort: config.daemonPort,
    allowHttpLocalhost: new URL(config.issuer).protocol === 'http:',
    jwks: config.jwks,
    cookieKeys: config.cookieKeys,
    behindProxy: config.behindProxy,
    loginsPerMinute: config.loginsPerMinute,
    allowContactless: config.allowContactless,
    ciba: config.ciba,
    ...(redis && config.redis ? { redis, redisPrefix: config.redis.prefix, ...(replication ? { redisReplication: replication } : {}) } : {}),
    ...(upstream ? { upstream } : {}),
    ...(config.audit ? { audit: auditTo(config.audit) } : {}),
  });
  process.stdout.write(`${t('idp.listening', { issuer: running.issuer, discovery: `${running.issuer}/.well-known/openid-configuration` })}\n`);
  process.stdout.write(`${t('idp.configured', { host: config.host, port: running.port, clients: config.clients.length, store: config.redis ? describeRedis(config.redis) : 'memory' })}\n`);
  await waitForSignal();
  const deadline = setTimeout(() => process.exit(ExitCode.OK), 1000);
  await running.close();
  await redis?.close().catch(() => undefined);
  clearTimeout(deadline);
  return ExitCode.OK;
}

async function simOrFlags(options: IdpCommandOptions): Promise<number> {
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
  const redis = options.redis ? await connectRedis({ url: options.redis, prefix: 'cpsd-idp:' }, logRedis) : undefined;
  const { startIdp } = await import('../../idp/server.js');
  const running = await startIdp({ port: options.port, issuer, clients, trust, daemonPort, allowHttpLocalhost: local, ...(redis ? { redis } : {}) });
  process.stdout.write(`${t('idp.listening', { issuer: running.issuer, discovery: `${running.issuer}/.well-known/openid-configuration` })}\n`);
  if (daemon) process.stdout.write(`${t('idp.simDaemon', { port: daemon.port, profile: options.sim ?? '' })}\n`);
  if (demo) {
    process.stdout.write(`${t('idp.demoClient', { id: demo.client_id, secret: String(demo.client_secret), redirect: demo.redirect_uris?.join(', ') ?? '' })}\n`);
  }
  await waitForSignal();
  const deadline = setTimeout(() => process.exit(ExitCode.OK), 1000);
  await running.close();
  await redis?.close().catch(() => undefined);
  if (daemon) {
    await daemon.close();
    await daemon.sessions.close();
  }
  clearTimeout(deadline);
  return ExitCode.OK;
}
