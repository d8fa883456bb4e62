/**
 * Field variants of the CPx ATRs for tests, built from the samples and masks of
 * docs/card-facts.md (§1.2, Cryptolib addendum) — not from cards/atr-table.ts.
 */
import { fromHex, toHex } from '../../core/bytes.js';

/** Sets the TCK (XOR of T0 … last historical byte) of an ATR given without it. */
export function withTck(hex: string): string {
  const b = fromHex(hex);
  let x = 0;
  for (const v of b.subarray(1)) x ^= v;
  return toHex(b) + x.toString(16).toUpperCase().padStart(2, '0');
}

export const CPS3 = '3BAC00402A001225006480000310009000';
export const CPS3_CL = '3B8F80010031B86404B0ECC1739401808290000E';
export const CPS4 = '3B9B188001001225006480040100009044';
export const CPS4_RC = '3B9B188001001225006480000401009044';
export const CPS4_T0 = '3BDC18FF00001225006480000401009000';
export const CPS2TER = '3BAC00402A001225006480820212009000';

/** Inside ANS's CPS3 contact mask FF00000000FFFFFFFFFFFF000000FFFFFF: TB1, TC2 and the version bytes vary. */
export const CPS3_VARIANTS = [
  '3BAC00402A001225006480000311009000', // version bytes 00 03 11
  '3BAC00402A001225006480010310009000', // version bytes 01 03 10
  '3BAC00400A001225006480000320009000', // TC2 0A (WI 10), version 00 03 20
  '3BAC0040FF001225006480000310009000', // TC2 FF
];
/** Inside the contactless mask …0000FFC0…: bytes 8–9 and the low six bits of byte 11 vary (TCK follows). */
export const CPS3_CL_VARIANTS = [
  withTck('3B8F80010031B86404B1ECC173940180829000'), // byte 9 B0 → B1
  withTck('3B8F80010031B86405B0ECC173940180829000'), // byte 8 04 → 05
  withTck('3B8F80010031B86412C7ECFE73940180829000'), // bytes 8, 9 and 11 (C1 → FE)
];
/** One byte changed where a mask fixes it. */
export const CPS3_OUTSIDE = [
  '3BAC00402A001225006481000310009000', // byte 10 80 → 81
  '3BAC00402A001325006480000310009000', // byte 6 12 → 13
  '3BAC00402A001225006480000310009100', // byte 15 90 → 91
];
export const CPS3_CL_OUTSIDE = [
  withTck('3B8F80010031B86404B0EDC173940180829000'), // byte 10 EC → ED
  withTck('3B8F80010031B86404B0EC8173940180829000'), // byte 11 C1 → 81 (a high bit)
  withTck('3B8F80010031B96404B0ECC173940180829000'), // byte 6 B8 → B9
];

