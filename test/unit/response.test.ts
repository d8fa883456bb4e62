/** ResponseApdu: wire codec, status word accessors, check() into typed errors, and toString. */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { CpsdError } from '../../core/errors.js';
import { fromHex, toHex } from '../../core/bytes.js';
import { ApduFormatError } from '../../apdu/errors.js';
import { ResponseApdu } from '../../apdu/response.js';
import {
  CardMemoryError,
  CardStatusError,
  ConditionsNotSatisfiedError,
  FileNotFoundError,
  PinBlockedError,
  SecurityStatusNotSatisfiedError,
  WrongLengthError,
  WrongParametersError,
  WrongPinError,
} from '../../apdu/status.js';

const h = fromHex;
const rsp = (hex: string): ResponseApdu => ResponseApdu.decode(h(hex));

/** Content of EF.SN.ICC of a CPS3 (12 bytes, from a real trace). */
const SN_ICC = '5A0A8025000001992138450F';

/** Runs fn and returns what it threw (fails the test if it did not throw). */
function thrown(fn: () => unknown): unknown {
  try {
    fn();
  } catch (e) {
    return e;
  }
  expect.fail('expected a throw');
}

function expectApduError(fn: () => unknown, message: string): void {
  const e = thrown(fn);
  expect(e).toBeInstanceOf(ApduFormatError);
  expect((e as ApduFormatError).code).toBe('APDU_INVALID');
  expect((e as ApduFormatError).message).toBe(message);
}

describe('ResponseApdu construction', () => {
  it('keeps data and status word', () => {
    const r = new ResponseApdu(h('AABB'), 0x6282);
    expect([toHex(r.data), r.sw]).toEqual(['AABB', 0x6282]);
  });

  it('accepts status words 0000..FFFF and rejects the rest', () => {
    expect(new ResponseApdu(new Uint8Array(0), 0).sw).toBe(0);
    expect(new ResponseApdu(new Uint8Array(0), 0xffff).sw).toBe(0xffff);
    for (const bad of [-1, 0x10000, 1.5, Number.NaN, Number.POSITIVE_INFINITY]) {
      expectApduError(() => new ResponseApdu(new Uint8Array(0), bad), `status word must be 16 bits, got ${String(bad)}`);
      expectApduError(() => ResponseApdu.of(bad), `status word must be 16 bits, got ${String(bad)}`);
    }
  });

  it('copies the data it is given', () => {
    const data = h('0102');
    const r = new ResponseApdu(data, 0x9000);
    data[0] = 0xff;
    expect(toHex(r.data)).toBe('0102');
    expect(r.data).not.toBe(data);
    const o = ResponseApdu.of(0x9000, data);
    data[1] = 0xff;
    expect(toHex(o.data)).toBe('FF02');
  });

  it('is frozen', () => {
    const r = ResponseApdu.of(0x9000);
    expect(Object.isFrozen(r)).toBe(true);
    expect(() => {
      (r as unknown as { sw: number }).sw = 0x6a82;
    }).toThrow(TypeError);
    expect(r.sw).toBe(0x9000);
  });

  it('of() builds a response with empty data by default', () => {
    const r = ResponseApdu.of(0x6a82);
    expect(r).toBeInstanceOf(ResponseApdu);
    expect([r.data.length, r.sw]).toEqual([0, 0x6a82]);
    const d = ResponseApdu.of(0x9000, h('5A0A'));
    expect([toHex(d.data), d.sw]).toEqual(['5A0A', 0x9000]);
  });
});

describe('ResponseApdu decode / encode', () => {
  it('splits data from the trailing status word', () => {
    const table: [string, string, number][] = [
      ['90 00', '', 0x9000],
      ['6A 82', '', 0x6a82],
      ['63 C2', '', 0x63c2],
      ['61 27', '', 0x6127],
      ['00 00', '', 0x0000],
      ['FF FF', '', 0xffff],
      [`${SN_ICC} 90 00`, SN_ICC, 0x9000],
      ['AA BB 62 82', 'AABB', 0x6282],
      ['90 00 90 00', '9000', 0x9000],
    ];
    for (const [wire, data, sw] of table) {
      const r = rsp(wire);
      expect([toHex(r.data), r.sw], wire).toEqual([data, sw]);
      expect(toHex(r.encode()), wire).toBe(wire.replace(/ /g, ''));
    }
  });

  it('rejects fewer than 2 bytes', () => {
    expectApduError(() => rsp(''), 'response APDU of 0 bytes has no status word');
    expectApduError(() => rsp('90'), 'response APDU of 1 bytes has no status word');
  });

  it('accepts 65536 data bytes and rejects more', () => {
    const max = new Uint8Array(65538);
    max[0] = 0x11;
    max[65535] = 0x22;
    max[65536] = 0x90;
    const r = ResponseApdu.decode(max);
    expect([r.data.length, r.data[0], r.data[65535], r.sw]).toEqual([65536, 0x11, 0x22, 0x9000]);
    expectApduError(() => ResponseApdu.decode(new Uint8Array(65539)), 'response APDU of 65539 bytes exceeds 65536 data bytes');
  });

  it('copies the data out of the input buffer, and accepts a Buffer', () => {
    const wire = h('01020304 9000');
    const r = ResponseApdu.decode(wire);
    wire.fill(0);
    expect([toHex(r.data), r.sw]).toEqual(['01020304', 0x9000]);
    const b = ResponseApdu.decode(Buffer.from('AB6282', 'hex'));
    expect([toHex(b.data), b.sw]).toEqual(['AB', 0x6282]);
  });

  it('encodes data then SW1 SW2 into a fresh array', () => {
    const r = ResponseApdu.of(0x6100, h('CAFE'));
    const out = r.encode();
    expect(toHex(out)).toBe('CAFE6100');
    out.fill(0);
    expect(toHex(r.encode())).toBe('CAFE6100');
    expect(toHex(r.data)).toBe('CAFE');
    expect(toHex(ResponseApdu.of(0x0001).encode())).toBe('0001');
  });

  it('round-trips of(sw, data) through encode and decode (property)', () => {
    fc.assert(
      fc.property(fc.integer({ min: 0, max: 0xffff }), fc.uint8Array({ maxLength: 300 }), (sw, data) => {
        const wire = ResponseApdu.of(sw, data).encode();
        expect(wire.length).toBe(data.length + 2);
        expect([wire[data.length], wire[data.length + 1]]).toEqual([sw >> 8, sw & 0xff]);
        const back = ResponseApdu.decode(wire);
        expect([toHex(back.data), back.sw]).toEqual([toHex(data), sw]);
      }),
      { numRuns: 1000 },
    );
  });

  it('decodes any bytes to a response or an ApduFormatError, and responses re-encode identically (10,000 runs)', () => {
    let decoded = 0;
    let rejected = 0;
    fc.assert(
      fc.property(fc.oneof(fc.uint8Array({ maxLength: 3 }), fc.uint8Array({ maxLength: 300 })), (bytes) => {
        let r: ResponseApdu;
        try {
          r = ResponseApdu.decode(bytes);
        } catch (e) {
          expect(e).toBeInstanceOf(ApduFormatError);
          expect(bytes.length).toBeLessThan(2);
          rejected++;
          return;
        }
        decoded++;
        expect(bytes.length).toBeGreaterThanOrEqual(2);
        expect(r.data.length).toBe(bytes.length - 2);
        expect([r.sw1, r.sw2]).toEqual([bytes[bytes.length - 2], bytes[bytes.length - 1]]);
        expect(toHex(r.encode())).toBe(toHex(bytes));
      }),
      { numRuns: 10_000 },
    );
    expect(decoded + rejected).toBe(10_000);
    expect(decoded).toBeGreaterThan(0);
    expect(rejected).toBeGreaterThan(0);
  });
});

describe('ResponseApdu status word accessors', () => {
  it('splits SW1 and SW2', () => {
    const table: [number, number, number][] = [
      [0x9000, 0x90, 0x00],
      [0x63c2, 0x63, 0xc2],
      [0x6a82, 0x6a, 0x82],
      [0x0090, 0x00, 0x90],
      [0xffff, 0xff, 0xff],
      [0x0000, 0x00, 0x00],
    ];
    for (const [sw, sw1, sw2] of table) {
      const r = ResponseApdu.of(sw);
      expect([r.sw1, r.sw2]).toEqual([sw1, sw2]);
    }
  });

  it('is ok for 9000 only', () => {
    expect(ResponseApdu.of(0x9000).ok).toBe(true);
    expect(ResponseApdu.of(0x9000, h('01')).ok).toBe(true);
    for (const sw of [0x9001, 0x9100, 0x0090, 0x6282, 0x6100, 0x9f16, 0x63c3, 0x0000]) {
      expect(ResponseApdu.of(sw).ok, sw.toString(16)).toBe(false);
    }
  });
});

describe('ResponseApdu.check', () => {
  it('returns the same response for 9000, with or without an allow list', () => {
    const r = ResponseApdu.of(0x9000, h('5A0A'));
    expect(r.check()).toBe(r);
    expect(r.check({})).toBe(r);
    expect(r.check({ allow: [] })).toBe(r);
    expect(r.check({ allow: [0x6282] })).toBe(r);
  });

  it('returns the response for a status word in the allow list', () => {
    const eof = ResponseApdu.of(0x6282, h('0102'));
    expect(eof.check({ allow: [0x6282] })).toBe(eof);
    expect(eof.check({ allow: [0x6a82, 0x6282] })).toBe(eof);
    const tries = ResponseApdu.of(0x63c3);
    expect(tries.check({ allow: [0x63c3] })).toBe(tries);
  });

  it('throws the typed error of the status family when not allowed', () => {
    const table: [number, new (sw: number) => CardStatusError, string, string][] = [
      [0x63c2, WrongPinError, 'PIN_INCORRECT', 'wrong PIN, 2 tries left (63C2)'],
      [0x6300, WrongPinError, 'PIN_INCORRECT', 'wrong PIN (6300)'],
      [0x9804, WrongPinError, 'PIN_INCORRECT', 'wrong PIN (9804)'],
      [0x6983, PinBlockedError, 'PIN_BLOCKED', 'card answered 6983: authentication method blocked'],
      [0x6982, SecurityStatusNotSatisfiedError, 'SECURITY_STATUS_NOT_SATISFIED', 'card answered 6982: security status not satisfied'],
      [0x6986, ConditionsNotSatisfiedError, 'CONDITIONS_NOT_SATISFIED', 'card answered 6986: command not allowed (no current EF)'],
      [0x6a82, FileNotFoundError, 'FILE_NOT_FOUND', 'card answered 6A82: file or application not found'],
      [0x6a86, WrongParametersError, 'WRONG_P1P2', 'card answered 6A86: incorrect parameters P1-P2'],
      [0x6c10, WrongLengthError, 'WRONG_LENGTH', 'card answered 6C10: wrong Le: 16 bytes available'],
      [0x6581, CardMemoryError, 'CARD_MEMORY', 'card answered 6581: execution error: memory failure'],
      // A warning is an error unless allowed.
      [0x6282, CardStatusError, 'CARD_ERROR', 'card answered 6282: warning: end of file or record reached before reading Ne bytes'],
      [0x6f00, CardStatusError, 'CARD_ERROR', 'card answered 6F00: no precise diagnosis'],
    ];
    for (const [sw, cls, code, message] of table) {
      const e = thrown(() => ResponseApdu.of(sw, h('AA')).check({ allow: [0x6a83, sw + 1] }));
      expect((e as object).constructor, sw.toString(16)).toBe(cls);
      expect(e).toBeInstanceOf(CardStatusError);
      expect(e).toBeInstanceOf(CpsdError);
      const err = e as CardStatusError;
      expect([err.sw, err.code, err.message]).toEqual([sw, code, message]);
    }
    expect((thrown(() => ResponseApdu.of(0x63c2).check()) as WrongPinError).triesLeft).toBe(2);
    expect((thrown(() => ResponseApdu.of(0x9804).check()) as WrongPinError).triesLeft).toBeUndefined();
  });

  it('accepts only the status words listed, not their neighbours', () => {
    expect(thrown(() => ResponseApdu.of(0x6283).check({ allow: [0x6282] }))).toBeInstanceOf(CardStatusError);
    expect(thrown(() => ResponseApdu.of(0x63c1).check({ allow: [0x63c2] }))).toBeInstanceOf(WrongPinError);
  });

  it('passes or throws for any status word exactly as the allow list says (property)', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 0, max: 0xffff }),
        fc.array(fc.integer({ min: 0, max: 0xffff }), { maxLength: 4 }),
        (sw, allow) => {
          const r = ResponseApdu.of(sw);
          if (sw === 0x9000 || allow.includes(sw)) {
            expect(r.check({ allow })).toBe(r);
          } else {
            const e = thrown(() => r.check({ allow }));
            expect(e).toBeInstanceOf(CardStatusError);
            expect((e as CardStatusError).sw).toBe(sw);
          }
        },
      ),
      { numRuns: 1000 },
    );
  });
});

describe('ResponseApdu.toString', () => {
  it('prints data, SW and its meaning', () => {
    const table: [string, string][] = [
      ['9000', '9000 (success)'],
      ['AB 9000', 'AB 9000 (success)'],
      [`${SN_ICC} 9000`, `${SN_ICC} 9000 (success)`],
      ['6A82', '6A82 (file or application not found)'],
      ['0102 6282', '0102 6282 (warning: end of file or record reached before reading Ne bytes)'],
      ['6127', '6127 (39 response bytes still available)'],
      ['9F16', '9F16 (CPS2ter: 22 response bytes available)'],
      ['63C1', '63C1 (verification failed, 1 try left)'],
      ['63C2', '63C2 (verification failed, 2 tries left)'],
      ['6C10', '6C10 (wrong Le: 16 bytes available)'],
      ['1234', '1234 (unknown status)'],
      ['0000', '0000 (unknown status)'],
      ['9840', '9840 (CPS2ter: PIN blocked)'],
    ];
    for (const [wire, text] of table) {
      expect(rsp(wire).toString()).toBe(text);
      expect(`${rsp(wire)}`).toBe(text);
    }
  });
});
