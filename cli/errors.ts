/**
 * An error as a person reads it on stderr: the catalogue's message for its stable `code`, in the
 * person's language, then the technical detail as the lower layer wrote it (the ATR, the status word…)
 * for the support desk. Exit codes come from the same `code` (exit-codes.ts).
 */
import { t, type MessageKey, type Params } from '../core/i18n.js';

const BY_CODE: Readonly<Record<string, MessageKey>> = {
  PCSC_UNAVAILABLE: 'error.PCSC_UNAVAILABLE',
  VPCD_UNAVAILABLE: 'error.VPCD_UNAVAILABLE',
  READER_NOT_FOUND: 'error.READER_NOT_FOUND',
  CARD_ABSENT: 'error.CARD_ABSENT',
  PROFILE_NOT_FOUND: 'error.PROFILE_NOT_FOUND',
  CONFIG_INVALID: 'error.CONFIG_INVALID',
  LOGOUT_DELIVERY_FAILED: 'error.LOGOUT_DELIVERY_FAILED',
  STORE_NOT_REPLICATED: 'error.STORE_NOT_REPLICATED',
  UNSUPPORTED_CARD: 'error.UNSUPPORTED_CARD',
  CARD_UNSUPPORTED: 'error.UNSUPPORTED_CARD',
  PIN_BLOCKED: 'error.PIN_BLOCKED',
  PIN_INCORRECT: 'error.PIN_INCORRECT',
  PIN_FORMAT: 'error.PIN_FORMAT',
  PIN_LAST_TRY: 'error.PIN_LAST_TRY',
  PIN_MISMATCH: 'error.PIN_MISMATCH',
  NO_INPUT: 'error.NO_INPUT',
  CRL_INVALID: 'error.CRL_INVALID',
  CARD_TIMEOUT: 'error.CARD_TIMEOUT',
  CARD_PROTOCOL: 'error.CARD_PROTOCOL',
  PROTOCOL_MISMATCH: 'error.CARD_PROTOCOL',
  ATR_INVALID: 'error.CARD_PROTOCOL',
  APDU_INVALID: 'error.CARD_PROTOCOL',
  CARD_RESET: 'error.CARD_RESET',
  CARD_UNRESPONSIVE: 'error.CARD_UNRESPONSIVE',
  CARD_BUSY: 'error.CARD_BUSY',
  BUSY: 'error.BUSY',
  TIMEOUT: 'error.TIMEOUT',
  USER_CANCELLED: 'error.USER_CANCELLED',
  CANCELLED: 'error.USER_CANCELLED',
  CARD_DATA_INVALID: 'error.CARD_DATA_INVALID',
  PKCS11_MODULE_NOT_FOUND: 'error.PKCS11_MODULE_NOT_FOUND',
  NO_SIGNING_KEY: 'error.NO_SIGNING_KEY',
  CARD_CHANGED: 'error.CARD_CHANGED',
  OUTPUT_EXISTS: 'error.OUTPUT_EXISTS',
  CONTENT_MISSING: 'error.CONTENT_MISSING',
  PDF_INVALID: 'error.PDF_INVALID',
  PDF_ENCRYPTED: 'error.PDF_ENCRYPTED',
  DOCUMENT_NOT_SIGNED: 'error.DOCUMENT_NOT_SIGNED',
  SIGNATURE_INVALID: 'error.SIGNATURE_INVALID',
  SIGNING_STATE_INVALID: 'error.SIGNING_STATE_INVALID',
  TLV_INVALID: 'error.CARD_DATA_INVALID',
  OBJECT_NOT_FOUND: 'error.CARD_DATA_INVALID',
  CARD_ERROR: 'error.CARD_STATUS',
  PCSC_ERROR: 'error.PCSC_ERROR',
  UNSUPPORTED_FEATURE: 'error.UNSUPPORTED_FEATURE',
  ENOENT: 'error.FILE',
  EACCES: 'error.FILE',
  EISDIR: 'error.FILE',
};

export interface ShownError {
  /** The stable code, '' when the error has none. */
  code: string;
  /** In the person's language, from the catalogue. */
  message: string;
  /** The technical text of the lower layer (English, for support): kept as it is. */
  detail: string;
}

const field = (error: unknown, name: string): unknown => (typeof error === 'object' && error !== null && name in error ? (error as Record<string, unknown>)[name] : undefined);

export function describeError(error: unknown): ShownError {
  const code = field(error, 'code') === undefined ? '' : String(field(error, 'code'));
  const detail = error instanceof Error ? error.message : String(error);
  let key: MessageKey | undefined = BY_CODE[code];
  // Every card status word (6A82, 6985…) is a refusal of the card; every certificate rule one of the certificate.
  if (!key && field(error, 'sw') !== undefined) key = 'error.CARD_STATUS';
  if (!key && /^(CERT|TOKEN)_/.test(code)) key = 'error.CERTIFICATE_INVALID';
  const params: Record<string, string | number> = {};
  const tries = field(error, 'triesLeft');
  if (key === 'error.PIN_INCORRECT') {
    if (typeof tries === 'number') params.count = tries;
    else key = 'error.PIN_INCORRECT.unknownTries';
  }
  if (key === 'error.FILE') params.path = String(field(error, 'path') ?? '?');
  return { code, message: t(key ?? 'error.unexpected', params satisfies Params), detail };
}

/** `cpsd: <message> [CODE]` then `  detail: <technical text>`. */
export function formatError(error: unknown): string {
  const shown = describeError(error);
  const code = shown.code ? ` [${shown.code}]` : '';
  const detail = shown.detail && shown.detail !== shown.message ? `\n  ${t('error.detail', { detail: shown.detail })}` : '';
  return `cpsd: ${shown.message}${code}${detail}\n`;
}
