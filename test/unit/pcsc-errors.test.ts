import { describe, expect, it } from 'vitest';
import {
  CardAbsentError,
  CardBusyError,
  CardResetError,
  PCSC_CODES,
  PcscError,
  PcscUnavailableError,
  ReaderNotFoundError,
  UnsupportedFeatureError,
  isServiceFailure,
  pcscError,
  toPcscError,
} from '../../apdu/pcsc/errors.js';

describe('PC/SC error mapping', () => {
  it('parses the code out of the binding message', () => {
    const e = toPcscError(new Error('SCardTransmit error: Card was removed.(0x80100069)'));
    expect(e).toBeInstanceOf(CardAbsentError);
    expect(e).toMatchObject({ code: 'CARD_ABSENT', pcscCode: 0x80100069, pcscName: 'SCARD_W_REMOVED_CARD', operation: 'SCardTransmit' });
    expect(e.message).toContain('SCardTransmit');
    expect(e.cause).toBeInstanceOf(Error);
  });

  it.each([
    [0x8010001d, PcscUnavailableError, 'PCSC_UNAVAILABLE'],
    [0x80100013, PcscUnavailableError, 'PCSC_UNAVAILABLE'],
    [0x80100009, ReaderNotFoundError, 'READER_NOT_FOUND'],
    [0x8010000c, CardAbsentError, 'CARD_ABSENT'],
    [0x80100068, CardResetError, 'CARD_RESET'],
    [0x8010000b, CardBusyError, 'CARD_BUSY'],
    [0x8010001f, UnsupportedFeatureError, 'UNSUPPORTED_FEATURE'],
    [0x8010000a, PcscError, 'TIMEOUT'],
    [0x80100004, PcscError, 'PCSC_ERROR'],
  ])('0x%s maps to its family', (code, Class, stable) => {
    const e = pcscError(code, 'SCardConnect');
    expect(e).toBeInstanceOf(Class);
    expect(e.code).toBe(stable);
    expect(e.pcscCode).toBe(code);
  });

  it('keeps unknown codes and messages without a code typed', () => {
    const unknown = pcscError(0x80109999);
    expect(unknown).toMatchObject({ code: 'PCSC_ERROR', pcscCode: 0x80109999, pcscName: undefined });
    expect(unknown.message).toContain('0x80109999');
    const plain = toPcscError('Card Reader not connected', 'SCardTransmit');
    expect(plain).toMatchObject({ code: 'PCSC_ERROR', pcscCode: undefined, operation: 'SCardTransmit' });
    expect(toPcscError(plain)).toBe(plain);
  });

  it('knows which failures kill the context', () => {
    expect(isServiceFailure(pcscError(0x8010001d))).toBe(true);
    expect(isServiceFailure(pcscError(0x80100003))).toBe(true);
    expect(isServiceFailure(pcscError(0x80100069))).toBe(false);
  });

  it('names every code it lists', () => {
    for (const [code, [name, meaning]] of PCSC_CODES) {
      expect(name).toMatch(/^SCARD_[EFWP]_/);
      expect(meaning.length).toBeGreaterThan(3);
      expect(code >>> 16).toBe(0x8010);
    }
  });
});
