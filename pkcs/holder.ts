/**
 * The holder's identity from what a CPx card carries: the certificate subject
 * (C=FR, title=<profession>, CN=<idNat>+SN=<surname>+GN=<given name>, docs/card-facts.md §4) and the card's
 * data objects (specialty at the end of CPS_INFO_PS, situations EE/84/85/86, card type).
 * Pure parsing: no I/O, no reader.
 */
import { CpsdError } from '../core/errors.js';
import type * as asn1js from 'asn1js';
import * as pkijs from 'pkijs';
import { own } from '../core/own.js';
import { parseTlv } from '../core/tlv.js';

export class CertificateFormatError extends CpsdError {
  readonly code = 'CERTIFICATE_INVALID';
}

export type NationalIdKind =
  | 'RPPS'
  | 'ADELI'
  | 'ADELI_CABINET'
  | 'FINESS'
  | 'SIREN'
  | 'SIRET'
  | 'RPPS_CABINET'
  | 'UNKNOWN';

/** idNat type prefixes (TRE_G08, docs/card-facts.md §4): 8 RPPS, 0 ADELI, then employee-of-structure kinds. */
const ID_PREFIX: Readonly<Record<string, NationalIdKind>> = {
  '8': 'RPPS',
  '0': 'ADELI',
  '1': 'ADELI_CABINET',
  '3': 'FINESS',
  '4': 'SIREN',
  '5': 'SIRET',
  '6': 'RPPS_CABINET',
};

export type StructureIdKind = 'ADELI_CABINET' | 'FINESS' | 'SIREN' | 'SIRET' | 'RPPS_CABINET' | 'FINESS_EJ' | 'UNKNOWN';

/** TRE_G07 structure identifier types by leading digit [V]. */
const STRUCTURE_PREFIX: Readonly<Record<string, StructureIdKind>> = {
  '0': 'ADELI_CABINET',
  '1': 'FINESS',
  '2': 'SIREN',
  '3': 'SIRET',
  '4': 'RPPS_CABINET',
  '5': 'FINESS_EJ',
};

/** TRE_G15 professions [V] (the [U] ones of the reference are left out). */
export const PROFESSIONS: Readonly<Record<string, string>> = {
  '10': 'Médecin',
  '21': 'Pharmacien',
  '26': 'Audioprothésiste',
  '28': 'Opticien-Lunetier',
  '31': 'Assistant dentaire',
  '32': 'Physicien médical',
  '35': 'Aide-soignant',
  '36': 'Ambulancier',
  '37': 'Auxiliaire de puériculture',
  '38': 'Préparateur en pharmacie hospitalière',
  '39': 'Préparateur en pharmacie',
  '60': 'Infirmier',
  '93': 'Psychologue',
};

export const CARD_TYPES: readonly string[] = ['CPS', 'CPF', 'CPE', 'CPA'];

export interface CertificateInfo {
  /** Named bits of the keyUsage extension (0 digitalSignature, 1 nonRepudiation, 2 keyEncipherment…), if present. */
  keyUsage: Set<number> | undefined;
  subject: Record<string, string>;
  notBefore: Date;
  notAfter: Date;
  serialNumber: string;
  issuer: Record<string, string>;
}

export interface HolderIdentity {
  nationalId: string;
  idKind: NationalIdKind;
  /** The 11-digit RPPS number when the id is RPPS-based. */
  rpps: string | null;
  surname: string;
  givenName: string;
  profession: { code: string | null; label: string } | null;
  specialty: string | null;
  cardType: string | null;
  serial: string;
  notBefore: string;
  notAfter: string;
}

export interface PracticeSituation {
  index: number;
  structureName: string;
  structureId: string;
  structureIdKind: StructureIdKind;
  sector: string;
}

const NAMES: Readonly<Record<string, string>> = {
  '2.5.4.3': 'CN',
  '2.5.4.4': 'SN',
  '2.5.4.42': 'GN',
  '2.5.4.12': 'title',
  '2.5.4.6': 'C',
  '2.5.4.10': 'O',
  '2.5.4.11': 'OU',
  '2.5.4.7': 'L',
};

/** Name → attributes; several values of one type (two OUs) are joined with ", ". */
function nameAttributes(name: pkijs.RelativeDistinguishedNames): Record<string, string> {
  const out: Record<string, string> = {};
  for (const atv of name.typesAndValues) {
    const key = NAMES[atv.type] ?? atv.type;
    // asn1js decodes UTF8String, PrintableString, IA5String, TeletexString and BMPString alike.
    const value = String((atv.value as { valueBlock: { value: unknown } }).valueBlock.value);
    out[key] = out[key] ? `${out[key]}, ${value}` : value;
  }
  return out;
}

/** Subject, issuer, validity and serial of an X.509 certificate (DER), read by pkijs. Any key algorithm
 * is accepted, including the legacy GIP-CPS SubjectPublicKeyInfo OID 1.2.250.1.71.2.6.1. */
export function certificateInfo(der: Uint8Array): CertificateInfo {
  let cert: pkijs.Certificate;
  try {
    cert = pkijs.Certificate.fromBER(new Uint8Array(der));
  } catch (error) {
    throw new CertificateFormatError('not a DER certificate', { cause: error });
  }
  const ku = cert.extensions?.find((e) => e.extnID === '2.5.29.15')?.parsedValue as asn1js.BitString | undefined;
  let keyUsage: Set<number> | undefined;
  if (ku) {
    const bits = ku.valueBlock.valueHexView;
    keyUsage = new Set();
    for (let i = 0; i < bits.length * 8; i++) if (((bits[i >> 3] ?? 0) >> (7 - (i & 7))) & 1) keyUsage.add(i);
  }
  return {
    keyUsage,
    subject: nameAttributes(cert.subject),
    issuer: nameAttributes(cert.issuer),
    notBefore: cert.notBefore.value,
    notAfter: cert.notAfter.value,
    // The integer, as openssl prints it: without the 00 DER puts before a high bit.
    serialNumber: cert.serialNumber.toBigInt().toString(16).toUpperCase().padStart(2, '0').replace(/^(.(.{2})*)$/, '0$1'),
  };
}

export function nationalIdKind(id: string): NationalIdKind {
  return ID_PREFIX[id[0] ?? ''] ?? 'UNKNOWN';
}

function findValue(bytes: Uint8Array | undefined, template: number, tag: number): string | undefined {
  if (!bytes || bytes.length === 0) return undefined;
  try {
    const tlvs = parseTlv(bytes, { allowPadding: true });
    const t = tlvs.find((x) => x.tag === template)?.children?.find((c) => c.tag === tag);
    return t ? new TextDecoder().decode(t.value) : undefined;
  } catch {
    return undefined;
  }
}

/** The specialty code: the last 4 characters of CPS_INFO_PS (docs/card-facts.md §5). */
export function specialtyOf(infoPs: Uint8Array | undefined): string | null {
  if (!infoPs || infoPs.length < 4) return null;
  const tail = new TextDecoder().decode(infoPs.subarray(infoPs.length - 4));
  return /^[A-Z]{1,2}\d{2,3}$/.test(tail) ? tail : null;
}

/** National id, its kind and the RPPS number, from a card certificate's CN. */
export function nationalIdentity(cn: string): { nationalId: string; idKind: NationalIdKind; rpps: string | null } {
  const idKind = nationalIdKind(cn);
  return { nationalId: cn, idKind, rpps: idKind === 'RPPS' && /^8\d{11}$/.test(cn) ? cn.slice(1) : null };
}

export function holderIdentity(input: {
  certificate: Uint8Array;
  serial: string;
  data: Record<string, Uint8Array>;
}): HolderIdentity {
  const cert = certificateInfo(input.certificate);
  const infoPs = input.data.CPS_INFO_PS;
  const code = findValue(infoPs, 0xe2, 0x83);
  const title = cert.subject.title;
  const label = (code ? own(PROFESSIONS, code) : undefined) ?? title;
  const typeText = findValue(input.data.CPS_ID_CARD, 0xe0, 0x81);
  return {
    ...nationalIdentity(cert.subject.CN ?? ''),
    surname: cert.subject.SN ?? '',
    givenName: cert.subject.GN ?? '',
    profession: label ? { code: code || null, label } : null,
    specialty: specialtyOf(infoPs),
    cardType: typeText && CARD_TYPES.includes(typeText) ? typeText : null,
    serial: input.serial,
    notBefore: cert.notBefore.toISOString(),
    notAfter: cert.notAfter.toISOString(),
  };
}

/** A CPS_ACTIVITY_nn_PS object: EE { 84 name, 85 structure id, 86 sector } [V-3rd]. */
export function practiceSituation(label: string, bytes: Uint8Array): PracticeSituation | undefined {
  const index = Number(/^CPS_ACTIVITY_(\d\d)_PS$/.exec(label)?.[1]);
  if (!Number.isInteger(index)) return undefined;
  const structureId = findValue(bytes, 0xee, 0x85) ?? '';
  return {
    index,
    structureName: findValue(bytes, 0xee, 0x84) ?? '',
    structureId,
    structureIdKind: STRUCTURE_PREFIX[structureId[0] ?? ''] ?? 'UNKNOWN',
    sector: findValue(bytes, 0xee, 0x86) ?? '',
  };
}
