/** Status words: describeStatus (exact and range words) and statusError (typed errors and codes). */
import { describe, expect, it } from 'vitest';
import { CpsdError } from '../../core/errors.js';
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
  STATUS_CATALOGUE,
  SecurityStatusNotSatisfiedError,
  WrongDataError,
  WrongLengthError,
  WrongParametersError,
  WrongPinError,
  describeStatus,
  isSuccess,
  statusError,
} from '../../apdu/status.js';
import type { StatusKind } from '../../apdu/status.js';

const swHex = (sw: number): string => sw.toString(16).toUpperCase().padStart(4, '0');

/** The kind ISO 7816-4 gives an SW1, written out independently of the implementation. */
function isoKind(sw1: number): StatusKind {
  if (sw1 === 0x90) return 'success';
  if (sw1 === 0x61 || sw1 === 0x9f) return 'bytes-available';
  if (sw1 === 0x62 || sw1 === 0x63) return 'warning';
  if (sw1 === 0x64 || sw1 === 0x65 || sw1 === 0x66) return 'execution-error';
  return 'checking-error';
}

describe('describeStatus: exact words', () => {
  it('gives the catalogue meaning and the kind of its SW1', () => {
    const table: [number, StatusKind, string][] = [
      [0x9000, 'success', 'success'],
      [0x6282, 'warning', 'warning: end of file or record reached before reading Ne bytes'],
      [0x6300, 'warning', 'warning: verification failed'],
      [0x6381, 'warning', 'warning: file filled up by the last write'],
      [0x6400, 'execution-error', 'execution error: state of non-volatile memory unchanged'],
      [0x6500, 'execution-error', 'execution error: state of non-volatile memory changed'],
      [0x6581, 'execution-error', 'execution error: memory failure'],
      [0x6600, 'execution-error', 'execution error: security-related issue'],
      [0x6700, 'checking-error', 'wrong length'],
      [0x6882, 'checking-error', 'secure messaging not supported'],
      [0x6982, 'checking-error', 'security status not satisfied'],
      [0x6983, 'checking-error', 'authentication method blocked'],
      [0x6984, 'checking-error', 'reference data not usable'],
      [0x6985, 'checking-error', 'conditions of use not satisfied'],
      [0x6a82, 'checking-error', 'file or application not found'],
      [0x6a83, 'checking-error', 'record not found'],
      [0x6a86, 'checking-error', 'incorrect parameters P1-P2'],
      [0x6a88, 'checking-error', 'referenced data or reference data not found'],
      [0x6b00, 'checking-error', 'wrong parameters P1-P2'],
      [0x6d00, 'checking-error', 'instruction code not supported or invalid'],
      [0x6e00, 'checking-error', 'class not supported'],
      [0x6f00, 'checking-error', 'no precise diagnosis'],
      [0x9240, 'checking-error', 'CPS2ter: memory problem (corrupted header)'],
      [0x9404, 'checking-error', 'CPS2ter: file not found'],
      [0x9802, 'checking-error', 'CPS2ter: no PIN defined'],
      [0x9804, 'checking-error', 'CPS2ter: access condition not fulfilled (wrong PIN)'],
      [0x9808, 'checking-error', 'CPS2ter: in contradiction with PIN status'],
      [0x9840, 'checking-error', 'CPS2ter: PIN blocked'],
    ];
    for (const [sw, kind, meaning] of table) {
      expect(describeStatus(sw), swHex(sw)).toEqual({ sw, kind, meaning });
    }
  });

  it('prefers every catalogue entry over the range rules', () => {
    for (const [sw, meaning] of STATUS_CATALOGUE) {
      expect(describeStatus(sw), swHex(sw)).toEqual({ sw, kind: isoKind(sw >> 8), meaning });
    }
  });
});

describe('describeStatus: ranges', () => {
  it('61xx: response bytes still available, 00 = 256', () => {
    expect(describeStatus(0x6100)).toEqual({ sw: 0x6100, kind: 'bytes-available', meaning: '256 response bytes still available' });
    expect(describeStatus(0x6101)).toEqual({ sw: 0x6101, kind: 'bytes-available', meaning: '1 response bytes still available' });
    expect(describeStatus(0x6127)).toEqual({ sw: 0x6127, kind: 'bytes-available', meaning: '39 response bytes still available' });
    expect(describeStatus(0x61ff)).toEqual({ sw: 0x61ff, kind: 'bytes-available', meaning: '255 response bytes still available' });
  });

  it('9Fxx: CPS2ter response bytes available, 00 = 256', () => {
    expect(describeStatus(0x9f00)).toEqual({ sw: 0x9f00, kind: 'bytes-available', meaning: 'CPS2ter: 256 response bytes available' });
    expect(describeStatus(0x9f16)).toEqual({ sw: 0x9f16, kind: 'bytes-available', meaning: 'CPS2ter: 22 response bytes available' });
    expect(describeStatus(0x9fff)).toEqual({ sw: 0x9fff, kind: 'bytes-available', meaning: 'CPS2ter: 255 response bytes available' });
  });

  it('6Cxx: wrong Le with the right length, 00 = 256', () => {
    expect(describeStatus(0x6c00)).toEqual({ sw: 0x6c00, kind: 'checking-error', meaning: 'wrong Le: 256 bytes available' });
    expect(describeStatus(0x6c10)).toEqual({ sw: 0x6c10, kind: 'checking-error', meaning: 'wrong Le: 16 bytes available' });
    expect(describeStatus(0x6ce7)).toEqual({ sw: 0x6ce7, kind: 'checking-error', meaning: 'wrong Le: 231 bytes available' });
  });

  it('63Cx: verification failed with x tries left (singular for 1)', () => {
    expect(describeStatus(0x63c0)).toEqual({ sw: 0x63c0, kind: 'warning', meaning: 'verification failed, 0 tries left' });
    expect(describeStatus(0x63c1)).toEqual({ sw: 0x63c1, kind: 'warning', meaning: 'verification failed, 1 try left' });
    expect(describeStatus(0x63c2)).toEqual({ sw: 0x63c2, kind: 'warning', meaning: 'verification failed, 2 tries left' });
    expect(describeStatus(0x63c3)).toEqual({ sw: 0x63c3, kind: 'warning', meaning: 'verification failed, 3 tries left' });
    expect(describeStatus(0x63cf)).toEqual({ sw: 0x63cf, kind: 'warning', meaning: 'verification failed, 15 tries left' });
  });

  it('other 62xx / 63xx: generic warning (63Bx and 63Dx are not tries left)', () => {
    for (const sw of [0x6201, 0x62ff, 0x6301, 0x63b2, 0x63d2, 0x6310]) {
      expect(describeStatus(sw), swHex(sw)).toEqual({ sw, kind: 'warning', meaning: 'warning' });
    }
  });

  it('other 64xx / 65xx / 66xx: generic execution error', () => {
    for (const sw of [0x6402, 0x6501, 0x6580, 0x6599, 0x65ff, 0x6601]) {
      expect(describeStatus(sw), swHex(sw)).toEqual({ sw, kind: 'execution-error', meaning: 'execution error' });
    }
  });

  it('unknown words: a generic description, never a throw', () => {
    for (const sw of [0x0000, 0x1234, 0x6701, 0x6a99, 0x6fff, 0x9405, 0x9841, 0xffff]) {
      expect(describeStatus(sw), swHex(sw)).toEqual({ sw, kind: 'checking-error', meaning: 'unknown status' });
    }
  });

  it('describes all 65536 words with the kind of their SW1', () => {
    for (let sw = 0; sw <= 0xffff; sw++) {
      const info = describeStatus(sw);
      if (info.sw !== sw || info.kind !== isoKind(sw >> 8) || info.meaning.length === 0) {
        expect.fail(`${swHex(sw)}: ${JSON.stringify(info)}`);
      }
    }
  });
});

describe('isSuccess', () => {
  it('is true for 9000 only (warnings are not success)', () => {
    expect(isSuccess(0x9000)).toBe(true);
    const others: number[] = [];
    for (let sw = 0; sw <= 0xffff; sw++) if (isSuccess(sw)) others.push(sw);
    expect(others).toEqual([0x9000]);
  });
});

type ErrorClass = new (sw: number) => CardStatusError;

describe('statusError', () => {
  it('maps each status word to its class and stable code', () => {
    const table: [number, ErrorClass, string][] = [
      [0x63c2, WrongPinError, 'PIN_INCORRECT'],
      [0x6300, WrongPinError, 'PIN_INCORRECT'],
      [0x9804, WrongPinError, 'PIN_INCORRECT'],
      [0x6983, PinBlockedError, 'PIN_BLOCKED'],
      [0x9840, PinBlockedError, 'PIN_BLOCKED'],
      [0x6982, SecurityStatusNotSatisfiedError, 'SECURITY_STATUS_NOT_SATISFIED'],
      [0x6984, ReferenceDataNotUsableError, 'REFERENCE_DATA_NOT_USABLE'],
      [0x9802, ReferenceDataNotUsableError, 'REFERENCE_DATA_NOT_USABLE'],
      [0x9808, ReferenceDataNotUsableError, 'REFERENCE_DATA_NOT_USABLE'],
      [0x6985, ConditionsNotSatisfiedError, 'CONDITIONS_NOT_SATISFIED'],
      [0x6986, ConditionsNotSatisfiedError, 'CONDITIONS_NOT_SATISFIED'],
      [0x6a82, FileNotFoundError, 'FILE_NOT_FOUND'],
      [0x6a83, FileNotFoundError, 'FILE_NOT_FOUND'],
      [0x9404, FileNotFoundError, 'FILE_NOT_FOUND'],
      [0x6a88, ReferencedDataNotFoundError, 'REFERENCED_DATA_NOT_FOUND'],
      [0x6a00, WrongParametersError, 'WRONG_P1P2'],
      [0x6a86, WrongParametersError, 'WRONG_P1P2'],
      [0x6b00, WrongParametersError, 'WRONG_P1P2'],
      [0x6700, WrongLengthError, 'WRONG_LENGTH'],
      [0x6a87, WrongLengthError, 'WRONG_LENGTH'],
      [0x6c00, WrongLengthError, 'WRONG_LENGTH'],
      [0x6c10, WrongLengthError, 'WRONG_LENGTH'],
      [0x6a80, WrongDataError, 'WRONG_DATA'],
      [0x6a85, WrongDataError, 'WRONG_DATA'],
      [0x6800, FunctionNotSupportedError, 'FUNCTION_NOT_SUPPORTED'],
      [0x6881, FunctionNotSupportedError, 'FUNCTION_NOT_SUPPORTED'],
      [0x6882, FunctionNotSupportedError, 'FUNCTION_NOT_SUPPORTED'],
      [0x6884, FunctionNotSupportedError, 'FUNCTION_NOT_SUPPORTED'],
      [0x6a81, FunctionNotSupportedError, 'FUNCTION_NOT_SUPPORTED'],
      [0x6d00, InsNotSupportedError, 'INS_NOT_SUPPORTED'],
      [0x6e00, ClaNotSupportedError, 'CLA_NOT_SUPPORTED'],
      [0x6500, CardMemoryError, 'CARD_MEMORY'],
      [0x6581, CardMemoryError, 'CARD_MEMORY'],
      [0x65ff, CardMemoryError, 'CARD_MEMORY'],
      [0x6a84, CardMemoryError, 'CARD_MEMORY'],
      [0x9240, CardMemoryError, 'CARD_MEMORY'],
      [0x6f00, CardStatusError, 'CARD_ERROR'],
      [0x1234, CardStatusError, 'CARD_ERROR'],
    ];
    for (const [sw, cls, code] of table) {
      const e = statusError(sw);
      // The exact class, not just a superclass of it.
      expect(e.constructor, swHex(sw)).toBe(cls);
      expect(e).toBeInstanceOf(cls);
      expect(e).toBeInstanceOf(CardStatusError);
      expect(e).toBeInstanceOf(CpsdError);
      expect(e).toBeInstanceOf(Error);
      expect([e.code, e.sw, e.name], swHex(sw)).toEqual([code, sw, cls.name]);
    }
  });

  it('falls back to a plain CardStatusError (CARD_ERROR) for words with no family', () => {
    // Warnings, execution errors outside 65xx, and checking errors no caller acts on.
    for (const sw of [0x0000, 0x6200, 0x6282, 0x6310, 0x63b1, 0x63d1, 0x6400, 0x6600, 0x6701, 0x6883, 0x6900, 0x6981, 0x6987, 0x6a89, 0x6a8a, 0x6f00, 0x9405, 0x9841, 0xffff]) {
      const e = statusError(sw);
      expect(e.constructor, swHex(sw)).toBe(CardStatusError);
      expect([e.code, e.sw, e.name]).toEqual(['CARD_ERROR', sw, 'CardStatusError']);
      expect(e.message).toBe(`card answered ${swHex(sw)}: ${describeStatus(sw).meaning}`);
    }
  });

  it('maps every 63Cx to WrongPinError with x tries left', () => {
    for (let x = 0; x <= 0xf; x++) {
      const e = statusError(0x63c0 | x);
      expect(e.constructor).toBe(WrongPinError);
      expect((e as WrongPinError).triesLeft).toBe(x);
      expect(e.code).toBe('PIN_INCORRECT');
    }
    expect(statusError(0x63c2).message).toBe('wrong PIN, 2 tries left (63C2)');
    expect(statusError(0x63c1).message).toBe('wrong PIN, 1 try left (63C1)');
    expect(statusError(0x63c0).message).toBe('wrong PIN, 0 tries left (63C0)');
  });

  it('gives no tries left where the card does not say (6300, CPS2ter 9804)', () => {
    for (const sw of [0x6300, 0x9804]) {
      const e = statusError(sw) as WrongPinError;
      expect(e).toBeInstanceOf(WrongPinError);
      expect(e.triesLeft).toBeUndefined();
      expect('triesLeft' in e).toBe(true);
      expect(e.message).toBe(`wrong PIN (${swHex(sw)})`);
    }
  });

  it('maps every 6Cxx to WrongLengthError and every 65xx to CardMemoryError', () => {
    for (let sw2 = 0; sw2 <= 0xff; sw2++) {
      const wrongLe = statusError(0x6c00 | sw2);
      expect([wrongLe.constructor, wrongLe.code, wrongLe.sw]).toEqual([WrongLengthError, 'WRONG_LENGTH', 0x6c00 | sw2]);
      const memory = statusError(0x6500 | sw2);
      expect([memory.constructor, memory.code, memory.sw]).toEqual([CardMemoryError, 'CARD_MEMORY', 0x6500 | sw2]);
    }
  });

  it('writes the SW and its meaning in the message', () => {
    expect(statusError(0x6a82).message).toBe('card answered 6A82: file or application not found');
    expect(statusError(0x6983).message).toBe('card answered 6983: authentication method blocked');
    expect(statusError(0x9840).message).toBe('card answered 9840: CPS2ter: PIN blocked');
    expect(statusError(0x6c10).message).toBe('card answered 6C10: wrong Le: 16 bytes available');
    expect(statusError(0x6599).message).toBe('card answered 6599: execution error');
    expect(statusError(0x0001).message).toBe('card answered 0001: unknown status');
  });

  it('gives a CardStatusError with the same sw for any word', () => {
    const codes = new Set([
      'CARD_ERROR',
      'PIN_INCORRECT',
      'PIN_BLOCKED',
      'SECURITY_STATUS_NOT_SATISFIED',
      'REFERENCE_DATA_NOT_USABLE',
      'CONDITIONS_NOT_SATISFIED',
      'FILE_NOT_FOUND',
      'REFERENCED_DATA_NOT_FOUND',
      'WRONG_P1P2',
      'WRONG_LENGTH',
      'WRONG_DATA',
      'FUNCTION_NOT_SUPPORTED',
      'INS_NOT_SUPPORTED',
      'CLA_NOT_SUPPORTED',
      'CARD_MEMORY',
    ]);
    const seen = new Set<string>();
    for (let sw = 0; sw <= 0xffff; sw++) {
      const e = statusError(sw);
      if (!(e instanceof CardStatusError) || !(e instanceof CpsdError) || e.sw !== sw || !codes.has(e.code) || !e.message.includes(swHex(sw))) {
        expect.fail(`${swHex(sw)}: ${String(e)}`);
      }
      seen.add(e.code);
    }
    expect([...seen].sort()).toEqual([...codes].sort());
  });
});

describe('CardStatusError and subclasses built directly', () => {
  it('takes an optional message and keeps the sw', () => {
    const plain = new CardStatusError(0x6f00);
    expect([plain.message, plain.code, plain.sw, plain.name]).toEqual(['card answered 6F00: no precise diagnosis', 'CARD_ERROR', 0x6f00, 'CardStatusError']);
    const custom = new CardStatusError(0x6a82, 'EF.ACTUA absent');
    expect([custom.message, custom.sw]).toEqual(['EF.ACTUA absent', 0x6a82]);
  });

  it('builds each family from its sw', () => {
    const blocked = new PinBlockedError(0x6983);
    expect([blocked.code, blocked.sw, blocked.message]).toEqual(['PIN_BLOCKED', 0x6983, 'card answered 6983: authentication method blocked']);
    const pin = new WrongPinError(0x63c3);
    expect([pin.code, pin.triesLeft, pin.message]).toEqual(['PIN_INCORRECT', 3, 'wrong PIN, 3 tries left (63C3)']);
    const missing = new FileNotFoundError(0x9404);
    expect([missing.code, missing.message]).toEqual(['FILE_NOT_FOUND', 'card answered 9404: CPS2ter: file not found']);
  });
});
