import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { describeProtocols, parseAtr } from '../../apdu/atr.js';
import type { Atr, InterfaceBytes } from '../../apdu/atr.js';
import { fromHex } from '../../core/bytes.js';
import { AtrError } from '../../apdu/errors.js';

const h = fromHex;

function expectAtrError(fn: () => unknown, message: RegExp): void {
  let caught: unknown;
  try {
    fn();
  } catch (e) {
    caught = e;
  }
  expect(caught).toBeInstanceOf(AtrError);
  expect((caught as AtrError).code).toBe('ATR_INVALID');
  expect((caught as AtrError).message).toMatch(message);
}

const T1_DEFAULTS = { ifsc: 32, bwi: 4, cwi: 13 };

describe('real card ATRs', () => {
  it('CPS3 contact: T=0 only, TB1 TD1 TC2, 12 historical bytes, no TCK', () => {
    const bytes = h('3B AC 00 40 2A 00 12 25 00 64 80 00 03 10 00 90 00');
    const atr = parseAtr(bytes);
    expect(atr).toEqual<Atr>({
      bytes,
      ts: 'direct',
      t0: 0xac,
      interfaceBytes: [
        { i: 1, tb: 0x00, td: 0x40 },
        { i: 2, tc: 0x2a },
      ],
      protocols: [0],
      historicalBytes: h('00 12 25 00 64 80 00 03 10 00 90 00'),
      tck: undefined,
      tckValid: undefined,
      fi: 372,
      di: 1,
      specificMode: false,
      specificProtocol: undefined,
      n: 0,
      wi: 42,
      t1: undefined,
    });
    expect(describeProtocols(atr)).toBe('T=0');
  });

  it('CPS3 contactless: TD1=80 (T=0) then TD2=01 (T=1), 15 historical bytes, TCK 0E valid', () => {
    const atr = parseAtr(h('3B 8F 80 01 00 31 B8 64 04 B0 EC C1 73 94 01 80 82 90 00 0E'));
    expect(atr.interfaceBytes).toEqual([
      { i: 1, td: 0x80 },
      { i: 2, td: 0x01 },
    ]);
    expect(atr.protocols).toEqual([0, 1]);
    expect(describeProtocols(atr)).toBe('T=0, T=1');
    expect(atr.historicalBytes).toEqual(h('00 31 B8 64 04 B0 EC C1 73 94 01 80 82 90 00'));
    expect(atr).toMatchObject({ tck: 0x0e, tckValid: true, fi: 372, di: 1, n: 0, wi: 10, t1: T1_DEFAULTS });
  });

  it.each([
    ['3B 9B 18 80 01 00 12 25 00 64 80 04 01 00 00 90 44', '00 12 25 00 64 80 04 01 00 00 90'],
    ['3B 9B 18 80 01 00 12 25 00 64 80 00 04 01 00 90 44', '00 12 25 00 64 80 00 04 01 00 90'],
  ])('CPS4 %s: TA1=18 (Fi 372, Di 12), T=0 and T=1, TCK 44 valid', (hex, historical) => {
    const atr = parseAtr(h(hex), { strictTck: true });
    expect(atr.interfaceBytes).toEqual([
      { i: 1, ta: 0x18, td: 0x80 },
      { i: 2, td: 0x01 },
    ]);
    expect(atr).toMatchObject({ t0: 0x9b, protocols: [0, 1], tck: 0x44, tckValid: true, fi: 372, di: 12 });
    expect(atr.historicalBytes).toEqual(h(historical));
    expect(atr.t1).toEqual(T1_DEFAULTS);
  });

  it('CPS4 T=0 only: T0=DC gives TA1=18, TC1=FF, TD1=00 (explicit T=0), 12 historical bytes, no TCK', () => {
    const atr = parseAtr(h('3B DC 18 FF 00 00 12 25 00 64 80 00 04 01 00 90 00'));
    expect(atr.interfaceBytes).toEqual([{ i: 1, ta: 0x18, tc: 0xff, td: 0x00 }]);
    expect(atr).toMatchObject({ protocols: [0], tck: undefined, tckValid: undefined, fi: 372, di: 12, n: 255, wi: 10 });
    expect(atr.historicalBytes).toEqual(h('00 12 25 00 64 80 00 04 01 00 90 00'));
    expect(atr.t1).toBeUndefined();
  });

  it('test ATR 3B 87 80 01 "NodeICC" 6F', () => {
    const atr = parseAtr(h('3B 87 80 01 4E 6F 64 65 49 43 43 6F'));
    expect(new TextDecoder().decode(atr.historicalBytes)).toBe('NodeICC');
    expect(atr).toMatchObject({ protocols: [0, 1], tck: 0x6f, tckValid: true });
  });
});

describe('parseAtr: decoding', () => {
  it('accepts the inverse convention and copies the input', () => {
    const input = h('3F 80 40 00');
    const atr = parseAtr(input);
    input.fill(0);
    expect(atr.ts).toBe('inverse');
    expect(atr.bytes).toEqual(h('3F 80 40 00'));
    expect(atr.wi).toBeUndefined(); // TC2 = 00 is RFU
  });

  it.each([
    [0x11, 372, 1],
    [0x96, 512, 32],
    [0xd7, 2048, 64],
    [0x38, 744, 12],
    [0x69, 1860, 20],
    [0x70, undefined, undefined], // FI 7 and DI 0 are RFU
    [0xea, undefined, undefined], // FI E and DI A are RFU
  ])('TA1=%i gives Fi=%s, Di=%s', (ta1, fi, di) => {
    const atr = parseAtr(Uint8Array.of(0x3b, 0x10, ta1));
    expect(atr.fi).toBe(fi);
    expect(atr.di).toBe(di);
  });

  it('decodes TA2 as specific mode and does not take it for T=1 parameters', () => {
    // TD1=11: TA2 follows, T=1; TA2=81: specific mode, T=1.
    const atr = parseAtr(h('3B 90 11 11 81 11'));
    expect(atr).toMatchObject({ specificMode: true, specificProtocol: 1, protocols: [1], tckValid: true });
    expect(atr.t1).toEqual(T1_DEFAULTS);
  });

  it('takes T=1 parameters from the group after the first TDi (i >= 2) indicating T=1', () => {
    // TD1=81 (T=1), TD2=31 (T=1; TA3, TB3 follow), TA3=FE, TB3=45.
    expect(parseAtr(h('3B 80 81 31 FE 45 8B')).t1).toEqual({ ifsc: 254, bwi: 4, cwi: 5 });
    expect(parseAtr(h('3B 80 81 31 FF 45 8A')).t1).toEqual({ ifsc: undefined, bwi: 4, cwi: 5 });
  });

  it('deduplicates protocols and leaves T=15 out, while T=15 still requires TCK', () => {
    expect(parseAtr(h('3B 80 81 81 01 81')).protocols).toEqual([1]);
    const t15 = parseAtr(h('3B 80 80 1F 03 1C'));
    expect(t15).toMatchObject({ protocols: [0], tck: 0x1c, tckValid: true });
    expect(t15.interfaceBytes).toEqual([
      { i: 1, td: 0x80 },
      { i: 2, td: 0x1f },
      { i: 3, ta: 0x03 },
    ]);
  });

  it('parses the minimal ATR (TS T0) and a full 33-byte ATR', () => {
    expect(parseAtr(h('3B 00'))).toMatchObject({ interfaceBytes: [], protocols: [0], historicalBytes: new Uint8Array(0) });
    // Four groups (TD1=F1, TD2=F1, TD3=71), 15 historical bytes, TCK: 2 + 15 + 15 + 1 = 33.
    const body = [0xff, 1, 2, 3, 0xf1, 4, 5, 6, 0xf1, 7, 8, 9, 0x71, 10, 11, 12, ...new Array<number>(15).fill(0x41)];
    const full = Uint8Array.of(0x3b, ...body, body.reduce((x, b) => x ^ b, 0));
    expect(full).toHaveLength(33);
    const atr = parseAtr(full, { strictTck: true });
    expect(atr.interfaceBytes).toHaveLength(4);
    expect(atr.interfaceBytes[3]).toEqual({ i: 4, ta: 10, tb: 11, tc: 12 });
    expect(atr.t1).toEqual({ ifsc: 7, bwi: 0, cwi: 8 }); // TA3/TB3: TD2 is the first TDi (i >= 2) with T=1
    expectAtrError(() => parseAtr(Uint8Array.of(...full, 0)), /34 bytes, more than the 33/);
  });

  it('reports a wrong TCK as tckValid: false, or throws with strictTck', () => {
    const bad = h('3B 87 80 01 4E 6F 64 65 49 43 43 6E');
    expect(parseAtr(bad)).toMatchObject({ tck: 0x6e, tckValid: false });
    expectAtrError(() => parseAtr(bad, { strictTck: true }), /invalid TCK 6E/);
  });
});

describe('parseAtr: errors', () => {
  it.each([
    ['', /empty ATR/],
    ['3C 00', /invalid TS 3C \(expected 3B or 3F\)/],
    ['03 00', /invalid TS 03/],
    ['3B', /T0 missing at offset 1/],
    ['3B 10', /TA1 missing at offset 2/],
    ['3B F0 01 02 03', /TD1 missing at offset 5/],
    ['3B 80 81', /TD2 missing at offset 3/],
    ['3B 80 40', /TC2 missing at offset 3/],
    ['3B 02 01', /T0 announces 2 historical bytes, only 1 present/],
    ['3B 80 01', /TCK missing at offset 3/],
    ['3B 81 01 41', /TCK missing at offset 4/],
    ['3B 00 00', /1 unexpected byte\(s\) after the historical bytes at offset 2/],
    ['3B 87 80 01 4E 6F 64 65 49 43 43 6F 00 00', /2 unexpected byte\(s\) after the TCK at offset 12/],
  ])('%s', (hex, message) => {
    expectAtrError(() => parseAtr(h(hex)), message);
  });
});

describe('properties', () => {
  const byte = fc.integer({ min: 0, max: 255 });
  const groupArb = fc.record({ ta: byte, tb: byte, tc: byte }, { requiredKeys: [] });
  // Groups linked by TDs carrying the given protocol nibbles; the last group must hold a byte,
  // or it would not exist (its Y would be 0).
  const atrArb = fc
    .tuple(
      fc.constantFrom(0x3b, 0x3f),
      fc.array(fc.tuple(groupArb, fc.integer({ min: 0, max: 15 })), { maxLength: 5 }),
      fc.uint8Array({ maxLength: 15 }),
    )
    .filter(([, groups]) => groups.length === 0 || Object.keys(groups[groups.length - 1]?.[0] ?? {}).length > 0);

  function build(ts: number, groups: readonly [Partial<Record<'ta' | 'tb' | 'tc', number>>, number][], hist: Uint8Array) {
    const y = (j: number): number => {
      const g = groups[j];
      if (!g) return 0;
      const [bytes] = g;
      return (bytes.ta === undefined ? 0 : 1) | (bytes.tb === undefined ? 0 : 2) | (bytes.tc === undefined ? 0 : 4) | (j < groups.length - 1 ? 8 : 0);
    };
    const expected: InterfaceBytes[] = [];
    const body = [(y(0) << 4) | hist.length];
    groups.forEach(([g, proto], j) => {
      const e: InterfaceBytes = { i: j + 1, ...g };
      body.push(...[g.ta, g.tb, g.tc].filter((b) => b !== undefined));
      if (j < groups.length - 1) {
        e.td = (y(j + 1) << 4) | proto;
        body.push(e.td);
      }
      expected.push(e);
    });
    body.push(...hist);
    const tds = groups.slice(0, -1).map(([, p]) => p);
    const needsTck = tds.some((p) => p !== 0);
    if (needsTck) body.push(body.reduce((x, b) => x ^ b, 0));
    return { bytes: Uint8Array.of(ts, ...body), expected, tds, needsTck };
  }

  it('generated well-formed ATRs parse back to their parts', () => {
    fc.assert(
      fc.property(atrArb, ([ts, groups, hist]) => {
        const { bytes, expected, tds, needsTck } = build(ts, groups, hist);
        fc.pre(bytes.length <= 33);
        const atr = parseAtr(bytes, { strictTck: true });
        expect(atr.interfaceBytes).toEqual(expected);
        expect(atr.historicalBytes).toEqual(hist);
        expect(atr.tck !== undefined).toBe(needsTck);
        expect(atr.tckValid).toBe(needsTck ? true : undefined);
        const offered = tds.filter((p) => p !== 15);
        expect(atr.protocols).toEqual(offered.length > 0 ? [...new Set(offered)] : [0]);
        if (needsTck) {
          // Any change to the last byte breaks the checksum.
          const bad = Uint8Array.of(...bytes.subarray(0, -1), (atr.tck ?? 0) ^ 0x01);
          expect(parseAtr(bad).tckValid).toBe(false);
        }
      }),
    );
  });
});

/** Parsing either succeeds, with a consistent result, or throws AtrError. */
function checkParse(bytes: Uint8Array): void {
  let atr: Atr;
  try {
    atr = parseAtr(bytes);
  } catch (e) {
    if (e instanceof AtrError) return;
    throw e;
  }
  expect(atr.bytes).toEqual(bytes);
  expect(atr.historicalBytes).toHaveLength(atr.t0 & 0x0f);
  expect(atr.tckValid === undefined).toBe(atr.tck === undefined);
  expect(atr.protocols.length).toBeGreaterThan(0);
}

describe('fuzz', () => {
  it('random bytes give an Atr or an AtrError', () => {
    fc.assert(fc.property(fc.uint8Array({ maxLength: 64 }), checkParse), { numRuns: 10_000 });
  });

  it('random bytes after a valid TS give an Atr or an AtrError', () => {
    const arb = fc.tuple(fc.constantFrom(0x3b, 0x3f), fc.uint8Array({ maxLength: 40 })).map(([ts, rest]) => Uint8Array.of(ts, ...rest));
    fc.assert(fc.property(arb, checkParse), { numRuns: 10_000 });
  });
});
