/**
 * `cpsd sign FILE` and `cpsd verify-signature FILE`: `cpsd/sign` on the command line (docs/signing.md,
 * "From the command line"). Signing reads the card's signing certificate (a card seen before: from its
 * cache entry), prepares the PAdES or CAdES signature before the PIN is asked (a bad document is refused
 * first), then in one exclusive job checks it is the same card (its serial), verifies the PIN and has the card sign
 * the 32-byte hash; the card is reset afterwards, so no verified PIN outlives the command.
 */
import { X509Certificate } from 'node:crypto';
import { createReadStream, existsSync, openSync, readSync, closeSync, readdirSync, readFileSync, renameSync, statSync, writeFileSync, rmSync } from 'node:fs';
import { basename, dirname, extname, join, resolve } from 'node:path';
import type { CpsCard } from '../../cards/card.js';
import { readPublicData, resumeCard, seenCard, type CardCache, type SeenCard } from '../../cards/public-data.js';
import type { PinPad } from '../../cards/session.js';
import type { Pin } from '../../cards/pin.js';
import { CpsdError } from '../../core/errors.js';
import { t } from '../../core/i18n.js';
import { certificateInfo } from '../../pkcs/holder.js';
import { TrustError, type ValidatedHolder } from '../../pkcs/trust-types.js';
import { finishCades, finishPdf, prepareCades, preparePdf, verifyCades, verifyPdf, type SignatureVerifyOptions } from '../../sign/index.js';
import { withSessions } from '../card-session.js';
import { ExitCode } from '../exit-codes.js';
import { NoInputError, readPin } from '../prompt.js';
import { cacheFor, json, out, type CommonOptions } from '../output.js';

export type SignCommandErrorCode = 'NO_SIGNING_KEY' | 'CARD_CHANGED' | 'OUTPUT_EXISTS' | 'CONTENT_MISSING';

/** What `cpsd sign` refuses that is neither the document's fault nor the card's protocol (docs/errors.md). */
export class SignCommandError extends CpsdError {
  readonly code: SignCommandErrorCode;

  constructor(code: SignCommandErrorCode, message: string, options?: ErrorOptions) {
    super(message, options);
    this.code = code;
  }
}

export type SignatureFormat = 'pades' | 'cades';

export interface SignOptions extends CommonOptions {
  output?: string;
  format?: SignatureFormat;
  /** The signer's name written in the PDF signature (/Name); default: given name and surname of the certificate. */
  name?: string;
  reason?: string;
  location?: string;
  /** CA certificates to embed (PEM or DER files): the IGC-Santé intermediate, so verifiers can build the path. */
  chain?: string[];
  force?: boolean;
  allowLastTry?: boolean;
}

const HEADER = Buffer.from('%PDF-');

/** The first KiB of the file (ENOENT, EISDIR… as Node throws them: the CLI names the file). */
function head(file: string): Buffer {
  const fd = openSync(file, 'r');
  try {
    const buffer = Buffer.alloc(1024);
    return buffer.subarray(0, readSync(fd, buffer, 0, 1024, 0));
  } finally {
    closeSync(fd);
  }
}

/** PAdES for a PDF (its header, or a .pdf name: a .pdf that is no PDF is then refused, not signed as CAdES). */
export function formatOf(file: string, asked: SignatureFormat | undefined): SignatureFormat {
  const start = head(file);
  if (asked) return asked;
  return start.indexOf(HEADER) !== -1 || extname(file).toLowerCase() === '.pdf' ? 'pades' : 'cades';
}

/** `ordonnance.pdf` → `ordonnance-signed.pdf`; any other file → `FILE.p7s`. */
export function defaultOutput(file: string, format: SignatureFormat): string {
  if (format === 'cades') return `${file}.p7s`;
  const ext = extname(file);
  return join(dirname(file), `${basename(file, ext)}-signed${ext.toLowerCase() === '.pdf' ? ext : '.pdf'}`);
}

/** Certificates of PEM or DER files. */
function certificatesIn(file: string): Uint8Array[] {
  const bytes = readFileSync(file);
  const text = bytes.toString('latin1');
  if (!text.includes('-----BEGIN CERTIFICATE-----')) return [new Uint8Array(new X509Certificate(bytes).raw)];
  return (text.match(/-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g) ?? []).map((p) => new Uint8Array(new X509Certificate(p).raw));
}

/** Written beside the target then renamed: a failure never leaves half a file, nor a damaged input. */
function writeAtomically(file: string, bytes: Uint8Array): void {
  const tmp = `${file}.${process.pid}.tmp`;
  try {
    writeFileSync(tmp, bytes, { flag: 'wx' });
    renameSync(tmp, file);
  } catch (error) {
    rmSync(tmp, { force: true });
    throw error;
  }
}

const holderName = (subject: Record<string, string>): string => [subject.GN, subject.SN].filter(Boolean).join(' ') || (subject.CN ?? '');

interface Prepared {
  hash: Uint8Array;
  finish: (signature: Uint8Array) => Uint8Array;
}

async function prepare(file: string, format: SignatureFormat, certificate: Uint8Array, options: SignOptions, signer: string): Promise<Prepared> {
  const chain = (options.chain ?? []).flatMap(certificatesIn);
  if (format === 'cades') {
    const { hash, state } = await prepareCades(createReadStream(file), { signerCertificate: certificate, chain });
    return { hash, finish: (signature) => finishCades(state, signature) };
  }
  const pdf = new Uint8Array(readFileSync(file));
  const { hash, state } = await preparePdf(pdf, {
    signerCertificate: certificate,
    chain,
    name: options.name ?? signer,
    ...(options.reason !== undefined ? { reason: options.reason } : {}),
    ...(options.location !== undefined ? { location: options.location } : {}),
  });
  return { hash, finish: (signature) => finishPdf(state, signature, pdf) };
}

/** The card's signing certificate, serial and directories (a card seen before: EF.SN.ICC + EF_ACTUA, the certificate from its cache entry). */
export async function signerOf(card: CpsCard, cache: CardCache | undefined): Promise<Signer> {
  const data = await readPublicData(card, cache);
  if (!data.signCertificate) throw new SignCommandError('NO_SIGNING_KEY', 'this card has no signing key (a contactless card, or a card without signature certificate)');
  return { certificate: data.signCertificate, ...(await seenCard(card, data)) };
}

/** What the certificate job hands to the signature job: the certificate the document was prepared with, and its card. */
export interface Signer extends SeenCard {
  certificate: Uint8Array;
}

/**
 * The exclusive job of a signature: the same card as `signer` (its chip serial: the certificate and the
 * directories are those the first job read or checked seconds before), the PIN verified (typed: dropped
 * from `pin` as the job starts, whatever happens next; or on the reader's PIN pad), then PSO: COMPUTE
 * DIGITAL SIGNATURE of the 32-byte hash with the signing key. Another card gets no VERIFY.
 */
export async function signHashOnCard(
  card: CpsCard,
  signer: Signer,
  hash: Uint8Array,
  pin: { value: Pin | undefined } | { pad: PinPad | undefined },
  allowLastTry: boolean,
): Promise<Uint8Array> {
  // Taken from `pin` first: never kept after this job, whether the VERIFY is sent or not.
  const typed = 'value' in pin ? pin.value : undefined;
  if ('value' in pin) pin.value = undefined;
  if (!(await resumeCard(card, signer))) {
    throw new SignCommandError('CARD_CHANGED', 'the card in the reader is not the one whose certificate was read: sign again');
  }
  if ('value' in pin) {
    if (!typed) throw new NoInputError('the PIN typed was already given to a VERIFY');
    await card.verifyPin(typed, { allowLastTry });
  } else if (pin.pad) {
    process.stderr.write(t('enterPinOnReader'));
    await card.verifyPinOnReader(pin.pad, { allowLastTry });
  } else {
    throw new SignCommandError('CARD_CHANGED', 'the reader lost its PIN pad: sign again');
  }
  return card.sign('sha256', { digest: hash });
}

export async function sign(file: string, options: SignOptions): Promise<number> {
  const format = formatOf(file, options.format);
  const output = options.output ?? defaultOutput(file, format);
  // Never over a file silently (the input least of all): --force says so, and the write is atomic.
  if (!options.force && existsSync(output)) {
    throw new SignCommandError('OUTPUT_EXISTS', `${output} exists: give another -o, or --force to replace it`);
  }
  const allowLastTry = options.allowLastTry ?? false;
  return withSessions(async (sessions, twins) => {
    // The PIN goes to the contact side of a card a dual-interface reader also shows contactless.
    const reader = await twins.contactReader(options.reader);
    // 1. The signing certificate (a card seen before: EF.SN.ICC + EF_ACTUA, the certificate from its cache entry).
    const cache = cacheFor(options);
    const look = await sessions.run(async (card, { pinPad }) => ({ ...(await signerOf(card, cache)), pad: pinPad !== undefined }), { reader, after: 'leave', retryOnReset: true });
    const certificate = look.certificate;
    const subject = certificateInfo(certificate).subject;
    const signer = holderName(subject);
    // 2. The document: refused here (damaged, encrypted…) before anyone types a PIN.
    const prepared = await prepare(file, format, certificate, options, signer);
    // 3. The PIN, typed before the card is taken (nobody waits while a person types), as `cpsd pin verify` reads it.
    const pin = look.pad ? undefined : { value: await readPin(t('enterPin')) as Pin | undefined };
    const signature = await sessions.run(
      (card, { pinPad }) => signHashOnCard(card, look, prepared.hash, pin ?? { pad: pinPad }, allowLastTry),
      { reader, after: 'reset', exclusive: true, retryOnReset: false, ...(look.pad ? { timeoutMs: 90_000 } : {}) },
    );
    writeAtomically(output, prepared.finish(signature));
    if (options.json) json({ ok: true, file: output, format, signer: { surname: subject.SN ?? null, givenName: subject.GN ?? null, nationalId: subject.CN ?? null } });
    else out(t(format === 'pades' ? 'sign.donePades' : 'sign.doneCades', { file: output, signer }));
    return ExitCode.OK;
  });
}

export interface VerifySignatureOptions {
  json?: boolean;
  trust: string[];
  content?: string;
  now?: string;
}

/**
 * Trust from folders or files: certificates (PEM or DER; self-signed ones are anchors, the others
 * intermediates) and CRLs (`*.crl`, DER). A folder laid out as docs/integration.md says (anchors/,
 * intermediates/, crls/) is read that way. With CRLs, revocation is judged by them alone (offline);
 * otherwise by the certificate's OCSP responder, then its CRL distribution point.
 */
export function trustFrom(paths: readonly string[]): SignatureVerifyOptions {
  const anchors: Uint8Array[] = [];
  const others: Uint8Array[] = [];
  const crls: Uint8Array[] = [];
  const take = (file: string, as?: 'anchor' | 'intermediate' | 'crl'): void => {
    if (as === 'crl' || (!as && extname(file).toLowerCase() === '.crl')) {
      crls.push(new Uint8Array(readFileSync(file)));
      return;
    }
    let certificates: Uint8Array[];
    try {
      certificates = certificatesIn(file);
    } catch {
      if (as) throw new TrustError('CERT_MALFORMED', 'trust', `${file} is not a certificate (PEM or DER)`);
      return; // a key, a README… beside the certificates
    }
    for (const der of certificates) {
      const c = new X509Certificate(der);
      (as === 'anchor' || (!as && c.issuer === c.subject && c.ca) ? anchors : others).push(der);
    }
  };
  for (const path of paths) {
    if (!statSync(path).isDirectory()) {
      take(path);
      continue;
    }
    const layout = existsSync(join(path, 'anchors'));
    if (layout) {
      for (const [sub, as] of [['anchors', 'anchor'], ['intermediates', 'intermediate'], ['crls', 'crl']] as const) {
        const folder = join(path, sub);
        if (existsSync(folder)) for (const name of readdirSync(folder)) take(join(folder, name), as);
      }
      continue;
    }
    for (const name of readdirSync(path)) {
      const file = join(path, name);
      if (statSync(file).isFile()) take(file);
    }
  }
  return { trustAnchors: anchors, intermediates: others, ...(crls.length > 0 ? { crls, revocation: 'crl' as const, crl: { fetch: false } } : {}) };
}

interface SignatureReport {
  field: string | null;
  holder: ValidatedHolder;
  claimedSigningTime: string | null;
  coversWholeDocument: boolean;
}

export async function verifySignature(file: string, options: VerifySignatureOptions): Promise<number> {
  const trust: SignatureVerifyOptions = { ...trustFrom(options.trust), ...(options.now ? { now: new Date(options.now) } : {}) };
  const isPdf = head(file).indexOf(HEADER) !== -1 && options.content === undefined;
  let reports: SignatureReport[];
  if (isPdf) {
    const signatures = await verifyPdf(new Uint8Array(readFileSync(file)), trust);
    reports = signatures.map((s) => ({ field: s.field, holder: s.holder, claimedSigningTime: s.claimedSigningTime?.toISOString() ?? null, coversWholeDocument: s.coversWholeDocument }));
  } else {
    // A detached .p7s: its content is --content, else the file it was made beside (FILE.p7s → FILE).
    const content = options.content ?? (extname(file).toLowerCase() === '.p7s' ? file.slice(0, -4) : undefined);
    if (content === undefined) throw new SignCommandError('CONTENT_MISSING', `${file} is not a PDF: give the signed file with --content (a detached signature does not hold it)`);
    statSync(resolve(content)); // ENOENT names the content file
    const s = await verifyCades(new Uint8Array(readFileSync(file)), createReadStream(content), trust);
    reports = [{ field: null, holder: s.holder, claimedSigningTime: s.claimedSigningTime?.toISOString() ?? null, coversWholeDocument: true }];
  }
  if (options.json) {
    json({ valid: true, format: isPdf ? 'pades' : 'cades', signatures: reports });
    return ExitCode.OK;
  }
  for (const r of reports) {
    const who = `${r.holder.givenName} ${r.holder.surname} (${r.holder.nationalId})`;
    out(`${r.field ? `${r.field}: ` : ''}${t('verify.valid', { signer: who })}`);
    out(`  ${t('verify.time', { time: r.claimedSigningTime ?? '-' })}`);
    if (!r.coversWholeDocument) out(`  ${t('verify.partial')}`);
  }
  return ExitCode.OK;
}
