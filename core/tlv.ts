import { concatBytes } from './bytes.js';
import { CpsdError } from './errors.js';

/** Bytes that do not form valid BER-TLV, or a TLV that cannot be encoded. */
export class TlvError extends CpsdError {
  readonly code = 'TLV_INVALID';
}


/**
 * BER-TLV as used by ISO 7816-4 (X.690 tag and length rules, restricted to what smart cards emit).
 *
 * Tags are kept as the number formed by their bytes on the wire (0x5F20, 0x7F49, 0xBF8101), not as
 * the X.690 tag number: that is how card specifications name them, and it round-trips exactly.
 */
export interface Tlv {
  tag: number;
  /** Bit 6 of the first tag byte: the value is itself a concatenation of TLVs. */
  constructed: boolean;
  value: Uint8Array;
  /** Parsed content of a constructed TLV (only when parsed recursively). */
  children?: Tlv[];
}

/** What {@link encodeTlv} needs; a parsed {@link Tlv} fits, so parse → encode is direct. */
export interface TlvInput {
  tag: number;
  value?: Uint8Array;
  /** Takes precedence over `value`; only allowed on a constructed tag. */
  children?: readonly TlvInput[];
}

export interface ParseTlvOptions {
  /** Parse the content of constructed TLVs into `children`. Default true. */
  recursive?: boolean;
  /** Skip 00 and FF bytes between TLVs, as ISO 7816-4 allows in records and files. Default false. */
  allowPadding?: boolean;
}

const MAX_TAG_BYTES = 4;
// Bounds recursion so hostile input cannot exhaust the stack; real card data nests 3 or 4 deep.
const MAX_DEPTH = 32;

type Options = Required<ParseTlvOptions>;

/** Parses a concatenation of TLVs. Throws {@link TlvError} (with the offending offset) on any malformation. */
export function parseTlv(bytes: Uint8Array, opts: ParseTlvOptions = {}): Tlv[] {
  return parseList(bytes, 0, 0, resolve(opts));
}

/** Parses exactly one TLV (surrounded by padding only if allowed); trailing bytes are an error. */
export function parseOne(bytes: Uint8Array, opts: ParseTlvOptions = {}): Tlv {
  const o = resolve(opts);
  const [tlv, end] = readOne(bytes, skipPadding(bytes, 0, o), 0, 0, o);
  const rest = skipPadding(bytes, end, o);
  if (rest !== bytes.length) throw new TlvError(`trailing bytes after the TLV at offset ${rest}`);
  return tlv;
}

/** Encodes one TLV with the minimal length form. */
export function encodeTlv(tlv: TlvInput): Uint8Array {
  const tag = tagList(tlv.tag);
  let value = tlv.value ?? new Uint8Array(0);
  if (tlv.children) {
    // A primitive tag with children would not parse back as such: refuse instead of losing structure.
    if (((tag[0] ?? 0) & 0x20) === 0) throw new TlvError(`primitive tag ${tagName(tlv.tag)} cannot have children`);
    value = encodeTlvs(tlv.children);
  }
  return concatBytes([Uint8Array.from(tag), encodeLength(value.length), value]);
}

/** Encodes a concatenation of TLVs. */
export function encodeTlvs(list: readonly TlvInput[]): Uint8Array {
  return concatBytes(list.map(encodeTlv));
}

/** The wire bytes of a tag; throws {@link TlvError} if the number is not a valid BER tag of at most 4 bytes. */
export function tagBytes(tag: number): Uint8Array {
  return Uint8Array.from(tagList(tag));
}

/** Minimal BER length: short form below 0x80, else 81..84 followed by big-endian bytes. */
export function encodeLength(n: number): Uint8Array {
  if (!Number.isSafeInteger(n) || n < 0 || n > 0xffffffff) throw new TlvError(`length ${n} cannot be encoded`);
  if (n < 0x80) return Uint8Array.of(n);
  const bytes = bigEndian(n);
  return Uint8Array.of(0x80 | bytes.length, ...bytes);
}

/** First TLV with this tag, depth-first (a parent before its children, children before the next sibling). */
export function findTag(tlvs: readonly Tlv[], tag: number): Tlv | undefined {
  for (const t of tlvs) {
    if (t.tag === tag) return t;
    const hit = t.children && findTag(t.children, tag);
    if (hit) return hit;
  }
  return undefined;
}

/** Every TLV with this tag, in the same depth-first order as {@link findTag}. */
export function findAll(tlvs: readonly Tlv[], tag: number): Tlv[] {
  const out: Tlv[] = [];
  const walk = (list: readonly Tlv[]): void => {
    for (const t of list) {
      if (t.tag === tag) out.push(t);
      if (t.children) walk(t.children);
    }
  };
  walk(tlvs);
  return out;
}

function resolve(opts: ParseTlvOptions): Options {
  return { recursive: opts.recursive ?? true, allowPadding: opts.allowPadding ?? false };
}

function skipPadding(buf: Uint8Array, pos: number, o: Options): number {
  if (!o.allowPadding) return pos;
  while (buf[pos] === 0x00 || buf[pos] === 0xff) pos++;
  return pos;
}

// `base` is the offset of `buf` in the caller's input, so that nested errors point at the real byte.
function parseList(buf: Uint8Array, base: number, depth: number, o: Options): Tlv[] {
  const out: Tlv[] = [];
  for (let pos = skipPadding(buf, 0, o); pos < buf.length; pos = skipPadding(buf, pos, o)) {
    const [tlv, next] = readOne(buf, pos, base, depth, o);
    out.push(tlv);
    pos = next;
  }
  return out;
}

function readOne(buf: Uint8Array, pos: number, base: number, depth: number, o: Options): [Tlv, number] {
  const start = pos;
  const first = buf[pos++];
  if (first === undefined) throw new TlvError(`truncated tag at offset ${base + start}`);
  // 00 is BER end-of-contents, never a tag; here it can only be padding the caller did not allow.
  if (first === 0x00) throw new TlvError(`invalid tag 00 at offset ${base + start}`);
  let tag = first;
  if ((first & 0x1f) === 0x1f) {
    for (let count = 1; ; ) {
      const b = buf[pos++];
      if (b === undefined) throw new TlvError(`truncated tag at offset ${base + start}`);
      tag = tag * 256 + b; // not `<<`: a 4-byte tag would turn negative
      if ((b & 0x80) === 0) break;
      if (++count === MAX_TAG_BYTES) throw new TlvError(`tag longer than ${MAX_TAG_BYTES} bytes at offset ${base + start}`);
    }
  }

  const lenAt = pos;
  const l0 = buf[pos++];
  if (l0 === undefined) throw new TlvError(`truncated length at offset ${base + lenAt}`);
  let len = l0;
  if (l0 & 0x80) {
    const n = l0 & 0x7f;
    if (n === 0) throw new TlvError(`indefinite length (80) at offset ${base + lenAt}`);
    if (n > 4) throw new TlvError(`unsupported length form ${hex(l0)} at offset ${base + lenAt}`);
    if (pos + n > buf.length) throw new TlvError(`truncated length at offset ${base + lenAt}`);
    // Non-minimal forms (81 05) are accepted: cards emit them.
    len = 0;
    for (const b of buf.subarray(pos, pos + n)) len = len * 256 + b;
    pos += n;
  }
  if (len > buf.length - pos) {
    throw new TlvError(`length ${len} at offset ${base + lenAt} overruns the input (${buf.length - pos} bytes left)`);
  }

  const value = buf.slice(pos, pos + len); // a copy: results must not change if the caller reuses its buffer
  const tlv: Tlv = { tag, constructed: (first & 0x20) !== 0, value };
  if (tlv.constructed && o.recursive) {
    if (depth >= MAX_DEPTH) throw new TlvError(`TLV nesting deeper than ${MAX_DEPTH} at offset ${base + start}`);
    tlv.children = parseList(value, base + pos, depth + 1, o);
  }
  return [tlv, pos + len];
}

function tagList(tag: number): number[] {
  // Tag 0 is refused as the parser refuses it, so that whatever encodes also parses.
  if (!Number.isSafeInteger(tag) || tag <= 0 || tag > 0xffffffff) throw new TlvError(`invalid tag ${tagName(tag)}`);
  const bytes = bigEndian(tag);
  const [first = 0, ...rest] = bytes;
  const valid =
    rest.length === 0
      ? (first & 0x1f) !== 0x1f
      : (first & 0x1f) === 0x1f && rest.every((b, i) => (b & 0x80) === (i < rest.length - 1 ? 0x80 : 0));
  if (!valid) throw new TlvError(`invalid tag ${tagName(tag)}: not a valid BER tag encoding`);
  return bytes;
}

function bigEndian(n: number): number[] {
  const out: number[] = [];
  for (let v = n; v > 0; v = Math.floor(v / 256)) out.unshift(v % 256);
  return out;
}


const hex = (b: number): string => b.toString(16).toUpperCase().padStart(2, '0');
const tagName = (tag: number): string => (Number.isSafeInteger(tag) && tag >= 0 ? hex(tag) : String(tag));
