/**
 * Base class of every error cpsd throws on purpose.
 *
 * Each subclass carries a stable `code` string (never reworded once published) so that callers,
 * the daemon protocol and the CLI exit codes can switch on it instead of on messages or classes.
 * Messages are for people; they never contain secrets (no PIN, no key material).
 */
export abstract class CpsdError extends Error {
  /** Stable machine-readable code, e.g. `APDU_INVALID`. */
  abstract readonly code: string;

  constructor(message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = new.target.name;
  }
}
