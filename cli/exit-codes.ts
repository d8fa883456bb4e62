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
} as const;

const BY_ERROR_CODE: Readonly<Record<string, number>> = {
  PCSC_UNAVAILABLE: ExitCode.NO_SERVICE,
  VPCD_UNAVAILABLE: ExitCode.NO_SERVICE,
  READER_NOT_FOUND: ExitCode.NO_READER,
  CARD_ABSENT: ExitCode.NO_CARD,
  PROFILE_NOT_FOUND: ExitCode.USAGE,
};

/** Maps a typed error's stable code to the exit code. */
export function exitCodeFor(error: unknown): number {
  const code = typeof error === 'object' && error !== null && 'code' in error ? String(error.code) : '';
  return BY_ERROR_CODE[code] ?? ExitCode.FAILURE;
}
