/** `cpsd certs`: the certificates, and with `--verify` their chain and revocation (pkcs/validate.ts). */
import { X509Certificate } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { readPublicData } from '../../cards/public-data.js';
import { TrustError, type TrustErrorCode } from '../../pkcs/trust-types.js';
import { validateCertificate } from '../../pkcs/validate.js';
import { certificateInfo } from '../../pkcs/holder.js';
import { withCard } from '../card-session.js';
import { ExitCode } from '../exit-codes.js';
import { t, type MessageKey } from '../../core/i18n.js';
import { cacheFor, json, out, type CommonOptions } from '../output.js';

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

const STATUS_TEXT: Readonly<Record<NonNullable<CertificateCheck['status']>, MessageKey>> = {
  valid: 'certs.status.valid',
  'expires-soon': 'certs.status.expires-soon',
  expired: 'certs.status.expired',
  'not-yet-valid': 'certs.status.not-yet-valid',
  revoked: 'certs.status.revoked',
  'revocation-unknown': 'certs.status.revocation-unknown',
  untrusted: 'certs.status.untrusted',
};

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
      out(`${t(c.which === 'auth' ? 'certs.auth' : 'certs.sign')}: CN=${c.subject.CN ?? ''} SN=${c.subject.SN ?? ''} GN=${c.subject.GN ?? ''}`);
      out(`  ${t('certs.validity', { from: c.notBefore.slice(0, 10), to: c.notAfter.slice(0, 10), serial: c.serialNumber })}`);
      if (c.status) {
        // The detail of a refusal is the validator's technical text (code, rule, certificate): kept as it is.
        const detail = c.status === 'expires-soon' ? t('certs.expiresOn', { date: c.notAfter.slice(0, 10) }) : c.detail;
        out(`  ${t(STATUS_TEXT[c.status])}${detail ? `: ${detail}` : ''}`);
      }
    }
  }
  // Without an anchor the chain cannot be checked: say which option gives one (stderr: JSON stays as it is).
  if (options.verify && (options.trust ?? []).length === 0) process.stderr.write(`cpsd: ${t('certs.noTrust')}\n`);
  if (!options.verify) return ExitCode.OK;
  return checks.every((c) => c.status === 'valid' || c.status === 'expires-soon') ? ExitCode.OK : ExitCode.CERTIFICATE_INVALID;
}
