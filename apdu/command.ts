import { toHex } from '../core/bytes.js';
import { ApduFormatError } from './errors.js';

/** Fields of a command APDU. `ne` is the number of response bytes expected; absent = no Le field. */
export interface CommandFields {
  cla: number;
  ins: number;
  p1: number;
  p2: number;
  /** Command data (Lc is its length). Defaults to empty. */
  data?: Uint8Array | undefined;
  /** Ne, 1..65536; 256 is encoded as short Le 00, 65536 as extended Le 0000. */
  ne?: number | undefined;
}

export interface EncodeOptions {
  /**
   * `false`: short lengths only (throws if Nc > 255 or Ne > 256). `true`: always extended.
   * Default: short when it fits, extended otherwise.
   */
  extended?: boolean;
}

/** ISO 7816-3 §12.1 cases. */
export type ApduCase = 1 | 2 | 3 | 4;

/**
 * INS values whose data field carries a secret (VERIFY, CHANGE REFERENCE DATA, DISABLE/ENABLE
 * VERIFICATION REQUIREMENT, RESET RETRY COUNTER, ISO and odd-INS variants). Their data is never printed.
 */
const SECRET_INS = new Set([0x20, 0x21, 0x24, 0x25, 0x26, 0x28, 0x2c, 0x2d]);

/** An immutable ISO 7816-4 command APDU with checked header bytes and lengths. */
export class CommandApdu {
  readonly cla: number;
  readonly ins: number;
  readonly p1: number;
  readonly p2: number;
  readonly data: Uint8Array;
  readonly ne: number | undefined;

  constructor(fields: CommandFields) {
    this.cla = byte('CLA', fields.cla);
    this.ins = byte('INS', fields.ins);
    this.p1 = byte('P1', fields.p1);
    this.p2 = byte('P2', fields.p2);
    // ISO 7816-3 §10.3.2: INS 6X and 9X are transport-layer procedure bytes, never instructions.
    if ((this.ins & 0xf0) === 0x60 || (this.ins & 0xf0) === 0x90) {
      throw new ApduFormatError(`INS ${toHex(Uint8Array.of(this.ins))} is invalid (6X/9X are procedure bytes)`);
    }
    // CLA FF is left open: PC/SC part 3 pseudo-APDUs to the reader use it.
    const data = fields.data ?? new Uint8Array(0);
    if (!(data instanceof Uint8Array)) throw new ApduFormatError('data must be a Uint8Array');
    if (data.length > 65535) throw new ApduFormatError(`command data of ${data.length} bytes exceeds 65535`);
    // Copy so later changes to the caller's buffer cannot alter a built command.
    this.data = Uint8Array.from(data);
    if (fields.ne !== undefined && (!Number.isInteger(fields.ne) || fields.ne < 1 || fields.ne > 65536)) {
      throw new ApduFormatError(`Ne must be an integer in 1..65536, got ${String(fields.ne)}`);
    }
    this.ne = fields.ne;
    Object.freeze(this);
  }

  /** Nc: the length of the command data. */
  get nc(): number {
    return this.data.length;
  }

  get case(): ApduCase {
    if (this.nc === 0) return this.ne === undefined ? 1 : 2;
    return this.ne === undefined ? 3 : 4;
  }

  /** True when the lengths do not fit short encoding. */
  get needsExtended(): boolean {
    return this.nc > 255 || (this.ne ?? 0) > 256;
  }

  /** Whether the data field is a secret (PIN, PUK) that must never be logged. */
  get isSecretCarrying(): boolean {
    return SECRET_INS.has(this.ins) && this.nc > 0;
  }

  /** A copy with some fields replaced; `ne: undefined` removes Le. */
  with(fields: Partial<CommandFields>): CommandApdu {
    return new CommandApdu({
      cla: fields.cla ?? this.cla,
      ins: fields.ins ?? this.ins,
      p1: fields.p1 ?? this.p1,
      p2: fields.p2 ?? this.p2,
      data: fields.data ?? this.data,
      ne: 'ne' in fields ? fields.ne : this.ne,
    });
  }

  /** Wire bytes (ISO 7816-3 §12.1.3). */
  encode(options: EncodeOptions = {}): Uint8Array {
    const extended = options.extended ?? this.needsExtended;
    if (!extended && this.needsExtended) {
      throw new ApduFormatError(
        `Nc=${this.nc} / Ne=${String(this.ne)} do not fit a short APDU (Nc ≤ 255, Ne ≤ 256)`,
      );
    }
    const out: number[] = [this.cla, this.ins, this.p1, this.p2];
    const nc = this.nc;
    const ne = this.ne;
    if (!extended) {
      if (nc > 0) out.push(nc, ...this.data);
      if (ne !== undefined) out.push(ne === 256 ? 0 : ne);
      return Uint8Array.from(out);
    }
    if (nc === 0 && ne === undefined) return Uint8Array.from(out); // case 1 has no length field
    if (nc > 0) out.push(0, nc >> 8, nc & 0xff, ...this.data);
    if (ne !== undefined) {
      const le = ne === 65536 ? 0 : ne;
      // Case 2E carries a leading 00; in case 4E it is shared with Lc.
      if (nc === 0) out.push(0);
      out.push(le >> 8, le & 0xff);
    }
    return Uint8Array.from(out);
  }

  /**
   * Parses wire bytes strictly: exactly one of the seven encodings of ISO 7816-3 §12.1.3, nothing left over.
   * Lc = 0 (short) or 0000 (extended) is rejected: it is not a valid length of command data.
   */
  static decode(bytes: Uint8Array): CommandApdu {
    const n = bytes.length;
    // Every index read below is within n (checked first), so ?? 0 never applies.
    const at = (i: number): number => bytes[i] ?? 0;
    if (n < 4) throw new ApduFormatError(`command APDU of ${n} bytes is shorter than its 4-byte header`);
    const [cla, ins, p1, p2] = [at(0), at(1), at(2), at(3)];
    const header = { cla, ins, p1, p2 };
    if (n === 4) return new CommandApdu(header); // case 1
    const b0 = at(4);
    if (n === 5) return new CommandApdu({ ...header, ne: b0 === 0 ? 256 : b0 }); // case 2S
    if (b0 !== 0) {
      // Short Lc.
      if (n === 5 + b0) return new CommandApdu({ ...header, data: bytes.subarray(5, 5 + b0) }); // 3S
      if (n === 6 + b0) {
        const le = at(5 + b0);
        return new CommandApdu({ ...header, data: bytes.subarray(5, 5 + b0), ne: le === 0 ? 256 : le }); // 4S
      }
      throw new ApduFormatError(`short Lc=${b0} does not match a body of ${n - 4} bytes`);
    }
    // b0 = 00 and more bytes: extended.
    if (n === 7) {
      const le = (at(5) << 8) | at(6);
      return new CommandApdu({ ...header, ne: le === 0 ? 65536 : le }); // 2E
    }
    if (n < 7) throw new ApduFormatError(`extended length field truncated (${n} bytes)`);
    const lc = (at(5) << 8) | at(6);
    if (lc === 0) throw new ApduFormatError('extended Lc of 0000 is invalid');
    if (n === 7 + lc) return new CommandApdu({ ...header, data: bytes.subarray(7, 7 + lc) }); // 3E
    if (n === 9 + lc) {
      const le = (at(7 + lc) << 8) | at(8 + lc);
      return new CommandApdu({ ...header, data: bytes.subarray(7, 7 + lc), ne: le === 0 ? 65536 : le }); // 4E
    }
    throw new ApduFormatError(`extended Lc=${lc} does not match a body of ${n - 4} bytes`);
  }

  /** Human-readable form for logs and traces; the data of PIN commands is replaced by its length. */
  toString(): string {
    const h = toHex(Uint8Array.of(this.cla, this.ins, this.p1, this.p2));
    const parts = [`${h.slice(0, 2)} ${h.slice(2, 4)} ${h.slice(4, 6)} ${h.slice(6, 8)}`];
    if (this.nc > 0) {
      parts.push(`Lc=${this.nc}`, this.isSecretCarrying ? '<redacted>' : toHex(this.data));
    }
    if (this.ne !== undefined) parts.push(`Ne=${this.ne}`);
    return parts.join(' ');
  }

  /** Same as toString: keeps PINs out of JSON logs too. */
  toJSON(): string {
    return this.toString();
  }
}

function byte(name: string, value: number): number {
  if (!Number.isInteger(value) || value < 0 || value > 0xff) {
    throw new ApduFormatError(`${name} must be a byte (0..255), got ${String(value)}`);
  }
  return value;
}
