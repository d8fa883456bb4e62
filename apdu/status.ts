import { CpsdError } from '../core/errors.js';

/**
 * Status words: what they mean and which typed error each family raises.
 * Sources: ISO/IEC 7816-4 §5.6 (tables 5 and 6), IAS-ECC, and the CPS-specific words of
 * docs/card-facts.md §3.6 (CPS2ter volet words 9xxx apply to CLA A0 only).
 */

export type StatusKind =
  /** 9000 */
  | 'success'
  /** 61xx, 9Fxx: more bytes to fetch with GET RESPONSE (handled by CardChannel). */
  | 'bytes-available'
  /** 62xx, 63xx: processed with a warning (63Cx is also how a failed VERIFY reports tries left). */
  | 'warning'
  /** 64xx-66xx: execution error. */
  | 'execution-error'
  /** 67xx-6Fxx, 94xx, 98xx...: checking error, the command was refused. */
  | 'checking-error';

export interface StatusInfo {
  sw: number;
  kind: StatusKind;
  meaning: string;
}

/** Exact status words. Ranges (61xx, 63Cx, 6Cxx, 9Fxx, 65xx) are handled in describeStatus. */
export const STATUS_CATALOGUE: ReadonlyMap<number, string> = new Map([
  [0x9000, 'success'],
  [0x6200, 'warning: state of non-volatile memory unchanged'],
  [0x6281, 'warning: part of returned data may be corrupted'],
  [0x6282, 'warning: end of file or record reached before reading Ne bytes'],
  [0x6283, 'warning: selected file deactivated'],
  [0x6284, 'warning: file control information not formatted correctly'],
  [0x6285, 'warning: selected file in termination state'],
  [0x6300, 'warning: verification failed'],
  [0x6381, 'warning: file filled up by the last write'],
  [0x6400, 'execution error: state of non-volatile memory unchanged'],
  [0x6401, 'execution error: immediate response required by the card'],
  [0x6500, 'execution error: state of non-volatile memory changed'],
  [0x6581, 'execution error: memory failure'],
  [0x6600, 'execution error: security-related issue'],
  [0x6700, 'wrong length'],
  [0x6800, 'functions in CLA not supported'],
  [0x6881, 'logical channel not supported'],
  [0x6882, 'secure messaging not supported'],
  [0x6883, 'last command of the chain expected'],
  [0x6884, 'command chaining not supported'],
  [0x6900, 'command not allowed'],
  [0x6981, 'command incompatible with file structure'],
  [0x6982, 'security status not satisfied'],
  [0x6983, 'authentication method blocked'],
  [0x6984, 'reference data not usable'],
  [0x6985, 'conditions of use not satisfied'],
  [0x6986, 'command not allowed (no current EF)'],
  [0x6987, 'expected secure messaging data objects missing'],
  [0x6988, 'incorrect secure messaging data objects'],
  [0x6a00, 'wrong parameters P1-P2'],
  [0x6a80, 'incorrect parameters in the command data field'],
  [0x6a81, 'function not supported'],
  [0x6a82, 'file or application not found'],
  [0x6a83, 'record not found'],
  [0x6a84, 'not enough memory space in the file'],
  [0x6a85, 'Nc inconsistent with TLV structure'],
  [0x6a86, 'incorrect parameters P1-P2'],
  [0x6a87, 'Nc inconsistent with parameters P1-P2'],
  [0x6a88, 'referenced data or reference data not found'],
  [0x6a89, 'file already exists'],
  [0x6a8a, 'DF name already exists'],
  [0x6b00, 'wrong parameters P1-P2'],
  [0x6d00, 'instruction code not supported or invalid'],
  [0x6e00, 'class not supported'],
  [0x6f00, 'no precise diagnosis'],
  // CPS2ter volet (CLA A0, GSM 11.11 style).
  [0x9240, 'CPS2ter: memory problem (corrupted header)'],
  [0x9404, 'CPS2ter: file not found'],
  [0x9802, 'CPS2ter: no PIN defined'],
  [0x9804, 'CPS2ter: access condition not fulfilled (wrong PIN)'],
  [0x9808, 'CPS2ter: in contradiction with PIN status'],
  [0x9840, 'CPS2ter: PIN blocked'],
]);

/** Meaning and kind of any 16-bit status word; unknown words get a generic description, never a throw. */
export function describeStatus(sw: number): StatusInfo {
  const sw1 = sw >> 8;
  const sw2 = sw & 0xff;
  const exact = STATUS_CATALOGUE.get(sw);
  const kind = kindOf(sw1);
  if (exact !== undefined) return { sw, kind, meaning: exact };
  if (sw1 === 0x61) return { sw, kind, meaning: `${sw2 === 0 ? 256 : sw2} response bytes still available` };
  if (sw1 === 0x9f) return { sw, kind, meaning: `CPS2ter: ${sw2 === 0 ? 256 : sw2} response bytes available` };
  if (sw1 === 0x6c) return { sw, kind, meaning: `wrong Le: ${sw2 === 0 ? 256 : sw2} bytes available` };
  if ((sw & 0xfff0) === 0x63c0) {
    return { sw, kind, meaning: `verification failed, ${sw & 0x0f} ${(sw & 0x0f) === 1 ? 'try' : 'tries'} left` };
  }
  if (sw1 === 0x62 || sw1 === 0x63) return { sw, kind, meaning: 'warning' };
  if (sw1 === 0x64 || sw1 === 0x65 || sw1 === 0x66) return { sw, kind, meaning: 'execution error' };
  return { sw, kind, meaning: 'unknown status' };
}

function kindOf(sw1: number): StatusKind {
  if (sw1 === 0x90) return 'success'; // 90xx other than 9000 is not ISO; kept as success-like for display
  if (sw1 === 0x61 || sw1 === 0x9f) return 'bytes-available';
  if (sw1 === 0x62 || sw1 === 0x63) return 'warning';
  if (sw1 >= 0x64 && sw1 <= 0x66) return 'execution-error';
  return 'checking-error';
}

/** Only 9000 is success; a warning (62xx/63xx) must be accepted explicitly by the caller (ResponseApdu.check). */
export function isSuccess(sw: number): boolean {
  return sw === 0x9000;
}

function swHex(sw: number): string {
  return sw.toString(16).toUpperCase().padStart(4, '0');
}

/** The codes of the status-word errors below. */
export type StatusErrorCode =
  | 'CARD_ERROR'
  | 'PIN_INCORRECT'
  | 'PIN_BLOCKED'
  | 'SECURITY_STATUS_NOT_SATISFIED'
  | 'REFERENCE_DATA_NOT_USABLE'
  | 'CONDITIONS_NOT_SATISFIED'
  | 'FILE_NOT_FOUND'
  | 'REFERENCED_DATA_NOT_FOUND'
  | 'WRONG_P1P2'
  | 'WRONG_LENGTH'
  | 'WRONG_DATA'
  | 'FUNCTION_NOT_SUPPORTED'
  | 'INS_NOT_SUPPORTED'
  | 'CLA_NOT_SUPPORTED'
  | 'CARD_MEMORY';

/** A card refused or failed a command; `sw` says how. Subclasses name the families callers act on. */
export class CardStatusError extends CpsdError {
  readonly code: StatusErrorCode = 'CARD_ERROR';
  readonly sw: number;

  constructor(sw: number, message?: string) {
    super(message ?? `card answered ${swHex(sw)}: ${describeStatus(sw).meaning}`);
    this.sw = sw;
  }
}

/** VERIFY failed: 63Cx with x tries left, or 6300 / CPS2ter 9804 where the card does not say. */
export class WrongPinError extends CardStatusError {
  override readonly code: StatusErrorCode = 'PIN_INCORRECT';
  /** Tries left before the PIN blocks, when the card tells (63Cx). */
  readonly triesLeft: number | undefined;

  constructor(sw: number) {
    const tries = (sw & 0xfff0) === 0x63c0 ? sw & 0x0f : undefined;
    super(
      sw,
      tries === undefined
        ? `wrong PIN (${swHex(sw)})`
        : `wrong PIN, ${tries} ${tries === 1 ? 'try' : 'tries'} left (${swHex(sw)})`,
    );
    this.triesLeft = tries;
  }
}

/** The PIN (or another authentication method) is blocked: 6983, CPS2ter 9840. */
export class PinBlockedError extends CardStatusError {
  override readonly code: StatusErrorCode = 'PIN_BLOCKED';
}

/** The command needs a verified PIN or another security state: 6982. */
export class SecurityStatusNotSatisfiedError extends CardStatusError {
  override readonly code: StatusErrorCode = 'SECURITY_STATUS_NOT_SATISFIED';
}

/** Reference data (PIN, key) not usable or not initialised: 6984, CPS2ter 9802/9808. */
export class ReferenceDataNotUsableError extends CardStatusError {
  override readonly code: StatusErrorCode = 'REFERENCE_DATA_NOT_USABLE';
}

/** Conditions of use not satisfied / no current EF: 6985, 6986 (CPS4: reselect the application). */
export class ConditionsNotSatisfiedError extends CardStatusError {
  override readonly code: StatusErrorCode = 'CONDITIONS_NOT_SATISFIED';
}

/** File, application or record not found: 6A82, 6A83, CPS2ter 9404. */
export class FileNotFoundError extends CardStatusError {
  override readonly code: StatusErrorCode = 'FILE_NOT_FOUND';
}

/** Referenced data (key, SDO, security environment) not found: 6A88. */
export class ReferencedDataNotFoundError extends CardStatusError {
  override readonly code: StatusErrorCode = 'REFERENCED_DATA_NOT_FOUND';
}

/** Wrong P1/P2: 6A86, 6B00, 6A00. */
export class WrongParametersError extends CardStatusError {
  override readonly code: StatusErrorCode = 'WRONG_P1P2';
}

/** Wrong Lc or Le: 6700, 6Cxx, 6A87. */
export class WrongLengthError extends CardStatusError {
  override readonly code: StatusErrorCode = 'WRONG_LENGTH';
}

/** Incorrect command data or TLV structure: 6A80, 6A85. */
export class WrongDataError extends CardStatusError {
  override readonly code: StatusErrorCode = 'WRONG_DATA';
}

/** Function, logical channel, secure messaging or chaining not supported: 6A81, 6800, 6881, 6882, 6884. */
export class FunctionNotSupportedError extends CardStatusError {
  override readonly code: StatusErrorCode = 'FUNCTION_NOT_SUPPORTED';
}

/** Instruction not supported: 6D00. */
export class InsNotSupportedError extends CardStatusError {
  override readonly code: StatusErrorCode = 'INS_NOT_SUPPORTED';
}

/** Class not supported (often: the wrong volet of a CPS3): 6E00. */
export class ClaNotSupportedError extends CardStatusError {
  override readonly code: StatusErrorCode = 'CLA_NOT_SUPPORTED';
}

/** Memory failure or not enough memory: 65xx, 6A84, CPS2ter 9240. */
export class CardMemoryError extends CardStatusError {
  override readonly code: StatusErrorCode = 'CARD_MEMORY';
}

type StatusErrorClass = new (sw: number) => CardStatusError;

const FAMILIES: ReadonlyMap<number, StatusErrorClass> = new Map<number, StatusErrorClass>([
  [0x6300, WrongPinError],
  [0x9804, WrongPinError],
  [0x6983, PinBlockedError],
  [0x9840, PinBlockedError],
  [0x6982, SecurityStatusNotSatisfiedError],
  [0x6984, ReferenceDataNotUsableError],
  [0x9802, ReferenceDataNotUsableError],
  [0x9808, ReferenceDataNotUsableError],
  [0x6985, ConditionsNotSatisfiedError],
  [0x6986, ConditionsNotSatisfiedError],
  [0x6a82, FileNotFoundError],
  [0x6a83, FileNotFoundError],
  [0x9404, FileNotFoundError],
  [0x6a88, ReferencedDataNotFoundError],
  [0x6a00, WrongParametersError],
  [0x6a86, WrongParametersError],
  [0x6b00, WrongParametersError],
  [0x6700, WrongLengthError],
  [0x6a87, WrongLengthError],
  [0x6a80, WrongDataError],
  [0x6a85, WrongDataError],
  [0x6800, FunctionNotSupportedError],
  [0x6881, FunctionNotSupportedError],
  [0x6882, FunctionNotSupportedError],
  [0x6884, FunctionNotSupportedError],
  [0x6a81, FunctionNotSupportedError],
  [0x6d00, InsNotSupportedError],
  [0x6e00, ClaNotSupportedError],
  [0x6a84, CardMemoryError],
  [0x9240, CardMemoryError],
]);

/** The typed error for a non-9000 status word (CardStatusError when no family applies). */
export function statusError(sw: number): CardStatusError {
  const family = FAMILIES.get(sw);
  if (family) return new family(sw);
  if ((sw & 0xfff0) === 0x63c0) return new WrongPinError(sw);
  if (sw >> 8 === 0x6c) return new WrongLengthError(sw);
  if (sw >> 8 === 0x65) return new CardMemoryError(sw);
  return new CardStatusError(sw);
}
