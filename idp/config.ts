/**
 * cpsd-idp's configuration file (docs/idp.md, "Configuration"): JSON, paths relative to the file.
 * Every instance behind one issuer reads the same file: same keys, same cookie keys, same Redis.
 * A file that breaks a rule is a ConfigError naming the file and the key; nothing is guessed.
 */
import { chmodSync, readdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import type { ClientMetadata, JWK } from 'oidc-provider';
import { t } from '../core/i18n.js';
import { ConfigError } from '../daemon/config.js';
import type { RevocationMode } from '../pkcs/trust-types.js';
import type { TrustOptions } from './interaction.js';
import { newSigningKey } from './keys.js';
import { checkLogoutMetadata } from './logout.js';

export interface UpstreamSettings {
  issuer: string;
  clientId: string;
  clientSecret: string;
  /** The redirect_uri registered at the upstream: <issuer of cpsd-idp>/upstream/callback. */
  redirectUri: string;
  label: string;
  scope?: string;
  acrValues?: string;
  /** The browser-facing authorization endpoint when it is not the discovered one (PSC documents one on another host). */
  authorizationEndpoint?: string;
  /** An http:// upstream (tests, a lab); never in production. */
  allowInsecureHttp?: boolean;
}

/** One Redis (`url`), or a primary and its replicas found through Redis Sentinel (`sentinel`). */
export type RedisSettings = { prefix: string } & ({ url: string; sentinel?: undefined } | { url?: undefined; sentinel: RedisSentinelSettings });

export interface RedisSentinelSettings {
  /** The Sentinels to ask first (each knows the others): "host:port" in the file. */
  nodes: { host: string; port: number }[];
  /** The primary's name in the Sentinels' configuration (`sentinel monitor <name> …`). */
  name: string;
  /** For the primary and replicas (ACL user, requirepass). */
  username?: string;
  password?: string;
  /** For the Sentinels themselves, when they require one. */
  sentinelUsername?: string;
  sentinelPassword?: string;
  /** Replicas that hold a write before the request goes on (WAIT); 0: none. */
  replicas: number;
  /** WAIT's timeout, ms. */
  waitMs: number;
}

export interface IdpConfig {
  issuer: string;
  host: string;
  port: number;
  behindProxy: boolean;
  daemonPort: number;
  clients: ClientMetadata[];
  jwks: { keys: JWK[] };
  cookieKeys: string[];
  redis?: RedisSettings;
  trust: TrustOptions;
  upstream?: UpstreamSettings;
  loginsPerMinute: number;
  /** Contactless logins (no PIN, acr http://eidas.europa.eu/LoA/low) for the applications that ask. */
  allowContactless: boolean;
  /** A file to append audit lines to, or undefined for stderr. */
  audit?: string;
  /** CIBA (poll and ping) through the workstations' daemons (idp/ciba.ts). Default false. */
  ciba: boolean;
}

const REVOCATION: readonly RevocationMode[] = ['ocsp', 'crl', 'ocsp-then-crl', 'off'];

type Json = Record<string, unknown>;
const isObject = (v: unknown): v is Json => typeof v === 'object' && v !== null && !Array.isArray(v);

export function readIdpConfig(file: string): IdpConfig {
  const base = dirname(resolve(file));
  const fail = (key: string, why: string): never => {
    throw new ConfigError(`${file}: "${key}" ${why}`);
  };
  // The file itself is relative to the current directory, the files it names to its own folder.
  const readJson = (path: string, key: string): unknown => {
    try {
      return JSON.parse(readFileSync(key === '(file)' ? resolve(path) : resolve(base, path), 'utf8')) as unknown;
    } catch (error) {
      const why = error instanceof Error ? error.message : String(error);
      if (key === '(file)') throw new ConfigError(`${file}: cannot be read as JSON (${why})`);
      return fail(key, `names a file that cannot be read as JSON: ${path} (${why})`);
    }
  };
  const raw = readJson(file, '(file)');
  if (!isObject(raw)) return fail('(file)', 'must be a JSON object');
  const known = ['issuer', 'listen', 'behindProxy', 'daemonPort', 'clients', 'keys', 'cookieKeys', 'redis', 'trust', 'upstream', 'loginsPerMinute', 'allowContactless', 'audit', 'ciba'];
  for (const key of Object.keys(raw)) if (!known.includes(key)) fail(key, `is not a setting (one of: ${known.join(', ')})`);

  /** Unknown keys of a section are refused like unknown settings: a typo never passes for a default. */
  const only = (section: Json, prefix: string, keys: readonly string[]): Json => {
    for (const key of Object.keys(section)) if (!keys.includes(key)) fail(`${prefix}.${key}`, `is not a setting (one of: ${keys.join(', ')})`);
    return section;
  };
  const string = (v: unknown, key: string): string => (typeof v === 'string' && v !== '' ? v : fail(key, 'must be a non-empty string'));
  const port = (v: unknown, key: string): number => (Number.isInteger(v) && (v as number) >= 0 && (v as number) <= 65535 ? (v as number) : fail(key, 'must be a port number'));

  const issuer = string(raw.issuer, 'issuer');
  let url: URL;
  try {
    url = new URL(issuer);
  } catch {
    return fail('issuer', 'must be a URL');
  }
  const local = url.hostname === 'localhost' || url.hostname === '127.0.0.1';
  if (url.protocol !== 'https:' && !(url.protocol === 'http:' && local)) fail('issuer', 'must be https:// (http:// only on localhost)');
  if (url.search || url.hash) fail('issuer', 'must not have a query or fragment');
  // Every route (/auth, /interaction, /upstream/callback…) is at the root of the origin.
  if (url.pathname !== '/') fail('issuer', 'must have no path (put cpsd-idp at the root of its own host name)');

  const listen = raw.listen === undefined ? {} : isObject(raw.listen) ? only(raw.listen, 'listen', ['host', 'port']) : fail('listen', 'must be { "host", "port" }');
  const clientsValue = typeof raw.clients === 'string' ? readJson(raw.clients, 'clients') : raw.clients;
  if (!Array.isArray(clientsValue) || clientsValue.length === 0) fail('clients', 'must be a non-empty list of client metadata (or the file holding it)');
  const clients = (clientsValue as unknown[]).map((c, i) => (isObject(c) && typeof c.client_id === 'string' ? (c as ClientMetadata) : fail(`clients[${i}]`, 'must be client metadata with a client_id')));
  // Back-channel logout (idp/logout.ts): where each application takes its logout tokens.
  for (const [i, c] of clients.entries()) checkLogoutMetadata(c, `clients[${i}]`, fail);

  const keysValue = readJson(string(raw.keys, 'keys'), 'keys');
  if (!isObject(keysValue) || !Array.isArray(keysValue.keys) || keysValue.keys.length === 0) fail('keys', 'must name a JWKS file ({ "keys": [private JWK, …] }, newest first)');
  const jwks = keysValue as unknown as { keys: JWK[] };
  for (const [i, k] of jwks.keys.entries()) if (!isObject(k) || typeof k.kty !== 'string' || (k.kty === 'RSA' && typeof k.d !== 'string')) fail(`keys[${i}]`, 'must be a private JWK');

  const cookieValue = typeof raw.cookieKeys === 'string' ? readJson(raw.cookieKeys, 'cookieKeys') : raw.cookieKeys;
  if (!Array.isArray(cookieValue) || cookieValue.length === 0 || cookieValue.some((k) => typeof k !== 'string' || k.length < 32)) {
    fail('cookieKeys', 'must be a list of secrets of 32 characters or more, newest first (or the file holding it)');
  }

  let redis: IdpConfig['redis'];
  if (isObject(raw.redis) && raw.redis.sentinels !== undefined) {
    // The Sentinel form: a primary and its replicas, the primary found (and found again after a failover) by asking the Sentinels.
    const s = only(raw.redis, 'redis', ['sentinels', 'name', 'prefix', 'username', 'password', 'sentinelUsername', 'sentinelPassword', 'replicas', 'waitMs']);
    if (!Array.isArray(s.sentinels) || s.sentinels.length === 0) fail('redis.sentinels', t('idp.redis.sentinels'));
    const nodes = (s.sentinels as unknown[]).map((node, i) => {
      const m = typeof node === 'string' ? /^(\[[0-9a-fA-F:.]+\]|[^:\s[\]]+):(\d{1,5})$/.exec(node) : null;
      const nodePort = Number(m?.[2]);
      if (!m || nodePort < 1 || nodePort > 65535) return fail(`redis.sentinels[${i}]`, t('idp.redis.sentinelNode', { value: JSON.stringify(node) }));
      return { host: (m[1] ?? '').replace(/^\[(.*)\]$/, '$1'), port: nodePort };
    });
    const optional = (v: unknown, key: string): { [k: string]: string } => (v === undefined ? {} : { [key]: string(v, `redis.${key}`) });
    const replicas = s.replicas ?? 1;
    if (!Number.isInteger(replicas) || (replicas as number) < 0 || (replicas as number) > 16) fail('redis.replicas', t('idp.redis.replicas'));
    const waitMs = s.waitMs ?? 500;
    // Below the store's 2 s bound on a request to Redis, so that an unanswered WAIT is told apart from a Redis gone.
    if (!Number.isInteger(waitMs) || (waitMs as number) < 1 || (waitMs as number) > 1500) fail('redis.waitMs', t('idp.redis.waitMs'));
    redis = {
      prefix: s.prefix === undefined ? 'cpsd-idp:' : string(s.prefix, 'redis.prefix'),
      sentinel: {
        nodes,
        name: string(s.name, 'redis.name'),
        ...optional(s.username, 'username'),
        ...optional(s.password, 'password'),
        ...optional(s.sentinelUsername, 'sentinelUsername'),
        ...optional(s.sentinelPassword, 'sentinelPassword'),
        replicas: replicas as number,
        waitMs: waitMs as number,
      },
    };
  } else if (raw.redis !== undefined) {
    const r = typeof raw.redis === 'string' ? { url: raw.redis } : isObject(raw.redis) ? only(raw.redis, 'redis', ['url', 'prefix']) : fail('redis', t('idp.redis.form'));
    const redisUrl = string(r.url, 'redis.url');
    if (!/^rediss?:\/\//.test(redisUrl)) fail('redis.url', 'must be redis://… or rediss://…');
    redis = { url: redisUrl, prefix: r.prefix === undefined ? 'cpsd-idp:' : string(r.prefix, 'redis.prefix') };
  }

  const trustRaw = isObject(raw.trust) ? only(raw.trust, 'trust', ['dir', 'revocation', 'fetchCrls']) : fail('trust', 'must be { "dir", "revocation" }');
  const dir = resolve(base, string(trustRaw.dir, 'trust.dir'));
  const revocation = trustRaw.revocation ?? 'ocsp-then-crl';
  if (!REVOCATION.includes(revocation as RevocationMode)) fail('trust.revocation', `must be one of ${REVOCATION.join(', ')}`);
  const files = (sub: string): Uint8Array[] => {
    try {
      return readdirSync(join(dir, sub)).map((name) => new Uint8Array(readFileSync(join(dir, sub, name))));
    } catch {
      return sub === 'anchors' ? fail('trust.dir', `must hold anchors/ (and intermediates/, crls/): ${dir}`) : [];
    }
  };
  const trust: TrustOptions = {
    trustAnchors: files('anchors'),
    intermediates: files('intermediates'),
    crls: files('crls'),
    revocation: revocation as RevocationMode,
    ...(trustRaw.fetchCrls === false ? { crl: { fetch: false } } : {}),
  };
  if (trust.trustAnchors.length === 0) fail('trust.dir', `anchors/ is empty: ${dir}`);

  let upstream: UpstreamSettings | undefined;
  if (raw.upstream !== undefined) {
    const u = isObject(raw.upstream)
      ? only(raw.upstream, 'upstream', ['issuer', 'clientId', 'clientSecret', 'redirectUri', 'label', 'scope', 'acrValues', 'authorizationEndpoint', 'allowInsecureHttp'])
      : fail('upstream', 'must be an object');
    upstream = {
      issuer: string(u.issuer, 'upstream.issuer'),
      clientId: string(u.clientId, 'upstream.clientId'),
      clientSecret: string(u.clientSecret, 'upstream.clientSecret'),
      redirectUri: u.redirectUri === undefined ? new URL('/upstream/callback', url).href : string(u.redirectUri, 'upstream.redirectUri'),
      label: u.label === undefined ? 'e-CPS / Pro Santé Connect' : string(u.label, 'upstream.label'),
      ...(u.scope === undefined ? {} : { scope: string(u.scope, 'upstream.scope') }),
      // PSC's level unless said otherwise: an upstream login at another level is refused, never passed on.
      acrValues: u.acrValues === undefined ? 'eidas1' : string(u.acrValues, 'upstream.acrValues'),
      ...(u.authorizationEndpoint === undefined ? {} : { authorizationEndpoint: string(u.authorizationEndpoint, 'upstream.authorizationEndpoint') }),
      ...(u.allowInsecureHttp === true ? { allowInsecureHttp: true } : {}),
    };
    if (new URL(upstream.redirectUri).origin !== url.origin) fail('upstream.redirectUri', `must be on the issuer's origin ${url.origin}`);
  }

  const loginsPerMinute = raw.loginsPerMinute ?? 30;
  if (!Number.isInteger(loginsPerMinute) || (loginsPerMinute as number) < 1) fail('loginsPerMinute', 'must be a positive integer');
  return {
    issuer,
    host: listen.host === undefined ? '127.0.0.1' : string(listen.host, 'listen.host'),
    port: listen.port === undefined ? 9000 : port(listen.port, 'listen.port'),
    behindProxy: raw.behindProxy === true,
    daemonPort: raw.daemonPort === undefined ? 24821 : port(raw.daemonPort, 'daemonPort'),
    clients,
    jwks,
    cookieKeys: cookieValue as string[],
    ...(redis ? { redis } : {}),
    trust,
    ...(upstream ? { upstream } : {}),
    loginsPerMinute: loginsPerMinute as number,
    allowContactless: raw.allowContactless === true,
    ciba: raw.ciba === undefined ? false : typeof raw.ciba === 'boolean' ? raw.ciba : fail('ciba', 'must be true or false'),
    ...(raw.audit === undefined || raw.audit === 'stderr' ? {} : { audit: resolve(base, string(raw.audit, 'audit')) }),
  };
}

/**
 * Key rotation: a new key first (oidc-provider signs with the first key of an algorithm and publishes
 * all of them in its JWKS), the previous ones kept so that the id_tokens they signed still verify, the
 * oldest beyond `keep` dropped. Written in place (mode 0600); restart the instances one by one.
 */
export function rotateKeys(file: string, keep = 2): { kid: string; kept: string[] } {
  let current: JWK[] = [];
  try {
    const parsed = JSON.parse(readFileSync(file, 'utf8')) as { keys?: JWK[] };
    current = parsed.keys ?? [];
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw new ConfigError(`${file}: not a JWKS file (${error instanceof Error ? error.message : String(error)})`);
  }
  if (!Number.isInteger(keep) || keep < 1) throw new ConfigError(`--keep must be a positive integer, not ${keep}`);
  const key = newSigningKey();
  const keys = [key, ...current].slice(0, keep + 1);
  // A new file renamed over the old one: an instance starting meanwhile reads the old or the new, never half.
  const temporary = `${file}.${process.pid}.tmp`;
  writeFileSync(temporary, `${JSON.stringify({ keys }, null, 2)}\n`, { mode: 0o600 });
  chmodSync(temporary, 0o600);
  renameSync(temporary, file);
  return { kid: String(key.kid), kept: keys.slice(1).map((k) => String(k.kid)) };
}
