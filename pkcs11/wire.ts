/**
 * The module ↔ daemon wire format (docs/pkcs11-protocol.md): frames of a 4-byte big-endian length and
 * a body of tag-length-value fields. Every length is checked against what is left before it is used.
 */
import { CpsdError } from '../core/errors.js';

/** A frame or field that breaks the format: the connection is closed (one log line). */
export class WireError extends CpsdError {
  readonly code = 'INVALID_REQUEST';
}

export const MAX_FRAME = 1024 * 1024;

export const TAG = {
  OP: 0x0001,
  ID: 0x0002,
  RV: 0x0003,
  MESSAGE: 0x0004,
  VERSION: 0x0010,
  APP: 0x0011,
  DAEMON: 0x0012,
  SLOT: 0x0020,
  READER: 0x0021,
  PRESENT: 0x0022,
  GENERATION: 0x0023,
  SLOT_FLAGS: 0x0024,
  TOKEN: 0x0030,
  LABEL: 0x0031,
  MANUFACTURER: 0x0032,
  MODEL: 0x0033,
  SERIAL: 0x0034,
  TOKEN_FLAGS: 0x0035,
  PIN_MIN: 0x0036,
  PIN_MAX: 0x0037,
  MECHANISM: 0x0040,
  MECH_TYPE: 0x0041,
  MECH_MIN: 0x0042,
  MECH_MAX: 0x0043,
  MECH_FLAGS: 0x0044,
  OBJECT: 0x0050,
  HANDLE: 0x0051,
  ATTR: 0x0052,
  ATTR_TYPE: 0x0053,
  ATTR_KIND: 0x0054,
  ATTR_VALUE: 0x0055,
  USER_TYPE: 0x0060,
  PIN: 0x0061,
  DATA: 0x0062,
  SIGNATURE: 0x0063,
  PSS_HASH: 0x0064,
  PSS_MGF: 0x0065,
  PSS_SALT: 0x0066,
} as const;

export interface Field {
  tag: number;
  value: Buffer;
}

/** A field's value: bytes, a u32, a u8, UTF-8 text, or nested fields. */
export type Value = Buffer | Uint8Array | { u32: number } | { u8: number } | { utf8: string } | Field[] | EncodedFields;

/** Nested fields already encoded. */
export interface EncodedFields {
  encoded: Buffer;
}

export function u32(n: number): { u32: number } {
  return { u32: n };
}

function valueBytes(v: Value): Buffer {
  if (Buffer.isBuffer(v)) return v;
  if (v instanceof Uint8Array) return Buffer.from(v.buffer, v.byteOffset, v.byteLength);
  if (Array.isArray(v)) return encodeFields(v);
  if ('encoded' in v) return v.encoded;
  if ('u32' in v) {
    const b = Buffer.alloc(4);
    b.writeUInt32BE(v.u32 >>> 0);
    return b;
  }
  if ('u8' in v) return Buffer.of(v.u8 & 0xff);
  return Buffer.from(v.utf8, 'utf8');
}

/** A field, ready to be put in a body. */
export function field(tag: number, value: Value): Field {
  return { tag, value: valueBytes(value) };
}

export function encodeFields(fields: readonly Field[]): Buffer {
  const parts: Buffer[] = [];
  for (const f of fields) {
    const head = Buffer.alloc(6);
    head.writeUInt16BE(f.tag);
    head.writeUInt32BE(f.value.length, 2);
    parts.push(head, f.value);
  }
  return Buffer.concat(parts);
}

/** The fields of a body or of a nested value; throws WireError when a length runs past the end. */
export function decodeFields(body: Buffer): Field[] {
  const out: Field[] = [];
  let i = 0;
  while (i < body.length) {
    if (body.length - i < 6) throw new WireError('truncated field header');
    const tag = body.readUInt16BE(i);
    const len = body.readUInt32BE(i + 2);
    i += 6;
    if (len > body.length - i) throw new WireError('field length past the end of its parent');
    out.push({ tag, value: body.subarray(i, i + len) });
    i += len;
  }
  return out;
}

/** The frame of a body: its 4-byte length first. */
export function frame(fields: readonly Field[]): Buffer {
  const body = encodeFields(fields);
  const head = Buffer.alloc(4);
  head.writeUInt32BE(body.length);
  return Buffer.concat([head, body]);
}

/** Reads fields by tag, typed; a missing or malformed required field is a WireError. */
export class Fields {
  readonly #fields: Field[];

  constructor(fields: Field[]) {
    this.#fields = fields;
  }

  static of(body: Buffer): Fields {
    return new Fields(decodeFields(body));
  }

  has(tag: number): boolean {
    return this.#fields.some((f) => f.tag === tag);
  }

  bytes(tag: number): Buffer | undefined {
    return this.#fields.find((f) => f.tag === tag)?.value;
  }

  all(tag: number): Buffer[] {
    return this.#fields.filter((f) => f.tag === tag).map((f) => f.value);
  }

  u32(tag: number): number | undefined {
    const v = this.bytes(tag);
    if (v === undefined) return undefined;
    if (v.length !== 4) throw new WireError(`field 0x${tag.toString(16)} must be 4 bytes`);
    return v.readUInt32BE(0);
  }

  needU32(tag: number): number {
    const v = this.u32(tag);
    if (v === undefined) throw new WireError(`field 0x${tag.toString(16)} is missing`);
    return v;
  }

  utf8(tag: number): string | undefined {
    const v = this.bytes(tag);
    if (v === undefined) return undefined;
    const text = new TextDecoder('utf-8', { fatal: true });
    try {
      return text.decode(v);
    } catch {
      throw new WireError(`field 0x${tag.toString(16)} is not UTF-8`);
    }
  }

  needUtf8(tag: number): string {
    const v = this.utf8(tag);
    if (v === undefined) throw new WireError(`field 0x${tag.toString(16)} is missing`);
    return v;
  }
}

/**
 * Cuts a byte stream into frame bodies. A length of 0 or over MAX_FRAME is a WireError: the caller
 * closes the connection, since what follows cannot be trusted to be a frame boundary.
 */
export class FrameReader {
  #chunks: Buffer[] = [];
  #size = 0;

  push(chunk: Buffer): Buffer[] {
    this.#chunks.push(chunk);
    this.#size += chunk.length;
    const bodies: Buffer[] = [];
    for (;;) {
      if (this.#size < 4) break;
      const all = this.#chunks.length === 1 ? (this.#chunks[0] as Buffer) : Buffer.concat(this.#chunks);
      this.#chunks = [all];
      const n = all.readUInt32BE(0);
      if (n === 0 || n > MAX_FRAME) throw new WireError(`frame length ${n} out of range`);
      if (all.length < 4 + n) break;
      bodies.push(all.subarray(4, 4 + n));
      const rest = all.subarray(4 + n);
      this.#chunks = rest.length ? [rest] : [];
      this.#size = rest.length;
    }
    return bodies;
  }
}
