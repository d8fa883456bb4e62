import { CpsdError } from '../../core/errors.js';

/**
 * PC/SC return codes (pcsc-lite `pcsclite.h`, Windows `winerror.h`): name and a short meaning.
 * 0x8010001F is SCARD_E_UNSUPPORTED_FEATURE on pcsc-lite and SCARD_E_UNEXPECTED on Windows.
 */
export const PCSC_CODES: ReadonlyMap<number, readonly [name: string, meaning: string]> = new Map([
  [0x80100001, ['SCARD_F_INTERNAL_ERROR', 'internal consistency check failed']],
  [0x80100002, ['SCARD_E_CANCELLED', 'the action was cancelled']],
  [0x80100003, ['SCARD_E_INVALID_HANDLE', 'invalid handle']],
  [0x80100004, ['SCARD_E_INVALID_PARAMETER', 'invalid parameter']],
  [0x80100005, ['SCARD_E_INVALID_TARGET', 'invalid target']],
  [0x80100006, ['SCARD_E_NO_MEMORY', 'not enough memory']],
  [0x80100007, ['SCARD_F_WAITED_TOO_LONG', 'waited too long']],
  [0x80100008, ['SCARD_E_INSUFFICIENT_BUFFER', 'response buffer too small']],
  [0x80100009, ['SCARD_E_UNKNOWN_READER', 'unknown reader']],
  [0x8010000a, ['SCARD_E_TIMEOUT', 'timeout']],
  [0x8010000b, ['SCARD_E_SHARING_VIOLATION', 'the card is used exclusively by another application']],
  [0x8010000c, ['SCARD_E_NO_SMARTCARD', 'no card in the reader']],
  [0x8010000d, ['SCARD_E_UNKNOWN_CARD', 'unknown card']],
  [0x8010000e, ['SCARD_E_CANT_DISPOSE', 'cannot dispose of the card']],
  [0x8010000f, ['SCARD_E_PROTO_MISMATCH', 'requested protocol not available']],
  [0x80100010, ['SCARD_E_NOT_READY', 'reader or card not ready']],
  [0x80100011, ['SCARD_E_INVALID_VALUE', 'invalid value']],
  [0x80100012, ['SCARD_E_SYSTEM_CANCELLED', 'cancelled by the system']],
  [0x80100013, ['SCARD_F_COMM_ERROR', 'communication error with the PC/SC service']],
  [0x80100014, ['SCARD_F_UNKNOWN_ERROR', 'unknown internal error']],
  [0x80100015, ['SCARD_E_INVALID_ATR', 'invalid ATR']],
  [0x80100016, ['SCARD_E_NOT_TRANSACTED', 'transaction failed']],
  [0x80100017, ['SCARD_E_READER_UNAVAILABLE', 'reader unavailable']],
  [0x80100018, ['SCARD_P_SHUTDOWN', 'operation aborted for shutdown']],
  [0x80100019, ['SCARD_E_PCI_TOO_SMALL', 'PCI buffer too small']],
  [0x8010001a, ['SCARD_E_READER_UNSUPPORTED', 'reader driver does not meet requirements']],
  [0x8010001b, ['SCARD_E_DUPLICATE_READER', 'duplicate reader name']],
  [0x8010001c, ['SCARD_E_CARD_UNSUPPORTED', 'card not supported']],
  [0x8010001d, ['SCARD_E_NO_SERVICE', 'the PC/SC service is not running']],
  [0x8010001e, ['SCARD_E_SERVICE_STOPPED', 'the PC/SC service has stopped']],
  [0x8010001f, ['SCARD_E_UNSUPPORTED_FEATURE', 'feature not supported by the reader driver']],
  [0x80100020, ['SCARD_E_ICC_INSTALLATION', 'no primary provider for the card']],
  [0x80100021, ['SCARD_E_ICC_CREATEORDER', 'requested creation order not supported']],
  [0x80100022, ['SCARD_E_UNSUPPORTED_FEATURE', 'feature not supported']],
  [0x80100023, ['SCARD_E_DIR_NOT_FOUND', 'directory not found']],
  [0x80100024, ['SCARD_E_FILE_NOT_FOUND', 'file not found']],
  [0x80100025, ['SCARD_E_NO_DIR', 'not a directory']],
  [0x80100026, ['SCARD_E_NO_FILE', 'not a file']],
  [0x80100027, ['SCARD_E_NO_ACCESS', 'access denied']],
  [0x80100028, ['SCARD_E_WRITE_TOO_MANY', 'card full']],
  [0x80100029, ['SCARD_E_BAD_SEEK', 'file pointer error']],
  [0x8010002a, ['SCARD_E_INVALID_CHV', 'invalid PIN']],
  [0x8010002b, ['SCARD_E_UNKNOWN_RES_MNG', 'unknown resource manager']],
  [0x8010002c, ['SCARD_E_NO_SUCH_CERTIFICATE', 'no such certificate']],
  [0x8010002d, ['SCARD_E_CERTIFICATE_UNAVAILABLE', 'certificate unavailable']],
  [0x8010002e, ['SCARD_E_NO_READERS_AVAILABLE', 'no reader available']],
  [0x8010002f, ['SCARD_E_COMM_DATA_LOST', 'communication data lost']],
  [0x80100030, ['SCARD_E_NO_KEY_CONTAINER', 'no key container']],
  [0x80100031, ['SCARD_E_SERVER_TOO_BUSY', 'the PC/SC service is too busy']],
  [0x80100065, ['SCARD_W_UNSUPPORTED_CARD', 'card not supported (ATR conflict)']],
  [0x80100066, ['SCARD_W_UNRESPONSIVE_CARD', 'the card is not responding to a reset']],
  [0x80100067, ['SCARD_W_UNPOWERED_CARD', 'the card is not powered']],
  [0x80100068, ['SCARD_W_RESET_CARD', 'the card was reset by another application']],
  [0x80100069, ['SCARD_W_REMOVED_CARD', 'the card was removed']],
  [0x8010006a, ['SCARD_W_SECURITY_VIOLATION', 'access denied: security violation']],
  [0x8010006b, ['SCARD_W_WRONG_CHV', 'wrong PIN']],
  [0x8010006c, ['SCARD_W_CHV_BLOCKED', 'PIN blocked']],
  [0x8010006d, ['SCARD_W_EOF', 'end of file']],
  [0x8010006e, ['SCARD_W_CANCELLED_BY_USER', 'cancelled by the user']],
  [0x8010006f, ['SCARD_W_CARD_NOT_AUTHENTICATED', 'no PIN was presented to the card']],
]);

/** The codes of the PC/SC errors below. */
export type PcscErrorCode =
  | 'PCSC_ERROR'
  | 'PCSC_UNAVAILABLE'
  | 'READER_NOT_FOUND'
  | 'CARD_ABSENT'
  | 'CARD_RESET'
  | 'CARD_UNRESPONSIVE'
  | 'CARD_BUSY'
  | 'PROTOCOL_MISMATCH'
  | 'UNSUPPORTED_FEATURE'
  | 'TIMEOUT'
  | 'CANCELLED';

/** Any failure reported by the PC/SC layer, with the PC/SC return code when there is one. */
export class PcscError extends CpsdError {
  readonly code: PcscErrorCode = 'PCSC_ERROR';
  /** The PC/SC return code (e.g. 0x80100069), or undefined when the binding gave none. */
  readonly pcscCode: number | undefined;
  /** Symbolic name of `pcscCode`, e.g. `SCARD_W_REMOVED_CARD`. */
  readonly pcscName: string | undefined;
  /** The PC/SC call that failed, e.g. `SCardTransmit`. */
  readonly operation: string | undefined;

  constructor(message: string, details: { pcscCode?: number; operation?: string; cause?: unknown } = {}) {
    super(message, details.cause === undefined ? undefined : { cause: details.cause });
    this.pcscCode = details.pcscCode;
    this.pcscName = details.pcscCode === undefined ? undefined : PCSC_CODES.get(details.pcscCode)?.[0];
    this.operation = details.operation;
  }
}

/** pcscd (or WinSCard) is not running, stopped, or the link to it broke. */
export class PcscUnavailableError extends PcscError {
  override readonly code = 'PCSC_UNAVAILABLE';
}
/** The reader does not exist (any more). */
export class ReaderNotFoundError extends PcscError {
  override readonly code = 'READER_NOT_FOUND';
}
/** No card in the reader, or it was pulled out. */
export class CardAbsentError extends PcscError {
  override readonly code = 'CARD_ABSENT';
}
/** Another application reset the card: its security state (verified PIN, selected file) is gone. */
export class CardResetError extends PcscError {
  override readonly code = 'CARD_RESET';
}
/** The card does not answer, is unpowered, or its ATR is unusable. */
export class CardUnresponsiveError extends PcscError {
  override readonly code = 'CARD_UNRESPONSIVE';
}
/** Another application holds the card exclusively (or this process already holds this reader). */
export class CardBusyError extends PcscError {
  override readonly code = 'CARD_BUSY';
}
/** None of the requested protocols (T=0/T=1) can be used with this card now. */
export class ProtocolMismatchError extends PcscError {
  override readonly code = 'PROTOCOL_MISMATCH';
}
/** The reader driver does not implement the requested control code or feature. */
export class UnsupportedFeatureError extends PcscError {
  override readonly code = 'UNSUPPORTED_FEATURE';
}
/** A PC/SC wait timed out. */
export class PcscTimeoutError extends PcscError {
  override readonly code = 'TIMEOUT';
}
/** A PC/SC wait was cancelled (by us closing the context, or by the system). */
export class PcscCancelledError extends PcscError {
  override readonly code = 'CANCELLED';
}

type PcscErrorClass = new (message: string, details?: { pcscCode?: number; operation?: string; cause?: unknown }) => PcscError;

const FAMILIES: ReadonlyMap<number, PcscErrorClass> = new Map<number, PcscErrorClass>([
  [0x8010001d, PcscUnavailableError],
  [0x8010001e, PcscUnavailableError],
  [0x80100013, PcscUnavailableError],
  [0x80100018, PcscUnavailableError],
  [0x80100031, PcscUnavailableError],
  [0x80100009, ReaderNotFoundError],
  [0x80100017, ReaderNotFoundError],
  [0x8010002e, ReaderNotFoundError],
  [0x8010000c, CardAbsentError],
  [0x80100069, CardAbsentError],
  [0x80100068, CardResetError],
  [0x80100066, CardUnresponsiveError],
  [0x80100067, CardUnresponsiveError],
  [0x80100065, CardUnresponsiveError],
  [0x80100015, CardUnresponsiveError],
  [0x8010000b, CardBusyError],
  [0x8010000f, ProtocolMismatchError],
  [0x8010001f, UnsupportedFeatureError],
  [0x80100022, UnsupportedFeatureError],
  [0x8010000a, PcscTimeoutError],
  [0x80100002, PcscCancelledError],
  [0x80100012, PcscCancelledError],
]);

/** Builds the typed error for a PC/SC return code. */
export function pcscError(pcscCode: number, operation?: string, cause?: unknown): PcscError {
  const code = pcscCode >>> 0;
  const known = PCSC_CODES.get(code);
  const Family = FAMILIES.get(code) ?? PcscError;
  const what = known ? `${known[1]} (${known[0]}, 0x${code.toString(16)})` : `PC/SC error 0x${code.toString(16)}`;
  const details: { pcscCode: number; operation?: string; cause?: unknown } = { pcscCode: code };
  if (operation !== undefined) details.operation = operation;
  if (cause !== undefined) details.cause = cause;
  return new Family(operation ? `${operation}: ${what}` : what, details);
}

/**
 * Turns whatever a binding threw or emitted into a typed error. Native bindings report the code only
 * inside the message ("SCardTransmit error: Card was removed.(0x80100069)"), so it is parsed from there.
 */
export function toPcscError(error: unknown, operation?: string): PcscError {
  if (error instanceof PcscError) return error;
  const message = error instanceof Error ? error.message : String(error);
  const match = /\(0x([0-9a-f]{8})\)/i.exec(message);
  const op = /^(SCard\w+) error/.exec(message)?.[1] ?? operation;
  if (match?.[1]) return pcscError(parseInt(match[1], 16), op, error);
  const details: { operation?: string; cause?: unknown } = { cause: error };
  if (op !== undefined) details.operation = op;
  return new PcscError(op ? `${op}: ${message}` : message, details);
}

/** True when the error means the whole PC/SC context is dead and must be re-created. */
export function isServiceFailure(error: PcscError): boolean {
  return error instanceof PcscUnavailableError || error.pcscCode === 0x80100003; // stale context handle
}

/** An operation on a connection this side already closed (both bindings). */
export function notConnected(reader: string, operation: string): PcscError {
  return new PcscError(`${operation}: connection to ${reader} is closed`, { operation });
}

/** Runs a close that may fail: closing is best effort, a dead context may refuse to be closed. */
export function safely(action: () => void): void {
  try {
    action();
  } catch {
    // nothing to do: the handle is gone either way
  }
}
