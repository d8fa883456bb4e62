import type { ApduTransport } from '../apdu/channel.js';
import { CpsdError, toHex } from '../apdu/errors.js';
import type { CpsCard, CpsCardOptions } from './card.js';
import { Cps3Card, Cps3ContactlessCard } from './cps3.js';
import { Cps4Card } from './cps4.js';

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

type Driver = new (transport: ApduTransport, atr: Uint8Array, kind: CpsCardKind, options: CpsCardOptions) => CpsCard;

/**
 * Exact ATRs, as Cryptolib compares them byte for byte (docs/driver.md, all verified), each with the
 * driver class that speaks to it: this one table chooses the driver (libelectronic-id's SUPPORTED_ATRS).
 * CPS2ter cards and the unidentified CPS-like ATRs of the public lists are deliberately absent.
 */
const ATR_TABLE: ReadonlyMap<string, CpsCardKind & { driver: Driver }> = new Map([
  ['3BAC00402A001225006480000310009000', { generation: 'CPS3', interface: 'contact', name: 'CPS3 (IAS-ECC)', driver: Cps3Card }],
  ['3B8F80010031B86404B0ECC1739401808290000E', { generation: 'CPS3', interface: 'contactless', name: 'CPS3 contactless', driver: Cps3ContactlessCard }],
  ['3B9B188001001225006480040100009044', { generation: 'CPS4', interface: 'contact', name: 'CPS4 (ChipDoc)', driver: Cps4Card }],
  ['3B9B188001001225006480000401009044', { generation: 'CPS4', interface: 'contact', name: 'CPS4 (release candidate)', driver: Cps4Card }],
  ['3BDC18FF00001225006480000401009000', { generation: 'CPS4', interface: 'contact', name: 'CPS4 (T=0 only)', driver: Cps4Card }],
]);

/** Identifies a CPx card by its exact ATR; throws UnsupportedCardError with the ATR otherwise. */
export function identifyAtr(atr: Uint8Array): CpsCardKind {
  const entry = ATR_TABLE.get(toHex(atr));
  if (!entry) throw new UnsupportedCardError(atr);
  return { generation: entry.generation, interface: entry.interface, name: entry.name };
}

export function isCpsAtr(atr: Uint8Array): boolean {
  return ATR_TABLE.has(toHex(atr));
}

/** Builds the driver the ATR table names for this card, or throws UnsupportedCardError. */
export function openCard(transport: ApduTransport, atr: Uint8Array, options: CpsCardOptions = {}): CpsCard {
  const entry = ATR_TABLE.get(toHex(atr));
  if (!entry) throw new UnsupportedCardError(atr);
  const { driver: Driver, ...kind } = entry;
  return new Driver(transport, atr, kind, options);
}
