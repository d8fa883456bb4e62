import { parseAtr } from '../apdu/atr.js';
import type { ApduTransport } from '../apdu/channel.js';
import { CpsdError } from '../core/errors.js';
import { fromHex, toHex } from '../core/bytes.js';
import type { CpsCard, CpsCardOptions } from './card.js';
import { Cps3Card, Cps3ContactlessCard } from './cps3.js';
import { Cps4Card } from './cps4.js';

export type CpsGeneration = 'CPS3' | 'CPS4';
export type CardInterface = 'contact' | 'contactless';

export interface CpsCardKind {
  generation: CpsGeneration;
  interface: CardInterface;
  /** What the ATR row is known as (docs/driver.md). */
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

/** One row of the card table: an ATR matches when it has the row's length and equals it on the mask's bits. */
export interface AtrRow {
  readonly name: string;
  readonly atr: string;
  readonly mask: string;
  /** Where the ATR and its mask come from (docs/card-facts.md). */
  readonly source: string;
  /** What the row identifies; `undefined`: a known card cpsd refuses (the reason is `refused`). */
  readonly kind: Omit<CpsCardKind, 'name'> | undefined;
  readonly refused?: string;
  /** The last byte is a TCK: checked rather than compared (see matches()). */
  readonly tck?: true;
}

interface CompiledRow extends AtrRow {
  readonly bytes: Uint8Array;
  readonly maskBytes: Uint8Array;
  readonly driver: Driver | undefined;
  /** Bits the mask fixes: the most specific matching row wins. */
  readonly fixedBits: number;
}

const EXACT = (atr: string): string => 'FF'.repeat(atr.length / 2);
const CPS3_C = { generation: 'CPS3', interface: 'contact' } as const;
const CPS3_CL = { generation: 'CPS3', interface: 'contactless' } as const;
const CPS4_C = { generation: 'CPS4', interface: 'contact' } as const;

/**
 * The CPx cards, one row per ATR pattern, each naming the driver class that speaks to it (libelectronic-id's
 * SUPPORTED_ATRS). The CPS3 rows are the masks ANS's Cryptolib installer registers with Windows, so that
 * cards whose interface or version bytes differ from one sample are still recognised; the CPS4 ATRs are
 * exact (no mask is published). The CPS4 T=0 ATR and the CPS2ter one lie inside the CPS3 contact mask:
 * being more specific, their exact rows win.
 */
export const ATR_ROWS: readonly AtrRow[] = [
  {
    name: 'CPS3 (IAS-ECC)',
    atr: '3B00000000001225006480000000009000',
    mask: 'FF00000000FFFFFFFFFFFF000000FFFFFF',
    source: 'Cryptolib MSI smart-card registration "Carte de Professionnel de Santé CPS3" (docs/card-facts.md, addendum); sample 3BAC00402A001225006480000310009000 (§1.2)',
    kind: CPS3_C,
  },
  {
    name: 'CPS3 contactless',
    atr: '3B8F80010031B8640000ECC0739401808290000E',
    mask: 'FFFFFFFFFFFFFFFF0000FFC0FFFFFFFFFFFFFFFF',
    source: 'Cryptolib MSI smart-card registration "… CPS3 - CL" (docs/card-facts.md, addendum); sample 3B8F80010031B86404B0ECC1739401808290000E (§1.2)',
    kind: CPS3_CL,
    tck: true,
  },
  { name: 'CPS4 (ChipDoc)', atr: '3B9B188001001225006480040100009044', mask: EXACT('3B9B188001001225006480040100009044'), source: 'card-cps.c CPS4_C_ATR (docs/card-facts.md §1.2)', kind: CPS4_C },
  {
    name: 'CPS4 (release candidate)',
    atr: '3B9B188001001225006480000401009044',
    mask: EXACT('3B9B188001001225006480000401009044'),
    source: 'card-cps.c CPS4RC_C_ATR (docs/card-facts.md §1.2)',
    kind: CPS4_C,
  },
  {
    name: 'CPS4 (T=0 only)',
    atr: '3BDC18FF00001225006480000401009000',
    mask: EXACT('3BDC18FF00001225006480000401009000'),
    source: 'card-cps.c CPS4TO_C_ATR (docs/card-facts.md §1.2)',
    kind: CPS4_C,
  },
  {
    name: 'CPS2ter',
    atr: '3BAC00402A001225006480820212009000',
    mask: EXACT('3BAC00402A001225006480820212009000'),
    source: 'PCSC-LIST "Sesam Vitale card CPS" (docs/card-facts.md §1.2: probably a CPS2ter)',
    kind: undefined,
    refused: 'a CPS2ter card (no IAS-ECC application): not supported by cpsd',
  },
];

const DRIVERS: ReadonlyMap<string, Driver> = new Map<string, Driver>([
  ['CPS3 contact', Cps3Card],
  ['CPS3 contactless', Cps3ContactlessCard],
  ['CPS4 contact', Cps4Card],
]);

const popcount = (bytes: Uint8Array): number => bytes.reduce((n, b) => n + (b.toString(2).match(/1/g)?.length ?? 0), 0);

const ROWS: readonly CompiledRow[] = ATR_ROWS.map((row) => {
  const bytes = fromHex(row.atr);
  const maskBytes = fromHex(row.mask);
  if (bytes.length !== maskBytes.length) throw new Error(`ATR row ${row.name}: ATR and mask lengths differ`);
  const driver = row.kind ? DRIVERS.get(`${row.kind.generation} ${row.kind.interface}`) : undefined;
  return { ...row, bytes, maskBytes, driver, fixedBits: popcount(maskBytes)};
}).sort((a, b) => b.fixedBits - a.fixedBits);

const tckValid = (atr: Uint8Array): boolean => {
  try {
    return parseAtr(atr).tckValid === true;
  } catch {
    return false;
  }
};

/**
 * The TCK is the checksum of the other bytes: a mask that lets bytes vary but pins the TCK (the
 * contactless row) would only accept variants whose changes cancel out, so the TCK is checked, not compared.
 */
function matches(row: CompiledRow, atr: Uint8Array): boolean {
  if (atr.length !== row.bytes.length) return false;
  if (row.tck && !tckValid(atr)) return false;
  for (let i = 0; i < atr.length - (row.tck ? 1 : 0); i++) {
    const m = row.maskBytes[i] as number;
    if (((atr[i] as number) & m) !== ((row.bytes[i] as number) & m)) return false;
  }
  return true;
}

/** The row an ATR falls in (the most specific one), or undefined. */
export function matchAtr(atr: Uint8Array): AtrRow | undefined {
  return ROWS.find((row) => matches(row, atr));
}

function supported(atr: Uint8Array): CompiledRow & { kind: NonNullable<AtrRow['kind']>; driver: Driver } {
  const row = ROWS.find((r) => matches(r, atr));
  if (!row) throw new UnsupportedCardError(atr);
  if (!row.kind || !row.driver) throw new UnsupportedCardError(atr, row.refused ?? `${row.name}: not supported`);
  return row as CompiledRow & { kind: NonNullable<AtrRow['kind']>; driver: Driver };
}

/** Identifies a CPx card by its ATR row; throws UnsupportedCardError (with the ATR) otherwise. */
export function identifyAtr(atr: Uint8Array): CpsCardKind {
  const row = supported(atr);
  return { ...row.kind, name: row.name };
}

export function isCpsAtr(atr: Uint8Array): boolean {
  return matchAtr(atr)?.kind !== undefined;
}

/** Builds the driver the ATR row names for this card, or throws UnsupportedCardError. */
export function openCard(transport: ApduTransport, atr: Uint8Array, options: CpsCardOptions = {}): CpsCard {
  const row = supported(atr);
  return new row.driver(transport, atr, { ...row.kind, name: row.name }, options);
}
