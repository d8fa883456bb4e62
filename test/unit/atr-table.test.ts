/**
 * Card identification by (ATR, mask) rows. The samples and masks below are copied from
 * docs/card-facts.md (§1.2 and the Cryptolib addendum), not from cards/atr-table.ts, and
 * every variant is checked to be a well-formed ATR first (ISO 7816-3 structure, TCK).
 */
import { describe, expect, it } from 'vitest';
import { parseAtr } from '../../apdu/atr.js';
import { fromHex, toHex } from '../../core/bytes.js';
import { ATR_ROWS, identifyAtr, isCpsAtr, matchAtr, UnsupportedCardError } from '../../cards/atr-table.js';
import {
  CPS2TER,
  CPS3,
  CPS3_CL,
  CPS3_CL_OUTSIDE,
  CPS3_CL_VARIANTS,
  CPS3_OUTSIDE,
  CPS3_VARIANTS,
  CPS4,
  CPS4_RC,
  CPS4_T0,
} from '../helpers/atr-variants.js';

describe('ATR rows', () => {
  it('the test variants are well-formed ATRs', () => {
    for (const atr of [...CPS3_VARIANTS, ...CPS3_CL_VARIANTS, ...CPS3_OUTSIDE, ...CPS3_CL_OUTSIDE]) {
      expect(() => parseAtr(fromHex(atr), { strictTck: true }), atr).not.toThrow();
    }
  });

  it('carries the masks ANS registers for the CPS3, verbatim', () => {
    const rows = ATR_ROWS.map((r) => [r.atr, r.mask]);
    expect(rows).toContainEqual(['3B00000000001225006480000000009000', 'FF00000000FFFFFFFFFFFF000000FFFFFF']);
    expect(rows).toContainEqual(['3B8F80010031B8640000ECC0739401808290000E', 'FFFFFFFFFFFFFFFF0000FFC0FFFFFFFFFFFFFFFF']);
  });

  it.each([
    [CPS3, 'CPS3', 'contact'],
    [CPS3_CL, 'CPS3', 'contactless'],
    [CPS4, 'CPS4', 'contact'],
    [CPS4_RC, 'CPS4', 'contact'],
    [CPS4_T0, 'CPS4', 'contact'],
  ])('identifies the sample %s', (atr, generation, iface) => {
    expect(identifyAtr(fromHex(atr))).toMatchObject({ generation, interface: iface });
  });

  it('takes the CPS4 T=0 ATR for a CPS4 although it lies inside the CPS3 mask', () => {
    expect(matchAtr(fromHex(CPS4_T0))?.name).toBe('CPS4 (T=0 only)');
    expect(identifyAtr(fromHex(CPS4_T0)).generation).toBe('CPS4');
  });

  it.each(CPS3_VARIANTS)('identifies the CPS3 contact variant %s', (atr) => {
    expect(identifyAtr(fromHex(atr))).toMatchObject({ generation: 'CPS3', interface: 'contact', name: 'CPS3 (IAS-ECC)' });
  });

  it.each(CPS3_CL_VARIANTS)('identifies the CPS3 contactless variant %s', (atr) => {
    expect(identifyAtr(fromHex(atr))).toMatchObject({ generation: 'CPS3', interface: 'contactless' });
  });

  it.each([...CPS3_OUTSIDE, ...CPS3_CL_OUTSIDE])('refuses %s, outside every mask, with the ATR in the error', (atr) => {
    expect(isCpsAtr(fromHex(atr))).toBe(false);
    expect(() => identifyAtr(fromHex(atr))).toThrow(UnsupportedCardError);
    expect(() => identifyAtr(fromHex(atr))).toThrow(atr);
  });

  it('refuses a contactless ATR whose TCK is wrong', () => {
    const wrong = CPS3_CL.slice(0, -2) + '0F';
    expect(() => identifyAtr(fromHex(wrong))).toThrow(UnsupportedCardError);
  });

  it('refuses an ATR of another length even when its prefix matches', () => {
    expect(isCpsAtr(fromHex(`${CPS3}00`))).toBe(false);
    expect(isCpsAtr(fromHex(CPS3.slice(0, -2)))).toBe(false);
  });

  it('refuses the CPS2ter ATR by name, although it lies inside the CPS3 mask', () => {
    expect(() => identifyAtr(fromHex(CPS2TER))).toThrow(/CPS2ter.*3BAC00402A001225006480820212009000/);
  });

  it('checks every changed fixed bit of the CPS3 contact mask', () => {
    const mask = fromHex('FF00000000FFFFFFFFFFFF000000FFFFFF');
    for (let i = 0; i < mask.length; i++) {
      if (mask[i] === 0) continue;
      const atr = fromHex(CPS3);
      atr[i] = (atr[i] as number) ^ 0x01;
      expect(isCpsAtr(atr), toHex(atr)).toBe(false);
    }
  });
});
