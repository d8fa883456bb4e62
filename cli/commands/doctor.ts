/**
 * `cpsd doctor`: what a technician needs on one screen — versions (cpsd, OS, Node, pcscd), each reader
 * with its PIN pad and driver, then every check, always shown, with a status (ok / warn / fail / skip,
 * a skip saying which earlier failure made it impossible) and advice for each warn and fail, in the
 * person's language. The configuration is the running daemon's (asked with `daemon.config` as a local
 * application), else the files'. `--bundle` writes the same without PIN, identity or serial.
 */
import { execFile } from 'node:child_process';
import { connect } from 'node:net';
import { existsSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { arch, release, type } from 'node:os';
import { basename, join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { FEATURE, readerFeatures } from '../../apdu/pcsc/pinpad.js';
import type { PcscService } from '../../apdu/pcsc/service.js';
import { isCpsAtr } from '../../cards/atr-table.js';
import { readPublicData } from '../../cards/public-data.js';
import { CpsdError } from '../../core/errors.js';
import { toHex } from '../../core/bytes.js';
import { bindingVersion } from '../../apdu/pcsc/binding.js';
import { DEFAULT_PORT, loadConfig, pcscBindingSetting } from '../../daemon/config.js';
import { connectDaemon, DaemonConnectError, type RpcClient } from '../../daemon/client.js';
import { withCard, withService } from '../card-session.js';
import { ExitCode, exitCodeFor } from '../exit-codes.js';
import { lang, t, type Lang, type MessageKey, type Params } from '../../core/i18n.js';
import { checkCertificate } from './certs.js';
import { installedPolicies, type InstalledPolicy } from './policy.js';
import { builtModulePath, pkcs11Registrations } from './pkcs11.js';
import { pkcs11SocketPath } from '../../pkcs11/socket-path.js';
import { cacheFor, json, out, type CommonOptions } from '../output.js';

export type CheckId = 'pcsc-service' | 'readers' | 'card' | 'pin' | 'certificate-auth' | 'certificate-sign' | 'config' | 'daemon' | 'pkcs11';
export const CHECK_IDS: readonly CheckId[] = ['pcsc-service', 'readers', 'card', 'pin', 'certificate-auth', 'certificate-sign', 'config', 'daemon', 'pkcs11'];

/** One check as JSON and the bundle carry it: `detail` and `advice` in English whatever the language. */
export interface DoctorCheck {
  id: CheckId;
  status: 'ok' | 'warn' | 'fail' | 'skip';
  detail: string;
  advice?: string;
}

/** A check before it is put in words: catalogue keys, so that it can be said in either language. */
interface Finding {
  id: CheckId;
  status: DoctorCheck['status'];
  key: MessageKey;
  params: Params;
  advice?: MessageKey;
  /** Exit code when this is the first failure. */
  exit?: number;
}

export interface Versions {
  cpsd: string;
  node: string;
  os: string;
  /** pcsc-lite's version, or "unknown". */
  pcscd: string;
}

export interface ReaderReport {
  name: string;
  cardPresent: boolean;
  atr: string | null;
  /** FEATURE_VERIFY_PIN_DIRECT (PC/SC part 10); null when the reader could not be asked. */
  pinPad: boolean | null;
  /** The IFD handler serving it, when pcscd's configuration tells; null otherwise. */
  driver: string | null;
}

/** The native PC/SC binding cpsd uses here (`pcscBinding`, CPSD_PCSC_BINDING) and its package's version. */
export interface BindingReport {
  name: string;
  version: string;
}

/** What `daemon.config` answers (docs/protocol.md). */
interface EffectiveConfig {
  port: number;
  allowedOrigins: string[];
  contactlessOrigins: string[];
  limits: { maxConnections: number };
}

const STATUS_KEY = { ok: 'doctor.status.ok', warn: 'doctor.status.warn', fail: 'doctor.status.fail', skip: 'doctor.status.skip' } as const satisfies Record<DoctorCheck['status'], MessageKey>;
const CHECK_KEY = {
  'pcsc-service': 'doctor.check.pcsc-service',
  readers: 'doctor.check.readers',
  card: 'doctor.check.card',
  pin: 'doctor.check.pin',
  'certificate-auth': 'doctor.check.certificate-auth',
  'certificate-sign': 'doctor.check.certificate-sign',
  config: 'doctor.check.config',
  daemon: 'doctor.check.daemon',
  pkcs11: 'doctor.check.pkcs11',
} as const satisfies Record<CheckId, MessageKey>;
const ADVICE: Readonly<Record<string, MessageKey>> = {
  PCSC_UNAVAILABLE: 'doctor.advice.PCSC_UNAVAILABLE',
  READER_NOT_FOUND: 'doctor.advice.READER_NOT_FOUND',
  CARD_ABSENT: 'doctor.advice.CARD_ABSENT',
  UNSUPPORTED_CARD: 'doctor.advice.UNSUPPORTED_CARD',
};

// ------------------------------------------------------------------ versions

function packageVersion(): string {
  // dist/cli/commands/doctor.js or cli/commands/doctor.ts: the package.json of cpsd, two or three levels up.
  for (const up of ['../../../package.json', '../../package.json']) {
    try {
      const pkg = JSON.parse(readFileSync(new URL(up, import.meta.url), 'utf8')) as { name?: string; version?: string };
      if (pkg.name === 'cpsd' && pkg.version) return pkg.version;
    } catch {
      // not this one
    }
  }
  return 'unknown';
}

function run(command: string, args: readonly string[]): Promise<string | undefined> {
  return new Promise((resolve) => {
    execFile(command, args, { timeout: 3000, encoding: 'utf8' }, (error, stdout, stderr) => resolve(error ? undefined : `${stdout}${stderr}`));
  });
}

/** `pcscd --version`, else the package's version (dpkg, rpm); "unknown" rather than a failure. */
export async function pcscdVersion(): Promise<string> {
  const own = /version\s+([0-9]+(?:\.[0-9]+)*)/i.exec((await run('pcscd', ['--version'])) ?? '')?.[1];
  if (own) return own;
  const dpkg = (await run('dpkg-query', ['-W', '-f=${Version}', 'pcscd']))?.trim();
  if (dpkg) return `${dpkg} (dpkg)`;
  const rpm = (await run('rpm', ['-q', '--qf', '%{VERSION}', 'pcsc-lite']))?.trim();
  if (rpm && /^[0-9]/.test(rpm)) return `${rpm} (rpm)`;
  return 'unknown';
}

function osName(): string {
  let pretty = '';
  try {
    pretty = /^PRETTY_NAME="?([^"\n]*)"?/m.exec(readFileSync('/etc/os-release', 'utf8'))?.[1] ?? '';
  } catch {
    // not Linux, or no os-release
  }
  return `${type()} ${release()} ${arch()}${pretty ? ` (${pretty})` : ''}`;
}

async function versions(): Promise<Versions> {
  return { cpsd: packageVersion(), node: process.version, os: osName(), pcscd: await pcscdVersion() };
}

function pcscBinding(): BindingReport {
  try {
    const name = pcscBindingSetting();
    return { name, version: bindingVersion(name) };
  } catch (error) {
    // an invalid CPSD_PCSC_BINDING: the pcsc-service check reports it
    return { name: error instanceof Error ? error.message : String(error), version: 'unknown' };
  }
}

// ------------------------------------------------------------------ readers: PIN pad and driver

/** FRIENDLYNAME → IFD handler from pcscd's reader configuration (its --config, else /etc/reader.conf.d). */
function serialDrivers(): Map<string, string> {
  const drivers = new Map<string, string>();
  let config = '/etc/reader.conf.d';
  try {
    const pid = /\d+/.exec(readFileSync('/run/pcscd/pcscd.pid', 'utf8'))?.[0];
    const args = pid ? readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0') : [];
    const i = args.findIndex((a) => a === '--config' || a === '-c');
    if (i >= 0 && args[i + 1]) config = args[i + 1] ?? config;
  } catch {
    // pcscd's command line is not readable here: the default directory
  }
  try {
    const files = statSync(config).isDirectory() ? readdirSync(config).map((f) => join(config, f)) : [config];
    for (const file of files) {
      const text = readFileSync(file, 'utf8');
      for (const block of text.split(/(?=^\s*FRIENDLYNAME)/m)) {
        const name = /FRIENDLYNAME\s+"?([^"\n]+)"?/.exec(block)?.[1]?.trim();
        const lib = /LIBPATH\s+(\S+)/.exec(block)?.[1];
        if (name && lib) drivers.set(name, basename(lib));
      }
    }
  } catch {
    // no configuration: USB readers only
  }
  return drivers;
}

/** The USB driver bundle, when there is exactly one (then every USB reader is its). */
function usbDriver(): string | null {
  for (const dir of ['/usr/lib/pcsc/drivers', '/usr/lib64/pcsc/drivers', '/usr/local/lib/pcsc/drivers']) {
    if (!existsSync(dir)) continue;
    const bundles = readdirSync(dir).filter((f) => f.endsWith('.bundle'));
    if (bundles.length === 1 && bundles[0]) return bundles[0] === 'ifd-ccid.bundle' ? 'libccid (ifd-ccid.bundle)' : bundles[0];
  }
  return null;
}

async function describeReaders(service: PcscService): Promise<ReaderReport[]> {
  const serial = serialDrivers();
  const usb = usbDriver();
  const reports: ReaderReport[] = [];
  for (const r of service.readers()) {
    let pinPad: boolean | null = null;
    try {
      // Direct mode: the reader itself, with or without a card, without disturbing other applications.
      const connection = await service.connect(r.name, { share: 'direct' });
      try {
        pinPad = (await readerFeatures(connection)).has(FEATURE.VERIFY_PIN_DIRECT);
      } finally {
        await connection.disconnect('leave');
      }
    } catch {
      // the reader cannot be asked (driver without SCardControl in direct mode): pinPad stays unknown
    }
    const friendly = [...serial.keys()].find((n) => r.name === n || r.name.startsWith(`${n} `));
    reports.push({
      name: r.name,
      cardPresent: r.cardPresent,
      atr: r.cardPresent ? toHex(r.atr) : null,
      pinPad,
      driver: friendly ? (serial.get(friendly) ?? null) : usb,
    });
  }
  return reports;
}

// ------------------------------------------------------------------ the daemon

type DaemonProbe = { kind: 'cpsd'; version: string; config: EffectiveConfig | undefined } | { kind: 'other' | 'none' };

/** Is cpsd listening on the port, something else, or nothing? Asked as a local app (no Origin), with its configuration. */
async function probeDaemon(port: number): Promise<DaemonProbe> {
  let rpc: RpcClient | undefined;
  try {
    rpc = await connectDaemon(port, { handshakeTimeoutMs: 2000 });
    const hello = await Promise.race([rpc.call('hello'), sleep(3000, undefined, { ref: false })]);
    if (hello?.result?.protocol !== 'cpsd/1') return { kind: 'other' };
    const answer = await Promise.race([rpc.call('daemon.config'), sleep(3000, undefined, { ref: false })]);
    // An older daemon has no daemon.config (METHOD_NOT_FOUND): the files' view then.
    const config = answer?.result && Array.isArray(answer.result.allowedOrigins) ? (answer.result as unknown as EffectiveConfig) : undefined;
    return { kind: 'cpsd', version: String(hello.result.version ?? '?'), config };
  } catch (error) {
    return { kind: error instanceof DaemonConnectError && error.reason === 'refused' ? 'none' : 'other' };
  } finally {
    await rpc?.close();
  }
}

// ------------------------------------------------------------------ the PKCS#11 module

/** Does something accept connections on the module's socket? (A connect only: no HELLO, no request.) */
function socketListening(path: string): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect(path);
    const done = (ok: boolean): void => {
      socket.destroy();
      resolve(ok);
    };
    socket.once('connect', () => done(true));
    socket.once('error', () => done(false));
    socket.setTimeout(2000, () => done(false));
  });
}

/** The module built or not, where it is registered (system and this user), the daemon's socket listening. */
async function pkcs11Finding(): Promise<Finding> {
  const module = builtModulePath();
  const registered = pkcs11Registrations();
  const places = registered.map((r) => (r.module === module ? `${r.target} (${r.path})` : `${r.target} (${r.path} → ${r.module})`)).join(', ');
  const socket = pkcs11SocketPath();
  if (!existsSync(module)) return { id: 'pkcs11', status: 'warn', key: 'doctor.pkcs11.notBuilt', params: { module }, advice: 'doctor.advice.pkcs11Build' };
  if (registered.length === 0) return { id: 'pkcs11', status: 'warn', key: 'doctor.pkcs11.notRegistered', params: { module }, advice: 'doctor.advice.pkcs11Install' };
  if (!(await socketListening(socket))) return { id: 'pkcs11', status: 'warn', key: 'doctor.pkcs11.notServed', params: { module, places, socket }, advice: 'doctor.advice.pkcs11Serve' };
  return { id: 'pkcs11', status: 'ok', key: 'doctor.pkcs11.ok', params: { module, places, socket } };
}

// ------------------------------------------------------------------ the checks

type DoctorOptions = CommonOptions & { trust?: string[]; crl?: string[]; bundle?: string };

async function runChecks(options: DoctorOptions, readers: ReaderReport[] | undefined, serviceError: unknown): Promise<{ findings: Finding[]; daemon: DaemonProbe }> {
  const findings: Finding[] = [];
  const add = (f: Finding): void => void findings.push(f);
  const codeOf = (e: unknown): string => (e instanceof CpsdError ? e.code : '');
  /** Why the card's checks cannot run, once an earlier one failed. */
  let skipCard: MessageKey | undefined;

  if (!readers) {
    add({ id: 'pcsc-service', status: 'fail', key: 'error.PCSC_UNAVAILABLE', params: {}, advice: ADVICE[codeOf(serviceError)] ?? 'doctor.advice.PCSC_UNAVAILABLE', exit: exitCodeFor(serviceError) });
    add({ id: 'readers', status: 'skip', key: 'doctor.skip.noService', params: {} });
    add({ id: 'card', status: 'skip', key: 'doctor.skip.noService', params: {} });
    skipCard = 'doctor.skip.noService';
  } else {
    add({ id: 'pcsc-service', status: 'ok', key: 'doctor.pcsc.ok', params: {} });
    if (readers.length === 0) {
      add({ id: 'readers', status: 'fail', key: 'doctor.readers.none', params: {}, advice: 'doctor.advice.READER_NOT_FOUND', exit: ExitCode.NO_READER });
      add({ id: 'card', status: 'skip', key: 'doctor.skip.noReader', params: {} });
      skipCard = 'doctor.skip.noReader';
    } else {
      add({ id: 'readers', status: 'ok', key: 'doctor.readers.ok', params: { count: readers.length, names: readers.map((r) => r.name).join(', ') } });
      const holding = readers.filter((r) => r.cardPresent && (options.reader === undefined || r.name === options.reader));
      const first = holding[0];
      if (!first) {
        add({ id: 'card', status: 'fail', key: 'doctor.card.none', params: {}, advice: 'doctor.advice.CARD_ABSENT', exit: ExitCode.NO_CARD });
        skipCard = 'doctor.skip.noCard';
      } else if (!isCpsAtr(Uint8Array.from(Buffer.from(first.atr ?? '', 'hex')))) {
        add({ id: 'card', status: 'fail', key: 'doctor.card.unsupported', params: { atr: first.atr ?? '' }, advice: 'doctor.advice.UNSUPPORTED_CARD', exit: ExitCode.UNSUPPORTED_CARD });
        skipCard = 'doctor.skip.unsupported';
      } else {
        try {
          await withCard(options, 'leave', async ({ card, reader }) => {
            const data = await readPublicData(card, cacheFor(options));
            // No serial here: the checks go into the support bundle.
            add({ id: 'card', status: 'ok', key: 'doctor.card.ok', params: { name: card.kind.name, reader } });
            const pin = await card.pinStatus();
            const tries = { count: pin.triesLeft, max: pin.max };
            if (pin.blocked) add({ id: 'pin', status: 'fail', key: 'doctor.pin.blocked', params: {}, advice: 'doctor.advice.pinBlocked', exit: ExitCode.PIN_BLOCKED });
            else if (pin.triesLeft === 1) add({ id: 'pin', status: 'warn', key: 'doctor.pin.ok', params: tries, advice: 'doctor.advice.pinLastTry' });
            else if (pin.triesLeft < pin.max) add({ id: 'pin', status: 'warn', key: 'doctor.pin.ok', params: tries, advice: 'doctor.advice.pinFew' });
            else add({ id: 'pin', status: 'ok', key: 'doctor.pin.ok', params: tries });
            const trust = options.trust ?? [];
            for (const [which, der] of [
              ['auth', data.authCertificate],
              ['sign', data.signCertificate],
            ] as const) {
              const id = which === 'auth' ? 'certificate-auth' : 'certificate-sign';
              if (!der) {
                add({ id, status: 'skip', key: 'doctor.cert.absent', params: {} });
                continue;
              }
              const c = await checkCertificate(which, der, { trust, crl: options.crl ?? [], now: new Date() });
              const date = c.notAfter.slice(0, 10);
              // The validator's detail names the certificate's subject (the holder): only its code and rule here.
              const rule = (c.detail ?? '').split(':')[0] ?? '';
              if (trust.length === 0 && c.status === 'untrusted') add({ id, status: 'skip', key: 'doctor.skip.noTrust', params: {} });
              else if (c.status === 'valid') add({ id, status: 'ok', key: 'doctor.cert.valid', params: { date } });
              else if (c.status === 'expires-soon') add({ id, status: 'warn', key: 'doctor.cert.expiresSoon', params: { date }, advice: 'doctor.advice.certRenew' });
              else if (c.status === 'revocation-unknown') add({ id, status: 'warn', key: 'doctor.cert.revocationUnknown', params: { detail: rule }, advice: 'doctor.advice.certRevocation' });
              else {
                const advice = c.status === 'untrusted' ? 'doctor.advice.certUntrusted' : 'doctor.advice.certReplace';
                add({ id, status: 'fail', key: 'doctor.cert.invalid', params: { status: c.status ?? 'untrusted', detail: rule }, advice, exit: ExitCode.CERTIFICATE_INVALID });
              }
            }
          });
        } catch (error) {
          // The failure goes to the check it interrupted; the ones after it are skipped.
          const id = (['card', 'pin', 'certificate-auth', 'certificate-sign'] as const).find((c) => !findings.some((f) => f.id === c)) ?? 'card';
          const detail = error instanceof Error ? error.message : String(error);
          add({ id, status: 'fail', key: 'doctor.card.failed', params: { detail }, advice: ADVICE[codeOf(error)] ?? 'doctor.advice.cardFailed', exit: exitCodeFor(error) });
          skipCard = 'doctor.skip.cardFailed';
        }
      }
    }
  }
  for (const id of ['pin', 'certificate-auth', 'certificate-sign'] as const) {
    if (!findings.some((f) => f.id === id)) add({ id, status: 'skip', key: skipCard ?? 'doctor.skip.cardFailed', params: {} });
  }

  let port = DEFAULT_PORT;
  let files: { port: number; origins: number } | undefined;
  let configError: unknown;
  try {
    const config = loadConfig();
    port = config.port;
    files = { port: config.port, origins: config.allowedOrigins.length };
  } catch (error) {
    configError = error;
  }
  const daemon = await probeDaemon(port);
  if (configError !== undefined) {
    const detail = configError instanceof Error ? configError.message : String(configError);
    add({ id: 'config', status: 'fail', key: 'doctor.config.invalid', params: { detail }, advice: 'doctor.advice.config', exit: exitCodeFor(configError) });
  } else if (daemon.kind === 'cpsd' && daemon.config) {
    const c = daemon.config;
    add({ id: 'config', status: 'ok', key: 'doctor.config.daemon', params: { count: c.allowedOrigins.length, port: c.port, contactless: c.contactlessOrigins.length, maxConnections: c.limits.maxConnections } });
  } else if (files) {
    add({ id: 'config', status: 'ok', key: 'doctor.config.files', params: { count: files.origins, port: files.port } });
  }
  if (daemon.kind === 'cpsd') add({ id: 'daemon', status: 'ok', key: 'doctor.daemon.ok', params: { version: daemon.version, port } });
  else if (daemon.kind === 'other') add({ id: 'daemon', status: 'fail', key: 'doctor.daemon.other', params: { port }, advice: 'doctor.advice.daemonOther', exit: ExitCode.FAILURE });
  else add({ id: 'daemon', status: 'warn', key: 'doctor.daemon.none', params: { port }, advice: 'doctor.advice.daemonNone' });
  add(await pkcs11Finding());
  findings.sort((a, b) => CHECK_IDS.indexOf(a.id) - CHECK_IDS.indexOf(b.id));
  return { findings, daemon };
}

// ------------------------------------------------------------------ output

function asJson(f: Finding): DoctorCheck {
  return { id: f.id, status: f.status, detail: t(f.key, f.params, 'en'), ...(f.advice ? { advice: t(f.advice, {}, 'en') } : {}) };
}

function yesNo(value: boolean | null, l: Lang): string {
  return value === null ? t('doctor.unknown', {}, l) : t(value ? 'doctor.yes' : 'doctor.no', {}, l);
}

/** The screen: versions, readers, then one line per check (advice underneath), in language `l`. */
export function renderDoctor(
  v: Versions,
  readers: ReaderReport[] | undefined,
  findings: readonly Finding[],
  l: Lang = lang(),
  binding?: BindingReport,
  policies?: InstalledPolicy[],
): string {
  const lines: string[] = [t('doctor.title', {}, l), '', t('doctor.section.versions', {}, l)];
  const unknown = (s: string): string => (s === 'unknown' ? t('doctor.unknown', {}, l) : s);
  const rows: [string, string][] = [
    ['cpsd', unknown(v.cpsd)],
    ['Node.js', v.node],
    [t('doctor.version.os', {}, l), v.os],
    ['pcscd', unknown(v.pcscd)],
  ];
  if (binding) rows.push([t('doctor.version.pcscBinding', {}, l), `${binding.name} ${unknown(binding.version)}`]);
  const width = Math.max(...rows.map(([k]) => k.length));
  for (const [k, value] of rows) lines.push(`  ${k.padEnd(width)}  ${value}`);
  lines.push('', t('doctor.section.readers', {}, l));
  if (!readers || readers.length === 0) lines.push(`  ${t('doctor.reader.none', {}, l)}`);
  for (const r of readers ?? []) {
    const card = r.cardPresent ? t('readers.card', { atr: r.atr || t('readers.mute', {}, l) }, l) : t('readers.noCard', {}, l);
    lines.push(`  ${r.name}: ${t('doctor.reader.line', { card, pinPad: yesNo(r.pinPad, l), driver: r.driver ?? t('doctor.unknown', {}, l) }, l)}`);
  }
  lines.push('', t('doctor.section.policies', {}, l));
  if (policies === undefined) lines.push(`  ${t('doctor.policies.notLooked', {}, l)}`);
  else if (policies.length === 0) lines.push(`  ${t('doctor.policies.none', {}, l)}`);
  for (const p of policies ?? []) lines.push(`  ${p.browser}: ${p.allowed.join(', ')} (${p.file})`);
  lines.push('', t('doctor.section.checks', {}, l));
  const label = (s: DoctorCheck['status']): string => `[${t(STATUS_KEY[s], {}, l)}]`;
  const pad = Math.max(...(['ok', 'warn', 'fail', 'skip'] as const).map((s) => label(s).length));
  for (const f of findings) {
    lines.push(`  ${label(f.status).padEnd(pad)} ${t(CHECK_KEY[f.id], {}, l)}: ${t(f.key, f.params, l)}`);
    if (f.advice) lines.push(`  ${' '.repeat(pad)} → ${t(f.advice, {}, l)}`);
  }
  return `${lines.join('\n')}\n`;
}

export async function doctor(options: DoctorOptions): Promise<number> {
  let serviceError: unknown;
  const [v, readers] = await Promise.all([
    versions(),
    withService(describeReaders).catch((e: unknown) => {
      serviceError = e;
      return undefined;
    }),
  ]);
  const { findings, daemon } = await runChecks(options, readers, serviceError);
  const checks = findings.map(asJson);
  const binding = pcscBinding();
  const policies = installedPolicies();
  if (options.bundle) {
    // A support file with nothing personal: versions, readers, ATRs, the checks. No PIN, no identity, no serial.
    const bundle = {
      format: 'cpsd-doctor-bundle/1',
      createdAt: new Date().toISOString(),
      versions: v,
      pcscBinding: binding,
      platform: process.platform,
      lang: lang(),
      readers: readers ?? [],
      browserPolicies: policies ?? null,
      checks,
      daemon: daemon.kind === 'cpsd' ? { running: true, version: daemon.version, config: daemon.config ?? null } : { running: false },
    };
    writeFileSync(options.bundle, `${JSON.stringify(bundle, null, 2)}\n`, { mode: 0o600 });
  }
  if (options.json) json({ checks, versions: v, pcscBinding: binding, readers: readers ?? [], browserPolicies: policies ?? null });
  else {
    out(renderDoctor(v, readers, findings, lang(), binding, policies));
    if (options.bundle) out(t('doctor.bundleWritten', { path: options.bundle }));
  }
  return findings.find((f) => f.status === 'fail')?.exit ?? ExitCode.OK;
}
