/** Errors of the ISO 7816 wire layer. */
import { CpsdError } from '../core/errors.js';

/** Bytes that do not form a valid command or response APDU, or values out of range to build one. */
export class ApduFormatError extends CpsdError {
  readonly code = 'APDU_INVALID';
}

/** Bytes that do not form a valid Answer-To-Reset. */
export class AtrError extends CpsdError {
  readonly code = 'ATR_INVALID';
}

/** A card answered something the protocol does not allow here (wrong length, endless 61xx...). */
export class CardProtocolError extends CpsdError {
  readonly code = 'CARD_PROTOCOL';
}
