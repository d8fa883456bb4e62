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

/** Bytes that do not form a valid command or response APDU, or values out of range to build one. */
export class ApduFormatError extends CpsdError {
  readonly code = 'APDU_INVALID';
}

/** Bytes that do not form valid BER-TLV, or a TLV that cannot be encoded. */
export class TlvError extends CpsdError {
  readonly code = 'TLV_INVALID';
}

/** Bytes that do not form a valid Answer-To-Reset. */
export class AtrError extends CpsdError {
  readonly code = 'ATR_INVALID';
}

/** A card answered something the protocol does not allow here (wrong length, endless 61xx...). */
export class CardProtocolError extends CpsdError {
  readonly code = 'CARD_PROTOCOL';
}

/** Formats a byte array as upper-case hex without separators (for messages and logs). */
export function toHex(bytes: Uint8Array): string {
  let s = '';
  for (const b of bytes) s += b.toString(16).padStart(2, '0');
  return s.toUpperCase();
}

/** Parses hex with optional spaces or colons; throws a TypeError on odd length or bad digits. */
export function fromHex(hex: string): Uint8Array {
  const clean = hex.replace(/[\s:]/g, '');
  if (clean.length % 2 !== 0 || !/^[0-9a-fA-F]*$/.test(clean)) {
    throw new TypeError(`invalid hex string: ${JSON.stringify(hex.slice(0, 40))}`);
  }
  const out = new Uint8Array(clean.length / 2);
  for (let i = 0; i < out.length; i++) out[i] = parseInt(clean.slice(2 * i, 2 * i + 2), 16);
  return out;
}

/** Concatenates byte arrays. */
export function concatBytes(parts: readonly Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let offset = 0;
  for (const p of parts) {
    out.set(p, offset);
    offset += p.length;
  }
  return out;
}

/** Byte-wise equality. */
export function bytesEqual(a: Uint8Array, b: Uint8Array): boolean {
  return a.length === b.length && a.every((v, i) => v === b[i]);
}
