import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { fromHex, toHex } from '../../core/bytes.js';
import { TlvError } from '../../core/tlv.js';
import {
  encodeLength,
  encodeTlv,
  encodeTlvs,
  findAll,
  findTag,
  parseOne,
  parseTlv,
  tagBytes,
} from '../../core/tlv.js';
import type { ParseTlvOptions, Tlv, TlvInput } from '../../core/tlv.js';

const h = fromHex;

/** Asserts the call throws a TlvError (code TLV_INVALID) whose message matches. */
function expectTlvError(fn: () => unknown, message: RegExp): void {
  let caught: unknown;
  try {
    fn();
  } catch (e) {
    caught = e;
  }
  expect(caught).toBeInstanceOf(TlvError);
  expect((caught as TlvError).code).toBe('TLV_INVALID');
  expect((caught as TlvError).message).toMatch(message);
}

describe('parseTlv: tags', () => {
  it('parses a one-byte primitive tag', () => {
    expect(parseTlv(h('5A 02 01 02'))).toEqual([{ tag: 0x5a, constructed: false, value: h('0102') }]);
  });

  it('parses 2-, 3- and 4-byte tags as their wire bytes', () => {
    const [a, b, c] = parseTlv(h('5F20 01 41  BF8101 00  DF818203 01 FF'));
    expect(a).toMatchObject({ tag: 0x5f20, constructed: false, value: h('41') });
    expect(b).toMatchObject({ tag: 0xbf8101, constructed: true, children: [] });
    expect(c).toMatchObject({ tag: 0xdf818203, constructed: false, value: h('FF') });
  });

  it('accepts 1F followed by a byte below 1F (seen on cards)', () => {
    expect(parseTlv(h('1F05 01 AA'))).toEqual([{ tag: 0x1f05, constructed: false, value: h('AA') }]);
  });

  it('rejects a tag longer than 4 bytes', () => {
    expectTlvError(() => parseTlv(h('DF81828304 00')), /longer than 4 bytes at offset 0/);
  });

  it('rejects tag 00 unless padding is allowed', () => {
    expectTlvError(() => parseTlv(h('5A 00  00 01 00')), /tag 00 at offset 2/);
  });

  it('reports truncated tags at the tag offset', () => {
    expectTlvError(() => parseTlv(h('5A 00 5F')), /truncated tag at offset 2/);
    expectTlvError(() => parseTlv(h('5A 00 BF81')), /truncated tag at offset 2/);
  });
});

describe('parseTlv: lengths', () => {
  it('accepts the short form up to 7F', () => {
    const value = new Uint8Array(0x7f).fill(7);
    expect(parseTlv(Uint8Array.of(0x04, 0x7f, ...value))[0]?.value).toEqual(value);
    expect(parseTlv(h('04 00'))[0]?.value).toEqual(new Uint8Array(0));
  });

  it.each([
    ['81 80', 0x80],
    ['82 0100', 0x100],
    ['83 010000', 0x10000],
  ])('accepts the long form %s', (len, n) => {
    const value = new Uint8Array(n).map((_, i) => i & 0xff);
    const [tlv] = parseTlv(Uint8Array.of(0x04, ...h(len), ...value));
    expect(tlv?.value).toEqual(value);
  });

  it('accepts non-minimal long forms (81 05, 84 00000002)', () => {
    expect(parseTlv(h('04 81 05 0102030405'))[0]?.value).toEqual(h('0102030405'));
    expect(parseTlv(h('04 84 00000002 AABB'))[0]?.value).toEqual(h('AABB'));
    // and re-encodes them minimally
    expect(toHex(encodeTlvs(parseTlv(h('04 82 0002 AABB'))))).toBe('0402AABB');
  });

  it('rejects the indefinite form and 85+ forms', () => {
    expectTlvError(() => parseTlv(h('30 80 04 00 00 00')), /indefinite length \(80\) at offset 1/);
    expectTlvError(() => parseTlv(h('04 85 0000000001 AA')), /unsupported length form 85 at offset 1/);
    expectTlvError(() => parseTlv(h('04 FF')), /unsupported length form FF at offset 1/);
  });

  it('rejects a missing or truncated length', () => {
    expectTlvError(() => parseTlv(h('5A')), /truncated length at offset 1/);
    expectTlvError(() => parseTlv(h('5F20')), /truncated length at offset 2/);
    expectTlvError(() => parseTlv(h('04 82 01')), /truncated length at offset 1/);
  });

  it('rejects a length overrunning the input', () => {
    expectTlvError(() => parseTlv(h('04 03 0102')), /length 3 at offset 1 overruns the input \(2 bytes left\)/);
    expectTlvError(() => parseTlv(h('04 84 FFFFFFFF 00')), /length 4294967295 at offset 1 overruns/);
  });
});

describe('parseTlv: constructed and padding', () => {
  const fci = h('6F 0E 84 02 3F00  A5 08 BF0C 05 5F2D 02 6672');

  it('parses children recursively by default, and only the top level when asked', () => {
    expect(parseTlv(fci)).toEqual([
      {
        tag: 0x6f,
        constructed: true,
        value: fci.subarray(2),
        children: [
          { tag: 0x84, constructed: false, value: h('3F00') },
          {
            tag: 0xa5,
            constructed: true,
            value: h('BF0C 05 5F2D 02 6672'),
            children: [
              {
                tag: 0xbf0c,
                constructed: true,
                value: h('5F2D 02 6672'),
                children: [{ tag: 0x5f2d, constructed: false, value: h('6672') }],
              },
            ],
          },
        ],
      },
    ]);
    const [flat] = parseTlv(fci, { recursive: false });
    expect(flat).toEqual({ tag: 0x6f, constructed: true, value: fci.subarray(2) });
    expect(flat && 'children' in flat).toBe(false);
  });

  it('reports errors inside children at their offset in the whole input', () => {
    expectTlvError(() => parseTlv(h('5A 00  70 04 61 03 4F 01')), /length 3 at offset 5 overruns/);
    expectTlvError(() => parseTlv(h('70 03 04 05 00'), { recursive: true }), /length 5 at offset 3 overruns the input \(1 bytes left\)/);
    // not looked into without recursion
    expect(parseTlv(h('70 02 FF FF'), { recursive: false })).toHaveLength(1);
  });

  it('limits nesting to 32 levels', () => {
    const nest = (levels: number): Uint8Array =>
      levels === 0 ? h('04 00') : encodeTlv({ tag: 0x30, value: nest(levels - 1) });
    const ok = parseTlv(nest(32));
    expect(findTag(ok, 0x04)).toEqual({ tag: 0x04, constructed: false, value: new Uint8Array(0) });
    expectTlvError(() => parseTlv(nest(33)), /nesting deeper than 32 at offset 64/);
    expect(parseTlv(nest(200), { recursive: false })).toHaveLength(1);
  });

  it('skips 00 and FF between TLVs (top level and inside constructed) only when allowed', () => {
    const padded = h('00 FF 5A 01 01 FF 00  70 05 00 5F20 01 41 FF FF 00');
    const opts: ParseTlvOptions = { allowPadding: true };
    const list = parseTlv(padded, opts);
    expect(list.map((t) => t.tag)).toEqual([0x5a, 0x70]);
    expect(list[1]?.children).toEqual([{ tag: 0x5f20, constructed: false, value: h('41') }]);
    expect(parseTlv(h('00 00 FF'), opts)).toEqual([]);
    expectTlvError(() => parseTlv(padded), /tag 00 at offset 0/);
    // without padding, FF starts a multi-byte tag
    expect(parseTlv(h('FF01 00'))).toEqual([{ tag: 0xff01, constructed: true, value: new Uint8Array(0), children: [] }]);
  });

  it('returns [] for empty input and copies values out of the input', () => {
    expect(parseTlv(new Uint8Array(0))).toEqual([]);
    const input = h('5A 02 0102');
    const [tlv] = parseTlv(input);
    input.fill(0xee);
    expect(tlv?.value).toEqual(h('0102'));
  });
});

describe('parseOne', () => {
  it('parses exactly one TLV', () => {
    expect(parseOne(h('5F20 02 4142'))).toEqual({ tag: 0x5f20, constructed: false, value: h('4142') });
    expect(parseOne(h('00 5A 01 01 FF'), { allowPadding: true }).tag).toBe(0x5a);
    expect(parseOne(h('70 03 5A 01 01'), { recursive: false })).not.toHaveProperty('children');
  });

  it('rejects trailing bytes, empty input and padding unless allowed', () => {
    expectTlvError(() => parseOne(h('5A 01 01 5A 00')), /trailing bytes after the TLV at offset 3/);
    expectTlvError(() => parseOne(h('5A 01 01 00')), /trailing bytes after the TLV at offset 3/);
    expectTlvError(() => parseOne(h('5A 01 01 00 01'), { allowPadding: true }), /trailing bytes .* offset 4/);
    expectTlvError(() => parseOne(new Uint8Array(0)), /truncated tag at offset 0/);
    expectTlvError(() => parseOne(h('00 00'), { allowPadding: true }), /truncated tag at offset 2/);
  });
});

describe('encoding', () => {
  it.each([
    [0, '00'],
    [0x7f, '7F'],
    [0x80, '8180'],
    [0xff, '81FF'],
    [0x100, '820100'],
    [0xffff, '82FFFF'],
    [0x10000, '83010000'],
    [0x1000000, '8401000000'],
    [0xffffffff, '84FFFFFFFF'],
  ])('encodeLength(%i) = %s', (n, hex) => {
    expect(toHex(encodeLength(n))).toBe(hex);
  });

  it.each([-1, 1.5, 2 ** 32, Number.NaN])('encodeLength rejects %s', (n) => {
    expectTlvError(() => encodeLength(n), /cannot be encoded/);
  });

  it.each([
    [0x01, '01'],
    [0xff01, 'FF01'],
    [0x5f20, '5F20'],
    [0x7f49, '7F49'],
    [0xbf8101, 'BF8101'],
    [0xdf818203, 'DF818203'],
  ])('tagBytes(%i) = %s', (tag, hex) => {
    expect(toHex(tagBytes(tag))).toBe(hex);
  });

  it.each([
    [0, /invalid tag 00/],
    [-1, /invalid tag -1/],
    [1.5, /invalid tag 1.5/],
    [2 ** 32, /invalid tag 100000000/],
    [0x1f, /1F: not a valid BER tag/], // announces more bytes that are missing
    [0x5f, /not a valid BER tag/],
    [0x0120, /not a valid BER tag/], // two bytes but the first does not say so
    [0x5f80, /not a valid BER tag/], // last byte claims more follow
    [0x1f0181, /not a valid BER tag/], // middle byte does not claim more follow
  ])('tagBytes(%s) rejects', (tag, message) => {
    expectTlvError(() => tagBytes(tag), message);
    expectTlvError(() => encodeTlv({ tag, value: new Uint8Array(0) }), message);
  });

  it('encodes primitive and constructed TLVs with minimal lengths', () => {
    expect(toHex(encodeTlv({ tag: 0x5a }))).toBe('5A00');
    expect(toHex(encodeTlv({ tag: 0x5f20, value: h('4142') }))).toBe('5F20024142');
    const big = encodeTlv({ tag: 0x04, value: new Uint8Array(0x80) });
    expect(toHex(big.subarray(0, 3))).toBe('048180');
    expect(big).toHaveLength(0x83);
    expect(
      toHex(
        encodeTlv({
          tag: 0x7f49,
          children: [{ tag: 0x86, value: h('0102') }, { tag: 0xa5, children: [] }],
        }),
      ),
    ).toBe('7F490686020102A500');
    expect(toHex(encodeTlvs([{ tag: 0x5a, value: h('01') }, { tag: 0x5b }]))).toBe('5A01015B00');
    expect(encodeTlvs([])).toEqual(new Uint8Array(0));
  });

  it('lets children take precedence over value, and refuses children on a primitive tag', () => {
    expect(toHex(encodeTlv({ tag: 0x70, value: h('FFFF'), children: [{ tag: 0x5a }] }))).toBe('70025A00');
    expectTlvError(() => encodeTlv({ tag: 0x5a, children: [] }), /primitive tag 5A cannot have children/);
    expectTlvError(() => encodeTlv({ tag: 0x70, children: [{ tag: 0x5f }] }), /invalid tag 5F/);
  });
});

describe('findTag / findAll', () => {
  const tree = parseTlv(h('70 0B  5A 01 01  71 03 5A 01 02  5F20 00   5A 01 03  5F20 00'));

  it('finds depth-first: a parent before its children, children before the next sibling', () => {
    expect(findTag(tree, 0x5a)?.value).toEqual(h('01'));
    expect(findTag(tree, 0x71)?.children?.[0]?.value).toEqual(h('02'));
    expect(findAll(tree, 0x5a).map((t) => toHex(t.value))).toEqual(['01', '02', '03']);
    expect(findAll(tree, 0x5f20)).toHaveLength(2);
    expect(findTag(tree, 0x70)).toBe(tree[0]);
  });

  it('returns undefined / [] when absent', () => {
    expect(findTag(tree, 0x9f)).toBeUndefined();
    expect(findAll(tree, 0x9f)).toEqual([]);
    expect(findTag([], 0x5a)).toBeUndefined();
  });
});

// ---- property tests -------------------------------------------------------------------------

/** A generated tree, tag held as its wire bytes so the reference encoder below stays independent. */
type Node = { tagBytes: number[]; value: Uint8Array } | { tagBytes: number[]; children: Node[] };

const classBits = fc.constantFrom(0x00, 0x40, 0x80, 0xc0);
function tagArb(constructed: boolean): fc.Arbitrary<number[]> {
  const c = constructed ? 0x20 : 0;
  const single = fc
    .tuple(classBits, fc.integer({ min: 0, max: 0x1e }))
    .map(([cls, n]) => cls | c | n)
    .filter((b) => b !== 0)
    .map((b) => [b]);
  const multi = fc
    .tuple(classBits, fc.array(fc.integer({ min: 0x80, max: 0xff }), { maxLength: 2 }), fc.integer({ min: 0, max: 0x7f }))
    .map(([cls, more, last]) => [cls | c | 0x1f, ...more, last]);
  return fc.oneof(single, multi);
}
const leafArb: fc.Arbitrary<Node> = fc.record({ tagBytes: tagArb(false), value: fc.uint8Array({ maxLength: 300 }) });
function nodeArb(depth: number): fc.Arbitrary<Node> {
  if (depth === 0) return leafArb;
  return fc.oneof(leafArb, fc.record({ tagBytes: tagArb(true), children: fc.array(nodeArb(depth - 1), { maxLength: 4 }) }));
}
const forestArb = fc.array(nodeArb(3), { maxLength: 4 });

const tagOf = (bytes: readonly number[]): number => bytes.reduce((t, b) => t * 256 + b, 0);
const refLength = (n: number): number[] =>
  n < 0x80 ? [n] : n < 0x100 ? [0x81, n] : n < 0x10000 ? [0x82, n >> 8, n & 0xff] : [0x83, n >> 16, (n >> 8) & 0xff, n & 0xff];
function refEncode(node: Node): number[] {
  const v = 'children' in node ? node.children.flatMap(refEncode) : [...node.value];
  return [...node.tagBytes, ...refLength(v.length), ...v];
}
const toInput = (node: Node): TlvInput =>
  'children' in node ? { tag: tagOf(node.tagBytes), children: node.children.map(toInput) } : { tag: tagOf(node.tagBytes), value: node.value };

/** What a parse of `node` must give, minus the redundant `value` of constructed TLVs. */
type Shape = { tag: number; constructed: boolean; value?: Uint8Array; children?: Shape[] };
const expected = (node: Node): Shape =>
  'children' in node
    ? { tag: tagOf(node.tagBytes), constructed: true, children: node.children.map(expected) }
    : { tag: tagOf(node.tagBytes), constructed: false, value: node.value };
const shape = (t: Tlv): Shape =>
  t.children ? { tag: t.tag, constructed: t.constructed, children: t.children.map(shape) } : { tag: t.tag, constructed: t.constructed, value: t.value };

describe('properties', () => {
  it('encode → parse round-trips arbitrary trees, and encodes as the reference encoder', () => {
    fc.assert(
      fc.property(forestArb, (forest) => {
        const encoded = encodeTlvs(forest.map(toInput));
        expect(encoded).toEqual(Uint8Array.from(forest.flatMap(refEncode)));
        expect(parseTlv(encoded).map(shape)).toEqual(forest.map(expected));
      }),
    );
  });

  it('parse → encode is the identity on minimal encodings', () => {
    fc.assert(
      fc.property(forestArb, (forest) => {
        const bytes = Uint8Array.from(forest.flatMap(refEncode));
        const parsed = parseTlv(bytes);
        expect(parsed.map(shape)).toEqual(forest.map(expected));
        expect(encodeTlvs(parsed)).toEqual(bytes);
        expect(encodeTlvs(parseTlv(bytes, { recursive: false }))).toEqual(bytes);
      }),
    );
  });

  it('tagBytes gives back the wire bytes of every valid tag', () => {
    fc.assert(
      fc.property(fc.boolean().chain(tagArb), (bytes) => {
        expect(Array.from(tagBytes(tagOf(bytes)))).toEqual(bytes);
      }),
    );
  });

  it('any long length form (81..84, minimal or not) parses to the same value', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 300 }), fc.integer({ min: 1, max: 4 }), (value, n) => {
        const len = Array.from({ length: n }, (_, i) => Math.floor(value.length / 256 ** (n - 1 - i)) % 256);
        fc.pre(value.length < 256 ** n);
        const one = parseOne(Uint8Array.of(0x04, 0x80 | n, ...len, ...value));
        expect(one.value).toEqual(value);
      }),
    );
  });
});

// ---- fuzz -----------------------------------------------------------------------------------

/** Parsing either succeeds or throws TlvError; on success re-encoding never grows (padding and long forms only shrink). */
function checkParse(bytes: Uint8Array, opts: ParseTlvOptions): void {
  let parsed: Tlv[];
  try {
    parsed = parseTlv(bytes, opts);
  } catch (e) {
    if (e instanceof TlvError) return;
    throw e;
  }
  expect(encodeTlvs(parsed).length).toBeLessThanOrEqual(bytes.length);
}

describe('fuzz', () => {
  const optionSets: ParseTlvOptions[] = [{}, { allowPadding: true }, { recursive: false }];

  it.each(optionSets)('random bytes give a value or a TlvError (%o)', (opts) => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 300 }), (bytes) => checkParse(bytes, opts)),
      { numRuns: 10_000 },
    );
  });

  it('mutated valid encodings give a value or a TlvError', () => {
    const mutated = fc
      .tuple(forestArb, fc.nat(), fc.integer({ min: 0, max: 255 }), fc.nat())
      .map(([forest, at, byte, cut]) => {
        const bytes = Uint8Array.from(forest.flatMap(refEncode));
        if (bytes.length > 0) bytes[at % bytes.length] = byte;
        return bytes.subarray(0, bytes.length - (cut % 3));
      });
    fc.assert(
      fc.property(mutated, (bytes) => {
        checkParse(bytes, {});
        try {
          parseOne(bytes);
        } catch (e) {
          if (!(e instanceof TlvError)) throw e;
        }
      }),
      { numRuns: 10_000 },
    );
  });
});
