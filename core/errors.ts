/**
 * Every code a cpsd error can carry, one list for all layers (docs/errors.md, checked by a test). The
 * daemon maps each to a protocol code and the CLI to an exit code, both with `satisfies Record<…>`, so a
 * new code does not compile until it is given both.
 */
export const CPSD_ERROR_CODES = [
  // wire layer (apdu/, core/)
  'APDU_INVALID',
  'TLV_INVALID',
  'ATR_INVALID',
  'CARD_PROTOCOL',
  // status words (apdu/status.ts)
  'CARD_ERROR',
  'PIN_INCORRECT',
  'PIN_BLOCKED',
  'SECURITY_STATUS_NOT_SATISFIED',
  'REFERENCE_DATA_NOT_USABLE',
  'CONDITIONS_NOT_SATISFIED',
  'FILE_NOT_FOUND',
  'REFERENCED_DATA_NOT_FOUND',
  'WRONG_P1P2',
  'WRONG_LENGTH',
  'WRONG_DATA',
  'FUNCTION_NOT_SUPPORTED',
  'INS_NOT_SUPPORTED',
  'CLA_NOT_SUPPORTED',
  'CARD_MEMORY',
  // PC/SC (apdu/pcsc/errors.ts)
  'PCSC_ERROR',
  'PCSC_UNAVAILABLE',
  'READER_NOT_FOUND',
  'CARD_ABSENT',
  'CARD_RESET',
  'CARD_UNRESPONSIVE',
  'CARD_BUSY',
  'PROTOCOL_MISMATCH',
  'UNSUPPORTED_FEATURE',
  'TIMEOUT',
  'CANCELLED',
  // card drivers and sessions (cards/)
  'UNSUPPORTED_CARD',
  'MIDSTATE_INVALID',
  'PIN_FORMAT',
  'PIN_LAST_TRY',
  'CARD_TIMEOUT',
  'OBJECT_NOT_FOUND',
  'USER_CANCELLED',
  'BUSY',
  // certificates, tokens, trust (pkcs/)
  'CERTIFICATE_INVALID',
  'TOKEN_MALFORMED',
  'ORIGIN_INVALID',
  'NONCE_INVALID',
  'NONCE_EXPIRED',
  'SIGNATURE_INVALID',
  'CERT_MALFORMED',
  'CERT_UNTRUSTED',
  'CERT_EXPIRED',
  'CERT_NOT_YET_VALID',
  'CERT_REVOKED',
  'CERT_WRONG_PURPOSE',
  'CERT_POLICY',
  'CERT_ALGORITHM',
  'CRL_INVALID',
  'REVOCATION_UNKNOWN',
  'NONCE_STORE_UNAVAILABLE',
  'NONCE_STORE_CONFLICT',
  // daemon (daemon/): configuration, and the protocol's own refusals
  'CONFIG_INVALID',
  'INVALID_REQUEST',
  'METHOD_NOT_FOUND',
  'ORIGIN_NOT_ALLOWED',
  'RATE_LIMITED',
  'CARD_UNSUPPORTED',
  'PIN_NOT_ALLOWED',
  'CONTACTLESS_NOT_ALLOWED',
  'INTERNAL',
  // virtual card (sim/)
  'VPCD_UNAVAILABLE',
  'PROFILE_NOT_FOUND',
  // CLI (cli/)
  'NO_INPUT',
  'PIN_MISMATCH',
  'CARD_DATA_INVALID',
  'PKCS11_MODULE_NOT_FOUND',
  'NO_SIGNING_KEY',
  'CARD_CHANGED',
  'OUTPUT_EXISTS',
  'CONTENT_MISSING',
  // OpenID Connect provider (idp/)
  'STORE_UNAVAILABLE',
  'STORE_NOT_REPLICATED',
  'UPSTREAM_STATE',
  'UPSTREAM_REFUSED',
  'UPSTREAM_INVALID',
  'UPSTREAM_CLAIMS',
  'UPSTREAM_UNAVAILABLE',
  'LOGOUT_DELIVERY_FAILED',
  'CIBA_UNKNOWN_HOLDER',
  'CIBA_NO_WORKSTATION',
  'CIBA_REFUSED',
  'CIBA_FAILED',
  'CIBA_REGISTRATION_INVALID',
  // PKCS#11 module's requests (pkcs11/)
  'PKCS11_VERSION',
  'PKCS11_NOT_INITIALIZED',
  'NO_TOKEN',
  'NOT_LOGGED_IN',
  'ALREADY_LOGGED_IN',
  'USER_TYPE_INVALID',
  'KEY_NOT_FOUND',
  'MECHANISM_INVALID',
  'MECHANISM_PARAM_INVALID',
  'DATA_INVALID',
  'DATA_LENGTH',
  // document signatures (sign/)
  'PDF_INVALID',
  'PDF_ENCRYPTED',
  'DOCUMENT_NOT_SIGNED',
  'SIGNING_STATE_INVALID',
] as const;

export type CpsdErrorCode = (typeof CPSD_ERROR_CODES)[number];

const KNOWN: ReadonlySet<string> = new Set(CPSD_ERROR_CODES);

export function isCpsdErrorCode(code: unknown): code is CpsdErrorCode {
  return typeof code === 'string' && KNOWN.has(code);
}

/**
 * Base class of every error cpsd throws on purpose.
 *
 * Each subclass carries a stable `code` string (never reworded once published) so that callers,
 * the daemon protocol and the CLI exit codes can switch on it instead of on messages or classes.
 * Messages are for people; they never contain secrets (no PIN, no key material).
 */
export abstract class CpsdError extends Error {
  /** Stable machine-readable code, e.g. `APDU_INVALID`. */
  abstract readonly code: CpsdErrorCode;

  constructor(message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = new.target.name;
  }
}
