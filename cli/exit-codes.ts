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

const BY_ERROR_CODE: Readonly<Record<string, number>> = {
  PCSC_UNAVAILABLE: ExitCode.NO_SERVICE,
  VPCD_UNAVAILABLE: ExitCode.NO_SERVICE,
  READER_NOT_FOUND: ExitCode.NO_READER,
  CARD_ABSENT: ExitCode.NO_CARD,
  PROFILE_NOT_FOUND: ExitCode.USAGE,
  CONFIG_INVALID: ExitCode.USAGE,
  UNSUPPORTED_CARD: ExitCode.UNSUPPORTED_CARD,
  PIN_BLOCKED: ExitCode.PIN_BLOCKED,
  PIN_INCORRECT: ExitCode.PIN_REFUSED,
  PIN_FORMAT: ExitCode.PIN_REFUSED,
  PIN_LAST_TRY: ExitCode.PIN_REFUSED,
  PIN_MISMATCH: ExitCode.PIN_REFUSED,
  NO_INPUT: ExitCode.USAGE,
  CRL_INVALID: ExitCode.CERTIFICATE_INVALID,
  CARD_TIMEOUT: ExitCode.CARD_FAILURE,
  CARD_PROTOCOL: ExitCode.CARD_FAILURE,
  CARD_RESET: ExitCode.CARD_FAILURE,
  CARD_UNRESPONSIVE: ExitCode.CARD_FAILURE,
};

/** Maps a typed error's stable code to the exit code. */
export function exitCodeFor(error: unknown): number {
  const code = typeof error === 'object' && error !== null && 'code' in error ? String(error.code) : '';
  return BY_ERROR_CODE[code] ?? ExitCode.FAILURE;
}
