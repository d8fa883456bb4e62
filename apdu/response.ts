import { toHex } from '../core/bytes.js';
import { ApduFormatError } from './errors.js';
import { describeStatus, statusError } from './status.js';

export interface CheckOptions {
  /** Status words accepted besides 9000 (e.g. 0x6282 for READ BINARY at end of file). */
  allow?: readonly number[];
}

/** An immutable response APDU: data field and the status word SW1 SW2. */
export class ResponseApdu {
  readonly data: Uint8Array;
  readonly sw: number;

  constructor(data: Uint8Array, sw: number) {
    if (!Number.isInteger(sw) || sw < 0 || sw > 0xffff) {
      throw new ApduFormatError(`status word must be 16 bits, got ${String(sw)}`);
    }
    this.data = Uint8Array.from(data);
    this.sw = sw;
    Object.freeze(this);
  }

  /** A response with the given status word and data (empty by default). */
  static of(sw: number, data: Uint8Array = new Uint8Array(0)): ResponseApdu {
    return new ResponseApdu(data, sw);
  }

  /** Parses wire bytes: data then SW1 SW2. */
  static decode(bytes: Uint8Array): ResponseApdu {
    if (bytes.length < 2) {
      throw new ApduFormatError(`response APDU of ${bytes.length} bytes has no status word`);
    }
    if (bytes.length > 65538) {
      throw new ApduFormatError(`response APDU of ${bytes.length} bytes exceeds 65536 data bytes`);
    }
    const n = bytes.length;
    return new ResponseApdu(bytes.subarray(0, n - 2), ((bytes[n - 2] ?? 0) << 8) | (bytes[n - 1] ?? 0));
  }

  get sw1(): number {
    return this.sw >> 8;
  }

  get sw2(): number {
    return this.sw & 0xff;
  }

  /** SW = 9000. */
  get ok(): boolean {
    return this.sw === 0x9000;
  }

  encode(): Uint8Array {
    const out = new Uint8Array(this.data.length + 2);
    out.set(this.data);
    out[this.data.length] = this.sw1;
    out[this.data.length + 1] = this.sw2;
    return out;
  }

  /**
   * Returns this response if its SW is 9000 or listed in `allow`; otherwise throws the typed error of
   * its status family (WrongPinError, FileNotFoundError...).
   */
  check(options: CheckOptions = {}): this {
    if (this.ok || options.allow?.includes(this.sw)) return this;
    throw statusError(this.sw);
  }

  toString(): string {
    const sw = toHex(Uint8Array.of(this.sw1, this.sw2));
    const meaning = describeStatus(this.sw).meaning;
    return this.data.length > 0 ? `${toHex(this.data)} ${sw} (${meaning})` : `${sw} (${meaning})`;
  }
}
