/** `cpsd status | identity | certs | pin | doctor`: human output by default, `--json` for scripts. */
import { X509Certificate } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import { isCpsAtr } from '../cards/atr-table.js';
import { FileCardCache, readPublicData, type PublicCardData } from '../cards/public-data.js';
import { CpsdError } from '../core/errors.js';
import { toHex } from '../core/bytes.js';
import { DEFAULT_PORT, loadConfig } from '../daemon/config.js';
import { TrustError, type TrustErrorCode } from '../pkcs/trust-types.js';
import { validateCertificate } from '../pkcs/validate.js';
import { certificateInfo, holderIdentity, practiceSituation, type HolderIdentity, type PracticeSituation } from '../pkcs/holder.js';
import { withCard, withService, withSessions } from './card-session.js';
import { ExitCode, exitCodeFor } from './exit-codes.js';
import { lang, t } from './i18n.js';
import { readPin } from './prompt.js';
import type { Pin } from '../cards/pin.js';

export interface CommonOptions {
  json?: boolean;
  reader?: string;
  /** Disable the public-data cache (read everything from the card). */
  cache?: boolean;
}

const out = (s: string): void => void process.stdout.write(s.endsWith('\n') ? s : `${s}\n`);
const json = (value: unknown): void => out(JSON.stringify(value, null, 2));

function cacheFor(options: CommonOptions): FileCardCache | undefined {
  return options.cache === false ? undefined : new FileCardCache();
}

function cardTypeOf(data: PublicCardData): string | null {
  const bytes = data.data.CPS_ID_CARD;
  if (!bytes) return null;
  const text = new TextDecoder().decode(bytes);
  return ['CPS', 'CPF', 'CPE', 'CPA'].find((c) => text.includes(c)) ?? null;
}

export async function status(options: CommonOptions): Promise<number> {
  return withSessions(async (sessions, twins) => {
    const result = await sessions.run(
      async (card, { reader }) => {
        const data = await readPublicData(card, cacheFor(options), { signCertificate: false });
        const pin = await card.pinStatus();
        return {
          reader,
          atr: toHex(card.atr),
          cardType: cardTypeOf(data),
          generation: card.kind.generation,
          interface: card.kind.interface,
          name: card.kind.name,
          serial: data.serial,
          pin: { triesLeft: pin.triesLeft, max: pin.max, blocked: pin.blocked },
        };
      },
      { reader: options.reader, retryOnReset: true },
    );
    const { name, ...shown } = result;
    const same = await twins.sameCardAs(result.reader, result.serial);
    if (options.json) json({ ...shown, sameCardAs: same });
    else {
      out(`${t('reader')}: ${result.reader}`);
      out(`${t('card')}: ${result.cardType ?? '?'} ${name} (${result.interface}), ${t('serial').toLowerCase()} ${result.serial}`);
      if (same.length > 0) out(`${t('sameCard')}: ${same.join(', ')}`);
      out(`${t('pin')}: ${result.pin.blocked ? t('blocked') : `${result.pin.triesLeft}/${result.pin.max} ${t('triesLeft')}`}`);
    }
    return result.pin.blocked ? ExitCode.PIN_BLOCKED : ExitCode.OK;
  });
}

async function readIdentity(options: CommonOptions): Promise<{ identity: HolderIdentity; data: PublicCardData }> {
  return withCard(options, 'leave', async ({ card }) => {
    const cache = cacheFor(options);
    // The identity needs the authentication certificate only; the signing one is its fallback.
    const lean = await readPublicData(card, cache, { signCertificate: false });
    const data = lean.authCertificate ? lean : await readPublicData(card, cache);
    const certificate = data.authCertificate ?? data.signCertificate;
    if (!certificate) throw new CardDataError('the card holds no certificate');
    return { identity: holderIdentity({ certificate, serial: data.serial, data: data.data }), data };
  });
}

export class CardDataError extends CpsdError {
  readonly code = 'CARD_DATA_INVALID';
}

/** The practice situations, after the PIN (they are PIN-protected); the card is reset afterwards. */
async function readSituations(options: CommonOptions & { allowLastTry?: boolean }): Promise<PracticeSituation[]> {
  // Typed before the card is taken: nobody waits for the card while a person types.
  const pin = await readPin(t('enterPin'));
  return withCard(options, 'reset', async ({ card }) => {
    await readPublicData(card, cacheFor(options), { signCertificate: false }); // the card's PIN rule, from its AODF
    await card.verifyPin(pin, { allowLastTry: options.allowLastTry ?? false });
    const out: PracticeSituation[] = [];
    for (const label of await card.situationLabels()) {
      const s = practiceSituation(label, (await card.dataObject(label)) ?? new Uint8Array(0));
      if (s) out.push(s);
    }
    return out;
  });
}

export async function identity(options: CommonOptions & { situations?: boolean; allowLastTry?: boolean }): Promise<number> {
  const { identity: id } = await readIdentity(options);
  const situations = options.situations ? await readSituations(options) : undefined;
  if (options.json) {
    json(situations ? { ...id, situations } : id);
    return ExitCode.OK;
  }
  out(`${t('holder')}: ${id.givenName} ${id.surname}`);
  out(`${t('nationalId')}: ${id.nationalId} (${id.idKind})`);
  if (id.profession) out(`${t('profession')}: ${id.profession.label}${id.profession.code ? ` (${id.profession.code})` : ''}`);
  if (id.specialty) out(`${t('specialty')}: ${id.specialty}`);
  out(`${t('card')}: ${id.cardType ?? '?'}, ${t('serial').toLowerCase()} ${id.serial}`);
  out(`${t('validUntil')}: ${id.notAfter.slice(0, 10)}`);
  for (const st of situations ?? []) {
    out(`${t('situation')} ${st.index}: ${st.structureName} (${st.structureIdKind} ${st.structureId}), ${st.sector}`);
  }
  return ExitCode.OK;
}

export interface CertsOptions extends CommonOptions {
  pem?: boolean;
  verify?: boolean;
  trust?: string[];
  crl?: string[];
  now?: string;
}

export interface CertificateCheck {
  which: 'auth' | 'sign';
  subject: Record<string, string>;
  issuer: Record<string, string>;
  serialNumber: string;
  notBefore: string;
  notAfter: string;
  status?: 'valid' | 'expired' | 'not-yet-valid' | 'revoked' | 'revocation-unknown' | 'untrusted' | 'expires-soon';
  detail?: string;
}

function loadCertificates(files: readonly string[]): X509Certificate[] {
  return files.flatMap((f) => {
    const bytes = readFileSync(f);
    const text = bytes.toString('latin1');
    if (!text.includes('-----BEGIN CERTIFICATE-----')) return [new X509Certificate(bytes)];
    return (text.match(/-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g) ?? []).map((p) => new X509Certificate(p));
  });
}

/** Trust files as IT gives them: self-signed ones are anchors, the others intermediates (or anchors if no root is given). */
function trustOf(files: readonly string[]): { trustAnchors: X509Certificate[]; intermediates: X509Certificate[] } {
  const all = loadCertificates(files);
  const roots = all.filter((c) => c.issuer === c.subject);
  return roots.length > 0 ? { trustAnchors: roots, intermediates: all.filter((c) => !roots.includes(c)) } : { trustAnchors: all, intermediates: [] };
}

const STATUS: Partial<Record<TrustErrorCode, NonNullable<CertificateCheck['status']>>> = {
  CERT_EXPIRED: 'expired',
  CERT_NOT_YET_VALID: 'not-yet-valid',
  CERT_REVOKED: 'revoked',
  REVOCATION_UNKNOWN: 'revocation-unknown',
};

/**
 * Checks a card certificate with the one validator (pkcs/validate.ts): CRL files given are used as they
 * are; without them, revocation is asked of the certificate's OCSP responder, then its CRL.
 */
function describeCertificate(which: 'auth' | 'sign', der: Uint8Array): CertificateCheck {
  const info = certificateInfo(der);
  return { which, subject: info.subject, issuer: info.issuer, serialNumber: info.serialNumber, notBefore: info.notBefore.toISOString(), notAfter: info.notAfter.toISOString() };
}

export async function checkCertificate(which: 'auth' | 'sign', der: Uint8Array, options: { trust: readonly string[]; crl: readonly string[]; now: Date }): Promise<CertificateCheck> {
  const result = describeCertificate(which, der);
  const crls = options.crl.map((f) => new Uint8Array(readFileSync(f)));
  try {
    await validateCertificate(der, {
      ...trustOf(options.trust),
      now: options.now,
      purpose: which === 'auth' ? 'authentication' : 'any',
      // IT checks the card's certificates here, not a login: the contactless one is reported, not refused.
      allowContactless: true,
      ...(crls.length > 0 ? { crls, revocation: 'crl', crl: { fetch: false } } : {}),
    });
  } catch (error) {
    if (!(error instanceof TrustError)) throw error;
    return { ...result, status: STATUS[error.code] ?? 'untrusted', detail: `${error.code} (${error.rule}): ${error.message}` };
  }
  if (new Date(result.notAfter).getTime() - options.now.getTime() < 30 * 86_400_000) {
    return { ...result, status: 'expires-soon', detail: `expires on ${result.notAfter.slice(0, 10)}` };
  }
  return { ...result, status: 'valid' };
}

export async function certs(options: CertsOptions): Promise<number> {
  const data = await withCard(options, 'leave', ({ card }) => readPublicData(card, cacheFor(options)));
  const pairs = [
    ['auth', data.authCertificate],
    ['sign', data.signCertificate],
  ] as const;
  if (options.pem) {
    for (const [, der] of pairs) if (der) out(new X509Certificate(der).toString());
    return ExitCode.OK;
  }
  const now = options.now ? new Date(options.now) : new Date();
  const checks: CertificateCheck[] = [];
  for (const [which, der] of pairs) {
    if (!der) continue;
    checks.push(options.verify ? await checkCertificate(which, der, { trust: options.trust ?? [], crl: options.crl ?? [], now }) : describeCertificate(which, der));
  }
  if (options.json) json(checks);
  else {
    for (const c of checks) {
      const label = c.which === 'auth' ? t('authentication') : t('signature');
      out(`${t('certificate')} ${label}: CN=${c.subject.CN ?? ''} SN=${c.subject.SN ?? ''} GN=${c.subject.GN ?? ''}`);
      out(`  ${c.notBefore.slice(0, 10)} → ${c.notAfter.slice(0, 10)}, serial ${c.serialNumber}`);
      if (c.status) out(`  ${c.status}${c.detail ? `: ${c.detail}` : ''}`);
    }
  }
  if (!options.verify) return ExitCode.OK;
  return checks.every((c) => c.status === 'valid' || c.status === 'expires-soon') ? ExitCode.OK : ExitCode.CERTIFICATE_INVALID;
}

/** What a PIN command needs typed, asked before the card is taken (nobody waits while a person types). */
async function typedPins(action: 'verify' | 'change' | 'unblock'): Promise<{ current: Pin; next?: Pin }> {
  if (action === 'verify') return { current: await readPin(t('enterPin')) };
  const current = await readPin(t(action === 'change' ? 'enterPin' : 'enterPuk'));
  const next = await readPin(t('enterNewPin'));
  if (!next.equals(await readPin(t('confirmPin')))) throw new PinMismatchError(t('mismatch'));
  return { current, next };
}

export async function pin(action: 'verify' | 'change' | 'unblock', options: CommonOptions & { allowLastTry?: boolean }): Promise<number> {
  const allowLastTry = options.allowLastTry ?? false;
  // A PIN-pad reader: the PIN is typed on the reader and never crosses this process.
  const pad = action === 'verify' && (await withCard(options, 'leave', async ({ pinPad }) => pinPad !== undefined));
  const pins = pad ? undefined : await typedPins(action);
  // Reset the card afterwards: a verified PIN never outlives the command.
  return withCard(
    options,
    'reset',
    async ({ card, pinPad }) => {
      await readPublicData(card, cacheFor(options), { signCertificate: false }); // the card's PIN rule, from its AODF
      if (pad && pinPad) {
        process.stderr.write(t('enterPinOnReader'));
        await card.verifyPinOnReader(pinPad, { allowLastTry });
      } else if (pins && action === 'verify') await card.verifyPin(pins.current, { allowLastTry });
      else if (pins?.next && action === 'change') await card.changePin(pins.current, pins.next, { allowLastTry });
      else if (pins?.next) await card.unblockPin(pins.current, pins.next);
      const status = await card.pinStatus();
      if (options.json) json({ ok: true, pin: { triesLeft: status.triesLeft, max: status.max, blocked: status.blocked } });
      else out(t(action === 'verify' ? 'pinOk' : action === 'change' ? 'pinChanged' : 'pinUnblocked'));
      return ExitCode.OK;
    },
    pad ? { timeoutMs: 90_000 } : {},
  );
}

export class PinMismatchError extends CpsdError {
  readonly code = 'PIN_MISMATCH';
}

export interface DoctorCheck {
  id: string;
  status: 'ok' | 'warn' | 'fail' | 'skip';
  detail: string;
}

const ADVICE: Readonly<Record<string, string>> = {
  PCSC_UNAVAILABLE: 'start the smart-card service: sudo systemctl start pcscd (Windows: the "Smart Card" service)',
  READER_NOT_FOUND: 'plug in a smart-card reader, or check its driver (libccid on Linux)',
  CARD_ABSENT: 'insert the CPS card, chip first and facing up',
  UNSUPPORTED_CARD: 'this card is not a CPS/CPE/CPF/CPA card supported by cpsd',
};

/** Is cpsd listening on the port, something else, or nothing? (A hello without Origin, as a local app.) */
async function probeDaemon(port: number): Promise<{ kind: 'cpsd'; version: string } | { kind: 'other' | 'none' }> {
  const { default: WebSocket } = await import('ws');
  return new Promise((resolve) => {
    const ws = new WebSocket(`ws://127.0.0.1:${port}`, { handshakeTimeout: 2000 });
    const done = (v: { kind: 'cpsd'; version: string } | { kind: 'other' | 'none' }): void => {
      ws.removeAllListeners();
      ws.on('error', () => undefined);
      ws.terminate();
      resolve(v);
    };
    ws.on('open', () => ws.send(JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'hello', params: {} })));
    ws.on('message', (d) => {
      try {
        const m = JSON.parse(d.toString()) as { result?: { protocol?: string; version?: string } };
        done(m.result?.protocol === 'cpsd/1' ? { kind: 'cpsd', version: m.result.version ?? '?' } : { kind: 'other' });
      } catch {
        done({ kind: 'other' });
      }
    });
    ws.on('unexpected-response', () => done({ kind: 'other' }));
    ws.on('error', (e: NodeJS.ErrnoException) => done({ kind: e.code === 'ECONNREFUSED' ? 'none' : 'other' }));
    setTimeout(() => done({ kind: 'other' }), 3000).unref();
  });
}

export async function doctor(options: CommonOptions & { trust?: string[]; crl?: string[]; bundle?: string }): Promise<number> {
  const checks: DoctorCheck[] = [];
  const add = (id: string, status: DoctorCheck['status'], detail: string): void => void checks.push({ id, status, detail });
  let firstFailure: unknown;
  const failWith = (id: string, error: unknown): void => {
    firstFailure ??= error;
    const code = error instanceof CpsdError ? error.code : '';
    add(id, 'fail', `${error instanceof Error ? error.message : String(error)}${ADVICE[code] ? ` — ${ADVICE[code]}` : ''}`);
  };
  const readers = await withService(async (s) => s.readers()).catch((e: unknown) => {
    failWith('pcsc-service', e);
    return undefined;
  });
  if (readers) {
    add('pcsc-service', 'ok', 'PC/SC service running');
    if (readers.length === 0) failWith('readers', Object.assign(new Error('no reader found'), { code: 'READER_NOT_FOUND' }));
    else add('readers', 'ok', readers.map((r) => r.name).join(', '));
    const withCardPresent = readers.filter((r) => r.cardPresent && (options.reader === undefined || r.name === options.reader));
    if (readers.length > 0 && withCardPresent.length === 0) add('card', 'fail', `no card — ${ADVICE.CARD_ABSENT}`);
    else if (withCardPresent[0] && !isCpsAtr(withCardPresent[0].atr)) {
      add('card', 'fail', `ATR ${toHex(withCardPresent[0].atr)} — ${ADVICE.UNSUPPORTED_CARD}`);
    } else if (withCardPresent[0]) {
      try {
        await withCard(options, 'leave', async ({ card, reader }) => {
          const data = await readPublicData(card, cacheFor(options));
          add('card', 'ok', `${card.kind.name} in ${reader}, serial ${data.serial}`);
          const pinStatus = await card.pinStatus();
          if (pinStatus.blocked) add('pin', 'fail', 'PIN blocked — unblock it with the unblocking code: cpsd pin unblock');
          else if (pinStatus.triesLeft < pinStatus.max) add('pin', 'warn', `${pinStatus.triesLeft} tries left`);
          else add('pin', 'ok', `${pinStatus.triesLeft}/${pinStatus.max} tries left`);
          const trust = options.trust ?? [];
          for (const [which, der] of [
            ['auth', data.authCertificate],
            ['sign', data.signCertificate],
          ] as const) {
            if (!der) continue;
            const c = await checkCertificate(which, der, { trust, crl: options.crl ?? [], now: new Date() });
            const id = `certificate-${which}`;
            if (trust.length === 0 && c.status === 'untrusted') add(id, 'skip', 'no trust anchor configured (--trust)');
            else if (c.status === 'valid') add(id, 'ok', `valid until ${c.notAfter.slice(0, 10)}`);
            else if (c.status === 'expires-soon') add(id, 'warn', `${c.detail ?? ''} — order a renewal`);
            else if (c.status === 'revocation-unknown') add(id, 'warn', `${c.detail ?? ''} — give the CRLs with --crl, or let this machine reach the OCSP responder`);
            else add(id, 'fail', `${c.status ?? ''}: ${c.detail ?? ''} — the card must be replaced`);
          }
        });
      } catch (error) {
        failWith('card', error);
      }
    }
  }
  let port = DEFAULT_PORT;
  try {
    const config = loadConfig();
    port = config.port;
    add('config', 'ok', `valid (port ${config.port}, ${config.allowedOrigins.length} allowed origin(s))`);
  } catch (error) {
    failWith('config', error);
  }
  const daemon = await probeDaemon(port);
  if (daemon.kind === 'cpsd') add('daemon', 'ok', `cpsd ${daemon.version} answers on 127.0.0.1:${port}`);
  else if (daemon.kind === 'other') add('daemon', 'fail', `port ${port} is used by another program — free it or set "port" in the configuration`);
  else add('daemon', 'warn', `cpsd is not running on port ${port} — start it: systemctl --user start cpsd (or cpsd serve)`);
  if (options.bundle) {
    // A support archive with nothing secret: versions, readers, ATRs, the checks. No PIN, no identity.
    writeFileSync(
      options.bundle,
      JSON.stringify({ cpsd: 'doctor bundle', node: process.version, platform: process.platform, lang: lang(), checks, readers: readers?.map((r) => ({ name: r.name, cardPresent: r.cardPresent, atr: r.cardPresent ? toHex(r.atr) : null })) ?? [] }, null, 2),
      { mode: 0o600 },
    );
  }
  if (options.json) json({ checks });
  else for (const c of checks) out(`[${t(c.status === 'ok' ? 'ok' : c.status === 'warn' ? 'warn' : c.status === 'fail' ? 'fail' : 'skip')}] ${c.id}: ${c.detail}`);
  if (!checks.some((c) => c.status === 'fail')) return ExitCode.OK;
  if (firstFailure) return exitCodeFor(firstFailure);
  const failed = checks.find((c) => c.status === 'fail');
  if (failed?.id === 'card') return failed.detail.startsWith('ATR') ? ExitCode.UNSUPPORTED_CARD : ExitCode.NO_CARD;
  if (failed?.id === 'pin') return ExitCode.PIN_BLOCKED;
  return ExitCode.CERTIFICATE_INVALID;
}

