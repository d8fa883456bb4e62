import { CpsdError, toHex } from '../errors.js';

export type CpsGeneration = 'CPS3' | 'CPS4';
export type CardInterface = 'contact' | 'contactless';

export interface CpsCardKind {
  generation: CpsGeneration;
  interface: CardInterface;
  /** What the ATR is known as (cps-cards.md §1.2). */
  name: string;
}

/** The card in the reader is not a CPx card cpsd supports; carries its ATR for the support desk. */
export class UnsupportedCardError extends CpsdError {
  readonly code = 'UNSUPPORTED_CARD';
  readonly atr: string;

  constructor(atr: Uint8Array, detail = 'not a supported CPx card') {
    super(`${detail} (ATR ${toHex(atr)})`);
    this.atr = toHex(atr);
  }
}

/**
 * Exact ATRs, as Cryptolib compares them byte for byte (cps-cards.md §1.2, all [V]). CPS2ter cards and
 * the unidentified CPS-like ATRs of the public lists are deliberately absent.
 */
const ATR_TABLE: ReadonlyMap<string, CpsCardKind> = new Map([
  ['3BAC00402A001225006480000310009000', { generation: 'CPS3', interface: 'contact', name: 'CPS3 (IAS-ECC)' }],
  ['3B8F80010031B86404B0ECC1739401808290000E', { generation: 'CPS3', interface: 'contactless', name: 'CPS3 contactless' }],
  ['3B9B188001001225006480040100009044', { generation: 'CPS4', interface: 'contact', name: 'CPS4 (ChipDoc)' }],
  ['3B9B188001001225006480000401009044', { generation: 'CPS4', interface: 'contact', name: 'CPS4 (release candidate)' }],
  ['3BDC18FF00001225006480000401009000', { generation: 'CPS4', interface: 'contact', name: 'CPS4 (T=0 only)' }],
]);

/** Identifies a CPx card by its exact ATR; throws UnsupportedCardError with the ATR otherwise. */
export function identifyAtr(atr: Uint8Array): CpsCardKind {
  const kind = ATR_TABLE.get(toHex(atr));
  if (!kind) throw new UnsupportedCardError(atr);
  return kind;
}

export function isCpsAtr(atr: Uint8Array): boolean {
  return ATR_TABLE.has(toHex(atr));
}
