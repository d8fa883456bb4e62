/**
 * The holder's identity from what a CPx card carries: the certificate subject
 * (C=FR, title=<profession>, CN=<idNat>+SN=<surname>+GN=<given name>, cps-cards.md §4) and the card's
 * data objects (specialty at the end of CPS_INFO_PS, situations EE/84/85/86, card type).
 * Pure parsing: no I/O, no reader.
 */
import { CpsdError } from '../apdu/errors.js';
import { parseTlv, type Tlv } from '../apdu/tlv.js';

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

/** idNat type prefixes (TRE_G08, cps-cards.md §4): 8 RPPS, 0 ADELI, then employee-of-structure kinds. */
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

function oidString(value: Uint8Array): string {
  const parts: number[] = [];
  let n = 0;
  value.forEach((b, i) => {
    n = n * 128 + (b & 0x7f);
    if ((b & 0x80) === 0) {
      if (parts.length === 0 && i >= 0) parts.push(Math.min(2, Math.floor(n / 40)), n - Math.min(2, Math.floor(n / 40)) * 40);
      else parts.push(n);
      n = 0;
    }
  });
  return parts.join('.');
}

function decodeString(t: Tlv): string {
  // UTF8String, PrintableString, IA5String, TeletexString (latin-1 in practice), BMPString.
  if (t.tag === 0x1e) {
    let s = '';
    for (let i = 0; i + 1 < t.value.length; i += 2) s += String.fromCharCode(((t.value[i] ?? 0) << 8) | (t.value[i + 1] ?? 0));
    return s;
  }
  if (t.tag === 0x14) return Buffer.from(t.value).toString('latin1');
  return new TextDecoder().decode(t.value);
}

/** Name → attributes; several values of one type (two OUs) are joined with ", ". */
function nameAttributes(name: Tlv): Record<string, string> {
  const out: Record<string, string> = {};
  for (const rdn of name.children ?? []) {
    for (const atv of rdn.children ?? []) {
      const [type, value] = atv.children ?? [];
      if (!type || !value) continue;
      const key = NAMES[oidString(type.value)] ?? oidString(type.value);
      out[key] = out[key] ? `${out[key]}, ${decodeString(value)}` : decodeString(value);
    }
  }
  return out;
}

function parseTime(t: Tlv): Date {
  const s = new TextDecoder().decode(t.value);
  const m = t.tag === 0x17 ? /^(\d{2})(\d{2})(\d{2})(\d{2})(\d{2})(\d{2})Z$/.exec(s) : /^(\d{4})(\d{2})(\d{2})(\d{2})(\d{2})(\d{2})Z$/.exec(s);
  if (!m) throw new CertificateFormatError(`bad time ${s}`);
  const year = t.tag === 0x17 ? (Number(m[1]) < 50 ? 2000 : 1900) + Number(m[1]) : Number(m[1]);
  return new Date(Date.UTC(year, Number(m[2]) - 1, Number(m[3]), Number(m[4]), Number(m[5]), Number(m[6])));
}

/** Subject, issuer, validity and serial of an X.509 certificate (DER). Any key algorithm is accepted,
 * including the legacy GIP-CPS SubjectPublicKeyInfo OID 1.2.250.1.71.2.6.1. */
export function certificateInfo(der: Uint8Array): CertificateInfo {
  let tbs: Tlv | undefined;
  try {
    tbs = parseTlv(der)[0]?.children?.[0];
  } catch (error) {
    throw new CertificateFormatError('not a DER certificate', { cause: error });
  }
  const fields = tbs?.children ?? [];
  const offset = fields[0]?.tag === 0xa0 ? 1 : 0; // version is optional (v1)
  const serial = fields[offset];
  const issuer = fields[offset + 2];
  const validity = fields[offset + 3];
  const subject = fields[offset + 4];
  const [from, to] = validity?.children ?? [];
  if (!serial || !issuer || !subject || !from || !to) throw new CertificateFormatError('incomplete TBSCertificate');
  const extensions = fields.find((f) => f.tag === 0xa3)?.children?.[0]?.children ?? [];
  const ku = extensions.find((e) => Buffer.from(e.children?.[0]?.value ?? []).toString('hex') === '551d0f');
  let keyUsage: Set<number> | undefined;
  const kuValue = ku?.children?.find((c) => c.tag === 0x04)?.value;
  if (kuValue) {
    const bits = parseTlv(kuValue)[0]?.value ?? new Uint8Array(0);
    keyUsage = new Set();
    for (let i = 1; i < bits.length; i++) for (let b = 0; b < 8; b++) if (((bits[i] ?? 0) & (0x80 >> b)) !== 0) keyUsage.add((i - 1) * 8 + b);
  }
  return {
    keyUsage,
    subject: nameAttributes(subject),
    issuer: nameAttributes(issuer),
    notBefore: parseTime(from),
    notAfter: parseTime(to),
    serialNumber: Buffer.from(serial.value).toString('hex').toUpperCase(),
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

/** The specialty code: the last 4 characters of CPS_INFO_PS (cps-cards.md §5). */
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
  const label = (code ? PROFESSIONS[code] : undefined) ?? title;
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
