/** Command and response APDU codecs, and the status-word catalogue with its typed errors. */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { CommandApdu } from '../../apdu/command.js';
import { CpsdError } from '../../core/errors.js';
import { fromHex, toHex } from '../../core/bytes.js';
import { ApduFormatError } from '../../apdu/errors.js';
import { ResponseApdu } from '../../apdu/response.js';
import {
  CardMemoryError,
  CardStatusError,
  ClaNotSupportedError,
  ConditionsNotSatisfiedError,
  FileNotFoundError,
  FunctionNotSupportedError,
  InsNotSupportedError,
  PinBlockedError,
  ReferenceDataNotUsableError,
  ReferencedDataNotFoundError,
  SecurityStatusNotSatisfiedError,
  WrongDataError,
  WrongLengthError,
  WrongParametersError,
  WrongPinError,
  describeStatus,
  isSuccess,
  statusError,
} from '../../apdu/status.js';

const cmd = (hex: string): CommandApdu => CommandApdu.decode(fromHex(hex));

describe('CommandApdu', () => {
  it('decodes and re-encodes the seven ISO 7816-3 encodings', () => {
    const cases: [string, number, number, number | undefined, boolean][] = [
      ['00A40000', 1, 0, undefined, false], // case 1
      ['00B09C0000', 2, 0, 256, false], // 2S, Le 00 = 256
      ['00B000000C', 2, 0, 12, false], // 2S
      ['002000010431323334', 3, 4, undefined, false], // 3S: VERIFY
      ['00A40400088025000001FF010000', 4, 8, 256, false], // 4S
      ['00B00000000100', 2, 0, 256, true], // 2E
      ['00B00000000000', 2, 0, 65536, true], // 2E, Le 0000 = 65536
      [`00DA0000000100${'AB'.repeat(256)}`, 3, 256, undefined, true], // 3E
      [`002A80860001018${'1'}${'CD'.repeat(256)}0100`, 4, 257, 256, true], // 4E
    ];
    for (const [hex, kase, nc, ne, extended] of cases) {
      const c = cmd(hex);
      expect([c.case, c.nc, c.ne]).toEqual([kase, nc, ne]);
      expect(toHex(c.encode({ extended }))).toBe(hex);
    }
  });

  it('chooses short encoding when it fits and extended when it must', () => {
    expect(toHex(new CommandApdu({ cla: 0, ins: 0xb0, p1: 0, p2: 0, ne: 256 }).encode())).toBe('00B0000000');
    expect(toHex(new CommandApdu({ cla: 0, ins: 0xb0, p1: 0, p2: 0, ne: 257 }).encode())).toBe('00B00000000101');
    expect(toHex(new CommandApdu({ cla: 0, ins: 0xb0, p1: 0, p2: 0 }).encode({ extended: true }))).toBe('00B00000');
    const long = new CommandApdu({ cla: 0, ins: 0xda, p1: 0, p2: 0, data: new Uint8Array(300) });
    expect(long.needsExtended).toBe(true);
    expect(() => long.encode({ extended: false })).toThrow(ApduFormatError);
  });

  it('rejects malformed encodings with ApduFormatError', () => {
    for (const hex of ['', '00A400', '00A4000003AABB', '00A40000000000AA', '00A4000000', '00A40000000003AABB', '00A4000002AABBCCDD']) {
      if (hex === '00A4000000') continue; // 2S with Le 00: valid
      expect(() => cmd(hex), hex).toThrow(ApduFormatError);
    }
    expect(() => cmd('00A40000000000')).not.toThrow(); // 2E Le 0000
    expect(toHex(cmd('00A400000000020102').data)).toBe('0102'); // 3E with Lc 0002
  });

  it('checks header bytes and lengths when building', () => {
    expect(() => new CommandApdu({ cla: 256, ins: 0xa4, p1: 0, p2: 0 })).toThrow(ApduFormatError);
    expect(() => new CommandApdu({ cla: 0, ins: 0x61, p1: 0, p2: 0 })).toThrow(/procedure byte/);
    expect(() => new CommandApdu({ cla: 0, ins: 0x92, p1: 0, p2: 0 })).toThrow(ApduFormatError);
    expect(() => new CommandApdu({ cla: 0, ins: 0xa4, p1: -1, p2: 0 })).toThrow(ApduFormatError);
    expect(() => new CommandApdu({ cla: 0, ins: 0xa4, p1: 0, p2: 0, ne: 0 })).toThrow(ApduFormatError);
    expect(() => new CommandApdu({ cla: 0, ins: 0xa4, p1: 0, p2: 0, ne: 65537 })).toThrow(ApduFormatError);
    expect(() => new CommandApdu({ cla: 0, ins: 0xa4, p1: 0, p2: 0, data: new Uint8Array(65536) })).toThrow(ApduFormatError);
    expect(new CommandApdu({ cla: 0xff, ins: 0xca, p1: 0, p2: 0, ne: 256 }).cla).toBe(0xff); // PC/SC pseudo-APDU
  });

  it('copies its data and derives new commands with with()', () => {
    const data = Uint8Array.of(1, 2, 3);
    const c = new CommandApdu({ cla: 0, ins: 0xa4, p1: 4, p2: 0x0c, data, ne: 10 });
    data[0] = 9;
    expect(c.data[0]).toBe(1);
    expect(c.with({ ne: undefined }).ne).toBeUndefined();
    expect(c.with({ p2: 4 }).p2).toBe(4);
    expect(c.with({}).ne).toBe(10);
  });

  it('never prints PIN data (VERIFY, CHANGE, RESET RETRY COUNTER), in toString or JSON', () => {
    for (const ins of [0x20, 0x21, 0x24, 0x25, 0x26, 0x28, 0x2c, 0x2d]) {
      const c = new CommandApdu({ cla: 0, ins, p1: 0, p2: 1, data: new TextEncoder().encode('1234') });
      expect(c.isSecretCarrying).toBe(true);
      expect(c.toString()).not.toContain('31323334');
      expect(JSON.stringify({ c })).not.toContain('31323334');
      expect(c.toString()).toContain('<redacted>');
    }
    const select = new CommandApdu({ cla: 0, ins: 0xa4, p1: 4, p2: 0, data: fromHex('3F00') });
    expect(select.toString()).toBe('00 A4 04 00 Lc=2 3F00');
    expect(new CommandApdu({ cla: 0, ins: 0x20, p1: 0, p2: 1 }).isSecretCarrying).toBe(false);
  });

  const header = fc.record({
    cla: fc.integer({ min: 0, max: 255 }),
    ins: fc.integer({ min: 0, max: 255 }).filter((i) => (i & 0xf0) !== 0x60 && (i & 0xf0) !== 0x90),
    p1: fc.integer({ min: 0, max: 255 }),
    p2: fc.integer({ min: 0, max: 255 }),
  });

  it('round-trips arbitrary short and extended commands (property)', () => {
    fc.assert(
      fc.property(
        header,
        fc.uint8Array({ maxLength: 300 }),
        fc.option(fc.integer({ min: 1, max: 65536 }), { nil: undefined }),
        fc.boolean(),
        (h, data, ne, forceExtended) => {
          const c = new CommandApdu({ ...h, data, ne });
          const extended = forceExtended || c.needsExtended;
          const back = CommandApdu.decode(c.encode({ extended }));
          expect([back.cla, back.ins, back.p1, back.p2, toHex(back.data), back.ne]).toEqual([h.cla, h.ins, h.p1, h.p2, toHex(data), ne]);
        },
      ),
      { numRuns: 2000 },
    );
  });

  it('gives a value or an ApduFormatError for 10,000 random byte strings, and values re-encode exactly', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 300 }), (bytes) => {
        let c: CommandApdu;
        try {
          c = CommandApdu.decode(bytes);
        } catch (e) {
          expect(e).toBeInstanceOf(ApduFormatError);
          return;
        }
        const extended = bytes.length > 5 && bytes[4] === 0;
        expect(toHex(c.encode({ extended }))).toBe(toHex(bytes));
      }),
      { numRuns: 10_000 },
    );
  });
});

describe('ResponseApdu', () => {
  it('splits data and status word, and encodes back', () => {
    const r = ResponseApdu.decode(fromHex('5A0A80259000'));
    expect([toHex(r.data), r.sw, r.sw1, r.sw2, r.ok]).toEqual(['5A0A8025', 0x9000, 0x90, 0x00, true]);
    expect(toHex(r.encode())).toBe('5A0A80259000');
    expect(ResponseApdu.of(0x6a82).data.length).toBe(0);
    expect(() => ResponseApdu.decode(Uint8Array.of(0x90))).toThrow(ApduFormatError);
    expect(() => new ResponseApdu(new Uint8Array(0), 0x10000)).toThrow(ApduFormatError);
  });

  it('checks the status word into the typed error of its family, allowing listed warnings', () => {
    expect(() => ResponseApdu.of(0x63c2).check()).toThrow(WrongPinError);
    expect(ResponseApdu.of(0x6282, Uint8Array.of(1)).check({ allow: [0x6282] }).data[0]).toBe(1);
    expect(() => ResponseApdu.of(0x6282).check()).toThrow(CardStatusError);
    expect(ResponseApdu.of(0x9000).check().ok).toBe(true);
    expect(ResponseApdu.of(0x6a82).toString()).toBe('6A82 (file or application not found)');
    expect(ResponseApdu.of(0x9000, Uint8Array.of(0xab)).toString()).toBe('AB 9000 (success)');
  });

  it('gives a value or an ApduFormatError for 10,000 random byte strings', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 64 }), (bytes) => {
        try {
          expect(toHex(ResponseApdu.decode(bytes).encode())).toBe(toHex(bytes));
        } catch (e) {
          expect(e).toBeInstanceOf(ApduFormatError);
          expect(bytes.length).toBeLessThan(2);
        }
      }),
      { numRuns: 10_000 },
    );
  });
});

describe('status words', () => {
  it('maps each family to its class and stable code', () => {
    const table: [number, new (...args: never[]) => CardStatusError, string][] = [
      [0x63c2, WrongPinError, 'PIN_INCORRECT'],
      [0x6300, WrongPinError, 'PIN_INCORRECT'],
      [0x9804, WrongPinError, 'PIN_INCORRECT'],
      [0x6983, PinBlockedError, 'PIN_BLOCKED'],
      [0x9840, PinBlockedError, 'PIN_BLOCKED'],
      [0x6982, SecurityStatusNotSatisfiedError, 'SECURITY_STATUS_NOT_SATISFIED'],
      [0x6984, ReferenceDataNotUsableError, 'REFERENCE_DATA_NOT_USABLE'],
      [0x9808, ReferenceDataNotUsableError, 'REFERENCE_DATA_NOT_USABLE'],
      [0x6985, ConditionsNotSatisfiedError, 'CONDITIONS_NOT_SATISFIED'],
      [0x6a82, FileNotFoundError, 'FILE_NOT_FOUND'],
      [0x6a83, FileNotFoundError, 'FILE_NOT_FOUND'],
      [0x9404, FileNotFoundError, 'FILE_NOT_FOUND'],
      [0x6a88, ReferencedDataNotFoundError, 'REFERENCED_DATA_NOT_FOUND'],
      [0x6a86, WrongParametersError, 'WRONG_P1P2'],
      [0x6b00, WrongParametersError, 'WRONG_P1P2'],
      [0x6700, WrongLengthError, 'WRONG_LENGTH'],
      [0x6c10, WrongLengthError, 'WRONG_LENGTH'],
      [0x6a80, WrongDataError, 'WRONG_DATA'],
      [0x6884, FunctionNotSupportedError, 'FUNCTION_NOT_SUPPORTED'],
      [0x6d00, InsNotSupportedError, 'INS_NOT_SUPPORTED'],
      [0x6e00, ClaNotSupportedError, 'CLA_NOT_SUPPORTED'],
      [0x6581, CardMemoryError, 'CARD_MEMORY'],
      [0x6a84, CardMemoryError, 'CARD_MEMORY'],
      [0x9240, CardMemoryError, 'CARD_MEMORY'],
      [0x6f00, CardStatusError, 'CARD_ERROR'],
      [0x1234, CardStatusError, 'CARD_ERROR'],
    ];
    for (const [sw, cls, code] of table) {
      const e = statusError(sw);
      expect(e, sw.toString(16)).toBeInstanceOf(cls);
      expect(e).toBeInstanceOf(CpsdError);
      expect(e.code).toBe(code);
      expect(e.sw).toBe(sw);
    }
  });

  it('carries the tries left of 63Cx, and none where the card does not say', () => {
    expect((statusError(0x63c2) as WrongPinError).triesLeft).toBe(2);
    expect((statusError(0x63c0) as WrongPinError).triesLeft).toBe(0);
    expect((statusError(0x6300) as WrongPinError).triesLeft).toBeUndefined();
    expect((statusError(0x9804) as WrongPinError).triesLeft).toBeUndefined();
    expect(statusError(0x63c1).message).toBe('wrong PIN, 1 try left (63C1)');
  });

  it('describes every status word without throwing', () => {
    expect(describeStatus(0x9000)).toEqual({ sw: 0x9000, kind: 'success', meaning: 'success' });
    expect(describeStatus(0x6127)).toMatchObject({ kind: 'bytes-available', meaning: '39 response bytes still available' });
    expect(describeStatus(0x6100).meaning).toBe('256 response bytes still available');
    expect(describeStatus(0x9f16)).toMatchObject({ kind: 'bytes-available' });
    expect(describeStatus(0x63c3)).toMatchObject({ kind: 'warning', meaning: 'verification failed, 3 tries left' });
    expect(describeStatus(0x6c20).meaning).toBe('wrong Le: 32 bytes available');
    expect(describeStatus(0x6599)).toMatchObject({ kind: 'execution-error', meaning: 'execution error' });
    expect(describeStatus(0x6a82)).toMatchObject({ kind: 'checking-error' });
    expect(describeStatus(0x1234).meaning).toBe('unknown status');
    expect(isSuccess(0x9000)).toBe(true);
    expect(isSuccess(0x6282)).toBe(false);
    fc.assert(
      fc.property(fc.integer({ min: 0, max: 0xffff }), (sw) => {
        expect(describeStatus(sw).sw).toBe(sw);
      }),
    );
  });
});
