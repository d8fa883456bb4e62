/**
 * Daemon configuration: one JSON file, system-wide then per user (the user file wins field by field),
 * then command-line options. Validated strictly: an unknown key or a bad value is an error that names it.
 */
import { existsSync, readFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { DEFAULT_PCSC_BINDING, PCSC_BINDINGS, PCSC_BINDING_ENV, isPcscBindingName, type PcscBindingName } from '../apdu/pcsc/binding.js';
import { CpsdError } from '../core/errors.js';

export class ConfigError extends CpsdError {
  readonly code = 'CONFIG_INVALID';
}

export interface DaemonConfig {
  /** TCP port on 127.0.0.1 and ::1. Default 24821. */
  port: number;
  /** Exact origins allowed to connect (https://…; http://localhost… only with allowHttpLocalhost). */
  allowedOrigins: string[];
  /** Accept http://localhost:* and http://127.0.0.1:* origins (development only). */
  allowHttpLocalhost: boolean;
  /** Local applications (no Origin header) may pass the PIN in the request. */
  allowPinInRequest: boolean;
  /** Seconds a verified PIN stays usable for further authentications from the same origin (0 = none). */
  ssoSeconds: Record<string, number>;
  /** Connections from web pages (one origin takes at most three quarters of them). */
  maxConnections: number;
  /** Connections from local applications (no Origin), counted apart from web pages'. */
  maxLocalConnections: number;
  /** Origins allowed to log in with a contactless card's technical key (no PIN: one factor). Default none. */
  contactlessOrigins: string[];
  /** Largest WebSocket message accepted, in bytes. */
  maxMessageBytes: number;
  /** Requests per connection per second before being refused with RATE_LIMITED. */
  ratePerSecond: number;
  /** Per card operation. */
  operationTimeoutMs: number;
  /** How long a pending PIN entry waits for the user. */
  pinTimeoutMs: number;
  logLevel: 'debug' | 'info' | 'warn' | 'error';
  /** The native PC/SC binding (apdu/pcsc/binding.ts); the environment variable CPSD_PCSC_BINDING overrides the files. */
  pcscBinding: PcscBindingName;
  /**
   * A terminal server: `cpsd proxy` (root) holds `port`; this daemon listens on a free loopback port,
   * registers it in $XDG_RUNTIME_DIR/cpsd/port and accepts the proxy's word for the client's user.
   */
  behindProxy: boolean;
  /**
   * Where the OS has no way (yet) to tell the owner of a client socket (daemon/peer.ts): "allow" serves
   * every local connection (a single-user workstation), "refuse" refuses them all (a shared computer).
   */
  peerCheckUnsupported: 'allow' | 'refuse';
  /** Serve the PKCS#11 module on the user's socket (docs/pkcs11.md). Default true. */
  pkcs11: boolean;
  /**
   * cpsd-idp's origin (its issuer) for CIBA: the daemon opens a link to it and registers the card in the
   * reader as its holder's authentication device (daemon/idp-link.ts). null (default): no link.
   */
  idp: string | null;
  /** The command that shows the PIN window of a CIBA request (the URL is added last). Default xdg-open. */
  pinWindowCommand: string[];
  /**
   * After a wrong PIN typed in an application's own prompt (PKCS#11: a browser's TLS client authentication),
   * open a notice with the tries left through pinWindowCommand (daemon/pin-notice.ts). Default true.
   */
  pinNotices: boolean;
}

export const DEFAULT_PORT = 24821;

export const DEFAULTS: DaemonConfig = {
  port: DEFAULT_PORT,
  allowedOrigins: [],
  allowHttpLocalhost: false,
  allowPinInRequest: true,
  ssoSeconds: {},
  maxConnections: 64,
  maxLocalConnections: 32,
  contactlessOrigins: [],
  maxMessageBytes: 16 * 1024,
  ratePerSecond: 20,
  operationTimeoutMs: 30_000,
  pinTimeoutMs: 120_000,
  logLevel: 'info',
  pcscBinding: DEFAULT_PCSC_BINDING,
  behindProxy: false,
  peerCheckUnsupported: 'allow',
  pkcs11: true,
  idp: null,
  pinWindowCommand: ['xdg-open'],
  pinNotices: true,
};

export const SYSTEM_CONFIG = '/etc/cpsd/config.json';
export const USER_CONFIG = join(process.env.XDG_CONFIG_HOME ?? join(homedir(), '.config'), 'cpsd', 'config.json');

export function normaliseOrigin(value: string, allowHttpLocalhost: boolean): string {
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    throw new ConfigError(`not an origin: ${JSON.stringify(value)}`);
  }
  if (url.origin === 'null' || url.pathname !== '/' || url.search || url.hash || url.username) {
    throw new ConfigError(`an origin is scheme://host[:port] only: ${JSON.stringify(value)}`);
  }
  const local = url.hostname === 'localhost' || url.hostname === '127.0.0.1' || url.hostname === '[::1]';
  if (url.protocol !== 'https:' && !(url.protocol === 'http:' && local && allowHttpLocalhost)) {
    throw new ConfigError(`origins must be https (http only for localhost with allowHttpLocalhost): ${value}`);
  }
  return url.origin;
}

const KEYS = new Set(Object.keys(DEFAULTS));

export function validateConfig(raw: unknown, source: string): Partial<DaemonConfig> {
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) throw new ConfigError(`${source}: must be a JSON object`);
  const out: Partial<DaemonConfig> = {};
  const r = raw as Record<string, unknown>;
  for (const key of Object.keys(r)) if (!KEYS.has(key)) throw new ConfigError(`${source}: unknown setting "${key}"`);
  const int = (key: keyof DaemonConfig, min: number, max: number): number | undefined => {
    const v = r[key];
    if (v === undefined) return undefined;
    if (typeof v !== 'number' || !Number.isInteger(v) || v < min || v > max) throw new ConfigError(`${source}: "${key}" must be an integer in ${min}..${max}`);
    return v;
  };
  const bool = (key: keyof DaemonConfig): boolean | undefined => {
    const v = r[key];
    if (v === undefined) return undefined;
    if (typeof v !== 'boolean') throw new ConfigError(`${source}: "${key}" must be true or false`);
    return v;
  };
  const set = <K extends keyof DaemonConfig>(key: K, value: DaemonConfig[K] | undefined): void => {
    if (value !== undefined) out[key] = value;
  };
  set('port', int('port', 1024, 65535));
  set('allowHttpLocalhost', bool('allowHttpLocalhost'));
  set('allowPinInRequest', bool('allowPinInRequest'));
  set('maxConnections', int('maxConnections', 1, 10_000));
  set('maxLocalConnections', int('maxLocalConnections', 1, 10_000));
  set('maxMessageBytes', int('maxMessageBytes', 1024, 1024 * 1024));
  set('ratePerSecond', int('ratePerSecond', 1, 10_000));
  set('operationTimeoutMs', int('operationTimeoutMs', 1000, 600_000));
  set('pinTimeoutMs', int('pinTimeoutMs', 5000, 600_000));
  if (r.logLevel !== undefined) {
    if (!['debug', 'info', 'warn', 'error'].includes(String(r.logLevel))) throw new ConfigError(`${source}: "logLevel" must be debug, info, warn or error`);
    out.logLevel = r.logLevel as DaemonConfig['logLevel'];
  }
  set('behindProxy', bool('behindProxy'));
  set('pkcs11', bool('pkcs11'));
  set('pinNotices', bool('pinNotices'));
  if (r.peerCheckUnsupported !== undefined) {
    if (r.peerCheckUnsupported !== 'allow' && r.peerCheckUnsupported !== 'refuse') throw new ConfigError(`${source}: "peerCheckUnsupported" must be allow or refuse`);
    out.peerCheckUnsupported = r.peerCheckUnsupported;
  }
  if (r.pcscBinding !== undefined) {
    if (!isPcscBindingName(r.pcscBinding)) throw new ConfigError(`${source}: "pcscBinding" must be ${PCSC_BINDINGS.join(' or ')}`);
    out.pcscBinding = r.pcscBinding;
  }
  const http = out.allowHttpLocalhost ?? false;
  if (r.idp !== undefined && r.idp !== null) {
    if (typeof r.idp !== 'string') throw new ConfigError(`${source}: "idp" must be the origin of cpsd-idp (https://…) or null`);
    out.idp = normaliseOrigin(r.idp, http);
  } else if (r.idp === null) out.idp = null;
  if (r.pinWindowCommand !== undefined) {
    if (!Array.isArray(r.pinWindowCommand) || r.pinWindowCommand.length === 0 || !r.pinWindowCommand.every((a) => typeof a === 'string' && a !== '')) {
      throw new ConfigError(`${source}: "pinWindowCommand" must be a non-empty list of strings (the program, then its arguments)`);
    }
    out.pinWindowCommand = r.pinWindowCommand as string[];
  }
  if (r.allowedOrigins !== undefined) {
    if (!Array.isArray(r.allowedOrigins) || !r.allowedOrigins.every((o) => typeof o === 'string')) {
      throw new ConfigError(`${source}: "allowedOrigins" must be a list of origins`);
    }
    out.allowedOrigins = (r.allowedOrigins as string[]).map((o) => normaliseOrigin(o, http));
  }
  if (r.contactlessOrigins !== undefined) {
    if (!Array.isArray(r.contactlessOrigins) || !r.contactlessOrigins.every((o) => typeof o === 'string')) {
      throw new ConfigError(`${source}: "contactlessOrigins" must be a list of origins`);
    }
    out.contactlessOrigins = (r.contactlessOrigins as string[]).map((o) => normaliseOrigin(o, http));
  }
  if (r.ssoSeconds !== undefined) {
    const sso = r.ssoSeconds;
    if (typeof sso !== 'object' || sso === null || Array.isArray(sso)) throw new ConfigError(`${source}: "ssoSeconds" must map origins to seconds`);
    out.ssoSeconds = {};
    for (const [origin, seconds] of Object.entries(sso)) {
      if (typeof seconds !== 'number' || !Number.isInteger(seconds) || seconds < 0 || seconds > 28_800) {
        throw new ConfigError(`${source}: ssoSeconds["${origin}"] must be 0..28800`);
      }
      out.ssoSeconds[normaliseOrigin(origin, http)] = seconds;
    }
  }
  return out;
}

export function loadConfig(files: readonly string[] = [SYSTEM_CONFIG, USER_CONFIG], overrides: Partial<DaemonConfig> = {}): DaemonConfig {
  let config: DaemonConfig = { ...DEFAULTS };
  for (const file of files) {
    if (!existsSync(file)) continue;
    let raw: unknown;
    try {
      raw = JSON.parse(readFileSync(file, 'utf8'));
    } catch (error) {
      throw new ConfigError(`${file}: not valid JSON (${(error as Error).message})`);
    }
    config = { ...config, ...validateConfig(raw, file) };
  }
  const binding = process.env[PCSC_BINDING_ENV];
  if (binding !== undefined && binding !== '') config = { ...config, ...validateConfig({ pcscBinding: binding }, PCSC_BINDING_ENV) };
  const merged = { ...config, ...overrides };
  merged.allowedOrigins = [...new Set([...config.allowedOrigins, ...(overrides.allowedOrigins ?? [])])];
  return merged;
}

/**
 * The PC/SC binding for a one-shot command: CPSD_PCSC_BINDING, else the configuration files' setting.
 * Those commands do not otherwise read the files, so a broken file does not stop them: they use the
 * default binding (`cpsd serve` refuses the file, `cpsd doctor` reports it).
 */
export function pcscBindingSetting(files?: readonly string[]): PcscBindingName {
  const env = process.env[PCSC_BINDING_ENV];
  if (env !== undefined && env !== '') return validateConfig({ pcscBinding: env }, PCSC_BINDING_ENV).pcscBinding ?? DEFAULT_PCSC_BINDING;
  try {
    return loadConfig(files).pcscBinding;
  } catch {
    return DEFAULT_PCSC_BINDING;
  }
}
