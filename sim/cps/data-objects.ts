/**
 * Encodings of the CPS "métier" data objects (CPS_ID_CARD, CPS_NAME_PS, CPS_INFO_PS, CPS_ACTIVITY_nn_PS,
 * CPS_SIT_FACT, CPS_LANG_PS, CPS_DATA).
 *
 * The real format is in the non-public "ASIP_CPS3_Données-métier" document. Known publicly
 * (docs/card-facts.md §5): situations are BER-TLV in an `EE` template with 84 raison sociale, 85 structure
 * id, 86 sector; CPS_INFO_PS holds the id and names in clear and ends with the 4-character specialty
 * code. Everything else here is our own choice ([S]), listed in docs/virtual-card.md, and decoded by
 * the same tags on the reading side.
 */
import { encodeTlv } from '../../core/tlv.js';
import type { CardProfile, Situation } from './profile.js';

const text = (s: string): Uint8Array => new TextEncoder().encode(s);

/** Card type codes: only CPS = 0 is verified (SESAM-Vitale group 0001); the others are [U]. */
export const CARD_TYPE_CODE: Readonly<Record<CardProfile['cardType'], number>> = { CPS: 0, CPF: 1, CPE: 2, CPA: 3 };

/** CPS_ID_CARD: E0 { 80 card type code, 81 card type, 82 serial (hex), 83 generation } [S]. */
export function idCard(p: CardProfile): Uint8Array {
  return encodeTlv({
    tag: 0xe0,
    children: [
      { tag: 0x80, value: Uint8Array.of(CARD_TYPE_CODE[p.cardType]) },
      { tag: 0x81, value: text(p.cardType) },
      { tag: 0x82, value: text(`8025000001${p.serial.toUpperCase()}`) },
      { tag: 0x83, value: text(p.generation) },
    ],
  });
}

/** CPS_NAME_PS: E1 { 80 idNat, 81 last name, 82 first name } [S]. */
export function namePs(p: CardProfile): Uint8Array {
  return encodeTlv({
    tag: 0xe1,
    children: [
      { tag: 0x80, value: text(p.holder.idNat) },
      { tag: 0x81, value: text(p.holder.lastName) },
      { tag: 0x82, value: text(p.holder.firstName) },
    ],
  });
}

/**
 * CPS_INFO_PS: E2 { 80 idNat, 81 last name, 82 first name, 83 profession code, 84 profession label,
 * 85 specialty code } — the specialty comes last, so the file ends with its 4 characters [V-3rd layout
 * hint, S tags].
 */
export function infoPs(p: CardProfile): Uint8Array {
  const h = p.holder;
  const children = [
    { tag: 0x80, value: text(h.idNat) },
    { tag: 0x81, value: text(h.lastName) },
    { tag: 0x82, value: text(h.firstName) },
    { tag: 0x83, value: text(h.profession.code) },
    { tag: 0x84, value: text(h.profession.label) },
  ];
  if (h.specialty) children.push({ tag: 0x85, value: text(h.specialty.code) });
  return encodeTlv({ tag: 0xe2, children });
}

/** CPS_LANG_PS: E3 { 80 ISO 639-1 codes } [S]. */
export function langPs(): Uint8Array {
  return encodeTlv({ tag: 0xe3, children: [{ tag: 0x80, value: text('fr') }] });
}

/** CPS_ACTIVITY_nn_PS: EE { 84 raison sociale, 85 structure id, 86 sector } [V-3rd]. */
export function activity(s: Situation): Uint8Array {
  return encodeTlv({
    tag: 0xee,
    children: [
      { tag: 0x84, value: text(s.companyName) },
      { tag: 0x85, value: text(s.structureId) },
      { tag: 0x86, value: text(s.sector) },
    ],
  });
}

/** CPS_SIT_FACT: EF { 80 situation index, 81 billing number } [S]; empty file when the card has none. */
export function sitFact(p: CardProfile): Uint8Array {
  if (!p.billing) return new Uint8Array(0);
  return encodeTlv({
    tag: 0xef,
    children: [
      { tag: 0x80, value: Uint8Array.of(p.billing.situationIndex) },
      { tag: 0x81, value: text(p.billing.billingNumber) },
    ],
  });
}

/** EF_ACTUA: EC { 81 start, 82 end }, dates in BCD YYYYMMDDhhmmss (docs/card-facts.md §2.2). */
export function actua(start: string, end: string): Uint8Array {
  return encodeTlv({ tag: 0xec, children: [{ tag: 0x81, value: bcd(start) }, { tag: 0x82, value: bcd(end) }] });
}

export function bcd(digits: string): Uint8Array {
  if (!/^\d{14}$/.test(digits)) throw new RangeError(`expected YYYYMMDDhhmmss, got ${JSON.stringify(digits)}`);
  const out = new Uint8Array(7);
  for (let i = 0; i < 7; i++) out[i] = (Number(digits[2 * i]) << 4) | Number(digits[2 * i + 1]);
  return out;
}
