/** cpsd-idp's configuration file (idp/config.ts): what it accepts, what it refuses (file and key named), key rotation. */
import { copyFileSync, mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { readIdpConfig, rotateKeys } from '../../idp/config.js';
import { generatedJwks } from '../../idp/keys.js';

const PKI = new URL('../../fixtures/pki/', import.meta.url).pathname;
let dir: string;

const GOOD = {
  issuer: 'https://idp.hopital.example',
  clients: [{ client_id: 'ehr', client_secret: 's', redirect_uris: ['https://ehr.hopital.example/cb'] }],
  keys: 'jwks.json',
  cookieKeys: ['0123456789abcdef0123456789abcdef'],
  trust: { dir: 'trust' },
};

/** GOOD with back-channel logout members added to its client. */
const withLogout = (members: Record<string, unknown>): Record<string, unknown> => ({ ...GOOD, clients: [{ ...GOOD.clients[0], ...members }] });

function write(config: Record<string, unknown>): string {
  const file = join(dir, 'idp.json');
  writeFileSync(file, JSON.stringify(config));
  return file;
}

beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'cpsd-idp-config-'));
  mkdirSync(join(dir, 'trust', 'anchors'), { recursive: true });
  copyFileSync(join(PKI, 'root.der'), join(dir, 'trust', 'anchors', 'root.der'));
  writeFileSync(join(dir, 'jwks.json'), JSON.stringify(generatedJwks()));
});

afterEach(() => rmSync(dir, { recursive: true, force: true }));

describe('readIdpConfig', () => {
  it('reads a minimal file with the documented defaults', () => {
    const config = readIdpConfig(write(GOOD));
    expect(config).toMatchObject({ issuer: GOOD.issuer, host: '127.0.0.1', port: 9000, daemonPort: 24821, behindProxy: false, loginsPerMinute: 30, allowContactless: false });
    expect(config.redis).toBeUndefined();
    expect(config.trust.trustAnchors).toHaveLength(1);
    expect(config.trust.revocation).toBe('ocsp-then-crl');
  });

  it('resolves the files it names relative to itself, whatever the current directory', () => {
    writeFileSync(join(dir, 'clients.json'), JSON.stringify(GOOD.clients));
    expect(readIdpConfig(write({ ...GOOD, clients: 'clients.json' })).clients[0]?.client_id).toBe('ehr');
  });

  it('reads a relative configuration path from the current directory, its own files from its folder', () => {
    // `cd b && cpsd idp --config idp/idp.json` once read b/idp/idp/idp.json (the folder counted twice).
    writeFileSync(join(dir, 'clients.json'), JSON.stringify(GOOD.clients));
    write({ ...GOOD, clients: 'clients.json' });
    const cwd = process.cwd();
    try {
      process.chdir(join(dir, '..'));
      const relative = join(dir.slice(dir.lastIndexOf('/') + 1), 'idp.json');
      const config = readIdpConfig(relative);
      expect(config.clients[0]?.client_id).toBe('ehr');
      expect(config.trust.trustAnchors).toHaveLength(1);
    } finally {
      process.chdir(cwd);
    }
  });

  it('fills the upstream redirect_uri from the issuer', () => {
    const config = readIdpConfig(write({ ...GOOD, upstream: { issuer: 'https://auth.esante.gouv.fr/auth/realms/esante-wallet', clientId: 'c', clientSecret: 's' } }));
    expect(config.upstream).toMatchObject({ redirectUri: 'https://idp.hopital.example/upstream/callback', label: 'e-CPS / Pro Santé Connect' });
  });

  it('reads the Redis Sentinel form: the Sentinels, the primary\'s name, the replicas a write waits for', () => {
    const config = readIdpConfig(write({ ...GOOD, redis: { sentinels: ['10.0.0.1:26379', 'sentinel-2.hopital.example:26380', '[::1]:26381'], name: 'cpsd-idp', password: 'p' } }));
    expect(config.redis).toEqual({
      prefix: 'cpsd-idp:',
      sentinel: {
        nodes: [
          { host: '10.0.0.1', port: 26379 },
          { host: 'sentinel-2.hopital.example', port: 26380 },
          { host: '::1', port: 26381 },
        ],
        name: 'cpsd-idp',
        password: 'p',
        replicas: 1,
        waitMs: 500,
      },
    });
    expect(readIdpConfig(write({ ...GOOD, redis: { sentinels: ['s:1'], name: 'm', replicas: 0, waitMs: 20, prefix: 'a:' } })).redis).toMatchObject({ prefix: 'a:', sentinel: { replicas: 0, waitMs: 20 } });
  });

  it.each([
    [{ sentinels: [], name: 'm' }, '"redis.sentinels" must be a non-empty list of Sentinels'],
    [{ sentinels: '10.0.0.1:26379', name: 'm' }, '"redis.sentinels" must be a non-empty list of Sentinels'],
    [{ sentinels: ['10.0.0.1'], name: 'm' }, '"redis.sentinels[0]" must be "host:port"'],
    [{ sentinels: ['s:1', 's:70000'], name: 'm' }, '"redis.sentinels[1]" must be "host:port"'],
    [{ sentinels: ['s:1'] }, '"redis.name" must be a non-empty string'],
    [{ sentinels: ['s:1'], name: 'm', replicas: -1 }, '"redis.replicas" must be a whole number of replicas from 0 to 16'],
    [{ sentinels: ['s:1'], name: 'm', replicas: 1.5 }, '"redis.replicas" must be a whole number'],
    [{ sentinels: ['s:1'], name: 'm', waitMs: 0 }, '"redis.waitMs" must be a whole number of milliseconds from 1 to 1500'],
    [{ sentinels: ['s:1'], name: 'm', waitMs: 5000 }, '"redis.waitMs" must be a whole number of milliseconds'],
    [{ sentinels: ['s:1'], name: 'm', url: 'redis://x' }, '"redis.url" is not a setting'],
    [{ url: 'redis://x', replicas: 1 }, '"redis.replicas" is not a setting'],
    [42, '"redis" must be a URL, { "url", "prefix" } or { "sentinels", "name", … }'],
  ])('refuses the Redis setting %j with CONFIG_INVALID, naming the key', (redis, message) => {
    expect(() => readIdpConfig(write({ ...GOOD, redis }))).toThrow(expect.objectContaining({ name: 'ConfigError', code: 'CONFIG_INVALID', message: expect.stringContaining(message) }));
  });

  it('says what is wrong with the Sentinel form in French too', async () => {
    const { setLang } = await import('../../core/i18n.js');
    setLang('fr');
    try {
      expect(() => readIdpConfig(write({ ...GOOD, redis: { sentinels: ['s'], name: 'm' } }))).toThrow('"redis.sentinels[0]" doit être "hôte:port"');
      expect(() => readIdpConfig(write({ ...GOOD, redis: { sentinels: ['s:1'], name: 'm', waitMs: 0 } }))).toThrow('"redis.waitMs" doit être un nombre entier de millisecondes');
    } finally {
      setLang(undefined);
    }
  });

  it.each([
    [{ ...GOOD, issuer: 'http://idp.hopital.example' }, '"issuer" must be https://'],
    [{ ...GOOD, color: 'blue' }, '"color" is not a setting'],
    [{ ...GOOD, issuer: 'https://sso.hopital.example/cps' }, '"issuer" must have no path'],
    [{ ...GOOD, trust: { dir: 'trust', revoke: 'crl' } }, '"trust.revoke" is not a setting'],
    [{ ...GOOD, clients: [] }, '"clients" must be a non-empty list'],
    [{ ...GOOD, keys: 'missing.json' }, '"keys" names a file that cannot be read as JSON: missing.json'],
    [{ ...GOOD, cookieKeys: ['short'] }, '"cookieKeys" must be a list of secrets of 32 characters or more'],
    [{ ...GOOD, redis: 'http://localhost:6379' }, '"redis.url" must be redis://'],
    [{ ...GOOD, trust: { dir: 'nowhere' } }, '"trust.dir" must hold anchors/'],
    [{ ...GOOD, trust: { dir: 'trust', revocation: 'sometimes' } }, '"trust.revocation" must be one of'],
    [{ ...GOOD, upstream: { issuer: 'https://psc.example', clientId: 'c', clientSecret: 's', redirectUri: 'https://evil.example/cb' } }, '"upstream.redirectUri" must be on the issuer\'s origin'],
    [{ ...GOOD, loginsPerMinute: 0 }, '"loginsPerMinute" must be a positive integer'],
    [withLogout({ backchannel_logout_uri: 'http://ehr.hopital.example/logout' }), '"clients[0].backchannel_logout_uri" must be https://'],
    [withLogout({ backchannel_logout_uri: '/oidc/backchannel' }), '"clients[0].backchannel_logout_uri" must be an absolute URL'],
    [withLogout({ backchannel_logout_uri: 'https://ehr.hopital.example/logout#x' }), '"clients[0].backchannel_logout_uri" must not have a fragment'],
    [withLogout({ backchannel_logout_uri: 'https://user:pw@ehr.hopital.example/logout' }), '"clients[0].backchannel_logout_uri" must not carry a user name or password'],
    [withLogout({ backchannel_logout_uri: 42 }), '"clients[0].backchannel_logout_uri" must be a URL'],
    [withLogout({ backchannel_logout_uri: 'https://ehr.hopital.example/logout', backchannel_logout_session_required: 'yes' }), '"clients[0].backchannel_logout_session_required" must be true or false'],
    [withLogout({ backchannel_logout_session_required: true }), '"clients[0].backchannel_logout_session_required" has no meaning without backchannel_logout_uri'],
  ])('refuses %j, naming the key', (config, message) => {
    expect(() => readIdpConfig(write(config))).toThrow(expect.objectContaining({ code: 'CONFIG_INVALID', message: expect.stringContaining(message) }));
  });

  it('reads a client’s back-channel logout URI (https, or http on localhost) and session requirement', () => {
    const config = readIdpConfig(
      write({ ...GOOD, clients: [{ ...GOOD.clients[0], backchannel_logout_uri: 'https://ehr.hopital.example/oidc/backchannel?x=1', backchannel_logout_session_required: true }, { ...GOOD.clients[0], client_id: 'lab', backchannel_logout_uri: 'http://localhost:8081/protected/redirect_uri?logout=backchannel' }] }),
    );
    expect(config.clients.map((c) => c.backchannel_logout_uri)).toEqual(['https://ehr.hopital.example/oidc/backchannel?x=1', 'http://localhost:8081/protected/redirect_uri?logout=backchannel']);
  });

  it('refuses a JWKS of public keys only', () => {
    const pub = generatedJwks().keys.map((k) => Object.fromEntries(Object.entries(k).filter(([name]) => !['d', 'p', 'q', 'dp', 'dq', 'qi'].includes(name))));
    writeFileSync(join(dir, 'jwks.json'), JSON.stringify({ keys: pub }));
    expect(() => readIdpConfig(write(GOOD))).toThrow(/"keys\[0\]" must be a private JWK/);
  });
});

describe('rotateKeys', () => {
  it('puts a new key first, keeps the previous ones up to --keep, writes mode 0600', () => {
    const file = join(dir, 'rotated.json');
    const kids = [rotateKeys(file).kid, rotateKeys(file).kid, rotateKeys(file).kid];
    const after = rotateKeys(file, 2);
    const keys = (JSON.parse(readFileSync(file, 'utf8')) as { keys: { kid: string; d?: string }[] }).keys;
    expect(keys.map((k) => k.kid)).toEqual([after.kid, kids[2], kids[1]]);
    expect(after.kept).toEqual([kids[2], kids[1]]);
    expect(keys.every((k) => typeof k.d === 'string')).toBe(true);
    expect(statSync(file).mode & 0o777).toBe(0o600);
  });

  it('refuses a file that is not a JWKS rather than overwrite it', () => {
    const file = join(dir, 'notes.txt');
    writeFileSync(file, 'not json');
    expect(() => rotateKeys(file)).toThrow(expect.objectContaining({ code: 'CONFIG_INVALID' }));
    expect(readFileSync(file, 'utf8')).toBe('not json');
  });
});
