import { parseAtr } from '../../apdu/atr.js';
import { fromHex } from '../../core/bytes.js';

export type PersonalityName = 'cps3' | 'cps3-cl' | 'cps4';

export interface Personality {
  name: PersonalityName;
  /** The sample ATR of the kind (docs/card-facts.md §1.2); a variant may replace it (VirtualCpsCardOptions.atr). */
  atr: Uint8Array;
  contactless: boolean;
  /** CPS4 runs the ChipDoc applet on logical channel 1 (§3.8); CPS3 has no logical channels. */
  logicalChannels: boolean;
  /** CPS4: no INTERNAL AUTHENTICATE, raw RSA decipher of a host-padded block, PSS (§3.8). */
  chipDoc: boolean;
}

export const PERSONALITIES: Readonly<Record<PersonalityName, Personality>> = {
  cps3: {
    name: 'cps3',
    atr: fromHex('3B AC 00 40 2A 00 12 25 00 64 80 00 03 10 00 90 00'),
    contactless: false,
    logicalChannels: false,
    chipDoc: false,
  },
  'cps3-cl': {
    name: 'cps3-cl',
    atr: fromHex('3B 8F 80 01 00 31 B8 64 04 B0 EC C1 73 94 01 80 82 90 00 0E'),
    contactless: true,
    logicalChannels: false,
    chipDoc: false,
  },
  cps4: {
    name: 'cps4',
    atr: fromHex('3B 9B 18 80 01 00 12 25 00 64 80 04 01 00 00 90 44'),
    contactless: false,
    logicalChannels: true,
    chipDoc: true,
  },
};

/** An ATR a virtual card may present: well formed (ISO 7816-3, TCK right), else AtrError. */
export function checkedAtr(atr: Uint8Array): Uint8Array {
  parseAtr(atr, { strictTck: true });
  return Uint8Array.from(atr);
}
