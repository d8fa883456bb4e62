import { CpsdError, isCpsdErrorCode, type CpsdErrorCode } from '../core/errors.js';

/** Documented exit codes of `cpsd` (docs/cli.md). Scripts rely on them: never renumber. */
export const ExitCode = {
  OK: 0,
  /** Unexpected failure. */
  FAILURE: 1,
  /** Bad command line. */
  USAGE: 2,
  /** The PC/SC service (pcscd, WinSCard) is not running. */
  NO_SERVICE: 3,
  /** No reader, or not the one asked for. */
  NO_READER: 4,
  /** No card in the reader. */
  NO_CARD: 5,
  /** The card is not a supported CPx card. */
  UNSUPPORTED_CARD: 6,
  /** The PIN is blocked (unblock it with the unblocking code). */
  PIN_BLOCKED: 7,
  /** The PIN was not accepted: wrong, malformed, or only one try left without --allow-last-try. */
  PIN_REFUSED: 8,
  /** A certificate is expired, revoked, not yet valid or does not chain to a trust anchor. */
  CERTIFICATE_INVALID: 9,
  /** The card did not answer in time, or answered outside the protocol. */
  CARD_FAILURE: 10,
} as const;

const { FAILURE, USAGE, NO_SERVICE, NO_READER, NO_CARD, UNSUPPORTED_CARD, PIN_BLOCKED, PIN_REFUSED, CERTIFICATE_INVALID, CARD_FAILURE } = ExitCode;

/** Every error code → the exit code of `cpsd` (docs/errors.md lists them; a test checks it). */
const BY_ERROR_CODE = {
  APDU_INVALID: CARD_FAILURE,
  TLV_INVALID: CARD_FAILURE,
  ATR_INVALID: UNSUPPORTED_CARD,
  CARD_PROTOCOL: CARD_FAILURE,
  CARD_ERROR: CARD_FAILURE,
  PIN_INCORRECT: PIN_REFUSED,
  PIN_BLOCKED,
  SECURITY_STATUS_NOT_SATISFIED: CARD_FAILURE,
  REFERENCE_DATA_NOT_USABLE: CARD_FAILURE,
  CONDITIONS_NOT_SATISFIED: CARD_FAILURE,
  FILE_NOT_FOUND: CARD_FAILURE,
  REFERENCED_DATA_NOT_FOUND: CARD_FAILURE,
  WRONG_P1P2: CARD_FAILURE,
  WRONG_LENGTH: CARD_FAILURE,
  WRONG_DATA: CARD_FAILURE,
  FUNCTION_NOT_SUPPORTED: CARD_FAILURE,
  INS_NOT_SUPPORTED: CARD_FAILURE,
  CLA_NOT_SUPPORTED: CARD_FAILURE,
  CARD_MEMORY: CARD_FAILURE,
  PCSC_ERROR: CARD_FAILURE,
  PCSC_UNAVAILABLE: NO_SERVICE,
  READER_NOT_FOUND: NO_READER,
  CARD_ABSENT: NO_CARD,
  CARD_RESET: CARD_FAILURE,
  CARD_UNRESPONSIVE: CARD_FAILURE,
  CARD_BUSY: CARD_FAILURE,
  PROTOCOL_MISMATCH: CARD_FAILURE,
  UNSUPPORTED_FEATURE: FAILURE,
  TIMEOUT: CARD_FAILURE,
  CANCELLED: FAILURE,
  UNSUPPORTED_CARD,
  MIDSTATE_INVALID: FAILURE,
  PIN_FORMAT: PIN_REFUSED,
  PIN_LAST_TRY: PIN_REFUSED,
  CARD_TIMEOUT: CARD_FAILURE,
  OBJECT_NOT_FOUND: CARD_FAILURE,
  USER_CANCELLED: FAILURE,
  BUSY: FAILURE,
  CERTIFICATE_INVALID,
  TOKEN_MALFORMED: FAILURE,
  ORIGIN_INVALID: FAILURE,
  NONCE_INVALID: FAILURE,
  NONCE_EXPIRED: FAILURE,
  SIGNATURE_INVALID: FAILURE,
  CERT_MALFORMED: CERTIFICATE_INVALID,
  CERT_UNTRUSTED: CERTIFICATE_INVALID,
  CERT_EXPIRED: CERTIFICATE_INVALID,
  CERT_NOT_YET_VALID: CERTIFICATE_INVALID,
  CERT_REVOKED: CERTIFICATE_INVALID,
  CERT_WRONG_PURPOSE: CERTIFICATE_INVALID,
  CERT_POLICY: CERTIFICATE_INVALID,
  CERT_ALGORITHM: CERTIFICATE_INVALID,
  CRL_INVALID: CERTIFICATE_INVALID,
  REVOCATION_UNKNOWN: CERTIFICATE_INVALID,
  NONCE_STORE_UNAVAILABLE: FAILURE,
  NONCE_STORE_CONFLICT: FAILURE,
  STORE_UNAVAILABLE: FAILURE,
  UPSTREAM_STATE: FAILURE,
  UPSTREAM_REFUSED: FAILURE,
  UPSTREAM_INVALID: FAILURE,
  UPSTREAM_CLAIMS: FAILURE,
  UPSTREAM_UNAVAILABLE: FAILURE,
  CONFIG_INVALID: USAGE,
  INVALID_REQUEST: FAILURE,
  METHOD_NOT_FOUND: FAILURE,
  ORIGIN_NOT_ALLOWED: FAILURE,
  RATE_LIMITED: FAILURE,
  CARD_UNSUPPORTED: UNSUPPORTED_CARD,
  PIN_NOT_ALLOWED: PIN_REFUSED,
  CONTACTLESS_NOT_ALLOWED: FAILURE,
  INTERNAL: FAILURE,
  VPCD_UNAVAILABLE: NO_SERVICE,
  PROFILE_NOT_FOUND: USAGE,
  NO_INPUT: USAGE,
  PIN_MISMATCH: PIN_REFUSED,
  CARD_DATA_INVALID: CARD_FAILURE,
} as const satisfies Record<CpsdErrorCode, number>;

export type ExitCodeValue = (typeof ExitCode)[keyof typeof ExitCode];

/** The exit code of an error code. */
export function exitCodeOf(code: CpsdErrorCode): ExitCodeValue {
  return BY_ERROR_CODE[code];
}

/** Maps a typed error's stable code to the exit code. */
export function exitCodeFor(error: unknown): number {
  const code: unknown = error instanceof CpsdError ? error.code : typeof error === 'object' && error !== null && 'code' in error ? error.code : undefined;
  return isCpsdErrorCode(code) ? exitCodeOf(code) : ExitCode.FAILURE;
}
