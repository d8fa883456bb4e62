/**
 * The card's own directories, read just far enough to find objects: EF.DIR application templates and
 * the PKCS#15 ODF, CDF, PrKDF, AODF and DODF entries (ISO 7816-15 / PKCS#15 v1.1). Only what the driver
 * needs is decoded; anything it does not understand is skipped, never guessed.
 */
import { toHex } from '../core/bytes.js';
import { CardProtocolError } from '../apdu/errors.js';
import { parseTlv, type Tlv } from '../core/tlv.js';

export interface Application {
  aid: Uint8Array;
  label: string | undefined;
  /** Absolute path of the application DF (FIDs, with 3F00), when EF.DIR gives one. */
  path: Uint8Array | undefined;
}

export interface Pkcs15Object {
  label: string;
  /** PKCS#15 iD (for keys and certificates) — ties a certificate to its key. */
  id: Uint8Array | undefined;
  /** Absolute path of the object's EF. */
  path: Uint8Array | undefined;
  /** Needs the PIN (authId present / private flag). */
  private: boolean;
}

export interface PrivateKeyObject extends Pkcs15Object {
  /** PKCS#15 KeyUsageFlags as named bits: 1 decrypt, 2 sign, 9 nonRepudiation. */
  usage: Set<number>;
  keyReference: number | undefined;
  modulusBits: number | undefined;
}

export interface PinObject {
  label: string;
  reference: number;
  minLength: number;
  maxLength: number;
  storedLength: number;
}

export interface Odf {
  prkdf?: Uint8Array;
  cdf?: Uint8Array;
  dodf?: Uint8Array;
  aodf?: Uint8Array;
}

const text = (v: Uint8Array): string => new TextDecoder().decode(v);

function parse(bytes: Uint8Array, what: string): Tlv[] {
  try {
    // Files may be padded with 00 or FF after their content.
    return parseTlv(bytes, { allowPadding: true });
  } catch (error) {
    throw new CardProtocolError(`${what} is not valid BER-TLV: ${(error as Error).message}`, { cause: error });
  }
}

export function parseEfDir(bytes: Uint8Array): Application[] {
  return parse(bytes, 'EF.DIR')
    .filter((t) => t.tag === 0x61)
    .map((t) => {
      const kids = t.children ?? [];
      const aid = kids.find((k) => k.tag === 0x4f)?.value;
      if (!aid) throw new CardProtocolError('EF.DIR application template without AID');
      const label = kids.find((k) => k.tag === 0x50)?.value;
      return { aid, label: label && text(label), path: kids.find((k) => k.tag === 0x51)?.value };
    });
}

/** A PKCS#15 Path: SEQUENCE { OCTET STRING path, ... }, made absolute against the application DF. */
function pathOf(seq: Tlv | undefined, app: Uint8Array): Uint8Array | undefined {
  const octets = seq?.tag === 0x30 ? seq.children?.find((c) => c.tag === 0x04)?.value : undefined;
  if (!octets) return undefined;
  if (octets[0] === 0x3f && octets[1] === 0x00) return octets;
  const out = new Uint8Array(app.length + octets.length);
  out.set(app);
  out.set(octets, app.length);
  return out;
}

export function parseOdf(bytes: Uint8Array, app: Uint8Array): Odf {
  const odf: Odf = {};
  for (const t of parse(bytes, 'ODF')) {
    const path = pathOf(t.children?.[0], app);
    if (!path) continue;
    if (t.tag === 0xa0) odf.prkdf = path;
    else if (t.tag === 0xa4) odf.cdf = path;
    else if (t.tag === 0xa7) odf.dodf = path;
    else if (t.tag === 0xa8) odf.aodf = path;
  }
  return odf;
}

function common(entry: Tlv): { label: string; private: boolean } {
  const attrs = entry.children?.[0]?.children ?? [];
  const label = attrs.find((a) => a.tag === 0x0c)?.value;
  const flags = attrs.find((a) => a.tag === 0x03)?.value;
  const authId = attrs.find((a) => a.tag === 0x04);
  const privateFlag = flags !== undefined && flags.length > 1 && ((flags[1] ?? 0) & 0x80) !== 0;
  return { label: label ? text(label) : '', private: privateFlag || authId !== undefined };
}

/** Named bits of a BIT STRING (bit 0 = MSB of the first content byte). */
function namedBits(value: Uint8Array | undefined): Set<number> {
  const out = new Set<number>();
  if (!value) return out;
  for (let i = 1; i < value.length; i++) {
    for (let b = 0; b < 8; b++) if (((value[i] ?? 0) & (0x80 >> b)) !== 0) out.add((i - 1) * 8 + b);
  }
  return out;
}

function integer(value: Uint8Array | undefined): number | undefined {
  if (!value || value.length === 0 || value.length > 4) return undefined;
  return value.reduce((n, b) => n * 256 + b, 0);
}

export function parseCdf(bytes: Uint8Array, app: Uint8Array): Pkcs15Object[] {
  return parse(bytes, 'CDF')
    .filter((t) => t.tag === 0x30)
    .map((entry) => {
      const id = entry.children?.[1]?.children?.find((c) => c.tag === 0x04)?.value;
      const typeAttrs = entry.children?.find((c) => c.tag === 0xa1)?.children?.[0];
      return { ...common(entry), id, path: pathOf(typeAttrs?.children?.[0], app) };
    });
}

export function parsePrkdf(bytes: Uint8Array, app: Uint8Array): PrivateKeyObject[] {
  return parse(bytes, 'PrKDF')
    .filter((t) => t.tag === 0x30)
    .map((entry) => {
      const keyAttrs = entry.children?.[1]?.children ?? [];
      const typeAttrs = entry.children?.find((c) => c.tag === 0xa1)?.children?.[0]?.children ?? [];
      const bitStrings = keyAttrs.filter((c) => c.tag === 0x03);
      return {
        ...common(entry),
        id: keyAttrs.find((c) => c.tag === 0x04)?.value,
        usage: namedBits(bitStrings[0]?.value),
        keyReference: integer(keyAttrs.find((c) => c.tag === 0x02)?.value),
        path: pathOf(typeAttrs[0], app),
        modulusBits: integer(typeAttrs.find((c) => c.tag === 0x02)?.value),
      };
    });
}

export function parseDodf(bytes: Uint8Array, app: Uint8Array): Pkcs15Object[] {
  return parse(bytes, 'DODF')
    .filter((t) => t.tag === 0x30)
    .map((entry) => {
      const typeAttrs = entry.children?.find((c) => c.tag === 0xa1);
      return { ...common(entry), id: undefined, path: pathOf(typeAttrs?.children?.[0], app) };
    });
}

export function parseAodf(bytes: Uint8Array): PinObject[] {
  const out: PinObject[] = [];
  for (const entry of parse(bytes, 'AODF')) {
    if (entry.tag !== 0x30) continue;
    const pin = entry.children?.find((c) => c.tag === 0xa1)?.children?.[0]?.children ?? [];
    const ints = pin.filter((c) => c.tag === 0x02).map((c) => integer(c.value) ?? 0);
    const reference = integer(pin.find((c) => c.tag === 0x80)?.value);
    if (reference === undefined) continue;
    const [minLength = 4, storedLength = 4, maxLength = storedLength] = ints;
    out.push({ label: common(entry).label, reference, minLength, maxLength, storedLength });
  }
  return out;
}

export function pathHex(path: Uint8Array | undefined): string {
  return path ? toHex(path) : '(none)';
}
