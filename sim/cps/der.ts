/** Minimal DER builders for the PKCS#15 files the virtual card carries (built once, at personalisation). */
import { concatBytes } from '../../core/bytes.js';
import { encodeTlv, type TlvInput } from '../../core/tlv.js';

/** Concatenation of DER parts. */
export const cat = concatBytes;

export type Der = Uint8Array;

const tlv = (tag: number, value: Uint8Array): Der => encodeTlv({ tag, value });
const cons = (tag: number, parts: readonly Der[]): Der => encodeTlv({ tag, value: cat(parts) });

export const seq = (...parts: Der[]): Der => cons(0x30, parts);
export const set = (...parts: Der[]): Der => cons(0x31, parts);
export const octets = (v: Uint8Array): Der => tlv(0x04, v);
export const utf8 = (s: string): Der => tlv(0x0c, new TextEncoder().encode(s));
export const bool = (b: boolean): Der => tlv(0x01, Uint8Array.of(b ? 0xff : 0x00));
export const nul = (): Der => tlv(0x05, new Uint8Array(0));

export function int(n: number): Der {
  if (!Number.isSafeInteger(n) || n < 0) throw new RangeError(`int ${n}`);
  const bytes: number[] = [];
  let v = n;
  do {
    bytes.unshift(v & 0xff);
    v = Math.floor(v / 256);
  } while (v > 0);
  if ((bytes[0] ?? 0) & 0x80) bytes.unshift(0);
  return tlv(0x02, Uint8Array.from(bytes));
}

/** BIT STRING from a list of named-bit positions (bit 0 = most significant bit of the first byte). */
export function bits(positions: readonly number[], tag = 0x03): Der {
  const max = positions.length === 0 ? -1 : Math.max(...positions);
  const nbytes = Math.floor(max / 8) + 1;
  const out = new Uint8Array(Math.max(nbytes, 0) + 1);
  for (const p of positions) out[1 + (p >> 3)] = (out[1 + (p >> 3)] ?? 0) | (0x80 >> (p & 7));
  // DER: unused bits count = trailing zero bits of the last byte for named-bit lists.
  out[0] = max < 0 ? 0 : 7 - (max & 7);
  return tlv(tag, out);
}

export function oid(dotted: string): Der {
  const arcs = dotted.split('.').map(Number);
  const [a = 0, b = 0, ...rest] = arcs;
  const out: number[] = [a * 40 + b];
  for (const arc of rest) {
    const chunk: number[] = [arc & 0x7f];
    let v = Math.floor(arc / 128);
    while (v > 0) {
      chunk.unshift((v & 0x7f) | 0x80);
      v = Math.floor(v / 128);
    }
    out.push(...chunk);
  }
  return tlv(0x06, Uint8Array.from(out));
}

/** [n] context-specific, constructed (explicit or implicit SEQUENCE content). */
export const ctx = (n: number, ...parts: Der[]): Der => cons(0xa0 | n, parts);
/** [n] context-specific, primitive (implicit tagging of a primitive value). */
export const ctxPrim = (n: number, value: Uint8Array): Der => tlv(0x80 | n, value);

/** Re-tags a DER element (implicit tagging): keeps the value, replaces the tag. */
export function retag(tag: number, der: Der): Der {
  const parsed = parseHeader(der);
  return tlv(tag, der.subarray(parsed));
}

function parseHeader(der: Der): number {
  const i = 1;
  const first = der[i] ?? 0;
  if (first < 0x80) return i + 1;
  return i + 1 + (first & 0x7f);
}


export type { TlvInput };
